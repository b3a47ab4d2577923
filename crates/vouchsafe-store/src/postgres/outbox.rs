//! The outbox of the PostgreSQL store: messages to the Centre, queued in the
//! transaction of the decision that produced them and delivered (with
//! retries) by the server.

use sha2::{Digest, Sha256};
use tokio_postgres::Row;

use super::PostgresStore;
use super::audit::append_audit_tx;
use super::conn::{Pg, get};
use crate::convert::{hash32, id16, limit_i64, to_i64, to_u64};
use crate::types::*;
use crate::validate::{MAX_ERROR_LEN, check_delivered, check_lease, check_outbox, failure_applies, truncate};
use crate::{Result, StoreError};

const OUTBOX_COLUMNS: &str =
    "id, message_id, kind, case_id, bytes, created_at, attempts, next_attempt_at, last_error, delivered_at";

fn outbox_row(r: &Row) -> Result<OutboxEntry> {
    let message_id: Vec<u8> = get(r, 1)?;
    let bytes: Option<Vec<u8>> = get(r, 4)?;
    let attempts: i64 = get(r, 6)?;
    let case: Option<i64> = get(r, 3)?;
    Ok(OutboxEntry {
        id: OutboxId(get(r, 0)?),
        message_id: id16(&message_id)?,
        kind: get(r, 2)?,
        case: case.map(CaseId),
        bytes: bytes.unwrap_or_default(),
        created_at: get(r, 5)?,
        attempts: u32::try_from(attempts).map_err(|_| StoreError::Corrupt("outbox attempts"))?,
        next_attempt_at: get(r, 7)?,
        last_error: get(r, 8)?,
        delivered_at: get(r, 9)?,
    })
}

/// Queues `m` inside the caller's write transaction, idempotent on its
/// message id. Returns the entry's id and whether it is new.
pub(super) fn enqueue_tx(q: &Pg<'_>, m: &NewOutbox<'_>) -> Result<(OutboxId, bool)> {
    check_outbox(m)?;
    if let Some(case) = m.case
        && q.query_opt("SELECT 1 FROM case_file WHERE id = $1", &[&case.0])?.is_none()
    {
        return Err(StoreError::NotFound("case"));
    }
    let digest: [u8; 32] = Sha256::digest(m.bytes).into();
    let existing =
        q.query_opt("SELECT id, digest, kind, case_id FROM outbox WHERE message_id = $1", &[&&m.message_id[..]])?;
    if let Some(r) = existing {
        let id: i64 = get(&r, 0)?;
        let stored: Vec<u8> = get(&r, 1)?;
        let kind: String = get(&r, 2)?;
        let case: Option<i64> = get(&r, 3)?;
        if hash32(&stored)? == digest && kind == m.kind && case == m.case.map(|c| c.0) {
            return Ok((OutboxId(id), false));
        }
        return Err(StoreError::Conflict("the message id is already used for another message"));
    }
    // A concurrent transaction that queued the same message id first makes
    // this insert fail with a serialization failure (the row is not in this
    // transaction's snapshot), so the whole transaction runs again and sees it.
    let row = q.query_opt(
        "INSERT INTO outbox (message_id, kind, case_id, bytes, digest, created_at, next_attempt_at)
         VALUES ($1, $2, $3, $4, $5, $6, $6)
         ON CONFLICT (message_id) DO NOTHING RETURNING id",
        &[&&m.message_id[..], &m.kind, &m.case.map(|c| c.0), &m.bytes, &&digest[..], &m.created_at],
    )?;
    let row = row.ok_or(StoreError::Corrupt("outbox message id neither stored nor new"))?;
    Ok((OutboxId(get(&row, 0)?), true))
}

pub(super) fn enqueue_outbox(store: &PostgresStore, m: &NewOutbox<'_>, audit: &[AuditEntry<'_>]) -> Result<OutboxId> {
    check_outbox(m)?;
    store.pool.write(|q| {
        let (id, new) = enqueue_tx(q, m)?;
        // A retry changes nothing, so its audit entries are not appended again.
        if new {
            for e in audit {
                append_audit_tx(q, e)?;
            }
        }
        Ok(id)
    })
}

pub(super) fn due_outbox(store: &PostgresStore, now: i64, limit: usize) -> Result<Vec<OutboxEntry>> {
    let sql = format!(
        "SELECT {OUTBOX_COLUMNS} FROM outbox
         WHERE delivered_at IS NULL AND next_attempt_at <= $1 ORDER BY id LIMIT $2"
    );
    store.pool.plain(|q| q.query(&sql, &[&now, &limit_i64(limit)])?.iter().map(outbox_row).collect())
}

pub(super) fn lease_outbox(store: &PostgresStore, now: i64, until: i64, limit: usize) -> Result<Vec<OutboxEntry>> {
    check_lease(now, until)?;
    // The queue pattern: the due rows no other transaction holds, locked and moved on in one statement (READ
    // COMMITTED: a row leased meanwhile is re-checked against the condition and passed over).
    let sql = format!(
        "UPDATE outbox SET next_attempt_at = $2
         WHERE id IN (SELECT id FROM outbox WHERE delivered_at IS NULL AND next_attempt_at <= $1
                      ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED)
         RETURNING {OUTBOX_COLUMNS}"
    );
    let mut leased = store.pool.write_read_committed(|q| {
        q.query(&sql, &[&now, &until, &limit_i64(limit)])?.iter().map(outbox_row).collect::<Result<Vec<_>>>()
    })?;
    leased.sort_by_key(|e| e.id.0);
    Ok(leased)
}

