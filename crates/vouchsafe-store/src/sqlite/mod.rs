//! Embedded SQLite implementation of [`Store`].
//!
//! This file holds the [`SqliteStore`] type (open, connections, write gate)
//! and the `impl Store`, whose methods call into one module per job:
//! - `migrate`: per-connection settings and schema migrations;
//! - `convert`: conversions between SQLite values and the store's types;
//! - `inbox`: intake, reading back and completing batches;
//! - `accounts`: counters, opened vouchers and threshold state;
//! - `cases`: cases and their items;
//! - `review`: review decisions (the decision transaction);
//! - `outbox`: messages to the Centre and their delivery;
//! - `appeals`: notices to users and their appeals;
//! - `feedback`: second-hash drops and review rejections per primary;
//! - `audit`: appending to and reading the hash-chained audit log;
//! - `stats`: global totals and per-order statistics;
//! - `retention`: purging an expired order, closing cases whose appeal
//!   deadline passed, purging closed cases.
//!
//! What does not depend on SQLite stays out of these files, for other
//! backends to share: the audit chain's hashing, linking, verification and
//! entry details (`crate::audit`), argument checks (`crate::validate`), the
//! inbox blob encoding (`crate::inbox`) and the spool (`crate::spool`).

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, Transaction, TransactionBehavior};
use zeroize::Zeroizing;

use crate::schema::MIGRATIONS;
use crate::spool::{self, Spool};
use crate::types::*;
use crate::{CachedVouchers, Result, Store};

mod accounts;
mod appeals;
mod audit;
mod cases;
mod convert;
mod cosign;
mod feedback;
mod inbox;
mod migrate;
mod outbox;
mod retention;
mod review;
mod stats;

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

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and applies pending
    /// migrations.
    ///
    /// The database holds opened vouchers, account state and cases, so on
    /// Unix a database file that does not exist yet is created empty with
    /// mode 0600 before SQLite opens it (SQLite alone would create it with
    /// the process umask, typically 0644); SQLite then creates the `-wal`
    /// and `-shm` files with the database file's mode. The mode of an
    /// existing file is left as it is. (SQLite's special names, `""`,
    /// `":memory:"` and `file:` URIs, are passed to SQLite untouched.)
    ///
    /// Also opens (creating if needed) the spool directory `<path>.inbox/`.
    /// If no other process has the database open, spool files that no
    /// unprocessed batch names (left by a crash before a batch's row was
    /// committed, or after a processed batch's row was committed but before
    /// its file was shredded) are shredded now.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let spool = Spool::open(&spool::dir_for(path))?;
        create_private(path)?;
        let mut store = Self::init(Connection::open(path)?)?;
        let intake = Connection::open(path)?;
        migrate::configure(&intake)?;
        store.intake = Some(Mutex::new(intake));
        if spool.exclusive_at_open() {
            let keep: HashSet<String> = inbox::pending_spool_files(&store.lock())?;
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
        migrate::prepare(&mut conn)?;
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

/// Creates the database file at `path`, empty and with mode 0600, unless it
/// exists (then it is left as it is) or `path` is one of SQLite's special
/// names rather than a file. SQLite gives the `-wal` and `-shm` files it
/// creates next to a database the database file's mode.
#[cfg(unix)]
fn create_private(path: &Path) -> Result<()> {
    use std::fs::{OpenOptions, Permissions};
    use std::io::ErrorKind;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};

    use crate::StoreError;

    let name = path.as_os_str();
    if name.is_empty() || name == ":memory:" || name.as_encoded_bytes().starts_with(b"file:") {
        return Ok(());
    }
    let io = |what: &'static str| move |source: std::io::Error| StoreError::Io { what, source };
    let file = match OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(io("creating the database file")(e)),
    };
    // The umask can only have cleared bits of 0600; set exactly 0600 so the
    // owner can write. On failure the empty file is ours to remove.
    file.set_permissions(Permissions::from_mode(0o600)).map_err(|e| {
        let _ = std::fs::remove_file(path);
        io("setting the database file's mode")(e)
    })
}

/// Elsewhere the database file is created by SQLite, with the platform's
/// default permissions.
#[cfg(not(unix))]
fn create_private(_path: &Path) -> Result<()> {
    Ok(())
}

impl Store for SqliteStore {
    fn store_batch(&self, batch: &NewBatch<'_>) -> Result<InsertOutcome> {
        inbox::store_batch(self, batch)
    }

    fn stored_batch(&self, account: &str, batch_id: [u8; 16]) -> Result<Option<u32>> {
        inbox::stored_batch(&self.lock_intake(), account, &batch_id)
    }

    fn backlog(&self) -> Result<Backlog> {
        inbox::backlog(&self.lock())
    }

