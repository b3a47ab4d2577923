//! The acknowledgement's *timing* must not show what the worker found (docs/LEAKAGE.md §6).
//!
//! The probe is the one an outside observer can run with an ordinary gRPC client on loopback: send a batch A, wait
//! for its acknowledgement, send a batch B of non-matching vouchers at once and time B's acknowledgement. In one arm
//! A's vouchers all match, in the other none does; the threshold is so high that no client state ever reaches it, so
//! whatever differs is the cost of opening and storing matches. The two arms' latencies of B are compared with a
//! Mann–Whitney U test (normal approximation): under the server's default worker settings (a fixed schedule, the
//! lowest CPU priority, cover writes) |z| must stay below 2.
//!
//! `ack_timing_does_not_follow_matches` runs in CI (3 runs of 100 + 100 pairs; at least 2 of the 3 must have
//! |z| < 2, so an honest server fails it by chance with probability about 0.7 %). The full harness, with 150 + 150
//! pairs over 5 runs (at most one may reach |z| = 2), the same probe against the old behaviour (the eager schedule
//! at normal priority without cover writes, which must show the leak in every run) and, for the record, against the
//! defaults without cover writes, runs with `cargo test -p vouchsafe-server --test timing -- --ignored --nocapture`
//! (`VOUCHSAFE_TIMING_DATABASE=postgres://…` runs the probes against a server on PostgreSQL instead of SQLite).
//!
//! `the_live_capture_is_the_servers_view_of_what_was_sent` uses the same probe to check `worker.capture`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // test code: a failure is the test failing

mod common;
use common::{Image, image};

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::{Rng, RngExt, SeedableRng};
use rand_chacha::ChaCha20Rng;
use tonic::metadata::MetadataValue;
use vouchsafe_proto::v1;
use vouchsafe_proto::v1::matching_client::MatchingClient;
use vouchsafe_protocol::client::{ClientSession, ClientState};
use vouchsafe_protocol::params::EpochParams;
use vouchsafe_protocol::table::{ClientTable, TableDownload, TableManifest};
use vouchsafe_server::governance::{Fixture, FixtureSpec};
use vouchsafe_server::{AccountConfig, RunningServer, ServerConfig, WorkerSchedule};
use vouchsafe_store::Store;

const TOKEN: &str = "probe-token-0123456789";
const PER_BATCH: usize = 6;

type Client = MatchingClient<tonic::transport::Channel>;

struct Probe {
    _dir: tempfile::TempDir,
    store: Arc<dyn Store>,
    server: RunningServer,
    client: Client,
    table: ClientTable,
    matching: Vec<Image>,
    other: Vec<Image>,
    rng: ChaCha20Rng,
    /// The client state that sends every B (its vouchers are nulls after the first round: they open nothing).
    b: Option<(ClientSession, [u8; 16])>,
}

async fn download(client: &mut Client) -> ClientTable {
    let m = client.get_manifest(v1::GetManifestRequest {}).await.unwrap().into_inner();
    let params = EpochParams::decode(&m.params).unwrap();
    let chunk_hashes = m.chunk_hashes.iter().map(|h| <[u8; 32]>::try_from(h.as_slice()).unwrap()).collect();
    let manifest = TableManifest { params, table_version: m.table_version, chunk_slots: m.chunk_slots, chunk_hashes };
    let mut dl = TableDownload::new(manifest);
    let mut stream = client
        .stream_table(v1::StreamTableRequest { table_version: m.table_version, first_chunk: 0 })
        .await
        .unwrap()
        .into_inner();
    while let Some(c) = stream.message().await.unwrap() {
        dl.add_chunk(&c.chunk).unwrap();
    }
    dl.finish().unwrap()
}

