//! `vouchsafe load` against a real `vouchsafe serve` on loopback: simulated devices (each its own client state)
//! sync, scan and submit; the summary agrees with the server's store (every acknowledged voucher stored once, the
//! inbox drained, one threshold reveal per device that scanned T distinct known images), and the metrics poll
//! sees the inbox empty. Then the refusals: a remote endpoint, a run over the bounds, a missing file. Every run is
//! bounded (`--max-seconds`, and a 300 s bound on each `vouchsafe load` process, killed then).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // test code: a failure is the test failing

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{sigkill, spawn_reporting, spawn_reporting_env, stderr_line, terminate, vouchsafe};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use vouchsafe_phash::{AssociatedData, HashConfig, fixtures, hash_image};
use vouchsafe_server::governance::{Fixture, FixtureSpec};
use vouchsafe_server::{AccountConfig, LogFormat, ServerConfig};
use vouchsafe_store::{PostgresOptions, PostgresStore, SqliteStore, Store};

const T: u16 = 4;

/// The shape of one run: devices (alternately alice's and bob's), vouchers per device (T of them known images),
/// most vouchers per batch.
#[derive(Clone, Copy)]
struct Shape {
    devices: u64,
    per_device: u64,
    batch: u64,
}

/// The tests' run: 12 vouchers in batches of at most 5, so 3 batches per device.
const SMALL: Shape = Shape { devices: 4, per_device: 12, batch: 5 };

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A fixture whose indicators are six images written to `dir/matching` (plus a hundred unrelated ones), two
/// accounts, metrics on a free loopback port; the fixture and its configuration file.
fn fixture(dir: &Path, tweak: impl FnOnce(&mut ServerConfig)) -> (Fixture, std::path::PathBuf) {
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let images = dir.join("matching");
    std::fs::create_dir_all(&images).unwrap();
    let cfg = HashConfig::V1;
    let mut indicators = Vec::new();
    for seed in 0..6u64 {
        let img = image::DynamicImage::ImageRgb8(fixtures::benign_image(seed, 96, 80));
        img.save(images.join(format!("known-{seed}.png"))).unwrap();
        let h = hash_image(&cfg, &img).unwrap();
        let ad = AssociatedData::new(&cfg, &h, [0; 32], 1_700_000_000).unwrap();
        indicators.push((h.primary.to_canonical_bytes(), ad.secondary().to_canonical_bytes()));
    }
    indicators.extend((0u32..100).map(|i| {
        let y = format!("unrelated indicator {i}").into_bytes();
        (y.clone(), y)
    }));
    let mut spec = FixtureSpec::new(indicators);
    spec.threshold = T;
    spec.hash_config = cfg;
    let mut fx = Fixture::create(&dir.join("fx"), spec, &mut rng).unwrap();
    let c = &mut fx.config;
    c.chunk_slots = 64;
    c.worker.poll_interval_ms = 20;
    c.limits.max_vouchers_per_batch = 8;
    c.limits.rate_burst = 100_000;
    c.limits.rate_vouchers_per_second = 100_000.0;
    c.accounts = vec![
        AccountConfig::new("load-token-alice-0123456789", "alice"),
        AccountConfig::new("load-token-bob-0123456789ab", "bob"),
    ];
    c.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    tweak(c);
    fx.build_table(&mut rng).unwrap();
    let config = fx.write_config().unwrap();
    (fx, config)
}

/// The witnesses cosign the checkpoint of the server at `addr`, as the devices require (quorum 2).
fn cosign(fx: &Fixture, addr: &str) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    assert_eq!(rt.block_on(fx.cosign_all(addr.parse().unwrap())).unwrap(), 2);
    drop(rt); // its idle connection would hold up the server's graceful shutdown
}

