//! The client over real gRPC (tonic on both sides, HTTP/2 over an in-memory pipe: no port) against a minimal
//! in-test Matching server built on the protocol crate. The real server is tested in `e2e_server.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // test code: a failure is the test failing

mod common;

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use common::*;
use tokio_stream::Stream;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};
use vouchsafe_client::transport::GrpcTransport;
use vouchsafe_client::{BearerToken, Client, ClientConfig, ClientError, NullReason, SyncKind, VoucherKind};
use vouchsafe_proto::v1 as pb;
use vouchsafe_proto::v1::matching_server::{Matching, MatchingServer};
use vouchsafe_protocol::table::ServerTable;
use vouchsafe_protocol::voucher::{OpenOutcome, Opener};

const TOKEN: &str = "secret-token-123";

#[derive(Default)]
struct Shared {
    table: Option<ServerTable>,
    tamper_chunk: Option<u32>,
    /// batch id -> vouchers stored.
    batches: HashMap<Vec<u8>, Vec<Vec<u8>>>,
    submit_calls: Vec<Vec<u8>>,
    /// Previous table versions' manifests are not kept: GetUpdate answers NOT_FOUND unless set.
    update_from: Option<(u64, vouchsafe_protocol::table::TableUpdate)>,
}

#[derive(Clone, Default)]
struct Fake {
    s: Arc<Mutex<Shared>>,
    /// Submit calls that store the batch and then fail with UNAVAILABLE (a lost acknowledgement).
    lose_acks: Arc<AtomicU32>,
}

fn check_auth<T>(r: &Request<T>) -> Result<(), Status> {
    match r.metadata().get("authorization").and_then(|v| v.to_str().ok()) {
        Some(v) if v == format!("Bearer {TOKEN}") => Ok(()),
        _ => Err(Status::unauthenticated("bad token")),
    }
}

fn pb_manifest(t: &ServerTable) -> pb::Manifest {
    let m = t.manifest();
    let o = order_summary(m.params.threshold, m.params.synthetic_cap, m.params.synthetic_rate);
    pb::Manifest {
        params: m.params.encode(),
        table_version: m.table_version,
        slot_count: m.params.slot_count,
        chunk_slots: m.chunk_slots,
        root: m.root().to_vec(),
        chunk_hashes: m.chunk_hashes.iter().map(|h| h.to_vec()).collect(),
        order: Some(pb::OrderInfo {
            order_id: o.order_id,
            service_id: o.service_id,
            not_before: o.not_before,
            not_after: o.not_after,
            threshold: o.threshold,
            synthetic_rate: o.synthetic_rate,
            synthetic_cap: o.synthetic_cap,
            hash_config_id: o.hash_config_id,
        }),
    }
}

#[tonic::async_trait]
impl Matching for Fake {
    async fn get_manifest(&self, r: Request<pb::GetManifestRequest>) -> Result<Response<pb::Manifest>, Status> {
        check_auth(&r)?;
        let s = self.s.lock().unwrap();
        let t = s.table.as_ref().ok_or(Status::failed_precondition("no order"))?;
        Ok(Response::new(pb_manifest(t)))
    }

    type StreamTableStream = Pin<Box<dyn Stream<Item = Result<pb::TableChunk, Status>> + Send>>;

    async fn stream_table(
        &self,
        r: Request<pb::StreamTableRequest>,
    ) -> Result<Response<Self::StreamTableStream>, Status> {
        check_auth(&r)?;
        let req = r.into_inner();
        let s = self.s.lock().unwrap();
        let t = s.table.as_ref().ok_or(Status::failed_precondition("no order"))?;
        if req.table_version != t.version() {
            return Err(Status::not_found("version"));
        }
        let mut out = Vec::new();
        for i in req.first_chunk..t.chunk_count() {
            let mut chunk = t.chunk(i).unwrap().encode();
            if s.tamper_chunk == Some(i) {
                let n = chunk.len() - 1;
                chunk[n] ^= 1;
            }
            out.push(Ok(pb::TableChunk { index: i, chunk }));
        }
        Ok(Response::new(Box::pin(tokio_stream::iter(out))))
    }

