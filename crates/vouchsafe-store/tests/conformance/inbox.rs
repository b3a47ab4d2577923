//! The inbox, per-account data, cases, the audit log and statistics: the contract of the store's first half.

use std::sync::Arc;

use vouchsafe_store::*;

use crate::support::{Backend, conformance};

const ORDER_A: [u8; 16] = [0xa1; 16];
const ORDER_B: [u8; 16] = [0xb2; 16];

fn vouchers(n: usize, tag: u8) -> Vec<Vec<u8>> {
    (0..n).map(|i| vec![tag, i as u8, 0x55, 0xaa]).collect()
}

fn opened(order: [u8; 16], id: u8, payload: &[u8]) -> OpenedVoucher {
    OpenedVoucher { order_id: order, voucher_id: [id; 16], payload: payload.to_vec() }
}

fn insert_is_idempotent_per_account_and_batch_id(b: &Backend) {
    let s = &*b.store;
    let first = vouchers(3, 1);
    assert_eq!(s.insert_batch("alice", [1; 16], &first, 10).unwrap(), InsertOutcome::Inserted { vouchers: 3 });
    // A retry with the same contents is a duplicate and keeps the first batch.
    let r = s.insert_batch("alice", [1; 16], &first, 11).unwrap();
    assert_eq!(r, InsertOutcome::Duplicate { vouchers: 3 });
    assert_eq!(r.vouchers(), 3);
    // The same id with other contents is refused, not silently answered with the first batch's acknowledgement.
    assert!(matches!(s.insert_batch("alice", [1; 16], &vouchers(5, 9), 11), Err(StoreError::BatchConflict)));
    // Same batch id from another account is a different batch.
    assert_eq!(s.insert_batch("bob", [1; 16], &vouchers(2, 2), 12).unwrap(), InsertOutcome::Inserted { vouchers: 2 });

    let pending = s.next_unprocessed(10).unwrap();
    assert_eq!(pending.len(), 2);
    assert_eq!(pending[0].account, "alice");
    assert_eq!(pending[0].vouchers, first);
    assert_eq!(pending[0].received_at, 10);
    assert_eq!(pending[1].account, "bob");
    assert_eq!(s.next_unprocessed(1).unwrap().len(), 1);
    assert_eq!(s.stats().unwrap().batches_pending, 2);
}

fn invalid_arguments_are_rejected(b: &Backend) {
    let s = &*b.store;
    assert!(matches!(s.insert_batch("", [0; 16], &[], 0), Err(StoreError::InvalidArgument(_))));
    let long = "x".repeat(513);
    assert!(matches!(s.insert_batch(&long, [0; 16], &[], 0), Err(StoreError::InvalidArgument(_))));
    assert!(matches!(s.complete_batch(InboxId(42), &BatchResults::default(), 0), Err(StoreError::NotFound(_))));
}

fn replayed_opened_voucher_is_stored_once_and_counted_invalid(b: &Backend) {
    let s = &*b.store;
    for (i, batch) in [[1u8; 16], [2u8; 16]].into_iter().enumerate() {
        s.insert_batch("alice", batch, &vouchers(1, i as u8), 1).unwrap();
    }
    let pending = s.next_unprocessed(10).unwrap();
    let res = BatchResults { opened: vec![opened(ORDER_A, 3, b"p")], ..Default::default() };
    assert_eq!(
        s.complete_batch(pending[0].id, &res, 2).unwrap(),
        CompleteOutcome::Completed { opened_new: 1, opened_duplicate: 0 }
    );
    assert_eq!(
        s.complete_batch(pending[1].id, &res, 2).unwrap(),
        CompleteOutcome::Completed { opened_new: 0, opened_duplicate: 1 }
    );
    assert_eq!(s.opened_vouchers("alice", ORDER_A).unwrap().len(), 1);
    assert_eq!(s.counters("alice").unwrap(), Counters { received: 2, non_matches: 0, opened: 1, invalid: 1 });
}

