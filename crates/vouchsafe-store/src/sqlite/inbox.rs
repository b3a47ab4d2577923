//! The inbox of the SQLite store: storing a received batch, reading back the
//! unprocessed ones, and completing them (counters, opened vouchers,
//! threshold state, and the deletion of the raw vouchers).

use std::collections::HashSet;

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::SqliteStore;
use super::convert::{id16, limit_i64, to_i64, to_u64};
use crate::convert::SECONDS_PER_DAY;
use crate::inbox;
use crate::types::*;
use crate::validate::{check_accounted, check_id};
use crate::{CachedVouchers, Result, StoreError};

/// Rows of the cover ring (`store_cover`, schema v6): the table never holds more than this. A round of up to this
/// many vouchers writes every cover row to a slot of its own; the server's default round is 32 batches of at most
/// 256 vouchers, 8192.
const COVER_SLOTS: i64 = 8192;
/// Where a transaction's cover writes start: its first inbox id times this, modulo [`COVER_SLOTS`].
const COVER_RUN: i64 = 256;

/// Names of the spool files of unprocessed batches: what the sweep at an
/// exclusive open must keep.
pub(super) fn pending_spool_files(conn: &Connection) -> Result<HashSet<String>> {
    let mut stmt = conn.prepare("SELECT spool FROM inbox_batch WHERE processed_at IS NULL AND spool IS NOT NULL")?;
    let keep = stmt.query_map([], |r| r.get::<_, String>(0))?.collect::<rusqlite::Result<_>>()?;
    Ok(keep)
}

