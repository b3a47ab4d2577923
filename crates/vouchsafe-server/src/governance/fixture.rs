//! A whole consistent chain of keys and signed files in one directory, for tests and the demo: an authority
//! issues an order, the Centre releases from two sources, the provider builds and signs the table, a log key and
//! witness keys exist. Every file is written where [`ServerConfig::in_dir`] looks for it.

use std::path::{Path, PathBuf};

use rand_core::CryptoRng;
use vouchsafe_case::ProviderSigningKey;
use vouchsafe_log::{LogSigningKey, LogVerifier, WitnessSigningKey, WitnessVerifier};
use vouchsafe_orders::{
    AuthorityKeyring, AuthorityPublicKey, AuthoritySigningKey, DetectionOrder, MaterialKind, OrderTerms, Revocation,
    RevocationReason, Scope, SignedOrder, TableSigningKey,
};
use vouchsafe_phash::HashConfig;
use vouchsafe_release::{CentreDb, CentreSigningKey, ImportEntry, ReleaseChain, SourceId};

use super::{
    AUTHORITY_PUBLIC_HEADER, Governance, TABLE_KEY_HEADER, TABLE_PUBLIC_KEY_HEADER, record_path, release_path,
};
use crate::aftercare::{PROVIDER_KEY_HEADER, PROVIDER_PUBLIC_KEY_HEADER};
use crate::config::{CentreConfig, ProviderConfig, ReviewConfig, ReviewRole, ReviewerConfig, ServerConfig, unix_now};
use crate::error::{Result, ServerError};
use crate::table::{UpdateOutcome, append_update, build_table, load_table, save_table, update_table};

/// What a device of a fixture's deployment pins: the authority keyring, the Centre key, the log key, the
/// witnesses and the quorum (all of them).
pub type Pins = (AuthorityKeyring, [u8; 32], LogVerifier, Vec<WitnessVerifier>, usize);

/// What a [`Fixture`] issues and releases.
#[derive(Clone, Debug)]
pub struct FixtureSpec {
    /// The order's service id.
    pub service_id: String,
    /// The Centre release line.
    pub release_line: String,
    /// The order's scope.
    pub scope: Scope,
    /// The order's excluded account classes.
    pub excluded_classes: Vec<String>,
    /// Start of validity, Unix seconds.
    pub not_before: i64,
    /// End of validity (exclusive), Unix seconds.
    pub not_after: i64,
    /// Threshold T.
    pub threshold: u16,
    /// Synthetic rate p as a fraction of 2^32.
    pub synthetic_rate: u32,
    /// Synthetic cap s.
    pub synthetic_cap: u16,
    /// Indicators `(primary, secondary)` attested by two independent sources: they go into release 1.
    pub indicators: Vec<(Vec<u8>, Vec<u8>)>,
    /// Indicators attested by one source only: the admission rule leaves them out.
    pub single_source: Vec<(Vec<u8>, Vec<u8>)>,
    /// Number of witness keys to make (their verifiers are configured in `[log] witnesses`).
    pub witnesses: usize,
    /// The order's and the Centre list's hash configuration (the indicators must be hashed under it).
    pub hash_config: HashConfig,
}

impl FixtureSpec {
    /// Service `demo-messenger`, line `demo`, the whole service, class `state` excluded, valid from a minute ago
    /// for 30 days, T = 3, no synthetic vouchers (p = 0, s = 2), two witnesses, hash configuration 1.
    pub fn new(indicators: Vec<(Vec<u8>, Vec<u8>)>) -> Self {
        let now = unix_now();
        FixtureSpec {
            service_id: "demo-messenger".to_owned(),
            release_line: "demo".to_owned(),
            scope: Scope::WholeService,
            excluded_classes: vec!["state".to_owned()],
            not_before: now - 60,
            not_after: now + 30 * 24 * 3600,
            threshold: 3,
            synthetic_rate: 0,
            synthetic_cap: 2,
            indicators,
            single_source: Vec::new(),
            witnesses: 2,
            hash_config: HashConfig::V1,
        }
    }
}

