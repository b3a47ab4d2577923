//! Known-answer vectors (tests/vectors/v1.json), generated from a seeded ChaCha20 RNG.
//!
//! The primitive vectors (H, positions, KDFs, context) are independent of RNG consumption; the flow vectors (table,
//! vouchers, openings, reveal) reproduce byte for byte for an implementation that draws randomness in the order
//! documented in docs/PROTOCOL.md ("Randomness order"). Regenerate with `VOUCHSAFE_WRITE_VECTORS=1 cargo test -p
//! vouchsafe-protocol --test vectors` (only when the protocol version changes).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // test code: a failure is the test failing

mod common;
use common::*;
use curve25519_dalek::scalar::Scalar;
use serde_json::{Value, json};
use vouchsafe_protocol::client::{ClientSession, ClientState};
use vouchsafe_protocol::crypto::{adkey, hash_to_group, position_key};
use vouchsafe_protocol::params::EpochParams;
use vouchsafe_protocol::table::{BlindingKey, ServerTable, TableConfig, positions};
use vouchsafe_protocol::threshold::{ThresholdOutcome, try_reveal};
use vouchsafe_protocol::voucher::{OpenOutcome, Opener};

#[path = "vectors_extra/mod.rs"]
mod extra;
use extra::*;

fn generate() -> Value {
    // Primitives.
    let nonce = [0x11u8; 16];
    let ys: Vec<Vec<u8>> = vec![b"a".to_vec(), vec![0u8; 35], (0u8..=255).collect()];
    let h2g: Vec<Value> = ys
        .iter()
        .map(|y| json!({"nonce": hex::encode(nonce), "y": hex::encode(y), "H": hex::encode(hash_to_group(&nonce, y).compress().as_bytes())}))
        .collect();
    let pos: Vec<Value> = ys
        .iter()
        .flat_map(|y| [11u32, 1000, 1 << 20].map(|m| json!({"nonce": hex::encode(nonce), "m": m, "y": hex::encode(y), "positions": positions(&nonce, m, y)})))
        .collect();
    let k = position_key(&[1u8; 32], &[2u8; 32], &[3u8; 32], &[4u8; 16]);
    let a0 = Scalar::from(123456789u64);
    let ak = adkey(&a0, &[5u8; 16]);

    // Flow.
    let mut rng = rng(2026);
    let cfg = TableConfig {
        epoch: 3,
        order_id: *b"kat-order-000001",
        threshold: 3,
        synthetic_cap: 2,
        synthetic_rate: 1 << 31,
        ad_len: 40,
        chunk_slots: 8,
    };
    let indicators = random_items(6, &mut rng);
    let key = BlindingKey::random(&mut rng);
    let table = ServerTable::build(&cfg, key.clone(), indicators.clone(), &mut rng).unwrap();
    let manifest = table.manifest();
    let client = download(&table);
    let opener = Opener::new(key.clone(), table.params().clone()).unwrap();
    let state = ClientState::new(table.params(), &mut rng);
    let state_bytes = state.encode().to_vec();
    let state_id = state.state_id().unwrap();
    let mut session = ClientSession::new(state).unwrap();
    let mut images: Vec<Vec<u8>> = indicators.iter().take(4).cloned().collect();
    images.insert(1, random_items(1, &mut rng).pop().unwrap()); // a non-match
    images.push(indicators[0].clone()); // a repeat → null
    let mut vouchers = Vec::new();
    let mut opened = Vec::new();
    for (i, y) in images.iter().enumerate() {
        let ad = format!("ad-{i}").into_bytes();
        let made = session.voucher(&client, y, &ad, &mut rng).unwrap();
        let bytes = made.voucher.encode();
        let outcome = match opener.open_bytes(&bytes) {
            OpenOutcome::NonMatch => "non-match".to_string(),
            OpenOutcome::Opened(o) => {
                let s = hex::encode(&o.encode()[..]);
                opened.push(o);
                format!("opened:{s}")
            }
            OpenOutcome::Invalid(r) => format!("invalid:{r:?}"),
        };
        vouchers.push(json!({"image": hex::encode(y), "ad": hex::encode(&ad), "kind": format!("{:?}", made.kind), "voucher": hex::encode(&bytes), "server": outcome}));
    }
    let reveal = match try_reveal(&cfg.order_id, cfg.threshold, cfg.synthetic_cap, &opened).unwrap() {
        ThresholdOutcome::Below { distinct } => json!({"outcome": "below", "distinct": distinct}),
        ThresholdOutcome::Revealed(r) => json!({
            "outcome": "revealed",
            "real": r.real.iter().map(|i| json!({"id": hex::encode(i.id), "ad": hex::encode(&i.ad[..])})).collect::<Vec<_>>(),
            "synthetic": r.synthetic.iter().map(hex::encode).collect::<Vec<_>>(),
            "account": hex::encode(&r.account.encode()[..]),
        }),
    };
    let flow_after = flow_after(&cfg, &client, &opener, &mut session, &opened, &indicators, &mut rng);
    json!({
        "protocol": "vouchsafe/v1",
        "rng": "ChaCha20 (rand_chacha 0.10), seed = 2026u64 little-endian in the first 8 bytes, zeros after",
        "primitives": {
            "hash_to_group": h2g,
            "positions": pos,
            "position_key": {"S": hex::encode([1u8; 32]), "Q": hex::encode([2u8; 32]), "ctx": hex::encode([3u8; 32]), "id": hex::encode([4u8; 16]), "K": hex::encode(&k[..])},
            "adkey": {"a0": hex::encode(a0.as_bytes()), "order_id": hex::encode([5u8; 16]), "adkey": hex::encode(&ak[..])},
        },
        "flow": {
            "indicators": indicators.iter().map(hex::encode).collect::<Vec<_>>(),
            "alpha": hex::encode(&key.to_bytes()[..]),
            "params": hex::encode(table.params().encode()),
            "context": hex::encode(table.params().context()),
            "manifest": hex::encode(manifest.encode()),
            "root": hex::encode(manifest.root()),
            "chunks": (0..table.chunk_count()).map(|i| hex::encode(table.chunk(i).unwrap().encode())).collect::<Vec<_>>(),
            "client_state": hex::encode(&state_bytes),
            "client_state_id": hex::encode(state_id),
            "vouchers": vouchers,
            "reveal": reveal,
        },
        "flow_after": flow_after,
        "rng_stream": rng_stream(),
        "builds": builds(),
        "rejection": rejection(&client, &state_bytes, &indicators[5]),
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
    assert_eq!(got["primitives"], want["primitives"], "primitive vectors differ");
    assert_eq!(got["flow"], want["flow"], "flow vectors differ");
    for key in ["flow_after", "rng_stream", "builds", "rejection"] {
        assert_eq!(got[key], want[key], "{key} vectors differ");
    }
    assert_eq!(got, want, "the vectors file has other keys");
    // The vectors exercise every outcome.
    let kinds: Vec<&str> =
        want["flow"]["vouchers"].as_array().unwrap().iter().map(|v| v["kind"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"Real") && kinds.contains(&"Null"));
    assert_eq!(want["flow"]["reveal"]["outcome"], "revealed");
    // And the decoders accept what the vectors hold.
    let params = EpochParams::decode(&hex::decode(want["flow"]["params"].as_str().unwrap()).unwrap()).unwrap();
    assert_eq!(params.threshold, 3);
}
