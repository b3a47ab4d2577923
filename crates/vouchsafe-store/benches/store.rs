//! What the cover writes cost and whether they balance (docs/PERFORMANCE.md, "Leakage countermeasures"): completing a
//! round of batches in which **no** voucher opened, with cover writes (every voucher writes a same-sized zero row
//! into `store_cover`, schema v6) and without them (the old behaviour), next to a round in which **every** voucher
//! opened (every voucher writes its `opened_voucher` row), in one run. The cover's aim is that the first and the
//! last cost the same: then how long a round holds the write lock does not show what it found.
//!
//! `cargo bench -p vouchsafe-store --bench store`. A round is 16 batches of 64 vouchers, completed in one
//! transaction of a file database with its spool (inserting the batches is not measured); payloads of 4 411 bytes
//! (about an opened voucher's size at V1's 4 187 bytes of associated data). With
//! `VOUCHSAFE_BENCH_POSTGRES=postgresql:///…` the same three cases run on that PostgreSQL database too (group
//! `complete_round_postgres`, in a schema of its own, dropped at the end).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // bench code

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use vouchsafe_store::{BatchResults, InboxId, OpenedVoucher, PostgresOptions, PostgresStore, SqliteStore, Store};

const BATCHES: usize = 16;
const PER_BATCH: usize = 64;
const PAYLOAD: usize = 4_411;
const VOUCHER: usize = 1_000;

fn round(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("bench.db")).unwrap();
    round_on(c, "complete_round", &store);
    if let Ok(url) = std::env::var("VOUCHSAFE_BENCH_POSTGRES") {
        let schema = format!("store_bench_{}", std::process::id());
        let options = PostgresOptions { connections: 2, schema: Some(schema), ca: None };
        let pg = PostgresStore::open_with(&url, &options).unwrap();
        round_on(c, "complete_round_postgres", &pg);
        pg.drop_schema().unwrap();
    }
}

fn round_on(c: &mut Criterion, group_name: &str, store: &dyn Store) {
    let mut next = 0u64;
    let mut fresh_id = move || {
        next += 1;
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&next.to_le_bytes());
        id
    };
    let mut group = c.benchmark_group(group_name);
    group.sample_size(30);
    // (name, vouchers opened per batch, cover payload length)
    let cases = [
        ("nothing opened, cover writes", 0, PAYLOAD),
        ("everything opened", PER_BATCH, PAYLOAD),
        ("nothing opened, no cover writes", 0, 0),
    ];
    for (name, opened, cover) in cases {
        group.bench_function(name, |b| {
            b.iter_batched(
                || {
                    let vouchers = vec![vec![0x5a; VOUCHER]; PER_BATCH];
                    for _ in 0..BATCHES {
                        store.insert_batch("account", fresh_id(), &vouchers, 1).unwrap();
                    }
                    let ids: Vec<InboxId> = store.next_unprocessed(BATCHES).unwrap().iter().map(|b| b.id).collect();
                    let results: Vec<BatchResults> = (0..BATCHES)
                        .map(|_| BatchResults {
                            non_matches: (PER_BATCH - opened) as u64,
                            opened: (0..opened)
                                .map(|_| OpenedVoucher {
                                    order_id: [1; 16],
                                    voucher_id: fresh_id(),
                                    payload: vec![7; PAYLOAD],
                                })
                                .collect(),
                            order_id: Some([1; 16]),
                            cover_payload_len: cover,
                            ..Default::default()
                        })
                        .collect();
                    (ids, results)
                },
                |(ids, results): (Vec<InboxId>, Vec<BatchResults>)| {
                    let list: Vec<(InboxId, &BatchResults)> = ids.iter().copied().zip(results.iter()).collect();
                    store.complete_batches(&list, 2).unwrap();
                },
                BatchSize::PerIteration,
            );
        });
    }
    group.finish();
}

criterion_group!(benches, round);
criterion_main!(benches);
