//! Client configuration.

use core::fmt;
use std::path::PathBuf;
use std::time::Duration;

use vouchsafe_log::{CheckpointPolicy, LogVerifier, WitnessVerifier};
use vouchsafe_orders::AuthorityKeyring;
use zeroize::Zeroizing;

use crate::error::{ClientError, Result};

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

/// The keys the messenger application pins, shipped with the app and **never taken from the server**: which
/// authorities may issue orders, which Centre the table must come from, which transparency log and which witnesses
/// vouch for what the server shows, and how many witnesses must agree. Build it with [`TrustAnchors::new`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct TrustAnchors {
    /// The issuing authorities' public keys: only orders and revocations signed by one of them verify.
    pub authorities: AuthorityKeyring,
    /// The Centre's Ed25519 public key: an order naming another Centre key is refused
    /// ([`ClientError::UntrustedCentre`]).
    pub centre_key: [u8; 32],
    /// The transparency log's signed-note key (its name is the log's origin).
    pub log: LogVerifier,
    /// The witnesses' cosignature keys.
    pub witnesses: Vec<WitnessVerifier>,
    /// How many distinct pinned witnesses must cosign a checkpoint (1..=`witnesses.len()`).
    pub quorum: usize,
    /// Refuse a checkpoint whose newest witness quorum is older than this (a frozen log, or a replayed old
    /// checkpoint, could otherwise keep the device on an old view, e.g. from before a revocation). `None` (the
    /// default): no freshness check; set it once the witnesses cosign at least that often.
    pub max_checkpoint_age: Option<Duration>,
}

impl TrustAnchors {
    /// The pins, checked: the quorum must be between 1 and the number of witnesses and no witness may appear twice
    /// ([`ClientError::Log`] with `Misuse` otherwise). No freshness limit; set
    /// [`TrustAnchors::max_checkpoint_age`] to have one.
    pub fn new(
        authorities: AuthorityKeyring,
        centre_key: [u8; 32],
        log: LogVerifier,
        witnesses: Vec<WitnessVerifier>,
        quorum: usize,
    ) -> Result<TrustAnchors> {
        let anchors = TrustAnchors { authorities, centre_key, log, witnesses, quorum, max_checkpoint_age: None };
        anchors.policy()?;
        Ok(anchors)
    }

    /// The log policy of these pins (log key, witnesses, quorum).
    pub fn policy(&self) -> Result<CheckpointPolicy> {
        CheckpointPolicy::new(self.log.clone(), self.witnesses.clone(), self.quorum).map_err(ClientError::Log)
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
    /// The service this messenger is; an order for another service is refused ([`ClientError::WrongService`]).
    pub service_id: String,
    /// The keys the app pins (authorities, Centre, log, witnesses, quorum). Never taken from the server.
    pub anchors: TrustAnchors,
    /// The account's classes as the messenger knows them (e.g. `state-security`). If the order excludes any of
    /// them, nothing is hashed or sent for this account ([`ClientError::Excluded`]). Empty by default.
    pub account_classes: Vec<String>,
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
    /// The period of [`Client::run_submissions`](crate::Client::run_submissions): it sends the outbox on every tick of
    /// a fixed clock grid of this period, never because an image was scanned, so when a batch arrives, and how many
    /// vouchers it holds, follows the clock and the device's total image count, not the moment or the kind of any
    /// one voucher (docs/LEAKAGE.md §6). Default 10 minutes: a match then reaches the server at most about 10
    /// minutes after the image was sent, which detection under an order does not need faster; a shorter period
    /// gives the server finer timing of the user's activity. At least 1 s.
    pub submit_interval: Duration,
}

impl ClientConfig {
    /// A configuration with the defaults: no account classes, connect timeout 10 s, request timeout 30 s, batches
    /// of 64, 5 retries, backoff 250 ms doubling up to 30 s, tables up to 2^24 slots, messages up to 64 MiB.
    pub fn new(
        endpoint: impl Into<String>,
        token: BearerToken,
        data_dir: impl Into<PathBuf>,
        service_id: impl Into<String>,
        anchors: TrustAnchors,
    ) -> Self {
        ClientConfig {
            endpoint: endpoint.into(),
            token,
            data_dir: data_dir.into(),
            service_id: service_id.into(),
            anchors,
            account_classes: Vec::new(),
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
            submit_interval: Duration::from_secs(600),
        }
    }

    /// The backoff before retry number `attempt` (0-based): `backoff_initial · 2^attempt`, capped.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(30)).unwrap_or(u32::MAX);
        self.backoff_initial.saturating_mul(factor).min(self.backoff_max)
    }
}