    fn next_unprocessed_with(
        &self,
        limit: usize,
        after: Option<InboxId>,
        cached: &mut CachedVouchers<'_>,
    ) -> Result<Vec<InboxBatch>> {
        inbox::next_unprocessed_with(self, limit, after, cached)
    }

    fn complete_batch(&self, inbox_id: InboxId, results: &BatchResults, processed_at: i64) -> Result<CompleteOutcome> {
        inbox::complete_batch(self, inbox_id, results, processed_at)
    }

    fn complete_batches(
        &self,
        batches: &[(InboxId, &BatchResults)],
        processed_at: i64,
    ) -> Result<Vec<CompleteOutcome>> {
        inbox::complete_batches(self, batches, processed_at)
    }

    fn claim_batches(
        &self,
        claim: &Claim<'_>,
        limit: usize,
        after: Option<InboxId>,
        cached: &mut CachedVouchers<'_>,
    ) -> Result<Vec<InboxBatch>> {
        inbox::claim_batches(self, claim, limit, after, cached)
    }

    fn complete_claimed(
        &self,
        claim: &Claim<'_>,
        batches: &[(InboxId, &BatchResults)],
        processed_at: i64,
    ) -> Result<Vec<CompleteOutcome>> {
        inbox::complete_claimed(self, claim, batches, processed_at)
    }

    fn release_claims(&self, worker: &str) -> Result<u64> {
        inbox::release_claims(self, worker)
    }

    fn opened_voucher_ids(
        &self,
        account: &str,
        client_state: ClientStateId,
        order_id: [u8; 16],
    ) -> Result<Vec<[u8; 16]>> {
        accounts::opened_voucher_ids(&self.lock(), account, client_state, order_id)
    }

    fn case_voucher_ids(&self, account: &str, order_id: [u8; 16]) -> Result<Vec<[u8; 16]>> {
        cases::case_voucher_ids(&self.lock(), account, order_id)
    }

    fn counters(&self, account: &str) -> Result<Counters> {
        accounts::counters(&self.lock(), account)
    }

    fn opened_vouchers(&self, account: &str, order_id: [u8; 16]) -> Result<Vec<OpenedVoucher>> {
        accounts::opened_vouchers(&self.lock(), account, None, order_id)
    }

    fn state_opened_vouchers(
        &self,
        account: &str,
        client_state: ClientStateId,
        order_id: [u8; 16],
    ) -> Result<Vec<OpenedVoucher>> {
        accounts::opened_vouchers(&self.lock(), account, Some(client_state), order_id)
    }

    fn state_opened_count(&self, account: &str, client_state: ClientStateId, order_id: [u8; 16]) -> Result<u64> {
        accounts::state_opened_count(&self.lock(), account, client_state, order_id)
    }

    fn account_state(
        &self,
        account: &str,
        client_state: ClientStateId,
        order_id: [u8; 16],
    ) -> Result<Option<Zeroizing<Vec<u8>>>> {
        accounts::account_state(&self.lock(), account, client_state, order_id)
    }

    fn set_account_state(
        &self,
        account: &str,
        client_state: ClientStateId,
        order_id: [u8; 16],
        state: &[u8],
    ) -> Result<()> {
        accounts::set_account_state(self, account, client_state, order_id, state)
    }

    fn threshold_failure(
        &self,
        account: &str,
        client_state: ClientStateId,
        order_id: [u8; 16],
    ) -> Result<Option<ThresholdFailure>> {
        accounts::threshold_failure(&self.lock(), account, client_state, order_id)
    }

    fn record_threshold_failure(
        &self,
        account: &str,
        client_state: ClientStateId,
        order_id: [u8; 16],
        shares: u64,
        at: i64,
    ) -> Result<ThresholdFailure> {
        accounts::record_threshold_failure(self, account, client_state, order_id, shares, at)
    }

    fn create_case(&self, case: &NewCase<'_>) -> Result<CaseId> {
        cases::create_case(self, case)
    }

    fn add_case_items(&self, case: CaseId, items: &[CaseItem]) -> Result<()> {
        cases::add_case_items(self, case, items)
    }

    fn list_cases(&self, filter: &CaseFilter) -> Result<Vec<CaseSummary>> {
        cases::list_cases(&self.lock(), filter)
    }

    fn get_case(&self, case: CaseId) -> Result<Option<Case>> {
        cases::get_case(&mut self.lock(), case)
    }

    fn set_case_status(&self, case: CaseId, decision: &CaseDecision<'_>) -> Result<()> {
        cases::set_case_status(self, case, decision)
    }

    fn append_audit(&self, entry: &AuditEntry<'_>) -> Result<AuditRecord> {
        audit::append_audit(self, entry)
    }

