//! The load of the kill -9 tests (`crash_restart`, `replicas`): a governance fixture with six indicator images and
//! a hundred unrelated indicators, and two accounts' batches of vouchers: alice mixes the six matching images into
//! three passes over forty others (so she crosses the threshold, and repeats become null vouchers), bob sends only
//! others.
#![allow(dead_code)]

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use image::DynamicImage;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use tonic::metadata::MetadataValue;
use vouchsafe_phash::{AssociatedData, HashConfig, fixtures, hash_image};
use vouchsafe_proto::v1;
use vouchsafe_proto::v1::matching_client::MatchingClient;
use vouchsafe_protocol::client::{ClientSession, ClientState, VoucherKind};
use vouchsafe_protocol::table::ClientTable;
use vouchsafe_server::governance::{Fixture, FixtureSpec};
use vouchsafe_server::{AccountConfig, ServerConfig};

pub const ALICE: &str = "alice-token-crash-0123456789";
pub const BOB: &str = "bob-token-crash-0123456789ab";
pub const T: u16 = 4;
pub const PER_BATCH: usize = 8;

pub struct Batch {
    pub account: &'static str,
    pub token: &'static str,
    pub id: [u8; 16],
    pub vouchers: Vec<Vec<u8>>,
}

fn image_y_ad(seed: u64) -> (Vec<u8>, Vec<u8>) {
    let cfg = HashConfig::V1;
    let img = DynamicImage::ImageRgb8(fixtures::benign_image(seed, 96, 80));
    let h = hash_image(&cfg, &img).unwrap_or_else(|e| panic!("hash: {e}"));
    let ad = AssociatedData::new(&cfg, &h, [seed as u8; 32], 1_700_000_000 + seed)
        .unwrap_or_else(|e| panic!("ad: {e}"))
        .encode();
    (h.primary.to_canonical_bytes(), ad)
}

pub async fn submit(client: &mut MatchingClient<tonic::transport::Channel>, b: &Batch) -> Result<u32, tonic::Status> {
    let mut r = tonic::Request::new(v1::SubmitVouchersRequest {
        batch_id: b.id.to_vec(),
        vouchers: b.vouchers.clone(),
        client_state: vec![],
    });
    let v: MetadataValue<_> = format!("Bearer {}", b.token).parse().unwrap_or_else(|_| panic!("metadata"));
    r.metadata_mut().insert("authorization", v);
    r.set_timeout(Duration::from_secs(10));
    let ack = client.submit_vouchers(r).await?.into_inner();
    assert_eq!(ack.batch_id, b.id.to_vec(), "the acknowledgement names the batch");
    Ok(ack.accepted)
}

/// The fixture and the batches.
pub struct Scenario {
    pub config_path: PathBuf,
    pub config: ServerConfig,
    pub batches: Vec<Batch>,
    pub alice_vouchers: usize,
    pub bob_vouchers: usize,
    pub total: usize,
    /// The voucher ids of alice's real matches: exactly the items of her case.
    pub expected_items: HashSet<[u8; 16]>,
}

