//! The posterior grid and the two charts of docs/LEAKAGE.md §4 (written by `cargo run -p vouchsafe-leakage
//! --example grid -- --out docs/img`).
//!
//! Quantities, for synthetic rate `p`, cap `s`, threshold `T` and `n` vouchered images:
//!
//! * `E[c | innocent]`: the expected number of opened vouchers of an account with no matching image,
//!   `E[min(Bin(n, p), s)]`;
//! * `c95`: the 95th percentile of that count (the smallest `c` with `P(S <= c) >= 0.95`): 1 innocent account in 20
//!   opens more;
//! * `P(S = s)`: the probability that the cap binds (then order leaks, §4 *Order*);
//! * `P(R >= 1 | c95)`: what the server believes about such an innocent account at `c = c95`, under the binomial
//!   prior with match rate `q = 10⁻³` and under the uniform prior;
//! * `P(R = 0 | c = T − 1)`: the probability the server gives to an account just below the threshold being
//!   innocent (every opening synthetic), under both priors.
//!
//! And the table-update cover (§1): an update padded to `d·m` changed slots, of a cuckoo table with `k` positions
//! per hash, gives a device testing a candidate a likelihood ratio of at most `1 / (1 − (1 − d)^k)`.

use std::fmt::Write as _;

use crate::{LeakageError, LeakageParams, Prior, real_count_posterior, synthetic_count_distribution};

/// The rates of the grid.
pub const RATES: [f64; 4] = [0.005, 0.01, 0.02, 0.05];
/// The caps of the grid.
pub const CAPS: [u32; 3] = [10, 30, 60];
/// The thresholds of the grid.
pub const THRESHOLDS: [u32; 2] = [10, 30];
/// The image counts of the grid.
pub const IMAGES: [u64; 3] = [100, 1000, 10_000];
/// The binomial prior's per-image match rate.
pub const MATCH_RATE: f64 = 1e-3;

/// One row of the grid.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GridRow {
    /// `p`.
    pub rate: f64,
    /// `s`.
    pub cap: u32,
    /// `T`.
    pub threshold: u32,
    /// `n`.
    pub images: u64,
    /// `E[c | innocent]`.
    pub innocent_mean: f64,
    /// `c95`.
    pub innocent_c95: u64,
    /// `P(S = s)`.
    pub cap_binds: f64,
    /// `P(R >= 1 | c95)`, binomial prior (q = [`MATCH_RATE`]).
    pub any_real_c95_binomial: f64,
    /// `P(R >= 1 | c95)`, uniform prior.
    pub any_real_c95_uniform: f64,
    /// `P(R = 0 | c = T − 1)`, binomial prior.
    pub none_real_below_binomial: f64,
    /// `P(R = 0 | c = T − 1)`, uniform prior.
    pub none_real_below_uniform: f64,
}

/// The smallest `c` with `Σ_{j<=c} dist[j] >= level`.
fn percentile(dist: &[f64], level: f64) -> u64 {
    let mut acc = 0.0;
    for (c, p) in dist.iter().enumerate() {
        acc += p;
        if acc >= level * (1.0 - 1e-12) {
            return c as u64;
        }
    }
    dist.len().saturating_sub(1) as u64
}

/// One row of the grid.
pub fn grid_row(rate: f64, cap: u32, threshold: u32, images: u64) -> Result<GridRow, LeakageError> {
    let params = LeakageParams { vouchers: images, synthetic_rate: rate, synthetic_cap: cap, threshold };
    let dist = synthetic_count_distribution(images, rate, cap)?;
    let innocent_mean = dist.iter().enumerate().map(|(c, p)| c as f64 * p).sum();
    let c95 = percentile(&dist, 0.95);
    let cap_binds = if u64::from(cap) <= images { dist.last().copied().unwrap_or(0.0) } else { 0.0 };
    let binomial = Prior::Binomial { match_rate: MATCH_RATE };
    let any = |prior: &Prior, c: u64| real_count_posterior(&params, c, prior).map(|post| post.prob_any_real());
    let none = |prior: &Prior, c: u64| real_count_posterior(&params, c, prior).map(|post| post.probability(0));
    let below = u64::from(threshold) - 1;
    Ok(GridRow {
        rate,
        cap,
        threshold,
        images,
        innocent_mean,
        innocent_c95: c95,
        cap_binds,
        any_real_c95_binomial: any(&binomial, c95)?,
        any_real_c95_uniform: any(&Prior::Uniform, c95)?,
        none_real_below_binomial: none(&binomial, below)?,
        none_real_below_uniform: none(&Prior::Uniform, below)?,
    })
}

