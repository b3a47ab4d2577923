//! `vouchsafe load`: a bounded load generator for a matching server on loopback (docs/OPERATIONS.md, "Load
//! testing: vouchsafe load").
//!
//! Simulated devices, each its own client state in its own data directory under a temporary directory, sync the
//! table and scan generated images (phase 1, untimed), then all submit at once (phase 2, timed); with
//! `--metrics-url` the run then waits until the server's inbox is empty (phase 3). It refuses any endpoint that is
//! not on loopback, and nothing it prints or writes contains a token, a voucher or a hash.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use clap::Args;
use indicatif::ProgressBar;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Uri};
use vouchsafe_client::transport::{
    AppealAck, BoxFuture, CheckpointMessage, ChunkStream, ConsistencyProofMessage, GrpcTransport,
    InclusionProofMessage, Notice, Received, RpcError, SubmitAck, Transport, is_loopback_host,
};
use vouchsafe_client::verify::{ManifestInfo, UpdateInfo};
use vouchsafe_client::vouchsafe_log::{LogVerifier, WitnessVerifier};
use vouchsafe_client::vouchsafe_orders::AuthorityKeyring;
use vouchsafe_client::{BearerToken, Client, ClientConfig, ClientError, Image, ScanContext, TrustAnchors};
use vouchsafe_server::ServerConfig;

use crate::error::{CliError, Result};

/// Most simulated devices.
const MAX_DEVICES: u32 = 10_000;
/// Most vouchers in one run (devices × vouchers per device).
const MAX_VOUCHERS: u64 = 10_000_000;
/// Most bytes of tables all devices hold together (each device holds its own copy, 32 bytes per slot).
const MAX_TABLE_BYTES: u64 = 4 << 30;
/// Most HTTP/2 connections per endpoint: beyond it devices share them (device k of an endpoint uses connection
/// k mod this), so that 10 000 devices do not need 10 000 sockets.
const MAX_CONNECTIONS_PER_ENDPOINT: usize = 256;
/// Size of the generated images (the size the tests use: it passes the quality gate).
const IMAGE_WIDTH: u32 = 96;
const IMAGE_HEIGHT: u32 = 80;
/// Seeds of the generated images: far from the small seeds the tests and the demo make indicators of.
const SEED_BASE: u64 = 0x4c4f_4144_0000_0000;
/// The gauge phase 3 waits on.
const INBOX_GAUGE: &str = "vouchsafe_inbox_batches_pending";
/// Largest metrics response read.
const MAX_METRICS_BYTES: u64 = 16 << 20;
/// Bound of one metrics request.
const METRICS_TIMEOUT: Duration = Duration::from_secs(5);
/// Period of the metrics polls in phase 3.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// `vouchsafe load`.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Server configuration (TOML): the accounts (device i uses accounts[i mod count] and its token), `listen`
    /// (the default endpoint), the order, and the log and witness keys the devices pin.
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// A server endpoint on loopback (127.0.0.0/8, ::1, localhost), e.g. http://127.0.0.1:50051; repeat for
    /// replicas (device i uses endpoint i mod count). Default: the configuration's `listen`, on loopback.
    #[arg(long = "endpoint", value_name = "URL")]
    endpoints: Vec<String>,
    /// Simulated devices, each its own client state (1..=10000).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_DEVICES)))]
    devices: u32,
    /// Vouchers each device scans and submits (devices × vouchers at most 10^7).
    #[arg(long, value_name = "M", value_parser = clap::value_parser!(u64).range(1..=MAX_VOUCHERS))]
    vouchers_per_device: u64,
    /// Most vouchers per submitted batch (the client's max_batch; at most the server's
    /// limits.max_vouchers_per_batch).
    #[arg(long, value_name = "B", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    batch: u32,
    /// Bound of the timed part (the submissions and the wait for an empty inbox together), in seconds: the run
    /// stops then even if it is not done, and reports itself incomplete.
    #[arg(long, value_name = "S", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    max_seconds: u64,
    /// A directory of PNG or JPEG files (e.g. images whose hashes are indicators): each device scans K of them
    /// among its M vouchers, so that its account can cross the threshold.
    #[arg(long, value_name = "DIR", requires = "matching_per_device")]
    matching_images: Option<PathBuf>,
    /// K: how many of each device's vouchers are made from --matching-images files (distinct within a device).
    #[arg(long, value_name = "K", requires = "matching_images", value_parser = clap::value_parser!(u64).range(1..))]
    matching_per_device: Option<u64>,
    /// The server's Prometheus endpoint on loopback, e.g. http://127.0.0.1:9100/metrics; repeat for replicas.
    /// After the submissions the run polls it until `vouchsafe_inbox_batches_pending` is 0.
    #[arg(long = "metrics-url", value_name = "URL")]
    metrics_urls: Vec<String>,
    /// Also write the summary as JSON to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Witnesses whose cosignatures the devices require (default: every `[log] witnesses` entry).
    #[arg(long, value_name = "N")]
    quorum: Option<usize>,
    /// The log's verifier key (`name+id+key`, or a file holding it). Default: the file `<[log] key>.pub`, which
    /// `vouchsafe log keygen` writes.
    #[arg(long, value_name = "KEY|FILE")]
    log_key: Option<String>,
    /// For an https endpoint: PEM file of the certificate authorities to trust instead of the built-in roots.
    #[arg(long, value_name = "FILE")]
    ca_cert: Option<PathBuf>,
}

/// One account of the configuration, as the devices that use it see it.
struct Account {
    /// Its id (not secret; named in error messages).
    name: String,
    token: BearerToken,
    classes: Vec<String>,
    /// The conversation its scans claim: the account's first component and first group.
    context: ScanContext,
}

/// A checked `--metrics-url`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct MetricsUrl {
    /// As given (loopback; shown in messages).
    shown: String,
    /// Host to connect to (brackets of an IPv6 literal removed).
    host: String,
    port: u16,
    /// The `Host` header.
    authority: String,
    path: String,
}

/// Everything a run needs, checked.
struct Plan {
    devices: usize,
    per_device: u64,
    batch: usize,
    max_seconds: u64,
    matching: Vec<PathBuf>,
    matching_per_device: u64,
    anchors: TrustAnchors,
    service: String,
    accounts: Vec<Account>,
    endpoints: Vec<String>,
    /// Per endpoint, its connections.
    channels: Vec<Vec<Channel>>,
    ca_pem: Option<Vec<u8>>,
}