/// The arguments of `vouchsafe load` for `shape` (T known images per device, the summary to `dir/summary.json`).
fn load_args(dir: &Path, config: &Path, endpoints: &[String], metrics: &[String], shape: Shape) -> Vec<String> {
    let mut args: Vec<String> = [
        "load",
        "--config",
        p(config),
        "--devices",
        &shape.devices.to_string(),
        "--vouchers-per-device",
        &shape.per_device.to_string(),
        "--batch",
        &shape.batch.to_string(),
        "--matching-images",
        p(&dir.join("matching")),
        "--matching-per-device",
        &T.to_string(),
        "--json",
        p(&dir.join("summary.json")),
        "--max-seconds",
        "600",
    ]
    .map(str::to_owned)
    .to_vec();
    for e in endpoints {
        args.extend(["--endpoint".to_owned(), e.clone()]);
    }
    for m in metrics {
        args.extend(["--metrics-url".to_owned(), m.clone()]);
    }
    args
}

/// Runs `vouchsafe load` in `shape` against `endpoints`, polling `metrics`; checks the summary and returns it.
fn run_load(dir: &Path, config: &Path, endpoints: &[String], metrics: &[String], shape: Shape) -> serde_json::Value {
    run_load_during(dir, config, endpoints, metrics, shape, || {})
}

/// [`run_load`], calling `during` while the load runs (bounded: the load is killed after 300 s).
fn run_load_during(
    dir: &Path,
    config: &Path,
    endpoints: &[String],
    metrics: &[String],
    shape: Shape,
    during: impl FnOnce(),
) -> serde_json::Value {
    let child = Command::new(env!("CARGO_BIN_EXE_vouchsafe"))
        .args(load_args(dir, config, endpoints, metrics, shape))
        .env_remove("VOUCHSAFE_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Killed if the test fails before it ends (a panic in `during`, the 300 s bound).
    struct KillOnDrop(String);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = Command::new("kill").args(["-KILL", &self.0]).stderr(Stdio::null()).status();
        }
    }
    let guard = KillOnDrop(child.id().to_string());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    during();
    let Ok(o) = rx.recv_timeout(Duration::from_secs(300)) else {
        panic!("vouchsafe load did not stop within 300 s");
    };
    std::mem::forget(guard); // it has exited, and its pid may be reused
    let o = o.unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "load failed: {stdout}{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout.contains("load: complete"), "{stdout}");
    eprintln!("{stdout}"); // the summary, for --nocapture
    for secret in ["load-token-alice", "load-token-bob"] {
        assert!(!stdout.contains(secret) && !String::from_utf8_lossy(&o.stderr).contains(secret), "no token printed");
    }

    let s: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("summary.json")).unwrap()).unwrap();
    let total = shape.devices * shape.per_device;
    assert_eq!(s["complete"], true);
    assert_eq!(s["endpoints"], endpoints.len());
    assert_eq!(s["vouchers_scanned"], total);
    assert_eq!(s["vouchers_acknowledged"], total);
    assert_eq!(s["errors_total"], 0, "{s}");
    assert_eq!(s["batches_acknowledged"], shape.devices * shape.per_device.div_ceil(shape.batch));
    let lat = &s["submit_latency_ms"];
    let (p50, p99, max) = (lat["p50"].as_f64().unwrap(), lat["p99"].as_f64().unwrap(), lat["max"].as_f64().unwrap());
    assert!(p50 > 0.0 && p50 <= p99 && p99 <= max, "{lat}");
    assert!(s["submit_throughput_vouchers_per_second"].as_f64().unwrap() > 0.0);
    let processed = s["processed_seconds"].as_f64().expect("the metrics poll saw the inbox empty");
    // The processed throughput is the acknowledged vouchers over that time (both rounded to 3 decimals).
    let rate = s["processed_throughput_vouchers_per_second"].as_f64().unwrap();
    assert!((rate * processed / total as f64 - 1.0).abs() < 0.02, "{rate} vouchers/s over {processed} s");
    s
}

