//! # vouchsafe-files
//!
//! The one place where vouchsafe writes a file that holds a secret: the server's table file (α), the client's
//! state and table files, the spool of unprocessed vouchers, key files. Every such file
//!
//! * is created with mode 0600 (on unix) from the first system call on, and its mode is then set to exactly 0600,
//!   so neither a permissive umask nor a stale file left by a crash can widen it;
//! * is written to a temporary name in the same directory, fsynced, renamed over the target, and the directory is
//!   fsynced, so a crash leaves either the old or the new content, never a mix, and the rename survives power loss
//!   ([`write_secret`]); or, for files that are only ever created once, is created exclusively and fsynced together
//!   with its directory ([`create_secret`]);
//! * is never written through a symbolic link: the temporary file is created exclusively (`O_CREAT | O_EXCL`, which
//!   fails on any existing name, a symlink included) after a stale one is removed (removing a link never touches
//!   its target), and a target that is a symlink or not a regular file is refused.
//!
//! Errors are plain [`std::io::Error`]s (the callers add which file it was); they never contain file contents.
//! Concurrent writers of the same path are the caller's to prevent (the client holds a lock on its data
//! directory; the server writes its table file from one command at a time).
//!
//! Beside it, what reading the servers' files needs: key text files ([`parse_key_text`]) and a parse error of a TOML
//! configuration said without repeating the file ([`describe_parse_error`]).

mod config_error;
mod keytext;

pub use config_error::describe_parse_error;
pub use keytext::{KeyTextError, MAX_FILE, key_text, parse_key_text, read_key_text, read_limited};

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, ErrorKind, Write};
use std::path::{Path, PathBuf};

/// Mode of every secret file.
#[cfg(unix)]
const FILE_MODE: u32 = 0o600;
/// Mode of every private directory.
#[cfg(unix)]
const DIR_MODE: u32 = 0o700;

/// The directory that holds `path` (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// The temporary name beside `path`: `.NAME.tmp` in the same directory (so the rename is atomic).
fn temp_path(path: &Path) -> io::Result<PathBuf> {
    let name = path.file_name().ok_or_else(|| io::Error::new(ErrorKind::InvalidInput, "path has no file name"))?;
    let mut tmp = OsString::from(".");
    tmp.push(name);
    tmp.push(".tmp");
    Ok(parent_dir(path).join(tmp))
}

/// Creates `path` exclusively (fails if any file or link of that name exists) with mode 0600, then forces the mode
/// to exactly 0600 (the creation mode is reduced by the umask).
fn create_exclusive(path: &Path) -> io::Result<File> {
    let mut o = OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(FILE_MODE);
    }
    let f = o.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Err(e) = f.set_permissions(fs::Permissions::from_mode(FILE_MODE)) {
            // The file is ours (created exclusively): take it away again, so no error leaves a file behind.
            drop(f);
            let _ = fs::remove_file(path);
            return Err(e);
        }
    }
    Ok(f)
}

/// Refuses a target that is a symbolic link or anything but a regular file; a missing target is fine.
fn check_target(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            Err(io::Error::new(ErrorKind::InvalidInput, "refusing to write a secret file through a symbolic link"))
        }
        Ok(m) if !m.is_file() => Err(io::Error::new(ErrorKind::InvalidInput, "the target is not a regular file")),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// fsyncs a directory so that a creation, rename or removal in it is durable. A no-op where directories cannot be
/// opened (not unix).
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Atomically replaces (or creates) the secret file `path` with `bytes`: a fresh temporary file of mode 0600 in the
/// same directory, write, fsync, rename over `path`, fsync the directory. On error the temporary file is removed
/// and `path` is untouched. A `path` that is a symbolic link or not a regular file is refused.
pub fn write_secret(path: &Path, bytes: &[u8]) -> io::Result<()> {
    check_target(path)?;
    let tmp = temp_path(path)?;
    // A temporary file left by a crash may have any mode, or be a link planted there: remove the name (a link is
    // removed, its target is not touched) and create anew, exclusively.
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let written = create_exclusive(&tmp).and_then(|mut f| {
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)
    });
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    sync_dir(parent_dir(path))
}

/// Creates the new secret file `path` (which must not exist: an existing file or link of that name is an
/// `AlreadyExists` error) with mode 0600, writes `bytes`, fsyncs the file's data and the directory. On error the
/// file is removed. For files written once under a fresh name.
pub fn create_secret(path: &Path, bytes: &[u8]) -> io::Result<()> {
    create_exclusive_synced(path, bytes, || sync_dir(parent_dir(path)))
}

