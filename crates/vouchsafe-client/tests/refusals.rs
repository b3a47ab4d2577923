//! The client against an in-memory server built from the libraries (`common::world`): every refusal of the
//! device side of issue 8, each with its precise error, and each leaving nothing hashed, queued or sent.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // test code: a failure is the test failing

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::world::{FakeServer, Keys, World, flip, now};
use common::*;
use vouchsafe_client::{Client, ClientConfig, ClientError, ScanContext, SyncKind, VoucherKind};
use vouchsafe_log::{Error as LogError, Leaf, LeafKind};
use vouchsafe_orders::{OrderError, Scope};

async fn open(server: &FakeServer, config: ClientConfig) -> Client {
    Client::open_with_transport_and_rng(config, server.clone(), rng(1)).await.unwrap()
}

fn any() -> ScanContext {
    ScanContext::new()
}

/// The device made nothing: no table, scanning refuses, the outbox is empty, no chunk was downloaded.
async fn assert_nothing_done(client: &Client, server: &FakeServer) {
    assert!(client.table_info().is_none());
    let r = client.scan(png(1, 96, 80), [0; 32], SystemTime::now(), &any()).await;
    assert!(matches!(r, Err(ClientError::NoActiveOrder { .. })), "{r:?}");
    assert_eq!(client.outbox_len(), 0);
    assert_eq!(server.world().chunks_streamed, 0, "no table byte may be fetched before the checks pass");
    assert!(server.world().submitted.is_empty());
}

/// A first sync against `world` (edited by `edit`) is refused with an error `check` accepts, and nothing is done.
async fn refused_first_sync(
    world: World,
    config_edit: impl FnOnce(&mut ClientConfig),
    check: impl FnOnce(&ClientError),
) {
    let server = FakeServer::new(world);
    let dir = tempfile::tempdir().unwrap();
    let mut config = server.config(dir.path());
    config_edit(&mut config);
    let client = open(&server, config).await;
    let e = client.sync().await.unwrap_err();
    assert!(e.is_refusal() || matches!(e, ClientError::Verification { .. }), "{e:?}");
    check(&e);
    assert_nothing_done(&client, &server).await;
}

