//! The table of the current epoch: building it for the operator, the secret table file, the update history file,
//! and the served view (manifest cached, updates composed on request).

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::Path;

use rand_core::CryptoRng;
use vouchsafe_protocol::table::{BlindingKey, ServerTable, TableManifest, TableUpdate};

use vouchsafe_orders::{ManifestStatement, SignedManifest, TableSigningKey};

use crate::config::ServerConfig;
use crate::error::{Result, ServerError};
use crate::governance::Governance;

/// Largest update record accepted from the history file (64 MiB).
const MAX_UPDATE_RECORD: usize = 64 * 1024 * 1024;

/// Builds the blinded table of the verified order from the newest release of its verified chain (primary hashes
/// only) with a fresh blinding key α, and signs its manifest with the table key (which must be the order's): the
/// only way this crate makes a table. `now` is the statement's `issued_at`. The caller persists both with
/// [`save_table`] and [`save_manifest`](crate::governance::save_manifest).
pub fn build_table<R: CryptoRng + ?Sized>(
    config: &ServerConfig,
    gov: &Governance,
    key: &TableSigningKey,
    now: i64,
    rng: &mut R,
) -> Result<(ServerTable, SignedManifest)> {
    config.validate()?;
    let chain = gov.chain();
    let indicators: Vec<Vec<u8>> = chain.indicators().map(|i| i.primary.to_vec()).collect();
    let alpha = BlindingKey::random(rng);
    let table = ServerTable::build(&config.table_config(gov.order()), alpha, indicators, rng)?;
    let manifest = sign_manifest(gov, key, &table, chain.number(), chain.head(), now)?;
    Ok((table, manifest))
}

fn sign_manifest(
    gov: &Governance,
    key: &TableSigningKey,
    table: &ServerTable,
    release_number: u64,
    release_hash: [u8; 32],
    now: i64,
) -> Result<SignedManifest> {
    let order = gov.order();
    let statement = ManifestStatement {
        order_id: *order.order_id(),
        order_hash: order.signed().hash(),
        release_number,
        release_hash,
        issued_at: now,
        table_manifest: table.manifest().encode(),
    };
    key.sign_manifest(order, statement).map_err(|e| ServerError::governance("table key", e))
}

/// What [`update_table`] changed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct UpdateOutcome {
    /// The update to append to the history.
    pub update: TableUpdate,
    /// The signed manifest of the new version.
    pub manifest: SignedManifest,
    /// The release the table was built from before.
    pub from_release: u64,
    /// The release it holds now (the chain's newest).
    pub to_release: u64,
    /// Indicators added.
    pub added: usize,
    /// Indicators removed.
    pub removed: usize,
}