impl Probe {
    /// A probe of a server with these worker settings, writing the leakage capture (`worker.capture`) to
    /// [`Probe::capture_path`] if `capture`.
    async fn new(w: Worker, capture: bool) -> Probe {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let matching: Vec<Image> = (0..PER_BATCH as u64).map(image).collect();
        let other: Vec<Image> = (100..100 + 2 * PER_BATCH as u64).map(image).collect();
        let mut ind: Vec<(Vec<u8>, Vec<u8>)> = matching.iter().map(|i| (i.y.clone(), i.secondary.clone())).collect();
        ind.extend((0u32..64).map(|i| {
            let y = format!("unrelated indicator {i}").into_bytes();
            (y.clone(), y)
        }));
        let mut spec = FixtureSpec::new(ind);
        // No client state of the probe ever reaches T: only opening and storing matches differs between the arms.
        spec.threshold = 200;
        spec.synthetic_cap = 2;
        let mut fixture = Fixture::create(dir.path(), spec, &mut rng).unwrap();
        let c: &mut ServerConfig = &mut fixture.config;
        c.worker.poll_interval_ms = 50;
        c.worker.schedule = w.schedule;
        c.worker.nice = w.nice;
        c.worker.cover_writes = w.cover_writes;
        c.worker.capture = capture.then(|| dir.path().join("capture.jsonl"));
        c.limits.max_vouchers_per_batch = PER_BATCH;
        c.limits.rate_burst = 1_000_000;
        c.limits.rate_vouchers_per_second = 1_000_000.0;
        c.limits.max_client_states = 1024;
        c.accounts = vec![AccountConfig::new(TOKEN, "probe")];
        c.limits.max_message_bytes = PER_BATCH * c.voucher_len(2) + 4096;
        // `VOUCHSAFE_TIMING_DATABASE=postgres://…`: the same probe against a server on that PostgreSQL database (a
        // schema of its own per probe), for the full harness by hand.
        if let Ok(url) = std::env::var("VOUCHSAFE_TIMING_DATABASE") {
            let nanos =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
            c.database = url.into();
            c.postgres.schema = Some(format!("timing_{}_{nanos}", std::process::id()));
        }
        fixture.build_table(&mut rng).unwrap();
        let config = fixture.config.clone();
        let store = vouchsafe_server::open_store(&config).unwrap();
        let server = vouchsafe_server::start(config, Arc::clone(&store)).await.unwrap();
        let mut client = MatchingClient::connect(format!("http://{}", server.local_addr()))
            .await
            .unwrap()
            .max_decoding_message_size(64 << 20);
        let table = download(&mut client).await;
        Probe { _dir: dir, store, server, client, table, matching, other, rng, b: None }
    }

    /// A batch from a fresh client state (so that every matching voucher is a new real match of a state far below
    /// T): the state id and the encoded vouchers.
    fn batch(&mut self, matching: bool) -> ([u8; 16], Vec<Vec<u8>>) {
        let state = ClientState::new(self.table.params(), &mut self.rng);
        let id = state.state_id().unwrap();
        let mut session = ClientSession::new(state).unwrap();
        let images = if matching { &self.matching[..] } else { &self.other[..PER_BATCH] };
        let vouchers = images
            .iter()
            .map(|i| session.voucher(&self.table, &i.y, &i.ad, &mut self.rng).unwrap().voucher.encode())
            .collect();
        (id, vouchers)
    }

    /// A batch B: non-matching vouchers from the one B client state.
    fn batch_b(&mut self) -> ([u8; 16], Vec<Vec<u8>>) {
        let (mut session, id) = match self.b.take() {
            Some(b) => b,
            None => {
                let state = ClientState::new(self.table.params(), &mut self.rng);
                let id = state.state_id().unwrap();
                (ClientSession::new(state).unwrap(), id)
            }
        };
        let vouchers = self.other[PER_BATCH..]
            .iter()
            .map(|i| session.voucher(&self.table, &i.y, &i.ad, &mut self.rng).unwrap().voucher.encode())
            .collect();
        self.b = Some((session, id));
        (id, vouchers)
    }

    async fn submit(&mut self, state: [u8; 16], vouchers: Vec<Vec<u8>>) -> Duration {
        let mut batch_id = [0u8; 16];
        self.rng.fill_bytes(&mut batch_id);
        let mut r = tonic::Request::new(v1::SubmitVouchersRequest {
            batch_id: batch_id.to_vec(),
            vouchers,
            client_state: state.to_vec(),
        });
        let v: MetadataValue<_> = format!("Bearer {TOKEN}").parse().unwrap();
        r.metadata_mut().insert("authorization", v);
        let start = Instant::now();
        self.client.submit_vouchers(r).await.unwrap();
        start.elapsed()
    }

