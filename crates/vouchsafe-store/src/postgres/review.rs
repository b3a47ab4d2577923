//! Review decisions of the PostgreSQL store: the decisions of a case and the
//! decision transaction (status, report id, outbox, rejections, audit).

use super::PostgresStore;
use super::audit::append_audit_tx;
use super::cases::summary_tx;
use super::conn::get;
use super::outbox::enqueue_tx;
use crate::types::*;
use crate::validate::check_decide_case;
use crate::{Result, StoreError};

pub(super) fn case_decisions(store: &PostgresStore, case: CaseId) -> Result<Vec<StoredDecision>> {
    store.pool.plain(|q| {
        q.query(
            "SELECT reviewer, role, verdict, reason, comment, at FROM case_decision WHERE case_id = $1 ORDER BY seq",
            &[&case.0],
        )?
        .iter()
        .map(|r| {
            Ok(StoredDecision {
                reviewer: get(r, 0)?,
                role: get(r, 1)?,
                verdict: get(r, 2)?,
                reason: get(r, 3)?,
                comment: get(r, 4)?,
                at: get(r, 5)?,
            })
        })
        .collect()
    })
}

pub(super) fn decide_case(store: &PostgresStore, d: &DecideCase<'_>) -> Result<CaseSummary> {
    check_decide_case(d)?;
    let n = &d.decision;
    let rejected_primaries: Vec<&[u8]> = d.rejected_primaries.iter().map(Vec::as_slice).collect();
    store.pool.write(|q| {
        // The row lock orders concurrent decisions on the case (from any
        // replica): the later one waits, then fails to serialize once the
        // earlier commits, and runs again against the decided case.
        let Some(row) =
            q.query_opt("SELECT status, four_eyes FROM case_file WHERE id = $1 FOR UPDATE", &[&d.case.0])?
        else {
            return Err(StoreError::NotFound("case"));
        };
        let status: String = get(&row, 0)?;
        let four_eyes: bool = get(&row, 1)?;
        let status = CaseStatus::parse(&status).ok_or(StoreError::Corrupt("case status"))?;
        if !matches!(status, CaseStatus::Open | CaseStatus::AwaitingSecond) {
            return Err(StoreError::Conflict("the case is already decided"));
        }
        let row = q.query_one(
            "SELECT COUNT(*), COUNT(*) FILTER (WHERE verdict = 'confirm'), COUNT(*) FILTER (WHERE reviewer = $2)
             FROM case_decision WHERE case_id = $1",
            &[&d.case.0, &n.reviewer],
        )?;
        let count: i64 = get(&row, 0)?;
        let confirms: i64 = get(&row, 1)?;
        let by_reviewer: i64 = get(&row, 2)?;
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
        q.execute(
            "INSERT INTO case_decision (case_id, seq, reviewer, role, verdict, reason, comment, at, resulting_status)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[
                &d.case.0,
                &count,
                &n.reviewer,
                &n.role,
                &n.verdict,
                &n.reason,
                &n.comment,
                &n.at,
                &d.new_status.as_str(),
            ],
        )?;
        let rejected = d.new_status == CaseStatus::Rejected;
        q.execute(
            "UPDATE case_file SET status = $1, reviewer = $2, reason = $3, decided_at = $4,
                 report_id = COALESCE($5, report_id), urgent = (urgent OR $6),
                 closed_at = CASE WHEN $7 THEN $4 ELSE closed_at END
             WHERE id = $8",
            &[
                &d.new_status.as_str(),
                &n.reviewer,
                &n.reason,
                &n.at,
                &d.report_id.as_ref().map(|r| &r[..]),
                &n.urgent,
                &rejected,
                &d.case.0,
            ],
        )?;
        if let Some(m) = &d.outbox {
            enqueue_tx(q, m)?;
        }
        if !rejected_primaries.is_empty() {
            q.execute(
                "INSERT INTO review_rejection (case_id, primary_hash, at)
                 SELECT $1::BIGINT, t.p, $3::BIGINT FROM UNNEST($2::BYTEA[]) AS t(p)
                 ON CONFLICT (case_id, primary_hash) DO NOTHING",
                &[&d.case.0, &rejected_primaries, &n.at],
            )?;
        }
        for e in d.audit {
            append_audit_tx(q, e)?;
        }
        summary_tx(q, d.case)?.ok_or(StoreError::Corrupt("decided case vanished"))
    })
}
