//! `vouchsafe centre …`: the Centre's key, its indicator database (imports from named sources, with provenance)
//! and its signed releases. Wiring only: the admission rule, the release format, signatures and the chain are
//! `vouchsafe-release`; files go through `vouchsafe-files` (mode 0600, never overwritten in place except the
//! database, which is replaced atomically).
//!
//! Files:
//! * secret key `vouchsafe-centre-key v1` / public key `vouchsafe-centre-public-key v1` (text, like the authority's);
//! * the database: `CentreDb::encode` (binary, versioned; it holds the sources' references: it never leaves the
//!   Centre);
//! * releases: `<dir>/<line>-<number, 6 digits>.bin`, each a `SignedRelease` encoding;
//! * the intake (`centre serve | stats | feedback`): `centre.toml` and the `vouchsafe-centre` crate
//!   (`docs/CENTRE.md`); `centre flag` appends what it marked, when and why to `<db>.flags` (mode 0600).

use std::path::{Path, PathBuf};

use vouchsafe_centre::CentreConfig;
use vouchsafe_phash::HashConfig;
use vouchsafe_release::{
    CentreDb, CentreKey, CentreSigningKey, ImportEntry, ReleaseChain, SignedRelease, SourceId, VerifiedRelease,
};
use zeroize::Zeroizing;

use crate::error::{CliError, Result};
use crate::keyfile::{now_secs, parse_key_text, pub_path, read_limited, write_new};

const SECRET_HEADER: &str = "vouchsafe-centre-key v1";
const PUBLIC_HEADER: &str = "vouchsafe-centre-public-key v1";

fn load_signing_key(path: &Path) -> Result<CentreSigningKey> {
    let text = read_limited(path, "centre key")?;
    let secret = parse_key_text(&text, SECRET_HEADER, "centre key", path)?;
    Ok(CentreSigningKey::from_bytes(&secret))
}

pub(crate) fn load_public_key(path: &Path) -> Result<CentreKey> {
    let text = read_limited(path, "centre public key")?;
    let bytes = parse_key_text(&text, PUBLIC_HEADER, "centre public key", path)?;
    CentreKey::from_bytes(&bytes).map_err(|e| CliError::usage(format!("centre public key {}: {e}", path.display())))
}

/// `vouchsafe centre keygen --out FILE`: a fresh Ed25519 key (mode 0600) and FILE.pub; prints the public key in the
/// hex form `vouchsafe authority issue --centre-key` takes.
pub fn keygen(out: &Path) -> Result<()> {
    let key = CentreSigningKey::generate(&mut crate::cmd::os_rng()?);
    let pub_file = pub_path(out);
    if std::fs::symlink_metadata(&pub_file).is_ok() {
        return Err(CliError::usage(format!("centre keygen: {} exists; refusing to overwrite it", pub_file.display())));
    }
    let secret = key.to_bytes();
    let text = Zeroizing::new(format!("{SECRET_HEADER}\n{}\n", hex::encode(&secret[..])));
    write_new(out, text.as_bytes(), "centre keygen: key file")?;
    let public = key.public();
    write_new(
        &pub_file,
        format!("{PUBLIC_HEADER}\n{}\n", hex::encode(public.to_bytes())).as_bytes(),
        "centre keygen: public key file",
    )?;
    println!("centre key id {}", hex::encode(public.key_id()));
    println!("  public key {} (for `authority issue --centre-key`)", hex::encode(public.to_bytes()));
    println!("  secret key: {} (mode 0600); public key file: {}", out.display(), pub_file.display());
    Ok(())
}

fn load_db(path: &Path, hash_config: u16) -> Result<CentreDb> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(CentreDb::new(hash_config)),
        _ => {
            let bytes = read_limited(path, "centre database")?;
            CentreDb::decode(&bytes).map_err(|e| CliError::usage(format!("centre database {}: {e}", path.display())))
        }
    }
}

fn save_db(path: &Path, db: &CentreDb) -> Result<()> {
    vouchsafe_files::write_secret(path, &Zeroizing::new(db.encode()))
        .map_err(|e| CliError::runtime(format!("centre database {}: {}", path.display(), e.kind())))
}

