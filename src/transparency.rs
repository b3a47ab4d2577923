//! `vouchsafe witness …` and `vouchsafe log verify`: the parties that keep the provider's transparency log honest,
//! talking to its `Transparency` gRPC service. Wiring only: cosigning is `vouchsafe_log::Witness`, the replay is
//! `vouchsafe_audit::replay`.
//!
//! Files:
//! * witness key: `WitnessSigningKey::to_private_key()` (`PRIVATE+KEY+name+id+base64`), a newline; mode 0600.
//!   `FILE.pub`: the verifier key (`name+id+base64`), a newline: what devices and auditors pin.
//! * witness state: the body of the last checkpoint the witness cosigned (`origin\nsize\nroot\n`), replaced
//!   atomically *before* the cosignature is handed in, so a crash can never make it forget what it vouched for.
//! * auditor state (`log verify --state`): likewise the body of the last checkpoint that verified.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use vouchsafe_audit::{AuditPins, AuditReport};
use vouchsafe_log::{Checkpoint, CheckpointPolicy, LogVerifier, Note, TreeHead, WitnessSigningKey, WitnessVerifier};
use vouchsafe_orders::AuthorityKeyring;
use vouchsafe_proto::v1::transparency_client::TransparencyClient;
use vouchsafe_proto::v1::{GetCheckpointRequest, GetLeavesRequest};
use vouchsafe_server::governance::witness::{self, Cosigned};
use zeroize::Zeroizing;

use crate::error::{CliError, Result};
use crate::keyfile::{pub_path, read_limited, write_new};

/// Largest response accepted from a log (leaves come in pages of at most 16 MiB).
const MAX_MESSAGE: usize = 32 << 20;
/// Most leaves an audit replays (a bound on memory; the logs of one provider hold far fewer).
const MAX_AUDIT_LEAVES: u64 = 1 << 20;

/// Where the log is and how to reach it.
#[derive(Debug, Clone)]
pub struct Server {
    /// `http://127.0.0.1:50051` or `https://…`.
    pub url: String,
    /// For https: PEM CA certificates to trust instead of the built-in roots.
    pub ca_cert: Option<PathBuf>,
}

async fn channel(server: &Server) -> Result<Channel> {
    connect_channel(&server.url, server.ca_cert.as_deref(), "--server", "log").await
}

/// A gRPC channel to `url`: plain for `http://`; for `https://`, TLS trusting the built-in roots, or only the PEM
/// certificate authorities in `ca`. `flag` names the option the URL came from (a bad URL is a usage error),
/// `what` the party it is (in a connection failure, a runtime error).
pub async fn connect_channel(url: &str, ca: Option<&Path>, flag: &str, what: &str) -> Result<Channel> {
    let bad = |e: &dyn std::fmt::Display| CliError::usage(format!("{flag} {url}: {e}"));
    let mut ep = Endpoint::from_shared(url.to_owned())
        .map_err(|e| bad(&e))?
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(60));
    if url.starts_with("https://") {
        let mut tls = ClientTlsConfig::new().with_webpki_roots();
        if let Some(ca) = ca {
            let pem = read_limited(ca, "CA certificate")?;
            tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem.as_slice()));
        }
        ep = ep.tls_config(tls).map_err(|e| bad(&e))?;
    }
    ep.connect().await.map_err(|e| CliError::runtime(format!("{what} {url}: cannot connect: {e}")))
}

async fn connect(server: &Server) -> Result<TransparencyClient<Channel>> {
    Ok(TransparencyClient::new(channel(server).await?).max_decoding_message_size(MAX_MESSAGE))
}

fn rpc(what: &str, s: tonic::Status) -> CliError {
    CliError::runtime(format!("log: {what}: {:?}: {}", s.code(), s.message()))
}

fn read_text(path: &Path, what: &str) -> Result<Zeroizing<String>> {
    let bytes = read_limited(path, what)?;
    let text =
        std::str::from_utf8(&bytes).map_err(|_| CliError::usage(format!("{what} {}: not UTF-8", path.display())))?;
    Ok(Zeroizing::new(text.trim().to_owned()))
}

/// Reads a verifier key file (`name+id+base64`, a newline).
pub fn read_log_verifier(path: &Path) -> Result<LogVerifier> {
    LogVerifier::parse(&read_text(path, "log public key")?)
        .map_err(|e| CliError::usage(format!("log public key {}: {e}", path.display())))
}

