//! Cases of the PostgreSQL store: creation with items, review decisions, and
//! the queries over them.

use tokio_postgres::Row;

use super::PostgresStore;
use super::audit::append_audit_tx;
use super::conn::{Pg, get};
use crate::audit::{case_create_detail, case_status_detail};
use crate::convert::{id16, limit_i64, to_u64};
use crate::types::*;
use crate::validate::{check_id, check_transition};
use crate::{Result, StoreError};

/// The columns [`case_summary`] reads, over `case_file c`.
pub(super) const CASE_COLUMNS: &str = "c.id, c.account, c.order_id, c.created_at, c.status, c.reviewer, c.reason,
     c.decided_at, c.ad_purged, (SELECT COUNT(*) FROM case_item i WHERE i.case_id = c.id),
     c.four_eyes, c.urgent, c.closed_at, c.centre_verdict, c.centre_reason, c.report_id,
     (SELECT COUNT(*) FROM case_decision d WHERE d.case_id = c.id AND d.verdict = 'confirm')";

/// A case summary from a row of [`CASE_COLUMNS`].
pub(super) fn case_summary(r: &Row) -> Result<CaseSummary> {
    let order: Vec<u8> = get(r, 2)?;
    let status: String = get(r, 4)?;
    let items: i64 = get(r, 9)?;
    let report_id: Option<Vec<u8>> = get(r, 15)?;
    let confirmations: i64 = get(r, 16)?;
    Ok(CaseSummary {
        id: CaseId(get(r, 0)?),
        account: get(r, 1)?,
        order_id: id16(&order)?,
        created_at: get(r, 3)?,
        status: CaseStatus::parse(&status).ok_or(StoreError::Corrupt("case status"))?,
        reviewer: get(r, 5)?,
        reason: get(r, 6)?,
        decided_at: get(r, 7)?,
        ad_purged: get(r, 8)?,
        items: to_u64(items)?,
        four_eyes: get(r, 10)?,
        urgent: get(r, 11)?,
        closed_at: get(r, 12)?,
        centre_verdict: get(r, 13)?,
        centre_reason: get(r, 14)?,
        report_id: report_id.as_deref().map(id16).transpose()?,
        confirmations: u32::try_from(confirmations).map_err(|_| StoreError::Corrupt("decision count"))?,
    })
}

/// The summary of `case` read inside a transaction, or `None`.
pub(super) fn summary_tx(q: &Pg<'_>, case: CaseId) -> Result<Option<CaseSummary>> {
    let sql = format!("SELECT {CASE_COLUMNS} FROM case_file c WHERE c.id = $1");
    q.query_opt(&sql, &[&case.0])?.as_ref().map(case_summary).transpose()
}

/// Inserts `items` into `case` in one statement, as the SQLite store does
/// one by one: an item whose voucher id is already in the case (or earlier
/// in `items`) is skipped, the others take the positions `first_pos`,
/// `first_pos + 1`, .. in the order of `items`.
fn insert_items(q: &Pg<'_>, case: i64, first_pos: i64, items: &[CaseItem]) -> Result<()> {
    if items.is_empty() {
        return Ok(());
    }
    let ids: Vec<&[u8]> = items.iter().map(|i| &i.voucher_id[..]).collect();
    let ads: Vec<&[u8]> = items.iter().map(|i| i.ad.as_slice()).collect();
    let rows = q.query(
        "INSERT INTO case_item (case_id, pos, voucher_id, ad)
         SELECT $1::BIGINT, $2::BIGINT + (ROW_NUMBER() OVER (ORDER BY s.n) - 1), s.v, s.a
         FROM (SELECT DISTINCT ON (t.v) t.v, t.a, t.n
               FROM UNNEST($3::BYTEA[], $4::BYTEA[]) WITH ORDINALITY AS t(v, a, n)
               WHERE NOT EXISTS (SELECT 1 FROM case_item i WHERE i.case_id = $1 AND i.voucher_id = t.v)
               ORDER BY t.v, t.n) s
         ON CONFLICT (case_id, voucher_id) DO NOTHING
         RETURNING pos",
        &[&case, &first_pos, &ids, &ads],
    )?;
    // As in the SQLite store: `first_pos` comes from the stored positions,
    // and a corrupt one near i64::MAX must not leave no next position.
    for r in &rows {
        if get::<i64>(r, 0)? == i64::MAX {
            return Err(StoreError::Corrupt("case item position"));
        }
    }
    Ok(())
}

pub(super) fn case_voucher_ids(store: &PostgresStore, account: &str, order_id: [u8; 16]) -> Result<Vec<[u8; 16]>> {
    store.pool.plain(|q| {
        q.query(
            "SELECT i.voucher_id FROM case_item i JOIN case_file c ON c.id = i.case_id
             WHERE c.account = $1 AND c.order_id = $2",
            &[&account, &&order_id[..]],
        )?
        .iter()
        .map(|r| id16(&get::<Vec<u8>>(r, 0)?))
        .collect()
    })
}

