//! Known-answer vectors (tests/vectors/v1.json), generated from a seeded ChaCha20 RNG: the keys come from the
//! RNG, ids and times are fixed, Ed25519 signing is deterministic, so every byte reproduces. Regenerate with
//! `VOUCHSAFE_WRITE_VECTORS=1 cargo test -p vouchsafe-case --test vectors` (only when the format version changes).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // test code: a failure is the test failing

mod common;
use common::*;
use serde_json::{Value, json};
use vouchsafe_case::*;

fn generate() -> Value {
    let k = keys(2026);
    let message = |m: Message| {
        let body = m.encode().unwrap();
        let signed = k.provider.sign(&m).unwrap();
        json!({
            "encoding": hex::encode(&body),
            "signature_input": hex::encode([LABEL_MESSAGE_SIGN, &body].concat()),
            "signed": hex::encode(signed.encode()),
            "digest": hex::encode(signed.digest()),
        })
    };
    let receipts: Vec<Value> = receipts(&k)
        .iter()
        .map(|r| {
            let body = r.encode().unwrap();
            json!({
                "verdict": r.verdict.as_str(),
                "encoding": hex::encode(&body),
                "signature_input": hex::encode([LABEL_RECEIPT_SIGN, &body].concat()),
                "signed": hex::encode(k.centre.sign(r).unwrap().encode()),
            })
        })
        .collect();
    let t = transparency();
    let t_body = t.encode().unwrap();
    json!({
        "format": "vouchsafe/v1/case",
        "rng": "ChaCha20 (rand_chacha 0.10), seed = 2026u64 little-endian in the first 8 bytes, zeros after; four 32-byte Ed25519 seeds drawn in order: provider, other provider, Centre, other Centre",
        "provider_secret": hex::encode(&k.provider.to_secret_bytes()[..]),
        "provider_public": hex::encode(k.provider.public().to_bytes()),
        "provider_key_id": hex::encode(k.provider.public().key_id()),
        "centre_secret": hex::encode(k.centre_secret),
        "centre_public": hex::encode(k.centre.public().to_bytes()),
        "report": message(Message::Report(report())),
        "withdrawal": message(Message::Withdrawal(withdrawal())),
        "feedback": message(Message::Feedback(feedback())),
        "receipts": receipts,
        "transparency_report": {
            "encoding": hex::encode(&t_body),
            "signature_input": hex::encode([LABEL_TRANSPARENCY_SIGN, &t_body].concat()),
            "signed": hex::encode(k.provider.sign_transparency(&t).unwrap().encode()),
        },
        "export": {
            "bundle": hex::encode(BUNDLE),
            "signature_input": hex::encode([LABEL_EXPORT_SIGN, &sha2_256(BUNDLE)].concat()),
            "signature": hex::encode(k.centre.sign_export(BUNDLE)),
        },
    })
}

