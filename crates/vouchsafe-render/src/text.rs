//! Text helpers shared by the formats: UTC dates, durations, digit grouping and the escapes of each format.

/// UTC date and time of Unix seconds, `YYYY-MM-DD HH:MM:SS UTC` (proleptic Gregorian; negative seconds are before
/// 1970). Every `i64` gives a date (years beyond 9999 simply have more digits).
pub fn utc(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days, in i128 so that no i64 input can overflow.
    let z = i128::from(days) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i128::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// A duration for people: `45 s`, `12 min 5 s`, `3 h 20 min`, `2 d 4 h`.
pub fn duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs % 86_400 / 3_600, secs % 3_600 / 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s} s"),
        (0, 0, _) if s == 0 => format!("{m} min"),
        (0, 0, _) => format!("{m} min {s} s"),
        (0, _, _) => format!("{h} h {m} min"),
        _ => format!("{d} d {h} h"),
    }
}

/// `1234567` → `1,234,567`.
pub fn group_digits(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Escapes text for HTML element content and attribute values (`&`, `<`, `>`, `"`, `'`); control characters
/// become spaces.
pub(crate) fn html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Escapes text for Markdown (CommonMark, GitHub tables): every character that can start emphasis, code, a link,
/// an image, raw HTML, an entity, strikethrough, a closing heading sequence or end a table cell
/// (`` \ ` * _ [ ] < > | & ~ # ! ``) is backslash-escaped; line breaks and other control characters become spaces.
/// The text is never placed at the start of a line, so list and block markers need no escape.
pub(crate) fn markdown(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '&' | '~' | '#' | '!') {
            out.push('\\');
            out.push(c);
        } else if c.is_control() {
            out.push(' ');
        } else {
            out.push(c);
        }
    }
    out
}

/// A Markdown code span for identifiers (hex, counter names) when they are plain ASCII alphanumerics or `_`;
/// anything else is shown escaped instead.
pub(crate) fn markdown_code(s: &str) -> String {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        format!("`{s}`")
    } else {
        markdown(s)
    }
}

/// A JSON string literal (RFC 8259): `"` and `\` escaped, control characters as `\uXXXX` (or their short forms);
/// `<`, `>` and `&` as `\u003c`, `\u003e`, `\u0026` too, so the JSON can be embedded in a page as it is.
pub(crate) fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c if u32::from(c) < 0x20 || c == '\u{7f}' => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// ASCII text (hex digits) in lines of 64 characters; text that is not ASCII is returned as one line.
pub(crate) fn hex_lines(hex: &str) -> Vec<&str> {
    let mut out = Vec::with_capacity(hex.len() / 64 + 1);
    let mut rest = hex;
    while !rest.is_empty() {
        match rest.split_at_checked(rest.len().min(64)) {
            Some((line, tail)) => {
                out.push(line);
                rest = tail;
            }
            None => {
                out.push(rest);
                break;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_767_225_599), "2025-12-31 23:59:59 UTC");
        assert_eq!(utc(-1), "1969-12-31 23:59:59 UTC");
        // The extremes do not overflow.
        assert!(utc(i64::MAX).ends_with(" UTC"));
        assert!(utc(i64::MIN).ends_with(" UTC"));
    }

    #[test]
    fn durations() {
        assert_eq!(duration(0), "0 s");
        assert_eq!(duration(59), "59 s");
        assert_eq!(duration(60), "1 min");
        assert_eq!(duration(61), "1 min 1 s");
        assert_eq!(duration(3_600 * 3 + 60 * 20 + 5), "3 h 20 min");
        assert_eq!(duration(86_400 * 2 + 3_600 * 4), "2 d 4 h");
        assert!(duration(u64::MAX).starts_with("213503982334601 d"));
    }

    #[test]
    fn digit_groups() {
        assert_eq!(group_digits(0), "0");
        assert_eq!(group_digits(999), "999");
        assert_eq!(group_digits(1_000), "1,000");
        assert_eq!(group_digits(1_234_567), "1,234,567");
        assert_eq!(group_digits(u64::MAX), "18,446,744,073,709,551,615");
    }

    #[test]
    fn escapes() {
        assert_eq!(html("<a href='x'>&\"</a>\n"), "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt; ");
        assert_eq!(markdown("a|b *c* <d> [e](f)\n# x.y's"), "a\\|b \\*c\\* \\<d\\> \\[e\\](f) \\# x.y's");
        assert_eq!(markdown_code("ab12_"), "`ab12_`");
        assert_eq!(markdown_code("a`b"), "a\\`b");
        assert_eq!(json_string("a\"b\\c\n\u{1}<&>é"), "\"a\\\"b\\\\c\\n\\u0001\\u003c\\u0026\\u003eé\"");
    }
}
