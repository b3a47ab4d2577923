//! Indicator feedback of the SQLite store: items dropped by the second-hash
//! check and primaries of cases rejected in review, per order.

use rusqlite::{Connection, params};

use super::SqliteStore;
use super::convert::{collect, to_u64};
use crate::types::*;
use crate::{Result, StoreError};

pub(super) fn record_second_hash_drops(
    store: &SqliteStore,
    order_id: [u8; 16],
    drops: &[([u8; 16], Vec<u8>)],
    at: i64,
) -> Result<u64> {
    if drops.iter().any(|(_, p)| p.is_empty()) {
        return Err(StoreError::InvalidArgument("a dropped item's primary must not be empty"));
    }
    if drops.is_empty() {
        return Ok(0);
    }
    store.write(|tx| {
        let mut stmt = tx.prepare(
            "INSERT INTO second_hash_drop (order_id, voucher_id, primary_hash, at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (order_id, voucher_id) DO NOTHING",
        )?;
        let mut new = 0u64;
        for (voucher, primary) in drops {
            new += stmt.execute(params![&order_id[..], &voucher[..], primary, at])? as u64;
        }
        Ok(new)
    })
}

pub(super) fn indicator_feedback(conn: &Connection, order_id: [u8; 16]) -> Result<Vec<IndicatorFeedbackRow>> {
    let mut stmt = conn.prepare(
        "SELECT p, SUM(d), SUM(r) FROM (
             SELECT primary_hash AS p, 1 AS d, 0 AS r FROM second_hash_drop WHERE order_id = ?1
             UNION ALL
             SELECT rr.primary_hash, 0, 1 FROM review_rejection rr JOIN case_file c ON c.id = rr.case_id
             WHERE c.order_id = ?1
         ) GROUP BY p ORDER BY p",
    )?;
    let rows = stmt.query_map(params![&order_id[..]], |r| {
        let primary: Vec<u8> = r.get(0)?;
        let d: i64 = r.get(1)?;
        let rj: i64 = r.get(2)?;
        Ok((|| Ok(IndicatorFeedbackRow { primary, second_hash_drops: to_u64(d)?, review_rejections: to_u64(rj)? }))())
    })?;
    collect(rows)
}
