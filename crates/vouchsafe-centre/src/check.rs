//! The checks of a report, sans-IO: [`check_report`] takes the report, the pinned keys, the time and an
//! [`Evidence`] (the Centre's releases, revocations and false-positive marks: files in the server, memory in
//! tests) and gives the [`CheckedReport`] with its verdict, or the refusal naming the first check that failed.

use vouchsafe_case::{Report, Verdict};
use vouchsafe_orders::{AuthorityKeyring, OrderError, VerifiedOrder, VerifiedRevocation};
use vouchsafe_phash::{AssociatedData, HashConfig, HashKind, PerceptualHash, secondary_from_derivative};
use vouchsafe_release::{CentreKey, ReleaseChain, VerifiedRelease};

use crate::error::{CentreError, Result};

/// How far in the future a report's `created_at` may lie (clock skew between provider and Centre), in seconds.
pub const MAX_CLOCK_SKEW: i64 = 300;

/// What the Centre knows besides the message: read anew for every report, so that a new release, revocation or
/// false-positive mark applies at once. An error here is the Centre's problem (INTERNAL), not the provider's.
pub trait Evidence {
    /// The Centre's releases of `line`, verified under its own key, in order from number 1 (empty if none).
    fn releases(&self, line: &str) -> Result<Vec<VerifiedRelease>>;
    /// The verified revocations (of any order) the Centre holds.
    fn revocations(&self, authorities: &AuthorityKeyring) -> Result<Vec<VerifiedRevocation>>;
    /// Whether the indicator database marks this primary (canonical bytes) a false positive.
    fn is_false_positive(&self, primary: &[u8]) -> Result<bool>;
}

/// The pinned keys and the time a report is checked with.
#[derive(Clone, Copy, Debug)]
pub struct ReportContext<'a> {
    /// Now, Unix seconds.
    pub now: i64,
    /// The order service ids the sending provider may report under.
    pub services: &'a [String],
    /// The pinned authority keys.
    pub authorities: &'a AuthorityKeyring,
    /// The Centre's own release key.
    pub centre: &'a CentreKey,
}

/// One item that passed every check.
#[derive(Clone, Debug)]
pub struct CheckedItem {
    /// The decoded associated data (derivative, hashes, attachment reference, time).
    pub ad: AssociatedData,
    /// The primary hash, canonical bytes (the indicator).
    pub primary: Vec<u8>,
    /// Hamming distance of the item's secondary hash to the indicator's.
    pub distance: u32,
}

/// The Centre's verdict on a report that passed every check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReportVerdict {
    /// Forward to law enforcement.
    Forward,
    /// A manifest false positive: not forwarded. The reason names the indicator (first 8 hex digits of its hash)
    /// and why.
    FalsePositive {
        /// Why.
        reason: String,
    },
}

/// A report that passed every check.
#[derive(Clone, Debug)]
pub struct CheckedReport {
    /// The order it was made under, verified.
    pub order: VerifiedOrder,
    /// The release line of the order.
    pub release_line: String,
    /// The items, in the report's order.
    pub items: Vec<CheckedItem>,
    /// The verdict.
    pub verdict: ReportVerdict,
}

/// The short name of an indicator in reasons: the first 8 hex digits of its hash bytes (after the 3-byte
/// canonical header of version and hash configuration, which every indicator of a line shares).
pub fn indicator_name(primary: &[u8]) -> String {
    let hash = primary.get(3..).filter(|h| !h.is_empty()).unwrap_or(primary);
    hex::encode(hash.get(..4).unwrap_or(hash))
}

fn refuse(reason: impl Into<String>) -> CentreError {
    CentreError::refused(reason)
}

fn inactive(e: &OrderError, when: &str) -> CentreError {
    match e {
        OrderError::Revoked { .. } => refuse("the order was revoked"),
        OrderError::Expired { not_after, .. } => {
            refuse(format!("the order expired: valid until {not_after}, before the report's {when}"))
        }
        OrderError::NotYetValid { not_before, .. } => {
            refuse(format!("the order was not yet valid at the report's {when}: valid from {not_before}"))
        }
        other => refuse(format!("the order is not active at the report's {when}: {other}")),
    }
}

fn check_order(report: &Report, ctx: &ReportContext<'_>, revocations: &[VerifiedRevocation]) -> Result<VerifiedOrder> {
    let order = ctx
        .authorities
        .verify_order_bytes(&report.signed_order)
        .map_err(|e| refuse(format!("the order does not verify under the pinned authority keys: {e}")))?;
    if order.signed().hash() != report.order_hash {
        return Err(refuse("the order's hash is not the report's order_hash"));
    }
    if *order.order_id() != report.order_id {
        return Err(refuse("the order's id is not the report's order_id"));
    }
    if !ctx.services.iter().any(|s| s == order.service_id()) {
        return Err(refuse("the order's service is not one this provider may report under"));
    }
    if order.centre_key().to_bytes() != ctx.centre.to_bytes() {
        return Err(refuse("the order names another Centre key"));
    }
    order.check_active(report.threshold_at, revocations).map_err(|e| inactive(&e, "threshold time"))?;
    order.check_active(report.created_at, revocations).map_err(|e| inactive(&e, "creation time"))?;
    if report.created_at < report.threshold_at {
        return Err(refuse("the report was created before its threshold was crossed"));
    }
    if report.created_at > ctx.now.saturating_add(MAX_CLOCK_SKEW) {
        return Err(refuse("the report's creation time is in the future"));
    }
    Ok(order)
}

