//! Connection settings and schema migrations of the SQLite store.

use std::time::Duration;

use rusqlite::{Connection, Transaction, TransactionBehavior, params};

use super::SqliteStore;
use super::convert::to_u64;
use crate::inbox;
use crate::schema::{INBOX_BLOB_MIGRATION, MIGRATIONS};
use crate::{Result, StoreError};

/// How long a writer waits for a lock held by another connection.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Page size of new databases (SQLite's largest). A batch's vouchers (about
/// 1.25 MB for 256) are one blob spread over overflow pages; 64 KiB pages cut
/// the per-page work (WAL frames, checksums, free-list updates, the zeroing
/// of freed pages by `secure_delete`) about sixteenfold against 4 KiB.
const PAGE_SIZE: i64 = 65536;

/// WAL pages after which a committing connection checkpoints: 256 pages of
/// 64 KiB is 16 MiB of WAL (SQLite's default of 1000 pages is 4 MiB at 4 KiB
/// pages). Fewer, larger checkpoints copy a page rewritten several times
/// (freed by processing, reused by the intake) once; a smaller WAL keeps the
/// stale frames of processed raw vouchers for a shorter time before they are
/// overwritten.
const WAL_AUTOCHECKPOINT_PAGES: i64 = 256;

/// Prepares the main connection of a store: page size and WAL mode (for a new
/// database), the per-connection settings, then the pending migrations.
pub(super) fn prepare(conn: &mut Connection) -> Result<()> {
    // Only takes effect when the database is created (before the first
    // table); an existing file keeps its page size.
    conn.pragma_update(None, "page_size", PAGE_SIZE)?;
    // Returns the resulting mode ("memory" for in-memory databases).
    let _mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
    configure(conn)?;
    migrate(conn)
}

/// Per-connection settings (`journal_mode = WAL` is persistent in the file).
pub(super) fn configure(conn: &Connection) -> Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "secure_delete", "ON")?;
    conn.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES)?;
    Ok(())
}

fn migrate(conn: &mut Connection) -> Result<()> {
    migrate_to(conn, SqliteStore::schema_version())
}

/// Applies the pending migrations up to version `target`, in one transaction.
///
/// Foreign keys are off while they run (SQLite ignores the pragma inside a
/// transaction, so it is set around it): a migration that rebuilds a table
/// (v4's `case_file`) drops the old one, which with foreign keys on would
/// cascade into the rows that reference it. Before the commit every foreign
/// key is checked; a violation aborts the migration.
fn migrate_to(conn: &mut Connection, target: i64) -> Result<()> {
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    let result = migrate_tx(conn, target);
    conn.pragma_update(None, "foreign_keys", "ON")?;
    result
}

fn migrate_tx(conn: &mut Connection, target: i64) -> Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_version (
             version    INTEGER PRIMARY KEY,
             applied_at INTEGER NOT NULL
         );",
    )?;
    let current: i64 = tx.query_row("SELECT COALESCE(MAX(version), 0) FROM schema_version", [], |r| r.get(0))?;
    let supported = SqliteStore::schema_version();
    if current > supported || current < 0 {
        return Err(StoreError::UnsupportedSchema { found: current, supported });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        if i as i64 >= target {
            break;
        }
        tx.execute_batch(sql)?;
        if i + 1 == INBOX_BLOB_MIGRATION {
            move_inbox_rows_to_blobs(&tx)?;
        }
        tx.execute(
            "INSERT INTO schema_version (version, applied_at) VALUES (?1, CAST(strftime('%s','now') AS INTEGER))",
            params![i as i64 + 1],
        )?;
    }
    let violations: i64 = tx.query_row("SELECT COUNT(*) FROM pragma_foreign_key_check", [], |r| r.get(0))?;
    if violations != 0 {
        return Err(StoreError::Corrupt("foreign key violation after migration"));
    }
    tx.commit()?;
    Ok(())
}

