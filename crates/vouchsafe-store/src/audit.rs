//! Hash chain of the audit log.

use sha2::{Digest, Sha256};

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