/// Brings `table` from the release its signed manifest `current` names to the newest release of the verified
/// chain: checks `current` against the table first ([`Governance::check_manifest`]), adds the indicators of the
/// newest release that the old one lacks and removes those it no longer has, and signs the new version's
/// manifest. Refused if the table already holds the newest release. On an error nothing may be saved.
pub fn update_table<R: CryptoRng + ?Sized>(
    gov: &Governance,
    key: &TableSigningKey,
    table: &mut ServerTable,
    current: &SignedManifest,
    now: i64,
    rng: &mut R,
) -> Result<UpdateOutcome> {
    let verified = gov.check_manifest(table, current)?;
    let from_release = verified.statement().release_number;
    let head = gov.chain();
    if from_release >= head.number() {
        return Err(ServerError::governance(
            "table update",
            format!("the table already holds release {from_release}, the newest of the chain"),
        ));
    }
    let old = gov.chain_at(from_release)?;
    let add: Vec<Vec<u8>> =
        head.indicators().filter(|i| !old.contains(i.primary)).map(|i| i.primary.to_vec()).collect();
    let remove: Vec<Vec<u8>> =
        old.indicators().filter(|i| !head.contains(i.primary)).map(|i| i.primary.to_vec()).collect();
    if key.public_key() != gov.order().table_key().to_bytes() {
        return Err(ServerError::governance("table key", "its public key is not the order's table key"));
    }
    // All or nothing (`ServerTable::update`); the signature cannot fail any more but for a bug, and then the
    // caller saves nothing.
    let update = table.update(add.clone(), &remove, rng)?;
    let manifest = sign_manifest(gov, key, table, head.number(), head.head(), now)?;
    Ok(UpdateOutcome {
        update,
        manifest,
        from_release,
        to_release: head.number(),
        added: add.len(),
        removed: remove.len(),
    })
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> ServerError + use<> {
    let path = path.to_owned();
    move |source| ServerError::Io { what, path, source }
}

/// Writes the secret table file through the project's one hardened secret-file writer (`vouchsafe-files`: mode
/// 0600 from creation, temporary file, fsync, rename, directory fsync, no symlink followed). It contains α: protect
/// it like a private key.
pub fn save_table(path: impl AsRef<Path>, table: &ServerTable) -> Result<()> {
    let path = path.as_ref();
    vouchsafe_files::write_secret(path, &table.to_secret_bytes()).map_err(io("table file", path))
}

/// Reads and checks the secret table file.
pub fn load_table(path: impl AsRef<Path>) -> Result<ServerTable> {
    let path = path.as_ref();
    let mut bytes = zeroize::Zeroizing::new(Vec::new());
    File::open(path).and_then(|mut f| f.read_to_end(&mut bytes)).map_err(io("table file", path))?;
    Ok(ServerTable::from_secret_bytes(&bytes)?)
}

/// Appends one update to the history file (`u32 LE length ‖ TableUpdate::encode()` per record), fsynced.
pub fn append_update(path: impl AsRef<Path>, update: &TableUpdate) -> Result<()> {
    let path = path.as_ref();
    let enc = update.encode();
    let len = u32::try_from(enc.len()).map_err(|_| ServerError::Internal("update too large"))?;
    let mut o = OpenOptions::new();
    o.append(true).create(true);
    let mut f = o.open(path).map_err(io("table update history", path))?;
    f.write_all(&len.to_le_bytes()).map_err(io("table update history", path))?;
    f.write_all(&enc).map_err(io("table update history", path))?;
    f.sync_all().map_err(io("table update history", path))?;
    Ok(())
}

/// Reads the update history file (a missing file is an empty history). A truncated last record (a crash while
/// appending) is ignored; any other malformed record is an error.
pub fn read_updates(path: impl AsRef<Path>) -> Result<Vec<TableUpdate>> {
    let path = path.as_ref();
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io("table update history", path)(e)),
    };
    let mut out = Vec::new();
    let mut rest = bytes.as_slice();
    while let Some((len, tail)) = rest.split_first_chunk::<4>() {
        let len = u32::from_le_bytes(*len) as usize;
        if len > MAX_UPDATE_RECORD {
            return Err(ServerError::TableMismatch { field: "update history record length" });
        }
        let Some((rec, tail)) = tail.split_at_checked(len) else {
            tracing::warn!(path = %path.display(), "ignoring a truncated last record in the table update history");
            break;
        };
        out.push(TableUpdate::decode(rec)?);
        rest = tail;
    }
    Ok(out)
}

/// The outcome of a table reload ([`crate::RunningServer::reload_table`], SIGHUP).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TableReload {
    /// The version served before.
    pub from_version: u64,
    /// The version served now.
    pub to_version: u64,
    /// Indicators in the table served now.
    pub indicators: usize,
    /// Whether the served table changed (false: the files hold the version already served).
    pub changed: bool,
}

/// What the server serves for the current epoch: the table, its manifest (chunk hashes computed once), and the
/// chain of updates that ends at the current version.
pub(crate) struct ServedTable {
    pub(crate) table: ServerTable,
    pub(crate) manifest: TableManifest,
    pub(crate) root: [u8; 32],
    /// The manifest of this version signed with the order's table key (verified before it was served).
    pub(crate) signed_manifest: SignedManifest,
    /// Its leaf index in the transparency log.
    pub(crate) manifest_leaf: u64,
    /// Consecutive updates of this epoch, the last one ending at the current version.
    updates: Vec<TableUpdate>,
}

impl ServedTable {
    pub(crate) fn new(
        table: ServerTable,
        history: Vec<TableUpdate>,
        signed_manifest: SignedManifest,
        manifest_leaf: u64,
    ) -> Self {
        let manifest = table.manifest();
        let root = manifest.root();
        let epoch = table.params().epoch;
        // Keep the longest suffix of consecutive updates of this epoch that ends at the current version.
        let mut chain: Vec<TableUpdate> = Vec::new();
        let mut want_to = table.version();
        for u in history.into_iter().rev() {
            if u.epoch == epoch && u.to_version == want_to && u.from_version < u.to_version {
                want_to = u.from_version;
                chain.push(u);
            } else if u.epoch == epoch && u.to_version > table.version() {
                // History ahead of the table file: ignore (the table file is authoritative).
                continue;
            } else {
                break;
            }
        }
        chain.reverse();
        ServedTable { table, manifest, root, signed_manifest, manifest_leaf, updates: chain }
    }

    pub(crate) fn version(&self) -> u64 {
        self.table.version()
    }

