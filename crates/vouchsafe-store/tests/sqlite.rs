//! Tests of the SQLite store's own mechanics: its files and their modes, the spool, migrations from older
//! schemas, injected failures, what is left on disk. The `Store` contract itself is tested on every backend by the
//! conformance suite (`tests/conformance`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // test code: a failure is the test failing

use std::path::Path;
use std::sync::Arc;

use rusqlite::Connection;
use vouchsafe_store::*;

const ORDER_A: [u8; 16] = [0xa1; 16];
const ORDER_B: [u8; 16] = [0xb2; 16];

fn vouchers(n: usize, tag: u8) -> Vec<Vec<u8>> {
    (0..n).map(|i| vec![tag, i as u8, 0x55, 0xaa]).collect()
}

fn opened(order: [u8; 16], id: u8, payload: &[u8]) -> OpenedVoucher {
    OpenedVoucher { order_id: order, voucher_id: [id; 16], payload: payload.to_vec() }
}

fn raw(path: &Path) -> Connection {
    let c = Connection::open(path).expect("raw open");
    c.busy_timeout(std::time::Duration::from_secs(5)).expect("busy");
    c
}

/// Names of the batch files in the spool directory of the database at `path`.
fn spool_files(path: &Path) -> Vec<String> {
    let mut dir = path.as_os_str().to_owned();
    dir.push(".inbox");
    let mut names: Vec<String> = std::fs::read_dir(Path::new(&dir))
        .expect("spool dir")
        .map(|e| e.expect("entry").file_name().into_string().expect("utf-8"))
        .filter(|n| n.ends_with(".batch"))
        .collect();
    names.sort();
    names
}

fn spool_dir(path: &Path) -> std::path::PathBuf {
    let mut dir = path.as_os_str().to_owned();
    dir.push(".inbox");
    dir.into()
}

fn temp_store() -> (tempfile::TempDir, std::path::PathBuf, SqliteStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("store.db");
    let store = SqliteStore::open(&path).expect("open");
    (dir, path, store)
}

/// Permission bits of `path` with `suffix` appended to its name (`""`, `"-wal"`, `"-shm"`).
#[cfg(unix)]
fn mode(path: &Path, suffix: &str) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    std::fs::metadata(Path::new(&name)).unwrap_or_else(|e| panic!("{suffix}: {e}")).permissions().mode() & 0o777
}

#[cfg(unix)]
#[test]
fn a_new_database_and_its_wal_and_shm_files_are_private() {
    let (_dir, path, s) = temp_store();
    s.insert_batch("alice", [1; 16], &vouchers(2, 1), 10).unwrap();
    s.set_account_state("alice", DEFAULT_CLIENT_STATE, ORDER_A, b"state").unwrap();
    // Both connections are open, so the -wal and -shm files exist.
    for suffix in ["", "-wal", "-shm"] {
        let m = mode(&path, suffix);
        assert_eq!(m, 0o600, "database file{suffix} has mode {m:o}");
    }
}

#[cfg(unix)]
#[test]
fn an_existing_database_keeps_its_mode() {
    use std::os::unix::fs::PermissionsExt;
    let (_dir, path, s) = temp_store();
    drop(s);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    let s = SqliteStore::open(&path).unwrap();
    s.set_account_state("alice", DEFAULT_CLIENT_STATE, ORDER_A, b"state").unwrap();
    assert_eq!(mode(&path, ""), 0o640);
    assert_eq!(
        s.account_state("alice", DEFAULT_CLIENT_STATE, ORDER_A).unwrap().as_deref().map(Vec::as_slice),
        Some(&b"state"[..])
    );
}