/// The whole grid: [`RATES`] × [`CAPS`] × [`THRESHOLDS`] × [`IMAGES`], in that nesting order (rate outermost).
pub fn posterior_grid() -> Result<Vec<GridRow>, LeakageError> {
    let mut rows = Vec::new();
    for &p in &RATES {
        for &s in &CAPS {
            for &t in &THRESHOLDS {
                for &n in &IMAGES {
                    rows.push(grid_row(p, s, t, n)?);
                }
            }
        }
    }
    Ok(rows)
}

fn prob(x: f64) -> String {
    if x == 0.0 {
        "0".into()
    } else if x < 1e-3 {
        format!("{x:.1e}")
    } else {
        format!("{x:.3}")
    }
}

/// The grid as a Markdown table.
pub fn grid_markdown(rows: &[GridRow]) -> String {
    let mut o = String::new();
    o.push_str(
        "| p | s | T | n | E[c \\| innocent] | c95 | P(S = s) | P(R ≥ 1 \\| c95), q = 10⁻³ | P(R ≥ 1 \\| c95), uniform \
         | P(R = 0 \\| c = T−1), q = 10⁻³ | P(R = 0 \\| c = T−1), uniform |\n",
    );
    o.push_str("|---|---|---|---|---|---|---|---|---|---|---|\n");
    for r in rows {
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {:.2} | {} | {} | {} | {} | {} | {} |",
            r.rate,
            r.cap,
            r.threshold,
            r.images,
            r.innocent_mean,
            r.innocent_c95,
            prob(r.cap_binds),
            prob(r.any_real_c95_binomial),
            prob(r.any_real_c95_uniform),
            prob(r.none_real_below_binomial),
            prob(r.none_real_below_uniform)
        );
    }
    o
}

// ---------------------------------------------------------------------------------------------
// Charts (hand-written SVG in the style of vouchsafe-render's report charts)
// ---------------------------------------------------------------------------------------------

const W: f64 = 720.0;
const H: f64 = 420.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 30.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 60.0;
const COLOURS: [&str; 4] = ["#0969da", "#8250df", "#bf8700", "#1a7f37"];
const STYLE: &str = "<style>text{font:13px system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;fill:#1b1f24}\
.muted{fill:#57606a}.grid{stroke:#d0d7de;stroke-width:1}.axis{stroke:#57606a;stroke-width:1}</style>";

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[derive(Clone, Copy)]
struct Axis {
    min: f64,
    max: f64,
    log: bool,
}

impl Axis {
    fn frac(&self, v: f64) -> f64 {
        if self.log {
            (v.max(f64::MIN_POSITIVE).log10() - self.min.log10()) / (self.max.log10() - self.min.log10())
        } else {
            (v - self.min) / (self.max - self.min)
        }
    }
}

struct Chart {
    x: Axis,
    y: Axis,
    out: String,
}

impl Chart {
    fn new(x: Axis, y: Axis, title: &str, desc: &str, id: &str) -> Self {
        let mut out = String::new();
        let _ = write!(
            out,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" viewBox=\"0 0 {W} {H}\" width=\"{W}\" height=\"{H}\" \
             aria-labelledby=\"{id}-t {id}-d\"><title id=\"{id}-t\">{}</title><desc id=\"{id}-d\">{}</desc>{STYLE}\
             <rect x=\"0\" y=\"0\" width=\"{W}\" height=\"{H}\" fill=\"#fff\"/>\
             <text x=\"{LEFT}\" y=\"24\" style=\"font-weight:600\">{}</text>",
            esc(title),
            esc(desc),
            esc(title)
        );
        Chart { x, y, out }
    }

    fn px(&self, v: f64) -> f64 {
        LEFT + self.x.frac(v) * (W - LEFT - RIGHT)
    }

    fn py(&self, v: f64) -> f64 {
        H - BOTTOM - self.y.frac(v) * (H - TOP - BOTTOM)
    }

