//! The inbox of the SQLite store: storing a received batch, reading back the
//! unprocessed ones, and completing them (counters, opened vouchers,
//! threshold state, and the deletion of the raw vouchers).

use std::collections::HashSet;

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::SqliteStore;
use super::convert::{id16, limit_i64, to_i64, to_u64};
use super::stats::SECONDS_PER_DAY;
use crate::inbox;
use crate::types::*;
use crate::validate::{check_accounted, check_id};
use crate::{CachedVouchers, Result, StoreError};

/// Names of the spool files of unprocessed batches: what the sweep at an
/// exclusive open must keep.
pub(super) fn pending_spool_files(conn: &Connection) -> Result<HashSet<String>> {
    let mut stmt = conn.prepare("SELECT spool FROM inbox_batch WHERE processed_at IS NULL AND spool IS NOT NULL")?;
    let keep = stmt.query_map([], |r| r.get::<_, String>(0))?.collect::<rusqlite::Result<_>>()?;
    Ok(keep)
}

pub(super) fn insert_batch(
    store: &SqliteStore,
    account: &str,
    batch_id: [u8; 16],
    vouchers: &[Vec<u8>],
    received_at: i64,
) -> Result<InsertOutcome> {
    check_id(account, "account must be 1..=512 bytes")?;
    let count =
        u32::try_from(vouchers.len()).map_err(|_| StoreError::InvalidArgument("too many vouchers in one batch"))?;
    fn existing(conn: &Connection, account: &str, batch_id: &[u8; 16]) -> Result<Option<u32>> {
        let n: Option<i64> = conn
            .prepare_cached("SELECT voucher_count FROM inbox_batch WHERE account = ?1 AND batch_id = ?2")?
            .query_row(params![account, &batch_id[..]], |r| r.get(0))
            .optional()?;
        n.map(|n| u32::try_from(n).map_err(|_| StoreError::Corrupt("voucher count"))).transpose()
    }
    // A retry of a stored batch is answered without writing anything.
    if let Some(vouchers) = existing(&store.lock_intake(), account, &batch_id)? {
        return Ok(InsertOutcome::Duplicate { vouchers });
    }
    // Encoded, and in a file database written to its spool file and
    // synced, before the write lock is taken.
    let blob = inbox::encode(vouchers)?;
    let (blob, file) = match &store.spool {
        Some(spool) => (None, Some(spool.write(&blob)?)),
        None => (Some(blob), None),
    };
    let inserted = store.write_on(&mut store.lock_intake(), |tx| {
        // A concurrent retry may have stored the batch meanwhile.
        if let Some(vouchers) = existing(tx, account, &batch_id)? {
            return Ok(InsertOutcome::Duplicate { vouchers });
        }
        tx.prepare_cached(
            "INSERT INTO inbox_batch (account, batch_id, voucher_count, received_at, vouchers, spool)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![account, &batch_id[..], i64::from(count), received_at, blob, file])?;
        Ok(InsertOutcome::Inserted { vouchers: count })
    });
    // The file of a batch that was not inserted is shredded now, unless the
    // insert failed: a failed COMMIT may still have committed, so that
    // file is left to the sweep at the next exclusive open, which keeps it
    // if a row names it.
    if let (Ok(InsertOutcome::Duplicate { .. }), Some(spool), Some(f)) = (&inserted, &store.spool, &file) {
        let _ = spool.shred(f);
    }
    inserted
}

pub(super) fn next_unprocessed_with(
    store: &SqliteStore,
    limit: usize,
    after: Option<InboxId>,
    cached: &mut CachedVouchers<'_>,
) -> Result<Vec<InboxBatch>> {
    type Row = (i64, String, Vec<u8>, i64, i64, Option<Vec<u8>>, Option<String>);
    // The rows under the lock; the spool files are read after it is released.
    let rows: Vec<Row> = {
        let conn = store.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT id, account, batch_id, received_at, voucher_count, vouchers, spool FROM inbox_batch
             WHERE processed_at IS NULL AND id > ?2 ORDER BY id LIMIT ?1",
        )?;
        stmt.query_map(params![limit_i64(limit), after.map_or(i64::MIN, |a| a.0)], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?))
        })?
        .collect::<rusqlite::Result<_>>()?
    };
    rows.into_iter()
        .map(|(id, account, batch_id, received_at, count, blob, file)| {
            let count = to_u64(count)?;
            let batch_id = id16(&batch_id)?;
            let vouchers = match cached(&account, &batch_id).filter(|v| u64::try_from(v.len()).ok() == Some(count)) {
                Some(vouchers) => vouchers,
                None => stored_vouchers(store, InboxId(id), count, blob, file)?,
            };
            Ok(InboxBatch { id: InboxId(id), account, batch_id, vouchers, received_at })
        })
        .collect()
}

/// The stored vouchers of unprocessed batch `id` (`count` of them): its
/// in-row blob, or else its spool file. Damage confined to the batch's
/// vouchers is reported as [`StoreError::UnreadableBatch`], so the caller
/// can set that batch aside; other errors (I/O) pass through.
fn stored_vouchers(
    store: &SqliteStore,
    id: InboxId,
    count: u64,
    blob: Option<Vec<u8>>,
    file: Option<String>,
) -> Result<Vec<Vec<u8>>> {
    let unreadable = |e: StoreError| match e {
        StoreError::Corrupt(reason) => StoreError::UnreadableBatch { id, vouchers: count, reason },
        e => e,
    };
    let blob = match (blob, file, &store.spool) {
        (Some(blob), _, _) => blob,
        (None, Some(f), Some(spool)) => spool.read(&f).map_err(unreadable)?,
        (None, Some(_), None) => {
            return Err(unreadable(StoreError::Corrupt("spool file named in an in-memory database")));
        }
        (None, None, _) => {
            return Err(unreadable(StoreError::Corrupt("unprocessed batch without vouchers")));
        }
    };
    inbox::decode(&blob, count).map_err(unreadable)
}

