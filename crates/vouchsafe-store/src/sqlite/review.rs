//! Review decisions of the SQLite store: the decisions of a case and the
//! decision transaction (status, report id, outbox, rejections, audit).

use rusqlite::{Connection, OptionalExtension, params};

use super::SqliteStore;
use super::audit::append_audit_tx;
use super::cases::summary_tx;
use super::convert::collect;
use super::outbox::enqueue_tx;
use crate::types::*;
use crate::validate::check_decide_case;
use crate::{Result, StoreError};

pub(super) fn case_decisions(conn: &Connection, case: CaseId) -> Result<Vec<StoredDecision>> {
    let mut stmt = conn.prepare(
        "SELECT reviewer, role, verdict, reason, comment, at FROM case_decision WHERE case_id = ?1 ORDER BY seq",
    )?;
    let rows = stmt.query_map(params![case.0], |r| {
        Ok(Ok(StoredDecision {
            reviewer: r.get(0)?,
            role: r.get(1)?,
            verdict: r.get(2)?,
            reason: r.get(3)?,
            comment: r.get(4)?,
            at: r.get(5)?,
        }))
    })?;
    collect(rows)
}

pub(super) fn decide_case(store: &SqliteStore, d: &DecideCase<'_>) -> Result<CaseSummary> {
    check_decide_case(d)?;
    let n = &d.decision;
    store.write(|tx| {
        let row: Option<(String, bool)> = tx
            .query_row("SELECT status, four_eyes FROM case_file WHERE id = ?1", params![d.case.0], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        let Some((status, four_eyes)) = row else {
            return Err(StoreError::NotFound("case"));
        };
        let status = CaseStatus::parse(&status).ok_or(StoreError::Corrupt("case status"))?;
        if !matches!(status, CaseStatus::Open | CaseStatus::AwaitingSecond) {
            return Err(StoreError::Conflict("the case is already decided"));
        }
        let (count, confirms, by_reviewer): (i64, i64, i64) = tx.query_row(
            "SELECT COUNT(*), COALESCE(SUM(verdict = 'confirm'), 0), COALESCE(SUM(reviewer = ?2), 0)
             FROM case_decision WHERE case_id = ?1",
            params![d.case.0, n.reviewer],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        if by_reviewer != 0 {
            return Err(StoreError::Conflict(
                "this reviewer already decided the case: four-eyes needs a second reviewer",
            ));
        }
        if count != i64::from(d.expected_decisions) {
            return Err(StoreError::Conflict("the case changed since it was read"));
        }
        let confirms = confirms + i64::from(n.verdict == "confirm");
        if four_eyes && d.new_status == CaseStatus::Confirmed && confirms < 2 {
            return Err(StoreError::InvalidArgument("a four-eyes case needs two confirmations by different reviewers"));
        }
        tx.execute(
            "INSERT INTO case_decision (case_id, seq, reviewer, role, verdict, reason, comment, at, resulting_status)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![d.case.0, count, n.reviewer, n.role, n.verdict, n.reason, n.comment, n.at, d.new_status.as_str()],
        )?;
        let rejected = d.new_status == CaseStatus::Rejected;
        tx.execute(
            "UPDATE case_file SET status = ?1, reviewer = ?2, reason = ?3, decided_at = ?4,
                 report_id = COALESCE(?5, report_id), urgent = (urgent OR ?6),
                 closed_at = CASE WHEN ?7 THEN ?4 ELSE closed_at END
             WHERE id = ?8",
            params![
                d.new_status.as_str(),
                n.reviewer,
                n.reason,
                n.at,
                d.report_id.as_ref().map(|r| &r[..]),
                n.urgent,
                rejected,
                d.case.0
            ],
        )?;
        if let Some(m) = &d.outbox {
            enqueue_tx(tx, m)?;
        }
        {
            let mut stmt = tx.prepare(
                "INSERT INTO review_rejection (case_id, primary_hash, at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (case_id, primary_hash) DO NOTHING",
            )?;
            for p in d.rejected_primaries {
                stmt.execute(params![d.case.0, p, n.at])?;
            }
        }
        for e in d.audit {
            append_audit_tx(tx, e)?;
        }
        summary_tx(tx, d.case)?.ok_or(StoreError::Corrupt("decided case vanished"))
    })
}
