//! Distinguishers: a battery of statistical tests that tries to tell a view from the ideal one
//! ([`crate::simulate`]), and a two-sample mode that tries to tell two views apart (docs/LEAKAGE.md §9).
//!
//! Every test has a name, a statistic, a p-value and a documented null hypothesis `H₀` (what the ideal view
//! satisfies). The report's verdict uses a Bonferroni correction: a test is *flagged* when its p-value is below
//! `α / K` with `α` = [`ALPHA`] and `K` the number of tests that ran (skipped tests do not count); the view
//! *passes* when no test is flagged. The combined p-value `min(1, K · min pᵢ)` is valid under any dependence
//! between the tests.
//!
//! The families (names are stable; `{f}` is a field `x`, `share`, `x_prime`, `r1`..`rs`):
//!
//! * `uniform.{f}.top4` / `.low4`: χ² of the top / low 4 bits of a field over the `opened` vouchers against the
//!   uniform distribution on 16 values (`x`, `share`: bits 248..252 and 0..4 of the scalar; `x_prime`, `rᵢ`: bits
//!   60..64 and 0..4 of the u64). `H₀`: the bits are uniform. Also `uniform.ct_index` (3 values), `uniform.id.top4`,
//!   `uniform.id.low4` and `uniform.id.bytes` (all 16 bytes of every id, 256 values; ids of every voucher but
//!   duplicates), `uniform.{x,share}.bytes` (bytes 0..31 of the scalar, 256 values), `uniform.r.bytes` (all 8 bytes
//!   of every rᵢ) and `ks.{x,share,x_prime,r1}` (one-sample Kolmogorov–Smirnov of the value scaled to `[0, 1)`).
//!   Skipped below 2 observations per bin.
//! * `corr.pearson.{a}~{b}` / `corr.spearman.{a}~{b}`: correlation between two fields of the same opened voucher
//!   (`x~share`, `x~x_prime`, `share~x_prime`, `x~r1`, `share~r1`, `x_prime~r1`, `rᵢ~rᵢ₊₁`); `corr.lag1.*.{f}`:
//!   between a field of an opened voucher and the same field of the next opened voucher of the same client state
//!   (order: arrival time, then index). `H₀`: no correlation (t test with n − 2 degrees of freedom). Skipped below
//!   10 pairs.
//! * `repeat.{x,share,x_prime,r,id}`: the number of pairs of equal values (x, share, x′ among opened vouchers; r
//!   pooled over all rᵢ; ids among all vouchers but duplicates). `H₀`: values are uniform on a set of size `K`
//!   (ℓ − 1, ℓ, p, p, 2¹²⁸), so `P(some repeat) <= C(n, 2)/K`; the p-value is that bound when a repeat occurs,
//!   1 otherwise.
//! * `relation.line.x_prime~r{i}`: whether three opened vouchers have collinear points `(x′, rᵢ)` (a polynomial
//!   relation of degree 1 in one coordinate; `i <= 8`; at most [`LINE_TEST_MAX`] points). `H₀`: uniform
//!   independent points, `P <= C(n, 3)/p`.
//! * `relation.detectable_hash`: per client state, [`vouchsafe_threshold::detect`] on the columns
//!   `(x′, r₁..r_s)` of its opened vouchers with distinct x′ at the order's T: some T of them lie on polynomials of
//!   degree ≤ T − 2 in every rᵢ. This is the test that **detects the threshold being crossed at T**. `H₀`: uniform
//!   columns; for `N <= T − 1 + s` columns `P(dependency) <= (N·(T − 1) + 2)/p` (a column falls in the span of the
//!   previous ones either because its x′ is a root of a non-zero polynomial of degree ≤ T − 2 or because its
//!   uniform r lands in an affine subspace of codimension ≥ 1); the p-value is the sum of the bounds over the client
//!   states tested when one shows a relation. States with more than T − 1 + s columns always have a dependency and
//!   are skipped. `relation.low_degree`: for the client states without a relation at T, the same at the smallest
//!   testable threshold `t* = max(2, N − s + 1) < T` (the matrix at `t` has a subset of the rows of the matrix at
//!   T, so a dependency at any `t < T` shows at `t*`): a relation of lower degree, i.e. a threshold crossed below
//!   T (a client whose polynomials have too low a degree).
//! * `meta.length`: the number of vouchers whose length is not `voucher_len`. `H₀`: none (p = 0 otherwise).
//!   `meta.batch_size`, `meta.index`, `meta.gap`: Mann–Whitney U (normal approximation, ties and continuity
//!   correction) between the `opened` and the `non-match` vouchers of the batch size, the index in the batch, and
//!   the time since the account's previous batch. `H₀`: the outcome is independent of that quantity. Skipped when
//!   every value is tied or a group is empty.

use std::collections::{HashMap, HashSet};
use std::fmt;

use vouchsafe_threshold::{Column, Detection, Fp, detect};

use crate::scalar::{fp_low4, fp_top4, scalar_low4, scalar_top4, scalar_top64, unit};
use crate::stats;
use crate::view::{Hex16, Opened, Outcome, View, ViewError, VoucherRecord};

/// The family-wise significance level of a report.
pub const ALPHA: f64 = 0.01;

/// Most points the collinearity test looks at (it costs `O(n²)` field inversions per coordinate).
pub const LINE_TEST_MAX: usize = 2000;

