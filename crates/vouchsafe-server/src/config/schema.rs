//! The configuration's schema: the TOML tables and keys, their serde defaults, and what is derived from them.
//! `docs/OPERATIONS.md` explains every key.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use vouchsafe_protocol::table::TableConfig;

use crate::auth::BearerToken;

/// The whole server configuration.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address the gRPC server listens on (`127.0.0.1:0` picks a free port).
    pub listen: SocketAddr,
    /// The database: the path of a SQLite file (the embedded default, one server process), or a PostgreSQL URL
    /// (`postgres://user@host/db`, `postgresql:///db?host=/run/postgresql` for a Unix socket), which several
    /// replicas share.
    pub database: PathBuf,
    /// The log lines' format on stderr: `text` (the default) or `json` (one JSON object per line, with the
    /// request's span: `method`, `request_id`).
    #[serde(default, skip_serializing_if = "LogFormat::is_text")]
    pub log_format: LogFormat,
    /// Where `GET /metrics` (Prometheus text format) is served; absent: not served. Plain HTTP: bind it to loopback
    /// or a private network the Prometheus server reaches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_listen: Option<SocketAddr>,
    /// Settings of a PostgreSQL `database` (`[postgres]`); ignored for SQLite.
    #[serde(default)]
    pub postgres: PostgresConfig,
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
    /// The detection order the server serves (the signed order and the pinned authority keys).
    pub order: OrderConfig,
    /// The table-signing key (for `vouchsafe table build | update`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table_signing: Option<TableSigningConfig>,
    /// The Centre releases the table is built from.
    pub releases: ReleasesConfig,
    /// The transparency log.
    pub log: LogConfig,
    /// Retention of order data.
    #[serde(default)]
    pub retention: RetentionConfig,
    /// Bearer tokens and the accounts they authenticate.
    #[serde(default)]
    pub accounts: Vec<AccountConfig>,
    /// TLS on the listening port. Absent: plain HTTP/2, for loopback or behind a TLS-terminating proxy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
    /// The provider's identity towards the Centre: its name and its report-signing key (`[provider]`). Needed by
    /// `[review]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<ProviderConfig>,
    /// What follows the threshold: the Review API's listener, its reviewers and the order's review rules
    /// (`[review]`). Without it cases are filed and wait; nothing leaves the provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<ReviewConfig>,
    /// Where reports, withdrawals and indicator feedback go: the Centre's intake endpoint (`[centre]`). Needed by
    /// `[review]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub centre: Option<CentreConfig>,
}

/// `[provider]`: who signs what the provider sends to the Centre and publishes.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// The provider's name as the Centre pinned it (1..=64 bytes of `[A-Za-z0-9._@-]`).
    pub id: String,
    /// The provider's signing key file (`vouchsafe provider keygen`, `vouchsafe-provider-key v1`).
    pub key: PathBuf,
}

/// The role of a reviewer on the Review API.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum ReviewRole {
    /// Lists, opens and decides cases.
    Reviewer,
    /// What a reviewer does, and decides appeals and publishes the transparency report.
    Supervisor,
}

impl ReviewRole {
    /// `"reviewer"` or `"supervisor"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewRole::Reviewer => "reviewer",
            ReviewRole::Supervisor => "supervisor",
        }
    }
}

/// One person on the Review API: a name (what the audit log and the reports say), a bearer token distinct from
/// every device token, and a role.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ReviewerConfig {
    /// The reviewer's name (1..=64 bytes of `[A-Za-z0-9._@-]`).
    pub id: String,
    /// The reviewer's bearer token.
    pub token: BearerToken,
    /// `"reviewer"` or `"supervisor"`.
    pub role: ReviewRole,
}

/// `[review]`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ReviewConfig {
    /// The Review API's own listener (never the devices' `listen`).
    pub listen: SocketAddr,
    /// Four-eyes rule: two different reviewers must confirm before a report goes out.
    #[serde(default)]
    pub four_eyes: bool,
    /// How long after a report's delivery the user may appeal, in seconds (default 14 days).
    #[serde(default = "default_appeal_seconds")]
    pub appeal_seconds: u64,
    /// The people who may call the Review API.
    pub reviewers: Vec<ReviewerConfig>,
}

fn default_appeal_seconds() -> u64 {
    14 * 24 * 3600
}