/// What the metered transports and the submitting tasks record.
#[derive(Default)]
struct Recorder {
    acknowledged: AtomicU64,
    batches: AtomicU64,
    /// SubmitVouchers calls moved to another endpoint after `Unavailable`.
    failovers: AtomicU64,
    /// Round-trip time of every acknowledged SubmitVouchers call, microseconds.
    latencies_us: Mutex<Vec<u32>>,
    /// Every failed SubmitVouchers attempt (retried ones included), by kind.
    rpc_errors: Mutex<BTreeMap<String, u64>>,
    /// Every failed `Client::submit` (after the client's own retries), by kind.
    errors: Mutex<BTreeMap<String, u64>>,
    /// Phase 2's progress bar, once it runs.
    bar: OnceLock<ProgressBar>,
}

fn count(map: &Mutex<BTreeMap<String, u64>>, kind: String) {
    if let Ok(mut m) = map.lock() {
        *m.entry(kind).or_insert(0) += 1;
    }
}

fn snapshot(map: &Mutex<BTreeMap<String, u64>>) -> BTreeMap<String, u64> {
    map.lock().map(|m| m.clone()).unwrap_or_default()
}

impl Recorder {
    fn submitted(&self, result: &std::result::Result<SubmitAck, RpcError>, took: Duration) {
        match result {
            Ok(ack) => {
                let n = u64::from(ack.accepted);
                self.acknowledged.fetch_add(n, Ordering::Relaxed);
                self.batches.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut l) = self.latencies_us.lock() {
                    l.push(u32::try_from(took.as_micros()).unwrap_or(u32::MAX));
                }
                if let Some(bar) = self.bar.get() {
                    bar.inc(n);
                }
            }
            Err(e) => count(&self.rpc_errors, rpc_kind(e)),
        }
    }
}

/// The client's gRPC transport to each endpoint, timing every SubmitVouchers call (each attempt: the client
/// retries above it). A device starts on its own endpoint; a SubmitVouchers call its endpoint answers with
/// `Unavailable` goes to the next endpoint at once, and the device stays there, as behind a load balancer that
/// takes a dead replica out (the same batch id: a batch the dead replica stored is answered as a duplicate).
struct Metered {
    /// The transport to the device's own endpoint.
    primary: GrpcTransport,
    /// The transports to the other endpoints, in the order the device fails over to them.
    others: Vec<GrpcTransport>,
    /// Which of them is in use: 0 the primary, k the k-th of `others` (modulo their number).
    current: std::sync::atomic::AtomicUsize,
    rec: Arc<Recorder>,
}

impl Metered {
    fn current(&self) -> &GrpcTransport {
        match self.current.load(Ordering::Relaxed) % (self.others.len() + 1) {
            0 => &self.primary,
            k => self.others.get(k - 1).unwrap_or(&self.primary),
        }
    }
}

type RpcResult<T> = std::result::Result<T, RpcError>;

impl Transport for Metered {
    fn get_manifest(&self) -> BoxFuture<'_, RpcResult<Received<ManifestInfo>>> {
        self.current().get_manifest()
    }
    fn stream_table(&self, table_version: u64, first_chunk: u32) -> BoxFuture<'_, RpcResult<Box<dyn ChunkStream>>> {
        self.current().stream_table(table_version, first_chunk)
    }
    fn get_update(&self, from_version: u64) -> BoxFuture<'_, RpcResult<Received<UpdateInfo>>> {
        self.current().get_update(from_version)
    }
    fn submit_vouchers<'a>(
        &'a self,
        batch_id: [u8; 16],
        client_state: [u8; 16],
        vouchers: &'a [Vec<u8>],
    ) -> BoxFuture<'a, RpcResult<SubmitAck>> {
        Box::pin(async move {
            let mut tries = 0;
            loop {
                let used = self.current.load(Ordering::Relaxed);
                let start = Instant::now();
                let result = self.current().submit_vouchers(batch_id, client_state, vouchers).await;
                self.rec.submitted(&result, start.elapsed());
                tries += 1;
                if matches!(result, Err(RpcError::Unavailable { .. })) && tries <= self.others.len() {
                    // Only from the endpoint that failed (should a concurrent failover have moved on already).
                    let _ = self.current.compare_exchange(used, used + 1, Ordering::Relaxed, Ordering::Relaxed);
                    self.rec.failovers.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                return result;
            }
        })
    }
    fn get_checkpoint(&self) -> BoxFuture<'_, RpcResult<Received<CheckpointMessage>>> {
        self.current().get_checkpoint()
    }
    fn get_inclusion_proof(
        &self,
        leaf_index: u64,
        tree_size: u64,
    ) -> BoxFuture<'_, RpcResult<Received<InclusionProofMessage>>> {
        self.current().get_inclusion_proof(leaf_index, tree_size)
    }
    fn get_consistency_proof(
        &self,
        old_size: u64,
        new_size: u64,
    ) -> BoxFuture<'_, RpcResult<Received<ConsistencyProofMessage>>> {
        self.current().get_consistency_proof(old_size, new_size)
    }
    fn get_notices(&self) -> BoxFuture<'_, RpcResult<Vec<Notice>>> {
        self.current().get_notices()
    }
    fn submit_appeal<'a>(&'a self, notice_id: u64, text: &'a str) -> BoxFuture<'a, RpcResult<AppealAck>> {
        self.current().submit_appeal(notice_id, text)
    }
}

/// The kind of a failed RPC, for the summary (a fixed name, never server text).
fn rpc_kind(e: &RpcError) -> String {
    match e {
        RpcError::Unauthenticated => "unauthenticated".into(),
        RpcError::PermissionDenied => "permission-denied".into(),
        RpcError::NoActiveOrder => "no-active-order".into(),
        RpcError::VersionNotServed => "version-not-served".into(),
        RpcError::InvalidArgument => "invalid-argument".into(),
        RpcError::ResourceExhausted => "resource-exhausted".into(),
        RpcError::TooManyClientStates => "too-many-client-states".into(),
        RpcError::Unavailable { code } => format!("unavailable ({code})"),
        RpcError::Tls { .. } => "tls".into(),
        RpcError::AppealRefused { code, .. } => format!("appeal-refused ({code})"),
        RpcError::Server { code } => format!("server ({code})"),
        _ => "other".into(),
    }
}

/// The kind of a failed `Client::submit`, for the summary.
fn client_kind(e: &ClientError) -> String {
    match e {
        ClientError::Unauthenticated => "unauthenticated".into(),
        ClientError::PermissionDenied => "permission-denied".into(),
        ClientError::NoActiveOrder { .. } => "no-active-order".into(),
        ClientError::InvalidArgument => "invalid-argument".into(),
        ClientError::ResourceExhausted => "resource-exhausted".into(),
        ClientError::TooManyClientStates => "too-many-client-states".into(),
        ClientError::Unavailable { code } => format!("unavailable ({code})"),
        ClientError::Tls { .. } => "tls".into(),
        ClientError::Server { code } => format!("server ({code})"),
        ClientError::Verification { .. } => "verification".into(),
        ClientError::Order(_) => "order-refused".into(),
        ClientError::Log(_) => "log-refused".into(),
        ClientError::Storage { .. } => "storage".into(),
        ClientError::Io { .. } => "io".into(),
        ClientError::Task => "task".into(),
        _ => "other".into(),
    }
}

