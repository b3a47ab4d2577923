//! Known-answer vectors (tests/vectors/v1.json), generated from a seeded ChaCha20 RNG: the keys come from the
//! RNG, Ed25519 signing is deterministic, so every byte reproduces. Regenerate with `VOUCHSAFE_WRITE_VECTORS=1
//! cargo test -p vouchsafe-orders --test vectors` (only when the format version changes).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // test code: a failure is the test failing

mod common;
use common::*;
use serde_json::{Value, json};
use vouchsafe_orders::labels::{LABEL_MANIFEST_SIGN, LABEL_ORDER_SIGN, LABEL_REVOCATION_SIGN};
use vouchsafe_orders::{AuthorityKeyring, DetectionOrder, Revocation};

fn generate() -> Value {
    let k = keys(2026);
    let signed = signed(&k);
    let rev = revocation(&k);
    json!({
        "format": "vouchsafe/v1/order",
        "rng": "ChaCha20 (rand_chacha 0.10), seed = 2026u64 little-endian in the first 8 bytes, zeros after; four 32-byte Ed25519 seeds drawn in order: authority, other authority, Centre, provider table key",
        "authority_secret": hex::encode(&k.authority.to_secret_bytes()[..]),
        "authority_public": hex::encode(k.authority.public_key().to_bytes()),
        "authority_key_id": hex::encode(k.authority.key_id().as_bytes()),
        "keyring": hex::encode(keyring(&k).encode()),
        "order": hex::encode(signed.order().encode()),
        "order_signature_input": hex::encode([LABEL_ORDER_SIGN, &signed.order().encode()].concat()),
        "order_signature": hex::encode(signed.signature().to_bytes()),
        "signed_order": hex::encode(signed.encode()),
        "revocation": hex::encode(rev.revocation().encode()),
        "revocation_signature_input": hex::encode([LABEL_REVOCATION_SIGN, &rev.revocation().encode()].concat()),
        "revocation_signature": hex::encode(rev.signature().to_bytes()),
        "signed_revocation": hex::encode(rev.encode()),
        "table_public": hex::encode(k.table),
        "order_hash": hex::encode(signed.hash()),
        "manifest_statement": hex::encode(statement(&k).encode().unwrap()),
        "manifest_signature_input": hex::encode([LABEL_MANIFEST_SIGN, &statement(&k).encode().unwrap()].concat()),
        "signed_manifest": hex::encode(signed_manifest(&k).encode()),
    })
}

#[test]
fn known_answer_vectors_reproduce() {
    let path = format!("{}/tests/vectors/v1.json", env!("CARGO_MANIFEST_DIR"));
    let got = generate();
    if std::env::var_os("VOUCHSAFE_WRITE_VECTORS").is_some() {
        std::fs::write(&path, serde_json::to_string_pretty(&got).unwrap() + "\n").unwrap();
    }
    let want: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("vectors file")).unwrap();
    assert_eq!(got, want, "vectors differ");
}

/// The stored bytes stand on their own: they decode, verify under the stored keyring and re-encode unchanged.
#[test]
fn stored_vectors_verify() {
    let path = format!("{}/tests/vectors/v1.json", env!("CARGO_MANIFEST_DIR"));
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let bytes = |name: &str| hex::decode(v[name].as_str().unwrap()).unwrap();
    let ring = AuthorityKeyring::from_bytes(&bytes("keyring")).unwrap();
    assert_eq!(ring.encode(), bytes("keyring"));
    let order = ring.verify_order_bytes(&bytes("signed_order")).unwrap();
    assert_eq!(order.signed().encode(), bytes("signed_order"));
    assert_eq!(DetectionOrder::decode(&bytes("order")).unwrap().encode(), bytes("order"));
    assert_eq!(hex::encode(order.authority_key_id().as_bytes()), v["authority_key_id"].as_str().unwrap());
    let rev = ring.verify_revocation_bytes(&bytes("signed_revocation")).unwrap();
    assert_eq!(rev.signed().encode(), bytes("signed_revocation"));
    assert_eq!(Revocation::decode(&bytes("revocation")).unwrap().encode(), bytes("revocation"));
    // The signature input is the label followed by the encoding, and the signature is pure Ed25519 over it.
    let pk = ed25519_dalek::VerifyingKey::from_bytes(&bytes("authority_public").try_into().unwrap()).unwrap();
    let sig = ed25519_dalek::Signature::from_bytes(&bytes("order_signature").try_into().unwrap());
    pk.verify_strict(&bytes("order_signature_input"), &sig).unwrap();
    let sig = ed25519_dalek::Signature::from_bytes(&bytes("revocation_signature").try_into().unwrap());
    pk.verify_strict(&bytes("revocation_signature_input"), &sig).unwrap();
    assert!(order.check_active(NOT_BEFORE, &[rev]).is_err());
    // The manifest: the table key's signature over the label and the statement, naming the order's hash.
    assert_eq!(hex::encode(order.signed().hash()), v["order_hash"].as_str().unwrap());
    let m = order.verify_manifest_bytes(&bytes("signed_manifest")).unwrap();
    assert_eq!(m.signed().encode(), bytes("signed_manifest"));
    assert_eq!(m.statement().encode().unwrap(), bytes("manifest_statement"));
    let tk = ed25519_dalek::VerifyingKey::from_bytes(&bytes("table_public").try_into().unwrap()).unwrap();
    let sm = bytes("signed_manifest");
    let sig = ed25519_dalek::Signature::from_bytes(&sm[1..65].try_into().unwrap());
    tk.verify_strict(&bytes("manifest_signature_input"), &sig).unwrap();
}