/// `[centre]`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CentreConfig {
    /// The Centre's intake endpoint (`http://…` or `https://…`), `vouchsafe centre serve`.
    pub endpoint: String,
    /// A CA certificate (PEM) to trust for an `https` endpoint instead of the compiled-in web roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<PathBuf>,
    /// First retry delay after a failed delivery, in seconds; doubles up to `retry_max_seconds`.
    #[serde(default = "default_retry_initial")]
    pub retry_initial_seconds: u64,
    /// Longest retry delay, in seconds.
    #[serde(default = "default_retry_max")]
    pub retry_max_seconds: u64,
}

fn default_retry_initial() -> u64 {
    1
}

fn default_retry_max() -> u64 {
    300
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
    /// When rounds start. `fixed` (the default): on a fixed grid of `poll_interval_ms`, never because a submission
    /// arrived, so when the server works does not follow what devices send (docs/LEAKAGE.md §6). `eager`: also as
    /// soon as a submission is stored (lower latency to detection; the timing of the work then follows arrivals).
    #[serde(default)]
    pub schedule: WorkerSchedule,
    /// The worker's CPU niceness (0..=19; Linux and other Unix systems). The default 19 lets the intake always run
    /// first: the acknowledgement's latency does not depend on what the worker is doing or finding.
    #[serde(default = "default_worker_nice")]
    pub nice: i32,
    /// Cover writes (the default `true`): completing a batch writes a row of an opened voucher's size for every
    /// voucher that did not open, so a round's store work, and its hold on the write lock the intake waits on, does
    /// not depend on how many vouchers matched (docs/LEAKAGE.md §6). `false` saves that work and gives that up.
    #[serde(default = "default_true")]
    pub cover_writes: bool,
    /// Where the worker appends the leakage capture: its view of every voucher it processes, as JSON lines
    /// (docs/LEAKAGE.md §9, `vouchsafe leakage capture --from`). Off by default; the file holds below-threshold
    /// payloads, so it is for an order run to measure leakage, not for production.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture: Option<PathBuf>,
    /// This process's worker identity among the replicas sharing the database (1..=512 bytes); absent: the host
    /// name, the process id and the start time, unique per process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// How long the worker's claims on the accounts it processes hold without being renewed, in seconds (each round
    /// renews them). A replica that dies leaves its accounts to the others after this long.
    #[serde(default = "default_claim_seconds")]
    pub claim_seconds: u64,
}

fn default_claim_seconds() -> u64 {
    30
}

/// See [`WorkerConfig::schedule`].
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum WorkerSchedule {
    /// Rounds start on a fixed grid of the poll interval.
    #[default]
    Fixed,
    /// Rounds also start when a submission is stored.
    Eager,
}

/// The format of the server's log lines (`log_format`).
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl LogFormat {
    fn is_text(&self) -> bool {
        *self == LogFormat::Text
    }
}

impl std::str::FromStr for LogFormat {
    type Err = ();
    fn from_str(s: &str) -> std::result::Result<Self, ()> {
        match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(()),
        }
    }
}

impl std::str::FromStr for WorkerSchedule {
    type Err = ();
    fn from_str(s: &str) -> std::result::Result<Self, ()> {
        match s {
            "fixed" => Ok(WorkerSchedule::Fixed),
            "eager" => Ok(WorkerSchedule::Eager),
            _ => Err(()),
        }
    }
}

fn default_handoff_bytes() -> usize {
    64 << 20
}

fn default_true() -> bool {
    true
}

fn default_worker_nice() -> i32 {
    19
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            poll_interval_ms: 1000,
            batches_per_round: 32,
            handoff_bytes: default_handoff_bytes(),
            schedule: WorkerSchedule::Fixed,
            nice: default_worker_nice(),
            cover_writes: true,
            capture: None,
            id: None,
            claim_seconds: default_claim_seconds(),
        }
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
    /// Largest HTTP/2 header list (all request metadata, the bearer token included) the server reads, in bytes.
    /// A bearer token too long to be one of ours but within this is answered UNAUTHENTICATED; a larger header list
    /// is refused by HTTP/2 itself (docs/OPERATIONS.md §4).
    #[serde(default = "default_max_header_list_bytes")]
    pub max_header_list_bytes: u32,
    /// Most client states (devices, installs) one account may have under one order; a batch of one more is
    /// refused with RESOURCE_EXHAUSTED. Detection and the threshold run per client state.
    #[serde(default = "default_max_client_states")]
    pub max_client_states: u32,
    /// Most unprocessed batches; beyond, SubmitVouchers answers UNAVAILABLE until the worker catches up.
    #[serde(default = "default_max_backlog_batches")]
    pub max_backlog_batches: u64,
    /// Most bytes of unprocessed vouchers (the spool); beyond, SubmitVouchers answers UNAVAILABLE.
    #[serde(default = "default_max_backlog_bytes")]
    pub max_backlog_bytes: u64,
}

