//! End-to-end vouchers per second over loopback gRPC (client submits batches, the server stores them durably,
//! acknowledges, and its worker opens them and runs the threshold step) next to the raw single-thread open rate
//! (`Opener::open_bytes_batch`) on the same vouchers, in the same run. Bar (DESIGN.md §7): e2e ≥ 70% of raw.
//!
//! `cargo bench --bench e2e` (options: `VOUCHSAFE_E2E_BATCHES`, default 16 batches of 256 vouchers;
//! `VOUCHSAFE_E2E_RUNS`, default 3; `VOUCHSAFE_E2E_MATCH_EVERY`, default 64; the best run of each is reported;
//! `VOUCHSAFE_E2E_SCHEDULE` = `fixed` (the server's default) or `eager`, `VOUCHSAFE_E2E_NICE` (default 19) and
//! `VOUCHSAFE_E2E_COVER` = `true` (the default) or `false`, to measure what the timing-safe worker settings cost;
//! `VOUCHSAFE_E2E_ROUND`, the worker's batches per round, default 4).
//! `VOUCHSAFE_E2E_DATABASE=postgres://…` runs the server on that PostgreSQL database (a schema of its own) instead
//! of SQLite, and `VOUCHSAFE_E2E_REPLICAS=2` then runs two servers (replicas, each with its own worker) on it, the
//! submissions spread over both.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // test code: a failure is the test failing

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::{Rng as _, SeedableRng};
use rand_chacha::ChaCha20Rng;
use tonic::metadata::MetadataValue;
use vouchsafe_proto::v1;
use vouchsafe_proto::v1::matching_client::MatchingClient;
use vouchsafe_protocol::client::{ClientSession, ClientState};
use vouchsafe_protocol::table::ClientTable;
use vouchsafe_protocol::voucher::{OpenOutcome, Opener};
use vouchsafe_server::governance::{Fixture, FixtureSpec};
use vouchsafe_server::{AccountConfig, ServerConfig};
use vouchsafe_store::{CaseFilter, PostgresOptions, PostgresStore, SqliteStore, Store};

const PER_BATCH: usize = 256;
const INDICATORS: usize = 10_000;
/// Distinct matching images (a run with more matches than this repeats images, which the client turns into null
/// vouchers; the default 16 batches with one match in 64 use 64).
const PICTURES: usize = 256;
/// By default one voucher in this many is for an indicator (so the worker also stores opened vouchers and crosses
/// T); `VOUCHSAFE_E2E_MATCH_EVERY` changes it.
const MATCH_EVERY_DEFAULT: usize = 64;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).filter(|&v| v > 0).unwrap_or(default)
}

/// CPU time consumed so far by all live threads of this process (Linux `/proc/self/task/*/schedstat`, ns), or
/// `None` where that is not available. Used to attribute the end-to-end time: the machine has few cores, so the
/// e2e rate is bounded by CPU-seconds per voucher divided by the cores available.
fn process_cpu() -> Option<Duration> {
    let mut total = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let path = task.ok()?.path().join("schedstat");
        let text = std::fs::read_to_string(path).unwrap_or_default();
        total += text.split_whitespace().next().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    }
    Some(Duration::from_nanos(total))
}

fn token(i: usize) -> String {
    format!("bench-token-{i:04}-0123456789abcdef")
}