#[test]
fn complete_batch_applies_results_and_drops_raw_vouchers() {
    let (_d, path, s) = temp_store();
    s.insert_batch("alice", [1; 16], &vouchers(4, 1), 10).unwrap();
    let b = s.next_unprocessed(10).unwrap().remove(0);

    // Results that do not account for every voucher are refused, nothing changes.
    let short = BatchResults { non_matches: 1, ..Default::default() };
    assert!(matches!(s.complete_batch(b.id, &short, 20), Err(StoreError::InvalidArgument(_))));
    assert_eq!(s.counters("alice").unwrap(), Counters::default());

    let results = BatchResults {
        non_matches: 2,
        invalid: 1,
        opened: vec![opened(ORDER_A, 7, b"payload-7")],
        state: vec![StateUpdate { order_id: ORDER_A, state: b"poly".to_vec() }],
        order_id: None,
        cover_payload_len: 0,
        audit: Vec::new(),
    };
    assert_eq!(
        s.complete_batch(b.id, &results, 20).unwrap(),
        CompleteOutcome::Completed { opened_new: 1, opened_duplicate: 0 }
    );
    assert_eq!(s.counters("alice").unwrap(), Counters { received: 4, non_matches: 2, opened: 1, invalid: 1 });
    assert_eq!(s.opened_vouchers("alice", ORDER_A).unwrap(), results.opened);
    assert!(s.opened_vouchers("alice", ORDER_B).unwrap().is_empty());
    assert_eq!(
        s.account_state("alice", DEFAULT_CLIENT_STATE, ORDER_A).unwrap().map(|z| z.to_vec()),
        Some(b"poly".to_vec())
    );
    assert!(s.next_unprocessed(10).unwrap().is_empty());
    let raw_left: i64 =
        raw(&path).query_row("SELECT COUNT(*) FROM inbox_batch WHERE vouchers IS NOT NULL", [], |r| r.get(0)).unwrap();
    assert_eq!(raw_left, 0, "raw vouchers must be deleted after processing");
    let named: i64 =
        raw(&path).query_row("SELECT COUNT(*) FROM inbox_batch WHERE spool IS NOT NULL", [], |r| r.get(0)).unwrap();
    assert_eq!(named, 0, "a processed batch names no spool file");
    assert!(spool_files(&path).is_empty(), "the spool file is shredded");

    // Completing again changes nothing.
    assert_eq!(s.complete_batch(b.id, &results, 21).unwrap(), CompleteOutcome::AlreadyProcessed);
    assert_eq!(s.counters("alice").unwrap().received, 4);
    // The batch id stays known: a late retry is still a duplicate.
    assert_eq!(
        s.insert_batch("alice", [1; 16], &vouchers(4, 1), 30).unwrap(),
        InsertOutcome::Duplicate { vouchers: 4 }
    );
}

/// Injects a failure inside `complete_batch` with a trigger on `table`, checks
/// that nothing of the batch's results is visible, then removes the trigger
/// and checks that the retry applies everything exactly once.
fn failure_mid_way_leaves_no_partial_state(trigger_sql: &str) {
    let (_d, path, s) = temp_store();
    s.insert_batch("alice", [1; 16], &vouchers(3, 1), 10).unwrap();
    let b = s.next_unprocessed(10).unwrap().remove(0);
    let results = BatchResults {
        non_matches: 1,
        invalid: 0,
        opened: vec![opened(ORDER_A, 1, b"one"), opened(ORDER_A, 2, b"two")],
        state: vec![StateUpdate { order_id: ORDER_A, state: b"st".to_vec() }],
        order_id: None,
        cover_payload_len: 0,
        audit: Vec::new(),
    };

    raw(&path).execute_batch(trigger_sql).unwrap();
    let err = s.complete_batch(b.id, &results, 20);
    assert!(matches!(err, Err(StoreError::Database(_))), "{err:?}");

    assert!(s.opened_vouchers("alice", ORDER_A).unwrap().is_empty());
    assert_eq!(s.counters("alice").unwrap(), Counters::default());
    assert!(s.account_state("alice", DEFAULT_CLIENT_STATE, ORDER_A).unwrap().is_none());
    let pending = s.next_unprocessed(10).unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].vouchers, vouchers(3, 1));

    raw(&path).execute_batch("DROP TRIGGER fail;").unwrap();
    assert_eq!(
        s.complete_batch(b.id, &results, 21).unwrap(),
        CompleteOutcome::Completed { opened_new: 2, opened_duplicate: 0 }
    );
    assert_eq!(s.opened_vouchers("alice", ORDER_A).unwrap().len(), 2);
    assert_eq!(s.counters("alice").unwrap(), Counters { received: 3, non_matches: 1, opened: 2, invalid: 0 });
    assert!(s.next_unprocessed(10).unwrap().is_empty());
}

#[test]
fn failure_while_writing_state_rolls_back_everything() {
    failure_mid_way_leaves_no_partial_state(
        "CREATE TRIGGER fail BEFORE INSERT ON account_state BEGIN SELECT RAISE(ABORT, 'injected'); END;",
    );
}