/// Voucher count and digest of the stored batch `(account, batch_id)`, if any.
fn existing(conn: &Connection, account: &str, batch_id: &[u8; 16]) -> Result<Option<(u32, Option<Vec<u8>>)>> {
    let row: Option<(i64, Option<Vec<u8>>)> = conn
        .prepare_cached("SELECT voucher_count, digest FROM inbox_batch WHERE account = ?1 AND batch_id = ?2")?
        .query_row(params![account, &batch_id[..]], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    row.map(|(n, d)| Ok((u32::try_from(n).map_err(|_| StoreError::Corrupt("voucher count"))?, d))).transpose()
}

pub(super) fn stored_batch(conn: &Connection, account: &str, batch_id: &[u8; 16]) -> Result<Option<u32>> {
    Ok(existing(conn, account, batch_id)?.map(|(n, _)| n))
}

/// A retry of a stored batch: the same content is a duplicate, other content a conflict. A batch stored before
/// schema v5 has no digest and is matched on its id alone.
fn retry(stored: (u32, Option<Vec<u8>>), digest: &[u8; 32]) -> Result<InsertOutcome> {
    // Both digests are of this account's own submissions: nothing secret to compare in constant time.
    match stored {
        (vouchers, None) => Ok(InsertOutcome::Duplicate { vouchers }),
        (vouchers, Some(d)) if d.as_slice() == &digest[..] => Ok(InsertOutcome::Duplicate { vouchers }),
        _ => Err(StoreError::BatchConflict),
    }
}

pub(super) fn backlog(conn: &Connection) -> Result<Backlog> {
    let (batches, vouchers, bytes): (i64, i64, i64) = conn
        .prepare_cached(
            "SELECT COUNT(*), COALESCE(SUM(voucher_count), 0), COALESCE(SUM(bytes), 0)
             FROM inbox_batch WHERE processed_at IS NULL",
        )?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    Ok(Backlog { batches: to_u64(batches)?, vouchers: to_u64(vouchers)?, bytes: to_u64(bytes)? })
}

pub(super) fn store_batch(store: &SqliteStore, b: &NewBatch<'_>) -> Result<InsertOutcome> {
    let account = b.account;
    check_id(account, "account must be 1..=512 bytes")?;
    let count =
        u32::try_from(b.vouchers.len()).map_err(|_| StoreError::InvalidArgument("too many vouchers in one batch"))?;
    let bytes = b.vouchers.iter().map(|v| v.len() as u64).sum::<u64>();
    let blob = inbox::encode(b.vouchers)?;
    let digest = inbox::digest(&b.client_state, &blob);
    // A retry of a stored batch is answered without writing anything.
    if let Some(stored) = existing(&store.lock_intake(), account, &b.batch_id)? {
        return retry(stored, &digest);
    }
    // In a file database written to its spool file and synced before the
    // write lock is taken.
    let (blob, file) = match &store.spool {
        Some(spool) => (None, Some(spool.write(&blob)?)),
        None => (Some(blob), None),
    };
    let inserted = store.write_on(&mut store.lock_intake(), |tx| {
        // A concurrent retry may have stored the batch meanwhile.
        if let Some(stored) = existing(tx, account, &b.batch_id)? {
            return retry(stored, &digest);
        }
        if let Some((order, max)) = b.state_limit {
            let known: Option<i64> = tx
                .prepare_cached(
                    "SELECT 1 FROM client_state WHERE account = ?1 AND order_id = ?2 AND client_state = ?3",
                )?
                .query_row(params![account, &order[..], &b.client_state[..]], |r| r.get(0))
                .optional()?;
            if known.is_none() {
                let have: i64 = tx
                    .prepare_cached("SELECT COUNT(*) FROM client_state WHERE account = ?1 AND order_id = ?2")?
                    .query_row(params![account, &order[..]], |r| r.get(0))?;
                if have >= i64::from(max) {
                    return Err(StoreError::TooManyClientStates { max });
                }
                tx.prepare_cached(
                    "INSERT INTO client_state (account, order_id, client_state, first_seen) VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(params![account, &order[..], &b.client_state[..], b.received_at])?;
            }
        }
        tx.prepare_cached(
            "INSERT INTO inbox_batch
                 (account, batch_id, voucher_count, received_at, vouchers, spool, client_state, digest, bytes)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?
        .execute(params![
            account,
            &b.batch_id[..],
            i64::from(count),
            b.received_at,
            blob,
            file,
            &b.client_state[..],
            &digest[..],
            to_i64(bytes)?
        ])?;
        Ok(InsertOutcome::Inserted { vouchers: count })
    });
    // The file of a batch that was not inserted (a duplicate, a conflict, a
    // refused client state) is shredded now, unless the insert failed in the
    // database: a failed COMMIT may still have committed, so that file is
    // left to the sweep at the next exclusive open, which keeps it if a row
    // names it.
    let refused = matches!(
        &inserted,
        Ok(InsertOutcome::Duplicate { .. }) | Err(StoreError::BatchConflict | StoreError::TooManyClientStates { .. })
    );
    if let (true, Some(spool), Some(f)) = (refused, &store.spool, &file) {
        let _ = spool.shred(f);
    }
    inserted
}

/// An unprocessed batch's row: id, account, batch id, received at, voucher count, in-row blob, spool file, client
/// state.
type PendingRow = (i64, String, Vec<u8>, i64, i64, Option<Vec<u8>>, Option<String>, Vec<u8>);

fn pending_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<PendingRow> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?))
}

pub(super) fn next_unprocessed_with(
    store: &SqliteStore,
    limit: usize,
    after: Option<InboxId>,
    cached: &mut CachedVouchers<'_>,
) -> Result<Vec<InboxBatch>> {
    // The rows under the lock; the spool files are read after it is released.
    let rows: Vec<PendingRow> = {
        let conn = store.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT id, account, batch_id, received_at, voucher_count, vouchers, spool, client_state FROM inbox_batch
             WHERE processed_at IS NULL AND id > ?2 ORDER BY id LIMIT ?1",
        )?;
        stmt.query_map(params![limit_i64(limit), after.map_or(i64::MIN, |a| a.0)], pending_row)?
            .collect::<rusqlite::Result<_>>()?
    };
    batches_of(store, rows, cached)
}

