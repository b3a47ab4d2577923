//! The effective number of independent bits of a hash on unrelated images, and what it predicts.
//!
//! Hamming distances between hashes of unrelated images would be binomial `Bin(n, ½)` if the `n` bits were
//! independent and fair. Real bits are correlated and biased, so the distances spread more. Following Daugman's
//! treatment of iris codes, the *effective* number of bits is the `N` of a binomial with the observed mean fraction
//! `p` and the observed variance of the fraction `σ²`: `N = p (1 − p) / σ²`. An exact (distance 0) false match of
//! one comparison then has probability about `(1 − p)^N`.
//!
//! The binomial fit describes the bulk of the distribution; false matches live in its tail. So the tail is checked
//! against the data: at the smallest distance `k` where at least [`TAIL_MIN_PAIRS`] pairs were observed, the observed
//! `P(d ≤ k)` is compared with the fit's, and if the data are heavier the prediction at 0 is multiplied by that
//! ratio (never reduced). The report gives both the fit's figure and this tail-corrected one, and the claim uses
//! the corrected one.

use serde::Serialize;

/// Observed pairs needed at the tail point used to correct the fit.
pub const TAIL_MIN_PAIRS: u64 = 10;
/// Indicators in the extrapolation.
pub const INDICATORS: f64 = 1e6;
/// Images per day in the extrapolation.
pub const IMAGES_PER_DAY: f64 = 1e9;

/// The fit and its extrapolation.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Fit {
    /// Pairs the fit used.
    pub pairs: u64,
    /// Mean distance as a fraction of the bits.
    pub mean_fraction: f64,
    /// Standard deviation of the fraction.
    pub std_fraction: f64,
    /// Effective number of independent bits.
    pub effective_bits: f64,
    /// The fit's probability that one comparison is an exact match: `(1 − p)^N`.
    pub p_exact_fit: f64,
    /// Tail point: the distance `k` used for the correction, if any.
    pub tail_k: Option<u32>,
    /// Observed `P(d ≤ k)`.
    pub tail_observed: Option<f64>,
    /// The fit's `P(d ≤ k)`.
    pub tail_fit: Option<f64>,
    /// `p_exact_fit` times `max(1, observed / fit)` at the tail point.
    pub p_exact: f64,
    /// Exact false matches per day at [`INDICATORS`] × [`IMAGES_PER_DAY`], times probes × table entries.
    pub false_matches_per_day: f64,
}

pub use vouchsafe_leakage::stats::ln_gamma;

/// `ln P(X = k)` for `X ~ Bin(n, p)`, with real `n` and `k` (through `ln Γ`).
pub fn ln_binomial_pmf(n: f64, p: f64, k: f64) -> f64 {
    ln_gamma(n + 1.0) - ln_gamma(k + 1.0) - ln_gamma(n - k + 1.0) + k * p.ln() + (n - k) * (1.0 - p).ln()
}

/// `P(X ≤ k)` for `X ~ Bin(n, p)` with real `n`: the regularized incomplete beta `I_{1−p}(n − ⌊k⌋, ⌊k⌋ + 1)`, which
/// is the binomial CDF for integer `n` and its continuous extension otherwise.
pub fn binomial_cdf(n: f64, p: f64, k: f64) -> f64 {
    if k < 0.0 {
        return 0.0;
    }
    let k = k.floor();
    if k >= n {
        return 1.0;
    }
    vouchsafe_leakage::stats::beta_inc(n - k, k + 1.0, 1.0 - p)
}