/// The keys and files of one consistent deployment in a directory (see the module documentation). The secret keys
/// are public fields: this is test and demo material only.
pub struct Fixture {
    /// The directory.
    pub dir: PathBuf,
    /// The configuration naming every file ([`ServerConfig::in_dir`] with the witnesses filled in). Tweak it, then
    /// [`Fixture::build_table`] and [`Fixture::write_config`] as needed.
    pub config: ServerConfig,
    /// The issuing authority.
    pub authority: AuthoritySigningKey,
    /// The Centre.
    pub centre: CentreSigningKey,
    /// The provider's table-signing key.
    pub table_key: TableSigningKey,
    /// The log key (origin `vouchsafe.example/log`).
    pub log_key: LogSigningKey,
    /// The witnesses (`witness-1`, …).
    pub witnesses: Vec<WitnessSigningKey>,
    /// The signed order written to `order.bin`.
    pub order: SignedOrder,
    /// The provider's report-signing key (`provider.key`, `provider.pub`).
    pub provider: ProviderSigningKey,
    spec: FixtureSpec,
    db: CentreDb,
    chain: ReleaseChain,
    revocations: usize,
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> ServerError + use<> {
    let path = path.to_owned();
    move |source| ServerError::Io { what, path, source }
}

fn write(what: &'static str, path: &Path, bytes: &[u8]) -> Result<()> {
    vouchsafe_files::write_secret(path, bytes).map_err(io(what, path))
}

fn fixture_err(e: impl std::fmt::Display) -> ServerError {
    ServerError::governance("fixture", e)
}

const SOURCES: [&str; 2] = ["source-a", "source-b"];

impl Fixture {
    /// Makes every key, issues the order, imports the indicators from two sources (the single-source ones from
    /// one), signs release 1 and writes everything into `dir` (created if missing). The table is not built yet:
    /// tweak [`Fixture::config`] first, then call [`Fixture::build_table`].
    pub fn create<R: CryptoRng + ?Sized>(dir: &Path, spec: FixtureSpec, rng: &mut R) -> Result<Fixture> {
        vouchsafe_files::create_private_dir(dir).map_err(io("fixture directory", dir))?;
        let authority = AuthoritySigningKey::generate(rng);
        let centre = CentreSigningKey::generate(rng);
        let table_key = TableSigningKey::generate(rng);
        let log_key = LogSigningKey::generate("vouchsafe.example/log", rng).map_err(fixture_err)?;
        let mut witnesses = Vec::with_capacity(spec.witnesses);
        for i in 1..=spec.witnesses {
            witnesses.push(WitnessSigningKey::generate(&format!("witness-{i}"), rng).map_err(fixture_err)?);
        }
        let mut config = ServerConfig::in_dir(dir);
        config.log.witnesses = witnesses.iter().map(|w| w.verifier().to_string()).collect();

        let mut order_id = [0u8; 16];
        rng.fill_bytes(&mut order_id);
        let terms = OrderTerms {
            order_id,
            service_id: spec.service_id.clone(),
            scope: spec.scope.clone(),
            material: MaterialKind::KnownImagery,
            not_before: spec.not_before,
            not_after: spec.not_after,
            threshold: spec.threshold,
            synthetic_rate: spec.synthetic_rate,
            synthetic_cap: spec.synthetic_cap,
            hash_config: spec.hash_config.id(),
            centre_key: centre.public().to_bytes(),
            release_line: spec.release_line.clone(),
            table_key: table_key.public_key(),
            excluded_classes: spec.excluded_classes.clone(),
            authority_key_id: authority.key_id(),
        };
        let order = authority.sign_order(DetectionOrder::new(terms).map_err(fixture_err)?).map_err(fixture_err)?;

        let hash = spec.hash_config.id();
        let mut db = CentreDb::new(hash);
        let entries = |list: &[(Vec<u8>, Vec<u8>)], source: &str| -> Vec<ImportEntry> {
            list.iter()
                .enumerate()
                .map(|(i, (p, s))| ImportEntry {
                    primary: p.clone(),
                    secondary: s.clone(),
                    reference: format!("{source}/{i}"),
                })
                .collect()
        };
        for (k, name) in SOURCES.iter().enumerate() {
            let source = SourceId::new(name).map_err(fixture_err)?;
            let mut list = entries(&spec.indicators, name);
            if k == 0 {
                list.extend(entries(&spec.single_source, name));
            }
            db.import(&source, hash, &list).map_err(fixture_err)?;
        }
        let next = db.next_release(&spec.release_line, None, 2, unix_now(), &[]).map_err(fixture_err)?;
        let signed = centre.sign(&next.release);
        let verified = signed.verify(&centre.public()).map_err(fixture_err)?;
        let chain = ReleaseChain::new(&verified).map_err(fixture_err)?;

        let f = Fixture {
            dir: dir.to_owned(),
            config,
            authority,
            centre,
            table_key,
            log_key,
            witnesses,
            order,
            provider: ProviderSigningKey::generate(rng),
            spec,
            db,
            chain,
            revocations: 0,
        };
        f.write_keys()?;
        f.write_centre_db()?;
        write("signed order", &f.config.order.signed_order.clone(), &f.order.encode())?;
        let releases = f.config.releases.dir.clone();
        vouchsafe_files::create_private_dir(&releases).map_err(io("releases directory", &releases))?;
        write("release", &release_path(&releases, &f.spec.release_line, 1), &signed.encode())?;
        let record = f.centre.sign_record(&verified).map_err(fixture_err)?;
        write("release record", &record_path(&releases, &f.spec.release_line, 1), &record.encode())?;
        if let Some(r) = &f.config.order.revocations {
            vouchsafe_files::create_private_dir(r).map_err(io("revocations directory", r))?;
        }
        Ok(f)
    }