/// Reads a source's list: `primary-hex secondary-hex reference` per line (blank lines and `#` comments ignored).
fn read_list(path: &Path) -> Result<Vec<ImportEntry>> {
    let bytes = read_limited(path, "indicator list")?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| CliError::usage(format!("indicator list {}: not UTF-8", path.display())))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = || {
            CliError::usage(format!(
                "indicator list {} line {}: expected `primary-hex secondary-hex reference`",
                path.display(),
                i + 1
            ))
        };
        let mut parts = line.splitn(3, char::is_whitespace);
        let (Some(p), Some(s), Some(r)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad());
        };
        let primary = hex::decode(p).map_err(|_| bad())?;
        let secondary = hex::decode(s).map_err(|_| bad())?;
        out.push(ImportEntry { primary, secondary, reference: r.trim().to_owned() });
    }
    Ok(out)
}

/// The reference of the variant `rendering` of an image referenced `reference`: `<reference>#<rendering>`, the
/// image's part cut (on a character boundary) so that the whole fits the 128 bytes of a reference.
pub fn variant_reference(reference: &str, rendering: &str) -> String {
    let room = vouchsafe_release::labels::MAX_REFERENCE_LEN.saturating_sub(rendering.len() + 1);
    let mut cut = reference.len().min(room);
    while !reference.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}#{rendering}", reference.get(..cut).unwrap_or(""))
}

/// Hashes every regular file of `dir` (sorted by name) as an image under `cfg`; the reference is the file name.
/// With `variants`, each image also gives the entries of its Centre-side variants ([`vouchsafe_phash::variants`]),
/// referenced [`variant_reference`], with the image's secondary hash; a variant whose primary hash is another
/// image's of the list, an earlier variant's, or a record of `db` with another secondary hash is left out (the first
/// attestation of a hash wins, and an image's own hash always beats a rendering). Returns the entries, the number of them that are variants, and
/// the number of variants left out.
fn hash_dir(
    dir: &Path,
    cfg: &HashConfig,
    variants: vouchsafe_phash::variants::VariantSet,
    db: &CentreDb,
) -> Result<(Vec<ImportEntry>, usize, usize)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| CliError::usage(format!("images {}: {}", dir.display(), e.kind())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let mut out = Vec::with_capacity(files.len());
    let mut rendered: Vec<ImportEntry> = Vec::new();
    let progress = crate::demo::bar(files.len() as u64, "hashing images");
    for f in files {
        let bad = |e: vouchsafe_phash::PhashError| CliError::usage(format!("image {}: {e}", f.display()));
        let img = vouchsafe_phash::read_image_file(&f).map_err(bad)?;
        let h = vouchsafe_phash::hash_image(cfg, &img).map_err(bad)?;
        let reference = f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        // A variant carries the image's own secondary hash: the check after the threshold then compares a copy
        // with the image, as it does for a match of the image's own primary hash.
        let secondary = h.secondary.to_canonical_bytes();
        for (name, v) in vouchsafe_phash::variants::variant_hashes(cfg, &img, &h, variants).map_err(bad)? {
            rendered.push(ImportEntry {
                primary: v.primary.to_canonical_bytes(),
                secondary: secondary.clone(),
                reference: variant_reference(&reference, name),
            });
        }
        out.push(ImportEntry {
            primary: h.primary.to_canonical_bytes(),
            secondary: h.secondary.to_canonical_bytes(),
            reference,
        });
        progress.inc(1);
    }
    progress.finish_and_clear();
    let mut taken: std::collections::BTreeSet<Vec<u8>> = out.iter().map(|e| e.primary.clone()).collect();
    let (mut added, mut left_out) = (0, 0);
    for e in rendered {
        let conflicts = db.get(&e.primary).is_some_and(|rec| rec.secondary != e.secondary);
        if conflicts || !taken.insert(e.primary.clone()) {
            left_out += 1;
            continue;
        }
        out.push(e);
        added += 1;
    }
    Ok((out, added, left_out))
}