/// p = 2⁶⁴ − 59 as a float.
const P_F: f64 = 18_446_744_073_709_551_557.0;
/// ℓ as a float (2²⁵² + …, rounded).
const ELL_F: f64 = 7.237_005_577_332_262e75;

/// One test's result.
#[derive(Clone, Debug, PartialEq)]
pub struct TestResult {
    /// The test's name (stable; see the module documentation).
    pub name: String,
    /// The test statistic (χ², correlation, z, count, …; see `statistic_kind`).
    pub statistic: f64,
    /// What `statistic` is, e.g. `"chi2 df=15"`, `"r"`, `"z"`, `"pairs"`.
    pub statistic_kind: String,
    /// The p-value under the test's null hypothesis.
    pub p_value: f64,
    /// Observations the test used.
    pub samples: usize,
    /// The null hypothesis, in words.
    pub null: &'static str,
    /// Anything else worth showing (e.g. which client states show a relation).
    pub detail: String,
}

/// A test that did not run, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    /// The test's name.
    pub name: String,
    /// Why it did not run.
    pub reason: String,
}

/// A client state whose opened columns show a detectable-hash relation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Relation {
    /// The account pseudonym.
    pub account: String,
    /// The client-state id.
    pub client_state: Hex16,
    /// The threshold at which the relation appears (the order's T for `relation.detectable_hash`).
    pub threshold: usize,
    /// Columns tested (opened vouchers with distinct x′).
    pub columns: usize,
    /// Columns classified real by the relation.
    pub related: usize,
}

/// The result of [`distinguish`] or [`compare`].
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// The tests that ran, in a fixed order.
    pub tests: Vec<TestResult>,
    /// The tests that could not run.
    pub skipped: Vec<Skipped>,
    /// Client states with a detectable-hash relation at the order's T.
    pub relations: Vec<Relation>,
    /// Client states with a relation at a threshold below T.
    pub low_degree_relations: Vec<Relation>,
    /// The family-wise level (`ALPHA`).
    pub alpha: f64,
}

impl Report {
    /// `α / K`.
    pub fn corrected_alpha(&self) -> f64 {
        self.alpha / self.tests.len().max(1) as f64
    }

    /// The tests whose p-value is below the corrected level.
    pub fn flagged(&self) -> Vec<&TestResult> {
        let a = self.corrected_alpha();
        self.tests.iter().filter(|t| t.p_value < a).collect()
    }

    /// Whether no test is flagged.
    pub fn passes(&self) -> bool {
        self.flagged().is_empty()
    }

    /// `min(1, K · min pᵢ)` (1 if no test ran).
    pub fn combined_p(&self) -> f64 {
        let min = self.tests.iter().map(|t| t.p_value).fold(1.0f64, f64::min);
        (min * self.tests.len() as f64).min(1.0)
    }

    /// A test by name.
    pub fn get(&self, name: &str) -> Option<&TestResult> {
        self.tests.iter().find(|t| t.name == name)
    }

    /// Whether the named test ran and is flagged.
    pub fn is_flagged(&self, name: &str) -> bool {
        self.get(name).is_some_and(|t| t.p_value < self.corrected_alpha())
    }

    /// The smallest p-value (1 if no test ran).
    pub fn min_p(&self) -> f64 {
        self.tests.iter().map(|t| t.p_value).fold(1.0f64, f64::min)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let a = self.corrected_alpha();
        writeln!(
            f,
            "{} tests; Bonferroni: flagged if p < {} / {} = {:.3e}",
            self.tests.len(),
            self.alpha,
            self.tests.len(),
            a
        )?;
        writeln!(f, "{:<34} {:>14} {:<12} {:>7} {:>11}  verdict", "test", "statistic", "", "n", "p-value")?;
        for t in &self.tests {
            writeln!(
                f,
                "{:<34} {:>14.6} {:<12} {:>7} {:>11.3e}  {}{}",
                t.name,
                t.statistic,
                t.statistic_kind,
                t.samples,
                t.p_value,
                if t.p_value < a { "FLAGGED" } else { "pass" },
                if t.detail.is_empty() { String::new() } else { format!("  ({})", t.detail) }
            )?;
        }
        for s in &self.skipped {
            writeln!(f, "{:<34} skipped: {}", s.name, s.reason)?;
        }
        for (r, at) in self
            .relations
            .iter()
            .map(|r| (r, "at T"))
            .chain(self.low_degree_relations.iter().map(|r| (r, "below T, at t")))
        {
            writeln!(
                f,
                "relation {at} = {}: account {:?} client state {}: {} of {} columns related",
                r.threshold,
                r.account,
                r.client_state.to_hex(),
                r.related,
                r.columns
            )?;
        }
        let flagged = self.flagged();
        writeln!(
            f,
            "combined (Bonferroni) p = {:.3e}; {}",
            self.combined_p(),
            if flagged.is_empty() {
                "PASS: no test tells this view from the ideal".to_string()
            } else {
                format!("FLAGGED by {} test(s)", flagged.len())
            }
        )
    }
}

struct Battery {
    tests: Vec<TestResult>,
    skipped: Vec<Skipped>,
}

impl Battery {
    fn new() -> Self {
        Battery { tests: Vec::new(), skipped: Vec::new() }
    }

    fn push(&mut self, name: String, statistic: f64, kind: String, p: f64, n: usize, null: &'static str) {
        self.push_detail(name, statistic, kind, p, n, null, String::new());
    }