/// Schema v1 → v2: the vouchers of every unprocessed batch move from one row
/// per voucher (`inbox_voucher`) into the batch's blob; then `inbox_voucher`
/// is dropped (with `secure_delete` on, its pages are zeroed).
fn move_inbox_rows_to_blobs(tx: &Transaction<'_>) -> Result<()> {
    let pending: Vec<(i64, i64)> = {
        let mut stmt =
            tx.prepare("SELECT id, voucher_count FROM inbox_batch WHERE processed_at IS NULL ORDER BY id")?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<_>>()?
    };
    {
        let mut read = tx.prepare("SELECT voucher FROM inbox_voucher WHERE batch = ?1 ORDER BY idx")?;
        let mut write = tx.prepare("UPDATE inbox_batch SET vouchers = ?1 WHERE id = ?2")?;
        for (id, count) in pending {
            let vouchers =
                read.query_map(params![id], |r| r.get::<_, Vec<u8>>(0))?.collect::<rusqlite::Result<Vec<_>>>()?;
            if to_u64(count)? != vouchers.len() as u64 {
                return Err(StoreError::Corrupt("inbox voucher count"));
            }
            write.execute(params![inbox::encode(&vouchers)?, id])?;
        }
    }
    tx.execute_batch("DROP TABLE inbox_voucher;")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::sync::Mutex;

    use crate::Store;
    use crate::types::*;

    /// A database as version 1 of this crate left it, with one processed and
    /// two unprocessed batches (one row per voucher).
    fn v1_database(path: &Path, bad_count: bool) {
        let conn = Connection::open(path).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL);
             INSERT INTO schema_version VALUES (1, 0);",
        )
        .unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        type V1Batch<'a> = (i64, &'a str, u8, i64, Option<i64>, u8);
        let batches: [V1Batch<'_>; 3] =
            [(1, "alice", 1, 2, Some(5), 0), (2, "alice", 2, 3, None, 3), (3, "bob", 3, 1, None, 1)];
        for (id, account, bid, count, processed, rows) in batches {
            let count = if bad_count && id == 3 { count + 1 } else { count };
            conn.execute(
                "INSERT INTO inbox_batch (id, account, batch_id, voucher_count, received_at, processed_at)
                 VALUES (?1, ?2, ?3, ?4, 1, ?5)",
                params![id, account, &[bid; 16][..], count, processed],
            )
            .unwrap();
            // Inserted in reverse to check that the order is by idx.
            for idx in (0..rows).rev() {
                conn.execute(
                    "INSERT INTO inbox_voucher (batch, idx, voucher) VALUES (?1, ?2, ?3)",
                    params![id, i64::from(idx), vec![bid, idx, 0x5a]],
                )
                .unwrap();
            }
        }
    }

    fn version(path: &Path) -> i64 {
        Connection::open(path).unwrap().query_row("SELECT MAX(version) FROM schema_version", [], |r| r.get(0)).unwrap()
    }

    #[test]
    fn v1_inbox_rows_move_into_blobs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v1.db");
        v1_database(&path, false);
        assert_eq!(version(&path), 1);

        let s = SqliteStore::open(&path).unwrap();
        assert_eq!(version(&path), SqliteStore::schema_version());
        let pending = s.next_unprocessed(10).unwrap();
        assert_eq!(pending.len(), 2);
        assert_eq!((pending[0].id, pending[0].account.as_str()), (InboxId(2), "alice"));
        assert_eq!(pending[0].vouchers, vec![vec![2, 0, 0x5a], vec![2, 1, 0x5a], vec![2, 2, 0x5a]]);
        assert_eq!(pending[1].batch_id, [3; 16]);
        assert_eq!(pending[1].vouchers, vec![vec![3, 0, 0x5a]]);
        {
            let conn = s.lock();
            let tables: i64 = conn
                .query_row("SELECT COUNT(*) FROM sqlite_master WHERE name = 'inbox_voucher'", [], |r| r.get(0))
                .unwrap();
            assert_eq!(tables, 0, "the per-voucher table is gone");
            let processed_blob: Option<Vec<u8>> =
                conn.query_row("SELECT vouchers FROM inbox_batch WHERE id = 1", [], |r| r.get(0)).unwrap();
            assert_eq!(processed_blob, None);
        }
        // Idempotency survives the migration, for processed and pending batches.
        for (account, bid, n) in [("alice", 1u8, 2u32), ("alice", 2, 3), ("bob", 3, 1)] {
            assert_eq!(
                s.insert_batch(account, [bid; 16], &[vec![0]], 9).unwrap(),
                InsertOutcome::Duplicate { vouchers: n }
            );
        }
        // The migrated batches process normally.
        let res = BatchResults { non_matches: 3, ..Default::default() };
        s.complete_batch(InboxId(2), &res, 10).unwrap();
        assert_eq!(s.counters("alice").unwrap().received, 3);
        assert_eq!(s.next_unprocessed(10).unwrap().len(), 1);
        drop(s);
        // Reopening applies nothing twice.
        let s = SqliteStore::open(&path).unwrap();
        assert_eq!(version(&path), SqliteStore::schema_version());
        assert_eq!(s.next_unprocessed(10).unwrap()[0].vouchers, vec![vec![3, 0, 0x5a]]);
    }

    #[test]
    fn inconsistent_v1_inbox_aborts_the_migration_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v1.db");
        v1_database(&path, true);
        assert!(matches!(SqliteStore::open(&path), Err(StoreError::Corrupt(_))));
        assert_eq!(version(&path), 1);
        let rows: i64 =
            Connection::open(&path).unwrap().query_row("SELECT COUNT(*) FROM inbox_voucher", [], |r| r.get(0)).unwrap();
        assert_eq!(rows, 4, "the v1 rows are untouched");
    }

    /// A v3 database written by this crate's code (inbox, counters, audit
    /// log) plus the case rows v3's `create_case`, `set_case_status` and
    /// `purge_order` wrote, opened by the current build: everything reads
    /// back, ids are kept, the items survive the rebuild of `case_file`, and
    /// the new features work on the migrated cases.
    #[test]
    fn v3_database_with_cases_migrates_to_the_current_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v3.db");
        const ORDER: [u8; 16] = [7; 16];
        {
            let mut conn = Connection::open(&path).unwrap();
            let _mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0)).unwrap();
            configure(&conn).unwrap();
            migrate_to(&mut conn, 3).unwrap();
            let v3 = SqliteStore { conn: Mutex::new(conn), intake: None, write_gate: Mutex::new(()), spool: None };
            v3.append_audit(&AuditEntry { at: 6, actor: "server", action: "case.create", detail: "case=1" }).unwrap();
            let conn = v3.lock();
            // What v3's insert_batch and complete_batch left of a processed batch of two vouchers.
            conn.execute_batch(
                "INSERT INTO inbox_batch (id, account, batch_id, voucher_count, received_at, processed_at)
                     VALUES (1, 'alice', x'01010101010101010101010101010101', 2, 5, 6);
                 INSERT INTO account_counter (account, received, non_matches, opened, invalid)
                     VALUES ('alice', 2, 1, 0, 1);
                 INSERT INTO case_file (id, account, order_id, created_at, status) VALUES (1, 'alice', x'07070707070707070707070707070707', 10, 'open');
                 INSERT INTO case_file (id, account, order_id, created_at, status, reviewer, reason, decided_at)
                     VALUES (2, 'bob', x'07070707070707070707070707070707', 11, 'confirmed', 'rev', 'match', 20);
                 INSERT INTO case_file (id, account, order_id, created_at, status, reviewer, reason, decided_at, ad_purged)
                     VALUES (5, 'carol', x'07070707070707070707070707070707', 12, 'rejected', 'rev', 'no', 21, 1);
                 INSERT INTO case_item (case_id, pos, voucher_id, ad) VALUES
                     (1, 0, x'01010101010101010101010101010101', x'aa01'),
                     (1, 1, x'02020202020202020202020202020202', x'aa02'),
                     (2, 0, x'03030303030303030303030303030303', x'aa03'),
                     (5, 0, x'04040404040404040404040404040404', NULL);",
            )
            .unwrap();
        }
        assert_eq!(version(&path), 3);

        let s = SqliteStore::open(&path).unwrap();
        assert_eq!(version(&path), SqliteStore::schema_version());
        let cases = s.list_cases(&CaseFilter::default()).unwrap();
        let got: Vec<_> = cases.iter().map(|c| (c.id.0, c.account.as_str(), c.status, c.items, c.ad_purged)).collect();
        assert_eq!(
            got,
            [
                (1, "alice", CaseStatus::Open, 2, false),
                (2, "bob", CaseStatus::Confirmed, 1, false),
                (5, "carol", CaseStatus::Rejected, 1, true)
            ]
        );
        let bob = &cases[1];
        assert_eq!(
            (bob.reviewer.as_deref(), bob.reason.as_deref(), bob.decided_at),
            (Some("rev"), Some("match"), Some(20))
        );
        assert_eq!((bob.order_id, bob.created_at), (ORDER, 11));
        for c in &cases {
            assert_eq!(
                (c.four_eyes, c.urgent, c.closed_at, c.report_id, c.confirmations),
                (false, false, None, None, 0)
            );
            assert_eq!((c.centre_verdict.as_deref(), c.centre_reason.as_deref()), (None, None));
        }
        let alice = s.get_case(CaseId(1)).unwrap().unwrap();
        assert_eq!(
            alice.items,
            [CaseItem { voucher_id: [1; 16], ad: vec![0xaa, 1] }, CaseItem { voucher_id: [2; 16], ad: vec![0xaa, 2] }]
        );
        assert_eq!(s.counters("alice").unwrap(), Counters { received: 2, non_matches: 1, opened: 0, invalid: 1 });
        assert_eq!(s.verify_audit_chain().unwrap().entries, 1);
        {
            let conn = s.lock();
            let fk: bool = conn.pragma_query_value(None, "foreign_keys", |r| r.get(0)).unwrap();
            assert!(fk, "foreign keys are back on after the migration");
            let violations: i64 =
                conn.query_row("SELECT COUNT(*) FROM pragma_foreign_key_check", [], |r| r.get(0)).unwrap();
            assert_eq!(violations, 0);
        }

        // The new features work on a migrated case, and new ids follow the old ones.
        let d = DecideCase {
            case: CaseId(1),
            decision: NewDecision {
                reviewer: "rev",
                role: "reviewer",
                verdict: "confirm",
                reason: "match",
                comment: "",
                at: 30,
                urgent: false,
            },
            expected_decisions: 0,
            new_status: CaseStatus::Confirmed,
            report_id: Some([9; 16]),
            outbox: None,
            rejected_primaries: &[],
            audit: &[],
        };
        assert_eq!(s.decide_case(&d).unwrap().status, CaseStatus::Confirmed);
        let new = s
            .create_case(&NewCase {
                account: "dave",
                order_id: ORDER,
                created_at: 40,
                items: &[],
                actor: "server",
                four_eyes: true,
                claimed_by: None,
            })
            .unwrap();
        assert_eq!(new, CaseId(6));
        drop(s);
        // Reopening applies nothing twice.
        let s = SqliteStore::open(&path).unwrap();
        assert_eq!(version(&path), SqliteStore::schema_version());
        assert_eq!(s.list_cases(&CaseFilter::default()).unwrap().len(), 4);
        assert_eq!(s.get_case(CaseId(1)).unwrap().unwrap().items.len(), 2);
    }

    /// A v4 database (threshold state per account, batches without digests) opened by the current build: every
    /// old row is in the default client state, a pending batch still processes and a retry of a pre-v5 batch stays
    /// idempotent on its id alone, and new batches get client states and digests.
    #[test]
    fn v4_database_migrates_to_client_states() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v4.db");
        const ORDER: [u8; 16] = [7; 16];
        {
            let mut conn = Connection::open(&path).unwrap();
            let _mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0)).unwrap();
            configure(&conn).unwrap();
            migrate_to(&mut conn, 4).unwrap();
            let blob = crate::inbox::encode(&[vec![4u8, 5]]).unwrap();
            conn.execute(
                "INSERT INTO inbox_batch (id, account, batch_id, voucher_count, received_at, processed_at)
                     VALUES (1, 'alice', x'01010101010101010101010101010101', 1, 5, 6)",
                [],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO inbox_batch (id, account, batch_id, voucher_count, received_at, vouchers)
                     VALUES (2, 'alice', x'02020202020202020202020202020202', 1, 7, ?1)",
                rusqlite::params![blob],
            )
            .unwrap();
            conn.execute_batch(
                "INSERT INTO opened_voucher (account, order_id, voucher_id, payload, batch)
                     VALUES ('alice', x'07070707070707070707070707070707', x'09090909090909090909090909090909', x'aa', 1);
                 INSERT INTO account_state (account, order_id, state)
                     VALUES ('alice', x'07070707070707070707070707070707', x'bb');",
            )
            .unwrap();
        }
        let s = SqliteStore::open(&path).unwrap();
        assert_eq!(version(&path), SqliteStore::schema_version());
        let d = DEFAULT_CLIENT_STATE;
        assert_eq!(s.account_state("alice", d, ORDER).unwrap().map(|z| z.to_vec()), Some(vec![0xbb]));
        assert_eq!(s.state_opened_vouchers("alice", d, ORDER).unwrap().len(), 1);
        assert_eq!(s.opened_voucher_ids("alice", d, ORDER).unwrap(), vec![[9; 16]]);
        assert_eq!(s.stats().unwrap().client_states, 1);
        // A pre-v5 batch has no digest: a retry is answered on its id alone, whatever it carries.
        assert_eq!(s.insert_batch("alice", [1; 16], &[vec![0]], 9).unwrap(), InsertOutcome::Duplicate { vouchers: 1 });
        let pending = s.next_unprocessed(10).unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!((pending[0].client_state, pending[0].vouchers.clone()), (d, vec![vec![4u8, 5]]));
        // Its bytes were not recorded before v5: the backlog counts its in-row blob (5 + 4 + 2 bytes).
        assert_eq!(s.backlog().unwrap(), Backlog { batches: 1, vouchers: 1, bytes: 11 });
        // New batches have digests.
        let nb = NewBatch {
            account: "alice",
            client_state: [3; 16],
            batch_id: [3; 16],
            vouchers: &[vec![1, 2, 3]],
            received_at: 10,
            state_limit: Some((ORDER, 2)),
        };
        assert_eq!(s.store_batch(&nb).unwrap(), InsertOutcome::Inserted { vouchers: 1 });
        let other = NewBatch { vouchers: &[vec![1, 2, 4]], ..nb };
        assert!(matches!(s.store_batch(&other), Err(StoreError::BatchConflict)));
        let third = NewBatch { client_state: [4; 16], batch_id: [4; 16], ..nb };
        assert!(matches!(s.store_batch(&third), Err(StoreError::TooManyClientStates { max: 2 })));
    }
}