pub(super) fn outbox_entry(store: &PostgresStore, id: OutboxId) -> Result<Option<OutboxEntry>> {
    let sql = format!("SELECT {OUTBOX_COLUMNS} FROM outbox WHERE id = $1");
    store.pool.plain(|q| q.query_opt(&sql, &[&id.0])?.as_ref().map(outbox_row).transpose())
}

pub(super) fn outbox_failed(
    store: &PostgresStore,
    id: OutboxId,
    lease: Option<i64>,
    error: &str,
    next_attempt_at: i64,
) -> Result<bool> {
    let error = truncate(error, MAX_ERROR_LEN);
    store.pool.write(|q| {
        let Some(row) = q.query_opt("SELECT delivered_at, next_attempt_at FROM outbox WHERE id = $1", &[&id.0])? else {
            return Err(StoreError::NotFound("outbox entry"));
        };
        if !failure_applies(get(&row, 0)?, get(&row, 1)?, lease) {
            return Ok(false);
        }
        q.execute(
            "UPDATE outbox SET attempts = LEAST(attempts + 1, 4294967295), last_error = $1, next_attempt_at = $2
             WHERE id = $3",
            &[&error, &next_attempt_at, &id.0],
        )?;
        Ok(true)
    })
}

pub(super) fn outbox_delivered(store: &PostgresStore, d: &Delivered<'_>) -> Result<bool> {
    check_delivered(d)?;
    store.pool.write(|q| {
        let Some(row) = q.query_opt("SELECT delivered_at, case_id, kind FROM outbox WHERE id = $1", &[&d.id.0])? else {
            return Err(StoreError::NotFound("outbox entry"));
        };
        let delivered: Option<i64> = get(&row, 0)?;
        let case: Option<i64> = get(&row, 1)?;
        let kind: String = get(&row, 2)?;
        if delivered.is_some() {
            return Ok(false);
        }
        if (d.case_status.is_some() || d.notice.is_some()) && kind != "report" {
            return Err(StoreError::InvalidArgument("only a report's delivery carries a verdict or a notice"));
        }
        // A concurrent delivery of the same entry updates the same row: the
        // later of the two fails to serialize and runs again (then sees it
        // delivered).
        q.execute("UPDATE outbox SET delivered_at = $1, receipt = $2 WHERE id = $3", &[&d.at, &d.receipt, &d.id.0])?;
        if let Some((status, reason)) = d.case_status {
            let case = case.ok_or(StoreError::InvalidArgument("the report is about no case"))?;
            let row = q.query_one("SELECT status FROM case_file WHERE id = $1", &[&case])?;
            let current: String = get(&row, 0)?;
            if CaseStatus::parse(&current) != Some(CaseStatus::Confirmed) {
                return Err(StoreError::Conflict("the case is not waiting for the Centre's verdict"));
            }
            let closes = status == CaseStatus::FalsePositive;
            q.execute(
                "UPDATE case_file SET status = $1, centre_verdict = $1, centre_reason = $2, centre_at = $3,
                     closed_at = CASE WHEN $4 THEN COALESCE(closed_at, $3) ELSE closed_at END
                 WHERE id = $5",
                &[&status.as_str(), &reason, &d.at, &closes, &case],
            )?;
        }
        if let Some(n) = &d.notice {
            if case != Some(n.case.0) {
                return Err(StoreError::InvalidArgument("the notice is about another case than the report"));
            }
            insert_notice(q, n)?;
        }
        for e in d.audit {
            append_audit_tx(q, e)?;
        }
        Ok(true)
    })
}

fn insert_notice(q: &Pg<'_>, n: &NewNotice<'_>) -> Result<()> {
    let row = q.query_one("SELECT account, order_id FROM case_file WHERE id = $1", &[&n.case.0])?;
    let account: String = get(&row, 0)?;
    let order: Vec<u8> = get(&row, 1)?;
    if account != n.account || id16(&order)? != n.order_id {
        return Err(StoreError::InvalidArgument("the notice's account or order is not the case's"));
    }
    if q.query_opt("SELECT id FROM notice WHERE case_id = $1", &[&n.case.0])?.is_some() {
        return Err(StoreError::Conflict("the case already has a notice"));
    }
    // A notice of the case inserted by a concurrent transaction makes this
    // insert fail with a serialization failure: run again, it is seen above.
    let row = q.query_opt(
        "INSERT INTO notice (account, case_id, order_id, order_hash, reported_at, appeal_deadline)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (case_id) DO NOTHING RETURNING id",
        &[&n.account, &n.case.0, &&n.order_id[..], &&n.order_hash[..], &n.reported_at, &n.appeal_deadline],
    )?;
    let notice: i64 = get(&row.ok_or(StoreError::Conflict("the case already has a notice"))?, 0)?;
    if n.attachments.is_empty() {
        return Ok(());
    }
    let attachments: Vec<&[u8]> = n.attachments.iter().map(|(a, _)| &a[..]).collect();
    let times = n.attachments.iter().map(|(_, t)| to_i64(*t)).collect::<Result<Vec<i64>>>()?;
    q.execute(
        "INSERT INTO notice_attachment (notice_id, pos, attachment, time)
         SELECT $1::BIGINT, x.n - 1, x.a, x.tm FROM UNNEST($2::BYTEA[], $3::BIGINT[]) WITH ORDINALITY AS x(a, tm, n)",
        &[&notice, &attachments, &times],
    )?;
    Ok(())
}

pub(super) fn outbox_pending(store: &PostgresStore) -> Result<u64> {
    store.pool.plain(|q| {
        let row = q.query_one("SELECT COUNT(*) FROM outbox WHERE delivered_at IS NULL", &[])?;
        to_u64(get(&row, 0)?)
    })
}
