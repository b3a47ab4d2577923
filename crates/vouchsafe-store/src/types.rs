//! Plain data types exchanged with a [`Store`](crate::Store).

use std::fmt;

/// Row id of a batch in the inbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InboxId(pub i64);

/// Id of a case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CaseId(pub i64);

/// Outcome of [`Store::insert_batch`](crate::Store::insert_batch).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InsertOutcome {
    /// The batch is new and was stored.
    Inserted {
        /// Number of vouchers stored.
        vouchers: u32,
    },
    /// A batch with this `(account, batch_id)` was already stored; nothing changed.
    Duplicate {
        /// Number of vouchers of the batch stored first.
        vouchers: u32,
    },
}

impl InsertOutcome {
    /// Number of vouchers of the stored batch: the same for the first
    /// submission and every retry.
    pub fn vouchers(self) -> u32 {
        match self {
            InsertOutcome::Inserted { vouchers } | InsertOutcome::Duplicate { vouchers } => vouchers,
        }
    }
}

/// Public id of a client state: 16 bytes a device derives from its state
/// (docs/PROTOCOL.md §4). Detection and the threshold run per
/// `(account, order, client state)`.
pub type ClientStateId = [u8; 16];

/// The client state of batches that named none: the account's one default
/// state (all batches stored before schema v5 are in it).
pub const DEFAULT_CLIENT_STATE: ClientStateId = [0u8; 16];

/// A batch to store with [`Store::store_batch`](crate::Store::store_batch).
#[derive(Clone, Copy)]
pub struct NewBatch<'a> {
    /// Account that submitted it.
    pub account: &'a str,
    /// Client state that made its vouchers.
    pub client_state: ClientStateId,
    /// Client-chosen idempotency key.
    pub batch_id: [u8; 16],
    /// The vouchers, in submission order.
    pub vouchers: &'a [Vec<u8>],
    /// Receipt time, Unix seconds.
    pub received_at: i64,
    /// If set, the order the batch is for and the most client states an
    /// account may have under it: a batch of a new client state beyond that
    /// is refused with [`StoreError::TooManyClientStates`](crate::StoreError::TooManyClientStates)
    /// and nothing is stored.
    pub state_limit: Option<([u8; 16], u32)>,
}

impl fmt::Debug for NewBatch<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewBatch")
            .field("account", &self.account)
            .field("batch_id", &self.batch_id)
            .field("vouchers", &self.vouchers.len())
            .finish_non_exhaustive()
    }
}

/// The unprocessed part of the inbox.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Unprocessed batches.
    pub batches: u64,
    /// Their vouchers.
    pub vouchers: u64,
    /// Their vouchers' bytes.
    pub bytes: u64,
}

/// The last failed threshold reconstruction of one client state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThresholdFailure {
    /// Distinct opened vouchers the failed attempt had.
    pub shares: u64,
    /// Failed attempts so far.
    pub failures: u64,
    /// Time of the last one.
    pub last_at: i64,
}

/// An unprocessed batch from the inbox.
#[derive(Clone, PartialEq, Eq)]
pub struct InboxBatch {
    /// Inbox row id, passed back to [`Store::complete_batch`](crate::Store::complete_batch).
    pub id: InboxId,
    /// Account that submitted the batch.
    pub account: String,
    /// Client state that made its vouchers.
    pub client_state: ClientStateId,
    /// Client-chosen batch id.
    pub batch_id: [u8; 16],
    /// The vouchers, in submission order.
    pub vouchers: Vec<Vec<u8>>,
    /// Receipt time, Unix seconds.
    pub received_at: i64,
}

impl fmt::Debug for InboxBatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InboxBatch")
            .field("id", &self.id)
            .field("account", &self.account)
            .field("batch_id", &self.batch_id)
            .field("vouchers", &self.vouchers.len())
            .field("received_at", &self.received_at)
            .finish()
    }
}

/// An opened voucher: what the server keeps of a voucher that opened.
#[derive(Clone, PartialEq, Eq)]
pub struct OpenedVoucher {
    /// Order under which it was opened.
    pub order_id: [u8; 16],
    /// Public voucher id.
    pub voucher_id: [u8; 16],
    /// Opened content (protocol encoding: x', r, share, adct).
    pub payload: Vec<u8>,
}