/// [`create_secret`] for a caller that keeps its directory open (the server's spool writes one file per batch):
/// `dir` must be the open directory that holds `path`; it is fsynced instead of being opened again.
pub fn create_secret_in(dir: &File, path: &Path, bytes: &[u8]) -> io::Result<()> {
    create_exclusive_synced(path, bytes, || dir.sync_all())
}

fn create_exclusive_synced(path: &Path, bytes: &[u8], sync_dir: impl FnOnce() -> io::Result<()>) -> io::Result<()> {
    let mut f = create_exclusive(path)?;
    let written = f.write_all(bytes).and_then(|()| f.sync_data()).and_then(|()| sync_dir());
    if let Err(e) = written {
        drop(f);
        let _ = fs::remove_file(path);
        return Err(e);
    }
    Ok(())
}

/// Creates a directory (and its parents) with mode 0700 on unix. An existing directory is left as it is.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(DIR_MODE);
    }
    b.create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    fn mode(p: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn writes_private_and_replaces() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("secret.bin");
        write_secret(&p, b"one").unwrap();
        write_secret(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        #[cfg(unix)]
        assert_eq!(mode(&p), 0o600);
        assert!(!d.path().join(".secret.bin.tmp").exists());
    }

    #[cfg(unix)]
    #[test]
    fn a_stale_world_readable_temp_file_does_not_leak_its_mode() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("table.bin");
        let tmp = d.path().join(".table.bin.tmp");
        fs::write(&tmp, b"stale").unwrap();
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o644)).unwrap();
        // Also an existing target of mode 0644: the replacement is a new inode of mode 0600.
        fs::write(&p, b"old").unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        write_secret(&p, b"alpha").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"alpha");
        assert_eq!(mode(&p), 0o600);
        assert!(!tmp.exists());
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_planted_at_the_temp_name_is_not_followed() {
        let d = tempfile::tempdir().unwrap();
        let victim = d.path().join("victim");
        fs::write(&victim, b"untouched").unwrap();
        let p = d.path().join("secret");
        std::os::unix::fs::symlink(&victim, d.path().join(".secret.tmp")).unwrap();
        write_secret(&p, b"new").unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"untouched");
        assert_eq!(fs::read(&p).unwrap(), b"new");
        assert!(!fs::symlink_metadata(&p).unwrap().file_type().is_symlink());
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_target_is_refused_and_nothing_is_written() {
        let d = tempfile::tempdir().unwrap();
        let victim = d.path().join("victim");
        fs::write(&victim, b"untouched").unwrap();
        let p = d.path().join("secret");
        std::os::unix::fs::symlink(&victim, &p).unwrap();
        let e = write_secret(&p, b"new").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.to_string().contains("symbolic link"));
        assert_eq!(fs::read(&victim).unwrap(), b"untouched");
        assert!(!d.path().join(".secret.tmp").exists());
        // A directory is not a secret file either.
        fs::create_dir(d.path().join("dir")).unwrap();
        assert_eq!(write_secret(&d.path().join("dir"), b"x").unwrap_err().kind(), ErrorKind::InvalidInput);
    }

    #[test]
    fn create_secret_never_overwrites() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("spool-1");
        create_secret(&p, b"first").unwrap();
        assert_eq!(create_secret(&p, b"second").unwrap_err().kind(), ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&p).unwrap(), b"first");
        #[cfg(unix)]
        {
            assert_eq!(mode(&p), 0o600);
            let link = d.path().join("spool-2");
            std::os::unix::fs::symlink(&p, &link).unwrap();
            assert_eq!(create_secret(&link, b"x").unwrap_err().kind(), ErrorKind::AlreadyExists);
            assert_eq!(fs::read(&p).unwrap(), b"first");
        }
    }

    #[test]
    fn create_secret_in_syncs_the_given_directory() {
        let d = tempfile::tempdir().unwrap();
        let dir = File::open(d.path()).unwrap();
        let p = d.path().join("b1");
        create_secret_in(&dir, &p, b"batch").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"batch");
        assert_eq!(create_secret_in(&dir, &p, b"again").unwrap_err().kind(), ErrorKind::AlreadyExists);
    }

    #[test]
    fn bare_file_names_write_in_the_current_directory_and_dirs_are_private() {
        assert_eq!(parent_dir(Path::new("x.bin")), Path::new("."));
        assert_eq!(temp_path(Path::new("a/b.bin")).unwrap(), Path::new("a/.b.bin.tmp"));
        assert!(temp_path(Path::new("/")).is_err());
        let d = tempfile::tempdir().unwrap();
        let sub = d.path().join("a/b");
        create_private_dir(&sub).unwrap();
        create_private_dir(&sub).unwrap();
        #[cfg(unix)]
        assert_eq!(mode(&sub), 0o700);
    }
}
