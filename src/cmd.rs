//! The non-demo commands: `serve`, `status`, `client …`, `hash`, `leakage`. Wiring only.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use rand::SeedableRng;
use sha2::{Digest, Sha256};
use vouchsafe_client::{BearerToken, Client, ClientConfig, NullReason, ScanContext, TrustAnchors, VoucherKind};
use vouchsafe_leakage::{LeakageParams, Prior, real_count_posterior};
use vouchsafe_phash::{HashConfig, QualityVerdict, hash_file, quality_gate};
use vouchsafe_server::{ServerConfig, unix_now};

use crate::error::{CliError, Result};

/// `vouchsafe serve --config FILE`: load, start, print the bound address, run until SIGTERM/SIGINT (reloading the
/// table on SIGHUP), shut down gracefully.
pub async fn serve(config_path: &Path) -> Result<()> {
    let config = ServerConfig::load(config_path).map_err(|e| CliError::from_server("serve", e))?;
    vouchsafe_server::init_tracing(config.log_format == vouchsafe_server::LogFormat::Json);
    let store = vouchsafe_server::open_store(&config).map_err(|e| CliError::from_server("serve: database", e))?;
    let server = vouchsafe_server::start(config, store).await.map_err(|e| CliError::from_server("serve", e))?;
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "vouchsafe: listening on {}", server.local_addr());
        if let Some(r) = server.review_addr() {
            let _ = writeln!(out, "vouchsafe: review API listening on {r}");
        }
        if let Some(m) = server.metrics_addr() {
            let _ = writeln!(out, "vouchsafe: metrics on http://{m}/metrics");
        }
        let _ = out.flush();
    }
    vouchsafe_server::wait_for_termination(&server).await;
    server.shutdown().await.map_err(|e| CliError::from_server("serve: shutdown", e))?;
    Ok(())
}

/// A CSPRNG seeded from the operating system.
pub fn os_rng() -> Result<rand::rngs::StdRng> {
    rand::rngs::StdRng::try_from_rng(&mut rand::rngs::SysRng)
        .map_err(|_| CliError::runtime("the operating system random number generator failed"))
}

