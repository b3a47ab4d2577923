//! Server configuration: a TOML file, then `VOUCHSAFE_*` environment overrides, then validation with precise errors.
//! `docs/OPERATIONS.md` explains every key.

use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use vouchsafe_phash::HashConfig;
use vouchsafe_protocol::labels::{MAX_AD_LEN, MAX_SYNTHETIC_CAP, MAX_THRESHOLD};
use vouchsafe_protocol::params::EpochParams;
use vouchsafe_protocol::table::{MAX_CHUNK_SLOTS, TableConfig};
use zeroize::Zeroizing;

use crate::error::{Result, ServerError};

/// Longest order validity: 24 months (2 × 365 days + 1 leap day).
pub const MAX_ORDER_SECONDS: i64 = 731 * 24 * 3600;
/// Shortest accepted bearer token, in bytes.
pub const MIN_TOKEN_LEN: usize = 16;
/// Largest accepted gRPC message.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// The whole server configuration.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address the gRPC server listens on (`127.0.0.1:0` picks a free port).
    pub listen: SocketAddr,
    /// Path of the SQLite database.
    pub database: PathBuf,
    /// Path of the secret table file (`ServerTable::to_secret_bytes`, contains α).
    pub table: PathBuf,
    /// Path of the table update history (appended by `vouchsafe table update`); optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table_updates: Option<PathBuf>,
    /// Slots per distribution chunk used when building a table.
    #[serde(default = "default_chunk_slots")]
    pub chunk_slots: u32,
    /// Background worker settings.
    #[serde(default)]
    pub worker: WorkerConfig,
    /// Request limits.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// The detection order the server serves.
    pub order: OrderConfig,
    /// Retention of order data.
    #[serde(default)]
    pub retention: RetentionConfig,
    /// Bearer tokens and the accounts they authenticate.
    #[serde(default)]
    pub accounts: Vec<AccountConfig>,
    /// TLS on the listening port. Absent: plain HTTP/2, for loopback or behind a TLS-terminating proxy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
}

/// The server's TLS certificate and key (PEM files, read at start).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain, the server's certificate first.
    pub cert: PathBuf,
    /// PEM private key of the certificate (PKCS#8, PKCS#1 or SEC1). Keep it mode 0600.
    pub key: PathBuf,
}

fn default_chunk_slots() -> u32 {
    vouchsafe_protocol::table::DEFAULT_CHUNK_SLOTS
}

/// Background worker settings.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct WorkerConfig {
    /// How often the worker looks at the inbox when no submission woke it, in milliseconds.
    pub poll_interval_ms: u64,
    /// Batches taken from the inbox per round.
    pub batches_per_round: usize,
    /// Bytes of freshly stored vouchers the intake may hand to the worker in memory instead of the worker reading
    /// them back from storage (0 turns the handoff off; the store stays the record either way).
    #[serde(default = "default_handoff_bytes")]
    pub handoff_bytes: usize,
}

fn default_handoff_bytes() -> usize {
    64 << 20
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig { poll_interval_ms: 1000, batches_per_round: 32, handoff_bytes: default_handoff_bytes() }
    }
}

impl WorkerConfig {
    /// The poll interval as a duration.
    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms)
    }
}

/// Request limits.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest decoded gRPC message in bytes (larger requests are refused by the transport).
    pub max_message_bytes: usize,
    /// Most vouchers in one `SubmitVouchers` batch.
    pub max_vouchers_per_batch: usize,
    /// Sustained vouchers per second per account (token bucket refill rate).
    pub rate_vouchers_per_second: f64,
    /// Token bucket size per account (the burst); at least `max_vouchers_per_batch`.
    pub rate_burst: u32,
    /// Longest time a request may take, receiving it included (for a table stream: until its first message).
    /// Slow or stalled clients are cut off with DEADLINE_EXCEEDED / CANCELLED instead of holding resources.
    #[serde(default = "default_request_timeout_seconds")]
    pub request_timeout_seconds: u64,
    /// Most concurrent requests (HTTP/2 streams) per connection.
    #[serde(default = "default_max_concurrent_streams")]
    pub max_concurrent_streams: u32,
}

