//! Argument checks every backend applies before it writes.

use crate::types::{BatchResults, CaseStatus};
use crate::{Result, StoreError};

/// Upper bound on account and actor identifiers, in bytes (the server's configuration check uses it too).
pub const MAX_ID_LEN: usize = 512;

/// Checks that an account, actor or reviewer identifier is 1..=512 bytes.
pub(crate) fn check_id(s: &str, what: &'static str) -> Result<()> {
    if s.is_empty() || s.len() > MAX_ID_LEN {
        return Err(StoreError::InvalidArgument(what));
    }
    Ok(())
}

/// Checks that `results` account for every one of the `count` vouchers of a
/// batch (`non_matches + invalid + opened.len() == count`).
pub(crate) fn check_accounted(results: &BatchResults, count: u64) -> Result<()> {
    let opened = u64::try_from(results.opened.len()).ok();
    let accounted = results.non_matches.checked_add(results.invalid).and_then(|n| n.checked_add(opened?));
    if accounted != Some(count) {
        return Err(StoreError::InvalidArgument("results do not account for every voucher of the batch"));
    }
    Ok(())
}

/// Checks a review decision from `current` to `new`: a case is never
/// reopened, and a decision must change the status (a decided case can be
/// reversed, e.g. on appeal).
pub(crate) fn check_transition(current: CaseStatus, new: CaseStatus) -> Result<()> {
    if new == CaseStatus::Open || new == current {
        return Err(StoreError::InvalidTransition);
    }
    Ok(())
}
