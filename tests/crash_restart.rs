//! `vouchsafe serve` as a child process, killed with SIGKILL in the middle of a load and restarted on the same
//! database: every acknowledged batch is in the store, nothing is counted twice, and the worker reaches exactly
//! the expected case. Real gRPC on 127.0.0.1; every wait is bounded.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // test code: a failure is the test failing

mod common;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{connect, spawn_server, terminate};
use image::DynamicImage;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use tonic::metadata::MetadataValue;
use vouchsafe_phash::{AssociatedData, HashConfig, fixtures, hash_image};
use vouchsafe_proto::v1;
use vouchsafe_proto::v1::matching_client::MatchingClient;
use vouchsafe_protocol::client::{ClientSession, ClientState, VoucherKind};
use vouchsafe_protocol::table::ClientTable;
use vouchsafe_server::AccountConfig;
use vouchsafe_server::governance::{Fixture, FixtureSpec};
use vouchsafe_store::{CaseFilter, InsertOutcome, SqliteStore, Store};

const ALICE: &str = "alice-token-crash-0123456789";
const BOB: &str = "bob-token-crash-0123456789ab";
const T: u16 = 4;
const PER_BATCH: usize = 8;

struct Batch {
    account: &'static str,
    token: &'static str,
    id: [u8; 16],
    vouchers: Vec<Vec<u8>>,
}

fn image_y_ad(seed: u64) -> (Vec<u8>, Vec<u8>) {
    let cfg = HashConfig::V1;
    let img = DynamicImage::ImageRgb8(fixtures::benign_image(seed, 96, 80));
    let h = hash_image(&cfg, &img).unwrap_or_else(|e| panic!("hash: {e}"));
    let ad = AssociatedData::new(&cfg, &h, [seed as u8; 32], 1_700_000_000 + seed)
        .unwrap_or_else(|e| panic!("ad: {e}"))
        .encode();
    (h.primary.to_canonical_bytes(), ad)
}

