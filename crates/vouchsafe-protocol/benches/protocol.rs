//! Protocol benches, each beside the primitive floor it is measured against (DESIGN.md §7). After criterion's
//! run it prints the ratios, and, if `python3 benches/openmined_psi.py` can run (openmined-psi installed), OpenMined
//! PSI's per-element server time measured in the same run.
//!
//! `cargo bench -p vouchsafe-protocol --bench protocol`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // test code: a failure is the test failing

use std::hint::black_box;
use std::time::Duration;

use criterion::Criterion;
use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::MultiscalarMul;
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use vouchsafe_protocol::client::{ClientSession, ClientState};
use vouchsafe_protocol::crypto::hash_to_group;
use vouchsafe_protocol::table::{BlindingKey, ServerTable, TableConfig, TableDownload};
use vouchsafe_protocol::voucher::{DecodedVoucher, Opener};

const TABLE_N: usize = 1 << 14;

/// The interleaved voucher-kinds figure, printed by `report`.
static INTERLEAVED: std::sync::OnceLock<String> = std::sync::OnceLock::new();

fn rng() -> ChaCha20Rng {
    ChaCha20Rng::from_seed([42u8; 32])
}

fn items(n: usize, rng: &mut ChaCha20Rng) -> Vec<Vec<u8>> {
    (0..n)
        .map(|_| {
            let mut v = vec![0u8; 35];
            rng.fill_bytes(&mut v);
            v
        })
        .collect()
}

fn config() -> TableConfig {
    TableConfig {
        epoch: 1,
        order_id: [7u8; 16],
        threshold: 30,
        synthetic_cap: 60,
        synthetic_rate: 0,
        ad_len: 4189, // phash V1 associated data (4187 bytes) + the 2-byte length prefix
        chunk_slots: 4096,
    }
}

