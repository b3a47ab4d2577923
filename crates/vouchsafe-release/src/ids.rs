//! Names: source ids, release lines, and a source's attestation of an indicator.

use core::fmt;

use crate::error::{Result, invalid};
use crate::labels::{MAX_LINE_LEN, MAX_REFERENCE_LEN, MAX_SOURCE_ID_LEN};

/// Whether `s` is a name in the one alphabet of this crate: 1..=`max` bytes of lowercase ASCII letters, digits,
/// `.`, `_` and `-`, starting with a letter or digit. One case only, so that `NCMEC` and `ncmec` can never count as
/// two sources.
fn is_name(s: &str, max: usize) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= max
        && b.first().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && b.iter().all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'.' | b'_' | b'-'))
}

/// Checks a release line name (1..=64 bytes, the alphabet of [`SourceId`]).
pub(crate) fn check_line(line: &str) -> Result<()> {
    if is_name(line, MAX_LINE_LEN) {
        Ok(())
    } else {
        Err(invalid("release line: 1..=64 bytes of a-z, 0-9, '.', '_', '-', starting with a letter or digit"))
    }
}

/// The Centre's name for one independent source of indicators (a hotline, a national centre, ...).
///
/// 1..=32 bytes of lowercase ASCII letters, digits, `.`, `_` and `-`, starting with a letter or digit. The
/// admission rule counts *distinct* source ids; registering independent sources under distinct ids (and one source
/// under one id) is the Centre's duty. Source ids are public (they appear in releases) and print as they are.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SourceId(String);

impl SourceId {
    /// A source id, if `id` is in the alphabet.
    pub fn new(id: &str) -> Result<Self> {
        if is_name(id, MAX_SOURCE_ID_LEN) {
            Ok(SourceId(id.to_owned()))
        } else {
            Err(invalid("source id: 1..=32 bytes of a-z, 0-9, '.', '_', '-', starting with a letter or digit"))
        }
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub(crate) fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let s = core::str::from_utf8(bytes).map_err(|_| invalid("source id: not UTF-8"))?;
        SourceId::new(s)
    }
}

impl fmt::Display for SourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SourceId({})", self.0)
    }
}

/// One source's statement that it knows an indicator, with the source's own reference for it (its case or list
/// entry number), so that the Centre can trace every admitted indicator back to its sources.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Attestation {
    source: SourceId,
    reference: String,
}

impl Attestation {
    /// An attestation; `reference` is 1..=128 bytes of UTF-8 without control characters.
    pub fn new(source: SourceId, reference: &str) -> Result<Self> {
        if reference.is_empty() || reference.len() > MAX_REFERENCE_LEN || reference.chars().any(char::is_control) {
            return Err(invalid("source reference: 1..=128 bytes of UTF-8 without control characters"));
        }
        Ok(Attestation { source, reference: reference.to_owned() })
    }
    /// Who attests.
    pub fn source(&self) -> &SourceId {
        &self.source
    }
    /// The source's own reference.
    pub fn reference(&self) -> &str {
        &self.reference
    }
}

impl fmt::Debug for Attestation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The reference may point into a source's case files: it stays out of logs.
        f.debug_struct("Attestation").field("source", &self.source).field("reference", &"<redacted>").finish()
    }
}
