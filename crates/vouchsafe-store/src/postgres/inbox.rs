//! The inbox of the PostgreSQL store: storing a received batch, reading back
//! the unprocessed ones, and completing them (counters, opened vouchers,
//! threshold state, and the deletion of the raw vouchers). There is no spool:
//! a batch's encoded vouchers are the `vouchers` column of its row until it
//! is processed.

use std::collections::HashMap;

use super::PostgresStore;
use super::conn::{Pg, get};
use crate::convert::{SECONDS_PER_DAY, id16, limit_i64, to_i64, to_u64};
use crate::inbox;
use crate::types::*;
use crate::validate::{check_accounted, check_claim, check_id};
use crate::{CachedVouchers, Result, StoreError};

/// The cover table (`store_cover`, schema v5) is emptied every this many inbox ids: before the first round that
/// holds a batch of a new bucket of ids (see [`empty_cover_if_due`]). With the default 256 vouchers a batch it holds
/// about 8192 rows (40 MB) at most per replica between two truncations.
const COVER_BUCKET: i64 = 32;

/// The client state a processed batch keeps: zeros (see [`complete_one`]).
const FORGOTTEN_STATE: [u8; 16] = [0u8; 16];

/// Voucher count and digest of the stored batch `(account, batch_id)`, if any.
fn existing(q: &Pg<'_>, account: &str, batch_id: &[u8; 16]) -> Result<Option<(u32, Option<Vec<u8>>)>> {
    let row = q.query_opt(
        "SELECT voucher_count, digest FROM inbox_batch WHERE account = $1 AND batch_id = $2",
        &[&account, &&batch_id[..]],
    )?;
    let Some(row) = row else { return Ok(None) };
    let n: i64 = get(&row, 0)?;
    let digest: Option<Vec<u8>> = get(&row, 1)?;
    Ok(Some((u32::try_from(n).map_err(|_| StoreError::Corrupt("voucher count"))?, digest)))
}

pub(super) fn stored_batch(store: &PostgresStore, account: &str, batch_id: &[u8; 16]) -> Result<Option<u32>> {
    Ok(store.pool.plain(|q| existing(q, account, batch_id))?.map(|(n, _)| n))
}

/// A retry of a stored batch: the same content is a duplicate, other content a conflict. A batch without a digest
/// (none in this schema; kept as in the SQLite store) is matched on its id alone.
fn retry(stored: (u32, Option<Vec<u8>>), digest: &[u8; 32]) -> Result<InsertOutcome> {
    // Both digests are of this account's own submissions: nothing secret to compare in constant time.
    match stored {
        (vouchers, None) => Ok(InsertOutcome::Duplicate { vouchers }),
        (vouchers, Some(d)) if d.as_slice() == &digest[..] => Ok(InsertOutcome::Duplicate { vouchers }),
        _ => Err(StoreError::BatchConflict),
    }
}

pub(super) fn backlog(store: &PostgresStore) -> Result<Backlog> {
    let row = store.pool.plain(|q| {
        q.query_one(
            "SELECT COUNT(*), COALESCE(SUM(voucher_count), 0)::BIGINT, COALESCE(SUM(bytes), 0)::BIGINT
             FROM inbox_batch WHERE processed_at IS NULL",
            &[],
        )
    })?;
    Ok(Backlog { batches: to_u64(get(&row, 0)?)?, vouchers: to_u64(get(&row, 1)?)?, bytes: to_u64(get(&row, 2)?)? })
}