#[test]
fn failure_at_the_last_step_rolls_back_everything() {
    failure_mid_way_leaves_no_partial_state(
        "CREATE TRIGGER fail BEFORE UPDATE OF processed_at ON inbox_batch BEGIN SELECT RAISE(ABORT, 'injected'); END;",
    );
}

#[test]
fn failure_inserting_a_batch_leaves_nothing() {
    let (_d, path, s) = temp_store();
    raw(&path)
        .execute_batch(
            "CREATE TRIGGER fail AFTER INSERT ON inbox_batch
             BEGIN SELECT RAISE(ABORT, 'injected'); END;",
        )
        .unwrap();
    assert!(s.insert_batch("alice", [1; 16], &vouchers(4, 1), 1).is_err());
    assert!(s.next_unprocessed(10).unwrap().is_empty());
    raw(&path).execute_batch("DROP TRIGGER fail;").unwrap();
    // Not remembered as a duplicate: the retry is stored.
    assert_eq!(s.insert_batch("alice", [1; 16], &vouchers(4, 1), 2).unwrap(), InsertOutcome::Inserted { vouchers: 4 });
}

#[test]
fn reopened_file_store_has_everything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let case_id;
    let head;
    {
        let s = SqliteStore::open(&path).unwrap();
        s.insert_batch("alice", [1; 16], &vouchers(2, 1), 1).unwrap();
        s.insert_batch("alice", [2; 16], &vouchers(1, 2), 2).unwrap();
        let b = s.next_unprocessed(1).unwrap().remove(0);
        let res = BatchResults { non_matches: 1, opened: vec![opened(ORDER_A, 5, b"x")], ..Default::default() };
        s.complete_batch(b.id, &res, 3).unwrap();
        s.set_account_state("alice", DEFAULT_CLIENT_STATE, ORDER_A, b"state").unwrap();
        let items = [CaseItem { voucher_id: [5; 16], ad: b"ad5".to_vec() }];
        case_id = s
            .create_case(&NewCase {
                account: "alice",
                order_id: ORDER_A,
                created_at: 4,
                items: &items,
                actor: "server",
                four_eyes: false,
                claimed_by: None,
            })
            .unwrap();
        s.append_audit(&AuditEntry { at: 5, actor: "op", action: "config", detail: "threshold=30" }).unwrap();
        head = s.verify_audit_chain().unwrap();
    }
    let s = SqliteStore::open(&path).unwrap();
    let mode: String = raw(&path).query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
    let version: i64 = raw(&path).query_row("SELECT MAX(version) FROM schema_version", [], |r| r.get(0)).unwrap();
    assert_eq!(version, SqliteStore::schema_version());

    assert_eq!(s.counters("alice").unwrap(), Counters { received: 2, non_matches: 1, opened: 1, invalid: 0 });
    assert_eq!(s.opened_vouchers("alice", ORDER_A).unwrap(), vec![opened(ORDER_A, 5, b"x")]);
    assert_eq!(
        s.account_state("alice", DEFAULT_CLIENT_STATE, ORDER_A).unwrap().map(|z| z.to_vec()),
        Some(b"state".to_vec())
    );
    let pending = s.next_unprocessed(10).unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].batch_id, [2; 16]);
    assert_eq!(pending[0].vouchers, vouchers(1, 2));
    let case = s.get_case(case_id).unwrap().expect("case");
    assert_eq!(case.items, vec![CaseItem { voucher_id: [5; 16], ad: b"ad5".to_vec() }]);
    assert_eq!(s.verify_audit_chain().unwrap(), head);
    assert_eq!(head.entries, 2);
}

#[test]
fn a_database_error_keeps_sqlites_error_as_its_source() {
    let (_d, path, s) = temp_store();
    raw(&path)
        .execute_batch(
            "CREATE TRIGGER fail BEFORE INSERT ON account_state BEGIN SELECT RAISE(ABORT, 'injected failure'); END;",
        )
        .unwrap();
    let err = s.set_account_state("alice-account", DEFAULT_CLIENT_STATE, ORDER_A, b"secret-state").unwrap_err();
    assert!(matches!(err, StoreError::Database(_)), "{err:?}");
    // The message says what failed, the source says why: an operator logs the whole chain.
    assert_eq!(err.to_string(), "database error");
    let source = std::error::Error::source(&err).expect("a source");
    let sqlite = source.downcast_ref::<rusqlite::Error>().expect("the rusqlite error");
    assert_eq!(sqlite.sqlite_error_code(), Some(rusqlite::ErrorCode::ConstraintViolation));
    let mut chain = String::new();
    let mut e: Option<&dyn std::error::Error> = Some(&err);
    while let Some(cur) = e {
        chain.push_str(&format!("{cur}: "));
        e = cur.source();
    }
    assert!(chain.contains("injected failure"), "{chain}");
    // No stored or submitted values in any message of the chain.
    assert!(!chain.contains("alice-account") && !chain.contains("secret-state"), "{chain}");
}

