//! Two `vouchsafe serve` replicas on one PostgreSQL database, behind a client that fails over from one to the
//! other; one of them killed with SIGKILL in the middle of the load. The survivor takes over the dead replica's
//! accounts once its claims lapse: every acknowledged batch is counted exactly once, alice's threshold is revealed
//! once, into exactly one case with exactly her real matches. Real gRPC on 127.0.0.1; every wait is bounded.
//!
//! Needs `VOUCHSAFE_TEST_POSTGRES` (scripts/test.sh starts a private cluster and sets it); without it the test
//! says it is skipped, and with `VOUCHSAFE_REQUIRE_POSTGRES=1` (CI) that is a failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // test code: a failure is the test failing

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::scenario::{scenario, submit};
use common::{connect, spawn_server, terminate};
use vouchsafe_store::{CaseFilter, InsertOutcome, PostgresOptions, PostgresStore, Store};

fn postgres_url() -> Option<String> {
    match std::env::var("VOUCHSAFE_TEST_POSTGRES") {
        Ok(url) => Some(url),
        Err(_) => {
            assert!(
                std::env::var("VOUCHSAFE_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "VOUCHSAFE_REQUIRE_POSTGRES=1 but VOUCHSAFE_TEST_POSTGRES is not set"
            );
            eprintln!("replicas: skipped: VOUCHSAFE_TEST_POSTGRES is not set (scripts/test.sh sets it)");
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_postgres_survive_a_sigkill_of_one_without_losing_or_doubling_anything() {
    let Some(url) = postgres_url() else { return };
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let schema = format!("replicas_{}_{nanos}", std::process::id());
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let sc = scenario(dir.path(), |c| {
        c.database = url.clone().into();
        c.postgres.schema = Some(schema.clone());
        // The dead replica's accounts are taken over two seconds after its last round.
        c.worker.claim_seconds = 2;
    });
    let batches = Arc::new(sc.batches);
    // Two configurations that differ in the worker's identity, its poll interval and the log directory (both
    // listen on a free port): each replica keeps its own copy of the log (docs/OPERATIONS.md §4).
    let config_of = |id: &str, poll_ms: u64| {
        let mut c = sc.config.clone();
        c.worker.id = Some(id.to_owned());
        c.worker.poll_interval_ms = poll_ms;
        c.log.dir = dir.path().join(format!("log-{id}"));
        let path = dir.path().join(format!("{id}.toml"));
        std::fs::write(&path, c.to_toml_string().unwrap_or_else(|e| panic!("{e}"))).unwrap_or_else(|e| panic!("{e}"));
        path
    };
    // Replica b's worker polls every 500 ms, a's every 20 ms: a claims alice's batches first and holds her claim
    // while the load goes on, so that killing it leaves claimed work for b to take over.
    let (config_a, config_b) = (config_of("replica-a", 20), config_of("replica-b", 500));
    let mut a = spawn_server(&config_a, &dir.path().join("a.log"));
    let b = spawn_server(&config_b, &dir.path().join("b.log"));
    let (client_a, client_b) = (connect(&a.addr).await, connect(&b.addr).await);

    // The load: batches alternately to each replica; a batch whose replica does not answer goes to the other, as
    // a load balancer's retry would (the same batch id: idempotent).
    let acked: Arc<Mutex<Vec<usize>>> = Arc::new(Mutex::new(Vec::new()));
    let failed_over = Arc::new(Mutex::new(0usize));
    let load = {
        let (batches, acked, failed_over) = (Arc::clone(&batches), Arc::clone(&acked), Arc::clone(&failed_over));
        let (mut ca, mut cb) = (client_a.clone(), client_b.clone());
        tokio::spawn(async move {
            for i in 0..batches.len() {
                let first = if i % 2 == 0 { &mut ca } else { &mut cb };
                let accepted = match submit(first, &batches[i]).await {
                    Ok(n) => n,
                    Err(_) => {
                        *failed_over.lock().unwrap_or_else(|e| e.into_inner()) += 1;
                        submit(&mut cb, &batches[i]).await.unwrap_or_else(|e| panic!("batch {i} on the survivor: {e}"))
                    }
                };
                assert_eq!(accepted as usize, batches[i].vouchers.len());
                acked.lock().unwrap_or_else(|e| e.into_inner()).push(i);
                // A little spacing so that the kill falls mid-load and both workers have rounds in flight.
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
        })
    };
    // The kill falls after 12 acknowledged batches, at a moment replica a holds a claim, so that its claimed work
    // is what the survivor must take over (or, if it holds none until then, just before the last batches).
    let options = PostgresOptions { connections: 2, schema: Some(schema.clone()), ca: None };
    let probe = PostgresStore::open_with(&url, &options).unwrap_or_else(|e| panic!("{e}"));
    let a_claims = || probe.debug_count("SELECT COUNT(*) FROM account_claim WHERE worker = 'replica-a'").unwrap();
    let start = Instant::now();
    let held = loop {
        let n = acked.lock().unwrap_or_else(|e| e.into_inner()).len();
        if n >= 12 {
            let held = a_claims();
            if held > 0 || n + 4 >= batches.len() {
                break held;
            }
        }
        assert!(start.elapsed() < Duration::from_secs(30), "the load did not reach 12 batches");
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    a.child.kill().unwrap_or_else(|e| panic!("kill: {e}"));
    eprintln!("replicas: replica a killed holding {held} claim(s)");
    let _ = a.child.wait();
    let killed_at = acked.lock().unwrap_or_else(|e| e.into_inner()).len();
    tokio::time::timeout(Duration::from_secs(60), load)
        .await
        .unwrap_or_else(|_| panic!("the load did not finish"))
        .unwrap_or_else(|e| panic!("load task: {e}"));
    assert!(killed_at >= 12 && killed_at < batches.len(), "the kill fell mid-load ({killed_at} of {})", batches.len());
    assert!(*failed_over.lock().unwrap_or_else(|e| e.into_inner()) > 0, "some batches failed over to the survivor");
    // A retry of an early batch, acknowledged by the dead replica, through the survivor: counted once.
    let mut cb = client_b.clone();
    assert_eq!(
        submit(&mut cb, &batches[0]).await.unwrap_or_else(|e| panic!("{e}")) as usize,
        batches[0].vouchers.len()
    );

    // The survivor drains the shared inbox, the dead replica's claimed accounts included (bounded wait).
    let start = Instant::now();
    loop {
        let pending = probe.stats().unwrap_or_else(|e| panic!("{e}")).batches_pending;
        if pending == 0 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "the survivor did not drain ({pending} pending)");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    terminate(b);

    let stats = probe.stats().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(stats.vouchers_received as usize, sc.total, "every voucher counted exactly once");
    let ca = probe.counters("alice").unwrap_or_else(|e| panic!("{e}"));
    let cb = probe.counters("bob").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((ca.received as usize, cb.received as usize), (sc.alice_vouchers, sc.bob_vouchers));
    assert_eq!((ca.opened, ca.invalid, cb.opened, cb.invalid), (6, 0, 0, 0));
    let cases = probe.list_cases(&CaseFilter::default()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cases.len(), 1, "exactly one case");
    assert_eq!(cases[0].account, "alice");
    let case = probe.get_case(cases[0].id).unwrap_or_else(|e| panic!("{e}")).unwrap_or_else(|| panic!("case"));
    let got: HashSet<[u8; 16]> = case.items.iter().map(|i| i.voucher_id).collect();
    assert_eq!(got, sc.expected_items, "the case holds exactly alice's real matches");
    let audit = probe.audit_entries(0, 100_000).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(audit.iter().filter(|e| e.action == "threshold.reveal").count(), 1, "one reveal");
    assert_eq!(audit.iter().filter(|e| e.action == "case.create").count(), 1, "one case created");
    probe.verify_audit_chain().unwrap_or_else(|e| panic!("audit chain: {e}"));
    // Every acknowledged batch is stored with its voucher count (done last: it is a write).
    for (i, bt) in batches.iter().enumerate() {
        let o = probe.insert_batch(bt.account, bt.id, &bt.vouchers, 0).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(o, InsertOutcome::Duplicate { vouchers: bt.vouchers.len() as u32 }, "batch {i} is in the store");
    }
}

/// Peak resident memory (Linux `VmHWM`, MiB) of a `vouchsafe serve` replica on PostgreSQL serving a table of 10⁶
/// indicators while its worker processes 10⁶ stored vouchers (random bytes of the voucher length: each is opened and
/// found invalid, which costs the worker the same memory as a real one). A measurement, not a check: run it by hand,
/// `VOUCHSAFE_TEST_POSTGRES=… cargo test --release --test replicas -- --ignored --nocapture` (about 5 GB of database,
/// several minutes); docs/PERFORMANCE.md has the figure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn peak_memory_of_a_replica_with_a_million_indicators_and_a_million_vouchers() {
    use rand::{Rng as _, SeedableRng as _};
    use vouchsafe_server::governance::{Fixture, FixtureSpec};
    use vouchsafe_store::NewBatch;
    const INDICATORS: u32 = 1_000_000;
    const VOUCHERS: usize = 1_000_000;
    const PER_BATCH: usize = 256;
    let Some(url) = postgres_url() else { return };
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let schema = format!("memory_{}_{nanos}", std::process::id());
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(5);
    let indicators: Vec<(Vec<u8>, Vec<u8>)> = (0..INDICATORS)
        .map(|i| {
            let y = format!("indicator {i:08}").into_bytes();
            (y.clone(), y)
        })
        .collect();
    let started = Instant::now();
    let mut fx = Fixture::create(dir.path(), FixtureSpec::new(indicators), &mut rng).unwrap_or_else(|e| panic!("{e}"));
    fx.config.database = url.clone().into();
    fx.config.postgres.schema = Some(schema.clone());
    fx.config.limits.max_vouchers_per_batch = PER_BATCH;
    fx.build_table(&mut rng).unwrap_or_else(|e| panic!("{e}"));
    let config_path = fx.write_config().unwrap_or_else(|e| panic!("{e}"));
    eprintln!("table of {INDICATORS} indicators built in {:.0} s", started.elapsed().as_secs_f64());
    let len = fx.config.voucher_len(fx.order.order().synthetic_cap());
    let order = *fx.order.order().order_id();
    let options = PostgresOptions { connections: 2, schema: Some(schema.clone()), ca: None };
    let store = PostgresStore::open_with(&url, &options).unwrap_or_else(|e| panic!("{e}"));
    let started = Instant::now();
    for b in 0..VOUCHERS.div_ceil(PER_BATCH) {
        let vouchers: Vec<Vec<u8>> = (0..PER_BATCH)
            .map(|_| {
                let mut v = vec![0u8; len];
                rng.fill_bytes(&mut v);
                v
            })
            .collect();
        let mut batch_id = [0u8; 16];
        batch_id[..8].copy_from_slice(&(b as u64).to_le_bytes());
        let account = format!("account-{}", b % 1000);
        let nb = NewBatch {
            account: &account,
            client_state: [1; 16],
            batch_id,
            vouchers: &vouchers,
            received_at: 1,
            state_limit: Some((order, 8)),
        };
        store.store_batch(&nb).unwrap_or_else(|e| panic!("{e}"));
    }
    eprintln!("{VOUCHERS} vouchers stored in {:.0} s", started.elapsed().as_secs_f64());
    let server = spawn_server(&config_path, &dir.path().join("memory.log"));
    let pid = server.child.id();
    let started = Instant::now();
    loop {
        if store.stats().unwrap_or_else(|e| panic!("{e}")).batches_pending == 0 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(3600), "not drained");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let hwm = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap_or("VmHWM: ?").to_owned();
    let rss = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap_or("VmRSS: ?").to_owned();
    eprintln!(
        "replica: {hwm} (peak), {rss} (now); {VOUCHERS} vouchers processed in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    terminate(server);
    let s = store.stats().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.vouchers_received as usize, VOUCHERS.div_ceil(PER_BATCH) * PER_BATCH);
}
