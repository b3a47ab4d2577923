//! Reading and writing the TOML file.
//!
//! A parse error never quotes the file: toml's messages (and serde's, which toml forwards) quote the offending line
//! or value, and that line may hold a bearer token or a key path pasted in the wrong place. The error names the
//! line, the column, the key if it is one the schema knows, and the kind of problem; nothing of the text itself.

use std::path::Path;

use zeroize::Zeroizing;

use super::ServerConfig;
use crate::error::{Result, ServerError};

impl ServerConfig {
    /// Reads the TOML file at `path`, resolves its relative paths against the file's directory, applies
    /// `VOUCHSAFE_*` environment overrides and validates.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        // The text holds the tokens: wiped once parsed.
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|source| ServerError::Io {
            what: "config file",
            path: path.to_owned(),
            source,
        })?);
        let mut cfg = Self::from_toml_str(&text)?;
        // Relative paths in the file are relative to the file's directory (environment values are taken as given).
        let base = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        cfg.resolve_paths(base);
        cfg.apply_env(|k| std::env::var(k).ok())?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Parses TOML (no environment, no validation).
    pub fn from_toml_str(text: &str) -> Result<Self> {
        toml::from_str(text).map_err(|e| describe(text, &e))
    }

    /// Serialises to TOML (includes the tokens: write it with restrictive permissions).
    pub fn to_toml_string(&self) -> Result<String> {
        // Serialising our own types cannot meet an unsupported value; if it ever did, say so without its text.
        toml::to_string_pretty(self).map_err(|_| ServerError::config("config", "cannot be written as TOML"))
    }
}

/// Every key of the schema. A key found on the line of an error is named only if it is one of these: anything else
/// in key position could be a secret pasted on a line of its own.
const KNOWN_KEYS: &[&str] = &[
    "listen",
    "database",
    "table",
    "table_updates",
    "chunk_slots",
    "worker",
    "limits",
    "order",
    "retention",
    "accounts",
    "tls",
    "provider",
    "review",
    "centre",
    "id",
    "four_eyes",
    "appeal_seconds",
    "reviewers",
    "role",
    "endpoint",
    "ca",
    "retry_initial_seconds",
    "retry_max_seconds",
    "case_after_close_seconds",
    "poll_interval_ms",
    "batches_per_round",
    "handoff_bytes",
    "max_message_bytes",
    "max_vouchers_per_batch",
    "rate_vouchers_per_second",
    "rate_burst",
    "request_timeout_seconds",
    "max_concurrent_streams",
    "signed_order",
    "authority_keys",
    "revocations",
    "epoch",
    "ad_len",
    "table_signing",
    "releases",
    "log",
    "dir",
    "witnesses",
    "purge_after_seconds",
    "token",
    "account",
    "components",
    "groups",
    "classes",
    "cert",
    "key",
];

/// The messages of our own deserialisers: fixed text, safe to repeat.
const OWN_MESSAGES: &[&str] = &[];

fn known(key: &str) -> Option<&str> {
    KNOWN_KEYS.iter().find(|k| **k == key).copied()
}

/// The kind of a toml/serde error message, in words that never repeat the message's quotes of the input.
fn kind_of(message: &str) -> String {
    let m = message.trim();
    if let Some(own) = OWN_MESSAGES.iter().find(|o| **o == m) {
        return (*own).to_owned();
    }
    if m.starts_with("missing field") {
        // serde names the missing field with the schema's own (static) name.
        return match m.split('`').nth(1).and_then(known) {
            Some(k) => format!("missing key `{k}`"),
            None => "a required key is missing".to_owned(),
        };
    }
    let kind = if m.starts_with("unknown field") {
        "unknown key"
    } else if m.starts_with("invalid type") {
        "the value has the wrong type"
    } else if m.starts_with("invalid value") || m.starts_with("invalid length") || m.starts_with("unknown variant") {
        "invalid value"
    } else if m.starts_with("duplicate key") {
        "duplicate key"
    } else {
        "not valid TOML"
    };
    kind.to_owned()
}