/// The load generator saw the inbox empty: the store agrees. Every voucher counted once, nothing pending, each
/// device's T known images opened, one threshold reveal per device (client state), the audit chain intact.
fn check_store(store: &impl Store, shape: Shape) {
    let total = shape.devices * shape.per_device;
    let stats = store.stats().unwrap();
    assert_eq!(stats.vouchers_received, total, "every voucher counted exactly once");
    assert_eq!(stats.batches_pending, 0);
    let (a, b) = (store.counters("alice").unwrap(), store.counters("bob").unwrap());
    // Even devices use alice, odd ones bob; each device scanned T distinct known images.
    let (alice, bob) = (shape.devices.div_ceil(2), shape.devices / 2);
    assert_eq!((a.received, b.received), (alice * shape.per_device, bob * shape.per_device));
    let t = u64::from(T);
    assert_eq!((a.opened, b.opened, a.invalid, b.invalid), (alice * t, bob * t, 0, 0));
    let audit = store.audit_entries(0, 100_000).unwrap();
    let reveals = audit.iter().filter(|e| e.action == "threshold.reveal").count() as u64;
    assert_eq!(reveals, shape.devices, "one threshold reveal per device (client state)");
    store.verify_audit_chain().unwrap();
}

/// `shape` against one `vouchsafe serve` on SQLite; the summary and the server's log.
fn on_sqlite(shape: Shape, tweak: impl FnOnce(&mut ServerConfig)) -> (serde_json::Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let (fx, config) = fixture(dir.path(), tweak);
    let (server, lines) = spawn_reporting_env(
        &["serve", "--config", p(&config)],
        &dir.path().join("serve.log"),
        &["vouchsafe: listening on ", "vouchsafe: metrics on "],
        &[("RUST_LOG", "info,vouchsafe::access=debug")],
    );
    cosign(&fx, &server.addr);
    let s = run_load(dir.path(), &config, &[format!("http://{}", server.addr)], &[lines[1].clone()], shape);
    check_store(&SqliteStore::open(&fx.config.database).unwrap(), shape);
    terminate(server);
    (s, std::fs::read_to_string(dir.path().join("serve.log")).unwrap())
}

/// `shape` spread over `replicas` replicas sharing one PostgreSQL database (device i on replica i mod replicas),
/// each with its own copy of the log directory (docs/OPERATIONS.md §4); the summary.
///
/// With `kill_first_at = Some(n)`, the first replica is killed with SIGKILL once the store holds `n` vouchers (its
/// devices fail over to the next replica, which takes over its claimed accounts after `worker.claim_seconds`);
/// then also returns how many vouchers the store held right after the kill.
fn on_postgres(
    url: &str,
    replicas: usize,
    shape: Shape,
    kill_first_at: Option<u64>,
    tweak: impl FnOnce(&mut ServerConfig),
) -> (serde_json::Value, Option<u64>) {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let schema = format!("load_{}_{nanos}", std::process::id());
    let dir = tempfile::tempdir().unwrap();
    let (fx, _) = fixture(dir.path(), |c| {
        c.database = url.to_owned().into();
        c.postgres.schema = Some(schema.clone());
        tweak(c);
    });
    let mut servers = Vec::new();
    let (mut endpoints, mut metrics) = (Vec::new(), Vec::new());
    for r in 0..replicas {
        let id = format!("replica-{r}");
        let mut c = fx.config.clone();
        c.worker.id = Some(id.clone());
        c.log.dir = dir.path().join(format!("log-{id}"));
        let path = dir.path().join(format!("{id}.toml"));
        std::fs::write(&path, c.to_toml_string().unwrap()).unwrap();
        let (server, lines) = spawn_reporting(
            &["serve", "--config", p(&path)],
            &dir.path().join(format!("{id}.log")),
            &["vouchsafe: listening on ", "vouchsafe: metrics on "],
        );
        // Every log holds the same tree, so the replicas sign the same checkpoint. The witnesses cosign it at the
        // first replica only: the others serve their cosignatures from the shared database, and the devices on
        // them (which need every witness) could not sync otherwise.
        if r == 0 {
            cosign(&fx, &server.addr);
        }
        endpoints.push(format!("http://{}", server.addr));
        metrics.push(lines[1].clone());
        servers.push(server);
    }
    let options = PostgresOptions { connections: 2, schema: Some(schema), ca: None };
    let probe = PostgresStore::open_with(url, &options).unwrap();
    let mut killed_at = None;
    let s = run_load_during(dir.path(), &dir.path().join("replica-0.toml"), &endpoints, &metrics, shape, || {
        let Some(n) = kill_first_at else { return };
        // Vouchers taken in so far: those of processed batches plus the pending batches (full but for each
        // device's last), read in one snapshot. Not the processed count alone: the workers lag the intake, so a
        // kill timed on them could fall after the last submit.
        let taken_in = || {
            let s = probe.stats().unwrap();
            s.vouchers_received + s.batches_pending * shape.batch
        };
        let start = Instant::now();
        while taken_in() < n {
            assert!(start.elapsed() < Duration::from_secs(120), "the load did not reach {n} vouchers");
            std::thread::sleep(Duration::from_millis(2));
        }
        sigkill(servers.remove(0));
        killed_at = Some(taken_in());
    });
    check_store(&probe, shape);
    for server in servers {
        terminate(server);
    }
    (s, killed_at)
}

