//! The HTML form: one self-contained page. Inline CSS, four hand-written inline SVG charts, no JavaScript (and a
//! Content-Security-Policy of `default-src 'none'` that would refuse any script, frame, image load or connection
//! even if one were injected), every text escaped.
//!
//! Charts: (a) the funnel from vouchers received to reports the Centre forwarded, log-scale bars with their values;
//! (b) review outcomes and the Centre's verdicts; (c) appeals filed, upheld, dismissed; (d) a histogram of the
//! decision times. Each has a `<title>` and a text alternative; every bar has a tooltip (`<title>`) with the
//! counter's name and exact value.

use std::fmt::Write as _;

use crate::markdown::{DRAFT_WARNING, period};
use crate::text::{duration, group_digits, hex_lines, html as esc, utc};
use crate::{APPEALS, CounterRow, FUNNEL, GROUPS, OUTCOMES, ReportView, histogram, quantiles, rows};

const CSS: &str = "\
body{font:16px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1b1f24;background:#fff;margin:0}\
main{max-width:60rem;margin:0 auto;padding:1.5rem}\
h1{font-size:1.8rem;margin:.2rem 0 1rem}h2{font-size:1.25rem;margin:2rem 0 .6rem;border-bottom:1px solid #d0d7de}\
.draft{border:3px solid #b42318;background:#fef3f2;color:#7a271a;padding:.8rem 1rem;font-weight:700;font-size:1.1rem}\
.signed{border:2px solid #067647;background:#ecfdf3;color:#054f31;padding:.6rem 1rem}\
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}dl.meta dt{font-weight:600}\
dl.meta dd{margin:0;overflow-wrap:anywhere}\
table{border-collapse:collapse;width:100%;margin:.4rem 0}th,td{border:1px solid #d0d7de;padding:.3rem .5rem;\
text-align:left;vertical-align:top}td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}\
tbody th{background:#f6f8fa}code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}\
pre.hex{font-size:.8rem;white-space:pre-wrap;word-break:break-all;background:#f6f8fa;padding:.6rem}\
svg{max-width:100%;height:auto;display:block;margin:.4rem 0}\
svg text{font:13px system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;fill:#1b1f24}\
svg .muted{fill:#57606a}svg .bar{fill:#0969da}svg .bar2{fill:#8250df}svg .bar3{fill:#bf8700}\
.note{color:#57606a;font-size:.9rem}footer{margin-top:2rem;color:#57606a;font-size:.9rem}";

const W: f64 = 800.0;
const LABEL_X: f64 = 230.0;
const BAR_X: f64 = 240.0;
const BAR_W: f64 = 340.0;
const ROW_H: f64 = 30.0;

#[derive(Clone, Copy)]
enum Scale {
    Log,
    Linear,
}

/// Bar length for `v` of at most `max`, at least 2 for any non-zero value.
fn bar_len(v: u64, max: u64, scale: Scale) -> f64 {
    if v == 0 || max == 0 {
        return 0.0;
    }
    let frac = match scale {
        Scale::Log => (v as f64).ln_1p() / (max as f64).ln_1p(),
        Scale::Linear => v as f64 / max as f64,
    };
    (frac * BAR_W).clamp(2.0, BAR_W)
}