/// `vouchsafe status`.
pub fn status(config_path: &Path) -> Result<()> {
    let err = |what: &'static str| move |e| CliError::from_server(what, e);
    let config = ServerConfig::load(config_path).map_err(err("status"))?;
    let store = vouchsafe_server::open_store(&config).map_err(err("status: database"))?;
    let s = store.stats().map_err(|e| err("status: database")(e.into()))?;
    println!("database {}", config.database_display());
    println!(
        "  inbox: {} batches pending ({:.1} MiB; bounds {} batches, {:.1} MiB)",
        s.batches_pending,
        s.bytes_pending as f64 / (1u64 << 20) as f64,
        config.limits.max_backlog_batches,
        config.limits.max_backlog_bytes as f64 / (1u64 << 20) as f64
    );
    println!(
        "  accounts: {}; vouchers processed: {} ({} non-matches, {} opened, {} invalid)",
        s.accounts, s.vouchers_received, s.non_matches, s.opened, s.invalid
    );
    println!(
        "  client states: {}; failed reconstructions: {} (in {} states)",
        s.client_states, s.threshold_failures, s.states_failed
    );
    println!("  cases: {} open, {} confirmed, {} rejected", s.cases_open, s.cases_confirmed, s.cases_rejected);
    match store.outbox_pending() {
        Ok(0) => println!("  outbox to the Centre: empty"),
        Ok(n) => println!("  outbox to the Centre: {n} messages not yet delivered"),
        Err(e) => println!("  outbox to the Centre: not readable: {e}"),
    }
    let chain = store.verify_audit_chain().map_err(|e| e.to_string()).and_then(|h| {
        // Every entry must be an event of this version (typed, not free text).
        let mut after = 0;
        loop {
            let page = store.audit_entries(after, 1000).map_err(|e| e.to_string())?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            for r in &page {
                vouchsafe_server::events::Event::parse(r).map_err(|e| e.to_string())?;
            }
        }
        Ok(h)
    });
    match &chain {
        Ok(h) => println!(
            "  audit log: {} entries, chain verified, every entry a known event, head {}",
            h.entries,
            hex::encode(h.head)
        ),
        Err(e) => println!("  audit log: NOT VERIFIED: {e}"),
    }
    match vouchsafe_server::load_table(&config.table) {
        Ok(t) => {
            let check = vouchsafe_server::Governance::load(&config).and_then(|g| {
                g.check_table(&config, &t)?;
                let m = vouchsafe_server::load_manifest(&config.manifest_path())?;
                g.check_manifest(&t, &m).map(|v| (g, v.statement().release_number))
            });
            println!(
                "table {}: epoch {}, version {}, {} indicators, {} slots, root {}",
                config.table.display(),
                t.params().epoch,
                t.version(),
                t.indicator_count(),
                t.params().slot_count,
                hex::encode(t.manifest().root()),
            );
            match check {
                Ok((g, release)) => {
                    let o = g.order();
                    let active = match g.load_revocations(&config).and_then(|r| g.check_active(unix_now(), &r)) {
                        Ok(()) => "active".to_owned(),
                        Err(e) => format!("NOT ACTIVE: {e}"),
                    };
                    println!(
                        "  signed manifest verified: order {} of service {} ({active}), release {release} of line {}",
                        hex::encode(o.order_id()),
                        o.service_id(),
                        o.release_line()
                    );
                }
                Err(e) => println!("  NOT SERVABLE: {e}"),
            }
        }
        Err(e) => println!("table {}: not loadable: {e}", config.table.display()),
    }
    chain.map(|_| ()).map_err(|e| CliError::runtime(format!("status: audit log: {e}")))
}

/// The keys the `client` commands pin (files or verifier strings, never anything from the server).
pub struct ClientPins {
    /// Authority public key files (at least one).
    pub authority_keys: Vec<PathBuf>,
    /// Centre public key file.
    pub centre_key: Option<PathBuf>,
    /// Log verifier key (string or file).
    pub log_key: Option<String>,
    /// Witness verifier keys (strings or files).
    pub witnesses: Vec<String>,
    /// Witness quorum.
    pub quorum: Option<usize>,
    /// Largest accepted age of the newest witness quorum, seconds.
    pub max_checkpoint_age: Option<u64>,
}

/// Connection settings of the `client` commands.
pub struct ClientConn {
    /// Server endpoint.
    pub endpoint: String,
    /// Bearer token (never printed).
    pub token: String,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Service id.
    pub service_id: String,
    /// CA certificates (PEM) to trust for https instead of the built-in roots.
    pub ca_cert: Option<PathBuf>,
    /// The pinned keys.
    pub pins: ClientPins,
    /// The account's classes.
    pub classes: Vec<String>,
}

/// A signed-note verifier key given as the string itself or as a file holding it (one line).
fn note_key<T: std::str::FromStr<Err = vouchsafe_client::vouchsafe_log::Error>>(value: &str, what: &str) -> Result<T> {
    let path = Path::new(value);
    if path.is_file() {
        let text = crate::keyfile::read_limited(path, what)?;
        let text = std::str::from_utf8(&text)
            .map_err(|_| CliError::usage(format!("client: {what} {}: not UTF-8 text", path.display())))?;
        return text
            .trim_end_matches('\n')
            .parse()
            .map_err(|e| CliError::usage(format!("client: {what} {}: {e}", path.display())));
    }
    value.parse().map_err(|e| CliError::usage(format!("client: {what}: neither a file nor a key string ({e})")))
}