pub(super) fn store_batch(store: &PostgresStore, b: &NewBatch<'_>) -> Result<InsertOutcome> {
    let account = b.account;
    check_id(account, "account must be 1..=512 bytes")?;
    let count =
        u32::try_from(b.vouchers.len()).map_err(|_| StoreError::InvalidArgument("too many vouchers in one batch"))?;
    let bytes = b
        .vouchers
        .iter()
        .try_fold(0u64, |acc, v| acc.checked_add(u64::try_from(v.len()).ok()?))
        .ok_or(StoreError::InvalidArgument("count out of range"))?;
    let bytes = to_i64(bytes)?;
    let blob = inbox::encode(b.vouchers)?;
    let digest = inbox::digest(&b.client_state, &blob);
    // A retry of a stored batch is answered without writing anything.
    if let Some(stored) = store.pool.plain(|q| existing(q, account, &b.batch_id))? {
        return retry(stored, &digest);
    }
    // READ COMMITTED, not SERIALIZABLE: intake is the hot path of every replica, and its only races are settled by
    // the unique key (a concurrent retry of the same batch: `ON CONFLICT DO NOTHING`, then the stored row answers)
    // and, for a client state the account does not have yet, by a lock on the account's client states under the
    // order (so two new states at once cannot both pass the limit). Nothing else it reads decides what it writes.
    store.pool.write_read_committed(|q| {
        if let Some((order, max)) = b.state_limit {
            let known = q.query_opt(
                "SELECT 1 FROM client_state WHERE account = $1 AND order_id = $2 AND client_state = $3",
                &[&account, &&order[..], &&b.client_state[..]],
            )?;
            if known.is_none() {
                // One lock per (account, order), held to the commit: the count below sees every state committed
                // before it, and no other new state of the account can commit in between.
                q.query_one(
                    "SELECT pg_advisory_xact_lock(hashtextextended($1 || encode($2, 'hex'), 7))",
                    &[&account, &&order[..]],
                )?;
                let have: i64 = get(
                    &q.query_one(
                        "SELECT COUNT(*) FROM client_state WHERE account = $1 AND order_id = $2",
                        &[&account, &&order[..]],
                    )?,
                    0,
                )?;
                let known_now = q.query_opt(
                    "SELECT 1 FROM client_state WHERE account = $1 AND order_id = $2 AND client_state = $3",
                    &[&account, &&order[..], &&b.client_state[..]],
                )?;
                if known_now.is_none() {
                    if have >= i64::from(max) {
                        return Err(StoreError::TooManyClientStates { max });
                    }
                    q.execute(
                        "INSERT INTO client_state (account, order_id, client_state, first_seen) VALUES ($1, $2, $3, $4)",
                        &[&account, &&order[..], &&b.client_state[..], &b.received_at],
                    )?;
                }
            }
        }
        let inserted = q.query_opt(
            "INSERT INTO inbox_batch
                 (account, batch_id, voucher_count, received_at, vouchers, client_state, digest, bytes)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (account, batch_id) DO NOTHING RETURNING id",
            &[
                &account,
                &&b.batch_id[..],
                &i64::from(count),
                &b.received_at,
                &blob,
                &&b.client_state[..],
                &&digest[..],
                &bytes,
            ],
        )?;
        if inserted.is_some() {
            return Ok(InsertOutcome::Inserted { vouchers: count });
        }
        // Stored meanwhile (a concurrent retry): answered as a retry. A conflict rolls back the client state
        // recorded above with everything else.
        match existing(q, account, &b.batch_id)? {
            Some(stored) => retry(stored, &digest),
            None => Err(StoreError::Corrupt("a conflicting batch row is not visible")),
        }
    })
}

/// What [`next_unprocessed_with`] reads of a batch before its vouchers.
struct Pending {
    id: InboxId,
    account: String,
    batch_id: [u8; 16],
    received_at: i64,
    count: u64,
    client_state: ClientStateId,
}

pub(super) fn next_unprocessed_with(
    store: &PostgresStore,
    limit: usize,
    after: Option<InboxId>,
    cached: &mut CachedVouchers<'_>,
) -> Result<Vec<InboxBatch>> {
    // The batches first, without their vouchers; `cached` is asked outside any database call, and the vouchers
    // it does not have are read in one more query.
    let rows = store.pool.plain(|q| {
        q.query(
            "SELECT id, account, batch_id, received_at, voucher_count, client_state FROM inbox_batch
             WHERE processed_at IS NULL AND id > $2 ORDER BY id LIMIT $1",
            &[&limit_i64(limit), &after.map_or(i64::MIN, |a| a.0)],
        )
    })?;
    let pending = rows.iter().map(pending).collect::<Result<Vec<_>>>()?;
    drop(rows);
    batches_of(store, pending, cached)
}

/// The columns of [`pending`] rows.
const PENDING_COLUMNS: &str = "b.id, b.account, b.batch_id, b.received_at, b.voucher_count, b.client_state";

fn pending(r: &tokio_postgres::Row) -> Result<Pending> {
    Ok(Pending {
        id: InboxId(get(r, 0)?),
        account: get(r, 1)?,
        batch_id: id16(get(r, 2)?)?,
        received_at: get(r, 3)?,
        count: to_u64(get(r, 4)?)?,
        client_state: id16(get(r, 5)?)?,
    })
}