    fn write_keys(&self) -> Result<()> {
        let d = &self.dir;
        let pubtext = vouchsafe_files::key_text(AUTHORITY_PUBLIC_HEADER, &self.authority.public_key().to_bytes());
        write("authority public key", &d.join("authority.pub"), pubtext.as_bytes())?;
        let sec = vouchsafe_files::key_text("vouchsafe-authority-key v1", &self.authority.to_secret_bytes());
        write("authority key", &d.join("authority.key"), sec.as_bytes())?;
        let sec = vouchsafe_files::key_text("vouchsafe-centre-key v1", &self.centre.to_bytes());
        write("centre key", &d.join("centre.key"), sec.as_bytes())?;
        let pubtext = vouchsafe_files::key_text("vouchsafe-centre-public-key v1", &self.centre.public().to_bytes());
        write("centre public key", &d.join("centre.pub"), pubtext.as_bytes())?;
        let sec = vouchsafe_files::key_text(TABLE_KEY_HEADER, &self.table_key.to_secret_bytes());
        write("table key", &d.join("table.key"), sec.as_bytes())?;
        let pubtext = vouchsafe_files::key_text(TABLE_PUBLIC_KEY_HEADER, &self.table_key.public_key());
        write("table public key", &d.join("table.key.pub"), pubtext.as_bytes())?;
        let log = zeroize::Zeroizing::new(format!("{}\n", &*self.log_key.to_private_key()));
        write("log key", &d.join("log.key"), log.as_bytes())?;
        write("log public key", &d.join("log.key.pub"), format!("{}\n", self.log_key.verifier()).as_bytes())?;
        let sec = vouchsafe_files::key_text(PROVIDER_KEY_HEADER, &self.provider.to_secret_bytes());
        write("provider key", &d.join("provider.key"), sec.as_bytes())?;
        let pubtext = vouchsafe_files::key_text(PROVIDER_PUBLIC_KEY_HEADER, &self.provider.public().to_bytes());
        write("provider public key", &d.join("provider.pub"), pubtext.as_bytes())?;
        for (i, w) in self.witnesses.iter().enumerate() {
            let sec = zeroize::Zeroizing::new(format!("{}\n", &*w.to_private_key()));
            write("witness key", &d.join(format!("witness-{}.key", i + 1)), sec.as_bytes())?;
            let p = d.join(format!("witness-{}.key.pub", i + 1));
            write("witness public key", &p, format!("{}\n", w.verifier()).as_bytes())?;
        }
        Ok(())
    }

    /// Writes the Centre's indicator database as `centre.db` (what `vouchsafe centre import` keeps, with the
    /// false-positive marks the Centre's report checks read).
    pub fn write_centre_db(&self) -> Result<()> {
        write("centre database", &self.dir.join("centre.db"), &self.db.encode())
    }

    /// Marks an indicator a false positive in the Centre's database (as `vouchsafe centre flag`) and rewrites
    /// `centre.db`.
    pub fn flag(&mut self, primary: &[u8]) -> Result<()> {
        self.db.mark_false_positive(primary).map_err(fixture_err)?;
        self.write_centre_db()
    }