    fn append_audits(&self, entries: &[AuditEntry<'_>]) -> Result<Vec<AuditRecord>> {
        audit::append_audits(self, entries)
    }

    fn audit_entries(&self, after_seq: u64, limit: usize) -> Result<Vec<AuditRecord>> {
        audit::audit_entries(&self.lock(), after_seq, limit)
    }

    fn verify_audit_chain(&self) -> Result<AuditHead> {
        audit::verify_audit_chain(&self.lock())
    }

    fn stats(&self) -> Result<GlobalStats> {
        stats::stats(&mut self.lock())
    }

    fn purge_order(&self, order_id: [u8; 16], at: i64) -> Result<PurgeReport> {
        retention::purge_order(self, order_id, at)
    }
    fn case_decisions(&self, case: CaseId) -> Result<Vec<StoredDecision>> {
        review::case_decisions(&self.lock(), case)
    }

    fn decide_case(&self, d: &DecideCase<'_>) -> Result<CaseSummary> {
        review::decide_case(self, d)
    }

    fn enqueue_outbox(&self, m: &NewOutbox<'_>, audit: &[AuditEntry<'_>]) -> Result<OutboxId> {
        outbox::enqueue_outbox(self, m, audit)
    }

    fn due_outbox(&self, now: i64, limit: usize) -> Result<Vec<OutboxEntry>> {
        outbox::due_outbox(&self.lock(), now, limit)
    }

    fn lease_outbox(&self, now: i64, until: i64, limit: usize) -> Result<Vec<OutboxEntry>> {
        outbox::lease_outbox(self, now, until, limit)
    }

    fn put_log_cosignature(&self, c: &NewLogCosignature<'_>) -> Result<()> {
        cosign::put_log_cosignature(self, c)
    }

    fn log_cosignatures(&self, origin: &str, checkpoint: &[u8; 32]) -> Result<LogCosignatures> {
        cosign::log_cosignatures(&mut self.lock(), origin, checkpoint)
    }

    fn outbox_entry(&self, id: OutboxId) -> Result<Option<OutboxEntry>> {
        outbox::outbox_entry(&self.lock(), id)
    }

    fn outbox_failed(&self, id: OutboxId, lease: Option<i64>, error: &str, next_attempt_at: i64) -> Result<bool> {
        outbox::outbox_failed(self, id, lease, error, next_attempt_at)
    }

    fn outbox_delivered(&self, d: &Delivered<'_>) -> Result<bool> {
        outbox::outbox_delivered(self, d)
    }

    fn outbox_pending(&self) -> Result<u64> {
        outbox::outbox_pending(&self.lock())
    }

    fn notices(&self, account: &str) -> Result<Vec<NoticeRecord>> {
        appeals::notices(&mut self.lock(), account)
    }

    fn notice(&self, id: NoticeId) -> Result<Option<NoticeRecord>> {
        appeals::notice(&mut self.lock(), id)
    }

    fn file_appeal(
        &self,
        account: &str,
        notice: NoticeId,
        text: &str,
        at: i64,
        audit: &[AuditEntry<'_>],
    ) -> Result<AppealRecord> {
        appeals::file_appeal(self, account, notice, text, at, audit)
    }

    fn list_appeals(&self, status: Option<AppealStatus>, limit: usize) -> Result<Vec<AppealRecord>> {
        appeals::list_appeals(&self.lock(), status, limit)
    }

    fn appeal(&self, id: AppealId) -> Result<Option<AppealRecord>> {
        appeals::appeal(&self.lock(), id)
    }

    fn decide_appeal(&self, d: &DecideAppeal<'_>) -> Result<AppealRecord> {
        appeals::decide_appeal(self, d)
    }

    fn record_second_hash_drops(&self, order_id: [u8; 16], drops: &[([u8; 16], Vec<u8>)], at: i64) -> Result<u64> {
        feedback::record_second_hash_drops(self, order_id, drops, at)
    }

    fn indicator_feedback(&self, order_id: [u8; 16]) -> Result<Vec<IndicatorFeedbackRow>> {
        feedback::indicator_feedback(&self.lock(), order_id)
    }

    fn close_expired_cases(&self, now: i64, audit_actor: &str) -> Result<u64> {
        retention::close_expired_cases(self, now, audit_actor)
    }

    fn purge_closed_cases(&self, closed_before: i64, at: i64, actor: &str) -> Result<PurgeReport> {
        retention::purge_closed_cases(self, closed_before, at, actor)
    }

    fn order_stats(&self, order_id: [u8; 16], from: Option<i64>, to: Option<i64>) -> Result<OrderStats> {
        stats::order_stats(&mut self.lock(), order_id, from, to)
    }
}