fn postgres_url() -> Option<String> {
    let url = std::env::var("VOUCHSAFE_TEST_POSTGRES").ok();
    if url.is_none() {
        assert!(
            std::env::var("VOUCHSAFE_REQUIRE_POSTGRES").as_deref() != Ok("1"),
            "VOUCHSAFE_REQUIRE_POSTGRES=1 but VOUCHSAFE_TEST_POSTGRES is not set"
        );
        eprintln!("load: the PostgreSQL half is skipped: VOUCHSAFE_TEST_POSTGRES is not set (scripts/test.sh sets it)");
    }
    url
}

#[test]
fn load_drives_devices_to_an_empty_inbox_and_its_summary_agrees_with_the_store() {
    let (s, log) = on_sqlite(SMALL, |c| c.log_format = LogFormat::Json);
    assert_eq!(s["connections"], 4, "one connection per device");
    // The server's JSON log of that load: one object per line, every RPC with its request id, and no token, no
    // voucher and no hash of a known image in it.
    let lines: Vec<serde_json::Value> =
        log.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect();
    // The access lines (debug, turned on for this server): one per RPC, each with its own request id; the 12
    // acknowledged batches among them.
    let access: Vec<&serde_json::Value> = lines.iter().filter(|l| l["fields"]["message"] == "rpc finished").collect();
    let ids: std::collections::HashSet<&str> = access.iter().filter_map(|l| l["span"]["request_id"].as_str()).collect();
    assert_eq!(ids.len(), access.len(), "a distinct request id on every access line");
    let submits = access.iter().filter(|l| l["span"]["method"] == "SubmitVouchers" && l["fields"]["code"] == "OK");
    assert_eq!(submits.count() as u64, s["batches_acknowledged"].as_u64().unwrap(), "{log}");
    let in_rpc: Vec<&serde_json::Value> = lines.iter().filter(|l| l["span"]["name"] == "rpc").collect();
    assert!(!in_rpc.is_empty(), "some lines are logged inside an RPC: {log}");
    for l in &in_rpc {
        assert!(l["span"]["request_id"].as_str().is_some_and(|id| !id.is_empty()), "no request id: {l}");
        assert!(l["span"]["method"].as_str().is_some(), "no method: {l}");
    }
    let started = lines.iter().find(|l| l["fields"]["message"] == "matching server started").expect("start line");
    let listen = started["fields"]["listen"].as_str().unwrap();
    assert!(listen.parse::<std::net::SocketAddr>().is_ok(), "listen is an address: {listen}");
    for secret in ["load-token-alice", "load-token-bob"] {
        assert!(!log.contains(secret), "a token in the log");
    }
    for seed in 0..6u64 {
        let img = image::DynamicImage::ImageRgb8(fixtures::benign_image(seed, 96, 80));
        let primary = hash_image(&HashConfig::V1, &img).unwrap().primary.to_canonical_bytes();
        let hex: String = primary.iter().map(|b| format!("{b:02x}")).collect();
        assert!(!log.to_ascii_lowercase().contains(&hex), "a known image's hash in the log");
    }
}