impl fmt::Debug for OpenedVoucher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenedVoucher")
            .field("order_id", &self.order_id)
            .field("voucher_id", &self.voucher_id)
            .field("payload", &"<redacted>")
            .finish()
    }
}

/// New threshold state for one order of the batch's account and client state. The state may
/// hold secrets (a revealed polynomial), so it is zeroized on drop.
#[derive(Clone, PartialEq, Eq, zeroize::Zeroize, zeroize::ZeroizeOnDrop)]
pub struct StateUpdate {
    /// Order the state belongs to.
    pub order_id: [u8; 16],
    /// Opaque state bytes.
    pub state: Vec<u8>,
}

impl fmt::Debug for StateUpdate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateUpdate").field("order_id", &self.order_id).field("state", &"<redacted>").finish()
    }
}

/// Results of processing one batch, applied atomically by
/// [`Store::complete_batch`](crate::Store::complete_batch).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BatchResults {
    /// Vouchers that opened nothing.
    pub non_matches: u64,
    /// Vouchers that were malformed or opened more than one ciphertext.
    pub invalid: u64,
    /// Vouchers that opened exactly one ciphertext.
    pub opened: Vec<OpenedVoucher>,
    /// Threshold state to store for the batch's account.
    pub state: Vec<StateUpdate>,
    /// The order the batch was processed under. When set, the batch's counts
    /// are added to that order's per-day counters and the account is recorded
    /// as active under the order that day (see [`OrderStats`]). Days are UTC
    /// days of the processing time.
    pub order_id: Option<[u8; 16]>,
    /// Length of an opened voucher's payload under the batch's epoch
    /// (`VoucherLayout::opened_len`). When non-zero, every voucher of the batch
    /// that did not open (non-matches, invalid ones) costs a cover write of a
    /// zero payload of this length, so completing a batch does the same store
    /// work whatever opening gave (docs/LEAKAGE.md §6). 0: no cover writes.
    pub cover_payload_len: usize,
    /// Audit entries appended in the same transaction, after the batch's results, only if the batch is completed
    /// now (not for [`CompleteOutcome::AlreadyProcessed`]): what the processing did that must be recorded exactly
    /// when its effect is (a threshold reveal, whose state this batch stores). Entries must not carry secrets.
    pub audit: Vec<OwnedAuditEntry>,
}

/// An audit entry that owns its strings (see [`AuditEntry`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OwnedAuditEntry {
    /// Unix seconds.
    pub at: i64,
    /// Who did it.
    pub actor: String,
    /// What was done.
    pub action: String,
    /// Details (no secrets, no associated data).
    pub detail: String,
}

impl OwnedAuditEntry {
    /// The borrowed entry.
    pub fn entry(&self) -> AuditEntry<'_> {
        AuditEntry { at: self.at, actor: &self.actor, action: &self.action, detail: &self.detail }
    }
}

/// Outcome of [`Store::complete_batch`](crate::Store::complete_batch).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompleteOutcome {
    /// Results applied.
    Completed {
        /// Opened vouchers newly stored.
        opened_new: u64,
        /// Opened vouchers ignored because `(account, order_id, voucher_id)`
        /// was already stored (a replayed voucher).
        opened_duplicate: u64,
    },
    /// The batch had already been completed; nothing changed.
    AlreadyProcessed,
}

/// Per-account counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Vouchers received (in processed batches).
    pub received: u64,
    /// Vouchers that opened nothing.
    pub non_matches: u64,
    /// Vouchers that opened (newly stored).
    pub opened: u64,
    /// Invalid vouchers (malformed, or opened more than once; replays).
    pub invalid: u64,
}

/// Status of a case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CaseStatus {
    /// Waiting for human review.
    Open,
    /// A four-eyes case confirmed by one reviewer, waiting for a second one.
    AwaitingSecond,
    /// Review confirmed the match; the report goes to the Centre.
    Confirmed,
    /// Review rejected the match (false positive).
    Rejected,
    /// The Centre forwarded the report to law enforcement.
    Forwarded,
    /// The Centre found the report to be a manifest false positive.
    FalsePositive,
    /// An upheld appeal withdrew the report.
    Withdrawn,
}

