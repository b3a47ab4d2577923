//! A release line applied in order: the provider's (and the Centre's) view of the current indicator set.

use std::collections::BTreeMap;

use core::fmt;

use crate::error::{Error, Result};
use crate::ids::SourceId;
use crate::signed::{KeyId, VerifiedRelease};

#[derive(Clone, PartialEq, Eq)]
struct Held {
    secondary: Vec<u8>,
    sources: Vec<SourceId>,
}

/// One indicator of the current set, borrowed from a [`ReleaseChain`].
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Indicator<'a> {
    /// Canonical primary hash bytes (what the provider blinds into the table).
    pub primary: &'a [u8],
    /// Canonical secondary hash bytes (what the provider's server compares after the threshold).
    pub secondary: &'a [u8],
    /// The distinct sources that attested it when it was added.
    pub sources: &'a [SourceId],
}

impl fmt::Debug for Indicator<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Indicator")
            .field("primary_len", &self.primary.len())
            .field("secondary_len", &self.secondary.len())
            .field("sources", &self.sources)
            .finish()
    }
}

/// The verified releases of one line, applied in order, and the indicator set they add up to.
///
/// Each applied release must: be of the same line and hash configuration, have number previous + 1, name the
/// hash of the previous signed release as its parent, not be older than the previous one, remove only indicators
/// in the set, add only indicators not in it, and state the resulting total. A refused release leaves the chain
/// unchanged. The chain holds every indicator's secondary hash: it belongs on the provider's server, and nothing
/// of it goes to a device except the primaries, blinded into the table.
#[derive(Clone, PartialEq, Eq)]
pub struct ReleaseChain {
    line: String,
    hash_config: u16,
    number: u64,
    head: [u8; 32],
    created_at: i64,
    min_sources: u8,
    key_id: KeyId,
    set: BTreeMap<Vec<u8>, Held>,
}

impl fmt::Debug for ReleaseChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReleaseChain")
            .field("line", &self.line)
            .field("hash_config", &self.hash_config)
            .field("number", &self.number)
            .field("indicators", &self.set.len())
            .finish_non_exhaustive()
    }
}

impl ReleaseChain {
    /// A chain that starts with the line's first release (number 1, no parent).
    pub fn new(first: &VerifiedRelease) -> Result<Self> {
        let r = first.release();
        if r.number() != 1 || r.parent().is_some() {
            return Err(Error::Chain { reason: "a chain starts with release number 1" });
        }
        let mut chain = ReleaseChain {
            line: r.line().to_owned(),
            hash_config: r.hash_config(),
            number: 0,
            head: [0u8; 32],
            created_at: r.created_at(),
            min_sources: r.min_sources(),
            key_id: first.key_id(),
            set: BTreeMap::new(),
        };
        chain.apply_unchecked_links(first)?;
        Ok(chain)
    }

    /// Applies the next release of the line, or refuses it (and stays unchanged).
    pub fn apply(&mut self, next: &VerifiedRelease) -> Result<()> {
        let r = next.release();
        if r.line() != self.line {
            return Err(Error::Chain { reason: "the release belongs to another line" });
        }
        if r.hash_config() != self.hash_config {
            return Err(Error::Chain { reason: "the release uses another hash configuration" });
        }
        if Some(r.number()) != self.number.checked_add(1) {
            return Err(Error::Chain { reason: "the release number is not the previous number + 1" });
        }
        if r.parent() != Some(&self.head) {
            return Err(Error::Chain { reason: "the parent is not the hash of the previous signed release" });
        }
        if r.created_at() < self.created_at {
            return Err(Error::Chain { reason: "the release is older than the previous one" });
        }
        self.apply_unchecked_links(next)
    }

    /// Checks the set changes and the total, then applies them (all or nothing).
    fn apply_unchecked_links(&mut self, next: &VerifiedRelease) -> Result<()> {
        let r = next.release();
        if r.removals().iter().any(|p| !self.set.contains_key(p)) {
            return Err(Error::Removal { reason: "the release removes an indicator that is not in the set" });
        }
        if r.additions().iter().any(|a| self.set.contains_key(&a.primary)) {
            return Err(Error::Chain { reason: "the release adds an indicator that is already in the set" });
        }
        // Additions and removals are disjoint (checked when the release was decoded or built).
        let total = self
            .set
            .len()
            .checked_add(r.additions().len())
            .and_then(|n| n.checked_sub(r.removals().len()))
            .and_then(|n| u64::try_from(n).ok());
        if total != Some(r.total()) {
            return Err(Error::Chain { reason: "the release's total does not match the set after applying it" });
        }
        for p in r.removals() {
            self.set.remove(p);
        }
        for a in r.additions() {
            self.set.insert(a.primary.clone(), Held { secondary: a.secondary.clone(), sources: a.sources.clone() });
        }
        self.number = r.number();
        self.head = next.hash();
        self.created_at = r.created_at();
        self.min_sources = r.min_sources();
        self.key_id = next.key_id();
        Ok(())
    }

    /// The line.
    pub fn line(&self) -> &str {
        &self.line
    }
    /// The hash configuration id of every indicator in the set.
    pub fn hash_config(&self) -> u16 {
        self.hash_config
    }
    /// The number of the last applied release.
    pub fn number(&self) -> u64 {
        self.number
    }
    /// The hash of the last applied signed release (the next release's parent).
    pub fn head(&self) -> [u8; 32] {
        self.head
    }
    /// The creation time of the last applied release.
    pub fn created_at(&self) -> i64 {
        self.created_at
    }
    /// The admission threshold the last applied release recorded.
    pub fn min_sources(&self) -> u8 {
        self.min_sources
    }
    /// The key id that signed the last applied release.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }
    /// The number of indicators in the current set.
    pub fn len(&self) -> usize {
        self.set.len()
    }
    /// Whether the current set is empty.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }
    /// Whether a primary hash is in the current set (variable time; the set is the provider's own data).
    pub fn contains(&self, primary: &[u8]) -> bool {
        self.set.contains_key(primary)
    }
    /// The secondary hash of an indicator of the current set, for the post-threshold check.
    pub fn secondary(&self, primary: &[u8]) -> Option<&[u8]> {
        self.set.get(primary).map(|h| h.secondary.as_slice())
    }
    /// The current set, sorted by primary hash.
    pub fn indicators(&self) -> impl Iterator<Item = Indicator<'_>> + '_ {
        self.set.iter().map(|(p, h)| Indicator { primary: p, secondary: &h.secondary, sources: &h.sources })
    }
}
