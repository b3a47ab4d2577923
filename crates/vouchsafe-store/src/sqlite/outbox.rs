//! The outbox of the SQLite store: messages to the Centre, queued in the
//! transaction of the decision that produced them and delivered (with
//! retries) by the server.

use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};
use sha2::{Digest, Sha256};

use super::SqliteStore;
use super::audit::append_audit_tx;
use super::convert::{collect, hash32, id16, limit_i64, to_i64, to_u64};
use crate::types::*;
use crate::validate::{MAX_ERROR_LEN, check_delivered, check_lease, check_outbox, failure_applies, truncate};
use crate::{Result, StoreError};

const OUTBOX_COLUMNS: &str =
    "id, message_id, kind, case_id, bytes, created_at, attempts, next_attempt_at, last_error, delivered_at";

fn outbox_row(r: &Row<'_>) -> rusqlite::Result<Result<OutboxEntry>> {
    let message_id: Vec<u8> = r.get(1)?;
    let bytes: Option<Vec<u8>> = r.get(4)?;
    let attempts: i64 = r.get(6)?;
    let id = OutboxId(r.get(0)?);
    let kind: String = r.get(2)?;
    let case: Option<i64> = r.get(3)?;
    let created_at: i64 = r.get(5)?;
    let next_attempt_at: i64 = r.get(7)?;
    let last_error: Option<String> = r.get(8)?;
    let delivered_at: Option<i64> = r.get(9)?;
    Ok((|| {
        Ok(OutboxEntry {
            id,
            message_id: id16(&message_id)?,
            kind,
            case: case.map(CaseId),
            bytes: bytes.unwrap_or_default(),
            created_at,
            attempts: u32::try_from(attempts).map_err(|_| StoreError::Corrupt("outbox attempts"))?,
            next_attempt_at,
            last_error,
            delivered_at,
        })
    })())
}

/// Queues `m` inside `tx`, idempotent on its message id. Returns the entry's
/// id and whether it is new.
pub(super) fn enqueue_tx(tx: &Transaction<'_>, m: &NewOutbox<'_>) -> Result<(OutboxId, bool)> {
    check_outbox(m)?;
    if let Some(case) = m.case {
        let exists: Option<i64> =
            tx.query_row("SELECT 1 FROM case_file WHERE id = ?1", params![case.0], |r| r.get(0)).optional()?;
        if exists.is_none() {
            return Err(StoreError::NotFound("case"));
        }
    }
    let digest: [u8; 32] = Sha256::digest(m.bytes).into();
    let existing: Option<(i64, Vec<u8>, String, Option<i64>)> = tx
        .query_row(
            "SELECT id, digest, kind, case_id FROM outbox WHERE message_id = ?1",
            params![&m.message_id[..]],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?;
    if let Some((id, stored, kind, case)) = existing {
        if hash32(&stored)? == digest && kind == m.kind && case == m.case.map(|c| c.0) {
            return Ok((OutboxId(id), false));
        }
        return Err(StoreError::Conflict("the message id is already used for another message"));
    }
    tx.execute(
        "INSERT INTO outbox (message_id, kind, case_id, bytes, digest, created_at, next_attempt_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
        params![&m.message_id[..], m.kind, m.case.map(|c| c.0), m.bytes, &digest[..], m.created_at],
    )?;
    Ok((OutboxId(tx.last_insert_rowid()), true))
}

pub(super) fn enqueue_outbox(store: &SqliteStore, m: &NewOutbox<'_>, audit: &[AuditEntry<'_>]) -> Result<OutboxId> {
    check_outbox(m)?;
    store.write(|tx| {
        let (id, new) = enqueue_tx(tx, m)?;
        // A retry changes nothing, so its audit entries are not appended again.
        if new {
            for e in audit {
                append_audit_tx(tx, e)?;
            }
        }
        Ok(id)
    })
}

