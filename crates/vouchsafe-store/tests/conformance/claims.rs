//! Claims: several workers (replicas) on one database process each account in one place at a time, each batch
//! once, and take over the accounts of a worker whose claims lapsed.

use std::collections::HashMap;
use std::sync::{Arc, Barrier};

use vouchsafe_store::*;

use crate::support::{Backend, conformance};

fn claim(worker: &str, now: i64) -> Claim<'_> {
    Claim { worker, now, until: now + 30 }
}

fn none(_: &str, _: &[u8; 16]) -> Option<Vec<Vec<u8>>> {
    None
}

fn results(b: &InboxBatch) -> BatchResults {
    BatchResults { non_matches: b.vouchers.len() as u64, ..Default::default() }
}

fn ids(batches: &[InboxBatch]) -> Vec<(String, u8)> {
    batches.iter().map(|b| (b.account.clone(), b.batch_id[0])).collect()
}

fn claims_keep_each_account_with_one_worker_until_they_lapse(b: &Backend) {
    let s = &*b.store;
    for (account, id) in [("alice", 1u8), ("bob", 2), ("alice", 3), ("carol", 4)] {
        s.insert_batch(account, [id; 16], &[vec![id; 8]], 10).unwrap();
    }
    // w1 takes the oldest batch, and with it alice.
    let w1 = s.claim_batches(&claim("w1", 100), 1, None, &mut none).unwrap();
    assert_eq!(ids(&w1), [("alice".to_owned(), 1)]);
    assert_eq!(w1[0].vouchers, vec![vec![1u8; 8]]);
    // w2 gets every other account's batches, not alice's.
    let w2 = s.claim_batches(&claim("w2", 100), 10, None, &mut none).unwrap();
    assert_eq!(ids(&w2), [("bob".to_owned(), 2), ("carol".to_owned(), 4)]);
    // w1 gets alice's next batch; nothing of bob's or carol's.
    let w1b = s.claim_batches(&claim("w1", 101), 10, Some(w1[0].id), &mut none).unwrap();
    assert_eq!(ids(&w1b), [("alice".to_owned(), 3)]);

    // w2 cannot complete alice's batch (w1 holds alice): refused, and nothing changes.
    let before = b.dump();
    let r = s.complete_claimed(&claim("w2", 102), &[(w1[0].id, &results(&w1[0]))], 102);
    assert_eq!(r.unwrap_err().to_string(), "conflict: the worker's claim on the account lapsed");
    assert_eq!(b.dump(), before, "a refused completion changes nothing");
    // Nor can a case be filed for alice under w2's name; under w1's it can.
    let case = |worker, at| NewCase {
        account: "alice",
        order_id: [7; 16],
        created_at: at,
        items: &[],
        actor: "server",
        four_eyes: false,
        claimed_by: Some(worker),
    };
    let r = s.create_case(&case("w2", 102));
    assert_eq!(r.unwrap_err().to_string(), "conflict: the worker's claim on the account lapsed");
    assert_eq!(b.dump(), before);
    s.create_case(&case("w1", 102)).unwrap();

    // w2 completes its own; its claims on bob and carol, who have nothing left, are released.
    let list: Vec<(InboxId, BatchResults)> = w2.iter().map(|b| (b.id, results(b))).collect();
    let refs: Vec<(InboxId, &BatchResults)> = list.iter().map(|(i, r)| (*i, r)).collect();
    let out = s.complete_claimed(&claim("w2", 103), &refs, 103).unwrap();
    assert!(out.iter().all(|o| matches!(o, CompleteOutcome::Completed { .. })));
    assert_eq!(s.release_claims("w2").unwrap(), 0, "nothing left to release");

    // w1 stalls: its claims (until 131) lapse, and w2 takes alice over at 132.
    let taken = s.claim_batches(&claim("w2", 132), 10, None, &mut none).unwrap();
    assert_eq!(ids(&taken), [("alice".to_owned(), 1), ("alice".to_owned(), 3)]);
    let r = s.complete_claimed(&claim("w1", 133), &[(w1[0].id, &results(&w1[0]))], 133);
    assert!(matches!(r, Err(StoreError::Conflict(_))), "{r:?}");
    assert!(matches!(s.create_case(&case("w1", 133)), Err(StoreError::Conflict(_))));
    let list: Vec<(InboxId, BatchResults)> = taken.iter().map(|b| (b.id, results(b))).collect();
    let refs: Vec<(InboxId, &BatchResults)> = list.iter().map(|(i, r)| (*i, r)).collect();
    s.complete_claimed(&claim("w2", 134), &refs, 134).unwrap();
    // Once processed, a batch is AlreadyProcessed for anyone, and the lapsed worker's late completion changes
    // nothing.
    let out = s.complete_claimed(&claim("w1", 135), &[(w1[0].id, &results(&w1[0]))], 135).unwrap();
    assert_eq!(out, [CompleteOutcome::AlreadyProcessed]);
    assert_eq!(s.counters("alice").unwrap().received, 2);
    assert_eq!(s.backlog().unwrap().batches, 0);

    // A claim held at shutdown is released at once.
    s.insert_batch("dave", [9; 16], &[vec![9]], 140).unwrap();
    assert_eq!(s.claim_batches(&claim("w1", 140), 10, None, &mut none).unwrap().len(), 1);
    assert!(s.claim_batches(&claim("w2", 141), 10, None, &mut none).unwrap().is_empty());
    assert_eq!(s.release_claims("w1").unwrap(), 1);
    assert_eq!(s.claim_batches(&claim("w2", 142), 10, None, &mut none).unwrap().len(), 1);

    // Bad claims are refused.
    let bad = Claim { worker: "", now: 1, until: 2 };
    assert!(matches!(s.claim_batches(&bad, 1, None, &mut none), Err(StoreError::InvalidArgument(_))));
    let bad = Claim { worker: "w1", now: 5, until: 4 };
    assert!(matches!(s.complete_claimed(&bad, &[], 5), Err(StoreError::InvalidArgument(_))));
}

