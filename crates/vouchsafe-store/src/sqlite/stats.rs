//! Global totals of the SQLite store, for the transparency report.

use rusqlite::Connection;

use super::convert::to_u64;
use crate::types::*;
use crate::{Result, StoreError};

pub(super) fn stats(conn: &mut Connection) -> Result<GlobalStats> {
    let tx = conn.transaction()?;
    let (accounts, received, non_matches, opened, invalid): (i64, i64, i64, i64, i64) = tx.query_row(
        "SELECT COUNT(*), COALESCE(SUM(received), 0), COALESCE(SUM(non_matches), 0),
                    COALESCE(SUM(opened), 0), COALESCE(SUM(invalid), 0)
             FROM account_counter",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
    )?;
    let pending: i64 = tx.query_row("SELECT COUNT(*) FROM inbox_batch WHERE processed_at IS NULL", [], |r| r.get(0))?;
    let mut stats = GlobalStats {
        accounts: to_u64(accounts)?,
        vouchers_received: to_u64(received)?,
        non_matches: to_u64(non_matches)?,
        opened: to_u64(opened)?,
        invalid: to_u64(invalid)?,
        batches_pending: to_u64(pending)?,
        ..GlobalStats::default()
    };
    let mut stmt = tx.prepare("SELECT status, COUNT(*) FROM case_file GROUP BY status")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
    for row in rows {
        let (status, n) = row?;
        let n = to_u64(n)?;
        match CaseStatus::parse(&status) {
            Some(CaseStatus::Open) => stats.cases_open = n,
            Some(CaseStatus::Confirmed) => stats.cases_confirmed = n,
            Some(CaseStatus::Rejected) => stats.cases_rejected = n,
            Some(_) => {}
            None => return Err(StoreError::Corrupt("case status")),
        }
    }
    Ok(stats)
}
