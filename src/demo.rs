//! `vouchsafe demo`: the whole system on one machine, on 127.0.0.1:0, in a temporary directory. The Centre's
//! indicators are benign fixture images; the provider builds the blinded table and runs the real server; two
//! devices run the real client library over gRPC. After every round the demo prints what each party learned.

use std::collections::{BTreeMap, HashSet};
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use image::{DynamicImage, ImageFormat, RgbImage};
use indicatif::{ProgressBar, ProgressStyle};
use rand::{Rng as _, SeedableRng};
use rand_chacha::ChaCha20Rng;
use vouchsafe_client::{BearerToken, Client, ClientConfig, ScanContext, TrustAnchors, VoucherKind};
use vouchsafe_leakage::{LeakageParams, real_count_posterior};
use vouchsafe_orders::{RevocationReason, Scope};
use vouchsafe_phash::{AssociatedData, HashConfig, HashKind, ImageHashes, PerceptualHash, fixtures, hash_image};
use vouchsafe_protocol::table::ServerTable;
use vouchsafe_server::events::Event;
use vouchsafe_server::governance::{Fixture, FixtureSpec};
use vouchsafe_server::{AccountConfig, Governance};
use vouchsafe_store::{AuditRecord, CaseFilter, SqliteStore, Store};

use crate::cmd::describe_kind;
use crate::error::{CliError, Result};

/// Order parameters of the demo.
const T: u16 = 5;
const SYNTHETIC_CAP: u16 = 3;
const SYNTHETIC_RATE: f64 = 0.1;
/// The service component the order covers (conversations elsewhere are out of its scope).
const COMPONENT: &str = "chat";
/// The account class the order excludes.
const EXCLUDED_CLASS: &str = "state";
/// Indicator images among the fixtures.
const INDICATORS: usize = 12;
/// Benign pictures a source wrongly attested: in the release like any indicator, rejected by the reviewer when dave's
/// case comes (after the demo's rounds), fed back to the Centre, flagged there. More than T + s so that dave crosses
/// the threshold whatever the synthetic draws.
const PLANTED: usize = 8;
/// Extra random indicators standing in for the rest of the Centre's list.
const DECOYS: usize = 2000;
/// The server's prior in the posterior shown below the threshold: each image matches with this probability.
const PRIOR_MATCH_RATE: f64 = 0.05;
/// Fixture size.
const W: u32 = 160;
const H: u32 = 120;

/// Options of the demo.
pub struct DemoOptions {
    /// Number of fixture images (at least 30).
    pub images: usize,
    /// Keep the files here.
    pub keep: Option<PathBuf>,
    /// Seed.
    pub seed: u64,
}

pub(crate) struct Picture {
    pub(crate) label: String,
    pub(crate) png: Vec<u8>,
    pub(crate) hashes: ImageHashes,
    pub(crate) primary: Vec<u8>,
}

fn rt(context: &str) -> impl Fn(String) -> CliError + '_ {
    move |m| CliError::runtime(format!("demo: {context}: {m}"))
}

fn png_of(img: &RgbImage) -> Result<Vec<u8>> {
    let mut buf = Cursor::new(Vec::new());
    DynamicImage::ImageRgb8(img.clone())
        .write_to(&mut buf, ImageFormat::Png)
        .map_err(|e| CliError::runtime(format!("demo: encoding a fixture image: {e}")))?;
    Ok(buf.into_inner())
}

fn picture(label: String, img: &RgbImage) -> Result<Picture> {
    let cfg = HashConfig::RECOMMENDED;
    let hashes = hash_image(&cfg, &DynamicImage::ImageRgb8(img.clone()))
        .map_err(|e| CliError::runtime(format!("demo: hashing {label}: {e}")))?;
    let primary = hashes.primary.to_canonical_bytes();
    Ok(Picture { label, png: png_of(img)?, hashes, primary })
}

/// A near duplicate of `img` (re-encode, brightness, crop) with the same primary hash, if one of a few variants has it.
fn near_duplicate_of(img: &RgbImage, primary: &[u8], seed: u64, label: String) -> Result<Option<Picture>> {
    for k in 0..48u64 {
        let nd = fixtures::near_duplicate(img, seed.wrapping_mul(1000).wrapping_add(k));
        if nd.as_raw() == img.as_raw() {
            continue;
        }
        let p = picture(label.clone(), &nd)?;
        if p.primary == primary {
            return Ok(Some(p));
        }
    }
    Ok(None)
}

fn attachment_ref(account: &str, label: &str) -> [u8; 32] {
    let mut r = [0u8; 32];
    let text = format!("{account}/{label}");
    for (d, s) in r.iter_mut().zip(text.as_bytes()) {
        *d = *s;
    }
    r
}

fn ref_text(r: &[u8; 32]) -> String {
    let end = r.iter().position(|&b| b == 0).unwrap_or(r.len());
    let s = r.get(..end).unwrap_or(&[]);
    if !s.is_empty() && s.iter().all(|b| b.is_ascii_graphic()) {
        String::from_utf8_lossy(s).into_owned()
    } else {
        hex::encode(r)
    }
}

/// `utc` of a signed time.
pub(crate) fn utc_secs(secs: i64) -> String {
    vouchsafe_render::utc(secs)
}

/// UTC date-time of Unix seconds as the device stated them.
pub(crate) fn utc(secs: u64) -> String {
    vouchsafe_render::utc(i64::try_from(secs).unwrap_or(i64::MAX))
}