pub(super) fn create_case(store: &PostgresStore, case: &NewCase<'_>) -> Result<CaseId> {
    check_id(case.account, "account must be 1..=512 bytes")?;
    store.pool.write(|q| {
        if let Some(worker) = case.claimed_by
            && !super::inbox::holds_claim(q, case.account, worker, case.created_at)?
        {
            return Err(StoreError::Conflict("the worker's claim on the account lapsed"));
        }
        let row = q.query_one(
            "INSERT INTO case_file (account, order_id, created_at, status, four_eyes)
             VALUES ($1, $2, $3, 'open', $4) RETURNING id",
            &[&case.account, &&case.order_id[..], &case.created_at, &case.four_eyes],
        )?;
        let id: i64 = get(&row, 0)?;
        insert_items(q, id, 0, case.items)?;
        let detail = case_create_detail(CaseId(id), &case.order_id, case.items.len());
        append_audit_tx(
            q,
            &AuditEntry { at: case.created_at, actor: case.actor, action: "case.create", detail: &detail },
        )?;
        Ok(CaseId(id))
    })
}

pub(super) fn add_case_items(store: &PostgresStore, case: CaseId, items: &[CaseItem]) -> Result<()> {
    store.pool.write(|q| {
        let row = q.query_opt(
            "SELECT c.ad_purged, (SELECT MAX(i.pos) FROM case_item i WHERE i.case_id = c.id)
             FROM case_file c WHERE c.id = $1",
            &[&case.0],
        )?;
        let Some(row) = row else {
            return Err(StoreError::NotFound("case"));
        };
        if get::<bool>(&row, 0)? {
            return Err(StoreError::InvalidArgument("the case's order data was purged"));
        }
        let next = match get::<Option<i64>>(&row, 1)? {
            None => 0,
            Some(max) => max.checked_add(1).ok_or(StoreError::Corrupt("case item position"))?,
        };
        insert_items(q, case.0, next, items)
    })
}

pub(super) fn list_cases(store: &PostgresStore, filter: &CaseFilter) -> Result<Vec<CaseSummary>> {
    let sql = format!(
        "SELECT {CASE_COLUMNS} FROM case_file c
         WHERE ($1::TEXT IS NULL OR c.status = $1)
           AND ($2::TEXT IS NULL OR c.account = $2)
           AND ($3::BYTEA IS NULL OR c.order_id = $3)
         ORDER BY c.id {}
         LIMIT $4",
        if filter.newest_first { "DESC" } else { "ASC" }
    );
    let status = filter.status.map(CaseStatus::as_str);
    let account = filter.account.as_deref();
    let order = filter.order_id.as_ref().map(|o| &o[..]);
    // `LIMIT NULL` is no limit.
    let limit = filter.limit.map(limit_i64);
    store.pool.plain(|q| q.query(&sql, &[&status, &account, &order, &limit])?.iter().map(case_summary).collect())
}

pub(super) fn get_case(store: &PostgresStore, case: CaseId) -> Result<Option<Case>> {
    store.pool.read(|q| {
        let Some(summary) = summary_tx(q, case)? else {
            return Ok(None);
        };
        let items = q
            .query("SELECT voucher_id, ad FROM case_item WHERE case_id = $1 ORDER BY pos", &[&case.0])?
            .iter()
            .map(|r| {
                let ad: Option<Vec<u8>> = get(r, 1)?;
                Ok(CaseItem { voucher_id: id16(&get::<Vec<u8>>(r, 0)?)?, ad: ad.unwrap_or_default() })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Some(Case { summary, items }))
    })
}

pub(super) fn set_case_status(store: &PostgresStore, case: CaseId, d: &CaseDecision<'_>) -> Result<()> {
    check_id(d.reviewer, "reviewer must be 1..=512 bytes")?;
    store.pool.write(|q| {
        let Some(row) = q.query_opt("SELECT status FROM case_file WHERE id = $1", &[&case.0])? else {
            return Err(StoreError::NotFound("case"));
        };
        let current: String = get(&row, 0)?;
        let current = CaseStatus::parse(&current).ok_or(StoreError::Corrupt("case status"))?;
        check_transition(current, d.status)?;
        q.execute(
            "UPDATE case_file SET status = $1, reviewer = $2, reason = $3, decided_at = $4 WHERE id = $5",
            &[&d.status.as_str(), &d.reviewer, &d.reason, &d.at, &case.0],
        )?;
        let detail = case_status_detail(case, d.status, current);
        append_audit_tx(q, &AuditEntry { at: d.at, actor: d.reviewer, action: "case.status", detail: &detail })?;
        Ok(())
    })
}