fn sha2_256(b: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(b).into()
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

/// The encoder written from the docs alone gives the crate's bytes, signatures included.
#[test]
fn documented_layouts_match_the_crate() {
    let k = keys(2026);
    let secret = *k.provider.to_secret_bytes();
    for m in [Message::Report(report()), Message::Withdrawal(withdrawal()), Message::Feedback(feedback())] {
        assert_eq!(spec::message(&m), m.encode().unwrap(), "{:?}", m.kind());
        let signed = spec::signed(&secret, LABEL_MESSAGE_SIGN, &spec::message(&m));
        assert_eq!(signed, k.provider.sign(&m).unwrap().encode());
        let digest = sha2_256(&[LABEL_MESSAGE_DIGEST, &signed].concat());
        assert_eq!(digest, SignedMessage::decode(&signed).unwrap().digest());
    }
    for r in receipts(&k) {
        assert_eq!(spec::receipt(&r), r.encode().unwrap());
        assert_eq!(
            spec::signed(&k.centre_secret, LABEL_RECEIPT_SIGN, &spec::receipt(&r)),
            k.centre.sign(&r).unwrap().encode()
        );
    }
    let t = transparency();
    assert_eq!(spec::transparency(&t), t.encode().unwrap());
    assert_eq!(
        spec::signed(&secret, LABEL_TRANSPARENCY_SIGN, &spec::transparency(&t)),
        k.provider.sign_transparency(&t).unwrap().encode()
    );
    // The key id: the first 8 bytes of SHA-256(label ‖ key).
    let pk = k.provider.public().to_bytes();
    assert_eq!(k.provider.public().key_id()[..], sha2_256(&[LABEL_PROVIDER_KEY_ID, &pk].concat())[..8]);
}

/// The stored bytes stand on their own: they decode, verify under the stored public keys (also with plain
/// Ed25519 over the stored signature input) and re-encode unchanged.
#[test]
fn stored_vectors_verify() {
    let path = format!("{}/tests/vectors/v1.json", env!("CARGO_MANIFEST_DIR"));
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let hexv = |x: &Value| hex::decode(x.as_str().unwrap()).unwrap();
    let key32 = |x: &Value| -> [u8; 32] { hexv(x).try_into().unwrap() };
    let provider = ProviderKey::from_bytes(&key32(&v["provider_public"])).unwrap();
    let centre = CentreReceiptKey::from_bytes(&key32(&v["centre_public"])).unwrap();
    assert_eq!(hex::encode(provider.key_id()), v["provider_key_id"].as_str().unwrap());
    let raw_verify = |public: &Value, input: &[u8], sig: &[u8]| {
        let pk = ed25519_dalek::VerifyingKey::from_bytes(&key32(public)).unwrap();
        pk.verify_strict(input, &ed25519_dalek::Signature::from_bytes(sig.try_into().unwrap())).unwrap();
    };
    for (name, kind) in
        [("report", MessageKind::Report), ("withdrawal", MessageKind::Withdrawal), ("feedback", MessageKind::Feedback)]
    {
        let signed_bytes = hexv(&v[name]["signed"]);
        let signed = SignedMessage::decode(&signed_bytes).unwrap();
        assert_eq!(signed.encode(), signed_bytes);
        let m = signed.verify(&provider).unwrap();
        assert_eq!(m.kind(), kind);
        assert_eq!(m.encode().unwrap(), hexv(&v[name]["encoding"]));
        assert_eq!(hex::encode(signed.digest()), v[name]["digest"].as_str().unwrap());
        raw_verify(&v["provider_public"], &hexv(&v[name]["signature_input"]), &signed_bytes[1..65]);
    }
    let receipts = v["receipts"].as_array().unwrap();
    assert_eq!(receipts.len(), 4);
    for r in receipts {
        let signed_bytes = hexv(&r["signed"]);
        let signed = SignedReceipt::decode(&signed_bytes).unwrap();
        assert_eq!(signed.encode(), signed_bytes);
        let receipt = signed.verify(&centre).unwrap();
        assert_eq!(receipt.verdict.as_str(), r["verdict"].as_str().unwrap());
        assert_eq!(receipt.encode().unwrap(), hexv(&r["encoding"]));
        raw_verify(&v["centre_public"], &hexv(&r["signature_input"]), &signed_bytes[1..65]);
    }
    let t = &v["transparency_report"];
    let signed_bytes = hexv(&t["signed"]);
    let signed = SignedTransparencyReport::decode(&signed_bytes).unwrap();
    assert_eq!(signed.encode(), signed_bytes);
    assert_eq!(signed.verify(&provider).unwrap().encode().unwrap(), hexv(&t["encoding"]));
    raw_verify(&v["provider_public"], &hexv(&t["signature_input"]), &signed_bytes[1..65]);
    let e = &v["export"];
    let sig: [u8; 64] = hexv(&e["signature"]).try_into().unwrap();
    centre.verify_export(&hexv(&e["bundle"]), &sig).unwrap();
    raw_verify(&v["centre_public"], &hexv(&e["signature_input"]), &sig);
    // The receipt signer is the Centre's release key's secret: the same public bytes as plain Ed25519 gives.
    let secret = key32(&v["centre_secret"]);
    assert_eq!(ed25519_dalek::SigningKey::from_bytes(&secret).verifying_key().to_bytes(), centre.to_bytes());
    assert_eq!(CentreReceiptSigner::from_secret_bytes(&secret).public(), centre);
}
