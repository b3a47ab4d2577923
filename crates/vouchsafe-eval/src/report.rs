//! The evaluation's outputs: a text table, JSON, and an HTML page with SVG charts (no script, no external file).

use std::fmt::Write as _;

use serde::Serialize;

use crate::corpus::CorpusSummary;
use crate::measure::{FalseMatches, MAX_RADIUS, SchemeResult};
use crate::stats::{IMAGES_PER_DAY, INDICATORS};

/// Version of the JSON report's layout.
pub const REPORT_VERSION: u32 = 1;

/// A whole evaluation.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// [`REPORT_VERSION`].
    pub version: u32,
    /// What was read.
    pub corpus: CorpusSummary,
    /// SHA-256 over the originals' names and pixels, in order: two runs on the same corpus print the same value.
    pub corpus_digest: String,
    /// One result per configuration.
    pub schemes: Vec<SchemeResult>,
}

fn pct(v: f64) -> String {
    format!("{:.1} %", v * 100.0)
}

fn sci(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if (1e-2..1e4).contains(&v.abs()) {
        format!("{v:.3}")
    } else {
        format!("{v:.2e}")
    }
}

fn fm_line(name: &str, f: &FalseMatches) -> String {
    let mut s = format!(
        "{name}: {} pairs, {} exact (P(exact) < {} at 95 % from the count alone)",
        f.pairs,
        f.exact,
        sci(f.exact_upper95)
    );
    if let Some(fit) = &f.fit {
        let _ = write!(
            s,
            "; mean {:.3}, sd {:.4}, effective bits {:.1}; P(exact) fit {} → tail-corrected {}",
            fit.mean_fraction,
            fit.std_fraction,
            fit.effective_bits,
            sci(fit.p_exact_fit),
            sci(fit.p_exact)
        );
        if let (Some(k), Some(o), Some(t)) = (fit.tail_k, fit.tail_observed, fit.tail_fit) {
            let _ = write!(s, " (at d ≤ {k}: observed {} vs fit {})", sci(o), sci(t));
        }
    }
    s
}

/// The plain-text table.
pub fn to_text(r: &Report) -> String {
    let mut s = String::new();
    let c = &r.corpus;
    let _ = writeln!(
        s,
        "corpus: {} files read ({} excluded, {} undecodable, {} too small, {} cut-outs, {} duplicates merged) → {} pictures + {} tiles ({} repeating tiles left out); digest {}",
        c.files,
        c.excluded,
        c.undecodable,
        c.too_small,
        c.cutouts,
        c.duplicates,
        c.pictures,
        c.tiles,
        c.duplicate_tiles,
        r.corpus_digest
    );
    for sr in &r.schemes {
        let i = &sr.scheme;
        let _ = writeln!(
            s,
            "\n== {} — {} ({} probes; {:.2} table entries per indicator, of up to {}; {:.0} s)",
            i.name, i.description, i.probes, sr.table_entries, i.variants, sr.seconds
        );
        let rej: Vec<String> = sr.rejected.iter().map(|x| format!("{} {}", x.reason, x.originals)).collect();
        let _ = writeln!(
            s,
            "originals: {} hashed, {} accepted by the quality gate{}",
            sr.originals,
            sr.accepted,
            if rej.is_empty() { String::new() } else { format!(" (rejected: {})", rej.join(", ")) }
        );
        let _ = writeln!(
            s,
            "{:<16} {:>6} {:>8} {:>9} {:>8} {:>8} {:>8} {:>6}  target",
            "edit", "trials", "exact", "confirmed", "r≤2", "r≤4", "r≤8", "gate"
        );
        for e in &sr.edits {
            let t = match (e.target, e.meets_target()) {
                (Some(t), Some(true)) => format!("≥ {} met", pct(t)),
                (Some(t), _) => format!("≥ {} MISSED", pct(t)),
                _ => String::new(),
            };
            let _ = writeln!(
                s,
                "{:<16} {:>6} {:>8} {:>9} {:>8} {:>8} {:>8} {:>6}  {t}",
                e.name,
                e.trials,
                pct(e.recall()),
                pct(e.confirmed_recall()),
                pct(e.recall_at(2)),
                pct(e.recall_at(4)),
                pct(e.recall_at(MAX_RADIUS)),
                e.gate_rejected
            );
        }
        let _ = writeln!(s, "{}", fm_line("unrelated originals", &sr.unrelated));
        let _ = writeln!(s, "{}", fm_line("edits vs other originals", &sr.edit_vs_other));
        for (what, f) in [("unrelated", &sr.unrelated), ("edit vs other", &sr.edit_vs_other)] {
            for l in &f.listed {
                let _ = writeln!(s, "  d = {} ({what}): {} of {} ~ {}", l.distance, l.edit, l.first, l.second);
            }
        }
        if let Some(f) = &sr.unrelated.fit {
            let _ = writeln!(
                s,
                "extrapolated exact false matches per day at {:.0e} indicators × {:.0e} images × {:.2} comparisons: {} (target < 1)",
                INDICATORS,
                IMAGES_PER_DAY,
                f64::from(i.probes) * sr.table_entries,
                sci(f.false_matches_per_day)
            );
        }
    }
    s
}