fn cases_lifecycle(b: &Backend) {
    let s = &*b.store;
    let items =
        [CaseItem { voucher_id: [1; 16], ad: b"ad1".to_vec() }, CaseItem { voucher_id: [2; 16], ad: b"ad2".to_vec() }];
    let c1 = s
        .create_case(&NewCase {
            account: "alice",
            order_id: ORDER_A,
            created_at: 10,
            items: &items,
            actor: "server",
            four_eyes: false,
            claimed_by: None,
        })
        .unwrap();
    let c2 = s
        .create_case(&NewCase {
            account: "bob",
            order_id: ORDER_B,
            created_at: 11,
            items: &[],
            actor: "server",
            four_eyes: false,
            claimed_by: None,
        })
        .unwrap();
    assert_ne!(c1, c2);

    // Duplicate voucher ids are ignored, new ones appended in order.
    s.add_case_items(
        c1,
        &[
            CaseItem { voucher_id: [2; 16], ad: b"other".to_vec() },
            CaseItem { voucher_id: [3; 16], ad: b"ad3".to_vec() },
        ],
    )
    .unwrap();
    let case = s.get_case(c1).unwrap().unwrap();
    let ids: Vec<u8> = case.items.iter().map(|i| i.voucher_id[0]).collect();
    assert_eq!(ids, [1, 2, 3]);
    assert_eq!(case.items[1].ad, b"ad2");
    assert_eq!(case.summary.items, 3);
    assert_eq!(case.summary.status, CaseStatus::Open);
    assert!(matches!(s.add_case_items(CaseId(999), &items), Err(StoreError::NotFound(_))));
    assert!(s.get_case(CaseId(999)).unwrap().is_none());

    let all = s.list_cases(&CaseFilter::default()).unwrap();
    assert_eq!(all.iter().map(|c| c.id).collect::<Vec<_>>(), [c1, c2]);
    let bobs = s.list_cases(&CaseFilter { account: Some("bob".into()), ..Default::default() }).unwrap();
    assert_eq!(bobs.len(), 1);
    assert_eq!(bobs[0].id, c2);
    let in_a = s.list_cases(&CaseFilter { order_id: Some(ORDER_A), ..Default::default() }).unwrap();
    assert_eq!(in_a.len(), 1);
    assert_eq!(in_a[0].id, c1);

    let decide = |status| CaseDecision { status, reviewer: "rev1", reason: "matches indicator", at: 20 };
    assert!(matches!(s.set_case_status(c1, &decide(CaseStatus::Open)), Err(StoreError::InvalidTransition)));
    s.set_case_status(c1, &decide(CaseStatus::Confirmed)).unwrap();
    assert!(matches!(s.set_case_status(c1, &decide(CaseStatus::Confirmed)), Err(StoreError::InvalidTransition)));
    s.set_case_status(c2, &decide(CaseStatus::Rejected)).unwrap();
    assert!(matches!(s.set_case_status(CaseId(999), &decide(CaseStatus::Rejected)), Err(StoreError::NotFound(_))));

    let c = s.get_case(c1).unwrap().unwrap().summary;
    assert_eq!(c.status, CaseStatus::Confirmed);
    assert_eq!(c.reviewer.as_deref(), Some("rev1"));
    assert_eq!(c.reason.as_deref(), Some("matches indicator"));
    assert_eq!(c.decided_at, Some(20));
    let open = s.list_cases(&CaseFilter { status: Some(CaseStatus::Open), ..Default::default() }).unwrap();
    assert!(open.is_empty());

    // Reversal (e.g. upheld appeal) is allowed.
    s.set_case_status(c1, &decide(CaseStatus::Rejected)).unwrap();
    let st = s.stats().unwrap();
    assert_eq!((st.cases_open, st.cases_confirmed, st.cases_rejected), (0, 0, 2));

    // Every step is audited, without the reviewer's free-text reason.
    let log = s.audit_entries(0, 100).unwrap();
    let actions: Vec<&str> = log.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(actions, ["case.create", "case.create", "case.status", "case.status", "case.status"]);
    assert!(log.iter().all(|r| !r.detail.contains("matches indicator")));
    assert_eq!(log[2].actor, "rev1");
    assert_eq!(s.verify_audit_chain().unwrap().entries, 5);
}