impl CaseStatus {
    /// Stable name used in storage and audit entries.
    pub fn as_str(self) -> &'static str {
        match self {
            CaseStatus::Open => "open",
            CaseStatus::AwaitingSecond => "awaiting-second",
            CaseStatus::Confirmed => "confirmed",
            CaseStatus::Rejected => "rejected",
            CaseStatus::Forwarded => "forwarded",
            CaseStatus::FalsePositive => "false-positive",
            CaseStatus::Withdrawn => "withdrawn",
        }
    }

    /// Parses a name produced by [`CaseStatus::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "open" => Some(CaseStatus::Open),
            "awaiting-second" => Some(CaseStatus::AwaitingSecond),
            "confirmed" => Some(CaseStatus::Confirmed),
            "rejected" => Some(CaseStatus::Rejected),
            "forwarded" => Some(CaseStatus::Forwarded),
            "false-positive" => Some(CaseStatus::FalsePositive),
            "withdrawn" => Some(CaseStatus::Withdrawn),
            _ => None,
        }
    }

    /// Every status, in lifecycle order.
    pub const ALL: [CaseStatus; 7] = [
        CaseStatus::Open,
        CaseStatus::AwaitingSecond,
        CaseStatus::Confirmed,
        CaseStatus::Rejected,
        CaseStatus::Forwarded,
        CaseStatus::FalsePositive,
        CaseStatus::Withdrawn,
    ];
}

/// One item of a case: an opened real voucher and its decrypted associated data.
#[derive(Clone, PartialEq, Eq)]
pub struct CaseItem {
    /// Voucher id.
    pub voucher_id: [u8; 16],
    /// Decrypted associated data (visual derivative, hashes, reference, time).
    /// Empty once the order was purged.
    pub ad: Vec<u8>,
}

impl fmt::Debug for CaseItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaseItem").field("voucher_id", &self.voucher_id).field("ad_len", &self.ad.len()).finish()
    }
}

/// A case to create.
#[derive(Clone, Copy, Debug)]
pub struct NewCase<'a> {
    /// Account the case is about.
    pub account: &'a str,
    /// Order under which the threshold was crossed.
    pub order_id: [u8; 16],
    /// Creation time, Unix seconds.
    pub created_at: i64,
    /// Initial items.
    pub items: &'a [CaseItem],
    /// Actor recorded in the audit entry (e.g. `"server"`).
    pub actor: &'a str,
    /// The case needs two confirmations by different reviewers.
    pub four_eyes: bool,
    /// The worker that files the case under its claim on the account ([`Claim`]): the case is refused with
    /// [`StoreError::Conflict`](crate::StoreError::Conflict) unless that worker's claim on `account` is live at
    /// `created_at`. `None`: no claim is checked (tools, tests, a single process).
    pub claimed_by: Option<&'a str>,
}

/// A worker's claim on the accounts whose batches it processes, so that several server processes (replicas) on one
/// database never process one account at the same time: see [`Store::claim_batches`](crate::Store::claim_batches).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Claim<'a> {
    /// The worker: an identifier unique among the processes sharing the database (1..=512 bytes).
    pub worker: &'a str,
    /// The time of the call, Unix seconds: a claim that ends before it has lapsed.
    pub now: i64,
    /// Until when the claims taken or renewed by the call hold, Unix seconds (at least `now`).
    pub until: i64,
}

/// A review decision.
#[derive(Clone, Copy, Debug)]
pub struct CaseDecision<'a> {
    /// New status.
    pub status: CaseStatus,
    /// Reviewer identity.
    pub reviewer: &'a str,
    /// Reviewer's reason (not copied into the audit log).
    pub reason: &'a str,
    /// Decision time, Unix seconds.
    pub at: i64,
}

/// Filter for [`Store::list_cases`](crate::Store::list_cases); `None` matches all.
#[derive(Clone, Debug, Default)]
pub struct CaseFilter {
    /// Only cases with this status.
    pub status: Option<CaseStatus>,
    /// Only cases of this account.
    pub account: Option<String>,
    /// Only cases of this order.
    pub order_id: Option<[u8; 16]>,
    /// At most this many cases.
    pub limit: Option<usize>,
    /// Newest (highest id) first instead of oldest first.
    pub newest_first: bool,
}

