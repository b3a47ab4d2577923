//! Notices and appeals of the SQLite store: what a user is told about a
//! reported case, the appeal against it, and its decision.

use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};

use super::SqliteStore;
use super::audit::append_audit_tx;
use super::convert::{collect, hash32, id16, limit_i64, to_u64};
use super::outbox::enqueue_tx;
use crate::types::*;
use crate::validate::{MAX_APPEAL_TEXT, check_decide_appeal, check_id};
use crate::{Result, StoreError};

const APPEAL_COLUMNS: &str = "id, notice_id, case_id, account, text, filed_at, status, decided_by, decided_at, reason";

fn appeal_row(r: &Row<'_>) -> rusqlite::Result<Result<AppealRecord>> {
    let status: String = r.get(6)?;
    let rec = AppealRecord {
        id: AppealId(r.get(0)?),
        notice: NoticeId(r.get(1)?),
        case: CaseId(r.get(2)?),
        account: r.get(3)?,
        text: r.get(4)?,
        filed_at: r.get(5)?,
        status: AppealStatus::Pending,
        decided_by: r.get(7)?,
        decided_at: r.get(8)?,
        reason: r.get(9)?,
    };
    Ok(AppealStatus::parse(&status)
        .map(|status| AppealRecord { status, ..rec })
        .ok_or(StoreError::Corrupt("appeal status")))
}

fn appeal_by(conn: &Connection, column: &str, id: i64) -> Result<Option<AppealRecord>> {
    let sql = format!("SELECT {APPEAL_COLUMNS} FROM appeal WHERE {column} = ?1");
    conn.query_row(&sql, params![id], appeal_row).optional()?.transpose()
}

fn notice_record(conn: &Connection, id: NoticeId) -> Result<Option<NoticeRecord>> {
    type Row = (String, i64, Vec<u8>, Vec<u8>, i64, i64, bool);
    let row: Option<Row> = conn
        .query_row(
            "SELECT account, case_id, order_id, order_hash, reported_at, appeal_deadline, action_reversed
             FROM notice WHERE id = ?1",
            params![id.0],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?)),
        )
        .optional()?;
    let Some((account, case, order, order_hash, reported_at, appeal_deadline, action_reversed)) = row else {
        return Ok(None);
    };
    let mut stmt = conn.prepare("SELECT attachment, time FROM notice_attachment WHERE notice_id = ?1 ORDER BY pos")?;
    let rows = stmt.query_map(params![id.0], |r| {
        let a: Vec<u8> = r.get(0)?;
        let t: i64 = r.get(1)?;
        Ok(hash32(&a).and_then(|a| Ok((a, to_u64(t)?))))
    })?;
    let attachments = collect(rows)?;
    Ok(Some(NoticeRecord {
        id,
        account,
        case: CaseId(case),
        order_id: id16(&order)?,
        order_hash: hash32(&order_hash)?,
        reported_at,
        attachments,
        appeal_deadline,
        action_reversed,
        appeal: appeal_by(conn, "notice_id", id.0)?,
    }))
}

pub(super) fn notices(conn: &mut Connection, account: &str) -> Result<Vec<NoticeRecord>> {
    let tx = conn.transaction()?;
    let ids: Vec<i64> = {
        let mut stmt = tx.prepare("SELECT id FROM notice WHERE account = ?1 ORDER BY id")?;
        stmt.query_map(params![account], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?
    };
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        out.extend(notice_record(&tx, NoticeId(id))?);
    }
    Ok(out)
}

pub(super) fn notice(conn: &mut Connection, id: NoticeId) -> Result<Option<NoticeRecord>> {
    let tx = conn.transaction()?;
    notice_record(&tx, id)
}