fn usage(msg: impl Into<String>) -> CliError {
    CliError::usage(format!("load: {}", msg.into()))
}

fn runtime(msg: impl Into<String>) -> CliError {
    CliError::runtime(format!("load: {}", msg.into()))
}

/// Checks a `--endpoint`: http or https, a loopback host.
fn check_endpoint(url: &str) -> Result<String> {
    let uri: Uri = url.parse().map_err(|_| usage(format!("--endpoint {url}: not a URL")))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err(usage(format!("--endpoint {url}: the scheme must be http or https")));
    }
    let host = uri.host().ok_or_else(|| usage(format!("--endpoint {url}: no host")))?;
    if !is_loopback_host(host) {
        return Err(usage(format!(
            "--endpoint {url}: {host} is not a loopback address (127.0.0.0/8, ::1, localhost); vouchsafe load \
             never loads a remote server"
        )));
    }
    Ok(url.trim_end_matches('/').to_owned())
}

/// The endpoint of the configuration's `listen`: an unspecified address becomes the loopback one.
fn default_endpoint(config: &ServerConfig) -> Result<String> {
    let listen = config.listen;
    if listen.port() == 0 {
        return Err(usage(
            "the configuration's `listen` has port 0 (chosen at start): pass --endpoint with the address `vouchsafe \
             serve` printed",
        ));
    }
    let ip = match listen.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip if ip.is_loopback() => ip,
        ip => {
            return Err(usage(format!(
                "the configuration's `listen` is {ip}, not a loopback address: vouchsafe load only loads a server on \
                 loopback (pass --endpoint)"
            )));
        }
    };
    let scheme = if config.tls.is_some() { "https" } else { "http" };
    Ok(format!("{scheme}://{}", SocketAddr::new(ip, listen.port())))
}

/// Checks a `--metrics-url`: plain http to a loopback host; the path defaults to `/metrics`.
fn metrics_url(url: &str) -> Result<MetricsUrl> {
    let uri: Uri = url.parse().map_err(|_| usage(format!("--metrics-url {url}: not a URL")))?;
    if uri.scheme_str() != Some("http") {
        return Err(usage(format!(
            "--metrics-url {url}: the scheme must be http (the metrics endpoint is plain HTTP)"
        )));
    }
    let host = uri.host().ok_or_else(|| usage(format!("--metrics-url {url}: no host")))?;
    if !is_loopback_host(host) {
        return Err(usage(format!(
            "--metrics-url {url}: {host} is not a loopback address (127.0.0.0/8, ::1, localhost)"
        )));
    }
    let port = uri.port_u16().unwrap_or(80);
    let path = match uri.path_and_query().map(|p| p.as_str()) {
        None | Some("") | Some("/") => "/metrics".to_owned(),
        Some(p) => p.to_owned(),
    };
    let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    Ok(MetricsUrl { shown: url.to_owned(), host: bare.to_owned(), port, authority: format!("{host}:{port}"), path })
}

/// One lazily connecting channel to `url` with the client's timeouts.
fn channel(url: &str, ca_pem: Option<&[u8]>) -> Result<Channel> {
    let mut endpoint = Endpoint::from_shared(url.to_owned())
        .map_err(|_| usage(format!("--endpoint {url}: not a valid URI")))?
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30))
        .tcp_nodelay(true);
    if url.starts_with("https://") {
        let tls = match ca_pem {
            Some(pem) => ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem)),
            None => ClientTlsConfig::new().with_webpki_roots(),
        };
        endpoint = endpoint.tls_config(tls).map_err(|_| usage(format!("--endpoint {url}: unusable TLS settings")))?;
    }
    Ok(endpoint.connect_lazy())
}

/// The pins of the devices, from the server's own files: the authority keys of `[order]`, the Centre key the
/// signed order names (verified under them), the log key (`--log-key` or `<[log] key>.pub`), the `[log]
/// witnesses` and the quorum. Returns them with the order's service id.
fn pins(config: &ServerConfig, args: &LoadArgs) -> Result<(TrustAnchors, String)> {
    let keys =
        config.order.authority_keys.iter().map(|k| crate::authority::load_public_key(k)).collect::<Result<Vec<_>>>()?;
    let keyring = AuthorityKeyring::new(keys).map_err(|e| usage(format!("[order] authority_keys: {e}")))?;
    let order_file = &config.order.signed_order;
    let bytes = crate::keyfile::read_limited(order_file, "signed order")?;
    let order =
        keyring.verify_order_bytes(&bytes).map_err(|e| usage(format!("signed order {}: {e}", order_file.display())))?;
    let log: LogVerifier = match &args.log_key {
        Some(k) if !Path::new(k).is_file() => k.trim().parse().map_err(|e| usage(format!("--log-key: {e}")))?,
        given => {
            let file = given.as_ref().map(PathBuf::from).unwrap_or_else(|| crate::keyfile::pub_path(&config.log.key));
            let text = crate::keyfile::read_limited(&file, "log public key")
                .map_err(|e| usage(format!("{e} (pass --log-key KEY|FILE)")))?;
            let text = std::str::from_utf8(&text)
                .map_err(|_| usage(format!("log public key {}: not UTF-8 text", file.display())))?;
            text.trim().parse().map_err(|e| usage(format!("log public key {}: {e}", file.display())))?
        }
    };
    if config.log.witnesses.is_empty() {
        return Err(usage("the configuration lists no [log] witnesses: devices could not verify the log"));
    }
    let witnesses = config
        .log
        .witnesses
        .iter()
        .map(|w| w.parse::<WitnessVerifier>().map_err(|e| usage(format!("[log] witnesses: {e}"))))
        .collect::<Result<Vec<_>>>()?;
    let quorum = args.quorum.unwrap_or(witnesses.len());
    let anchors = TrustAnchors::new(keyring, order.centre_key().to_bytes(), log, witnesses, quorum)
        .map_err(|e| usage(format!("--quorum {quorum}: {e}")))?;
    Ok((anchors, order.service_id().to_owned()))
}