/// `vouchsafe centre import --db DB --source NAME (--list FILE | --images DIR)`: adds one source's attestations.
pub fn import(
    db_path: &Path,
    source: &str,
    list: Option<&Path>,
    images: Option<&Path>,
    hash_config: Option<u16>,
    variants: Option<&str>,
) -> Result<()> {
    if variants.is_some() && images.is_none() {
        return Err(CliError::usage("centre import: --variants needs --images (a list has no images to render)"));
    }
    let variants = match variants {
        None => vouchsafe_phash::variants::VariantSet::default(),
        Some(v) => vouchsafe_phash::variants::VariantSet::by_name(v).ok_or_else(|| {
            CliError::usage(format!(
                "centre import: --variants {v:?}: expected one of {}",
                vouchsafe_phash::variants::VariantSet::NAMES
            ))
        })?,
    };
    let source = SourceId::new(source).map_err(|e| CliError::usage(format!("centre import: --source: {e}")))?;
    let fresh = hash_config.unwrap_or(HashConfig::RECOMMENDED.id());
    let mut db = load_db(db_path, crate::cmd::hash_config("centre import --hash-config", fresh)?.id())?;
    if let Some(id) = hash_config
        && id != db.hash_config()
    {
        return Err(CliError::usage(format!(
            "centre import: --hash-config {id}: the database {} holds hash configuration {}",
            db_path.display(),
            db.hash_config()
        )));
    }
    let cfg = crate::cmd::hash_config("centre import: the database's", db.hash_config())?;
    let (entries, variant_entries, variants_left_out) = match (list, images) {
        (Some(l), None) => (read_list(l)?, 0, 0),
        (None, Some(d)) => hash_dir(d, &cfg, variants, &db)?,
        _ => return Err(CliError::usage("centre import: give --list or --images")),
    };
    let report = db.import(&source, cfg.id(), &entries).map_err(|e| CliError::usage(format!("centre import: {e}")))?;
    save_db(db_path, &db)?;
    println!(
        "source {}: {} entries, {} new indicators, {} new attestations, {} unchanged; {} indicators in the database",
        source.as_str(),
        entries.len(),
        report.new_indicators,
        report.new_attestations,
        report.unchanged,
        db.len()
    );
    if images.is_some() {
        println!(
            "  variants ({}): {} of the entries are renderings (`<file>#<rendering>`){}",
            variants.name(),
            variant_entries,
            if variants_left_out > 0 {
                format!(", {variants_left_out} left out (their hash is another image's or an earlier rendering's)")
            } else {
                String::new()
            }
        );
    }
    Ok(())
}

fn release_path(dir: &Path, line: &str, number: u64) -> PathBuf {
    dir.join(format!("{line}-{number:06}.bin"))
}

/// Verifies the releases of `line` in `dir` (`line-000001.bin`, …, consecutive from 1) under `key` into a chain.
fn load_chain(dir: &Path, line: &str, key: &CentreKey) -> Result<Option<ReleaseChain>> {
    let mut chain: Option<ReleaseChain> = None;
    for number in 1u64.. {
        let path = release_path(dir, line, number);
        if std::fs::symlink_metadata(&path).is_err() {
            break;
        }
        let verified = verify_file(&path, key)?;
        match chain.as_mut() {
            None => {
                chain = Some(
                    ReleaseChain::new(&verified)
                        .map_err(|e| CliError::runtime(format!("release {}: {e}", path.display())))?,
                );
            }
            Some(c) => c.apply(&verified).map_err(|e| CliError::runtime(format!("release {}: {e}", path.display())))?,
        }
    }
    Ok(chain)
}

fn verify_file(path: &Path, key: &CentreKey) -> Result<VerifiedRelease> {
    let bytes = read_limited(path, "release")?;
    let signed =
        SignedRelease::decode(&bytes).map_err(|e| CliError::runtime(format!("release {}: {e}", path.display())))?;
    signed.verify(key).map_err(|e| CliError::runtime(format!("release {}: {e}", path.display())))
}

