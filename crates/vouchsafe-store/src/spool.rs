//! Spool files: the raw vouchers of an unprocessed batch of a file database.
//!
//! Schema v3 keeps a batch's raw vouchers (the [`inbox`](crate::inbox) blob, about 1.25 MB for 256 vouchers) in a
//! file of its own in the directory `<database>.inbox/`; the inbox row holds only the file's name. The row is the
//! record: a batch exists, and is acknowledged, once its row is committed, and the row is only committed after its
//! file is durable. Keeping the bulk out of SQLite means a batch's bytes are written once on intake, read once by
//! the worker and overwritten once when the batch is processed, instead of going through the WAL, a checkpoint and
//! SQLite's `secure_delete` zeroing (which measured at a third of the server's CPU per voucher end to end).
//!
//! Life of a file:
//! 1. [`Spool::write`]: create a new file with a fresh unique name (`O_EXCL`, mode 0600), write the blob,
//!    `fdatasync`, then `fsync` the directory so that the name survives a crash. Only then is the row inserted.
//! 2. The worker reads it ([`Spool::read`]).
//! 3. The transaction that completes the batch clears the row's file name; after it commits, [`Spool::shred`]
//!    overwrites the file with zeros, syncs the zeros to disk and unlinks it. Non-matching vouchers leave nothing.
//! 4. A crash between 1 and the row's commit leaves a file no row names (the batch was never acknowledged); a crash
//!    between 3's commit and the unlink leaves a processed file no row names. Both are *orphans*, shredded by
//!    [`Spool::sweep`] when the database is next opened by a process that has the spool to itself.
//!
//! Every open store holds a shared `flock` on `<database>.inbox/LOCK` for its lifetime; the sweep runs only under
//! the exclusive lock, so a second process opening the database (an operator's command next to the running server)
//! never shreds a file that the server has written and is about to commit.
//!
//! Names read back from the database are checked against the exact pattern this module generates before they are
//! joined to the directory, so a corrupt row cannot point outside the spool.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::{Result, StoreError};

/// Suffix of spool file names.
const SUFFIX: &str = ".batch";
/// Hex digits before the suffix: 16 for the creation time in nanoseconds, 16 for a per-process counter.
const HEX_LEN: usize = 32;
/// Name of the lock file inside the spool directory.
const LOCK_FILE: &str = "LOCK";
/// Size of the zero buffer used to overwrite a file.
const ZERO_CHUNK: usize = 64 * 1024;
/// Upper bound on a spool file's size (a batch is at most a few MB; a larger file is not ours).
const MAX_FILE: u64 = 1 << 30;

/// The spool directory of one file database.
pub(crate) struct Spool {
    dir: PathBuf,
    /// Open handle of the directory, fsynced after a file is created.
    dir_handle: File,
    /// Shared (or, during the sweep, exclusive) `flock` held for the store's lifetime.
    lock: File,
    /// Whether this process had the spool to itself when it opened it (and so swept it).
    exclusive_at_open: bool,
    seq: AtomicU64,
}

impl std::fmt::Debug for Spool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spool").field("dir", &self.dir).finish_non_exhaustive()
    }
}

fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> StoreError {
    move |source| StoreError::Io { what, source }
}

/// `<database>.inbox`, next to the database file.
pub(crate) fn dir_for(database: &Path) -> PathBuf {
    let mut s = database.as_os_str().to_owned();
    s.push(".inbox");
    PathBuf::from(s)
}

