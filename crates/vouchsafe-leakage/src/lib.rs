//! # vouchsafe-leakage
//!
//! What the matching server can infer, below the threshold, about how many of an account's
//! opened vouchers are **real** matches.
//!
//! # Model
//!
//! This module mirrors the client's voucher logic (see `docs/LEAKAGE.md` and `docs/PROTOCOL.md`):
//!
//! * An account sends `n` vouchers for `n` **distinct new** images ([`LeakageParams::vouchers`]).
//!   Null vouchers (a repeated image, or an image failing the hash quality gate) never open and
//!   are **not** counted in `n`: for the server they are indistinguishable from non-matches, and
//!   they carry no synthetic coin.
//! * The images are processed in order. For each one, as long as fewer than `s`
//!   ([`LeakageParams::synthetic_cap`]) synthetic vouchers were made for this account and order,
//!   the device flips a coin with probability `p` ([`LeakageParams::synthetic_rate`]); on heads
//!   the image's voucher is **replaced** by a synthetic one. The coin does not depend on the image
//!   (the device does not know whether it matched), so the number of synthetics is exactly
//!   `S = min(Bin(n, p), s)`: `P(S = j) = Bin(n, p)(j)` for `j < s` and
//!   `P(S = s) = P(Bin(n, p) >= s)`.
//! * `M` is the number of the `n` images that are in the indicator set. `R` is the number of
//!   matching images among the `n − S` non-synthetic ones: the real vouchers that open.
//! * The server observes `c = R + S` opened vouchers. Below the threshold detection found
//!   nothing, so it also knows `R <= T − 1`. At or above the threshold detection tells it `R`
//!   exactly (and which opened vouchers are synthetic): see [`Observation::Detected`].
//!
//! # Priors
//!
//! A [`Prior`] is the server's belief about the account *before* it looks at the opened count.
//! It is a prior on the account's matching-image count `M` (the only thing the account
//! "has"); the prior on `R` is induced through the synthetic replacement, assuming, as the
//! protocol guarantees, that the synthetic coins are independent of the content, and that the
//! matching images sit at exchangeable positions in the sequence. Then
//! `R | S, M ~ Hypergeometric(n, M, n − S)`, and:
//!
//! * [`Prior::Binomial`] (each image matches independently with rate `q`, i.e. `M ~ Bin(n, q)`)
//!   gives exactly `R | S ~ Bin(n − S, q)`;
//! * [`Prior::Uniform`] (`M` uniform on `0..=n`) gives exactly `R | S` uniform on `0..=n − S`;
//! * [`Prior::Custom`] gives `P(R = r | S = j) = Σ_M π(M) · Hyp(r; n, M, n − j)`.
//!
//! The posterior `P(R = r | c, R <= T − 1) ∝ P(S = c − r) · P(R = r | S = c − r)` is computed in
//! log space, so `n` up to 10⁶ and extreme rates neither overflow nor produce NaN.
//!
//! # Order
//!
//! The server also sees *which* vouchers opened, in order. When the cap `s` can bind, order
//! carries extra information: after the `s`-th synthetic no more are made, so late openings are
//! more likely real. [`real_count_posterior_given_order`] gives the exact posterior given the
//! positions of the opened vouchers; it coincides with [`real_count_posterior`] whenever
//! `P(Bin(n, p) >= s)` is negligible.
//!
//! Everything here touches only public data (counts and parameters) and is variable-time.
//!
//! # Measuring leakage
//!
//! The other modules measure what the server's view actually leaks (docs/LEAKAGE.md §9):
//!
//! * [`view`]: the server's view of one order as JSON lines ([`view::View::from_jsonl`], strict, errors name the
//!   line);
//! * [`simulate`]: a view drawn from the stated leakage function only ([`simulate::simulate`]);
//! * [`distinguish`]: a battery of statistical tests against the ideal ([`distinguish::distinguish`]) and a
//!   two-sample mode ([`distinguish::compare`]);
//! * [`planted`]: fixtures that plant known leaks in a view, to measure the battery's power;
//! * [`grid`]: the posterior grid and the two charts of docs/LEAKAGE.md §4;
//! * `capture` (feature `protocol`): an in-memory capture of the view from the real protocol;
//! * [`live`]: the capture log a running server writes (`worker.capture`) and its assembly into a view.
//!
//! [`stats`] and [`scalar`] are the statistics and the scalar / field helpers they use.

use std::fmt;
use std::sync::OnceLock;

#[cfg(feature = "protocol")]
pub mod capture;
pub mod distinguish;
pub mod grid;
pub mod live;
pub mod planted;
pub mod scalar;
pub mod simulate;
pub mod stats;
pub mod view;

/// Public parameters of one account's voucher stream under one order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LeakageParams {
    /// `n`: vouchers sent for distinct new images (null vouchers for repeats and for images
    /// failing the quality gate are not counted).
    pub vouchers: u64,
    /// `p`: probability that an image's voucher is replaced by a synthetic one, in `[0, 1]`.
    pub synthetic_rate: f64,
    /// `s`: at most this many synthetic vouchers per account and order.
    pub synthetic_cap: u32,
    /// `T`: the threshold of real matches, at least 2.
    pub threshold: u32,
}

impl LeakageParams {
    /// Checks the parameters: `p` finite in `[0, 1]`, `T >= 2`.
    pub fn validate(&self) -> Result<(), LeakageError> {
        check_rate(self.synthetic_rate)?;
        if self.threshold < 2 {
            return Err(LeakageError::InvalidThreshold);
        }
        Ok(())
    }

    /// The cap that can actually be reached: `min(s, n)`.
    fn effective_cap(&self) -> u64 {
        u64::from(self.synthetic_cap).min(self.vouchers)
    }
}

/// Converts the manifest's synthetic rate (parts per 2³²) to a probability.
pub fn synthetic_rate_from_parts(parts: u32) -> f64 {
    f64::from(parts) / 4_294_967_296.0
}