pub(crate) fn bar(len: u64, msg: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template("  {msg:<28} [{bar:30}] {pos}/{len}") {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_message(msg.to_owned());
    pb
}

fn prepare_dir(keep: &Option<PathBuf>) -> Result<(Option<tempfile::TempDir>, PathBuf)> {
    match keep {
        Some(dir) => {
            if dir.exists() {
                let mut rd = std::fs::read_dir(dir)
                    .map_err(|e| CliError::usage(format!("demo: --keep {}: {}", dir.display(), e.kind())))?;
                if rd.next().is_some() {
                    return Err(CliError::usage(format!("demo: --keep {}: the directory is not empty", dir.display())));
                }
            } else {
                std::fs::create_dir_all(dir)
                    .map_err(|e| CliError::usage(format!("demo: --keep {}: {}", dir.display(), e.kind())))?;
            }
            Ok((None, dir.clone()))
        }
        None => {
            let t = tempfile::Builder::new()
                .prefix("vouchsafe-demo-")
                .tempdir()
                .map_err(|e| CliError::runtime(format!("demo: temporary directory: {}", e.kind())))?;
            let p = t.path().to_path_buf();
            Ok((Some(t), p))
        }
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    vouchsafe_files::write_secret(path, bytes)
        .map_err(|e| CliError::runtime(format!("demo: {}: {}", path.display(), e.kind())))
}

/// One device in the demo, with the ground truth the demo (not the device) keeps.
pub(crate) struct Device {
    pub(crate) name: &'static str,
    pub(crate) client: Client,
    pub(crate) kinds: BTreeMap<&'static str, u64>,
}

impl Device {
    pub(crate) async fn scan(
        &mut self,
        pics: &[&Picture],
        pb: &ProgressBar,
        time: u64,
    ) -> Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        for p in pics {
            let t = UNIX_EPOCH + Duration::from_secs(time);
            let o = self
                .client
                .scan(p.png.clone(), attachment_ref(self.name, &p.label), t, &ScanContext::new().component(COMPONENT))
                .await
                .map_err(|e| CliError::runtime(format!("demo: {} scan {}: {e}", self.name, p.label)))?;
            let k = match o.kind {
                VoucherKind::Real => "real",
                VoucherKind::Synthetic => "synthetic",
                VoucherKind::Null => "null",
                _ => "other",
            };
            *self.kinds.entry(k).or_default() += 1;
            out.push((p.label.clone(), describe_kind(o.kind, o.null_reason)));
            pb.inc(1);
        }
        Ok(out)
    }
}

struct Round<'a> {
    title: &'static str,
    alice: Vec<&'a Picture>,
    bob: Vec<&'a Picture>,
}