#[test]
fn newer_schema_is_refused() {
    let (_d, path, s) = temp_store();
    drop(s);
    raw(&path).execute("INSERT INTO schema_version (version, applied_at) VALUES (999, 0)", []).unwrap();
    assert!(matches!(SqliteStore::open(&path), Err(StoreError::UnsupportedSchema { found: 999, .. })));
}

#[test]
fn audit_chain_verifies_and_detects_tampering() {
    let (_d, path, s) = temp_store();
    assert_eq!(s.verify_audit_chain().unwrap(), AuditHead { entries: 0, head: AUDIT_GENESIS });
    let mut prev = AUDIT_GENESIS;
    for i in 0..5 {
        let detail = format!("step={i}");
        let rec = s.append_audit(&AuditEntry { at: 100 + i, actor: "op", action: "test", detail: &detail }).unwrap();
        assert_eq!(rec.seq, i as u64 + 1);
        assert_eq!(rec.prev_hash, prev);
        assert_eq!(rec.hash, audit_hash(&prev, rec.seq, rec.at, "op", "test", &detail));
        prev = rec.hash;
    }
    assert_eq!(s.verify_audit_chain().unwrap(), AuditHead { entries: 5, head: prev });
    assert_eq!(s.audit_entries(3, 10).unwrap().iter().map(|r| r.seq).collect::<Vec<_>>(), [4, 5]);

    let db = raw(&path);
    // Edit a field.
    db.execute("UPDATE audit_log SET detail = 'step=x' WHERE seq = 2", []).unwrap();
    assert!(matches!(s.verify_audit_chain(), Err(StoreError::AuditChainBroken { seq: 2 })));
    db.execute("UPDATE audit_log SET detail = 'step=1' WHERE seq = 2", []).unwrap();
    assert!(s.verify_audit_chain().is_ok());

    // Rewrite an entry and its own hash consistently: the next link breaks.
    let prev2: Vec<u8> = db.query_row("SELECT hash FROM audit_log WHERE seq = 2", [], |r| r.get(0)).unwrap();
    let prev2: [u8; 32] = prev2.try_into().unwrap();
    let forged = audit_hash(&prev2, 3, 102, "op", "test", "step=forged");
    db.execute("UPDATE audit_log SET detail = 'step=forged', hash = ?1 WHERE seq = 3", [&forged[..]]).unwrap();
    assert!(matches!(s.verify_audit_chain(), Err(StoreError::AuditChainBroken { seq: 4 })));

    // Delete an entry from the middle.
    let (_d2, path2, s2) = temp_store();
    for i in 0..3 {
        s2.append_audit(&AuditEntry { at: i, actor: "op", action: "a", detail: "" }).unwrap();
    }
    raw(&path2).execute("DELETE FROM audit_log WHERE seq = 2", []).unwrap();
    assert!(matches!(s2.verify_audit_chain(), Err(StoreError::AuditChainBroken { seq: 2 })));
}

