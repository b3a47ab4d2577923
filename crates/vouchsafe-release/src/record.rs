//! The public record of a release: everything about it except the indicators, signed by the Centre, so that a
//! public transparency log can show which releases exist, how they chain and what a table was built from without
//! ever publishing an indicator hash (they never leave the Centre and the provider's server).
//!
//! Encoding of a [`ReleaseRecord`] (version 1, integers little-endian):
//!
//! | field | bytes |
//! |---|---|
//! | version | 1: `0x01` |
//! | Centre key id | 16 |
//! | line length `n`, line | 1 + `n` (the release line rules) |
//! | number | 8 (`u64`, ≥ 1) |
//! | parent flag, parent | 1 (+ 32): `0x00` iff number = 1 |
//! | hash_config | 2 |
//! | min_sources | 1 (≥ 1) |
//! | created_at | 8 (`i64`) |
//! | additions, removals | 4 + 4 (`u32`) |
//! | total | 8 (`u64`, ≥ additions; number 1: removals = 0, total = additions) |
//! | release hash | 32: [`crate::VerifiedRelease::hash`] of the release it describes |
//!
//! A signed record is `0x01 ‖ record ‖ signature (64)`, the signature Ed25519 (strict) by the Centre key over
//! `"vouchsafe/v1/release/record/sign" ‖ record` ([`crate::labels::LABEL_RECORD_SIGNATURE`]): a different label
//! from the release's own signature, so neither can stand for the other.

use ed25519_dalek::{Signature, Signer as _};

use crate::error::{Error, Result, invalid};
use crate::ids::check_line;
use crate::labels::{KEY_ID_LEN, LABEL_RECORD_SIGNATURE, RECORD_VERSION};
use crate::signed::{CentreKey, CentreSigningKey, KeyId, VerifiedRelease};
use crate::wire::{Reader, put_u8_bytes};

/// What the public knows of a release: its place in its line, its counts and its hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReleaseRecord {
    /// The Centre key that signed the release (and this record).
    pub key_id: KeyId,
    /// The release line.
    pub line: String,
    /// The release number (1 for the first).
    pub number: u64,
    /// Hash of the previous signed release of the line (none for number 1).
    pub parent: Option<[u8; 32]>,
    /// The perceptual-hash configuration of the line.
    pub hash_config: u16,
    /// The admission rule the release kept: distinct sources per addition.
    pub min_sources: u8,
    /// When the Centre made it, Unix seconds.
    pub created_at: i64,
    /// Indicators added.
    pub additions: u32,
    /// Indicators removed (false positives).
    pub removals: u32,
    /// The line's set size after the release.
    pub total: u64,
    /// `VerifiedRelease::hash` of the release.
    pub release_hash: [u8; 32],
}

impl ReleaseRecord {
    fn check(&self) -> Result<()> {
        check_line(&self.line)?;
        if self.number == 0 {
            return Err(invalid("release record: number must be at least 1"));
        }
        if (self.number == 1) != self.parent.is_none() {
            return Err(invalid("release record: a parent exactly when the number is above 1"));
        }
        if self.min_sources == 0 {
            return Err(invalid("release record: min_sources must be at least 1"));
        }
        if self.total < u64::from(self.additions) {
            return Err(invalid("release record: total below the additions"));
        }
        if self.number == 1 && (self.removals != 0 || self.total != u64::from(self.additions)) {
            return Err(invalid("release record: the first release only adds"));
        }
        Ok(())
    }

    /// The canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + KEY_ID_LEN + 1 + self.line.len() + 8 + 33 + 2 + 1 + 8 + 8 + 8 + 32);
        out.push(RECORD_VERSION);
        out.extend_from_slice(&self.key_id);
        put_u8_bytes(&mut out, self.line.as_bytes());
        out.extend_from_slice(&self.number.to_le_bytes());
        match &self.parent {
            None => out.push(0),
            Some(p) => {
                out.push(1);
                out.extend_from_slice(p);
            }
        }
        out.extend_from_slice(&self.hash_config.to_le_bytes());
        out.push(self.min_sources);
        out.extend_from_slice(&self.created_at.to_le_bytes());
        out.extend_from_slice(&self.additions.to_le_bytes());
        out.extend_from_slice(&self.removals.to_le_bytes());
        out.extend_from_slice(&self.total.to_le_bytes());
        out.extend_from_slice(&self.release_hash);
        out
    }

    fn read(r: &mut Reader<'_>) -> Result<Self> {
        r.version(RECORD_VERSION)?;
        let key_id = r.array::<KEY_ID_LEN>()?;
        let line =
            std::str::from_utf8(r.bytes_u8()?).map_err(|_| invalid("release record: line is not UTF-8"))?.to_owned();
        let number = r.u64()?;
        let parent = match r.u8()? {
            0 => None,
            1 => Some(r.array::<32>()?),
            _ => return Err(invalid("release record: parent flag must be 0 or 1")),
        };
        let record = ReleaseRecord {
            key_id,
            line,
            number,
            parent,
            hash_config: r.u16()?,
            min_sources: r.u8()?,
            created_at: r.i64()?,
            additions: r.u32()?,
            removals: r.u32()?,
            total: r.u64()?,
            release_hash: r.array::<32>()?,
        };
        record.check()?;
        Ok(record)
    }

    /// Decodes a record, refusing anything out of its rules, truncation and trailing bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new("release record", bytes);
        let rec = Self::read(&mut r)?;
        r.finish()?;
        Ok(rec)
    }
}