    #[allow(clippy::too_many_arguments)]
    fn push_detail(
        &mut self,
        name: String,
        statistic: f64,
        statistic_kind: String,
        p: f64,
        samples: usize,
        null: &'static str,
        detail: String,
    ) {
        let p_value = if p.is_nan() { 1.0 } else { p.clamp(0.0, 1.0) };
        self.tests.push(TestResult { name, statistic, statistic_kind, p_value, samples, null, detail });
    }

    fn skip(&mut self, name: String, reason: impl Into<String>) {
        self.skipped.push(Skipped { name, reason: reason.into() });
    }

    /// A relation test over `tested` client states, `found` of which showed a relation: p = 1 if none did, else the
    /// union bound `bound` on a chance relation; skipped with `none` if no state could be tested.
    fn relations(&mut self, name: &str, found: usize, tested: usize, bound: f64, none: String, detail: String) {
        if tested == 0 {
            self.skip(name.into(), none);
        } else {
            let p = if found == 0 { 1.0 } else { bound.min(1.0) };
            self.push_detail(name.into(), found as f64, "states".into(), p, tested, NULL_DETECT, detail);
        }
    }

    /// χ² against uniform, run only with at least 10 expected observations per bin (the approximation of the χ²
    /// tail is poor far out with fewer, and the corrected level is far out).
    fn chi2(&mut self, name: String, counts: &[u64], null: &'static str) {
        let n: u64 = counts.iter().sum();
        if n < 10 * counts.len() as u64 {
            self.skip(name, format!("{n} observations for {} bins (need 10 per bin)", counts.len()));
            return;
        }
        match stats::chi2_uniform(counts) {
            Some((stat, df, p)) => self.push(name, stat, format!("chi2 df={df}"), p, n as usize, null),
            None => self.skip(name, "no observation"),
        }
    }

    /// Uniformity of 4 bits (`counts` over 16 values): 16 bins from 320 observations on, the 2 most significant
    /// (`top`) or least significant bits (4 bins) from 80, 1 bit (exact two-sided binomial test) from 20; skipped
    /// below. So every χ² has at least 20 expected observations per bin.
    fn nibble(&mut self, name: String, counts: &[u64], top: bool, null: &'static str) {
        let n: u64 = counts.iter().sum();
        let merged = |bins: usize| {
            let mut c = vec![0u64; bins];
            for (v, &k) in counts.iter().enumerate() {
                let bin = if top { v / (16 / bins) } else { v % bins };
                if let Some(slot) = c.get_mut(bin) {
                    *slot += k;
                }
            }
            c
        };
        if n >= 320 {
            self.chi2(name, counts, null);
        } else if n >= 80 {
            match stats::chi2_uniform(&merged(4)) {
                Some((stat, df, p)) => {
                    let kind = format!("chi2 df={df} ({} 2 bits)", if top { "top" } else { "low" });
                    self.push(name, stat, kind, p, n as usize, null);
                }
                None => self.skip(name, "no observation"),
            }
        } else if n >= 20 {
            let ones = merged(2).get(1).copied().unwrap_or(0);
            let kind = format!("ones ({} bit, exact)", if top { "top" } else { "low" });
            self.push(name, ones as f64, kind, stats::binomial_two_sided(n, ones), n as usize, null);
        } else {
            self.skip(name, format!("{n} observations (need 20)"));
        }
    }

    fn correlation(&mut self, name: &str, a: &[f64], b: &[f64], null: &'static str) {
        let n = a.len().min(b.len());
        if n < 10 {
            self.skip(format!("corr.pearson.{name}"), format!("{n} pairs"));
            self.skip(format!("corr.spearman.{name}"), format!("{n} pairs"));
            return;
        }
        for (kind, r) in [("pearson", stats::pearson(a, b)), ("spearman", stats::spearman(a, b))] {
            let test = format!("corr.{kind}.{name}");
            match r {
                Some(r) => self.push(test, r, "r".into(), stats::correlation_p(r, n), n, null),
                None => self.skip(test, "a constant sample"),
            }
        }
    }

    fn repeats(&mut self, name: String, pairs: u64, n: usize, space: f64, null: &'static str) {
        let expected = (n as f64) * (n as f64 - 1.0) / 2.0 / space;
        let p = if pairs == 0 { 1.0 } else { expected.min(1.0) };
        self.push(name, pairs as f64, "pairs".into(), p, n, null);
    }

    fn mann_whitney(&mut self, name: String, opened: &[f64], other: &[f64], null: &'static str) {
        match stats::mann_whitney(opened, other) {
            Some((_, z, p)) => self.push(name, z, "z".into(), p, opened.len() + other.len(), null),
            None => self.skip(name, "a group is empty or every value is tied"),
        }
    }
}

fn count_bins(values: impl Iterator<Item = usize>, bins: usize) -> Vec<u64> {
    let mut c = vec![0u64; bins];
    for v in values {
        if let Some(slot) = c.get_mut(v) {
            *slot += 1;
        }
    }
    c
}

fn equal_pairs<T: std::hash::Hash + Eq>(values: impl Iterator<Item = T>) -> (u64, usize) {
    let mut counts: HashMap<T, u64> = HashMap::new();
    let mut n = 0;
    for v in values {
        *counts.entry(v).or_default() += 1;
        n += 1;
    }
    (counts.values().map(|&c| c * (c - 1) / 2).sum(), n)
}

