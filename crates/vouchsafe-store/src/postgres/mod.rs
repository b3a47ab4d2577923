//! PostgreSQL implementation of [`Store`], for several server replicas that
//! share one database.
//!
//! Layout as in the SQLite store: this file holds the [`PostgresStore`] type
//! (configuration, open, migrations) and the `impl Store`, whose methods call
//! into one module per job (`inbox`, `accounts`, `cases`, `review`,
//! `outbox`, `appeals`, `feedback`, `audit`, `stats`, `retention`);
//! `conn` holds the pool and the transaction helpers, `schema` the
//! migrations. The audit chain's hashing and checks, the argument checks and
//! the inbox blob encoding are the backend-neutral ones of the crate.
//!
//! Every method that writes runs in one `SERIALIZABLE` transaction, run again
//! when it loses a serialization conflict to a concurrent one: what a method
//! reads and what it writes are consistent as if it had run alone, as on
//! SQLite with its one writer. A method returns only after `COMMIT` (with
//! PostgreSQL's default `synchronous_commit = on`, after the WAL is flushed).

use zeroize::Zeroizing;

use crate::types::*;
use crate::{CachedVouchers, Result, Store, StoreError};

mod accounts;
mod appeals;
mod audit;
mod cases;
mod conn;
mod cosign;
mod feedback;
mod inbox;
mod migrate;
mod outbox;
mod retention;
mod review;
mod schema;
mod stats;

/// Connections a [`PostgresStore`] opens by default.
pub const DEFAULT_CONNECTIONS: usize = 8;

/// How to open a [`PostgresStore`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresOptions {
    /// Connections in the pool (at least 1). Each thread calling the store
    /// holds one for the length of a call.
    pub connections: usize,
    /// A schema of the store's own (created if missing), or `None` for the
    /// connection's default `search_path`. Lets several stores (test runs,
    /// deployments) share one database.
    pub schema: Option<String>,
    /// TLS to the server: a PEM file of the CA certificate(s) the server's certificate must chain to. The
    /// connection then requires TLS (1.2 or 1.3) and verifies the certificate against the URL's host name, as
    /// libpq's `sslmode=verify-full`. `None`: no TLS, for a Unix socket or loopback only. Refused with a Unix
    /// socket host (PostgreSQL does not use TLS on those).
    pub ca: Option<std::path::PathBuf>,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions { connections: DEFAULT_CONNECTIONS, schema: None, ca: None }
    }
}

/// [`Store`] on a PostgreSQL database (version 13 or later), shared by any
/// number of processes.
///
/// Connects over TLS when [`PostgresOptions::ca`] is set, else without: then
/// run it over a Unix socket or loopback (docs/OPERATIONS.md). The raw
/// vouchers of an unprocessed batch are a column of its row, set to `NULL`
/// when the batch is processed; PostgreSQL
/// keeps the old row version until `VACUUM` reclaims it (see
/// docs/OPERATIONS.md for the settings that bound how long).
pub struct PostgresStore {
    pool: conn::Pool,
    /// The last bucket of inbox ids the cover table was emptied for (`inbox::empty_cover_if_due`).
    cover_bucket: std::sync::atomic::AtomicI64,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore").finish_non_exhaustive()
    }
}

/// Whether `database` (a server's `database` setting) names a PostgreSQL
/// database (`postgres://…` or `postgresql://…`) rather than a SQLite file.
pub fn is_postgres_url(database: &str) -> bool {
    database.starts_with("postgres://") || database.starts_with("postgresql://")
}

impl PostgresStore {
    /// Opens the store on the database `url` (`postgres://user@host/db`, or
    /// `postgresql:///db?host=/run/postgresql` for a Unix socket), with the
    /// default options, and applies pending migrations.
    pub fn open(url: &str) -> Result<Self> {
        Self::open_with(url, &PostgresOptions::default())
    }