#[test]
fn purge_drops_order_data_and_keeps_case_metadata() {
    let (_d, path, s) = temp_store();
    let marker_a = b"SECRET-PAYLOAD-ORDER-A-0123456789".to_vec();
    let ad_marker = b"THUMBNAIL-AD-ORDER-A-9876543210".to_vec();
    s.insert_batch("alice", [1; 16], &vouchers(2, 1), 1).unwrap();
    let b = s.next_unprocessed(1).unwrap().remove(0);
    let res = BatchResults {
        opened: vec![opened(ORDER_A, 1, &marker_a), opened(ORDER_B, 2, b"keep-b")],
        state: vec![
            StateUpdate { order_id: ORDER_A, state: b"sa".to_vec() },
            StateUpdate { order_id: ORDER_B, state: b"sb".to_vec() },
        ],
        ..Default::default()
    };
    s.complete_batch(b.id, &res, 2).unwrap();
    let ca = s
        .create_case(&NewCase {
            account: "alice",
            order_id: ORDER_A,
            created_at: 3,
            items: &[CaseItem { voucher_id: [1; 16], ad: ad_marker.clone() }],
            actor: "server",
            four_eyes: false,
            claimed_by: None,
        })
        .unwrap();
    let cb = s
        .create_case(&NewCase {
            account: "alice",
            order_id: ORDER_B,
            created_at: 3,
            items: &[CaseItem { voucher_id: [2; 16], ad: b"ad-b".to_vec() }],
            actor: "server",
            four_eyes: false,
            claimed_by: None,
        })
        .unwrap();
    s.set_case_status(ca, &CaseDecision { status: CaseStatus::Confirmed, reviewer: "r", reason: "ok", at: 4 }).unwrap();

    let report = s.purge_order(ORDER_A, 5).unwrap();
    assert_eq!(report, PurgeReport { opened_vouchers: 1, states: 1, case_items: 1, ..PurgeReport::default() });

    assert!(s.opened_vouchers("alice", ORDER_A).unwrap().is_empty());
    assert!(s.account_state("alice", DEFAULT_CLIENT_STATE, ORDER_A).unwrap().is_none());
    let case_a = s.get_case(ca).unwrap().unwrap();
    assert!(case_a.summary.ad_purged);
    assert_eq!(case_a.summary.status, CaseStatus::Confirmed);
    assert_eq!(case_a.items, vec![CaseItem { voucher_id: [1; 16], ad: Vec::new() }]);
    assert!(matches!(
        s.add_case_items(ca, &[CaseItem { voucher_id: [9; 16], ad: b"x".to_vec() }]),
        Err(StoreError::InvalidArgument(_))
    ));

    // The other order is untouched.
    assert_eq!(s.opened_vouchers("alice", ORDER_B).unwrap(), vec![opened(ORDER_B, 2, b"keep-b")]);
    assert!(s.account_state("alice", DEFAULT_CLIENT_STATE, ORDER_B).unwrap().is_some());
    let case_b = s.get_case(cb).unwrap().unwrap();
    assert!(!case_b.summary.ad_purged);
    assert_eq!(case_b.items[0].ad, b"ad-b");
    // Counters are statistics and survive.
    assert_eq!(s.counters("alice").unwrap().opened, 2);

    let last = s.audit_entries(0, 100).unwrap().pop().unwrap();
    assert_eq!(last.action, "order.purge");
    assert!(s.verify_audit_chain().is_ok());

    // Purged bytes are not left behind in the database files (secure_delete +
    // checkpoint).
    drop(s);
    let mut bytes = Vec::new();
    for f in ["store.db", "store.db-wal"] {
        if let Ok(b) = std::fs::read(path.with_file_name(f)) {
            bytes.extend(b);
        }
    }
    for marker in [&marker_a, &ad_marker] {
        assert!(!bytes.windows(marker.len()).any(|w| w == marker.as_slice()), "purged data still on disk");
    }
    assert!(bytes.windows(6).any(|w| w == b"keep-b"), "sanity: kept data is on disk");
}

#[test]
fn processed_raw_vouchers_are_not_left_on_disk() {
    let (_d, path, s) = temp_store();
    let marker = b"RAW-VOUCHER-MARKER-0123456789".to_vec();
    let batch: Vec<Vec<u8>> = (0..8u8)
        .map(|i| {
            let mut v = marker.clone();
            v.push(i);
            v.extend(std::iter::repeat_n(i, 5000));
            v
        })
        .collect();
    s.insert_batch("alice", [1; 16], &batch, 1).unwrap();
    s.insert_batch("alice", [2; 16], &vouchers(2, 1), 1).unwrap();
    // Before processing, the raw vouchers are in a spool file, not the database.
    let files = spool_files(&path);
    assert_eq!(files.len(), 2);
    let in_spool = std::fs::read(spool_dir(&path).join(&files[0])).unwrap();
    assert!(in_spool.windows(marker.len()).any(|w| w == marker.as_slice()));
    let b = s.next_unprocessed(1).unwrap().remove(0);
    assert_eq!(b.vouchers, batch);
    let res = BatchResults { non_matches: 8, ..Default::default() };
    s.complete_batch(b.id, &res, 2).unwrap();
    assert_eq!(spool_files(&path), files[1..].to_vec(), "only the pending batch's file is left");
    // Closing the last connection checkpoints the WAL into the main file.
    drop(s);
    let mut bytes = Vec::new();
    for f in ["store.db", "store.db-wal"] {
        if let Ok(b) = std::fs::read(path.with_file_name(f)) {
            bytes.extend(b);
        }
    }
    for f in spool_files(&path) {
        bytes.extend(std::fs::read(spool_dir(&path).join(f)).unwrap());
    }
    assert!(!bytes.windows(marker.len()).any(|w| w == marker.as_slice()), "processed raw vouchers still on disk");
    // The pending batch is still there after reopening.
    let s = SqliteStore::open(&path).unwrap();
    assert_eq!(s.next_unprocessed(10).unwrap()[0].vouchers, vouchers(2, 1));
}