fn stats_add_up(b: &Backend) {
    let s = &*b.store;
    for (acct, n) in [("a", 3usize), ("b", 2)] {
        s.insert_batch(acct, [1; 16], &vouchers(n, 0), 1).unwrap();
    }
    for b in s.next_unprocessed(10).unwrap() {
        let n = b.vouchers.len() as u64;
        let res =
            BatchResults { non_matches: n - 1, opened: vec![opened(ORDER_A, n as u8, b"p")], ..Default::default() };
        s.complete_batch(b.id, &res, 2).unwrap();
    }
    s.insert_batch("a", [2; 16], &vouchers(1, 0), 3).unwrap();
    let st = s.stats().unwrap();
    assert_eq!(
        st,
        GlobalStats {
            accounts: 2,
            vouchers_received: 5,
            non_matches: 3,
            opened: 2,
            invalid: 0,
            batches_pending: 1,
            bytes_pending: 4,
            ..Default::default()
        }
    );
}

fn id_only_queries(b: &Backend) {
    let s = &*b.store;
    s.insert_batch("alice", [1; 16], &vouchers(3, 1), 1).unwrap();
    let b = s.next_unprocessed(1).unwrap().remove(0);
    let res = BatchResults {
        non_matches: 1,
        opened: vec![opened(ORDER_A, 1, b"p1"), opened(ORDER_B, 2, b"p2")],
        ..Default::default()
    };
    s.complete_batch(b.id, &res, 2).unwrap();
    assert_eq!(s.opened_voucher_ids("alice", DEFAULT_CLIENT_STATE, ORDER_A).unwrap(), vec![[1; 16]]);
    assert_eq!(s.opened_voucher_ids("alice", DEFAULT_CLIENT_STATE, ORDER_B).unwrap(), vec![[2; 16]]);
    assert!(s.opened_voucher_ids("bob", DEFAULT_CLIENT_STATE, ORDER_A).unwrap().is_empty());

    assert!(s.case_voucher_ids("alice", ORDER_A).unwrap().is_empty());
    let item = |id: u8| CaseItem { voucher_id: [id; 16], ad: vec![id; 8] };
    let c = s
        .create_case(&NewCase {
            account: "alice",
            order_id: ORDER_A,
            created_at: 3,
            items: &[item(1), item(3)],
            actor: "server",
            four_eyes: false,
            claimed_by: None,
        })
        .unwrap();
    s.add_case_items(c, &[item(4)]).unwrap();
    s.create_case(&NewCase {
        account: "alice",
        order_id: ORDER_B,
        created_at: 3,
        items: &[item(9)],
        actor: "server",
        four_eyes: false,
        claimed_by: None,
    })
    .unwrap();
    let mut ids = s.case_voucher_ids("alice", ORDER_A).unwrap();
    ids.sort();
    assert_eq!(ids, vec![[1; 16], [3; 16], [4; 16]]);
    assert_eq!(s.case_voucher_ids("alice", ORDER_B).unwrap(), vec![[9; 16]]);
    assert!(s.case_voucher_ids("bob", ORDER_A).unwrap().is_empty());
}