pub(crate) async fn drain(store: &SqliteStore) -> Result<()> {
    let start = Instant::now();
    loop {
        let s = store.stats().map_err(|e| CliError::runtime(format!("demo: store: {e}")))?;
        if s.batches_pending == 0 {
            return Ok(());
        }
        if start.elapsed() > Duration::from_secs(60) {
            return Err(CliError::runtime("demo: the server's worker did not drain its inbox within 60 s"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs the demo.
pub async fn run(opts: DemoOptions) -> Result<()> {
    let started = Instant::now();
    let (_guard, dir) = prepare_dir(&opts.keep)?;
    let mut rng = ChaCha20Rng::seed_from_u64(opts.seed);
    let cfg = HashConfig::RECOMMENDED;

    println!("vouchsafe demo: threshold PSI with associated data over ristretto255, everything on 127.0.0.1");
    println!(
        "order: threshold T = {T}, synthetic rate p = {SYNTHETIC_RATE}, synthetic cap s = {SYNTHETIC_CAP}, seed {}",
        opts.seed
    );
    println!();

    // ---------------------------------------------------------------- the Centre
    println!("== 1. The Centre's sources: known images ==");
    let pb = bar(opts.images as u64, "generating and hashing images");
    let mut raw: Vec<RgbImage> = Vec::with_capacity(opts.images);
    let mut pics: Vec<Picture> = Vec::with_capacity(opts.images);
    let mut seen: HashSet<Vec<u8>> = HashSet::new();
    let mut seed = opts.seed.wrapping_mul(10_007);
    let mut attempts = 0usize;
    while pics.len() < opts.images {
        attempts += 1;
        if attempts > opts.images * 4 {
            pb.finish_and_clear();
            return Err(CliError::runtime("demo: could not generate enough distinct fixture images"));
        }
        seed = seed.wrapping_add(1);
        let img = fixtures::benign_image(seed, W, H);
        let p = picture(format!("img-{:03}", pics.len()), &img)?;
        if !vouchsafe_phash::quality_gate(&cfg, &p.hashes).is_accept() || !seen.insert(p.primary.clone()) {
            continue; // keep the demo's ground truth simple: distinct, gate-passing images only
        }
        raw.push(img);
        pics.push(p);
        pb.inc(1);
    }
    pb.finish_and_clear();
    // Each indicator is its (primary, secondary) pair; the secondary stays on the provider's server.
    let pair = |p: &Picture| (p.primary.clone(), p.hashes.secondary.to_canonical_bytes());
    let mut indicators: Vec<(Vec<u8>, Vec<u8>)> = pics.iter().take(INDICATORS).map(pair).collect();
    // The planted false positives (benign pictures a source wrongly attested) come right after the lone one.
    let planted: Vec<&Picture> = pics.iter().skip(INDICATORS + 1).take(PLANTED).collect();
    if planted.len() != PLANTED {
        return Err(CliError::runtime("demo: too few images for the planted false positives"));
    }
    indicators.extend(planted.iter().map(|p| pair(p)));
    let (plen, slen) = pics
        .first()
        .map(|p| (p.hashes.primary.as_bytes().len(), p.hashes.secondary.as_bytes().len()))
        .ok_or_else(|| CliError::runtime("demo: no image"))?;
    for _ in 0..DECOYS {
        let (mut b, mut c) = (vec![0u8; plen], vec![0u8; slen]);
        rng.fill_bytes(&mut b);
        rng.fill_bytes(&mut c);
        if let (Ok(h), Ok(h2)) = (
            PerceptualHash::from_raw(&cfg, HashKind::Primary, &b),
            PerceptualHash::from_raw(&cfg, HashKind::Secondary, &c),
        ) {
            indicators.push((h.to_canonical_bytes(), h2.to_canonical_bytes()));
        }
    }
    if indicators.len() < INDICATORS + DECOYS * 9 / 10 {
        return Err(CliError::runtime("demo: the decoy indicators could not be made"));
    }
    // One more image is reported by one source only: the Centre's admission rule leaves it out.
    let lone = pics.get(INDICATORS).ok_or_else(|| CliError::runtime("demo: too few images"))?;
    println!(
        "  {} benign fixture images generated ({}x{}); the first {INDICATORS} are the Centre's indicators",
        pics.len(),
        W,
        H
    );
    println!("  the list also holds {DECOYS} other indicators (random hashes standing in for images not shipped)");
    println!("  {} is reported by one source only", lone.label);
    println!(
        "  {} to {} are benign pictures that both sources wrongly attested (planted false positives, for section 5)",
        planted.first().map(|p| p.label.as_str()).unwrap_or("?"),
        planted.last().map(|p| p.label.as_str()).unwrap_or("?")
    );
    if let Some(first) = pics.first() {
        println!(
            "  an indicator is the canonical primary hash, e.g. {} = {}",
            first.label,
            hex::encode(&first.primary)
        );
    }
    println!();

    // ---------------------------------------------------------------- authority, Centre, provider, witnesses
    println!("== 2. The chain: authority, Centre, provider, log, witnesses ==");
    let token = |rng: &mut ChaCha20Rng| {
        let mut t = [0u8; 24];
        rng.fill_bytes(&mut t);
        hex::encode(t)
    };
    let (alice_token, bob_token, carol_token) = (token(&mut rng), token(&mut rng), token(&mut rng));
    let (dave_token, r1_token, r2_token, sup_token) =
        (token(&mut rng), token(&mut rng), token(&mut rng), token(&mut rng));
    let mut spec = FixtureSpec::new(indicators.clone());
    spec.single_source = vec![pair(lone)];
    spec.scope = Scope::Components(vec![COMPONENT.to_owned()]);
    spec.excluded_classes = vec![EXCLUDED_CLASS.to_owned()];
    spec.threshold = T;
    spec.synthetic_rate = vouchsafe_protocol::params::EpochParams::rate_from_probability(SYNTHETIC_RATE);
    spec.synthetic_cap = SYNTHETIC_CAP;
    spec.hash_config = HashConfig::RECOMMENDED;
    let spin = ProgressBar::new_spinner().with_message("keys, the signed order, the Centre's release");
    spin.enable_steady_tick(Duration::from_millis(80));
    let created = Fixture::create(&dir, spec, &mut rng);
    spin.finish_and_clear();
    let mut fixture = created.map_err(|e| CliError::from_server("demo: governance files", e))?;
    {
        let o = fixture.order.order();
        println!(
            "  AUTHORITY {} signs order {}: service {}, only component \"{COMPONENT}\", accounts of class \"{EXCLUDED_CLASS}\" excluded,",
            o.authority_key_id(),
            hex::encode(o.order_id()),
            o.service_id()
        );
        println!(
            "    known imagery only, valid {} to {} (at most 24 months), T = {T}, Centre line \"{}\", the provider's table key",
            vouchsafe_render::utc(o.not_before()),
            vouchsafe_render::utc(o.not_after()),
            o.release_line()
        );
    }
    let chain = fixture.chain();
    println!(
        "  CENTRE imports the lists of source-a and source-b and signs release {} of line \"{}\": {} indicators, each attested by 2 sources",
        chain.number(),
        chain.line(),
        chain.len()
    );
    println!(
        "    left out: {} (attested by source-a only; the rule needs {} distinct sources); the log gets the release's public record, never its hashes",
        lone.label,
        chain.min_sources()
    );
    let mut config = fixture.config.clone();
    config.chunk_slots = 256;
    config.worker.poll_interval_ms = 50;
    config.limits.rate_vouchers_per_second = 1000.0;
    let account = |t: &str, name: &str, class: Option<&str>| {
        let mut a = AccountConfig::new(t.to_owned(), name);
        a.components = vec![COMPONENT.to_owned()];
        a.classes = class.map(|c| vec![c.to_owned()]).unwrap_or_default();
        a
    };
    config.accounts = vec![
        account(&alice_token, "alice", None),
        account(&bob_token, "bob", None),
        account(&carol_token, "carol", Some(EXCLUDED_CLASS)),
        account(&dave_token, "dave", None),
    ];
    fixture.config = config;
    // The Centre's intake, in process (`vouchsafe centre serve` in production), and the provider's review side:
    // two reviewers and a supervisor on their own listener, four-eyes.
    let centre_toml = dir.join("centre.toml");
    std::fs::write(&centre_toml, fixture.centre_config("127.0.0.1:0"))
        .map_err(|e| CliError::runtime(format!("demo: centre.toml: {}", e.kind())))?;
    let centre_config = vouchsafe_centre::CentreConfig::load(&centre_toml)
        .map_err(|e| CliError::runtime(format!("demo: centre configuration: {e}")))?;
    let centre = vouchsafe_centre::start(centre_config.clone())
        .await
        .map_err(|e| CliError::runtime(format!("demo: centre intake: {e}")))?;
    use vouchsafe_server::ReviewRole;
    fixture.enable_review(
        &[
            ("reviewer-1", &r1_token, ReviewRole::Reviewer),
            ("reviewer-2", &r2_token, ReviewRole::Reviewer),
            ("supervisor", &sup_token, ReviewRole::Supervisor),
        ],
        true,
        &format!("http://{}", centre.local_addr()),
    );
    let config = fixture.config.clone();
    config.validate().map_err(|e| CliError::from_server("demo: configuration", e))?;
    fixture.write_config().map_err(|e| CliError::from_server("demo: configuration", e))?;
    let spin = ProgressBar::new_spinner()
        .with_message(format!("building the blinded table ({} indicators)", fixture.chain().len()));
    spin.enable_steady_tick(Duration::from_millis(80));
    let built = fixture.build_table(&mut rng);
    spin.finish_and_clear();
    built.map_err(|e| CliError::from_server("demo: table build", e))?;
    let table: ServerTable =
        vouchsafe_server::load_table(&config.table).map_err(|e| CliError::from_server("demo: table", e))?;
    println!(
        "  PROVIDER builds the table from the verified release only: {} indicators in m = {} slots (cuckoo, k = 3), root {},",
        table.indicator_count(),
        table.params().slot_count,
        hex::encode(&table.manifest().root()[..8])
    );
    println!("    blinding key α drawn inside the build; the manifest is signed with the order's table key");
    let store =
        Arc::new(SqliteStore::open(&config.database).map_err(|e| CliError::runtime(format!("demo: database: {e}")))?);
    let dyn_store: Arc<dyn Store> = store.clone();
    let server = vouchsafe_server::start(config.clone(), dyn_store)
        .await
        .map_err(|e| CliError::from_server("demo: server", e))?;
    let endpoint = format!("http://{}", server.local_addr());
    println!(
        "  matching and transparency server on {endpoint}: order, release record and manifest are leaves of its log"
    );
    let cosigned = fixture.cosign_all(server.local_addr()).await;
    let cosigned = cosigned.map_err(|e| CliError::from_server("demo: witnesses", e))?;
    println!(
        "  WITNESSES witness-1 and witness-2 check the log's consistency and cosign its checkpoint ({cosigned} cosignatures)"
    );
    println!(
        "  accounts: alice, bob (component \"{COMPONENT}\"), carol (class \"{EXCLUDED_CLASS}\"); files in {}",
        dir.display()
    );
    println!();

    let tokens = Tokens { alice: &alice_token, bob: &bob_token, carol: &carol_token };
    let after = AfterCtx {
        centre: &centre_config,
        dave: &dave_token,
        reviewers: [&r1_token, &r2_token],
        supervisor: &sup_token,
        planted: &planted,
    };
    let result = run_devices(
        &opts,
        &dir,
        &endpoint,
        &mut fixture,
        &server,
        &table,
        &store,
        &pics,
        &raw,
        tokens,
        &after,
        &mut rng,
    )
    .await;
    let stop = server.shutdown().await.map_err(|e| CliError::from_server("demo: server shutdown", e));
    let centre_stop = centre.shutdown().await.map_err(|e| CliError::runtime(format!("demo: centre shutdown: {e}")));
    result?;
    stop?;
    centre_stop?;
    println!();
    println!("finished in {:.1} s", started.elapsed().as_secs_f64());
    match &opts.keep {
        Some(d) => println!("data kept in {} (server.toml holds the tokens, table.secret holds α)", d.display()),
        None => println!("temporary data removed (use --keep DIR to keep it)"),
    }
    Ok(())
}

/// What the after-threshold act needs besides the devices' part.
pub(crate) struct AfterCtx<'a> {
    pub(crate) centre: &'a vouchsafe_centre::CentreConfig,
    pub(crate) dave: &'a str,
    pub(crate) reviewers: [&'a str; 2],
    pub(crate) supervisor: &'a str,
    pub(crate) planted: &'a [&'a Picture],
}

/// The accounts' bearer tokens.
#[derive(Clone, Copy)]
struct Tokens<'a> {
    alice: &'a str,
    bob: &'a str,
    carol: &'a str,
}

#[allow(clippy::too_many_arguments)] // the demo threads its parts (server, devices, pictures, bar) through one linear script
async fn run_devices(
    opts: &DemoOptions,
    dir: &Path,
    endpoint: &str,
    fixture: &mut Fixture,
    server: &vouchsafe_server::RunningServer,
    table: &ServerTable,
    store: &Arc<SqliteStore>,
    pics: &[Picture],
    raw: &[RgbImage],
    tokens: Tokens<'_>,
    after: &AfterCtx<'_>,
    rng: &mut ChaCha20Rng,
) -> Result<()> {
    let config = &fixture.config.clone();
    let cfg = HashConfig::RECOMMENDED;
    let gov = Governance::load(config).map_err(|e| CliError::from_server("demo: order", e))?;
    let service = gov.order().service_id().to_owned();
    let (authorities, centre, log, witnesses, quorum) =
        fixture.trust().map_err(|e| CliError::from_server("demo: pins", e))?;
    let anchors = TrustAnchors::new(authorities, centre, log, witnesses, quorum)
        .map_err(|e| CliError::runtime(format!("demo: pins: {e}")))?;
    let open = |token: &str, name: &'static str, seed: u64, classes: Vec<String>| {
        let mut c = ClientConfig::new(
            endpoint.to_owned(),
            BearerToken::new(token),
            dir.join(format!("device-{name}")),
            service.clone(),
            anchors.clone(),
        );
        c.backoff_initial = Duration::from_millis(20);
        c.max_batch = 64;
        c.account_classes = classes;
        async move {
            Client::open_with_rng(c, ChaCha20Rng::seed_from_u64(seed))
                .await
                .map_err(|e| CliError::runtime(format!("demo: {name}'s device: {e}")))
        }
    };
    let mut alice = Device {
        name: "alice",
        client: open(tokens.alice, "alice", rng.next_u64(), vec![]).await?,
        kinds: BTreeMap::new(),
    };
    let mut bob =
        Device { name: "bob", client: open(tokens.bob, "bob", rng.next_u64(), vec![]).await?, kinds: BTreeMap::new() };

    println!("== 3. The devices: every signature and the log checked before the first hash ==");
    println!(
        "  the app pins: the authority key, the Centre key, the log key, witness-1 and witness-2 (quorum {quorum}); never from the server"
    );
    for d in [&alice, &bob] {
        let r = d.client.sync().await.map_err(|e| CliError::runtime(format!("demo: {} sync: {e}", d.name)))?;
        let info = d.client.table_info();
        let (m, root) = info.map(|i| (i.slot_count, hex::encode(&i.root[..8]))).unwrap_or((0, String::new()));
        println!(
            "  {}'s device: {:?} sync, {} bytes, every chunk checked against the root {root}",
            d.name, r.kind, r.bytes_received
        );
        let size = d.client.log_tree_head().map(|h| h.size).unwrap_or(0);
        println!(
            "    verified: the order's signature, window and scope; the Centre key it names; the manifest signed with its table key;"
        );
        println!(
            "    the order and the manifest included in the log under a checkpoint of size {size} cosigned by {quorum} pinned witnesses"
        );
        println!(
            "    the device learns: m = {m} slots, the epoch and the order. Nothing about which hashes are in it."
        );
    }
    println!();

    // Pools of images.
    let ind: Vec<&Picture> = pics.iter().take(INDICATORS).collect();
    // The rounds below name indicators 0..12 by position: the list must hold them.
    let ind: &[&Picture; INDICATORS] =
        ind.as_slice().try_into().map_err(|_| CliError::runtime("demo: fewer indicator images than the rounds use"))?;
    let first = ind[0];
    // Ordinary photos: the lone one (not in the release) and everything after the planted false positives.
    let others: Vec<&Picture> =
        pics.iter().skip(INDICATORS).take(1).chain(pics.iter().skip(INDICATORS + 1 + PLANTED)).collect();
    let half = others.len() / 2;
    let (alice_pool, bob_pool) = others.split_at(half);
    let mut near: Vec<Picture> = Vec::new();
    for (i, k) in [2usize, 6].iter().enumerate() {
        if let (Some(img), Some(p)) = (raw.get(*k), pics.get(*k)) {
            let label = format!("{}-near-duplicate", p.label);
            match near_duplicate_of(img, &p.primary, opts.seed.wrapping_add(i as u64), label)? {
                Some(nd) => near.push(nd),
                None => near.push(picture(format!("{}-resent", p.label), img)?),
            }
        }
    }
    let nd = |i: usize| near.get(i).unwrap_or(first);
    let a = |i: usize| alice_pool.get(i % alice_pool.len().max(1)).copied().unwrap_or(first);
    let b = |i: usize| bob_pool.get(i % bob_pool.len().max(1)).copied().unwrap_or(first);

    let rounds = [
        Round {
            title: "alice sends 6 ordinary photos and 2 indicator images; bob sends 4 ordinary photos",
            alice: vec![a(0), a(1), ind[0], a(2), a(3), ind[1], a(4), a(5)],
            bob: vec![b(0), b(1), b(2), b(3)],
        },
        Round {
            title: "alice: a near-duplicate of an indicator (identical primary hash), another indicator, a photo she already sent, 3 new photos; bob: 3 photos and a resend",
            alice: vec![a(6), nd(0), a(7), ind[3], a(0), a(8)],
            bob: vec![b(4), b(5), b(0), b(6)],
        },
        Round {
            title: "alice: 3 more indicator images among 3 photos; bob: 4 photos",
            alice: vec![ind[4], a(9), ind[5], a(10), ind[7], a(11)],
            bob: vec![b(7), b(8), b(9), b(10)],
        },
        Round {
            title: "alice: a second near-duplicate, 2 indicators, 2 photos; bob: 4 photos",
            alice: vec![nd(1), a(12), ind[8], a(13), ind[9]],
            bob: vec![b(11), b(12), b(13), b(14)],
        },
        Round {
            title: "alice: the last 2 indicator images and 2 photos she already sent; bob: 2 photos he already sent",
            alice: vec![ind[10], a(1), ind[11], a(2)],
            bob: vec![b(1), b(2)],
        },
    ];

    let base_time = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let mut revealed_round: Option<usize> = None;
    let mut printed: HashSet<[u8; 16]> = HashSet::new();
    for (ri, round) in rounds.iter().enumerate() {
        println!("== Round {} ==  ({})", ri + 1, round.title);
        let total = (round.alice.len() + round.bob.len()) as u64;
        let pb = bar(total, "scanning on the devices");
        let t0 = base_time + (ri as u64) * 3600;
        let ka = alice.scan(&round.alice, &pb, t0).await?;
        let kb = bob.scan(&round.bob, &pb, t0 + 60).await?;
        pb.finish_and_clear();
        for d in [&alice, &bob] {
            d.client.submit().await.map_err(|e| CliError::runtime(format!("demo: {} submit: {e}", d.name)))?;
        }
        drain(store).await?;

        println!("  DEVICE (alice) learns only its own voucher kinds, never whether anything matched:");
        for (label, kind) in &ka {
            let truth =
                if pics.iter().take(INDICATORS).any(|p| &p.label == label) || near.iter().any(|p| &p.label == label) {
                    "  [ground truth, known only to the demo: indicator image]"
                } else if pics.get(INDICATORS).is_some_and(|p| &p.label == label) {
                    "  [ground truth: reported by one source only, so not in the release and no match]"
                } else {
                    ""
                };
            println!("    {label:<24} -> {kind}{truth}");
        }
        println!("  DEVICE (bob): {}", kb.iter().map(|(l, k)| format!("{l} -> {k}")).collect::<Vec<_>>().join(", "));

        println!("  SERVER learns (acknowledgements were identical for every batch):");
        for name in ["alice", "bob"] {
            server_view(name, &gov, table, store, &cfg, pics, &mut revealed_round, &mut printed, ri)?;
        }
        println!();
    }

    // Summary.
    println!("== Summary ==");
    let stats = store.stats().map_err(|e| CliError::runtime(format!("demo: store: {e}")))?;
    println!(
        "  server totals: {} vouchers received, {} non-matches (nothing kept but a counter), {} opened, {} invalid, {} open case(s)",
        stats.vouchers_received, stats.non_matches, stats.opened, stats.invalid, stats.cases_open
    );
    for d in [&alice, &bob] {
        println!("  {}'s device made: {:?}", d.name, d.kinds);
    }
    match revealed_round {
        Some(r) => println!(
            "  alice crossed T = {T} in round {}; bob never did: the server decrypted nothing of bob's and only holds an opened count for him",
            r + 1
        ),
        None => {
            println!("  no account crossed the threshold in this run (synthetic replacements were unlucky for alice)")
        }
    }
    let head = store.verify_audit_chain().map_err(|e| CliError::runtime(format!("demo: audit chain: {e}")))?;
    println!("  audit log: {} entries, chain verified, head {}", head.entries, hex::encode(&head.head[..8]));
    println!();
    let dave = Device {
        name: "dave",
        client: open(after.dave, "dave", rng.next_u64(), vec![]).await?,
        kinds: BTreeMap::new(),
    };
    crate::demo_after::run(dir, fixture, server, store, &alice, dave, after, base_time + 6 * 3600).await?;
    let probe = pics.first().ok_or_else(|| CliError::runtime("demo: no image"))?;
    refusals(dir, fixture, server, &alice, probe, endpoint, tokens, &anchors, rng).await
}

/// Prints one refusal, or fails the demo if what must be refused was not.
pub(crate) fn refused<T, E: std::fmt::Display>(who: &str, r: std::result::Result<T, E>) -> Result<()> {
    match r {
        Ok(_) => Err(CliError::runtime(format!("demo: {who} did NOT refuse it"))),
        Err(e) => {
            println!("      {who}: {e}");
            Ok(())
        }
    }
}

#[allow(clippy::too_many_arguments)] // the last act of the demo script: every party once more
async fn refusals(
    dir: &Path,
    fixture: &mut Fixture,
    server: &vouchsafe_server::RunningServer,
    alice: &Device,
    probe: &Picture,
    endpoint: &str,
    tokens: Tokens<'_>,
    anchors: &TrustAnchors,
    rng: &mut ChaCha20Rng,
) -> Result<()> {
    println!("== 4. What is refused, by whom, with which message ==");
    let config = fixture.config.clone();
    let chat = ScanContext::new().component(COMPONENT);
    let queued = alice.client.outbox_len();
    let err = |e: vouchsafe_server::ServerError| CliError::from_server("demo", e);

    println!("  ✗ a forged order (one byte of the signed order flipped)");
    let mut forged = fixture.order.encode();
    if let Some(b) = forged.len().checked_sub(20).and_then(|i| forged.get_mut(i)) {
        *b ^= 1;
    }
    let forged_path = dir.join("forged-order.bin");
    write_private(&forged_path, &forged)?;
    let mut forged_cfg = config.clone();
    forged_cfg.order.signed_order = forged_path;
    refused("the server, at start or reload", Governance::load(&forged_cfg))?;
    refused("every device (the same order check)", anchors.authorities.verify_order_bytes(&forged))?;

    println!("  ✗ an expired order (the same order, one second after its window)");
    let not_after = fixture.order.order().not_after();
    let after = UNIX_EPOCH + Duration::from_secs(u64::try_from(not_after).unwrap_or(0) + 1);
    refused("alice's device, before hashing", alice.client.check_scan(&chat, after))?;
    let gov = fixture.governance().map_err(err)?;
    refused("the server, before storing a voucher", gov.check_active(not_after + 1, &[]))?;

    println!("  ✗ a conversation outside the order's scope (component \"channels\")");
    let out_of_scope = alice
        .client
        .scan(probe.png.clone(), [9; 32], SystemTime::now(), &ScanContext::new().component("channels"))
        .await;
    refused("alice's device, before hashing", out_of_scope)?;
    if alice.client.outbox_len() != queued {
        return Err(CliError::runtime("demo: a refused scan queued a voucher"));
    }

    println!("  ✗ an excluded account (carol, class \"{EXCLUDED_CLASS}\")");
    let carol_cfg = |sub: &str, classes: Vec<String>| {
        let mut c = ClientConfig::new(
            endpoint.to_owned(),
            BearerToken::new(tokens.carol),
            dir.join(sub),
            fixture.order.order().service_id().to_owned(),
            anchors.clone(),
        );
        c.account_classes = classes;
        c.max_retries = 0;
        c
    };
    let carol = Client::open_with_rng(carol_cfg("device-carol", vec![EXCLUDED_CLASS.to_owned()]), rng.clone())
        .await
        .map_err(|e| CliError::runtime(format!("demo: carol's device: {e}")))?;
    refused("carol's device, before downloading anything", carol.sync().await)?;
    let lying = Client::open_with_rng(carol_cfg("device-carol-modified", vec![]), rng.clone())
        .await
        .map_err(|e| CliError::runtime(format!("demo: carol's modified device: {e}")))?;
    lying.sync().await.map_err(|e| CliError::runtime(format!("demo: carol's modified device: {e}")))?;
    lying
        .scan(probe.png.clone(), [8; 32], SystemTime::now(), &chat)
        .await
        .map_err(|e| CliError::runtime(format!("demo: carol's modified device: {e}")))?;
    refused("the server, for a modified app that hides the class (nothing stored)", lying.submit().await)?;

    println!("  ✗ a table from a list the Centre did not sign (a release signed by another key)");
    let rogue_dir = dir.join("rogue-releases");
    vouchsafe_files::create_private_dir(&rogue_dir)
        .map_err(|e| CliError::runtime(format!("demo: {}: {}", rogue_dir.display(), e.kind())))?;
    let rogue = vouchsafe_release::CentreSigningKey::generate(rng);
    let mut db = vouchsafe_release::CentreDb::new(HashConfig::RECOMMENDED.id());
    let entry = vouchsafe_release::ImportEntry {
        primary: probe.primary.clone(),
        secondary: probe.hashes.secondary.to_canonical_bytes(),
        reference: "rogue".into(),
    };
    for src in ["x", "y"] {
        let id = vouchsafe_release::SourceId::new(src).map_err(|e| CliError::runtime(format!("demo: {e}")))?;
        db.import(&id, HashConfig::RECOMMENDED.id(), std::slice::from_ref(&entry))
            .map_err(|e| CliError::runtime(format!("demo: {e}")))?;
    }
    let line = fixture.order.order().release_line().to_owned();
    let next = db.next_release(&line, None, 2, 0, &[]).map_err(|e| CliError::runtime(format!("demo: {e}")))?;
    write_private(
        &vouchsafe_server::governance::release_path(&rogue_dir, &line, 1),
        &rogue.sign(&next.release).encode(),
    )?;
    refused("the server and `vouchsafe table build`", Governance::load_with_releases(&config, &rogue_dir))?;

    println!("  ✗ a forked log (the log key signs a second tree of the size the witnesses cosigned)");
    // The device's view of the log is its last sync: bring it to the newest cosigned size first.
    alice.client.sync().await.map_err(|e| CliError::runtime(format!("demo: alice sync: {e}")))?;
    let head = alice.client.log_tree_head().ok_or_else(|| CliError::runtime("demo: alice holds no checkpoint"))?;
    let mut other_root = [0u8; 32];
    rng.fill_bytes(&mut other_root);
    let fork = vouchsafe_log::Checkpoint::new(
        fixture.log_key.name(),
        vouchsafe_log::TreeHead { size: head.size, root: vouchsafe_log::Hash(other_root) },
    )
    .and_then(|c| fixture.log_key.sign_checkpoint(&c))
    .map_err(|e| CliError::runtime(format!("demo: fork: {e}")))?;
    let fork_note = fork.encode();
    for (i, key) in fixture.witnesses.iter().enumerate() {
        let state = dir.join(format!("witness-{}.state", i + 1));
        let last = vouchsafe_server::governance::witness::read_state(&state, fixture.log_key.name())
            .map_err(|e| CliError::runtime(format!("demo: {e}")))?
            .unwrap_or_else(vouchsafe_log::TreeHead::empty);
        let signing = vouchsafe_log::WitnessSigningKey::from_private_key(&key.to_private_key())
            .map_err(|e| CliError::runtime(format!("demo: {e}")))?;
        let mut w = vouchsafe_log::Witness::new(signing);
        w.follow_from(fixture.log_verifier(), last).map_err(|e| CliError::runtime(format!("demo: {e}")))?;
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let r = w.cosign(fork_note.as_bytes(), &vouchsafe_log::ConsistencyProof::default(), now);
        refused(&format!("witness-{}", i + 1), r)?;
    }
    let policy = anchors.policy().map_err(|e| CliError::runtime(format!("demo: {e}")))?;
    refused("every device (no witness quorum on it)", policy.verify_checkpoint(fork_note.as_bytes()))?;

    println!("  ✗ a revoked order (the authority revokes it; the operator drops the file in place and reloads)");
    let path = fixture.revoke(RevocationReason::Annulled).map_err(err)?;
    let _ = server.reload_table().await; // the table is unchanged; the revocation is what the reload picks up
    let mut manifest = vouchsafe_proto::v1::matching_client::MatchingClient::connect(endpoint.to_owned())
        .await
        .map_err(|e| CliError::runtime(format!("demo: connect: {e}")))?;
    let mut waited = 0;
    let status = loop {
        match manifest.get_manifest(vouchsafe_proto::v1::GetManifestRequest {}).await {
            Err(s) => break s,
            Ok(_) if waited < 100 => {
                waited += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Ok(_) => return Err(CliError::runtime("demo: the server kept serving a revoked order")),
        }
    };
    println!("      the server, at once: {:?}: {}", status.code(), status.message());
    let revocation = std::fs::read(&path).map_err(|e| CliError::runtime(format!("demo: revocation: {e}")))?;
    alice
        .client
        .add_revocation(&revocation)
        .await
        .map_err(|e| CliError::runtime(format!("demo: alice add_revocation: {e}")))?;
    refused(
        "alice's device, told by its app, even though it holds the table",
        alice.client.scan(probe.png.clone(), [7; 32], SystemTime::now(), &chat).await,
    )?;
    let grew = fixture.cosign_all(server.local_addr()).await.map_err(err)?;
    println!(
        "      the log: the revocation is a leaf; both witnesses cosign the extended checkpoint ({grew} cosignatures)"
    );
    Ok(())
}

#[allow(clippy::too_many_arguments)] // one printout of everything the server knows at this point of the demo
fn server_view(
    name: &str,
    gov: &Governance,
    table: &ServerTable,
    store: &SqliteStore,
    cfg: &HashConfig,
    pics: &[Picture],
    revealed_round: &mut Option<usize>,
    printed: &mut HashSet<[u8; 16]>,
    round: usize,
) -> Result<()> {
    let err = rt("store");
    let order = *gov.order().order_id();
    let c = store.counters(name).map_err(|e| err(e.to_string()))?;
    let cases = store
        .list_cases(&CaseFilter { account: Some(name.to_owned()), order_id: Some(order), ..CaseFilter::default() })
        .map_err(|e| err(e.to_string()))?;
    let opened = store.opened_vouchers(name, order).map_err(|e| err(e.to_string()))?;
    println!(
        "    {name}: {} vouchers received, {} non-matches, {} opened (real ∪ synthetic: indistinguishable below T), {} invalid",
        c.received, c.non_matches, c.opened, c.invalid
    );
    let Some(case) = cases.last() else {
        println!("      below the threshold: no case, no associated data, no way to tell real from synthetic");
        let params = LeakageParams {
            vouchers: c.received,
            synthetic_rate: SYNTHETIC_RATE,
            synthetic_cap: u32::from(SYNTHETIC_CAP),
            threshold: u32::from(T),
        };
        let prior = crate::cmd::prior_of(Some(PRIOR_MATCH_RATE));
        match real_count_posterior(&params, c.opened, &prior) {
            Ok(post) => {
                let probs: Vec<String> =
                    post.probabilities().iter().enumerate().map(|(r, p)| format!("R={r}: {p:.3}")).collect();
                println!(
                    "      server's posterior on the real count R given {} opened of {} (prior: match rate {PRIOR_MATCH_RATE}): {}; P(R>=1) = {:.3}",
                    c.opened,
                    c.received,
                    probs.join(", "),
                    post.prob_any_real()
                );
            }
            Err(e) => println!("      posterior not available: {e}"),
        }
        return Ok(());
    };
    let full = store.get_case(case.id).map_err(|e| err(e.to_string()))?.ok_or_else(|| err("case vanished".into()))?;
    let audit: Vec<AuditRecord> = store.audit_entries(0, 10_000).map_err(|e| err(e.to_string()))?;
    let reveal = audit.iter().find_map(|r| match Event::parse(r) {
        Ok(Event::ThresholdReveal { account, real, synthetic, rejected, .. }) if account == name => {
            Some((real, synthetic, rejected))
        }
        _ => None,
    });
    let first_time = revealed_round.is_none();
    if first_time {
        *revealed_round = Some(round);
        println!("      >>> THRESHOLD CROSSED: {name} now has at least T = {T} distinct real matches <<<");
        if let Some((real, synthetic, rejected)) = reveal {
            println!(
                "      the server reconstructed {name}'s secret polynomial and decrypted: real = {real}, synthetic identified = {synthetic}, rejected = {rejected}"
            );
        }
    } else {
        println!("      already revealed: new opened vouchers are classified directly against the stored polynomial");
    }
    let case_ids: HashSet<[u8; 16]> = full.items.iter().map(|i| i.voucher_id).collect();
    let synthetic: Vec<String> =
        opened.iter().filter(|o| !case_ids.contains(&o.voucher_id)).map(|o| hex::encode(&o.voucher_id[..4])).collect();
    println!(
        "      case #{} ({}), {} real item(s) (new ones listed below); synthetic vouchers identified and discarded: {} [{}]",
        case.id.0,
        case.status.as_str(),
        full.items.len(),
        synthetic.len(),
        synthetic.join(", ")
    );
    let mut shown_thumb = false;
    for item in &full.items {
        if !printed.insert(item.voucher_id) {
            continue;
        }
        let Ok(ad) = AssociatedData::decode(&item.ad) else {
            println!("      item {}: associated data does not decode", hex::encode(&item.voucher_id[..4]));
            continue;
        };
        let check = match vouchsafe_server::second_hash_check(&item.ad, cfg, table, gov.chain()) {
            Ok(_) => "second-hash check passed (against the indicator's secondary hash in the release)".to_owned(),
            Err(f) => format!("second-hash check FAILED ({f:?})"),
        };
        let centre = pics
            .iter()
            .take(INDICATORS)
            .find(|p| p.primary == ad.primary().to_canonical_bytes())
            .and_then(|p| ad.secondary_distance(&p.hashes.secondary).ok())
            .map(|d| {
                format!(", secondary distance to the indicator {d}/256 (≤ {} confirms)", cfg.secondary_max_distance())
            })
            .unwrap_or_default();
        {
            println!(
                "      item {}: attachment {}, sent {}, {}x{} px, {check}{centre}",
                hex::encode(&item.voucher_id[..4]),
                ref_text(ad.attachment_ref()),
                utc(ad.time()),
                ad.source_width(),
                ad.source_height()
            );
        }
        if !shown_thumb && first_time {
            println!("      visual derivative of this item, as the reviewer sees it:");
            let thumb = ad.derivative().to_gray_image().map_err(|e| CliError::runtime(format!("demo: {e}")))?;
            for line in crate::ascii::render(&thumb, 48) {
                println!("        |{line}|");
            }
            shown_thumb = true;
        }
    }
    Ok(())
}
