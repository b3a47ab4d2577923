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
    "postgres",
    "metrics_listen",
    "log_format",
    "connections",
    "schema",
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
    "claim_seconds",
    "schedule",
    "nice",
    "capture",
    "cover_writes",
    "max_message_bytes",
    "max_vouchers_per_batch",
    "rate_vouchers_per_second",
    "rate_burst",
    "request_timeout_seconds",
    "max_concurrent_streams",
    "max_header_list_bytes",
    "max_client_states",
    "max_backlog_batches",
    "max_backlog_bytes",
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

/// The configuration error for a TOML parse error of `text`: position, known key, kind; never the text.
fn describe(text: &str, e: &toml::de::Error) -> ServerError {
    let (key, reason) = vouchsafe_files::describe_parse_error(text, e.message(), e.span(), KNOWN_KEYS);
    ServerError::config(key, reason)
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
