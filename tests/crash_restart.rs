//! `vouchsafe serve` as a child process, killed with SIGKILL in the middle of a load and restarted on the same
//! database: every acknowledged batch is in the store, nothing is counted twice, and the worker reaches exactly
//! the expected case. Real gRPC on 127.0.0.1; every wait is bounded.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // test code: a failure is the test failing

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::scenario::{scenario, submit};
use common::{connect, spawn_server, terminate};
use vouchsafe_store::{CaseFilter, InsertOutcome, SqliteStore, Store};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_load_loses_no_acknowledged_batch_and_reaches_the_same_case() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let sc = scenario(dir.path(), |_| {});
    let (config_path, c, batches, total) = (sc.config_path, sc.config, sc.batches, sc.total);
    let expected_items = sc.expected_items;

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
    assert_eq!(a.received as usize, sc.alice_vouchers);
    assert_eq!(b.received as usize, sc.bob_vouchers);
    assert_eq!((a.opened, a.invalid, b.opened, b.invalid), (6, 0, 0, 0));
    assert_eq!(a.non_matches as usize, sc.alice_vouchers - 6);
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