    fn x_tick(&mut self, v: f64, label: &str) {
        let x = self.px(v);
        let _ = write!(
            self.out,
            "<line class=\"grid\" x1=\"{x:.1}\" y1=\"{TOP}\" x2=\"{x:.1}\" y2=\"{:.1}\"/>\
             <text class=\"muted\" x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            H - BOTTOM,
            H - BOTTOM + 18.0,
            esc(label)
        );
    }

    fn y_tick(&mut self, v: f64, label: &str) {
        let y = self.py(v);
        let _ = write!(
            self.out,
            "<line class=\"grid\" x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\"/>\
             <text class=\"muted\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            W - RIGHT,
            LEFT - 6.0,
            y + 4.5,
            esc(label)
        );
    }

    fn axes(&mut self, x_label: &str, y_label: &str) {
        let (x0, y0, x1) = (LEFT, H - BOTTOM, W - RIGHT);
        let _ = write!(
            self.out,
            "<line class=\"axis\" x1=\"{x0}\" y1=\"{y0}\" x2=\"{x1}\" y2=\"{y0}\"/>\
             <line class=\"axis\" x1=\"{x0}\" y1=\"{TOP}\" x2=\"{x0}\" y2=\"{y0}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\
             <text x=\"16\" y=\"{:.1}\" text-anchor=\"middle\" transform=\"rotate(-90 16 {:.1})\">{}</text>",
            (x0 + x1) / 2.0,
            H - 16.0,
            esc(x_label),
            (TOP + y0) / 2.0,
            (TOP + y0) / 2.0,
            esc(y_label)
        );
    }

    fn polyline(&mut self, points: &[(f64, f64)], colour: &str, dash: Option<&str>, tip: &str) {
        if points.is_empty() {
            return;
        }
        let pts: Vec<String> = points.iter().map(|&(x, y)| format!("{:.1},{:.1}", self.px(x), self.py(y))).collect();
        let dash = dash.map_or(String::new(), |d| format!(" stroke-dasharray=\"{d}\""));
        let _ = write!(
            self.out,
            "<g><title>{}</title><polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\"{dash} points=\"{}\"/></g>",
            esc(tip),
            pts.join(" ")
        );
    }

    fn dot(&mut self, x: f64, y: f64, colour: &str, tip: &str) {
        let _ = write!(
            self.out,
            "<g><title>{}</title><circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"4\" fill=\"{colour}\"/></g>",
            esc(tip),
            self.px(x),
            self.py(y)
        );
    }

    fn text(&mut self, x: f64, y: f64, s: &str, class: &str, anchor: &str) {
        let _ = write!(
            self.out,
            "<text class=\"{class}\" x=\"{x:.1}\" y=\"{y:.1}\" text-anchor=\"{anchor}\">{}</text>",
            esc(s)
        );
    }

    fn finish(mut self) -> String {
        self.out.push_str("</svg>\n");
        self.out
    }
}

/// `n` log-spaced values from `a` to `b`.
fn log_space(a: f64, b: f64, n: usize) -> Vec<f64> {
    let (la, lb) = (a.log10(), b.log10());
    (0..n).map(|i| 10f64.powf(la + (lb - la) * i as f64 / (n.max(2) - 1) as f64)).collect()
}

