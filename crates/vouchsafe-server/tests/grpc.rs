//! End-to-end tests of the matching server over real gRPC on 127.0.0.1:0 with the generated tonic client.
//! Vouchers are made with `vouchsafe_protocol::client::ClientSession` from a `ClientTable` downloaded from the
//! server's own chunks; images are deterministic benign fixtures hashed with `vouchsafe-phash`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // test code: a failure is the test failing

mod common;
use common::{Image, image};

use std::sync::Arc;
use std::time::{Duration, Instant};

use prost::Message as _;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use tonic::Code;
use tonic::metadata::MetadataValue;
use vouchsafe_orders::Scope;
use vouchsafe_proto::v1;
use vouchsafe_proto::v1::matching_client::MatchingClient;
use vouchsafe_protocol::client::{ClientSession, ClientState, VoucherKind};
use vouchsafe_protocol::params::EpochParams;
use vouchsafe_protocol::table::{ClientTable, TableDownload, TableManifest, TableUpdate};
use vouchsafe_server::events::Event;
use vouchsafe_server::governance::{Fixture, FixtureSpec};
use vouchsafe_server::{AccountConfig, Governance, RunningServer, ServerConfig, load_table, process_pending};
use vouchsafe_store::{CaseFilter, SqliteStore, Store};

const ALICE: &str = "alice-token-0123456789";
const BOB: &str = "bob-token-0123456789ab";
const CAROL: &str = "carol-token-0123456789";
const T: u16 = 3;

type Client = MatchingClient<tonic::transport::Channel>;

struct Env {
    _dir: tempfile::TempDir,
    fixture: Fixture,
    config: ServerConfig,
    store: Arc<SqliteStore>,
    server: Option<RunningServer>,
    matching: Vec<Image>,
    other: Vec<Image>,
    rng: ChaCha20Rng,
}

fn config(c: &mut ServerConfig) {
    c.chunk_slots = 4;
    c.worker.poll_interval_ms = 50;
    c.limits.max_vouchers_per_batch = 6;
    c.limits.rate_burst = 10_000;
    c.limits.rate_vouchers_per_second = 10_000.0;
    c.accounts = vec![
        AccountConfig::new(ALICE, "alice"),
        AccountConfig::new(BOB, "bob"),
        AccountConfig { classes: vec!["state".into()], ..AccountConfig::new(CAROL, "carol") },
    ];
    c.limits.max_message_bytes = 6 * c.voucher_len(2) + 4096;
}

/// The indicators of the tests: the six matching images and twenty unrelated hashes (secondary = primary).
fn indicators(matching: &[Image]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut ind: Vec<(Vec<u8>, Vec<u8>)> = matching.iter().map(|i| (i.y.clone(), i.secondary.clone())).collect();
    ind.extend((0u32..20).map(|i| {
        let y = format!("unrelated indicator {i}").into_bytes();
        (y.clone(), y)
    }));
    ind
}

impl Env {
    async fn new(tweak: impl FnOnce(&mut ServerConfig)) -> Env {
        Env::with(|_| {}, tweak).await
    }

    /// A fixture (order, Centre release, keys) with `spec` tweaked, the config tweaked, the table built and signed.
    async fn with(spec: impl FnOnce(&mut FixtureSpec), tweak: impl FnOnce(&mut ServerConfig)) -> Env {
        let mut env = Env::unstarted(spec, tweak);
        env.start().await;
        env
    }

    fn unstarted(spec: impl FnOnce(&mut FixtureSpec), tweak: impl FnOnce(&mut ServerConfig)) -> Env {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut rng = ChaCha20Rng::seed_from_u64(42);
        let matching: Vec<Image> = (0..6).map(image).collect();
        let other: Vec<Image> = (100..106).map(image).collect();
        let mut s = FixtureSpec::new(indicators(&matching));
        s.threshold = T;
        s.synthetic_cap = 2;
        spec(&mut s);
        let mut fixture = Fixture::create(dir.path(), s, &mut rng).unwrap_or_else(|e| panic!("fixture: {e}"));
        config(&mut fixture.config);
        tweak(&mut fixture.config);
        fixture.build_table(&mut rng).unwrap_or_else(|e| panic!("build: {e}"));
        let config = fixture.config.clone();
        let store = Arc::new(SqliteStore::open(&config.database).unwrap_or_else(|e| panic!("{e}")));
        Env { _dir: dir, fixture, config, store, server: None, matching, other, rng }
    }

    fn order_id(&self) -> [u8; 16] {
        *self.fixture.order.order().order_id()
    }

    fn gov(&self) -> Governance {
        Governance::load(&self.config).unwrap_or_else(|e| panic!("{e}"))
    }

    async fn try_start(&mut self) -> vouchsafe_server::Result<()> {
        let store: Arc<dyn Store> = self.store.clone();
        self.server = Some(vouchsafe_server::start(self.config.clone(), store).await?);
        Ok(())
    }

