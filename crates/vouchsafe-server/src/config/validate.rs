//! Validation: every value checked, and an error that names the key at fault and what is wrong with it.

use std::collections::HashSet;

use vouchsafe_protocol::labels::MAX_AD_LEN;
use vouchsafe_protocol::table::MAX_CHUNK_SLOTS;

use super::ServerConfig;
use crate::error::{Result, ServerError};

/// Longest order validity: the one definition, in `vouchsafe-orders` (24 months = 731 days).
pub use vouchsafe_orders::labels::MAX_ORDER_SECONDS;
/// Shortest accepted bearer token, in bytes.
pub const MIN_TOKEN_LEN: usize = 16;
/// Longest accepted bearer token, in bytes (a longer one in a request is answered UNAUTHENTICATED unread).
pub use crate::auth::MAX_TOKEN_LEN;
/// What a provider or reviewer name may be.
const NAME_RULE: &str = "must be 1..=64 bytes of A-Z a-z 0-9 . _ @ -";

fn is_name(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._@-".contains(&b))
}

/// Largest accepted gRPC message.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

impl ServerConfig {
    /// Checks every value; the error names the key and what is wrong.
    pub fn validate(&self) -> Result<()> {
        if self.database.as_os_str().is_empty() {
            return Err(ServerError::config("database", "must not be empty"));
        }
        if !(1..=3600).contains(&self.worker.claim_seconds) {
            return Err(ServerError::config("worker.claim_seconds", "must be 1..=3600"));
        }
        if self.worker.id.as_ref().is_some_and(|id| id.is_empty() || id.len() > vouchsafe_store::MAX_ID_LEN) {
            return Err(ServerError::config("worker.id", "must be 1..=512 bytes"));
        }
        if !(1..=1000).contains(&self.postgres.connections) {
            return Err(ServerError::config("postgres.connections", "must be 1..=1000"));
        }
        if self.postgres.schema.as_ref().is_some_and(|s| s.is_empty() || s.len() > 63) {
            return Err(ServerError::config("postgres.schema", "must be 1..=63 bytes"));
        }
        if let Some(tls) = &self.tls {
            if tls.cert.as_os_str().is_empty() {
                return Err(ServerError::config("tls.cert", "must not be empty"));
            }
            if tls.key.as_os_str().is_empty() {
                return Err(ServerError::config("tls.key", "must not be empty"));
            }
        }
        if self.table.as_os_str().is_empty() {
            return Err(ServerError::config("table", "must not be empty"));
        }
        if self.chunk_slots == 0 || self.chunk_slots > MAX_CHUNK_SLOTS {
            return Err(ServerError::config("chunk_slots", format!("must be in 1..={MAX_CHUNK_SLOTS}")));
        }
        let w = &self.worker;
        if !(10..=60_000).contains(&w.poll_interval_ms) {
            return Err(ServerError::config("worker.poll_interval_ms", "must be in 10..=60000"));
        }
        if !(1..=10_000).contains(&w.batches_per_round) {
            return Err(ServerError::config("worker.batches_per_round", "must be in 1..=10000"));
        }
        if !(0..=19).contains(&w.nice) {
            return Err(ServerError::config("worker.nice", "must be in 0..=19"));
        }
        if w.handoff_bytes > 4 << 30 {
            return Err(ServerError::config("worker.handoff_bytes", "must be at most 4 GiB (4294967296)"));
        }
        self.validate_order()?;
        self.validate_limits()?;
        self.validate_accounts()?;
        self.validate_after_threshold()?;
        Ok(())
    }

