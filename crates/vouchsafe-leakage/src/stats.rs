//! The statistics the distinguishers use: special functions (log-gamma, regularized incomplete gamma and beta),
//! χ², Student t, normal and Kolmogorov tail probabilities, Pearson and Spearman correlation, the Mann–Whitney U
//! test and the two-sample Kolmogorov–Smirnov test. Plain `f64`, std only, accurate to about 1e-12 relative where
//! it matters (p-values far below any significance level are returned as they come, never as NaN).

/// `ln Γ(x)` for `x > 0` (Lanczos, g = 7, 9 terms; relative error about 1e-15).
pub fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x)Γ(1 − x) = π / sin(πx).
        let s = (std::f64::consts::PI * x).sin();
        return (std::f64::consts::PI / s.abs()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + G + 0.5;
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// The regularized upper incomplete gamma function `Q(a, x) = Γ(a, x) / Γ(a)`, `a > 0`, `x >= 0`.
pub fn gamma_q(a: f64, x: f64) -> f64 {
    if x.is_nan() || a.is_nan() || a <= 0.0 {
        return f64::NAN;
    }
    if x <= 0.0 {
        return 1.0;
    }
    if x.is_infinite() {
        return 0.0;
    }
    let ln_pre = a * x.ln() - x - ln_gamma(a);
    if x < a + 1.0 {
        // Series for P(a, x).
        let mut sum = 1.0 / a;
        let mut term = sum;
        let mut ap = a;
        for _ in 0..10_000 {
            ap += 1.0;
            term *= x / ap;
            sum += term;
            if term.abs() < sum.abs() * 1e-16 {
                break;
            }
        }
        (1.0 - sum * ln_pre.exp()).clamp(0.0, 1.0)
    } else {
        // Continued fraction for Q(a, x) (modified Lentz).
        let tiny = 1e-300;
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / tiny;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..10_000 {
            let an = -(i as f64) * (i as f64 - a);
            b += 2.0;
            d = an * d + b;
            if d.abs() < tiny {
                d = tiny;
            }
            c = b + an / c;
            if c.abs() < tiny {
                c = tiny;
            }
            d = 1.0 / d;
            let del = d * c;
            h *= del;
            if (del - 1.0).abs() < 1e-16 {
                break;
            }
        }
        (ln_pre.exp() * h).clamp(0.0, 1.0)
    }
}

/// `P(χ²_df >= x)`.
pub fn chi2_sf(x: f64, df: f64) -> f64 {
    gamma_q(df / 2.0, x / 2.0)
}

/// `P(Z >= z)` for a standard normal Z.
pub fn normal_sf(z: f64) -> f64 {
    if z.is_nan() {
        return f64::NAN;
    }
    // erfc(t) = Q(1/2, t²) for t >= 0.
    let t = z / std::f64::consts::SQRT_2;
    if t >= 0.0 { 0.5 * gamma_q(0.5, t * t) } else { 1.0 - 0.5 * gamma_q(0.5, t * t) }
}

/// Two-sided normal p-value `P(|Z| >= |z|)`.
pub fn normal_two_sided(z: f64) -> f64 {
    (2.0 * normal_sf(z.abs())).min(1.0)
}

/// The regularized incomplete beta function `I_x(a, b)`, `a, b > 0`, `x` in `[0, 1]`.
pub fn beta_inc(a: f64, b: f64, x: f64) -> f64 {
    if x.is_nan() || a <= 0.0 || b <= 0.0 {
        return f64::NAN;
    }
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    if x < (a + 1.0) / (a + b + 2.0) {
        (ln_front.exp() * beta_cf(a, b, x) / a).clamp(0.0, 1.0)
    } else {
        (1.0 - ln_front.exp() * beta_cf(b, a, 1.0 - x) / b).clamp(0.0, 1.0)
    }
}

/// `v`, or a tiny number of its size if it is too close to 0 (Lentz's guard against a zero denominator).
fn off_zero(v: f64) -> f64 {
    const TINY: f64 = 1e-300;
    if v.abs() < TINY { TINY } else { v }
}

/// One step of Lentz's method with partial numerator `aa`: updates `c` and `d` and returns the factor `c·d` of the
/// continued fraction.
fn lentz_step(aa: f64, c: &mut f64, d: &mut f64) -> f64 {
    *d = 1.0 / off_zero(1.0 + aa * *d);
    *c = off_zero(1.0 + aa / *c);
    *d * *c
}

/// The continued fraction of the incomplete beta function (Numerical Recipes' `betacf`): per m an even and an odd
/// step.
fn beta_cf(a: f64, b: f64, x: f64) -> f64 {
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 / off_zero(1.0 - qab * x / qap);
    let mut h = d;
    for m in 1..10_000 {
        let m = m as f64;
        let m2 = 2.0 * m;
        h *= lentz_step(m * (b - m) * x / ((qam + m2) * (a + m2)), &mut c, &mut d);
        let del = lentz_step(-(a + m) * (qab + m) * x / ((a + m2) * (qap + m2)), &mut c, &mut d);
        h *= del;
        if (del - 1.0).abs() < 1e-16 {
            break;
        }
    }
    h
}

/// Two-sided Student-t p-value `P(|T_df| >= |t|)`.
pub fn t_two_sided(t: f64, df: f64) -> f64 {
    if t.is_nan() || df <= 0.0 {
        return f64::NAN;
    }
    if t.is_infinite() {
        return 0.0;
    }
    beta_inc(df / 2.0, 0.5, df / (df + t * t))
}

/// Pearson's sample correlation; `None` for fewer than 3 pairs, unequal lengths or a constant sample.
pub fn pearson(x: &[f64], y: &[f64]) -> Option<f64> {
    if x.len() != y.len() || x.len() < 3 {
        return None;
    }
    let n = x.len() as f64;
    let mx = x.iter().sum::<f64>() / n;
    let my = y.iter().sum::<f64>() / n;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        let (da, db) = (a - mx, b - my);
        sxy += da * db;
        sxx += da * da;
        syy += db * db;
    }
    if sxx <= 0.0 || syy <= 0.0 {
        return None;
    }
    Some((sxy / (sxx * syy).sqrt()).clamp(-1.0, 1.0))
}

