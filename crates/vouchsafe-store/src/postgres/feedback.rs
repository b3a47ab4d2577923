//! Indicator feedback of the PostgreSQL store: items dropped by the
//! second-hash check and primaries of cases rejected in review, per order.

use super::PostgresStore;
use super::conn::get;
use crate::convert::to_u64;
use crate::types::*;
use crate::{Result, StoreError};

pub(super) fn record_second_hash_drops(
    store: &PostgresStore,
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
    let vouchers: Vec<&[u8]> = drops.iter().map(|(v, _)| &v[..]).collect();
    let primaries: Vec<&[u8]> = drops.iter().map(|(_, p)| p.as_slice()).collect();
    // One statement (atomic on its own): a drop already recorded, or twice in `drops`, is skipped (the first
    // one kept) and not counted.
    store.pool.plain(|q| {
        q.execute(
            "INSERT INTO second_hash_drop (order_id, voucher_id, primary_hash, at)
             SELECT $1::BYTEA, u.v, u.p, $4::BIGINT
             FROM UNNEST($2::BYTEA[], $3::BYTEA[]) WITH ORDINALITY AS u(v, p, n)
             ORDER BY u.n
             ON CONFLICT (order_id, voucher_id) DO NOTHING",
            &[&&order_id[..], &vouchers, &primaries, &at],
        )
    })
}

pub(super) fn indicator_feedback(store: &PostgresStore, order_id: [u8; 16]) -> Result<Vec<IndicatorFeedbackRow>> {
    // Ordered by primary: bytea compares bytewise, shorter first on a common prefix, as SQLite's blobs.
    let rows = store.pool.plain(|q| {
        q.query(
            "SELECT p, SUM(d)::BIGINT, SUM(r)::BIGINT FROM (
                 SELECT primary_hash AS p, 1 AS d, 0 AS r FROM second_hash_drop WHERE order_id = $1
                 UNION ALL
                 SELECT rr.primary_hash, 0, 1 FROM review_rejection rr JOIN case_file c ON c.id = rr.case_id
                 WHERE c.order_id = $1
             ) AS f GROUP BY p ORDER BY p",
            &[&&order_id[..]],
        )
    })?;
    rows.iter()
        .map(|r| {
            Ok(IndicatorFeedbackRow {
                primary: get(r, 0)?,
                second_hash_drops: to_u64(get(r, 1)?)?,
                review_rejections: to_u64(get(r, 2)?)?,
            })
        })
        .collect()
}