async fn submit(client: &mut MatchingClient<tonic::transport::Channel>, b: &Batch) -> Result<u32, tonic::Status> {
    let mut r = tonic::Request::new(v1::SubmitVouchersRequest {
        batch_id: b.id.to_vec(),
        vouchers: b.vouchers.clone(),
        client_state: vec![],
    });
    let v: MetadataValue<_> = format!("Bearer {}", b.token).parse().unwrap_or_else(|_| panic!("metadata"));
    r.metadata_mut().insert("authorization", v);
    r.set_timeout(Duration::from_secs(10));
    let ack = client.submit_vouchers(r).await?.into_inner();
    assert_eq!(ack.batch_id, b.id.to_vec(), "the acknowledgement names the batch");
    Ok(ack.accepted)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_load_loses_no_acknowledged_batch_and_reaches_the_same_case() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    // The order, the Centre's release (6 fixture images plus unrelated entries, each from two sources), the
    // provider's signed table: the governance fixture of the server crate.
    let mut rng = ChaCha20Rng::seed_from_u64(99);
    let matching: Vec<(Vec<u8>, Vec<u8>)> = (0..6).map(image_y_ad).collect();
    let others: Vec<(Vec<u8>, Vec<u8>)> = (200..240).map(image_y_ad).collect();
    // Each indicator's secondary hash is its image's: the server checks the item's against it after the threshold.
    let secondary =
        |ad: &[u8]| AssociatedData::decode(ad).unwrap_or_else(|e| panic!("{e}")).secondary().to_canonical_bytes();
    let mut indicators: Vec<(Vec<u8>, Vec<u8>)> = matching.iter().map(|m| (m.0.clone(), secondary(&m.1))).collect();
    indicators.extend((0u32..100).map(|i| {
        let y = format!("unrelated indicator {i}").into_bytes();
        (y.clone(), y)
    }));
    let mut spec = FixtureSpec::new(indicators);
    spec.threshold = T;
    spec.synthetic_cap = 2;
    let mut fx = Fixture::create(dir.path(), spec, &mut rng).unwrap_or_else(|e| panic!("{e}"));
    let c = &mut fx.config;
    c.chunk_slots = 64;
    c.worker.poll_interval_ms = 20;
    c.limits.max_vouchers_per_batch = PER_BATCH;
    c.limits.rate_burst = 100_000;
    c.limits.rate_vouchers_per_second = 100_000.0;
    c.accounts = vec![AccountConfig::new(ALICE, "alice"), AccountConfig::new(BOB, "bob")];
    fx.build_table(&mut rng).unwrap_or_else(|e| panic!("{e}"));
    let config_path: PathBuf = fx.write_config().unwrap_or_else(|e| panic!("{e}"));
    let c = fx.config.clone();
    let table = vouchsafe_server::load_table(&c.table).unwrap_or_else(|e| panic!("{e}"));
    let client_table = ClientTable::new(table.manifest(), table.slots().to_vec()).unwrap_or_else(|e| panic!("{e}"));

    // Vouchers: alice mixes the 6 matching images into 40 others; bob sends only others.
    let mut alice =
        ClientSession::new(ClientState::new(client_table.params(), &mut rng)).unwrap_or_else(|e| panic!("{e}"));
    let mut bob =
        ClientSession::new(ClientState::new(client_table.params(), &mut rng)).unwrap_or_else(|e| panic!("{e}"));
    let mut expected_items: HashSet<[u8; 16]> = HashSet::new();
    // Three passes over the photos: repeats become null vouchers, which the server must store and count all the same.
    let mut alice_vs = Vec::new();
    for (i, (y, ad)) in others.iter().chain(others.iter()).chain(others.iter()).enumerate() {
        if i % 7 == 3 && i / 7 < matching.len() {
            let (my, mad) = &matching[i / 7];
            let made = alice.voucher(&client_table, my, mad, &mut rng).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(made.kind, VoucherKind::Real);
            expected_items.insert(made.voucher.id);
            alice_vs.push(made.voucher.encode());
        }
        let made = alice.voucher(&client_table, y, ad, &mut rng).unwrap_or_else(|e| panic!("{e}"));
        alice_vs.push(made.voucher.encode());
    }
    assert_eq!(expected_items.len(), 6);
    let bob_vs: Vec<Vec<u8>> = others
        .iter()
        .chain(others.iter())
        .chain(others.iter())
        .map(|(y, ad)| bob.voucher(&client_table, y, ad, &mut rng).unwrap_or_else(|e| panic!("{e}")).voucher.encode())
        .collect();
    let mut batches: Vec<Batch> = Vec::new();
    let mut n = 0u8;
    let (mut ai, mut bi) = (alice_vs.chunks(PER_BATCH), bob_vs.chunks(PER_BATCH));
    loop {
        let (a, b) = (ai.next(), bi.next());
        if a.is_none() && b.is_none() {
            break;
        }
        for (acc, tok, chunk) in [("alice", ALICE, a), ("bob", BOB, b)] {
            if let Some(ch) = chunk {
                n += 1;
                batches.push(Batch { account: acc, token: tok, id: [n; 16], vouchers: ch.to_vec() });
            }
        }
    }
    assert!(batches.len() >= 30);
    let total: usize = batches.iter().map(|b| b.vouchers.len()).sum();

    // First run: submit a few batches, then keep submitting from a task and SIGKILL the server under load.
    let log1 = dir.path().join("server1.log");
    let mut proc1 = spawn_server(&config_path, &log1);
    let mut client = connect(&proc1.addr).await;
    let acked: Arc<Mutex<Vec<usize>>> = Arc::new(Mutex::new(Vec::new()));
    for (i, b) in batches.iter().enumerate().take(4) {
        let accepted = submit(&mut client, b).await.unwrap_or_else(|e| panic!("submit {i}: {e}"));
        assert_eq!(accepted as usize, b.vouchers.len());
        acked.lock().unwrap_or_else(|e| e.into_inner()).push(i);
    }
    let batches = Arc::new(batches);
    let load = {
        let (batches, acked, mut client) = (Arc::clone(&batches), Arc::clone(&acked), client.clone());
        tokio::spawn(async move {
            for i in 4..batches.len() {
                match submit(&mut client, &batches[i]).await {
                    Ok(_) => acked.lock().unwrap_or_else(|e| e.into_inner()).push(i),
                    Err(_) => return,
                }
            }
        })
    };
    // Kill once the load has moved on a little (bounded wait), while the worker is processing.
    let start = Instant::now();
    while acked.lock().unwrap_or_else(|e| e.into_inner()).len() < 10 && start.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    proc1.child.kill().unwrap_or_else(|e| panic!("kill: {e}"));
    let _ = proc1.child.wait();
    let _ = tokio::time::timeout(Duration::from_secs(30), load).await;
    let acked_before: Vec<usize> = acked.lock().unwrap_or_else(|e| e.into_inner()).clone();
    assert!(acked_before.len() >= 10, "load was running when the server was killed");
    assert!(
        acked_before.len() < batches.len(),
        "the kill happened mid-load ({} of {} acknowledged)",
        acked_before.len(),
        batches.len()
    );

    // Restart on the same database; resubmit everything not acknowledged (a client does exactly that, with the
    // same batch ids), then a duplicate of an acknowledged batch, which must count once.
    let proc2 = spawn_server(&config_path, &dir.path().join("server2.log"));
    let mut client = connect(&proc2.addr).await;
    for (i, b) in batches.iter().enumerate() {
        if acked_before.contains(&i) {
            continue;
        }
        let accepted = submit(&mut client, b).await.unwrap_or_else(|e| panic!("resubmit {i}: {e}"));
        assert_eq!(accepted as usize, b.vouchers.len());
    }
    let dup = &batches[acked_before[0]];
    assert_eq!(submit(&mut client, dup).await.unwrap_or_else(|e| panic!("{e}")) as usize, dup.vouchers.len());

    // Wait (bounded) until the restarted worker has drained the inbox.
    {
        let probe = SqliteStore::open(&c.database).unwrap_or_else(|e| panic!("{e}"));
        let start = Instant::now();
        loop {
            let pending = probe.stats().unwrap_or_else(|e| panic!("{e}")).batches_pending;
            if pending == 0 {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(60), "worker did not drain ({pending} pending)");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
    terminate(proc2);

    // The server is stopped: inspect the database.
    let store = SqliteStore::open(&c.database).unwrap_or_else(|e| panic!("{e}"));
    let stats = store.stats().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(stats.batches_pending, 0);
    assert_eq!(stats.vouchers_received as usize, total, "every voucher counted exactly once");
    let a = store.counters("alice").unwrap_or_else(|e| panic!("{e}"));
    let b = store.counters("bob").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(a.received as usize, alice_vs.len());
    assert_eq!(b.received as usize, bob_vs.len());
    assert_eq!((a.opened, a.invalid, b.opened, b.invalid), (6, 0, 0, 0));
    assert_eq!(a.non_matches as usize, alice_vs.len() - 6);
    let cases = store.list_cases(&CaseFilter::default()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cases.len(), 1, "exactly one case");
    assert_eq!(cases[0].account, "alice");
    let case = store.get_case(cases[0].id).unwrap_or_else(|e| panic!("{e}")).unwrap_or_else(|| panic!("case"));
    let got: HashSet<[u8; 16]> = case.items.iter().map(|i| i.voucher_id).collect();
    assert_eq!(got, expected_items, "the case holds exactly alice's real matches");
    store.verify_audit_chain().unwrap_or_else(|e| panic!("audit chain: {e}"));
    // Every acknowledged batch (before and after the crash) is stored, with its voucher count: inserting it again
    // is a duplicate. (Done last: it is a write.)
    for (i, bt) in batches.iter().enumerate() {
        let o = store.insert_batch(bt.account, bt.id, &bt.vouchers, 0).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(o, InsertOutcome::Duplicate { vouchers: bt.vouchers.len() as u32 }, "batch {i} is in the store");
    }
}