/// The server's prior belief about an account's number of matching images `M` among the `n`
/// vouchered images (see the module documentation for how it induces a prior on `R`).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Prior {
    /// `M` uniform on `0..=n`; equivalently `R | S` uniform on `0..=n − S`.
    Uniform,
    /// Every image matches independently with probability `match_rate`; `R | S ~ Bin(n − S, q)`.
    Binomial {
        /// `q`, in `[0, 1]`.
        match_rate: f64,
    },
    /// Weights `π(M)` for `M = 0, 1, …` (index = `M`); non-negative, finite, not all zero, at
    /// most `n + 1` entries. Normalised internally. Missing entries are zero.
    Custom(Vec<f64>),
}

/// What the server knows about one account after detection ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Observation {
    /// Detection found nothing (`R <= T − 1`); `opened` vouchers opened.
    BelowThreshold {
        /// `c`: number of opened vouchers (real and synthetic).
        opened: u64,
    },
    /// Detection succeeded: the server knows exactly which opened vouchers are real.
    Detected {
        /// `c`: number of opened vouchers (real and synthetic).
        opened: u64,
        /// `R`: the real ones among them (at least `T`).
        real: u64,
    },
}

/// The server's posterior distribution of the real match count `R`.
#[derive(Debug, Clone, PartialEq)]
pub struct Posterior {
    /// `probabilities[r] = P(R = r | observation)`; sums to 1.
    probabilities: Vec<f64>,
    /// Whether `R` is known exactly because detection succeeded.
    detected: bool,
}

impl Posterior {
    /// `P(R = r | observation)` indexed by `r`, for `r` in `0..=max` (`max = min(c, T − 1)` below
    /// the threshold). Sums to 1.
    pub fn probabilities(&self) -> &[f64] {
        &self.probabilities
    }

    /// `P(R = r | observation)`; 0 outside the support.
    pub fn probability(&self, r: u64) -> f64 {
        usize::try_from(r).ok().and_then(|i| self.probabilities.get(i)).copied().unwrap_or(0.0)
    }

    /// Whether the real count is known exactly (the account crossed the threshold).
    pub fn is_detected(&self) -> bool {
        self.detected
    }

    /// Posterior mean `E[R | observation]`.
    pub fn mean(&self) -> f64 {
        self.probabilities.iter().enumerate().map(|(r, p)| r as f64 * p).sum()
    }

    /// Posterior variance `Var[R | observation]`.
    pub fn variance(&self) -> f64 {
        let mean = self.mean();
        self.probabilities
            .iter()
            .enumerate()
            .map(|(r, p)| {
                let d = r as f64 - mean;
                d * d * p
            })
            .sum()
    }

    /// The most probable real count (the smallest one on ties).
    pub fn map(&self) -> u32 {
        let mut best = 0usize;
        let mut best_p = f64::NEG_INFINITY;
        for (r, &p) in self.probabilities.iter().enumerate() {
            if p > best_p {
                best = r;
                best_p = p;
            }
        }
        u32::try_from(best).unwrap_or(u32::MAX)
    }

    /// `P(R >= 1 | observation)`: the probability that the account has any real match.
    pub fn prob_any_real(&self) -> f64 {
        // fold from +0.0: an empty f64 `sum()` is -0.0.
        let tail = self.probabilities.iter().skip(1).fold(0.0, |acc, p| acc + p);
        tail.clamp(0.0, 1.0)
    }

    /// The smallest `r` with `P(R <= r | observation) >= level` (`level` is clamped to `[0, 1]`).
    pub fn quantile(&self, level: f64) -> u32 {
        let level = if level.is_nan() { 1.0 } else { level.clamp(0.0, 1.0) };
        let mut acc = 0.0;
        let last = self.probabilities.len().saturating_sub(1);
        for (r, &p) in self.probabilities.iter().enumerate() {
            acc += p;
            if acc >= level * (1.0 - 1e-12) {
                return u32::try_from(r).unwrap_or(u32::MAX);
            }
        }
        u32::try_from(last).unwrap_or(u32::MAX)
    }
}

/// Errors of the leakage computations. Messages contain only parameter names.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LeakageError {
    /// The synthetic rate is not a finite number in `[0, 1]`.
    InvalidSyntheticRate,
    /// The threshold is below 2.
    InvalidThreshold,
    /// More vouchers opened than were sent.
    OpenedExceedsVouchers,
    /// The prior's match rate is not a finite number in `[0, 1]`.
    InvalidMatchRate,
    /// A custom prior is empty, longer than `n + 1`, negative, non-finite or all zero.
    InvalidPrior(&'static str),
    /// The positions of opened vouchers are not strictly increasing indices below `n`.
    InvalidPositions(&'static str),
    /// A detected observation contradicts the parameters (fewer than `T` real, more real than
    /// opened, or more synthetic than the cap).
    InconsistentDetection(&'static str),
    /// The observation has probability zero under the parameters and the prior (for example more
    /// openings than `T − 1 + s` without detection).
    ImpossibleObservation,
    /// A computation that cannot fail for valid parameters did (a bug here); names it.
    Internal(&'static str),
}

impl fmt::Display for LeakageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidSyntheticRate => f.write_str("synthetic rate must be a finite number in [0, 1]"),
            Self::InvalidThreshold => f.write_str("threshold must be at least 2"),
            Self::OpenedExceedsVouchers => f.write_str("number of opened vouchers exceeds the number of vouchers"),
            Self::InvalidMatchRate => f.write_str("match rate must be a finite number in [0, 1]"),
            Self::InvalidPrior(why) => write!(f, "invalid custom prior: {why}"),
            Self::InvalidPositions(why) => write!(f, "invalid opened positions: {why}"),
            Self::InconsistentDetection(why) => write!(f, "inconsistent detection: {why}"),
            Self::ImpossibleObservation => {
                f.write_str("observation has probability zero under these parameters and prior")
            }
            Self::Internal(what) => write!(f, "internal error (a bug in vouchsafe-leakage): {what}"),
        }
    }
}

impl std::error::Error for LeakageError {}

// ---------------------------------------------------------------------------------------------
// Public computations
// ---------------------------------------------------------------------------------------------

/// Distribution of the number of synthetic vouchers `S = min(Bin(n, p), s)`, indexed by `j` in
/// `0..=min(n, s)`. Sums to 1.
pub fn synthetic_count_distribution(
    vouchers: u64,
    synthetic_rate: f64,
    synthetic_cap: u32,
) -> Result<Vec<f64>, LeakageError> {
    check_rate(synthetic_rate)?;
    let ln = ln_synthetic_pmf(vouchers, synthetic_rate, u64::from(synthetic_cap).min(vouchers));
    // P(S = 0) or P(S = min(n, s)) is positive for every valid rate, so the weights always normalise.
    normalise(&ln).ok_or(LeakageError::Internal("the synthetic-count distribution has positive mass"))
}

