//! Retention of the SQLite store: purging the data of an expired order,
//! closing reported cases whose appeal deadline passed, and purging the data
//! of closed cases.

use rusqlite::params;

use super::SqliteStore;
use super::audit::append_audit_tx;
use super::convert::to_i64;
use crate::Result;
use crate::audit::{case_close_detail, case_purge_detail, order_purge_detail};
use crate::types::*;
use crate::validate::check_id;

pub(super) fn purge_order(store: &SqliteStore, order_id: [u8; 16], at: i64) -> Result<PurgeReport> {
    let mut conn = store.lock();
    let report = store.write_on(&mut conn, |tx| {
        let o = &order_id[..];
        let opened = tx.execute("DELETE FROM opened_voucher WHERE order_id = ?1", params![o])?;
        let states = tx.execute("DELETE FROM account_state WHERE order_id = ?1", params![o])?;
        // The client-state ids link an account's vouchers to its devices: gone with the vouchers (processed inbox
        // rows forgot theirs when they were processed).
        tx.execute("DELETE FROM client_state WHERE order_id = ?1", params![o])?;
        tx.execute("DELETE FROM threshold_failure WHERE order_id = ?1", params![o])?;
        let items = tx.execute(
            "UPDATE case_item SET ad = NULL
             WHERE ad IS NOT NULL AND case_id IN (SELECT id FROM case_file WHERE order_id = ?1)",
            params![o],
        )?;
        tx.execute("UPDATE case_file SET ad_purged = 1 WHERE order_id = ?1", params![o])?;
        let report = PurgeReport {
            opened_vouchers: opened as u64,
            states: states as u64,
            case_items: items as u64,
            ..PurgeReport::default()
        };
        tx.execute(
            "INSERT INTO purge_event (at, kind, order_id, items, vouchers, outbox) VALUES (?1, 'order', ?2, ?3, ?4, 0)",
            params![at, o, to_i64(report.case_items)?, to_i64(report.opened_vouchers)?],
        )?;
        let detail = order_purge_detail(&order_id, &report);
        append_audit_tx(tx, &AuditEntry { at, actor: "retention", action: "order.purge", detail: &detail })?;
        Ok(report)
    })?;
    // Best effort: move the purged pages out of the WAL into the (securely
    // overwritten) main file. Failure (e.g. a concurrent reader) is harmless;
    // a later checkpoint does it.
    let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
    Ok(report)
}

pub(super) fn close_expired_cases(store: &SqliteStore, now: i64, audit_actor: &str) -> Result<u64> {
    check_id(audit_actor, "audit actor must be 1..=512 bytes")?;
    store.write(|tx| {
        let due: Vec<(i64, i64)> = {
            let mut stmt = tx.prepare(
                "SELECT c.id, n.appeal_deadline FROM case_file c JOIN notice n ON n.case_id = c.id
                 WHERE c.closed_at IS NULL AND n.appeal_deadline < ?1
                   AND NOT EXISTS (SELECT 1 FROM appeal a WHERE a.notice_id = n.id AND a.status = 'pending')
                 ORDER BY c.id",
            )?;
            stmt.query_map(params![now], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<_>>()?
        };
        for (case, deadline) in &due {
            tx.execute("UPDATE case_file SET closed_at = ?1 WHERE id = ?2", params![deadline, case])?;
            let detail = case_close_detail(CaseId(*case));
            append_audit_tx(tx, &AuditEntry { at: now, actor: audit_actor, action: "case.close", detail: &detail })?;
        }
        Ok(due.len() as u64)
    })
}

pub(super) fn purge_closed_cases(store: &SqliteStore, closed_before: i64, at: i64, actor: &str) -> Result<PurgeReport> {
    check_id(actor, "audit actor must be 1..=512 bytes")?;
    let mut conn = store.lock();
    let report = store.write_on(&mut conn, |tx| {
        // Closed cases with something left to drop: associated data not yet
        // purged, or the bytes of a delivered message (an undelivered one is
        // kept until it is delivered, and dropped by a later purge).
        let cases: Vec<(i64, Vec<u8>)> = {
            let mut stmt = tx.prepare(
                "SELECT c.id, c.order_id FROM case_file c
                 WHERE c.closed_at IS NOT NULL AND c.closed_at < ?1
                   AND (c.ad_purged = 0 OR EXISTS (SELECT 1 FROM outbox o WHERE o.case_id = c.id
                                                   AND o.delivered_at IS NOT NULL AND o.bytes IS NOT NULL))
                 ORDER BY c.id",
            )?;
            stmt.query_map(params![closed_before], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<_>>()?
        };
        let mut report = PurgeReport::default();
        for (case, order) in &cases {
            let items = tx
                .execute("UPDATE case_item SET ad = NULL WHERE case_id = ?1 AND ad IS NOT NULL", params![case])?
                as u64;
            let outbox = tx.execute(
                "UPDATE outbox SET bytes = NULL WHERE case_id = ?1 AND delivered_at IS NOT NULL AND bytes IS NOT NULL",
                params![case],
            )? as u64;
            tx.execute("UPDATE case_file SET ad_purged = 1 WHERE id = ?1", params![case])?;
            tx.execute(
                "INSERT INTO purge_event (at, kind, order_id, case_id, items, vouchers, outbox)
                 VALUES (?1, 'case', ?2, ?3, ?4, 0, ?5)",
                params![at, order, case, to_i64(items)?, to_i64(outbox)?],
            )?;
            let detail = case_purge_detail(CaseId(*case), items, outbox);
            append_audit_tx(tx, &AuditEntry { at, actor, action: "case.purge", detail: &detail })?;
            report.cases += 1;
            report.case_items += items;
            report.outbox_entries += outbox;
        }
        Ok(report)
    })?;
    // As for an order purge: best effort, out of the WAL.
    let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
    Ok(report)
}
