//! End-to-end tests of the matching server over real gRPC on 127.0.0.1:0 with the generated tonic client.
//! Vouchers are made with `vouchsafe_protocol::client::ClientSession` from a `ClientTable` downloaded from the
//! server's own chunks; images are deterministic benign fixtures hashed with `vouchsafe-phash`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // test code: a failure is the test failing

use std::sync::Arc;
use std::time::{Duration, Instant};

use prost::Message as _;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use tonic::Code;
use tonic::metadata::MetadataValue;
use vouchsafe_phash::{AssociatedData, HashConfig, fixtures, hash_image};
use vouchsafe_proto::v1;
use vouchsafe_proto::v1::matching_client::MatchingClient;
use vouchsafe_protocol::client::{ClientSession, ClientState, VoucherKind};
use vouchsafe_protocol::params::EpochParams;
use vouchsafe_protocol::table::{ClientTable, TableDownload, TableManifest, TableUpdate};
use vouchsafe_server::{
    AccountConfig, BearerToken, RunningServer, ServerConfig, append_update, build_table, load_table, process_pending,
    save_table,
};
use vouchsafe_store::{CaseFilter, SqliteStore, Store};

const ALICE: &str = "alice-token-0123456789";
const BOB: &str = "bob-token-0123456789ab";
const CAROL: &str = "carol-token-0123456789";
const T: u16 = 3;

type Client = MatchingClient<tonic::transport::Channel>;

/// One fixture image: its canonical primary hash (the PSI item) and its associated data.
struct Image {
    y: Vec<u8>,
    ad: Vec<u8>,
}

fn image(seed: u64) -> Image {
    let cfg = HashConfig::V1;
    let img = image::DynamicImage::ImageRgb8(fixtures::benign_image(seed, 96, 80));
    let h = hash_image(&cfg, &img).unwrap_or_else(|e| panic!("hash: {e}"));
    let ad = AssociatedData::new(&cfg, &h, [seed as u8; 32], 1_700_000_000 + seed)
        .unwrap_or_else(|e| panic!("ad: {e}"))
        .encode();
    Image { y: h.primary.to_canonical_bytes(), ad }
}

struct Env {
    _dir: tempfile::TempDir,
    config: ServerConfig,
    store: Arc<SqliteStore>,
    server: Option<RunningServer>,
    matching: Vec<Image>,
    other: Vec<Image>,
    rng: ChaCha20Rng,
}

fn config(dir: &std::path::Path) -> ServerConfig {
    let mut c = ServerConfig::demo_in(dir);
    c.table_updates = Some(dir.join("table.updates"));
    c.chunk_slots = 4;
    c.order.threshold = T;
    c.order.synthetic_rate = 0.0;
    c.order.synthetic_cap = 2;
    c.worker.poll_interval_ms = 50;
    c.limits.max_vouchers_per_batch = 6;
    c.limits.rate_burst = 10_000;
    c.limits.rate_vouchers_per_second = 10_000.0;
    c.accounts = vec![
        AccountConfig { token: BearerToken::new(ALICE), account: "alice".into(), excluded: false },
        AccountConfig { token: BearerToken::new(BOB), account: "bob".into(), excluded: false },
        AccountConfig { token: BearerToken::new(CAROL), account: "carol".into(), excluded: true },
    ];
    c.limits.max_message_bytes = 6 * c.voucher_len() + 4096;
    c
}

impl Env {
    async fn new(tweak: impl FnOnce(&mut ServerConfig)) -> Env {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut config = config(dir.path());
        tweak(&mut config);
        let mut rng = ChaCha20Rng::seed_from_u64(42);
        let matching: Vec<Image> = (0..6).map(image).collect();
        let other: Vec<Image> = (100..106).map(image).collect();
        let mut indicators: Vec<Vec<u8>> = matching.iter().map(|i| i.y.clone()).collect();
        indicators.extend((0u32..20).map(|i| format!("unrelated indicator {i}").into_bytes()));
        let table = build_table(&config, indicators, &mut rng).unwrap_or_else(|e| panic!("build: {e}"));
        save_table(&config.table, &table).unwrap_or_else(|e| panic!("{e}"));
        let store = Arc::new(SqliteStore::open(&config.database).unwrap_or_else(|e| panic!("{e}")));
        let mut env = Env { _dir: dir, config, store, server: None, matching, other, rng };
        env.start().await;
        env
    }

    async fn start(&mut self) {
        let table = load_table(&self.config.table).unwrap_or_else(|e| panic!("{e}"));
        let store: Arc<dyn Store> = self.store.clone();
        let server = vouchsafe_server::start(self.config.clone(), table, store).await;
        self.server = Some(server.unwrap_or_else(|e| panic!("start: {e}")));
    }