pub(super) fn complete_batch(
    store: &SqliteStore,
    inbox_id: InboxId,
    results: &BatchResults,
    processed_at: i64,
) -> Result<CompleteOutcome> {
    let mut out = complete_batches(store, &[(inbox_id, results)], processed_at)?;
    out.pop().ok_or(StoreError::Corrupt("no outcome"))
}

pub(super) fn complete_batches(
    store: &SqliteStore,
    batches: &[(InboxId, &BatchResults)],
    processed_at: i64,
) -> Result<Vec<CompleteOutcome>> {
    let (out, files) = store.write(|tx| {
        let mut out = Vec::with_capacity(batches.len());
        let mut files = Vec::new();
        for (inbox_id, results) in batches {
            let (outcome, file) = complete_one(tx, *inbox_id, results, processed_at)?;
            out.push(outcome);
            files.extend(file);
        }
        Ok((out, files))
    })?;
    // Committed: the batches are processed whatever happens next. A file
    // that cannot be shredded now is an orphan, shredded by the sweep at
    // the next exclusive open.
    if let Some(spool) = &store.spool {
        for f in &files {
            let _ = spool.shred(f);
        }
    }
    Ok(out)
}
/// Applies one batch's results inside `tx` (see [`Store::complete_batch`](crate::Store::complete_batch)).
/// Returns the outcome and the name of the batch's spool file, to shred once
/// `tx` has committed.
fn complete_one(
    tx: &Transaction<'_>,
    inbox_id: InboxId,
    results: &BatchResults,
    processed_at: i64,
) -> Result<(CompleteOutcome, Option<String>)> {
    type Row = (String, i64, Option<i64>, Option<String>);
    let row: Option<Row> = tx
        .prepare_cached("SELECT account, voucher_count, processed_at, spool FROM inbox_batch WHERE id = ?1")?
        .query_row(params![inbox_id.0], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .optional()?;
    let Some((account, count, processed, spool_file)) = row else {
        return Err(StoreError::NotFound("inbox batch"));
    };
    if processed.is_some() {
        return Ok((CompleteOutcome::AlreadyProcessed, None));
    }
    let count = to_u64(count)?;
    check_accounted(results, count)?;

    let mut opened_new = 0u64;
    {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO opened_voucher (account, order_id, voucher_id, payload, batch)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (account, order_id, voucher_id) DO NOTHING",
        )?;
        for o in &results.opened {
            opened_new +=
                stmt.execute(params![account, &o.order_id[..], &o.voucher_id[..], o.payload, inbox_id.0])? as u64;
        }
    }
    let opened_duplicate = results.opened.len() as u64 - opened_new;
    // A replayed voucher (same account, order and id) counts as invalid, so
    // the counters always add up to `received`.
    let invalid =
        results.invalid.checked_add(opened_duplicate).ok_or(StoreError::InvalidArgument("count out of range"))?;
    tx.prepare_cached(
        "INSERT INTO account_counter (account, received, non_matches, opened, invalid)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (account) DO UPDATE SET
             received    = received    + excluded.received,
             non_matches = non_matches + excluded.non_matches,
             opened      = opened      + excluded.opened,
             invalid     = invalid     + excluded.invalid",
    )?
    .execute(params![
        account,
        to_i64(count)?,
        to_i64(results.non_matches)?,
        to_i64(opened_new)?,
        to_i64(invalid)?
    ])?;
    if let Some(order) = &results.order_id {
        let day = processed_at.div_euclid(SECONDS_PER_DAY);
        tx.prepare_cached(
            "INSERT INTO order_counter
                 (order_id, day, vouchers_received, vouchers_opened, vouchers_non_matching, vouchers_invalid)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (order_id, day) DO UPDATE SET
                 vouchers_received     = vouchers_received     + excluded.vouchers_received,
                 vouchers_opened       = vouchers_opened       + excluded.vouchers_opened,
                 vouchers_non_matching = vouchers_non_matching + excluded.vouchers_non_matching,
                 vouchers_invalid      = vouchers_invalid      + excluded.vouchers_invalid",
        )?
        .execute(params![
            &order[..],
            day,
            to_i64(count)?,
            to_i64(opened_new)?,
            to_i64(results.non_matches)?,
            to_i64(invalid)?
        ])?;
        tx.prepare_cached(
            "INSERT INTO order_account_day (order_id, day, account) VALUES (?1, ?2, ?3)
             ON CONFLICT (order_id, day, account) DO NOTHING",
        )?
        .execute(params![&order[..], day, account])?;
    }
    {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO account_state (account, order_id, state) VALUES (?1, ?2, ?3)
             ON CONFLICT (account, order_id) DO UPDATE SET state = excluded.state",
        )?;
        for st in &results.state {
            stmt.execute(params![account, &st.order_id[..], st.state])?;
        }
    }
    // Marks the batch processed and drops its raw vouchers: a blob in the row
    // is overwritten with zeros by `secure_delete`; a spool file is shredded by
    // the caller after the commit.
    tx.prepare_cached("UPDATE inbox_batch SET processed_at = ?1, vouchers = NULL, spool = NULL WHERE id = ?2")?
        .execute(params![processed_at, inbox_id.0])?;
    Ok((CompleteOutcome::Completed { opened_new, opened_duplicate }, spool_file))
}