pub(super) fn claim_batches(
    store: &PostgresStore,
    claim: &Claim<'_>,
    limit: usize,
    after: Option<InboxId>,
    cached: &mut CachedVouchers<'_>,
) -> Result<Vec<InboxBatch>> {
    check_claim(claim)?;
    let sql = format!(
        "SELECT {PENDING_COLUMNS} FROM inbox_batch b LEFT JOIN account_claim c ON c.account = b.account
         WHERE b.processed_at IS NULL AND b.id > $2 AND (c.account IS NULL OR c.worker = $3 OR c.until < $4)
         ORDER BY b.id LIMIT $1"
    );
    // SERIALIZABLE: two workers that claim the same account at once cannot both commit; the loser runs again
    // and then sees the winner's claim.
    let pending = store.pool.write(|q| {
        q.execute("UPDATE account_claim SET until = $1 WHERE worker = $2", &[&claim.until, &claim.worker])?;
        let rows = q.query(&sql, &[&limit_i64(limit), &after.map_or(i64::MIN, |a| a.0), &claim.worker, &claim.now])?;
        let pending = rows.iter().map(pending).collect::<Result<Vec<_>>>()?;
        let mut accounts: Vec<&str> = pending.iter().map(|p| p.account.as_str()).collect();
        accounts.sort_unstable();
        accounts.dedup();
        if !accounts.is_empty() {
            q.execute(
                "INSERT INTO account_claim (account, worker, until) SELECT a, $2, $3 FROM UNNEST($1::TEXT[]) a
                 ON CONFLICT (account) DO UPDATE SET worker = excluded.worker, until = excluded.until",
                &[&accounts, &claim.worker, &claim.until],
            )?;
        }
        Ok(pending)
    })?;
    batches_of(store, pending, cached)
}

pub(super) fn complete_claimed(
    store: &PostgresStore,
    claim: &Claim<'_>,
    batches: &[(InboxId, &BatchResults)],
    processed_at: i64,
) -> Result<Vec<CompleteOutcome>> {
    check_claim(claim)?;
    complete_under(store, Some(claim), batches, processed_at)
}

pub(super) fn release_claims(store: &PostgresStore, worker: &str) -> Result<u64> {
    check_id(worker, "worker must be 1..=512 bytes")?;
    store.pool.plain(|q| q.execute("DELETE FROM account_claim WHERE worker = $1", &[&worker]))
}

/// Whether `worker` holds a live claim on `account` at `now`.
pub(super) fn holds_claim(q: &Pg<'_>, account: &str, worker: &str, now: i64) -> Result<bool> {
    let row = q.query_opt("SELECT worker, until FROM account_claim WHERE account = $1", &[&account])?;
    Ok(match row {
        Some(r) => get::<String>(&r, 0)? == worker && get::<i64>(&r, 1)? >= now,
        None => false,
    })
}

/// The batches of `pending`, their vouchers from `cached` or else from storage.
fn batches_of(
    store: &PostgresStore,
    pending: Vec<Pending>,
    cached: &mut CachedVouchers<'_>,
) -> Result<Vec<InboxBatch>> {
    let from_cache: Vec<Option<Vec<Vec<u8>>>> = pending
        .iter()
        .map(|p| cached(&p.account, &p.batch_id).filter(|v| u64::try_from(v.len()).ok() == Some(p.count)))
        .collect();
    let missing: Vec<i64> = pending.iter().zip(&from_cache).filter(|(_, c)| c.is_none()).map(|(p, _)| p.id.0).collect();
    // id -> (still unprocessed, stored vouchers).
    let mut stored: HashMap<i64, (bool, Option<Vec<u8>>)> = HashMap::new();
    if !missing.is_empty() {
        let rows = store.pool.plain(|q| {
            q.query(
                "SELECT id, processed_at IS NULL, vouchers FROM inbox_batch WHERE id = ANY($1::BIGINT[])",
                &[&missing],
            )
        })?;
        for r in &rows {
            stored.insert(get(r, 0)?, (get(r, 1)?, get(r, 2)?));
        }
    }
    let mut out = Vec::with_capacity(pending.len());
    for (p, cache) in pending.into_iter().zip(from_cache) {
        let vouchers = match cache {
            Some(vouchers) => vouchers,
            None => match stored.remove(&p.id.0) {
                Some((true, blob)) => stored_vouchers(p.id, p.count, blob)?,
                // Processed (or purged) by another worker between the two queries: no longer unprocessed.
                Some((false, _)) | None => continue,
            },
        };
        out.push(InboxBatch {
            id: p.id,
            account: p.account,
            client_state: p.client_state,
            batch_id: p.batch_id,
            vouchers,
            received_at: p.received_at,
        });
    }
    Ok(out)
}