    async fn start(&mut self) {
        self.try_start().await.unwrap_or_else(|e| panic!("start: {e}"));
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
    let mut r =
        tonic::Request::new(v1::SubmitVouchersRequest { batch_id: batch_id.to_vec(), vouchers, client_state: vec![] });
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
    let (code, msg) = code_of(client.submit_vouchers(request(Some(ALICE), [3; 16], huge)).await);
    assert_eq!(code, Code::ResourceExhausted, "an over-limit message is RESOURCE_EXHAUSTED, as the proto says: {msg}");
    assert!(msg.contains(&env.config.limits.max_message_bytes.to_string()), "the message names the limit: {msg}");
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
async fn resubmitting_a_batch_counts_once_and_other_content_under_its_id_is_refused() {
    let mut env = Env::new(|_| {}).await;
    let mut client = env.client().await;
    let table = download(&mut client).await;
    let mut dev = Device::new(&table, &mut env.rng);
    let vs: Vec<Vec<u8>> =
        vec![dev.voucher(&table, &env.matching[0], &mut env.rng).0, dev.voucher(&table, &env.other[0], &mut env.rng).0];
    let first = submit(&mut client, ALICE, [6; 16], vs.clone()).await.encode_to_vec();
    env.drained().await;
    let again = submit(&mut client, ALICE, [6; 16], vs.clone()).await.encode_to_vec();
    assert_eq!(first, again);
    // The same id with other content (a client bug) is refused, whatever the vouchers are: fewer vouchers, other
    // vouchers, the same vouchers in another order, or another client state. Nothing new is stored or counted.
    let other_content = [
        request(Some(ALICE), [6; 16], vec![vs[1].clone()]),
        request(Some(ALICE), [6; 16], vec![vs[1].clone(), vs[0].clone()]),
        request(Some(ALICE), [6; 16], vec![vs[0].clone(), dev.voucher(&table, &env.other[1], &mut env.rng).0]),
        {
            let mut r = request(Some(ALICE), [6; 16], vs.clone());
            r.get_mut().client_state = vec![7; 16];
            r
        },
    ];
    for r in other_content {
        let (code, msg) = code_of(client.submit_vouchers(r).await);
        assert_eq!(code, Code::AlreadyExists, "{msg}");
        assert!(msg.contains("batch_id") && msg.contains("other"), "{msg}");
    }
    assert_eq!(env.store.stats().unwrap_or_else(|e| panic!("{e}")).batches_pending, 0);
    // The original is still idempotent after the refusals.
    assert_eq!(submit(&mut client, ALICE, [6; 16], vs.clone()).await.encode_to_vec(), first);
    env.drained().await;
    let c = env.store.counters("alice").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((c.received, c.opened, c.non_matches, c.invalid), (2, 1, 1, 0));
    assert_eq!(env.store.opened_vouchers("alice", env.order_id()).map(|v| v.len()).ok(), Some(1));
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
    let order = env.order_id();
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
    let mut forged = Image {
        y: env.matching[4].y.clone(),
        ad: env.matching[4].ad.clone(),
        secondary: env.matching[4].secondary.clone(),
    };
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
    assert!(
        matches!(Event::parse(dropped[0]), Ok(Event::ItemDropped { ref reason, .. }) if reason == "secondary-mismatch"),
        "{}",
        dropped[0].detail
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synthetic_vouchers_are_discarded_after_the_reveal() {
    let mut env = Env::with(
        |s| {
            s.synthetic_rate = EpochParams::rate_from_probability(0.5);
            s.synthetic_cap = 2;
        },
        |_| {},
    )
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

    // The Centre removes two indicators and adds one, then adds another and removes two more; the operator
    // updates the table after each release; the restarted server serves v1 -> v3.
    env.stop().await;
    let pair = |b: &[u8]| (b.to_vec(), b.to_vec());
    env.fixture
        .release(&[pair(b"added one")], &[env.matching[5].y.clone(), b"unrelated indicator 2".to_vec()])
        .unwrap_or_else(|e| panic!("{e}"));
    env.fixture.update_table(&mut env.rng).unwrap_or_else(|e| panic!("{e}"));
    env.fixture
        .release(&[pair(b"added two")], &[b"unrelated indicator 0".to_vec(), b"unrelated indicator 1".to_vec()])
        .unwrap_or_else(|e| panic!("{e}"));
    let out = env.fixture.update_table(&mut env.rng).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((out.from_release, out.to_release, out.added, out.removed), (2, 3, 1, 2));
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
    let report = process_pending(&env.config, &env.gov(), &server_table, &*env.store).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((report.batches, report.vouchers, report.opened, report.reveals), (2, 3, 3, 1));
    assert_eq!(report.cases_created, 1);
    assert_eq!(report.case_items, 3);
    let again = process_pending(&env.config, &env.gov(), &server_table, &*env.store).unwrap_or_else(|e| panic!("{e}"));
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
    let report = process_pending(&env.config, &env.gov(), &server_table, &*env.store).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((report.batches, report.vouchers, report.opened), (1, 2, 2), "the readable batch is processed");
    let c = env.store.counters("alice").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((c.received, c.opened, c.invalid), (4, 2, 2), "the unreadable batch counts as invalid");
    assert_eq!(env.store.stats().map(|s| s.batches_pending).ok(), Some(0));
    let audit = env.store.audit_entries(0, 100).unwrap_or_else(|e| panic!("{e}"));
    let entry = audit.iter().find(|a| a.action == "inbox.unreadable").unwrap_or_else(|| panic!("audited"));
    assert!(
        matches!(Event::parse(entry), Ok(Event::InboxUnreadable { vouchers: 2, ref reason, .. }) if reason.contains("missing")),
        "{}",
        entry.detail
    );
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
    let mut env = Env::with(
        |s| {
            s.not_before = vouchsafe_server::unix_now() - 100;
            s.not_after = vouchsafe_server::unix_now() - 10;
        },
        |c| c.retention.purge_after_seconds = 0,
    )
    .await;
    let mut client = env.client().await;
    assert_eq!(code_of(client.get_manifest(v1::GetManifestRequest {}).await).0, Code::FailedPrecondition);
    // No order beats every other answer: GetUpdate says FAILED_PRECONDITION, not the NOT_FOUND of a missing base.
    assert_eq!(code_of(client.get_update(v1::GetUpdateRequest { from_version: 0 }).await).0, Code::FailedPrecondition);
    let (code, msg) = code_of(client.submit_vouchers(request(Some(ALICE), [50; 16], vec![vec![1u8; 10]])).await);
    assert_eq!(code, Code::FailedPrecondition);
    assert!(msg.starts_with("the detection order expired at "), "{msg}");
    assert_eq!(env.store.counters("alice").unwrap_or_else(|e| panic!("{e}")).received, 0, "nothing stored");
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
        c.limits.max_message_bytes = 100 * c.voucher_len(2) + 4096;
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
                let img = Image { y, ad: vec![0u8; 16], secondary: Vec::new() };
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

    // The Centre releases one more image and the operator updates the table (`vouchsafe table update`).
    let v1_file = std::fs::read(&env.config.table).unwrap_or_else(|e| panic!("{e}"));
    let v1_manifest = std::fs::read(env.config.manifest_path()).unwrap_or_else(|e| panic!("{e}"));
    let added = image(50);
    let before = load_table(&env.config.table).unwrap_or_else(|e| panic!("{e}")).indicator_count();
    env.fixture.release(&[(added.y.clone(), added.secondary.clone())], &[]).unwrap_or_else(|e| panic!("{e}"));
    env.fixture.update_table(&mut env.rng).unwrap_or_else(|e| panic!("{e}"));
    let r = reload(&env).await.unwrap_or_else(|e| panic!("{e}"));
    // The worker's watch on the table files may have reloaded them a moment before (then this reload finds the
    // served version already 2).
    assert!(r.to_version == 2 && r.indicators == before + 1, "{r:?}");
    assert!((r.changed && r.from_version == 1) || (!r.changed && r.from_version == 2), "{r:?}");

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
    assert!(
        matches!(Event::parse(reloads[0]), Ok(Event::TableReload { from_version: 1, to_version: 2, .. })),
        "{}",
        reloads[0].detail
    );

    // Refused: the version-1 files back (a rollback), then a rebuilt table of the same epoch (another α), then a
    // table whose signed manifest is not its own.
    let v2_file = std::fs::read(&env.config.table).unwrap_or_else(|e| panic!("{e}"));
    let v2_manifest = std::fs::read(env.config.manifest_path()).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(&env.config.table, &v1_file).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(env.config.manifest_path(), &v1_manifest).unwrap_or_else(|e| panic!("{e}"));
    match reload(&env).await {
        Err(vouchsafe_server::ServerError::TableReload { reason }) => assert!(reason.contains("older"), "{reason}"),
        other => panic!("rollback accepted: {other:?}"),
    }
    env.fixture.build_table(&mut env.rng).unwrap_or_else(|e| panic!("{e}"));
    match reload(&env).await {
        Err(vouchsafe_server::ServerError::TableReload { reason }) => {
            assert!(reason.contains("key") || reason.contains("parameters"), "{reason}")
        }
        other => panic!("rebuilt table accepted: {other:?}"),
    }
    std::fs::write(&env.config.table, &v2_file).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(env.config.manifest_path(), &v1_manifest).unwrap_or_else(|e| panic!("{e}"));
    match reload(&env).await {
        Err(vouchsafe_server::ServerError::Governance { what, reason }) => {
            assert_eq!(what, "signed manifest");
            assert!(reason.contains("does not describe the table file"), "{reason}");
        }
        other => panic!("a foreign manifest accepted: {other:?}"),
    }
    assert_eq!(version(&mut client).await.root, m2.root, "the served table did not change");
    std::fs::write(env.config.manifest_path(), &v2_manifest).unwrap_or_else(|e| panic!("{e}"));
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

// ------------------------------------------------------------------------------------------------ issue 8: the
// signed order, the Centre chain, the signed manifest and the transparency log, as the server enforces them.

type Transparency = vouchsafe_proto::v1::transparency_client::TransparencyClient<tonic::transport::Channel>;

impl Env {
    async fn transparency(&self) -> Transparency {
        let c = Transparency::connect(format!("http://{}", self.addr())).await;
        c.unwrap_or_else(|e| panic!("connect: {e}"))
    }
}

fn start_error(env: &mut Env) -> String {
    let rt = tokio::runtime::Handle::current();
    let r = tokio::task::block_in_place(|| rt.block_on(env.try_start()));
    match r {
        Ok(()) => panic!("the server started"),
        Err(e) => e.to_string(),
    }
}

fn flip_byte(path: &std::path::Path, at: usize) {
    let mut b = std::fs::read(path).unwrap_or_else(|e| panic!("{e}"));
    let i = at.min(b.len() - 1);
    b[i] ^= 0x01;
    std::fs::write(path, b).unwrap_or_else(|e| panic!("{e}"));
}

/// The Manifest carries the signed order, the signed manifest and the leaf indexes; both leaves are in the log
/// under its checkpoint, which is signed by the log key; witnesses' cosignatures are collected and persisted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifest_carries_the_signed_objects_and_the_log_proves_them() {
    let mut env = Env::new(|_| {}).await;
    let mut client = env.client().await;
    let m = client.get_manifest(v1::GetManifestRequest {}).await.unwrap_or_else(|e| panic!("{e}")).into_inner();
    assert_eq!(m.signed_order, std::fs::read(&env.config.order.signed_order).unwrap_or_else(|e| panic!("{e}")));
    assert!(m.revocations.is_empty());
    let keyring = env.fixture.keyring().unwrap_or_else(|e| panic!("{e}"));
    let order = keyring.verify_order_bytes(&m.signed_order).unwrap_or_else(|e| panic!("{e}"));
    let manifest = order.verify_manifest_bytes(&m.signed_manifest).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(manifest.table_manifest(), manifest_of(&m).encode(), "the statement covers the served manifest");
    assert_eq!(manifest.statement().release_number, 1);
    // Log: order at 0, release at 1, manifest at 2.
    assert_eq!((m.order_leaf_index, m.manifest_leaf_index), (0, 2));
    let mut t = env.transparency().await;
    let note = t.get_checkpoint(v1::GetCheckpointRequest {}).await.unwrap_or_else(|e| panic!("{e}")).into_inner().note;
    let parsed = vouchsafe_log::Note::parse(&note).unwrap_or_else(|e| panic!("{e}"));
    env.fixture.log_verifier().verify_note(&parsed).unwrap_or_else(|e| panic!("{e}"));
    let cp = vouchsafe_log::Checkpoint::parse(parsed.text()).unwrap_or_else(|e| panic!("{e}"));
    let head = cp.tree_head();
    assert_eq!(head.size, 3);
    for (kind, bytes, index) in [
        (vouchsafe_log::LeafKind::Order, m.signed_order.clone(), m.order_leaf_index),
        (vouchsafe_log::LeafKind::Manifest, m.signed_manifest.clone(), m.manifest_leaf_index),
    ] {
        let p = t
            .get_inclusion_proof(v1::GetInclusionProofRequest { leaf_index: index, tree_size: head.size })
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .into_inner();
        let proof = vouchsafe_log::InclusionProof::decode(&p.proof).unwrap_or_else(|e| panic!("{e}"));
        let leaf = vouchsafe_log::Leaf::new(kind, bytes).unwrap_or_else(|e| panic!("{e}"));
        vouchsafe_log::merkle::verify_inclusion(&leaf.encode(), index, &proof, &head).unwrap_or_else(|e| panic!("{e}"));
    }
    let leaves = t.get_leaves(v1::GetLeavesRequest { start: 0, end: 3 }).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(leaves.into_inner().leaves.len(), 3);
    for (code, r) in [
        (
            Code::OutOfRange,
            t.get_inclusion_proof(v1::GetInclusionProofRequest { leaf_index: 3, tree_size: 3 }).await.map(|_| ()),
        ),
        (
            Code::OutOfRange,
            t.get_inclusion_proof(v1::GetInclusionProofRequest { leaf_index: 0, tree_size: 4 }).await.map(|_| ()),
        ),
        (
            Code::OutOfRange,
            t.get_consistency_proof(v1::GetConsistencyProofRequest { old_size: 3, new_size: 2 }).await.map(|_| ()),
        ),
        (Code::OutOfRange, t.get_leaves(v1::GetLeavesRequest { start: 2, end: 2 }).await.map(|_| ())),
    ] {
        assert_eq!(code_of(r).0, code);
    }

    // Witnesses cosign; a stale checkpoint, an unknown witness and a forged line are refused.
    let mut lines = Vec::new();
    for w in &env.fixture.witnesses {
        let key =
            vouchsafe_log::WitnessSigningKey::from_private_key(&w.to_private_key()).unwrap_or_else(|e| panic!("{e}"));
        let mut witness = vouchsafe_log::Witness::new(key);
        witness.follow(env.fixture.log_verifier()).unwrap_or_else(|e| panic!("{e}"));
        let proof = vouchsafe_log::ConsistencyProof::from_hashes(Vec::new()).unwrap_or_else(|e| panic!("{e}"));
        let sig = witness.cosign(&note, &proof, 1_700_000_000).unwrap_or_else(|e| panic!("cosign: {e}"));
        lines.push(sig.to_line());
    }
    let add = |checkpoint: &str, line: &str| v1::AddCosignatureRequest {
        checkpoint: checkpoint.as_bytes().to_vec(),
        cosignature: line.to_owned(),
    };
    let (code, _) = code_of(t.add_cosignature(add("other\n1\nAAAA\n", &lines[0])).await);
    assert_eq!(code, Code::FailedPrecondition);
    let stranger =
        vouchsafe_log::WitnessSigningKey::generate("witness-1", &mut env.rng).unwrap_or_else(|e| panic!("{e}"));
    let mut w = vouchsafe_log::Witness::new(stranger);
    w.follow(env.fixture.log_verifier()).unwrap_or_else(|e| panic!("{e}"));
    let proof = vouchsafe_log::ConsistencyProof::from_hashes(Vec::new()).unwrap_or_else(|e| panic!("{e}"));
    let line = w.cosign(&note, &proof, 1).unwrap_or_else(|e| panic!("{e}")).to_line();
    assert_eq!(code_of(t.add_cosignature(add(parsed.text(), &line)).await).0, Code::InvalidArgument);
    let mut forged = lines[0].clone().into_bytes();
    let n = forged.len();
    forged[n - 3] = if forged[n - 3] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(code_of(t.add_cosignature(add(parsed.text(), &forged)).await).0, Code::InvalidArgument);
    for (i, line) in lines.iter().enumerate() {
        let r = t.add_cosignature(add(parsed.text(), line)).await.unwrap_or_else(|e| panic!("{e}")).into_inner();
        assert_eq!(r.cosignatures as usize, i + 1);
    }
    let policy = vouchsafe_log::CheckpointPolicy::new(env.fixture.log_verifier(), env.fixture.witness_verifiers(), 2)
        .unwrap_or_else(|e| panic!("{e}"));
    let note2 = t.get_checkpoint(v1::GetCheckpointRequest {}).await.unwrap_or_else(|e| panic!("{e}")).into_inner().note;
    policy.verify_checkpoint(&note2).unwrap_or_else(|e| panic!("quorum: {e}"));

    // The cosigned checkpoint survives a restart (nothing new to log).
    env.stop().await;
    env.start().await;
    let mut t = env.transparency().await;
    let note3 = t.get_checkpoint(v1::GetCheckpointRequest {}).await.unwrap_or_else(|e| panic!("{e}")).into_inner().note;
    assert_eq!(note3, note2);
    env.stop().await;
}

/// A table update and a revocation each grow the log consistently; the revoked order is refused at once, with a
/// message that says so, and nothing is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_stops_serving_at_once_and_is_logged() {
    let mut env = Env::new(|_| {}).await;
    let mut client = env.client().await;
    let table = download(&mut client).await;
    let mut t = env.transparency().await;
    let size = |n: &[u8]| {
        let n = vouchsafe_log::Note::parse(n).unwrap_or_else(|e| panic!("{e}"));
        vouchsafe_log::Checkpoint::parse(n.text()).unwrap_or_else(|e| panic!("{e}")).tree_head()
    };
    let before =
        size(&t.get_checkpoint(v1::GetCheckpointRequest {}).await.unwrap_or_else(|e| panic!("{e}")).into_inner().note);
    env.fixture.revoke(vouchsafe_orders::RevocationReason::Annulled).unwrap_or_else(|e| panic!("{e}"));
    // The worker re-reads the revocations directory every poll interval (50 ms here).
    let start = Instant::now();
    let msg = loop {
        match client.get_manifest(v1::GetManifestRequest {}).await {
            Err(s) if s.code() == Code::FailedPrecondition => break s.message().to_owned(),
            _ => {}
        }
        assert!(start.elapsed() < Duration::from_secs(10), "the revocation was not applied");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(msg.starts_with("the detection order was revoked at "), "{msg}");
    let mut dev = Device::new(&table, &mut env.rng);
    let (v, _) = dev.voucher(&table, &env.matching[0], &mut env.rng);
    let (code, msg) = code_of(client.submit_vouchers(request(Some(ALICE), [70; 16], vec![v])).await);
    assert_eq!(code, Code::FailedPrecondition);
    assert!(msg.contains("revoked"), "{msg}");
    assert_eq!(env.store.counters("alice").unwrap_or_else(|e| panic!("{e}")).received, 0, "nothing stored");
    assert_eq!(
        code_of(client.stream_table(v1::StreamTableRequest { table_version: 1, first_chunk: 0 }).await).0,
        Code::FailedPrecondition
    );
    let after =
        size(&t.get_checkpoint(v1::GetCheckpointRequest {}).await.unwrap_or_else(|e| panic!("{e}")).into_inner().note);
    assert_eq!(after.size, before.size + 1, "the revocation is a leaf");
    let p = t
        .get_consistency_proof(v1::GetConsistencyProofRequest { old_size: before.size, new_size: after.size })
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner();
    let proof = vouchsafe_log::ConsistencyProof::decode(&p.proof).unwrap_or_else(|e| panic!("{e}"));
    vouchsafe_log::merkle::verify_consistency(&before, &after, &proof).unwrap_or_else(|e| panic!("{e}"));
    // Still revoked after a restart (the revocation is read at start).
    env.stop().await;
    env.start().await;
    let mut client = env.client().await;
    assert_eq!(code_of(client.get_manifest(v1::GetManifestRequest {}).await).0, Code::FailedPrecondition);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_not_yet_valid_order_is_failed_precondition_and_stores_nothing() {
    let now = vouchsafe_server::unix_now();
    let mut env = Env::with(
        |s| {
            s.not_before = now + 3600;
            s.not_after = now + 7200;
        },
        |_| {},
    )
    .await;
    let mut client = env.client().await;
    let (code, msg) = code_of(client.get_manifest(v1::GetManifestRequest {}).await);
    assert_eq!(code, Code::FailedPrecondition);
    assert_eq!(msg, format!("the detection order is not yet valid: valid from {}", now + 3600));
    let (code, _) = code_of(client.submit_vouchers(request(Some(ALICE), [71; 16], vec![vec![1u8; 10]])).await);
    assert_eq!(code, Code::FailedPrecondition);
    assert_eq!(env.store.counters("alice").unwrap_or_else(|e| panic!("{e}")).received, 0);
    env.stop().await;
}

/// An order scoped to components (groups) covers only accounts the registry lists in one of them; an account of
/// an excluded class is refused whatever its scope. Nothing of a refused batch is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scope_and_excluded_classes_are_permission_denied() {
    for scope in [Scope::Components(vec!["chat".into()]), Scope::Groups(vec!["g1".into()])] {
        let mut env = Env::with(
            |s| s.scope = scope.clone(),
            |c| {
                c.accounts = vec![
                    AccountConfig {
                        components: vec!["chat".into()],
                        groups: vec!["g1".into()],
                        ..AccountConfig::new(ALICE, "alice")
                    },
                    AccountConfig {
                        components: vec!["feed".into()],
                        groups: vec!["g2".into()],
                        ..AccountConfig::new(BOB, "bob")
                    },
                    AccountConfig {
                        components: vec!["chat".into()],
                        groups: vec!["g1".into()],
                        classes: vec!["state".into()],
                        ..AccountConfig::new(CAROL, "carol")
                    },
                ];
            },
        )
        .await;
        let mut client = env.client().await;
        let table = download(&mut client).await;
        let mut dev = Device::new(&table, &mut env.rng);
        let (v, _) = dev.voucher(&table, &env.other[0], &mut env.rng);
        let (code, msg) = code_of(client.submit_vouchers(request(Some(BOB), [72; 16], vec![v.clone()])).await);
        assert_eq!(code, Code::PermissionDenied);
        assert!(msg.contains("outside the detection order's scope"), "{msg}");
        let (code, msg) = code_of(client.submit_vouchers(request(Some(CAROL), [73; 16], vec![v.clone()])).await);
        assert_eq!(code, Code::PermissionDenied);
        assert!(msg.contains("class the detection order excludes"), "{msg}");
        for a in ["bob", "carol"] {
            assert_eq!(env.store.counters(a).unwrap_or_else(|e| panic!("{e}")).received, 0);
        }
        assert_eq!(submit(&mut client, ALICE, [74; 16], vec![v]).await.accepted, 1);
        env.stop().await;
    }
}

/// Every governance file is checked at start: a flipped byte in the order, the release, the manifest or a
/// revocation, an unknown authority key, a release not signed by the order's Centre key, a manifest signed by
/// another key, a table built from another list, and a rewritten log each stop the start with a precise error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_refuses_to_start_on_any_unverified_file() {
    let mut env = Env::unstarted(|_| {}, |_| {});
    let c = env.config.clone();
    let release = vouchsafe_server::governance::release_path(&c.releases.dir, "demo", 1);
    let keep = |p: &std::path::Path| std::fs::read(p).unwrap_or_else(|e| panic!("{e}"));
    let (order, rel, man) = (keep(&c.order.signed_order), keep(&release), keep(&c.manifest_path()));

    for (path, original, at, want) in [
        (&c.order.signed_order, &order, 40, "detection order"),
        (&c.order.signed_order, &order, 10, "signature does not verify"),
        (&release, &rel, 30, "release"),
        (&c.manifest_path(), &man, 100, "signed manifest"),
    ] {
        flip_byte(path, at);
        let e = start_error(&mut env);
        assert!(e.contains(want), "{e}");
        std::fs::write(path, original).unwrap_or_else(|e| panic!("{e}"));
    }

    // An authority key the order does not name.
    let other = vouchsafe_orders::AuthoritySigningKey::generate(&mut env.rng);
    let pinned = c.order.authority_keys[0].clone();
    let pinned_text = keep(&pinned);
    let text = vouchsafe_files::key_text(
        vouchsafe_server::governance::AUTHORITY_PUBLIC_HEADER,
        &other.public_key().to_bytes(),
    );
    std::fs::write(&pinned, text.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    let e = start_error(&mut env);
    assert!(e.contains("unknown authority key id"), "{e}");
    std::fs::write(&pinned, &pinned_text).unwrap_or_else(|e| panic!("{e}"));

    // A release signed by another Centre key than the order's.
    let centre = vouchsafe_release::CentreSigningKey::generate(&mut env.rng);
    let signed = vouchsafe_release::SignedRelease::decode(&rel).unwrap_or_else(|e| panic!("{e}"));
    let verified = signed.verify(&env.fixture.centre.public()).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(&release, centre.sign(verified.release()).encode()).unwrap_or_else(|e| panic!("{e}"));
    let e = start_error(&mut env);
    assert!(e.contains("release") && e.contains(&release.display().to_string()), "{e}");
    std::fs::write(&release, &rel).unwrap_or_else(|e| panic!("{e}"));

    // A revocation that does not verify.
    let rev = env.fixture.revoke(vouchsafe_orders::RevocationReason::Unspecified).unwrap_or_else(|e| panic!("{e}"));
    flip_byte(&rev, 20);
    let e = start_error(&mut env);
    assert!(e.contains("revocation") && e.contains("signature does not verify"), "{e}");
    std::fs::remove_file(&rev).unwrap_or_else(|e| panic!("{e}"));

    // A manifest signed by another key (statement unchanged).
    let gov = env.gov();
    let stranger = vouchsafe_orders::TableSigningKey::generate(&mut env.rng);
    let statement =
        vouchsafe_orders::SignedManifest::decode(&man).unwrap_or_else(|e| panic!("{e}")).statement().clone();
    assert!(stranger.sign_manifest(gov.order(), statement).is_err(), "the library refuses to sign for another key");
    let mut forged = man.clone();
    forged[5] ^= 0x40; // inside the signature
    std::fs::write(c.manifest_path(), &forged).unwrap_or_else(|e| panic!("{e}"));
    let e = start_error(&mut env);
    assert!(e.contains("signed manifest") && e.contains("signature does not verify"), "{e}");
    std::fs::write(c.manifest_path(), &man).unwrap_or_else(|e| panic!("{e}"));

    // A table from an unsigned list, with a manifest properly signed by the order's table key: refused.
    let list: Vec<Vec<u8>> = vec![b"not from the Centre".to_vec(), env.matching[0].y.clone()];
    let rogue = vouchsafe_protocol::table::ServerTable::build(
        &c.table_config(gov.order()),
        vouchsafe_protocol::table::BlindingKey::random(&mut env.rng),
        list,
        &mut env.rng,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let head = gov.chain();
    let st = vouchsafe_orders::ManifestStatement {
        order_id: *gov.order().order_id(),
        order_hash: gov.order().signed().hash(),
        release_number: head.number(),
        release_hash: head.head(),
        issued_at: 1,
        table_manifest: rogue.manifest().encode(),
    };
    let signed = env.fixture.table_key.sign_manifest(gov.order(), st).unwrap_or_else(|e| panic!("{e}"));
    let table_file = keep(&c.table);
    vouchsafe_server::save_table(&c.table, &rogue).unwrap_or_else(|e| panic!("{e}"));
    vouchsafe_server::save_manifest(&c.manifest_path(), &signed).unwrap_or_else(|e| panic!("{e}"));
    let e = start_error(&mut env);
    assert!(e.contains("does not hold exactly the indicators of release 1"), "{e}");
    std::fs::write(&c.table, &table_file).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(c.manifest_path(), &man).unwrap_or_else(|e| panic!("{e}"));

    // Everything restored: it starts; then a rewritten log (one leaf altered) is refused.
    env.start().await;
    env.stop().await;
    flip_byte(&c.log.dir.join("leaves"), 30);
    let e = start_error(&mut env);
    assert!(e.contains("transparency log") && e.contains("rewritten"), "{e}");
    assert_eq!(env.store.stats().unwrap_or_else(|e| panic!("{e}")).batches_pending, 0);
}

/// `table update` from a release chain: refused when the table already holds the newest release, and a table
/// cannot be signed with a key that is not the order's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_are_built_and_updated_only_from_the_chain_with_the_orders_key() {
    let mut env = Env::unstarted(|_| {}, |_| {});
    let gov = env.gov();
    let e = env.fixture.update_table(&mut env.rng).map(|_| ()).unwrap_err().to_string();
    assert!(e.contains("already holds release 1"), "{e}");
    let stranger = vouchsafe_orders::TableSigningKey::generate(&mut env.rng);
    let e = vouchsafe_server::build_table(&env.config, &gov, &stranger, 1, &mut env.rng).map(|_| ()).unwrap_err();
    assert!(e.to_string().contains("table key"), "{e}");
    // The table file holds exactly the release's primaries.
    let t = load_table(&env.config.table).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(t.indicator_count(), gov.chain().len());
    assert!(gov.chain().indicators().all(|i| t.contains(i.primary)));
}

// ------------------------------------------------------------------------------------------------ issue 12: several
// devices per account, hostile clients, exact statuses, honest idempotency, the bounded backlog.

/// A submission from one client state (its public id in the request).
fn state_request(
    token: &str,
    batch_id: [u8; 16],
    state: [u8; 16],
    vouchers: Vec<Vec<u8>>,
) -> tonic::Request<v1::SubmitVouchersRequest> {
    let mut r = request(Some(token), batch_id, vouchers);
    r.get_mut().client_state = state.to_vec();
    r
}

impl Device {
    fn state_id(&self) -> [u8; 16] {
        self.session.state().state_id().unwrap_or_else(|e| panic!("{e}"))
    }
    /// Makes the vouchers for `imgs` and submits them as one batch under this device's client state.
    async fn send(
        &mut self,
        client: &mut Client,
        table: &ClientTable,
        imgs: &[&Image],
        batch: u8,
        rng: &mut ChaCha20Rng,
    ) {
        let vs = imgs.iter().map(|i| self.voucher(table, i, rng).0).collect();
        let r = client.submit_vouchers(state_request(ALICE, [batch; 16], self.state_id(), vs)).await;
        r.unwrap_or_else(|e| panic!("submit: {e}"));
    }
}

/// The associated data of every item of alice's cases, sorted.
fn alice_items(env: &Env) -> Vec<Vec<u8>> {
    let filter = CaseFilter { account: Some("alice".into()), ..CaseFilter::default() };
    let mut items: Vec<Vec<u8>> = env
        .store
        .list_cases(&filter)
        .unwrap_or_else(|e| panic!("{e}"))
        .iter()
        .flat_map(|c| {
            env.store.get_case(c.id).unwrap_or_else(|e| panic!("{e}")).unwrap_or_else(|| panic!("case")).items
        })
        .map(|i| i.ad)
        .collect();
    items.sort();
    items
}

fn ads(imgs: &[&Image]) -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = imgs.iter().map(|i| i.ad.clone()).collect();
    v.sort();
    v
}

/// A phone and a linked desktop of one account: each has its own client state, the threshold applies to each,
/// one crossing it while the other keeps sending reveals only its own items, and the other's join the account's
/// case once it crosses too. No reconstruction fails on the way (before client-state ids, the two states' shares
/// were mixed under the account).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_device_of_an_account_has_its_own_state_and_threshold() {
    let mut env = Env::new(|_| {}).await;
    let mut client = env.client().await;
    let table = download(&mut client).await;
    let mut phone = Device::new(&table, &mut env.rng);
    let mut desktop = Device::new(&table, &mut env.rng);
    assert_ne!(phone.state_id(), desktop.state_id());
    let m: Vec<&Image> = env.matching.iter().collect();
    let mut rng = env.rng.clone();
    // Interleaved: phone 2 matches (below T = 3), desktop 3 (at T), each batch with some non-matches.
    phone.send(&mut client, &table, &[m[0], &env.other[0]], 1, &mut rng).await;
    desktop.send(&mut client, &table, &[m[2], m[3]], 2, &mut rng).await;
    phone.send(&mut client, &table, &[m[1]], 3, &mut rng).await;
    desktop.send(&mut client, &table, &[&env.other[1], m[4]], 4, &mut rng).await;
    env.drained().await;
    assert_eq!(alice_items(&env), ads(&[m[2], m[3], m[4]]), "only the desktop's state crossed the threshold");
    // The phone keeps sending: its third match reveals its own three items, into the same open case.
    phone.send(&mut client, &table, &[m[5], &env.other[2]], 5, &mut rng).await;
    env.drained().await;
    assert_eq!(alice_items(&env), ads(&[m[0], m[1], m[2], m[3], m[4], m[5]]));
    let filter = CaseFilter { account: Some("alice".into()), ..CaseFilter::default() };
    assert_eq!(env.store.list_cases(&filter).unwrap_or_else(|e| panic!("{e}")).len(), 1, "one case per account");
    let stats = env.store.stats().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((stats.client_states, stats.threshold_failures), (2, 0));
    let reveals = env.store.audit_entries(0, 1000).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(reveals.iter().filter(|a| a.action == "threshold.reveal").count(), 2);
    env.stop().await;
}

/// A reinstall makes a new client state: what the old one sent does not count toward the new one's threshold
/// (the same images count again there, under new shares), and the old state's vouchers stay stored below T.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reinstall_starts_a_new_state() {
    let mut env = Env::new(|_| {}).await;
    let mut client = env.client().await;
    let table = download(&mut client).await;
    let m: Vec<&Image> = env.matching.iter().collect();
    let mut rng = env.rng.clone();
    let mut before = Device::new(&table, &mut rng);
    before.send(&mut client, &table, &[m[0], m[1]], 1, &mut rng).await;
    env.drained().await;
    let mut after = Device::new(&table, &mut rng); // reinstalled: a fresh state
    after.send(&mut client, &table, &[m[0], m[1]], 2, &mut rng).await;
    env.drained().await;
    assert!(alice_items(&env).is_empty(), "two states with two matches each: nobody crossed T = 3");
    after.send(&mut client, &table, &[m[2]], 3, &mut rng).await;
    env.drained().await;
    assert_eq!(alice_items(&env), ads(&[m[0], m[1], m[2]]), "the new state crossed on its own");
    let order = env.order_id();
    let before_state =
        env.store.state_opened_vouchers("alice", before.state_id(), order).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(before_state.len(), 2, "the old state's opened vouchers are kept (until the order's purge)");
    assert!(env.store.account_state("alice", before.state_id(), order).unwrap_or_else(|e| panic!("{e}")).is_none());
    env.stop().await;
}

/// A hostile client flooding one account with client states: beyond `limits.max_client_states` every new state is
/// refused with RESOURCE_EXHAUSTED and nothing of it is stored; the account's existing states and other accounts
/// are unaffected. A retry of a stored batch of an existing state is still answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_states_per_account_are_bounded() {
    let mut env = Env::new(|c| c.limits.max_client_states = 2).await;
    let mut client = env.client().await;
    let table = download(&mut client).await;
    let mut dev = Device::new(&table, &mut env.rng);
    let v = |env: &mut Env, dev: &mut Device, i: usize| dev.voucher(&table, &env.other[i], &mut env.rng).0;
    let first = v(&mut env, &mut dev, 0);
    submit_state(&mut client, ALICE, 1, [1; 16], vec![first.clone()]).await.unwrap_or_else(|e| panic!("{e}"));
    let second = v(&mut env, &mut dev, 1);
    submit_state(&mut client, ALICE, 2, [2; 16], vec![second]).await.unwrap_or_else(|e| panic!("{e}"));
    env.drained().await;
    let received = env.store.counters("alice").unwrap_or_else(|e| panic!("{e}")).received;
    for s in 3u8..13 {
        let vs = vec![v(&mut env, &mut dev, (s % 6) as usize)];
        let (code, msg) = code_of(submit_state(&mut client, ALICE, 10 + s, [s; 16], vs).await);
        assert_eq!(code, Code::ResourceExhausted, "{msg}");
        assert!(msg.contains("2 client states"), "{msg}");
    }
    env.drained().await;
    assert_eq!(env.store.counters("alice").unwrap_or_else(|e| panic!("{e}")).received, received, "nothing stored");
    // The existing states still work, a retry is still idempotent, and bob has states of his own.
    let more = v(&mut env, &mut dev, 2);
    submit_state(&mut client, ALICE, 30, [1; 16], vec![more.clone()]).await.unwrap_or_else(|e| panic!("{e}"));
    submit_state(&mut client, ALICE, 1, [1; 16], vec![first]).await.unwrap_or_else(|e| panic!("{e}"));
    submit_state(&mut client, BOB, 31, [9; 16], vec![more]).await.unwrap_or_else(|e| panic!("{e}"));
    let stats = env.store.stats().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(stats.client_states, 3);
    // A client state of another length is refused as malformed.
    let mut r = state_request(ALICE, [40; 16], [1; 16], vec![v(&mut env, &mut dev, 3)]);
    r.get_mut().client_state = vec![1; 15];
    let (code, msg) = code_of(client.submit_vouchers(r).await);
    assert_eq!(code, Code::InvalidArgument);
    assert!(msg.contains("client_state"), "{msg}");
    env.stop().await;
}

