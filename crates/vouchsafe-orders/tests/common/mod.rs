//! Shared fixtures for the order tests.
#![allow(dead_code)]

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use vouchsafe_orders::{
    AuthorityKeyring, AuthoritySigningKey, DetectionOrder, MaterialKind, OrderTerms, Revocation, RevocationReason,
    Scope, SignedOrder, SignedRevocation, TableSigningKey,
};

/// ChaCha20 seeded with `seed` little-endian in the first 8 bytes, zeros after.
pub fn rng(seed: u64) -> ChaCha20Rng {
    let mut s = [0u8; 32];
    s[..8].copy_from_slice(&seed.to_le_bytes());
    ChaCha20Rng::from_seed(s)
}

pub const NOT_BEFORE: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z
pub const NOT_AFTER: i64 = NOT_BEFORE + 180 * 86_400;

pub struct Keys {
    pub authority: AuthoritySigningKey,
    pub other: AuthoritySigningKey,
    pub centre: [u8; 32],
    pub table: [u8; 32],
    pub table_key: TableSigningKey,
}

pub fn keys(seed: u64) -> Keys {
    let mut r = rng(seed);
    let authority = AuthoritySigningKey::generate(&mut r);
    let other = AuthoritySigningKey::generate(&mut r);
    let centre = AuthoritySigningKey::generate(&mut r).public_key().to_bytes();
    // The same 32-byte draw as an authority key would take, so the public key (and every vector) is unchanged.
    let table_key = TableSigningKey::generate(&mut r);
    let table = table_key.public_key();
    Keys { authority, other, centre, table, table_key }
}

pub fn terms(k: &Keys) -> OrderTerms {
    OrderTerms {
        order_id: *b"kat-order-000001",
        service_id: "example-messenger.eu".into(),
        scope: Scope::Groups(vec!["group-b".into(), "group-a".into()]),
        material: MaterialKind::KnownImagery,
        not_before: NOT_BEFORE,
        not_after: NOT_AFTER,
        threshold: 30,
        synthetic_rate: 1 << 28,
        synthetic_cap: 60,
        hash_config: 1,
        centre_key: k.centre,
        release_line: "eu-known-imagery".into(),
        table_key: k.table,
        excluded_classes: vec!["state-security".into(), "government".into()],
        authority_key_id: k.authority.key_id(),
    }
}

pub fn order(k: &Keys) -> DetectionOrder {
    DetectionOrder::new(terms(k)).unwrap()
}

pub fn signed(k: &Keys) -> SignedOrder {
    k.authority.sign_order(order(k)).unwrap()
}

pub fn revocation(k: &Keys) -> SignedRevocation {
    let r =
        Revocation::new(*order(k).order_id(), NOT_BEFORE + 86_400, RevocationReason::Annulled, k.authority.key_id());
    k.authority.sign_revocation(r).unwrap()
}

pub fn keyring(k: &Keys) -> AuthorityKeyring {
    AuthorityKeyring::new([k.authority.public_key().clone(), k.other.public_key().clone()]).unwrap()
}

/// Replaces the one occurrence of `old` in `bytes` with `new` (same length); panics unless there is exactly one.
pub fn patch(bytes: &[u8], old: &[u8], new: &[u8]) -> Vec<u8> {
    assert_eq!(old.len(), new.len());
    let hits: Vec<usize> = (0..=bytes.len() - old.len()).filter(|&i| &bytes[i..i + old.len()] == old).collect();
    assert_eq!(hits.len(), 1, "pattern must occur exactly once");
    let mut out = bytes.to_vec();
    out[hits[0]..hits[0] + old.len()].copy_from_slice(new);
    out
}

/// A manifest statement for the fixture order (the table manifest is opaque bytes here).
pub fn statement(k: &Keys) -> vouchsafe_orders::ManifestStatement {
    let o = signed(k);
    vouchsafe_orders::ManifestStatement {
        order_id: *o.order().order_id(),
        order_hash: o.hash(),
        release_number: 1,
        release_hash: [0x5a; 32],
        issued_at: NOT_BEFORE + 3600,
        table_manifest: b"protocol TableManifest encoding".to_vec(),
    }
}

pub fn signed_manifest(k: &Keys) -> vouchsafe_orders::SignedManifest {
    let verified = keyring(k).verify_order(&signed(k)).unwrap();
    k.table_key.sign_manifest(&verified, statement(k)).unwrap()
}