/// Case metadata without items.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaseSummary {
    /// Case id.
    pub id: CaseId,
    /// Account.
    pub account: String,
    /// Order.
    pub order_id: [u8; 16],
    /// Creation time, Unix seconds.
    pub created_at: i64,
    /// Current status.
    pub status: CaseStatus,
    /// Reviewer of the latest decision.
    pub reviewer: Option<String>,
    /// Reason of the latest decision.
    pub reason: Option<String>,
    /// Time of the latest decision.
    pub decided_at: Option<i64>,
    /// Number of items.
    pub items: u64,
    /// The associated data of the items was purged (with the order, or
    /// after the case closed).
    pub ad_purged: bool,
    /// The case needs two confirmations by different reviewers.
    pub four_eyes: bool,
    /// A reviewer flagged the case as urgent.
    pub urgent: bool,
    /// When the case closed (rejected, Centre false positive, appeal decided,
    /// or appeal deadline passed), Unix seconds.
    pub closed_at: Option<i64>,
    /// The Centre's verdict on the report ([`CaseStatus::Forwarded`] or
    /// [`CaseStatus::FalsePositive`], by name).
    pub centre_verdict: Option<String>,
    /// The Centre's reason.
    pub centre_reason: Option<String>,
    /// Id of the report sent to the Centre.
    pub report_id: Option<[u8; 16]>,
    /// Number of "confirm" review decisions.
    pub confirmations: u32,
}

/// A case with its items.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Case {
    /// Metadata.
    pub summary: CaseSummary,
    /// Items, in insertion order.
    pub items: Vec<CaseItem>,
}

/// An audit entry to append. Must not contain secrets or associated data.
#[derive(Clone, Copy, Debug)]
pub struct AuditEntry<'a> {
    /// Time, Unix seconds.
    pub at: i64,
    /// Who did it (reviewer id, `"server"`, …).
    pub actor: &'a str,
    /// What was done (e.g. `"case.status"`).
    pub action: &'a str,
    /// Non-secret details.
    pub detail: &'a str,
}

/// A stored audit entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRecord {
    /// Position in the chain, from 1.
    pub seq: u64,
    /// Time, Unix seconds.
    pub at: i64,
    /// Actor.
    pub actor: String,
    /// Action.
    pub action: String,
    /// Details.
    pub detail: String,
    /// Hash of the previous entry ([`AUDIT_GENESIS`](crate::AUDIT_GENESIS) for the first).
    pub prev_hash: [u8; 32],
    /// This entry's chain hash.
    pub hash: [u8; 32],
}

/// A witness's cosignature of a transparency-log checkpoint, for
/// [`Store::put_log_cosignature`](crate::Store::put_log_cosignature).
#[derive(Clone, Copy, Debug)]
pub struct NewLogCosignature<'a> {
    /// The log's origin (its key's name): 1..=512 bytes.
    pub origin: &'a str,
    /// The SHA-256 of the checkpoint's text.
    pub checkpoint: &'a [u8; 32],
    /// The size of the checkpoint's tree.
    pub tree_size: u64,
    /// The witness (its name and key id): 1..=512 bytes.
    pub witness: &'a str,
    /// The signature line, without its newline: one line of 1..=8192 bytes.
    pub line: &'a str,
    /// When it was stored, Unix seconds.
    pub at: i64,
}

/// What [`Store::log_cosignatures`](crate::Store::log_cosignatures) returns.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogCosignatures {
    /// The cosignature lines stored for the checkpoint asked about, ordered by witness.
    pub lines: Vec<String>,
    /// The largest tree size of any checkpoint of the same origin with a stored cosignature (0 if none): a log
    /// that serves a smaller tree is behind what its witnesses cosigned.
    pub largest_cosigned_size: u64,
}

/// Result of a successful audit chain verification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuditHead {
    /// Number of entries.
    pub entries: u64,
    /// Hash of the last entry ([`AUDIT_GENESIS`](crate::AUDIT_GENESIS) if empty).
    pub head: [u8; 32],
}