/// The JSON report.
pub fn to_json(r: &Report) -> Result<String, serde_json::Error> {
    serde_json::to_string_pretty(r)
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

const STYLE: &str = "<style>text{font:12px sans-serif;fill:#222}.muted{fill:#666}.grid{stroke:#e5e5e5}\
.axis{stroke:#444}</style>";

/// Recall per edit as horizontal bars: exact (dark), radius ≤ 4 (light, for reference), and the target as a tick.
pub fn recall_chart(sr: &SchemeResult, id: &str) -> String {
    let row = 18.0;
    let left = 130.0;
    let width = 520.0;
    let top = 40.0;
    let h = top + row * sr.edits.len() as f64 + 40.0;
    let w = left + width + 40.0;
    let mut o = String::new();
    let _ = write!(
        o,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" \
         aria-labelledby=\"{id}-t\"><title id=\"{id}-t\">Recall per edit, {}</title>{STYLE}\
         <rect width=\"{w}\" height=\"{h}\" fill=\"#fff\"/><text x=\"{left}\" y=\"20\" style=\"font-weight:600\">\
         Recall per edit, {} (dark: exact match; light: within distance 4; red tick: target)</text>",
        esc(&sr.scheme.name),
        esc(&sr.scheme.name)
    );
    for t in [0.0, 0.25, 0.5, 0.75, 1.0] {
        let x = left + t * width;
        let _ = write!(
            o,
            "<line class=\"grid\" x1=\"{x}\" y1=\"{top}\" x2=\"{x}\" y2=\"{:.1}\"/><text class=\"muted\" x=\"{x}\" y=\"{:.1}\" \
             text-anchor=\"middle\">{:.0} %</text>",
            h - 36.0,
            h - 20.0,
            t * 100.0
        );
    }
    for (k, e) in sr.edits.iter().enumerate() {
        let y = top + row * k as f64;
        let (r0, r4) = (e.recall(), e.recall_at(4));
        let _ = write!(
            o,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\
             <rect x=\"{left}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#9ecae1\"><title>{}: within 4: {}</title></rect>\
             <rect x=\"{left}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#08519c\"><title>{}: exact: {}</title></rect>",
            left - 6.0,
            y + 12.5,
            esc(&e.name),
            y + 2.0,
            r4 * width,
            row - 4.0,
            esc(&e.name),
            pct(r4),
            y + 2.0,
            r0 * width,
            row - 4.0,
            esc(&e.name),
            pct(r0)
        );
        if let Some(t) = e.target {
            let x = left + t * width;
            let _ = write!(
                o,
                "<line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#d62728\" stroke-width=\"2\"/>",
                y,
                y + row
            );
        }
    }
    o.push_str("</svg>");
    o
}

/// Distance distributions: edits against their own original (genuine) and unrelated pairs (impostor), as fractions
/// on a log scale, with the fitted binomial of the unrelated pairs.
pub fn distance_chart(sr: &SchemeResult, id: &str) -> String {
    let bits = sr.scheme.bits as usize;
    let (w, h, left, right, top, bottom) = (760.0, 340.0, 60.0, 20.0, 40.0, 50.0);
    let mut genuine = vec![0u64; bits + 1];
    for e in &sr.edits {
        if e.family != crate::edits::Family::KnownMiss {
            for (a, b) in genuine.iter_mut().zip(&e.distance_hist) {
                *a += b;
            }
        }
    }
    let norm = |v: &[u64]| -> Vec<f64> {
        let t: u64 = v.iter().sum();
        v.iter().map(|&c| if t == 0 { 0.0 } else { c as f64 / t as f64 }).collect()
    };
    let (g, u) = (norm(&genuine), norm(&sr.unrelated.hist));
    let ymin: f64 = 1e-6;
    let px = |d: f64| left + d / bits.max(1) as f64 * (w - left - right);
    let py = |v: f64| {
        let f = (v.max(ymin).log10() - ymin.log10()) / (0.0 - ymin.log10());
        h - bottom - f * (h - top - bottom)
    };
    let mut o = String::new();
    let _ = write!(
        o,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" \
         aria-labelledby=\"{id}-t\"><title id=\"{id}-t\">Hamming distance distributions, {}</title>{STYLE}\
         <rect width=\"{w}\" height=\"{h}\" fill=\"#fff\"/><text x=\"{left}\" y=\"20\" style=\"font-weight:600\">\
         Hamming distances: edits to their original (blue), unrelated pairs (orange), binomial fit (dashed)</text>",
        esc(&sr.scheme.name)
    );
    for e in 0..=6 {
        let v = 10f64.powi(-e);
        let y = py(v);
        let _ = write!(
            o,
            "<line class=\"grid\" x1=\"{left}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\"/><text class=\"muted\" x=\"{:.1}\" \
             y=\"{:.1}\" text-anchor=\"end\">1e-{e}</text>",
            w - right,
            left - 6.0,
            y + 4.0
        );
    }
    let step = if bits > 64 { 32 } else { 8 };
    for d in (0..=bits).step_by(step) {
        let x = px(d as f64);
        let _ = write!(
            o,
            "<line class=\"grid\" x1=\"{x:.1}\" y1=\"{top}\" x2=\"{x:.1}\" y2=\"{:.1}\"/><text class=\"muted\" x=\"{x:.1}\" \
             y=\"{:.1}\" text-anchor=\"middle\">{d}</text>",
            h - bottom,
            h - bottom + 16.0
        );
    }
    let _ = write!(
        o,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">Hamming distance (bits)</text>",
        (left + w - right) / 2.0,
        h - 12.0
    );
    let bar = (w - left - right) / (bits + 1) as f64;
    for (series, colour) in [(&g, "#1f77b4"), (&u, "#ff7f0e")] {
        for (d, &v) in series.iter().enumerate() {
            if v <= 0.0 {
                continue;
            }
            let (x, y) = (px(d as f64) - bar / 2.0, py(v));
            let _ = write!(
                o,
                "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{colour}\" fill-opacity=\"0.6\"><title>d = {d}: {}</title></rect>",
                bar.max(1.0),
                (h - bottom - y).max(0.0),
                sci(v)
            );
        }
    }
    if let Some(f) = &sr.unrelated.fit {
        let n = f.effective_bits;
        // A median hash keeps its count of ones, so distances between its hashes are even: if (almost) no pair is at
        // an odd distance, the fit's mass of two neighbouring distances is drawn on the even one.
        let odd: f64 = u.iter().skip(1).step_by(2).sum();
        let even_only = odd < 0.05;
        let mut pts = String::new();
        for d in (0..=bits).filter(|d| !even_only || d % 2 == 0) {
            // The binomial of N effective bits, mapped back to the hash's bits: mass per bit of distance.
            let k = d as f64 * n / bits as f64;
            let lnp = crate::stats::ln_binomial_pmf(n, f.mean_fraction, k);
            let v = lnp.exp() * n / bits as f64 * if even_only { 2.0 } else { 1.0 };
            if v >= ymin {
                let _ = write!(pts, "{:.1},{:.1} ", px(d as f64), py(v));
            }
        }
        let _ = write!(o, "<polyline points=\"{pts}\" fill=\"none\" stroke=\"#444\" stroke-dasharray=\"4 3\"/>");
    }
    o.push_str("</svg>");
    o
}

/// The HTML page.
pub fn to_html(r: &Report) -> String {
    let mut s = String::from(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>vouchsafe eval</title><style>\
         body{font:14px/1.45 sans-serif;max-width:980px;margin:2em auto;padding:0 1em;color:#222}\
         table{border-collapse:collapse;margin:1em 0}td,th{border-bottom:1px solid #ddd;padding:3px 8px;text-align:right}\
         td:first-child,th:first-child{text-align:left}.miss{color:#b00;font-weight:600}.met{color:#070}\
         code{background:#f4f4f4;padding:0 3px}</style></head><body><h1>Detection quality on natural images</h1>",
    );
    let c = &r.corpus;
    let _ = write!(
        s,
        "<p>{} image files read ({} excluded as kept for the independent check, {} undecodable, {} under 256 px, {} \
         cut-outs (logos, icons), {} duplicates merged): <b>{} pictures and {} tiles</b> ({} tiles that repeat an earlier tile of their picture left out). Corpus digest <code>{}</code>.</p>",
        c.files,
        c.excluded,
        c.undecodable,
        c.too_small,
        c.cutouts,
        c.duplicates,
        c.pictures,
        c.tiles,
        c.duplicate_tiles,
        esc(&r.corpus_digest)
    );
    for (k, sr) in r.schemes.iter().enumerate() {
        let i = &sr.scheme;
        let _ = write!(
            s,
            "<h2>{}</h2><p>{}. {} probe(s) per image, {:.2} table entries per indicator (of up to {}). {} originals, {} \
             accepted by the quality gate.</p>",
            esc(&i.name),
            esc(&i.description),
            i.probes,
            sr.table_entries,
            i.variants,
            sr.originals,
            sr.accepted
        );
        s.push_str("<table><tr><th>edit</th><th>trials</th><th>exact</th><th>exact, confirmed by the secondary check</th><th>≤ 2</th><th>≤ 4</th><th>≤ 8</th><th>gate rejected</th><th>target</th></tr>");
        for e in &sr.edits {
            let t = match (e.target, e.meets_target()) {
                (Some(t), Some(true)) => format!("<span class=\"met\">≥ {} met</span>", pct(t)),
                (Some(t), _) => format!("<span class=\"miss\">≥ {} missed</span>", pct(t)),
                _ => String::new(),
            };
            let _ = write!(
                s,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{t}</td></tr>",
                esc(&e.name),
                e.trials,
                pct(e.recall()),
                pct(e.confirmed_recall()),
                pct(e.recall_at(2)),
                pct(e.recall_at(4)),
                pct(e.recall_at(MAX_RADIUS)),
                e.gate_rejected
            );
        }
        s.push_str("</table>");
        s.push_str(&recall_chart(sr, &format!("recall{k}")));
        let _ = write!(
            s,
            "<h3>False matches</h3><p>{}</p><p>{}</p>",
            esc(&fm_line("Unrelated originals", &sr.unrelated)),
            esc(&fm_line("Edits vs other originals", &sr.edit_vs_other))
        );
        if let Some(f) = &sr.unrelated.fit {
            let _ = write!(
                s,
                "<p><b>Extrapolated exact false matches per day</b> at {:.0e} indicators × {:.0e} images × {:.2} \
                 comparisons each: <b>{}</b> (target: under 1).</p>",
                INDICATORS,
                IMAGES_PER_DAY,
                f64::from(i.probes) * sr.table_entries,
                esc(&sci(f.false_matches_per_day))
            );
        }
        s.push_str(&distance_chart(sr, &format!("dist{k}")));
        let listed: Vec<_> = sr.unrelated.listed.iter().chain(&sr.edit_vs_other.listed).collect();
        if !listed.is_empty() {
            let _ = write!(
                s,
                "<h3>Pairs within distance {}</h3><p>Every exact false match and near miss, so each can be looked at                  (at most {} per set).</p><table><tr><th>distance</th><th>edit</th><th>original</th><th>other original</th></tr>",
                crate::measure::LIST_RADIUS,
                crate::measure::MAX_LISTED
            );
            for l in listed {
                let _ = write!(
                    s,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    l.distance,
                    esc(&l.edit),
                    esc(&l.first),
                    esc(&l.second)
                );
            }
            s.push_str("</table>");
        }
    }
    if !c.merged.is_empty() {
        s.push_str("<h2>Files merged as one picture</h2><table><tr><th>kept (first seen)</th><th>merged</th></tr>");
        for (a, b) in &c.merged {
            let _ = write!(s, "<tr><td>{}</td><td>{}</td></tr>", esc(a), esc(b));
        }
        s.push_str("</table>");
    }
    s.push_str("<p>Method: docs/HASHING.md §8. Produced by <code>vouchsafe eval</code>.</p></body></html>\n");
    s
}
