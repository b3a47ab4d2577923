//! Durable local files: one framing for every file the client writes, and atomic replacement.
//!
//! Frame: `magic (8) ‖ format version u16 LE ‖ body length u64 LE ‖ body ‖ SHA-256(everything before)`.
//! A file with another magic, an unknown version, a wrong length (truncated or extended) or a wrong checksum is
//! refused. Files are written by `vouchsafe-files` (the project's one secret-file writer): to a temporary name
//! in the same directory, fsynced, renamed over the target, and the directory is fsynced, so a crash leaves either
//! the old or the new file, never a mix. On unix every file has mode 0600 from its creation on.

use std::fs::{self, File};
use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::error::{ClientError, Result};

const HEADER: usize = 8 + 2 + 8;
const CHECKSUM: usize = 32;

/// Largest file body the client reads back (2^26 slots × 32 bytes plus headers fits; anything larger is refused
/// before allocating).
pub(crate) const MAX_BODY: u64 = (1 << 31) + (1 << 20);

fn checksum(head_and_body: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in head_and_body {
        h.update(p);
    }
    h.finalize().into()
}

/// Frames `body` for storage.
pub(crate) fn frame(magic: &[u8; 8], version: u16, body: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(HEADER + body.len() + CHECKSUM));
    out.extend_from_slice(magic);
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(body);
    let sum = checksum(&[&out]);
    out.extend_from_slice(&sum);
    out
}

/// Checks and strips the frame. `file` names the file kind in errors.
/// Checks a framed file (magic, a format version in `versions`, length, checksum); returns the version and the body.
pub(crate) fn unframe_versions(
    file: &'static str,
    magic: &[u8; 8],
    versions: std::ops::RangeInclusive<u16>,
    bytes: &[u8],
) -> Result<(u16, Zeroizing<Vec<u8>>)> {
    let bad = |reason| ClientError::Storage { file, reason };
    let (head, rest) = bytes.split_first_chunk::<HEADER>().ok_or(bad("truncated header"))?;
    let (m, rest_head) = head.split_first_chunk::<8>().ok_or(bad("truncated header"))?;
    if m != magic {
        return Err(bad("wrong magic (not a file of this kind)"));
    }
    let (v, len) = rest_head.split_first_chunk::<2>().ok_or(bad("truncated header"))?;
    let version = u16::from_le_bytes(*v);
    if !versions.contains(&version) {
        return Err(bad("unsupported format version"));
    }
    let len: [u8; 8] = len.try_into().map_err(|_| bad("truncated header"))?;
    let len = u64::from_le_bytes(len);
    if len > MAX_BODY || rest.len() as u64 != len + CHECKSUM as u64 {
        return Err(bad("length does not match the header (truncated or extended)"));
    }
    let (body, sum) = rest.split_at_checked(rest.len() - CHECKSUM).ok_or(bad("truncated"))?;
    let expected = checksum(&[head, body]);
    // Integrity, not secrecy: a plain comparison is fine, but constant time costs nothing.
    if !bool::from(subtle::ConstantTimeEq::ct_eq(&expected[..], sum)) {
        return Err(bad("checksum mismatch (corrupted)"));
    }
    Ok((version, Zeroizing::new(body.to_vec())))
}

/// Reads and unframes a file; `Ok(None)` if it does not exist.
pub(crate) fn read_framed(
    path: &Path,
    file: &'static str,
    magic: &[u8; 8],
    version: u16,
) -> Result<Option<Zeroizing<Vec<u8>>>> {
    Ok(read_framed_versions(path, file, magic, version..=version)?.map(|(_, body)| body))
}

/// [`read_framed`] accepting any format version in `versions`; returns the version with the body.
pub(crate) fn read_framed_versions(
    path: &Path,
    file: &'static str,
    magic: &[u8; 8],
    versions: std::ops::RangeInclusive<u16>,
) -> Result<Option<(u16, Zeroizing<Vec<u8>>)>> {
    let f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ClientError::Io { op: "opening a local file", kind: e.kind() }),
    };
    let mut buf = Zeroizing::new(Vec::new());
    f.take(MAX_BODY + (HEADER + CHECKSUM) as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(ClientError::io("reading a local file"))?;
    unframe_versions(file, magic, versions, &buf).map(Some)
}

/// fsyncs a directory so a rename or removal in it is durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    vouchsafe_files::sync_dir(dir).map_err(ClientError::io("syncing the data directory"))
}

/// Atomically replaces `dir/name` with `bytes` through the project's one hardened secret-file writer (mode 0600
/// from creation, temp + fsync + rename + directory fsync, no symlink followed).
pub(crate) fn atomic_write(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    vouchsafe_files::write_secret(&dir.join(name), bytes).map_err(ClientError::io("writing a local file"))
}

/// Frames and atomically writes.
pub(crate) fn write_framed(dir: &Path, name: &str, magic: &[u8; 8], version: u16, body: &[u8]) -> Result<()> {
    atomic_write(dir, name, &frame(magic, version, body))
}

/// Removes a file (missing is fine).
pub(crate) fn remove(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ClientError::Io { op: "removing a local file", kind: e.kind() }),
    }
}

/// Creates a directory (and parents) with mode 0700 on unix.
pub(crate) fn create_private_dir(dir: &Path) -> Result<()> {
    vouchsafe_files::create_private_dir(dir).map_err(ClientError::io("creating the data directory"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unframe(file: &'static str, magic: &[u8; 8], version: u16, bytes: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        unframe_versions(file, magic, version..=version, bytes).map(|(_, b)| b)
    }

    const M: &[u8; 8] = b"VSTEST\0\0";

    #[test]
    fn frame_round_trip_and_refusals() {
        let f = frame(M, 3, b"hello");
        assert_eq!(&unframe("t", M, 3, &f).unwrap()[..], b"hello");
        assert!(matches!(unframe("t", M, 4, &f), Err(ClientError::Storage { .. })));
        assert!(matches!(unframe("t", b"OTHER\0\0\0", 3, &f), Err(ClientError::Storage { .. })));
        for cut in 0..f.len() {
            assert!(unframe("t", M, 3, &f[..cut]).is_err(), "truncated at {cut} accepted");
        }
        let mut ext = f.to_vec();
        ext.push(0);
        assert!(unframe("t", M, 3, &ext).is_err());
        for i in 0..f.len() {
            let mut g = f.to_vec();
            g[i] ^= 0x40;
            assert!(unframe("t", M, 3, &g).is_err(), "bit flip at {i} accepted");
        }
    }

    #[test]
    fn atomic_write_is_private_and_replaces() {
        let d = tempfile::tempdir().unwrap();
        write_framed(d.path(), "x.bin", M, 1, b"one").unwrap();
        write_framed(d.path(), "x.bin", M, 1, b"two").unwrap();
        let got = read_framed(&d.path().join("x.bin"), "t", M, 1).unwrap().unwrap();
        assert_eq!(&got[..], b"two");
        assert!(read_framed(&d.path().join("missing"), "t", M, 1).unwrap().is_none());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(d.path().join("x.bin")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(!d.path().join(".x.bin.tmp").exists());
    }
}