/// Builds the fixture in `dir` (the configuration tweaked by `tweak` before the table is built) and the batches.
pub fn scenario(dir: &Path, tweak: impl FnOnce(&mut ServerConfig)) -> Scenario {
    // The order, the Centre's release (6 fixture images plus unrelated entries, each from two sources), the
    // provider's signed table: the governance fixture of the server crate.
    let mut rng = ChaCha20Rng::seed_from_u64(99);
    let matching: Vec<(Vec<u8>, Vec<u8>)> = (0..6).map(image_y_ad).collect();
    let others: Vec<(Vec<u8>, Vec<u8>)> = (200..240).map(image_y_ad).collect();
    // Each indicator's secondary hash is its image's: the server checks the item's against it after the threshold.
    let secondary =
        |ad: &[u8]| AssociatedData::decode(ad).unwrap_or_else(|e| panic!("{e}")).secondary().to_canonical_bytes();
    let mut indicators: Vec<(Vec<u8>, Vec<u8>)> = matching.iter().map(|m| (m.0.clone(), secondary(&m.1))).collect();
    indicators.extend((0u32..100).map(|i| {
        let y = format!("unrelated indicator {i}").into_bytes();
        (y.clone(), y)
    }));
    let mut spec = FixtureSpec::new(indicators);
    spec.threshold = T;
    spec.synthetic_cap = 2;
    let mut fx = Fixture::create(dir, spec, &mut rng).unwrap_or_else(|e| panic!("{e}"));
    let c = &mut fx.config;
    c.chunk_slots = 64;
    c.worker.poll_interval_ms = 20;
    c.limits.max_vouchers_per_batch = PER_BATCH;
    c.limits.rate_burst = 100_000;
    c.limits.rate_vouchers_per_second = 100_000.0;
    c.accounts = vec![AccountConfig::new(ALICE, "alice"), AccountConfig::new(BOB, "bob")];
    tweak(c);
    fx.build_table(&mut rng).unwrap_or_else(|e| panic!("{e}"));
    let config_path: PathBuf = fx.write_config().unwrap_or_else(|e| panic!("{e}"));
    let c = fx.config.clone();
    let table = vouchsafe_server::load_table(&c.table).unwrap_or_else(|e| panic!("{e}"));
    let client_table = ClientTable::new(table.manifest(), table.slots().to_vec()).unwrap_or_else(|e| panic!("{e}"));

    // Vouchers: alice mixes the 6 matching images into 40 others; bob sends only others.
    let mut alice =
        ClientSession::new(ClientState::new(client_table.params(), &mut rng)).unwrap_or_else(|e| panic!("{e}"));
    let mut bob =
        ClientSession::new(ClientState::new(client_table.params(), &mut rng)).unwrap_or_else(|e| panic!("{e}"));
    let mut expected_items: HashSet<[u8; 16]> = HashSet::new();
    // Three passes over the photos: repeats become null vouchers, which the server must store and count all the same.
    let mut alice_vs = Vec::new();
    for (i, (y, ad)) in others.iter().chain(others.iter()).chain(others.iter()).enumerate() {
        if i % 7 == 3 && i / 7 < matching.len() {
            let (my, mad) = &matching[i / 7];
            let made = alice.voucher(&client_table, my, mad, &mut rng).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(made.kind, VoucherKind::Real);
            expected_items.insert(made.voucher.id);
            alice_vs.push(made.voucher.encode());
        }
        let made = alice.voucher(&client_table, y, ad, &mut rng).unwrap_or_else(|e| panic!("{e}"));
        alice_vs.push(made.voucher.encode());
    }
    assert_eq!(expected_items.len(), 6);
    let bob_vs: Vec<Vec<u8>> = others
        .iter()
        .chain(others.iter())
        .chain(others.iter())
        .map(|(y, ad)| bob.voucher(&client_table, y, ad, &mut rng).unwrap_or_else(|e| panic!("{e}")).voucher.encode())
        .collect();
    let mut batches: Vec<Batch> = Vec::new();
    let mut n = 0u8;
    let (mut ai, mut bi) = (alice_vs.chunks(PER_BATCH), bob_vs.chunks(PER_BATCH));
    loop {
        let (a, b) = (ai.next(), bi.next());
        if a.is_none() && b.is_none() {
            break;
        }
        for (acc, tok, chunk) in [("alice", ALICE, a), ("bob", BOB, b)] {
            if let Some(ch) = chunk {
                n += 1;
                batches.push(Batch { account: acc, token: tok, id: [n; 16], vouchers: ch.to_vec() });
            }
        }
    }
    assert!(batches.len() >= 30);
    let total: usize = batches.iter().map(|b| b.vouchers.len()).sum();

    Scenario {
        config_path,
        config: c,
        alice_vouchers: alice_vs.len(),
        bob_vouchers: bob_vs.len(),
        batches,
        total,
        expected_items,
    }
}