    /// The update from `from` to the current version; `Ok(None)` if `from` is current.
    pub(crate) fn update_from(&self, from: u64) -> Result<Option<TableUpdate>> {
        let current = self.version();
        if from > current {
            return Err(ServerError::VersionAhead { from, current });
        }
        if from == current {
            return Ok(None);
        }
        let unavailable = ServerError::UpdateUnavailable { from, current };
        let Some(start) = self.updates.iter().position(|u| u.from_version == from) else {
            return Err(unavailable);
        };
        let Some((first, rest)) = self.updates.get(start..).and_then(|u| u.split_first()) else {
            return Err(unavailable);
        };
        let mut acc = first.clone();
        for next in rest {
            acc = acc.then(next).map_err(|_| ServerError::UpdateUnavailable { from, current })?;
        }
        if acc.to_version != current {
            return Err(unavailable);
        }
        Ok(Some(acc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// A raw table for the file-format tests (not servable: no signed manifest).
    fn table() -> (ServerConfig, ServerTable, rand_chacha::ChaCha20Rng) {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
        let mut cfg = ServerConfig::in_dir(std::path::Path::new("/nonexistent"));
        cfg.chunk_slots = 8;
        let ind: Vec<Vec<u8>> = (0u32..40).map(|i| i.to_le_bytes().to_vec()).collect();
        let tc = vouchsafe_protocol::table::TableConfig {
            epoch: 1,
            order_id: [9; 16],
            threshold: 3,
            synthetic_cap: 2,
            synthetic_rate: 0,
            ad_len: cfg.order.ad_len,
            chunk_slots: 8,
        };
        let t = ServerTable::build(&tc, BlindingKey::random(&mut rng), ind, &mut rng).unwrap_or_else(|e| panic!("{e}"));
        (cfg, t, rng)
    }

    #[test]
    fn table_file_round_trips_and_matches_config() {
        let (_, t, _) = table();
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let p = dir.path().join("t.secret");
        save_table(&p, &t).unwrap_or_else(|e| panic!("{e}"));
        let back = load_table(&p).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back.slots(), t.slots());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&p).map(|m| m.permissions().mode() & 0o777).unwrap_or(0);
            assert_eq!(mode, 0o600);
        }
    }

    fn dummy_manifest() -> SignedManifest {
        // A syntactically valid signed manifest; these tests do not verify it.
        let mut b = vec![1u8];
        b.extend_from_slice(&[0u8; 64]);
        let st = ManifestStatement {
            order_id: [0; 16],
            order_hash: [0; 32],
            release_number: 1,
            release_hash: [0; 32],
            issued_at: 0,
            table_manifest: vec![1],
        };
        b.extend_from_slice(&st.encode().unwrap_or_else(|e| panic!("{e}")));
        SignedManifest::decode(&b).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn updates_compose_from_any_served_version() {
        let (_, mut t, mut rng) = table();
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let hist = dir.path().join("updates");
        let v1 = t.slots().to_vec();
        for i in 0..3u32 {
            // Tables are built near the cuckoo load limit: remove two for each addition.
            let remove = [(2 * i).to_le_bytes().to_vec(), (2 * i + 1).to_le_bytes().to_vec()];
            let u = t.update(vec![(1000 + i).to_le_bytes().to_vec()], &remove, &mut rng);
            append_update(&hist, &u.unwrap_or_else(|e| panic!("{e}"))).unwrap_or_else(|e| panic!("{e}"));
        }
        let history = read_updates(&hist).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(history.len(), 3);
        let served = ServedTable::new(t, history, dummy_manifest(), 0);
        assert_eq!(served.version(), 4);
        let u = served.update_from(1).unwrap_or_else(|e| panic!("{e}")).unwrap_or_else(|| panic!("no update"));
        let mut slots = v1;
        for (s, p) in &u.changes {
            slots[*s as usize] = *p;
        }
        assert_eq!(slots, served.table.slots());
        assert!(served.update_from(4).unwrap_or_else(|e| panic!("{e}")).is_none());
        assert!(matches!(served.update_from(5), Err(ServerError::VersionAhead { .. })));
        assert!(matches!(served.update_from(0), Err(ServerError::UpdateUnavailable { .. })));
    }

    #[test]
    fn truncated_history_tail_is_ignored() {
        let (_, mut t, mut rng) = table();
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let hist = dir.path().join("updates");
        let u = t
            .update(vec![b"new".to_vec()], &[0u32.to_le_bytes().to_vec(), 1u32.to_le_bytes().to_vec()], &mut rng)
            .unwrap_or_else(|e| panic!("{e}"));
        append_update(&hist, &u).unwrap_or_else(|e| panic!("{e}"));
        let mut f = OpenOptions::new().append(true).open(&hist).unwrap_or_else(|e| panic!("{e}"));
        f.write_all(&[200, 0, 0, 0, 1, 2]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read_updates(&hist).map(|v| v.len()).ok(), Some(1));
    }
}