/// The PNG and JPEG files of `dir`, sorted by name.
fn image_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| usage(format!("--matching-images {}: {}", dir.display(), e.kind())))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| usage(format!("--matching-images {}: {}", dir.display(), e.kind())))?;
        let path = entry.path();
        let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        if path.is_file() && matches!(ext.as_deref(), Some("png" | "jpg" | "jpeg")) {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Checks the arguments against the configuration and the bounds; builds the devices' pins and connections.
fn plan(args: &LoadArgs) -> Result<Plan> {
    let endpoints = args.endpoints.iter().map(|e| check_endpoint(e)).collect::<Result<Vec<_>>>()?;
    let devices = usize::try_from(args.devices).map_err(|_| usage("--devices: out of range"))?;
    let per_device = args.vouchers_per_device;
    let total = u64::from(args.devices).saturating_mul(per_device);
    if total > MAX_VOUCHERS {
        return Err(usage(format!(
            "--devices {} x --vouchers-per-device {per_device} = {total} vouchers, more than the bound of 10^7",
            args.devices
        )));
    }
    let matching_per_device = args.matching_per_device.unwrap_or(0);
    if matching_per_device > per_device {
        return Err(usage(format!(
            "--matching-per-device {matching_per_device} is more than --vouchers-per-device {per_device}"
        )));
    }
    let matching = match &args.matching_images {
        Some(dir) => {
            let files = image_files(dir)?;
            if (files.len() as u64) < matching_per_device {
                return Err(usage(format!(
                    "--matching-images {} holds {} PNG or JPEG files, fewer than --matching-per-device \
                     {matching_per_device} (a device's images must be distinct)",
                    dir.display(),
                    files.len()
                )));
            }
            files
        }
        None => Vec::new(),
    };
    if let Some(json) = &args.json {
        let parent = json.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        if !parent.is_dir() {
            return Err(usage(format!("--json {}: {} is not a directory", json.display(), parent.display())));
        }
    }

    let config = ServerConfig::load(&args.config).map_err(|e| CliError::from_server("load", e))?;
    if config.accounts.is_empty() {
        return Err(usage("the configuration has no [[accounts]]: the devices need their tokens"));
    }
    let batch = usize::try_from(args.batch).map_err(|_| usage("--batch: out of range"))?;
    if batch > config.limits.max_vouchers_per_batch {
        return Err(usage(format!(
            "--batch {batch} is more than the server's limits.max_vouchers_per_batch {}",
            config.limits.max_vouchers_per_batch
        )));
    }
    let accounts_n = config.accounts.len();
    let per_account = devices.div_ceil(accounts_n);
    let states = u64::from(config.limits.max_client_states);
    if per_account as u64 > states {
        return Err(usage(format!(
            "--devices {devices} over {accounts_n} accounts gives up to {per_account} devices (client states) per \
             account, more than the server's limits.max_client_states {states}: add accounts or use fewer devices"
        )));
    }
    let endpoints = if endpoints.is_empty() { vec![default_endpoint(&config)?] } else { endpoints };
    let (anchors, service) = pins(&config, args)?;
    let ca_pem = match &args.ca_cert {
        Some(p) => Some(std::fs::read(p).map_err(|e| usage(format!("--ca-cert {}: {}", p.display(), e.kind())))?),
        None => None,
    };
    let mut channels = Vec::with_capacity(endpoints.len());
    for (e, url) in endpoints.iter().enumerate() {
        // Devices e, e + E, e + 2E, … use endpoint e.
        let on_it = (devices + endpoints.len() - 1 - e) / endpoints.len();
        let n = on_it.clamp(1, MAX_CONNECTIONS_PER_ENDPOINT);
        channels.push((0..n).map(|_| channel(url, ca_pem.as_deref())).collect::<Result<Vec<_>>>()?);
    }
    let accounts = config
        .accounts
        .iter()
        .map(|a| {
            let mut context = ScanContext::new();
            if let Some(c) = a.components.first() {
                context = context.component(c.clone());
            }
            if let Some(g) = a.groups.first() {
                context = context.group(g.clone());
            }
            Account {
                name: a.account.clone(),
                token: BearerToken::new(a.token.expose()),
                classes: a.classes.clone(),
                context,
            }
        })
        .collect::<Vec<_>>();
    let p = Plan {
        devices,
        per_device,
        batch,
        max_seconds: args.max_seconds,
        matching,
        matching_per_device,
        anchors,
        service,
        accounts,
        endpoints,
        channels,
        ca_pem,
    };
    rate_note(&p, &config);
    check_open_files(p.devices, p.channels.iter().map(Vec::len).sum())?;
    Ok(p)
}

/// Every device holds its data directory's lock file open for the whole run, and every connection a socket: raises
/// the soft limit on open files to the hard one if need be, and refuses the run (before anything is sent) if that
/// is still too few.
fn check_open_files(devices: usize, connections: usize) -> Result<()> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let needed = (devices + connections + 64) as u64;
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current.is_some_and(|c| c < needed) {
        let raised = Rlimit { current: limit.maximum, maximum: limit.maximum };
        if setrlimit(Resource::Nofile, raised).is_ok() {
            limit = getrlimit(Resource::Nofile);
        }
    }
    match limit.current {
        Some(c) if c < needed => Err(usage(format!(
            "{devices} devices and {connections} connections need about {needed} open files, more than this \
             process may open ({c}): raise `ulimit -n`, or use fewer devices"
        ))),
        _ => Ok(()),
    }
}

/// Says so when the accounts' token buckets alone keep the run from finishing within --max-seconds.
fn rate_note(p: &Plan, config: &ServerConfig) {
    let per_account = p.devices.div_ceil(p.accounts.len()) as f64 * p.per_device as f64;
    let rate = config.limits.rate_vouchers_per_second;
    let needed = (per_account - f64::from(config.limits.rate_burst)).max(0.0) / rate;
    if needed > p.max_seconds as f64 {
        println!(
            "note: the configuration's token bucket ({rate} vouchers/s per account, burst {}) needs about {needed:.0} s \
             for the {per_account:.0} vouchers of the busiest account, more than --max-seconds {}",
            config.limits.rate_burst, p.max_seconds
        );
    } else if needed > 0.0 {
        println!(
            "note: the busiest account's {per_account:.0} vouchers exceed the token bucket's burst ({}, then {rate} \
             vouchers/s per account and replica): the throughput measured is then partly the bucket's",
            config.limits.rate_burst
        );
    }
}

/// A device's failure in phase 1: configuration problems are usage errors, the rest runtime failures.
fn device_err(p: &Plan, i: usize, what: &str, e: ClientError) -> CliError {
    let account = p.accounts.get(i % p.accounts.len()).map_or("?", |a| a.name.as_str());
    let msg = format!("device {i} (account {account}): {what}: {e}");
    match e {
        ClientError::Config { .. } => usage(msg),
        e if e.is_refusal() => runtime(format!("{msg} (refused by the device's checks)")),
        _ => runtime(msg),
    }
}

/// The PNG of generated image `seed` (off the async threads).
async fn generated_png(seed: u64) -> Result<Vec<u8>> {
    tokio::task::spawn_blocking(move || {
        let img =
            image::DynamicImage::ImageRgb8(vouchsafe_phash::fixtures::benign_image(seed, IMAGE_WIDTH, IMAGE_HEIGHT));
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png).map(|()| out.into_inner())
    })
    .await
    .map_err(|_| runtime("the image generator task failed"))?
    .map_err(|e| runtime(format!("generating an image: {e}")))
}