/// Ranks 1..=n, ties get their average rank.
pub fn ranks(x: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..x.len()).collect();
    idx.sort_by(|&a, &b| x.get(a).partial_cmp(&x.get(b)).unwrap_or(std::cmp::Ordering::Equal));
    let mut out = vec![0.0; x.len()];
    let mut i = 0;
    while i < idx.len() {
        let vi = idx.get(i).and_then(|&k| x.get(k));
        let mut j = i + 1;
        while j < idx.len() && idx.get(j).and_then(|&k| x.get(k)) == vi {
            j += 1;
        }
        let avg = (i + j + 1) as f64 / 2.0; // ranks i+1..=j
        for &k in idx.get(i..j).unwrap_or(&[]) {
            if let Some(o) = out.get_mut(k) {
                *o = avg;
            }
        }
        i = j;
    }
    out
}

/// Spearman's rank correlation (Pearson on ranks).
pub fn spearman(x: &[f64], y: &[f64]) -> Option<f64> {
    pearson(&ranks(x), &ranks(y))
}

/// Two-sided p-value of a correlation `r` over `n` pairs, by the t statistic `r·sqrt((n − 2)/(1 − r²))` with
/// `n − 2` degrees of freedom.
pub fn correlation_p(r: f64, n: usize) -> f64 {
    if n < 3 {
        return 1.0;
    }
    let df = (n - 2) as f64;
    let denom = (1.0 - r * r).max(0.0);
    if denom == 0.0 {
        return 0.0;
    }
    t_two_sided(r * (df / denom).sqrt(), df)
}

