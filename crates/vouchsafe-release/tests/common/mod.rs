//! Shared fixtures for the release tests.
#![allow(dead_code)]

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use vouchsafe_release::{
    CentreDb, CentreSigningKey, ImportEntry, IndicatorEntry, Release, ReleaseChain, ReleaseParts, SourceId,
    VerifiedRelease,
};

pub const CONFIG: u16 = 7;

pub fn rng(seed: u64) -> ChaCha20Rng {
    let mut s = [0u8; 32];
    s[..8].copy_from_slice(&seed.to_le_bytes());
    ChaCha20Rng::from_seed(s)
}

pub fn key(seed: u64) -> CentreSigningKey {
    CentreSigningKey::generate(&mut rng(seed))
}

pub fn src(s: &str) -> SourceId {
    SourceId::new(s).unwrap()
}

/// Primary hash number `i` (35 bytes, like a real primary), and its secondary.
pub fn primary(i: u8) -> Vec<u8> {
    vec![i; 35]
}
pub fn secondary(i: u8) -> Vec<u8> {
    vec![i ^ 0xa5; 16]
}

pub fn entry(i: u8, reference: &str) -> ImportEntry {
    ImportEntry { primary: primary(i), secondary: secondary(i), reference: reference.to_owned() }
}

pub fn indicator(i: u8, sources: &[&str]) -> IndicatorEntry {
    IndicatorEntry { primary: primary(i), secondary: secondary(i), sources: sources.iter().map(|s| src(s)).collect() }
}

/// The parts of release 1 of line "eu" with the given additions.
pub fn first_parts(additions: Vec<IndicatorEntry>) -> ReleaseParts {
    let total = additions.len() as u64;
    ReleaseParts {
        line: "eu".into(),
        number: 1,
        parent: None,
        hash_config: CONFIG,
        min_sources: 2,
        created_at: 1_760_000_000,
        additions,
        removals: vec![],
        total,
    }
}

/// The parts of the release after `chain`'s head.
pub fn next_parts(chain: &ReleaseChain, additions: Vec<IndicatorEntry>, removals: Vec<Vec<u8>>) -> ReleaseParts {
    let total = (chain.len() + additions.len() - removals.len()) as u64;
    ReleaseParts {
        line: chain.line().into(),
        number: chain.number() + 1,
        parent: Some(chain.head()),
        hash_config: chain.hash_config(),
        min_sources: 2,
        created_at: chain.created_at() + 60,
        additions,
        removals,
        total,
    }
}

pub fn signed(key: &CentreSigningKey, parts: ReleaseParts) -> VerifiedRelease {
    let release = Release::new(parts).unwrap();
    key.sign(&release).verify(&key.public()).unwrap()
}

/// A database with indicators 1..=3 from sources a and b, indicator 4 from a only, 5 from a twice.
pub fn db() -> CentreDb {
    let mut db = CentreDb::new(CONFIG);
    db.import(
        &src("a"),
        CONFIG,
        &[entry(1, "a-1"), entry(2, "a-2"), entry(3, "a-3"), entry(4, "a-4"), entry(5, "a-5")],
    )
    .unwrap();
    db.import(&src("a"), CONFIG, &[entry(5, "a-5-again")]).unwrap();
    db.import(&src("b"), CONFIG, &[entry(1, "b-1"), entry(2, "b-2"), entry(3, "b-3")]).unwrap();
    db
}