/// What an account with **zero** real matches looks like: the distribution of its number of
/// opened vouchers (index = opened count, in `0..=min(n, s)`). Every opening of such an account
/// is synthetic, so this is the distribution of `S`; an operator picks `p` and `s` so that the
/// likely counts of an innocent account overlap those of an account with a few real matches.
pub fn innocent_opened_distribution(params: &LeakageParams) -> Result<Vec<f64>, LeakageError> {
    params.validate()?;
    synthetic_count_distribution(params.vouchers, params.synthetic_rate, params.synthetic_cap)
}

/// One row of [`innocent_view`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InnocentRow {
    /// Number of opened vouchers `c`.
    pub opened: u64,
    /// Probability that an account with zero real matches opens exactly `c` vouchers.
    pub probability: f64,
    /// What the server then believes: `P(R >= 1 | c)` under the given prior (NaN if the prior
    /// makes this count impossible, e.g. a prior certain of some matches and `c = 0`).
    pub prob_any_real: f64,
}

/// For an account with zero real matches: each opened count it can show (with non-zero
/// probability), how likely it is, and how suspicious the server finds it under `prior`.
/// Costs one posterior per row.
pub fn innocent_view(params: &LeakageParams, prior: &Prior) -> Result<Vec<InnocentRow>, LeakageError> {
    let dist = innocent_opened_distribution(params)?;
    let mut rows = Vec::new();
    for (c, &probability) in dist.iter().enumerate() {
        if probability <= 0.0 {
            continue;
        }
        let opened = c as u64;
        let prob_any_real = match real_count_posterior(params, opened, prior) {
            Ok(post) => post.prob_any_real(),
            // Under this prior an innocent count can still be impossible (e.g. a prior that is
            // certain of matches); the server would then be certain of a real match.
            Err(LeakageError::ImpossibleObservation) => f64::NAN,
            Err(e) => return Err(e),
        };
        rows.push(InnocentRow { opened, probability, prob_any_real });
    }
    Ok(rows)
}

/// The server's posterior of the real match count `R` given only the number `opened` of opened
/// vouchers of an account that did **not** cross the threshold. Support `0..=min(c, T − 1)`.
pub fn real_count_posterior(params: &LeakageParams, opened: u64, prior: &Prior) -> Result<Posterior, LeakageError> {
    posterior(params, &Observation::BelowThreshold { opened }, prior)
}

/// The server's posterior of `R` for either observation. Above the threshold it is a point mass
/// at the (known) real count.
pub fn posterior(params: &LeakageParams, observation: &Observation, prior: &Prior) -> Result<Posterior, LeakageError> {
    params.validate()?;
    let prior = PreparedPrior::new(prior, params.vouchers)?;
    match *observation {
        Observation::Detected { opened, real } => detected(params, opened, real),
        Observation::BelowThreshold { opened } => {
            let n = params.vouchers;
            if opened > n {
                return Err(LeakageError::OpenedExceedsVouchers);
            }
            let cap = params.effective_cap();
            let ln_synth = ln_synthetic_pmf(n, params.synthetic_rate, cap);
            let r_max = opened.min(u64::from(params.threshold) - 1);
            let r_min = opened.saturating_sub(cap);
            let mut weights = vec![f64::NEG_INFINITY; to_len(r_max)?];
            if r_min <= r_max {
                for r in r_min..=r_max {
                    let j = opened - r;
                    let ls = ln_synth.get(to_index(j)?).copied().unwrap_or(f64::NEG_INFINITY);
                    if ls == f64::NEG_INFINITY {
                        continue;
                    }
                    let w = ls + prior.ln_real_given_synth(n, j, r);
                    if let Some(slot) = weights.get_mut(to_index(r)?) {
                        *slot = w;
                    }
                }
            }
            let probabilities = normalise(&weights).ok_or(LeakageError::ImpossibleObservation)?;
            Ok(Posterior { probabilities, detected: false })
        }
    }
}

/// The exact posterior of `R` given **which** vouchers opened, not just how many, for an account
/// below the threshold. `opened_positions` are the 0-based indices (in sending order among the
/// `n` counted vouchers) of the opened ones, strictly increasing.
///
/// Under [`Prior::Binomial`] this is exact without further assumption; under the other priors it
/// assumes that matching images sit at exchangeable positions. When the cap cannot bind it equals
/// [`real_count_posterior`] for `opened_positions.len()` openings.
pub fn real_count_posterior_given_order(
    params: &LeakageParams,
    opened_positions: &[u64],
    prior: &Prior,
) -> Result<Posterior, LeakageError> {
    params.validate()?;
    let prior = PreparedPrior::new(prior, params.vouchers)?;
    let n = params.vouchers;
    let c = opened_positions.len() as u64;
    if c > n {
        return Err(LeakageError::OpenedExceedsVouchers);
    }
    let mut prev: Option<u64> = None;
    for &pos in opened_positions {
        if pos >= n {
            return Err(LeakageError::InvalidPositions("a position is not below the voucher count"));
        }
        if prev.is_some_and(|q| pos <= q) {
            return Err(LeakageError::InvalidPositions("positions are not strictly increasing"));
        }
        prev = Some(pos);
    }
    let p = params.synthetic_rate;
    let ln_p = p.ln();
    let ln_q = (-p).ln_1p();
    let cap = params.effective_cap();
    let cap_binds = u64::from(params.synthetic_cap) <= n;
    let r_max = c.min(u64::from(params.threshold) - 1);
    let mut weights = vec![f64::NEG_INFINITY; to_len(r_max)?];
    for j in 0..=cap.min(c) {
        let r = c - j;
        if r > r_max {
            continue;
        }
        // ln Σ_{A ⊆ opened, |A| = j} P(the synthetic set is exactly A).
        let ln_sel = if cap_binds && j == cap {
            if j == 0 {
                0.0 // cap 0: no coin is ever flipped
            } else {
                // The last synthetic is the i-th opened voucher (1-based, i >= s); coins are flipped
                // up to and including its position o_i, then never again.
                let mut terms = Vec::new();
                for (idx, &o) in opened_positions.iter().enumerate() {
                    let i = idx as u64 + 1;
                    if i < j {
                        continue;
                    }
                    let failures = o + 1 - j; // o >= i - 1 >= j - 1
                    terms.push(ln_choose(i - 1, j - 1) + xlny(failures as f64, ln_q));
                }
                xlny(j as f64, ln_p) + log_sum_exp(&terms)
            }
        } else {
            ln_choose(c, j) + xlny(j as f64, ln_p) + xlny((n - j) as f64, ln_q)
        };
        if ln_sel == f64::NEG_INFINITY {
            continue;
        }
        let w = ln_sel + prior.ln_real_given_synth(n, j, r) - ln_choose(n - j, r);
        if let Some(slot) = weights.get_mut(to_index(r)?) {
            *slot = w;
        }
    }
    let probabilities = normalise(&weights).ok_or(LeakageError::ImpossibleObservation)?;
    Ok(Posterior { probabilities, detected: false })
}

