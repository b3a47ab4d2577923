//! The three formats on realistic, empty, zero, hostile and huge views.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic, missing_docs)]

use serde_json::Value;
use vouchsafe_render::{
    COUNTERS, JSON_FORMAT, ReportView, SignatureView, check, quantiles, to_html, to_json, to_markdown,
};

fn full_counters() -> Vec<(String, u64)> {
    COUNTERS.iter().enumerate().map(|(i, (n, _))| ((*n).to_owned(), 1000 - 10 * i as u64)).collect()
}

fn signed() -> ReportView {
    ReportView {
        title: "Transparency report 2025-Q4".into(),
        provider: "messenger.example".into(),
        order_id: "0123456789abcdef0123456789abcdef".into(),
        from: 1_759_276_800,
        to: 1_767_225_600,
        counters: full_counters(),
        decision_seconds: vec![600, 7_200, 90_000, 400_000, 3_000],
        signature: Some(SignatureView {
            key_id: "a1b2c3d4e5f60718".into(),
            signed_report_hex: "ab".repeat(100),
            log_leaf_index: 42,
        }),
        created_at: 1_767_225_700,
    }
}

fn draft() -> ReportView {
    ReportView { signature: None, provider: String::new(), ..signed() }
}

fn hostile() -> ReportView {
    ReportView {
        title: "<script>alert(1)</script> & <b>".into(),
        provider: "evil\"'<img src=x onerror=alert(1)>&amp;".into(),
        order_id: "</code><script>".into(),
        counters: vec![("vouchers_received".into(), 3), ("x<y".into(), 1)],
        signature: Some(SignatureView {
            key_id: "<k>".into(),
            signed_report_hex: "<script>not hex</script>".into(),
            log_leaf_index: 0,
        }),
        ..signed()
    }
}

fn empty() -> ReportView {
    ReportView {
        title: String::new(),
        provider: String::new(),
        order_id: String::new(),
        from: 0,
        to: 0,
        counters: vec![],
        decision_seconds: vec![],
        signature: None,
        created_at: 0,
    }
}

fn json(v: &ReportView) -> Value {
    let text = to_json(v);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

#[test]
fn json_round_trips_and_holds_every_counter_in_canonical_order() {
    let v = signed();
    let j = json(&v);
    assert_eq!(j["format"], JSON_FORMAT);
    assert_eq!(j["status"], "signed");
    assert_eq!(j["provider"], "messenger.example");
    assert_eq!(j["order_id"], "0123456789abcdef0123456789abcdef");
    assert_eq!(j["period"]["from"], 1_759_276_800);
    assert_eq!(j["period"]["to"], 1_767_225_600);
    assert_eq!(j["period"]["whole_order"], false);
    assert_eq!(j["created_at"], 1_767_225_700);
    let counters = j["counters"].as_object().unwrap();
    assert_eq!(counters.len(), COUNTERS.len());
    for (name, value) in &v.counters {
        assert_eq!(counters[name].as_u64(), Some(*value), "{name}");
    }
    assert_eq!(j["other_counters"], Value::Array(vec![]));
    assert_eq!(j["decision_seconds"]["count"], 5);
    assert_eq!(j["decision_seconds"]["p50"], 7_200);
    assert_eq!(j["decision_seconds"]["p90"], 400_000);
    assert_eq!(j["decision_seconds"]["max"], 400_000);
    assert_eq!(j["decision_seconds"]["values"], serde_json::json!([600, 7_200, 90_000, 400_000, 3_000]));
    assert_eq!(j["signature"]["key_id"], "a1b2c3d4e5f60718");
    assert_eq!(j["signature"]["log_leaf_index"], 42);
    assert_eq!(j["signature"]["signed_report_hex"], "ab".repeat(100));

    // The text keeps the canonical order (serde_json's map would sort it): each name after the one before.
    let text = to_json(&v);
    let positions: Vec<usize> =
        COUNTERS.iter().map(|(n, _)| text.find(&format!("\"{n}\":")).expect("counter in the text")).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    // Stable: the same view gives the same bytes.
    assert_eq!(text, to_json(&v.clone()));
}

#[test]
fn json_of_a_draft_says_so_and_missing_counters_are_null_not_zero() {
    let mut v = draft();
    v.counters.retain(|(n, _)| n != "centre_forwarded");
    v.counters.push(("brand_new_counter".into(), 5));
    let j = json(&v);
    assert_eq!(j["status"], "unsigned-draft");
    assert_eq!(j["signature"], Value::Null);
    assert_eq!(j["counters"]["centre_forwarded"], Value::Null);
    assert_eq!(j["counters"]["brand_new_counter"], 5);
    assert_eq!(j["other_counters"], serde_json::json!(["brand_new_counter"]));
    assert_eq!(j["counters"].as_object().unwrap().len(), COUNTERS.len() + 1);
    let text = to_json(&v);
    assert!(text.find("\"purged_vouchers\"").unwrap() < text.find("\"brand_new_counter\"").unwrap());
}

#[test]
fn json_escapes_hostile_text_and_still_parses() {
    let v = hostile();
    let text = to_json(&v);
    assert!(!text.contains('<'), "{text}");
    let j = json(&v);
    assert_eq!(j["title"], v.title.as_str());
    assert_eq!(j["provider"], v.provider.as_str());
    assert_eq!(j["counters"]["x<y"], 1);
}

#[test]
fn html_has_no_script_and_one_svg_per_chart() {
    for v in [signed(), draft(), hostile(), empty()] {
        let html = to_html(&v);
        let lower = html.to_ascii_lowercase();
        assert!(!lower.contains("<script"), "{html}");
        assert!(!lower.contains("javascript:"));
        assert!(!lower.contains("<img") && !lower.contains("<iframe") && !lower.contains("<object"));
        assert_eq!(lower.matches("<svg").count(), 4, "four charts");
        assert_eq!(lower.matches("</svg>").count(), 4);
        assert!(lower.starts_with("<!doctype html>"));
        assert!(lower.contains("content-security-policy") && lower.contains("default-src 'none'"));
        assert!(html.trim_end().ends_with("</html>"));
    }
}

#[test]
fn html_escapes_title_provider_and_every_other_text() {
    let v = hostile();
    let html = to_html(&v);
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;"), "title escaped");
    assert!(html.contains("evil&quot;&#39;&lt;img src=x onerror=alert(1)&gt;&amp;amp;"), "provider escaped");
    assert!(html.contains("&lt;/code&gt;&lt;script&gt;"), "order id escaped");
    assert!(html.contains("<code>x&lt;y</code>"), "other counter escaped");
    assert!(html.contains("&lt;k&gt;"));
    assert!(!html.contains("<img"));
    assert!(!html.contains("<b>"));
    // The only tags are the page's own.
    let allowed = [
        "!DOCTYPE", "html", "head", "meta", "title", "style", "body", "main", "h1", "h2", "p", "dl", "dt", "dd",
        "code", "section", "svg", "desc", "g", "text", "rect", "line", "table", "thead", "tbody", "tr", "th", "td",
        "details", "summary", "pre", "footer",
    ];
    for tag in html.split('<').skip(1) {
        let name: String =
            tag.trim_start_matches('/').chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '!').collect();
        assert!(allowed.contains(&name.as_str()), "unexpected tag <{name}");
    }
}