/// A horizontal bar chart of `bars` (`(counter name, label)`), values taken from the view.
fn hbars(v: &ReportView, id: &str, title: &str, bars: &[(&str, &str)], scale: Scale, class: &str) -> String {
    let values: Vec<Option<u64>> = bars.iter().map(|(name, _)| v.counter(name)).collect();
    let max = values.iter().flatten().copied().max().unwrap_or(0);
    let note = match scale {
        Scale::Log => " (logarithmic scale)",
        Scale::Linear => "",
    };
    let top = 8.0;
    let height = top + ROW_H * bars.len() as f64 + if matches!(scale, Scale::Log) { 24.0 } else { 8.0 };
    let alt: Vec<String> = bars
        .iter()
        .zip(&values)
        .map(|((_, label), value)| format!("{label}: {}", value.map_or_else(|| "not reported".into(), group_digits)))
        .collect();
    let mut o = String::new();
    let _ = write!(
        o,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" viewBox=\"0 0 {W} {height}\" width=\"{W}\" \
         height=\"{height}\" aria-labelledby=\"{id}-t {id}-d\"><title id=\"{id}-t\">{}</title><desc id=\"{id}-d\">{}\
         </desc>",
        esc(&format!("{title}{note}")),
        esc(&alt.join("; "))
    );
    for (i, ((name, label), value)) in bars.iter().zip(&values).enumerate() {
        let y = top + ROW_H * i as f64;
        let text_y = y + ROW_H / 2.0 + 4.5;
        let tip = match value {
            Some(n) => format!("{name} = {n}"),
            None => format!("{name}: not reported"),
        };
        let _ = write!(o, "<g><title>{}</title>", esc(&tip));
        let _ = write!(o, "<text x=\"{LABEL_X}\" y=\"{text_y:.1}\" text-anchor=\"end\">{}</text>", esc(label));
        match value {
            Some(n) => {
                let len = bar_len(*n, max, scale);
                let _ = write!(
                    o,
                    "<rect class=\"{class}\" x=\"{BAR_X}\" y=\"{:.1}\" width=\"{len:.1}\" height=\"{:.1}\"/>\
                     <text x=\"{:.1}\" y=\"{text_y:.1}\">{}</text>",
                    y + 6.0,
                    ROW_H - 12.0,
                    BAR_X + len + 6.0,
                    esc(&group_digits(*n))
                );
            }
            None => {
                let _ = write!(o, "<text class=\"muted\" x=\"{BAR_X}\" y=\"{text_y:.1}\">not reported</text>");
            }
        }
        let _ = write!(o, "</g>");
    }
    if matches!(scale, Scale::Log) {
        let _ = write!(
            o,
            "<text class=\"muted\" x=\"{BAR_X}\" y=\"{:.1}\">bar length: logarithmic in (value + 1)</text>",
            height - 6.0
        );
    }
    o.push_str("</svg>");
    o
}

/// The decision-time histogram (vertical bars over [`crate::TIME_BINS`]).
fn time_histogram(samples: &[u64]) -> String {
    let bins = histogram(samples);
    let max = bins.iter().map(|(_, n)| *n).max().unwrap_or(0);
    let (left, top, plot_h) = (40.0, 24.0, 180.0);
    let slot = (W - left - 20.0) / bins.len().max(1) as f64;
    let base = top + plot_h;
    let height = base + 34.0;
    let alt: Vec<String> = bins.iter().map(|(l, n)| format!("{l}: {n}")).collect();
    let mut o = String::new();
    let _ = write!(
        o,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" viewBox=\"0 0 {W} {height}\" width=\"{W}\" \
         height=\"{height}\" aria-labelledby=\"times-t times-d\"><title id=\"times-t\">Decided cases by time from \
         creation to final decision</title><desc id=\"times-d\">{}</desc>",
        esc(&alt.join("; "))
    );
    let _ = write!(
        o,
        "<line x1=\"{left}\" y1=\"{base}\" x2=\"{:.1}\" y2=\"{base}\" stroke=\"#57606a\" stroke-width=\"1\"/>",
        W - 20.0
    );
    for (i, (label, n)) in bins.iter().enumerate() {
        let x = left + slot * i as f64;
        let h = if max == 0 || *n == 0 { 0.0 } else { (*n as f64 / max as f64 * plot_h).max(2.0) };
        let cx = x + slot / 2.0;
        let _ = write!(
            o,
            "<g><title>{}</title><rect class=\"bar3\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\"/>\
             <text x=\"{cx:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\
             <text x=\"{cx:.1}\" y=\"{:.1}\" text-anchor=\"middle\" class=\"muted\">{}</text></g>",
            esc(&format!("{label}: {n} cases")),
            x + slot * 0.15,
            base - h,
            slot * 0.7,
            base - h - 6.0,
            esc(&group_digits(*n)),
            base + 20.0,
            esc(label)
        );
    }
    o.push_str("</svg>");
    o
}

