//! The JSON form: stable, pretty (two-space indent), for tools. Written by hand so that the counters keep their
//! canonical order.
//!
//! ```text
//! {
//!   "format": "vouchsafe-transparency-report/1",   JSON_FORMAT: changes only with an incompatible change
//!   "status": "signed" | "unsigned-draft",          unsigned: not signed by the provider, not in the log
//!   "title": string,
//!   "provider": string,                             "" when the source does not say
//!   "order_id": string,                             hex of the 16-byte order id
//!   "period": { "from": int, "to": int, "whole_order": bool },   [from, to) in Unix seconds; 0, 0 = whole order
//!   "created_at": int,                              Unix seconds
//!   "counters": { name: int | null, … },            every canonical counter in canonical order (null: not
//!                                                   reported), then any other counter, sorted by name
//!   "other_counters": [ name, … ],                  the names in "counters" that are not canonical
//!   "decision_seconds": { "count": int, "p50": int | null, "p90": int | null, "max": int | null,
//!                         "values": [ int, … ] },   nearest-rank quantiles; values as the report holds them
//!   "signature": null | { "key_id": string, "log_leaf_index": int, "signed_report_hex": string }
//! }
//! ```
//!
//! Integers are exact decimal `u64`/`i64` (a consumer that reads numbers as doubles loses precision above 2^53).

use std::fmt::Write as _;

use crate::text::json_string;
use crate::{ReportView, quantiles, rows};

/// The value of the JSON's `format` key.
pub const JSON_FORMAT: &str = "vouchsafe-transparency-report/1";

fn opt(v: Option<u64>) -> String {
    v.map_or_else(|| "null".to_owned(), |v| v.to_string())
}

/// The view as pretty JSON (layout in the module documentation), ending with a newline.
pub fn to_json(v: &ReportView) -> String {
    let mut o = String::new();
    let rows = rows(&v.counters);
    let status = if v.signature.is_some() { "signed" } else { "unsigned-draft" };
    // `write!` into a String cannot fail.
    let _ = writeln!(o, "{{");
    let _ = writeln!(o, "  \"format\": {},", json_string(JSON_FORMAT));
    let _ = writeln!(o, "  \"status\": {},", json_string(status));
    let _ = writeln!(o, "  \"title\": {},", json_string(&v.title));
    let _ = writeln!(o, "  \"provider\": {},", json_string(&v.provider));
    let _ = writeln!(o, "  \"order_id\": {},", json_string(&v.order_id));
    let _ = writeln!(
        o,
        "  \"period\": {{ \"from\": {}, \"to\": {}, \"whole_order\": {} }},",
        v.from,
        v.to,
        v.whole_order()
    );
    let _ = writeln!(o, "  \"created_at\": {},", v.created_at);
    if rows.is_empty() {
        let _ = writeln!(o, "  \"counters\": {{}},");
    } else {
        let _ = writeln!(o, "  \"counters\": {{");
        let last = rows.len() - 1;
        for (i, r) in rows.iter().enumerate() {
            let comma = if i == last { "" } else { "," };
            let _ = writeln!(o, "    {}: {}{comma}", json_string(r.name), opt(r.value));
        }
        let _ = writeln!(o, "  }},");
    }
    let others: Vec<String> = rows.iter().filter(|r| !r.is_canonical()).map(|r| json_string(r.name)).collect();
    let _ = writeln!(o, "  \"other_counters\": [{}],", others.join(", "));
    let q = quantiles(&v.decision_seconds);
    let values: Vec<String> = v.decision_seconds.iter().map(u64::to_string).collect();
    let _ = writeln!(o, "  \"decision_seconds\": {{");
    let _ = writeln!(o, "    \"count\": {},", v.decision_seconds.len());
    let _ = writeln!(o, "    \"p50\": {},", opt(q.map(|q| q.p50)));
    let _ = writeln!(o, "    \"p90\": {},", opt(q.map(|q| q.p90)));
    let _ = writeln!(o, "    \"max\": {},", opt(q.map(|q| q.max)));
    let _ = writeln!(o, "    \"values\": [{}]", values.join(", "));
    let _ = writeln!(o, "  }},");
    match &v.signature {
        None => {
            let _ = writeln!(o, "  \"signature\": null");
        }
        Some(s) => {
            let _ = writeln!(o, "  \"signature\": {{");
            let _ = writeln!(o, "    \"key_id\": {},", json_string(&s.key_id));
            let _ = writeln!(o, "    \"log_leaf_index\": {},", s.log_leaf_index);
            let _ = writeln!(o, "    \"signed_report_hex\": {}", json_string(&s.signed_report_hex));
            let _ = writeln!(o, "  }}");
        }
    }
    let _ = writeln!(o, "}}");
    o
}