/// Phase 1 for device `i`: open its client (its own data directory), sync, scan its vouchers.
async fn prepare(
    p: Arc<Plan>,
    work: PathBuf,
    i: usize,
    rec: Arc<Recorder>,
    bar: ProgressBar,
    stop: Arc<AtomicBool>,
) -> Result<Client> {
    let stopped = || {
        stop.load(Ordering::SeqCst)
            .then(|| runtime("interrupted (Ctrl-C) while the devices synced and scanned: nothing was submitted"))
    };
    let account = p.accounts.get(i % p.accounts.len()).ok_or_else(|| runtime("no account"))?;
    let e = i % p.endpoints.len();
    let url = p.endpoints.get(e).ok_or_else(|| runtime("no endpoint"))?;
    let conns = p.channels.get(e).ok_or_else(|| runtime("no connection"))?;
    let conn = conns.get((i / p.endpoints.len()) % conns.len().max(1)).ok_or_else(|| runtime("no connection"))?;
    let mut cfg = ClientConfig::new(
        url.clone(),
        account.token.clone(),
        work.join(format!("device-{i}")),
        p.service.clone(),
        p.anchors.clone(),
    );
    cfg.max_batch = p.batch;
    cfg.account_classes = account.classes.clone();
    cfg.tls_ca_pem = p.ca_pem.clone();
    let primary = GrpcTransport::with_channel(conn.clone(), &cfg).map_err(|e| device_err(&p, i, "client", e))?;
    // The other endpoints, from the next one on, each on the connection this device would use there.
    let mut others = Vec::with_capacity(p.endpoints.len().saturating_sub(1));
    for step in 1..p.endpoints.len() {
        let conns = p.channels.get((e + step) % p.endpoints.len()).ok_or_else(|| runtime("no connection"))?;
        let conn = conns.get((i / p.endpoints.len()) % conns.len().max(1)).ok_or_else(|| runtime("no connection"))?;
        others.push(GrpcTransport::with_channel(conn.clone(), &cfg).map_err(|e| device_err(&p, i, "client", e))?);
    }
    let transport = Metered { primary, others, current: std::sync::atomic::AtomicUsize::new(0), rec };
    if let Some(e) = stopped() {
        return Err(e);
    }
    let client = Client::open_with_transport(cfg, transport).await.map_err(|e| device_err(&p, i, "open", e))?;
    client.sync().await.map_err(|e| device_err(&p, i, "sync", e))?;
    let files = p.matching.len().max(1) as u64;
    let device = i as u64;
    for j in 0..p.per_device {
        if let Some(e) = stopped() {
            return Err(e);
        }
        let image = if j < p.matching_per_device {
            let k = usize::try_from((device.wrapping_mul(p.matching_per_device) + j) % files).unwrap_or(0);
            Image::File(p.matching.get(k).cloned().ok_or_else(|| runtime("no matching image"))?)
        } else {
            Image::Bytes(generated_png(SEED_BASE + (device << 24) + j).await?)
        };
        // An opaque attachment reference, distinct per voucher of the run.
        let mut h = Sha256::new();
        h.update(b"vouchsafe load attachment");
        h.update(device.to_be_bytes());
        h.update(j.to_be_bytes());
        let aref: [u8; 32] = h.finalize().into();
        client
            .scan(image, aref, SystemTime::now(), &account.context)
            .await
            .map_err(|e| device_err(&p, i, "scan", e))?;
        bar.inc(1);
    }
    Ok(client)
}

/// How phase 2 ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    /// Every device submitted all it had.
    Done,
    /// `--max-seconds` passed.
    Deadline,
    /// Ctrl-C.
    Interrupted,
}