fn counter_rows(o: &mut String, heading: &str, rows: &[&CounterRow<'_>]) {
    let _ = write!(o, "<tbody><tr><th colspan=\"3\">{}</th></tr>", esc(heading));
    for r in rows {
        let value = r.value.map_or_else(|| "not reported".to_owned(), group_digits);
        let meaning = r.description.unwrap_or("Not a counter this renderer knows.");
        let _ = write!(
            o,
            "<tr><td><code>{}</code></td><td class=\"n\">{}</td><td>{}</td></tr>",
            esc(r.name),
            esc(&value),
            esc(meaning)
        );
    }
    o.push_str("</tbody>");
}

/// The view as one self-contained HTML page (no JavaScript, inline CSS and SVG), ending with a newline.
pub fn to_html(v: &ReportView) -> String {
    let mut o = String::new();
    let title = if v.title.trim().is_empty() { "Transparency report" } else { v.title.as_str() };
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><meta name=\"generator\" \
         content=\"vouchsafe-render\"><title>{}</title><style>{CSS}</style></head>\n<body><main>\n",
        esc(title)
    );
    let _ = writeln!(o, "<h1>{}</h1>", esc(title));
    match &v.signature {
        None => {
            let _ = writeln!(o, "<p class=\"draft\" role=\"alert\">{}</p>", esc(DRAFT_WARNING));
        }
        Some(s) => {
            let _ = writeln!(
                o,
                "<p class=\"signed\">Signed by the provider (key <code>{}</code>) and published as leaf {} of its \
                 transparency log.</p>",
                esc(&s.key_id),
                s.log_leaf_index
            );
        }
    }
    let provider = if v.provider.is_empty() { "not stated" } else { v.provider.as_str() };
    let made = if v.signature.is_some() { "Signed at" } else { "Generated at" };
    let _ = writeln!(
        o,
        "<dl class=\"meta\"><dt>Provider</dt><dd>{}</dd><dt>Order</dt><dd><code>{}</code></dd><dt>Period</dt>\
         <dd>{}</dd><dt>{made}</dt><dd>{}</dd></dl>",
        esc(provider),
        esc(&v.order_id),
        esc(&period(v)),
        esc(&utc(v.created_at))
    );
    let _ = writeln!(o, "<p class=\"note\">Counts only: nothing here identifies an account, a case or a voucher.</p>");

    let _ = writeln!(o, "<section><h2>From vouchers to reports</h2>");
    o.push_str(&hbars(v, "funnel", "From vouchers received to reports forwarded", FUNNEL, Scale::Log, "bar"));
    let _ = writeln!(o, "</section>\n<section><h2>Review outcomes and the Centre's verdicts</h2>");
    o.push_str(&hbars(v, "outcomes", "Review outcomes and Centre verdicts", OUTCOMES, Scale::Linear, "bar2"));
    let _ = writeln!(o, "</section>\n<section><h2>Appeals</h2>");
    o.push_str(&hbars(v, "appeals", "Appeals filed, upheld and dismissed", APPEALS, Scale::Linear, "bar"));
    let _ = writeln!(o, "</section>\n<section><h2>Time to decision</h2>");
    match quantiles(&v.decision_seconds) {
        None => {
            let _ = writeln!(o, "<p>No case was decided in the period.</p>");
        }
        Some(q) => {
            let _ = writeln!(
                o,
                "<p>From a case's creation to its final review decision, over {} decided cases: median {}, 90th \
                 percentile {}, longest {}.</p>",
                esc(&group_digits(q.count as u64)),
                esc(&duration(q.p50)),
                esc(&duration(q.p90)),
                esc(&duration(q.max))
            );
        }
    }
    o.push_str(&time_histogram(&v.decision_seconds));
    let _ = writeln!(o, "</section>\n<section><h2>Every counter</h2>");
    o.push_str("<table><thead><tr><th>Counter</th><th>Value</th><th>Meaning</th></tr></thead>");
    let all = rows(&v.counters);
    for (heading, names) in GROUPS {
        let group: Vec<&CounterRow<'_>> = all.iter().filter(|r| names.contains(&r.name)).collect();
        counter_rows(&mut o, heading, &group);
    }
    let others: Vec<&CounterRow<'_>> = all.iter().filter(|r| !r.is_canonical()).collect();
    if !others.is_empty() {
        counter_rows(&mut o, "Other counters", &others);
    }
    let _ = writeln!(o, "</table></section>\n<section><h2>Signature</h2>");
    match &v.signature {
        None => {
            let _ = writeln!(o, "<p>None: this is an unsigned draft.</p>");
        }
        Some(s) => {
            let _ = writeln!(
                o,
                "<p>Provider key <code>{}</code>; leaf {} of the provider's transparency log. The signed report, \
                 which an auditor verifies under the provider's key:</p>\n<details><summary>signed report, {} hex \
                 digits</summary><pre class=\"hex\">{}</pre></details>",
                esc(&s.key_id),
                s.log_leaf_index,
                s.signed_report_hex.len(),
                hex_lines(&s.signed_report_hex).iter().map(|l| esc(l)).collect::<Vec<_>>().join("\n")
            );
        }
    }
    let _ = writeln!(
        o,
        "</section>\n<footer>Rendered by vouchsafe-render; the meaning of every counter is in docs/GOVERNANCE.md \
         §11.</footer>\n</main></body></html>"
    );
    o
}
