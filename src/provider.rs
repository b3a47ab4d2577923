//! `vouchsafe table keygen | build | update` and `vouchsafe log keygen`: the provider's table-signing key, tables
//! built only from the Centre's release chain verified under the order's Centre key and line, manifests signed with
//! the order's table key, and the transparency log's key. Wiring only: the checks are `vouchsafe-server`'s.
//!
//! Files:
//! * table key: secret `vouchsafe-table-key v1\n<64 hex>\n` (mode 0600), public `vouchsafe-table-public-key v1`;
//! * log key: `LogSigningKey::to_private_key()` and a newline (mode 0600), FILE.pub the verifier key and a newline;
//! * the table file (contains α, mode 0600) and beside it `<table>.manifest`, the signed manifest.

use std::path::Path;

use vouchsafe_log::LogSigningKey;
use vouchsafe_orders::TableSigningKey;
use vouchsafe_server::governance::{TABLE_KEY_HEADER, TABLE_PUBLIC_KEY_HEADER, load_table_key};
use vouchsafe_server::{Governance, ServerConfig};
use zeroize::Zeroizing;

use crate::cmd::os_rng;
use crate::error::{CliError, Result};
use crate::keyfile::{now_secs, pub_path, write_new};

fn refuse_existing(path: &Path, what: &str) -> Result<()> {
    if std::fs::symlink_metadata(path).is_ok() {
        return Err(CliError::usage(format!("{what}: {} exists; refusing to overwrite it", path.display())));
    }
    Ok(())
}

/// `vouchsafe table keygen --out FILE`: the provider's table-signing key (FILE, mode 0600) and FILE.pub; prints the
/// public key in the hex form `vouchsafe authority issue --table-key` takes.
pub fn table_keygen(out: &Path) -> Result<()> {
    let key = TableSigningKey::generate(&mut os_rng()?);
    let pub_file = pub_path(out);
    refuse_existing(&pub_file, "table keygen")?;
    let secret = vouchsafe_files::key_text(TABLE_KEY_HEADER, &key.to_secret_bytes());
    write_new(out, secret.as_bytes(), "table keygen: key file")?;
    let public = vouchsafe_files::key_text(TABLE_PUBLIC_KEY_HEADER, &key.public_key());
    write_new(&pub_file, public.as_bytes(), "table keygen: public key file")?;
    println!("table key {} (for `authority issue --table-key`)", hex::encode(key.public_key()));
    println!("  secret key: {} (mode 0600); public key file: {}", out.display(), pub_file.display());
    Ok(())
}

/// `vouchsafe provider keygen --out FILE`: the provider's report-signing key (FILE, mode 0600) and FILE.pub, the
/// public key the Centre pins in its `[[providers]]` (docs/CENTRE.md) and auditors use for transparency reports.
pub fn provider_keygen(out: &Path) -> Result<()> {
    let key = vouchsafe_case::ProviderSigningKey::generate(&mut os_rng()?);
    let pub_file = pub_path(out);
    refuse_existing(&pub_file, "provider keygen")?;
    let secret = vouchsafe_files::key_text(vouchsafe_server::PROVIDER_KEY_HEADER, &key.to_secret_bytes());
    write_new(out, secret.as_bytes(), "provider keygen: key file")?;
    let public = key.public();
    let text = vouchsafe_files::key_text(vouchsafe_server::PROVIDER_PUBLIC_KEY_HEADER, &public.to_bytes());
    write_new(&pub_file, text.as_bytes(), "provider keygen: public key file")?;
    println!("provider key id {} (public key {})", hex::encode(public.key_id()), hex::encode(public.to_bytes()));
    println!("  secret key: {} (mode 0600); public key file for the Centre: {}", out.display(), pub_file.display());
    Ok(())
}

/// Reads a provider public key file (`provider keygen`'s FILE.pub). Messages name the file, never its content.
pub fn load_public_key(path: &Path) -> Result<vouchsafe_case::ProviderKey> {
    let what = "provider public key";
    let text = crate::keyfile::read_limited(path, what)?;
    let bytes = crate::keyfile::parse_key_text(&text, vouchsafe_server::PROVIDER_PUBLIC_KEY_HEADER, what, path)?;
    vouchsafe_case::ProviderKey::from_bytes(&bytes)
        .map_err(|e| CliError::usage(format!("{what} {}: {e}", path.display())))
}