/// Fits the histogram `hist[d]` = number of pairs at distance `d` of `bits`-bit hashes; `multiplicity` is
/// probes × mean table entries per indicator (comparisons per image per indicator).
pub fn fit(hist: &[u64], bits: u32, multiplicity: f64) -> Option<Fit> {
    let pairs: u64 = hist.iter().sum();
    if pairs < 2 || bits == 0 {
        return None;
    }
    let b = f64::from(bits);
    let mean = hist.iter().enumerate().map(|(d, &c)| d as f64 / b * c as f64).sum::<f64>() / pairs as f64;
    let var = hist.iter().enumerate().map(|(d, &c)| (d as f64 / b - mean).powi(2) * c as f64).sum::<f64>()
        / (pairs - 1) as f64;
    if var <= 0.0 || mean <= 0.0 || mean >= 1.0 {
        return None;
    }
    let n = mean * (1.0 - mean) / var;
    let p_fit = (n * (1.0 - mean).ln()).exp();
    // The tail point: the smallest k with at least TAIL_MIN_PAIRS observed pairs at distance ≤ k.
    let mut cum = 0u64;
    let mut tail = None;
    for (k, &c) in hist.iter().enumerate() {
        cum += c;
        if cum >= TAIL_MIN_PAIRS {
            tail = Some((k as u32, cum as f64 / pairs as f64));
            break;
        }
    }
    let (tail_k, tail_observed, tail_fit, p_exact) = match tail {
        Some((k, obs)) => {
            // Distance k of `bits` corresponds to k·N/bits of N effective bits.
            let fitted = binomial_cdf(n, mean, f64::from(k) * n / b).max(f64::MIN_POSITIVE);
            (Some(k), Some(obs), Some(fitted), p_fit * (obs / fitted).max(1.0))
        }
        None => (None, None, None, p_fit),
    };
    Some(Fit {
        pairs,
        mean_fraction: mean,
        std_fraction: var.sqrt(),
        effective_bits: n,
        p_exact_fit: p_fit,
        tail_k,
        tail_observed,
        tail_fit,
        p_exact,
        false_matches_per_day: p_exact * INDICATORS * IMAGES_PER_DAY * multiplicity,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ln_gamma_matches_factorials() {
        let mut f = 1.0f64;
        for n in 1..30u32 {
            f *= f64::from(n);
            assert!((ln_gamma(f64::from(n) + 1.0) - f.ln()).abs() < 1e-9, "{n}");
        }
        assert!((ln_gamma(0.5) - std::f64::consts::PI.sqrt().ln()).abs() < 1e-12);
    }

    #[test]
    fn binomial_cdf_is_the_sum_of_the_terms() {
        // Bin(10, ½): P(X ≤ 2) = (1 + 10 + 45) / 1024.
        assert!((binomial_cdf(10.0, 0.5, 2.0) - 56.0 / 1024.0).abs() < 1e-12);
        assert!((binomial_cdf(10.0, 0.5, 10.0) - 1.0).abs() < 1e-9);
    }

    #[test]
    fn independent_fair_bits_fit_to_their_count() {
        // The exact Bin(64, ½) histogram of 2^40 pairs: the fit gives N = 64 and P(0) = 2^-64.
        let total = 2f64.powi(40);
        let hist: Vec<u64> =
            (0..=64u32).map(|d| (total * ln_binomial_pmf(64.0, 0.5, f64::from(d)).exp()).round() as u64).collect();
        let f = fit(&hist, 64, 1.0).unwrap();
        assert!((f.effective_bits - 64.0).abs() < 0.5, "{}", f.effective_bits);
        assert!((f.mean_fraction - 0.5).abs() < 1e-6);
        assert!((f.p_exact_fit.log2() + 64.0).abs() < 1.0);
        // The tail agrees with the fit, so no correction.
        assert!(f.p_exact / f.p_exact_fit < 1.5);
    }

    #[test]
    fn a_heavy_tail_raises_the_prediction() {
        // Bin(64, ½) bulk of 10^6 pairs plus 50 pairs at distance 2: the fit barely moves, the tail does.
        let mut hist: Vec<u64> =
            (0..=64u32).map(|d| (1e6 * ln_binomial_pmf(64.0, 0.5, f64::from(d)).exp()).round() as u64).collect();
        hist[2] += 50;
        let f = fit(&hist, 64, 1.0).unwrap();
        assert_eq!(f.tail_k, Some(2));
        assert!(f.p_exact > 1e6 * f.p_exact_fit, "{f:?}");
        let g = fit(&hist, 64, 8.0).unwrap();
        assert!((g.false_matches_per_day / f.false_matches_per_day - 8.0).abs() < 1e-9);
    }

    #[test]
    fn degenerate_histograms_give_no_fit() {
        assert!(fit(&[], 64, 1.0).is_none());
        assert!(fit(&[5], 64, 1.0).is_none());
        let mut h = vec![0u64; 65];
        h[32] = 100;
        assert!(fit(&h, 64, 1.0).is_none());
    }
}