/// The stored vouchers of unprocessed batch `id` (`count` of them). Damage confined to the batch's vouchers is
/// reported as [`StoreError::UnreadableBatch`], so the caller can set that batch aside.
fn stored_vouchers(id: InboxId, count: u64, blob: Option<Vec<u8>>) -> Result<Vec<Vec<u8>>> {
    let unreadable = |e: StoreError| match e {
        StoreError::Corrupt(reason) => StoreError::UnreadableBatch { id, vouchers: count, reason },
        e => e,
    };
    let Some(blob) = blob else {
        return Err(unreadable(StoreError::Corrupt("unprocessed batch without vouchers")));
    };
    inbox::decode(&blob, count).map_err(unreadable)
}

pub(super) fn complete_batch(
    store: &PostgresStore,
    inbox_id: InboxId,
    results: &BatchResults,
    processed_at: i64,
) -> Result<CompleteOutcome> {
    let mut out = complete_batches(store, &[(inbox_id, results)], processed_at)?;
    out.pop().ok_or(StoreError::Corrupt("no outcome"))
}

pub(super) fn complete_batches(
    store: &PostgresStore,
    batches: &[(InboxId, &BatchResults)],
    processed_at: i64,
) -> Result<Vec<CompleteOutcome>> {
    complete_under(store, None, batches, processed_at)
}

/// [`Store::complete_batches`](crate::Store::complete_batches), under `claim` if given (see
/// [`Store::complete_claimed`](crate::Store::complete_claimed)).
fn complete_under(
    store: &PostgresStore,
    claim: Option<&Claim<'_>>,
    batches: &[(InboxId, &BatchResults)],
    processed_at: i64,
) -> Result<Vec<CompleteOutcome>> {
    let ids: Vec<i64> = batches.iter().map(|(id, _)| id.0).collect();
    if batches.iter().any(|(_, r)| r.cover_payload_len > 0) {
        empty_cover_if_due(store, &ids);
    }
    store.pool.write(|q| {
        if let Some(claim) = claim {
            // One query for the whole round: the unprocessed batches whose account the worker does not hold.
            let lapsed = q.query_one(
                "SELECT COUNT(*) FROM inbox_batch b LEFT JOIN account_claim c ON c.account = b.account
                 WHERE b.id = ANY($1::BIGINT[]) AND b.processed_at IS NULL
                   AND (c.account IS NULL OR c.worker <> $2 OR c.until < $3)",
                &[&ids, &claim.worker, &claim.now],
            )?;
            if get::<i64>(&lapsed, 0)? > 0 {
                return Err(StoreError::Conflict("the worker's claim on the account lapsed"));
            }
        }
        let mut out = Vec::with_capacity(batches.len());
        for (inbox_id, results) in batches {
            out.push(complete_one(q, *inbox_id, results, processed_at)?);
        }
        if let Some(claim) = claim {
            q.execute(
                "DELETE FROM account_claim WHERE worker = $1 AND NOT EXISTS
                     (SELECT 1 FROM inbox_batch b WHERE b.account = account_claim.account AND b.processed_at IS NULL)",
                &[&claim.worker],
            )?;
        }
        Ok(out)
    })
}

/// Empties the cover table (`TRUNCATE`, in a transaction of its own, before the round's) when the round holds a
/// batch whose id is in a later bucket of [`COVER_BUCKET`] ids than this store last emptied it for. When it happens
/// is decided by the batch ids (public: the count of batches received), never by what opened. A truncation waits
/// at most 100 ms for the lock (other replicas' rounds inserting cover rows hold it); if it cannot have it, the
/// table is emptied at a later round. Errors are logged, not returned: the cover rows are never read, and a round
/// must not fail for them.
fn empty_cover_if_due(store: &PostgresStore, ids: &[i64]) {
    let Some(bucket) = ids.iter().map(|id| id.div_euclid(COVER_BUCKET)).max() else { return };
    let last = store.cover_bucket.load(std::sync::atomic::Ordering::Relaxed);
    if bucket <= last {
        return;
    }
    match store.pool.write_read_committed(|q| q.batch("SET LOCAL lock_timeout = '100ms'; TRUNCATE store_cover")) {
        Ok(()) => store.cover_bucket.store(bucket, std::sync::atomic::Ordering::Relaxed),
        Err(e) if super::conn::is_lock_timeout(&e) => tracing::debug!("cover table busy, emptied at a later round"),
        Err(e) => tracing::warn!(error = %e, "emptying the cover table failed"),
    }
}