/// The privacy/cost chart: `P(R >= 1 | c95)` of an innocent account (binomial prior, q = [`MATCH_RATE`]) against
/// the synthetic rate `p` (log scale, 0.001 to 0.1), one line per cap, for `n` images and threshold `t`. Where the
/// cap binds (`P(S = s) > 1%`) the line is dotted. A dashed grey line marks the prior `P(R >= 1)`.
pub fn privacy_vs_rate_svg(images: u64, threshold: u32, caps: &[u32]) -> Result<String, LeakageError> {
    let rates = log_space(0.001, 0.1, 41);
    let prior_any = 1.0 - (1.0 - MATCH_RATE).powf(images as f64);
    let mut series = Vec::new();
    for &s in caps {
        let mut pts = Vec::new();
        for &p in &rates {
            let row = grid_row(p, s, threshold, images)?;
            pts.push((p, row.any_real_c95_binomial, row.cap_binds > 0.01, row.innocent_c95));
        }
        series.push((s, pts));
    }
    let desc: Vec<String> = series
        .iter()
        .map(|(s, pts)| {
            let at = |target: f64| {
                pts.iter().min_by(|a, b| (a.0 - target).abs().total_cmp(&(b.0 - target).abs())).map_or(0.0, |p| p.1)
            };
            format!("s = {s}: {:.3} at p = 0.001, {:.3} at p = 0.01, {:.3} at p = 0.1", at(0.001), at(0.01), at(0.1))
        })
        .collect();
    let mut c = Chart::new(
        Axis { min: 0.001, max: 0.1, log: true },
        Axis { min: 0.0, max: 1.0, log: false },
        &format!(
            "What the server believes about an innocent account at its 95th-percentile count (n = {images}, T = {threshold})"
        ),
        &desc.join("; "),
        "privacy",
    );
    for (v, l) in [
        (0.001, "0.001"),
        (0.002, "0.002"),
        (0.005, "0.005"),
        (0.01, "0.01"),
        (0.02, "0.02"),
        (0.05, "0.05"),
        (0.1, "0.1"),
    ] {
        c.x_tick(v, l);
    }
    for v in [0.0, 0.2, 0.4, 0.6, 0.8, 1.0] {
        c.y_tick(v, &format!("{v:.1}"));
    }
    c.axes("synthetic rate p (log scale)", "P(R ≥ 1 | c95), prior q = 10⁻³");
    c.polyline(&[(0.001, prior_any), (0.1, prior_any)], "#57606a", Some("6 4"), "the prior P(R ≥ 1)");
    c.text(W - RIGHT - 4.0, c.py(prior_any) - 6.0, &format!("prior P(R ≥ 1) = {prior_any:.3}"), "muted", "end");
    for (i, (s, pts)) in series.iter().enumerate() {
        let colour = COLOURS.get(i % COLOURS.len()).copied().unwrap_or("#0969da");
        let free: Vec<(f64, f64)> = pts.iter().filter(|p| !p.2).map(|p| (p.0, p.1)).collect();
        // The binding part starts at the last free point so the line is continuous.
        let first_bound = pts.iter().position(|p| p.2);
        let bound: Vec<(f64, f64)> = match first_bound {
            Some(k) => pts.iter().skip(k.saturating_sub(1)).map(|p| (p.0, p.1)).collect(),
            None => Vec::new(),
        };
        c.polyline(&free, colour, None, &format!("s = {s}"));
        c.polyline(&bound, colour, Some("2 4"), &format!("s = {s}, cap binds (P(S = s) > 1%)"));
        for p in pts.iter().step_by(10) {
            c.dot(p.0, p.1, colour, &format!("s = {s}, p = {:.4}: c95 = {}, P(R ≥ 1 | c95) = {:.3}", p.0, p.3, p.1));
        }
        let ly = TOP + 18.0 + 18.0 * i as f64;
        let _ = write!(
            c.out,
            "<line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"{colour}\" stroke-width=\"2\"/>",
            LEFT + 12.0,
            ly - 4.0,
            LEFT + 36.0,
            ly - 4.0
        );
        c.text(LEFT + 42.0, ly, &format!("s = {s}"), "", "start");
    }
    c.text(
        LEFT + 12.0,
        TOP + 18.0 + 18.0 * series.len() as f64,
        "dotted: the cap binds (P(S = s) > 1%), the server then learns R = c − s",
        "muted",
        "start",
    );
    Ok(c.finish())
}

/// The table-update cover bound: `1 / (1 − (1 − d)^k)` (∞ at `d = 0`).
pub fn update_cover_bound(d: f64, k: u32) -> f64 {
    let miss = (1.0 - d.clamp(0.0, 1.0)).powi(i32::try_from(k).unwrap_or(i32::MAX));
    1.0 / (1.0 - miss)
}

/// The padding fraction `d` at which the bound equals `bound` (> 1): `1 − (1 − 1/bound)^(1/k)`.
pub fn cover_fraction_for_bound(bound: f64, k: u32) -> f64 {
    1.0 - (1.0 - 1.0 / bound).powf(1.0 / f64::from(k.max(1)))
}

fn bytes_label(b: f64) -> String {
    if b >= 1e9 {
        format!("{:.1} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.0} kB", b / 1e3)
    } else {
        format!("{b:.0} B")
    }
}