/// Global totals for the transparency report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GlobalStats {
    /// Accounts with counters.
    pub accounts: u64,
    /// Vouchers received in processed batches.
    pub vouchers_received: u64,
    /// Non-matching vouchers.
    pub non_matches: u64,
    /// Opened vouchers.
    pub opened: u64,
    /// Invalid vouchers.
    pub invalid: u64,
    /// Batches waiting for processing.
    pub batches_pending: u64,
    /// Cases waiting for review.
    pub cases_open: u64,
    /// Confirmed cases.
    pub cases_confirmed: u64,
    /// Rejected cases (false positives).
    pub cases_rejected: u64,
    /// Bytes of the vouchers of the batches waiting for processing.
    pub bytes_pending: u64,
    /// Client states seen, over all accounts and orders.
    pub client_states: u64,
    /// Client states whose threshold reconstruction failed at least once.
    pub states_failed: u64,
    /// Failed threshold reconstructions in all.
    pub threshold_failures: u64,
}

/// What [`Store::purge_order`](crate::Store::purge_order) deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PurgeReport {
    /// Opened vouchers deleted.
    pub opened_vouchers: u64,
    /// Threshold states deleted.
    pub states: u64,
    /// Case items whose associated data was dropped.
    pub case_items: u64,
    /// Cases purged ([`Store::purge_closed_cases`](crate::Store::purge_closed_cases); 0 for an order purge).
    pub cases: u64,
    /// Delivered outbox entries whose bytes were dropped.
    pub outbox_entries: u64,
}

// ---- after the threshold ------------------------------------------------------

/// A review decision on a case, for [`Store::decide_case`](crate::Store::decide_case).
#[derive(Clone, Copy, Debug)]
pub struct NewDecision<'a> {
    /// Reviewer identity.
    pub reviewer: &'a str,
    /// The reviewer's role (e.g. `"reviewer"`, `"supervisor"`).
    pub role: &'a str,
    /// `"confirm"` or `"reject"`.
    pub verdict: &'a str,
    /// The reviewer's reason (a code or short text).
    pub reason: &'a str,
    /// Free comment.
    pub comment: &'a str,
    /// Decision time, Unix seconds.
    pub at: i64,
    /// The reviewer flags the case as urgent.
    pub urgent: bool,
}

/// A stored review decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredDecision {
    /// Reviewer identity.
    pub reviewer: String,
    /// The reviewer's role.
    pub role: String,
    /// `"confirm"` or `"reject"`.
    pub verdict: String,
    /// Reason.
    pub reason: String,
    /// Comment.
    pub comment: String,
    /// Decision time, Unix seconds.
    pub at: i64,
}

/// A message to queue for the Centre (opaque, already signed bytes).
#[derive(Clone, Copy)]
pub struct NewOutbox<'a> {
    /// Message id, chosen by the caller: enqueueing is idempotent on it.
    pub message_id: [u8; 16],
    /// `"report"`, `"withdrawal"` or `"feedback"`.
    pub kind: &'a str,
    /// The case the message is about, if any.
    pub case: Option<CaseId>,
    /// The encoded message.
    pub bytes: &'a [u8],
    /// Creation time, Unix seconds (also its first attempt time).
    pub created_at: i64,
}

impl fmt::Debug for NewOutbox<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewOutbox")
            .field("message_id", &self.message_id)
            .field("kind", &self.kind)
            .field("case", &self.case)
            .field("bytes_len", &self.bytes.len())
            .field("created_at", &self.created_at)
            .finish()
    }
}

/// Row id of an outbox entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OutboxId(pub i64);

/// A queued message for the Centre.
#[derive(Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    /// Row id.
    pub id: OutboxId,
    /// Message id.
    pub message_id: [u8; 16],
    /// `"report"`, `"withdrawal"` or `"feedback"`.
    pub kind: String,
    /// The case the message is about, if any.
    pub case: Option<CaseId>,
    /// The encoded message; empty once purged (after delivery, with its case).
    pub bytes: Vec<u8>,
    /// Creation time, Unix seconds.
    pub created_at: i64,
    /// Failed delivery attempts so far.
    pub attempts: u32,
    /// Earliest time of the next attempt, Unix seconds.
    pub next_attempt_at: i64,
    /// The last delivery error.
    pub last_error: Option<String>,
    /// Delivery time, Unix seconds.
    pub delivered_at: Option<i64>,
}