fn bench(c: &mut Criterion) {
    let mut rng = rng();
    let cfg = config();
    let ys = items(TABLE_N, &mut rng);
    let key = BlindingKey::random(&mut rng);
    let table = ServerTable::build(&cfg, key.clone(), ys.clone(), &mut rng).unwrap();
    let mut dl = TableDownload::new(table.manifest());
    for i in 0..table.chunk_count() {
        dl.add_chunk(&table.chunk(i).unwrap().encode()).unwrap();
    }
    let client = dl.finish().unwrap();
    let opener = Opener::new(key.clone(), table.params().clone()).unwrap();
    let mut session = ClientSession::new(ClientState::new(table.params(), &mut rng)).unwrap();
    let ad = vec![0xabu8; 4187];

    // ---- server: open one voucher vs. decompress + α·Q ----
    let alpha = Scalar::from_bytes_mod_order_wide(&[3u8; 64]);
    let q = (RistrettoPoint::random(&mut rng)).compress();
    let mut g = c.benchmark_group("server");
    g.bench_function("floor_decompress_mul", |b| {
        b.iter(|| {
            let p = black_box(q).decompress().unwrap();
            black_box(alpha * p)
        })
    });
    let matching: Vec<Vec<u8>> =
        ys.iter().take(64).map(|y| session.voucher(&client, y, &ad, &mut rng).unwrap().voucher.encode()).collect();
    let others: Vec<Vec<u8>> = items(64, &mut rng)
        .iter()
        .map(|y| session.voucher(&client, y, &ad, &mut rng).unwrap().voucher.encode())
        .collect();
    let mut i = 0;
    g.bench_function("open_match", |b| {
        b.iter(|| {
            i = (i + 1) % matching.len();
            black_box(opener.open_bytes(black_box(&matching[i])))
        })
    });
    g.bench_function("open_nonmatch", |b| {
        b.iter(|| {
            i = (i + 1) % others.len();
            black_box(opener.open_bytes(black_box(&others[i])))
        })
    });
    let mixed: Vec<&Vec<u8>> = matching.iter().zip(others.iter()).flat_map(|(a, b)| [a, b]).collect();
    let mixed_decoded: Vec<DecodedVoucher> =
        mixed.iter().map(|b| DecodedVoucher::decode(b, table.params()).unwrap()).collect();
    g.bench_function("open_batch128_mixed_per_voucher", |b| {
        b.iter_custom(|iters| {
            let start = std::time::Instant::now();
            for _ in 0..iters {
                black_box(opener.open_bytes_batch(black_box(&mixed)));
            }
            start.elapsed() / mixed.len() as u32
        })
    });
    g.bench_function("open_batch128_mixed_predecoded_per_voucher", |b| {
        b.iter_custom(|iters| {
            let start = std::time::Instant::now();
            for _ in 0..iters {
                black_box(opener.open_batch(black_box(&mixed_decoded)));
            }
            start.elapsed() / mixed_decoded.len() as u32
        })
    });
    let decoded = DecodedVoucher::decode(&others[0], table.params()).unwrap();
    g.bench_function("open_nonmatch_predecoded", |b| b.iter(|| black_box(opener.open(black_box(&decoded)))));
    g.finish();

    // ---- client: one voucher vs. H + (k+1) double-scalar multiplications ----
    let mut g = c.benchmark_group("client");
    let pts: Vec<RistrettoPoint> = (0..8).map(|_| RistrettoPoint::random(&mut rng)).collect();
    let (s1, s2) = (Scalar::random(&mut rng), Scalar::random(&mut rng));
    let nonce = table.params().nonce;
    g.bench_function("floor_h2g_4_double_mul", |b| {
        b.iter(|| {
            let h = hash_to_group(&nonce, black_box(&ys[0]));
            let mut acc = h;
            for j in 0..4 {
                acc += RistrettoPoint::multiscalar_mul([s1, s2], [pts[j], pts[j + 1]]);
            }
            black_box(acc)
        })
    });
    let fresh = items(1 << 16, &mut rng);
    let mut k = 0;
    let mut persistent = ClientSession::new(ClientState::new(table.params(), &mut rng)).unwrap();
    let mut r2 = rng.clone();
    g.bench_function("real_voucher_same_session", |b| {
        b.iter(|| {
            k = (k + 1) % fresh.len();
            let mut y = fresh[k].clone();
            r2.fill_bytes(&mut y[..8]);
            black_box(persistent.voucher(&client, &y, &ad, &mut r2).unwrap())
        })
    });
    let cached = vouchsafe_protocol::table::ClientTable::new_with_point_cache(
        client.manifest().clone(),
        client.slots().to_vec(),
    )
    .unwrap();
    let mut persistent2 = ClientSession::new(ClientState::new(table.params(), &mut rng)).unwrap();
    g.bench_function("real_voucher_point_cache", |b| {
        b.iter(|| {
            k = (k + 1) % fresh.len();
            let mut y = fresh[k].clone();
            r2.fill_bytes(&mut y[..8]);
            black_box(persistent2.voucher(&cached, &y, &ad, &mut r2).unwrap())
        })
    });
    g.finish();

    // ---- the three kinds side by side: constant work (docs/PROTOCOL.md §5) ----
    // Every kind is timed per voucher with `iter_custom`, so that remaking a session (a synthetic session runs out
    // after s synthetics) stays outside the measurement.
    let mut syn_cfg = config();
    syn_cfg.synthetic_rate = u32::MAX;
    let syn_table = ServerTable::build(&syn_cfg, key.clone(), ys[..1024].to_vec(), &mut rng).unwrap();
    let mut dl = TableDownload::new(syn_table.manifest());
    for i in 0..syn_table.chunk_count() {
        dl.add_chunk(&syn_table.chunk(i).unwrap().encode()).unwrap();
    }
    let syn_client = dl.finish().unwrap();
    let small_table = ServerTable::build(&cfg, key.clone(), ys[..1024].to_vec(), &mut rng).unwrap();
    let mut dl = TableDownload::new(small_table.manifest());
    for i in 0..small_table.chunk_count() {
        dl.add_chunk(&small_table.chunk(i).unwrap().encode()).unwrap();
    }
    let small_client = dl.finish().unwrap();
    let mut g = c.benchmark_group("voucher_kinds");
    let kinds: [(&str, &vouchsafe_protocol::table::ClientTable, vouchsafe_protocol::client::VoucherKind); 3] = [
        ("real", &small_client, vouchsafe_protocol::client::VoucherKind::Real),
        ("synthetic", &syn_client, vouchsafe_protocol::client::VoucherKind::Synthetic),
        ("null", &small_client, vouchsafe_protocol::client::VoucherKind::Null),
    ];
    for (name, table, want) in kinds {
        let mut r3 = rng.clone();
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut session = ClientSession::new(ClientState::new(table.params(), &mut r3)).unwrap();
                let repeat = fresh[0].clone();
                session.voucher(table, &repeat, &ad, &mut r3).unwrap();
                for i in 0..iters {
                    if want == vouchsafe_protocol::client::VoucherKind::Synthetic
                        && session.state().synthetics_made() == cfg.synthetic_cap - 1
                    {
                        session = ClientSession::new(ClientState::new(table.params(), &mut r3)).unwrap();
                    }
                    let y = if want == vouchsafe_protocol::client::VoucherKind::Null {
                        repeat.clone()
                    } else {
                        let mut y = fresh[(i as usize + 1) % fresh.len()].clone();
                        r3.fill_bytes(&mut y[..8]);
                        y
                    };
                    let start = std::time::Instant::now();
                    let made = black_box(session.voucher(table, black_box(&y), &ad, &mut r3).unwrap());
                    total += start.elapsed();
                    assert_eq!(made.kind, want);
                }
                total
            })
        });
    }
    // The same three kinds interleaved voucher by voucher (rotating order), so that drift of the machine between
    // criterion's separate runs cannot show up as a difference between kinds: medians of 3000 each.
    {
        use vouchsafe_protocol::client::VoucherKind;
        let mut r4 = rng.clone();
        let new_session = |t: &vouchsafe_protocol::table::ClientTable, r: &mut ChaCha20Rng| {
            ClientSession::new(ClientState::new(t.params(), r)).unwrap()
        };
        let mut sessions = [
            new_session(&small_client, &mut r4),
            new_session(&syn_client, &mut r4),
            new_session(&small_client, &mut r4),
        ];
        let tables = [&small_client, &syn_client, &small_client];
        let wants = [VoucherKind::Real, VoucherKind::Synthetic, VoucherKind::Null];
        let repeat = fresh[0].clone();
        sessions[2].voucher(&small_client, &repeat, &ad, &mut r4).unwrap();
        let mut times: [Vec<f64>; 3] = [Vec::new(), Vec::new(), Vec::new()];
        for round in 0..3000usize {
            for step in 0..3 {
                let k = (round + step) % 3;
                if k == 1 && sessions[1].state().synthetics_made() == cfg.synthetic_cap - 1 {
                    sessions[1] = new_session(&syn_client, &mut r4);
                }
                let y = if k == 2 {
                    repeat.clone()
                } else {
                    let mut y = fresh[(round * 3 + step + 1) % fresh.len()].clone();
                    r4.fill_bytes(&mut y[..8]);
                    y
                };
                let start = std::time::Instant::now();
                let made = black_box(sessions[k].voucher(tables[k], black_box(&y), &ad, &mut r4).unwrap());
                times[k].push(start.elapsed().as_secs_f64() * 1e6);
                assert_eq!(made.kind, wants[k]);
            }
        }
        let med: Vec<f64> = times
            .iter_mut()
            .map(|t| {
                t.sort_by(f64::total_cmp);
                t[t.len() / 2]
            })
            .collect();
        let (lo, hi) = (med.iter().copied().fold(f64::MAX, f64::min), med.iter().copied().fold(0.0, f64::max));
        let _ = INTERLEAVED.set(format!(
            "voucher kinds interleaved (3000 each, medians): real {:.1} µs, synthetic {:.1} µs, null {:.1} µs; spread {:.1} % (bar ≤ 5 %)",
            med[0],
            med[1],
            med[2],
            (hi / lo - 1.0) * 100.0
        ));
    }
    // An oblivious lookup: reading the three slots by a constant-time scan of the whole table instead of by
    // index (docs/LEAKAGE.md §6), here for m = 2^20 slots (a table of about 940 000 indicators).
    let big: Vec<[u8; 32]> = (0..1u32 << 20)
        .map(|i| {
            let mut s = [0u8; 32];
            s[..4].copy_from_slice(&i.to_le_bytes());
            s
        })
        .collect();
    let pos = vouchsafe_protocol::table::positions(&nonce, 1 << 20, &ys[0]);
    g.sample_size(20);
    g.bench_function("oblivious_scan_2pow20_slots", |b| {
        b.iter(|| {
            let mut out = [[0u8; 32]; 3];
            for (i, slot) in black_box(&big).iter().enumerate() {
                for (o, p) in out.iter_mut().zip(pos) {
                    let hit = subtle::Choice::from(u8::from(i as u32 == p));
                    for (ob, sb) in o.iter_mut().zip(slot) {
                        subtle::ConditionallySelectable::conditional_assign(ob, sb, hit);
                    }
                }
            }
            black_box(out)
        })
    });
    g.finish();

    // ---- table build: per indicator vs. H + α·H + compress ----
    let mut g = c.benchmark_group("table");
    g.sample_size(10).measurement_time(Duration::from_secs(8));
    g.bench_function("floor_h2g_mul_compress_x1024", |b| {
        b.iter(|| {
            for y in ys.iter().take(1024) {
                black_box((alpha * hash_to_group(&nonce, y)).compress());
            }
        })
    });
    for threads in [1usize, 2] {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        g.bench_function(format!("build_16384_threads{threads}"), |b| {
            b.iter(|| pool.install(|| ServerTable::build(&cfg, key.clone(), ys.clone(), &mut rng.clone()).unwrap()))
        });
    }
    g.finish();
    let _ = CompressedRistretto::default();
}

