//! # vouchsafe-render
//!
//! Renders the provider's transparency report (signed, from the transparency log) or its unsigned statistics (a
//! draft, from the review API) for people: [`to_json`] (stable, for tools), [`to_markdown`] (tables, for a
//! repository or a mail) and [`to_html`] (one self-contained page: inline CSS, hand-written inline SVG charts, no
//! JavaScript, a Content-Security-Policy that forbids any script even if one were injected).
//!
//! Pure: no I/O, no clock, no dependencies. The caller decodes (and, where it can, verifies) the report and builds
//! a [`ReportView`]; what the view holds is what is shown, nothing is looked up.
//!
//! A view holds totals only — counters over the order and period and the list of decision times — never an
//! account, case or voucher id (docs/GOVERNANCE.md §11). A view without a [`SignatureView`] is an unsigned draft
//! and every format says so first.
//!
//! Counters are shown in the canonical order of [`COUNTERS`]; a canonical counter the report does not carry is
//! shown as "not reported" (JSON `null`), never as 0; a name not in [`COUNTERS`] is shown after them as an "other"
//! counter. [`check`] refuses what no signed report can hold (a name twice, a malformed name, a reversed period);
//! the renderers themselves accept any view and never panic.

mod counters;
mod html;
mod json;
mod markdown;
mod text;

pub use counters::{COUNTERS, CounterRow, describe, rows};
pub use html::to_html;
pub use json::{JSON_FORMAT, to_json};
pub use markdown::to_markdown;
pub use text::{duration, group_digits, utc};

use std::fmt;

/// What a rendered report shows. Totals only: no account, case or voucher ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportView {
    /// The page's title (shown escaped).
    pub title: String,
    /// The provider that signed the report (empty when the source does not say, e.g. unsigned statistics).
    pub provider: String,
    /// Hex of the 16-byte order id.
    pub order_id: String,
    /// Start of the period, Unix seconds (inclusive); `0` together with `to == 0`: the whole order.
    pub from: i64,
    /// End of the period, Unix seconds (exclusive); `0` together with `from == 0`: the whole order.
    pub to: i64,
    /// The counters `(name, value)`, in any order (they are shown in canonical order).
    pub counters: Vec<(String, u64)>,
    /// Seconds from a case's creation to its final review decision, one per decided case (no case id).
    pub decision_seconds: Vec<u64>,
    /// The provider's signature and log entry; `None`: an unsigned draft (said prominently).
    pub signature: Option<SignatureView>,
    /// When the report was made (signed reports: as signed), Unix seconds.
    pub created_at: i64,
}

/// How a report was signed and logged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignatureView {
    /// The id of the provider key that signed it (hex), or a statement of why there is none.
    pub key_id: String,
    /// The whole signed report (its canonical encoding), hex: what an auditor verifies.
    pub signed_report_hex: String,
    /// Its leaf index in the provider's transparency log.
    pub log_leaf_index: u64,
}

impl ReportView {
    /// Whether the period is the whole order (`from == 0 && to == 0`).
    pub fn whole_order(&self) -> bool {
        self.from == 0 && self.to == 0
    }

    /// The value of counter `name` (its first occurrence), `None` if the view does not carry it.
    pub fn counter(&self, name: &str) -> Option<u64> {
        counters::value(&self.counters, name)
    }
}

/// The decision-time summary every format shows: nearest-rank quantiles of [`ReportView::decision_seconds`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quantiles {
    /// How many decision times there are (decided cases).
    pub count: usize,
    /// The median: the smallest value with at least half of the values at or below it.
    pub p50: u64,
    /// The smallest value with at least 90 % of the values at or below it.
    pub p90: u64,
    /// The largest value.
    pub max: u64,
}