pub(super) fn file_appeal(
    store: &SqliteStore,
    account: &str,
    notice: NoticeId,
    text: &str,
    at: i64,
    audit: &[AuditEntry<'_>],
) -> Result<AppealRecord> {
    check_id(account, "account must be 1..=512 bytes")?;
    if text.len() > MAX_APPEAL_TEXT {
        return Err(StoreError::InvalidArgument("appeal text too long"));
    }
    store.write(|tx| {
        let row: Option<(String, i64, i64)> = tx
            .query_row("SELECT account, case_id, appeal_deadline FROM notice WHERE id = ?1", params![notice.0], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?;
        // Another account's notice is answered exactly like a missing one.
        let Some((owner, case, deadline)) = row.filter(|(owner, _, _)| owner == account) else {
            return Err(StoreError::NotFound("notice"));
        };
        if at > deadline {
            return Err(StoreError::Conflict("the appeal deadline has passed"));
        }
        if appeal_by(tx, "notice_id", notice.0)?.is_some() {
            return Err(StoreError::Conflict("the notice was already appealed"));
        }
        tx.execute(
            "INSERT INTO appeal (notice_id, case_id, account, text, filed_at, status)
             VALUES (?1, ?2, ?3, ?4, ?5, 'pending')",
            params![notice.0, case, owner, text, at],
        )?;
        let id = tx.last_insert_rowid();
        for e in audit {
            append_audit_tx(tx, e)?;
        }
        appeal_by(tx, "id", id)?.ok_or(StoreError::Corrupt("filed appeal vanished"))
    })
}

pub(super) fn list_appeals(conn: &Connection, status: Option<AppealStatus>, limit: usize) -> Result<Vec<AppealRecord>> {
    let sql =
        format!("SELECT {APPEAL_COLUMNS} FROM appeal WHERE (?1 IS NULL OR status = ?1) ORDER BY id DESC LIMIT ?2");
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(params![status.map(AppealStatus::as_str), limit_i64(limit)], appeal_row)?;
    collect(rows)
}

pub(super) fn appeal(conn: &Connection, id: AppealId) -> Result<Option<AppealRecord>> {
    appeal_by(conn, "id", id.0)
}

fn close_case(tx: &Transaction<'_>, case: i64, at: i64, withdraw: bool) -> Result<()> {
    if withdraw {
        tx.execute(
            "UPDATE case_file SET status = 'withdrawn', closed_at = COALESCE(closed_at, ?1) WHERE id = ?2",
            params![at, case],
        )?;
    } else {
        tx.execute("UPDATE case_file SET closed_at = COALESCE(closed_at, ?1) WHERE id = ?2", params![at, case])?;
    }
    Ok(())
}

pub(super) fn decide_appeal(store: &SqliteStore, d: &DecideAppeal<'_>) -> Result<AppealRecord> {
    check_decide_appeal(d)?;
    store.write(|tx| {
        let Some(current) = appeal_by(tx, "id", d.appeal.0)? else {
            return Err(StoreError::NotFound("appeal"));
        };
        if current.status != AppealStatus::Pending {
            return Err(StoreError::Conflict("the appeal was already decided"));
        }
        let status = if d.uphold { AppealStatus::Upheld } else { AppealStatus::Dismissed };
        tx.execute(
            "UPDATE appeal SET status = ?1, decided_by = ?2, decided_at = ?3, reason = ?4 WHERE id = ?5",
            params![status.as_str(), d.by, d.at, d.reason, d.appeal.0],
        )?;
        if d.uphold {
            tx.execute("UPDATE notice SET action_reversed = 1 WHERE id = ?1", params![current.notice.0])?;
        }
        close_case(tx, current.case.0, d.at, d.uphold)?;
        if let Some(m) = &d.withdrawal {
            if m.case != Some(current.case) {
                return Err(StoreError::InvalidArgument("the withdrawal must be about the appealed case"));
            }
            enqueue_tx(tx, m)?;
        }
        for e in d.audit {
            append_audit_tx(tx, e)?;
        }
        appeal_by(tx, "id", d.appeal.0)?.ok_or(StoreError::Corrupt("decided appeal vanished"))
    })
}