#[test]
fn load_over_two_replicas_on_postgres_counts_every_voucher_once() {
    let Some(url) = postgres_url() else { return };
    let (s, _) = on_postgres(&url, 2, SMALL, None, |_| {});
    assert_eq!(s["connections"], 4, "two connections per replica");
}

/// Two replicas under `vouchsafe load`, one killed with SIGKILL in the middle of it: its devices fail over to the
/// survivor (the same batch ids: what the dead replica stored is answered as a duplicate), the survivor takes over
/// the dead replica's claimed accounts, and every voucher is counted once, every device revealed once.
#[test]
fn load_over_two_replicas_survives_a_sigkill_of_one() {
    let Some(url) = postgres_url() else { return };
    let shape = Shape { devices: 8, per_device: 150, batch: 4 };
    let total = shape.devices * shape.per_device;
    let (s, killed_at) = on_postgres(&url, 2, shape, Some(total / 8), |c| c.worker.claim_seconds = 2);
    let killed_at = killed_at.unwrap();
    assert!(killed_at < total, "the kill fell mid-load ({killed_at} of {total} vouchers taken in)");
    assert!(s["failovers"].as_u64().unwrap() > 0, "devices of the dead replica failed over: {s}");
}

/// A measurement, not a check (the checks are the same): `vouchsafe load` on SQLite, then (with
/// `VOUCHSAFE_TEST_POSTGRES`) on PostgreSQL with one and two replicas, `VOUCHSAFE_LOAD_DEVICES` devices (default
/// 32) of `VOUCHSAFE_LOAD_VOUCHERS` vouchers (default 256) in batches of 64; one line of figures per setup. Run it
/// by hand: `cargo test --release --test load -- --ignored --nocapture`.
#[test]
#[ignore]
fn load_measurement() {
    let env = |k: &str, d: u64| std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d);
    let shape = Shape {
        devices: env("VOUCHSAFE_LOAD_DEVICES", 32),
        per_device: env("VOUCHSAFE_LOAD_VOUCHERS", 256),
        batch: 64,
    };
    let tweak = |c: &mut ServerConfig| {
        c.limits.max_vouchers_per_batch = 256;
        c.limits.max_client_states = u32::try_from(shape.devices).unwrap();
        c.limits.rate_burst = 10_000_000;
        c.limits.rate_vouchers_per_second = 10_000_000.0;
    };
    let line = |setup: &str, s: &serde_json::Value| {
        let l = &s["submit_latency_ms"];
        println!(
            "{setup}: {} vouchers; submit {:.0} vouchers/s (p50 {} ms, p99 {} ms); processed {:.0} vouchers/s in {} s",
            s["vouchers_acknowledged"],
            s["submit_throughput_vouchers_per_second"].as_f64().unwrap(),
            l["p50"],
            l["p99"],
            s["processed_throughput_vouchers_per_second"].as_f64().unwrap(),
            s["processed_seconds"]
        );
    };
    line("SQLite", &on_sqlite(shape, tweak).0);
    if let Some(url) = postgres_url() {
        line("PostgreSQL, one server", &on_postgres(&url, 1, shape, None, tweak).0);
        line("PostgreSQL, two replicas", &on_postgres(&url, 2, shape, None, tweak).0);
    }
}