fn default_max_header_list_bytes() -> u32 {
    256 * 1024
}

fn default_max_client_states() -> u32 {
    8
}

fn default_max_backlog_batches() -> u64 {
    10_000
}

fn default_max_backlog_bytes() -> u64 {
    1 << 30
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
            max_header_list_bytes: default_max_header_list_bytes(),
            max_client_states: default_max_client_states(),
            max_backlog_batches: default_max_backlog_batches(),
            max_backlog_bytes: default_max_backlog_bytes(),
        }
    }
}

/// Where the authority-signed detection order comes from, and the provider's own epoch parameters. The order's
/// terms (service, scope, validity, T, p, s, hash configuration, Centre key and release line, table key, excluded
/// classes) are never configured here: they are read from the signed order and verified under the pinned keys.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct OrderConfig {
    /// The signed order (`vouchsafe authority issue` output, the `SignedOrder` encoding).
    pub signed_order: PathBuf,
    /// The pinned authority public key files (`vouchsafe-authority-public-key v1`), 1..=16.
    pub authority_keys: Vec<PathBuf>,
    /// A directory of signed revocations (every `*.bin` in it), re-read on SIGHUP and by the worker every round.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocations: Option<PathBuf>,
    /// The provider's table epoch (a new blinding key is a new epoch).
    pub epoch: u64,
    /// Padded associated-data length (2-byte length prefix included); at least what the order's hash
    /// configuration needs plus 2.
    pub ad_len: u16,
}

/// The provider's table-signing key (needed by `vouchsafe table build | update` only, not by `serve`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TableSigningConfig {
    /// The secret key file (`vouchsafe-table-key v1`); its public half must be the order's table key.
    pub key: PathBuf,
}

/// Where the Centre's signed releases are.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ReleasesConfig {
    /// The directory of the order's release line, `<line>-NNNNNN.bin` as `vouchsafe centre release` writes them.
    pub dir: PathBuf,
}

/// The transparency log the server keeps and serves.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// The log's directory (`leaves`, `checkpoint`); the server is its only writer.
    pub dir: PathBuf,
    /// The log signing key file (`vouchsafe log keygen`); its name is the log's origin.
    pub key: PathBuf,
    /// Verifier keys (`name+keyid+base64`) of the witnesses whose cosignatures `AddCosignature` accepts.
    #[serde(default)]
    pub witnesses: Vec<String>,
}

/// Settings of a PostgreSQL database (`[postgres]`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PostgresConfig {
    /// Connections this process keeps open (each store call holds one while it runs).
    #[serde(default = "default_pg_connections")]
    pub connections: usize,
    /// A schema of the server's own (created if missing); absent: the connection's default `search_path`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// TLS to a PostgreSQL server on another host: a PEM file of the CA certificate(s) its certificate must chain
    /// to (the URL's host name is verified, as `sslmode=verify-full`). Absent: no TLS (a Unix socket or loopback
    /// only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<PathBuf>,
}

fn default_pg_connections() -> usize {
    vouchsafe_store::DEFAULT_CONNECTIONS
}

impl Default for PostgresConfig {
    fn default() -> Self {
        PostgresConfig { connections: default_pg_connections(), schema: None, ca: None }
    }
}

/// Retention of order data.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// Seconds after the signed order's `not_after` at which the worker purges the order's opened vouchers,
    /// threshold state and case associated data (case metadata stays for statistics and appeals).
    pub purge_after_seconds: u64,
    /// Seconds after a case is closed (rejected; or reported and past its appeal, or its appeal decided) at which
    /// the worker purges its derivatives and the report bytes that carry them (metadata stays).
    #[serde(default = "default_case_retention")]
    pub case_after_close_seconds: u64,
}

fn default_case_retention() -> u64 {
    30 * 24 * 3600
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig { purge_after_seconds: 90 * 24 * 3600, case_after_close_seconds: default_case_retention() }
    }
}

