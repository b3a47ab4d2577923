//! Where a configuration file does not parse, said without repeating it: the servers' TOML files hold tokens and
//! key paths, and toml's own messages quote the offending line. [`describe_parse_error`] turns a parse error's
//! message and span into the dotted key at fault (only if it is a key of the schema) and a reason of fixed words
//! with the line and column, never a byte of the file.

use std::ops::Range;

fn known<'k>(keys: &[&'k str], key: &str) -> Option<&'k str> {
    keys.iter().find(|k| **k == key).copied()
}

/// The kind of a toml/serde error message, in words that never repeat the message's quotes of the input.
fn kind_of(message: &str, keys: &[&str]) -> String {
    let m = message.trim();
    if m.starts_with("missing field") {
        // serde names the missing field with the schema's own (static) name.
        return match m.split('`').nth(1).and_then(|k| known(keys, k)) {
            Some(k) => format!("missing key `{k}`"),
            None => "a required key is missing".to_owned(),
        };
    }
    let kind = if m.starts_with("unknown field") {
        "unknown key"
    } else if m.starts_with("invalid type") {
        "the value has the wrong type"
    } else if m.starts_with("invalid value")
        || m.starts_with("invalid length")
        || m.starts_with("unknown variant")
        || m.starts_with("invalid socket address")
    {
        "invalid value"
    } else if m.starts_with("duplicate key") {
        "duplicate key"
    } else {
        "not valid TOML"
    };
    kind.to_owned()
}

/// The dotted name of a table header line (`[order]`, `[[accounts]]`), if every part of it is a known key.
fn header_name(line: &str, keys: &[&str]) -> Option<String> {
    let inner = line.trim().strip_prefix('[')?.trim_start_matches('[');
    let inner = inner.split(']').next()?;
    let parts: Option<Vec<&str>> = inner.split('.').map(|p| known(keys, p.trim().trim_matches('"'))).collect();
    parts.map(|p| p.join("."))
}

/// For a parse error of the TOML file `text` (toml's `message()` and byte `span()`), the name of the key at fault
/// (`section.key` where both are among `keys`, else `"config file"`) and the reason (`line L, column C: kind`).
/// Neither contains any byte of `text`.
pub fn describe_parse_error(text: &str, message: &str, span: Option<Range<usize>>, keys: &[&str]) -> (String, String) {
    let kind = kind_of(message, keys);
    let Some(start) = span.map(|s| s.start) else {
        return ("config file".to_owned(), kind);
    };
    // Back off to a character boundary (toml's spans are byte offsets into `text`).
    let mut start = start.min(text.len());
    while !text.is_char_boundary(start) {
        start = start.saturating_sub(1);
    }
    let before = text.get(..start).unwrap_or_default();
    let line_start = before.rfind('\n').map_or(0, |i| i.saturating_add(1));
    let line_no = before.matches('\n').count().saturating_add(1);
    let column = before.get(line_start..).unwrap_or_default().chars().count().saturating_add(1);
    let line = text.get(line_start..).unwrap_or_default().lines().next().unwrap_or_default();
    let section = before.get(..line_start).unwrap_or_default().lines().rev().find_map(|l| {
        let t = l.trim_start();
        t.starts_with('[').then(|| header_name(t, keys))
    });
    let key = line.split_once('=').and_then(|(k, _)| known(keys, k.trim().trim_matches('"')));
    let name = match (section, key) {
        (Some(Some(s)), Some(k)) => format!("{s}.{k}"),
        (None, Some(k)) => k.to_owned(),
        (Some(Some(s)), None) => s,
        // Inside a table whose header is not a known key, or no key on the line: name the file only.
        _ => "config file".to_owned(),
    };
    (name, format!("line {line_no}, column {column}: {kind}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEYS: &[&str] = &["listen", "accounts", "token", "limits", "rate_burst"];

    #[test]
    fn names_the_key_and_position_and_never_the_text() {
        let text = "listen = \"x\"\n[[accounts]]\ntoken = \"s3cret\" trailing\n";
        let at = text.find("trailing").unwrap();
        let (name, reason) = describe_parse_error(text, "expected newline, found `s3cret`", Some(at..at + 1), KEYS);
        assert_eq!((name.as_str(), reason.as_str()), ("accounts.token", "line 3, column 18: not valid TOML"));
        let (name, reason) = describe_parse_error(text, "missing field `listen`", None, KEYS);
        assert_eq!((name.as_str(), reason.as_str()), ("config file", "missing key `listen`"));
        let text = "[unknown]\nrate_burst = \"a\"\n";
        let (name, _) = describe_parse_error(text, "invalid type: string", Some(23..24), KEYS);
        assert_eq!(name, "config file", "a key under an unknown header is not named");
        let text = "[limits]\nrate_burst = \"a\"\n";
        let (name, reason) = describe_parse_error(text, "invalid type: string \"a\"", Some(22..23), KEYS);
        assert_eq!(
            (name.as_str(), reason.as_str()),
            ("limits.rate_burst", "line 2, column 14: the value has the wrong type")
        );
    }
}
