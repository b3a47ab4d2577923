//! What the server serves under, verified: the authority-signed detection order (under the pinned authority
//! keys), its revocations, the Centre's release chain (under the order's Centre key and release line), and the
//! signed manifest of the table (under the order's table key). Nothing here is taken from the TOML but where the
//! files are: the order's terms are the signed order's.
//!
//! [`Fixture`] makes a whole consistent set of these files for tests and the demo.

mod fixture;
pub mod witness;

use std::path::Path;

use vouchsafe_log::{LogSigningKey, LogVerifier, WitnessVerifier};
use vouchsafe_orders::{
    AuthorityKeyring, AuthorityPublicKey, OrderError, Scope, SignedManifest, SignedRevocation, TableSigningKey,
    VerifiedManifest, VerifiedOrder, VerifiedRevocation,
};
use vouchsafe_phash::HashConfig;
use vouchsafe_protocol::table::ServerTable;
use vouchsafe_release::{CentreKey, ReleaseChain, SignedRelease, SignedReleaseRecord, VerifiedRelease};

use crate::config::ServerConfig;
use crate::error::{Result, ServerError};

pub use fixture::{Fixture, FixtureSpec, Pins};

/// First line of an authority public key file.
pub const AUTHORITY_PUBLIC_HEADER: &str = "vouchsafe-authority-public-key v1";
/// First line of a table-signing secret key file.
pub const TABLE_KEY_HEADER: &str = "vouchsafe-table-key v1";
/// First line of a table-signing public key file.
pub const TABLE_PUBLIC_KEY_HEADER: &str = "vouchsafe-table-public-key v1";
/// Most pinned authority keys.
pub const MAX_AUTHORITY_KEYS: usize = 16;
/// Largest order, revocation, release or manifest file read.
const MAX_OBJECT_FILE: u64 = vouchsafe_files::MAX_FILE;

fn read(what: &str, path: &Path) -> Result<zeroize::Zeroizing<Vec<u8>>> {
    vouchsafe_files::read_limited(path, MAX_OBJECT_FILE)
        .map_err(|e| ServerError::governance(format!("{what} {}", path.display()), e))
}

/// The verified order and release chain the server serves under (revocations are kept apart: they change while
/// the server runs). Built only by [`Governance::load`].
#[derive(Clone, Debug)]
pub struct Governance {
    keyring: AuthorityKeyring,
    order: VerifiedOrder,
    releases: Vec<VerifiedRelease>,
    records: Vec<SignedReleaseRecord>,
    chain: ReleaseChain,
    hash: HashConfig,
}

impl Governance {
    /// Reads and verifies the configured signed order under the pinned authority keys, and the release chain of
    /// the order's line in `[releases] dir` under the order's Centre key; checks that the chain's hash
    /// configuration is the order's, that the provider's `ad_len` fits it and that one voucher fits in a message.
    /// Says nothing about time: [`Governance::check_active`] does.
    pub fn load(config: &ServerConfig) -> Result<Governance> {
        Self::load_with_releases(config, &config.releases.dir)
    }

    /// [`Governance::load`] with the releases read from `dir` instead of `[releases] dir`.
    pub fn load_with_releases(config: &ServerConfig, dir: &Path) -> Result<Governance> {
        let keyring = load_keyring(&config.order.authority_keys)?;
        let path = &config.order.signed_order;
        let what = || format!("detection order {}", path.display());
        let bytes = read("detection order", path)?;
        let order = keyring.verify_order_bytes(&bytes).map_err(|e| ServerError::governance(what(), e))?;
        let hash = HashConfig::from_id(order.hash_config())
            .map_err(|_| ServerError::governance(what(), "unknown perceptual hash configuration"))?;
        let min_ad = vouchsafe_phash::encoded_len(&hash) + 2;
        let ad = config.order.ad_len as usize;
        if ad < min_ad || ad > usize::from(vouchsafe_protocol::labels::MAX_AD_LEN) {
            return Err(ServerError::config(
                "order.ad_len",
                format!(
                    "must be in {min_ad}..={} (associated data of the order's hash configuration {} plus 2)",
                    vouchsafe_protocol::labels::MAX_AD_LEN,
                    hash.id()
                ),
            ));
        }
        let one = config.voucher_len(order.synthetic_cap()).saturating_add(64);
        if config.limits.max_message_bytes < one {
            return Err(ServerError::config(
                "limits.max_message_bytes",
                format!("must be at least {one} so that one voucher of the order fits"),
            ));
        }
        let (releases, records, chain) = load_chain(dir, &order)?;
        if chain.hash_config() != order.hash_config() {
            return Err(ServerError::governance(
                format!("releases {}", dir.display()),
                format!("hash configuration {} is not the order's {}", chain.hash_config(), order.hash_config()),
            ));
        }
        Ok(Governance { keyring, order, releases, records, chain, hash })
    }