#[test]
fn intake_and_processing_run_concurrently() {
    let (_d, _path, s) = temp_store();
    let s = Arc::new(s);
    let writer = {
        let s = Arc::clone(&s);
        std::thread::spawn(move || {
            for i in 0..200u8 {
                s.insert_batch("acct", [i; 16], &vouchers(3, i), 1).unwrap();
            }
        })
    };
    let mut done = 0usize;
    while done < 200 {
        let batches = s.next_unprocessed(16).unwrap();
        if batches.is_empty() {
            std::thread::yield_now();
            continue;
        }
        let res = BatchResults { non_matches: 3, ..Default::default() };
        let list: Vec<(InboxId, &BatchResults)> = batches.iter().map(|b| (b.id, &res)).collect();
        for o in s.complete_batches(&list, 2).unwrap() {
            assert!(matches!(o, CompleteOutcome::Completed { .. }));
        }
        done += batches.len();
    }
    writer.join().unwrap();
    assert_eq!(done, 200);
    assert_eq!(s.counters("acct").unwrap().received, 600);
    assert_eq!(s.stats().unwrap().batches_pending, 0);
}

#[test]
fn duplicate_intake_leaves_one_spool_file() {
    let (_d, path, s) = temp_store();
    s.insert_batch("alice", [1; 16], &vouchers(3, 1), 1).unwrap();
    assert_eq!(s.insert_batch("alice", [1; 16], &vouchers(3, 1), 2).unwrap(), InsertOutcome::Duplicate { vouchers: 3 });
    assert_eq!(spool_files(&path).len(), 1);
    // Concurrent retries of one batch: exactly one is inserted, one file remains.
    let s = Arc::new(s);
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let s = Arc::clone(&s);
            std::thread::spawn(move || s.insert_batch("bob", [7; 16], &vouchers(2, 7), 3).unwrap())
        })
        .collect();
    let outcomes: Vec<InsertOutcome> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(outcomes.iter().filter(|o| matches!(o, InsertOutcome::Inserted { .. })).count(), 1);
    assert_eq!(spool_files(&path).len(), 2);
}

#[test]
fn orphan_spool_files_are_swept_at_open_and_pending_ones_kept() {
    let (_d, path, s) = temp_store();
    s.insert_batch("alice", [1; 16], &vouchers(3, 1), 1).unwrap();
    let pending = spool_files(&path);
    // A file written before a crash that came before its row's commit, and a
    // foreign file that is not ours.
    let orphan = spool_dir(&path).join("00000000000000010000000000000001.batch");
    std::fs::write(&orphan, b"never committed").unwrap();
    std::fs::write(spool_dir(&path).join("notes.txt"), b"foreign").unwrap();

    // A second store on the same database (another process, e.g. an operator's
    // command beside the server) must not sweep: the file might be a batch
    // about to be committed.
    let second = SqliteStore::open(&path).unwrap();
    assert!(orphan.exists());
    drop(second);
    drop(s);

    let s = SqliteStore::open(&path).unwrap();
    assert!(!orphan.exists(), "the orphan is shredded at an exclusive open");
    assert!(spool_dir(&path).join("notes.txt").exists());
    assert_eq!(spool_files(&path), pending);
    assert_eq!(s.next_unprocessed(10).unwrap()[0].vouchers, vouchers(3, 1));
}