/// `vouchsafe centre release --db DB --key KEY --line L --dir DIR [--min-sources N] [--remove FILE]`: signs the
/// next release of a line: every indicator attested by at least N distinct sources and not yet released, and the
/// removal of the false positives listed in FILE (hex primaries), which are marked so that they never return, and of
/// every indicator of the line already marked (`vouchsafe centre flag`).
pub fn release(
    db_path: &Path,
    key: &Path,
    line: &str,
    dir: &Path,
    min_sources: u8,
    remove: Option<&Path>,
) -> Result<()> {
    let key = load_signing_key(key)?;
    let mut db = load_db(db_path, HashConfig::RECOMMENDED.id())?;
    let chain = load_chain(dir, line, &key.public())?;
    let mut removals = Vec::new();
    if let Some(r) = remove {
        let bytes = read_limited(r, "removal list")?;
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| CliError::usage(format!("removal list {}: not UTF-8", r.display())))?;
        for (i, l) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty() && !l.trim().starts_with('#')) {
            let p = hex::decode(l.trim())
                .map_err(|_| CliError::usage(format!("removal list {} line {}: expected hex", r.display(), i + 1)))?;
            db.mark_false_positive(&p).map_err(|e| CliError::usage(format!("centre release: {e}")))?;
            // Its Centre-side variants go with it (they are marked here and removed below if the line holds them).
            for v in variants_of(&db, &p) {
                db.mark_false_positive(&v).map_err(|e| CliError::usage(format!("centre release: {e}")))?;
            }
            removals.push(p);
        }
    }
    // Every indicator flagged a false positive (`centre flag`, or an earlier --remove) that the line still holds
    // leaves it in this release.
    if let Some(c) = chain.as_ref() {
        let flagged: Vec<Vec<u8>> = db
            .false_positives()
            .filter(|p| c.contains(p) && !removals.iter().any(|r| r == p))
            .map(<[u8]>::to_vec)
            .collect();
        removals.extend(flagged);
    }
    let next = db
        .next_release(line, chain.as_ref(), min_sources, now_secs()?, &removals)
        .map_err(|e| CliError::usage(format!("centre release: {e}")))?;
    let signed = key.sign(&next.release);
    let verified = signed.verify(&key.public()).map_err(|e| CliError::runtime(format!("centre release: {e}")))?;
    let record = key.sign_record(&verified).map_err(|e| CliError::runtime(format!("centre release: {e}")))?;
    let out = release_path(dir, line, next.release.number());
    let record_out = out.with_extension("record");
    vouchsafe_files::create_private_dir(dir)
        .map_err(|e| CliError::runtime(format!("releases {}: {}", dir.display(), e.kind())))?;
    if std::fs::symlink_metadata(&record_out).is_ok() {
        return Err(CliError::usage(format!(
            "centre release: {} exists; refusing to overwrite it",
            record_out.display()
        )));
    }
    write_new(&out, &signed.encode(), "centre release: release file")?;
    // The public record (no indicator in it) is what the provider's transparency log holds.
    write_new(&record_out, &record.encode(), "centre release: release record")?;
    // The false-positive marks are kept only once the release that removes them exists.
    save_db(db_path, &db)?;
    println!("release {} #{} (min {} sources): {}", line, next.release.number(), next.report.min_sources, next.report);
    println!("  written to {} (indicators: Centre and provider only)", out.display());
    println!("  public record {} (what the transparency log publishes)", record_out.display());
    Ok(())
}

/// `vouchsafe centre show --centre PUB --line L --dir DIR`: verifies the whole chain of a line and summarises it.
pub fn show(public: &Path, line: &str, dir: &Path) -> Result<()> {
    let key = load_public_key(public)?;
    let chain = load_chain(dir, line, &key)?
        .ok_or_else(|| CliError::runtime(format!("no release of line {line} in {}", dir.display())))?;
    println!("line {line}: {} releases verified under centre key {}", chain.number(), hex::encode(key.key_id()));
    println!("  indicators: {}; min sources of the last release: {}", chain.len(), chain.min_sources());
    println!("  head hash: {}; created at {} (Unix seconds)", hex::encode(chain.head()), chain.created_at());
    Ok(())
}