/// The chain as of `number` and the releases after it.
fn chain_at<'r>(
    releases: &'r [VerifiedRelease],
    centre: &CentreKey,
    number: u64,
    hash: &[u8; 32],
) -> Result<(ReleaseChain, &'r [VerifiedRelease])> {
    let not_held = || refuse(format!("the Centre has no release {number} of the order's line"));
    let n = usize::try_from(number).ok().filter(|n| *n >= 1 && *n <= releases.len()).ok_or_else(not_held)?;
    let (upto, later) = releases.split_at(n);
    let mut chain: Option<ReleaseChain> = None;
    for r in upto {
        if r.key_id() != centre.key_id() {
            return Err(CentreError::evidence("releases", "a release is not signed by the Centre key"));
        }
        match chain.as_mut() {
            None => chain = Some(ReleaseChain::new(r).map_err(|e| CentreError::evidence("releases", e))?),
            Some(c) => c.apply(r).map_err(|e| CentreError::evidence("releases", e))?,
        }
    }
    let chain = chain.ok_or_else(not_held)?;
    if chain.head() != *hash {
        return Err(refuse(format!("release {number} of the order's line has another hash than the report's")));
    }
    Ok((chain, later))
}

fn check_item(index: usize, ad: &[u8], cfg: &HashConfig, chain: &ReleaseChain) -> Result<CheckedItem> {
    let ad = AssociatedData::decode(ad).ok().filter(|a| a.config().id() == cfg.id()).ok_or_else(|| {
        refuse(format!("item {index}: the associated data does not decode under the order's hash configuration"))
    })?;
    let recomputed = secondary_from_derivative(cfg, ad.derivative())
        .map_err(|_| refuse(format!("item {index}: the secondary hash cannot be computed from the derivative")))?;
    if recomputed != *ad.secondary() {
        return Err(refuse(format!("item {index}: the secondary hash is not the one of its derivative")));
    }
    let primary = ad.primary().to_canonical_bytes();
    let Some(indicator_secondary) = chain.secondary(&primary) else {
        return Err(refuse(format!(
            "item {index}: the primary hash is not an indicator of release {} of the order's line",
            chain.number()
        )));
    };
    let indicator_secondary =
        PerceptualHash::from_canonical_bytes(HashKind::Secondary, indicator_secondary).map_err(|_| {
            refuse(format!("item {index}: the indicator's secondary hash is not of the order's hash configuration"))
        })?;
    let distance = ad.secondary_distance(&indicator_secondary).map_err(|_| {
        refuse(format!("item {index}: the indicator's secondary hash is not of the order's hash configuration"))
    })?;
    if distance > cfg.secondary_max_distance() {
        return Err(refuse(format!("item {index}: the secondary hash does not confirm the indicator's")));
    }
    Ok(CheckedItem { ad, primary, distance })
}

fn check_decisions(report: &Report) -> Result<()> {
    if report.decisions.iter().any(|d| d.verdict == Verdict::Reject) {
        return Err(refuse("a review decision rejects the case"));
    }
    let mut confirmers: Vec<&str> = report
        .decisions
        .iter()
        .filter(|d| d.verdict == Verdict::Confirm && d.reason == vouchsafe_case::ReasonCode::KnownImage)
        .map(|d| d.reviewer.as_str())
        .collect();
    if confirmers.is_empty() {
        return Err(refuse("no review decision confirms the case as a known image"));
    }
    confirmers.sort_unstable();
    confirmers.dedup();
    if report.four_eyes && confirmers.len() < 2 {
        return Err(refuse("the case needs four eyes: two confirmations by distinct reviewers"));
    }
    Ok(())
}

/// Every check of a report, in the documented order (order, release, each item, decisions), then the verdict:
/// a manifest false positive if any item's indicator is marked a false positive in the indicator database or was
/// removed in a release after the report's; else forward. A refusal is [`CentreError::Refused`] naming the check
/// (and the item's index); an [`Evidence`] failure is passed on as it is.
pub fn check_report(report: &Report, ctx: &ReportContext<'_>, evidence: &dyn Evidence) -> Result<CheckedReport> {
    let revocations = evidence.revocations(ctx.authorities)?;
    let order = check_order(report, ctx, &revocations)?;
    let cfg = HashConfig::from_id(order.hash_config())
        .map_err(|_| refuse("the order's hash configuration is not one the Centre knows"))?;
    let line = order.release_line().to_owned();
    let releases = evidence.releases(&line)?;
    let (chain, later) = chain_at(&releases, ctx.centre, report.release_number, &report.release_hash)?;
    if chain.hash_config() != cfg.id() {
        return Err(refuse("the release's hash configuration is not the order's"));
    }
    let items = report
        .items
        .iter()
        .enumerate()
        .map(|(i, item)| check_item(i, &item.ad, &cfg, &chain))
        .collect::<Result<Vec<_>>>()?;
    check_decisions(report)?;

    let mut verdict = ReportVerdict::Forward;
    for item in &items {
        let name = indicator_name(&item.primary);
        if evidence.is_false_positive(&item.primary)? {
            verdict = ReportVerdict::FalsePositive {
                reason: format!("indicator {name} is marked a false positive at the Centre"),
            };
            break;
        }
        if let Some(r) = later.iter().find(|r| r.release().removals().contains(&item.primary)) {
            verdict = ReportVerdict::FalsePositive {
                reason: format!(
                    "indicator {name} was removed as a false positive in release {} of line {line}",
                    r.release().number()
                ),
            };
            break;
        }
    }
    Ok(CheckedReport { order, release_line: line, items, verdict })
}
