//! Notices and appeals of the PostgreSQL store: what a user is told about a
//! reported case, the appeal against it, and its decision.

use std::collections::HashMap;

use tokio_postgres::Row;

use super::PostgresStore;
use super::audit::append_audit_tx;
use super::conn::{Param, Pg, get};
use super::outbox::enqueue_tx;
use crate::convert::{hash32, id16, limit_i64, to_u64};
use crate::types::*;
use crate::validate::{MAX_APPEAL_TEXT, check_decide_appeal, check_id};
use crate::{Result, StoreError};

const APPEAL_COLUMNS: &str = "id, notice_id, case_id, account, text, filed_at, status, decided_by, decided_at, reason";

/// A notice's columns (0..=7) and its appeal's (8..=17, all `NULL` for none),
/// over `notice n LEFT JOIN appeal a ON a.notice_id = n.id`.
const NOTICE_COLUMNS: &str = "n.id, n.account, n.case_id, n.order_id, n.order_hash, n.reported_at, n.appeal_deadline,
     n.action_reversed, a.id, a.notice_id, a.case_id, a.account, a.text, a.filed_at, a.status, a.decided_by,
     a.decided_at, a.reason";

/// The appeal in the columns of `r` from `base` on, in the order of [`APPEAL_COLUMNS`].
fn appeal_at(r: &Row, base: usize) -> Result<AppealRecord> {
    let status: String = get(r, base + 6)?;
    Ok(AppealRecord {
        id: AppealId(get(r, base)?),
        notice: NoticeId(get(r, base + 1)?),
        case: CaseId(get(r, base + 2)?),
        account: get(r, base + 3)?,
        text: get(r, base + 4)?,
        filed_at: get(r, base + 5)?,
        status: AppealStatus::parse(&status).ok_or(StoreError::Corrupt("appeal status"))?,
        decided_by: get(r, base + 7)?,
        decided_at: get(r, base + 8)?,
        reason: get(r, base + 9)?,
    })
}

fn appeal_row(r: &Row) -> Result<AppealRecord> {
    appeal_at(r, 0)
}

fn appeal_by(q: &Pg<'_>, column: &str, id: i64) -> Result<Option<AppealRecord>> {
    let sql = format!("SELECT {APPEAL_COLUMNS} FROM appeal WHERE {column} = $1");
    q.query_opt(&sql, &[&id])?.as_ref().map(appeal_row).transpose()
}

/// The notices `notices_sql` selects ([`NOTICE_COLUMNS`], by id), with the
/// attachments `attachments_sql` selects (notice id, attachment, time; by
/// notice and position), both with the one parameter `param`. Two queries
/// for any number of notices; call it inside one snapshot.
fn notice_records(q: &Pg<'_>, notices_sql: &str, attachments_sql: &str, param: Param<'_>) -> Result<Vec<NoticeRecord>> {
    let rows = q.query(notices_sql, &[param])?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let mut attachments: HashMap<i64, Vec<([u8; 32], u64)>> = HashMap::new();
    for r in q.query(attachments_sql, &[param])? {
        let notice: i64 = get(&r, 0)?;
        let a: Vec<u8> = get(&r, 1)?;
        let t: i64 = get(&r, 2)?;
        attachments.entry(notice).or_default().push((hash32(&a)?, to_u64(t)?));
    }
    rows.iter()
        .map(|r| {
            let id: i64 = get(r, 0)?;
            let order: Vec<u8> = get(r, 3)?;
            let order_hash: Vec<u8> = get(r, 4)?;
            let appeal = match get::<Option<i64>>(r, 8)? {
                Some(_) => Some(appeal_at(r, 8)?),
                None => None,
            };
            Ok(NoticeRecord {
                id: NoticeId(id),
                account: get(r, 1)?,
                case: CaseId(get(r, 2)?),
                order_id: id16(&order)?,
                order_hash: hash32(&order_hash)?,
                reported_at: get(r, 5)?,
                attachments: attachments.remove(&id).unwrap_or_default(),
                appeal_deadline: get(r, 6)?,
                action_reversed: get(r, 7)?,
                appeal,
            })
        })
        .collect()
}

pub(super) fn notices(store: &PostgresStore, account: &str) -> Result<Vec<NoticeRecord>> {
    let notices_sql = format!(
        "SELECT {NOTICE_COLUMNS} FROM notice n LEFT JOIN appeal a ON a.notice_id = n.id
         WHERE n.account = $1 ORDER BY n.id"
    );
    store.pool.read(|q| {
        notice_records(
            q,
            &notices_sql,
            "SELECT t.notice_id, t.attachment, t.time FROM notice_attachment t JOIN notice n ON n.id = t.notice_id
             WHERE n.account = $1 ORDER BY t.notice_id, t.pos",
            &account,
        )
    })
}