/// `vouchsafe log keygen --origin NAME --out FILE`: the transparency log's signing key; FILE.pub holds the
/// verifier key that apps and witnesses pin.
pub fn log_keygen(origin: &str, out: &Path) -> Result<()> {
    let key = LogSigningKey::generate(origin, &mut os_rng()?)
        .map_err(|e| CliError::usage(format!("log keygen: --origin: {e}")))?;
    let pub_file = pub_path(out);
    refuse_existing(&pub_file, "log keygen")?;
    let secret = Zeroizing::new(format!("{}\n", &*key.to_private_key()));
    write_new(out, secret.as_bytes(), "log keygen: key file")?;
    write_new(&pub_file, format!("{}\n", key.verifier()).as_bytes(), "log keygen: public key file")?;
    println!("log {origin}: verifier key {}", key.verifier());
    println!("  secret key: {} (mode 0600); public key file: {}", out.display(), pub_file.display());
    Ok(())
}

fn governance(config: &ServerConfig, release_dir: Option<&Path>, context: &str) -> Result<Governance> {
    match release_dir {
        Some(d) => Governance::load_with_releases(config, d),
        None => Governance::load(config),
    }
    .map_err(|e| CliError::from_server(context, e))
}

/// `vouchsafe table build --config FILE [--release-dir DIR]`: verifies the signed order and the Centre release chain
/// of its line (under its Centre key), builds the table of the newest release with a fresh blinding key, signs the
/// manifest with the table key (which must be the order's) and writes the table file and `<table>.manifest`.
pub fn table_build(config_path: &Path, release_dir: Option<&Path>) -> Result<()> {
    let err = |e| CliError::from_server("table build", e);
    let config = ServerConfig::load(config_path).map_err(err)?;
    let gov = governance(&config, release_dir, "table build")?;
    let key = load_table_key(&config, gov.order()).map_err(err)?;
    let n = gov.chain().len();
    let bar = indicatif::ProgressBar::new_spinner().with_message(format!("blinding {n} indicators"));
    bar.enable_steady_tick(std::time::Duration::from_millis(100));
    let mut rng = os_rng()?;
    let built = vouchsafe_server::build_table(&config, &gov, &key, now_secs()?, &mut rng);
    bar.finish_and_clear();
    let (table, manifest) = built.map_err(err)?;
    vouchsafe_server::save_table(&config.table, &table).map_err(err)?;
    vouchsafe_server::save_manifest(&config.manifest_path(), &manifest).map_err(err)?;
    println!(
        "table written to {}: release {} of line {} ({} indicators), {} slots, epoch {}, version {}, root {}",
        config.table.display(),
        gov.chain().number(),
        gov.chain().line(),
        table.indicator_count(),
        table.params().slot_count,
        table.params().epoch,
        table.version(),
        hex::encode(table.manifest().root())
    );
    println!("signed manifest written to {}", config.manifest_path().display());
    println!("the table file contains the blinding key: keep it private (mode 0600)");
    Ok(())
}

/// `vouchsafe table update --config FILE [--release-dir DIR]`: brings the table from the release its signed manifest
/// names to the newest release of the verified chain (additions and removals between them), appends the change to
/// the update history, saves the table and signs the new manifest.
pub fn table_update(config_path: &Path, release_dir: Option<&Path>) -> Result<()> {
    let err = |e| CliError::from_server("table update", e);
    let config = ServerConfig::load(config_path).map_err(err)?;
    let Some(history) = config.table_updates.clone() else {
        return Err(CliError::usage(
            "table update: `table_updates` is not set in the configuration; without an update history clients \
             could only download the whole table again",
        ));
    };
    let gov = governance(&config, release_dir, "table update")?;
    let key = load_table_key(&config, gov.order()).map_err(err)?;
    let mut table = vouchsafe_server::load_table(&config.table).map_err(err)?;
    gov.check_table(&config, &table).map_err(err)?;
    let current = vouchsafe_server::load_manifest(&config.manifest_path()).map_err(err)?;
    let from = table.version();
    let mut rng = os_rng()?;
    let out = vouchsafe_server::update_table(&gov, &key, &mut table, &current, now_secs()?, &mut rng).map_err(err)?;
    // The history first: if saving the table then fails, the server ignores a history record ahead of the table
    // file, and the next update supersedes it.
    vouchsafe_server::append_update(&history, &out.update).map_err(err)?;
    vouchsafe_server::save_table(&config.table, &table).map_err(err)?;
    vouchsafe_server::save_manifest(&config.manifest_path(), &out.manifest).map_err(err)?;
    println!(
        "table {} updated from version {from} (release {}) to {} (release {}): {} added, {} removed, {} indicators, \
         {} slots changed ({} bytes of update), root {}",
        config.table.display(),
        out.from_release,
        table.version(),
        out.to_release,
        out.added,
        out.removed,
        table.indicator_count(),
        out.update.changes.len(),
        out.update.encode().len(),
        hex::encode(table.manifest().root())
    );
    println!("send SIGHUP to `vouchsafe serve` (or restart it) to serve the new version");
    Ok(())
}