fn default_request_timeout_seconds() -> u64 {
    60
}

fn default_max_concurrent_streams() -> u32 {
    128
}

impl LimitsConfig {
    /// The request timeout as a duration.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_seconds)
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_message_bytes: 8 * 1024 * 1024,
            max_vouchers_per_batch: 256,
            rate_vouchers_per_second: 20.0,
            rate_burst: 1024,
            request_timeout_seconds: default_request_timeout_seconds(),
            max_concurrent_streams: default_max_concurrent_streams(),
        }
    }
}

/// The detection order's parameters as the server applies them.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OrderConfig {
    /// Order id, 32 hex digits.
    #[serde(serialize_with = "ser_hex16", deserialize_with = "de_hex16")]
    pub order_id: [u8; 16],
    /// The service the order applies to.
    pub service_id: String,
    /// Table epoch.
    pub epoch: u64,
    /// Threshold T.
    pub threshold: u16,
    /// Synthetic probability p in [0, 1).
    pub synthetic_rate: f64,
    /// Synthetic cap s.
    pub synthetic_cap: u16,
    /// Padded associated-data length (2-byte length prefix included).
    pub ad_len: u16,
    /// Perceptual hash configuration id (`vouchsafe_phash::HashConfig::from_id`).
    pub hash_config_id: u16,
    /// Start of validity, Unix seconds.
    pub not_before: i64,
    /// End of validity, Unix seconds (exclusive).
    pub not_after: i64,
}

impl OrderConfig {
    /// p as the wire's fraction of 2^32.
    pub fn synthetic_rate_wire(&self) -> u32 {
        EpochParams::rate_from_probability(self.synthetic_rate)
    }

    /// Whether the order is valid at `now` (Unix seconds).
    pub fn active_at(&self, now: i64) -> bool {
        self.not_before <= now && now < self.not_after
    }
}

/// Retention of order data.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// Seconds after `order.not_after` at which the worker purges the order's opened vouchers, threshold state and
    /// case associated data (case metadata stays for statistics and appeals).
    pub purge_after_seconds: u64,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig { purge_after_seconds: 90 * 24 * 3600 }
    }
}

/// A bearer token and the account it authenticates.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AccountConfig {
    /// The bearer token (secret; never logged).
    pub token: BearerToken,
    /// The account id it authenticates.
    pub account: String,
    /// Accounts excluded from the order (e.g. state accounts): their submissions get PERMISSION_DENIED.
    #[serde(default)]
    pub excluded: bool,
}

/// A secret bearer token: zeroized on drop, redacted in `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct BearerToken(Zeroizing<String>);

impl BearerToken {
    /// Wraps a token.
    pub fn new(token: impl Into<String>) -> Self {
        BearerToken(Zeroizing::new(token.into()))
    }
    /// The secret value.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerToken(<redacted>)")
    }
}

impl Serialize for BearerToken {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for BearerToken {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Ok(BearerToken(Zeroizing::new(String::deserialize(d)?)))
    }
}

fn ser_hex16<S: Serializer>(v: &[u8; 16], s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(v))
}

fn de_hex16<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<[u8; 16], D::Error> {
    let s = String::deserialize(d)?;
    parse_hex16(&s).map_err(serde::de::Error::custom)
}

fn parse_hex16(s: &str) -> std::result::Result<[u8; 16], String> {
    let v = hex::decode(s.trim()).map_err(|_| "must be 32 hex digits".to_owned())?;
    <[u8; 16]>::try_from(v.as_slice()).map_err(|_| "must be 32 hex digits (16 bytes)".to_owned())
}

/// Current Unix time in seconds (0 if the clock is before 1970).
pub fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)).unwrap_or(0)
}

fn parse_env<T: std::str::FromStr>(var: &str, value: &str) -> Result<T> {
    value.trim().parse::<T>().map_err(|_| ServerError::config(var, "cannot parse the value"))
}