fn detected(params: &LeakageParams, opened: u64, real: u64) -> Result<Posterior, LeakageError> {
    if opened > params.vouchers {
        return Err(LeakageError::OpenedExceedsVouchers);
    }
    if real < u64::from(params.threshold) {
        return Err(LeakageError::InconsistentDetection("fewer real matches than the threshold"));
    }
    if real > opened {
        return Err(LeakageError::InconsistentDetection("more real matches than opened vouchers"));
    }
    if opened - real > params.effective_cap() {
        return Err(LeakageError::InconsistentDetection("more synthetic vouchers than the cap"));
    }
    if opened - real > 0 && params.synthetic_rate == 0.0 {
        return Err(LeakageError::InconsistentDetection("synthetic vouchers with a zero rate"));
    }
    let mut probabilities = vec![0.0; to_len(real)?];
    if let Some(slot) = probabilities.get_mut(to_index(real)?) {
        *slot = 1.0;
    }
    Ok(Posterior { probabilities, detected: true })
}

// ---------------------------------------------------------------------------------------------
// Priors
// ---------------------------------------------------------------------------------------------

enum PreparedPrior {
    Uniform,
    Binomial {
        ln_q: f64,
        ln_1mq: f64,
    },
    /// Normalised weights of `M`, with their logs.
    Custom {
        ln_weights: Vec<f64>,
    },
}

impl PreparedPrior {
    fn new(prior: &Prior, n: u64) -> Result<Self, LeakageError> {
        match prior {
            Prior::Uniform => Ok(Self::Uniform),
            Prior::Binomial { match_rate } => {
                let q = *match_rate;
                if !(q.is_finite() && (0.0..=1.0).contains(&q)) {
                    return Err(LeakageError::InvalidMatchRate);
                }
                Ok(Self::Binomial { ln_q: q.ln(), ln_1mq: (-q).ln_1p() })
            }
            Prior::Custom(weights) => {
                if weights.is_empty() {
                    return Err(LeakageError::InvalidPrior("no weights"));
                }
                if weights.len() as u64 > n.saturating_add(1) {
                    return Err(LeakageError::InvalidPrior("more weights than vouchers + 1"));
                }
                if weights.iter().any(|w| !w.is_finite() || *w < 0.0) {
                    return Err(LeakageError::InvalidPrior("weights must be finite and non-negative"));
                }
                let total: f64 = weights.iter().sum();
                if !(total > 0.0 && total.is_finite()) {
                    return Err(LeakageError::InvalidPrior("weights must have a finite positive sum"));
                }
                let ln_total = total.ln();
                let ln_weights = weights.iter().map(|w| w.ln() - ln_total).collect();
                Ok(Self::Custom { ln_weights })
            }
        }
    }

