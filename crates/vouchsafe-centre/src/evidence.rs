//! [`Evidence`] from the Centre's files: the releases directory (`<line>-NNNNNN.bin`, verified under the Centre's
//! own key), the revocations directory (`*.bin`, verified under the pinned authority keys) and the indicator
//! database of `vouchsafe centre import` (its false-positive marks). Read anew for every message, so that what
//! the Centre's analysts do (a release, a revocation, `vouchsafe centre flag`) applies to the next report.

use std::cell::OnceCell;
use std::path::{Path, PathBuf};

use vouchsafe_orders::{AuthorityKeyring, SignedRevocation, VerifiedRevocation};
use vouchsafe_release::{CentreDb, CentreKey, SignedRelease, VerifiedRelease};

use crate::check::Evidence;
use crate::error::{CentreError, Result};

/// Largest release, revocation or database file read.
const MAX_FILE: u64 = vouchsafe_files::MAX_FILE;
/// Most releases of one line read (a bound on the loop; a line grows by one release per `centre release`).
const MAX_RELEASES: u64 = 1_000_000;
/// Most revocation files read.
const MAX_REVOCATIONS: usize = 100_000;

/// The file of release `number` of `line` in `dir`, as `vouchsafe centre release` names it.
pub fn release_path(dir: &Path, line: &str, number: u64) -> PathBuf {
    dir.join(format!("{line}-{number:06}.bin"))
}

/// A release line as `vouchsafe centre release` accepts it (so never a path): `a-z 0-9 . _ -`, 1..=64 bytes,
/// starting with a letter or digit.
fn line_ok(line: &str) -> bool {
    let b = line.as_bytes();
    (1..=64).contains(&b.len())
        && b.first().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'.' | b'_' | b'-'))
}

fn read(what: &'static str, path: &Path) -> Result<zeroize::Zeroizing<Vec<u8>>> {
    vouchsafe_files::read_limited(path, MAX_FILE)
        .map_err(|e| CentreError::evidence(format!("{what} {}", path.display()), e))
}

/// The Centre's releases of `line` in `dir`, verified under `key`, consecutive from number 1.
pub fn load_releases(dir: &Path, line: &str, key: &CentreKey) -> Result<Vec<VerifiedRelease>> {
    let mut out = Vec::new();
    if !line_ok(line) {
        return Ok(out);
    }
    for number in 1..=MAX_RELEASES {
        let path = release_path(dir, line, number);
        if std::fs::symlink_metadata(&path).is_err() {
            break;
        }
        let bytes = read("release", &path)?;
        let verified = SignedRelease::decode(&bytes)
            .and_then(|s| s.verify(key))
            .map_err(|e| CentreError::evidence(format!("release {}", path.display()), e))?;
        if verified.release().number() != number || verified.release().line() != line {
            return Err(CentreError::evidence(
                format!("release {}", path.display()),
                "its number or line is not its name's",
            ));
        }
        out.push(verified);
    }
    Ok(out)
}

/// Every `*.bin` of `dir` (none if it does not exist), verified under `authorities`.
pub fn load_revocations(dir: &Path, authorities: &AuthorityKeyring) -> Result<Vec<VerifiedRevocation>> {
    let what = || format!("revocations {}", dir.display());
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(CentreError::evidence(what(), e.kind())),
    };
    let mut files = Vec::new();
    for entry in rd.take(MAX_REVOCATIONS) {
        let p = entry.map_err(|e| CentreError::evidence(what(), e.kind()))?.path();
        if p.extension().is_some_and(|x| x == "bin") && p.is_file() {
            files.push(p);
        }
    }
    files.sort();
    let mut out = Vec::with_capacity(files.len());
    for p in files {
        let bytes = read("revocation", &p)?;
        let v = SignedRevocation::decode(&bytes)
            .and_then(|s| authorities.verify_revocation(&s))
            .map_err(|e| CentreError::evidence(format!("revocation {}", p.display()), e))?;
        out.push(v);
    }
    Ok(out)
}

/// Reads the indicator database (`CentreDb::encode`).
pub fn load_indicators(path: &Path) -> Result<CentreDb> {
    let bytes = read("indicator database", path)?;
    CentreDb::decode(&bytes).map_err(|e| CentreError::evidence(format!("indicator database {}", path.display()), e))
}

/// [`Evidence`] from the configured files; the indicator database is read once per value.
pub struct FileEvidence<'a> {
    releases: &'a Path,
    revocations: Option<&'a Path>,
    indicators: &'a Path,
    centre: &'a CentreKey,
    db: OnceCell<CentreDb>,
}

impl<'a> FileEvidence<'a> {
    /// Evidence from these files.
    pub fn new(releases: &'a Path, revocations: Option<&'a Path>, indicators: &'a Path, centre: &'a CentreKey) -> Self {
        FileEvidence { releases, revocations, indicators, centre, db: OnceCell::new() }
    }
}

impl Evidence for FileEvidence<'_> {
    fn releases(&self, line: &str) -> Result<Vec<VerifiedRelease>> {
        load_releases(self.releases, line, self.centre)
    }

    fn revocations(&self, authorities: &AuthorityKeyring) -> Result<Vec<VerifiedRevocation>> {
        match self.revocations {
            Some(dir) => load_revocations(dir, authorities),
            None => Ok(Vec::new()),
        }
    }

    fn is_false_positive(&self, primary: &[u8]) -> Result<bool> {
        if let Some(db) = self.db.get() {
            return Ok(db.is_false_positive(primary));
        }
        let db = load_indicators(self.indicators)?;
        let marked = db.is_false_positive(primary);
        let _ = self.db.set(db);
        Ok(marked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_that_could_be_paths_are_not_read() {
        assert!(line_ok("demo") && line_ok("eu-2025.a_1"));
        for bad in ["", "../demo", "a/b", "Demo", "-x", ".x", &"a".repeat(65)] {
            assert!(!line_ok(bad), "{bad}");
        }
    }
}