/// Reads and checks the pins: `--authority-key` (1..=16), `--centre-key`, `--log-key`, `--witness`, `--quorum`.
fn trust_anchors(p: &ClientPins) -> Result<TrustAnchors> {
    use vouchsafe_client::vouchsafe_log::{LogVerifier, WitnessVerifier};
    use vouchsafe_client::vouchsafe_orders::AuthorityKeyring;
    let missing = |flag: &str| CliError::usage(format!("client: {flag} is required (the keys the device pins)"));
    if p.authority_keys.is_empty() {
        return Err(missing("--authority-key FILE"));
    }
    let keys = p.authority_keys.iter().map(|k| crate::authority::load_public_key(k)).collect::<Result<Vec<_>>>()?;
    let authorities =
        AuthorityKeyring::new(keys).map_err(|e| CliError::usage(format!("client: --authority-key: {e}")))?;
    let centre = crate::centre::load_public_key(p.centre_key.as_deref().ok_or_else(|| missing("--centre-key FILE"))?)?;
    let log: LogVerifier = note_key(p.log_key.as_deref().ok_or_else(|| missing("--log-key KEY|FILE"))?, "log key")?;
    if p.witnesses.is_empty() {
        return Err(missing("--witness KEY|FILE"));
    }
    let witnesses =
        p.witnesses.iter().map(|w| note_key::<WitnessVerifier>(w, "witness key")).collect::<Result<Vec<_>>>()?;
    let quorum = p.quorum.ok_or_else(|| missing("--quorum N"))?;
    let mut anchors = TrustAnchors::new(authorities, centre.to_bytes(), log, witnesses, quorum)
        .map_err(|e| CliError::usage(format!("client: --witness/--quorum: {e}")))?;
    anchors.max_checkpoint_age = p.max_checkpoint_age.map(std::time::Duration::from_secs);
    Ok(anchors)
}

async fn open_client(conn: ClientConn) -> Result<Client> {
    let anchors = trust_anchors(&conn.pins)?;
    let mut cfg =
        ClientConfig::new(conn.endpoint, BearerToken::new(conn.token), conn.data_dir, conn.service_id, anchors);
    cfg.account_classes = conn.classes;
    if let Some(path) = &conn.ca_cert {
        let pem = std::fs::read(path)
            .map_err(|e| CliError::usage(format!("client: --ca-cert {}: {}", path.display(), e.kind())))?;
        cfg.tls_ca_pem = Some(pem);
    }
    Client::open(cfg).await.map_err(|e| client_err("client", e))
}

/// Refusals by the device's own checks say so ("refused: …", exit 1) and name the check; configuration problems
/// are usage errors (exit 2); everything else is a runtime failure (exit 1).
fn client_err(context: &str, e: vouchsafe_client::ClientError) -> CliError {
    use vouchsafe_client::ClientError as E;
    match e {
        E::Config { .. } => CliError::usage(format!("{context}: {e}")),
        e if e.is_refusal() => CliError::runtime(format!("{context}: refused, nothing hashed or sent: {e}")),
        e => CliError::runtime(format!("{context}: {e}")),
    }
}

/// `vouchsafe client sync`.
pub async fn client_sync(conn: ClientConn) -> Result<()> {
    let client = open_client(conn).await?;
    let r = client.sync().await.map_err(|e| client_err("client sync", e))?;
    let m = client.table_info().map(|t| t.slot_count).unwrap_or(0);
    println!(
        "table {:?}: epoch {}, version {}, {} slots, {} bytes received",
        r.kind, r.epoch, r.table_version, m, r.bytes_received
    );
    if let Some(o) = client.order() {
        println!(
            "order {} (service {}): valid {} .. {} (exclusive), verified under the pinned authority and Centre",
            hex::encode(o.order_id()),
            o.service_id(),
            o.not_before(),
            o.not_after()
        );
    }
    if let Some(h) = client.log_tree_head() {
        println!("log: checkpoint of {} leaves verified (witness quorum, consistent with the last one seen)", h.size);
    }
    Ok(())
}