fn world_with(seed: u64, edit: impl FnOnce(&mut vouchsafe_orders::OrderTerms)) -> World {
    let keys = Keys::new(seed);
    let mut t = keys.terms();
    edit(&mut t);
    let order = keys.sign(t);
    World::with_order(keys, order, vec![], seed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn honest_chain_syncs_scans_and_submits() {
    let img = png(3, 96, 80);
    let server = FakeServer::new(World::new(1, vec![primary_of(&img)]));
    let dir = tempfile::tempdir().unwrap();
    let client = open(&server, server.config(dir.path())).await;
    assert!(client.log_tree_head().is_none());
    let r = client.sync().await.unwrap();
    assert_eq!(r.kind, SyncKind::Full);
    assert_eq!(client.log_tree_head().unwrap(), server.world().log.tree_head());
    assert_eq!(client.order().unwrap().order_id(), &ORDER);
    assert_eq!(client.scan(img, [1; 32], SystemTime::now(), &any()).await.unwrap().kind, VoucherKind::Real);
    assert_eq!(client.submit().await.unwrap().vouchers, 1);
    assert_eq!(client.sync().await.unwrap().kind, SyncKind::UpToDate);

    // A new version: the update's signed manifest is verified and included too.
    server.world().update_table(vec![b"added".to_vec()], 5);
    let r = client.sync().await.unwrap();
    assert_eq!((r.kind, r.table_version), (SyncKind::Incremental, 2));
    assert_eq!(client.log_tree_head().unwrap().size, 4);
    // The persisted checkpoint is restored at open.
    drop(client);
    let client = open(&server, server.config(dir.path())).await;
    assert_eq!(client.log_tree_head().unwrap().size, 4);
    assert_eq!(client.sync().await.unwrap().kind, SyncKind::UpToDate);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_order_revocation_manifest_and_checkpoint_are_refused() {
    for i in [0, 1, 40, 70, 90] {
        let mut w = World::new(2, vec![]);
        w.edit_manifest = Some(Box::new(move |m| m.signed_order = flip(&m.signed_order, i)));
        refused_first_sync(w, |_| {}, |e| assert!(matches!(e, ClientError::Order(_)), "{e:?}")).await;
    }
    for i in [0, 20, 70, 106] {
        let mut w = World::new(2, vec![]);
        let mut t = w.keys.terms();
        t.order_id = [0x77; 16];
        w.revocations = vec![w.keys.revoke(&w.keys.sign(t))];
        w.edit_manifest = Some(Box::new(move |m| m.revocations[0] = flip(&m.revocations[0], i)));
        refused_first_sync(w, |_| {}, |e| assert!(matches!(e, ClientError::Order(_)), "{e:?}")).await;
    }
    for i in [0, 10, 80, 200] {
        let mut w = World::new(2, vec![]);
        w.edit_manifest = Some(Box::new(move |m| m.signed_manifest = flip(&m.signed_manifest, i)));
        refused_first_sync(w, |_| {}, |e| assert!(matches!(e, ClientError::Order(_)), "{e:?}")).await;
    }
    // Every byte of the checkpoint body and of the log's signature line.
    let w = World::new(2, vec![]);
    let note = w.note.clone();
    let text_len = note.windows(2).position(|p| p == b"\n\n").unwrap() + 1;
    let log_line_end = text_len + 1 + note[text_len + 1..].iter().position(|&b| b == b'\n').unwrap();
    let server = FakeServer::new(w);
    let dir = tempfile::tempdir().unwrap();
    let client = open(&server, server.config(dir.path())).await;
    for i in (0..log_line_end).filter(|&i| i != text_len) {
        server.world().note_override = Some(flip(&note, i));
        let e = client.sync().await.unwrap_err();
        assert!(matches!(e, ClientError::Log(_)), "checkpoint byte {i}: {e:?}");
    }
    assert_nothing_done(&client, &server).await;
    assert!(client.log_tree_head().is_none(), "a refused checkpoint is not kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_that_do_not_verify_are_not_active_or_do_not_fit_are_refused() {
    let other = Keys::new(2).other_authority.key_id();
    refused_first_sync(
        world_with(2, |t| t.authority_key_id = other),
        |_| {},
        |e| {
            assert!(
                matches!(e, ClientError::Order(OrderError::UnknownAuthority { key_id }) if *key_id == other),
                "{e:?}"
            )
        },
    )
    .await;
    let now = now();
    refused_first_sync(
        world_with(2, |t| (t.not_before, t.not_after) = (now + 3600, now + 7200)),
        |_| {},
        |e| assert!(matches!(e, ClientError::Order(OrderError::NotYetValid { .. })), "{e:?}"),
    )
    .await;
    refused_first_sync(
        world_with(2, |t| (t.not_before, t.not_after) = (now - 7200, now - 1)),
        |_| {},
        |e| assert!(matches!(e, ClientError::Order(OrderError::Expired { .. })), "{e:?}"),
    )
    .await;
    let mut w = World::new(2, vec![]);
    w.revocations = vec![w.keys.revoke(&w.order)];
    refused_first_sync(w, |_| {}, |e| assert!(matches!(e, ClientError::Order(OrderError::Revoked { .. })), "{e:?}"))
        .await;
    refused_first_sync(
        World::new(2, vec![]),
        |c| c.service_id = "another.service".into(),
        |e| assert!(matches!(e, ClientError::WrongService { .. }), "{e:?}"),
    )
    .await;
    refused_first_sync(
        World::new(2, vec![]),
        |c| c.account_classes = vec!["state-security".into()],
        |e| assert!(matches!(e, ClientError::Excluded { class } if class == "state-security"), "{e:?}"),
    )
    .await;
    let foreign_centre = Keys::new(50).centre.public().to_bytes();
    refused_first_sync(
        world_with(2, |t| t.centre_key = foreign_centre),
        |_| {},
        |e| assert!(matches!(e, ClientError::UntrustedCentre), "{e:?}"),
    )
    .await;
    // The signed manifest by another key than the order's table key.
    let mut w = World::new(2, vec![]);
    let forged = w.keys.sign_manifest_with(&w.keys.other_table, &w.order, &w.table.manifest()).encode();
    w.edit_manifest = Some(Box::new(move |m| m.signed_manifest = forged.clone()));
    refused_first_sync(
        w,
        |_| {},
        |e| assert!(matches!(e, ClientError::Order(OrderError::BadSignature { what: "signed manifest" })), "{e:?}"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_refusals_inclusion_quorum_and_freshness() {
    // The manifest's leaf index beyond the checkpoint: not (yet) in the log.
    let mut w = World::new(3, vec![]);
    w.edit_manifest = Some(Box::new(|m| m.manifest_leaf_index = 3));
    refused_first_sync(
        w,
        |_| {},
        |e| assert!(matches!(e, ClientError::Log(LogError::OutOfRange { index: 3, size: 3 })), "{e:?}"),
    )
    .await;
    // The order is claimed at the release's index: the proof is of another leaf.
    let mut w = World::new(3, vec![]);
    w.edit_manifest = Some(Box::new(|m| m.order_leaf_index = 1));
    refused_first_sync(w, |_| {}, |e| assert!(matches!(e, ClientError::Log(LogError::InclusionProofInvalid)), "{e:?}"))
        .await;
    // A wrong proof (of another index, relabelled), an empty one, a missing one.
    let mut w = World::new(3, vec![]);
    let other = w.log.inclusion_proof(1, 3).unwrap().encode();
    w.edit_inclusion = Some(Box::new(move |p| p.proof = other.clone()));
    refused_first_sync(w, |_| {}, |e| assert!(matches!(e, ClientError::Log(LogError::InclusionProofInvalid)), "{e:?}"))
        .await;
    let mut w = World::new(3, vec![]);
    w.edit_inclusion = Some(Box::new(|p| p.proof = vouchsafe_log::InclusionProof::default().encode()));
    refused_first_sync(w, |_| {}, |e| assert!(matches!(e, ClientError::Log(LogError::InclusionProofInvalid)), "{e:?}"))
        .await;
    let mut w = World::new(3, vec![]);
    w.edit_inclusion = Some(Box::new(|p| p.proof.clear()));
    refused_first_sync(w, |_| {}, |e| assert!(matches!(e, ClientError::Log(LogError::Malformed { .. })), "{e:?}"))
        .await;
    // The order is not in the log at all (a log of another order).
    let keys = Keys::new(3);
    let mut t = keys.terms();
    t.order_id = [0x31; 16];
    let stranger = keys.sign(t);
    let mut w = World::new(3, vec![]);
    w.log = vouchsafe_log::Log::new();
    w.log.append(Leaf::new(LeafKind::Order, stranger.encode()).unwrap()).unwrap();
    w.log.append(Leaf::new(LeafKind::Manifest, w.current().signed.encode()).unwrap()).unwrap();
    w.log.append(Leaf::new(LeafKind::Manifest, w.current().signed.encode()).unwrap()).unwrap();
    w.publish();
    refused_first_sync(w, |_| {}, |e| assert!(matches!(e, ClientError::Log(LogError::InclusionProofInvalid)), "{e:?}"))
        .await;

    // One cosignature where the quorum is two.
    let mut w = World::new(3, vec![]);
    w.note_override = Some(w.keys.checkpoint(&w.log, &[1], now() as u64));
    refused_first_sync(
        w,
        |_| {},
        |e| assert!(matches!(e, ClientError::Log(LogError::QuorumNotMet { got: 1, need: 2 })), "{e:?}"),
    )
    .await;
    // Two lines of one witness count once.
    let mut w = World::new(3, vec![]);
    w.note_override = Some(w.keys.checkpoint(&w.log, &[2, 2], now() as u64));
    refused_first_sync(w, |_| {}, |e| assert!(matches!(e, ClientError::Log(LogError::QuorumNotMet { .. })), "{e:?}"))
        .await;
    // An old quorum, with a freshness limit configured.
    let mut w = World::new(3, vec![]);
    w.note_override = Some(w.keys.checkpoint(&w.log, &[0, 1], now() as u64 - 7200));
    refused_first_sync(
        w,
        |c| c.anchors.max_checkpoint_age = Some(Duration::from_secs(3600)),
        |e| assert!(matches!(e, ClientError::Log(LogError::Stale { .. })), "{e:?}"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_view_and_rollback_are_refused_also_across_reopen() {
    let server = FakeServer::new(World::new(4, vec![]));
    let dir = tempfile::tempdir().unwrap();
    let config = server.config(dir.path());
    let client = open(&server, config.clone()).await;
    client.sync().await.unwrap();
    let old_note = server.world().note.clone();

    // Split view: a cosigned checkpoint of the same size with another root.
    let fork = {
        let w = server.world();
        let mut log = vouchsafe_log::Log::new();
        for i in 0..3 {
            log.append(Leaf::new(LeafKind::Order, vec![i]).unwrap()).unwrap();
        }
        w.keys.checkpoint(&log, &[0, 1, 2], now() as u64)
    };
    server.world().note_override = Some(fork);
    assert!(matches!(client.sync().await, Err(ClientError::Log(LogError::SplitView { size: 3 }))));

    // The log grows; the device follows.
    server.world().note_override = None;
    server.world().update_table(vec![b"more".to_vec()], 6);
    client.sync().await.unwrap();
    assert_eq!(client.log_tree_head().unwrap().size, 4);

    // Rollback to the older checkpoint: refused, and again after a restart (the checkpoint was persisted).
    server.world().note_override = Some(old_note.clone());
    assert!(matches!(client.sync().await, Err(ClientError::Log(LogError::Rollback { seen: 4, offered: 3 }))));
    drop(client);
    let client = open(&server, config.clone()).await;
    assert!(matches!(client.sync().await, Err(ClientError::Log(LogError::Rollback { seen: 4, offered: 3 }))));
    // A consistency proof that does not prove anything.
    server.world().note_override = None;
    server.world().append(LeafKind::Release, b"next release".to_vec());
    let good = server.world().note.clone();
    let bogus_log = {
        let mut l = vouchsafe_log::Log::new();
        for i in 0..5 {
            l.append(Leaf::new(LeafKind::Order, vec![i]).unwrap()).unwrap();
        }
        l
    };
    let bogus = server.world().keys.checkpoint(&bogus_log, &[0, 1], now() as u64);
    server.world().note_override = Some(bogus);
    assert!(matches!(client.sync().await, Err(ClientError::Log(LogError::ConsistencyProofInvalid))));
    server.world().note_override = Some(good);
    client.sync().await.unwrap();
    assert_eq!(client.log_tree_head().unwrap().size, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_after_sync_stops_scan_and_submit_at_once_and_for_good() {
    let img = png(7, 96, 80);
    let server = FakeServer::new(World::new(5, vec![primary_of(&img)]));
    let dir = tempfile::tempdir().unwrap();
    let config = server.config(dir.path());
    let client = open(&server, config.clone()).await;
    client.sync().await.unwrap();
    client.scan(img.clone(), [1; 32], SystemTime::now(), &any()).await.unwrap();
    assert_eq!(client.outbox_len(), 1);
    let state = std::fs::read(vouchsafe_client::store::state_path(dir.path(), &ORDER)).unwrap();

    // A flipped revocation is refused and changes nothing.
    let rev = {
        let w = server.world();
        w.keys.revoke(&w.order).encode()
    };
    assert!(matches!(client.add_revocation(&flip(&rev, 50)).await, Err(ClientError::Order(_))));
    client.check_scan(&any(), SystemTime::now()).unwrap();
    // The app learns the revocation: effective at once, whatever the server keeps serving.
    assert!(client.add_revocation(&rev).await.unwrap());
    let e = client.scan(png(8, 96, 80), [2; 32], SystemTime::now(), &any()).await.unwrap_err();
    assert!(matches!(e, ClientError::Order(OrderError::Revoked { .. })), "{e:?}");
    let e = client.submit().await.unwrap_err();
    assert!(matches!(e, ClientError::Order(OrderError::Revoked { .. })), "{e:?}");
    assert_eq!(client.outbox_len(), 1);
    assert!(server.world().submitted.is_empty(), "nothing is sent after a revocation");
    assert_eq!(std::fs::read(vouchsafe_client::store::state_path(dir.path(), &ORDER)).unwrap(), state);
    // The server still serves the order without the revocation: sync refuses it too.
    assert!(matches!(client.sync().await, Err(ClientError::Order(OrderError::Revoked { .. }))));
    // Persisted: a restart does not forget it.
    drop(client);
    let client = open(&server, config.clone()).await;
    assert!(matches!(
        client.scan(img.clone(), [3; 32], SystemTime::now(), &any()).await,
        Err(ClientError::Order(OrderError::Revoked { .. }))
    ));

    // A revocation the server itself lists in the manifest, after a successful sync: the next sync refuses and
    // so does every scan.
    let server = FakeServer::new(World::new(6, vec![]));
    let dir = tempfile::tempdir().unwrap();
    let client = open(&server, server.config(dir.path())).await;
    client.sync().await.unwrap();
    {
        let mut w = server.world();
        let r = w.keys.revoke(&w.order);
        w.append(LeafKind::Revocation, r.encode());
        w.revocations = vec![r];
    }
    assert!(matches!(client.sync().await, Err(ClientError::Order(OrderError::Revoked { .. }))));
    assert!(matches!(
        client.scan(img, [4; 32], SystemTime::now(), &any()).await,
        Err(ClientError::Order(OrderError::Revoked { .. }))
    ));
    assert_eq!(client.outbox_len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_scope_and_excluded_class_are_checked_at_every_scan() {
    let keys = Keys::new(7);
    let mut t = keys.terms();
    t.scope = Scope::Components(vec!["chat".into()]);
    let order = keys.sign(t);
    let not_after = order.order().not_after();
    let server = FakeServer::new(World::with_order(keys, order, vec![], 7));
    let dir = tempfile::tempdir().unwrap();
    let config = server.config(dir.path());
    let client = open(&server, config.clone()).await;
    client.sync().await.unwrap();
    let chat = ScanContext::new().component("chat");
    client.scan(png(1, 96, 80), [1; 32], SystemTime::now(), &chat).await.unwrap();
    for ctx in [ScanContext::new(), ScanContext::new().component("channels"), ScanContext::new().group("chat")] {
        let e = client.scan(png(2, 96, 80), [2; 32], SystemTime::now(), &ctx).await.unwrap_err();
        assert!(matches!(e, ClientError::OutOfScope { scope: "components" }), "{ctx:?}: {e:?}");
    }
    // At not_after the order has ended (half-open window): nothing is made, even though the server serves on.
    let at_end = UNIX_EPOCH + Duration::from_secs(not_after as u64);
    let e = client.scan(png(3, 96, 80), [3; 32], at_end, &chat).await.unwrap_err();
    assert!(matches!(e, ClientError::Order(OrderError::Expired { .. })), "{e:?}");
    assert_eq!(client.outbox_len(), 1);
    drop(client);

    // The account turns out to be in an excluded class: scan and submit refuse.
    let mut excluded = config.clone();
    excluded.account_classes = vec!["state-security".into()];
    let client = open(&server, excluded).await;
    let e = client.scan(png(4, 96, 80), [4; 32], SystemTime::now(), &chat).await.unwrap_err();
    assert!(matches!(e, ClientError::Excluded { .. }), "{e:?}");
    assert!(matches!(client.submit().await, Err(ClientError::Excluded { .. })));
    assert!(server.world().submitted.is_empty());
    assert_eq!(client.outbox_len(), 1);
}
