//! Writes a sample report to standard output, for looking at the output: `cargo run -p vouchsafe-render --example
//! sample -- [json|md|html][-draft] > /tmp/report.html` (default `html`; `-draft`: without the signature).

use vouchsafe_render::{COUNTERS, ReportView, SignatureView, to_html, to_json, to_markdown};

fn main() {
    let format = std::env::args().nth(1).unwrap_or_else(|| "html".to_owned());
    let values =
        [2_400_000u64, 2_390_500, 12, 9_488, 31_000, 4, 4, 1, 5, 2, 3, 1, 3, 3, 2, 1, 3, 1, 1, 0, 1, 2, 6, 9_488];
    let counters = COUNTERS.iter().zip(values).map(|((n, _), v)| ((*n).to_owned(), v)).collect();
    let view = ReportView {
        title: "Transparency report, Q4 2025".into(),
        provider: "messenger.example".into(),
        order_id: "0123456789abcdef0123456789abcdef".into(),
        from: 1_759_276_800,
        to: 1_767_225_600,
        counters,
        decision_seconds: vec![1_800, 5_400, 20_000, 90_000, 200_000],
        signature: Some(SignatureView {
            key_id: "a1b2c3d4e5f60718".into(),
            signed_report_hex: "01".repeat(300),
            log_leaf_index: 42,
        }),
        created_at: 1_767_225_700,
    };
    let view = if format.ends_with("draft") { ReportView { signature: None, ..view } } else { view };
    let out = match format.trim_end_matches("-draft") {
        "json" => to_json(&view),
        "md" => to_markdown(&view),
        _ => to_html(&view),
    };
    print!("{out}");
}