#[test]
fn load_refuses_remote_endpoints_and_runs_over_its_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let (_fx, config) = fixture(dir.path(), |_| {});
    // `vouchsafe load --config …` with `args`; `run` with one voucher per device in batches of 8 before `extra`.
    let load = |args: &[&str]| vouchsafe(&[&["load", "--config", p(&config)], args].concat());
    let run = |extra: &[&str]| load(&[&["--vouchers-per-device", "1", "--batch", "8"], extra].concat());

    for remote in ["http://10.1.2.3:50051", "http://example.com:50051", "http://0.0.0.0:50051"] {
        let o = run(&["--devices", "1", "--endpoint", remote]);
        assert_eq!(o.status.code(), Some(2), "{remote}: {}", stderr_line(&o));
        assert!(stderr_line(&o).contains("not a loopback address"), "{}", stderr_line(&o));
    }
    let o = run(&["--devices", "1", "--endpoint", "http://127.0.0.1:1", "--metrics-url", "http://10.0.0.1:9100"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr_line(&o).contains("not a loopback address"), "{}", stderr_line(&o));
    // More devices than the bound, and devices × vouchers over 10^7: refused before any connection.
    let o = run(&["--devices", "10001", "--endpoint", "http://127.0.0.1:1"]);
    assert_eq!(o.status.code(), Some(2));
    let o = load(&["--devices", "2000", "--vouchers-per-device", "10000", "--endpoint", "http://127.0.0.1:1"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr_line(&o).contains("more than the bound"), "{}", stderr_line(&o));
    // The configuration's limits: a batch larger than the server takes, more devices per account than client states.
    let o = load(&["--vouchers-per-device", "1", "--devices", "1", "--batch", "9", "--endpoint", "http://127.0.0.1:1"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr_line(&o).contains("max_vouchers_per_batch"), "{}", stderr_line(&o));
    // Too few open files for the devices (each holds its lock file) even after raising the soft limit to the hard
    // one: refused before anything is sent, naming `ulimit -n`.
    let script = format!(
        "ulimit -n 48 && exec {} load --config {} --vouchers-per-device 1 --batch 8 --devices 16 --endpoint \
         http://127.0.0.1:1",
        env!("CARGO_BIN_EXE_vouchsafe"),
        p(&config)
    );
    let o = Command::new("bash").args(["-c", &script]).env_remove("VOUCHSAFE_TOKEN").output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(stderr_line(&o).contains("ulimit -n"), "{}", stderr_line(&o));
    // No server there: a runtime failure (exit 1) naming the device, not a hang.
    let o = run(&["--devices", "1", "--endpoint", "http://127.0.0.1:1", "--max-seconds", "20"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr_line(&o));
    assert!(stderr_line(&o).contains("device 0"), "{}", stderr_line(&o));
    let o = run(&["--devices", "1", "--matching-images", p(&dir.path().join("absent")), "--matching-per-device", "1"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr_line(&o));
}

/// Ctrl-C ends a run cleanly: exit code 1 with the reason, and the devices' temporary directory removed (SIGINT
/// while the devices sync and scan, the phase a long run spends longest in before anything is timed).
#[test]
fn load_interrupted_by_ctrl_c_removes_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    let (fx, config) = fixture(dir.path(), |_| {});
    let (server, _) = spawn_reporting(
        &["serve", "--config", p(&config)],
        &dir.path().join("serve.log"),
        &["vouchsafe: listening on "],
    );
    cosign(&fx, &server.addr);
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let endpoint = format!("http://{}", server.addr);
    let args = ["load", "--config", p(&config), "--endpoint", &endpoint, "--devices", "2", "--batch", "8"];
    let child = Command::new(env!("CARGO_BIN_EXE_vouchsafe"))
        .args(args)
        .args(["--vouchers-per-device", "100000", "--max-seconds", "600"])
        .env("TMPDIR", &tmp)
        .env_remove("VOUCHSAFE_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    let work_dirs = || {
        std::fs::read_dir(&tmp)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with("vouchsafe-load-"))
            .count()
    };
    let t = Instant::now();
    while work_dirs() == 0 {
        assert!(t.elapsed() < Duration::from_secs(60), "no vouchsafe-load-* directory appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(500)); // well into the sync and scan
    assert!(Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let Ok(o) = rx.recv_timeout(Duration::from_secs(60)) else {
        let _ = Command::new("kill").args(["-KILL", &pid]).status();
        panic!("vouchsafe load did not stop within 60 s of Ctrl-C");
    };
    let o = o.unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(stderr_line(&o).contains("interrupted (Ctrl-C)"), "{}", stderr_line(&o));
    assert_eq!(work_dirs(), 0, "the devices' directory is removed");
    terminate(server);
}
