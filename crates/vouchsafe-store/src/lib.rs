//! Durable storage for the vouchsafe matching server.
//!
//! The store holds only bytes, ids, counters and timestamps: no protocol types
//! and no cryptography beyond the SHA-256 chain of the audit log. Everything
//! goes through the [`Store`] trait so that a PostgreSQL backend can follow;
//! [`SqliteStore`] (embedded SQLite, bundled) is the default.
//!
//! The API is synchronous; an async server calls it from
//! `tokio::task::spawn_blocking`. Every method that changes more than one row
//! does so in a single transaction, so a crash leaves either all or none of a
//! change. Acknowledged writes are durable (`synchronous = FULL`).
//!
//! Data lifecycle:
//! - A submitted batch is stored in the inbox ([`Store::insert_batch`]),
//!   idempotent on `(account, batch_id)`. [`SqliteStore`] on a file writes
//!   the batch's raw vouchers to a spool file in `<database>.inbox/` and
//!   syncs it before the batch's row is committed (the bulk of the bytes
//!   then goes to disk once, not through the WAL and a checkpoint).
//! - The server processes it and calls [`Store::complete_batch`] (or
//!   [`Store::complete_batches`] for several batches at once), which in
//!   one transaction adds the counters, stores the opened vouchers (deduplicated
//!   on `(account, order_id, voucher_id)`), writes threshold state, marks the
//!   batch processed and **deletes the raw voucher bytes** of the batch (a
//!   spool file is overwritten with zeros, synced and unlinked): only
//!   the batch id, account, count and times remain, so non-matching vouchers
//!   are never kept after processing.
//! - [`Store::purge_order`] deletes everything derived from vouchers of an
//!   expired order (opened vouchers, threshold state, the associated data of
//!   case items) but keeps case metadata (status, reviewer, reason, times,
//!   voucher ids) for statistics, appeals and the audit trail.
//!
//! After the threshold:
//! - [`Store::decide_case`] records a review decision with everything that
//!   goes with it (status, report id, the signed report in the outbox,
//!   review rejections, audit) in one transaction, refusing a decided case, a
//!   second decision by the same reviewer and a stale view of the case.
//! - The outbox holds signed messages to the Centre (opaque bytes, idempotent
//!   on their message id) until [`Store::outbox_delivered`] applies the
//!   Centre's answer: the verdict on the case and the user's notice.
//! - A user appeals a notice ([`Store::file_appeal`]); an upheld appeal
//!   ([`Store::decide_appeal`]) withdraws the case and queues the withdrawal.
//! - Cases close (rejected, Centre false positive, appeal decided, or the
//!   appeal deadline passed: [`Store::close_expired_cases`]);
//!   [`Store::purge_closed_cases`] drops their associated data and the bytes
//!   of their delivered messages, keeping the metadata.
//! - [`Store::order_stats`] counts all of it per order and period for the
//!   transparency report.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod audit;
mod convert;
mod error;
mod inbox;
mod postgres;
mod schema;
mod spool;
mod sqlite;
mod types;
mod validate;

pub use audit::{AUDIT_GENESIS, audit_hash};
pub use error::StoreError;
pub use postgres::{DEFAULT_CONNECTIONS, PostgresOptions, PostgresStore, is_postgres_url};
pub use sqlite::SqliteStore;
pub use types::*;
pub use validate::MAX_ID_LEN;

use zeroize::Zeroizing;

/// A caller's copies of batches' vouchers for
/// [`Store::next_unprocessed_with`], asked by `(account, batch_id)`.
pub type CachedVouchers<'a> = dyn FnMut(&str, &[u8; 16]) -> Option<Vec<Vec<u8>>> + 'a;

/// Result type of this crate.
pub type Result<T> = std::result::Result<T, StoreError>;

/// Storage backend of the matching server.
///
/// Implementations must be safe to share between threads and must make every
/// method atomic: on error, nothing of the call is persisted.
pub trait Store: Send + Sync {
    // ---- inbox -------------------------------------------------------------