async fn submit_state(
    client: &mut Client,
    token: &str,
    batch: u8,
    state: [u8; 16],
    vouchers: Vec<Vec<u8>>,
) -> Result<v1::SubmitAck, tonic::Status> {
    client.submit_vouchers(state_request(token, [batch; 16], state, vouchers)).await.map(|r| r.into_inner())
}

/// A client that breaks the protocol under one client-state id (here: the vouchers of many states, so far more
/// than s synthetic ones, all named as one state) makes reconstruction fail. That is counted, and attempted again
/// only once the state's opened vouchers have doubled: a handful of attempts, not one per batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_that_breaks_the_protocol_fails_cheaply_and_rarely() {
    let mut env = Env::with(|s| s.synthetic_rate = u32::MAX, |_| {}).await;
    let mut client = env.client().await;
    let table = download(&mut client).await;
    // Each honest state's first s = 2 vouchers are synthetic (p = 1); 12 states give 24 synthetics.
    let mut vouchers = Vec::new();
    for _ in 0..12 {
        let mut d = Device::new(&table, &mut env.rng);
        for img in &env.matching[..2] {
            let (v, kind) = d.voucher(&table, img, &mut env.rng);
            assert_eq!(kind, VoucherKind::Synthetic);
            vouchers.push(v);
        }
    }
    let n = vouchers.len();
    for (i, v) in vouchers.into_iter().enumerate() {
        submit_state(&mut client, ALICE, i as u8, [7; 16], vec![v]).await.unwrap_or_else(|e| panic!("{e}"));
        env.drained().await;
    }
    let stats = env.store.stats().unwrap_or_else(|e| panic!("{e}"));
    let failed = env.store.audit_entries(0, 1000).unwrap_or_else(|e| panic!("{e}"));
    let failed = failed.iter().filter(|a| a.action == "threshold.failed").count() as u64;
    assert_eq!(stats.threshold_failures, failed, "every failure is counted and audited once");
    assert!((1..=3).contains(&failed), "{failed} attempts failed for {n} vouchers: not bounded by doubling");
    assert_eq!(stats.states_failed, 1);
    assert!(alice_items(&env).is_empty(), "nothing decrypted");
    let c = env.store.counters("alice").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.opened, n as u64, "every voucher is still stored and counted");
    env.stop().await;
}

