//! Argument checks every backend applies before it writes.

use crate::types::{BatchResults, CaseStatus, DecideAppeal, DecideCase, Delivered, NewOutbox};
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

/// Checks a claim's worker and times.
pub(crate) fn check_claim(claim: &crate::types::Claim<'_>) -> Result<()> {
    check_id(claim.worker, "worker must be 1..=512 bytes")?;
    if claim.until < claim.now {
        return Err(StoreError::InvalidArgument("a claim must not end before it is made"));
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

/// Longest appeal text, in bytes.
pub(crate) const MAX_APPEAL_TEXT: usize = 16 * 1024;

/// Longest free text of a decision (reason, comment) or a Centre reason, in bytes.
pub(crate) const MAX_TEXT: usize = 16 * 1024;

/// Longest stored delivery error, in bytes (longer ones are truncated).
pub(crate) const MAX_ERROR_LEN: usize = 1000;

fn check_text(s: &str, what: &'static str) -> Result<()> {
    if s.len() > MAX_TEXT {
        return Err(StoreError::InvalidArgument(what));
    }
    Ok(())
}

/// `s` cut to at most `max` bytes, at a character boundary.
pub(crate) fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default()
}

/// Whether a failed delivery is recorded on an outbox entry (see [`crate::Store::outbox_failed`]): not once it is
/// delivered, and with `lease` only while the entry's `next_attempt_at` is still that lease.
pub(crate) fn failure_applies(delivered_at: Option<i64>, next_attempt_at: i64, lease: Option<i64>) -> bool {
    delivered_at.is_none() && lease.is_none_or(|l| l == next_attempt_at)
}

/// Checks a message to queue: a known kind and some bytes.
pub(crate) fn check_outbox(m: &NewOutbox<'_>) -> Result<()> {
    if !matches!(m.kind, "report" | "withdrawal" | "feedback") {
        return Err(StoreError::InvalidArgument("outbox kind must be report, withdrawal or feedback"));
    }
    if m.bytes.is_empty() {
        return Err(StoreError::InvalidArgument("outbox message must not be empty"));
    }
    Ok(())
}

/// Checks what can be checked of a review decision without the stored case.
pub(crate) fn check_decide_case(d: &DecideCase<'_>) -> Result<()> {
    let n = &d.decision;
    check_id(n.reviewer, "reviewer must be 1..=512 bytes")?;
    check_id(n.role, "role must be 1..=512 bytes")?;
    check_text(n.reason, "decision reason too long")?;
    check_text(n.comment, "decision comment too long")?;
    let confirm = match n.verdict {
        "confirm" => true,
        "reject" => false,
        _ => return Err(StoreError::InvalidArgument("verdict must be confirm or reject")),
    };
    match d.new_status {
        CaseStatus::AwaitingSecond | CaseStatus::Rejected => {}
        CaseStatus::Confirmed if confirm => {}
        CaseStatus::Confirmed => {
            return Err(StoreError::InvalidArgument("a reject verdict cannot confirm the case"));
        }
        _ => {
            return Err(StoreError::InvalidArgument(
                "a review decision leads to awaiting-second, confirmed or rejected",
            ));
        }
    }
    if d.report_id.is_some() && d.new_status != CaseStatus::Confirmed {
        return Err(StoreError::InvalidArgument("a report id goes only with a confirmed case"));
    }
    if !d.rejected_primaries.is_empty() && d.new_status != CaseStatus::Rejected {
        return Err(StoreError::InvalidArgument("review rejections go only with a rejected case"));
    }
    if d.rejected_primaries.iter().any(Vec::is_empty) {
        return Err(StoreError::InvalidArgument("a rejected primary must not be empty"));
    }
    if let Some(m) = &d.outbox {
        check_outbox(m)?;
        if m.case != Some(d.case) {
            return Err(StoreError::InvalidArgument("the outbox message must be about the decided case"));
        }
    }
    Ok(())
}

/// Longest cosignature line stored (a note signature line is ~100 bytes beside its key name).
const MAX_COSIGNATURE_LINE: usize = 8192;

/// A log cosignature's origin, witness and line.
pub(crate) fn check_cosignature(c: &crate::types::NewLogCosignature<'_>) -> Result<()> {
    check_id(c.origin, "log origin must be 1..=512 bytes")?;
    check_id(c.witness, "witness must be 1..=512 bytes")?;
    if c.line.is_empty() || c.line.len() > MAX_COSIGNATURE_LINE || c.line.contains(['\n', '\r']) {
        return Err(StoreError::InvalidArgument("cosignature must be one line of 1..=8192 bytes"));
    }
    Ok(())
}

/// A lease of due outbox entries ends after it starts.
pub(crate) fn check_lease(now: i64, until: i64) -> Result<()> {
    if until <= now {
        return Err(StoreError::InvalidArgument("an outbox lease must end after now"));
    }
    Ok(())
}

/// Checks what can be checked of a delivery without the stored entry.
pub(crate) fn check_delivered(d: &Delivered<'_>) -> Result<()> {
    if let Some((status, reason)) = d.case_status {
        if !matches!(status, CaseStatus::Forwarded | CaseStatus::FalsePositive) {
            return Err(StoreError::InvalidArgument("the Centre's verdict is forwarded or false-positive"));
        }
        check_text(reason, "Centre reason too long")?;
    }
    if let Some(n) = &d.notice {
        check_id(n.account, "account must be 1..=512 bytes")?;
        if n.appeal_deadline < n.reported_at {
            return Err(StoreError::InvalidArgument("the appeal deadline is before the report"));
        }
        if n.attachments.iter().any(|(_, t)| i64::try_from(*t).is_err()) {
            return Err(StoreError::InvalidArgument("attachment time out of range"));
        }
    }
    Ok(())
}

/// Checks what can be checked of an appeal decision without the stored appeal.
pub(crate) fn check_decide_appeal(d: &DecideAppeal<'_>) -> Result<()> {
    check_id(d.by, "decider must be 1..=512 bytes")?;
    check_text(d.reason, "appeal decision reason too long")?;
    match (&d.withdrawal, d.uphold) {
        (Some(m), true) => {
            check_outbox(m)?;
            if m.kind != "withdrawal" {
                return Err(StoreError::InvalidArgument("an upheld appeal queues a withdrawal"));
            }
        }
        (None, true) => return Err(StoreError::InvalidArgument("an upheld appeal needs the withdrawal to send")),
        (Some(_), false) => return Err(StoreError::InvalidArgument("a dismissed appeal sends no withdrawal")),
        (None, false) => {}
    }
    Ok(())
}
