//! The Centre's indicator database (in memory; the CLI persists it): provenance, the admission rule, and the
//! planning of the next release of a line.

use std::collections::{BTreeMap, BTreeSet};

use core::fmt;

use crate::chain::ReleaseChain;
use crate::error::{Error, Result, invalid};
use crate::ids::{Attestation, SourceId, check_line};
use crate::labels::{DB_VERSION, MAX_HASH_LEN, MIN_HASH_LEN};
use crate::release::{IndicatorEntry, Release, ReleaseParts};
use crate::wire::{Reader, count, put_count, put_u8_bytes, put_u16_bytes};

/// One indicator of a source's list, as imported: its hashes under the database's hash configuration and the
/// source's own reference for it.
#[derive(Clone, PartialEq, Eq)]
pub struct ImportEntry {
    /// Canonical primary hash bytes (1..=1024).
    pub primary: Vec<u8>,
    /// Canonical secondary hash bytes (1..=1024).
    pub secondary: Vec<u8>,
    /// The source's reference (1..=128 bytes of UTF-8 without control characters).
    pub reference: String,
}

impl fmt::Debug for ImportEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImportEntry")
            .field("primary_len", &self.primary.len())
            .field("secondary_len", &self.secondary.len())
            .finish_non_exhaustive()
    }
}

/// Everything the Centre knows of one indicator: its hashes and who attested it.
#[derive(Clone, PartialEq, Eq)]
pub struct IndicatorRecord {
    /// Canonical primary hash bytes.
    pub primary: Vec<u8>,
    /// Canonical secondary hash bytes.
    pub secondary: Vec<u8>,
    /// The attestations, sorted, without repeats (one source may attest twice under two references: it still
    /// counts once).
    pub attestations: Vec<Attestation>,
}

impl IndicatorRecord {
    /// The distinct sources among the attestations, sorted.
    pub fn sources(&self) -> Vec<SourceId> {
        let set: BTreeSet<&SourceId> = self.attestations.iter().map(Attestation::source).collect();
        set.into_iter().cloned().collect()
    }
}

impl fmt::Debug for IndicatorRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IndicatorRecord")
            .field("primary_len", &self.primary.len())
            .field("secondary_len", &self.secondary.len())
            .field("attestations", &self.attestations)
            .finish()
    }
}

/// What an import changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ImportReport {
    /// Primary hashes the database did not know before.
    pub new_indicators: usize,
    /// Attestations added (to new or known indicators).
    pub new_attestations: usize,
    /// Entries the database already held exactly (source and reference): importing twice changes nothing.
    pub unchanged: usize,
}

/// The next release of a line, and what was left out of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NextRelease {
    /// The release, to be signed with [`crate::CentreSigningKey::sign`].
    pub release: Release,
    /// What went in and what was left out, as counts.
    pub report: ReleaseReport,
}

/// What a planned release contains and what it left out, as counts only (no hashes).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReleaseReport {
    /// The admission threshold applied.
    pub min_sources: u8,
    /// Indicators added by this release.
    pub added: usize,
    /// Indicators removed by this release.
    pub removed: usize,
    /// Admitted indicators already in the line's set.
    pub already_released: usize,
    /// Indicators left out for too few distinct sources: distinct source count → number of indicators.
    pub below_min_sources: BTreeMap<usize, usize>,
    /// Indicators left out because they are marked as false positives.
    pub false_positives: usize,
}

impl fmt::Display for ReleaseReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} added, {} removed, {} already released; left out: {} marked as false positives",
            self.added, self.removed, self.already_released, self.false_positives
        )?;
        for (have, n) in &self.below_min_sources {
            write!(f, ", {n} attested by {have} of {} sources", self.min_sources)?;
        }
        Ok(())
    }
}

fn check_hash(h: &[u8], what: &'static str) -> Result<()> {
    if (MIN_HASH_LEN..=MAX_HASH_LEN).contains(&h.len()) { Ok(()) } else { Err(invalid(what)) }
}

/// The Centre's indicators under one hash configuration, with their provenance, and the false positives found
/// in review.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct CentreDb {
    hash_config: u16,
    records: BTreeMap<Vec<u8>, IndicatorRecord>,
    false_positives: BTreeSet<Vec<u8>>,
}

impl fmt::Debug for CentreDb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CentreDb")
            .field("hash_config", &self.hash_config)
            .field("indicators", &self.records.len())
            .field("false_positives", &self.false_positives.len())
            .finish()
    }
}

impl CentreDb {
    /// An empty database for hashes under configuration `hash_config`.
    pub fn new(hash_config: u16) -> Self {
        CentreDb { hash_config, ..CentreDb::default() }
    }

    /// The hash configuration id of every indicator.
    pub fn hash_config(&self) -> u16 {
        self.hash_config
    }

