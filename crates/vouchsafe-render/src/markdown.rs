//! The Markdown form (CommonMark with GitHub tables): a header table, the counters in grouped sections, the
//! decision times, the signature. Every text from the view is escaped.

use std::fmt::Write as _;

use crate::text::{duration, group_digits, markdown as esc, markdown_code as code, utc};
use crate::{CounterRow, GROUPS, ReportView, quantiles, rows};

pub(crate) const DRAFT_WARNING: &str = "UNSIGNED DRAFT: these statistics were not signed by the provider and are not \
                                        in its transparency log. They are not a transparency report.";

pub(crate) fn period(v: &ReportView) -> String {
    if v.whole_order() { "the whole order".to_owned() } else { format!("{} to {} (exclusive)", utc(v.from), utc(v.to)) }
}

fn value_cell(r: &CounterRow<'_>) -> String {
    r.value.map_or_else(|| "not reported".to_owned(), group_digits)
}

fn table(o: &mut String, rows: &[&CounterRow<'_>]) {
    let _ = writeln!(o, "| Counter | Value | Meaning |");
    let _ = writeln!(o, "|---|---:|---|");
    for r in rows {
        let meaning = r.description.unwrap_or("Not a counter this renderer knows.");
        let _ = writeln!(o, "| {} | {} | {meaning} |", code(r.name), value_cell(r));
    }
    let _ = writeln!(o);
}

/// The view as Markdown, ending with a newline.
pub fn to_markdown(v: &ReportView) -> String {
    let mut o = String::new();
    let title = if v.title.trim().is_empty() { "Transparency report".to_owned() } else { esc(&v.title) };
    let _ = writeln!(o, "# {title}\n");
    if v.signature.is_none() {
        let _ = writeln!(o, "> **{DRAFT_WARNING}**\n");
    }
    let provider = if v.provider.is_empty() { "not stated".to_owned() } else { esc(&v.provider) };
    let _ = writeln!(o, "| | |\n|---|---|");
    let _ = writeln!(o, "| Provider | {provider} |");
    let _ = writeln!(o, "| Order | {} |", code(&v.order_id));
    let _ = writeln!(o, "| Period | {} |", period(v));
    let made = if v.signature.is_some() { "Signed at" } else { "Generated at" };
    let _ = writeln!(o, "| {made} | {} |", utc(v.created_at));
    let status = match &v.signature {
        Some(s) => {
            format!("signed by provider key {}, leaf {} of the transparency log", code(&s.key_id), s.log_leaf_index)
        }
        None => "**unsigned draft**".to_owned(),
    };
    let _ = writeln!(o, "| Status | {status} |\n");
    let _ = writeln!(o, "Counts only: nothing here identifies an account, a case or a voucher.\n");

    let all = rows(&v.counters);
    for (heading, names) in GROUPS {
        let _ = writeln!(o, "## {heading}\n");
        let group: Vec<&CounterRow<'_>> = all.iter().filter(|r| names.contains(&r.name)).collect();
        table(&mut o, &group);
    }
    let others: Vec<&CounterRow<'_>> = all.iter().filter(|r| !r.is_canonical()).collect();
    if !others.is_empty() {
        let _ = writeln!(o, "## Other counters\n");
        table(&mut o, &others);
    }

    let _ = writeln!(o, "## Time to decision\n");
    match quantiles(&v.decision_seconds) {
        None => {
            let _ = writeln!(o, "No case was decided in the period.\n");
        }
        Some(q) => {
            let _ = writeln!(o, "From a case's creation to its final review decision.\n");
            let _ = writeln!(o, "| Decided cases | Median | 90th percentile | Longest |");
            let _ = writeln!(o, "|---:|---:|---:|---:|");
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} |\n",
                group_digits(q.count as u64),
                duration(q.p50),
                duration(q.p90),
                duration(q.max)
            );
            let _ = writeln!(o, "| Time to decision | Cases |\n|---|---:|");
            for (label, n) in crate::histogram(&v.decision_seconds) {
                let _ = writeln!(o, "| {} | {} |", esc(label), group_digits(n));
            }
            let _ = writeln!(o);
        }
    }

    let _ = writeln!(o, "## Signature\n");
    match &v.signature {
        None => {
            let _ = writeln!(o, "None: this is an unsigned draft.");
        }
        Some(s) => {
            let _ = writeln!(
                o,
                "Provider key {}; leaf {} of the provider's transparency log.",
                code(&s.key_id),
                s.log_leaf_index
            );
            let _ = writeln!(o, "The signed report (hex), which an auditor verifies under the provider's key:\n");
            if s.signed_report_hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                let _ = writeln!(o, "```\n{}\n```", crate::text::hex_lines(&s.signed_report_hex).join("\n"));
            } else {
                let _ = writeln!(o, "{}", esc(&s.signed_report_hex));
            }
        }
    }
    o
}