/// Applies one batch's results inside the write transaction `q` (see
/// [`Store::complete_batch`](crate::Store::complete_batch)).
fn complete_one(q: &Pg<'_>, inbox_id: InboxId, results: &BatchResults, processed_at: i64) -> Result<CompleteOutcome> {
    let row = q.query_opt(
        "SELECT account, voucher_count, processed_at, client_state FROM inbox_batch WHERE id = $1 FOR UPDATE",
        &[&inbox_id.0],
    )?;
    let Some(row) = row else {
        return Err(StoreError::NotFound("inbox batch"));
    };
    let account: String = get(&row, 0)?;
    let count: i64 = get(&row, 1)?;
    let processed: Option<i64> = get(&row, 2)?;
    let client_state: Vec<u8> = get(&row, 3)?;
    if processed.is_some() {
        return Ok(CompleteOutcome::AlreadyProcessed);
    }
    let count = to_u64(count)?;
    check_accounted(results, count)?;

    // The opened vouchers in one statement, in their order (so `seq` follows it); a replay (a voucher already
    // stored, or twice in this batch) is skipped, as SQLite's statement per voucher does.
    let mut opened_new = 0u64;
    if !results.opened.is_empty() {
        let orders: Vec<&[u8]> = results.opened.iter().map(|o| &o.order_id[..]).collect();
        let ids: Vec<&[u8]> = results.opened.iter().map(|o| &o.voucher_id[..]).collect();
        let payloads: Vec<&[u8]> = results.opened.iter().map(|o| o.payload.as_slice()).collect();
        opened_new = q.execute(
            "INSERT INTO opened_voucher (account, order_id, voucher_id, payload, batch, client_state)
             SELECT $1::TEXT, u.o, u.v, u.p, $5::BIGINT, $6::BYTEA
             FROM UNNEST($2::BYTEA[], $3::BYTEA[], $4::BYTEA[]) WITH ORDINALITY AS u(o, v, p, n)
             ORDER BY u.n
             ON CONFLICT (account, order_id, voucher_id) DO NOTHING",
            &[&account, &orders, &ids, &payloads, &inbox_id.0, &client_state],
        )?;
    }
    let opened_len =
        u64::try_from(results.opened.len()).map_err(|_| StoreError::InvalidArgument("count out of range"))?;
    let opened_duplicate = opened_len.checked_sub(opened_new).ok_or(StoreError::Corrupt("opened count"))?;
    if results.cover_payload_len > 0 {
        // Cover writes (docs/LEAKAGE.md §6): one row of an opened row's size for every voucher that wrote no opened
        // row (non-matches, invalid ones, replays), inserted by a statement of the opened rows' form into a table of
        // their shape (schema v5: the same checks, indexes and foreign key). The payloads (zeros, stored
        // uncompressed and inline as an opened row's: v4) go over the connection as an array parameter, as the
        // opened payloads do; the account is as many '0's as it has bytes; the order and the client state are one
        // random value for the batch's rows, as an opened row's are the batch's own (so the indexes grow the same
        // way), and each voucher id is random.
        let covered = usize::try_from(count.saturating_sub(opened_new)).map_err(|_| StoreError::Corrupt("count"))?;
        if covered > 0 {
            let zeros = vec![0u8; results.cover_payload_len];
            let payloads: Vec<&[u8]> = vec![zeros.as_slice(); covered];
            let account_len =
                i64::try_from(account.len()).map_err(|_| StoreError::InvalidArgument("account length"))?;
            q.execute(
                "INSERT INTO store_cover (account, order_id, voucher_id, payload, batch, client_state)
                 SELECT repeat('0', $1::BIGINT::INT), k.o, uuid_send(gen_random_uuid()), u.p, $3::BIGINT, k.s
                 FROM UNNEST($2::BYTEA[]) WITH ORDINALITY AS u(p, n),
                      (SELECT uuid_send(gen_random_uuid()) AS o, uuid_send(gen_random_uuid()) AS s) AS k
                 ORDER BY u.n
                 ON CONFLICT (account, order_id, voucher_id) DO NOTHING",
                &[&account_len, &payloads, &inbox_id.0],
            )?;
        }
    }
    // A replayed voucher (same account, order and id) counts as invalid, so
    // the counters always add up to `received`.
    let invalid =
        results.invalid.checked_add(opened_duplicate).ok_or(StoreError::InvalidArgument("count out of range"))?;
    let (count, non_matches, opened_new_i, invalid) =
        (to_i64(count)?, to_i64(results.non_matches)?, to_i64(opened_new)?, to_i64(invalid)?);
    q.execute(
        "INSERT INTO account_counter (account, received, non_matches, opened, invalid)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (account) DO UPDATE SET
             received    = account_counter.received    + EXCLUDED.received,
             non_matches = account_counter.non_matches + EXCLUDED.non_matches,
             opened      = account_counter.opened      + EXCLUDED.opened,
             invalid     = account_counter.invalid     + EXCLUDED.invalid",
        &[&account, &count, &non_matches, &opened_new_i, &invalid],
    )?;
    if let Some(order) = &results.order_id {
        let day = processed_at.div_euclid(SECONDS_PER_DAY);
        // The order's day counters and the account's activity that day, in one statement.
        q.execute(
            "WITH counted AS (
                 INSERT INTO order_counter
                     (order_id, day, vouchers_received, vouchers_opened, vouchers_non_matching, vouchers_invalid)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (order_id, day) DO UPDATE SET
                     vouchers_received     = order_counter.vouchers_received     + EXCLUDED.vouchers_received,
                     vouchers_opened       = order_counter.vouchers_opened       + EXCLUDED.vouchers_opened,
                     vouchers_non_matching = order_counter.vouchers_non_matching + EXCLUDED.vouchers_non_matching,
                     vouchers_invalid      = order_counter.vouchers_invalid      + EXCLUDED.vouchers_invalid
             )
             INSERT INTO order_account_day (order_id, day, account) VALUES ($1, $2, $7)
             ON CONFLICT (order_id, day, account) DO NOTHING",
            &[&&order[..], &day, &count, &opened_new_i, &non_matches, &invalid, &account],
        )?;
    }
    if !results.state.is_empty() {
        // One row per order, the last update of an order winning (as SQLite's statement per update leaves it):
        // a row can be changed once per statement.
        let mut states: Vec<(&[u8], &[u8])> = Vec::with_capacity(results.state.len());
        for st in &results.state {
            match states.iter_mut().find(|(o, _)| *o == &st.order_id[..]) {
                Some(slot) => slot.1 = &st.state,
                None => states.push((&st.order_id[..], &st.state)),
            }
        }
        let orders: Vec<&[u8]> = states.iter().map(|(o, _)| *o).collect();
        let values: Vec<&[u8]> = states.iter().map(|(_, s)| *s).collect();
        q.execute(
            "INSERT INTO account_state (account, order_id, client_state, state)
             SELECT $1::TEXT, u.o, $2::BYTEA, u.s FROM UNNEST($3::BYTEA[], $4::BYTEA[]) AS u(o, s)
             ON CONFLICT (account, order_id, client_state) DO UPDATE SET state = EXCLUDED.state",
            &[&account, &client_state, &orders, &values],
        )?;
    }
    // Marks the batch processed and drops its raw vouchers (PostgreSQL keeps the old row version until `VACUUM`
    // reclaims it: docs/OPERATIONS.md). The client state is forgotten too: a processed batch needs only its digest
    // (for retries), and the state id would link the account's batches to its devices for as long as the row is
    // kept.
    q.execute(
        "UPDATE inbox_batch SET processed_at = $1, vouchers = NULL, client_state = $2 WHERE id = $3",
        &[&processed_at, &&FORGOTTEN_STATE[..], &inbox_id.0],
    )?;
    for a in &results.audit {
        super::audit::append_audit_tx(q, &a.entry())?;
    }
    Ok(CompleteOutcome::Completed { opened_new, opened_duplicate })
}
