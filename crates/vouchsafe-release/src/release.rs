//! The release: what one signed step of a release line adds and removes, and its canonical encoding.

use core::fmt;

use crate::error::{Result, invalid};
use crate::ids::{SourceId, check_line};
use crate::labels::{MAX_HASH_LEN, MIN_HASH_LEN, RELEASE_VERSION};
use crate::wire::{Reader, count, put_count, put_u8_bytes, put_u16_bytes};

/// One admitted indicator as a release carries it: its primary hash (blinded into the PSI table), its secondary
/// hash (kept on the provider's server for the post-threshold check) and the distinct sources that attest it.
///
/// `Debug` prints the lengths of the hashes, never their bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct IndicatorEntry {
    /// Canonical primary hash bytes (1..=1024).
    pub primary: Vec<u8>,
    /// Canonical secondary hash bytes (1..=1024).
    pub secondary: Vec<u8>,
    /// The distinct sources that attest it (at least the release's `min_sources`, at most 255).
    pub sources: Vec<SourceId>,
}

impl fmt::Debug for IndicatorEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IndicatorEntry")
            .field("primary_len", &self.primary.len())
            .field("secondary_len", &self.secondary.len())
            .field("sources", &self.sources)
            .finish()
    }
}

/// The fields of a [`Release`], for [`Release::new`] (which sorts the lists and checks every rule). No `Debug`:
/// the removals are hash bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct ReleaseParts {
    /// The release line (1..=64 bytes of `a-z 0-9 . _ -`).
    pub line: String,
    /// The release's number in its line: 1 for the first, then previous + 1.
    pub number: u64,
    /// The hash of the previous signed release of the line ([`crate::VerifiedRelease::hash`]); `None` exactly
    /// for number 1.
    pub parent: Option<[u8; 32]>,
    /// The hash configuration id every hash of the line was computed under.
    pub hash_config: u16,
    /// The admission rule's threshold: every addition is attested by at least this many distinct sources (≥ 1).
    pub min_sources: u8,
    /// Creation time, seconds since the Unix epoch.
    pub created_at: i64,
    /// Indicators this release adds.
    pub additions: Vec<IndicatorEntry>,
    /// Primary hashes this release removes (false positives).
    pub removals: Vec<Vec<u8>>,
    /// The number of indicators in the line's set after applying this release.
    pub total: u64,
}

/// One release of a release line: validated, its lists sorted and unique. See the crate documentation for the
/// encoding and the rules.
#[derive(Clone, PartialEq, Eq)]
pub struct Release {
    parts: ReleaseParts,
}

impl fmt::Debug for Release {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = &self.parts;
        f.debug_struct("Release")
            .field("line", &p.line)
            .field("number", &p.number)
            .field("hash_config", &p.hash_config)
            .field("min_sources", &p.min_sources)
            .field("created_at", &p.created_at)
            .field("additions", &p.additions.len())
            .field("removals", &p.removals.len())
            .field("total", &p.total)
            .finish_non_exhaustive()
    }
}

fn check_hash(h: &[u8], what: &'static str) -> Result<()> {
    if (MIN_HASH_LEN..=MAX_HASH_LEN).contains(&h.len()) { Ok(()) } else { Err(invalid(what)) }
}

fn strictly_ascending<T: Ord>(items: impl IntoIterator<Item = T>) -> bool {
    let mut it = items.into_iter();
    let Some(mut prev) = it.next() else { return true };
    for x in it {
        if x <= prev {
            return false;
        }
        prev = x;
    }
    true
}

impl Release {
    /// A release from its parts: sorts the additions (by primary hash), each addition's sources and the removals,
    /// then checks every rule of the format (duplicates are refused, not merged).
    pub fn new(mut parts: ReleaseParts) -> Result<Self> {
        parts.additions.sort_by(|a, b| a.primary.cmp(&b.primary));
        for a in &mut parts.additions {
            a.sources.sort();
        }
        parts.removals.sort();
        let r = Release { parts };
        r.check()?;
        Ok(r)
    }

    /// Every rule of the format; the lists must already be sorted.
    fn check(&self) -> Result<()> {
        let p = &self.parts;
        check_line(&p.line)?;
        if p.number == 0 {
            return Err(invalid("release number: must be at least 1"));
        }
        if p.parent.is_some() != (p.number > 1) {
            return Err(invalid("release parent: present exactly when the number is above 1"));
        }
        if p.min_sources == 0 {
            return Err(invalid("min_sources: must be at least 1"));
        }
        if u32::try_from(p.additions.len()).is_err() || u32::try_from(p.removals.len()).is_err() {
            return Err(invalid("release: more than 2^32 - 1 additions or removals"));
        }
        for a in &p.additions {
            check_hash(&a.primary, "addition: primary hash must be 1..=1024 bytes")?;
            check_hash(&a.secondary, "addition: secondary hash must be 1..=1024 bytes")?;
            if a.sources.len() > usize::from(u8::MAX) {
                return Err(invalid("addition: more than 255 sources"));
            }
            if a.sources.len() < usize::from(p.min_sources) {
                return Err(invalid("addition: attested by fewer distinct sources than min_sources"));
            }
            if !strictly_ascending(&a.sources) {
                return Err(invalid("addition: sources must be sorted and distinct"));
            }
        }
        if !strictly_ascending(p.additions.iter().map(|a| &a.primary)) {
            return Err(invalid("additions: must be sorted by primary hash and unique"));
        }
        for r in &p.removals {
            check_hash(r, "removal: primary hash must be 1..=1024 bytes")?;
        }
        if !strictly_ascending(&p.removals) {
            return Err(invalid("removals: must be sorted and unique"));
        }
        // Both lists are sorted: a merge walk finds a common element.
        let (mut i, mut j) = (p.additions.iter().peekable(), p.removals.iter().peekable());
        while let (Some(a), Some(r)) = (i.peek(), j.peek()) {
            match a.primary.cmp(r) {
                core::cmp::Ordering::Less => _ = i.next(),
                core::cmp::Ordering::Greater => _ = j.next(),
                core::cmp::Ordering::Equal => return Err(invalid("release: an indicator is both added and removed")),
            }
        }
        let added = u64::try_from(p.additions.len()).unwrap_or(u64::MAX);
        if p.total < added {
            return Err(invalid("release total: smaller than the number of additions"));
        }
        if p.number == 1 && (!p.removals.is_empty() || p.total != added) {
            return Err(invalid("first release: no removals, and the total is the number of additions"));
        }
        Ok(())
    }

