//! Client configuration.

use core::fmt;
use std::path::PathBuf;
use std::time::Duration;

use zeroize::Zeroizing;

/// The bearer token that identifies the account to the matching server. Zeroized on drop; its `Debug` is redacted
/// and the library never logs or formats it into an error.
#[derive(Clone)]
pub struct BearerToken(Zeroizing<String>);

impl BearerToken {
    /// Wraps a token (without the `Bearer ` prefix).
    pub fn new(token: impl Into<String>) -> Self {
        BearerToken(Zeroizing::new(token.into()))
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerToken(<redacted>)")
    }
}

/// Everything a [`crate::Client`] needs. Build it with [`ClientConfig::new`] and adjust the public fields.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ClientConfig {
    /// The matching server, e.g. `http://127.0.0.1:50051`. Plain `http://` is accepted only for loopback hosts
    /// unless [`ClientConfig::allow_plaintext_remote`] is set (the bearer token would travel in clear).
    pub endpoint: String,
    /// The account's bearer token, sent as `authorization: Bearer …` on every call.
    pub token: BearerToken,
    /// Directory for the table, the per-order state and the outbox (one directory per account; created 0700).
    pub data_dir: PathBuf,
    /// The service this messenger is; a manifest whose order is for another service is refused.
    pub service_id: String,
    /// TCP/HTTP2 connect timeout.
    pub connect_timeout: Duration,
    /// Timeout of one unary call, and of the wait for each message of the table stream.
    pub request_timeout: Duration,
    /// Most vouchers per submitted batch (keep it at or below the server's limit). At least 1.
    pub max_batch: usize,
    /// Retries of one call after a transient failure (UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ...).
    pub max_retries: u32,
    /// First backoff delay; doubled after every failed attempt.
    pub backoff_initial: Duration,
    /// Upper bound of the backoff delay.
    pub backoff_max: Duration,
    /// Largest table (slot count) the device accepts to download and hold.
    pub max_table_slots: u32,
    /// Largest gRPC message accepted from the server, in bytes.
    pub max_message_bytes: usize,
    /// Allow `http://` to a non-loopback host (testing only: the token would be sent unencrypted).
    pub allow_plaintext_remote: bool,
    /// For `https://` endpoints: PEM certificates of the certificate authorities to trust **instead of** the
    /// built-in Mozilla roots (a provider's private CA; also a way to pin the provider's own CA). `None`: the
    /// Mozilla roots (webpki-roots), the same on every platform.
    pub tls_ca_pem: Option<Vec<u8>>,
    /// Keep the table's slots decompressed in memory: 160 bytes per slot instead of 32 (about 180 MB instead of
    /// 36 MB for 10^6 indicators), and each voucher skips its three point decompressions (measured 1.20× → 1.13×
    /// of the client's floor, docs/PERFORMANCE.md). Off by default: on a phone the memory matters more.
    pub point_cache: bool,
}

impl ClientConfig {
    /// A configuration with the defaults: connect timeout 10 s, request timeout 30 s, batches of 64, 5 retries,
    /// backoff 250 ms doubling up to 30 s, tables up to 2^24 slots, messages up to 64 MiB.
    pub fn new(
        endpoint: impl Into<String>,
        token: BearerToken,
        data_dir: impl Into<PathBuf>,
        service_id: impl Into<String>,
    ) -> Self {
        ClientConfig {
            endpoint: endpoint.into(),
            token,
            data_dir: data_dir.into(),
            service_id: service_id.into(),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_batch: 64,
            max_retries: 5,
            backoff_initial: Duration::from_millis(250),
            backoff_max: Duration::from_secs(30),
            max_table_slots: 1 << 24,
            max_message_bytes: 64 << 20,
            allow_plaintext_remote: false,
            tls_ca_pem: None,
            point_cache: false,
        }
    }

    /// The backoff before retry number `attempt` (0-based): `backoff_initial · 2^attempt`, capped.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(30)).unwrap_or(u32::MAX);
        self.backoff_initial.saturating_mul(factor).min(self.backoff_max)
    }
}