    /// Merges a source's list: each entry becomes (or joins) the record of its primary hash, with an attestation
    /// by `source`. All or nothing: a refused import changes nothing. Idempotent: importing the same list again
    /// changes nothing. Refuses a list under another hash configuration, a malformed entry, and a primary hash
    /// whose secondary differs from the one recorded (or from another entry of the same list).
    pub fn import(&mut self, source: &SourceId, hash_config: u16, entries: &[ImportEntry]) -> Result<ImportReport> {
        if hash_config != self.hash_config {
            return Err(invalid("import: the list uses another hash configuration than the database"));
        }
        // Validate everything against the database and the list itself before changing anything.
        let mut staged: BTreeMap<&[u8], (&[u8], Vec<Attestation>)> = BTreeMap::new();
        for e in entries {
            check_hash(&e.primary, "import: primary hash must be 1..=1024 bytes")?;
            check_hash(&e.secondary, "import: secondary hash must be 1..=1024 bytes")?;
            let att = Attestation::new(source.clone(), &e.reference)?;
            if let Some(rec) = self.records.get(&e.primary)
                && rec.secondary != e.secondary
            {
                return Err(Error::SecondaryConflict);
            }
            let slot = staged.entry(&e.primary).or_insert_with(|| (&e.secondary, Vec::new()));
            if slot.0 != e.secondary.as_slice() {
                return Err(Error::SecondaryConflict);
            }
            slot.1.push(att);
        }
        let mut report = ImportReport::default();
        for (primary, (secondary, atts)) in staged {
            let rec = self.records.entry(primary.to_vec()).or_insert_with(|| {
                report.new_indicators += 1;
                IndicatorRecord { primary: primary.to_vec(), secondary: secondary.to_vec(), attestations: Vec::new() }
            });
            for att in atts {
                match rec.attestations.binary_search(&att) {
                    Ok(_) => report.unchanged += 1,
                    Err(at) => {
                        rec.attestations.insert(at, att);
                        report.new_attestations += 1;
                    }
                }
            }
        }
        Ok(report)
    }

    /// Marks a known indicator as a false positive (found in review): it is never admitted again, and a release
    /// may remove it. Returns whether it was newly marked.
    pub fn mark_false_positive(&mut self, primary: &[u8]) -> Result<bool> {
        if !self.records.contains_key(primary) {
            return Err(invalid("false positive: not an indicator of the database"));
        }
        Ok(self.false_positives.insert(primary.to_vec()))
    }

    /// Whether an indicator is marked as a false positive.
    pub fn is_false_positive(&self, primary: &[u8]) -> bool {
        self.false_positives.contains(primary)
    }

    /// The record of a primary hash.
    pub fn get(&self, primary: &[u8]) -> Option<&IndicatorRecord> {
        self.records.get(primary)
    }

