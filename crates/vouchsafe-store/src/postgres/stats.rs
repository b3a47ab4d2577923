//! Global totals and per-order statistics of the PostgreSQL store, for the
//! transparency report. Each is read in one snapshot (a `REPEATABLE READ`
//! transaction), as the SQLite store reads them in one transaction.

use super::PostgresStore;
use super::conn::get;
use crate::convert::{SECONDS_PER_DAY, to_u64};
use crate::types::*;
use crate::{Result, StoreError};

/// The global totals, one column each (aggregates without `GROUP BY`: one
/// row each, so their cross join is one row).
const TOTALS: &str = "SELECT ac.n, ac.received, ac.non_matches, ac.opened, ac.invalid,
        ib.n, ib.bytes, cs.n, tf.n, tf.failures
 FROM (SELECT COUNT(*) AS n, COALESCE(SUM(received), 0)::BIGINT AS received,
              COALESCE(SUM(non_matches), 0)::BIGINT AS non_matches, COALESCE(SUM(opened), 0)::BIGINT AS opened,
              COALESCE(SUM(invalid), 0)::BIGINT AS invalid
       FROM account_counter) ac,
      (SELECT COUNT(*) AS n, COALESCE(SUM(bytes), 0)::BIGINT AS bytes
       FROM inbox_batch WHERE processed_at IS NULL) ib,
      (SELECT COUNT(*) AS n FROM client_state) cs,
      (SELECT COUNT(*) AS n, COALESCE(SUM(failures), 0)::BIGINT AS failures FROM threshold_failure) tf";

/// Column `idx` of `row`, a count.
fn count_at(row: &tokio_postgres::Row, idx: usize) -> Result<u64> {
    to_u64(get::<i64>(row, idx)?)
}

pub(super) fn stats(store: &PostgresStore) -> Result<GlobalStats> {
    store.pool.read(|q| {
        let r = q.query_one(TOTALS, &[])?;
        let mut stats = GlobalStats {
            accounts: count_at(&r, 0)?,
            vouchers_received: count_at(&r, 1)?,
            non_matches: count_at(&r, 2)?,
            opened: count_at(&r, 3)?,
            invalid: count_at(&r, 4)?,
            batches_pending: count_at(&r, 5)?,
            bytes_pending: count_at(&r, 6)?,
            client_states: count_at(&r, 7)?,
            states_failed: count_at(&r, 8)?,
            threshold_failures: count_at(&r, 9)?,
            ..GlobalStats::default()
        };
        for row in q.query("SELECT status, COUNT(*) FROM case_file GROUP BY status", &[])? {
            let status: String = get(&row, 0)?;
            let n = count_at(&row, 1)?;
            match CaseStatus::parse(&status) {
                Some(CaseStatus::Open) => stats.cases_open = n,
                Some(CaseStatus::Confirmed) => stats.cases_confirmed = n,
                Some(CaseStatus::Rejected) => stats.cases_rejected = n,
                Some(_) => {}
                None => return Err(StoreError::Corrupt("case status")),
            }
        }
        Ok(stats)
    })
}

/// The first day whose start is at or after `t`.
fn first_day_from(t: i64) -> i64 {
    let day = t.div_euclid(SECONDS_PER_DAY);
    if t.rem_euclid(SECONDS_PER_DAY) == 0 { day } else { day + 1 }
}

/// `col` in `[$2, $3)` (a time), either bound NULL for none.
macro_rules! period {
    ($col:literal) => {
        concat!("($2::BIGINT IS NULL OR ", $col, " >= $2) AND ($3::BIGINT IS NULL OR ", $col, " < $3)")
    };
}

/// `col` in `[$4, $5)` (a day), either bound NULL for none.
macro_rules! day_period {
    ($col:literal) => {
        concat!("($4::BIGINT IS NULL OR ", $col, " >= $4) AND ($5::BIGINT IS NULL OR ", $col, " < $5)")
    };
}