/// Reads a witness verifier key file.
pub fn read_witness_verifier(path: &Path) -> Result<WitnessVerifier> {
    WitnessVerifier::parse(&read_text(path, "witness public key")?)
        .map_err(|e| CliError::usage(format!("witness public key {}: {e}", path.display())))
}

/// `vouchsafe witness keygen --name NAME --out FILE`: a fresh witness key (mode 0600) and FILE.pub.
pub fn witness_keygen(name: &str, out: &Path) -> Result<()> {
    let mut rng = crate::cmd::os_rng()?;
    let key = WitnessSigningKey::generate(name, &mut rng)
        .map_err(|e| CliError::usage(format!("witness keygen: --name {name:?}: {e}")))?;
    let pub_file = pub_path(out);
    if std::fs::symlink_metadata(&pub_file).is_ok() {
        return Err(CliError::usage(format!(
            "witness keygen: {} exists; refusing to overwrite it",
            pub_file.display()
        )));
    }
    let mut secret = key.to_private_key();
    secret.push('\n');
    write_new(out, secret.as_bytes(), "witness keygen: key file")?;
    write_new(&pub_file, format!("{}\n", key.verifier()).as_bytes(), "witness keygen: public key file")?;
    println!("witness {name} (key id {:08x})", key.key_id());
    println!("  secret key: {} (mode 0600)", out.display());
    println!("  public key: {} (devices and auditors pin it)", pub_file.display());
    Ok(())
}

fn read_state(path: &Path, origin: &str) -> Result<Option<TreeHead>> {
    witness::read_state(path, origin).map_err(|e| CliError::usage(e.to_string()))
}

fn write_state(path: &Path, origin: &str, head: TreeHead) -> Result<()> {
    witness::write_state(path, origin, head).map_err(|e| CliError::runtime(e.to_string()))
}

fn now_u64() -> Result<u64> {
    u64::try_from(crate::keyfile::now_secs()?).map_err(|_| CliError::runtime("the clock is before 1970"))
}

/// `vouchsafe witness cosign`: one round of `vouchsafe_server::governance::witness::cosign` (consistency with the
/// last cosigned checkpoint checked, state persisted before the cosignature is handed in).
pub async fn witness_cosign(server: &Server, key: &Path, log_key: &Path, state: &Path) -> Result<Cosigned> {
    let secret = read_text(key, "witness key")?;
    let key_v = WitnessSigningKey::from_private_key(&secret)
        .map_err(|e| CliError::usage(format!("witness key {}: {e}", key.display())))?;
    let log = read_log_verifier(log_key)?;
    // Refuse a state file of another log before talking to anyone.
    read_state(state, log.name())?;
    let channel = channel(server).await?;
    witness::cosign(channel, key_v, log, state, now_u64()?).await.map_err(|e| match e {
        witness::CosignError::State(_) => CliError::usage(format!("witness: {e}")),
        witness::CosignError::Refused { .. } => {
            CliError::runtime(format!("witness: {e} (a fork or a rewrite); keep {} as evidence", state.display()))
        }
        _ => CliError::runtime(format!("witness: {e}")),
    })
}

/// What `log verify` pins.
#[derive(Debug, Clone)]
pub struct VerifyArgs {
    /// The log's public key file.
    pub log_key: PathBuf,
    /// Witness public key files.
    pub witnesses: Vec<PathBuf>,
    /// Distinct witnesses needed.
    pub quorum: usize,
    /// Authority public key files.
    pub authorities: Vec<PathBuf>,
    /// The auditor's state file (last verified checkpoint), optional.
    pub state: Option<PathBuf>,
    /// Provider public key files.
    pub providers: Vec<PathBuf>,
}

fn pins(a: &VerifyArgs) -> Result<AuditPins> {
    let log = read_log_verifier(&a.log_key)?;
    let witnesses = a.witnesses.iter().map(|p| read_witness_verifier(p)).collect::<Result<Vec<_>>>()?;
    let policy = CheckpointPolicy::new(log, witnesses, a.quorum)
        .map_err(|e| CliError::usage(format!("log verify: --quorum / --witness: {e}")))?;
    let keys = a.authorities.iter().map(|p| crate::authority::load_public_key(p)).collect::<Result<Vec<_>>>()?;
    let authorities =
        AuthorityKeyring::new(keys).map_err(|e| CliError::usage(format!("log verify: --authority: {e}")))?;
    let providers = a.providers.iter().map(|p| crate::provider::load_public_key(p)).collect::<Result<Vec<_>>>()?;
    Ok(AuditPins { policy, authorities, providers })
}