pub(super) fn notice(store: &PostgresStore, id: NoticeId) -> Result<Option<NoticeRecord>> {
    let notices_sql =
        format!("SELECT {NOTICE_COLUMNS} FROM notice n LEFT JOIN appeal a ON a.notice_id = n.id WHERE n.id = $1");
    let records = store.pool.read(|q| {
        notice_records(
            q,
            &notices_sql,
            "SELECT notice_id, attachment, time FROM notice_attachment WHERE notice_id = $1 ORDER BY pos",
            &id.0,
        )
    })?;
    Ok(records.into_iter().next())
}

pub(super) fn file_appeal(
    store: &PostgresStore,
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
    let insert = format!(
        "INSERT INTO appeal (notice_id, case_id, account, text, filed_at, status)
         VALUES ($1, $2, $3, $4, $5, 'pending')
         ON CONFLICT (notice_id) DO NOTHING RETURNING {APPEAL_COLUMNS}"
    );
    store.pool.write(|q| {
        let row = q.query_opt("SELECT account, case_id, appeal_deadline FROM notice WHERE id = $1", &[&notice.0])?;
        // Another account's notice is answered exactly like a missing one.
        let Some(row) = row else {
            return Err(StoreError::NotFound("notice"));
        };
        let owner: String = get(&row, 0)?;
        if owner != account {
            return Err(StoreError::NotFound("notice"));
        }
        let case: i64 = get(&row, 1)?;
        let deadline: i64 = get(&row, 2)?;
        if at > deadline {
            return Err(StoreError::Conflict("the appeal deadline has passed"));
        }
        if appeal_by(q, "notice_id", notice.0)?.is_some() {
            return Err(StoreError::Conflict("the notice was already appealed"));
        }
        // An appeal of the notice filed by a concurrent transaction makes
        // this insert fail with a serialization failure (it is not in this
        // transaction's snapshot): the transaction runs again and sees it.
        let row = q.query_opt(&insert, &[&notice.0, &case, &owner, &text, &at])?;
        let filed = row.ok_or(StoreError::Conflict("the notice was already appealed"))?;
        let filed = appeal_row(&filed)?;
        for e in audit {
            append_audit_tx(q, e)?;
        }
        Ok(filed)
    })
}

pub(super) fn list_appeals(
    store: &PostgresStore,
    status: Option<AppealStatus>,
    limit: usize,
) -> Result<Vec<AppealRecord>> {
    let sql = format!(
        "SELECT {APPEAL_COLUMNS} FROM appeal WHERE ($1::TEXT IS NULL OR status = $1) ORDER BY id DESC LIMIT $2"
    );
    let status = status.map(AppealStatus::as_str);
    store.pool.plain(|q| q.query(&sql, &[&status, &limit_i64(limit)])?.iter().map(appeal_row).collect())
}

pub(super) fn appeal(store: &PostgresStore, id: AppealId) -> Result<Option<AppealRecord>> {
    store.pool.plain(|q| appeal_by(q, "id", id.0))
}

fn close_case(q: &Pg<'_>, case: i64, at: i64, withdraw: bool) -> Result<()> {
    if withdraw {
        q.execute(
            "UPDATE case_file SET status = 'withdrawn', closed_at = COALESCE(closed_at, $1) WHERE id = $2",
            &[&at, &case],
        )?;
    } else {
        q.execute("UPDATE case_file SET closed_at = COALESCE(closed_at, $1) WHERE id = $2", &[&at, &case])?;
    }
    Ok(())
}

pub(super) fn decide_appeal(store: &PostgresStore, d: &DecideAppeal<'_>) -> Result<AppealRecord> {
    check_decide_appeal(d)?;
    let update = format!(
        "UPDATE appeal SET status = $1, decided_by = $2, decided_at = $3, reason = $4 WHERE id = $5
         RETURNING {APPEAL_COLUMNS}"
    );
    store.pool.write(|q| {
        let Some(current) = appeal_by(q, "id", d.appeal.0)? else {
            return Err(StoreError::NotFound("appeal"));
        };
        if current.status != AppealStatus::Pending {
            return Err(StoreError::Conflict("the appeal was already decided"));
        }
        let status = if d.uphold { AppealStatus::Upheld } else { AppealStatus::Dismissed };
        // A concurrent decision of the same appeal updates the same row: the
        // later of the two fails to serialize here and runs again (then sees
        // the appeal decided).
        let row = q.query_opt(&update, &[&status.as_str(), &d.by, &d.at, &d.reason, &d.appeal.0])?;
        let decided = appeal_row(&row.ok_or(StoreError::Corrupt("decided appeal vanished"))?)?;
        if d.uphold {
            q.execute("UPDATE notice SET action_reversed = TRUE WHERE id = $1", &[&current.notice.0])?;
        }
        close_case(q, current.case.0, d.at, d.uphold)?;
        if let Some(m) = &d.withdrawal {
            if m.case != Some(current.case) {
                return Err(StoreError::InvalidArgument("the withdrawal must be about the appealed case"));
            }
            enqueue_tx(q, m)?;
        }
        for e in d.audit {
            append_audit_tx(q, e)?;
        }
        Ok(decided)
    })
}