impl fmt::Debug for OutboxEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutboxEntry")
            .field("id", &self.id)
            .field("message_id", &self.message_id)
            .field("kind", &self.kind)
            .field("case", &self.case)
            .field("bytes_len", &self.bytes.len())
            .field("created_at", &self.created_at)
            .field("attempts", &self.attempts)
            .field("next_attempt_at", &self.next_attempt_at)
            .field("last_error", &self.last_error)
            .field("delivered_at", &self.delivered_at)
            .finish()
    }
}

/// What the Centre answered, applied by
/// [`Store::outbox_delivered`](crate::Store::outbox_delivered) in one transaction.
#[derive(Clone, Copy, Debug)]
pub struct Delivered<'a> {
    /// The entry delivered.
    pub id: OutboxId,
    /// Delivery time, Unix seconds.
    pub at: i64,
    /// The Centre's receipt (opaque bytes).
    pub receipt: &'a [u8],
    /// For a report: the new case status (Forwarded / FalsePositive) and the Centre's reason.
    pub case_status: Option<(CaseStatus, &'a str)>,
    /// For a report: the notice to create for the case's account (only for a report that reached the Centre).
    pub notice: Option<NewNotice<'a>>,
    /// Entries appended to the audit log in the same transaction.
    pub audit: &'a [AuditEntry<'a>],
}

/// A notice to the user of an account about a reported case.
#[derive(Clone, Copy, Debug)]
pub struct NewNotice<'a> {
    /// The case's account.
    pub account: &'a str,
    /// The case.
    pub case: CaseId,
    /// The order under which it was detected.
    pub order_id: [u8; 16],
    /// Hash of the signed order (for the user to look it up in the log).
    pub order_hash: [u8; 32],
    /// When the report was made, Unix seconds.
    pub reported_at: i64,
    /// The reported attachments: (attachment reference, time).
    pub attachments: &'a [([u8; 32], u64)],
    /// Last time an appeal can be filed, Unix seconds (inclusive).
    pub appeal_deadline: i64,
}

/// Row id of a notice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NoticeId(pub i64);

/// Row id of an appeal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AppealId(pub i64);

/// A stored notice, with its appeal if one was filed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoticeRecord {
    /// Row id.
    pub id: NoticeId,
    /// Account notified.
    pub account: String,
    /// The case.
    pub case: CaseId,
    /// The order.
    pub order_id: [u8; 16],
    /// Hash of the signed order.
    pub order_hash: [u8; 32],
    /// When the report was made, Unix seconds.
    pub reported_at: i64,
    /// The reported attachments: (attachment reference, time), in the order given.
    pub attachments: Vec<([u8; 32], u64)>,
    /// Last time an appeal can be filed, Unix seconds (inclusive).
    pub appeal_deadline: i64,
    /// An upheld appeal reversed the action.
    pub action_reversed: bool,
    /// The appeal, if one was filed.
    pub appeal: Option<AppealRecord>,
}

/// Status of an appeal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AppealStatus {
    /// Waiting for a decision.
    Pending,
    /// Upheld: the report is withdrawn and the action reversed.
    Upheld,
    /// Dismissed.
    Dismissed,
}

impl AppealStatus {
    /// Stable name used in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            AppealStatus::Pending => "pending",
            AppealStatus::Upheld => "upheld",
            AppealStatus::Dismissed => "dismissed",
        }
    }

    /// Parses a name produced by [`AppealStatus::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(AppealStatus::Pending),
            "upheld" => Some(AppealStatus::Upheld),
            "dismissed" => Some(AppealStatus::Dismissed),
            _ => None,
        }
    }
}

/// A stored appeal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppealRecord {
    /// Row id.
    pub id: AppealId,
    /// The notice appealed.
    pub notice: NoticeId,
    /// The notice's case.
    pub case: CaseId,
    /// The appellant's account.
    pub account: String,
    /// The appellant's text.
    pub text: String,
    /// Filing time, Unix seconds.
    pub filed_at: i64,
    /// Status.
    pub status: AppealStatus,
    /// Who decided it.
    pub decided_by: Option<String>,
    /// Decision time, Unix seconds.
    pub decided_at: Option<i64>,
    /// The decision's reason.
    pub reason: Option<String>,
}