#[test]
fn a_missing_or_damaged_spool_file_is_a_clean_error() {
    let (_d, path, s) = temp_store();
    s.insert_batch("alice", [1; 16], &vouchers(3, 1), 1).unwrap();
    let f = spool_dir(&path).join(&spool_files(&path)[0]);
    let good = std::fs::read(&f).unwrap();
    let unreadable = |r: Result<Vec<InboxBatch>>| match r {
        Err(StoreError::UnreadableBatch { id, vouchers, .. }) => (id, vouchers),
        other => panic!("expected UnreadableBatch, got {other:?}"),
    };
    std::fs::write(&f, &good[..good.len() - 1]).unwrap();
    assert_eq!(unreadable(s.next_unprocessed(10)), (InboxId(1), 3));
    std::fs::remove_file(&f).unwrap();
    assert_eq!(unreadable(s.next_unprocessed(10)), (InboxId(1), 3));
    // A row naming a path outside the spool is refused, not followed.
    raw(&path).execute("UPDATE inbox_batch SET spool = '../store.db'", []).unwrap();
    assert_eq!(unreadable(s.next_unprocessed(10)), (InboxId(1), 3));
    // Completing it with every voucher invalid sets it aside; the next batch is readable.
    s.insert_batch("alice", [2; 16], &vouchers(2, 2), 1).unwrap();
    let all_invalid = BatchResults { invalid: 3, ..Default::default() };
    s.complete_batch(InboxId(1), &all_invalid, 2).unwrap();
    assert_eq!(s.next_unprocessed(10).unwrap()[0].vouchers, vouchers(2, 2));
    let c = s.counters("alice").unwrap();
    assert_eq!((c.received, c.invalid), (3, 3));
}

#[test]
fn next_unprocessed_with_takes_vouchers_from_the_caller_when_it_has_them() {
    let (_d, path, s) = temp_store();
    s.insert_batch("alice", [1; 16], &vouchers(3, 1), 1).unwrap();
    s.insert_batch("bob", [2; 16], &vouchers(2, 2), 1).unwrap();
    // The spool files are gone: only the caller's copies can satisfy alice's batch.
    for f in spool_files(&path) {
        std::fs::remove_file(spool_dir(&path).join(f)).unwrap();
    }
    let mut asked = Vec::new();
    let got = s
        .next_unprocessed_with(10, None, &mut |account, batch_id| {
            asked.push((account.to_owned(), *batch_id));
            (account == "alice").then(|| vouchers(3, 1))
        })
        .err();
    // bob's batch was not cached and its file is missing.
    assert!(matches!(got, Some(StoreError::UnreadableBatch { .. })));
    assert_eq!(asked, vec![("alice".to_owned(), [1; 16]), ("bob".to_owned(), [2; 16])]);
    let got = s.next_unprocessed_with(1, None, &mut |_, _| Some(vouchers(3, 1))).unwrap();
    assert_eq!(got[0].vouchers, vouchers(3, 1));
    assert_eq!((got[0].account.as_str(), got[0].batch_id), ("alice", [1; 16]));
    // A cached copy with the wrong count is not trusted: storage is read (and here fails).
    assert!(matches!(
        s.next_unprocessed_with(1, None, &mut |_, _| Some(vouchers(4, 1))),
        Err(StoreError::UnreadableBatch { .. })
    ));
    // `after` skips the batches up to that id.
    let got = s.next_unprocessed_with(10, Some(got[0].id), &mut |_, _| Some(vouchers(2, 2))).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].account, "bob");
    assert!(s.next_unprocessed_with(10, Some(got[0].id), &mut |_, _| None).unwrap().is_empty());
}