    /// Turns on what follows the threshold in [`Fixture::config`]: `[provider]` (id `provider-a`, `provider.key`),
    /// `[review]` on 127.0.0.1:0 with these reviewers `(id, token, role)`, and `[centre]` at `centre_endpoint`.
    pub fn enable_review(&mut self, reviewers: &[(&str, &str, ReviewRole)], four_eyes: bool, centre_endpoint: &str) {
        self.config.provider = Some(ProviderConfig { id: "provider-a".into(), key: self.dir.join("provider.key") });
        self.config.review = Some(ReviewConfig {
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            four_eyes,
            appeal_seconds: 14 * 24 * 3600,
            reviewers: reviewers
                .iter()
                .map(|(id, token, role)| ReviewerConfig {
                    id: (*id).to_owned(),
                    token: crate::auth::BearerToken::new(*token),
                    role: *role,
                })
                .collect(),
        });
        self.config.centre = Some(CentreConfig {
            endpoint: centre_endpoint.to_owned(),
            ca: None,
            retry_initial_seconds: 1,
            retry_max_seconds: 2,
        });
    }

    /// The Centre's intake configuration (`vouchsafe centre serve`, docs/CENTRE.md) for this deployment, as TOML:
    /// listening on `listen`, its database and exports in the fixture's directory, the provider `provider-a`
    /// pinned for the order's service.
    pub fn centre_config(&self, listen: &str) -> String {
        format!(
            "listen = \"{listen}\"\nkey = \"centre.key\"\ndatabase = \"centre-intake.sqlite\"\nindicators = \"centre.db\"\n\
             releases = \"releases\"\nauthority_keys = [\"authority.pub\"]\nrevocations = \"revocations\"\n\
             exports = \"exports\"\n\n[[providers]]\nid = \"provider-a\"\nkey = \"provider.pub\"\nservices = [\"{}\"]\n",
            self.spec.service_id
        )
    }

    /// The pinned keyring of the authority.
    pub fn keyring(&self) -> Result<AuthorityKeyring> {
        AuthorityKeyring::new([self.authority_public()]).map_err(fixture_err)
    }

    /// The authority's public key.
    pub fn authority_public(&self) -> AuthorityPublicKey {
        self.authority.public_key().clone()
    }

    /// The Centre's public key bytes (what the order names and an app pins).
    pub fn centre_public(&self) -> [u8; 32] {
        self.centre.public().to_bytes()
    }

    /// The log's verifier key.
    pub fn log_verifier(&self) -> LogVerifier {
        self.log_key.verifier()
    }

    /// The witnesses' verifier keys.
    pub fn witness_verifiers(&self) -> Vec<WitnessVerifier> {
        self.witnesses.iter().map(WitnessSigningKey::verifier).collect()
    }

    /// Every witness cosigns the current checkpoint of the server at `addr` (plain HTTP/2, loopback), each with
    /// its state file `witness-N.state` in the fixture's directory, as `vouchsafe witness cosign` would. Returns
    /// the number of cosignatures the checkpoint carries afterwards.
    pub async fn cosign_all(&self, addr: std::net::SocketAddr) -> Result<u32> {
        let mut last = 0;
        for (i, w) in self.witnesses.iter().enumerate() {
            let key = WitnessSigningKey::from_private_key(&w.to_private_key()).map_err(fixture_err)?;
            let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
                .map_err(fixture_err)?
                .connect()
                .await
                .map_err(fixture_err)?;
            let state = self.dir.join(format!("witness-{}.state", i + 1));
            let now = u64::try_from(unix_now()).unwrap_or(0);
            let done =
                super::witness::cosign(channel, key, self.log_verifier(), &state, now).await.map_err(fixture_err)?;
            last = done.cosignatures;
        }
        Ok(last)
    }

    /// The pins a device of this deployment ships: authority keyring, Centre key, log key, witnesses, and a
    /// quorum of all witnesses.
    pub fn trust(&self) -> Result<Pins> {
        Ok((self.keyring()?, self.centre_public(), self.log_verifier(), self.witness_verifiers(), self.witnesses.len()))
    }

    /// The verified order and chain, as the server loads them from [`Fixture::config`].
    pub fn governance(&self) -> Result<Governance> {
        Governance::load(&self.config)
    }

    /// The release chain so far.
    pub fn chain(&self) -> &ReleaseChain {
        &self.chain
    }

    /// Builds the table of the newest release with [`Fixture::config`] (fresh α), signs its manifest with the
    /// table key and writes the table file and `<table>.manifest`, as `vouchsafe table build` does.
    pub fn build_table<R: CryptoRng + ?Sized>(&self, rng: &mut R) -> Result<()> {
        let gov = self.governance()?;
        let (table, manifest) = build_table(&self.config, &gov, &self.table_key, unix_now(), rng)?;
        save_table(&self.config.table, &table)?;
        super::save_manifest(&self.config.manifest_path(), &manifest)
    }

