//! The client over real gRPC (tonic on both sides, HTTP/2 over an in-memory pipe: no port) against a minimal
//! in-test Matching and Transparency server serving what `common::world` builds from the libraries (signed order,
//! signed manifests, witnessed log). The real server is tested in `e2e_server.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // test code: a failure is the test failing

mod common;

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use common::world::World;
use common::*;
use tokio_stream::Stream;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};
use vouchsafe_client::transport::GrpcTransport;
use vouchsafe_client::{
    BearerToken, Client, ClientConfig, ClientError, NullReason, ScanContext, SyncKind, VoucherKind,
};
use vouchsafe_proto::v1 as pb;
use vouchsafe_proto::v1::matching_server::{Matching, MatchingServer};
use vouchsafe_proto::v1::transparency_server::{Transparency, TransparencyServer};
use vouchsafe_protocol::table::ServerTable;
use vouchsafe_protocol::voucher::{OpenOutcome, Opener};

const TOKEN: &str = "secret-token-123";

struct Shared {
    world: World,
    tamper_chunk: Option<u32>,
    /// batch id -> vouchers stored.
    batches: HashMap<Vec<u8>, Vec<Vec<u8>>>,
    submit_calls: Vec<Vec<u8>>,
}

/// The fake Matching and Transparency server: serves what the `World` (authority, Centre, provider, log and
/// witnesses built from the libraries) holds.
#[derive(Clone)]
struct Fake {
    s: Arc<Mutex<Shared>>,
    /// Submit calls that store the batch and then fail with UNAVAILABLE (a lost acknowledgement).
    lose_acks: Arc<AtomicU32>,
}

impl Fake {
    fn new(world: World) -> Fake {
        let s = Shared { world, tamper_chunk: None, batches: HashMap::new(), submit_calls: Vec::new() };
        Fake { s: Arc::new(Mutex::new(s)), lose_acks: Arc::new(AtomicU32::new(0)) }
    }
}

fn check_auth<T>(r: &Request<T>) -> Result<(), Status> {
    match r.metadata().get("authorization").and_then(|v| v.to_str().ok()) {
        Some(v) if v == format!("Bearer {TOKEN}") => Ok(()),
        _ => Err(Status::unauthenticated("bad token")),
    }
}

fn pb_manifest(w: &World) -> pb::Manifest {
    let m = w.manifest_info();
    pb::Manifest {
        params: m.params,
        table_version: m.table_version,
        slot_count: m.slot_count,
        chunk_slots: m.chunk_slots,
        root: m.root,
        chunk_hashes: m.chunk_hashes,
        signed_order: m.signed_order,
        revocations: m.revocations,
        signed_manifest: m.signed_manifest,
        order_leaf_index: m.order_leaf_index,
        manifest_leaf_index: m.manifest_leaf_index,
    }
}

#[tonic::async_trait]
impl Matching for Fake {
    async fn get_manifest(&self, r: Request<pb::GetManifestRequest>) -> Result<Response<pb::Manifest>, Status> {
        check_auth(&r)?;
        let s = self.s.lock().unwrap();
        Ok(Response::new(pb_manifest(&s.world)))
    }

    type StreamTableStream = Pin<Box<dyn Stream<Item = Result<pb::TableChunk, Status>> + Send>>;

    async fn stream_table(
        &self,
        r: Request<pb::StreamTableRequest>,
    ) -> Result<Response<Self::StreamTableStream>, Status> {
        check_auth(&r)?;
        let req = r.into_inner();
        let s = self.s.lock().unwrap();
        let t = &s.world.table;
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
        match s.world.update_info(from) {
            Some(u) => Ok(Response::new(pb::TableUpdate {
                from_version: u.from_version,
                to_version: u.to_version,
                update: u.update,
                root: u.root,
                chunk_hashes: u.chunk_hashes,
                signed_manifest: u.signed_manifest,
                manifest_leaf_index: u.manifest_leaf_index,
            })),
            None => Err(Status::not_found("no update from there")),
        }
    }

    async fn get_notices(&self, r: Request<pb::GetNoticesRequest>) -> Result<Response<pb::Notices>, Status> {
        check_auth(&r)?;
        Ok(Response::new(pb::Notices { notices: Vec::new() }))
    }

