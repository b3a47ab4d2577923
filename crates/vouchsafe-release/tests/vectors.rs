//! Known-answer vectors (tests/vectors/release_v1.json): a Centre key from a seeded ChaCha20 RNG and two signed
//! releases of one line, byte for byte (Ed25519 is deterministic, so the signatures are fixed too). Regenerate with
//! `VOUCHSAFE_WRITE_VECTORS=1 cargo test -p vouchsafe-release --test vectors` (only when the format changes).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // test code: a failure is the test failing

mod common;
use common::*;
use serde_json::{Value, json};
use vouchsafe_release::{CentreKey, Release, ReleaseChain, ReleaseParts, SignedRelease, labels};

fn release_json(release: &Release, signed: &SignedRelease, hash: [u8; 32]) -> Value {
    let encoded = signed.encode();
    let key = key(2026);
    let record = key.sign_record(&signed.verify(&key.public()).unwrap()).unwrap();
    let rec = record.record().encode();
    json!({
        "record": hex::encode(&rec),
        "record_signature_input": hex::encode([labels::LABEL_RECORD_SIGNATURE, &rec].concat()),
        "signed_record": hex::encode(record.encode()),
        "release": hex::encode(release.encode()),
        "signature_input": hex::encode([labels::LABEL_SIGNATURE, &release.encode()].concat()),
        "signature": hex::encode(&encoded[encoded.len() - 64..]),
        "signed_release": hex::encode(&encoded),
        "release_hash": hex::encode(hash),
    })
}

fn generate() -> Value {
    let key = key(2026);
    let public = key.public();
    let r1 = Release::new(first_parts(vec![indicator(1, &["hotline-a", "hotline-b"]), indicator(2, &["a", "b", "c"])]))
        .unwrap();
    let s1 = key.sign(&r1);
    let v1 = s1.verify(&public).unwrap();
    let chain = ReleaseChain::new(&v1).unwrap();
    let r2 = Release::new(ReleaseParts {
        min_sources: 3,
        ..next_parts(
            &chain,
            vec![IndicatorEntry { primary: vec![0x42], ..indicator(3, &["x", "y", "z"]) }],
            vec![primary(2)],
        )
    })
    .unwrap();
    let s2 = key.sign(&r2);
    let v2 = s2.verify(&public).unwrap();
    json!({
        "format": "vouchsafe-release/v1",
        "rng": "ChaCha20 (rand_chacha 0.10), seed = 2026u64 little-endian in the first 8 bytes, zeros after; the key is its first 32 bytes",
        "key": {
            "secret": hex::encode(*key.to_bytes()),
            "public": hex::encode(public.to_bytes()),
            "key_id": hex::encode(public.key_id()),
        },
        "releases": [release_json(&r1, &s1, v1.hash()), release_json(&r2, &s2, v2.hash())],
    })
}

use vouchsafe_release::IndicatorEntry;

#[test]
fn known_answer_vectors_reproduce() {
    let path = format!("{}/tests/vectors/release_v1.json", env!("CARGO_MANIFEST_DIR"));
    let got = generate();
    if std::env::var_os("VOUCHSAFE_WRITE_VECTORS").is_some() {
        std::fs::write(&path, serde_json::to_string_pretty(&got).unwrap() + "\n").unwrap();
    }
    let want: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("vectors file")).unwrap();
    assert_eq!(got, want, "vectors differ");
}

/// The vectors verify and chain from the file alone (a reimplementation's check).
#[test]
fn vectors_verify_and_chain_from_the_file() {
    let path = format!("{}/tests/vectors/release_v1.json", env!("CARGO_MANIFEST_DIR"));
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let hexd = |v: &Value| hex::decode(v.as_str().unwrap()).unwrap();
    let public = CentreKey::from_bytes(&hexd(&v["key"]["public"]).try_into().unwrap()).unwrap();
    assert_eq!(public.key_id().to_vec(), hexd(&v["key"]["key_id"]));
    let mut chain: Option<ReleaseChain> = None;
    for r in v["releases"].as_array().unwrap() {
        let signed = SignedRelease::decode(&hexd(&r["signed_release"])).unwrap();
        let verified = signed.verify(&public).unwrap();
        assert_eq!(verified.release().encode(), hexd(&r["release"]));
        assert_eq!(verified.hash().to_vec(), hexd(&r["release_hash"]));
        // The public record: verifies under the key, describes exactly this release, carries no indicator.
        let record = vouchsafe_release::SignedReleaseRecord::decode(&hexd(&r["signed_record"])).unwrap();
        let rec = record.verify(&public).unwrap();
        assert!(verified.matches_record(&rec));
        assert_eq!(rec.encode(), hexd(&r["record"]));
        assert_eq!(record.encode(), hexd(&r["signed_record"]));
        match &mut chain {
            None => chain = Some(ReleaseChain::new(&verified).unwrap()),
            Some(c) => c.apply(&verified).unwrap(),
        }
    }
    let chain = chain.unwrap();
    assert_eq!(chain.number(), 2);
    assert_eq!(chain.indicators().map(|i| i.primary.to_vec()).collect::<Vec<_>>(), vec![primary(1), vec![0x42]]);
}

/// The encoding as the crate documentation spells it, byte by byte, written out by hand.
#[test]
fn the_documented_layout() {
    let release = Release::new(ReleaseParts {
        line: "l".into(),
        number: 1,
        parent: None,
        hash_config: 0x0102,
        min_sources: 1,
        created_at: -1,
        additions: vec![IndicatorEntry { primary: vec![0xaa], secondary: vec![0xbb, 0xcc], sources: vec![src("s")] }],
        removals: vec![],
        total: 1,
    })
    .unwrap();
    let want = concat!(
        "01", // version
        "01",
        "6c",               // line "l"
        "0100000000000000", // number 1
        "00",               // no parent
        "0201",             // hash_config 0x0102
        "01",               // min_sources
        "ffffffffffffffff", // created_at -1
        "01000000",         // one addition
        "0100",
        "aa", // primary
        "0200",
        "bbcc", // secondary
        "01",
        "01",
        "73",               // one source, "s"
        "00000000",         // no removals
        "0100000000000000", // total 1
    );
    assert_eq!(hex::encode(release.encode()), want);
    let mut p = release.to_parts();
    (p.number, p.parent, p.additions, p.removals, p.total) = (2, Some([0xee; 32]), vec![], vec![vec![0xaa]], 0);
    let second = Release::new(p).unwrap();
    let want = concat!(
        "01",
        "01",
        "6c",
        "0200000000000000",
        "01",
        "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee", // parent
        "0201",
        "01",
        "ffffffffffffffff",
        "00000000", // no additions
        "01000000",
        "0100",
        "aa", // one removal
        "0000000000000000",
    );
    assert_eq!(hex::encode(second.encode()), want);
}