fn record_input(record: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(LABEL_RECORD_SIGNATURE.len() + record.len());
    m.extend_from_slice(LABEL_RECORD_SIGNATURE);
    m.extend_from_slice(record);
    m
}

impl VerifiedRelease {
    /// The public record of this release (no indicator in it).
    pub fn record(&self) -> ReleaseRecord {
        let r = self.release();
        ReleaseRecord {
            key_id: self.key_id(),
            line: r.line().to_owned(),
            number: r.number(),
            parent: r.parent().copied(),
            hash_config: r.hash_config(),
            min_sources: r.min_sources(),
            created_at: r.created_at(),
            additions: u32::try_from(r.additions().len()).unwrap_or(u32::MAX),
            removals: u32::try_from(r.removals().len()).unwrap_or(u32::MAX),
            total: r.total(),
            release_hash: self.hash(),
        }
    }

    /// Whether `record` is exactly this release's record (what a provider checks before logging a record).
    pub fn matches_record(&self, record: &ReleaseRecord) -> bool {
        self.record() == *record
    }
}

impl CentreSigningKey {
    /// Signs the public record of a release this key signed ([`Error::WrongKey`] for a release of another key).
    pub fn sign_record(&self, release: &VerifiedRelease) -> Result<SignedReleaseRecord> {
        if release.key_id() != self.public().key_id() {
            return Err(Error::WrongKey);
        }
        let record = release.record();
        let signature = self.signing_key().sign(&record_input(&record.encode())).to_bytes();
        Ok(SignedReleaseRecord { record, signature })
    }
}

/// A [`ReleaseRecord`] with the Centre's signature; what the transparency log holds for a release.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedReleaseRecord {
    record: ReleaseRecord,
    signature: [u8; 64],
}

impl SignedReleaseRecord {
    /// The record (unverified).
    pub fn record(&self) -> &ReleaseRecord {
        &self.record
    }

    /// `0x01 ‖ record ‖ signature (64)`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![RECORD_VERSION];
        out.extend_from_slice(&self.record.encode());
        out.extend_from_slice(&self.signature);
        out
    }

    /// Decodes (the signature is not checked here).
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new("signed release record", bytes);
        r.version(RECORD_VERSION)?;
        let record = ReleaseRecord::read(&mut r)?;
        let signature = r.array::<64>()?;
        r.finish()?;
        Ok(SignedReleaseRecord { record, signature })
    }

    /// Verifies the Centre's signature under a pinned key (which must be the key the record names).
    pub fn verify(&self, key: &CentreKey) -> Result<ReleaseRecord> {
        if self.record.key_id != key.key_id() {
            return Err(Error::WrongKey);
        }
        key.verify_strict(&record_input(&self.record.encode()), &Signature::from_bytes(&self.signature))?;
        Ok(self.record.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CentreDb, ImportEntry, SourceId};
    use rand_core::SeedableRng;

    fn release(key: &CentreSigningKey) -> VerifiedRelease {
        let mut db = CentreDb::new(1);
        let e = |p: u8| ImportEntry { primary: vec![p; 8], secondary: vec![p; 4], reference: format!("r{p}") };
        for s in ["a", "b"] {
            let src = SourceId::new(s).unwrap_or_else(|e| panic!("{e}"));
            db.import(&src, 1, &[e(1), e(2)]).unwrap_or_else(|e| panic!("{e}"));
        }
        let next = db.next_release("line", None, 2, 100, &[]).unwrap_or_else(|e| panic!("{e}"));
        key.sign(&next.release).verify(&key.public()).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn record_round_trips_verifies_and_carries_no_indicator() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        let key = CentreSigningKey::generate(&mut rng);
        let rel = release(&key);
        let signed = key.sign_record(&rel).unwrap_or_else(|e| panic!("{e}"));
        let bytes = signed.encode();
        assert!(!bytes.windows(8).any(|w| w == [1u8; 8] || w == [2u8; 8]));
        let back = SignedReleaseRecord::decode(&bytes).unwrap_or_else(|e| panic!("{e}"));
        let rec = back.verify(&key.public()).unwrap_or_else(|e| panic!("{e}"));
        assert!(rel.matches_record(&rec));
        assert_eq!(rec.additions, 2);
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 1;
            let refused = SignedReleaseRecord::decode(&b).and_then(|s| s.verify(&key.public()));
            assert!(refused.is_err(), "flipped byte {i} accepted");
        }
        let other = CentreSigningKey::generate(&mut rng);
        assert!(matches!(back.verify(&other.public()), Err(Error::WrongKey)));
        assert!(matches!(other.sign_record(&rel), Err(Error::WrongKey)));
        let mut long = bytes.clone();
        long.push(0);
        assert!(matches!(SignedReleaseRecord::decode(&long), Err(Error::TrailingBytes { .. })));
    }
}