/// Sends one request over raw HTTP/2 (a hostile client, not tonic's) and returns the gRPC status and message.
async fn raw_grpc(
    addr: std::net::SocketAddr,
    path: &str,
    token: &str,
    body: Vec<u8>,
) -> Result<(String, String), String> {
    let tcp = tokio::net::TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let (h2c, conn) = h2::client::handshake(tcp).await.map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let mut h2c = h2c.ready().await.map_err(|e| e.to_string())?;
    let req = http::Request::builder()
        .method("POST")
        .uri(format!("http://{addr}{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("authorization", format!("Bearer {token}"))
        .body(())
        .map_err(|e| e.to_string())?;
    let (response, mut send) = h2c.send_request(req, false).map_err(|e| e.to_string())?;
    send.send_data(body.into(), true).map_err(|e| e.to_string())?;
    let response = tokio::time::timeout(Duration::from_secs(20), response)
        .await
        .map_err(|_| "no answer".to_owned())?
        .map_err(|e| e.to_string())?;
    // grpc-message is percent-encoded.
    let decode = |v: &str| {
        let (mut out, b) = (Vec::new(), v.as_bytes());
        let mut i = 0;
        while i < b.len() {
            match (b[i], b.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok())) {
                (b'%', Some(x)) => {
                    out.push(x);
                    i += 3;
                }
                (c, _) => {
                    out.push(c);
                    i += 1;
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    let get = |h: &http::HeaderMap, k: &str| h.get(k).and_then(|v| v.to_str().ok()).map(decode);
    if let Some(code) = get(response.headers(), "grpc-status") {
        return Ok((code, get(response.headers(), "grpc-message").unwrap_or_default()));
    }
    let mut body = response.into_body();
    while body.data().await.is_some() {}
    let trailers = body.trailers().await.map_err(|e| e.to_string())?.unwrap_or_default();
    Ok((get(&trailers, "grpc-status").unwrap_or_default(), get(&trailers, "grpc-message").unwrap_or_default()))
}

/// A gRPC message frame: uncompressed flag, big-endian length, the bytes.
fn frame(msg: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8];
    f.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    f.extend_from_slice(msg);
    f
}

/// Requests that do not decode (garbage, a wrong wire type, a truncated message, a truncated frame) are
/// INVALID_ARGUMENT with a short message of the server's own, never INTERNAL with the decoder's text; nothing is
/// stored and the server keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_requests_are_invalid_argument() {
    let mut env = Env::new(|_| {}).await;
    let addr = env.addr();
    let submit = "/vouchsafe.v1.Matching/SubmitVouchers";
    let mut truncated_frame = frame(&[0x0a, 0x10, 1, 2, 3]);
    truncated_frame.truncate(4);
    let cases: Vec<(&str, &str, Vec<u8>)> = vec![
        ("garbage", submit, frame(&[0xff; 12])),
        ("wrong wire type (batch_id as a varint)", submit, frame(&[0x08, 0x01])),
        ("truncated message (16 bytes announced, 3 sent)", submit, frame(&[0x0a, 0x10, 1, 2, 3])),
        ("truncated frame", submit, truncated_frame),
        ("garbage to another RPC", "/vouchsafe.v1.Matching/GetUpdate", frame(&[0xff; 3])),
        ("garbage to the log", "/vouchsafe.v1.Transparency/GetInclusionProof", frame(&[0x0f])),
    ];
    for (what, path, body) in cases {
        let (code, msg) = raw_grpc(addr, path, ALICE, body).await.unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(code, "3", "{what}: INVALID_ARGUMENT, got {code} {msg}");
        assert!(!msg.contains("decode Protobuf") && !msg.contains("EOF"), "{what}: tonic's text leaked: {msg}");
        assert!(msg.contains("not a valid protobuf message"), "{what}: {msg}");
    }
    assert_eq!(env.store.stats().unwrap_or_else(|e| panic!("{e}")).batches_pending, 0);
    let mut c = env.client().await;
    assert!(c.get_manifest(v1::GetManifestRequest {}).await.is_ok());
    env.stop().await;
}

/// An oversize bearer token (64 KiB) is answered UNAUTHENTICATED, on a connection that stays usable; header lists
/// beyond `limits.max_header_list_bytes` are refused by HTTP/2 itself and never reach a handler.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_credentials_are_unauthenticated() {
    let mut env = Env::new(|_| {}).await;
    let mut client = env.client().await;
    let big = "a".repeat(64 * 1024);
    let mut r = request(None, [1; 16], vec![vec![1; 8]]);
    r.metadata_mut().insert("authorization", format!("Bearer {big}").parse().unwrap_or_else(|_| panic!("metadata")));
    let (code, msg) = code_of(client.submit_vouchers(r).await);
    assert_eq!(code, Code::Unauthenticated, "{msg}");
    assert!(!msg.contains("aaaa"), "never echoed");
    // The same connection still serves.
    assert!(client.get_manifest(v1::GetManifestRequest {}).await.is_ok());
    // Beyond the header limit (256 KiB by default) HTTP/2 refuses the request before the service sees it.
    let huge = "a".repeat(300 * 1024);
    let r = raw_grpc(env.addr(), "/vouchsafe.v1.Matching/GetManifest", &huge, frame(&[])).await;
    assert!(!matches!(&r, Ok((code, _)) if code == "0"), "an over-limit header list was served: {r:?}");
    let mut again = env.client().await;
    assert!(again.get_manifest(v1::GetManifestRequest {}).await.is_ok());
    assert_eq!(env.store.stats().unwrap_or_else(|e| panic!("{e}")).batches_pending, 0);
    env.stop().await;
}

/// Several clients flooding the server while the backlog bound is tiny: admission control refuses with UNAVAILABLE
/// instead of letting the inbox grow, the backlog never exceeds its bound, and every acknowledged batch is
/// processed exactly once (refused ones are retried by the clients and land later).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backlog_is_bounded_and_nothing_acknowledged_is_lost() {
    let mut env = Env::new(|c| {
        c.limits.max_backlog_batches = 2;
        c.limits.max_backlog_bytes = c.limits.max_message_bytes as u64;
    })
    .await;
    let mut client = env.client().await;
    let table = download(&mut client).await;
    let tokens = [ALICE, BOB];
    let mut tasks = Vec::new();
    for (t, token) in tokens.into_iter().enumerate() {
        let mut dev = Device::new(&table, &mut env.rng);
        let batches: Vec<Vec<Vec<u8>>> =
            (0..25).map(|_| env.other.iter().map(|i| dev.voucher(&table, i, &mut env.rng).0).collect()).collect();
        let mut c = env.client().await;
        let state = dev.state_id();
        tasks.push(tokio::spawn(async move {
            let mut refused = 0u32;
            for (i, vs) in batches.into_iter().enumerate() {
                let id = [t as u8 * 100 + i as u8; 16];
                let deadline = Instant::now() + Duration::from_secs(60);
                loop {
                    match c.submit_vouchers(state_request(token, id, state, vs.clone())).await {
                        Ok(_) => break,
                        Err(s) if s.code() == Code::Unavailable => {
                            assert!(s.message().contains("backlog"), "{}", s.message());
                            refused += 1;
                            assert!(Instant::now() < deadline, "never admitted");
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                        Err(s) => panic!("{s}"),
                    }
                }
            }
            refused
        }));
    }
    // The store itself is sampled while the clients flood: what is really waiting never exceeds the bound.
    let sampling = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let (store, sampling) = (Arc::clone(&env.store), Arc::clone(&sampling));
        std::thread::spawn(move || {
            let mut peak = vouchsafe_store::Backlog::default();
            while sampling.load(std::sync::atomic::Ordering::SeqCst) {
                let b = store.backlog().unwrap_or_else(|e| panic!("{e}"));
                peak.batches = peak.batches.max(b.batches);
                peak.bytes = peak.bytes.max(b.bytes);
                std::thread::sleep(Duration::from_micros(200));
            }
            peak
        })
    };
    let mut refused = 0;
    for t in tasks {
        refused += t.await.unwrap_or_else(|e| panic!("{e}"));
    }
    env.drained().await;
    sampling.store(false, std::sync::atomic::Ordering::SeqCst);
    let stored_peak = sampler.join().unwrap_or_else(|_| panic!("sampler"));
    let view = env.server.as_ref().map(|s| s.backlog()).unwrap_or_else(|| panic!("running"));
    eprintln!("backlog: {view:?}, stored peak {stored_peak:?}, refusals seen by the clients: {refused}");
    assert!(stored_peak.batches <= 2 && stored_peak.bytes <= env.config.limits.max_backlog_bytes, "{stored_peak:?}");
    assert!(view.peak_batches <= 2, "the backlog exceeded its bound: {view:?}");
    assert_eq!(view.refused, u64::from(refused));
    // The worker gives a batch's room back just after the commit that drained it: wait for that, boundedly.
    let t = Instant::now();
    let mut view = view;
    while (view.batches, view.bytes) != (0, 0) && t.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(5)).await;
        view = env.server.as_ref().map(|s| s.backlog()).unwrap_or_else(|| panic!("running"));
    }
    assert_eq!((view.batches, view.bytes), (0, 0), "drained: {view:?}");
    for account in ["alice", "bob"] {
        let c = env.store.counters(account).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.received, 25 * env.other.len() as u64, "{account}: every acknowledged voucher, once");
    }
    env.stop().await;
}