pub(super) fn due_outbox(conn: &Connection, now: i64, limit: usize) -> Result<Vec<OutboxEntry>> {
    let sql = format!(
        "SELECT {OUTBOX_COLUMNS} FROM outbox
         WHERE delivered_at IS NULL AND next_attempt_at <= ?1 ORDER BY id LIMIT ?2"
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(params![now, limit_i64(limit)], outbox_row)?;
    collect(rows)
}

pub(super) fn lease_outbox(store: &SqliteStore, now: i64, until: i64, limit: usize) -> Result<Vec<OutboxEntry>> {
    check_lease(now, until)?;
    // One writer at a time: the due entries read here are the ones leased.
    store.write(|tx| {
        let mut due = due_outbox(tx, now, limit)?;
        let mut stmt = tx.prepare("UPDATE outbox SET next_attempt_at = ?1 WHERE id = ?2")?;
        for e in &mut due {
            stmt.execute(params![until, e.id.0])?;
            e.next_attempt_at = until;
        }
        Ok(due)
    })
}

pub(super) fn outbox_entry(conn: &Connection, id: OutboxId) -> Result<Option<OutboxEntry>> {
    let sql = format!("SELECT {OUTBOX_COLUMNS} FROM outbox WHERE id = ?1");
    conn.query_row(&sql, params![id.0], outbox_row).optional()?.transpose()
}

pub(super) fn outbox_failed(
    store: &SqliteStore,
    id: OutboxId,
    lease: Option<i64>,
    error: &str,
    next_attempt_at: i64,
) -> Result<bool> {
    let error = truncate(error, MAX_ERROR_LEN);
    store.write(|tx| {
        let row: Option<(Option<i64>, i64)> = tx
            .query_row("SELECT delivered_at, next_attempt_at FROM outbox WHERE id = ?1", params![id.0], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        let Some((delivered, current)) = row else {
            return Err(StoreError::NotFound("outbox entry"));
        };
        if !failure_applies(delivered, current, lease) {
            return Ok(false);
        }
        tx.execute(
            "UPDATE outbox SET attempts = MIN(attempts + 1, 4294967295), last_error = ?1, next_attempt_at = ?2
             WHERE id = ?3",
            params![error, next_attempt_at, id.0],
        )?;
        Ok(true)
    })
}

pub(super) fn outbox_delivered(store: &SqliteStore, d: &Delivered<'_>) -> Result<bool> {
    check_delivered(d)?;
    store.write(|tx| {
        let row: Option<(Option<i64>, Option<i64>, String)> = tx
            .query_row("SELECT delivered_at, case_id, kind FROM outbox WHERE id = ?1", params![d.id.0], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?;
        let Some((delivered, case, kind)) = row else {
            return Err(StoreError::NotFound("outbox entry"));
        };
        if delivered.is_some() {
            return Ok(false);
        }
        if (d.case_status.is_some() || d.notice.is_some()) && kind != "report" {
            return Err(StoreError::InvalidArgument("only a report's delivery carries a verdict or a notice"));
        }
        tx.execute(
            "UPDATE outbox SET delivered_at = ?1, receipt = ?2 WHERE id = ?3",
            params![d.at, d.receipt, d.id.0],
        )?;
        if let Some((status, reason)) = d.case_status {
            let case = case.ok_or(StoreError::InvalidArgument("the report is about no case"))?;
            let current: String =
                tx.query_row("SELECT status FROM case_file WHERE id = ?1", params![case], |r| r.get(0))?;
            if CaseStatus::parse(&current) != Some(CaseStatus::Confirmed) {
                return Err(StoreError::Conflict("the case is not waiting for the Centre's verdict"));
            }
            let closes = status == CaseStatus::FalsePositive;
            tx.execute(
                "UPDATE case_file SET status = ?1, centre_verdict = ?1, centre_reason = ?2, centre_at = ?3,
                     closed_at = CASE WHEN ?4 THEN COALESCE(closed_at, ?3) ELSE closed_at END
                 WHERE id = ?5",
                params![status.as_str(), reason, d.at, closes, case],
            )?;
        }
        if let Some(n) = &d.notice {
            if case != Some(n.case.0) {
                return Err(StoreError::InvalidArgument("the notice is about another case than the report"));
            }
            insert_notice(tx, n)?;
        }
        for e in d.audit {
            append_audit_tx(tx, e)?;
        }
        Ok(true)
    })
}

fn insert_notice(tx: &Transaction<'_>, n: &NewNotice<'_>) -> Result<()> {
    let (account, order): (String, Vec<u8>) =
        tx.query_row("SELECT account, order_id FROM case_file WHERE id = ?1", params![n.case.0], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    if account != n.account || id16(&order)? != n.order_id {
        return Err(StoreError::InvalidArgument("the notice's account or order is not the case's"));
    }
    let exists: Option<i64> =
        tx.query_row("SELECT id FROM notice WHERE case_id = ?1", params![n.case.0], |r| r.get(0)).optional()?;
    if exists.is_some() {
        return Err(StoreError::Conflict("the case already has a notice"));
    }
    tx.execute(
        "INSERT INTO notice (account, case_id, order_id, order_hash, reported_at, appeal_deadline)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![n.account, n.case.0, &n.order_id[..], &n.order_hash[..], n.reported_at, n.appeal_deadline],
    )?;
    let notice = tx.last_insert_rowid();
    let mut stmt =
        tx.prepare("INSERT INTO notice_attachment (notice_id, pos, attachment, time) VALUES (?1, ?2, ?3, ?4)")?;
    for (pos, (attachment, time)) in n.attachments.iter().enumerate() {
        stmt.execute(params![notice, to_i64(pos as u64)?, &attachment[..], to_i64(*time)?])?;
    }
    Ok(())
}

pub(super) fn outbox_pending(conn: &Connection) -> Result<u64> {
    let n: i64 = conn.query_row("SELECT COUNT(*) FROM outbox WHERE delivered_at IS NULL", [], |r| r.get(0))?;
    to_u64(n)
}
