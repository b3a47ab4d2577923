//! Cases of the SQLite store: creation with items, review decisions, and
//! the queries over them.

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::SqliteStore;
use super::audit::append_audit_tx;
use super::convert::{collect, id16, limit_i64, to_u64};
use crate::audit::{case_create_detail, case_status_detail};
use crate::types::*;
use crate::validate::{check_id, check_transition};
use crate::{Result, StoreError};

pub(super) const CASE_COLUMNS: &str = "c.id, c.account, c.order_id, c.created_at, c.status, c.reviewer, c.reason,
     c.decided_at, c.ad_purged, (SELECT COUNT(*) FROM case_item i WHERE i.case_id = c.id),
     c.four_eyes, c.urgent, c.closed_at, c.centre_verdict, c.centre_reason, c.report_id,
     (SELECT COUNT(*) FROM case_decision d WHERE d.case_id = c.id AND d.verdict = 'confirm')";

pub(super) fn case_summary(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<CaseSummary>> {
    let order: Vec<u8> = r.get(2)?;
    let status: String = r.get(4)?;
    let items: i64 = r.get(9)?;
    let report_id: Option<Vec<u8>> = r.get(15)?;
    let confirmations: i64 = r.get(16)?;
    let build = || -> Result<CaseSummary> {
        Ok(CaseSummary {
            id: CaseId(r.get(0)?),
            account: r.get(1)?,
            order_id: id16(&order)?,
            created_at: r.get(3)?,
            status: CaseStatus::parse(&status).ok_or(StoreError::Corrupt("case status"))?,
            reviewer: r.get(5)?,
            reason: r.get(6)?,
            decided_at: r.get(7)?,
            ad_purged: r.get::<_, i64>(8)? != 0,
            items: to_u64(items)?,
            four_eyes: r.get::<_, i64>(10)? != 0,
            urgent: r.get::<_, i64>(11)? != 0,
            closed_at: r.get(12)?,
            centre_verdict: r.get(13)?,
            centre_reason: r.get(14)?,
            report_id: report_id.as_deref().map(id16).transpose()?,
            confirmations: u32::try_from(confirmations).map_err(|_| StoreError::Corrupt("decision count"))?,
        })
    };
    Ok(build())
}

/// The summary of `case` read inside a transaction, or `None`.
pub(super) fn summary_tx(tx: &Transaction<'_>, case: CaseId) -> Result<Option<CaseSummary>> {
    let sql = format!("SELECT {CASE_COLUMNS} FROM case_file c WHERE c.id = ?1");
    tx.query_row(&sql, params![case.0], case_summary).optional()?.transpose()
}

fn insert_items(tx: &Transaction<'_>, case: i64, first_pos: i64, items: &[CaseItem]) -> Result<()> {
    let mut stmt = tx.prepare(
        "INSERT INTO case_item (case_id, pos, voucher_id, ad) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (case_id, voucher_id) DO NOTHING",
    )?;
    let mut pos = first_pos;
    for item in items {
        if stmt.execute(params![case, pos, &item.voucher_id[..], item.ad])? > 0 {
            // `first_pos` comes from the stored positions: a corrupt one near
            // i64::MAX must not wrap around (or panic in a debug build).
            pos = pos.checked_add(1).ok_or(StoreError::Corrupt("case item position"))?;
        }
    }
    Ok(())
}

pub(super) fn case_voucher_ids(conn: &Connection, account: &str, order_id: [u8; 16]) -> Result<Vec<[u8; 16]>> {
    let mut stmt = conn.prepare_cached(
        "SELECT i.voucher_id FROM case_item i JOIN case_file c ON c.id = i.case_id
         WHERE c.account = ?1 AND c.order_id = ?2",
    )?;
    let rows = stmt.query_map(params![account, &order_id[..]], |r| {
        let id: Vec<u8> = r.get(0)?;
        Ok(id16(&id))
    })?;
    collect(rows)
}

pub(super) fn create_case(store: &SqliteStore, case: &NewCase<'_>) -> Result<CaseId> {
    check_id(case.account, "account must be 1..=512 bytes")?;
    store.write(|tx| {
        if let Some(worker) = case.claimed_by
            && !super::inbox::holds_claim(tx, case.account, worker, case.created_at)?
        {
            return Err(StoreError::Conflict("the worker's claim on the account lapsed"));
        }
        tx.execute(
            "INSERT INTO case_file (account, order_id, created_at, status, four_eyes) VALUES (?1, ?2, ?3, 'open', ?4)",
            params![case.account, &case.order_id[..], case.created_at, case.four_eyes],
        )?;
        let id = tx.last_insert_rowid();
        insert_items(tx, id, 0, case.items)?;
        let detail = case_create_detail(CaseId(id), &case.order_id, case.items.len());
        append_audit_tx(
            tx,
            &AuditEntry { at: case.created_at, actor: case.actor, action: "case.create", detail: &detail },
        )?;
        Ok(CaseId(id))
    })
}

pub(super) fn add_case_items(store: &SqliteStore, case: CaseId, items: &[CaseItem]) -> Result<()> {
    store.write(|tx| {
        let purged: Option<i64> =
            tx.query_row("SELECT ad_purged FROM case_file WHERE id = ?1", params![case.0], |r| r.get(0)).optional()?;
        match purged {
            None => return Err(StoreError::NotFound("case")),
            Some(p) if p != 0 => {
                return Err(StoreError::InvalidArgument("the case's order data was purged"));
            }
            Some(_) => {}
        }
        let next: i64 = tx.query_row(
            "SELECT COALESCE(MAX(pos), -1) + 1 FROM case_item WHERE case_id = ?1",
            params![case.0],
            |r| r.get(0),
        )?;
        insert_items(tx, case.0, next, items)
    })
}

pub(super) fn list_cases(conn: &Connection, filter: &CaseFilter) -> Result<Vec<CaseSummary>> {
    let sql = format!(
        "SELECT {CASE_COLUMNS} FROM case_file c
         WHERE (?1 IS NULL OR c.status = ?1)
           AND (?2 IS NULL OR c.account = ?2)
           AND (?3 IS NULL OR c.order_id = ?3)
         ORDER BY c.id {}
         LIMIT ?4",
        if filter.newest_first { "DESC" } else { "ASC" }
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(
        params![
            filter.status.map(CaseStatus::as_str),
            filter.account.as_deref(),
            filter.order_id.as_ref().map(|o| &o[..]),
            filter.limit.map_or(-1, limit_i64)
        ],
        case_summary,
    )?;
    collect(rows)
}

pub(super) fn get_case(conn: &mut Connection, case: CaseId) -> Result<Option<Case>> {
    let tx = conn.transaction()?;
    let Some(summary) = summary_tx(&tx, case)? else {
        return Ok(None);
    };
    let mut stmt = tx.prepare("SELECT voucher_id, ad FROM case_item WHERE case_id = ?1 ORDER BY pos")?;
    let rows = stmt.query_map(params![case.0], |r| {
        let id: Vec<u8> = r.get(0)?;
        let ad: Option<Vec<u8>> = r.get(1)?;
        Ok(id16(&id).map(|voucher_id| CaseItem { voucher_id, ad: ad.unwrap_or_default() }))
    })?;
    let items = collect(rows)?;
    Ok(Some(Case { summary, items }))
}

pub(super) fn set_case_status(store: &SqliteStore, case: CaseId, d: &CaseDecision<'_>) -> Result<()> {
    check_id(d.reviewer, "reviewer must be 1..=512 bytes")?;
    store.write(|tx| {
        let current: Option<String> =
            tx.query_row("SELECT status FROM case_file WHERE id = ?1", params![case.0], |r| r.get(0)).optional()?;
        let Some(current) = current else {
            return Err(StoreError::NotFound("case"));
        };
        let current = CaseStatus::parse(&current).ok_or(StoreError::Corrupt("case status"))?;
        check_transition(current, d.status)?;
        tx.execute(
            "UPDATE case_file SET status = ?1, reviewer = ?2, reason = ?3, decided_at = ?4 WHERE id = ?5",
            params![d.status.as_str(), d.reviewer, d.reason, d.at, case.0],
        )?;
        let detail = case_status_detail(case, d.status, current);
        append_audit_tx(tx, &AuditEntry { at: d.at, actor: d.reviewer, action: "case.status", detail: &detail })?;
        Ok(())
    })
}
