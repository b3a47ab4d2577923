//! The configuration's schema: the TOML tables and keys, their serde defaults, and what is derived from them.
//! `docs/OPERATIONS.md` explains every key.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use vouchsafe_phash::HashConfig;
use vouchsafe_protocol::params::EpochParams;
use vouchsafe_protocol::table::TableConfig;

use crate::auth::BearerToken;
use crate::error::{Result, ServerError};

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

pub(super) fn default_chunk_slots() -> u32 {
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

fn ser_hex16<S: Serializer>(v: &[u8; 16], s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(v))
}

fn de_hex16<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<[u8; 16], D::Error> {
    let s = String::deserialize(d)?;
    parse_hex16(&s).map_err(serde::de::Error::custom)
}

pub(super) fn parse_hex16(s: &str) -> std::result::Result<[u8; 16], String> {
    let v = hex::decode(s.trim()).map_err(|_| "must be 32 hex digits".to_owned())?;
    <[u8; 16]>::try_from(v.as_slice()).map_err(|_| "must be 32 hex digits (16 bytes)".to_owned())
}

impl ServerConfig {
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
}