pub(super) fn claim_batches(
    store: &SqliteStore,
    claim: &Claim<'_>,
    limit: usize,
    after: Option<InboxId>,
    cached: &mut CachedVouchers<'_>,
) -> Result<Vec<InboxBatch>> {
    crate::validate::check_claim(claim)?;
    let rows: Vec<PendingRow> = store.write(|tx| {
        tx.prepare_cached("UPDATE account_claim SET until = ?1 WHERE worker = ?2")?
            .execute(params![claim.until, claim.worker])?;
        let rows: Vec<PendingRow> = tx
            .prepare_cached(
                "SELECT b.id, b.account, b.batch_id, b.received_at, b.voucher_count, b.vouchers, b.spool,
                        b.client_state
                 FROM inbox_batch b LEFT JOIN account_claim c ON c.account = b.account
                 WHERE b.processed_at IS NULL AND b.id > ?2
                   AND (c.account IS NULL OR c.worker = ?3 OR c.until < ?4)
                 ORDER BY b.id LIMIT ?1",
            )?
            .query_map(
                params![limit_i64(limit), after.map_or(i64::MIN, |a| a.0), claim.worker, claim.now],
                pending_row,
            )?
            .collect::<rusqlite::Result<_>>()?;
        let mut upsert = tx.prepare_cached(
            "INSERT INTO account_claim (account, worker, until) VALUES (?1, ?2, ?3)
             ON CONFLICT (account) DO UPDATE SET worker = excluded.worker, until = excluded.until",
        )?;
        let accounts: HashSet<&str> = rows.iter().map(|r| r.1.as_str()).collect();
        for account in accounts {
            upsert.execute(params![account, claim.worker, claim.until])?;
        }
        drop(upsert);
        Ok(rows)
    })?;
    batches_of(store, rows, cached)
}

