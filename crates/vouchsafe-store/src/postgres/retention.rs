//! Retention of the PostgreSQL store: purging the data of an expired order,
//! closing reported cases whose appeal deadline passed, and purging the data
//! of closed cases. Each in one write transaction.

use std::collections::HashMap;

use super::PostgresStore;
use super::audit::append_audit_tx;
use super::conn::{Pg, get};
use crate::Result;
use crate::audit::{case_close_detail, case_purge_detail, order_purge_detail};
use crate::convert::{to_i64, to_u64};
use crate::types::*;
use crate::validate::check_id;

pub(super) fn purge_order(store: &PostgresStore, order_id: [u8; 16], at: i64) -> Result<PurgeReport> {
    let o = &order_id[..];
    store.pool.write(|q| {
        let opened = q.execute("DELETE FROM opened_voucher WHERE order_id = $1", &[&o])?;
        let states = q.execute("DELETE FROM account_state WHERE order_id = $1", &[&o])?;
        // The client-state ids link an account's vouchers to its devices: gone with the vouchers (processed inbox
        // rows forgot theirs when they were processed).
        q.execute("DELETE FROM client_state WHERE order_id = $1", &[&o])?;
        q.execute("DELETE FROM threshold_failure WHERE order_id = $1", &[&o])?;
        let items = q.execute(
            "UPDATE case_item SET ad = NULL
             WHERE ad IS NOT NULL AND case_id IN (SELECT id FROM case_file WHERE order_id = $1)",
            &[&o],
        )?;
        q.execute("UPDATE case_file SET ad_purged = TRUE WHERE order_id = $1", &[&o])?;
        let report = PurgeReport { opened_vouchers: opened, states, case_items: items, ..PurgeReport::default() };
        q.execute(
            "INSERT INTO purge_event (at, kind, order_id, items, vouchers, outbox) VALUES ($1, 'order', $2, $3, $4, 0)",
            &[&at, &o, &to_i64(report.case_items)?, &to_i64(report.opened_vouchers)?],
        )?;
        let detail = order_purge_detail(&order_id, &report);
        append_audit_tx(q, &AuditEntry { at, actor: "retention", action: "order.purge", detail: &detail })?;
        Ok(report)
    })
}

pub(super) fn close_expired_cases(store: &PostgresStore, now: i64, audit_actor: &str) -> Result<u64> {
    check_id(audit_actor, "audit actor must be 1..=512 bytes")?;
    store.pool.write(|q| {
        // A case has at most one notice (notice.case_id is unique): one row each.
        let mut due = q
            .query(
                "UPDATE case_file c SET closed_at = n.appeal_deadline FROM notice n
                 WHERE n.case_id = c.id AND c.closed_at IS NULL AND n.appeal_deadline < $1
                   AND NOT EXISTS (SELECT 1 FROM appeal a WHERE a.notice_id = n.id AND a.status = 'pending')
                 RETURNING c.id",
                &[&now],
            )?
            .iter()
            .map(|r| get::<i64>(r, 0))
            .collect::<Result<Vec<i64>>>()?;
        // The audit entries in case order, as the SQLite store appends them.
        due.sort_unstable();
        for case in &due {
            let detail = case_close_detail(CaseId(*case));
            append_audit_tx(q, &AuditEntry { at: now, actor: audit_actor, action: "case.close", detail: &detail })?;
        }
        Ok(u64::try_from(due.len()).unwrap_or(u64::MAX))
    })
}

/// Per case of `cases`, how many rows the `UPDATE … RETURNING case_id` of
/// `sql` (over `$1`, the cases) changed.
fn changed_per_case(q: &Pg<'_>, sql: &str, cases: &[i64]) -> Result<HashMap<i64, u64>> {
    let mut per_case = HashMap::new();
    for r in q.query(sql, &[&cases])? {
        per_case.insert(get::<i64>(&r, 0)?, to_u64(get::<i64>(&r, 1)?)?);
    }
    Ok(per_case)
}

pub(super) fn purge_closed_cases(
    store: &PostgresStore,
    closed_before: i64,
    at: i64,
    actor: &str,
) -> Result<PurgeReport> {
    check_id(actor, "audit actor must be 1..=512 bytes")?;
    store.pool.write(|q| {
        // Closed cases with something left to drop: associated data not yet
        // purged, or the bytes of a delivered message (an undelivered one is
        // kept until it is delivered, and dropped by a later purge).
        let rows = q.query(
            "SELECT c.id, c.order_id FROM case_file c
             WHERE c.closed_at IS NOT NULL AND c.closed_at < $1
               AND (NOT c.ad_purged OR EXISTS (SELECT 1 FROM outbox o WHERE o.case_id = c.id
                                               AND o.delivered_at IS NOT NULL AND o.bytes IS NOT NULL))
             ORDER BY c.id",
            &[&closed_before],
        )?;
        let mut report = PurgeReport::default();
        if rows.is_empty() {
            return Ok(report);
        }
        let mut cases = Vec::with_capacity(rows.len());
        let mut orders = Vec::with_capacity(rows.len());
        for r in &rows {
            cases.push(get::<i64>(r, 0)?);
            orders.push(get::<Vec<u8>>(r, 1)?);
        }
        let items = changed_per_case(
            q,
            "WITH u AS (UPDATE case_item SET ad = NULL WHERE case_id = ANY($1::BIGINT[]) AND ad IS NOT NULL
                        RETURNING case_id)
             SELECT case_id, COUNT(*) FROM u GROUP BY case_id",
            &cases,
        )?;
        let outbox = changed_per_case(
            q,
            "WITH u AS (UPDATE outbox SET bytes = NULL
                        WHERE case_id = ANY($1::BIGINT[]) AND delivered_at IS NOT NULL AND bytes IS NOT NULL
                        RETURNING case_id)
             SELECT case_id, COUNT(*) FROM u GROUP BY case_id",
            &cases,
        )?;
        q.execute("UPDATE case_file SET ad_purged = TRUE WHERE id = ANY($1::BIGINT[])", &[&cases])?;
        let item_counts: Vec<u64> = cases.iter().map(|c| items.get(c).copied().unwrap_or(0)).collect();
        let outbox_counts: Vec<u64> = cases.iter().map(|c| outbox.get(c).copied().unwrap_or(0)).collect();
        let item_params = item_counts.iter().map(|n| to_i64(*n)).collect::<Result<Vec<i64>>>()?;
        let outbox_params = outbox_counts.iter().map(|n| to_i64(*n)).collect::<Result<Vec<i64>>>()?;
        // One event per case, in case order (the ids as the SQLite store's).
        q.execute(
            "INSERT INTO purge_event (at, kind, order_id, case_id, items, vouchers, outbox)
             SELECT $1::BIGINT, 'case', u.order_id, u.case_id, u.items, 0, u.outbox
             FROM UNNEST($2::BYTEA[], $3::BIGINT[], $4::BIGINT[], $5::BIGINT[])
                  WITH ORDINALITY AS u (order_id, case_id, items, outbox, ord)
             ORDER BY u.ord",
            &[&at, &orders, &cases, &item_params, &outbox_params],
        )?;
        for ((case, items), outbox) in cases.iter().zip(&item_counts).zip(&outbox_counts) {
            let detail = case_purge_detail(CaseId(*case), *items, *outbox);
            append_audit_tx(q, &AuditEntry { at, actor, action: "case.purge", detail: &detail })?;
            report.cases += 1;
            report.case_items += items;
            report.outbox_entries += outbox;
        }
        Ok(report)
    })
}