    async fn get_update(&self, r: Request<pb::GetUpdateRequest>) -> Result<Response<pb::TableUpdate>, Status> {
        check_auth(&r)?;
        let from = r.into_inner().from_version;
        let s = self.s.lock().unwrap();
        let t = s.table.as_ref().ok_or(Status::failed_precondition("no order"))?;
        match &s.update_from {
            Some((v, u)) if *v == from => {
                let m = t.manifest();
                Ok(Response::new(pb::TableUpdate {
                    from_version: u.from_version,
                    to_version: u.to_version,
                    update: u.encode(),
                    root: m.root().to_vec(),
                    chunk_hashes: m.chunk_hashes.iter().map(|h| h.to_vec()).collect(),
                }))
            }
            _ => Err(Status::not_found("no update from there")),
        }
    }

    async fn submit_vouchers(&self, r: Request<pb::SubmitVouchersRequest>) -> Result<Response<pb::SubmitAck>, Status> {
        check_auth(&r)?;
        let req = r.into_inner();
        if req.batch_id.len() != 16 || req.vouchers.is_empty() {
            return Err(Status::invalid_argument("envelope"));
        }
        let n = req.vouchers.len() as u32;
        let mut s = self.s.lock().unwrap();
        s.submit_calls.push(req.batch_id.clone());
        s.batches.entry(req.batch_id.clone()).or_insert(req.vouchers);
        if self.lose_acks.load(Ordering::SeqCst) > 0 {
            self.lose_acks.fetch_sub(1, Ordering::SeqCst);
            return Err(Status::unavailable("ack lost"));
        }
        Ok(Response::new(pb::SubmitAck { batch_id: req.batch_id, accepted: n }))
    }
}

/// The fake served in memory; every client opened on the returned channel talks to it.
fn serve(fake: Fake) -> Channel {
    in_memory(tonic::transport::Server::builder().add_service(MatchingServer::new(fake)))
}

/// A client of the in-memory server (the tonic transport over `channel`).
async fn open(channel: &Channel, config: ClientConfig) -> vouchsafe_client::Result<Client> {
    let transport = GrpcTransport::with_channel(channel.clone(), &config)?;
    Client::open_with_transport(config, transport).await
}

fn config(_: &Channel, dir: &std::path::Path, token: &str) -> ClientConfig {
    let mut c = ClientConfig::new("http://in-memory.invalid", BearerToken::new(token), dir, SERVICE);
    c.max_retries = 0;
    c.max_batch = 2;
    c.backoff_initial = Duration::from_millis(10);
    c.request_timeout = Duration::from_secs(10);
    c
}