/// A field of an opened voucher, as a number in `[0, 1)` (for correlations).
fn field_unit(o: &Opened, field: &str) -> Option<f64> {
    match field {
        "x" => Some(unit(scalar_top64(&o.x.0))),
        "share" => Some(unit(scalar_top64(&o.share.0))),
        "x_prime" => Some(unit(o.x_prime)),
        "ct_index" => Some(f64::from(o.ct_index)),
        r => r
            .strip_prefix('r')
            .and_then(|i| i.parse::<usize>().ok())
            .and_then(|i| i.checked_sub(1).and_then(|i| o.r.get(i)).map(|&v| unit(v))),
    }
}

const NULL_UNIFORM: &str = "the bits are uniform (independent uniform field values)";
const NULL_CORR: &str = "the two fields are uncorrelated";
const NULL_REPEAT: &str = "values are independent and uniform, so repeats have probability <= C(n,2)/K";
const NULL_LINE: &str = "points (x', r_i) are independent and uniform: P(3 collinear) <= C(n,3)/p";
const NULL_DETECT: &str = "columns are uniform: P(dependency among N <= T-1+s) <= (N(T-1)+2)/p per client state";
const NULL_META: &str = "the outcome (opened vs non-match) is independent of this quantity";

fn uniformity(b: &mut Battery, opened: &[&Opened], ids: &[Hex16], s: usize) {
    let xs = opened.iter().map(|o| &o.x.0);
    b.nibble("uniform.x.top4".into(), &count_bins(xs.clone().map(scalar_top4), 16), true, NULL_UNIFORM);
    b.nibble("uniform.x.low4".into(), &count_bins(xs.map(scalar_low4), 16), false, NULL_UNIFORM);
    let shares = opened.iter().map(|o| &o.share.0);
    b.nibble("uniform.share.top4".into(), &count_bins(shares.clone().map(scalar_top4), 16), true, NULL_UNIFORM);
    b.nibble("uniform.share.low4".into(), &count_bins(shares.map(scalar_low4), 16), false, NULL_UNIFORM);
    b.nibble(
        "uniform.x_prime.top4".into(),
        &count_bins(opened.iter().map(|o| fp_top4(o.x_prime)), 16),
        true,
        NULL_UNIFORM,
    );
    b.nibble(
        "uniform.x_prime.low4".into(),
        &count_bins(opened.iter().map(|o| fp_low4(o.x_prime)), 16),
        false,
        NULL_UNIFORM,
    );
    for i in 0..s {
        let col = || opened.iter().filter_map(move |o| o.r.get(i).copied());
        b.nibble(format!("uniform.r{}.top4", i + 1), &count_bins(col().map(fp_top4), 16), true, NULL_UNIFORM);
        b.nibble(format!("uniform.r{}.low4", i + 1), &count_bins(col().map(fp_low4), 16), false, NULL_UNIFORM);
    }
    b.chi2("uniform.ct_index".into(), &count_bins(opened.iter().map(|o| usize::from(o.ct_index)), 3), NULL_UNIFORM);
    let lo_bytes = |v: &[u8; 32]| v.iter().take(31).map(|&x| usize::from(x)).collect::<Vec<_>>();
    b.chi2("uniform.x.bytes".into(), &count_bins(opened.iter().flat_map(|o| lo_bytes(&o.x.0)), 256), NULL_UNIFORM);
    b.chi2(
        "uniform.share.bytes".into(),
        &count_bins(opened.iter().flat_map(|o| lo_bytes(&o.share.0)), 256),
        NULL_UNIFORM,
    );
    b.chi2(
        "uniform.r.bytes".into(),
        &count_bins(opened.iter().flat_map(|o| o.r.iter().flat_map(|v| v.to_le_bytes())).map(usize::from), 256),
        NULL_UNIFORM,
    );
    let id_top = ids.iter().map(|id| usize::from(id.0.last().copied().unwrap_or(0) >> 4));
    let id_low = ids.iter().map(|id| usize::from(id.0.first().copied().unwrap_or(0) & 0x0f));
    b.nibble("uniform.id.top4".into(), &count_bins(id_top, 16), true, NULL_UNIFORM);
    b.nibble("uniform.id.low4".into(), &count_bins(id_low, 16), false, NULL_UNIFORM);
    b.chi2("uniform.id.bytes".into(), &count_bins(ids.iter().flat_map(|id| id.0).map(usize::from), 256), NULL_UNIFORM);
    for field in ["x", "share", "x_prime", "r1"] {
        let values: Vec<f64> = opened.iter().filter_map(|o| field_unit(o, field)).collect();
        let name = format!("ks.{field}");
        if values.len() < 10 {
            b.skip(name, format!("{} values", values.len()));
            continue;
        }
        match stats::ks_uniform(&values) {
            Some((d, p)) => b.push(name, d, "D".into(), p, values.len(), "the value scaled to [0,1) is uniform"),
            None => b.skip(name, "no values"),
        }
    }
}