    /// The verified order.
    pub fn order(&self) -> &VerifiedOrder {
        &self.order
    }

    /// The pinned authority keys.
    pub fn keyring(&self) -> &AuthorityKeyring {
        &self.keyring
    }

    /// The verified releases of the order's line, in order (release 1 first).
    pub fn releases(&self) -> &[VerifiedRelease] {
        &self.releases
    }

    /// The Centre-signed public records of the releases, in order: what the transparency log holds for them (a
    /// release itself carries the indicator hashes and never leaves the provider's server).
    pub fn records(&self) -> &[SignedReleaseRecord] {
        &self.records
    }

    /// The chain up to its newest release.
    pub fn chain(&self) -> &ReleaseChain {
        &self.chain
    }

    /// The order's perceptual hash configuration.
    pub fn hash_config(&self) -> HashConfig {
        self.hash
    }

    /// The chain as it was after release `number` (1..=newest).
    pub fn chain_at(&self, number: u64) -> Result<ReleaseChain> {
        let refuse = || ServerError::governance("release chain", format!("release {number} is not in the chain"));
        let n = usize::try_from(number).map_err(|_| refuse())?;
        let mut it = self.releases.iter().take(n);
        let first = it.next().ok_or_else(refuse)?;
        if n > self.releases.len() {
            return Err(refuse());
        }
        let mut chain = ReleaseChain::new(first).map_err(|e| ServerError::governance("release chain", e))?;
        for r in it {
            chain.apply(r).map_err(|e| ServerError::governance("release chain", e))?;
        }
        Ok(chain)
    }

    /// The one validity check ([`VerifiedOrder::check_active`]) at `now` with `revocations`:
    /// [`ServerError::OrderInactive`] says whether the order is not yet valid, expired or revoked.
    pub fn check_active(&self, now: i64, revocations: &[VerifiedRevocation]) -> Result<()> {
        self.order.check_active(now, revocations).map_err(ServerError::OrderInactive)
    }

    /// Whether an account with these components, groups and classes may submit under the order: no class of it is
    /// excluded, and the order's scope covers one of its components (groups), or the whole service.
    pub fn permits(&self, components: &[String], groups: &[String], classes: &[String]) -> Result<()> {
        if classes.iter().any(|c| self.order.excludes(c)) {
            return Err(ServerError::PermissionDenied("the account is in a class the detection order excludes"));
        }
        let covered = match self.order.scope() {
            Scope::WholeService => true,
            Scope::Components(_) => components.iter().any(|c| self.order.covers(Some(c), None)),
            Scope::Groups(_) => groups.iter().any(|g| self.order.covers(None, Some(g))),
        };
        if covered {
            Ok(())
        } else {
            Err(ServerError::PermissionDenied("the account is outside the detection order's scope"))
        }
    }

    /// Verifies a signed manifest against the table it is to be served with: signed by the order's table key and
    /// naming this order; its statement's table manifest is exactly the table's; it names a release (number and
    /// hash) of the verified chain; and the table holds exactly that release's indicators.
    pub fn check_manifest(&self, table: &ServerTable, signed: &SignedManifest) -> Result<VerifiedManifest> {
        let refuse = |reason: String| ServerError::governance("signed manifest", reason);
        let verified = self.order.verify_manifest(signed).map_err(|e| refuse(e.to_string()))?;
        let s = verified.statement();
        if s.table_manifest != table.manifest().encode() {
            return Err(refuse(
                "it does not describe the table file (other parameters, version or chunks): sign the manifest of \
                 this table with `vouchsafe table build | update`"
                    .into(),
            ));
        }
        let release = usize::try_from(s.release_number)
            .ok()
            .and_then(|n| n.checked_sub(1))
            .and_then(|i| self.releases.get(i))
            .ok_or_else(|| {
                refuse(format!("it names release {}, which is not in the verified chain", s.release_number))
            })?;
        if release.hash() != s.release_hash {
            return Err(refuse(format!("the hash of release {} differs from the verified chain's", s.release_number)));
        }
        let chain = self.chain_at(s.release_number)?;
        if table.indicator_count() != chain.len() || !chain.indicators().all(|i| table.contains(i.primary)) {
            return Err(refuse(format!(
                "the table does not hold exactly the indicators of release {} (a table built from another list)",
                s.release_number
            )));
        }
        Ok(verified)
    }