/// The Mann–Whitney U test of `a` against `b`: `(U_a, z, two-sided p)`, normal approximation with ties correction
/// and continuity correction. `None` if a sample is empty or all values are tied (no information).
pub fn mann_whitney(a: &[f64], b: &[f64]) -> Option<(f64, f64, f64)> {
    let (n1, n2) = (a.len(), b.len());
    if n1 == 0 || n2 == 0 {
        return None;
    }
    let all: Vec<f64> = a.iter().chain(b).copied().collect();
    let r = ranks(&all);
    let r1: f64 = r.iter().take(n1).sum();
    let (f1, f2) = (n1 as f64, n2 as f64);
    let n = f1 + f2;
    let u1 = r1 - f1 * (f1 + 1.0) / 2.0;
    let mean = f1 * f2 / 2.0;
    // Ties: Σ (t³ − t) over tie groups.
    let mut sorted = all.clone();
    sorted.sort_by(|x, y| x.partial_cmp(y).unwrap_or(std::cmp::Ordering::Equal));
    let mut ties = 0.0;
    let mut i = 0;
    while i < sorted.len() {
        let mut j = i + 1;
        while j < sorted.len() && sorted.get(j) == sorted.get(i) {
            j += 1;
        }
        let t = (j - i) as f64;
        ties += t * t * t - t;
        i = j;
    }
    let var = f1 * f2 / 12.0 * ((n + 1.0) - ties / (n * (n - 1.0)).max(1.0));
    if var <= 0.0 {
        return None;
    }
    let diff = u1 - mean;
    let cc = if diff > 0.0 {
        -0.5
    } else if diff < 0.0 {
        0.5
    } else {
        0.0
    };
    let z = (diff + cc) / var.sqrt();
    Some((u1, z, normal_two_sided(z)))
}

/// The Kolmogorov distribution's tail `Q_KS(λ) = 2 Σ_{j>=1} (−1)^{j−1} e^{−2 j² λ²}`.
pub fn kolmogorov_q(lambda: f64) -> f64 {
    if lambda < 0.2 {
        return 1.0;
    }
    let mut sum = 0.0;
    let mut sign = 1.0;
    for j in 1..=100 {
        let j = f64::from(j);
        let term = sign * (-2.0 * j * j * lambda * lambda).exp();
        sum += term;
        if term.abs() < 1e-17 {
            break;
        }
        sign = -sign;
    }
    (2.0 * sum).clamp(0.0, 1.0)
}

/// The two-sample Kolmogorov–Smirnov test: `(D, p)` with the asymptotic p-value
/// `Q_KS((sqrt(n_e) + 0.12 + 0.11/sqrt(n_e))·D)`, `n_e = n₁n₂/(n₁+n₂)`. `None` if a sample is empty.
pub fn ks_two_sample(a: &[f64], b: &[f64]) -> Option<(f64, f64)> {
    if a.is_empty() || b.is_empty() {
        return None;
    }
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    let cmp = |x: &f64, y: &f64| x.partial_cmp(y).unwrap_or(std::cmp::Ordering::Equal);
    a.sort_by(cmp);
    b.sort_by(cmp);
    let (n1, n2) = (a.len() as f64, b.len() as f64);
    let (mut i, mut j, mut d) = (0usize, 0usize, 0.0f64);
    while i < a.len() && j < b.len() {
        let (x, y) = (a.get(i).copied().unwrap_or(0.0), b.get(j).copied().unwrap_or(0.0));
        if x <= y {
            i += 1;
        }
        if y <= x {
            j += 1;
        }
        d = d.max((i as f64 / n1 - j as f64 / n2).abs());
    }
    let ne = (n1 * n2 / (n1 + n2)).sqrt();
    Some((d, kolmogorov_q((ne + 0.12 + 0.11 / ne) * d)))
}