fn correlations(b: &mut Battery, view: &View, opened: &[&Opened], s: usize) {
    let mut pairs: Vec<(String, String)> = [("x", "share"), ("x", "x_prime"), ("share", "x_prime")]
        .iter()
        .map(|(a, c)| (a.to_string(), c.to_string()))
        .collect();
    if s >= 1 {
        for f in ["x", "share", "x_prime"] {
            pairs.push((f.into(), "r1".into()));
        }
    }
    for i in 1..s {
        pairs.push((format!("r{i}"), format!("r{}", i + 1)));
    }
    for (fa, fb) in &pairs {
        let (a, c): (Vec<f64>, Vec<f64>) =
            opened.iter().filter_map(|o| Some((field_unit(o, fa)?, field_unit(o, fb)?))).unzip();
        b.correlation(&format!("{fa}~{fb}"), &a, &c, NULL_CORR);
    }
    // Lag 1 within a client state, in (arrival, index) order.
    let mut lag_fields: Vec<String> = ["x", "share", "x_prime", "ct_index"].iter().map(|f| f.to_string()).collect();
    if s >= 1 {
        lag_fields.push("r1".into());
    }
    let states = view.opened_by_state();
    for field in &lag_fields {
        let (mut a, mut c) = (Vec::new(), Vec::new());
        for (_, idx) in &states {
            let mut seq: Vec<&VoucherRecord> = idx.iter().filter_map(|&i| view.vouchers.get(i)).collect();
            seq.sort_by_key(|v| (v.arrival_ms, v.index));
            let vals: Vec<f64> =
                seq.iter().filter_map(|v| v.opened.as_ref().and_then(|o| field_unit(o, field))).collect();
            for w in vals.windows(2) {
                if let [p, q] = w {
                    a.push(*p);
                    c.push(*q);
                }
            }
        }
        b.correlation(&format!("lag1.{field}"), &a, &c, NULL_CORR);
    }
}

fn repeats(b: &mut Battery, opened: &[&Opened], ids: &[Hex16]) {
    let (pairs, n) = equal_pairs(opened.iter().map(|o| o.x.0));
    b.repeats("repeat.x".into(), pairs, n, ELL_F - 1.0, NULL_REPEAT);
    let (pairs, n) = equal_pairs(opened.iter().map(|o| o.share.0));
    b.repeats("repeat.share".into(), pairs, n, ELL_F, NULL_REPEAT);
    let (pairs, n) = equal_pairs(opened.iter().map(|o| o.x_prime));
    b.repeats("repeat.x_prime".into(), pairs, n, P_F, NULL_REPEAT);
    let (pairs, n) = equal_pairs(opened.iter().flat_map(|o| o.r.iter().copied()));
    b.repeats("repeat.r".into(), pairs, n, P_F, NULL_REPEAT);
    let (pairs, n) = equal_pairs(ids.iter().copied());
    b.repeats("repeat.id".into(), pairs, n, 2f64.powi(128), NULL_REPEAT);
}

/// Whether three of the points (x, y) over 𝔽_p (distinct x) are collinear: for each anchor, the slopes to the
/// points after it; a repeated slope is a collinear triple.
fn has_collinear_triple(points: &[(Fp, Fp)]) -> bool {
    for (k, &(xa, ya)) in points.iter().enumerate() {
        let mut slopes = HashSet::new();
        for &(xb, yb) in points.iter().skip(k + 1) {
            let Some(inv) = (xb - xa).inv() else { continue };
            if !slopes.insert((yb - ya) * inv) {
                return true;
            }
        }
    }
    false
}

fn lines(b: &mut Battery, opened: &[&Opened], s: usize) {
    // Points with distinct x′ (repeats are the repeat test's business).
    let mut seen = HashSet::new();
    let distinct: Vec<&Opened> = opened.iter().copied().filter(|o| seen.insert(o.x_prime)).collect();
    for i in 0..s.min(8) {
        let name = format!("relation.line.x_prime~r{}", i + 1);
        if distinct.len() < 3 {
            b.skip(name, format!("{} points", distinct.len()));
            continue;
        }
        if distinct.len() > LINE_TEST_MAX {
            b.skip(name, format!("{} points, more than {LINE_TEST_MAX}", distinct.len()));
            continue;
        }
        let points: Vec<(Fp, Fp)> =
            distinct.iter().filter_map(|o| Some((Fp::new(o.x_prime)?, Fp::new(*o.r.get(i)?)?))).collect();
        let n = points.len() as f64;
        let bound = n * (n - 1.0) * (n - 2.0) / 6.0 / P_F;
        let found = has_collinear_triple(&points);
        b.push(
            name,
            f64::from(u8::from(found)),
            "collinear".into(),
            if found { bound.min(1.0) } else { 1.0 },
            points.len(),
            NULL_LINE,
        );
    }
}

/// The columns of a client state's opened vouchers with distinct x′ (first occurrence kept).
fn state_columns(view: &View, idx: &[usize]) -> Vec<Column> {
    let mut seen = HashSet::new();
    idx.iter()
        .filter_map(|&i| view.vouchers.get(i))
        .filter_map(|v| v.opened.as_ref())
        .filter(|o| seen.insert(o.x_prime))
        .filter_map(|o| {
            Some(Column { x: Fp::new(o.x_prime)?, r: o.r.iter().map(|&v| Fp::new(v)).collect::<Option<_>>()? })
        })
        .collect()
}