/// The dotted name of a table header line (`[order]`, `[[accounts]]`), if every part of it is a known key.
fn header_name(line: &str) -> Option<String> {
    let inner = line.trim().strip_prefix('[')?.trim_start_matches('[');
    let inner = inner.split(']').next()?;
    let parts: Option<Vec<&str>> = inner.split('.').map(|p| known(p.trim().trim_matches('"'))).collect();
    parts.map(|p| p.join("."))
}

/// The configuration error for a TOML parse error of `text`: position, known key, kind; never the text.
fn describe(text: &str, e: &toml::de::Error) -> ServerError {
    let kind = kind_of(e.message());
    let Some(start) = e.span().map(|s| s.start) else {
        return ServerError::config("config file", kind);
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
        t.starts_with('[').then(|| header_name(t))
    });
    let key = line.split_once('=').and_then(|(k, _)| known(k.trim().trim_matches('"')));
    let name = match (section, key) {
        (Some(Some(s)), Some(k)) => format!("{s}.{k}"),
        (None, Some(k)) => k.to_owned(),
        (Some(Some(s)), None) => s,
        // Inside a table whose header is not a known key, or no key on the line: name the file only.
        _ => "config file".to_owned(),
    };
    ServerError::config(name, format!("line {line_no}, column {column}: {kind}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "s3cret-token-do-not-log-0001";

    fn err_of(text: &str) -> (String, String) {
        match ServerConfig::from_toml_str(text) {
            Err(ServerError::Config { key, reason }) => (key, reason),
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    fn demo_with(old: &str, new: &str) -> String {
        let text = ServerConfig::in_dir(std::path::Path::new("/srv/vouchsafe"))
            .to_toml_string()
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(text.contains(old), "{text}");
        text.replace(old, new)
    }

    /// A token on a malformed line (toml's own message would quote the line) is not in the error; the error says
    /// where and which key.
    #[test]
    fn a_malformed_line_holding_a_token_is_not_quoted() {
        let text = demo_with("token = \"demo-token-not-secret-0001\"", &format!("token = \"{SECRET}\" trailing"));
        let line = text.lines().position(|l| l.contains(SECRET)).unwrap_or_else(|| panic!("{text}")) + 1;
        let (key, reason) = err_of(&text);
        let e = ServerError::Config { key: key.clone(), reason: reason.clone() }.to_string();
        assert!(!e.contains(SECRET) && !e.contains("s3cret") && !e.contains("trailing"), "{e}");
        assert_eq!(key, "accounts.token");
        assert!(reason.starts_with(&format!("line {line}, column ")), "{reason}");
    }

    /// serde's type errors quote the value: a secret pasted as another key's value is not repeated either, nor a
    /// secret standing alone on a line, nor one used as a key.
    #[test]
    fn values_and_unknown_keys_are_not_quoted() {
        for (old, new) in [
            ("epoch = 1", format!("epoch = \"{SECRET}\"")),
            ("epoch = 1", format!("epoch = 1\n{SECRET}")),
            ("epoch = 1", format!("epoch = 1\n{SECRET} = 1")),
            ("epoch = 1", format!("epoch = 1\n\"{SECRET}\" = \"{SECRET}\"")),
        ] {
            let (key, reason) = err_of(&demo_with(old, &new));
            let e = ServerError::Config { key, reason }.to_string();
            assert!(!e.contains("s3cret"), "{e}");
            assert!(e.contains("line "), "{e}");
        }
        let (key, reason) = err_of(&demo_with("epoch = 1", &format!("epoch = \"{SECRET}\"")));
        assert_eq!((key.as_str(), reason.ends_with("the value has the wrong type")), ("order.epoch", true));
    }

    #[test]
    fn own_messages_and_missing_keys_are_named() {
        let (key, reason) = err_of(&demo_with("epoch = 1", "epoch = -1"));
        assert_eq!(key, "order.epoch");
        assert!(reason.ends_with("invalid value"), "{reason}");
        let text = ServerConfig::in_dir(std::path::Path::new("/srv/vouchsafe"))
            .to_toml_string()
            .unwrap_or_else(|e| panic!("{e}"));
        let no_db: String = text.lines().filter(|l| !l.starts_with("database")).map(|l| format!("{l}\n")).collect();
        let (_, reason) = err_of(&no_db);
        assert!(reason.contains("missing key `database`"), "{reason}");
    }
}