/// Two workers on two stores (as two processes) drain one inbox concurrently: every batch is completed exactly once,
/// by one of them, and every account's counters add up.
fn concurrent_workers_complete_every_batch_exactly_once(b: &Backend) {
    const ACCOUNTS: u8 = 6;
    const BATCHES: u8 = 60;
    let s = &*b.store;
    let mut expected: HashMap<String, u64> = HashMap::new();
    for i in 0..BATCHES {
        let account = format!("acct-{}", i % ACCOUNTS);
        let n = 1 + (i as usize % 3);
        s.insert_batch(&account, [i; 16], &vec![vec![i; 4]; n], 1).unwrap();
        *expected.entry(account).or_default() += n as u64;
    }
    let stores: Vec<Arc<dyn Store>> = vec![Arc::clone(&b.store), b.reopen()];
    let start = Arc::new(Barrier::new(stores.len()));
    let handles: Vec<_> = stores
        .into_iter()
        .enumerate()
        .map(|(w, store)| {
            let start = Arc::clone(&start);
            std::thread::spawn(move || {
                let worker = format!("worker-{w}");
                let mut completed = Vec::new();
                start.wait();
                for round in 0..1000i64 {
                    let c = Claim { worker: &worker, now: 1000 + round, until: 100_000 };
                    let batches = store.claim_batches(&c, 4, None, &mut none).unwrap();
                    if batches.is_empty() {
                        if store.backlog().unwrap().batches == 0 {
                            break;
                        }
                        std::thread::yield_now();
                        continue;
                    }
                    let list: Vec<(InboxId, BatchResults)> = batches.iter().map(|b| (b.id, results(b))).collect();
                    let refs: Vec<(InboxId, &BatchResults)> = list.iter().map(|(i, r)| (*i, r)).collect();
                    let out = store.complete_claimed(&c, &refs, 2).unwrap();
                    for (b, o) in batches.iter().zip(out) {
                        assert!(matches!(o, CompleteOutcome::Completed { .. }), "claimed batches are this worker's");
                        completed.push(b.batch_id[0]);
                    }
                }
                completed
            })
        })
        .collect();
    let mut all: Vec<u8> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
    all.sort_unstable();
    assert_eq!(all, (0..BATCHES).collect::<Vec<_>>(), "every batch completed once");
    for (account, n) in expected {
        assert_eq!(s.counters(&account).unwrap().received, n, "{account}");
    }
    assert_eq!(s.backlog().unwrap().batches, 0);
}

/// Two stores (two replicas' intakes) store batches of the same accounts and client states at the same time, with
/// the client-state limit on: every batch is stored once, none is refused, and retries are duplicates.
fn concurrent_intake_of_one_account_from_two_replicas(b: &Backend) {
    let stores: Vec<Arc<dyn Store>> = vec![Arc::clone(&b.store), b.reopen()];
    let start = Arc::new(Barrier::new(stores.len()));
    let handles: Vec<_> = stores
        .into_iter()
        .enumerate()
        .map(|(w, store)| {
            let start = Arc::clone(&start);
            std::thread::spawn(move || {
                start.wait();
                for i in 0..40u8 {
                    let batch = NewBatch {
                        account: if i % 2 == 0 { "alice" } else { "bob" },
                        client_state: [i % 3; 16],
                        batch_id: [w as u8 * 100 + i; 16],
                        vouchers: &[vec![i; 8]],
                        received_at: 1,
                        state_limit: Some(([7; 16], 8)),
                    };
                    assert_eq!(store.store_batch(&batch).unwrap(), InsertOutcome::Inserted { vouchers: 1 });
                    assert_eq!(store.store_batch(&batch).unwrap(), InsertOutcome::Duplicate { vouchers: 1 });
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(b.store.backlog().unwrap().batches, 80);
}

conformance!(
    concurrent_intake_of_one_account_from_two_replicas,
    claims_keep_each_account_with_one_worker_until_they_lapse,
    concurrent_workers_complete_every_batch_exactly_once,
);