fn estimate(group: &str, name: &str) -> Option<f64> {
    let dir =
        std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| format!("{}/../../target", env!("CARGO_MANIFEST_DIR")));
    let path = format!("{dir}/criterion/{group}/{name}/new/estimates.json");
    let text = std::fs::read_to_string(path).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["mean"]["point_estimate"].as_f64()
}

fn openmined_per_element_ns() -> Option<f64> {
    let script = format!("{}/../../benches/openmined_psi.py", env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new("python3").arg(script).args(["--n", "2000"]).output().ok()?;
    if !out.status.success() {
        eprintln!("openmined-psi not measured: {}", String::from_utf8_lossy(&out.stderr).trim());
        return None;
    }
    let line = String::from_utf8_lossy(&out.stdout).lines().last()?.to_string();
    let v: serde_json::Value = serde_json::from_str(&line).ok()?;
    v["per_element_us"].as_f64().map(|us| us * 1000.0)
}

fn report() {
    let e = |g: &str, n: &str| estimate(g, n);
    println!("\n==== vouchsafe ratios (DESIGN.md §7), same run ====");
    if let (Some(f), Some(m), Some(n)) =
        (e("server", "floor_decompress_mul"), e("server", "open_match"), e("server", "open_nonmatch"))
    {
        println!("server floor (decompress + α·Q): {:.1} µs", f / 1e3);
        println!("server open, match:     {:.1} µs = {:.3}× floor (bar ≤ 1.25)", m / 1e3, m / f);
        println!("server open, non-match: {:.1} µs = {:.3}× floor (bar ≤ 1.25)", n / 1e3, n / f);
        let batch = e("server", "open_batch128_mixed_per_voucher");
        if let Some(b) = batch {
            println!(
                "server open, batch of 128 (half matches), per voucher incl. decode: {:.1} µs = {:.3}× floor (bar ≤ 1.25)",
                b / 1e3,
                b / f
            );
        }
        if let Some(om) = openmined_per_element_ns() {
            let ours = batch.unwrap_or(m.max(n));
            println!(
                "OpenMined PSI server per element: {:.1} µs; ours/theirs = {:.3} (bar ≤ 0.5)",
                om / 1e3,
                ours / om
            );
        }
    }
    if let (Some(f), Some(v)) = (e("client", "floor_h2g_4_double_mul"), e("client", "real_voucher_same_session")) {
        println!("client floor (H + 4 double-scalar muls): {:.1} µs", f / 1e3);
        println!("client real voucher: {:.1} µs = {:.3}× floor (bar ≤ 1.3)", v / 1e3, v / f);
        if let Some(c) = e("client", "real_voucher_point_cache") {
            println!(
                "client real voucher, decompressed table cache: {:.1} µs = {:.3}× floor (bar ≤ 1.3)",
                c / 1e3,
                c / f
            );
        }
    }
    if let (Some(r), Some(s), Some(n)) =
        (e("voucher_kinds", "real"), e("voucher_kinds", "synthetic"), e("voucher_kinds", "null"))
    {
        let (lo, hi) = (r.min(s).min(n), r.max(s).max(n));
        println!(
            "voucher kinds: real {:.1} µs, synthetic {:.1} µs, null {:.1} µs; spread {:.1} % (bar ≤ 5 %)",
            r / 1e3,
            s / 1e3,
            n / 1e3,
            (hi / lo - 1.0) * 100.0
        );
        if let Some(line) = INTERLEAVED.get() {
            println!("{line}");
        }
        if let Some(o) = e("voucher_kinds", "oblivious_scan_2pow20_slots") {
            println!(
                "oblivious lookup, constant-time scan of 2^20 slots: {:.2} ms per voucher = {:.0}× a real voucher",
                o / 1e6,
                o / r
            );
        }
    }
    if let (Some(f), Some(b1), Some(b2)) = (
        e("table", "floor_h2g_mul_compress_x1024"),
        e("table", "build_16384_threads1"),
        e("table", "build_16384_threads2"),
    ) {
        let floor = f / 1024.0;
        let per1 = b1 / TABLE_N as f64;
        let per2 = b2 / TABLE_N as f64;
        println!("table floor per indicator (H + mul + compress): {:.1} µs", floor / 1e3);
        println!("table build per indicator, 1 thread: {:.1} µs = {:.3}× floor (bar ≤ 1.2)", per1 / 1e3, per1 / floor);
        println!("table build per indicator, 2 threads: {:.1} µs; speed-up {:.2}× on 2 cores", per2 / 1e3, per1 / per2);
    }
}

fn main() {
    let mut c = Criterion::default()
        .configure_from_args()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    bench(&mut c);
    c.final_summary();
    report();
}
