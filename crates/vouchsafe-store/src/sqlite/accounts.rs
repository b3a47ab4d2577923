//! Per-account data of the SQLite store: counters, opened vouchers and
//! threshold state.

use rusqlite::{Connection, OptionalExtension, params};
use zeroize::Zeroizing;

use super::SqliteStore;
use super::convert::{collect, id16, to_i64, to_u64};
use crate::types::*;
use crate::validate::check_id;
use crate::{Result, StoreError};

pub(super) fn opened_voucher_ids(
    conn: &Connection,
    account: &str,
    client_state: ClientStateId,
    order_id: [u8; 16],
) -> Result<Vec<[u8; 16]>> {
    let mut stmt = conn.prepare_cached(
        "SELECT voucher_id FROM opened_voucher WHERE account = ?1 AND order_id = ?2 AND client_state = ?3",
    )?;
    let rows = stmt.query_map(params![account, &order_id[..], &client_state[..]], |r| {
        let id: Vec<u8> = r.get(0)?;
        Ok(id16(&id))
    })?;
    collect(rows)
}

pub(super) fn state_opened_count(
    conn: &Connection,
    account: &str,
    client_state: ClientStateId,
    order_id: [u8; 16],
) -> Result<u64> {
    let n: i64 = conn
        .prepare_cached(
            "SELECT COUNT(*) FROM opened_voucher WHERE account = ?1 AND order_id = ?2 AND client_state = ?3",
        )?
        .query_row(params![account, &order_id[..], &client_state[..]], |r| r.get(0))?;
    to_u64(n)
}

pub(super) fn counters(conn: &Connection, account: &str) -> Result<Counters> {
    let row: Option<(i64, i64, i64, i64)> = conn
        .query_row(
            "SELECT received, non_matches, opened, invalid FROM account_counter WHERE account = ?1",
            params![account],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?;
    match row {
        None => Ok(Counters::default()),
        Some((received, non_matches, opened, invalid)) => Ok(Counters {
            received: to_u64(received)?,
            non_matches: to_u64(non_matches)?,
            opened: to_u64(opened)?,
            invalid: to_u64(invalid)?,
        }),
    }
}

/// Opened vouchers of the account under the order: of one client state, or of all (`None`).
pub(super) fn opened_vouchers(
    conn: &Connection,
    account: &str,
    client_state: Option<ClientStateId>,
    order_id: [u8; 16],
) -> Result<Vec<OpenedVoucher>> {
    let map = |r: &rusqlite::Row<'_>| {
        let id: Vec<u8> = r.get(0)?;
        let payload: Vec<u8> = r.get(1)?;
        Ok(id16(&id).map(|voucher_id| OpenedVoucher { order_id, voucher_id, payload }))
    };
    match client_state {
        Some(cs) => {
            let mut stmt = conn.prepare_cached(
                "SELECT voucher_id, payload FROM opened_voucher
                 WHERE account = ?1 AND order_id = ?2 AND client_state = ?3 ORDER BY seq",
            )?;
            collect(stmt.query_map(params![account, &order_id[..], &cs[..]], map)?)
        }
        None => {
            let mut stmt = conn.prepare_cached(
                "SELECT voucher_id, payload FROM opened_voucher
                 WHERE account = ?1 AND order_id = ?2 ORDER BY seq",
            )?;
            collect(stmt.query_map(params![account, &order_id[..]], map)?)
        }
    }
}

pub(super) fn account_state(
    conn: &Connection,
    account: &str,
    client_state: ClientStateId,
    order_id: [u8; 16],
) -> Result<Option<Zeroizing<Vec<u8>>>> {
    let state: Option<Vec<u8>> = conn
        .prepare_cached("SELECT state FROM account_state WHERE account = ?1 AND order_id = ?2 AND client_state = ?3")?
        .query_row(params![account, &order_id[..], &client_state[..]], |r| r.get(0))
        .optional()?;
    Ok(state.map(Zeroizing::new))
}

pub(super) fn set_account_state(
    store: &SqliteStore,
    account: &str,
    client_state: ClientStateId,
    order_id: [u8; 16],
    state: &[u8],
) -> Result<()> {
    check_id(account, "account must be 1..=512 bytes")?;
    store.write(|tx| {
        tx.execute(
            "INSERT INTO account_state (account, order_id, client_state, state) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (account, order_id, client_state) DO UPDATE SET state = excluded.state",
            params![account, &order_id[..], &client_state[..], state],
        )?;
        Ok(())
    })
}

pub(super) fn threshold_failure(
    conn: &Connection,
    account: &str,
    client_state: ClientStateId,
    order_id: [u8; 16],
) -> Result<Option<ThresholdFailure>> {
    let row: Option<(i64, i64, i64)> = conn
        .prepare_cached(
            "SELECT shares, failures, last_at FROM threshold_failure
             WHERE account = ?1 AND order_id = ?2 AND client_state = ?3",
        )?
        .query_row(params![account, &order_id[..], &client_state[..]], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    row.map(|(shares, failures, last_at)| {
        Ok(ThresholdFailure { shares: to_u64(shares)?, failures: to_u64(failures)?, last_at })
    })
    .transpose()
}

pub(super) fn record_threshold_failure(
    store: &SqliteStore,
    account: &str,
    client_state: ClientStateId,
    order_id: [u8; 16],
    shares: u64,
    at: i64,
) -> Result<ThresholdFailure> {
    check_id(account, "account must be 1..=512 bytes")?;
    store.write(|tx| {
        tx.execute(
            "INSERT INTO threshold_failure (account, order_id, client_state, shares, failures, last_at)
             VALUES (?1, ?2, ?3, ?4, 1, ?5)
             ON CONFLICT (account, order_id, client_state) DO UPDATE SET
                 shares = excluded.shares, failures = failures + 1, last_at = excluded.last_at",
            params![account, &order_id[..], &client_state[..], to_i64(shares)?, at],
        )?;
        threshold_failure(tx, account, client_state, order_id)?.ok_or(StoreError::Corrupt("threshold failure row"))
    })
}