fn store_is_shareable_across_threads(b: &Backend) {
    let s: Arc<dyn Store> = Arc::clone(&b.store);
    let handles: Vec<_> = (0..4u8)
        .map(|t| {
            let s = Arc::clone(&s);
            std::thread::spawn(move || {
                for i in 0..25u8 {
                    let mut id = [t; 16];
                    id[15] = i;
                    // Every batch is submitted twice, as a retrying client would.
                    s.insert_batch("acct", id, &vouchers(2, i), 1).unwrap();
                    s.insert_batch("acct", id, &vouchers(2, i), 1).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(s.next_unprocessed(1000).unwrap().len(), 100);
}

/// Cover writes store what an opened row stores: a cover row's payload (zeros) takes as much room as an opened
/// row's (encrypted, here random) payload of the same length, not what compression would make of zeros.
fn cover_rows_are_stored_as_large_as_opened_rows(b: &Backend) {
    let s = &*b.store;
    let len = 4830;
    s.insert_batch("alice", [1; 16], &vouchers(8, 1), 1).unwrap();
    let p = s.next_unprocessed(1).unwrap();
    let mut payload = vec![0u8; len];
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for byte in &mut payload {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *byte = x as u8;
    }
    let results = BatchResults {
        non_matches: 7,
        opened: vec![OpenedVoucher { order_id: ORDER_A, voucher_id: [3; 16], payload }],
        cover_payload_len: len,
        ..Default::default()
    };
    s.complete_batch(p[0].id, &results, 2).unwrap();
    let size = |table: &str, agg: &str| b.count(&format!("SELECT {agg}({}) FROM {table}", b.stored_size("payload")));
    assert_eq!(b.count("SELECT COUNT(*) FROM store_cover"), 7, "one cover row per voucher that wrote no opened row");
    let opened = size("opened_voucher", "MIN");
    assert!(opened >= len as i64, "the opened payload is stored whole ({opened} bytes)");
    assert_eq!((size("store_cover", "MIN"), size("store_cover", "MAX")), (opened, opened), "cover rows as large");
}

/// The cover rows are never read, and their table does not grow with the vouchers processed: SQLite rewrites a
/// ring of 8192 slots, PostgreSQL empties the table every 32 batch ids. 72 batches of 130 vouchers (9360 cover rows)
/// leave at most 8192, and every batch is counted.
fn cover_table_stays_bounded(b: &Backend) {
    let s = &*b.store;
    let (batches, per) = (72u8, 130u64);
    for i in 0..batches {
        s.insert_batch("alice", [i; 16], &vouchers(per as usize, i), 1).unwrap();
        let p = s.next_unprocessed(1).unwrap();
        let results = BatchResults { non_matches: per, cover_payload_len: 64, ..Default::default() };
        assert!(matches!(s.complete_batch(p[0].id, &results, 2).unwrap(), CompleteOutcome::Completed { .. }));
    }
    let rows = b.count("SELECT COUNT(*) FROM store_cover");
    assert!(rows > 0 && rows <= 8192, "cover rows kept: {rows} of {}", u64::from(batches) * per);
    assert_eq!(s.counters("alice").unwrap().received, u64::from(batches) * per);
    assert!(s.next_unprocessed(1).unwrap().is_empty());
}

fn complete_batches_is_all_or_nothing(b: &Backend) {
    let s = &*b.store;
    s.insert_batch("alice", [1; 16], &vouchers(2, 1), 1).unwrap();
    s.insert_batch("bob", [1; 16], &vouchers(3, 2), 1).unwrap();
    s.insert_batch("alice", [2; 16], &vouchers(1, 3), 1).unwrap();
    let p = s.next_unprocessed(10).unwrap();
    assert_eq!(p.len(), 3);
    let good_a = BatchResults {
        non_matches: 1,
        opened: vec![opened(ORDER_A, 1, b"a1")],
        state: vec![StateUpdate { order_id: ORDER_A, state: b"sa".to_vec() }],
        ..Default::default()
    };
    let good_b = BatchResults { non_matches: 3, ..Default::default() };
    let bad = BatchResults::default(); // does not account for the voucher
    let err = s.complete_batches(&[(p[0].id, &good_a), (p[1].id, &good_b), (p[2].id, &bad)], 5);
    assert!(matches!(err, Err(StoreError::InvalidArgument(_))), "{err:?}");
    // Nothing of the first two batches was applied.
    assert_eq!(s.counters("alice").unwrap(), Counters::default());
    assert_eq!(s.counters("bob").unwrap(), Counters::default());
    assert!(s.opened_voucher_ids("alice", DEFAULT_CLIENT_STATE, ORDER_A).unwrap().is_empty());
    assert!(s.account_state("alice", DEFAULT_CLIENT_STATE, ORDER_A).unwrap().is_none());
    assert_eq!(s.next_unprocessed(10).unwrap(), p);

    let good_c = BatchResults { opened: vec![opened(ORDER_A, 1, b"a1-replayed")], ..Default::default() };
    let out = s.complete_batches(&[(p[0].id, &good_a), (p[1].id, &good_b), (p[2].id, &good_c)], 6).unwrap();
    assert_eq!(
        out,
        vec![
            CompleteOutcome::Completed { opened_new: 1, opened_duplicate: 0 },
            CompleteOutcome::Completed { opened_new: 0, opened_duplicate: 0 },
            // Same (account, order, voucher id) as in the first batch of the same transaction.
            CompleteOutcome::Completed { opened_new: 0, opened_duplicate: 1 },
        ]
    );
    assert_eq!(s.counters("alice").unwrap(), Counters { received: 3, non_matches: 1, opened: 1, invalid: 1 });
    assert_eq!(s.counters("bob").unwrap().non_matches, 3);
    assert!(s.next_unprocessed(10).unwrap().is_empty());
    // Again: every batch is already processed, nothing changes.
    assert_eq!(
        s.complete_batches(&[(p[0].id, &good_a), (p[2].id, &good_c)], 7).unwrap(),
        vec![CompleteOutcome::AlreadyProcessed; 2]
    );
    assert_eq!(s.counters("alice").unwrap().received, 3);
    assert!(s.complete_batches(&[], 8).unwrap().is_empty());
}

fn append_audits_chains_in_order_and_is_all_or_nothing(b: &Backend) {
    let s = &*b.store;
    s.append_audit(&AuditEntry { at: 1, actor: "op", action: "first", detail: "" }).unwrap();
    let entries: Vec<AuditEntry<'_>> = ["a", "b", "c"]
        .iter()
        .map(|d| AuditEntry { at: 2, actor: "server", action: "case.item_dropped", detail: d })
        .collect();
    let recs = s.append_audits(&entries).unwrap();
    assert_eq!(recs.iter().map(|r| r.seq).collect::<Vec<_>>(), [2, 3, 4]);
    assert_eq!(recs[1].prev_hash, recs[0].hash);
    assert_eq!(s.verify_audit_chain().unwrap().head, recs[2].hash);
    assert!(s.append_audits(&[]).unwrap().is_empty());

    // One bad entry: nothing of the call is appended.
    let bad = [
        AuditEntry { at: 3, actor: "server", action: "ok", detail: "" },
        AuditEntry { at: 3, actor: "server", action: "", detail: "" },
    ];
    assert!(matches!(s.append_audits(&bad), Err(StoreError::InvalidArgument(_))));
    assert_eq!(s.verify_audit_chain().unwrap().entries, 4);
}

/// Opened vouchers, threshold states and failure marks are kept per client state; an order's purge removes them
/// all, with the client states.
fn threshold_data_is_per_client_state(b: &Backend) {
    let s = &*b.store;
    for (cs, bid, vid) in [([1u8; 16], 1u8, 11u8), ([2; 16], 2, 12), ([1; 16], 3, 13)] {
        let b = NewBatch {
            account: "alice",
            client_state: cs,
            batch_id: [bid; 16],
            vouchers: &[vec![0; 8]],
            received_at: 1,
            state_limit: Some((ORDER_A, 8)),
        };
        s.store_batch(&b).unwrap();
        let id = s.next_unprocessed(1).unwrap()[0].id;
        let res = BatchResults {
            opened: vec![opened(ORDER_A, vid, b"p")],
            state: vec![StateUpdate { order_id: ORDER_A, state: vec![bid] }],
            order_id: Some(ORDER_A),
            ..Default::default()
        };
        s.complete_batch(id, &res, 2).unwrap();
    }
    assert_eq!(s.state_opened_vouchers("alice", [1; 16], ORDER_A).unwrap().len(), 2);
    assert_eq!(s.state_opened_count("alice", [2; 16], ORDER_A).unwrap(), 1);
    assert_eq!(s.opened_vouchers("alice", ORDER_A).unwrap().len(), 3, "all states");
    assert_eq!(s.account_state("alice", [1; 16], ORDER_A).unwrap().map(|z| z.to_vec()), Some(vec![3]));
    assert_eq!(s.account_state("alice", [2; 16], ORDER_A).unwrap().map(|z| z.to_vec()), Some(vec![2]));
    assert!(s.threshold_failure("alice", [2; 16], ORDER_A).unwrap().is_none());
    let f = s.record_threshold_failure("alice", [2; 16], ORDER_A, 5, 3).unwrap();
    assert_eq!(f, ThresholdFailure { shares: 5, failures: 1, last_at: 3 });
    let f = s.record_threshold_failure("alice", [2; 16], ORDER_A, 10, 4).unwrap();
    assert_eq!(f, ThresholdFailure { shares: 10, failures: 2, last_at: 4 });
    let st = s.stats().unwrap();
    assert_eq!((st.client_states, st.states_failed, st.threshold_failures), (2, 1, 2));
    s.purge_order(ORDER_A, 100).unwrap();
    let st = s.stats().unwrap();
    assert_eq!((st.client_states, st.states_failed), (0, 0));
    assert!(s.account_state("alice", [1; 16], ORDER_A).unwrap().is_none());
}

fn audit_entries_of_a_completion_are_appended_once_with_it(b: &Backend) {
    let s = &*b.store;
    s.insert_batch("alice", [1; 16], &vouchers(1, 1), 1).unwrap();
    let batch = s.next_unprocessed(1).unwrap().remove(0);
    let entry =
        OwnedAuditEntry { at: 5, actor: "server".into(), action: "threshold.reveal".into(), detail: "x".into() };
    let res = BatchResults { non_matches: 1, audit: vec![entry.clone()], ..Default::default() };
    // Refused (results that do not add up): nothing, the entry included, is written.
    let bad = BatchResults { non_matches: 2, audit: vec![entry], ..Default::default() };
    assert!(s.complete_batch(batch.id, &bad, 5).is_err());
    assert!(s.audit_entries(0, 10).unwrap().is_empty());
    s.complete_batch(batch.id, &res, 5).unwrap();
    // Completing again (a round redone after a crash) appends nothing.
    assert_eq!(s.complete_batch(batch.id, &res, 6).unwrap(), CompleteOutcome::AlreadyProcessed);
    let log = s.audit_entries(0, 10).unwrap();
    assert_eq!(log.iter().map(|e| (e.action.as_str(), e.at)).collect::<Vec<_>>(), [("threshold.reveal", 5)]);
    s.verify_audit_chain().unwrap();
}

conformance!(
    audit_entries_of_a_completion_are_appended_once_with_it,
    cover_rows_are_stored_as_large_as_opened_rows,
    cover_table_stays_bounded,
    insert_is_idempotent_per_account_and_batch_id,
    invalid_arguments_are_rejected,
    replayed_opened_voucher_is_stored_once_and_counted_invalid,
    cases_lifecycle,
    stats_add_up,
    id_only_queries,
    store_is_shareable_across_threads,
    complete_batches_is_all_or_nothing,
    append_audits_chains_in_order_and_is_all_or_nothing,
    threshold_data_is_per_client_state,
);