fn kind_str(kind: VoucherKind, reason: Option<NullReason>) -> String {
    match (kind, reason) {
        (VoucherKind::Real, _) => "real".into(),
        (VoucherKind::Synthetic, _) => "synthetic".into(),
        (VoucherKind::Null, Some(NullReason::RepeatedImage)) => "null (repeated image)".into(),
        (VoucherKind::Null, Some(NullReason::QualityGate(q))) => format!("null (quality gate: {q:?})"),
        (VoucherKind::Null, Some(NullReason::Unreadable)) => "null (unreadable image)".into(),
        (VoucherKind::Null, _) => "null".into(),
        _ => "other".into(),
    }
}

/// Device-local description of a voucher kind (never sent anywhere).
pub fn describe_kind(kind: VoucherKind, reason: Option<NullReason>) -> String {
    kind_str(kind, reason)
}

/// `vouchsafe client scan [--component C] [--group G] IMAGE…`.
pub async fn client_scan(
    conn: ClientConn,
    component: Option<String>,
    group: Option<String>,
    images: &[PathBuf],
) -> Result<()> {
    for p in images {
        if !p.is_file() {
            return Err(CliError::usage(format!("client scan: {}: no such file", p.display())));
        }
    }
    let client = open_client(conn).await?;
    let context = ScanContext { component, group };
    for p in images {
        // An opaque attachment reference that lets a reviewer find the attachment: the digest of its path.
        let aref: [u8; 32] = Sha256::digest(p.as_os_str().as_encoded_bytes()).into();
        let o = client
            .scan(p.clone(), aref, SystemTime::now(), &context)
            .await
            .map_err(|e| client_err(&format!("client scan {}", p.display()), e))?;
        println!(
            "{}: voucher queued ({} in the outbox); device-local kind: {} (never sent to the server)",
            p.display(),
            o.queued,
            kind_str(o.kind, o.null_reason)
        );
    }
    Ok(())
}

/// `vouchsafe client submit`.
pub async fn client_submit(conn: ClientConn) -> Result<()> {
    let client = open_client(conn).await?;
    let r = client.submit().await.map_err(|e| client_err("client submit", e))?;
    println!(
        "submitted {} vouchers in {} batches; {} discarded (old order); {} still queued",
        r.vouchers, r.batches, r.discarded, r.remaining
    );
    Ok(())
}

/// `vouchsafe client notices`: the account's notices, as the app would show them.
pub async fn client_notices(conn: ClientConn) -> Result<()> {
    let client = open_client(conn).await?;
    let notices = client.notices().await.map_err(|e| client_err("client notices", e))?;
    if notices.is_empty() {
        println!("no notices: no report about this account was sent");
    }
    for n in notices {
        println!("notice {} (order {}, order hash {})", n.id, n.order_id, n.order_hash);
        println!("  reported {}; attachments:", crate::demo::utc_secs(n.reported_at));
        for (r, t) in &n.attachments {
            println!("    {} (hashed {})", hex::encode(r), crate::demo::utc(*t));
        }
        println!("  {}", n.next_steps);
        println!("  appeal until {}: {}", crate::demo::utc_secs(n.appeal_deadline), n.how_to_appeal);
        let reason = if n.appeal_reason.is_empty() { String::new() } else { format!(" ({})", n.appeal_reason) };
        println!(
            "  appeal: {}{reason}; account action: {}",
            n.appeal_status,
            if n.action_reversed { "reversed" } else { "active" }
        );
    }
    Ok(())
}

/// `vouchsafe client appeal --notice N --text TEXT`.
pub async fn client_appeal(conn: ClientConn, notice: u64, text: &str) -> Result<()> {
    let client = open_client(conn).await?;
    let a = client.appeal(notice, text).await.map_err(|e| client_err("client appeal", e))?;
    println!("appeal {} filed at {} for notice {notice}", a.appeal_id, crate::demo::utc_secs(a.filed_at));
    Ok(())
}