/// Soak test of admission control, behind a flag: `VOUCHSAFE_SOAK_SECONDS=60 cargo test -p vouchsafe-server --release
/// --test grpc -- --ignored --nocapture soak`. Eight clients (a misbehaving fleet: several states per account, no
/// pause between batches) flood the server for the given time (default 20 s; every loop is bounded by it) with a
/// backlog bound of 20 batches; the test checks that the backlog never exceeds its bound, that every acknowledged
/// batch is processed exactly once, and reports the peak, the refusals, the throughput and the peak memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn soak_the_backlog_stays_under_its_bound() {
    let seconds: u64 = std::env::var("VOUCHSAFE_SOAK_SECONDS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let mut env = Env::new(|c| {
        c.limits.max_vouchers_per_batch = 6;
        c.limits.max_backlog_batches = 20;
        c.limits.max_backlog_bytes = 20 * (6 * c.voucher_len(2) as u64);
        c.limits.max_client_states = 64;
    })
    .await;
    let mut client = env.client().await;
    let table = Arc::new(download(&mut client).await);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..8u8 {
        let token = [ALICE, BOB][t as usize % 2];
        let mut c = env.client().await;
        let table = Arc::clone(&table);
        let mut rng = ChaCha20Rng::seed_from_u64(1000 + u64::from(t));
        tasks.push(tokio::spawn(async move {
            let (mut acked, mut refused, mut n) = (0u64, 0u64, 0u64);
            let mut dev = Device::new(&table, &mut rng);
            while Instant::now() < deadline {
                let vs: Vec<Vec<u8>> = (0..6)
                    .map(|i| {
                        let img =
                            Image { y: format!("soak {t} {n} {i}").into_bytes(), ad: vec![0; 16], secondary: vec![] };
                        dev.voucher(&table, &img, &mut rng).0
                    })
                    .collect();
                let mut id = [t; 16];
                id[..8].copy_from_slice(&n.to_le_bytes());
                n += 1;
                loop {
                    match c.submit_vouchers(state_request(token, id, dev.state_id(), vs.clone())).await {
                        Ok(_) => {
                            acked += 6;
                            break;
                        }
                        Err(s) if s.code() == Code::Unavailable && Instant::now() < deadline => {
                            refused += 1;
                            tokio::time::sleep(Duration::from_millis(2)).await;
                        }
                        Err(s) if s.code() == Code::Unavailable => break,
                        Err(s) => panic!("{s}"),
                    }
                }
            }
            (token, acked, refused)
        }));
    }
    let (mut acked, mut refused) = (std::collections::HashMap::new(), 0u64);
    for t in tasks {
        let (token, a, r) = t.await.unwrap_or_else(|e| panic!("{e}"));
        *acked.entry(token).or_insert(0u64) += a;
        refused += r;
    }
    env.drained().await;
    let elapsed = t0.elapsed();
    let view = env.server.as_ref().map(|s| s.backlog()).unwrap_or_else(|| panic!("running"));
    assert!(view.peak_batches <= 20 && view.peak_bytes <= 20 * 6 * env.config.voucher_len(2) as u64, "{view:?}");
    for (token, account) in [(ALICE, "alice"), (BOB, "bob")] {
        let c = env.store.counters(account).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.received, acked[token], "{account}: every acknowledged voucher exactly once");
    }
    let total: u64 = acked.values().sum();
    let rss = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(str::to_owned))
        .unwrap_or_default();
    println!(
        "soak {seconds} s: {total} vouchers acknowledged ({:.0}/s), {refused} submissions refused (UNAVAILABLE); \
         backlog peak {} batches / {} bytes (bound 20 batches); {rss}",
        total as f64 / elapsed.as_secs_f64(),
        view.peak_batches,
        view.peak_bytes
    );
    env.stop().await;
}