    /// Checks that a table's epoch parameters are this order's and the configuration's.
    pub fn check_table(&self, config: &ServerConfig, table: &ServerTable) -> Result<()> {
        let p = table.params();
        let t = config.table_config(&self.order);
        let checks: [(&'static str, bool); 6] = [
            ("epoch", p.epoch == t.epoch),
            ("order_id", p.order_id == t.order_id),
            ("threshold", p.threshold == t.threshold),
            ("synthetic_cap", p.synthetic_cap == t.synthetic_cap),
            ("synthetic_rate", p.synthetic_rate == t.synthetic_rate),
            ("ad_len", p.ad_len == t.ad_len),
        ];
        match checks.iter().find(|(_, ok)| !ok) {
            Some((field, _)) => Err(ServerError::TableMismatch { field }),
            None => Ok(()),
        }
    }

    /// Reads the configured revocations directory (every `*.bin`, by name; a missing directory holds none) and
    /// verifies each under the pinned keys; returns those that name this order. A file that does not verify is
    /// refused with its name.
    pub fn load_revocations(&self, config: &ServerConfig) -> Result<Vec<VerifiedRevocation>> {
        let Some(dir) = &config.order.revocations else { return Ok(Vec::new()) };
        let what = || format!("revocations {}", dir.display());
        let rd = match std::fs::read_dir(dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(ServerError::governance(what(), e.kind())),
        };
        let mut files = Vec::new();
        for entry in rd {
            let p = entry.map_err(|e| ServerError::governance(what(), e.kind()))?.path();
            if p.extension().is_some_and(|x| x == "bin") && p.is_file() {
                files.push(p);
            }
        }
        files.sort();
        let mut out: Vec<VerifiedRevocation> = Vec::new();
        for p in files {
            let bytes = read("revocation", &p)?;
            let refuse = |e: OrderError| ServerError::governance(format!("revocation {}", p.display()), e);
            let signed = SignedRevocation::decode(&bytes).map_err(refuse)?;
            let v = self.keyring.verify_revocation(&signed).map_err(refuse)?;
            if v.order_id() == self.order.order_id() && !out.iter().any(|o| o.signed() == v.signed()) {
                out.push(v);
            }
        }
        Ok(out)
    }
}

/// Reads the pinned authority public key files into a keyring.
pub fn load_keyring(paths: &[std::path::PathBuf]) -> Result<AuthorityKeyring> {
    if paths.is_empty() || paths.len() > MAX_AUTHORITY_KEYS {
        return Err(ServerError::config("order.authority_keys", format!("1..={MAX_AUTHORITY_KEYS} key files")));
    }
    let mut keys = Vec::with_capacity(paths.len());
    for p in paths {
        let what = || format!("authority public key {}", p.display());
        let bytes = vouchsafe_files::read_key_text(p, AUTHORITY_PUBLIC_HEADER)
            .map_err(|e| ServerError::governance(what(), e))?;
        keys.push(AuthorityPublicKey::from_bytes(&bytes).map_err(|e| ServerError::governance(what(), e))?);
    }
    AuthorityKeyring::new(keys).map_err(|e| ServerError::governance("order.authority_keys", e))
}

/// The file of release `number` of `line` in `dir`, as `vouchsafe centre release` names it.
pub fn release_path(dir: &Path, line: &str, number: u64) -> std::path::PathBuf {
    dir.join(format!("{line}-{number:06}.bin"))
}

/// `<line>-NNNNNN.record` beside the release: its Centre-signed public record (`vouchsafe centre release` writes
/// both).
pub fn record_path(dir: &Path, line: &str, number: u64) -> std::path::PathBuf {
    dir.join(format!("{line}-{number:06}.record"))
}

/// Verifies the releases `<line>-000001.bin`, … (consecutive) of the order's line under the order's Centre key.
type Chain = (Vec<VerifiedRelease>, Vec<SignedReleaseRecord>, ReleaseChain);

fn load_chain(dir: &Path, order: &VerifiedOrder) -> Result<Chain> {
    let line = order.release_line();
    let key = CentreKey::from_bytes(&order.centre_key().to_bytes())
        .map_err(|e| ServerError::governance("the order's Centre key", e))?;
    let mut releases = Vec::new();
    let mut records = Vec::new();
    let mut chain: Option<ReleaseChain> = None;
    for number in 1u64.. {
        let path = release_path(dir, line, number);
        if std::fs::symlink_metadata(&path).is_err() {
            break;
        }
        let refuse = |e: vouchsafe_release::Error| ServerError::governance(format!("release {}", path.display()), e);
        let bytes = read("release", &path)?;
        let verified = SignedRelease::decode(&bytes).and_then(|s| s.verify(&key)).map_err(refuse)?;
        match chain.as_mut() {
            None => chain = Some(ReleaseChain::new(&verified).map_err(refuse)?),
            Some(c) => c.apply(&verified).map_err(refuse)?,
        }
        // The public record: signed by the same key, and exactly this release's (counts, chain, hash).
        let rpath = record_path(dir, line, number);
        let refuse_record =
            |e: &dyn std::fmt::Display| ServerError::governance(format!("release record {}", rpath.display()), e);
        let rbytes = read("release record", &rpath)?;
        let record = SignedReleaseRecord::decode(&rbytes).map_err(|e| refuse_record(&e))?;
        let rec = record.verify(&key).map_err(|e| refuse_record(&e))?;
        if !verified.matches_record(&rec) {
            return Err(refuse_record(&format!("it does not describe release {number} of line {line}")));
        }
        releases.push(verified);
        records.push(record);
    }
    let chain = chain.ok_or_else(|| {
        ServerError::governance(
            format!("releases {}", dir.display()),
            format!("no release of the order's line {line} signed by the order's Centre key ({line}-000001.bin)"),
        )
    })?;
    Ok((releases, records, chain))
}

/// Reads the table-signing key named in `[table_signing] key` and checks that its public half is the order's
/// table key.
pub fn load_table_key(config: &ServerConfig, order: &VerifiedOrder) -> Result<TableSigningKey> {
    let Some(t) = &config.table_signing else {
        return Err(ServerError::config("table_signing.key", "not set: the table-signing key is needed to sign"));
    };
    let what = || format!("table key {}", t.key.display());
    let secret =
        vouchsafe_files::read_key_text(&t.key, TABLE_KEY_HEADER).map_err(|e| ServerError::governance(what(), e))?;
    let key = TableSigningKey::from_secret_bytes(&secret);
    if key.public_key() != order.table_key().to_bytes() {
        return Err(ServerError::governance(what(), "its public key is not the order's table key"));
    }
    Ok(key)
}

/// Reads a log signing key file (`LogSigningKey::to_private_key` and a newline).
pub fn load_log_key(path: &Path) -> Result<LogSigningKey> {
    let what = || format!("log key {}", path.display());
    let bytes = vouchsafe_files::read_limited(path, 4096).map_err(|e| ServerError::governance(what(), e))?;
    let text = std::str::from_utf8(&bytes).map_err(|_| ServerError::governance(what(), "not a log key file"))?;
    LogSigningKey::from_private_key(text.strip_suffix('\n').unwrap_or(text))
        .map_err(|_| ServerError::governance(what(), "not a log key file"))
}

/// Parses the configured witness verifier keys.
pub fn parse_witnesses(keys: &[String]) -> Result<Vec<WitnessVerifier>> {
    keys.iter()
        .enumerate()
        .map(|(i, k)| {
            WitnessVerifier::parse(k.trim())
                .map_err(|_| ServerError::config(format!("log.witnesses[{i}]"), "not a witness verifier key"))
        })
        .collect()
}

/// The log verifier of a log key, for clients to pin.
pub fn log_verifier(key: &LogSigningKey) -> LogVerifier {
    key.verifier()
}

/// Reads a signed manifest file.
pub fn load_manifest(path: &Path) -> Result<SignedManifest> {
    let bytes = read("signed manifest", path)?;
    SignedManifest::decode(&bytes)
        .map_err(|e| ServerError::governance(format!("signed manifest {}", path.display()), e))
}

/// Writes a signed manifest file atomically (temporary file, fsync, rename).
pub fn save_manifest(path: &Path, manifest: &SignedManifest) -> Result<()> {
    vouchsafe_files::write_secret(path, &manifest.encode()).map_err(|source| ServerError::Io {
        what: "signed manifest",
        path: path.to_owned(),
        source,
    })
}