fn relations(b: &mut Battery, view: &View, s: usize) -> (Vec<Relation>, Vec<Relation>) {
    let t = usize::from(view.params.threshold);
    let states = view.opened_by_state();
    let columns: Vec<_> = states.iter().map(|(k, idx)| (k, state_columns(view, idx))).collect();
    let relation = |(account, state): &(String, Hex16), threshold: usize, cols: &[Column], real: usize| Relation {
        account: account.clone(),
        client_state: *state,
        threshold,
        columns: cols.len(),
        related: real,
    };
    // At T: a dependency needs at least T columns (any T − 1 with distinct x′ are independent), and more than
    // T − 1 + s columns are always dependent.
    let mut found = Vec::new();
    let mut clean = Vec::new();
    let (mut bound, mut tested, mut too_many) = (0.0f64, 0usize, 0usize);
    for (key, cols) in &columns {
        if cols.len() > t - 1 + s {
            too_many += 1;
            continue;
        }
        if cols.len() >= t {
            tested += 1;
            bound += (cols.len() as f64 * (t as f64 - 1.0) + 2.0) / P_F;
            if let Ok(Detection::Found { real, .. }) = detect(cols, t, s) {
                found.push(relation(key, t, cols, real.len()));
                continue;
            }
        }
        clean.push((*key, cols));
    }
    let detail = |n: usize| {
        if n > 0 { format!("{n} client states with more than t-1+s columns not tested") } else { String::new() }
    };
    b.relations(
        "relation.detectable_hash",
        found.len(),
        tested,
        bound,
        format!("no client state with T to T-1+s columns {}", detail(too_many)),
        detail(too_many),
    );
    // Below T, for the states without a relation at T: the rows of the matrix at t are a subset of those at T,
    // so a dependency at any t is one at the smallest t that can be tested, t* = max(2, N − s + 1).
    let mut low = Vec::new();
    let (mut bound, mut tested) = (0.0f64, 0usize);
    for (key, cols) in clean {
        let t_star = 2usize.max((cols.len() + 1).saturating_sub(s));
        if t_star >= t || cols.len() < t_star {
            continue;
        }
        tested += 1;
        bound += (cols.len() as f64 * (t_star as f64 - 1.0) + 2.0) / P_F;
        if let Ok(Detection::Found { real, .. }) = detect(cols, t_star, s) {
            low.push(relation(key, t_star, cols, real.len()));
        }
    }
    b.relations(
        "relation.low_degree",
        low.len(),
        tested,
        bound,
        "no client state to test below T".into(),
        String::new(),
    );
    (found, low)
}

fn metadata(b: &mut Battery, view: &View) {
    let expected = view.params.voucher_len;
    let wrong = view.vouchers.iter().filter(|v| v.length != expected).count();
    b.push_detail(
        "meta.length".into(),
        wrong as f64,
        "wrong".into(),
        if wrong == 0 { 1.0 } else { 0.0 },
        view.vouchers.len(),
        "every voucher has length voucher_len",
        if wrong == 0 { String::new() } else { format!("{wrong} vouchers not of length {expected}") },
    );
    let mut batch_size: HashMap<(String, Hex16), usize> = HashMap::new();
    for v in &view.vouchers {
        *batch_size.entry((v.account.clone(), v.batch)).or_default() += 1;
    }
    // Previous batch of the same account: by arrival time.
    let mut batches: HashMap<&str, Vec<(i64, Hex16)>> = HashMap::new();
    for v in &view.vouchers {
        batches.entry(v.account.as_str()).or_default().push((v.arrival_ms, v.batch));
    }
    let mut gap: HashMap<(String, Hex16), i64> = HashMap::new();
    for (account, list) in &mut batches {
        list.sort();
        list.dedup();
        for w in list.windows(2) {
            if let [(t0, _), (t1, b1)] = w {
                gap.entry((account.to_string(), *b1)).or_insert(t1.saturating_sub(*t0));
            }
        }
    }
    let (mut size_o, mut size_n, mut idx_o, mut idx_n, mut gap_o, mut gap_n) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for v in &view.vouchers {
        let key = (v.account.clone(), v.batch);
        let size = batch_size.get(&key).copied().unwrap_or(0) as f64;
        let g = gap.get(&key).map(|&g| g as f64);
        let (s, i, gg) = match v.outcome {
            Outcome::Opened => (&mut size_o, &mut idx_o, &mut gap_o),
            Outcome::NonMatch => (&mut size_n, &mut idx_n, &mut gap_n),
            _ => continue,
        };
        s.push(size);
        i.push(f64::from(v.index));
        if let Some(g) = g {
            gg.push(g);
        }
    }
    b.mann_whitney("meta.batch_size".into(), &size_o, &size_n, NULL_META);
    b.mann_whitney("meta.index".into(), &idx_o, &idx_n, NULL_META);
    b.mann_whitney("meta.gap".into(), &gap_o, &gap_n, NULL_META);
}

/// The ids the id tests look at: every voucher's but duplicates' (a duplicate repeats an id by definition).
fn test_ids(view: &View) -> Vec<Hex16> {
    view.vouchers.iter().filter(|v| v.outcome != Outcome::Duplicate).map(|v| v.id).collect()
}

/// Runs the battery on one view against the ideal (see the module documentation). The view is validated first.
pub fn distinguish(view: &View) -> Result<Report, ViewError> {
    view.validate()?;
    let s = usize::from(view.params.synthetic_cap);
    let opened: Vec<&Opened> = view.opened_payloads().collect();
    let ids = test_ids(view);
    let mut b = Battery::new();
    uniformity(&mut b, &opened, &ids, s);
    correlations(&mut b, view, &opened, s);
    repeats(&mut b, &opened, &ids);
    lines(&mut b, &opened, s);
    let (relations, low_degree_relations) = relations(&mut b, view, s);
    metadata(&mut b, view);
    Ok(Report { tests: b.tests, skipped: b.skipped, relations, low_degree_relations, alpha: ALPHA })
}