    async fn submit_appeal(&self, r: Request<pb::SubmitAppealRequest>) -> Result<Response<pb::AppealAck>, Status> {
        check_auth(&r)?;
        Err(Status::not_found("no such notice"))
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

fn log_status(e: vouchsafe_client::transport::RpcError) -> Status {
    Status::out_of_range(e.to_string())
}

#[tonic::async_trait]
impl Transparency for Fake {
    async fn get_checkpoint(
        &self,
        _: Request<pb::GetCheckpointRequest>,
    ) -> Result<Response<pb::LogCheckpoint>, Status> {
        Ok(Response::new(pb::LogCheckpoint { note: self.s.lock().unwrap().world.served_note() }))
    }

    async fn get_inclusion_proof(
        &self,
        r: Request<pb::GetInclusionProofRequest>,
    ) -> Result<Response<pb::LogInclusionProof>, Status> {
        let r = r.into_inner();
        let p = self.s.lock().unwrap().world.inclusion(r.leaf_index, r.tree_size).map_err(log_status)?;
        Ok(Response::new(pb::LogInclusionProof { leaf_index: p.leaf_index, tree_size: p.tree_size, proof: p.proof }))
    }

    async fn get_consistency_proof(
        &self,
        r: Request<pb::GetConsistencyProofRequest>,
    ) -> Result<Response<pb::LogConsistencyProof>, Status> {
        let r = r.into_inner();
        let p = self.s.lock().unwrap().world.consistency(r.old_size, r.new_size).map_err(log_status)?;
        Ok(Response::new(pb::LogConsistencyProof { old_size: p.old_size, new_size: p.new_size, proof: p.proof }))
    }

    async fn get_leaves(&self, _: Request<pb::GetLeavesRequest>) -> Result<Response<pb::LogLeaves>, Status> {
        Err(Status::unimplemented("not used by devices"))
    }

    async fn add_cosignature(
        &self,
        _: Request<pb::AddCosignatureRequest>,
    ) -> Result<Response<pb::AddCosignatureResponse>, Status> {
        Err(Status::unimplemented("not used by devices"))
    }
}

/// The fake served in memory; every client opened on the returned channel talks to it.
fn serve(fake: Fake) -> Channel {
    in_memory(
        tonic::transport::Server::builder()
            .add_service(MatchingServer::new(fake.clone()))
            .add_service(TransparencyServer::new(fake)),
    )
}

/// A client of the in-memory server (the tonic transport over `channel`).
async fn open(channel: &Channel, config: ClientConfig) -> vouchsafe_client::Result<Client> {
    let transport = GrpcTransport::with_channel(channel.clone(), &config)?;
    Client::open_with_transport(config, transport).await
}

fn config(fake: &Fake, dir: &std::path::Path, token: &str) -> ClientConfig {
    let anchors = fake.s.lock().unwrap().world.keys.anchors();
    let mut c = ClientConfig::new("http://in-memory.invalid", BearerToken::new(token), dir, SERVICE, anchors);
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
    let ctx = ScanContext::new();
    let images: Vec<Vec<u8>> = (1..=4).map(|s| png(s, 96, 80)).collect();
    // Images 0 and 1 are indicators; 2 and 3 are not.
    let world = World::new(11, vec![primary_of(&images[0]), primary_of(&images[1])]);
    let opener = opener_of(&world.table);
    let fake = Fake::new(world);
    let endpoint = serve(fake.clone());
    let dir = tempfile::tempdir().unwrap();

    // A wrong token is refused with a precise error.
    {
        let bad = open(&endpoint, config(&fake, &dir.path().join("other"), "wrong")).await.unwrap();
        assert!(matches!(bad.sync().await, Err(ClientError::Unauthenticated)));
        assert!(!format!("{bad:?}").contains("wrong"));
    }

    let cfg = config(&fake, dir.path(), TOKEN);
    let transport = GrpcTransport::with_channel(endpoint.clone(), &cfg).unwrap();
    let client = Client::open_with_transport_and_rng(cfg, transport, rng(1)).await.unwrap();
    assert!(!format!("{client:?}").contains(TOKEN));
    // Nothing is scanned before a verified table is held.
    assert!(matches!(
        client.scan(images[0].clone(), [0; 32], SystemTime::now(), &ctx).await,
        Err(ClientError::NoActiveOrder { .. })
    ));
    // A second instance on the same directory is refused.
    assert!(matches!(open(&endpoint, config(&fake, dir.path(), TOKEN)).await, Err(ClientError::DataDirLocked)));

    let r = client.sync().await.unwrap();
    assert_eq!(r.kind, SyncKind::Full);
    assert_eq!(r.table_version, 1);
    assert!(r.bytes_received > 0);
    assert_eq!(client.sync().await.unwrap().kind, SyncKind::UpToDate);

    let now = SystemTime::now();
    let mut kinds = Vec::new();
    for (i, img) in images.iter().enumerate() {
        kinds.push(client.scan(img.clone(), [i as u8; 32], now, &ctx).await.unwrap());
    }
    assert!(kinds.iter().all(|k| k.kind == VoucherKind::Real), "{kinds:?}");
    let again = client.scan(images[0].clone(), [9; 32], now, &ctx).await.unwrap();
    assert_eq!((again.kind, again.null_reason), (VoucherKind::Null, Some(NullReason::RepeatedImage)));
    let tiny = client.scan(png(5, 8, 8), [9; 32], now, &ctx).await.unwrap();
    assert!(matches!(tiny.null_reason, Some(NullReason::QualityGate(_))));
    let junk = client.scan(b"not an image".to_vec(), [9; 32], now, &ctx).await.unwrap();
    assert_eq!(junk.null_reason, Some(NullReason::Unreadable));
    // Outside the order's window nothing is made.
    let far = now + Duration::from_secs(400 * 86_400);
    assert!(matches!(
        client.scan(images[2].clone(), [0; 32], far, &ctx).await,
        Err(ClientError::Order(vouchsafe_orders::OrderError::Expired { .. }))
    ));
    assert_eq!(client.outbox_len(), 7);

    // First batch: stored by the server, acknowledgement lost; the client gives up (no retries configured).
    fake.lose_acks.store(1, Ordering::SeqCst);
    assert!(matches!(client.submit().await, Err(ClientError::Unavailable { .. })));
    assert_eq!(client.outbox_len(), 7);
    let first_id = fake.s.lock().unwrap().submit_calls[0].clone();

    // Crash: drop the client, reopen from the data directory (table revalidated, state and outbox reloaded).
    drop(client);
    let client = open(&endpoint, config(&fake, dir.path(), TOKEN)).await.unwrap();
    assert_eq!(client.outbox_len(), 7);
    assert_eq!(client.table_info().unwrap().table_version, 1);
    // The state survived: the image is still known, so it gets a null voucher.
    let rep = client.scan(images[1].clone(), [1; 32], now, &ctx).await.unwrap();
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
    let fake = Fake::new(World::new(21, vec![]));
    let endpoint = serve(fake.clone());
    let dir = tempfile::tempdir().unwrap();
    let client = open(&endpoint, config(&fake, dir.path(), TOKEN)).await.unwrap();
    assert_eq!(client.sync().await.unwrap().kind, SyncKind::Full);

    // Version 2 of the same epoch: an incremental update.
    fake.s.lock().unwrap().world.update_table(vec![b"added".to_vec()], 22);
    let r = client.sync().await.unwrap();
    assert_eq!((r.kind, r.table_version), (SyncKind::Incremental, 2));

    // Version 3 without an update from 2: NOT_FOUND -> full download.
    {
        let w = &mut fake.s.lock().unwrap().world;
        w.update_table(vec![b"added again".to_vec()], 23);
        w.forget_update();
    }
    let r = client.sync().await.unwrap();
    assert_eq!((r.kind, r.table_version), (SyncKind::Full, 3));

    // A new epoch whose chunk 1 is tampered with in transit: refused, the held table stays.
    {
        let mut s = fake.s.lock().unwrap();
        s.world.replace_table(build_table(2, vec![], 24));
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
    let client = open(&endpoint, config(&fake, dir.path(), TOKEN)).await.unwrap();
    assert_eq!(client.table_info().unwrap().epoch, 2);
    assert_eq!(client.sync().await.unwrap().kind, SyncKind::UpToDate);
}

/// `ClientConfig::point_cache`: the table is held decompressed after a full download, an incremental update and a
/// reload, and the vouchers made from it are the ones the server opens (the indicator only).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn point_cache_survives_update_and_reload_and_vouchers_still_match() {
    let ctx = ScanContext::new().component("chat");
    let images: Vec<Vec<u8>> = (31..=33).map(|s| png(s, 96, 80)).collect();
    let world = World::new(31, vec![primary_of(&images[0])]);
    let opener = opener_of(&world.table);
    let fake = Fake::new(world);
    let endpoint = serve(fake.clone());
    let dir = tempfile::tempdir().unwrap();
    let cached = |on: bool| {
        let mut c = config(&fake, dir.path(), TOKEN);
        c.point_cache = on;
        c
    };

    let client = open(&endpoint, cached(true)).await.unwrap();
    assert_eq!(client.sync().await.unwrap().kind, SyncKind::Full);
    assert!(client.table_info().unwrap().point_cache);
    fake.s.lock().unwrap().world.update_table(vec![primary_of(&images[1])], 32);
    assert_eq!(client.sync().await.unwrap().kind, SyncKind::Incremental);
    assert!(client.table_info().unwrap().point_cache);

    drop(client);
    let client = open(&endpoint, cached(true)).await.unwrap();
    assert!(client.table_info().unwrap().point_cache);
    let now = SystemTime::now();
    for (i, img) in images.iter().enumerate() {
        assert_eq!(client.scan(img.clone(), [i as u8; 32], now, &ctx).await.unwrap().kind, VoucherKind::Real);
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

/// `run_submissions` sends the outbox on its clock grid, not when an image is scanned, keeps what a failed tick
/// could not send, and returns when asked to stop; a period under 1 s is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_submissions_sends_on_the_clock_not_on_scans() {
    let ctx = ScanContext::new();
    let images: Vec<Vec<u8>> = (21..=23).map(|s| png(s, 96, 80)).collect();
    let world = World::new(13, vec![primary_of(&images[0])]);
    let fake = Fake::new(world);
    let endpoint = serve(fake.clone());
    let dir = tempfile::tempdir().unwrap();
    let mut fast = config(&fake, &dir.path().join("fast"), TOKEN);
    fast.submit_interval = Duration::from_millis(200);
    assert!(matches!(open(&endpoint, fast).await, Err(ClientError::Config { .. })));

    let mut cfg = config(&fake, dir.path(), TOKEN);
    // Ticks at 2 s and 4 s after the start; every check sits a second away from a tick.
    cfg.submit_interval = Duration::from_secs(2);
    let client = open(&endpoint, cfg).await.unwrap();
    client.sync().await.unwrap();
    let calls = || fake.s.lock().unwrap().submit_calls.len();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let start = tokio::time::Instant::now();
    let checks = async {
        let now = SystemTime::now();
        client.scan(images[0].clone(), [1; 32], now, &ctx).await.unwrap();
        client.scan(images[1].clone(), [2; 32], now, &ctx).await.unwrap();
        // Scanning sends nothing: the first tick is one period after the start.
        tokio::time::sleep_until(start + Duration::from_secs(1)).await;
        assert!(start.elapsed() < Duration::from_millis(1900), "the scans took too long for this test's clock");
        assert_eq!((calls(), client.outbox_len()), (0, 2), "a scan triggered a submission");
        tokio::time::sleep_until(start + Duration::from_secs(3)).await;
        assert_eq!(client.outbox_len(), 0, "the first tick did not send the outbox");
        let after_first = calls();
        assert!(after_first >= 1);
        // A voucher made after a tick waits for the next one.
        client.scan(images[2].clone(), [3; 32], SystemTime::now(), &ctx).await.unwrap();
        assert!(start.elapsed() < Duration::from_millis(3900), "the scan took too long for this test's clock");
        assert_eq!((calls(), client.outbox_len()), (after_first, 1));
        tokio::time::sleep_until(start + Duration::from_secs(5)).await;
        assert_eq!(client.outbox_len(), 0, "the second tick did not send the new voucher");
        stop_tx.send(()).unwrap();
    };
    let run = client.run_submissions(async {
        let _ = stop_rx.await;
    });
    tokio::time::timeout(Duration::from_secs(10), async { tokio::join!(run, checks) })
        .await
        .expect("run_submissions did not stop when asked");
    let s = fake.s.lock().unwrap();
    assert_eq!(s.batches.values().map(Vec::len).sum::<usize>(), 3);
}