/// The update-cover chart: the bound (log scale) against the bandwidth per update `d·m·36` bytes (log scale), for
/// `m` slots and `k` positions, marking the `d` at which the bound is 2, 5 and 10.
pub fn update_cover_svg(slots: u64, k: u32) -> String {
    let m = slots as f64;
    let ds = log_space(1e-4, 1.0, 81);
    let pts: Vec<(f64, f64)> = ds.iter().map(|&d| (d * m * 36.0, update_cover_bound(d, k))).collect();
    let marks: Vec<(f64, f64)> = [2.0, 5.0, 10.0].iter().map(|&b| (b, cover_fraction_for_bound(b, k))).collect();
    let desc: Vec<String> = marks
        .iter()
        .map(|(b, d)| format!("bound {b} at d = {d:.4} ({} per update)", bytes_label(d * m * 36.0)))
        .collect();
    let (xmin, xmax) = (1e-4 * m * 36.0, m * 36.0);
    let mut c = Chart::new(
        Axis { min: xmin, max: xmax, log: true },
        Axis { min: 1.0, max: 1e4, log: true },
        &format!("Table-update cover: likelihood-ratio bound against bandwidth (m = {slots} slots, k = {k})"),
        &desc.join("; "),
        "cover",
    );
    let mut tick = 1e3;
    while tick <= xmax * 1.001 {
        if tick >= xmin * 0.999 {
            c.x_tick(tick, &bytes_label(tick));
        }
        tick *= 10.0;
    }
    for (v, l) in [(1.0, "1"), (10.0, "10"), (100.0, "100"), (1e3, "1000"), (1e4, "10000")] {
        c.y_tick(v, l);
    }
    c.axes("bandwidth per update = d·m·36 bytes (log scale)", "likelihood ratio ≤ 1/(1 − (1 − d)^k) (log scale)");
    c.polyline(&pts, "#0969da", None, "bound");
    for (i, (b, d)) in marks.iter().enumerate() {
        let x = d * m * 36.0;
        let colour = COLOURS.get((i + 1) % COLOURS.len()).copied().unwrap_or("#8250df");
        c.dot(x, *b, colour, &format!("bound {b} at d = {d:.4}"));
        let label = format!("≤ {b}: d = {d:.3}, {}", bytes_label(x));
        let (px, py) = (c.px(x), c.py(*b));
        c.text(px + 8.0, py - 8.0, &label, "", "start");
        let _ = colour;
    }
    c.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_rows_are_sane() {
        let rows = posterior_grid().unwrap();
        assert_eq!(rows.len(), 4 * 3 * 2 * 3);
        for r in &rows {
            assert!(r.innocent_mean >= 0.0 && r.innocent_mean <= f64::from(r.cap));
            assert!(r.innocent_c95 <= u64::from(r.cap));
            for x in
                [r.any_real_c95_binomial, r.any_real_c95_uniform, r.none_real_below_binomial, r.none_real_below_uniform]
            {
                assert!((0.0..=1.0).contains(&x), "{r:?}");
            }
        }
        // n = 1000, p = 0.01, s = 60: E[c] = np = 10 (the cap never binds).
        let r = grid_row(0.01, 60, 30, 1000).unwrap();
        assert!((r.innocent_mean - 10.0).abs() < 1e-6, "{r:?}");
        assert_eq!(r.innocent_c95, 15);
        // The cap binds for n p >> s: c95 = s and the server is sure the innocent account is innocent.
        let r = grid_row(0.05, 10, 30, 10_000).unwrap();
        assert_eq!(r.innocent_c95, 10);
        assert!(r.cap_binds > 0.999 && r.any_real_c95_binomial < 1e-6, "{r:?}");
        let md = grid_markdown(&rows);
        assert_eq!(md.lines().count(), rows.len() + 2);
    }

    #[test]
    fn cover_bound() {
        assert!((update_cover_bound(1.0, 3) - 1.0).abs() < 1e-12);
        for b in [2.0, 5.0, 10.0] {
            let d = cover_fraction_for_bound(b, 3);
            assert!((update_cover_bound(d, 3) - b).abs() < 1e-9);
        }
        assert!((cover_fraction_for_bound(2.0, 3) - (1.0 - 0.5f64.cbrt())).abs() < 1e-12);
        assert!(update_cover_bound(0.0, 3).is_infinite());
    }

    #[test]
    fn charts_are_svg() {
        let svg = privacy_vs_rate_svg(1000, 30, &CAPS).unwrap();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 1 + 2 * CAPS.len());
        let svg = update_cover_svg(1_000_000, 3);
        assert!(svg.contains("7.4 MB") && svg.contains("2.6 MB") && svg.contains("1.2 MB"), "{svg}");
    }
}