/// Two-sample tests between two views of the same order shape (same `synthetic_cap`): χ² homogeneity of the
/// top/low 4 bits of `x`, `share`, `x_prime`, `r1`, of `ct_index`, of the id's top 4 bits and of the outcomes;
/// two-sample Kolmogorov–Smirnov of `x`, `share`, `x_prime`, `r1` scaled to `[0, 1)` and of the opened count per
/// client state. `H₀`: both views come from the same distribution. Names start with `compare.`.
pub fn compare(a: &View, b: &View) -> Result<Report, ViewError> {
    a.validate()?;
    b.validate()?;
    if a.params.synthetic_cap != b.params.synthetic_cap {
        return Err(ViewError::Invalid { line: 1, reason: "the two views have different synthetic caps".into() });
    }
    const NULL: &str = "both views come from the same distribution";
    let (oa, ob): (Vec<&Opened>, Vec<&Opened>) = (a.opened_payloads().collect(), b.opened_payloads().collect());
    let mut bat = Battery::new();
    let homog = |bat: &mut Battery, name: String, ha: Vec<u64>, hb: Vec<u64>| match stats::chi2_homogeneity(&ha, &hb) {
        Some((stat, df, p)) => bat.push(
            name,
            stat,
            format!("chi2 df={df}"),
            p,
            (ha.iter().sum::<u64>() + hb.iter().sum::<u64>()) as usize,
            NULL,
        ),
        None => bat.skip(name, "an empty sample"),
    };
    type Bits = fn(&Opened) -> usize;
    let fields: [(&str, Bits, Bits); 3] = [
        ("x", |o| scalar_top4(&o.x.0), |o| scalar_low4(&o.x.0)),
        ("share", |o| scalar_top4(&o.share.0), |o| scalar_low4(&o.share.0)),
        ("x_prime", |o| fp_top4(o.x_prime), |o| fp_low4(o.x_prime)),
    ];
    for (name, top, low) in fields {
        homog(
            &mut bat,
            format!("compare.{name}.top4"),
            count_bins(oa.iter().map(|o| top(o)), 16),
            count_bins(ob.iter().map(|o| top(o)), 16),
        );
        homog(
            &mut bat,
            format!("compare.{name}.low4"),
            count_bins(oa.iter().map(|o| low(o)), 16),
            count_bins(ob.iter().map(|o| low(o)), 16),
        );
    }
    if a.params.synthetic_cap >= 1 {
        let r1 =
            |v: &[&Opened], f: fn(u64) -> usize| count_bins(v.iter().filter_map(|o| o.r.first().map(|&x| f(x))), 16);
        homog(&mut bat, "compare.r1.top4".into(), r1(&oa, fp_top4), r1(&ob, fp_top4));
        homog(&mut bat, "compare.r1.low4".into(), r1(&oa, fp_low4), r1(&ob, fp_low4));
    }
    let ct = |v: &[&Opened]| count_bins(v.iter().map(|o| usize::from(o.ct_index)), 3);
    homog(&mut bat, "compare.ct_index".into(), ct(&oa), ct(&ob));
    let idtop =
        |v: &View| count_bins(test_ids(v).iter().map(|id| usize::from(id.0.last().copied().unwrap_or(0) >> 4)), 16);
    homog(&mut bat, "compare.id.top4".into(), idtop(a), idtop(b));
    let outcome = |v: &View| {
        count_bins(
            v.vouchers.iter().map(|x| match x.outcome {
                Outcome::NonMatch => 0,
                Outcome::Opened => 1,
                Outcome::Invalid => 2,
                Outcome::Duplicate => 3,
            }),
            4,
        )
    };
    homog(&mut bat, "compare.outcome".into(), outcome(a), outcome(b));
    for field in ["x", "share", "x_prime", "r1"] {
        let va: Vec<f64> = oa.iter().filter_map(|o| field_unit(o, field)).collect();
        let vb: Vec<f64> = ob.iter().filter_map(|o| field_unit(o, field)).collect();
        let name = format!("compare.ks.{field}");
        match stats::ks_two_sample(&va, &vb) {
            Some((d, p)) => bat.push(name, d, "D".into(), p, va.len() + vb.len(), NULL),
            None => bat.skip(name, "an empty sample"),
        }
    }
    let per_state = |v: &View| v.opened_by_state().iter().map(|(_, idx)| idx.len() as f64).collect::<Vec<_>>();
    match stats::ks_two_sample(&per_state(a), &per_state(b)) {
        Some((d, p)) => bat.push("compare.ks.opened_per_state".into(), d, "D".into(), p, 0, NULL),
        None => bat.skip("compare.ks.opened_per_state".into(), "no client state"),
    }
    Ok(Report {
        tests: bat.tests,
        skipped: bat.skipped,
        relations: Vec::new(),
        low_degree_relations: Vec::new(),
        alpha: ALPHA,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulate::{IdealSpec, ideal_view, seeded_rng, simulate};
    use crate::view::{Bytes, Params};
    use vouchsafe_threshold::DetectableHash;

    fn spec(threshold: u16, cap: u16) -> IdealSpec {
        IdealSpec {
            params: Params {
                order: Bytes([7; 16]),
                epoch: 1,
                threshold,
                synthetic_cap: cap,
                synthetic_rate: 1 << 28,
                ad_len: 64,
                voucher_len: 365 + 8 * u64::from(cap) + 64,
            },
            accounts: 6,
            vouchers: 200,
            open_rate: 0.08,
            batch_size: 16,
        }
    }

    #[test]
    fn ideal_views_pass() {
        let mut failures = 0;
        for seed in 0..20 {
            let view = ideal_view(&spec(10, 12), &mut seeded_rng(seed)).unwrap();
            let report = distinguish(&view).unwrap();
            assert!(report.tests.len() > 60, "{report}");
            failures += usize::from(!report.passes());
            assert!(simulate(&view, seed).is_ok());
        }
        // Bonferroni at 0.01: expect 0.2 failures in 20; allow 1.
        assert!(failures <= 1, "{failures} of 20 ideal views failed");
        let a = ideal_view(&spec(10, 12), &mut seeded_rng(100)).unwrap();
        let b = ideal_view(&spec(10, 12), &mut seeded_rng(101)).unwrap();
        assert!(compare(&a, &b).unwrap().passes());
    }

    #[test]
    #[ignore = "slow: 1000 ideal views; run with --release -- --ignored"]
    fn false_positive_rate_of_ideal_views() {
        let n = 1000;
        let mut failures = 0;
        let mut by_test: std::collections::BTreeMap<String, usize> = Default::default();
        for seed in 0..n {
            let r = distinguish(&ideal_view(&spec(10, 30), &mut seeded_rng(seed)).unwrap()).unwrap();
            failures += usize::from(!r.passes());
            for t in r.flagged() {
                *by_test.entry(t.name.clone()).or_default() += 1;
            }
        }
        println!("ideal views flagged: {failures} of {n}; by test: {by_test:?}");
        assert!(failures <= 25);
    }

    /// Real columns of a detectable hash of degree t − 2 for one client state's first `k` opened vouchers.
    fn plant_columns(view: &mut View, account: &str, t: usize, k: usize, seed: u64) {
        let s = usize::from(view.params.synthetic_cap);
        let mut rng = seeded_rng(seed);
        let h = DetectableHash::random(t, s, &mut rng).unwrap();
        let mut done = 0;
        for v in view.vouchers.iter_mut().filter(|v| v.account == account) {
            if let (Outcome::Opened, Some(o)) = (v.outcome, v.opened.as_mut()) {
                if done == k {
                    break;
                }
                let col = h.column(Fp::new(o.x_prime).unwrap());
                o.r = col.r.iter().map(|x| x.value()).collect();
                done += 1;
            }
        }
        assert_eq!(done, k);
    }

    #[test]
    fn relations_at_and_below_t() {
        let mut sp = spec(6, 12);
        sp.open_rate = 0.1; // about 12 opened per account, below T − 1 + s = 17
        sp.vouchers = 120;
        let base = ideal_view(&sp, &mut seeded_rng(5)).unwrap();
        // T real columns in acct-0: flagged at T; T − 1: not.
        let mut v = base.clone();
        plant_columns(&mut v, "acct-0", 6, 6, 1);
        let r = distinguish(&v).unwrap();
        assert!(r.is_flagged("relation.detectable_hash"), "{r}");
        assert_eq!(r.relations.len(), 1);
        assert_eq!((r.relations[0].account.as_str(), r.relations[0].related), ("acct-0", 6));
        let mut v = base.clone();
        plant_columns(&mut v, "acct-0", 6, 5, 1);
        let r = distinguish(&v).unwrap();
        assert!(r.relations.is_empty() && r.low_degree_relations.is_empty(), "{r}");
        assert!(r.passes(), "{r}");
        // Polynomials of too low a degree (t = 3 < T = 6): three columns are already related.
        let mut v = base.clone();
        plant_columns(&mut v, "acct-1", 3, 3, 2);
        let r = distinguish(&v).unwrap();
        assert!(r.is_flagged("relation.low_degree"), "{r}");
        assert!(r.relations.is_empty());
        assert_eq!(r.low_degree_relations[0].account, "acct-1");
    }

    #[test]
    fn metadata_leaks() {
        let mut v = ideal_view(&spec(10, 4), &mut seeded_rng(9)).unwrap();
        // Opened vouchers sit at the end of their batch.
        let mut w = v.clone();
        for x in w.vouchers.iter_mut() {
            if x.outcome == Outcome::Opened {
                x.index += 100;
            }
        }
        assert!(distinguish(&w).unwrap().is_flagged("meta.index"));
        // One voucher is longer.
        v.vouchers[3].length += 1;
        let r = distinguish(&v).unwrap();
        assert!(r.is_flagged("meta.length"), "{r}");
        assert!(r.to_string().contains("FLAGGED"));
    }

    #[test]
    fn invalid_views_are_errors() {
        let mut v = ideal_view(&spec(10, 4), &mut seeded_rng(3)).unwrap();
        let i = v.vouchers.iter().position(|x| x.outcome == Outcome::Opened).unwrap();
        v.vouchers[i].opened.as_mut().unwrap().r.pop();
        assert!(distinguish(&v).is_err());
        assert!(simulate(&v, 1).is_err());
        let a = ideal_view(&spec(10, 4), &mut seeded_rng(3)).unwrap();
        let b = ideal_view(&spec(10, 5), &mut seeded_rng(3)).unwrap();
        assert!(compare(&a, &b).is_err());
    }
}