fn load_config(path: &Path) -> Result<CentreConfig> {
    CentreConfig::load(path).map_err(|e| CliError::usage(format!("centre: {e}")))
}

fn centre_err(what: &str) -> impl FnOnce(vouchsafe_centre::CentreError) -> CliError + '_ {
    move |e| {
        use vouchsafe_centre::CentreError as E;
        match e {
            E::Config { .. } | E::Io { .. } | E::Evidence { .. } => CliError::usage(format!("{what}: {e}")),
            _ => CliError::runtime(format!("{what}: {e}")),
        }
    }
}

/// `vouchsafe centre serve --config FILE`: load, start, print the bound address, run until SIGTERM/SIGINT, shut
/// down gracefully (finishing the deliveries in flight).
pub async fn serve(config_path: &Path) -> Result<()> {
    let config = load_config(config_path)?;
    vouchsafe_server::init_tracing(false);
    let centre = vouchsafe_centre::start(config).await.map_err(centre_err("centre serve"))?;
    {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "centre listening on {}", centre.local_addr());
        let _ = out.flush();
    }
    vouchsafe_centre::termination_signal().await;
    centre.shutdown().await.map_err(centre_err("centre serve: shutdown"))
}

/// `vouchsafe centre stats --config FILE [--json]`.
pub fn stats(config_path: &Path, json: bool) -> Result<()> {
    let config = load_config(config_path)?;
    let s = vouchsafe_centre::stats(&config).map_err(centre_err("centre stats"))?;
    if json {
        let text = serde_json::to_string_pretty(&s).map_err(|_| CliError::runtime("centre stats: JSON"))?;
        println!("{text}");
        return Ok(());
    }
    let line = |name: &str, p: &vouchsafe_centre::ProviderStats| {
        println!(
            "{name}: {} reports ({} urgent): {} forwarded, {} manifest false positives; {} withdrawals ({} of \
             forwarded reports); {} feedback messages",
            p.reports,
            p.urgent,
            p.forwarded,
            p.false_positives,
            p.withdrawals,
            p.withdrawals_of_forwarded,
            p.feedback_messages
        )
    };
    println!("intake database {}", config.database.display());
    line("all providers", &s.total);
    for (name, p) in &s.providers {
        line(&format!("  {name}"), p);
    }
    println!(
        "feedback: {} indicators, {} second-hash drops, {} review rejections",
        s.feedback_indicators, s.second_hash_drops, s.review_rejections
    );
    Ok(())
}

/// `vouchsafe centre feedback --config FILE [--min N] [--out FILE]`.
pub fn feedback(config_path: &Path, min: u64, out: Option<&Path>) -> Result<()> {
    let config = load_config(config_path)?;
    let rows = vouchsafe_centre::indicator_feedback(&config).map_err(centre_err("centre feedback"))?;
    println!("{} indicators with feedback (all providers, latest counts)", rows.len());
    for r in &rows {
        println!(
            "  {} drops {} rejections {} providers {}{}",
            hex::encode(&r.primary),
            r.second_hash_drops,
            r.review_rejections,
            r.providers,
            if r.proposed(min) { "  PROPOSED FOR REMOVAL" } else { "" }
        );
    }
    let proposals = vouchsafe_centre::removal_proposals(&rows, min);
    println!("{} removal proposals (a second-hash drop, or at least {min} review rejections)", proposals.len());
    if let Some(path) = out {
        let mut text = format!(
            "# vouchsafe centre feedback: removal proposals (second-hash drops >= 1 or review rejections >= {min})\n\
             # one primary hash (hex) per line; review, then `vouchsafe centre release --remove {}`\n",
            path.display()
        );
        for p in &proposals {
            text.push_str(&hex::encode(p));
            text.push('\n');
        }
        write_new(path, text.as_bytes(), "centre feedback: --out")?;
        println!("  written to {}", path.display());
    }
    Ok(())
}