/// `vouchsafe client add-revocation FILE`.
pub async fn client_add_revocation(conn: ClientConn, file: &Path) -> Result<()> {
    let bytes = crate::keyfile::read_limited(file, "client add-revocation: revocation")?;
    let client = open_client(conn).await?;
    let ends = client
        .add_revocation(&bytes)
        .await
        .map_err(|e| client_err(&format!("client add-revocation {}", file.display()), e))?;
    if ends {
        println!("revocation verified and stored: the order held is revoked; nothing will be scanned or sent under it");
    } else {
        println!("revocation verified and stored (it names an order other than the one held)");
    }
    Ok(())
}

/// The hash configuration ids this build knows, for error messages.
fn known_hash_configs() -> String {
    HashConfig::ALL.iter().map(|c| c.id().to_string()).collect::<Vec<_>>().join(", ")
}

/// The hash configuration `id`, or a usage error naming the known ones.
pub fn hash_config(what: &str, id: u16) -> Result<HashConfig> {
    HashConfig::from_id(id).map_err(|_| {
        CliError::usage(format!(
            "{what}: hash configuration {id} is unknown (this build knows {})",
            known_hash_configs()
        ))
    })
}

/// `vouchsafe hash [--hash-config ID] IMAGE…`.
pub fn hash(images: &[PathBuf], config: u16) -> Result<()> {
    let cfg = hash_config("hash --hash-config", config)?;
    for p in images {
        let h = hash_file(&cfg, p).map_err(|e| CliError::runtime(format!("hash {}: {e}", p.display())))?;
        let verdict = match quality_gate(&cfg, &h) {
            QualityVerdict::Accept => "accept".to_owned(),
            QualityVerdict::Reject(r) => format!("reject ({r:?}): a null voucher would be sent"),
            _ => "unknown".to_owned(),
        };
        println!(
            "{}\n  primary   (canonical, config {}): {}\n  secondary (canonical): {}\n  size {}x{}, quality gate: {}",
            p.display(),
            cfg.id(),
            hex::encode(h.primary.to_canonical_bytes()),
            hex::encode(h.secondary.to_canonical_bytes()),
            h.source_width,
            h.source_height,
            verdict
        );
    }
    Ok(())
}

/// Arguments of `vouchsafe leakage`.
pub struct LeakageQuery {
    /// n.
    pub vouchers: u64,
    /// c.
    pub opened: u64,
    /// p.
    pub rate: f64,
    /// s.
    pub cap: u32,
    /// T.
    pub threshold: u32,
    /// q (binomial prior) or uniform.
    pub match_rate: Option<f64>,
}

/// The server's prior used by `leakage` and the demo.
pub fn prior_of(match_rate: Option<f64>) -> Prior {
    match match_rate {
        Some(q) => Prior::Binomial { match_rate: q },
        None => Prior::Uniform,
    }
}

/// `vouchsafe leakage`.
pub fn leakage(q: &LeakageQuery) -> Result<()> {
    let params =
        LeakageParams { vouchers: q.vouchers, synthetic_rate: q.rate, synthetic_cap: q.cap, threshold: q.threshold };
    let prior = prior_of(q.match_rate);
    let post = real_count_posterior(&params, q.opened, &prior).map_err(|e| CliError::usage(format!("leakage: {e}")))?;
    let prior_txt = match q.match_rate {
        Some(m) => format!("each image matches with probability {m}"),
        None => "match count uniform on 0..=n".to_owned(),
    };
    println!(
        "server's posterior on the real match count R of an account below the threshold\n\
         n = {} vouchers, c = {} opened, p = {}, s = {}, T = {}; prior: {prior_txt}",
        q.vouchers, q.opened, q.rate, q.cap, q.threshold
    );
    println!("{:>6}  {:>10}", "R", "P(R | c)");
    for (r, p) in post.probabilities().iter().enumerate() {
        println!("{r:>6}  {p:>10.6}");
    }
    println!("mean {:.4}, most likely R = {}, P(R >= 1) = {:.6}", post.mean(), post.map(), post.prob_any_real());
    Ok(())
}