/// The one-sample Kolmogorov–Smirnov test against the uniform distribution on `[0, 1)`: `(D, p)` with the
/// asymptotic p-value `Q_KS((sqrt(n) + 0.12 + 0.11/sqrt(n))·D)`. `None` if the sample is empty.
pub fn ks_uniform(values: &[f64]) -> Option<(f64, f64)> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(|x, y| x.partial_cmp(y).unwrap_or(std::cmp::Ordering::Equal));
    let n = v.len() as f64;
    let d = v.iter().enumerate().fold(0.0f64, |d, (i, &u)| {
        let u = u.clamp(0.0, 1.0);
        d.max((i + 1) as f64 / n - u).max(u - i as f64 / n)
    });
    let sn = n.sqrt();
    Some((d, kolmogorov_q((sn + 0.12 + 0.11 / sn) * d)))
}

/// The exact two-sided binomial test of `k` successes in `n` fair trials: `min(1, 2·min(P(X <= k), P(X >= k)))`.
pub fn binomial_two_sided(n: u64, k: u64) -> f64 {
    let ln_half_n = -(n as f64) * std::f64::consts::LN_2;
    let pmf = |i: u64| {
        (ln_gamma(n as f64 + 1.0) - ln_gamma(i as f64 + 1.0) - ln_gamma((n - i) as f64 + 1.0) + ln_half_n).exp()
    };
    let k = k.min(n);
    let lower: f64 = (0..=k).map(pmf).sum();
    let upper: f64 = (k..=n).map(pmf).sum();
    (2.0 * lower.min(upper)).min(1.0)
}

/// χ² goodness of fit of `counts` against the uniform distribution on its bins: `(statistic, df, p)`.
/// `None` with fewer than 2 bins or no observation.
pub fn chi2_uniform(counts: &[u64]) -> Option<(f64, f64, f64)> {
    let k = counts.len();
    let n: u64 = counts.iter().sum();
    if k < 2 || n == 0 {
        return None;
    }
    let e = n as f64 / k as f64;
    let stat: f64 = counts.iter().map(|&c| (c as f64 - e).powi(2) / e).sum();
    let df = (k - 1) as f64;
    Some((stat, df, chi2_sf(stat, df)))
}