/// Nearest-rank quantiles (the `⌈p·n/100⌉`-th smallest value) of `samples`; `None` if there are none.
pub fn quantiles(samples: &[u64]) -> Option<Quantiles> {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    let n = sorted.len();
    let rank = |p: usize| -> Option<u64> {
        let r = p.saturating_mul(n).div_ceil(100).max(1);
        sorted.get(r - 1).copied()
    };
    Some(Quantiles { count: n, p50: rank(50)?, p90: rank(90)?, max: *sorted.last()? })
}

/// Why a view is not one a signed report could hold.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ViewError {
    /// A counter name appears more than once.
    DuplicateCounter(String),
    /// A counter name is empty, longer than 64 bytes or not of `[a-z0-9_]` (the name is not repeated: it may be
    /// anything).
    BadCounterName,
    /// The period ends before it starts.
    BadPeriod,
}

impl fmt::Display for ViewError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ViewError::DuplicateCounter(n) => write!(f, "counter {n} appears more than once"),
            ViewError::BadCounterName => f.write_str("a counter name is not 1..=64 bytes of [a-z0-9_]"),
            ViewError::BadPeriod => f.write_str("the period [from, to) ends before it starts"),
        }
    }
}

impl std::error::Error for ViewError {}

/// Checks what a signed report guarantees and an unsigned source may not: counter names of 1..=64 bytes of
/// `[a-z0-9_]`, each at most once; a period with `from <= to` (`0, 0` is the whole order).
pub fn check(v: &ReportView) -> Result<(), ViewError> {
    for (i, (name, _)) in v.counters.iter().enumerate() {
        let well_formed = !name.is_empty()
            && name.len() <= 64
            && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !well_formed {
            return Err(ViewError::BadCounterName);
        }
        if v.counters.iter().skip(i + 1).any(|(n, _)| n == name) {
            return Err(ViewError::DuplicateCounter(name.clone()));
        }
    }
    if v.from > v.to {
        return Err(ViewError::BadPeriod);
    }
    Ok(())
}

/// The sections the canonical counters are grouped in (Markdown and HTML tables), in canonical order.
pub(crate) const GROUPS: &[(&str, &[&str])] = &[
    (
        "Vouchers and accounts",
        &["vouchers_received", "vouchers_non_matching", "vouchers_invalid", "vouchers_opened", "accounts"],
    ),
    ("Threshold and cases", &["accounts_over_threshold", "cases", "second_hash_dropped"]),
    ("Human review", &["reviews_confirmed", "reviews_rejected", "cases_confirmed", "cases_rejected"]),
    ("Reports and the Centre", &["reports_queued", "reports_sent", "centre_forwarded", "centre_false_positive"]),
    (
        "Users: notices and appeals",
        &["notices", "appeals_filed", "appeals_upheld", "appeals_dismissed", "withdrawals_sent"],
    ),
    ("Closing and retention", &["cases_closed", "purged_items", "purged_vouchers"]),
];

/// The funnel chart's counters, in order, with their labels.
pub(crate) const FUNNEL: &[(&str, &str)] = &[
    ("vouchers_received", "vouchers received"),
    ("vouchers_opened", "opened"),
    ("accounts_over_threshold", "accounts over threshold"),
    ("cases", "cases"),
    ("cases_confirmed", "confirmed"),
    ("reports_sent", "reports sent"),
    ("centre_forwarded", "forwarded by the Centre"),
];

/// The review-outcome chart's counters.
pub(crate) const OUTCOMES: &[(&str, &str)] = &[
    ("reviews_confirmed", "review: confirm"),
    ("reviews_rejected", "review: reject"),
    ("cases_confirmed", "cases confirmed"),
    ("cases_rejected", "cases rejected"),
    ("centre_forwarded", "Centre: forwarded"),
    ("centre_false_positive", "Centre: false positive"),
];

/// The appeals chart's counters.
pub(crate) const APPEALS: &[(&str, &str)] =
    &[("appeals_filed", "filed"), ("appeals_upheld", "upheld"), ("appeals_dismissed", "dismissed")];

