//! `VOUCHSAFE_*` environment overrides, applied after the file and before validation.

use std::path::PathBuf;

use zeroize::Zeroizing;

use super::{AccountConfig, ServerConfig, TlsConfig};
use crate::error::{Result, ServerError};

fn parse_env<T: std::str::FromStr>(var: &str, value: &str) -> Result<T> {
    value.trim().parse::<T>().map_err(|_| ServerError::config(var, "cannot parse the value"))
}

impl ServerConfig {
    /// Applies environment overrides, looking each `VOUCHSAFE_*` variable up with `lookup`. Every variable and the
    /// key it overrides is listed in `docs/OPERATIONS.md`. `VOUCHSAFE_ACCOUNTS` (`account=token,account=token`)
    /// replaces the whole account list (accounts
    /// without components, groups or classes).
    pub fn apply_env(&mut self, lookup: impl Fn(&str) -> Option<String>) -> Result<()> {
        macro_rules! over {
            ($var:literal, $field:expr) => {
                if let Some(v) = lookup($var) {
                    $field = parse_env($var, &v)?;
                }
            };
        }
        over!("VOUCHSAFE_LISTEN", self.listen);
        over!("VOUCHSAFE_DATABASE", self.database);
        over!("VOUCHSAFE_TABLE", self.table);
        if let Some(v) = lookup("VOUCHSAFE_TABLE_UPDATES") {
            self.table_updates = if v.trim().is_empty() { None } else { Some(PathBuf::from(v.trim())) };
        }
        over!("VOUCHSAFE_CHUNK_SLOTS", self.chunk_slots);
        over!("VOUCHSAFE_WORKER_POLL_INTERVAL_MS", self.worker.poll_interval_ms);
        over!("VOUCHSAFE_WORKER_BATCHES_PER_ROUND", self.worker.batches_per_round);
        over!("VOUCHSAFE_WORKER_HANDOFF_BYTES", self.worker.handoff_bytes);
        over!("VOUCHSAFE_WORKER_SCHEDULE", self.worker.schedule);
        over!("VOUCHSAFE_WORKER_NICE", self.worker.nice);
        over!("VOUCHSAFE_WORKER_COVER_WRITES", self.worker.cover_writes);
        over!("VOUCHSAFE_WORKER_CLAIM_SECONDS", self.worker.claim_seconds);
        if let Some(v) = lookup("VOUCHSAFE_WORKER_ID") {
            self.worker.id = if v.trim().is_empty() { None } else { Some(v.trim().to_owned()) };
        }
        if let Some(v) = lookup("VOUCHSAFE_METRICS_LISTEN") {
            self.metrics_listen =
                if v.trim().is_empty() { None } else { Some(parse_env("VOUCHSAFE_METRICS_LISTEN", &v)?) };
        }
        over!("VOUCHSAFE_LOG_FORMAT", self.log_format);
        over!("VOUCHSAFE_POSTGRES_CONNECTIONS", self.postgres.connections);
        over!("VOUCHSAFE_LIMITS_MAX_MESSAGE_BYTES", self.limits.max_message_bytes);
        over!("VOUCHSAFE_LIMITS_MAX_VOUCHERS_PER_BATCH", self.limits.max_vouchers_per_batch);
        over!("VOUCHSAFE_LIMITS_RATE_VOUCHERS_PER_SECOND", self.limits.rate_vouchers_per_second);
        over!("VOUCHSAFE_LIMITS_RATE_BURST", self.limits.rate_burst);
        over!("VOUCHSAFE_LIMITS_REQUEST_TIMEOUT_SECONDS", self.limits.request_timeout_seconds);
        over!("VOUCHSAFE_LIMITS_MAX_CONCURRENT_STREAMS", self.limits.max_concurrent_streams);
        over!("VOUCHSAFE_LIMITS_MAX_HEADER_LIST_BYTES", self.limits.max_header_list_bytes);
        over!("VOUCHSAFE_LIMITS_MAX_CLIENT_STATES", self.limits.max_client_states);
        over!("VOUCHSAFE_LIMITS_MAX_BACKLOG_BATCHES", self.limits.max_backlog_batches);
        over!("VOUCHSAFE_LIMITS_MAX_BACKLOG_BYTES", self.limits.max_backlog_bytes);
        over!("VOUCHSAFE_ORDER_SIGNED_ORDER", self.order.signed_order);
        over!("VOUCHSAFE_ORDER_EPOCH", self.order.epoch);
        over!("VOUCHSAFE_ORDER_AD_LEN", self.order.ad_len);
        over!("VOUCHSAFE_RELEASES_DIR", self.releases.dir);
        over!("VOUCHSAFE_LOG_DIR", self.log.dir);
        over!("VOUCHSAFE_LOG_KEY", self.log.key);
        over!("VOUCHSAFE_RETENTION_PURGE_AFTER_SECONDS", self.retention.purge_after_seconds);
        match (lookup("VOUCHSAFE_TLS_CERT"), lookup("VOUCHSAFE_TLS_KEY"), &mut self.tls) {
            (None, None, _) => {}
            (Some(cert), Some(key), tls) => *tls = Some(TlsConfig { cert: cert.into(), key: key.into() }),
            (Some(cert), None, Some(tls)) => tls.cert = cert.into(),
            (None, Some(key), Some(tls)) => tls.key = key.into(),
            (Some(_), None, None) => {
                return Err(ServerError::config(
                    "VOUCHSAFE_TLS_CERT",
                    "set VOUCHSAFE_TLS_KEY too (no [tls] in the file)",
                ));
            }
            (None, Some(_), None) => {
                return Err(ServerError::config(
                    "VOUCHSAFE_TLS_KEY",
                    "set VOUCHSAFE_TLS_CERT too (no [tls] in the file)",
                ));
            }
        }
        if let Some(v) = lookup("VOUCHSAFE_ACCOUNTS") {
            let v = Zeroizing::new(v);
            let mut accounts = Vec::new();
            for (i, pair) in v.split(',').map(str::trim).filter(|p| !p.is_empty()).enumerate() {
                let Some((account, token)) = pair.split_once('=') else {
                    return Err(ServerError::config(
                        "VOUCHSAFE_ACCOUNTS",
                        format!("entry {i} is not of the form account=token"),
                    ));
                };
                accounts.push(AccountConfig::new(token.trim(), account.trim()));
            }
            self.accounts = accounts;
        }
        Ok(())
    }
}