/// A decision on an appeal, for [`Store::decide_appeal`](crate::Store::decide_appeal).
#[derive(Clone, Copy, Debug)]
pub struct DecideAppeal<'a> {
    /// The appeal.
    pub appeal: AppealId,
    /// Uphold (withdraw the report, reverse the action) or dismiss.
    pub uphold: bool,
    /// Who decides.
    pub by: &'a str,
    /// The decision's reason.
    pub reason: &'a str,
    /// Decision time, Unix seconds.
    pub at: i64,
    /// Queued in the same transaction when upheld (the signed withdrawal to the Centre).
    pub withdrawal: Option<NewOutbox<'a>>,
    /// Entries appended to the audit log in the same transaction.
    pub audit: &'a [AuditEntry<'a>],
}

/// A review decision with everything that goes with it, applied by
/// [`Store::decide_case`](crate::Store::decide_case) in one transaction.
#[derive(Clone, Copy, Debug)]
pub struct DecideCase<'a> {
    /// The case.
    pub case: CaseId,
    /// The decision.
    pub decision: NewDecision<'a>,
    /// The number of decisions the caller saw when it built `outbox` (optimistic concurrency): mismatch → Conflict.
    pub expected_decisions: u32,
    /// Status after this decision, computed by the caller: AwaitingSecond, Confirmed or Rejected.
    pub new_status: CaseStatus,
    /// Report id recorded on the case (when new_status is Confirmed).
    pub report_id: Option<[u8; 16]>,
    /// Queued in the same transaction (the signed report when Confirmed; indicator feedback may go separately).
    pub outbox: Option<NewOutbox<'a>>,
    /// Rejected: the primaries of the case's items, recorded as review rejections (idempotent per case+primary).
    pub rejected_primaries: &'a [Vec<u8>],
    /// Entries appended to the audit log in the same transaction.
    pub audit: &'a [AuditEntry<'a>],
}

/// Indicator feedback for one primary hash of an order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndicatorFeedbackRow {
    /// The primary hash (opaque bytes).
    pub primary: Vec<u8>,
    /// Items dropped by the second-hash check.
    pub second_hash_drops: u64,
    /// Cases rejected in review with an item of this primary.
    pub review_rejections: u64,
}

/// Per order and period [from, to) (None: whole order), everything the
/// transparency report needs. Counts only.
///
/// Voucher counts and active accounts are kept per UTC day of processing: a
/// day counts when its start (a multiple of 86400) lies in the period.
/// Everything else counts by the time of its event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OrderStats {
    /// Vouchers received (in processed batches).
    pub vouchers_received: u64,
    /// Vouchers that opened.
    pub vouchers_opened: u64,
    /// Vouchers that opened nothing.
    pub vouchers_non_matching: u64,
    /// Invalid vouchers (including replays).
    pub vouchers_invalid: u64,
    /// Distinct accounts active in the period.
    pub accounts: u64,
    /// Distinct accounts with a case created in the period.
    pub accounts_over_threshold: u64,
    /// Cases created.
    pub cases: u64,
    /// Items dropped by the second-hash check.
    pub second_hash_dropped: u64,
    /// "confirm" review decisions.
    pub reviews_confirmed: u64,
    /// "reject" review decisions.
    pub reviews_rejected: u64,
    /// Cases whose review ended in Confirmed.
    pub cases_confirmed: u64,
    /// Cases whose review ended in Rejected.
    pub cases_rejected: u64,
    /// Reports queued for the Centre.
    pub reports_queued: u64,
    /// Reports delivered to the Centre.
    pub reports_sent: u64,
    /// Reports the Centre forwarded to law enforcement.
    pub centre_forwarded: u64,
    /// Reports the Centre found to be false positives.
    pub centre_false_positive: u64,
    /// Withdrawals delivered to the Centre.
    pub withdrawals_sent: u64,
    /// Notices to users.
    pub notices: u64,
    /// Appeals filed.
    pub appeals_filed: u64,
    /// Appeals upheld.
    pub appeals_upheld: u64,
    /// Appeals dismissed.
    pub appeals_dismissed: u64,
    /// Case items whose associated data was purged.
    pub purged_items: u64,
    /// Opened vouchers purged.
    pub purged_vouchers: u64,
    /// Cases closed.
    pub cases_closed: u64,
    /// Seconds from case creation to its final review decision (Confirmed/Rejected), one per such case, sorted.
    pub decision_seconds: Vec<u64>,
}
