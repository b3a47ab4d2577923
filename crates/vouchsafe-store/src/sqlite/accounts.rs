//! Per-account data of the SQLite store: counters, opened vouchers and
//! threshold state.

use rusqlite::{Connection, OptionalExtension, params};
use zeroize::Zeroizing;

use super::SqliteStore;
use super::convert::{collect, id16, to_u64};
use crate::Result;
use crate::types::*;
use crate::validate::check_id;

pub(super) fn opened_voucher_ids(conn: &Connection, account: &str, order_id: [u8; 16]) -> Result<Vec<[u8; 16]>> {
    let mut stmt = conn.prepare_cached("SELECT voucher_id FROM opened_voucher WHERE account = ?1 AND order_id = ?2")?;
    let rows = stmt.query_map(params![account, &order_id[..]], |r| {
        let id: Vec<u8> = r.get(0)?;
        Ok(id16(&id))
    })?;
    collect(rows)
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

pub(super) fn opened_vouchers(conn: &Connection, account: &str, order_id: [u8; 16]) -> Result<Vec<OpenedVoucher>> {
    let mut stmt = conn.prepare(
        "SELECT voucher_id, payload FROM opened_voucher
         WHERE account = ?1 AND order_id = ?2 ORDER BY seq",
    )?;
    let rows = stmt.query_map(params![account, &order_id[..]], |r| {
        let id: Vec<u8> = r.get(0)?;
        let payload: Vec<u8> = r.get(1)?;
        Ok(id16(&id).map(|voucher_id| OpenedVoucher { order_id, voucher_id, payload }))
    })?;
    collect(rows)
}

pub(super) fn account_state(
    conn: &Connection,
    account: &str,
    order_id: [u8; 16],
) -> Result<Option<Zeroizing<Vec<u8>>>> {
    let state: Option<Vec<u8>> = conn
        .query_row(
            "SELECT state FROM account_state WHERE account = ?1 AND order_id = ?2",
            params![account, &order_id[..]],
            |r| r.get(0),
        )
        .optional()?;
    Ok(state.map(Zeroizing::new))
}

pub(super) fn set_account_state(store: &SqliteStore, account: &str, order_id: [u8; 16], state: &[u8]) -> Result<()> {
    check_id(account, "account must be 1..=512 bytes")?;
    store.write(|tx| {
        tx.execute(
            "INSERT INTO account_state (account, order_id, state) VALUES (?1, ?2, ?3)
             ON CONFLICT (account, order_id) DO UPDATE SET state = excluded.state",
            params![account, &order_id[..], state],
        )?;
        Ok(())
    })
}