    /// `ln P(R = r | S = j)` for `n` images (requires `j + r <= n`).
    fn ln_real_given_synth(&self, n: u64, j: u64, r: u64) -> f64 {
        let Some(d) = n.checked_sub(j) else {
            return f64::NEG_INFINITY;
        };
        if r > d {
            return f64::NEG_INFINITY;
        }
        match self {
            Self::Uniform => -((d + 1) as f64).ln(),
            Self::Binomial { ln_q, ln_1mq } => ln_choose(d, r) + xlny(r as f64, *ln_q) + xlny((d - r) as f64, *ln_1mq),
            Self::Custom { ln_weights } => {
                // Hyp(r; n, M, d) = C(M, r) C(n − M, d − r) / C(n, d), non-zero for r <= M <= r + j.
                let ln_cnd = ln_choose(n, d);
                let hi = (r + j).min(ln_weights.len() as u64 - 1);
                if r > hi {
                    return f64::NEG_INFINITY;
                }
                let mut terms = Vec::with_capacity(usize::try_from(hi - r + 1).unwrap_or(0));
                for m in r..=hi {
                    let lw =
                        usize::try_from(m).ok().and_then(|i| ln_weights.get(i)).copied().unwrap_or(f64::NEG_INFINITY);
                    if lw == f64::NEG_INFINITY {
                        continue;
                    }
                    terms.push(lw + ln_choose(m, r) + ln_choose(n - m, d - r) - ln_cnd);
                }
                log_sum_exp(&terms)
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Numerics (log space)
// ---------------------------------------------------------------------------------------------

fn check_rate(p: f64) -> Result<(), LeakageError> {
    if p.is_finite() && (0.0..=1.0).contains(&p) { Ok(()) } else { Err(LeakageError::InvalidSyntheticRate) }
}

/// `len = last + 1` as a `usize`, refusing sizes that cannot be allocated.
fn to_len(last: u64) -> Result<usize, LeakageError> {
    last.checked_add(1).and_then(|l| usize::try_from(l).ok()).ok_or(LeakageError::OpenedExceedsVouchers)
}

fn to_index(i: u64) -> Result<usize, LeakageError> {
    usize::try_from(i).map_err(|_| LeakageError::OpenedExceedsVouchers)
}

/// `x · ln y` with the convention `0 · ln 0 = 0`.
fn xlny(x: f64, ln_y: f64) -> f64 {
    if x == 0.0 { 0.0 } else { x * ln_y }
}

const SMALL_FACT: usize = 256;

/// `ln k!`: exact sums below 256, Stirling's series (error < 1e-25) above.
fn ln_factorial(k: u64) -> f64 {
    static TABLE: OnceLock<Vec<f64>> = OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut t = Vec::with_capacity(SMALL_FACT);
        let mut acc = 0.0f64;
        t.push(0.0);
        for i in 1..SMALL_FACT {
            acc += (i as f64).ln();
            t.push(acc);
        }
        t
    });
    if let Some(v) = usize::try_from(k).ok().and_then(|i| table.get(i)) {
        return *v;
    }
    let x = k as f64;
    let x2 = x * x;
    let series =
        1.0 / (12.0 * x) - 1.0 / (360.0 * x * x2) + 1.0 / (1260.0 * x * x2 * x2) - 1.0 / (1680.0 * x * x2 * x2 * x2);
    x * x.ln() - x + 0.5 * (2.0 * std::f64::consts::PI * x).ln() + series
}

/// `ln C(n, k)`, `-inf` when `k > n`.
fn ln_choose(n: u64, k: u64) -> f64 {
    if k > n {
        return f64::NEG_INFINITY;
    }
    if k == 0 || k == n {
        return 0.0;
    }
    ln_factorial(n) - ln_factorial(k) - ln_factorial(n - k)
}

/// `ln P(Bin(n, p) = k)`.
fn ln_binom_pmf(n: u64, k: u64, p: f64) -> f64 {
    if k > n {
        return f64::NEG_INFINITY;
    }
    ln_choose(n, k) + xlny(k as f64, p.ln()) + xlny((n - k) as f64, (-p).ln_1p())
}

/// `ln P(Bin(n, p) >= s)`, without cancellation in either tail.
fn ln_binom_upper_tail(n: u64, p: f64, s: u64) -> f64 {
    if s == 0 {
        return 0.0;
    }
    if s > n || p == 0.0 {
        return f64::NEG_INFINITY;
    }
    if p == 1.0 {
        return 0.0;
    }
    // The pmf increases up to the mode floor((n+1)p) and decreases after it.
    let mode = (((n as f64) + 1.0) * p).floor() as u64;
    if s > mode {
        // Decreasing terms from s on: sum until they stop mattering.
        let mut acc = f64::NEG_INFINITY;
        let mut k = s;
        while k <= n {
            let t = ln_binom_pmf(n, k, p);
            acc = log_add(acc, t);
            if t < acc - 60.0 {
                break;
            }
            k += 1;
        }
        acc
    } else {
        // The upper tail is at least about 1/2 here: 1 − head is well conditioned.
        let mut head = f64::NEG_INFINITY;
        let mut k = s;
        while k > 0 {
            k -= 1;
            let t = ln_binom_pmf(n, k, p);
            head = log_add(head, t);
            if k < mode && t < head - 60.0 {
                break;
            }
        }
        if head == f64::NEG_INFINITY { 0.0 } else { (-head.exp()).ln_1p() }
    }
}

/// `ln P(S = j)` for `j` in `0..=cap` where `cap = min(s, n)` and `S = min(Bin(n, p), s)`.
fn ln_synthetic_pmf(n: u64, p: f64, cap: u64) -> Vec<f64> {
    let mut out = Vec::with_capacity(usize::try_from(cap.saturating_add(1)).unwrap_or(0));
    for j in 0..cap {
        out.push(ln_binom_pmf(n, j, p));
    }
    out.push(ln_binom_upper_tail(n, p, cap));
    out
}

fn log_add(a: f64, b: f64) -> f64 {
    if a == f64::NEG_INFINITY {
        return b;
    }
    if b == f64::NEG_INFINITY {
        return a;
    }
    let (hi, lo) = if a > b { (a, b) } else { (b, a) };
    hi + (lo - hi).exp().ln_1p()
}

fn log_sum_exp(terms: &[f64]) -> f64 {
    let max = terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if max == f64::NEG_INFINITY || max.is_nan() {
        return f64::NEG_INFINITY;
    }
    let sum: f64 = terms.iter().map(|t| (t - max).exp()).sum();
    max + sum.ln()
}

/// Normalises log-weights into probabilities; `None` when every weight is zero.
fn normalise(ln_weights: &[f64]) -> Option<Vec<f64>> {
    // Scale by the largest weight first: subtracting a large log-normaliser from each weight
    // would cost ulp(|w|) of relative precision when the log-weights are around -10^7.
    let max = ln_weights.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        return None;
    }
    let scaled: Vec<f64> = ln_weights.iter().map(|w| (w - max).exp()).collect();
    let total: f64 = scaled.iter().sum();
    if !(total.is_finite() && total > 0.0) {
        return None;
    }
    Some(scaled.into_iter().map(|x| x / total).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn params(n: u64, p: f64, s: u32, t: u32) -> LeakageParams {
        LeakageParams { vouchers: n, synthetic_rate: p, synthetic_cap: s, threshold: t }
    }

    fn assert_close(a: f64, b: f64, tol: f64, what: &str) {
        assert!((a - b).abs() <= tol, "{what}: {a} vs {b} (tol {tol})");
    }

    fn assert_sums_to_one(v: &[f64]) {
        let s: f64 = v.iter().sum();
        assert!(v.iter().all(|x| x.is_finite() && *x >= 0.0), "bad entries {v:?}");
        assert_close(s, 1.0, 1e-12, "sum");
    }

    /// How the brute force draws the matching images.
    enum BruteMatch {
        /// Each image matches with this rate.
        Iid(f64),
        /// `M` has these (normalised) weights; the match set is uniform among sets of size `M`.
        Count(Vec<f64>),
    }

    fn choose(n: u32, k: u32) -> f64 {
        (0..k).fold(1.0, |acc, i| acc * f64::from(n - i) / f64::from(i + 1))
    }

    /// Exact joint weights by enumeration of all 2^n coin patterns and all 2^n match sets:
    /// returns (by opened count c: weights over r), (by opened mask: weights over r), S's pmf.
    #[allow(clippy::type_complexity)] // a test oracle: three tables returned at once, named in the doc above
    fn brute(n: u32, p: f64, s: u32, t: u32, matches: &BruteMatch) -> (Vec<Vec<f64>>, Vec<Vec<f64>>, Vec<f64>) {
        let size = 1usize << n;
        let mut by_count = vec![vec![0.0; n as usize + 1]; n as usize + 1];
        let mut by_mask = vec![vec![0.0; n as usize + 1]; size];
        let mut s_pmf = vec![0.0; n as usize + 1];
        for coins in 0..size {
            let ones = (coins as u32).count_ones();
            let p_coins = p.powi(ones as i32) * (1.0 - p).powi((n - ones) as i32);
            let mut synth = 0usize;
            let mut made = 0u32;
            for i in 0..n {
                if made < s && coins >> i & 1 == 1 {
                    synth |= 1 << i;
                    made += 1;
                }
            }
            s_pmf[made as usize] += p_coins;
            for m in 0..size {
                let k = (m as u32).count_ones();
                let p_m = match matches {
                    BruteMatch::Iid(q) => q.powi(k as i32) * (1.0 - q).powi((n - k) as i32),
                    BruteMatch::Count(w) => w.get(k as usize).copied().unwrap_or(0.0) / choose(n, k),
                };
                let real = m & !synth;
                let r = real.count_ones();
                if r >= t {
                    continue; // detected: not a below-threshold observation
                }
                let opened = synth | real;
                let c = opened.count_ones() as usize;
                by_count[c][r as usize] += p_coins * p_m;
                by_mask[opened][r as usize] += p_coins * p_m;
            }
        }
        (by_count, by_mask, s_pmf)
    }

    fn normalised(v: &[f64]) -> Option<Vec<f64>> {
        let s: f64 = v.iter().sum();
        (s > 1e-300).then(|| v.iter().map(|x| x / s).collect())
    }

    fn check_against_brute(n: u32, p: f64, s: u32, t: u32, prior: &Prior, matches: &BruteMatch) {
        let prm = params(u64::from(n), p, s, t);
        let (by_count, by_mask, s_pmf) = brute(n, p, s, t, matches);
        let dist = synthetic_count_distribution(u64::from(n), p, s).unwrap();
        for (j, &pj) in s_pmf.iter().enumerate() {
            assert_close(dist.get(j).copied().unwrap_or(0.0), pj, 1e-12, "synthetic pmf");
        }
        for (c, weights) in by_count.iter().enumerate() {
            let got = real_count_posterior(&prm, c as u64, prior);
            match normalised(weights) {
                None => assert_eq!(got, Err(LeakageError::ImpossibleObservation), "c={c}"),
                Some(want) => {
                    let got = got.unwrap();
                    for (r, w) in want.iter().enumerate() {
                        assert_close(got.probability(r as u64), *w, 1e-10, &format!("n={n} c={c} r={r}"));
                    }
                }
            }
        }
        for (mask, weights) in by_mask.iter().enumerate() {
            let positions: Vec<u64> = (0..n).filter(|i| mask >> i & 1 == 1).map(u64::from).collect();
            let got = real_count_posterior_given_order(&prm, &positions, prior);
            match normalised(weights) {
                None => assert_eq!(got, Err(LeakageError::ImpossibleObservation), "mask={mask:b}"),
                Some(want) => {
                    let got = got.unwrap();
                    for (r, w) in want.iter().enumerate() {
                        assert_close(got.probability(r as u64), *w, 1e-10, &format!("mask={mask:b} r={r}"));
                    }
                }
            }
        }
    }

    #[test]
    fn hand_computed_n3() {
        // n = 3, p = 1/2, s = 1, T = 2, q = 1/2, c = 1.
        // P(S=0) = 1/8, P(S=1) = 7/8. r=0: 7/8 * (1/2)^2 = 14/64; r=1: 1/8 * 3/8 = 3/64.
        let post = real_count_posterior(&params(3, 0.5, 1, 2), 1, &Prior::Binomial { match_rate: 0.5 }).unwrap();
        assert_eq!(post.probabilities().len(), 2);
        assert_close(post.probability(0), 14.0 / 17.0, 1e-14, "r=0");
        assert_close(post.probability(1), 3.0 / 17.0, 1e-14, "r=1");
        assert_eq!(post.map(), 0);
        assert_close(post.mean(), 3.0 / 17.0, 1e-14, "mean");
        assert_close(post.prob_any_real(), 3.0 / 17.0, 1e-14, "any");
        // Uniform: R|S uniform on 0..=3-S. r=0: 7/8 * 1/3 = 7/24; r=1: 1/8 * 1/4 = 1/32.
        let post = real_count_posterior(&params(3, 0.5, 1, 2), 1, &Prior::Uniform).unwrap();
        let (a, b) = (7.0 / 24.0, 1.0 / 32.0);
        assert_close(post.probability(1), b / (a + b), 1e-14, "uniform r=1");
    }

    #[test]
    fn matches_exhaustive_enumeration() {
        for &(n, p, s, t) in &[
            (3u32, 0.5, 1u32, 2u32),
            (4, 0.3, 2, 3),
            (5, 0.2, 2, 3),
            (6, 0.45, 3, 2),
            (5, 0.7, 9, 4),
            (4, 0.25, 0, 2),
            (6, 0.15, 6, 7),
        ] {
            for &q in &[0.0, 0.1, 0.5, 1.0] {
                check_against_brute(n, p, s, t, &Prior::Binomial { match_rate: q }, &BruteMatch::Iid(q));
            }
            let uniform = vec![1.0 / f64::from(n + 1); n as usize + 1];
            check_against_brute(n, p, s, t, &Prior::Uniform, &BruteMatch::Count(uniform));
            let custom = vec![0.5, 0.0, 0.3, 0.2];
            let total: f64 = custom.iter().sum();
            let norm: Vec<f64> = custom.iter().map(|w| w / total).collect();
            check_against_brute(n, p, s, t, &Prior::Custom(custom), &BruteMatch::Count(norm));
        }
    }

    #[test]
    fn order_matters_when_cap_binds() {
        // s = 1, two openings: the early one is more likely the synthetic one, so the order
        // posterior differs between (0, 9) and (8, 9); the count posterior cannot tell.
        let prm = params(10, 0.3, 1, 3);
        let prior = Prior::Binomial { match_rate: 0.05 };
        let early = real_count_posterior_given_order(&prm, &[0, 9], &prior).unwrap();
        let late = real_count_posterior_given_order(&prm, &[8, 9], &prior).unwrap();
        assert!(early.probability(1) > late.probability(1) + 0.01, "{early:?} {late:?}");
        // Without a binding cap, order is irrelevant and equals the count posterior.
        let prm = params(10, 0.3, 20, 3);
        let a = real_count_posterior_given_order(&prm, &[0, 9], &prior).unwrap();
        let b = real_count_posterior_given_order(&prm, &[8, 9], &prior).unwrap();
        let c = real_count_posterior(&prm, 2, &prior).unwrap();
        for r in 0..3 {
            assert_close(a.probability(r), b.probability(r), 1e-12, "order a/b");
            assert_close(a.probability(r), c.probability(r), 1e-12, "order/count");
        }
    }

    #[test]
    fn zero_rate_is_point_mass_at_opened() {
        for c in 0..5u64 {
            for prior in [Prior::Uniform, Prior::Binomial { match_rate: 0.01 }] {
                let post = real_count_posterior(&params(100, 0.0, 10, 5), c, &prior).unwrap();
                assert_eq!(post.probabilities().len() as u64, c + 1);
                assert_eq!(post.probability(c), 1.0);
                assert_eq!(post.map() as u64, c);
                assert_eq!(post.prob_any_real(), if c == 0 { 0.0 } else { 1.0 });
                assert!(post.prob_any_real().is_sign_positive(), "no -0.0");
            }
        }
        // c >= T with p = 0 would have been detected.
        assert_eq!(
            real_count_posterior(&params(100, 0.0, 10, 5), 5, &Prior::Uniform),
            Err(LeakageError::ImpossibleObservation)
        );
        // Zero match rate: everything opened is synthetic.
        let post = real_count_posterior(&params(100, 0.2, 30, 5), 7, &Prior::Binomial { match_rate: 0.0 }).unwrap();
        assert_eq!(post.probability(0), 1.0);
    }

    #[test]
    fn probabilities_sum_to_one() {
        let priors = [
            Prior::Uniform,
            Prior::Binomial { match_rate: 0.001 },
            Prior::Binomial { match_rate: 0.4 },
            Prior::Custom(vec![0.9, 0.05, 0.05]),
        ];
        for prm in
            [params(1000, 0.01, 60, 30), params(50, 0.5, 10, 2), params(200, 0.99, 100, 30), params(10, 1.0, 4, 3)]
        {
            let cap = prm.effective_cap();
            for c in 0..=(cap + u64::from(prm.threshold) - 1).min(prm.vouchers) {
                for prior in &priors {
                    match real_count_posterior(&prm, c, prior) {
                        Ok(post) => {
                            assert_sums_to_one(post.probabilities());
                            assert_eq!(post.probabilities().len() as u64, c.min(u64::from(prm.threshold) - 1) + 1);
                        }
                        Err(LeakageError::ImpossibleObservation) => {}
                        Err(e) => panic!("{e}"),
                    }
                }
            }
            assert_sums_to_one(
                &synthetic_count_distribution(prm.vouchers, prm.synthetic_rate, prm.synthetic_cap).unwrap(),
            );
        }
    }

    #[test]
    fn stable_for_large_n_and_extreme_rates() {
        let n = 1_000_000;
        for &p in &[0.0, 1e-12, 1e-6, 1e-3, 0.5, 1.0 - 1e-9, 1.0] {
            let dist = synthetic_count_distribution(n, p, 60).unwrap();
            assert_sums_to_one(&dist);
            for c in [0u64, 1, 12, 40, 89] {
                for prior in [Prior::Uniform, Prior::Binomial { match_rate: 1e-4 }, Prior::Custom(vec![1.0; 200])] {
                    match real_count_posterior(&params(n, p, 60, 30), c, &prior) {
                        Ok(post) => assert_sums_to_one(post.probabilities()),
                        Err(LeakageError::ImpossibleObservation) => {
                            // Only for counts unreachable under p (e.g. p = 0 and c >= T).
                            assert!(p == 0.0 || p >= 1.0 - 1e-9, "p={p} c={c}");
                        }
                        Err(e) => panic!("{e}"),
                    }
                }
            }
        }
        // Tail check: P(Bin(1e6, 1e-6) >= 10) is close to the Poisson(1) tail 1.1142547e-7.
        let dist = synthetic_count_distribution(n, 1e-6, 10).unwrap();
        assert!((dist[10] / 1.1142547e-7 - 1.0).abs() < 1e-3, "{}", dist[10]);
        // Tiny tail far beyond the mean: finite, positive, ~Poisson.
        let t = ln_binom_upper_tail(n, 1e-9, 5);
        assert!(t.is_finite() && (t - (1e-3f64.powi(5) / 120.0).ln()).abs() < 1e-2, "{t}");
        // Large tail: 1 − head path against a direct sum.
        // (The direct sum of ~600 terms is itself only good to ~1e-12.)
        let direct: f64 = (400..=1000).map(|k| ln_binom_pmf(1000, k, 0.5).exp()).sum();
        let head: f64 = (0..400).map(|k| ln_binom_pmf(1000, k, 0.5).exp()).sum();
        assert_close(ln_binom_upper_tail(1000, 0.5, 400).exp(), direct, 1e-11, "upper tail");
        assert_close(ln_binom_upper_tail(1000, 0.5, 400).exp(), 1.0 - head, 1e-15, "upper tail head");
        assert!(head > 8e-11 && head < 1e-10, "{head}");
        let direct: f64 = (520..=1000).map(|k| ln_binom_pmf(1000, k, 0.5).exp()).sum();
        assert_close(ln_binom_upper_tail(1000, 0.5, 520).exp() / direct, 1.0, 1e-12, "upper tail 2");
    }

    #[test]
    fn ln_factorial_is_accurate() {
        let mut direct = 0.0f64;
        for k in 1..=5000u64 {
            direct += (k as f64).ln();
            assert!((ln_factorial(k) - direct).abs() <= 1e-12 * direct.max(1.0), "k={k}");
        }
        assert_close(ln_choose(10, 3), 120f64.ln(), 1e-13, "C(10,3)");
        assert_close(ln_choose(1000, 500).exp() / 2.702882409454365e299, 1.0, 1e-10, "C(1000,500)");
    }

    #[test]
    fn monte_carlo_agrees() {
        let (n, p, s, t, q) = (40u64, 0.1, 4u32, 5u32, 0.08);
        let prm = params(n, p, s, t);
        let prior = Prior::Binomial { match_rate: q };
        let mut rng = ChaCha8Rng::seed_from_u64(0x5eed_1eaf);
        let trials = 200_000usize;
        let mut counts = vec![vec![0u64; t as usize]; n as usize + 1];
        for _ in 0..trials {
            let (mut synth, mut real) = (0u32, 0u32);
            for _ in 0..n {
                let coin = rng.random_bool(p);
                let matches = rng.random_bool(q);
                if synth < s && coin {
                    synth += 1;
                } else if matches {
                    real += 1;
                }
            }
            if real < t {
                counts[(synth + real) as usize][real as usize] += 1;
            }
        }
        let mut checked = 0;
        for (c, row) in counts.iter().enumerate() {
            let total: u64 = row.iter().sum();
            if total < 5_000 {
                continue;
            }
            let post = real_count_posterior(&prm, c as u64, &prior).unwrap();
            for (r, &k) in row.iter().enumerate() {
                let want = post.probability(r as u64);
                let emp = k as f64 / total as f64;
                let sd = (want * (1.0 - want) / total as f64).sqrt();
                assert!((emp - want).abs() <= 5.0 * sd + 1e-3, "c={c} r={r}: empirical {emp} vs {want}");
                checked += 1;
            }
        }
        assert!(checked >= 15, "too few cells checked: {checked}");
    }

    #[test]
    fn detected_is_point_mass() {
        let prm = params(1000, 0.01, 60, 30);
        let post = posterior(&prm, &Observation::Detected { opened: 35, real: 31 }, &Prior::Uniform).unwrap();
        assert!(post.is_detected());
        assert_eq!(post.probability(31), 1.0);
        assert_eq!(post.map(), 31);
        assert_eq!(post.mean(), 31.0);
        assert_eq!(post.prob_any_real(), 1.0);
        for (obs, why) in [
            (Observation::Detected { opened: 35, real: 29 }, "fewer"),
            (Observation::Detected { opened: 30, real: 31 }, "more real"),
            (Observation::Detected { opened: 100, real: 30 }, "cap"),
        ] {
            assert!(
                matches!(posterior(&prm, &obs, &Prior::Uniform), Err(LeakageError::InconsistentDetection(_))),
                "{why}"
            );
        }
    }

    #[test]
    fn summaries() {
        let post = Posterior { probabilities: vec![0.1, 0.2, 0.4, 0.3], detected: false };
        assert_close(post.mean(), 0.2 + 0.8 + 0.9, 1e-14, "mean");
        assert_close(
            post.variance(),
            0.1 * 1.9f64.powi(2) + 0.2 * 0.9f64.powi(2) + 0.4 * 0.1f64.powi(2) + 0.3 * 1.1f64.powi(2),
            1e-12,
            "var",
        );
        assert_eq!(post.map(), 2);
        assert_close(post.prob_any_real(), 0.9, 1e-14, "any");
        assert_eq!(post.quantile(0.05), 0);
        assert_eq!(post.quantile(0.3), 1);
        assert_eq!(post.quantile(0.95), 3);
        assert_eq!(post.probability(99), 0.0);
    }

    #[test]
    fn innocent_profile() {
        let prm = params(1000, 0.01, 60, 30);
        let dist = innocent_opened_distribution(&prm).unwrap();
        assert_eq!(dist.len(), 61);
        assert_sums_to_one(&dist);
        let mean: f64 = dist.iter().enumerate().map(|(c, p)| c as f64 * p).sum();
        assert!((mean - 10.0).abs() < 0.01, "{mean}"); // cap 60 never binds at np = 10
        let rows = innocent_view(&prm, &Prior::Binomial { match_rate: 0.001 }).unwrap();
        assert!(rows.iter().all(|r| (0.0..=1.0).contains(&r.prob_any_real)));
        // More openings look more suspicious.
        assert!(rows[20].prob_any_real > rows[5].prob_any_real);
    }

    #[test]
    fn rejects_bad_input() {
        let ok = params(100, 0.1, 10, 5);
        for bad in [f64::NAN, -0.1, 1.1, f64::INFINITY] {
            assert_eq!(
                real_count_posterior(&params(100, bad, 10, 5), 1, &Prior::Uniform),
                Err(LeakageError::InvalidSyntheticRate)
            );
            assert_eq!(synthetic_count_distribution(100, bad, 10), Err(LeakageError::InvalidSyntheticRate));
            assert_eq!(
                real_count_posterior(&ok, 1, &Prior::Binomial { match_rate: bad }),
                Err(LeakageError::InvalidMatchRate)
            );
        }
        for t in [0, 1] {
            assert_eq!(
                real_count_posterior(&params(100, 0.1, 10, t), 1, &Prior::Uniform),
                Err(LeakageError::InvalidThreshold)
            );
        }
        assert_eq!(real_count_posterior(&ok, 101, &Prior::Uniform), Err(LeakageError::OpenedExceedsVouchers));
        assert_eq!(real_count_posterior(&ok, 15, &Prior::Uniform), Err(LeakageError::ImpossibleObservation));
        for custom in [vec![], vec![-1.0, 2.0], vec![0.0, 0.0], vec![f64::NAN], vec![1.0; 102]] {
            assert!(matches!(real_count_posterior(&ok, 1, &Prior::Custom(custom)), Err(LeakageError::InvalidPrior(_))));
        }
        // A prior certain of at least 3 matches cannot explain 0 openings.
        assert_eq!(
            real_count_posterior(&ok, 0, &Prior::Custom(vec![0.0, 0.0, 0.0, 1.0])),
            Err(LeakageError::ImpossibleObservation)
        );
        for pos in [&[3u64, 3][..], &[5, 2], &[100]] {
            assert!(matches!(
                real_count_posterior_given_order(&ok, pos, &Prior::Uniform),
                Err(LeakageError::InvalidPositions(_))
            ));
        }
        assert!(!LeakageError::ImpossibleObservation.to_string().is_empty());
    }
}
