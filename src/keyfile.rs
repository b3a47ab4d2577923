//! Key and signed-object files shared by `vouchsafe authority` and `vouchsafe centre`: bounded reads, the versioned
//! text form of a 32-byte key, and writes that never overwrite (through `vouchsafe-files`, mode 0600). Messages
//! name the file, never its content.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use zeroize::Zeroizing;

use crate::error::{CliError, Result};

/// Largest key, order or release file read.
pub const MAX_FILE: u64 = vouchsafe_files::MAX_FILE;

/// Now, in Unix seconds.
pub fn now_secs() -> Result<i64> {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).map_err(|_| CliError::runtime("the clock is before 1970"))?;
    i64::try_from(d.as_secs()).map_err(|_| CliError::runtime("the clock is out of range"))
}

/// Reads a whole file of at most [`MAX_FILE`] bytes into a zeroizing buffer (`vouchsafe_files::read_limited`).
pub fn read_limited(path: &Path, what: &str) -> Result<Zeroizing<Vec<u8>>> {
    vouchsafe_files::read_limited(path, MAX_FILE)
        .map_err(|e| CliError::usage(format!("{what} {}: {e}", path.display())))
}

/// Parses `header\nHEX64\n` into 32 bytes (`vouchsafe_files::parse_key_text`, the one parser the server shares);
/// the message names the file, never its content.
pub fn parse_key_text(text: &[u8], header: &str, what: &str, path: &Path) -> Result<Zeroizing<[u8; 32]>> {
    vouchsafe_files::parse_key_text(text, header)
        .map_err(|e| CliError::usage(format!("{what} {}: {e}", path.display())))
}

/// 64 hex digits as 32 bytes.
pub fn hex32(s: &str, what: &str) -> Result<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s.trim(), &mut out).map_err(|_| CliError::usage(format!("{what}: expected 64 hex digits")))?;
    Ok(out)
}

/// Writes a new file (refusing an existing name) through the hardened writer.
pub fn write_new(path: &Path, bytes: &[u8], what: &str) -> Result<()> {
    if std::fs::symlink_metadata(path).is_ok() {
        return Err(CliError::usage(format!("{what} {}: exists; refusing to overwrite it", path.display())));
    }
    vouchsafe_files::write_secret(path, bytes)
        .map_err(|e| CliError::runtime(format!("{what} {}: {}", path.display(), e.kind())))
}

/// `KEY.pub` beside `KEY`.
pub fn pub_path(key: &Path) -> PathBuf {
    let mut p = key.as_os_str().to_owned();
    p.push(".pub");
    PathBuf::from(p)
}
