//! The canonical counters of the statistics and the transparency report (docs/GOVERNANCE.md §11), and the one
//! function that puts a report's counters in the order every format shows them.

/// Every counter the provider's statistics carry, `(name, one-line description)`, in canonical order: the order of
/// the JSON object, the tables and the charts. A counter name not in this list is still shown, after these, as an
/// "other" counter (a newer server may count more than this renderer knows).
///
/// Every counter is a total over the order (and period): none identifies an account, a case or a voucher.
pub const COUNTERS: &[(&str, &str)] = &[
    (
        "vouchers_received",
        "Vouchers devices submitted under the order: real, synthetic and null alike (the server cannot tell them apart).",
    ),
    ("vouchers_non_matching", "Vouchers that did not open: no match with the table; nothing of them is kept."),
    ("vouchers_invalid", "Vouchers refused as malformed or not for the served order, epoch or table."),
    (
        "vouchers_opened",
        "Vouchers whose outer layer opened: a table match or a synthetic voucher (indistinguishable below the threshold).",
    ),
    ("accounts", "Distinct accounts that submitted vouchers."),
    (
        "accounts_over_threshold",
        "Distinct accounts whose real matches reached the order's threshold, so their matching vouchers could be decrypted.",
    ),
    ("cases", "Cases created for human review (one per account over the threshold)."),
    (
        "second_hash_dropped",
        "Items dropped before any person saw them: their secondary hash did not match the indicator's (a primary collision).",
    ),
    ("reviews_confirmed", "Review decisions that confirmed a case (a four-eyes case needs two)."),
    ("reviews_rejected", "Review decisions that rejected a case."),
    ("cases_confirmed", "Cases finally confirmed as known imagery: a provider-signed report was queued to the Centre."),
    (
        "cases_rejected",
        "Cases rejected by review: counted as false positives and sent to the Centre as indicator feedback.",
    ),
    ("reports_queued", "Signed reports queued for the Centre."),
    ("reports_sent", "Signed reports the Centre acknowledged with a signed receipt."),
    ("centre_forwarded", "Reports the Centre verified and forwarded to law enforcement as a signed export."),
    (
        "centre_false_positive",
        "Reports the Centre found to be a false positive of its indicator database (the indicator is removed).",
    ),
    ("notices", "Notices sent to users whose content was reported."),
    ("appeals_filed", "Appeals users filed against a notice."),
    (
        "appeals_upheld",
        "Appeals upheld: the report was withdrawn at the Centre and the action on the account reversed.",
    ),
    ("appeals_dismissed", "Appeals dismissed by a supervisor, with a reason shown to the user."),
    ("withdrawals_sent", "Signed withdrawals of a report sent to the Centre (after an upheld appeal)."),
    ("cases_closed", "Cases closed: rejected, or reported and past the appeal period or decision."),
    ("purged_items", "Case items whose visual derivative and associated data were deleted after the retention period."),
    ("purged_vouchers", "Opened vouchers deleted after the retention period."),
];

/// The description of a canonical counter, `None` for a name not in [`COUNTERS`].
pub fn describe(name: &str) -> Option<&'static str> {
    COUNTERS.iter().find(|(n, _)| *n == name).map(|(_, d)| *d)
}

/// One row of the counters as every format shows them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CounterRow<'a> {
    /// The counter's name.
    pub name: &'a str,
    /// Its description; `None` for an "other" counter (not in [`COUNTERS`]).
    pub description: Option<&'static str>,
    /// Its value; `None` for a canonical counter the report does not carry ("not reported": never shown as 0).
    pub value: Option<u64>,
}

impl CounterRow<'_> {
    /// Whether the counter is one of [`COUNTERS`].
    pub fn is_canonical(&self) -> bool {
        self.description.is_some()
    }
}

/// The counters of `counters` in display order: every canonical counter first, in canonical order (a missing one
/// with `value: None`), then every other name, sorted by name. A name given more than once counts with its first
/// value (a signed report cannot repeat a name; [`crate::check`] refuses it in anything else).
pub fn rows(counters: &[(String, u64)]) -> Vec<CounterRow<'_>> {
    let first = |name: &str| counters.iter().find(|(n, _)| n == name).map(|(_, v)| *v);
    let mut out: Vec<CounterRow<'_>> = COUNTERS
        .iter()
        .map(|(name, description)| CounterRow { name, description: Some(description), value: first(name) })
        .collect();
    let mut others: Vec<&str> = counters.iter().map(|(n, _)| n.as_str()).filter(|n| describe(n).is_none()).collect();
    others.sort_unstable();
    others.dedup();
    out.extend(others.into_iter().map(|name| CounterRow { name, description: None, value: first(name) }));
    out
}

/// The value of `name` in `counters` (its first occurrence).
pub fn value(counters: &[(String, u64)], name: &str) -> Option<u64> {
    counters.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_names_are_unique_and_well_formed() {
        for (i, (name, description)) in COUNTERS.iter().enumerate() {
            assert!(!name.is_empty() && name.len() <= 64, "{name}");
            assert!(name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'), "{name}");
            assert!(description.ends_with('.'), "{name}");
            assert!(!description.contains('\n'), "{name}");
            assert!(COUNTERS.iter().skip(i + 1).all(|(n, _)| n != name), "{name} twice");
        }
        assert_eq!(COUNTERS.len(), 24);
    }

    #[test]
    fn rows_put_canonical_first_then_others_sorted() {
        let c = vec![
            ("zeta_new".to_owned(), 1),
            ("cases".to_owned(), 7),
            ("alpha_new".to_owned(), 2),
            ("vouchers_received".to_owned(), 9),
            ("alpha_new".to_owned(), 3),
        ];
        let r = rows(&c);
        assert_eq!(r.len(), COUNTERS.len() + 2);
        assert_eq!(r.first().map(|x| (x.name, x.value)), Some(("vouchers_received", Some(9))));
        assert_eq!(r.iter().find(|x| x.name == "cases").and_then(|x| x.value), Some(7));
        assert_eq!(r.iter().find(|x| x.name == "accounts").map(|x| x.value), Some(None));
        let tail: Vec<_> = r.iter().skip(COUNTERS.len()).map(|x| (x.name, x.value, x.is_canonical())).collect();
        assert_eq!(tail, vec![("alpha_new", Some(2), false), ("zeta_new", Some(1), false)]);
    }
}