    async fn stop(&mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown().await.unwrap_or_else(|e| panic!("shutdown: {e}"));
        }
    }

    fn addr(&self) -> std::net::SocketAddr {
        self.server.as_ref().map(|s| s.local_addr()).unwrap_or_else(|| panic!("not running"))
    }

    async fn client(&self) -> Client {
        let c = MatchingClient::connect(format!("http://{}", self.addr())).await;
        c.unwrap_or_else(|e| panic!("connect: {e}")).max_decoding_message_size(64 << 20)
    }

    /// Waits until the worker has processed every stored batch.
    async fn drained(&self) {
        let start = Instant::now();
        loop {
            let pending = self.store.stats().unwrap_or_else(|e| panic!("{e}")).batches_pending;
            if pending == 0 {
                return;
            }
            assert!(start.elapsed() < Duration::from_secs(30), "worker did not drain the inbox");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn manifest_of(m: &v1::Manifest) -> TableManifest {
    let params = EpochParams::decode(&m.params).unwrap_or_else(|e| panic!("params: {e}"));
    let chunk_hashes = m
        .chunk_hashes
        .iter()
        .map(|h| <[u8; 32]>::try_from(h.as_slice()).unwrap_or_else(|_| panic!("hash length")))
        .collect();
    TableManifest { params, table_version: m.table_version, chunk_slots: m.chunk_slots, chunk_hashes }
}

/// Downloads and verifies the table the way a client does.
async fn download(client: &mut Client) -> ClientTable {
    let m = client.get_manifest(v1::GetManifestRequest {}).await.unwrap_or_else(|e| panic!("{e}")).into_inner();
    let manifest = manifest_of(&m);
    assert_eq!(manifest.root().to_vec(), m.root, "root in the manifest message is the manifest's root");
    assert_eq!(m.slot_count, manifest.params.slot_count);
    let mut dl = TableDownload::new(manifest);
    let mut stream = client
        .stream_table(v1::StreamTableRequest { table_version: m.table_version, first_chunk: 0 })
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner();
    let mut n = 0;
    while let Some(c) = stream.message().await.unwrap_or_else(|e| panic!("{e}")) {
        assert_eq!(c.index, n);
        dl.add_chunk(&c.chunk).unwrap_or_else(|e| panic!("chunk {n}: {e}"));
        n += 1;
    }
    assert!(n > 1, "the test table spans several chunks");
    dl.finish().unwrap_or_else(|e| panic!("finish: {e}"))
}

fn request(
    token: Option<&str>,
    batch_id: [u8; 16],
    vouchers: Vec<Vec<u8>>,
) -> tonic::Request<v1::SubmitVouchersRequest> {
    let mut r = tonic::Request::new(v1::SubmitVouchersRequest { batch_id: batch_id.to_vec(), vouchers });
    if let Some(t) = token {
        let v: MetadataValue<_> = format!("Bearer {t}").parse().unwrap_or_else(|_| panic!("metadata"));
        r.metadata_mut().insert("authorization", v);
    }
    r
}

async fn submit(client: &mut Client, token: &str, batch_id: [u8; 16], vouchers: Vec<Vec<u8>>) -> v1::SubmitAck {
    client
        .submit_vouchers(request(Some(token), batch_id, vouchers))
        .await
        .unwrap_or_else(|e| panic!("submit: {e}"))
        .into_inner()
}

struct Device {
    session: ClientSession,
}

impl Device {
    fn new(table: &ClientTable, rng: &mut ChaCha20Rng) -> Device {
        let state = ClientState::new(table.params(), rng);
        Device { session: ClientSession::new(state).unwrap_or_else(|e| panic!("{e}")) }
    }
    fn voucher(&mut self, table: &ClientTable, img: &Image, rng: &mut ChaCha20Rng) -> (Vec<u8>, VoucherKind) {
        let v = self.session.voucher(table, &img.y, &img.ad, rng).unwrap_or_else(|e| panic!("voucher: {e}"));
        (v.voucher.encode(), v.kind)
    }
}

fn code_of<T: std::fmt::Debug>(r: Result<T, tonic::Status>) -> (Code, String) {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(s) => (s.code(), s.message().to_owned()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_and_excluded_accounts_are_refused() {
    let mut env = Env::new(|_| {}).await;
    let mut client = env.client().await;
    let table = download(&mut client).await;
    let mut dev = Device::new(&table, &mut env.rng);
    let (v, _) = dev.voucher(&table, &env.matching[0], &mut env.rng);

    let (code, _) = code_of(client.submit_vouchers(request(None, [1; 16], vec![v.clone()])).await);
    assert_eq!(code, Code::Unauthenticated);
    let (code, msg) =
        code_of(client.submit_vouchers(request(Some("not-a-known-token-123"), [1; 16], vec![v.clone()])).await);
    assert_eq!(code, Code::Unauthenticated);
    assert!(!msg.contains("not-a-known-token"), "status messages never echo tokens");
    let mut r = request(None, [1; 16], vec![v.clone()]);
    r.metadata_mut().insert("authorization", MetadataValue::from_static("Basic YWxpY2U="));
    assert_eq!(code_of(client.submit_vouchers(r).await).0, Code::Unauthenticated);
    let (code, _) = code_of(client.submit_vouchers(request(Some(CAROL), [1; 16], vec![v.clone()])).await);
    assert_eq!(code, Code::PermissionDenied);
    // Nothing of the refused requests was stored.
    assert_eq!(env.store.stats().unwrap_or_else(|e| panic!("{e}")).batches_pending, 0);
    assert_eq!(env.store.counters("carol").unwrap_or_else(|e| panic!("{e}")).received, 0);
    // The real token works.
    let ack = submit(&mut client, ALICE, [1; 16], vec![v]).await;
    assert_eq!(ack.accepted, 1);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_vouchers_are_invalid_argument_and_the_server_keeps_serving() {
    let mut env = Env::new(|_| {}).await;
    let mut client = env.client().await;
    let table = download(&mut client).await;
    let mut dev = Device::new(&table, &mut env.rng);
    let (good, _) = dev.voucher(&table, &env.other[0], &mut env.rng);
    let (good2, _) = dev.voucher(&table, &env.other[1], &mut env.rng);

    let truncated = good[..good.len() - 1].to_vec();
    let (code, msg) =
        code_of(client.submit_vouchers(request(Some(ALICE), [2; 16], vec![good.clone(), truncated])).await);
    assert_eq!(code, Code::InvalidArgument);
    assert!(msg.contains("voucher 1") && msg.contains("length"), "message names the index: {msg}");

    let mut extended = good.clone();
    extended.push(0);
    let (code, msg) = code_of(client.submit_vouchers(request(Some(ALICE), [2; 16], vec![extended])).await);
    assert_eq!(code, Code::InvalidArgument);
    assert!(msg.contains("voucher 0"), "{msg}");

    let mut bad_version = good.clone();
    bad_version[0] = 2;
    let (code, msg) = code_of(
        client.submit_vouchers(request(Some(ALICE), [2; 16], vec![good.clone(), good2.clone(), bad_version])).await,
    );
    assert_eq!(code, Code::InvalidArgument);
    assert!(msg.contains("voucher 2") && msg.contains("version"), "{msg}");

    let mut other_epoch = good.clone();
    other_epoch[1] ^= 0x55;
    let (code, msg) = code_of(client.submit_vouchers(request(Some(ALICE), [2; 16], vec![other_epoch])).await);
    assert_eq!(code, Code::InvalidArgument);
    assert!(msg.contains("voucher 0") && msg.contains("epoch"), "{msg}");

    let mut r = request(Some(ALICE), [2; 16], vec![good.clone()]);
    r.get_mut().batch_id = vec![2; 15];
    let (code, msg) = code_of(client.submit_vouchers(r).await);
    assert_eq!(code, Code::InvalidArgument);
    assert!(msg.contains("batch_id"), "{msg}");
    let (code, _) = code_of(client.submit_vouchers(request(Some(ALICE), [2; 16], vec![])).await);
    assert_eq!(code, Code::InvalidArgument);

    // Nothing of the refused batches was stored, and the server still serves this and other clients.
    assert_eq!(env.store.stats().unwrap_or_else(|e| panic!("{e}")).batches_pending, 0);
    let ack = submit(&mut client, ALICE, [2; 16], vec![good, good2]).await;
    assert_eq!(ack.accepted, 2);
    let mut other_client = env.client().await;
    assert!(other_client.get_manifest(v1::GetManifestRequest {}).await.is_ok());
    env.drained().await;
    let c = env.store.counters("alice").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((c.received, c.non_matches, c.opened, c.invalid), (2, 2, 0, 0));
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_batches_are_resource_exhausted() {
    let mut env = Env::new(|_| {}).await;
    let mut client = env.client().await;
    let table = download(&mut client).await;
    let mut dev = Device::new(&table, &mut env.rng);
    let max = env.config.limits.max_vouchers_per_batch;
    // Too many vouchers (count checked before contents): RESOURCE_EXHAUSTED.
    let (code, msg) = code_of(client.submit_vouchers(request(Some(ALICE), [3; 16], vec![vec![1u8; 8]; max + 1])).await);
    assert_eq!(code, Code::ResourceExhausted, "{msg}");
    assert!(msg.contains(&format!("limit is {max}")), "{msg}");
    // A message over limits.max_message_bytes is refused by the transport before any handler runs.
    let (v, _) = dev.voucher(&table, &env.other[0], &mut env.rng);
    let huge =
        vec![v.clone(); 1].into_iter().chain(std::iter::once(vec![0u8; env.config.limits.max_message_bytes])).collect();
    let (code, _) = code_of(client.submit_vouchers(request(Some(ALICE), [3; 16], huge)).await);
    assert_eq!(code, Code::OutOfRange, "tonic reports an over-limit message as OUT_OF_RANGE");
    assert_eq!(env.store.stats().unwrap_or_else(|e| panic!("{e}")).batches_pending, 0);
    // Exactly the limit is fine.
    let mut full = Vec::new();
    for img in env.other.iter().take(max) {
        full.push(dev.voucher(&table, img, &mut env.rng).0);
    }
    assert_eq!(submit(&mut client, ALICE, [3; 16], full).await.accepted, max as u32);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_is_resource_exhausted() {
    let mut env = Env::new(|c| {
        c.limits.rate_vouchers_per_second = 0.01;
        c.limits.rate_burst = 6;
    })
    .await;
    let mut client = env.client().await;
    let table = download(&mut client).await;
    let mut dev = Device::new(&table, &mut env.rng);
    let vs: Vec<Vec<u8>> = env.other.iter().take(5).map(|i| dev.voucher(&table, i, &mut env.rng).0).collect();
    assert_eq!(submit(&mut client, ALICE, [4; 16], vs.clone()).await.accepted, 5);
    let (code, _) = code_of(client.submit_vouchers(request(Some(ALICE), [5; 16], vs.clone())).await);
    assert_eq!(code, Code::ResourceExhausted);
    // Buckets are per account.
    assert_eq!(submit(&mut client, BOB, [5; 16], vs).await.accepted, 5);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ack_bytes_do_not_depend_on_voucher_contents() {
    let mut env = Env::new(|_| {}).await;
    let mut client = env.client().await;
    let table = download(&mut client).await;
    let mut alice = Device::new(&table, &mut env.rng);
    let mut bob = Device::new(&table, &mut env.rng);
    let matching: Vec<Vec<u8>> = env.matching[..3].iter().map(|i| alice.voucher(&table, i, &mut env.rng).0).collect();
    let other: Vec<Vec<u8>> = env.other[..3].iter().map(|i| bob.voucher(&table, i, &mut env.rng).0).collect();
    let batch = [9u8; 16];
    let a = submit(&mut client, ALICE, batch, matching).await.encode_to_vec();
    let b = submit(&mut client, BOB, batch, other).await.encode_to_vec();
    assert_eq!(a, b, "the acknowledgement is byte-identical for a matching and a non-matching batch");
    assert_eq!(a, v1::SubmitAck { batch_id: batch.to_vec(), accepted: 3 }.encode_to_vec());
    env.drained().await;
    // They were really different: alice's opened (and crossed T = 3), bob's did not.
    assert_eq!(env.store.counters("alice").unwrap_or_else(|e| panic!("{e}")).opened, 3);
    assert_eq!(env.store.counters("bob").unwrap_or_else(|e| panic!("{e}")).non_matches, 3);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resubmitting_a_batch_counts_once() {
    let mut env = Env::new(|_| {}).await;
    let mut client = env.client().await;
    let table = download(&mut client).await;
    let mut dev = Device::new(&table, &mut env.rng);
    let vs: Vec<Vec<u8>> =
        vec![dev.voucher(&table, &env.matching[0], &mut env.rng).0, dev.voucher(&table, &env.other[0], &mut env.rng).0];
    let first = submit(&mut client, ALICE, [6; 16], vs.clone()).await.encode_to_vec();
    env.drained().await;
    let again = submit(&mut client, ALICE, [6; 16], vs.clone()).await.encode_to_vec();
    // A retry whose contents differ (a client bug) is still the stored batch: same ack, nothing new counted.
    let different = submit(&mut client, ALICE, [6; 16], vec![vs[1].clone()]).await.encode_to_vec();
    assert_eq!(first, again);
    assert_eq!(first, different);
    env.drained().await;
    let c = env.store.counters("alice").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((c.received, c.opened, c.non_matches, c.invalid), (2, 1, 1, 0));
    assert_eq!(env.store.opened_vouchers("alice", env.config.order.order_id).map(|v| v.len()).ok(), Some(1));
    // The same batch id from another account is another batch.
    submit(&mut client, BOB, [6; 16], vs).await;
    env.drained().await;
    assert_eq!(env.store.counters("bob").unwrap_or_else(|e| panic!("{e}")).received, 2);
    env.stop().await;
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Every byte the store keeps on disk: the database, its WAL and the inbox spool files.
fn db_bytes(env: &Env) -> Vec<u8> {
    let mut all = Vec::new();
    for suffix in ["", "-wal"] {
        let mut p = env.config.database.as_os_str().to_owned();
        p.push(suffix);
        if let Ok(b) = std::fs::read(&p) {
            all.extend(b);
        }
    }
    let mut spool = env.config.database.as_os_str().to_owned();
    spool.push(".inbox");
    for entry in std::fs::read_dir(std::path::Path::new(&spool)).unwrap_or_else(|e| panic!("spool: {e}")) {
        let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
        all.extend(std::fs::read(&path).unwrap_or_else(|e| panic!("{e}")));
    }
    all
}

/// A 40-byte window of the associated data (attachment reference and the start of the primary hash) that is
/// unique to each fixture image.
fn ad_marker(img: &Image) -> &[u8] {
    &img.ad[19..59]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn threshold_opens_a_case_with_exactly_the_matching_ad() {
    let mut env = Env::new(|_| {}).await;
    let mut client = env.client().await;
    let table = download(&mut client).await;
    let order = env.config.order.order_id;
    let mut dev = Device::new(&table, &mut env.rng);

    // Below the threshold: T - 1 matches among non-matches.
    let mut batch = Vec::new();
    for img in [&env.matching[0], &env.other[0], &env.matching[1], &env.other[1], &env.other[2]] {
        let (v, kind) = dev.voucher(&table, img, &mut env.rng);
        assert_eq!(kind, VoucherKind::Real);
        batch.push(v);
    }
    submit(&mut client, ALICE, [10; 16], batch).await;
    env.drained().await;
    let c = env.store.counters("alice").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((c.received, c.opened, c.non_matches), (5, 2, 3));
    assert!(env.store.list_cases(&CaseFilter::default()).unwrap_or_else(|e| panic!("{e}")).is_empty());
    assert_eq!(env.store.opened_vouchers("alice", order).map(|v| v.len()).ok(), Some(2));
    let db = db_bytes(&env);
    for img in env.matching.iter().chain(&env.other) {
        assert!(!contains(&db, ad_marker(img)), "no associated data in the database below the threshold");
    }

    // A repeated image gives a null voucher and does not count.
    let (v, kind) = dev.voucher(&table, &env.matching[0], &mut env.rng);
    assert_eq!(kind, VoucherKind::Null);
    submit(&mut client, ALICE, [11; 16], vec![v]).await;
    env.drained().await;
    assert!(env.store.list_cases(&CaseFilter::default()).unwrap_or_else(|e| panic!("{e}")).is_empty());

    // The T-th distinct match crosses the threshold.
    let (v, _) = dev.voucher(&table, &env.matching[2], &mut env.rng);
    let (w, _) = dev.voucher(&table, &env.other[3], &mut env.rng);
    submit(&mut client, ALICE, [12; 16], vec![v, w]).await;
    env.drained().await;
    let cases = env.store.list_cases(&CaseFilter::default()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cases.len(), 1);
    assert_eq!(cases[0].account, "alice");
    let case = env.store.get_case(cases[0].id).unwrap_or_else(|e| panic!("{e}")).unwrap_or_else(|| panic!("case"));
    let mut got: Vec<Vec<u8>> = case.items.iter().map(|i| i.ad.clone()).collect();
    let mut want: Vec<Vec<u8>> = env.matching[..3].iter().map(|i| i.ad.clone()).collect();
    got.sort();
    want.sort();
    assert_eq!(got, want, "the case holds exactly the matching images' associated data");

    // After the reveal a new match is classified against f and added to the same case; bob is unaffected.
    let (v, _) = dev.voucher(&table, &env.matching[3], &mut env.rng);
    submit(&mut client, ALICE, [13; 16], vec![v]).await;
    let mut bob = Device::new(&table, &mut env.rng);
    let bobs: Vec<Vec<u8>> = env.matching[..2].iter().map(|i| bob.voucher(&table, i, &mut env.rng).0).collect();
    submit(&mut client, BOB, [13; 16], bobs).await;
    env.drained().await;
    let cases = env.store.list_cases(&CaseFilter::default()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cases.len(), 1, "bob is below the threshold");
    let case = env.store.get_case(cases[0].id).unwrap_or_else(|e| panic!("{e}")).unwrap_or_else(|| panic!("case"));
    assert_eq!(case.items.len(), 4);
    assert!(case.items.iter().any(|i| i.ad == env.matching[3].ad));

    // Non-matching images' associated data is nowhere in the database; the matching ones' is (positive control).
    let db = db_bytes(&env);
    for img in &env.other {
        assert!(!contains(&db, ad_marker(img)));
    }
    assert!(env.matching[..4].iter().any(|img| contains(&db, ad_marker(img))), "the scan can see case items");
    let audit = env.store.audit_entries(0, 100).unwrap_or_else(|e| panic!("{e}"));
    assert!(audit.iter().any(|a| a.action == "threshold.reveal"));
    assert!(audit.iter().any(|a| a.action == "case.create"));
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_hash_mismatch_is_dropped_before_review_and_audited() {
    let mut env = Env::new(|_| {}).await;
    let mut client = env.client().await;
    let table = download(&mut client).await;
    let mut dev = Device::new(&table, &mut env.rng);
    // One matching image whose associated data carries a secondary hash that its derivative does not give.
    let mut forged = Image { y: env.matching[4].y.clone(), ad: env.matching[4].ad.clone() };
    for b in &mut forged.ad[83..115] {
        *b ^= 0xff;
    }
    let mut batch = Vec::new();
    for img in [&env.matching[0], &forged, &env.matching[1], &env.matching[2]] {
        batch.push(dev.voucher(&table, img, &mut env.rng).0);
    }
    submit(&mut client, ALICE, [20; 16], batch).await;
    env.drained().await;
    let cases = env.store.list_cases(&CaseFilter::default()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cases.len(), 1);
    let case = env.store.get_case(cases[0].id).unwrap_or_else(|e| panic!("{e}")).unwrap_or_else(|| panic!("case"));
    assert_eq!(case.items.len(), 3);
    assert!(case.items.iter().all(|i| i.ad != forged.ad));
    let audit = env.store.audit_entries(0, 100).unwrap_or_else(|e| panic!("{e}"));
    let dropped: Vec<_> = audit.iter().filter(|a| a.action == "case.item_dropped").collect();
    assert_eq!(dropped.len(), 1);
    assert!(dropped[0].detail.contains("secondary-mismatch"));
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synthetic_vouchers_are_discarded_after_the_reveal() {
    let mut env = Env::new(|c| {
        c.order.synthetic_rate = 0.5;
        c.order.synthetic_cap = 2;
    })
    .await;
    let mut client = env.client().await;
    let table = download(&mut client).await;
    let mut dev = Device::new(&table, &mut env.rng);
    let mut reals = Vec::new();
    let mut synthetics = 0;
    let mut batch_no = 30u8;
    let mut imgs = env.matching.iter().chain(env.other.iter());
    // Send images until T real matches went out (synthetic vouchers replace some of them).
    while reals.len() < T as usize {
        let Some(img) = imgs.next() else { panic!("ran out of images") };
        let (v, kind) = dev.voucher(&table, img, &mut env.rng);
        match kind {
            VoucherKind::Real if env.matching.iter().any(|m| m.y == img.y) => reals.push(img.ad.clone()),
            VoucherKind::Synthetic => synthetics += 1,
            _ => {}
        }
        submit(&mut client, ALICE, [batch_no; 16], vec![v]).await;
        batch_no += 1;
    }
    assert!(synthetics > 0, "the seeded run makes synthetic vouchers");
    env.drained().await;
    let cases = env.store.list_cases(&CaseFilter::default()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cases.len(), 1);
    let case = env.store.get_case(cases[0].id).unwrap_or_else(|e| panic!("{e}")).unwrap_or_else(|| panic!("case"));
    let mut got: Vec<Vec<u8>> = case.items.iter().map(|i| i.ad.clone()).collect();
    got.sort();
    reals.sort();
    assert_eq!(got, reals, "synthetics never reach the case");
    let c = env.store.counters("alice").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.opened, (T as u64) + synthetics);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_distribution_and_updates() {
    let mut env = Env::new(|_| {}).await;
    let mut client = env.client().await;
    let v1_table = download(&mut client).await;
    let version = v1_table.manifest().table_version;

    let (code, _) =
        code_of(client.stream_table(v1::StreamTableRequest { table_version: version + 1, first_chunk: 0 }).await);
    assert_eq!(code, Code::NotFound);
    let chunks = v1_table.manifest().chunk_hashes.len() as u32;
    let (code, _) =
        code_of(client.stream_table(v1::StreamTableRequest { table_version: version, first_chunk: chunks }).await);
    assert_eq!(code, Code::OutOfRange);
    // Resume from the middle.
    let mut s = client
        .stream_table(v1::StreamTableRequest { table_version: version, first_chunk: chunks - 1 })
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner();
    let last = s.message().await.unwrap_or_else(|e| panic!("{e}")).unwrap_or_else(|| panic!("no chunk"));
    assert_eq!(last.index, chunks - 1);
    assert!(s.message().await.unwrap_or_else(|e| panic!("{e}")).is_none());

    // Up to date: an empty update.
    let u = client
        .get_update(v1::GetUpdateRequest { from_version: version })
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner();
    assert!(u.update.is_empty());
    assert_eq!(u.to_version, version);
    assert_eq!(
        code_of(client.get_update(v1::GetUpdateRequest { from_version: version + 5 }).await).0,
        Code::InvalidArgument
    );
    // A base the history does not reach: NOT_FOUND ("resync fully"), distinct from FAILED_PRECONDITION ("no order").
    assert_eq!(code_of(client.get_update(v1::GetUpdateRequest { from_version: 0 }).await).0, Code::NotFound);

    // The operator removes an indicator and adds one twice; the restarted server serves v1 -> v3.
    env.stop().await;
    let mut table = load_table(&env.config.table).unwrap_or_else(|e| panic!("{e}"));
    let updates = env.config.table_updates.clone().unwrap_or_else(|| panic!("updates path"));
    let u1 = table.update(
        vec![b"added one".to_vec()],
        &[env.matching[5].y.clone(), b"unrelated indicator 2".to_vec()],
        &mut env.rng,
    );
    append_update(&updates, &u1.unwrap_or_else(|e| panic!("{e}"))).unwrap_or_else(|e| panic!("{e}"));
    let u2 = table.update(
        vec![b"added two".to_vec()],
        &[b"unrelated indicator 0".to_vec(), b"unrelated indicator 1".to_vec()],
        &mut env.rng,
    );
    append_update(&updates, &u2.unwrap_or_else(|e| panic!("{e}"))).unwrap_or_else(|e| panic!("{e}"));
    save_table(&env.config.table, &table).unwrap_or_else(|e| panic!("{e}"));
    env.start().await;
    let mut client = env.client().await;
    let m = client.get_manifest(v1::GetManifestRequest {}).await.unwrap_or_else(|e| panic!("{e}")).into_inner();
    assert_eq!(m.table_version, version + 2);
    let u = client
        .get_update(v1::GetUpdateRequest { from_version: version })
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner();
    let update = TableUpdate::decode(&u.update).unwrap_or_else(|e| panic!("{e}"));
    let patched = v1_table.apply_update(&update, manifest_of(&m)).unwrap_or_else(|e| panic!("apply: {e}"));
    assert_eq!(patched.root().to_vec(), m.root);
    assert_eq!(u.root, m.root);
    let fresh = download(&mut client).await;
    assert_eq!(fresh.slots(), patched.slots());
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbox_survives_a_restart_and_processing_is_idempotent() {
    let mut env = Env::new(|_| {}).await;
    let mut client = env.client().await;
    let table = download(&mut client).await;
    env.stop().await;
    // Batches acknowledged but not processed before a crash are in the inbox; nothing runs now.
    let mut dev = Device::new(&table, &mut env.rng);
    let vs: Vec<Vec<u8>> = env.matching[..3].iter().map(|i| dev.voucher(&table, i, &mut env.rng).0).collect();
    env.store.insert_batch("alice", [40; 16], &vs[..2], 1).unwrap_or_else(|e| panic!("{e}"));
    env.store.insert_batch("alice", [41; 16], &vs[2..], 1).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(env.store.stats().map(|s| s.batches_pending).ok(), Some(2));

    let server_table = load_table(&env.config.table).unwrap_or_else(|e| panic!("{e}"));
    let report = process_pending(&env.config, &server_table, &*env.store).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((report.batches, report.vouchers, report.opened, report.reveals), (2, 3, 3, 1));
    assert_eq!(report.cases_created, 1);
    assert_eq!(report.case_items, 3);
    let again = process_pending(&env.config, &server_table, &*env.store).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(again.batches, 0);

    // A batch stored while the server is down is processed by the worker once it is back.
    let (v, _) = dev.voucher(&table, &env.matching[3], &mut env.rng);
    env.store.insert_batch("alice", [42; 16], &[v], 2).unwrap_or_else(|e| panic!("{e}"));
    env.start().await;
    env.drained().await;
    let cases = env.store.list_cases(&CaseFilter::default()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cases.len(), 1);
    assert_eq!(cases[0].items, 4);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_batch_is_set_aside_and_does_not_hold_up_the_inbox() {
    let mut env = Env::new(|_| {}).await;
    let mut client = env.client().await;
    let table = download(&mut client).await;
    env.stop().await;
    let mut dev = Device::new(&table, &mut env.rng);
    let lost: Vec<Vec<u8>> = env.other[..2].iter().map(|i| dev.voucher(&table, i, &mut env.rng).0).collect();
    let kept: Vec<Vec<u8>> = env.matching[..2].iter().map(|i| dev.voucher(&table, i, &mut env.rng).0).collect();
    env.store.insert_batch("alice", [50; 16], &lost, 1).unwrap_or_else(|e| panic!("{e}"));
    env.store.insert_batch("alice", [51; 16], &kept, 1).unwrap_or_else(|e| panic!("{e}"));
    // The oldest batch's spool file disappears (e.g. a database restored without its spool directory).
    let mut spool = env.config.database.as_os_str().to_owned();
    spool.push(".inbox");
    let mut files: Vec<_> = std::fs::read_dir(std::path::Path::new(&spool))
        .unwrap_or_else(|e| panic!("{e}"))
        .map(|e| e.unwrap_or_else(|e| panic!("{e}")).path())
        .filter(|p| p.extension().is_some_and(|x| x == "batch"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 2);
    std::fs::remove_file(&files[0]).unwrap_or_else(|e| panic!("{e}"));

    let server_table = load_table(&env.config.table).unwrap_or_else(|e| panic!("{e}"));
    let report = process_pending(&env.config, &server_table, &*env.store).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((report.batches, report.vouchers, report.opened), (1, 2, 2), "the readable batch is processed");
    let c = env.store.counters("alice").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((c.received, c.opened, c.invalid), (4, 2, 2), "the unreadable batch counts as invalid");
    assert_eq!(env.store.stats().map(|s| s.batches_pending).ok(), Some(0));
    let audit = env.store.audit_entries(0, 100).unwrap_or_else(|e| panic!("{e}"));
    let entry = audit.iter().find(|a| a.action == "inbox.unreadable").unwrap_or_else(|| panic!("audited"));
    assert!(entry.detail.contains("vouchers=2") && entry.detail.contains("missing"), "{}", entry.detail);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_serving_and_shutdown_is_graceful() {
    let mut env = Env::new(|_| {}).await;
    let addr = env.addr();
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap_or_else(|e| panic!("{e}"))
        .connect()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let r = health
        .check(tonic_health::pb::HealthCheckRequest { service: "vouchsafe.v1.Matching".into() })
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner();
    assert_eq!(r.status, tonic_health::pb::health_check_response::ServingStatus::Serving as i32);
    env.stop().await;
    assert!(MatchingClient::connect(format!("http://{addr}")).await.is_err(), "no longer accepting");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_order_refuses_vouchers() {
    let mut env = Env::new(|c| {
        c.order.not_before = vouchsafe_server::unix_now() - 100;
        c.order.not_after = vouchsafe_server::unix_now() - 10;
        c.retention.purge_after_seconds = 0;
    })
    .await;
    let mut client = env.client().await;
    assert_eq!(code_of(client.get_manifest(v1::GetManifestRequest {}).await).0, Code::FailedPrecondition);
    // No order beats every other answer: GetUpdate says FAILED_PRECONDITION, not the NOT_FOUND of a missing base.
    assert_eq!(code_of(client.get_update(v1::GetUpdateRequest { from_version: 0 }).await).0, Code::FailedPrecondition);
    let (code, _) = code_of(client.submit_vouchers(request(Some(ALICE), [50; 16], vec![vec![1u8; 10]])).await);
    assert_eq!(code, Code::FailedPrecondition);
    // The worker purges the expired order (purge_after_seconds = 0) and audits it.
    let start = Instant::now();
    loop {
        let audit = env.store.audit_entries(0, 10).unwrap_or_else(|e| panic!("{e}"));
        if audit.iter().any(|a| a.action == "order.purge") {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "no purge");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    env.stop().await;
}

/// Throughput figure (not a pass/fail bar): `cargo test -p vouchsafe-server --release --test grpc -- --ignored
/// --nocapture throughput`. Submits 2,000 non-matching vouchers in batches of 100 over loopback gRPC and reports
/// the intake rate (durably stored) and the worker's processing rate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn throughput() {
    let mut env = Env::new(|c| {
        c.limits.max_vouchers_per_batch = 100;
        c.limits.max_message_bytes = 100 * c.voucher_len() + 4096;
        c.worker.poll_interval_ms = 60_000;
    })
    .await;
    let mut client = env.client().await;
    let table = download(&mut client).await;
    let mut batches = Vec::new();
    for b in 0..20u8 {
        let mut dev = Device::new(&table, &mut env.rng);
        let vs: Vec<Vec<u8>> = (0..100u32)
            .map(|i| {
                let y = format!("image {b} {i}").into_bytes();
                let img = Image { y, ad: vec![0u8; 16] };
                dev.voucher(&table, &img, &mut env.rng).0
            })
            .collect();
        batches.push(vs);
    }
    let t0 = Instant::now();
    for (b, vs) in batches.into_iter().enumerate() {
        submit(&mut client, ALICE, [b as u8; 16], vs).await;
    }
    let intake = t0.elapsed();
    env.drained().await;
    let total = t0.elapsed();
    let c = env.store.counters("alice").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.received, 2000);
    println!(
        "intake: 2000 vouchers in {:?} ({:.0}/s); intake + processing: {:?} ({:.0}/s)",
        intake,
        2000.0 / intake.as_secs_f64(),
        total,
        2000.0 / total.as_secs_f64()
    );
    env.stop().await;
}

/// A table update reaches clients without a restart: `reload_table` (what SIGHUP does) serves the later version,
/// clients get it as an update from the old version, and vouchers for the added image open. The same files again
/// change nothing; an older table file or a rebuilt table (another α for the same epoch) is refused, and the
/// served table stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_serves_a_later_version_and_refuses_anything_else() {
    let mut env = Env::new(|_| {}).await;
    let mut client = env.client().await;
    let v1_table = download(&mut client).await;
    let version = |c: &mut Client| {
        let mut c = c.clone();
        async move { c.get_manifest(v1::GetManifestRequest {}).await.unwrap_or_else(|e| panic!("{e}")).into_inner() }
    };
    async fn reload(env: &Env) -> vouchsafe_server::Result<vouchsafe_server::TableReload> {
        env.server.as_ref().unwrap_or_else(|| panic!("not running")).reload_table().await
    }

    let r = reload(&env).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(!r.changed && r.from_version == 1 && r.to_version == 1, "{r:?}");

    // The operator adds one image (the steps of `vouchsafe table update`).
    let v1_file = std::fs::read(&env.config.table).unwrap_or_else(|e| panic!("{e}"));
    let added = image(50);
    let mut t = load_table(&env.config.table).unwrap_or_else(|e| panic!("{e}"));
    let before = t.indicator_count();
    let u = t.update(vec![added.y.clone()], &[], &mut env.rng).unwrap_or_else(|e| panic!("{e}"));
    let history = env.config.table_updates.clone().unwrap_or_else(|| panic!("no history configured"));
    append_update(&history, &u).unwrap_or_else(|e| panic!("{e}"));
    save_table(&env.config.table, &t).unwrap_or_else(|e| panic!("{e}"));
    let r = reload(&env).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(r.changed && r.from_version == 1 && r.to_version == 2 && r.indicators == before + 1, "{r:?}");

    // Clients see version 2 and get it as an update from 1.
    let m2 = version(&mut client).await;
    assert_eq!(m2.table_version, 2);
    let wire = client
        .get_update(v1::GetUpdateRequest { from_version: 1 })
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner();
    assert_eq!((wire.from_version, wire.to_version), (1, 2));
    let update = TableUpdate::decode(&wire.update).unwrap_or_else(|e| panic!("{e}"));
    let v2_table = v1_table.apply_update(&update, manifest_of(&m2)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(v2_table.root().to_vec(), m2.root);

    // A voucher for the added image, made from version 2, opens; the worker uses the reloaded table.
    let mut dev = Device::new(&v2_table, &mut env.rng);
    let (v, kind) = dev.voucher(&v2_table, &added, &mut env.rng);
    assert_eq!(kind, VoucherKind::Real);
    submit(&mut client, ALICE, [60; 16], vec![v]).await;
    env.drained().await;
    assert_eq!(env.store.counters("alice").unwrap_or_else(|e| panic!("{e}")).opened, 1);
    let audit = env.store.audit_entries(0, 100).unwrap_or_else(|e| panic!("{e}"));
    let reloads: Vec<_> = audit.iter().filter(|a| a.action == "table.reload").collect();
    assert_eq!(reloads.len(), 1, "one entry for the one reload that changed the table");
    assert!(reloads[0].detail.contains("from_version=1 to_version=2"), "{}", reloads[0].detail);

    // Refused: the version-1 file back (a rollback), then a rebuilt table of the same epoch (another α).
    let v2_file = std::fs::read(&env.config.table).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(&env.config.table, &v1_file).unwrap_or_else(|e| panic!("{e}"));
    match reload(&env).await {
        Err(vouchsafe_server::ServerError::TableReload { reason }) => assert!(reason.contains("older"), "{reason}"),
        other => panic!("rollback accepted: {other:?}"),
    }
    let rebuilt = build_table(&env.config, vec![added.y.clone()], &mut env.rng).unwrap_or_else(|e| panic!("{e}"));
    save_table(&env.config.table, &rebuilt).unwrap_or_else(|e| panic!("{e}"));
    match reload(&env).await {
        Err(vouchsafe_server::ServerError::TableReload { reason }) => {
            assert!(reason.contains("key") || reason.contains("parameters"), "{reason}")
        }
        other => panic!("rebuilt table accepted: {other:?}"),
    }
    assert_eq!(version(&mut client).await.root, m2.root, "the served table did not change");
    std::fs::write(&env.config.table, &v2_file).unwrap_or_else(|e| panic!("{e}"));
    assert!(!reload(&env).await.unwrap_or_else(|e| panic!("{e}")).changed);
    env.stop().await;
}

/// A client that sends a request's headers and then nothing (a slow-loris upload) is cut off with CANCELLED after
/// `limits.request_timeout_seconds`, and the server keeps serving others meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_upload_is_cut_off_after_the_request_timeout() {
    let mut env = Env::new(|c| c.limits.request_timeout_seconds = 1).await;
    let addr = env.addr();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap_or_else(|e| panic!("{e}"));
    let (mut h2c, conn) = h2::client::handshake(tcp).await.unwrap_or_else(|e| panic!("{e}"));
    tokio::spawn(conn);
    let req = http::Request::builder()
        .method("POST")
        .uri(format!("http://{addr}/vouchsafe.v1.Matching/SubmitVouchers"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("authorization", format!("Bearer {ALICE}"))
        .body(())
        .unwrap_or_else(|e| panic!("{e}"));
    let t0 = Instant::now();
    // The body stream stays open (`_body` is held) and nothing is ever sent on it.
    let (response, _body) = h2c.send_request(req, false).unwrap_or_else(|e| panic!("{e}"));
    // Meanwhile another client is served.
    let mut other = env.client().await;
    assert!(other.get_manifest(v1::GetManifestRequest {}).await.is_ok());
    let response = tokio::time::timeout(Duration::from_secs(20), response)
        .await
        .unwrap_or_else(|_| panic!("no answer to a stalled request within 20 s"))
        .unwrap_or_else(|e| panic!("{e}"));
    let waited = t0.elapsed();
    // gRPC puts the status in the headers of a trailers-only response, else in the trailers.
    let status = match response.headers().get("grpc-status") {
        Some(s) => s.clone(),
        None => {
            let mut body = response.into_body();
            while body.data().await.is_some() {}
            let trailers = body.trailers().await.unwrap_or_else(|e| panic!("{e}")).unwrap_or_default();
            trailers.get("grpc-status").cloned().unwrap_or_else(|| panic!("no grpc-status"))
        }
    };
    assert_eq!(status.to_str().ok(), Some("1"), "CANCELLED (1), the code tonic gives an expired request");
    assert!(waited >= Duration::from_millis(900), "not before the timeout: {waited:?}");
    assert_eq!(env.store.stats().unwrap_or_else(|e| panic!("{e}")).batches_pending, 0, "nothing stored");
    env.stop().await;
}
