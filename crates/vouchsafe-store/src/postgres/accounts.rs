//! Per-account data of the PostgreSQL store: counters, opened vouchers and
//! threshold state.

use tokio_postgres::Row;
use zeroize::Zeroizing;

use super::PostgresStore;
use super::conn::get;
use crate::convert::{id16, to_i64, to_u64};
use crate::types::*;
use crate::validate::check_id;
use crate::{Result, StoreError};

pub(super) fn opened_voucher_ids(
    store: &PostgresStore,
    account: &str,
    client_state: ClientStateId,
    order_id: [u8; 16],
) -> Result<Vec<[u8; 16]>> {
    // "In no particular order": the order of the index SQLite reads them by (its order of storing).
    let rows = store.pool.plain(|q| {
        q.query(
            "SELECT voucher_id FROM opened_voucher WHERE account = $1 AND order_id = $2 AND client_state = $3
             ORDER BY seq",
            &[&account, &&order_id[..], &&client_state[..]],
        )
    })?;
    rows.iter().map(|r| id16(get(r, 0)?)).collect()
}

pub(super) fn counters(store: &PostgresStore, account: &str) -> Result<Counters> {
    let row = store.pool.plain(|q| {
        q.query_opt(
            "SELECT received, non_matches, opened, invalid FROM account_counter WHERE account = $1",
            &[&account],
        )
    })?;
    match row {
        None => Ok(Counters::default()),
        Some(r) => Ok(Counters {
            received: to_u64(get(&r, 0)?)?,
            non_matches: to_u64(get(&r, 1)?)?,
            opened: to_u64(get(&r, 2)?)?,
            invalid: to_u64(get(&r, 3)?)?,
        }),
    }
}

/// Opened vouchers of the account under the order: of one client state, or of all (`None`), in the order they
/// were stored.
pub(super) fn opened_vouchers(
    store: &PostgresStore,
    account: &str,
    client_state: Option<ClientStateId>,
    order_id: [u8; 16],
) -> Result<Vec<OpenedVoucher>> {
    let rows = store.pool.plain(|q| match &client_state {
        Some(cs) => q.query(
            "SELECT voucher_id, payload FROM opened_voucher
             WHERE account = $1 AND order_id = $2 AND client_state = $3 ORDER BY seq",
            &[&account, &&order_id[..], &&cs[..]],
        ),
        None => q.query(
            "SELECT voucher_id, payload FROM opened_voucher WHERE account = $1 AND order_id = $2 ORDER BY seq",
            &[&account, &&order_id[..]],
        ),
    })?;
    rows.iter()
        .map(|r: &Row| Ok(OpenedVoucher { order_id, voucher_id: id16(get(r, 0)?)?, payload: get(r, 1)? }))
        .collect()
}

pub(super) fn state_opened_count(
    store: &PostgresStore,
    account: &str,
    client_state: ClientStateId,
    order_id: [u8; 16],
) -> Result<u64> {
    let row = store.pool.plain(|q| {
        q.query_one(
            "SELECT COUNT(*) FROM opened_voucher WHERE account = $1 AND order_id = $2 AND client_state = $3",
            &[&account, &&order_id[..], &&client_state[..]],
        )
    })?;
    to_u64(get(&row, 0)?)
}

pub(super) fn account_state(
    store: &PostgresStore,
    account: &str,
    client_state: ClientStateId,
    order_id: [u8; 16],
) -> Result<Option<Zeroizing<Vec<u8>>>> {
    let row = store.pool.plain(|q| {
        q.query_opt(
            "SELECT state FROM account_state WHERE account = $1 AND order_id = $2 AND client_state = $3",
            &[&account, &&order_id[..], &&client_state[..]],
        )
    })?;
    match row {
        None => Ok(None),
        Some(r) => Ok(Some(Zeroizing::new(get::<Vec<u8>>(&r, 0)?))),
    }
}

pub(super) fn set_account_state(
    store: &PostgresStore,
    account: &str,
    client_state: ClientStateId,
    order_id: [u8; 16],
    state: &[u8],
) -> Result<()> {
    check_id(account, "account must be 1..=512 bytes")?;
    // One statement: atomic on its own.
    store.pool.plain(|q| {
        q.execute(
            "INSERT INTO account_state (account, order_id, client_state, state) VALUES ($1, $2, $3, $4)
             ON CONFLICT (account, order_id, client_state) DO UPDATE SET state = EXCLUDED.state",
            &[&account, &&order_id[..], &&client_state[..], &state],
        )
    })?;
    Ok(())
}

fn failure_row(r: &Row) -> Result<ThresholdFailure> {
    Ok(ThresholdFailure { shares: to_u64(get(r, 0)?)?, failures: to_u64(get(r, 1)?)?, last_at: get(r, 2)? })
}

pub(super) fn threshold_failure(
    store: &PostgresStore,
    account: &str,
    client_state: ClientStateId,
    order_id: [u8; 16],
) -> Result<Option<ThresholdFailure>> {
    let row = store.pool.plain(|q| {
        q.query_opt(
            "SELECT shares, failures, last_at FROM threshold_failure
             WHERE account = $1 AND order_id = $2 AND client_state = $3",
            &[&account, &&order_id[..], &&client_state[..]],
        )
    })?;
    row.as_ref().map(failure_row).transpose()
}

pub(super) fn record_threshold_failure(
    store: &PostgresStore,
    account: &str,
    client_state: ClientStateId,
    order_id: [u8; 16],
    shares: u64,
    at: i64,
) -> Result<ThresholdFailure> {
    check_id(account, "account must be 1..=512 bytes")?;
    let shares = to_i64(shares)?;
    // One statement (atomic on its own; a concurrent failure of the same state waits for the row and adds to it),
    // returning the row it leaves.
    let row = store.pool.plain(|q| {
        q.query_opt(
            "INSERT INTO threshold_failure (account, order_id, client_state, shares, failures, last_at)
             VALUES ($1, $2, $3, $4, 1, $5)
             ON CONFLICT (account, order_id, client_state) DO UPDATE SET
                 shares = EXCLUDED.shares, failures = threshold_failure.failures + 1, last_at = EXCLUDED.last_at
             RETURNING shares, failures, last_at",
            &[&account, &&order_id[..], &&client_state[..], &shares, &at],
        )
    })?;
    failure_row(&row.ok_or(StoreError::Corrupt("threshold failure row"))?)
}