    /// The canonical encoding (see the crate documentation).
    pub fn encode(&self) -> Vec<u8> {
        let p = &self.parts;
        let mut out = Vec::with_capacity(
            64 + p
                .additions
                .iter()
                .map(|a| 6 + a.primary.len() + a.secondary.len() + 33 * a.sources.len())
                .sum::<usize>()
                + p.removals.iter().map(|r| 2 + r.len()).sum::<usize>(),
        );
        out.push(RELEASE_VERSION);
        put_u8_bytes(&mut out, p.line.as_bytes());
        out.extend_from_slice(&p.number.to_le_bytes());
        match &p.parent {
            None => out.push(0),
            Some(h) => {
                out.push(1);
                out.extend_from_slice(h);
            }
        }
        out.extend_from_slice(&p.hash_config.to_le_bytes());
        out.push(p.min_sources);
        out.extend_from_slice(&p.created_at.to_le_bytes());
        put_count(&mut out, p.additions.len());
        for a in &p.additions {
            put_u16_bytes(&mut out, &a.primary);
            put_u16_bytes(&mut out, &a.secondary);
            out.push(u8::try_from(a.sources.len()).unwrap_or(u8::MAX));
            for s in &a.sources {
                put_u8_bytes(&mut out, s.as_str().as_bytes());
            }
        }
        put_count(&mut out, p.removals.len());
        for r in &p.removals {
            put_u16_bytes(&mut out, r);
        }
        out.extend_from_slice(&p.total.to_le_bytes());
        out
    }

    /// Decodes a canonical encoding. Refuses any other: unsorted or repeated lists, out-of-range values, another
    /// version, truncation, trailing bytes. Never panics.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new("release", bytes);
        r.version(RELEASE_VERSION)?;
        let line = core::str::from_utf8(r.bytes_u8()?).map_err(|_| invalid("release line: not UTF-8"))?.to_owned();
        let number = r.u64()?;
        let parent = match r.u8()? {
            0 => None,
            1 => Some(r.array::<32>()?),
            _ => return Err(invalid("release parent flag: must be 0 or 1")),
        };
        let hash_config = r.u16()?;
        let min_sources = r.u8()?;
        let created_at = r.i64()?;
        // Counts come from the input: nothing is reserved ahead of the bytes that back it.
        let n = count(r.u32()?);
        let mut additions = Vec::new();
        for _ in 0..n {
            let primary = r.bytes_u16()?.to_vec();
            let secondary = r.bytes_u16()?.to_vec();
            let k = r.u8()?;
            let mut sources = Vec::with_capacity(usize::from(k));
            for _ in 0..k {
                sources.push(SourceId::from_bytes(r.bytes_u8()?)?);
            }
            additions.push(IndicatorEntry { primary, secondary, sources });
        }
        let n = count(r.u32()?);
        let mut removals = Vec::new();
        for _ in 0..n {
            removals.push(r.bytes_u16()?.to_vec());
        }
        let total = r.u64()?;
        r.finish()?;
        let release = Release {
            parts: ReleaseParts {
                line,
                number,
                parent,
                hash_config,
                min_sources,
                created_at,
                additions,
                removals,
                total,
            },
        };
        release.check()?;
        Ok(release)
    }

    /// The release line.
    pub fn line(&self) -> &str {
        &self.parts.line
    }
    /// The number in the line (1 for the first release).
    pub fn number(&self) -> u64 {
        self.parts.number
    }
    /// The hash of the previous signed release of the line (`None` for the first).
    pub fn parent(&self) -> Option<&[u8; 32]> {
        self.parts.parent.as_ref()
    }
    /// The hash configuration id.
    pub fn hash_config(&self) -> u16 {
        self.parts.hash_config
    }
    /// The admission threshold this release was built with.
    pub fn min_sources(&self) -> u8 {
        self.parts.min_sources
    }
    /// Creation time, seconds since the Unix epoch.
    pub fn created_at(&self) -> i64 {
        self.parts.created_at
    }
    /// The added indicators, sorted by primary hash.
    pub fn additions(&self) -> &[IndicatorEntry] {
        &self.parts.additions
    }
    /// The removed primary hashes, sorted.
    pub fn removals(&self) -> &[Vec<u8>] {
        &self.parts.removals
    }
    /// The size of the line's set after applying this release.
    pub fn total(&self) -> u64 {
        self.parts.total
    }
    /// The parts (for building a modified release, e.g. in tests; [`Release::new`] checks them again).
    pub fn to_parts(&self) -> ReleaseParts {
        self.parts.clone()
    }
}