/// Whether `name` is exactly of the form this module generates.
pub(crate) fn valid_name(name: &str) -> bool {
    name.len() == HEX_LEN + SUFFIX.len()
        && name.ends_with(SUFFIX)
        && name.bytes().take(HEX_LEN).all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl Spool {
    /// Opens (creating if needed, mode 0700) the spool directory and takes its lock: exclusive if no other
    /// process has it open (then [`Spool::exclusive_at_open`] is true and the caller should sweep before
    /// [`Spool::share`]), shared otherwise.
    pub(crate) fn open(dir: &Path) -> Result<Self> {
        vouchsafe_files::create_private_dir(dir).map_err(io("creating the spool directory"))?;
        let dir_handle = File::open(dir).map_err(io("opening the spool directory"))?;
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join(LOCK_FILE))
            .map_err(io("opening the spool lock"))?;
        let exclusive = match lock.try_lock() {
            Ok(()) => true,
            Err(fs::TryLockError::WouldBlock) => {
                lock.lock_shared().map_err(io("locking the spool"))?;
                false
            }
            Err(fs::TryLockError::Error(e)) => return Err(io("locking the spool")(e)),
        };
        // Start the counter at the clock so names stay unique across restarts within one nanosecond tick.
        let seq = AtomicU64::new(now_nanos().rotate_left(32));
        Ok(Spool { dir: dir.to_path_buf(), dir_handle, lock, exclusive_at_open: exclusive, seq })
    }

    /// Whether this process had the spool to itself at open (only then may orphans be swept).
    pub(crate) fn exclusive_at_open(&self) -> bool {
        self.exclusive_at_open
    }

    /// Turns the exclusive lock taken at open into a shared one, so other processes can open the database.
    pub(crate) fn share(&self) -> Result<()> {
        self.lock.lock_shared().map_err(io("locking the spool"))
    }

    fn path(&self, name: &str) -> Result<PathBuf> {
        if !valid_name(name) {
            return Err(StoreError::Corrupt("spool file name"));
        }
        Ok(self.dir.join(name))
    }

    /// Durably writes `blob` to a new spool file and returns its name. On error no file is left behind.
    pub(crate) fn write(&self, blob: &[u8]) -> Result<String> {
        loop {
            let name = format!("{:016x}{:016x}{SUFFIX}", now_nanos(), self.seq.fetch_add(1, Ordering::Relaxed));
            // Mode 0600, exclusive creation, data and directory fsynced; on error no file is left behind.
            match vouchsafe_files::create_secret_in(&self.dir_handle, &self.dir.join(&name), blob) {
                Ok(()) => return Ok(name),
                Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(io("writing a spool file")(e)),
            }
        }
    }

    /// Reads a spool file whole.
    pub(crate) fn read(&self, name: &str) -> Result<Vec<u8>> {
        let path = self.path(name)?;
        let mut file = File::open(&path).map_err(|e| match e.kind() {
            ErrorKind::NotFound => StoreError::Corrupt("spool file of an unprocessed batch is missing"),
            _ => StoreError::Io { what: "opening a spool file", source: e },
        })?;
        let len = file.metadata().map_err(io("reading a spool file"))?.len();
        if len > MAX_FILE {
            return Err(StoreError::Corrupt("spool file too large"));
        }
        let mut out = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        file.read_to_end(&mut out).map_err(io("reading a spool file"))?;
        Ok(out)
    }

    /// Overwrites a spool file with zeros, syncs the zeros to disk, then unlinks the file. A file that is already
    /// gone is not an error.
    pub(crate) fn shred(&self, name: &str) -> Result<()> {
        let path = self.path(name)?;
        // The spool writes only regular files: anything else under a spool name (a planted link) is not followed.
        match fs::symlink_metadata(&path) {
            Ok(m) if !m.file_type().is_file() => {
                return Err(StoreError::Corrupt("a spool entry is not a regular file"));
            }
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io("opening a spool file to shred it")(e)),
        }
        let mut file = match OpenOptions::new().write(true).open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io("opening a spool file to shred it")(e)),
        };
        let mut left = file.metadata().map_err(io("shredding a spool file"))?.len().min(MAX_FILE);
        let zeros = [0u8; ZERO_CHUNK];
        while left > 0 {
            let n = usize::try_from(left).unwrap_or(ZERO_CHUNK).min(ZERO_CHUNK);
            file.write_all(zeros.get(..n).unwrap_or(&zeros)).map_err(io("shredding a spool file"))?;
            left -= n as u64;
        }
        // The zeros must reach the disk before the unlink, or the kernel drops them with the file.
        file.sync_data().map_err(io("shredding a spool file"))?;
        drop(file);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io("removing a spool file")(e)),
        }
    }

    /// Shreds every spool file whose name is not in `keep` (files of batches never committed, or processed but
    /// not yet shredded). Files with names this module does not generate are left alone. Only call this while
    /// holding the exclusive lock (see [`Spool::exclusive_at_open`]). Returns how many files were shredded.
    pub(crate) fn sweep(&self, keep: &HashSet<String>) -> Result<usize> {
        let mut shredded = 0;
        for entry in fs::read_dir(&self.dir).map_err(io("listing the spool directory"))? {
            let entry = entry.map_err(io("listing the spool directory"))?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if valid_name(&name) && !keep.contains(&name) {
                self.shred(&name)?;
                shredded += 1;
            }
        }
        Ok(shredded)
    }
}

fn now_nanos() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_validated() {
        assert!(valid_name("0123456789abcdef0123456789abcdef.batch"));
        for bad in [
            "",
            "LOCK",
            "0123456789abcdef0123456789abcdef.batc",
            "0123456789ABCDEF0123456789abcdef.batch",
            "../3456789abcdef0123456789abcdef.batch",
            "0123456789abcdef0123456789abcde/.batch",
            "0123456789abcdef0123456789abcdef0.batch",
        ] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn write_read_shred_and_sweep() {
        let d = tempfile::tempdir().unwrap();
        let dir = dir_for(&d.path().join("x.db"));
        let s = Spool::open(&dir).unwrap();
        assert!(s.exclusive_at_open());
        let a = s.write(b"first batch").unwrap();
        let b = s.write(b"second batch").unwrap();
        assert_ne!(a, b);
        assert!(valid_name(&a) && valid_name(&b));
        assert_eq!(s.read(&a).unwrap(), b"first batch");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.join(&a)).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "spool files are private");
        }
        s.shred(&a).unwrap();
        assert!(!dir.join(&a).exists());
        assert!(matches!(s.read(&a), Err(StoreError::Corrupt(_))));
        // Shredding twice is harmless; a bad name is refused.
        s.shred(&a).unwrap();
        assert!(matches!(s.read("../x.db"), Err(StoreError::Corrupt(_))));
        assert!(matches!(s.shred("LOCK"), Err(StoreError::Corrupt(_))));

        // The sweep keeps what it is told to keep, and foreign files.
        let c = s.write(b"orphan").unwrap();
        fs::write(dir.join("README"), b"not ours").unwrap();
        let keep: HashSet<String> = [b.clone()].into_iter().collect();
        assert_eq!(s.sweep(&keep).unwrap(), 1);
        assert!(dir.join(&b).exists() && !dir.join(&c).exists() && dir.join("README").exists());
    }

    #[test]
    fn a_second_opener_gets_a_shared_lock_and_must_not_sweep() {
        let d = tempfile::tempdir().unwrap();
        let dir = dir_for(&d.path().join("x.db"));
        let first = Spool::open(&dir).unwrap();
        assert!(first.exclusive_at_open());
        // While the first holds the exclusive lock, a second opener would block; share it first.
        first.share().unwrap();
        let second = Spool::open(&dir).unwrap();
        assert!(!second.exclusive_at_open());
        drop(second);
        drop(first);
        assert!(Spool::open(&dir).unwrap().exclusive_at_open());
    }
}