    /// `[provider]`, `[review]` and `[centre]`: names, distinct tokens (a reviewer token is never a device token),
    /// and that review comes with somebody to sign and somewhere to send.
    fn validate_after_threshold(&self) -> Result<()> {
        if let Some(p) = &self.provider {
            if !is_name(&p.id) {
                return Err(ServerError::config("provider.id", NAME_RULE));
            }
            if p.key.as_os_str().is_empty() {
                return Err(ServerError::config("provider.key", "must not be empty"));
            }
        }
        if let Some(c) = &self.centre {
            if !(c.endpoint.starts_with("http://") || c.endpoint.starts_with("https://")) {
                return Err(ServerError::config("centre.endpoint", "must be an http:// or https:// URL"));
            }
            if !(1..=3600).contains(&c.retry_initial_seconds) {
                return Err(ServerError::config("centre.retry_initial_seconds", "must be in 1..=3600"));
            }
            if c.retry_max_seconds < c.retry_initial_seconds || c.retry_max_seconds > 86_400 {
                return Err(ServerError::config(
                    "centre.retry_max_seconds",
                    "must be in centre.retry_initial_seconds..=86400",
                ));
            }
        }
        let Some(r) = &self.review else { return Ok(()) };
        if self.provider.is_none() {
            return Err(ServerError::config("provider", "[review] needs [provider] (who signs the reports)"));
        }
        if self.centre.is_none() {
            return Err(ServerError::config("centre", "[review] needs [centre] (where the reports go)"));
        }
        if r.listen == self.listen && r.listen.port() != 0 {
            return Err(ServerError::config("review.listen", "must differ from listen (the devices' listener)"));
        }
        if !(3600..=366 * 24 * 3600).contains(&r.appeal_seconds) {
            return Err(ServerError::config(
                "review.appeal_seconds",
                "must be in 3600..=31622400 (1 hour to 366 days)",
            ));
        }
        if r.reviewers.is_empty() || r.reviewers.len() > 1000 {
            return Err(ServerError::config("review.reviewers", "1..=1000 [[review.reviewers]] entries"));
        }
        if r.four_eyes && r.reviewers.len() < 2 {
            return Err(ServerError::config("review.four_eyes", "needs at least two reviewers"));
        }
        // A report names the account: it must fit the report format.
        if let Some(i) = self.accounts.iter().position(|a| a.account.len() > vouchsafe_case::MAX_ACCOUNT) {
            return Err(ServerError::config(
                format!("accounts[{i}].account"),
                format!(
                    "must be at most {} bytes with [review] (a report to the Centre names it)",
                    vouchsafe_case::MAX_ACCOUNT
                ),
            ));
        }
        let device: HashSet<[u8; 32]> = self.accounts.iter().map(|a| a.token.digest()).collect();
        let mut names = HashSet::new();
        let mut tokens = HashSet::new();
        for (i, rv) in r.reviewers.iter().enumerate() {
            if !is_name(&rv.id) {
                return Err(ServerError::config(format!("review.reviewers[{i}].id"), NAME_RULE));
            }
            if !names.insert(rv.id.as_str()) {
                return Err(ServerError::config(format!("review.reviewers[{i}].id"), "duplicate reviewer"));
            }
            let t = rv.token.expose();
            if t.len() < MIN_TOKEN_LEN
                || t.len() > MAX_TOKEN_LEN
                || t.chars().any(|c| c.is_whitespace() || c.is_control())
            {
                return Err(ServerError::config(
                    format!("review.reviewers[{i}].token"),
                    format!("must be {MIN_TOKEN_LEN}..={MAX_TOKEN_LEN} bytes without whitespace"),
                ));
            }
            let d = rv.token.digest();
            if device.contains(&d) {
                return Err(ServerError::config(
                    format!("review.reviewers[{i}].token"),
                    "is also a device token: reviewer credentials must be distinct",
                ));
            }
            if !tokens.insert(d) {
                return Err(ServerError::config(
                    format!("review.reviewers[{i}].token"),
                    "the same token is used twice",
                ));
            }
        }
        Ok(())
    }

    /// The order's file keys (its terms are checked when the signed order is verified, see
    /// `Governance::load`), the releases, the log and the witness keys.
    fn validate_order(&self) -> Result<()> {
        let o = &self.order;
        if o.signed_order.as_os_str().is_empty() {
            return Err(ServerError::config("order.signed_order", "must not be empty"));
        }
        if o.authority_keys.is_empty() || o.authority_keys.len() > crate::governance::MAX_AUTHORITY_KEYS {
            return Err(ServerError::config(
                "order.authority_keys",
                format!("1..={} authority public key files", crate::governance::MAX_AUTHORITY_KEYS),
            ));
        }
        if o.ad_len > MAX_AD_LEN || o.ad_len < 3 {
            return Err(ServerError::config("order.ad_len", format!("must be in 3..={MAX_AD_LEN}")));
        }
        if self.releases.dir.as_os_str().is_empty() {
            return Err(ServerError::config("releases.dir", "must not be empty"));
        }
        if self.log.dir.as_os_str().is_empty() {
            return Err(ServerError::config("log.dir", "must not be empty"));
        }
        if self.log.key.as_os_str().is_empty() {
            return Err(ServerError::config("log.key", "must not be empty"));
        }
        crate::governance::parse_witnesses(&self.log.witnesses)?;
        Ok(())
    }