/// The server's opener for `table` (what the worker would use), to check which submitted vouchers match.
fn opener_of(table: &ServerTable) -> Opener {
    let key = vouchsafe_protocol::table::BlindingKey::from_bytes(&table.key().to_bytes()).unwrap();
    Opener::new(key, table.params().clone()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_scan_submit_and_crash_recovery() {
    let images: Vec<Vec<u8>> = (1..=4).map(|s| png(s, 96, 80)).collect();
    // Images 0 and 1 are indicators; 2 and 3 are not.
    let table = build_table(1, vec![primary_of(&images[0]), primary_of(&images[1])], 11);
    let opener = opener_of(&table);
    let fake = Fake::default();
    fake.s.lock().unwrap().table = Some(table);
    let endpoint = serve(fake.clone());
    let dir = tempfile::tempdir().unwrap();

    // A wrong token is refused with a precise error.
    {
        let bad = open(&endpoint, config(&endpoint, &dir.path().join("other"), "wrong")).await.unwrap();
        assert!(matches!(bad.sync().await, Err(ClientError::Unauthenticated)));
        assert!(!format!("{bad:?}").contains("wrong"));
    }

    let cfg = config(&endpoint, dir.path(), TOKEN);
    let transport = GrpcTransport::with_channel(endpoint.clone(), &cfg).unwrap();
    let client = Client::open_with_transport_and_rng(cfg, transport, rng(1)).await.unwrap();
    assert!(!format!("{client:?}").contains(TOKEN));
    // Nothing is scanned before a verified table is held.
    assert!(matches!(
        client.scan(images[0].clone(), [0; 32], SystemTime::now()).await,
        Err(ClientError::NoActiveOrder { .. })
    ));
    // A second instance on the same directory is refused.
    assert!(matches!(open(&endpoint, config(&endpoint, dir.path(), TOKEN)).await, Err(ClientError::DataDirLocked)));

    let r = client.sync().await.unwrap();
    assert_eq!(r.kind, SyncKind::Full);
    assert_eq!(r.table_version, 1);
    assert!(r.bytes_received > 0);
    assert_eq!(client.sync().await.unwrap().kind, SyncKind::UpToDate);

    let now = SystemTime::now();
    let mut kinds = Vec::new();
    for (i, img) in images.iter().enumerate() {
        kinds.push(client.scan(img.clone(), [i as u8; 32], now).await.unwrap());
    }
    assert!(kinds.iter().all(|k| k.kind == VoucherKind::Real), "{kinds:?}");
    let again = client.scan(images[0].clone(), [9; 32], now).await.unwrap();
    assert_eq!((again.kind, again.null_reason), (VoucherKind::Null, Some(NullReason::RepeatedImage)));
    let tiny = client.scan(png(5, 8, 8), [9; 32], now).await.unwrap();
    assert!(matches!(tiny.null_reason, Some(NullReason::QualityGate(_))));
    let junk = client.scan(b"not an image".to_vec(), [9; 32], now).await.unwrap();
    assert_eq!(junk.null_reason, Some(NullReason::Unreadable));
    // Outside the order's window nothing is made.
    let far = now + Duration::from_secs(400 * 86_400);
    assert!(matches!(client.scan(images[2].clone(), [0; 32], far).await, Err(ClientError::NoActiveOrder { .. })));
    assert_eq!(client.outbox_len(), 7);

    // First batch: stored by the server, acknowledgement lost; the client gives up (no retries configured).
    fake.lose_acks.store(1, Ordering::SeqCst);
    assert!(matches!(client.submit().await, Err(ClientError::Unavailable { .. })));
    assert_eq!(client.outbox_len(), 7);
    let first_id = fake.s.lock().unwrap().submit_calls[0].clone();

    // Crash: drop the client, reopen from the data directory (table revalidated, state and outbox reloaded).
    drop(client);
    let client = open(&endpoint, config(&endpoint, dir.path(), TOKEN)).await.unwrap();
    assert_eq!(client.outbox_len(), 7);
    assert_eq!(client.table_info().unwrap().table_version, 1);
    // The state survived: the image is still known, so it gets a null voucher.
    let rep = client.scan(images[1].clone(), [1; 32], now).await.unwrap();
    assert_eq!(rep.null_reason, Some(NullReason::RepeatedImage));

    let report = client.submit().await.unwrap();
    assert_eq!((report.vouchers, report.remaining), (8, 0));
    assert_eq!(report.batches, 4);
    let s = fake.s.lock().unwrap();
    // The retried batch reused its id: 5 calls, 4 distinct batches, 8 vouchers stored once each.
    assert_eq!(s.submit_calls.len(), 5);
    assert_eq!(s.submit_calls[1], first_id);
    assert_eq!(s.batches.len(), 4);
    assert_eq!(s.batches.values().map(Vec::len).sum::<usize>(), 8);

    // The server's view: exactly the two indicator images opened.
    let mut opened = 0;
    for v in s.batches.values().flatten() {
        match opener.open_bytes(v) {
            OpenOutcome::Opened(_) => opened += 1,
            OpenOutcome::NonMatch => {}
            OpenOutcome::Invalid(r) => panic!("invalid voucher: {r:?}"),
        }
    }
    assert_eq!(opened, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_update_new_epoch_and_tampered_chunk() {
    let fake = Fake::default();
    fake.s.lock().unwrap().table = Some(build_table(1, vec![], 21));
    let endpoint = serve(fake.clone());
    let dir = tempfile::tempdir().unwrap();
    let client = open(&endpoint, config(&endpoint, dir.path(), TOKEN)).await.unwrap();
    assert_eq!(client.sync().await.unwrap().kind, SyncKind::Full);

    // Version 2 of the same epoch: an incremental update.
    {
        let mut s = fake.s.lock().unwrap();
        let t = s.table.as_mut().unwrap();
        let u = t.update(vec![b"added".to_vec()], &[], &mut rng(22)).unwrap();
        s.update_from = Some((1, u));
    }
    let r = client.sync().await.unwrap();
    assert_eq!((r.kind, r.table_version), (SyncKind::Incremental, 2));

    // Version 3 without an update from 2: NOT_FOUND -> full download.
    {
        let mut s = fake.s.lock().unwrap();
        let t = s.table.as_mut().unwrap();
        t.update(vec![b"added again".to_vec()], &[], &mut rng(23)).unwrap();
        s.update_from = None;
    }
    let r = client.sync().await.unwrap();
    assert_eq!((r.kind, r.table_version), (SyncKind::Full, 3));

    // A new epoch whose chunk 1 is tampered with in transit: refused, the held table stays.
    {
        let mut s = fake.s.lock().unwrap();
        s.table = Some(build_table(2, vec![], 24));
        s.tamper_chunk = Some(1);
    }
    match client.sync().await {
        Err(ClientError::Verification { reason }) => assert_eq!(reason, "chunk hash does not match the manifest"),
        other => panic!("tampered chunk accepted: {other:?}"),
    }
    let info = client.table_info().unwrap();
    assert_eq!((info.epoch, info.table_version), (1, 3));
    fake.s.lock().unwrap().tamper_chunk = None;
    let r = client.sync().await.unwrap();
    assert_eq!((r.kind, r.epoch), (SyncKind::Full, 2));

    // Restart: the stored table is reloaded and revalidated.
    drop(client);
    let client = open(&endpoint, config(&endpoint, dir.path(), TOKEN)).await.unwrap();
    assert_eq!(client.table_info().unwrap().epoch, 2);
    assert_eq!(client.sync().await.unwrap().kind, SyncKind::UpToDate);
}

/// `ClientConfig::point_cache`: the table is held decompressed after a full download, an incremental update and a
/// reload, and the vouchers made from it are the ones the server opens (the indicator only).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn point_cache_survives_update_and_reload_and_vouchers_still_match() {
    let images: Vec<Vec<u8>> = (31..=33).map(|s| png(s, 96, 80)).collect();
    let table = build_table(1, vec![primary_of(&images[0])], 31);
    let opener = opener_of(&table);
    let fake = Fake::default();
    fake.s.lock().unwrap().table = Some(table);
    let endpoint = serve(fake.clone());
    let dir = tempfile::tempdir().unwrap();
    let cached = |on: bool| {
        let mut c = config(&endpoint, dir.path(), TOKEN);
        c.point_cache = on;
        c
    };

    let client = open(&endpoint, cached(true)).await.unwrap();
    assert_eq!(client.sync().await.unwrap().kind, SyncKind::Full);
    assert!(client.table_info().unwrap().point_cache);
    {
        let mut s = fake.s.lock().unwrap();
        let t = s.table.as_mut().unwrap();
        let u = t.update(vec![primary_of(&images[1])], &[], &mut rng(32)).unwrap();
        s.update_from = Some((1, u));
    }
    assert_eq!(client.sync().await.unwrap().kind, SyncKind::Incremental);
    assert!(client.table_info().unwrap().point_cache);

    drop(client);
    let client = open(&endpoint, cached(true)).await.unwrap();
    assert!(client.table_info().unwrap().point_cache);
    let now = SystemTime::now();
    for (i, img) in images.iter().enumerate() {
        assert_eq!(client.scan(img.clone(), [i as u8; 32], now).await.unwrap().kind, VoucherKind::Real);
    }
    client.submit().await.unwrap();
    drop(client);
    // The same directory opened without the option holds the table compressed.
    assert!(!open(&endpoint, cached(false)).await.unwrap().table_info().unwrap().point_cache);

    // Images 0 (initial table) and 1 (added by the update) open; image 2 does not.
    let s = fake.s.lock().unwrap();
    let opened: Vec<bool> = s
        .batches
        .values()
        .flatten()
        .map(|v| match opener.open_bytes(v) {
            OpenOutcome::Opened(_) => true,
            OpenOutcome::NonMatch => false,
            OpenOutcome::Invalid(r) => panic!("invalid voucher: {r:?}"),
        })
        .collect();
    assert_eq!((opened.len(), opened.iter().filter(|o| **o).count()), (3, 2));
}
