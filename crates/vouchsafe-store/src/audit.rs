//! Hash chain of the audit log, and what every backend writes into it: the
//! checks of an entry, the link to the previous one, chain verification and
//! the details of the store's own entries. Backends only store and read rows.

use sha2::{Digest, Sha256};

use crate::types::{AuditEntry, AuditHead, AuditRecord, CaseId, CaseStatus, PurgeReport};
use crate::validate::check_id;
use crate::{Result, StoreError};

/// `prev_hash` of the first audit entry.
pub const AUDIT_GENESIS: [u8; 32] = [0u8; 32];

/// Domain label of the audit entry encoding.
const LABEL: &[u8] = b"vouchsafe-store/v1/audit-entry";

/// Chain hash of an entry: SHA-256(prev_hash ‖ entry), where entry is
/// `label ‖ seq (u64 BE) ‖ at (i64 BE) ‖ actor ‖ action ‖ detail`, each string
/// prefixed with its length as u64 BE (unambiguous encoding).
pub fn audit_hash(prev_hash: &[u8; 32], seq: u64, at: i64, actor: &str, action: &str, detail: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev_hash);
    h.update(LABEL);
    h.update(seq.to_be_bytes());
    h.update(at.to_be_bytes());
    for s in [actor, action, detail] {
        h.update((s.len() as u64).to_be_bytes());
        h.update(s.as_bytes());
    }
    h.finalize().into()
}

/// Checks an entry before it is appended: the actor is an identifier
/// (1..=512 bytes) and the action is not empty.
pub(crate) fn check_entry(e: &AuditEntry<'_>) -> Result<()> {
    check_id(e.actor, "audit actor must be 1..=512 bytes")?;
    if e.action.is_empty() {
        return Err(StoreError::InvalidArgument("audit action must not be empty"));
    }
    Ok(())
}

/// Sequence number and `prev_hash` of the entry that follows `last`, the
/// sequence number and hash of the chain's last entry (`None` for an empty
/// chain).
pub(crate) fn next_link(last: Option<(u64, [u8; 32])>) -> Result<(u64, [u8; 32])> {
    match last {
        Some((seq, hash)) => Ok((seq.checked_add(1).ok_or(StoreError::Corrupt("audit seq"))?, hash)),
        None => Ok((1, AUDIT_GENESIS)),
    }
}

/// The record of `e` appended at `seq` after an entry whose hash is
/// `prev_hash`, with its chain hash.
pub(crate) fn chain_record(e: &AuditEntry<'_>, seq: u64, prev_hash: [u8; 32]) -> AuditRecord {
    AuditRecord {
        seq,
        at: e.at,
        actor: e.actor.to_owned(),
        action: e.action.to_owned(),
        detail: e.detail.to_owned(),
        prev_hash,
        hash: audit_hash(&prev_hash, seq, e.at, e.actor, e.action, e.detail),
    }
}

/// Verifies a chain fed to it record by record, in `seq` order, from the
/// first.
#[derive(Debug)]
pub(crate) struct ChainVerifier {
    entries: u64,
    head: [u8; 32],
}

impl ChainVerifier {
    /// A verifier at the start of the chain.
    pub(crate) fn new() -> Self {
        ChainVerifier { entries: 0, head: AUDIT_GENESIS }
    }

    /// Sequence number the next record must have: where the chain is broken
    /// if that record is missing or does not verify.
    pub(crate) fn expected(&self) -> u64 {
        // Stored sequence numbers are at most i64::MAX, so this never saturates.
        self.entries.saturating_add(1)
    }

    /// Checks the next record: its sequence number follows, it links to the
    /// previous hash, and its own hash is recomputed. Fails with
    /// [`StoreError::AuditChainBroken`] at the expected sequence number.
    pub(crate) fn push(&mut self, rec: &AuditRecord) -> Result<()> {
        let expected = self.expected();
        let recomputed = audit_hash(&rec.prev_hash, rec.seq, rec.at, &rec.actor, &rec.action, &rec.detail);
        if rec.seq != expected || rec.prev_hash != self.head || rec.hash != recomputed {
            return Err(StoreError::AuditChainBroken { seq: expected });
        }
        self.head = rec.hash;
        self.entries = expected;
        Ok(())
    }

    /// Number of entries verified and the head hash.
    pub(crate) fn finish(self) -> AuditHead {
        AuditHead { entries: self.entries, head: self.head }
    }
}

/// Detail of the `case.create` entry of a new case.
pub(crate) fn case_create_detail(case: CaseId, order_id: &[u8; 16], items: usize) -> String {
    format!("case={} order={} items={}", case.0, hex(order_id), items)
}

/// Detail of the `case.status` entry of a review decision.
pub(crate) fn case_status_detail(case: CaseId, status: CaseStatus, previous: CaseStatus) -> String {
    format!("case={} status={} previous={}", case.0, status.as_str(), previous.as_str())
}

/// Detail of the `order.purge` entry of a purge.
pub(crate) fn order_purge_detail(order_id: &[u8; 16], report: &PurgeReport) -> String {
    format!(
        "order={} opened_vouchers={} states={} case_items={}",
        hex(order_id),
        report.opened_vouchers,
        report.states,
        report.case_items
    )
}

/// Detail of the `case.close` entry of a case whose appeal deadline passed.
pub(crate) fn case_close_detail(case: CaseId) -> String {
    format!("case={} reason=appeal-deadline", case.0)
}

/// Detail of the `case.purge` entry of a closed case's purge.
pub(crate) fn case_purge_detail(case: CaseId, items: u64, outbox: u64) -> String {
    format!("case={} items={items} outbox_entries={outbox}", case.0)
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len().saturating_mul(2));
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(detail: &str) -> AuditEntry<'_> {
        AuditEntry { at: 7, actor: "server", action: "test", detail }
    }

    #[test]
    fn records_linked_by_next_link_verify_and_any_change_breaks_the_chain() {
        let (seq, prev) = next_link(None).unwrap();
        assert_eq!((seq, prev), (1, AUDIT_GENESIS));
        let first = chain_record(&entry("a"), seq, prev);
        let (seq, prev) = next_link(Some((first.seq, first.hash))).unwrap();
        let second = chain_record(&entry("b"), seq, prev);
        assert_eq!((second.seq, second.prev_hash), (2, first.hash));

        let mut chain = ChainVerifier::new();
        chain.push(&first).unwrap();
        chain.push(&second).unwrap();
        assert_eq!(chain.finish(), AuditHead { entries: 2, head: second.hash });

        let mut tampered = second.clone();
        tampered.detail.push('!');
        let mut chain = ChainVerifier::new();
        chain.push(&first).unwrap();
        assert!(matches!(chain.push(&tampered), Err(StoreError::AuditChainBroken { seq: 2 })));
        // A gap (the first entry missing) is reported at the first expected entry.
        assert!(matches!(ChainVerifier::new().push(&second), Err(StoreError::AuditChainBroken { seq: 1 })));
        assert!(matches!(next_link(Some((u64::MAX, first.hash))), Err(StoreError::Corrupt(_))));
    }
}
