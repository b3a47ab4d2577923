//! Embedded SQLite implementation of [`Store`].

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use zeroize::Zeroizing;

use crate::audit::{AUDIT_GENESIS, audit_hash};
use crate::inbox;
use crate::schema::{INBOX_BLOB_MIGRATION, MIGRATIONS};
use crate::spool::{self, Spool};
use crate::types::*;
use crate::{CachedVouchers, Result, Store, StoreError};

/// How long a writer waits for a lock held by another connection.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Upper bound on account and actor identifiers, in bytes.
const MAX_ID_LEN: usize = 512;

/// [`Store`] on an embedded SQLite database.
///
/// The database runs in WAL mode with `synchronous = FULL` (a committed
/// transaction survives power loss or `kill -9`), foreign keys on, and
/// `secure_delete` on so deleted data (processed raw vouchers, purged order
/// data) is overwritten rather than left in free pages.
///
/// A file database has two connections: one for the intake
/// ([`Store::insert_batch`]) and one for everything else (the worker, review,
/// statistics). WAL lets the worker read the inbox while a batch is being
/// stored; the writes of both connections are serialised by an in-process
/// write gate taken right before `BEGIN IMMEDIATE`, so they queue on a mutex
/// instead of SQLite's sleeping busy handler (which still covers other
/// processes, with a 10 s timeout). An in-memory database has one connection.
///
/// The raw vouchers of an unprocessed batch of a file database are not in
/// the database but in a spool file in `<path>.inbox/` (see the `spool`
/// module): written and synced before the batch's row is committed, read by
/// the worker, overwritten with zeros and unlinked once the batch is
/// processed. Back up the database file and that directory together. An
/// in-memory database keeps the vouchers in the row.
pub struct SqliteStore {
    conn: Mutex<Connection>,
    intake: Option<Mutex<Connection>>,
    write_gate: Mutex<()>,
    spool: Option<Spool>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

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

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and applies pending
    /// migrations.
    ///
    /// Also opens (creating if needed) the spool directory `<path>.inbox/`.
    /// If no other process has the database open, spool files that no
    /// unprocessed batch names (left by a crash before a batch's row was
    /// committed, or after a processed batch's row was committed but before
    /// its file was shredded) are shredded now.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let spool = Spool::open(&spool::dir_for(path))?;
        let mut store = Self::init(Connection::open(path)?)?;
        let intake = Connection::open(path)?;
        configure(&intake)?;
        store.intake = Some(Mutex::new(intake));
        if spool.exclusive_at_open() {
            let keep: HashSet<String> = {
                let conn = store.lock();
                let mut stmt =
                    conn.prepare("SELECT spool FROM inbox_batch WHERE processed_at IS NULL AND spool IS NOT NULL")?;
                stmt.query_map([], |r| r.get::<_, String>(0))?.collect::<rusqlite::Result<_>>()?
            };
            spool.sweep(&keep)?;
            spool.share()?;
        }
        store.spool = Some(spool);
        Ok(store)
    }

    /// Opens a private in-memory database (for tests and dry runs).
    pub fn open_in_memory() -> Result<Self> {
        Self::init(Connection::open_in_memory()?)
    }

    /// Schema version this build creates and understands.
    pub fn schema_version() -> i64 {
        MIGRATIONS.len() as i64
    }

    fn init(mut conn: Connection) -> Result<Self> {
        // Only takes effect when the database is created (before the first
        // table); an existing file keeps its page size.
        conn.pragma_update(None, "page_size", PAGE_SIZE)?;
        // Returns the resulting mode ("memory" for in-memory databases).
        let _mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
        configure(&conn)?;
        migrate(&mut conn)?;
        Ok(SqliteStore { conn: Mutex::new(conn), intake: None, write_gate: Mutex::new(()), spool: None })
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock dropped its transaction, which rolled
        // back: the connection is consistent, so poisoning can be ignored.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_intake(&self) -> MutexGuard<'_, Connection> {
        match &self.intake {
            Some(m) => m.lock().unwrap_or_else(|e| e.into_inner()),
            None => self.lock(),
        }
    }

    /// The stored vouchers of unprocessed batch `id` (`count` of them): its
    /// in-row blob, or else its spool file. Damage confined to the batch's
    /// vouchers is reported as [`StoreError::UnreadableBatch`], so the caller
    /// can set that batch aside; other errors (I/O) pass through.
    fn stored_vouchers(
        &self,
        id: InboxId,
        count: u64,
        blob: Option<Vec<u8>>,
        file: Option<String>,
    ) -> Result<Vec<Vec<u8>>> {
        let unreadable = |e: StoreError| match e {
            StoreError::Corrupt(reason) => StoreError::UnreadableBatch { id, vouchers: count, reason },
            e => e,
        };
        let blob = match (blob, file, &self.spool) {
            (Some(blob), _, _) => blob,
            (None, Some(f), Some(spool)) => spool.read(&f).map_err(unreadable)?,
            (None, Some(_), None) => {
                return Err(unreadable(StoreError::Corrupt("spool file named in an in-memory database")));
            }
            (None, None, _) => {
                return Err(unreadable(StoreError::Corrupt("unprocessed batch without vouchers")));
            }
        };
        inbox::decode(&blob, count).map_err(unreadable)
    }

    /// Serialises this process's write transactions. Always taken after a
    /// connection lock and released before it (at the end of the method), so
    /// the lock order is fixed and cannot deadlock.
    fn gate(&self) -> MutexGuard<'_, ()> {
        self.write_gate.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` in one write transaction on the main connection: connection
    /// lock, write gate, `BEGIN IMMEDIATE`, `f`, `COMMIT`. An error from `f`
    /// drops the transaction, which rolls back: nothing of it is written.
    fn write<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        self.write_on(&mut self.lock(), f)
    }

    /// [`Self::write`] on an already locked connection (the intake's).
    fn write_on<T>(&self, conn: &mut Connection, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        let _w = self.gate();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }
}

/// Per-connection settings (`journal_mode = WAL` is persistent in the file).
fn configure(conn: &Connection) -> Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "secure_delete", "ON")?;
    conn.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES)?;
    Ok(())
}

fn migrate(conn: &mut Connection) -> Result<()> {
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
        tx.execute_batch(sql)?;
        if i + 1 == INBOX_BLOB_MIGRATION {
            move_inbox_rows_to_blobs(&tx)?;
        }
        tx.execute(
            "INSERT INTO schema_version (version, applied_at) VALUES (?1, CAST(strftime('%s','now') AS INTEGER))",
            params![i as i64 + 1],
        )?;
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

// ---- conversions --------------------------------------------------------------

fn to_i64(v: u64) -> Result<i64> {
    i64::try_from(v).map_err(|_| StoreError::InvalidArgument("count out of range"))
}

fn to_u64(v: i64) -> Result<u64> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt("negative count"))
}

fn id16(v: &[u8]) -> Result<[u8; 16]> {
    <[u8; 16]>::try_from(v).map_err(|_| StoreError::Corrupt("id is not 16 bytes"))
}

fn hash32(v: &[u8]) -> Result<[u8; 32]> {
    <[u8; 32]>::try_from(v).map_err(|_| StoreError::Corrupt("hash is not 32 bytes"))
}

fn limit_i64(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

fn check_id(s: &str, what: &'static str) -> Result<()> {
    if s.is_empty() || s.len() > MAX_ID_LEN {
        return Err(StoreError::InvalidArgument(what));
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn append_audit_tx(tx: &Transaction<'_>, e: &AuditEntry<'_>) -> Result<AuditRecord> {
    check_id(e.actor, "audit actor must be 1..=512 bytes")?;
    if e.action.is_empty() {
        return Err(StoreError::InvalidArgument("audit action must not be empty"));
    }
    let last: Option<(i64, Vec<u8>)> = tx
        .query_row("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let (seq, prev_hash) = match last {
        Some((s, h)) => (to_u64(s)?.checked_add(1).ok_or(StoreError::Corrupt("audit seq"))?, hash32(&h)?),
        None => (1, AUDIT_GENESIS),
    };
    let hash = audit_hash(&prev_hash, seq, e.at, e.actor, e.action, e.detail);
    tx.execute(
        "INSERT INTO audit_log (seq, at, actor, action, detail, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![to_i64(seq)?, e.at, e.actor, e.action, e.detail, &prev_hash[..], &hash[..]],
    )?;
    Ok(AuditRecord {
        seq,
        at: e.at,
        actor: e.actor.to_owned(),
        action: e.action.to_owned(),
        detail: e.detail.to_owned(),
        prev_hash,
        hash,
    })
}

const CASE_COLUMNS: &str = "c.id, c.account, c.order_id, c.created_at, c.status, c.reviewer, c.reason,
     c.decided_at, c.ad_purged, (SELECT COUNT(*) FROM case_item i WHERE i.case_id = c.id)";

fn case_summary(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<CaseSummary>> {
    let order: Vec<u8> = r.get(2)?;
    let status: String = r.get(4)?;
    let items: i64 = r.get(9)?;
    let build = || -> Result<CaseSummary> {
        Ok(CaseSummary {
            id: CaseId(r.get(0)?),
            account: r.get(1)?,
            order_id: id16(&order)?,
            created_at: r.get(3)?,
            status: CaseStatus::parse(&status).ok_or(StoreError::Corrupt("case status"))?,
            reviewer: r.get(5)?,
            reason: r.get(6)?,
            decided_at: r.get(7)?,
            ad_purged: r.get::<_, i64>(8)? != 0,
            items: to_u64(items)?,
        })
    };
    Ok(build())
}

fn collect<T>(rows: impl Iterator<Item = rusqlite::Result<Result<T>>>) -> Result<Vec<T>> {
    let mut out = Vec::new();
    for row in rows {
        out.push(row??);
    }
    Ok(out)
}

/// Applies one batch's results inside `tx` (see [`Store::complete_batch`]).
/// Returns the outcome and the name of the batch's spool file, to shred once
/// `tx` has committed.
fn complete_one(
    tx: &Transaction<'_>,
    inbox_id: InboxId,
    results: &BatchResults,
    processed_at: i64,
) -> Result<(CompleteOutcome, Option<String>)> {
    type Row = (String, i64, Option<i64>, Option<String>);
    let row: Option<Row> = tx
        .prepare_cached("SELECT account, voucher_count, processed_at, spool FROM inbox_batch WHERE id = ?1")?
        .query_row(params![inbox_id.0], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .optional()?;
    let Some((account, count, processed, spool_file)) = row else {
        return Err(StoreError::NotFound("inbox batch"));
    };
    if processed.is_some() {
        return Ok((CompleteOutcome::AlreadyProcessed, None));
    }
    let count = to_u64(count)?;
    let accounted =
        results.non_matches.checked_add(results.invalid).and_then(|n| n.checked_add(results.opened.len() as u64));
    if accounted != Some(count) {
        return Err(StoreError::InvalidArgument("results do not account for every voucher of the batch"));
    }

    let mut opened_new = 0u64;
    {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO opened_voucher (account, order_id, voucher_id, payload, batch)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (account, order_id, voucher_id) DO NOTHING",
        )?;
        for o in &results.opened {
            opened_new +=
                stmt.execute(params![account, &o.order_id[..], &o.voucher_id[..], o.payload, inbox_id.0])? as u64;
        }
    }
    let opened_duplicate = results.opened.len() as u64 - opened_new;
    // A replayed voucher (same account, order and id) counts as invalid, so
    // the counters always add up to `received`.
    let invalid =
        results.invalid.checked_add(opened_duplicate).ok_or(StoreError::InvalidArgument("count out of range"))?;
    tx.prepare_cached(
        "INSERT INTO account_counter (account, received, non_matches, opened, invalid)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (account) DO UPDATE SET
             received    = received    + excluded.received,
             non_matches = non_matches + excluded.non_matches,
             opened      = opened      + excluded.opened,
             invalid     = invalid     + excluded.invalid",
    )?
    .execute(params![
        account,
        to_i64(count)?,
        to_i64(results.non_matches)?,
        to_i64(opened_new)?,
        to_i64(invalid)?
    ])?;
    {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO account_state (account, order_id, state) VALUES (?1, ?2, ?3)
             ON CONFLICT (account, order_id) DO UPDATE SET state = excluded.state",
        )?;
        for st in &results.state {
            stmt.execute(params![account, &st.order_id[..], st.state])?;
        }
    }
    // Marks the batch processed and drops its raw vouchers: a blob in the row
    // is overwritten with zeros by `secure_delete`; a spool file is shredded by
    // the caller after the commit.
    tx.prepare_cached("UPDATE inbox_batch SET processed_at = ?1, vouchers = NULL, spool = NULL WHERE id = ?2")?
        .execute(params![processed_at, inbox_id.0])?;
    Ok((CompleteOutcome::Completed { opened_new, opened_duplicate }, spool_file))
}

impl Store for SqliteStore {
    fn insert_batch(
        &self,
        account: &str,
        batch_id: [u8; 16],
        vouchers: &[Vec<u8>],
        received_at: i64,
    ) -> Result<InsertOutcome> {
        check_id(account, "account must be 1..=512 bytes")?;
        let count =
            u32::try_from(vouchers.len()).map_err(|_| StoreError::InvalidArgument("too many vouchers in one batch"))?;
        fn existing(conn: &Connection, account: &str, batch_id: &[u8; 16]) -> Result<Option<u32>> {
            let n: Option<i64> = conn
                .prepare_cached("SELECT voucher_count FROM inbox_batch WHERE account = ?1 AND batch_id = ?2")?
                .query_row(params![account, &batch_id[..]], |r| r.get(0))
                .optional()?;
            n.map(|n| u32::try_from(n).map_err(|_| StoreError::Corrupt("voucher count"))).transpose()
        }
        // A retry of a stored batch is answered without writing anything.
        if let Some(vouchers) = existing(&self.lock_intake(), account, &batch_id)? {
            return Ok(InsertOutcome::Duplicate { vouchers });
        }
        // Encoded, and in a file database written to its spool file and
        // synced, before the write lock is taken.
        let blob = inbox::encode(vouchers)?;
        let (blob, file) = match &self.spool {
            Some(spool) => (None, Some(spool.write(&blob)?)),
            None => (Some(blob), None),
        };
        let inserted = self.write_on(&mut self.lock_intake(), |tx| {
            // A concurrent retry may have stored the batch meanwhile.
            if let Some(vouchers) = existing(tx, account, &batch_id)? {
                return Ok(InsertOutcome::Duplicate { vouchers });
            }
            tx.prepare_cached(
                "INSERT INTO inbox_batch (account, batch_id, voucher_count, received_at, vouchers, spool)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![account, &batch_id[..], i64::from(count), received_at, blob, file])?;
            Ok(InsertOutcome::Inserted { vouchers: count })
        });
        // The file of a batch that was not inserted is shredded now, unless the
        // insert failed: a failed COMMIT may still have committed, so that
        // file is left to the sweep at the next exclusive open, which keeps it
        // if a row names it.
        if let (Ok(InsertOutcome::Duplicate { .. }), Some(spool), Some(f)) = (&inserted, &self.spool, &file) {
            let _ = spool.shred(f);
        }
        inserted
    }

    fn next_unprocessed_with(
        &self,
        limit: usize,
        after: Option<InboxId>,
        cached: &mut CachedVouchers<'_>,
    ) -> Result<Vec<InboxBatch>> {
        type Row = (i64, String, Vec<u8>, i64, i64, Option<Vec<u8>>, Option<String>);
        // The rows under the lock; the spool files are read after it is released.
        let rows: Vec<Row> = {
            let conn = self.lock();
            let mut stmt = conn.prepare_cached(
                "SELECT id, account, batch_id, received_at, voucher_count, vouchers, spool FROM inbox_batch
                 WHERE processed_at IS NULL AND id > ?2 ORDER BY id LIMIT ?1",
            )?;
            stmt.query_map(params![limit_i64(limit), after.map_or(i64::MIN, |a| a.0)], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?))
            })?
            .collect::<rusqlite::Result<_>>()?
        };
        rows.into_iter()
            .map(|(id, account, batch_id, received_at, count, blob, file)| {
                let count = to_u64(count)?;
                let batch_id = id16(&batch_id)?;
                let vouchers = match cached(&account, &batch_id).filter(|v| u64::try_from(v.len()).ok() == Some(count))
                {
                    Some(vouchers) => vouchers,
                    None => self.stored_vouchers(InboxId(id), count, blob, file)?,
                };
                Ok(InboxBatch { id: InboxId(id), account, batch_id, vouchers, received_at })
            })
            .collect()
    }

    fn complete_batch(&self, inbox_id: InboxId, results: &BatchResults, processed_at: i64) -> Result<CompleteOutcome> {
        let mut out = self.complete_batches(&[(inbox_id, results)], processed_at)?;
        out.pop().ok_or(StoreError::Corrupt("no outcome"))
    }

    fn complete_batches(
        &self,
        batches: &[(InboxId, &BatchResults)],
        processed_at: i64,
    ) -> Result<Vec<CompleteOutcome>> {
        let (out, files) = self.write(|tx| {
            let mut out = Vec::with_capacity(batches.len());
            let mut files = Vec::new();
            for (inbox_id, results) in batches {
                let (outcome, file) = complete_one(tx, *inbox_id, results, processed_at)?;
                out.push(outcome);
                files.extend(file);
            }
            Ok((out, files))
        })?;
        // Committed: the batches are processed whatever happens next. A file
        // that cannot be shredded now is an orphan, shredded by the sweep at
        // the next exclusive open.
        if let Some(spool) = &self.spool {
            for f in &files {
                let _ = spool.shred(f);
            }
        }
        Ok(out)
    }

    fn opened_voucher_ids(&self, account: &str, order_id: [u8; 16]) -> Result<Vec<[u8; 16]>> {
        let conn = self.lock();
        let mut stmt =
            conn.prepare_cached("SELECT voucher_id FROM opened_voucher WHERE account = ?1 AND order_id = ?2")?;
        let rows = stmt.query_map(params![account, &order_id[..]], |r| {
            let id: Vec<u8> = r.get(0)?;
            Ok(id16(&id))
        })?;
        collect(rows)
    }

    fn case_voucher_ids(&self, account: &str, order_id: [u8; 16]) -> Result<Vec<[u8; 16]>> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT i.voucher_id FROM case_item i JOIN case_file c ON c.id = i.case_id
             WHERE c.account = ?1 AND c.order_id = ?2",
        )?;
        let rows = stmt.query_map(params![account, &order_id[..]], |r| {
            let id: Vec<u8> = r.get(0)?;
            Ok(id16(&id))
        })?;
        collect(rows)
    }

    fn counters(&self, account: &str) -> Result<Counters> {
        let conn = self.lock();
        let row: Option<(i64, i64, i64, i64)> = conn
            .query_row(
                "SELECT received, non_matches, opened, invalid FROM account_counter WHERE account = ?1",
                params![account],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?;
        match row {
            None => Ok(Counters::default()),
            Some((received, non_matches, opened, invalid)) => Ok(Counters {
                received: to_u64(received)?,
                non_matches: to_u64(non_matches)?,
                opened: to_u64(opened)?,
                invalid: to_u64(invalid)?,
            }),
        }
    }

    fn opened_vouchers(&self, account: &str, order_id: [u8; 16]) -> Result<Vec<OpenedVoucher>> {
        let conn = self.lock();
        let mut stmt = conn.prepare(
            "SELECT voucher_id, payload FROM opened_voucher
             WHERE account = ?1 AND order_id = ?2 ORDER BY seq",
        )?;
        let rows = stmt.query_map(params![account, &order_id[..]], |r| {
            let id: Vec<u8> = r.get(0)?;
            let payload: Vec<u8> = r.get(1)?;
            Ok(id16(&id).map(|voucher_id| OpenedVoucher { order_id, voucher_id, payload }))
        })?;
        collect(rows)
    }

    fn account_state(&self, account: &str, order_id: [u8; 16]) -> Result<Option<Zeroizing<Vec<u8>>>> {
        let conn = self.lock();
        let state: Option<Vec<u8>> = conn
            .query_row(
                "SELECT state FROM account_state WHERE account = ?1 AND order_id = ?2",
                params![account, &order_id[..]],
                |r| r.get(0),
            )
            .optional()?;
        Ok(state.map(Zeroizing::new))
    }

    fn set_account_state(&self, account: &str, order_id: [u8; 16], state: &[u8]) -> Result<()> {
        check_id(account, "account must be 1..=512 bytes")?;
        self.write(|tx| {
            tx.execute(
                "INSERT INTO account_state (account, order_id, state) VALUES (?1, ?2, ?3)
                 ON CONFLICT (account, order_id) DO UPDATE SET state = excluded.state",
                params![account, &order_id[..], state],
            )?;
            Ok(())
        })
    }

    fn create_case(&self, case: &NewCase<'_>) -> Result<CaseId> {
        check_id(case.account, "account must be 1..=512 bytes")?;
        self.write(|tx| {
            tx.execute(
                "INSERT INTO case_file (account, order_id, created_at, status) VALUES (?1, ?2, ?3, 'open')",
                params![case.account, &case.order_id[..], case.created_at],
            )?;
            let id = tx.last_insert_rowid();
            insert_items(tx, id, 0, case.items)?;
            let detail = format!("case={id} order={} items={}", hex(&case.order_id), case.items.len());
            append_audit_tx(
                tx,
                &AuditEntry { at: case.created_at, actor: case.actor, action: "case.create", detail: &detail },
            )?;
            Ok(CaseId(id))
        })
    }

    fn add_case_items(&self, case: CaseId, items: &[CaseItem]) -> Result<()> {
        self.write(|tx| {
            let purged: Option<i64> = tx
                .query_row("SELECT ad_purged FROM case_file WHERE id = ?1", params![case.0], |r| r.get(0))
                .optional()?;
            match purged {
                None => return Err(StoreError::NotFound("case")),
                Some(p) if p != 0 => {
                    return Err(StoreError::InvalidArgument("the case's order data was purged"));
                }
                Some(_) => {}
            }
            let next: i64 = tx.query_row(
                "SELECT COALESCE(MAX(pos), -1) + 1 FROM case_item WHERE case_id = ?1",
                params![case.0],
                |r| r.get(0),
            )?;
            insert_items(tx, case.0, next, items)
        })
    }

    fn list_cases(&self, filter: &CaseFilter) -> Result<Vec<CaseSummary>> {
        let conn = self.lock();
        let sql = format!(
            "SELECT {CASE_COLUMNS} FROM case_file c
             WHERE (?1 IS NULL OR c.status = ?1)
               AND (?2 IS NULL OR c.account = ?2)
               AND (?3 IS NULL OR c.order_id = ?3)
             ORDER BY c.id"
        );
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt.query_map(
            params![
                filter.status.map(CaseStatus::as_str),
                filter.account.as_deref(),
                filter.order_id.as_ref().map(|o| &o[..])
            ],
            case_summary,
        )?;
        collect(rows)
    }

    fn get_case(&self, case: CaseId) -> Result<Option<Case>> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let sql = format!("SELECT {CASE_COLUMNS} FROM case_file c WHERE c.id = ?1");
        let summary = tx.query_row(&sql, params![case.0], case_summary).optional()?;
        let Some(summary) = summary.transpose()? else {
            return Ok(None);
        };
        let mut stmt = tx.prepare("SELECT voucher_id, ad FROM case_item WHERE case_id = ?1 ORDER BY pos")?;
        let rows = stmt.query_map(params![case.0], |r| {
            let id: Vec<u8> = r.get(0)?;
            let ad: Option<Vec<u8>> = r.get(1)?;
            Ok(id16(&id).map(|voucher_id| CaseItem { voucher_id, ad: ad.unwrap_or_default() }))
        })?;
        let items = collect(rows)?;
        Ok(Some(Case { summary, items }))
    }

    fn set_case_status(&self, case: CaseId, d: &CaseDecision<'_>) -> Result<()> {
        check_id(d.reviewer, "reviewer must be 1..=512 bytes")?;
        self.write(|tx| {
            let current: Option<String> =
                tx.query_row("SELECT status FROM case_file WHERE id = ?1", params![case.0], |r| r.get(0)).optional()?;
            let Some(current) = current else {
                return Err(StoreError::NotFound("case"));
            };
            let current = CaseStatus::parse(&current).ok_or(StoreError::Corrupt("case status"))?;
            if d.status == CaseStatus::Open || d.status == current {
                return Err(StoreError::InvalidTransition);
            }
            tx.execute(
                "UPDATE case_file SET status = ?1, reviewer = ?2, reason = ?3, decided_at = ?4 WHERE id = ?5",
                params![d.status.as_str(), d.reviewer, d.reason, d.at, case.0],
            )?;
            let detail = format!("case={} status={} previous={}", case.0, d.status.as_str(), current.as_str());
            append_audit_tx(tx, &AuditEntry { at: d.at, actor: d.reviewer, action: "case.status", detail: &detail })?;
            Ok(())
        })
    }

    fn append_audit(&self, entry: &AuditEntry<'_>) -> Result<AuditRecord> {
        self.append_audits(std::slice::from_ref(entry))?.pop().ok_or(StoreError::Corrupt("no audit record"))
    }

    fn append_audits(&self, entries: &[AuditEntry<'_>]) -> Result<Vec<AuditRecord>> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        self.write(|tx| entries.iter().map(|e| append_audit_tx(tx, e)).collect())
    }

    fn audit_entries(&self, after_seq: u64, limit: usize) -> Result<Vec<AuditRecord>> {
        let conn = self.lock();
        let mut stmt = conn.prepare(
            "SELECT seq, at, actor, action, detail, prev_hash, hash FROM audit_log
             WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        )?;
        let after = i64::try_from(after_seq).unwrap_or(i64::MAX);
        let rows = stmt.query_map(params![after, limit_i64(limit)], audit_row)?;
        collect(rows)
    }

    fn verify_audit_chain(&self) -> Result<AuditHead> {
        let conn = self.lock();
        let mut stmt =
            conn.prepare("SELECT seq, at, actor, action, detail, prev_hash, hash FROM audit_log ORDER BY seq")?;
        let mut rows = stmt.query_map([], audit_row)?;
        let mut head = AUDIT_GENESIS;
        let mut expected = 1u64;
        for row in &mut rows {
            let rec = match row? {
                Ok(rec) => rec,
                Err(StoreError::Corrupt(_)) => {
                    return Err(StoreError::AuditChainBroken { seq: expected });
                }
                Err(e) => return Err(e),
            };
            let recomputed = audit_hash(&rec.prev_hash, rec.seq, rec.at, &rec.actor, &rec.action, &rec.detail);
            if rec.seq != expected || rec.prev_hash != head || rec.hash != recomputed {
                return Err(StoreError::AuditChainBroken { seq: expected });
            }
            head = rec.hash;
            expected += 1;
        }
        Ok(AuditHead { entries: expected - 1, head })
    }

    fn stats(&self) -> Result<GlobalStats> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let (accounts, received, non_matches, opened, invalid): (i64, i64, i64, i64, i64) = tx.query_row(
            "SELECT COUNT(*), COALESCE(SUM(received), 0), COALESCE(SUM(non_matches), 0),
                        COALESCE(SUM(opened), 0), COALESCE(SUM(invalid), 0)
                 FROM account_counter",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )?;
        let pending: i64 =
            tx.query_row("SELECT COUNT(*) FROM inbox_batch WHERE processed_at IS NULL", [], |r| r.get(0))?;
        let mut stats = GlobalStats {
            accounts: to_u64(accounts)?,
            vouchers_received: to_u64(received)?,
            non_matches: to_u64(non_matches)?,
            opened: to_u64(opened)?,
            invalid: to_u64(invalid)?,
            batches_pending: to_u64(pending)?,
            ..GlobalStats::default()
        };
        let mut stmt = tx.prepare("SELECT status, COUNT(*) FROM case_file GROUP BY status")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        for row in rows {
            let (status, n) = row?;
            let n = to_u64(n)?;
            match CaseStatus::parse(&status) {
                Some(CaseStatus::Open) => stats.cases_open = n,
                Some(CaseStatus::Confirmed) => stats.cases_confirmed = n,
                Some(CaseStatus::Rejected) => stats.cases_rejected = n,
                None => return Err(StoreError::Corrupt("case status")),
            }
        }
        Ok(stats)
    }

    fn purge_order(&self, order_id: [u8; 16], at: i64) -> Result<PurgeReport> {
        let mut conn = self.lock();
        let report = self.write_on(&mut conn, |tx| {
            let o = &order_id[..];
            let opened = tx.execute("DELETE FROM opened_voucher WHERE order_id = ?1", params![o])?;
            let states = tx.execute("DELETE FROM account_state WHERE order_id = ?1", params![o])?;
            let items = tx.execute(
                "UPDATE case_item SET ad = NULL
                 WHERE ad IS NOT NULL AND case_id IN (SELECT id FROM case_file WHERE order_id = ?1)",
                params![o],
            )?;
            tx.execute("UPDATE case_file SET ad_purged = 1 WHERE order_id = ?1", params![o])?;
            let report =
                PurgeReport { opened_vouchers: opened as u64, states: states as u64, case_items: items as u64 };
            let detail = format!(
                "order={} opened_vouchers={} states={} case_items={}",
                hex(o),
                report.opened_vouchers,
                report.states,
                report.case_items
            );
            append_audit_tx(tx, &AuditEntry { at, actor: "retention", action: "order.purge", detail: &detail })?;
            Ok(report)
        })?;
        // Best effort: move the purged pages out of the WAL into the (securely
        // overwritten) main file. Failure (e.g. a concurrent reader) is harmless;
        // a later checkpoint does it.
        let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        Ok(report)
    }
}

fn insert_items(tx: &Transaction<'_>, case: i64, first_pos: i64, items: &[CaseItem]) -> Result<()> {
    let mut stmt = tx.prepare(
        "INSERT INTO case_item (case_id, pos, voucher_id, ad) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (case_id, voucher_id) DO NOTHING",
    )?;
    let mut pos = first_pos;
    for item in items {
        if stmt.execute(params![case, pos, &item.voucher_id[..], item.ad])? > 0 {
            pos += 1;
        }
    }
    Ok(())
}

fn audit_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<AuditRecord>> {
    let seq: i64 = r.get(0)?;
    let prev: Vec<u8> = r.get(5)?;
    let hash: Vec<u8> = r.get(6)?;
    let at: i64 = r.get(1)?;
    let actor: String = r.get(2)?;
    let action: String = r.get(3)?;
    let detail: String = r.get(4)?;
    Ok((|| {
        Ok(AuditRecord {
            seq: to_u64(seq)?,
            at,
            actor,
            action,
            detail,
            prev_hash: hash32(&prev)?,
            hash: hash32(&hash)?,
        })
    })())
}

#[cfg(test)]
mod migration_tests {
    use super::*;

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
}