/// χ² test of homogeneity of two histograms over the same bins: `(statistic, df, p)`. Bins empty in both are
/// dropped. `None` if either histogram is empty or fewer than 2 bins remain.
pub fn chi2_homogeneity(a: &[u64], b: &[u64]) -> Option<(f64, f64, f64)> {
    let (na, nb): (u64, u64) = (a.iter().sum(), b.iter().sum());
    if na == 0 || nb == 0 || a.len() != b.len() {
        return None;
    }
    let n = (na + nb) as f64;
    let mut stat = 0.0;
    let mut bins = 0usize;
    for (&x, &y) in a.iter().zip(b) {
        let col = (x + y) as f64;
        if col == 0.0 {
            continue;
        }
        bins += 1;
        let (ea, eb) = (col * na as f64 / n, col * nb as f64 / n);
        stat += (x as f64 - ea).powi(2) / ea + (y as f64 - eb).powi(2) / eb;
    }
    if bins < 2 {
        return None;
    }
    let df = (bins - 1) as f64;
    Some((stat, df, chi2_sf(stat, df)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) {
        assert!((a - b).abs() <= tol * b.abs().max(1e-300), "{a} vs {b}");
    }

    #[test]
    fn special_functions() {
        close(ln_gamma(5.0), 24f64.ln(), 1e-14);
        close(ln_gamma(0.5), std::f64::consts::PI.sqrt().ln(), 1e-14);
        close(ln_gamma(100.5), 361.435_540_467_777_6, 1e-13);
        // χ² tails (R: pchisq(x, df, lower = FALSE)).
        close(chi2_sf(3.841_458_820_694_124, 1.0), 0.05, 1e-10);
        close(chi2_sf(30.577_914_166_892_5, 15.0), 0.01, 1e-9);
        close(chi2_sf(200.0, 15.0), 2.124_671_199_893_188_6e-34, 1e-9);
        close(chi2_sf(10.0, 20.0), 0.968_171_942_693_795_2, 1e-12);
        close(normal_sf(1.959_963_984_540_054), 0.025, 1e-10);
        close(normal_sf(-1.0), 0.841_344_746_068_542_9, 1e-12);
        close(normal_sf(10.0), 7.619_853_024_160_527e-24, 1e-8);
        // t: qt(0.975, 10) = 2.228138851986273.
        close(t_two_sided(2.228_138_851_986_273, 10.0), 0.05, 1e-9);
        close(beta_inc(2.0, 3.0, 0.4), 0.5248, 1e-12);
        close(kolmogorov_q(1.358_099), 0.05, 1e-4);
        // Exact binomial: 20 of 20 heads, 2 · 2^-20; 10 of 20 gives 1.
        close(binomial_two_sided(20, 20), 2.0 * 0.5f64.powi(20), 1e-10);
        close(binomial_two_sided(20, 0), 2.0 * 0.5f64.powi(20), 1e-10);
        assert_eq!(binomial_two_sided(20, 10), 1.0);
    }

    #[test]
    fn correlations_and_ranks() {
        assert_eq!(ranks(&[3.0, 1.0, 3.0, 2.0]), vec![3.5, 1.0, 3.5, 2.0]);
        let x = [1.0, 2.0, 3.0, 4.0, 5.0];
        close(pearson(&x, &[2.0, 4.0, 6.0, 8.0, 10.0]).unwrap(), 1.0, 1e-14);
        close(spearman(&x, &[1.0, 4.0, 9.0, 16.0, 100.0]).unwrap(), 1.0, 1e-14);
        assert!(pearson(&x, &[1.0; 5]).is_none());
        assert!(pearson(&x[..2], &x[..2]).is_none());
        assert_eq!(correlation_p(1.0, 10), 0.0);
        close(correlation_p(0.0, 10), 1.0, 1e-12);
    }

    #[test]
    fn mann_whitney_matches_reference() {
        // Reference values from the formula evaluated in mpmath (scipy's asymptotic method with continuity correction).
        let (u, _, p) = mann_whitney(&[1.0, 2.0, 3.0, 4.0, 5.0], &[6.0, 7.0, 8.0, 9.0, 10.0]).unwrap();
        assert_eq!(u, 0.0);
        close(p, 0.012_185_780_355_344_814, 1e-9);
        // With ties: [1,1,2,2] vs [2,3,3,3].
        let (_, _, p) = mann_whitney(&[1.0, 1.0, 2.0, 2.0], &[2.0, 3.0, 3.0, 3.0]).unwrap();
        close(p, 0.047_057_446_282_172_88, 1e-9);
        assert!(mann_whitney(&[1.0, 1.0], &[1.0]).is_none());
        assert!(mann_whitney(&[], &[1.0]).is_none());
    }

    #[test]
    fn chi2_and_ks() {
        let (s, df, p) = chi2_uniform(&[10, 10, 10, 10]).unwrap();
        assert_eq!((s, df), (0.0, 3.0));
        close(p, 1.0, 1e-12);
        let (_, _, p) = chi2_uniform(&[40, 0, 0, 0]).unwrap();
        assert!(p < 1e-20);
        assert!(chi2_uniform(&[0, 0]).is_none());
        let (_, _, p) = chi2_homogeneity(&[10, 20], &[20, 40]).unwrap();
        close(p, 1.0, 1e-12);
        let a: Vec<f64> = (0..100).map(|i| i as f64 / 100.0).collect();
        let b: Vec<f64> = (0..100).map(|i| 0.5 + i as f64 / 200.0).collect();
        let (d, p) = ks_two_sample(&a, &b).unwrap();
        close(d, 0.5, 1e-12);
        assert!(p < 1e-9);
        let (d, p) = ks_two_sample(&a, &a).unwrap();
        assert_eq!(d, 0.0);
        close(p, 1.0, 1e-12);
    }
}