/// Resolves once Ctrl-C was pressed (never, if the handler could not be installed).
async fn interrupted(mut rx: tokio::sync::watch::Receiver<bool>) {
    if rx.wait_for(|pressed| *pressed).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Phase 1: every device syncs and scans; device 0 first, alone, to check the tables' memory.
/// Every device checks `stop` before each step; on the first failure the others are stopped so and waited for
/// (not aborted: a device in the middle of a scan finishes it), so nothing writes into `work` after this returns.
async fn phase1(p: &Arc<Plan>, work: &Path, rec: &Arc<Recorder>, stop: &Arc<AtomicBool>) -> Result<Vec<Client>> {
    let total = (p.devices as u64).saturating_mul(p.per_device);
    let bar = crate::demo::bar(total, "phase 1: sync and scan");
    let first = prepare(p.clone(), work.to_owned(), 0, rec.clone(), bar.clone(), stop.clone()).await;
    let first = match first {
        Ok(c) => c,
        Err(e) => {
            bar.finish_and_clear();
            return Err(e);
        }
    };
    let slots = first.table_info().map_or(0, |t| u64::from(t.slot_count));
    let table_bytes = slots.saturating_mul(32).saturating_mul(p.devices as u64);
    if table_bytes > MAX_TABLE_BYTES {
        bar.finish_and_clear();
        return Err(usage(format!(
            "--devices {} would hold {} copies of the table ({slots} slots, {:.1} MiB each): {:.1} GiB, more than \
             the bound of 4 GiB; use fewer devices",
            p.devices,
            p.devices,
            (slots * 32) as f64 / f64::from(1u32 << 20),
            table_bytes as f64 / f64::from(1u32 << 30)
        )));
    }
    let parallel = std::thread::available_parallelism().map_or(2, |n| n.get()).max(2);
    let mut clients: Vec<Option<Client>> = (0..p.devices).map(|_| None).collect();
    if let Some(slot) = clients.get_mut(0) {
        *slot = Some(first);
    }
    let mut set = tokio::task::JoinSet::new();
    let mut next = 1;
    loop {
        while set.len() < parallel && next < p.devices {
            let i = next;
            let fut = prepare(p.clone(), work.to_owned(), i, rec.clone(), bar.clone(), stop.clone());
            set.spawn(async move { (i, fut.await) });
            next += 1;
        }
        let Some(joined) = set.join_next().await else { break };
        let failed = match joined {
            Ok((i, Ok(client))) => {
                if let Some(slot) = clients.get_mut(i) {
                    *slot = Some(client);
                }
                None
            }
            Ok((_, Err(e))) => Some(e),
            Err(_) => Some(runtime("a device task failed")),
        };
        if let Some(e) = failed {
            stop.store(true, Ordering::SeqCst);
            while set.join_next().await.is_some() {}
            bar.finish_and_clear();
            return Err(e);
        }
    }
    bar.finish_and_clear();
    clients.into_iter().map(|c| c.ok_or_else(|| runtime("a device was not prepared"))).collect()
}

/// Phase 2 for one device: submit until its outbox is empty; after a failure that may pass, again (with a pause).
async fn submit_all(client: Client, rec: Arc<Recorder>) {
    let mut pause = Duration::from_millis(250);
    loop {
        if client.outbox_len() == 0 {
            return;
        }
        match client.submit().await {
            Ok(r) if r.remaining == 0 || r.batches == 0 => return,
            Ok(_) => {}
            Err(e) => {
                count(&rec.errors, client_kind(&e));
                if !e.is_transient() {
                    return;
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// `GET url` over HTTP/1.0 (no keep-alive, no chunking asked for), bounded in size and time; the body.
async fn http_get(url: &MetricsUrl) -> std::result::Result<String, String> {
    let fetch = async {
        let mut stream = tokio::net::TcpStream::connect((url.host.as_str(), url.port))
            .await
            .map_err(|e| format!("connect: {}", e.kind()))?;
        let request = format!(
            "GET {} HTTP/1.0\r\nHost: {}\r\nAccept: text/plain\r\nConnection: close\r\n\r\n",
            url.path, url.authority
        );
        stream.write_all(request.as_bytes()).await.map_err(|e| format!("send: {}", e.kind()))?;
        let mut raw = Vec::new();
        (&mut stream)
            .take(MAX_METRICS_BYTES + 1)
            .read_to_end(&mut raw)
            .await
            .map_err(|e| format!("read: {}", e.kind()))?;
        if raw.len() as u64 > MAX_METRICS_BYTES {
            return Err("the response is larger than 16 MiB".to_owned());
        }
        parse_http_response(&String::from_utf8_lossy(&raw))
    };
    tokio::time::timeout(METRICS_TIMEOUT, fetch).await.map_err(|_| "no answer within 5 s".to_owned())?
}

/// The body of an HTTP/1.x response with status 200 (de-chunked if need be).
fn parse_http_response(raw: &str) -> std::result::Result<String, String> {
    let (head, body) = raw.split_once("\r\n\r\n").ok_or("not an HTTP response")?;
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or("");
    let mut parts = status.split_whitespace();
    if !parts.next().is_some_and(|v| v.starts_with("HTTP/1.")) {
        return Err("not an HTTP/1 response".to_owned());
    }
    match parts.next() {
        Some("200") => {}
        Some(code) => return Err(format!("HTTP status {code}")),
        None => return Err("not an HTTP response".to_owned()),
    }
    let chunked = lines.any(|l| {
        l.split_once(':').is_some_and(|(k, v)| {
            k.trim().eq_ignore_ascii_case("transfer-encoding") && v.to_ascii_lowercase().contains("chunked")
        })
    });
    if chunked { dechunk(body).ok_or_else(|| "malformed chunked body".to_owned()) } else { Ok(body.to_owned()) }
}

fn dechunk(mut body: &str) -> Option<String> {
    let mut out = String::new();
    loop {
        let (size, rest) = body.split_once("\r\n")?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        if size == 0 {
            return Some(out);
        }
        out.push_str(rest.get(..size)?);
        body = rest.get(size..)?.strip_prefix("\r\n")?;
    }
}

/// The sum of every sample named exactly `name` in a Prometheus (or OpenMetrics) text exposition, whatever its
/// labels; `None` if there is none.
fn metric_sum(text: &str, name: &str) -> Option<f64> {
    let mut sum = None;
    for line in text.lines() {
        let line = line.trim_start();
        if line.starts_with('#') {
            continue;
        }
        let Some(rest) = line.strip_prefix(name) else { continue };
        let rest = if rest.starts_with('{') {
            match end_of_labels(rest) {
                Some(end) => rest.get(end..).unwrap_or(""),
                None => continue,
            }
        } else if rest.starts_with([' ', '\t']) {
            rest
        } else {
            continue; // another metric whose name starts with `name`
        };
        let Some(Ok(value)) = rest.split_whitespace().next().map(str::parse::<f64>) else { continue };
        sum = Some(sum.unwrap_or(0.0) + value);
    }
    sum
}

/// The index just after the `}` that closes the label set `s` starts with (quoted values may hold `}`).
fn end_of_labels(s: &str) -> Option<usize> {
    let (mut quoted, mut escaped) = (false, false);
    for (i, c) in s.char_indices() {
        if quoted {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => quoted = false,
                _ => {}
            }
        } else if c == '"' {
            quoted = true;
        } else if c == '}' {
            return Some(i + 1);
        }
    }
    None
}

/// The inbox's pending batches: the gauge summed over its lines at each URL, and the maximum over the URLs that
/// answer (the replicas share one inbox, so each reports all of it; a sum would count it once per replica). A
/// replica that does not answer (killed, restarting) or answers NaN (its store read failed) is passed over; an
/// error only if none answers.
async fn inbox_pending(urls: &[MetricsUrl]) -> std::result::Result<f64, String> {
    let mut max: Option<f64> = None;
    let mut failures = Vec::new();
    for u in urls {
        let value = match http_get(u).await {
            Ok(body) => match metric_sum(&body, INBOX_GAUGE) {
                None => Err(format!("no {INBOX_GAUGE} sample")),
                // The server's NaN: its read of the inbox failed, so the depth is unknown, not 0.
                Some(v) if v.is_nan() => Err(format!("{INBOX_GAUGE} is NaN (the server could not read its store)")),
                Some(v) => Ok(v),
            },
            Err(e) => Err(e),
        };
        match value {
            Ok(v) => max = Some(max.map_or(v, |m| m.max(v))),
            Err(e) => failures.push(format!("{}: {e}", u.shown)),
        }
    }
    max.ok_or_else(|| if failures.is_empty() { "no --metrics-url".to_owned() } else { failures.join("; ") })
}

/// Percentile `q` (0..=100) of sorted values, nearest rank.
fn percentile(sorted: &[u32], q: usize) -> Option<u32> {
    let rank = (q * sorted.len()).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

fn ms(us: u32) -> f64 {
    f64::from(us) / 1000.0
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// `vouchsafe load …`.
pub async fn run(args: LoadArgs) -> Result<()> {
    let wall = Instant::now();
    let p = Arc::new(plan(&args)?);
    let urls = args.metrics_urls.iter().map(|u| metrics_url(u)).collect::<Result<Vec<_>>>()?;
    if !urls.is_empty() {
        // Fail early if no metrics URL answers (the depth before the run is read just before phase 2).
        inbox_pending(&urls).await.map_err(|e| runtime(format!("--metrics-url {e}")))?;
    }
    // Ctrl-C (SIGINT) ends the run as the deadline does, with its summary, and the devices' temporary directory
    // removed; without a handler the signal would end the process where it stands and leave the directory behind.
    // Installed (synchronously) before the directory exists.
    let mut sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .map_err(|e| runtime(format!("installing the Ctrl-C handler: {}", e.kind())))?;
    let stop = Arc::new(AtomicBool::new(false));
    let stop_on_signal = Arc::clone(&stop);
    let (interrupt_tx, interrupt) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        if sigint.recv().await.is_some() {
            stop_on_signal.store(true, Ordering::SeqCst);
            let _ = interrupt_tx.send(true);
        }
    });
    let work = tempfile::Builder::new()
        .prefix("vouchsafe-load-")
        .tempdir()
        .map_err(|e| runtime(format!("temporary directory: {}", e.kind())))?;
    let result = run_in(&args, &p, &urls, work.path(), &stop, interrupt, wall).await;
    // Every device task has ended (phase 1 waits for its tasks, phase 2 shuts its set down), but an aborted one
    // may leave a blocking file operation running for a moment: removal is retried (bounded) before giving up.
    for _ in 0..50 {
        match std::fs::remove_dir_all(work.path()) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => tokio::time::sleep(Duration::from_millis(100)).await,
            _ => break,
        }
    }
    if work.path().exists() {
        eprintln!("vouchsafe load: could not remove the devices' directory {}", work.path().display());
    }
    drop(work);
    result
}

/// [`run`] from the point where the devices' directory `work` exists: the three phases and the summary. `stop` is
/// set by Ctrl-C (and by phase 1 on its first failure), `interrupt` resolves on Ctrl-C.
async fn run_in(
    args: &LoadArgs,
    p: &Arc<Plan>,
    urls: &[MetricsUrl],
    work: &Path,
    stop: &Arc<AtomicBool>,
    interrupt: tokio::sync::watch::Receiver<bool>,
    wall: Instant,
) -> Result<()> {
    let expected = (p.devices as u64).saturating_mul(p.per_device);
    let connections: usize = p.channels.iter().map(Vec::len).sum();
    println!(
        "vouchsafe load: {} devices ({} accounts, {} endpoints, {connections} connections), {} vouchers each \
         ({} from --matching-images), batches of at most {}, timed part bounded to {} s",
        p.devices,
        p.accounts.len(),
        p.endpoints.len(),
        p.per_device,
        p.matching_per_device,
        p.batch,
        p.max_seconds
    );

    // Phase 1 (untimed): sync and scan.
    let rec = Arc::new(Recorder::default());
    let scan_start = Instant::now();
    let clients = phase1(p, work, &rec, stop).await?;
    let scan_seconds = scan_start.elapsed().as_secs_f64();

    // Phase 2 (timed): every device submits at once.
    let bar = crate::demo::bar(expected, "phase 2: submit");
    let _ = rec.bar.set(bar.clone());
    let pending_before = if urls.is_empty() { None } else { inbox_pending(urls).await.ok() };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(p.max_seconds);
    let t0 = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for c in clients {
        set.spawn(submit_all(c, rec.clone()));
    }
    let stop = tokio::select! {
        () = async {
            while let Some(r) = set.join_next().await {
                if r.is_err() {
                    count(&rec.errors, "task".to_owned());
                }
            }
        } => Stop::Done,
        () = tokio::time::sleep_until(deadline) => Stop::Deadline,
        () = interrupted(interrupt.clone()) => Stop::Interrupted,
    };
    let submits_done = stop == Stop::Done;
    set.shutdown().await;
    let submit_seconds = t0.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let acknowledged = rec.acknowledged.load(Ordering::Relaxed);

    // Phase 3 (optional): until the shared inbox is empty.
    let mut reason: Option<String> = None;
    if stop == Stop::Interrupted {
        reason = Some(format!(
            "interrupted (Ctrl-C) during the submissions ({acknowledged} of {expected} vouchers acknowledged)"
        ));
    } else if !submits_done {
        reason = Some(format!(
            "--max-seconds {} passed during the submissions ({acknowledged} of {expected} vouchers acknowledged)",
            p.max_seconds
        ));
    } else if acknowledged < expected {
        reason = Some(format!("{acknowledged} of {expected} vouchers acknowledged (see the errors)"));
    }
    let mut processed_seconds = None;
    if !urls.is_empty() && submits_done {
        let spin = ProgressBar::new_spinner().with_message("phase 3: waiting for the inbox to be empty");
        let mut last = String::from("no poll");
        loop {
            let Ok(poll) = tokio::time::timeout_at(deadline, inbox_pending(urls)).await else { break };
            match poll {
                Ok(v) if v <= 0.0 => {
                    processed_seconds = Some(t0.elapsed().as_secs_f64());
                    break;
                }
                Ok(v) => {
                    last = format!("{v} batches pending");
                    spin.set_message(format!("phase 3: waiting for the inbox to be empty ({last})"));
                }
                Err(e) => last = format!("the last poll failed: {e}"),
            }
            spin.tick();
            if tokio::time::Instant::now() + POLL_INTERVAL >= deadline {
                break;
            }
            tokio::select! {
                () = tokio::time::sleep(POLL_INTERVAL) => {}
                () = interrupted(interrupt.clone()) => {
                    reason = Some(format!("interrupted (Ctrl-C) while waiting for the inbox to be empty ({last})"));
                    break;
                }
            }
        }
        spin.finish_and_clear();
        if processed_seconds.is_none() && reason.is_none() {
            reason = Some(format!("the inbox was not seen empty within --max-seconds {} ({last})", p.max_seconds));
        }
    }
    let complete = reason.is_none();

    let mut latencies = rec.latencies_us.lock().map(|l| l.clone()).unwrap_or_default();
    latencies.sort_unstable();
    let latency = (!latencies.is_empty()).then(|| [50, 90, 99, 100].map(|q| percentile(&latencies, q).map_or(0.0, ms)));
    let errors = snapshot(&rec.errors);
    let rpc_errors = snapshot(&rec.rpc_errors);
    let submit_rate = if submit_seconds > 0.0 { acknowledged as f64 / submit_seconds } else { 0.0 };
    let processed_rate = processed_seconds.map(|s| if s > 0.0 { acknowledged as f64 / s } else { 0.0 });
    let wall_seconds = wall.elapsed().as_secs_f64();
    let summary = serde_json::json!({
        "complete": complete,
        "incomplete_reason": reason,
        "devices": p.devices,
        "accounts": p.accounts.len(),
        "endpoints": p.endpoints.len(),
        "connections": connections,
        "vouchers_per_device": p.per_device,
        "matching_per_device": p.matching_per_device,
        "batch": p.batch,
        "vouchers_scanned": expected,
        "vouchers_acknowledged": acknowledged,
        "batches_acknowledged": rec.batches.load(Ordering::Relaxed),
        "failovers": rec.failovers.load(Ordering::Relaxed),
        "errors": errors,
        "errors_total": errors.values().sum::<u64>(),
        "rpc_errors": rpc_errors,
        "rpc_errors_total": rpc_errors.values().sum::<u64>(),
        "scan_seconds": round3(scan_seconds),
        "submit_seconds": round3(submit_seconds),
        "submit_throughput_vouchers_per_second": round3(submit_rate),
        "submit_latency_ms": latency.map(|[p50, p90, p99, max]| serde_json::json!({
            "p50": p50, "p90": p90, "p99": p99, "max": max,
        })),
        "inbox_pending_before": pending_before,
        "processed_seconds": processed_seconds.map(round3),
        "processed_throughput_vouchers_per_second": processed_rate.map(round3),
        "wall_seconds": round3(wall_seconds),
    });
    print_summary(&summary);
    if let Some(path) = &args.json {
        let mut text = serde_json::to_string_pretty(&summary).map_err(|e| runtime(format!("--json: {e}")))?;
        text.push('\n');
        std::fs::write(path, text).map_err(|e| runtime(format!("--json {}: {}", path.display(), e.kind())))?;
    }
    match summary.get("incomplete_reason").and_then(|r| r.as_str()) {
        Some(r) => Err(runtime(format!("incomplete: {r}"))),
        None => Ok(()),
    }
}

/// The summary as text (the same figures as the JSON).
fn print_summary(s: &serde_json::Value) {
    let f = |k: &str| s.get(k).and_then(serde_json::Value::as_f64).unwrap_or(0.0);
    let u = |k: &str| s.get(k).and_then(serde_json::Value::as_u64).unwrap_or(0);
    let kinds = |k: &str| match s.get(k).and_then(serde_json::Value::as_object) {
        Some(m) if !m.is_empty() => {
            m.iter().map(|(kind, n)| format!("{kind} {}", n.as_u64().unwrap_or(0))).collect::<Vec<_>>().join(", ")
        }
        _ => "none".to_owned(),
    };
    match s.get("incomplete_reason").and_then(serde_json::Value::as_str) {
        None => println!("load: complete"),
        Some(r) => println!("load: INCOMPLETE: {r}"),
    }
    println!(
        "  devices {}; vouchers {} scanned, {} acknowledged in {} batches",
        u("devices"),
        u("vouchers_scanned"),
        u("vouchers_acknowledged"),
        u("batches_acknowledged")
    );
    println!("  errors (failed submits, after the client's retries): {}", kinds("errors"));
    println!("  failed SubmitVouchers calls (retried ones included): {}", kinds("rpc_errors"));
    if u("failovers") > 0 {
        println!("  SubmitVouchers calls moved to another endpoint after `unavailable`: {}", u("failovers"));
    }
    println!("  submit: {:.3} s, {:.1} vouchers/s", f("submit_seconds"), f("submit_throughput_vouchers_per_second"));
    if let Some(l) = s.get("submit_latency_ms").filter(|l| !l.is_null()) {
        let g = |k: &str| l.get(k).and_then(serde_json::Value::as_f64).unwrap_or(0.0);
        println!(
            "  submit latency per batch (ms): p50 {:.3}, p90 {:.3}, p99 {:.3}, max {:.3}",
            g("p50"),
            g("p90"),
            g("p99"),
            g("max")
        );
    }
    match s.get("processed_seconds").and_then(serde_json::Value::as_f64) {
        Some(secs) => println!(
            "  processed (first submit to an empty inbox): {secs:.3} s, {:.1} vouchers/s",
            f("processed_throughput_vouchers_per_second")
        ),
        None => println!("  processed throughput: not measured"),
    }
    if let Some(b) = s.get("inbox_pending_before").and_then(serde_json::Value::as_f64).filter(|b| *b > 0.0) {
        println!("  note: the inbox already held {b} batches before the run (they count in the processed time)");
    }
    println!("  phase 1 (sync and scan, untimed): {:.3} s; wall time {:.3} s", f("scan_seconds"), f("wall_seconds"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_only() {
        for ok in ["http://127.0.0.1:1", "http://127.9.8.7:50051", "http://[::1]:5", "https://localhost:443"] {
            assert!(check_endpoint(ok).is_ok(), "{ok}");
        }
        for bad in
            ["http://10.0.0.1:1", "http://example.com:1", "http://[::2]:1", "http://0.0.0.0:1", "ftp://127.0.0.1"]
        {
            let e = check_endpoint(bad).unwrap_err();
            assert_eq!(e.exit_code(), crate::error::EXIT_USAGE, "{bad}");
        }
        assert!(metrics_url("http://192.168.1.1:9100/metrics").is_err());
        assert!(metrics_url("https://127.0.0.1:9100/metrics").is_err());
        let m = metrics_url("http://127.0.0.1:9100").unwrap();
        assert_eq!((m.host.as_str(), m.port, m.path.as_str()), ("127.0.0.1", 9100, "/metrics"));
        let m = metrics_url("http://[::1]:9/x?y=1").unwrap();
        assert_eq!((m.host.as_str(), m.authority.as_str(), m.path.as_str()), ("::1", "[::1]:9", "/x?y=1"));
    }

    #[test]
    fn gauge_is_summed_over_its_lines_only() {
        let text = "# HELP vouchsafe_inbox_batches_pending Unprocessed batches\n\
                    # TYPE vouchsafe_inbox_batches_pending gauge\n\
                    vouchsafe_inbox_batches_pending 3\n\
                    vouchsafe_inbox_batches_pending{shard=\"a}\\\"\"} 4 1700000000\n\
                    vouchsafe_inbox_batches_pending_total 100\n\
                    vouchsafe_inbox_vouchers_pending 7\n\
                    # EOF\n";
        assert_eq!(metric_sum(text, INBOX_GAUGE), Some(7.0));
        assert_eq!(metric_sum("other 1\n", INBOX_GAUGE), None);
        assert_eq!(metric_sum("vouchsafe_inbox_batches_pending 0\n", INBOX_GAUGE), Some(0.0));
        assert!(metric_sum("vouchsafe_inbox_batches_pending NaN\n", INBOX_GAUGE).is_some_and(f64::is_nan));
    }

    #[test]
    fn http_responses() {
        let ok = "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\na 1\n";
        assert_eq!(parse_http_response(ok).unwrap(), "a 1\n");
        let chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\na 1\n\r\n3\r\nb 2\r\n0\r\n\r\n";
        assert_eq!(parse_http_response(chunked).unwrap(), "a 1\nb 2");
        assert_eq!(parse_http_response("HTTP/1.1 404 Not Found\r\n\r\n").unwrap_err(), "HTTP status 404");
        assert!(parse_http_response("garbage").is_err());
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let v: Vec<u32> = (1..=100).collect();
        assert_eq!([50, 90, 99, 100].map(|q| percentile(&v, q)), [Some(50), Some(90), Some(99), Some(100)]);
        assert_eq!(percentile(&[7], 50), Some(7));
        assert_eq!(percentile(&[], 50), None);
    }
}
