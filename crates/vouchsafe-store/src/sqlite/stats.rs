//! Global totals and per-order statistics of the SQLite store, for the
//! transparency report.

use rusqlite::{Connection, Transaction, params};

use super::convert::to_u64;
use crate::convert::SECONDS_PER_DAY;
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
    let (pending, bytes_pending): (i64, i64) = tx.query_row(
        "SELECT COUNT(*), COALESCE(SUM(bytes), 0) FROM inbox_batch WHERE processed_at IS NULL",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let client_states: i64 = tx.query_row("SELECT COUNT(*) FROM client_state", [], |r| r.get(0))?;
    let (states_failed, failures): (i64, i64) =
        tx.query_row("SELECT COUNT(*), COALESCE(SUM(failures), 0) FROM threshold_failure", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    let mut stats = GlobalStats {
        accounts: to_u64(accounts)?,
        vouchers_received: to_u64(received)?,
        non_matches: to_u64(non_matches)?,
        opened: to_u64(opened)?,
        invalid: to_u64(invalid)?,
        batches_pending: to_u64(pending)?,
        bytes_pending: to_u64(bytes_pending)?,
        client_states: to_u64(client_states)?,
        states_failed: to_u64(states_failed)?,
        threshold_failures: to_u64(failures)?,
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

/// The first day whose start is at or after `t`.
fn first_day_from(t: i64) -> i64 {
    let day = t.div_euclid(SECONDS_PER_DAY);
    if t.rem_euclid(SECONDS_PER_DAY) == 0 { day } else { day + 1 }
}

/// A count query over one order and period, `?1` the order, `?2`/`?3` the
/// bounds (NULL: unbounded).
fn count(tx: &Transaction<'_>, sql: &str, order: &[u8], from: Option<i64>, to: Option<i64>) -> Result<u64> {
    let n: i64 = tx.query_row(sql, params![order, from, to], |r| r.get(0))?;
    to_u64(n)
}

/// `col` in `[?2, ?3)`, either bound NULL for none.
macro_rules! period {
    ($col:literal) => {
        concat!("(?2 IS NULL OR ", $col, " >= ?2) AND (?3 IS NULL OR ", $col, " < ?3)")
    };
}

pub(super) fn order_stats(
    conn: &mut Connection,
    order_id: [u8; 16],
    from: Option<i64>,
    to: Option<i64>,
) -> Result<OrderStats> {
    let tx = conn.transaction()?;
    let o = &order_id[..];
    let mut st = OrderStats::default();

    // Voucher counts and active accounts are per day: a day counts when its start is in the period.
    let (from_day, to_day) = (from.map(first_day_from), to.map(first_day_from));
    let (received, opened, non_matching, invalid): (i64, i64, i64, i64) = tx.query_row(
        concat!(
            "SELECT COALESCE(SUM(vouchers_received), 0), COALESCE(SUM(vouchers_opened), 0),
                    COALESCE(SUM(vouchers_non_matching), 0), COALESCE(SUM(vouchers_invalid), 0)
             FROM order_counter WHERE order_id = ?1 AND ",
            period!("day")
        ),
        params![o, from_day, to_day],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )?;
    st.vouchers_received = to_u64(received)?;
    st.vouchers_opened = to_u64(opened)?;
    st.vouchers_non_matching = to_u64(non_matching)?;
    st.vouchers_invalid = to_u64(invalid)?;
    st.accounts = count(
        &tx,
        concat!("SELECT COUNT(DISTINCT account) FROM order_account_day WHERE order_id = ?1 AND ", period!("day")),
        o,
        from_day,
        to_day,
    )?;

    let (cases, accounts): (i64, i64) = tx.query_row(
        concat!(
            "SELECT COUNT(*), COUNT(DISTINCT account) FROM case_file WHERE order_id = ?1 AND ",
            period!("created_at")
        ),
        params![o, from, to],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    st.cases = to_u64(cases)?;
    st.accounts_over_threshold = to_u64(accounts)?;
    st.second_hash_dropped = count(
        &tx,
        concat!("SELECT COUNT(*) FROM second_hash_drop WHERE order_id = ?1 AND ", period!("at")),
        o,
        from,
        to,
    )?;

    const DECISIONS: &str = concat!(
        "SELECT d.verdict, d.resulting_status, d.at - c.created_at
         FROM case_decision d JOIN case_file c ON c.id = d.case_id WHERE c.order_id = ?1 AND ",
        period!("d.at")
    );
    {
        let mut stmt = tx.prepare(DECISIONS)?;
        let mut rows = stmt.query(params![o, from, to])?;
        while let Some(r) = rows.next()? {
            let verdict: String = r.get(0)?;
            let resulting: String = r.get(1)?;
            let seconds: i64 = r.get(2)?;
            match verdict.as_str() {
                "confirm" => st.reviews_confirmed += 1,
                "reject" => st.reviews_rejected += 1,
                _ => return Err(StoreError::Corrupt("decision verdict")),
            }
            let final_decision = match CaseStatus::parse(&resulting) {
                Some(CaseStatus::Confirmed) => {
                    st.cases_confirmed += 1;
                    true
                }
                Some(CaseStatus::Rejected) => {
                    st.cases_rejected += 1;
                    true
                }
                Some(_) => false,
                None => return Err(StoreError::Corrupt("decision status")),
            };
            if final_decision {
                st.decision_seconds.push(u64::try_from(seconds).unwrap_or(0));
            }
        }
    }
    st.decision_seconds.sort_unstable();

    const OUTBOX: &str = "FROM outbox x JOIN case_file c ON c.id = x.case_id WHERE c.order_id = ?1";
    st.reports_queued = count(
        &tx,
        &format!("SELECT COUNT(*) {OUTBOX} AND x.kind = 'report' AND {}", period!("x.created_at")),
        o,
        from,
        to,
    )?;
    st.reports_sent = count(
        &tx,
        &format!("SELECT COUNT(*) {OUTBOX} AND x.kind = 'report' AND {}", period!("x.delivered_at")),
        o,
        from,
        to,
    )?;
    st.withdrawals_sent = count(
        &tx,
        &format!("SELECT COUNT(*) {OUTBOX} AND x.kind = 'withdrawal' AND {}", period!("x.delivered_at")),
        o,
        from,
        to,
    )?;
    st.centre_forwarded = count(
        &tx,
        concat!(
            "SELECT COUNT(*) FROM case_file WHERE order_id = ?1 AND centre_verdict = 'forwarded' AND ",
            period!("centre_at")
        ),
        o,
        from,
        to,
    )?;
    st.centre_false_positive = count(
        &tx,
        concat!(
            "SELECT COUNT(*) FROM case_file WHERE order_id = ?1 AND centre_verdict = 'false-positive' AND ",
            period!("centre_at")
        ),
        o,
        from,
        to,
    )?;
    st.notices = count(
        &tx,
        concat!("SELECT COUNT(*) FROM notice WHERE order_id = ?1 AND ", period!("reported_at")),
        o,
        from,
        to,
    )?;

    const APPEALS: &str = "FROM appeal a JOIN case_file c ON c.id = a.case_id WHERE c.order_id = ?1";
    st.appeals_filed = count(&tx, &format!("SELECT COUNT(*) {APPEALS} AND {}", period!("a.filed_at")), o, from, to)?;
    st.appeals_upheld = count(
        &tx,
        &format!("SELECT COUNT(*) {APPEALS} AND a.status = 'upheld' AND {}", period!("a.decided_at")),
        o,
        from,
        to,
    )?;
    st.appeals_dismissed = count(
        &tx,
        &format!("SELECT COUNT(*) {APPEALS} AND a.status = 'dismissed' AND {}", period!("a.decided_at")),
        o,
        from,
        to,
    )?;

    let (items, vouchers): (i64, i64) = tx.query_row(
        concat!(
            "SELECT COALESCE(SUM(items), 0), COALESCE(SUM(vouchers), 0) FROM purge_event WHERE order_id = ?1 AND ",
            period!("at")
        ),
        params![o, from, to],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    st.purged_items = to_u64(items)?;
    st.purged_vouchers = to_u64(vouchers)?;
    st.cases_closed = count(
        &tx,
        concat!("SELECT COUNT(*) FROM case_file WHERE order_id = ?1 AND ", period!("closed_at")),
        o,
        from,
        to,
    )?;
    Ok(st)
}