    /// [`Self::open`] with `options`.
    ///
    /// A malformed `url` is [`StoreError::InvalidArgument`] (the message
    /// does not repeat it: it may hold a password); a server that cannot be
    /// reached is [`StoreError::Database`].
    pub fn open_with(url: &str, options: &PostgresOptions) -> Result<Self> {
        let mut config: tokio_postgres::Config =
            url.parse().map_err(|_| StoreError::InvalidArgument("not a PostgreSQL connection URL"))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(std::time::Duration::from_secs(10));
        }
        if config.get_application_name().is_none() {
            config.application_name("vouchsafe");
        }
        if let Some(schema) = &options.schema
            && (schema.is_empty() || schema.len() > 63)
        {
            return Err(StoreError::InvalidArgument("schema name must be 1..=63 bytes"));
        }
        let tls = match &options.ca {
            None => None,
            Some(ca) => {
                if config.get_hosts().iter().any(|h| !matches!(h, tokio_postgres::config::Host::Tcp(_))) {
                    return Err(StoreError::InvalidArgument(
                        "a CA for TLS is set but the URL names a Unix socket (PostgreSQL uses no TLS there)",
                    ));
                }
                config.ssl_mode(tokio_postgres::config::SslMode::Require);
                Some(conn::tls_connector(ca)?)
            }
        };
        let pool = conn::Pool::new(config, options.schema.clone(), options.connections, tls)?;
        migrate::migrate(&pool, options.schema.as_deref(), Self::schema_version())?;
        Ok(PostgresStore { pool, cover_bucket: std::sync::atomic::AtomicI64::new(i64::MIN) })
    }

    /// Drops the schema this store was opened on (`PostgresOptions::schema`) with everything in it, and closes the
    /// store. For tests and benches that give each run a schema of its own; refused (InvalidArgument) for a store
    /// opened without a schema, whose tables are in the database's default schema.
    pub fn drop_schema(self) -> Result<()> {
        let Some(schema) = self.pool.schema() else {
            return Err(StoreError::InvalidArgument("the store was opened without a schema of its own"));
        };
        let sql = format!("DROP SCHEMA {} CASCADE", conn::quote_ident(schema));
        self.pool.plain(|q| q.batch(&sql))
    }

    /// Schema version this build creates and understands (the PostgreSQL
    /// schema's own numbering).
    pub fn schema_version() -> i64 {
        i64::try_from(schema::MIGRATIONS.len()).unwrap_or(i64::MAX)
    }
}

impl Store for PostgresStore {
    fn store_batch(&self, batch: &NewBatch<'_>) -> Result<InsertOutcome> {
        inbox::store_batch(self, batch)
    }

    fn stored_batch(&self, account: &str, batch_id: [u8; 16]) -> Result<Option<u32>> {
        inbox::stored_batch(self, account, &batch_id)
    }

    fn backlog(&self) -> Result<Backlog> {
        inbox::backlog(self)
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
        accounts::opened_voucher_ids(self, account, client_state, order_id)
    }

    fn case_voucher_ids(&self, account: &str, order_id: [u8; 16]) -> Result<Vec<[u8; 16]>> {
        cases::case_voucher_ids(self, account, order_id)
    }

    fn counters(&self, account: &str) -> Result<Counters> {
        accounts::counters(self, account)
    }

    fn opened_vouchers(&self, account: &str, order_id: [u8; 16]) -> Result<Vec<OpenedVoucher>> {
        accounts::opened_vouchers(self, account, None, order_id)
    }

    fn state_opened_vouchers(
        &self,
        account: &str,
        client_state: ClientStateId,
        order_id: [u8; 16],
    ) -> Result<Vec<OpenedVoucher>> {
        accounts::opened_vouchers(self, account, Some(client_state), order_id)
    }

    fn state_opened_count(&self, account: &str, client_state: ClientStateId, order_id: [u8; 16]) -> Result<u64> {
        accounts::state_opened_count(self, account, client_state, order_id)
    }

    fn account_state(
        &self,
        account: &str,
        client_state: ClientStateId,
        order_id: [u8; 16],
    ) -> Result<Option<Zeroizing<Vec<u8>>>> {
        accounts::account_state(self, account, client_state, order_id)
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
        accounts::threshold_failure(self, account, client_state, order_id)
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
        cases::list_cases(self, filter)
    }

    fn get_case(&self, case: CaseId) -> Result<Option<Case>> {
        cases::get_case(self, case)
    }

    fn set_case_status(&self, case: CaseId, decision: &CaseDecision<'_>) -> Result<()> {
        cases::set_case_status(self, case, decision)
    }

    fn append_audit(&self, entry: &AuditEntry<'_>) -> Result<AuditRecord> {
        audit::append_audits(self, std::slice::from_ref(entry))?.pop().ok_or(StoreError::Corrupt("no audit record"))
    }