/// The same batch id with other content is refused, and so is a client state over the account's limit: nothing is
/// stored, no spool file is left behind, and the first batch is unchanged and still idempotent.
#[test]
fn refused_batches_leave_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let s = SqliteStore::open(&path).unwrap();
    let first = NewBatch {
        account: "alice",
        client_state: [1; 16],
        batch_id: [5; 16],
        vouchers: &[vec![1; 40], vec![2; 40]],
        received_at: 1,
        state_limit: Some((ORDER_A, 1)),
    };
    assert_eq!(s.store_batch(&first).unwrap(), InsertOutcome::Inserted { vouchers: 2 });
    assert_eq!(spool_files(&path).len(), 1);
    let refused = [
        NewBatch { vouchers: &[vec![1; 40]], ..first },
        NewBatch { vouchers: &[vec![2; 40], vec![1; 40]], ..first },
        NewBatch { client_state: [2; 16], ..first },
        NewBatch { client_state: [2; 16], batch_id: [6; 16], ..first },
    ];
    for (i, b) in refused.iter().enumerate() {
        let e = s.store_batch(b).unwrap_err();
        let want = if i < 3 { "batch_id was already used" } else { "1 client states" };
        assert!(e.to_string().contains(want), "{i}: {e}");
    }
    assert_eq!(spool_files(&path).len(), 1, "no spool file of a refused batch is left");
    assert_eq!(s.backlog().unwrap(), Backlog { batches: 1, vouchers: 2, bytes: 80 });
    assert_eq!(s.store_batch(&first).unwrap(), InsertOutcome::Duplicate { vouchers: 2 });
    assert_eq!(s.stored_batch("alice", [5; 16]).unwrap(), Some(2));
    assert_eq!(s.stored_batch("alice", [6; 16]).unwrap(), None);
    let b = s.next_unprocessed(10).unwrap();
    assert_eq!((b.len(), b[0].client_state, b[0].vouchers.clone()), (1, [1; 16], vec![vec![1; 40], vec![2; 40]]));
    // Another account has states of its own; an existing state is not limited.
    let bob = NewBatch { account: "bob", client_state: [2; 16], batch_id: [6; 16], ..first };
    assert!(s.store_batch(&bob).is_ok());
    let again = NewBatch { batch_id: [7; 16], ..first };
    assert!(s.store_batch(&again).is_ok());
    assert_eq!(s.stats().unwrap().client_states, 2);
}

#[test]
fn cover_writes_fill_a_bounded_ring_of_zeros_and_change_no_count() {
    let (_d, path, s) = temp_store();
    let len = 300;
    // 40 batches of 300 vouchers, one opened and one invalid each: 11 960 cover writes into a ring of 8192 slots.
    for b in 0..40u32 {
        let mut id = [0u8; 16];
        id[..4].copy_from_slice(&b.to_le_bytes());
        s.insert_batch("alice", id, &vouchers(300, 1), 1).unwrap();
    }
    let mut seen = 0u64;
    loop {
        let p = s.next_unprocessed(7).unwrap();
        if p.is_empty() {
            break;
        }
        let results: Vec<BatchResults> = (0..p.len())
            .map(|_| {
                seen += 1;
                let mut id = [0u8; 16];
                id[..8].copy_from_slice(&seen.to_le_bytes());
                BatchResults {
                    non_matches: 298,
                    invalid: 1,
                    opened: vec![OpenedVoucher { order_id: ORDER_A, voucher_id: id, payload: vec![7; len] }],
                    cover_payload_len: len,
                    ..Default::default()
                }
            })
            .collect();
        let list: Vec<(InboxId, &BatchResults)> = p.iter().map(|b| b.id).zip(results.iter()).collect();
        s.complete_batches(&list, 2).unwrap();
    }
    assert_eq!(
        s.counters("alice").unwrap(),
        Counters { received: 12_000, non_matches: 11_920, opened: 40, invalid: 40 }
    );
    let db = raw(&path);
    let (rows, max_len, min_len, nonzero): (i64, i64, i64, i64) = db
        .query_row(
            "SELECT COUNT(*), MAX(length(payload)), MIN(length(payload)),
                    SUM(payload != zeroblob(length(payload)) OR CAST(account AS BLOB) != zeroblob(5))
             FROM store_cover",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!(rows, 8192, "the ring is full and never larger");
    assert_eq!((max_len, min_len), (len as i64, len as i64));
    assert_eq!(nonzero, 0, "cover rows hold zeros (an account's length of them, and random ids) only");
    // Without a cover length nothing is written.
    s.insert_batch("bob", [9; 16], &vouchers(2, 1), 1).unwrap();
    let p = s.next_unprocessed(1).unwrap();
    let before: i64 = db.query_row("SELECT SUM(batch) FROM store_cover", [], |r| r.get(0)).unwrap();
    s.complete_batch(p[0].id, &BatchResults { non_matches: 2, ..Default::default() }, 3).unwrap();
    let after: i64 = db.query_row("SELECT SUM(batch) FROM store_cover", [], |r| r.get(0)).unwrap();
    assert_eq!(before, after);
}