    /// Durably stores a received batch of vouchers.
    ///
    /// Idempotent on `(account, batch_id)`, and honest about it: a retry
    /// with the same content (the same client state and the same vouchers,
    /// compared by a SHA-256 digest of both kept with the batch) returns
    /// [`InsertOutcome::Duplicate`] with the voucher count of the stored
    /// batch, so the acknowledgement is identical and nothing is counted
    /// twice; the same id with other content is refused with
    /// [`StoreError::BatchConflict`] and changes nothing. (Batches stored
    /// before schema v5 have no digest and stay idempotent on the id alone.)
    ///
    /// With `state_limit`, a batch of a client state the account does not
    /// have yet under that order is refused with
    /// [`StoreError::TooManyClientStates`] when the account already has the
    /// limit; otherwise the state is recorded with the batch.
    fn store_batch(&self, batch: &NewBatch<'_>) -> Result<InsertOutcome>;

    /// [`Store::store_batch`] in the account's default client state
    /// ([`DEFAULT_CLIENT_STATE`]) with no client-state limit.
    fn insert_batch(
        &self,
        account: &str,
        batch_id: [u8; 16],
        vouchers: &[Vec<u8>],
        received_at: i64,
    ) -> Result<InsertOutcome> {
        self.store_batch(&NewBatch {
            account,
            client_state: DEFAULT_CLIENT_STATE,
            batch_id,
            vouchers,
            received_at,
            state_limit: None,
        })
    }

    /// The voucher count of the batch `(account, batch_id)` if one is stored
    /// (processed or not). A cheap look-up, e.g. to answer a retry while the
    /// backlog refuses new batches.
    fn stored_batch(&self, account: &str, batch_id: [u8; 16]) -> Result<Option<u32>>;

    /// The unprocessed part of the inbox: batches, vouchers, bytes.
    fn backlog(&self) -> Result<Backlog>;

    /// Returns up to `limit` unprocessed batches, oldest first, with their
    /// vouchers in submission order.
    fn next_unprocessed(&self, limit: usize) -> Result<Vec<InboxBatch>> {
        self.next_unprocessed_with(limit, None, &mut |_, _| None)
    }

    /// [`Store::next_unprocessed`] for batches with an id greater than
    /// `after` (all if `None`; a worker passes the last id of the round it
    /// already holds), except that for each batch `cached` is
    /// first asked for its vouchers by `(account, batch_id)`, and they are
    /// read from storage only if it returns `None` (or a different number of
    /// vouchers than the batch has). The caller vouches that what `cached`
    /// returns is exactly what was stored for that batch, e.g. the vouchers
    /// it passed to [`Store::insert_batch`] when that returned
    /// [`InsertOutcome::Inserted`]. Lets a server hand batches from intake to
    /// its worker in memory instead of reading them back.
    fn next_unprocessed_with(
        &self,
        limit: usize,
        after: Option<InboxId>,
        cached: &mut CachedVouchers<'_>,
    ) -> Result<Vec<InboxBatch>>;

    /// Applies the results of processing batch `inbox_id` and marks it
    /// processed, all in one transaction. The raw vouchers of the batch are
    /// deleted. `results` must account for every voucher of the batch
    /// (`non_matches + invalid + opened.len()` equals its voucher count).
    ///
    /// Returns [`CompleteOutcome::AlreadyProcessed`] (and changes nothing) if
    /// the batch was already completed.
    fn complete_batch(&self, inbox_id: InboxId, results: &BatchResults, processed_at: i64) -> Result<CompleteOutcome>;

    /// [`Store::complete_batch`] for several batches in **one** transaction
    /// (one commit, one fsync): either every batch's results are applied or,
    /// on error, none. Returns one outcome per batch, in order; a batch that
    /// was already processed gives [`CompleteOutcome::AlreadyProcessed`] and
    /// changes nothing.
    fn complete_batches(&self, batches: &[(InboxId, &BatchResults)], processed_at: i64)
    -> Result<Vec<CompleteOutcome>>;

    // ---- claims (several workers on one database) ------------------------------

    /// Claims up to `limit` unprocessed batches for `claim.worker`, oldest first (with an id greater than `after`,
    /// as [`Store::next_unprocessed_with`], whose `cached` rule applies too): only batches of accounts that no other
    /// worker holds a live claim on. A claim that ended before `claim.now` has lapsed (its worker is presumed dead)
    /// and is taken over. In the same transaction the accounts of the returned batches are claimed by
    /// `claim.worker` until `claim.until`, and every other claim of the worker is renewed to it.
    ///
    /// So the batches of one account are processed by one worker at a time, in order, and an account's threshold
    /// step runs in one place; a worker that dies leaves its accounts to the others once its claims lapse.
    fn claim_batches(
        &self,
        claim: &Claim<'_>,
        limit: usize,
        after: Option<InboxId>,
        cached: &mut CachedVouchers<'_>,
    ) -> Result<Vec<InboxBatch>>;

    /// [`Store::complete_batches`] by a worker under its claims: refuses with [`StoreError::Conflict`] ("the
    /// worker's claim on the account lapsed") and changes nothing when the account of a batch still unprocessed is
    /// not claimed by `claim.worker` at `claim.now` (another worker took it over: that worker processes it). A batch
    /// already processed gives [`CompleteOutcome::AlreadyProcessed`] whoever claims its account. Then, in the same
    /// transaction, releases the worker's claims on accounts that have no unprocessed batch left.
    fn complete_claimed(
        &self,
        claim: &Claim<'_>,
        batches: &[(InboxId, &BatchResults)],
        processed_at: i64,
    ) -> Result<Vec<CompleteOutcome>>;

    /// Releases every claim of `worker` (a worker that stops); returns how many.
    fn release_claims(&self, worker: &str) -> Result<u64>;

    // ---- per-account data ----------------------------------------------------

    /// Counters of `account` (all zero for an unknown account).
    fn counters(&self, account: &str) -> Result<Counters>;

    /// Opened vouchers of `account` under `order_id`, of all its client
    /// states, in the order they were stored.
    fn opened_vouchers(&self, account: &str, order_id: [u8; 16]) -> Result<Vec<OpenedVoucher>>;

    /// Opened vouchers of one client state of `account` under `order_id`, in
    /// the order they were stored.
    fn state_opened_vouchers(
        &self,
        account: &str,
        client_state: ClientStateId,
        order_id: [u8; 16],
    ) -> Result<Vec<OpenedVoucher>>;

    /// How many opened vouchers one client state of `account` has under
    /// `order_id` (no payloads read).
    fn state_opened_count(&self, account: &str, client_state: ClientStateId, order_id: [u8; 16]) -> Result<u64>;

    /// Ids of the opened vouchers of one client state of `account` under
    /// `order_id` (no payloads), in no particular order.
    fn opened_voucher_ids(
        &self,
        account: &str,
        client_state: ClientStateId,
        order_id: [u8; 16],
    ) -> Result<Vec<[u8; 16]>>;

    /// Ids of the vouchers filed as items in any case of `account` under
    /// `order_id` (no associated data), in no particular order.
    fn case_voucher_ids(&self, account: &str, order_id: [u8; 16]) -> Result<Vec<[u8; 16]>>;

    /// Opaque threshold state of one client state of `account` under
    /// `order_id`, if any.
    fn account_state(
        &self,
        account: &str,
        client_state: ClientStateId,
        order_id: [u8; 16],
    ) -> Result<Option<Zeroizing<Vec<u8>>>>;

    /// Replaces the threshold state of one client state of `account` under
    /// `order_id`.
    fn set_account_state(
        &self,
        account: &str,
        client_state: ClientStateId,
        order_id: [u8; 16],
        state: &[u8],
    ) -> Result<()>;

    /// The last failed threshold reconstruction of a client state, if any.
    fn threshold_failure(
        &self,
        account: &str,
        client_state: ClientStateId,
        order_id: [u8; 16],
    ) -> Result<Option<ThresholdFailure>>;

    /// Records a failed threshold reconstruction over `shares` distinct
    /// opened vouchers (`failures += 1`).
    fn record_threshold_failure(
        &self,
        account: &str,
        client_state: ClientStateId,
        order_id: [u8; 16],
        shares: u64,
        at: i64,
    ) -> Result<ThresholdFailure>;

    // ---- cases ---------------------------------------------------------------

    /// Creates a case in status [`CaseStatus::Open`] with its items, and
    /// appends a `case.create` audit entry, in one transaction.
    fn create_case(&self, case: &NewCase<'_>) -> Result<CaseId>;

    /// Adds items to an existing case. Items whose voucher id is already in the
    /// case are ignored (so a retry is harmless).
    fn add_case_items(&self, case: CaseId, items: &[CaseItem]) -> Result<()>;

    /// Lists cases matching `filter`, by id.
    fn list_cases(&self, filter: &CaseFilter) -> Result<Vec<CaseSummary>>;

    /// Returns a case with its items, or `None`.
    fn get_case(&self, case: CaseId) -> Result<Option<Case>>;

    /// Records a review decision and appends a `case.status` audit entry, in
    /// one transaction. The new status must not be [`CaseStatus::Open`] and
    /// must differ from the current one (a decided case can be reversed, e.g.
    /// on appeal, but not reopened).
    fn set_case_status(&self, case: CaseId, decision: &CaseDecision<'_>) -> Result<()>;

    /// The review decisions of `case`, in the order they were made.
    fn case_decisions(&self, case: CaseId) -> Result<Vec<StoredDecision>>;

    /// Records a review decision with everything that goes with it, in one
    /// transaction: inserts the decision, sets the status (and `report_id`;
    /// `urgent |= decision.urgent`; `closed_at = at` if Rejected), enqueues
    /// `outbox` (idempotent as [`Store::enqueue_outbox`]), records
    /// `rejected_primaries` as review rejections, appends `audit`; returns
    /// the new summary.
    ///
    /// Refuses with [`StoreError::Conflict`] and changes nothing when the case
    /// is not Open/AwaitingSecond ("the case is already decided"), this
    /// reviewer already decided it ("this reviewer already decided the case:
    /// four-eyes needs a second reviewer"), or the number of decisions is not
    /// `expected_decisions` ("the case changed since it was read");
    /// [`StoreError::NotFound`] for no such case. [`StoreError::InvalidArgument`]
    /// for an inconsistent request: a verdict other than "confirm"/"reject",
    /// a `new_status` other than AwaitingSecond/Confirmed/Rejected, Confirmed
    /// on a "reject" verdict, Confirmed of a four-eyes case with fewer than two
    /// confirmations, a `report_id` without Confirmed, rejected primaries
    /// without Rejected, or an `outbox` entry about another case.
    fn decide_case(&self, d: &DecideCase<'_>) -> Result<CaseSummary>;

    // ---- outbox to the Centre ----------------------------------------------------

    /// Queues a message for the Centre and appends `audit`, in one transaction.
    /// Idempotent on `message_id`: the same id with the same bytes (and kind
    /// and case) returns the existing id and changes nothing; other bytes →
    /// [`StoreError::Conflict`].
    fn enqueue_outbox(&self, m: &NewOutbox<'_>, audit: &[AuditEntry<'_>]) -> Result<OutboxId>;

    /// Undelivered entries with `next_attempt_at <= now`, oldest first, at most `limit`.
    fn due_outbox(&self, now: i64, limit: usize) -> Result<Vec<OutboxEntry>>;

    /// Leases due entries for delivery: the entries [`Store::due_outbox`] would return, each with its
    /// `next_attempt_at` moved to `until` in the same transaction (and returned so), so that no other caller (a
    /// second replica, a later pass) finds it due before then. Entries that another transaction is leasing at
    /// that moment are passed over on PostgreSQL, not waited for (SQLite has one writer at a time: a second
    /// store on the file waits for the first one's transaction). The sender records the outcome with
    /// [`Store::outbox_delivered`] or [`Store::outbox_failed`] (which sets its own `next_attempt_at`); a sender
    /// that dies leaves the entry due again at `until`. `attempts` is unchanged. `until` must be after `now`
    /// ([`StoreError::InvalidArgument`]).
    fn lease_outbox(&self, now: i64, until: i64, limit: usize) -> Result<Vec<OutboxEntry>>;

    /// One outbox entry, or `None`.
    fn outbox_entry(&self, id: OutboxId) -> Result<Option<OutboxEntry>>;

    /// Records a failed attempt: `attempts += 1`, `last_error`,
    /// `next_attempt_at`, and returns `true`. With `lease` (the
    /// `next_attempt_at` [`Store::lease_outbox`] returned), only while the
    /// entry still holds that lease: a sender slower than its lease, whose
    /// entry another sender has leased since, records nothing and gets
    /// `false` (the newer lease stands). `false` and no change on a delivered
    /// entry; [`StoreError::NotFound`] for no such entry. `error` must not
    /// carry message contents (it is truncated to 1000 bytes).
    fn outbox_failed(&self, id: OutboxId, lease: Option<i64>, error: &str, next_attempt_at: i64) -> Result<bool>;

    /// Marks the entry delivered with the receipt, applies `case_status` to the
    /// entry's case (which must be Confirmed; `closed_at` stays unset for
    /// Forwarded, the case closes at the appeal deadline or decision;
    /// FalsePositive closes it at `at`), creates the notice, appends audit;
    /// one transaction. Returns `false` and changes nothing if already
    /// delivered.
    fn outbox_delivered(&self, d: &Delivered<'_>) -> Result<bool>;

    /// Number of undelivered entries (for status and metrics).
    fn outbox_pending(&self) -> Result<u64>;

    // ---- notices and appeals -------------------------------------------------------

    /// The notices of `account`, oldest first, with their appeal.
    fn notices(&self, account: &str) -> Result<Vec<NoticeRecord>>;

    /// One notice with its appeal, or `None`.
    fn notice(&self, id: NoticeId) -> Result<Option<NoticeRecord>>;

    /// Files an appeal against a notice and appends `audit`, in one
    /// transaction. [`StoreError::NotFound`] if the notice does not exist OR
    /// belongs to another account (the same error: no oracle);
    /// [`StoreError::Conflict`] "the appeal deadline has passed" if
    /// `at > appeal_deadline`, "the notice was already appealed" for a second
    /// appeal.
    fn file_appeal(
        &self,
        account: &str,
        notice: NoticeId,
        text: &str,
        at: i64,
        audit: &[AuditEntry<'_>],
    ) -> Result<AppealRecord>;

    /// Appeals, newest first, optionally only of one status, at most `limit`.
    fn list_appeals(&self, status: Option<AppealStatus>, limit: usize) -> Result<Vec<AppealRecord>>;

    /// One appeal, or `None`.
    fn appeal(&self, id: AppealId) -> Result<Option<AppealRecord>>;

    /// Decides an appeal, in one transaction. [`StoreError::Conflict`] "the
    /// appeal was already decided". Upheld: the notice's `action_reversed` is
    /// set, the case becomes Withdrawn and closes at `at`, `withdrawal` (which
    /// must be given) is enqueued. Dismissed: the case closes at `at` (no
    /// withdrawal may be given). A case that was already closed keeps its
    /// `closed_at`. Appends `audit`.
    fn decide_appeal(&self, d: &DecideAppeal<'_>) -> Result<AppealRecord>;

    // ---- indicator feedback ----------------------------------------------------------

    /// Records items dropped by the second-hash check: (voucher id, primary
    /// hash). Idempotent per `(order, voucher_id)`; returns how many were new.
    fn record_second_hash_drops(&self, order_id: [u8; 16], drops: &[([u8; 16], Vec<u8>)], at: i64) -> Result<u64>;

    /// Per primary hash of `order_id`: second-hash drops and review
    /// rejections, sorted by primary.
    fn indicator_feedback(&self, order_id: [u8; 16]) -> Result<Vec<IndicatorFeedbackRow>>;

    // ---- closing and retention -----------------------------------------------------

    /// Closes reported cases whose notice's appeal deadline passed
    /// (`now > deadline`) without a pending appeal (`closed_at = deadline`),
    /// with a `case.close` audit entry each by `audit_actor`; one transaction.
    /// Returns how many closed.
    fn close_expired_cases(&self, now: i64, audit_actor: &str) -> Result<u64>;

    /// Drops the associated data of the items of cases closed before
    /// `closed_before`, and the bytes of delivered outbox entries of those
    /// cases (they hold the derivatives), flags `ad_purged`, records a purge
    /// event, appends one audit entry per case (action `case.purge`, detail
    /// names the case id and counts only). One transaction. Case metadata,
    /// decisions, notices and appeals stay. Returns counts.
    fn purge_closed_cases(&self, closed_before: i64, at: i64, actor: &str) -> Result<PurgeReport>;

    /// Everything the transparency report of `order_id` needs, for the period
    /// `[from, to)` (`None`: unbounded on that side). See [`OrderStats`].
    fn order_stats(&self, order_id: [u8; 16], from: Option<i64>, to: Option<i64>) -> Result<OrderStats>;

    // ---- audit log -------------------------------------------------------------

    /// Appends an entry to the hash-chained audit log. Entries must not carry
    /// secrets or associated data.
    fn append_audit(&self, entry: &AuditEntry<'_>) -> Result<AuditRecord>;

    /// Appends several entries, in order, in **one** transaction (one
    /// commit): either all are appended or, on error, none.
    fn append_audits(&self, entries: &[AuditEntry<'_>]) -> Result<Vec<AuditRecord>>;

    /// Returns up to `limit` audit records with `seq > after_seq`, in order.
    fn audit_entries(&self, after_seq: u64, limit: usize) -> Result<Vec<AuditRecord>>;

    /// Recomputes the whole chain. On success returns the number of entries
    /// and the head hash (publish or anchor it elsewhere: truncating the tail
    /// of a chain can only be detected against an earlier head). Fails with
    /// [`StoreError::AuditChainBroken`] at the first inconsistent entry.
    fn verify_audit_chain(&self) -> Result<AuditHead>;

    // ---- transparency log cosignatures ------------------------------------------

    /// Stores a witness's cosignature line of a transparency-log checkpoint, replacing that witness's earlier
    /// line for the same checkpoint, so that every server process on this database serves it whichever one the
    /// witness handed it to. The caller has verified it (readers verify again before serving). See
    /// [`NewLogCosignature`] for the bounds ([`StoreError::InvalidArgument`] beyond them).
    fn put_log_cosignature(&self, c: &NewLogCosignature<'_>) -> Result<()>;

    /// The cosignature lines stored for `checkpoint` (the SHA-256 of its text), and the largest cosigned tree
    /// size of the log `origin`, in one read.
    fn log_cosignatures(&self, origin: &str, checkpoint: &[u8; 32]) -> Result<LogCosignatures>;

    // ---- statistics and retention ---------------------------------------------

    /// Global totals for the transparency report.
    fn stats(&self) -> Result<GlobalStats>;

    /// Purges the data of an expired order: opened vouchers, threshold state,
    /// and the associated data of its case items (case metadata is kept, the
    /// case is flagged `ad_purged`). Records a purge event (counted by
    /// [`Store::order_stats`]) and appends an `order.purge` audit entry. One
    /// transaction.
    fn purge_order(&self, order_id: [u8; 16], at: i64) -> Result<PurgeReport>;
}