fn main() {
    let batches = env_usize("VOUCHSAFE_E2E_BATCHES", 16);
    let runs = env_usize("VOUCHSAFE_E2E_RUNS", 3);
    let match_every = env_usize("VOUCHSAFE_E2E_MATCH_EVERY", MATCH_EVERY_DEFAULT);
    let replicas = env_usize("VOUCHSAFE_E2E_REPLICAS", 1);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));

    let mut c = ServerConfig::in_dir(dir.path());
    if let Ok(url) = std::env::var("VOUCHSAFE_E2E_DATABASE") {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        c.database = url.into();
        c.postgres.schema = Some(format!("e2e_bench_{}_{nanos}", std::process::id()));
    }
    assert!(replicas == 1 || c.database_is_postgres(), "VOUCHSAFE_E2E_REPLICAS > 1 needs VOUCHSAFE_E2E_DATABASE");
    eprintln!(
        "database: {}, {replicas} server(s)",
        if c.database_is_postgres() { "PostgreSQL" } else { "SQLite (file, spool)" }
    );
    c.worker.poll_interval_ms = 10;
    c.worker.batches_per_round = env_usize("VOUCHSAFE_E2E_ROUND", 4);
    if let Some(s) = std::env::var("VOUCHSAFE_E2E_SCHEDULE").ok().and_then(|v| v.parse().ok()) {
        c.worker.schedule = s;
    }
    if let Some(n) = std::env::var("VOUCHSAFE_E2E_NICE").ok().and_then(|v| v.parse().ok()) {
        c.worker.nice = n;
    }
    if let Some(b) = std::env::var("VOUCHSAFE_E2E_COVER").ok().and_then(|v| v.parse().ok()) {
        c.worker.cover_writes = b;
    }
    eprintln!(
        "worker: schedule {:?}, nice {}, cover writes {}, poll {} ms",
        c.worker.schedule, c.worker.nice, c.worker.cover_writes, c.worker.poll_interval_ms
    );
    c.limits.max_vouchers_per_batch = PER_BATCH;
    c.limits.rate_burst = 1_000_000;
    c.limits.rate_vouchers_per_second = 1.0e9;
    c.limits.max_message_bytes = 16 * 1024 * 1024;
    c.accounts = (0..runs + 1).map(|i| AccountConfig::new(token(i), format!("account-{i}"))).collect();

    let mut rng = ChaCha20Rng::seed_from_u64(2024);
    // Matching images: distinct fixture images whose primary hashes are indicators, so that a match passes the
    // server's second-hash check and is filed in a case, as a real one would. The rest of the table is filler.
    let pics = common::Pictures::new(PICTURES);
    let indicators = pics.indicators(INDICATORS);
    let pictures = pics.items;
    let (_, ad) = pictures.first().cloned().unwrap_or_else(|| panic!("no pictures"));
    // The order (T = 30, p = 0, s = 60), a two-source Centre release of the indicators, the signed table.
    let mut spec = FixtureSpec::new(indicators);
    spec.threshold = 30;
    spec.synthetic_cap = 60;
    let mut fx = Fixture::create(dir.path(), spec, &mut rng).unwrap_or_else(|e| panic!("{e}"));
    fx.config = c.clone();
    fx.build_table(&mut rng).unwrap_or_else(|e| panic!("{e}"));
    let gov = fx.governance().unwrap_or_else(|e| panic!("{e}"));
    let table = vouchsafe_server::load_table(&c.table).unwrap_or_else(|e| panic!("{e}"));
    let client_table = ClientTable::new(table.manifest(), table.slots().to_vec()).unwrap_or_else(|e| panic!("{e}"));
    let opener = Opener::new(table.key().clone(), table.params().clone()).unwrap_or_else(|e| panic!("{e}"));

    // Vouchers per run (one account per run, so every run starts below the threshold). Not measured.
    let n = batches * PER_BATCH;
    eprintln!("making {} vouchers ({} runs + warm-up) ...", n * (runs + 1), runs);
    let sets: Vec<Vec<Vec<u8>>> = (0..=runs)
        .map(|r| {
            let mut session =
                ClientSession::new(ClientState::new(client_table.params(), &mut rng)).unwrap_or_else(|e| panic!("{e}"));
            (0..n)
                .map(|i| {
                    let (y, ad) = if i % match_every == 0 {
                        let k = (r * 7 + i / match_every) % pictures.len();
                        pictures.get(k).cloned().unwrap_or_else(|| panic!("picture {k}"))
                    } else {
                        let mut b = [0u8; 16];
                        rng.fill_bytes(&mut b);
                        (b.to_vec(), ad.clone())
                    };
                    session.voucher(&client_table, &y, &ad, &mut rng).unwrap_or_else(|e| panic!("{e}")).voucher.encode()
                })
                .collect()
        })
        .collect();

    let store: Arc<dyn Store> = vouchsafe_server::open_store(&c).unwrap_or_else(|e| panic!("{e}"));
    let servers: Vec<vouchsafe_server::RunningServer> = (0..replicas)
        .map(|i| {
            let mut ci = c.clone();
            ci.worker.id = Some(format!("bench-replica-{i}"));
            let s = if i == 0 {
                Arc::clone(&store)
            } else {
                vouchsafe_server::open_store(&ci).unwrap_or_else(|e| panic!("{e}"))
            };
            rt.block_on(vouchsafe_server::start(ci, s)).unwrap_or_else(|e| panic!("{e}"))
        })
        .collect();
    let addrs: Vec<String> = servers.iter().map(|s| format!("http://{}", s.local_addr())).collect();

    let mut best_e2e = 0f64;
    let mut best_raw = 0f64;
    for (run, set) in sets.iter().enumerate() {
        // Raw: single thread, batches of PER_BATCH, same vouchers.
        let t = Instant::now();
        let mut opened = 0usize;
        for chunk in set.chunks(PER_BATCH) {
            opened += opener.open_bytes_batch(chunk).iter().filter(|o| matches!(o, OpenOutcome::Opened(_))).count();
        }
        let raw = n as f64 / t.elapsed().as_secs_f64();
        assert_eq!(opened, n.div_ceil(match_every), "raw opening found every match");

        // End to end: submit every batch (2 in flight), wait until the worker processed them all.
        let received_before = store.counters(&format!("account-{run}")).map(|c| c.received).unwrap_or(0);
        assert_eq!(received_before, 0);
        // The requests' contents are prepared (copied out of `set`) before the clock starts.
        let lanes = 2 * replicas;
        let mut per_lane: Vec<Vec<(usize, Vec<Vec<u8>>)>> = (0..lanes).map(|_| Vec::new()).collect();
        for (i, c) in set.chunks(PER_BATCH).enumerate() {
            if let Some(l) = per_lane.get_mut(i % lanes) {
                l.push((i, c.to_vec()));
            }
        }
        let clients: Vec<_> = addrs
            .iter()
            .map(|addr| {
                rt.block_on(async {
                    MatchingClient::connect(addr.clone())
                        .await
                        .unwrap_or_else(|e| panic!("{e}"))
                        .max_encoding_message_size(16 << 20)
                })
            })
            .collect();
        let cpu_before = process_cpu();
        let t = Instant::now();
        let acked_at = rt.block_on(async {
            let auth: MetadataValue<_> =
                format!("Bearer {}", token(run)).parse().unwrap_or_else(|_| panic!("metadata"));
            let mut tasks = Vec::new();
            for (lane, mine) in per_lane.into_iter().enumerate() {
                let mut client = clients[lane % clients.len()].clone();
                let auth = auth.clone();
                tasks.push(tokio::spawn(async move {
                    for (i, vouchers) in mine {
                        let mut id = [0u8; 16];
                        id[..8].copy_from_slice(&(run as u64).to_le_bytes());
                        id[8..].copy_from_slice(&(i as u64).to_le_bytes());
                        let mut r = tonic::Request::new(v1::SubmitVouchersRequest {
                            batch_id: id.to_vec(),
                            vouchers,
                            client_state: vec![],
                        });
                        r.metadata_mut().insert("authorization", auth.clone());
                        let ack = client.submit_vouchers(r).await.unwrap_or_else(|e| panic!("submit: {e}"));
                        assert_eq!(ack.into_inner().accepted as usize, PER_BATCH);
                    }
                }));
            }
            for t in tasks {
                t.await.unwrap_or_else(|e| panic!("{e}"));
            }
            let acked_at = t.elapsed();
            let start = Instant::now();
            loop {
                if store.stats().map(|s| s.batches_pending).unwrap_or(1) == 0 {
                    break;
                }
                assert!(start.elapsed() < Duration::from_secs(600), "worker did not drain");
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            acked_at
        });
        let total = t.elapsed();
        let cpu = process_cpu().zip(cpu_before).map(|(a, b)| a.saturating_sub(b));
        let e2e = n as f64 / total.as_secs_f64();
        let counters = store.counters(&format!("account-{run}")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(counters.received as usize, n);
        assert_eq!(counters.opened as usize, n.div_ceil(match_every), "the server opened every match");
        let filter = CaseFilter { account: Some(format!("account-{run}")), ..CaseFilter::default() };
        let filed: u64 = store.list_cases(&filter).unwrap_or_else(|e| panic!("{e}")).iter().map(|c| c.items).sum();
        let want =
            if n.div_ceil(match_every) >= usize::from(gov.order().threshold()) { n.div_ceil(match_every) } else { 0 };
        assert_eq!(filed as usize, want, "every match past the threshold is filed for review");
        if run == 0 {
            eprintln!("warm-up: e2e {e2e:.0} vouchers/s, raw {raw:.0} vouchers/s");
            continue;
        }
        let cpu_note = match cpu {
            Some(c) => format!(
                "; CPU {:.0} ms = {:.1} us/voucher (raw opening {:.1} us/voucher), {:.2} cores busy",
                c.as_secs_f64() * 1e3,
                c.as_secs_f64() * 1e6 / n as f64,
                1e6 / raw,
                c.as_secs_f64() / total.as_secs_f64()
            ),
            None => String::new(),
        };
        eprintln!(
            "run {run}: e2e {e2e:.0} vouchers/s (all acknowledged after {:.0} ms, all processed after {:.0} ms), raw {raw:.0} vouchers/s, ratio {:.1}%{cpu_note}",
            acked_at.as_secs_f64() * 1e3,
            total.as_secs_f64() * 1e3,
            100.0 * e2e / raw
        );
        best_e2e = best_e2e.max(e2e);
        best_raw = best_raw.max(raw);
    }
    for server in servers {
        rt.block_on(server.shutdown()).unwrap_or_else(|e| panic!("{e}"));
    }
    drop(store);
    if let (Some(url), Some(schema)) = (c.database.to_str().filter(|_| c.database_is_postgres()), &c.postgres.schema) {
        // The bench's schema holds every run's rows (hundreds of MB): dropped, not left in the database.
        let options = PostgresOptions { connections: 1, schema: Some(schema.clone()), ca: None };
        PostgresStore::open_with(url, &options).and_then(PostgresStore::drop_schema).unwrap_or_else(|e| panic!("{e}"));
    }

    // Attribution: the durable intake alone (SqliteStore::insert_batch of the same batches, no gRPC, no opening),
    // and the worker's processing alone (process_pending on a fresh store filled with the same batches).
    let intake_dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let intake = SqliteStore::open(intake_dir.path().join("intake.db")).unwrap_or_else(|e| panic!("{e}"));
    let set = sets.last().unwrap_or_else(|| panic!("no vouchers"));
    let t = Instant::now();
    for (i, chunk) in set.chunks(PER_BATCH).enumerate() {
        let mut id = [9u8; 16];
        id[..8].copy_from_slice(&(i as u64).to_le_bytes());
        intake.insert_batch("account-0", id, chunk, 0).unwrap_or_else(|e| panic!("{e}"));
    }
    let intake_rate = n as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    let report = vouchsafe_server::process_pending(&c, &gov, &table, &intake).unwrap_or_else(|e| panic!("{e}"));
    let process_rate = n as f64 / t.elapsed().as_secs_f64();
    assert_eq!(report.vouchers as usize, n);
    println!(
        "attribution: SqliteStore::insert_batch alone {intake_rate:.0} vouchers/s; process_pending alone (open + store + threshold) {process_rate:.0} vouchers/s"
    );
    let ratio = best_e2e / best_raw;
    println!(
        "e2e over loopback gRPC: {best_e2e:.0} vouchers/s ({batches} batches x {PER_BATCH}, stored, acknowledged, opened, threshold step); \
         raw single-thread open_bytes_batch: {best_raw:.0} vouchers/s; ratio {:.1}% (bar >= 70%): {}",
        100.0 * ratio,
        if ratio >= 0.70 { "PASS" } else { "BELOW BAR" }
    );
}
