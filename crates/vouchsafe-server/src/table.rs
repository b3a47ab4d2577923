//! The table of the current epoch: building it for the operator, the secret table file, the update history file,
//! and the served view (manifest cached, updates composed on request).

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::Path;

use rand_core::CryptoRng;
use vouchsafe_protocol::table::{BlindingKey, ServerTable, TableManifest, TableUpdate};

use crate::config::ServerConfig;
use crate::error::{Result, ServerError};

/// Largest update record accepted from the history file (64 MiB).
const MAX_UPDATE_RECORD: usize = 64 * 1024 * 1024;

/// Builds the blinded table of the configured order from `indicators` (canonical primary-hash bytes) with a fresh
/// blinding key α. The caller persists it with [`save_table`].
pub fn build_table<R: CryptoRng + ?Sized>(
    config: &ServerConfig,
    indicators: Vec<Vec<u8>>,
    rng: &mut R,
) -> Result<ServerTable> {
    config.validate()?;
    let key = BlindingKey::random(rng);
    Ok(ServerTable::build(&config.table_config(), key, indicators, rng)?)
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

/// Checks that a loaded table serves the configured order.
pub fn check_table_matches(config: &ServerConfig, table: &ServerTable) -> Result<()> {
    let p = table.params();
    let o = &config.order;
    let checks: [(&'static str, bool); 6] = [
        ("epoch", p.epoch == o.epoch),
        ("order_id", p.order_id == o.order_id),
        ("threshold", p.threshold == o.threshold),
        ("synthetic_cap", p.synthetic_cap == o.synthetic_cap),
        ("synthetic_rate", p.synthetic_rate == o.synthetic_rate_wire()),
        ("ad_len", p.ad_len == o.ad_len),
    ];
    match checks.iter().find(|(_, ok)| !ok) {
        Some((field, _)) => Err(ServerError::TableMismatch { field }),
        None => Ok(()),
    }
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
    /// Consecutive updates of this epoch, the last one ending at the current version.
    updates: Vec<TableUpdate>,
}

impl ServedTable {
    pub(crate) fn new(table: ServerTable, history: Vec<TableUpdate>) -> Self {
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
        ServedTable { table, manifest, root, updates: chain }
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

    fn table() -> (ServerConfig, ServerTable, rand_chacha::ChaCha20Rng) {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
        let mut cfg = ServerConfig::default_for_demo();
        cfg.chunk_slots = 8;
        let ind: Vec<Vec<u8>> = (0u32..40).map(|i| i.to_le_bytes().to_vec()).collect();
        let t = build_table(&cfg, ind, &mut rng).unwrap_or_else(|e| panic!("{e}"));
        (cfg, t, rng)
    }

    #[test]
    fn table_file_round_trips_and_matches_config() {
        let (cfg, t, _) = table();
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let p = dir.path().join("t.secret");
        save_table(&p, &t).unwrap_or_else(|e| panic!("{e}"));
        let back = load_table(&p).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back.slots(), t.slots());
        check_table_matches(&cfg, &back).unwrap_or_else(|e| panic!("{e}"));
        let mut other = cfg.clone();
        other.order.threshold += 1;
        assert!(matches!(check_table_matches(&other, &back), Err(ServerError::TableMismatch { field: "threshold" })));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&p).map(|m| m.permissions().mode() & 0o777).unwrap_or(0);
            assert_eq!(mode, 0o600);
        }
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
        let served = ServedTable::new(t, history);
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