/// The batches of `rows`, their vouchers from `cached` or else from storage.
fn batches_of(store: &SqliteStore, rows: Vec<PendingRow>, cached: &mut CachedVouchers<'_>) -> Result<Vec<InboxBatch>> {
    rows.into_iter()
        .map(|(id, account, batch_id, received_at, count, blob, file, client_state)| {
            let count = to_u64(count)?;
            let batch_id = id16(&batch_id)?;
            let client_state = id16(&client_state)?;
            let vouchers = match cached(&account, &batch_id).filter(|v| u64::try_from(v.len()).ok() == Some(count)) {
                Some(vouchers) => vouchers,
                None => stored_vouchers(store, InboxId(id), count, blob, file)?,
            };
            Ok(InboxBatch { id: InboxId(id), account, client_state, batch_id, vouchers, received_at })
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
    complete_under(store, None, batches, processed_at)
}

pub(super) fn complete_claimed(
    store: &SqliteStore,
    claim: &Claim<'_>,
    batches: &[(InboxId, &BatchResults)],
    processed_at: i64,
) -> Result<Vec<CompleteOutcome>> {
    crate::validate::check_claim(claim)?;
    complete_under(store, Some(claim), batches, processed_at)
}

pub(super) fn release_claims(store: &SqliteStore, worker: &str) -> Result<u64> {
    check_id(worker, "worker must be 1..=512 bytes")?;
    store.write(|tx| Ok(tx.prepare_cached("DELETE FROM account_claim WHERE worker = ?1")?.execute([worker])? as u64))
}

/// Whether `claim.worker` holds a live claim on `account` at `claim.now`.
pub(super) fn holds_claim(tx: &Transaction<'_>, account: &str, worker: &str, now: i64) -> Result<bool> {
    let row: Option<(String, i64)> = tx
        .prepare_cached("SELECT worker, until FROM account_claim WHERE account = ?1")?
        .query_row([account], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(matches!(row, Some((w, until)) if w == worker && until >= now))
}

/// [`Store::complete_batches`](crate::Store::complete_batches), under `claim` if given (see
/// [`Store::complete_claimed`](crate::Store::complete_claimed)).
fn complete_under(
    store: &SqliteStore,
    claim: Option<&Claim<'_>>,
    batches: &[(InboxId, &BatchResults)],
    processed_at: i64,
) -> Result<Vec<CompleteOutcome>> {
    let (out, files) = store.write(|tx| {
        if let Some(claim) = claim {
            let mut row =
                tx.prepare_cached("SELECT account FROM inbox_batch WHERE id = ?1 AND processed_at IS NULL")?;
            for (id, _) in batches {
                let account: Option<String> = row.query_row([id.0], |r| r.get(0)).optional()?;
                if let Some(account) = account
                    && !holds_claim(tx, &account, claim.worker, claim.now)?
                {
                    return Err(StoreError::Conflict("the worker's claim on the account lapsed"));
                }
            }
        }
        let mut out = Vec::with_capacity(batches.len());
        let mut files = Vec::new();
        // The transaction's cover writes go to consecutive slots of the ring.
        let mut cover_at = batches.first().map_or(0, |(id, _)| id.0.rem_euclid(COVER_SLOTS / COVER_RUN) * COVER_RUN);
        for (inbox_id, results) in batches {
            let (outcome, file) = complete_one(tx, *inbox_id, results, processed_at, &mut cover_at)?;
            out.push(outcome);
            files.extend(file);
        }
        if let Some(claim) = claim {
            tx.prepare_cached(
                "DELETE FROM account_claim WHERE worker = ?1 AND NOT EXISTS
                     (SELECT 1 FROM inbox_batch b WHERE b.account = account_claim.account AND b.processed_at IS NULL)",
            )?
            .execute([claim.worker])?;
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
/// `tx` has committed. `cover_at` is the transaction's next cover slot.
fn complete_one(
    tx: &Transaction<'_>,
    inbox_id: InboxId,
    results: &BatchResults,
    processed_at: i64,
    cover_at: &mut i64,
) -> Result<(CompleteOutcome, Option<String>)> {
    type Row = (String, i64, Option<i64>, Option<String>, Vec<u8>);
    let row: Option<Row> = tx
        .prepare_cached(
            "SELECT account, voucher_count, processed_at, spool, client_state FROM inbox_batch WHERE id = ?1",
        )?
        .query_row(params![inbox_id.0], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
        .optional()?;
    let Some((account, count, processed, spool_file, client_state)) = row else {
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
            "INSERT INTO opened_voucher (account, order_id, voucher_id, payload, batch, client_state)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (account, order_id, voucher_id) DO NOTHING",
        )?;
        for o in &results.opened {
            opened_new += stmt.execute(params![
                account,
                &o.order_id[..],
                &o.voucher_id[..],
                o.payload,
                inbox_id.0,
                &client_state[..]
            ])? as u64;
        }
    }
    let opened_duplicate = results.opened.len() as u64 - opened_new;
    if results.cover_payload_len > 0 {
        // Cover writes (schema v6): one row of an opened row's size for every voucher that wrote no opened row
        // (non-matches, invalid ones, replays), over the ring's slots in turn (consecutive slots share pages, as
        // consecutive opened rows do). Every indexed column changes, as every index gains an entry for an opened
        // row; the account is replaced by zeros of its length.
        let covered = count.saturating_sub(opened_new);
        let len = i64::try_from(results.cover_payload_len).map_err(|_| StoreError::InvalidArgument("cover length"))?;
        let account_len = i64::try_from(account.len()).map_err(|_| StoreError::InvalidArgument("account length"))?;
        let mut write = tx.prepare_cached(
            "INSERT INTO store_cover (slot, account, order_id, voucher_id, payload, batch, client_state)
             VALUES (?1, zeroblob(?2), randomblob(16), randomblob(16), zeroblob(?3), ?4, randomblob(16))
             ON CONFLICT (slot) DO UPDATE SET
                 account = excluded.account, order_id = excluded.order_id, voucher_id = excluded.voucher_id,
                 payload = excluded.payload, batch = excluded.batch, client_state = excluded.client_state",
        )?;
        for _ in 0..covered {
            write.execute(params![*cover_at, account_len, len, inbox_id.0])?;
            *cover_at = (*cover_at + 1) % COVER_SLOTS;
        }
    }
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
            "INSERT INTO account_state (account, order_id, client_state, state) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (account, order_id, client_state) DO UPDATE SET state = excluded.state",
        )?;
        for st in &results.state {
            stmt.execute(params![account, &st.order_id[..], &client_state[..], st.state])?;
        }
    }
    // Marks the batch processed and drops its raw vouchers: a blob in the row
    // is overwritten with zeros by `secure_delete`; a spool file is shredded by
    // the caller after the commit.
    // The client state is forgotten too: a processed batch needs only its digest (for retries), and the state id
    // would link the account's batches to its devices for as long as the row is kept.
    tx.prepare_cached(
        "UPDATE inbox_batch SET processed_at = ?1, vouchers = NULL, spool = NULL,
             client_state = x'00000000000000000000000000000000'
         WHERE id = ?2",
    )?
    .execute(params![processed_at, inbox_id.0])?;
    for a in &results.audit {
        super::audit::append_audit_tx(tx, &a.entry())?;
    }
    Ok((CompleteOutcome::Completed { opened_new, opened_duplicate }, spool_file))
}