/// The decision-time histogram's bins: `(label, upper bound in seconds, exclusive)`; the last is open-ended.
pub(crate) const TIME_BINS: &[(&str, u64)] = &[
    ("< 1 h", 3_600),
    ("1–6 h", 6 * 3_600),
    ("6–24 h", 86_400),
    ("1–3 d", 3 * 86_400),
    ("3–7 d", 7 * 86_400),
    ("7–30 d", 30 * 86_400),
    ("≥ 30 d", u64::MAX),
];

/// How many of `samples` fall in each of [`TIME_BINS`].
pub(crate) fn histogram(samples: &[u64]) -> Vec<(&'static str, u64)> {
    let mut counts: Vec<(&'static str, u64)> = TIME_BINS.iter().map(|(l, _)| (*l, 0)).collect();
    for s in samples {
        let bin = TIME_BINS.iter().position(|(_, upper)| s < upper).unwrap_or(TIME_BINS.len() - 1);
        if let Some((_, c)) = counts.get_mut(bin) {
            *c = c.saturating_add(1);
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view() -> ReportView {
        ReportView {
            title: "t".into(),
            provider: "p".into(),
            order_id: "00".repeat(16),
            from: 0,
            to: 0,
            counters: vec![("cases".into(), 1)],
            decision_seconds: vec![],
            signature: None,
            created_at: 0,
        }
    }

    #[test]
    fn quantiles_are_nearest_rank() {
        assert_eq!(quantiles(&[]), None);
        assert_eq!(quantiles(&[7]), Some(Quantiles { count: 1, p50: 7, p90: 7, max: 7 }));
        assert_eq!(quantiles(&[4, 1, 3, 2]), Some(Quantiles { count: 4, p50: 2, p90: 4, max: 4 }));
        let hundred: Vec<u64> = (1..=100).rev().collect();
        assert_eq!(quantiles(&hundred), Some(Quantiles { count: 100, p50: 50, p90: 90, max: 100 }));
        let ten: Vec<u64> = (1..=10).collect();
        assert_eq!(quantiles(&ten).map(|q| (q.p50, q.p90)), Some((5, 9)));
        assert_eq!(quantiles(&[u64::MAX, 0]).map(|q| (q.p50, q.max)), Some((0, u64::MAX)));
    }

    #[test]
    fn check_refuses_what_no_signed_report_holds() {
        assert_eq!(check(&view()), Ok(()));
        let mut v = view();
        v.counters.push(("cases".into(), 2));
        assert_eq!(check(&v), Err(ViewError::DuplicateCounter("cases".into())));
        for bad in ["", "Cases", "a-b", "<script>", &"a".repeat(65)] {
            let mut v = view();
            v.counters.push((bad.to_owned(), 1));
            assert_eq!(check(&v), Err(ViewError::BadCounterName), "{bad:?}");
        }
        let mut v = view();
        (v.from, v.to) = (10, 5);
        assert_eq!(check(&v), Err(ViewError::BadPeriod));
        (v.from, v.to) = (5, 5);
        assert_eq!(check(&v), Ok(()));
        (v.from, v.to) = (0, 5);
        assert_eq!(check(&v), Ok(()));
    }

    #[test]
    fn histogram_bins_on_their_bounds() {
        let h = histogram(&[0, 3_599, 3_600, 86_399, 86_400, 30 * 86_400, u64::MAX]);
        let counts: Vec<u64> = h.iter().map(|(_, c)| *c).collect();
        assert_eq!(counts, vec![2, 1, 1, 1, 0, 0, 2]);
        assert!(histogram(&[]).iter().all(|(_, c)| *c == 0));
    }

    #[test]
    fn groups_cover_every_canonical_counter_once() {
        let grouped: Vec<&str> = GROUPS.iter().flat_map(|(_, names)| names.iter().copied()).collect();
        let canonical: Vec<&str> = COUNTERS.iter().map(|(n, _)| *n).collect();
        assert_eq!(grouped, canonical);
        for (name, _) in FUNNEL.iter().chain(OUTCOMES).chain(APPEALS) {
            assert!(describe(name).is_some(), "{name}");
        }
    }
}