    /// All records, sorted by primary hash.
    pub fn records(&self) -> impl Iterator<Item = &IndicatorRecord> + '_ {
        self.records.values()
    }

    /// The primary hashes marked as false positives, sorted.
    pub fn false_positives(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.false_positives.iter().map(Vec::as_slice)
    }

    /// The number of indicators (admitted or not).
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether the database holds no indicator.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The storage encoding (for the CLI to persist): `version (1) ‖ hash_config (u16) ‖ u32 record count ‖
    /// records ‖ u32 false-positive count ‖ false positives`. A record is `u16 len ‖ primary ‖ u16 len ‖ secondary
    /// ‖ u32 attestation count (≥ 1) ‖ attestations`, an attestation `u8 len ‖ source id ‖ u8 len ‖ reference`, a
    /// false positive `u16 len ‖ primary` (of a record). Records, attestations (by source, then reference) and
    /// false positives are strictly ascending; integers little-endian.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![DB_VERSION];
        out.extend_from_slice(&self.hash_config.to_le_bytes());
        put_count(&mut out, self.records.len());
        for rec in self.records.values() {
            put_u16_bytes(&mut out, &rec.primary);
            put_u16_bytes(&mut out, &rec.secondary);
            put_count(&mut out, rec.attestations.len());
            for a in &rec.attestations {
                put_u8_bytes(&mut out, a.source().as_str().as_bytes());
                put_u8_bytes(&mut out, a.reference().as_bytes());
            }
        }
        put_count(&mut out, self.false_positives.len());
        for p in &self.false_positives {
            put_u16_bytes(&mut out, p);
        }
        out
    }

    /// Decodes [`CentreDb::encode`]'s output; refuses any other encoding (never panics).
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new("centre database", bytes);
        r.version(DB_VERSION)?;
        let hash_config = r.u16()?;
        let mut records = BTreeMap::new();
        let mut last: Option<Vec<u8>> = None;
        for _ in 0..count(r.u32()?) {
            let primary = r.bytes_u16()?.to_vec();
            let secondary = r.bytes_u16()?.to_vec();
            check_hash(&primary, "database: primary hash must be 1..=1024 bytes")?;
            check_hash(&secondary, "database: secondary hash must be 1..=1024 bytes")?;
            if last.as_ref().is_some_and(|l| *l >= primary) {
                return Err(invalid("database: records must be sorted and unique"));
            }
            let n = count(r.u32()?);
            if n == 0 {
                return Err(invalid("database: a record without attestations"));
            }
            let mut attestations: Vec<Attestation> = Vec::new();
            for _ in 0..n {
                let source = SourceId::from_bytes(r.bytes_u8()?)?;
                let reference =
                    core::str::from_utf8(r.bytes_u8()?).map_err(|_| invalid("database: reference is not UTF-8"))?;
                let att = Attestation::new(source, reference)?;
                if attestations.last().is_some_and(|l| *l >= att) {
                    return Err(invalid("database: attestations must be sorted and unique"));
                }
                attestations.push(att);
            }
            last = Some(primary.clone());
            records.insert(primary.clone(), IndicatorRecord { primary, secondary, attestations });
        }
        let mut false_positives = BTreeSet::new();
        let mut last: Option<&[u8]> = None;
        for _ in 0..count(r.u32()?) {
            let p = r.bytes_u16()?;
            if last.is_some_and(|l| l >= p) {
                return Err(invalid("database: false positives must be sorted and unique"));
            }
            if !records.contains_key(p) {
                return Err(invalid("database: a false positive that is not a record"));
            }
            last = Some(p);
            false_positives.insert(p.to_vec());
        }
        r.finish()?;
        Ok(CentreDb { hash_config, records, false_positives })
    }

    /// Plans the next release of `line`: its additions are the admitted indicators not yet in the line's set
    /// (`previous`, the chain of the line's releases so far; `None` for the first release), its removals the given
    /// false positives.
    ///
    /// The admission rule: an indicator is admitted when at least `min_sources` (≥ 1) distinct sources attest
    /// it and it is not marked as a false positive. Each removal must be in the line's set and marked as a false
    /// positive (so that no later release can add it again). `now` must not be older than the previous release.
    pub fn next_release(
        &self,
        line: &str,
        previous: Option<&ReleaseChain>,
        min_sources: u8,
        now: i64,
        removals: &[Vec<u8>],
    ) -> Result<NextRelease> {
        check_line(line)?;
        if min_sources == 0 {
            return Err(invalid("min_sources: must be at least 1"));
        }
        let (number, parent) = match previous {
            None => (1, None),
            Some(chain) => {
                if chain.line() != line {
                    return Err(Error::Chain { reason: "the previous releases belong to another line" });
                }
                if chain.hash_config() != self.hash_config {
                    return Err(Error::Chain { reason: "the line uses another hash configuration than the database" });
                }
                if now < chain.created_at() {
                    return Err(Error::Chain { reason: "the release would be older than the previous one" });
                }
                let next = chain.number().checked_add(1).ok_or(invalid("release number: the line is exhausted"))?;
                (next, Some(chain.head()))
            }
        };
        let mut removal_set = BTreeSet::new();
        for r in removals {
            if !previous.is_some_and(|c| c.contains(r)) {
                return Err(Error::Removal { reason: "the indicator is not in the line's set" });
            }
            if !self.false_positives.contains(r) {
                return Err(Error::Removal { reason: "the indicator is not marked as a false positive" });
            }
            if !removal_set.insert(r.clone()) {
                return Err(Error::Removal { reason: "the indicator is removed twice" });
            }
        }

        let mut report = ReleaseReport { min_sources, ..ReleaseReport::default() };
        let mut additions = Vec::new();
        for rec in self.records.values() {
            if self.false_positives.contains(&rec.primary) {
                report.false_positives += 1;
                continue;
            }
            let sources = rec.sources();
            if sources.len() < usize::from(min_sources) {
                *report.below_min_sources.entry(sources.len()).or_insert(0) += 1;
                continue;
            }
            if let Some(held) = previous.and_then(|c| c.secondary(&rec.primary)) {
                if held != rec.secondary.as_slice() {
                    return Err(Error::SecondaryConflict);
                }
                report.already_released += 1;
                continue;
            }
            // A release names at most 255 sources per indicator: the first 255 (sorted) suffice for the rule.
            let sources = sources.into_iter().take(usize::from(u8::MAX)).collect();
            additions.push(IndicatorEntry { primary: rec.primary.clone(), secondary: rec.secondary.clone(), sources });
        }
        report.added = additions.len();
        report.removed = removal_set.len();
        let before = previous.map_or(0, ReleaseChain::len);
        let total = before
            .checked_add(additions.len())
            .and_then(|n| n.checked_sub(removal_set.len()))
            .and_then(|n| u64::try_from(n).ok())
            .ok_or(Error::Removal { reason: "more removals than indicators" })?;
        let release = Release::new(ReleaseParts {
            line: line.to_owned(),
            number,
            parent,
            hash_config: self.hash_config,
            min_sources,
            created_at: now,
            additions,
            removals: removal_set.into_iter().collect(),
            total,
        })?;
        Ok(NextRelease { release, report })
    }
}
