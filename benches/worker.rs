//! The matching worker's throughput (opening, threshold steps, filing, the store transaction) by client pattern,
//! next to the raw single-thread open rate on the same vouchers, in the same run (docs/PERFORMANCE.md, "The worker
//! by client pattern"). Every pattern processes the same number of vouchers, one in 8 for an indicator, T = 30,
//! s = 60, p = 1/16 (so each state makes synthetic vouchers, up to its cap):
//!
//! * `one state per account`: 32 accounts, one device each;
//! * `four states per account`: 8 accounts with 4 devices each, every batch naming its client state;
//! * `shared accounts, no state ids`: the same 8 × 4 devices, but sending no client-state id (clients from before
//!   ids existed): each account's shares of 4 polynomials (and 4 states' synthetics, more than s) are mixed;
//! * `one account flooded with states`: one account with 32 states (a hostile client; the server's
//!   `max_client_states` would refuse beyond 8, here the store takes them all to measure the worst case).
//!
//! `cargo bench --bench worker` (`VOUCHSAFE_WORKER_BATCHES`, default 64 batches of 256 vouchers per pattern). The
//! store is a file database with its spool, as in production; filling it is not measured.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // bench code

mod common;

use std::time::Instant;

use rand::{Rng as _, SeedableRng};
use rand_chacha::ChaCha20Rng;
use vouchsafe_protocol::client::{ClientSession, ClientState};
use vouchsafe_protocol::params::EpochParams;
use vouchsafe_protocol::table::ClientTable;
use vouchsafe_protocol::voucher::Opener;
use vouchsafe_server::governance::{Fixture, FixtureSpec};
use vouchsafe_server::{ServerConfig, process_pending};
use vouchsafe_store::{DEFAULT_CLIENT_STATE, NewBatch, SqliteStore, Store};

const PER_BATCH: usize = 256;
const MATCH_EVERY: usize = 8;
const PICTURES: usize = 256;
const INDICATORS: usize = 10_000;

/// Peak resident memory of this process so far (Linux `VmHWM`), in MiB.
fn peak_rss_mib() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: f64 = s.lines().find(|l| l.starts_with("VmHWM:"))?.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

struct Pattern {
    name: &'static str,
    /// (account, number of client states)
    accounts: Vec<(String, usize)>,
    /// Whether batches name their client state.
    ids: bool,
}

fn main() {
    let batches: usize =
        std::env::var("VOUCHSAFE_WORKER_BATCHES").ok().and_then(|v| v.parse().ok()).filter(|&v| v > 0).unwrap_or(64);
    let dir = tempfile::tempdir().unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(77);
    let pics = common::Pictures::new(PICTURES);
    let indicators = pics.indicators(INDICATORS);
    let pictures = pics.items;
    let mut spec = FixtureSpec::new(indicators);
    spec.threshold = 30;
    spec.synthetic_cap = 60;
    spec.synthetic_rate = EpochParams::rate_from_probability(1.0 / 16.0);
    let mut c = ServerConfig::in_dir(dir.path());
    c.limits.max_vouchers_per_batch = PER_BATCH;
    c.limits.max_message_bytes = 16 << 20;
    let mut fx = Fixture::create(dir.path(), spec, &mut rng).unwrap();
    fx.config = c.clone();
    fx.build_table(&mut rng).unwrap();
    let gov = fx.governance().unwrap();
    let table = vouchsafe_server::load_table(&c.table).unwrap();
    let client_table = ClientTable::new(table.manifest(), table.slots().to_vec()).unwrap();
    let opener = Opener::new(table.key().clone(), table.params().clone()).unwrap();
    let order = *gov.order().order_id();

    let accounts = |n: usize, states: usize| (0..n).map(|i| (format!("account-{i}"), states)).collect::<Vec<_>>();
    let patterns = [
        Pattern { name: "one state per account", accounts: accounts(32, 1), ids: true },
        Pattern { name: "four states per account", accounts: accounts(8, 4), ids: true },
        Pattern { name: "shared accounts, no state ids", accounts: accounts(8, 4), ids: false },
        Pattern { name: "one account flooded with states", accounts: accounts(1, 32), ids: true },
    ];
    let n = batches * PER_BATCH;
    println!("worker throughput, {n} vouchers per pattern (1 in {MATCH_EVERY} an indicator), T = 30, s = 60, p = 1/16");
    println!(
        "{:<34} {:>11} {:>11} {:>7} {:>8} {:>9} {:>8} {:>10}",
        "pattern", "worker v/s", "raw 1-core", "ratio", "reveals", "failures", "skipped", "case items"
    );
    for (pi, p) in patterns.iter().enumerate() {
        // Every client state gets an equal share of the batches; states are interleaved batch by batch.
        let states: Vec<(String, ClientSession)> = p
            .accounts
            .iter()
            .flat_map(|(a, k)| (0..*k).map(move |_| a.clone()))
            .map(|a| (a, ClientSession::new(ClientState::new(client_table.params(), &mut rng)).unwrap()))
            .collect();
        let mut states = states;
        let mut all: Vec<(usize, Vec<Vec<u8>>)> = Vec::new();
        let per_state = batches.div_ceil(states.len());
        for b in 0..per_state {
            for (si, (_, session)) in states.iter_mut().enumerate() {
                if all.len() == batches {
                    break;
                }
                let vs = (0..PER_BATCH)
                    .map(|i| {
                        let k = b * PER_BATCH + i;
                        let (y, ad) = if k.is_multiple_of(MATCH_EVERY) {
                            pictures[(si * 37 + k / MATCH_EVERY) % PICTURES].clone()
                        } else {
                            let mut y = [0u8; 16];
                            rng.fill_bytes(&mut y);
                            (y.to_vec(), pictures[0].1.clone())
                        };
                        session.voucher(&client_table, &y, &ad, &mut rng).unwrap().voucher.encode()
                    })
                    .collect();
                all.push((si, vs));
            }
        }
        let store = SqliteStore::open(dir.path().join(format!("pattern-{pi}.db"))).unwrap();
        for (i, (si, vs)) in all.iter().enumerate() {
            let (account, session) = &states[*si];
            let client_state = if p.ids { session.state().state_id().unwrap() } else { DEFAULT_CLIENT_STATE };
            let mut batch_id = [0u8; 16];
            batch_id[..8].copy_from_slice(&(i as u64).to_le_bytes());
            store
                .store_batch(&NewBatch {
                    account,
                    client_state,
                    batch_id,
                    vouchers: vs,
                    received_at: 1,
                    state_limit: Some((order, 1024)),
                })
                .unwrap();
        }
        // Raw: one thread, the same vouchers.
        let t = Instant::now();
        for (_, vs) in &all {
            std::hint::black_box(opener.open_bytes_batch(vs));
        }
        let raw = n as f64 / t.elapsed().as_secs_f64();
        let t = Instant::now();
        let r = process_pending(&c, &gov, &table, &store).unwrap();
        let rate = n as f64 / t.elapsed().as_secs_f64();
        assert_eq!(r.vouchers as usize, n);
        println!(
            "{:<34} {:>11.0} {:>11.0} {:>6.2}× {:>8} {:>9} {:>8} {:>10}",
            p.name,
            rate,
            raw,
            rate / raw,
            r.reveals,
            r.threshold_failures,
            r.threshold_skipped,
            r.case_items
        );
    }
    if let Some(m) = peak_rss_mib() {
        println!("peak resident memory of the bench process: {m:.0} MiB");
    }
}