/// `GET /metrics` on a raw HTTP/1.1 connection: the response body.
async fn scrape(addr: std::net::SocketAddr) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("text/plain; version=0.0.4"), "Prometheus text format");
    text
}

/// The value of the sample `name` (with its labels, as printed) in a scrape.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')).and_then(|v| v.parse().ok()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_rpcs_vouchers_and_the_inbox_and_carry_no_secret() {
    let mut env = Env::new(|c| c.metrics_listen = Some("127.0.0.1:0".parse().unwrap())).await;
    let addr = env.server.as_ref().and_then(|s| s.metrics_addr()).expect("metrics served");
    let mut client = env.client().await;
    let table = download(&mut client).await;
    let mut dev = Device::new(&table, &mut env.rng);
    let batch: Vec<Vec<u8>> = [&env.matching[0], &env.other[0], &env.other[1]]
        .into_iter()
        .map(|img| dev.voucher(&table, img, &mut env.rng).0)
        .collect();
    submit(&mut client, ALICE, [21; 16], batch.clone()).await;
    submit(&mut client, ALICE, [21; 16], batch).await; // a retry: acknowledged again, counted once
    let refused = client.submit_vouchers(request(Some("not-a-token-000000000000"), [22; 16], vec![vec![0; 8]])).await;
    assert_eq!(refused.unwrap_err().code(), Code::Unauthenticated);
    env.drained().await;

    // The worker's counters follow its commit by a moment: scrape until they show the round (bounded).
    let start = Instant::now();
    let mut text = scrape(addr).await;
    while sample(&text, "vouchsafe_vouchers_opened_total").unwrap_or(0.0)
        + sample(&text, "vouchsafe_vouchers_non_matching_total").unwrap_or(0.0)
        < 3.0
        && start.elapsed() < Duration::from_secs(10)
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
        text = scrape(addr).await;
    }
    let get = |name: &str| sample(&text, name).unwrap_or_else(|| panic!("no sample {name} in\n{text}"));
    assert_eq!(get(r#"vouchsafe_rpc_requests_total{method="SubmitVouchers",code="OK"}"#), 2.0);
    assert_eq!(get(r#"vouchsafe_rpc_requests_total{method="SubmitVouchers",code="UNAUTHENTICATED"}"#), 1.0);
    assert_eq!(get(r#"vouchsafe_batches_received_total{outcome="Inserted"}"#), 1.0);
    assert_eq!(get(r#"vouchsafe_batches_received_total{outcome="Duplicate"}"#), 1.0);
    assert_eq!(get("vouchsafe_vouchers_received_total"), 3.0);
    assert_eq!(get("vouchsafe_vouchers_opened_total") + get("vouchsafe_vouchers_non_matching_total"), 3.0);
    assert_eq!(get("vouchsafe_inbox_batches_pending"), 0.0);
    assert_eq!(get("vouchsafe_order_active"), 1.0);
    assert!(get("vouchsafe_order_expires_in_seconds") > 0.0);
    assert_eq!(get("vouchsafe_table_version"), 1.0);
    assert!(get("vouchsafe_rpc_duration_seconds_count{method=\"SubmitVouchers\"}") >= 3.0);
    assert!(text.contains("vouchsafe_worker_run_duration_seconds_bucket"));
    // No token, account or voucher byte is in any line.
    for secret in [ALICE, "alice", "not-a-token"] {
        assert!(!text.contains(secret), "{secret} in the metrics");
    }
    // A store that cannot be read: the inbox and outbox gauges say NaN (unknown), not the last good value, and the
    // failed reads are counted. (The inbox and outbox tables renamed away under the server, then back.)
    let db = rusqlite::Connection::open(&env.config.database).unwrap_or_else(|e| panic!("{e}"));
    let rename = |from: &str, to: &str| {
        db.execute_batch(&format!("ALTER TABLE {from} RENAME TO {to}")).unwrap_or_else(|e| panic!("{e}"));
    };
    rename("inbox_batch", "inbox_batch_away");
    rename("outbox", "outbox_away");
    let text = scrape(addr).await;
    rename("inbox_batch_away", "inbox_batch");
    rename("outbox_away", "outbox");
    for name in [
        "vouchsafe_inbox_batches_pending",
        "vouchsafe_inbox_vouchers_pending",
        "vouchsafe_inbox_bytes_pending",
        "vouchsafe_outbox_pending",
    ] {
        assert!(sample(&text, name).is_some_and(f64::is_nan), "{name} is NaN while its table cannot be read:\n{text}");
    }
    for op in ["metrics.backlog", "metrics.outbox"] {
        let name = format!("vouchsafe_store_errors_total{{op=\"{op}\"}}");
        assert!(sample(&text, &name).is_some_and(|n| n >= 1.0), "{name}: {text}");
    }
    let text = scrape(addr).await;
    assert_eq!(sample(&text, "vouchsafe_inbox_batches_pending"), Some(0.0), "read again once the store answers");
    assert_eq!(sample(&text, "vouchsafe_outbox_pending"), Some(0.0));
    env.stop().await;
}

/// A replica reloads a table update on its own (the files changed), without SIGHUP, within a few poll intervals.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_table_file_is_reloaded_without_a_signal() {
    let mut env = Env::new(|c| c.worker.poll_interval_ms = 50).await;
    let mut client = env.client().await;
    let served = |c: &mut Client| {
        let mut c = c.clone();
        async move {
            c.get_manifest(v1::GetManifestRequest {}).await.unwrap_or_else(|e| panic!("{e}")).into_inner().table_version
        }
    };
    assert_eq!(served(&mut client).await, 1);
    let added = image(51);
    env.fixture.release(&[(added.y.clone(), added.secondary.clone())], &[]).unwrap_or_else(|e| panic!("{e}"));
    env.fixture.update_table(&mut env.rng).unwrap_or_else(|e| panic!("{e}"));
    let start = Instant::now();
    while served(&mut client).await != 2 {
        assert!(start.elapsed() < Duration::from_secs(20), "the update was not picked up");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    env.stop().await;
}