    /// The Centre signs the next release: `add` attested by both sources, `remove` marked as false positives;
    /// written to the releases directory. Returns the release's file.
    pub fn release(&mut self, add: &[(Vec<u8>, Vec<u8>)], remove: &[Vec<u8>]) -> Result<PathBuf> {
        let hash = self.spec.hash_config.id();
        for name in SOURCES {
            let source = SourceId::new(name).map_err(fixture_err)?;
            let list: Vec<ImportEntry> = add
                .iter()
                .enumerate()
                .map(|(i, (p, s))| ImportEntry {
                    primary: p.clone(),
                    secondary: s.clone(),
                    reference: format!("{name}/r{}-{i}", self.chain.number() + 1),
                })
                .collect();
            self.db.import(&source, hash, &list).map_err(fixture_err)?;
        }
        for p in remove {
            self.db.mark_false_positive(p).map_err(fixture_err)?;
        }
        self.write_centre_db()?;
        let next = self
            .db
            .next_release(&self.spec.release_line, Some(&self.chain), 2, unix_now(), remove)
            .map_err(fixture_err)?;
        let signed = self.centre.sign(&next.release);
        let verified = signed.verify(&self.centre.public()).map_err(fixture_err)?;
        self.chain.apply(&verified).map_err(fixture_err)?;
        let path = release_path(&self.config.releases.dir, &self.spec.release_line, self.chain.number());
        write("release", &path, &signed.encode())?;
        let record = self.centre.sign_record(&verified).map_err(fixture_err)?;
        let rpath = record_path(&self.config.releases.dir, &self.spec.release_line, self.chain.number());
        write("release record", &rpath, &record.encode())?;
        Ok(path)
    }

    /// Updates the table file to the newest release (as `vouchsafe table update`): appends the update to the
    /// history, saves the table and its new signed manifest.
    pub fn update_table<R: CryptoRng + ?Sized>(&self, rng: &mut R) -> Result<UpdateOutcome> {
        let gov = self.governance()?;
        let mut table = load_table(&self.config.table)?;
        let current = super::load_manifest(&self.config.manifest_path())?;
        let out = update_table(&gov, &self.table_key, &mut table, &current, unix_now(), rng)?;
        if let Some(h) = &self.config.table_updates {
            append_update(h, &out.update)?;
        }
        save_table(&self.config.table, &table)?;
        super::save_manifest(&self.config.manifest_path(), &out.manifest)?;
        Ok(out)
    }

    /// The authority signs a revocation of the order, written into the revocations directory. Returns its file.
    pub fn revoke(&mut self, reason: RevocationReason) -> Result<PathBuf> {
        let r = Revocation::new(*self.order.order().order_id(), unix_now(), reason, self.authority.key_id());
        let signed = self.authority.sign_revocation(r).map_err(fixture_err)?;
        let dir = self.config.order.revocations.clone().unwrap_or_else(|| self.dir.join("revocations"));
        vouchsafe_files::create_private_dir(&dir).map_err(io("revocations directory", &dir))?;
        self.revocations += 1;
        let path = dir.join(format!("revocation-{}.bin", self.revocations));
        write("revocation", &path, &signed.encode())?;
        Ok(path)
    }

    /// The order's terms, for issuing a modified order with [`Fixture::issue`].
    pub fn terms(&self) -> OrderTerms {
        self.order.order().terms().clone()
    }

    /// Signs an order of these terms with the fixture's authority (nothing is written).
    pub fn issue(&self, terms: OrderTerms) -> Result<SignedOrder> {
        self.authority.sign_order(DetectionOrder::new(terms).map_err(fixture_err)?).map_err(fixture_err)
    }

    /// Replaces `order.bin` with `order` (the table must then be built again: its manifest names the order).
    pub fn write_order(&mut self, order: SignedOrder) -> Result<()> {
        write("signed order", &self.config.order.signed_order, &order.encode())?;
        self.order = order;
        Ok(())
    }

    /// Writes [`Fixture::config`] as `server.toml` in the directory (mode 0600: it holds the tokens). Returns
    /// its path.
    pub fn write_config(&self) -> Result<PathBuf> {
        let path = self.dir.join("server.toml");
        write("config file", &path, self.config.to_toml_string()?.as_bytes())?;
        Ok(path)
    }
}

impl std::fmt::Debug for Fixture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fixture").field("dir", &self.dir).field("chain", &self.chain).finish_non_exhaustive()
    }
}