/// A bearer token, the account it authenticates, and what the operator's account registry says about it: the
/// service components and groups it takes part in and its account classes (an order may exclude a class).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AccountConfig {
    /// The bearer token (secret; never logged).
    pub token: BearerToken,
    /// The account id it authenticates.
    pub account: String,
    /// Service components the account uses (an order scoped to components covers it if one is listed).
    #[serde(default)]
    pub components: Vec<String>,
    /// Groups the account is in (an order scoped to groups covers it if one is listed).
    #[serde(default)]
    pub groups: Vec<String>,
    /// Account classes (e.g. `state`); an order excluding one of them refuses the account.
    #[serde(default)]
    pub classes: Vec<String>,
}

impl AccountConfig {
    /// An account with no components, groups or classes.
    pub fn new(token: impl Into<String>, account: impl Into<String>) -> Self {
        AccountConfig {
            token: BearerToken::new(token),
            account: account.into(),
            components: Vec::new(),
            groups: Vec::new(),
            classes: Vec::new(),
        }
    }
}

impl ServerConfig {
    /// Whether `database` is a PostgreSQL URL rather than a SQLite path.
    pub fn database_is_postgres(&self) -> bool {
        self.database.to_str().is_some_and(vouchsafe_store::is_postgres_url)
    }

    /// `database` fit to print: a PostgreSQL URL with its password (in the user part or a `password=` parameter)
    /// replaced by `***`; a SQLite path as it is.
    pub fn database_display(&self) -> String {
        let text = self.database.display().to_string();
        if !self.database_is_postgres() {
            return text;
        }
        let (head, query) = text.split_once('?').map_or((text.as_str(), None), |(h, q)| (h, Some(q)));
        let head = match head.split_once("://") {
            Some((scheme, rest)) => match rest.split_once('@') {
                Some((user, host)) => match user.split_once(':') {
                    Some((name, _)) => format!("{scheme}://{name}:***@{host}"),
                    None => head.to_owned(),
                },
                None => head.to_owned(),
            },
            None => head.to_owned(),
        };
        match query {
            None => head,
            Some(q) => {
                let params: Vec<String> = q
                    .split('&')
                    .map(|p| if p.starts_with("password=") { "password=***".to_owned() } else { p.to_owned() })
                    .collect();
                format!("{head}?{}", params.join("&"))
            }
        }
    }

    /// The protocol's table configuration for an order verified under the pinned keys.
    pub fn table_config(&self, order: &vouchsafe_orders::VerifiedOrder) -> TableConfig {
        TableConfig {
            epoch: self.order.epoch,
            order_id: *order.order_id(),
            threshold: order.threshold(),
            synthetic_cap: order.synthetic_cap(),
            synthetic_rate: order.synthetic_rate(),
            ad_len: self.order.ad_len,
            chunk_slots: self.chunk_slots,
        }
    }

    /// Length of every voucher under an order with synthetic cap `synthetic_cap`.
    pub fn voucher_len(&self, synthetic_cap: u16) -> usize {
        vouchsafe_protocol::voucher::VoucherLayout {
            synthetic_cap: synthetic_cap as usize,
            ad_len: self.order.ad_len as usize,
        }
        .voucher_len()
    }

    /// Resolves every relative path of the file against `base` (the configuration file's directory).
    pub(super) fn resolve_paths(&mut self, base: &std::path::Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() && !p.as_os_str().is_empty() {
                *p = base.join(&*p);
            }
        };
        if !self.database_is_postgres() {
            fix(&mut self.database);
        }
        fix(&mut self.table);
        if let Some(p) = self.table_updates.as_mut() {
            fix(p);
        }
        if let Some(p) = self.worker.capture.as_mut() {
            fix(p);
        }
        fix(&mut self.order.signed_order);
        self.order.authority_keys.iter_mut().for_each(fix);
        if let Some(p) = self.order.revocations.as_mut() {
            fix(p);
        }
        if let Some(t) = self.table_signing.as_mut() {
            fix(&mut t.key);
        }
        fix(&mut self.releases.dir);
        fix(&mut self.log.dir);
        fix(&mut self.log.key);
        if let Some(t) = self.tls.as_mut() {
            fix(&mut t.cert);
            fix(&mut t.key);
        }
        if let Some(p) = self.provider.as_mut() {
            fix(&mut p.key);
        }
        if let Some(ca) = self.centre.as_mut().and_then(|c| c.ca.as_mut()) {
            fix(ca);
        }
        if let Some(ca) = self.postgres.ca.as_mut() {
            fix(ca);
        }
    }

    /// The signed manifest file of the table: the table file's path with `.manifest` appended.
    pub fn manifest_path(&self) -> PathBuf {
        let mut p = self.table.as_os_str().to_owned();
        p.push(".manifest");
        PathBuf::from(p)
    }
}