impl ServerConfig {
    /// Reads the TOML file at `path`, applies `VOUCHSAFE_*` environment overrides and validates.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ServerError::Io {
            what: "config file",
            path: path.to_owned(),
            source,
        })?;
        let mut cfg = Self::from_toml_str(&text)?;
        cfg.apply_env(|k| std::env::var(k).ok())?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Parses TOML (no environment, no validation).
    pub fn from_toml_str(text: &str) -> Result<Self> {
        toml::from_str(text).map_err(|e| ServerError::config("config file", e.message().to_owned()))
    }

    /// Serialises to TOML (includes the tokens: write it with restrictive permissions).
    pub fn to_toml_string(&self) -> Result<String> {
        toml::to_string_pretty(self).map_err(|e| ServerError::config("config", e.to_string()))
    }

    /// Applies environment overrides, looking each `VOUCHSAFE_*` variable up with `lookup`. Every variable and the
    /// key it overrides is listed in `docs/OPERATIONS.md`. `VOUCHSAFE_ACCOUNTS` (`account=token,account=token`)
    /// replaces the whole account list.
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
        over!("VOUCHSAFE_LIMITS_MAX_MESSAGE_BYTES", self.limits.max_message_bytes);
        over!("VOUCHSAFE_LIMITS_MAX_VOUCHERS_PER_BATCH", self.limits.max_vouchers_per_batch);
        over!("VOUCHSAFE_LIMITS_RATE_VOUCHERS_PER_SECOND", self.limits.rate_vouchers_per_second);
        over!("VOUCHSAFE_LIMITS_RATE_BURST", self.limits.rate_burst);
        over!("VOUCHSAFE_LIMITS_REQUEST_TIMEOUT_SECONDS", self.limits.request_timeout_seconds);
        over!("VOUCHSAFE_LIMITS_MAX_CONCURRENT_STREAMS", self.limits.max_concurrent_streams);
        if let Some(v) = lookup("VOUCHSAFE_ORDER_ORDER_ID") {
            self.order.order_id = parse_hex16(&v).map_err(|r| ServerError::config("VOUCHSAFE_ORDER_ORDER_ID", r))?;
        }
        over!("VOUCHSAFE_ORDER_SERVICE_ID", self.order.service_id);
        over!("VOUCHSAFE_ORDER_EPOCH", self.order.epoch);
        over!("VOUCHSAFE_ORDER_THRESHOLD", self.order.threshold);
        over!("VOUCHSAFE_ORDER_SYNTHETIC_RATE", self.order.synthetic_rate);
        over!("VOUCHSAFE_ORDER_SYNTHETIC_CAP", self.order.synthetic_cap);
        over!("VOUCHSAFE_ORDER_AD_LEN", self.order.ad_len);
        over!("VOUCHSAFE_ORDER_HASH_CONFIG_ID", self.order.hash_config_id);
        over!("VOUCHSAFE_ORDER_NOT_BEFORE", self.order.not_before);
        over!("VOUCHSAFE_ORDER_NOT_AFTER", self.order.not_after);
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
                accounts.push(AccountConfig {
                    token: BearerToken::new(token.trim()),
                    account: account.trim().to_owned(),
                    excluded: false,
                });
            }
            self.accounts = accounts;
        }
        Ok(())
    }

    /// Checks every value; the error names the key and what is wrong.
    pub fn validate(&self) -> Result<()> {
        if self.database.as_os_str().is_empty() {
            return Err(ServerError::config("database", "must not be empty"));
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
        if w.handoff_bytes > 4 << 30 {
            return Err(ServerError::config("worker.handoff_bytes", "must be at most 4 GiB (4294967296)"));
        }
        self.validate_order()?;
        self.validate_limits()?;
        self.validate_accounts()?;
        Ok(())
    }

    fn validate_order(&self) -> Result<()> {
        let o = &self.order;
        if o.service_id.trim().is_empty() {
            return Err(ServerError::config("order.service_id", "must not be empty"));
        }
        if !(2..=MAX_THRESHOLD).contains(&o.threshold) {
            return Err(ServerError::config("order.threshold", format!("must be in 2..={MAX_THRESHOLD}")));
        }
        if !o.synthetic_rate.is_finite() || !(0.0..1.0).contains(&o.synthetic_rate) {
            return Err(ServerError::config("order.synthetic_rate", "must be a probability in [0, 1)"));
        }
        if o.synthetic_cap > MAX_SYNTHETIC_CAP {
            return Err(ServerError::config("order.synthetic_cap", format!("must be at most {MAX_SYNTHETIC_CAP}")));
        }
        if o.synthetic_rate > 0.0 && o.synthetic_cap == 0 {
            return Err(ServerError::config("order.synthetic_cap", "must be positive when synthetic_rate > 0"));
        }
        let hash = HashConfig::from_id(o.hash_config_id)
            .map_err(|_| ServerError::config("order.hash_config_id", "unknown perceptual hash configuration"))?;
        let min_ad = vouchsafe_phash::encoded_len(&hash) + 2;
        if (o.ad_len as usize) < min_ad || o.ad_len > MAX_AD_LEN {
            return Err(ServerError::config(
                "order.ad_len",
                format!(
                    "must be in {min_ad}..={MAX_AD_LEN} (associated data of hash configuration {} plus 2)",
                    o.hash_config_id
                ),
            ));
        }
        if o.not_after <= o.not_before {
            return Err(ServerError::config("order.not_after", "must be after order.not_before"));
        }
        if o.not_after.saturating_sub(o.not_before) > MAX_ORDER_SECONDS {
            return Err(ServerError::config("order.not_after", "an order is valid for at most 24 months"));
        }
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
        let one = self.voucher_len().saturating_add(64);
        if l.max_message_bytes < one {
            return Err(ServerError::config(
                "limits.max_message_bytes",
                format!("must be at least {one} so that one voucher fits"),
            ));
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
            if a.account.is_empty() || a.account.len() > 512 {
                return Err(ServerError::config(format!("accounts[{i}].account"), "must be 1..=512 bytes"));
            }
            if a.token.expose().len() < MIN_TOKEN_LEN || a.token.expose().len() > 4096 {
                return Err(ServerError::config(
                    format!("accounts[{i}].token"),
                    format!("must be {MIN_TOKEN_LEN}..=4096 bytes"),
                ));
            }
            if a.token.expose().chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(ServerError::config(format!("accounts[{i}].token"), "must not contain whitespace"));
            }
            if !names.insert(a.account.as_str()) {
                return Err(ServerError::config(format!("accounts[{i}].account"), "duplicate account"));
            }
            if !tokens.insert(crate::auth::digest(a.token.expose())) {
                return Err(ServerError::config(format!("accounts[{i}].token"), "the same token is used twice"));
            }
        }
        Ok(())
    }

    /// The hash configuration of the order (validated by [`ServerConfig::validate`]).
    pub fn hash_config(&self) -> Result<HashConfig> {
        HashConfig::from_id(self.order.hash_config_id)
            .map_err(|_| ServerError::config("order.hash_config_id", "unknown perceptual hash configuration"))
    }

    /// Length of every voucher under this order.
    pub fn voucher_len(&self) -> usize {
        vouchsafe_protocol::voucher::VoucherLayout {
            synthetic_cap: self.order.synthetic_cap as usize,
            ad_len: self.order.ad_len as usize,
        }
        .voucher_len()
    }

    /// The protocol's table configuration for this order.
    pub fn table_config(&self) -> TableConfig {
        TableConfig {
            epoch: self.order.epoch,
            order_id: self.order.order_id,
            threshold: self.order.threshold,
            synthetic_cap: self.order.synthetic_cap,
            synthetic_rate: self.order.synthetic_rate_wire(),
            ad_len: self.order.ad_len,
            chunk_slots: self.chunk_slots,
        }
    }

    /// [`ServerConfig::default_for_demo`] on 127.0.0.1:0 (a free port) with the database and the table file in
    /// `dir` and no update history: what the demo, the tests and the benches start from.
    pub fn demo_in(dir: &Path) -> Self {
        let mut c = Self::default_for_demo();
        c.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        c.database = dir.join("server.db");
        c.table = dir.join("table.secret");
        c.table_updates = None;
        c
    }

    /// A complete, valid configuration for a local demo: listens on 127.0.0.1:50051, files in the working
    /// directory, T = 3, p = 0.05, s = 4, an order valid from a minute ago for 30 days, and one account `demo`
    /// with a fixed, publicly known token. Never use it for anything but a demo.
    pub fn default_for_demo() -> Self {
        let now = unix_now();
        let hash = HashConfig::V1;
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            database: PathBuf::from("vouchsafe-demo.db"),
            table: PathBuf::from("vouchsafe-demo.table"),
            table_updates: Some(PathBuf::from("vouchsafe-demo.updates")),
            chunk_slots: default_chunk_slots(),
            worker: WorkerConfig::default(),
            limits: LimitsConfig::default(),
            order: OrderConfig {
                order_id: *b"vouchsafe-demo-1",
                service_id: "demo-messenger".to_owned(),
                epoch: 1,
                threshold: 3,
                synthetic_rate: 0.05,
                synthetic_cap: 4,
                ad_len: (vouchsafe_phash::encoded_len(&hash) + 2) as u16,
                hash_config_id: hash.id(),
                not_before: now - 60,
                not_after: now + 30 * 24 * 3600,
            },
            retention: RetentionConfig::default(),
            accounts: vec![AccountConfig {
                token: BearerToken::new("demo-token-not-secret-0001"),
                account: "demo".to_owned(),
                excluded: false,
            }],
            tls: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn demo_config_is_valid_and_round_trips_through_toml() {
        let c = ServerConfig::default_for_demo();
        c.validate().unwrap_or_else(|e| panic!("{e}"));
        let text = c.to_toml_string().unwrap_or_else(|e| panic!("{e}"));
        let back = ServerConfig::from_toml_str(&text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, c);
    }

    #[test]
    fn debug_redacts_tokens() {
        let c = ServerConfig::default_for_demo();
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("demo-token-not-secret-0001"));
        assert!(dbg.contains("<redacted>"));
    }

    #[test]
    fn env_overrides_apply_and_errors_name_the_variable() {
        let mut c = ServerConfig::default_for_demo();
        let env: HashMap<&str, &str> = [
            ("VOUCHSAFE_LISTEN", "0.0.0.0:7000"),
            ("VOUCHSAFE_LIMITS_MAX_VOUCHERS_PER_BATCH", "17"),
            ("VOUCHSAFE_ORDER_THRESHOLD", "9"),
            ("VOUCHSAFE_WORKER_HANDOFF_BYTES", "0"),
            ("VOUCHSAFE_ACCOUNTS", "alice=aaaaaaaaaaaaaaaaaaaa, bob=bbbbbbbbbbbbbbbbbbbbbbb"),
        ]
        .into_iter()
        .collect();
        c.apply_env(|k| env.get(k).map(|v| v.to_string())).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.listen.port(), 7000);
        assert_eq!(c.limits.max_vouchers_per_batch, 17);
        assert_eq!(c.order.threshold, 9);
        assert_eq!(c.worker.handoff_bytes, 0);
        assert_eq!(c.accounts.len(), 2);
        assert_eq!(c.accounts[1].account, "bob");
        c.validate().unwrap_or_else(|e| panic!("{e}"));

        let err = c.apply_env(|k| (k == "VOUCHSAFE_ORDER_EPOCH").then(|| "x".to_owned()));
        assert!(matches!(err, Err(ServerError::Config { ref key, .. }) if key == "VOUCHSAFE_ORDER_EPOCH"));
    }

    fn key_of(c: &ServerConfig) -> String {
        match c.validate() {
            Err(ServerError::Config { key, .. }) => key,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn validation_names_the_key() {
        let base = ServerConfig::default_for_demo();
        let mut c = base.clone();
        c.order.threshold = 1;
        assert_eq!(key_of(&c), "order.threshold");
        let mut c = base.clone();
        c.order.synthetic_rate = 1.0;
        assert_eq!(key_of(&c), "order.synthetic_rate");
        let mut c = base.clone();
        c.order.ad_len = 100;
        assert_eq!(key_of(&c), "order.ad_len");
        let mut c = base.clone();
        c.order.not_after = c.order.not_before + MAX_ORDER_SECONDS + 1;
        assert_eq!(key_of(&c), "order.not_after");
        let mut c = base.clone();
        c.limits.rate_burst = 1;
        assert_eq!(key_of(&c), "limits.rate_burst");
        let mut c = base.clone();
        c.limits.max_message_bytes = 100;
        assert_eq!(key_of(&c), "limits.max_message_bytes");
        let mut c = base.clone();
        c.accounts[0].token = BearerToken::new("short");
        assert_eq!(key_of(&c), "accounts[0].token");
        let mut c = base.clone();
        let mut dup = c.accounts[0].clone();
        dup.account = "other".into();
        c.accounts.push(dup);
        assert_eq!(key_of(&c), "accounts[1].token");
        let mut c = base.clone();
        c.limits.request_timeout_seconds = 0;
        assert_eq!(key_of(&c), "limits.request_timeout_seconds");
        let mut c = base.clone();
        c.limits.max_concurrent_streams = 0;
        assert_eq!(key_of(&c), "limits.max_concurrent_streams");
        let mut c = base.clone();
        c.worker.handoff_bytes = (4 << 30) + 1;
        assert_eq!(key_of(&c), "worker.handoff_bytes");
        let mut c = base;
        c.order.hash_config_id = 999;
        assert_eq!(key_of(&c), "order.hash_config_id");
    }

    #[test]
    fn tls_from_the_file_or_the_environment() {
        let mut c = ServerConfig::default_for_demo();
        c.tls = Some(TlsConfig { cert: "/etc/vouchsafe/cert.pem".into(), key: "/etc/vouchsafe/key.pem".into() });
        let back = ServerConfig::from_toml_str(&c.to_toml_string().unwrap_or_else(|e| panic!("{e}")))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back.tls, c.tls);
        // One variable overrides one field of the file's [tls].
        c.apply_env(|k| (k == "VOUCHSAFE_TLS_KEY").then(|| "/run/key.pem".to_owned()))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.tls.as_ref().map(|t| t.key.as_path()), Some(Path::new("/run/key.pem")));
        // Without [tls] in the file, both variables are needed.
        let mut c = ServerConfig::default_for_demo();
        let err = c.apply_env(|k| (k == "VOUCHSAFE_TLS_CERT").then(|| "/run/cert.pem".to_owned()));
        assert!(matches!(err, Err(ServerError::Config { ref key, .. }) if key == "VOUCHSAFE_TLS_CERT"));
        c.apply_env(|k| k.starts_with("VOUCHSAFE_TLS_").then(|| format!("/run/{k}"))).unwrap_or_else(|e| panic!("{e}"));
        assert!(c.tls.is_some());
        c.tls = Some(TlsConfig { cert: PathBuf::new(), key: "/k".into() });
        assert_eq!(key_of(&c), "tls.cert");
    }

    /// A config file written before `worker.handoff_bytes` existed still loads, with the default budget.
    #[test]
    fn handoff_bytes_defaults_when_absent() {
        let text = ServerConfig::default_for_demo().to_toml_string().unwrap_or_else(|e| panic!("{e}"));
        let line = text.lines().find(|l| l.starts_with("handoff_bytes")).unwrap_or_else(|| panic!("{text}"));
        let old = text.replace(&format!("{line}\n"), "");
        let back = ServerConfig::from_toml_str(&old).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back.worker.handoff_bytes, 64 << 20);
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let mut text = ServerConfig::default_for_demo().to_toml_string().unwrap_or_else(|e| panic!("{e}"));
        text.insert_str(0, "listen_address = \"x\"\n");
        assert!(ServerConfig::from_toml_str(&text).is_err());
    }
}