/// `vouchsafe centre flag --db DB --primary HEX [--reason TEXT]`: marks an indicator a false positive, so that a
/// report naming it is a manifest false positive and the line's next release removes it.
pub fn flag(db_path: &Path, primary: &str, reason: Option<&str>) -> Result<()> {
    let p = hex::decode(primary.trim()).map_err(|_| CliError::usage("centre flag: --primary: expected hex"))?;
    let reason = reason.unwrap_or("");
    if reason.len() > vouchsafe_case::MAX_TEXT || reason.chars().any(char::is_control) {
        return Err(CliError::usage(format!(
            "centre flag: --reason: at most {} bytes, no control characters",
            vouchsafe_case::MAX_TEXT
        )));
    }
    if std::fs::symlink_metadata(db_path).is_err() {
        return Err(CliError::usage(format!("centre flag: database {} does not exist", db_path.display())));
    }
    let mut db = load_db(db_path, HashConfig::RECOMMENDED.id())?;
    let new = db.mark_false_positive(&p).map_err(|e| CliError::usage(format!("centre flag: {e}")))?;
    // The Centre-side variants of the flagged image go with it: they are renderings of the same picture.
    let variants = variants_of(&db, &p);
    let mut newly_variants = Vec::new();
    for v in &variants {
        if db.mark_false_positive(v).map_err(|e| CliError::usage(format!("centre flag: {e}")))? {
            newly_variants.push(v.clone());
        }
    }
    if new || !newly_variants.is_empty() {
        if new {
            append_flag_log(db_path, &p, reason)?;
        }
        for v in &newly_variants {
            append_flag_log(db_path, v, reason)?;
        }
        save_db(db_path, &db)?;
    }
    if new {
        println!("indicator {} marked a false positive", vouchsafe_centre::indicator_name(&p));
    } else {
        println!("indicator {} was already marked a false positive", vouchsafe_centre::indicator_name(&p));
    }
    if !variants.is_empty() {
        println!("  with its {} Centre-side variant(s) ({} newly marked)", variants.len(), newly_variants.len());
    }
    println!("  reports naming it are manifest false positives; the next `centre release` of its line removes it");
    Ok(())
}

/// The primary hashes of the Centre-side variants of the indicator `primary`: records attested by one of its sources
/// under the [`variant_reference`] of that source's reference for it (sorted, without `primary` itself).
fn variants_of(db: &CentreDb, primary: &[u8]) -> Vec<Vec<u8>> {
    use vouchsafe_phash::variants::{GENERIC, PIPELINES};
    let Some(rec) = db.get(primary) else { return Vec::new() };
    let wanted: std::collections::BTreeSet<(String, String)> = rec
        .attestations
        .iter()
        .flat_map(|a| {
            PIPELINES
                .iter()
                .chain(GENERIC)
                .map(move |r| (a.source().as_str().to_owned(), variant_reference(a.reference(), r.name)))
        })
        .collect();
    db.records()
        .filter(|other| other.primary.as_slice() != primary)
        .filter(|other| {
            other
                .attestations
                .iter()
                .any(|a| wanted.contains(&(a.source().as_str().to_owned(), a.reference().to_owned())))
        })
        .map(|other| other.primary.clone())
        .collect()
}

/// Appends `unix-seconds primary-hex reason` to `<db>.flags` (created with mode 0600).
fn append_flag_log(db_path: &Path, primary: &[u8], reason: &str) -> Result<()> {
    use std::io::Write as _;
    let mut path = db_path.as_os_str().to_owned();
    path.push(".flags");
    let path = PathBuf::from(path);
    let mut o = std::fs::OpenOptions::new();
    o.append(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    let line = format!("{} {} {reason}\n", now_secs()?, hex::encode(primary));
    o.open(&path)
        .and_then(|mut f| f.write_all(line.as_bytes()).and_then(|()| f.sync_all()))
        .map_err(|e| CliError::runtime(format!("centre flag: {}: {}", path.display(), e.kind())))
}
