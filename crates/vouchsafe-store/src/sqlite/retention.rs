//! Retention of the SQLite store: purging the data of an expired order.

use rusqlite::params;

use super::SqliteStore;
use super::audit::append_audit_tx;
use super::convert::to_i64;
use crate::Result;
use crate::audit::order_purge_detail;
use crate::types::*;

pub(super) fn purge_order(store: &SqliteStore, order_id: [u8; 16], at: i64) -> Result<PurgeReport> {
    let mut conn = store.lock();
    let report = store.write_on(&mut conn, |tx| {
        let o = &order_id[..];
        let opened = tx.execute("DELETE FROM opened_voucher WHERE order_id = ?1", params![o])?;
        let states = tx.execute("DELETE FROM account_state WHERE order_id = ?1", params![o])?;
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