/// Every count of [`OrderStats`] but the decisions, in one row: `$1` the
/// order, `$2`/`$3` the period's times, `$4`/`$5` its days. Each subquery is
/// one of the SQLite store's count queries (a `FILTER` for each of several
/// over the same rows), with the same conditions.
const ORDER_COUNTS: &str = concat!(
    "SELECT oc.received, oc.opened, oc.non_matching, oc.invalid, oad.accounts,
        cf.cases, cf.accounts, shd.n,
        ob.reports_queued, ob.reports_sent, ob.withdrawals_sent,
        cc.forwarded, cc.false_positive, nt.n,
        ap.filed, ap.upheld, ap.dismissed,
        pe.items, pe.vouchers, cc.closed
 FROM (SELECT COALESCE(SUM(vouchers_received), 0)::BIGINT AS received,
              COALESCE(SUM(vouchers_opened), 0)::BIGINT AS opened,
              COALESCE(SUM(vouchers_non_matching), 0)::BIGINT AS non_matching,
              COALESCE(SUM(vouchers_invalid), 0)::BIGINT AS invalid
       FROM order_counter WHERE order_id = $1 AND ",
    day_period!("day"),
    ") oc,
      (SELECT COUNT(DISTINCT account) AS accounts FROM order_account_day WHERE order_id = $1 AND ",
    day_period!("day"),
    ") oad,
      (SELECT COUNT(*) AS cases, COUNT(DISTINCT account) AS accounts FROM case_file WHERE order_id = $1 AND ",
    period!("created_at"),
    ") cf,
      (SELECT COUNT(*) AS n FROM second_hash_drop WHERE order_id = $1 AND ",
    period!("at"),
    ") shd,
      (SELECT COUNT(*) FILTER (WHERE x.kind = 'report' AND ",
    period!("x.created_at"),
    ") AS reports_queued,
              COUNT(*) FILTER (WHERE x.kind = 'report' AND ",
    period!("x.delivered_at"),
    ") AS reports_sent,
              COUNT(*) FILTER (WHERE x.kind = 'withdrawal' AND ",
    period!("x.delivered_at"),
    ") AS withdrawals_sent
       FROM outbox x JOIN case_file c ON c.id = x.case_id WHERE c.order_id = $1) ob,
      (SELECT COUNT(*) FILTER (WHERE centre_verdict = 'forwarded' AND ",
    period!("centre_at"),
    ") AS forwarded,
              COUNT(*) FILTER (WHERE centre_verdict = 'false-positive' AND ",
    period!("centre_at"),
    ") AS false_positive,
              COUNT(*) FILTER (WHERE ",
    period!("closed_at"),
    ") AS closed
       FROM case_file WHERE order_id = $1) cc,
      (SELECT COUNT(*) AS n FROM notice WHERE order_id = $1 AND ",
    period!("reported_at"),
    ") nt,
      (SELECT COUNT(*) FILTER (WHERE ",
    period!("a.filed_at"),
    ") AS filed,
              COUNT(*) FILTER (WHERE a.status = 'upheld' AND ",
    period!("a.decided_at"),
    ") AS upheld,
              COUNT(*) FILTER (WHERE a.status = 'dismissed' AND ",
    period!("a.decided_at"),
    ") AS dismissed
       FROM appeal a JOIN case_file c ON c.id = a.case_id WHERE c.order_id = $1) ap,
      (SELECT COALESCE(SUM(items), 0)::BIGINT AS items, COALESCE(SUM(vouchers), 0)::BIGINT AS vouchers
       FROM purge_event WHERE order_id = $1 AND ",
    period!("at"),
    ") pe"
);

/// The review decisions of an order in the period: `$1` the order, `$2`/`$3`
/// the period's times.
const DECISIONS: &str = concat!(
    "SELECT d.verdict, d.resulting_status, d.at - c.created_at
     FROM case_decision d JOIN case_file c ON c.id = d.case_id WHERE c.order_id = $1 AND ",
    period!("d.at")
);

pub(super) fn order_stats(
    store: &PostgresStore,
    order_id: [u8; 16],
    from: Option<i64>,
    to: Option<i64>,
) -> Result<OrderStats> {
    let o = &order_id[..];
    // Voucher counts and active accounts are per day: a day counts when its start is in the period.
    let (from_day, to_day) = (from.map(first_day_from), to.map(first_day_from));
    store.pool.read(|q| {
        let r = q.query_one(ORDER_COUNTS, &[&o, &from, &to, &from_day, &to_day])?;
        let mut st = OrderStats {
            vouchers_received: count_at(&r, 0)?,
            vouchers_opened: count_at(&r, 1)?,
            vouchers_non_matching: count_at(&r, 2)?,
            vouchers_invalid: count_at(&r, 3)?,
            accounts: count_at(&r, 4)?,
            cases: count_at(&r, 5)?,
            accounts_over_threshold: count_at(&r, 6)?,
            second_hash_dropped: count_at(&r, 7)?,
            reports_queued: count_at(&r, 8)?,
            reports_sent: count_at(&r, 9)?,
            withdrawals_sent: count_at(&r, 10)?,
            centre_forwarded: count_at(&r, 11)?,
            centre_false_positive: count_at(&r, 12)?,
            notices: count_at(&r, 13)?,
            appeals_filed: count_at(&r, 14)?,
            appeals_upheld: count_at(&r, 15)?,
            appeals_dismissed: count_at(&r, 16)?,
            purged_items: count_at(&r, 17)?,
            purged_vouchers: count_at(&r, 18)?,
            cases_closed: count_at(&r, 19)?,
            ..OrderStats::default()
        };
        for row in q.query(DECISIONS, &[&o, &from, &to])? {
            let verdict: String = get(&row, 0)?;
            let resulting: String = get(&row, 1)?;
            let seconds: i64 = get(&row, 2)?;
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
        st.decision_seconds.sort_unstable();
        Ok(st)
    })
}
