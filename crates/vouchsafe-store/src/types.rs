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

/// An unprocessed batch from the inbox.
#[derive(Clone, PartialEq, Eq)]
pub struct InboxBatch {
    /// Inbox row id, passed back to [`Store::complete_batch`](crate::Store::complete_batch).
    pub id: InboxId,
    /// Account that submitted the batch.
    pub account: String,
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

/// New threshold state for one order of the batch's account. The state may
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

/// Review status of a case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CaseStatus {
    /// Waiting for human review.
    Open,
    /// A reviewer confirmed the match.
    Confirmed,
    /// A reviewer rejected the match (false positive).
    Rejected,
}

impl CaseStatus {
    /// Stable name used in storage and audit entries.
    pub fn as_str(self) -> &'static str {
        match self {
            CaseStatus::Open => "open",
            CaseStatus::Confirmed => "confirmed",
            CaseStatus::Rejected => "rejected",
        }
    }

    /// Parses a name produced by [`CaseStatus::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "open" => Some(CaseStatus::Open),
            "confirmed" => Some(CaseStatus::Confirmed),
            "rejected" => Some(CaseStatus::Rejected),
            _ => None,
        }
    }
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
    /// The associated data of the items was purged with the order.
    pub ad_purged: bool,
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
}