/// `vouchsafe log verify`: fetches the checkpoint and every leaf and replays the log (`vouchsafe_audit::replay`).
pub async fn log_verify(server: &Server, a: &VerifyArgs) -> Result<AuditReport> {
    let pins = pins(a)?;
    let origin = pins.policy.log().name().to_owned();
    let previous = match &a.state {
        Some(p) => read_state(p, &origin)?,
        None => None,
    };
    let mut client = connect(server).await?;
    let note =
        client.get_checkpoint(GetCheckpointRequest {}).await.map_err(|s| rpc("GetCheckpoint", s))?.into_inner().note;
    // The size is read from the note before its signatures are checked only to know how many leaves to fetch;
    // `replay` verifies the note and refuses any mismatch.
    let size = Note::parse(&note)
        .and_then(|n| Checkpoint::parse(n.text()))
        .map_err(|e| CliError::runtime(format!("log checkpoint: {e}")))?
        .tree_head()
        .size;
    if size > MAX_AUDIT_LEAVES {
        return Err(CliError::runtime(format!("log verify: {size} leaves is more than this auditor replays")));
    }
    let bar = indicatif::ProgressBar::new(size);
    bar.set_style(
        indicatif::ProgressStyle::with_template("  leaves {bar:30} {pos}/{len}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut leaves: Vec<Vec<u8>> = Vec::new();
    while (leaves.len() as u64) < size {
        let start = leaves.len() as u64;
        let page = client
            .get_leaves(GetLeavesRequest { start, end: size })
            .await
            .map_err(|s| rpc("GetLeaves", s))?
            .into_inner();
        if page.start != start || page.leaves.is_empty() {
            return Err(CliError::runtime(format!("log: GetLeaves from {start} returned no progress")));
        }
        leaves.extend(page.leaves);
        bar.set_position(leaves.len() as u64);
    }
    bar.finish_and_clear();
    leaves.truncate(usize::try_from(size).unwrap_or(usize::MAX));
    let report = vouchsafe_audit::replay(&pins, &note, &leaves, previous.as_ref())
        .map_err(|e| CliError::runtime(format!("log verify: FAILED: {e}")))?;
    if let Some(p) = &a.state {
        write_state(p, &origin, report.tree)?;
    }
    Ok(report)
}

/// Prints an audit report.
pub fn print_report(r: &AuditReport) {
    println!(
        "log {}: {} leaves, root {}, cosigned by a witness quorum at {}",
        r.origin,
        r.tree.size,
        hex::encode(r.tree.root.as_bytes()),
        r.quorum_time
    );
    for o in &r.orders {
        let state = match o.revoked_at_leaf {
            Some(l) => format!("revoked (leaf {l})"),
            None => "not revoked".to_owned(),
        };
        println!(
            "  order {} for {}: valid [{}, {}), {state}, {} table manifest(s)  [leaf {}]",
            hex::encode(o.order_id),
            o.service_id,
            o.not_before,
            o.not_after,
            o.manifests,
            o.leaf
        );
    }
    for rel in &r.releases {
        let rec = &rel.record;
        println!(
            "  release {} #{}: +{} −{} = {} indicators, each from ≥ {} sources  [leaf {}]",
            rec.line, rec.number, rec.additions, rec.removals, rec.total, rec.min_sources, rel.leaf
        );
    }
    for m in &r.manifests {
        println!(
            "  table epoch {} v{} ({} slots) root {}… from release {} #{}  [leaf {}]",
            m.epoch,
            m.table_version,
            m.slot_count,
            hex::encode(m.root.get(..8).unwrap_or_default()),
            m.release.0,
            m.release.1,
            m.leaf
        );
    }
    for t in &r.transparency_reports {
        let rep = &t.report;
        let c = |n: &str| rep.counter(n).unwrap_or(0);
        println!(
            "  transparency report by {} for order {}: {} vouchers, {} cases, {} reports, {} appeals ({} upheld)  [leaf {}]",
            rep.provider,
            hex::encode(rep.order_id),
            c("vouchers_received"),
            c("cases"),
            c("reports_sent"),
            c("appeals_filed"),
            c("appeals_upheld"),
            t.leaf
        );
    }
    println!("every leaf, signature, chain link and the root verified");
}