    fn append_audits(&self, entries: &[AuditEntry<'_>]) -> Result<Vec<AuditRecord>> {
        audit::append_audits(self, entries)
    }

    fn audit_entries(&self, after_seq: u64, limit: usize) -> Result<Vec<AuditRecord>> {
        audit::audit_entries(self, after_seq, limit)
    }

    fn verify_audit_chain(&self) -> Result<AuditHead> {
        audit::verify_audit_chain(self)
    }

    fn stats(&self) -> Result<GlobalStats> {
        stats::stats(self)
    }

    fn purge_order(&self, order_id: [u8; 16], at: i64) -> Result<PurgeReport> {
        retention::purge_order(self, order_id, at)
    }
    fn case_decisions(&self, case: CaseId) -> Result<Vec<StoredDecision>> {
        review::case_decisions(self, case)
    }

    fn decide_case(&self, d: &DecideCase<'_>) -> Result<CaseSummary> {
        review::decide_case(self, d)
    }

    fn enqueue_outbox(&self, m: &NewOutbox<'_>, audit: &[AuditEntry<'_>]) -> Result<OutboxId> {
        outbox::enqueue_outbox(self, m, audit)
    }

    fn due_outbox(&self, now: i64, limit: usize) -> Result<Vec<OutboxEntry>> {
        outbox::due_outbox(self, now, limit)
    }

    fn lease_outbox(&self, now: i64, until: i64, limit: usize) -> Result<Vec<OutboxEntry>> {
        outbox::lease_outbox(self, now, until, limit)
    }

    fn put_log_cosignature(&self, c: &NewLogCosignature<'_>) -> Result<()> {
        cosign::put_log_cosignature(self, c)
    }

    fn log_cosignatures(&self, origin: &str, checkpoint: &[u8; 32]) -> Result<LogCosignatures> {
        cosign::log_cosignatures(self, origin, checkpoint)
    }

    fn outbox_entry(&self, id: OutboxId) -> Result<Option<OutboxEntry>> {
        outbox::outbox_entry(self, id)
    }

    fn outbox_failed(&self, id: OutboxId, lease: Option<i64>, error: &str, next_attempt_at: i64) -> Result<bool> {
        outbox::outbox_failed(self, id, lease, error, next_attempt_at)
    }

    fn outbox_delivered(&self, d: &Delivered<'_>) -> Result<bool> {
        outbox::outbox_delivered(self, d)
    }

    fn outbox_pending(&self) -> Result<u64> {
        outbox::outbox_pending(self)
    }

    fn notices(&self, account: &str) -> Result<Vec<NoticeRecord>> {
        appeals::notices(self, account)
    }

    fn notice(&self, id: NoticeId) -> Result<Option<NoticeRecord>> {
        appeals::notice(self, id)
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
        appeals::list_appeals(self, status, limit)
    }

    fn appeal(&self, id: AppealId) -> Result<Option<AppealRecord>> {
        appeals::appeal(self, id)
    }

    fn decide_appeal(&self, d: &DecideAppeal<'_>) -> Result<AppealRecord> {
        appeals::decide_appeal(self, d)
    }

    fn record_second_hash_drops(&self, order_id: [u8; 16], drops: &[([u8; 16], Vec<u8>)], at: i64) -> Result<u64> {
        feedback::record_second_hash_drops(self, order_id, drops, at)
    }

    fn indicator_feedback(&self, order_id: [u8; 16]) -> Result<Vec<IndicatorFeedbackRow>> {
        feedback::indicator_feedback(self, order_id)
    }

    fn close_expired_cases(&self, now: i64, audit_actor: &str) -> Result<u64> {
        retention::close_expired_cases(self, now, audit_actor)
    }

    fn purge_closed_cases(&self, closed_before: i64, at: i64, actor: &str) -> Result<PurgeReport> {
        retention::purge_closed_cases(self, closed_before, at, actor)
    }

    fn order_stats(&self, order_id: [u8; 16], from: Option<i64>, to: Option<i64>) -> Result<OrderStats> {
        stats::order_stats(self, order_id, from, to)
    }
}

/// Hooks of the conformance tests (`tests/conformance`), which compare what
/// the backends hold; not part of the supported API.
#[doc(hidden)]
impl PostgresStore {
    /// Every row of every table of the store's schema, as text, sorted.
    pub fn debug_dump(&self) -> Result<Vec<String>> {
        self.pool.read(|q| {
            let tables = q.query(
                "SELECT table_name::TEXT FROM information_schema.tables
                 WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY 1",
                &[],
            )?;
            let mut out = Vec::new();
            for t in &tables {
                let name: String = conn::get(t, 0)?;
                let sql = format!("SELECT t::TEXT FROM {} t", conn::quote_ident(&name));
                for r in q.query(&sql, &[])? {
                    out.push(format!("{name}: {}", conn::get::<String>(&r, 0)?));
                }
            }
            out.sort();
            Ok(out)
        })
    }

    /// The single BIGINT a query returns (`SELECT COUNT(*) …`).
    pub fn debug_count(&self, sql: &str) -> Result<i64> {
        self.pool.plain(|q| conn::get(&q.query_one(sql, &[])?, 0))
    }
}