#[test]
fn html_and_markdown_say_draft_prominently() {
    let d = draft();
    let html = to_html(&d);
    let md = to_markdown(&d);
    let h1 = html.find("<h1>").unwrap();
    let warn = html.find("UNSIGNED DRAFT").expect("html draft warning");
    let first_chart = html.find("<svg").unwrap();
    assert!(h1 < warn && warn < first_chart, "the warning comes before anything else");
    assert!(html.contains("class=\"draft\""));
    assert!(md.lines().nth(2).unwrap().starts_with("> **UNSIGNED DRAFT"), "{md}");
    assert!(md.contains("**unsigned draft**"));
    let s = signed();
    assert!(!to_html(&s).contains("UNSIGNED DRAFT"));
    assert!(!to_markdown(&s).contains("UNSIGNED DRAFT"));
    assert!(to_markdown(&s).contains("leaf 42 of the transparency log"));
}

#[test]
fn html_table_lists_every_counter_with_its_description() {
    let v = signed();
    let html = to_html(&v);
    for (name, description) in COUNTERS {
        let cell = format!("<code>{name}</code>");
        assert_eq!(html.matches(&cell).count(), 1, "{name}");
        let escaped = description.replace('&', "&amp;").replace('\'', "&#39;");
        assert!(html.contains(&escaped), "{name}: {description}");
    }
    // Values are shown grouped: vouchers_received = 1000.
    assert!(html.contains("<td class=\"n\">1,000</td>"));
}

#[test]
fn charts_show_values_and_mark_missing_counters() {
    let mut v = signed();
    v.counters.retain(|(n, _)| n != "appeals_upheld");
    let html = to_html(&v);
    let appeals = section(&html, "appeals-t");
    assert!(appeals.contains("appeals_upheld: not reported"));
    assert!(appeals.contains(">not reported</text>"));
    assert!(appeals.contains("appeals_filed = 830"));
    let funnel = section(&html, "funnel-t");
    assert!(funnel.contains("logarithmic"));
    for name in [
        "vouchers_received",
        "vouchers_opened",
        "accounts_over_threshold",
        "cases",
        "cases_confirmed",
        "reports_sent",
        "centre_forwarded",
    ] {
        assert!(funnel.contains(&format!("<title>{name} = ")), "{name} in the funnel");
    }
}