    async fn drained(&self) {
        let start = Instant::now();
        while self.store.stats().unwrap().batches_pending > 0 {
            assert!(start.elapsed() < Duration::from_secs(30), "the worker did not drain the inbox");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// `pairs` pairs per arm, in a random interleaving: the latencies (µs) of B after a matching A and after a
    /// non-matching A.
    async fn run(&mut self, pairs: usize) -> (Vec<f64>, Vec<f64>) {
        let mut arms: Vec<bool> = (0..2 * pairs).map(|i| i % 2 == 0).collect();
        for i in (1..arms.len()).rev() {
            let j = self.rng.random_range(0..=i);
            arms.swap(i, j);
        }
        let (mut after_match, mut after_non) = (Vec::new(), Vec::new());
        // One warm-up pair per arm, not counted (connection, caches, the first statements).
        for &m in [true, false].iter().chain(arms.iter()) {
            let (sa, a) = self.batch(m);
            let (sb, b) = self.batch_b();
            self.submit(sa, a).await;
            let t = self.submit(sb, b).await.as_secs_f64() * 1e6;
            (if m { &mut after_match } else { &mut after_non }).push(t);
            self.drained().await;
            let pause = self.rng.random_range(0..10);
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
        after_match.remove(0);
        after_non.remove(0);
        (after_match, after_non)
    }

    fn capture_path(&self) -> std::path::PathBuf {
        self._dir.path().join("capture.jsonl")
    }

    async fn stop(self) {
        self.server.shutdown().await.unwrap();
    }
}

/// Mann–Whitney z of `a` against `b` (the leakage toolkit's: tie and continuity corrected); positive when `a` tends
/// to be larger.
fn mann_whitney_z(a: &[f64], b: &[f64]) -> f64 {
    vouchsafe_leakage::stats::mann_whitney(a, b).map_or(0.0, |(_, z, _)| z)
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s[s.len() / 2]
}

/// The worker settings a probe runs against.
#[derive(Clone, Copy, Debug)]
struct Worker {
    schedule: WorkerSchedule,
    nice: i32,
    cover_writes: bool,
}

/// The server's defaults.
const DEFAULTS: Worker = Worker { schedule: WorkerSchedule::Fixed, nice: 19, cover_writes: true };
/// The behaviour before any countermeasure: rounds as soon as a batch is stored, at normal priority, no cover writes.
const OLD: Worker = Worker { schedule: WorkerSchedule::Eager, nice: 0, cover_writes: false };

/// `runs` runs, each against a fresh server (a run uses a client state per pair).
async fn runs(w: Worker, runs: usize, pairs: usize) -> Vec<f64> {
    let mut zs = Vec::new();
    for r in 0..runs {
        let mut probe = Probe::new(w, false).await;
        let (m, n) = probe.run(pairs).await;
        probe.stop().await;
        let z = mann_whitney_z(&m, &n);
        eprintln!(
            "{w:?} run {r}: B after a matching A median {:.0} µs, after a non-matching A {:.0} µs, \
             z = {z:+.2} ({pairs} + {pairs} pairs)",
            median(&m),
            median(&n)
        );
        zs.push(z);
    }
    zs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ack_timing_does_not_follow_matches() {
    let zs = runs(DEFAULTS, 3, 100).await;
    let quiet = zs.iter().filter(|z| z.abs() < 2.0).count();
    assert!(quiet >= 2, "B's acknowledgement shows whether A matched: z = {zs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the full timing harness (about 3 minutes): cargo test -p vouchsafe-server --test timing -- --ignored --nocapture"]
async fn timing_harness() {
    let fixed = runs(DEFAULTS, 5, 150).await;
    let eager = runs(OLD, 2, 150).await;
    // For the record (docs/PERFORMANCE.md): what each countermeasure does alone.
    let covered_eager = runs(Worker { cover_writes: true, ..OLD }, 3, 150).await;
    let uncovered = runs(Worker { cover_writes: false, ..DEFAULTS }, 3, 150).await;
    eprintln!(
        "defaults: z = {fixed:?}\nold behaviour: z = {eager:?}\nold behaviour with cover writes: z = \
         {covered_eager:?}\ndefaults without cover writes: z = {uncovered:?}"
    );
    // The probe has power: the old behaviour shows the leak in every run. On SQLite, where the intake's commit waits
    // for the worker's write transaction; on PostgreSQL it does not, and this probe saw no leak even there
    // (docs/LEAKAGE.md §6), so only the defaults' check applies.
    if std::env::var("VOUCHSAFE_TIMING_DATABASE").is_err() {
        assert!(eager.iter().all(|z| *z > 2.0), "the harness no longer sees the old behaviour's leak: {eager:?}");
    }
    // The default settings: at most one run in five at |z| >= 2 (an honest server fails that by chance with
    // probability about 2 %).
    let loud = fixed.iter().filter(|z| z.abs() >= 2.0).count();
    assert!(loud <= 1, "the default settings leak: {fixed:?}");
}

/// The live capture (`worker.capture`): the server records its own view of every voucher it processes, and
/// `vouchsafe_leakage::live::assemble` turns it into a view that matches what was sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_capture_is_the_servers_view_of_what_was_sent() {
    use vouchsafe_leakage::live::{Select, assemble};
    use vouchsafe_leakage::view::{Outcome, ThresholdState};

    let mut probe = Probe::new(DEFAULTS, true).await;
    let mut sent: Vec<([u8; 16], Vec<u8>, bool)> = Vec::new(); // (client state, voucher id, matching image)
    for k in 0..6 {
        let matching = k % 2 == 0;
        let (state, vouchers) = probe.batch(matching);
        sent.extend(vouchers.iter().map(|v| (state, v[9..25].to_vec(), matching)));
        probe.submit(state, vouchers).await;
    }
    // A matching voucher whose rct is corrupted (intake cannot see it; its position ciphertext opens, its payload
    // does not): recorded as invalid.
    let (state, mut vouchers) = probe.batch(true);
    let rct = 1 + 8 + 16 + 32 + 3 * vouchsafe_protocol::voucher::CT_LEN;
    vouchers[0][rct + 13] ^= 0x01;
    sent.extend(vouchers.iter().enumerate().map(|(i, v)| (state, v[9..25].to_vec(), i > 0)));
    probe.submit(state, vouchers).await;
    probe.drained().await;
    let path = probe.capture_path();
    let counters = probe.store.counters("probe").unwrap();
    // The capture of a round is written just after its commit, which is what `drained` sees.
    let start = Instant::now();
    let text = loop {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if text.matches("\"kind\":\"voucher\"").count() >= sent.len() || start.elapsed() > Duration::from_secs(10) {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
    probe.stop().await;
    let view = assemble(&text, Select::default()).unwrap();
    assert_eq!(view.params.threshold, 200);
    assert_eq!(view.params.synthetic_cap, 2);
    assert_eq!(view.vouchers.len(), sent.len(), "one record per voucher sent");
    for (v, (state, id, matching)) in view.vouchers.iter().zip(&sent) {
        assert_eq!((&v.client_state.0, &v.id.0[..]), (state, &id[..]), "records follow the submission order");
        assert_eq!(v.account, "probe");
        assert_eq!(v.length, view.params.voucher_len);
        // A matching image opens (real), and so may a synthetic voucher of a non-matching one; a non-matching
        // voucher never opens unless synthetic, which the server cannot tell apart: only the first direction is a
        // fact about the view.
        if *matching {
            assert_eq!(v.outcome, Outcome::Opened, "a matching image's voucher opened");
            let o = v.opened.as_ref().unwrap();
            assert!(o.ct_index <= 2 && o.r.len() == 2);
        }
    }
    let invalid = view.vouchers.iter().filter(|v| v.outcome == Outcome::Invalid).count();
    assert_eq!(invalid, 1, "the corrupted voucher");
    // Every client state that opened something had its threshold step: below T.
    let opened_states = view.accounts.iter().filter(|a| a.opened > 0).count();
    assert!(opened_states >= 3);
    assert!(view.accounts.iter().all(|a| a.state == ThresholdState::Below));
    // The store counted what the capture shows.
    let count = |o: Outcome| view.vouchers.iter().filter(|v| v.outcome == o).count() as u64;
    assert_eq!(
        (counters.received, counters.opened, counters.non_matches, counters.invalid),
        (sent.len() as u64, count(Outcome::Opened), count(Outcome::NonMatch), count(Outcome::Invalid))
    );
    // The toolkit reads the assembled view like any other.
    let report = vouchsafe_leakage::distinguish::distinguish(&view).unwrap();
    assert!(!report.tests.is_empty());
}