    fn validate_limits(&self) -> Result<()> {
        let l = &self.limits;
        if !(1..=3600).contains(&l.request_timeout_seconds) {
            return Err(ServerError::config("limits.request_timeout_seconds", "must be in 1..=3600"));
        }
        if !(1..=10_000).contains(&l.max_concurrent_streams) {
            return Err(ServerError::config("limits.max_concurrent_streams", "must be in 1..=10000"));
        }
        if !(1..=100_000).contains(&l.max_vouchers_per_batch) {
            return Err(ServerError::config("limits.max_vouchers_per_batch", "must be in 1..=100000"));
        }
        if !l.rate_vouchers_per_second.is_finite() || l.rate_vouchers_per_second <= 0.0 {
            return Err(ServerError::config("limits.rate_vouchers_per_second", "must be a positive number"));
        }
        if (l.rate_burst as usize) < l.max_vouchers_per_batch {
            return Err(ServerError::config(
                "limits.rate_burst",
                "must be at least limits.max_vouchers_per_batch (or a full batch could never pass)",
            ));
        }
        if l.max_message_bytes > MAX_MESSAGE_BYTES {
            return Err(ServerError::config(
                "limits.max_message_bytes",
                format!("must be at most {MAX_MESSAGE_BYTES}"),
            ));
        }
        if !(16 * 1024..=16 * 1024 * 1024).contains(&l.max_header_list_bytes) {
            return Err(ServerError::config("limits.max_header_list_bytes", "must be in 16384..=16777216"));
        }
        if !(1..=1024).contains(&l.max_client_states) {
            return Err(ServerError::config("limits.max_client_states", "must be in 1..=1024"));
        }
        if l.max_backlog_batches == 0 {
            return Err(ServerError::config("limits.max_backlog_batches", "must be at least 1"));
        }
        if l.max_backlog_bytes < l.max_message_bytes as u64 {
            return Err(ServerError::config(
                "limits.max_backlog_bytes",
                "must be at least limits.max_message_bytes (or a full batch could never be admitted)",
            ));
        }
        // Whether one voucher of the order fits is checked once the signed order is read (`Governance::load`).
        if l.max_message_bytes < 4096 {
            return Err(ServerError::config("limits.max_message_bytes", "must be at least 4096"));
        }
        Ok(())
    }

    fn validate_accounts(&self) -> Result<()> {
        if self.accounts.is_empty() {
            return Err(ServerError::config("accounts", "at least one [[accounts]] entry is needed"));
        }
        let mut names = HashSet::new();
        let mut tokens = HashSet::new();
        for (i, a) in self.accounts.iter().enumerate() {
            if a.account.is_empty() || a.account.len() > vouchsafe_store::MAX_ID_LEN {
                let reason = format!("must be 1..={} bytes", vouchsafe_store::MAX_ID_LEN);
                return Err(ServerError::config(format!("accounts[{i}].account"), reason));
            }
            if a.token.expose().len() < MIN_TOKEN_LEN || a.token.expose().len() > MAX_TOKEN_LEN {
                return Err(ServerError::config(
                    format!("accounts[{i}].token"),
                    format!("must be {MIN_TOKEN_LEN}..={MAX_TOKEN_LEN} bytes"),
                ));
            }
            if a.token.expose().chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(ServerError::config(format!("accounts[{i}].token"), "must not contain whitespace"));
            }
            if !names.insert(a.account.as_str()) {
                return Err(ServerError::config(format!("accounts[{i}].account"), "duplicate account"));
            }
            if !tokens.insert(a.token.digest()) {
                return Err(ServerError::config(format!("accounts[{i}].token"), "the same token is used twice"));
            }
            for (key, list) in [("components", &a.components), ("groups", &a.groups), ("classes", &a.classes)] {
                if let Some(bad) =
                    list.iter().position(|x| x.is_empty() || x.len() > 64 || !x.bytes().all(|b| b.is_ascii_graphic()))
                {
                    return Err(ServerError::config(
                        format!("accounts[{i}].{key}[{bad}]"),
                        "must be 1..=64 bytes of visible ASCII (compared byte for byte with the order's)",
                    ));
                }
            }
        }
        Ok(())
    }
}