#[test]
fn markdown_groups_counters_into_sections_and_escapes_text() {
    let md = to_markdown(&signed());
    for heading in [
        "## Vouchers and accounts",
        "## Human review",
        "## Reports and the Centre",
        "## Users: notices and appeals",
        "## Time to decision",
        "## Signature",
    ] {
        assert!(md.contains(heading), "{heading}");
    }
    assert!(!md.contains("## Other counters"));
    for (name, _) in COUNTERS {
        assert_eq!(md.matches(&format!("| `{name}` |")).count(), 1, "{name}");
    }
    assert!(md.contains("| 2025-10-01 00:00:00 UTC to 2026-01-01 00:00:00 UTC (exclusive) |"));
    let h = to_markdown(&hostile());
    assert!(h.starts_with("# \\<script\\>alert(1)\\</script\\> \\& \\<b\\>\n"), "{h}");
    assert!(!h.replace("\\<", "").contains('<'), "every < is escaped: no raw HTML");
    assert!(h.contains("## Other counters"));
    // A table row is never broken by text: every row line has the same number of unescaped pipes.
    for line in h.lines().filter(|l| l.starts_with("| `")) {
        assert_eq!(line.replace("\\|", "").matches('|').count(), 4, "{line}");
    }
}

#[test]
fn empty_and_zero_views_render() {
    let e = empty();
    let j = json(&e);
    assert_eq!(j["period"]["whole_order"], true);
    assert!(j["counters"].as_object().unwrap().values().all(Value::is_null));
    assert_eq!(j["decision_seconds"]["p50"], Value::Null);
    assert_eq!(j["decision_seconds"]["values"], serde_json::json!([]));
    assert!(to_markdown(&e).contains("No case was decided"));
    assert!(to_markdown(&e).starts_with("# Transparency report\n"));
    assert!(to_html(&e).contains("No case was decided"));
    assert!(to_markdown(&e).contains("| Period | the whole order |"));

    let mut zero = signed();
    for (_, v) in &mut zero.counters {
        *v = 0;
    }
    zero.decision_seconds.clear();
    let html = to_html(&zero);
    assert!(!html.contains("NaN") && !html.contains("inf"), "no division by zero reaches the SVG");
    assert!(html.contains("width=\"0.0\""));
    let j = json(&zero);
    assert!(j["counters"].as_object().unwrap().values().all(|v| v.as_u64() == Some(0)));
}

#[test]
fn huge_counts_are_exact() {
    let mut v = signed();
    v.counters =
        vec![("vouchers_received".into(), u64::MAX), ("vouchers_opened".into(), u64::MAX - 1), ("cases".into(), 1)];
    v.decision_seconds = vec![u64::MAX, 0, u64::MAX];
    let text = to_json(&v);
    assert!(text.contains("\"vouchers_received\": 18446744073709551615,"));
    assert!(text.contains("\"vouchers_opened\": 18446744073709551614,"));
    let j = json(&v);
    assert_eq!(j["counters"]["vouchers_received"].as_u64(), Some(u64::MAX));
    assert_eq!(j["decision_seconds"]["max"].as_u64(), Some(u64::MAX));
    let html = to_html(&v);
    assert!(html.contains("18,446,744,073,709,551,615"));
    assert!(!html.contains("NaN") && !html.contains("inf"));
    // The largest bar is full length, a tiny one still visible.
    let funnel = section(&html, "funnel-t");
    assert!(funnel.contains("width=\"340.0\""));
    assert!(to_markdown(&v).contains("| `vouchers_received` | 18,446,744,073,709,551,615 |"));
}

#[test]
fn quantiles_of_the_view_match_what_is_shown() {
    let mut v = signed();
    v.decision_seconds = (1..=1000).map(|i| i * 60).collect();
    let q = quantiles(&v.decision_seconds).unwrap();
    assert_eq!((q.count, q.p50, q.p90, q.max), (1000, 500 * 60, 900 * 60, 1000 * 60));
    let j = json(&v);
    assert_eq!(j["decision_seconds"]["p50"], 30_000);
    assert_eq!(j["decision_seconds"]["p90"], 54_000);
    let md = to_markdown(&v);
    assert!(md.contains("| 1,000 | 8 h 20 min | 15 h 0 min | 16 h 40 min |"), "{md}");
    let html = to_html(&v);
    assert!(html.contains("over 1,000 decided cases: median 8 h 20 min"));
    // Histogram: 1..=59 min under an hour, 60..=359 min in 1–6 h, 360..=1000 min in 6–24 h.
    let times = section(&html, "times-t");
    assert!(times.contains("&lt; 1 h: 59 cases"));
    assert!(times.contains("1–6 h: 300 cases"));
    assert!(times.contains("6–24 h: 641 cases"));
    assert!(times.contains("1–3 d: 0 cases"));
}

#[test]
fn check_accepts_every_rendered_example_but_duplicates() {
    assert!(check(&signed()).is_ok());
    assert!(check(&empty()).is_ok());
    assert!(check(&hostile()).is_err(), "x<y is no counter name");
    let mut d = signed();
    d.counters.push(("cases".into(), 0));
    assert!(check(&d).is_err());
}

/// The text of the SVG whose title id is `id`.
fn section<'a>(html: &'a str, id: &str) -> &'a str {
    let start = html.find(&format!("<title id=\"{id}\"")).unwrap();
    let end = start + html[start..].find("</svg>").unwrap();
    &html[start..end]
}
