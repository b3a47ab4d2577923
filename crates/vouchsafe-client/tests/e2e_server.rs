//! End to end against the real `vouchsafe-server` on 127.0.0.1:0: sync, scan, submit, and the server's worker
//! crossing the threshold for exactly the account whose images are indicators.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use common::{png, primary_of, rng};
use vouchsafe_client::{BearerToken, Client, ClientConfig, ClientError, SyncKind, VoucherKind};
use vouchsafe_server::{AccountConfig, ServerConfig};
use vouchsafe_store::{CaseFilter, SqliteStore, Store};

const ALICE: &str = "alice-token-0123456789";
const BOB: &str = "bob-token-0123456789ab";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_server_threshold_only_for_matching_account() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = ServerConfig::default_for_demo();
    c.listen = "127.0.0.1:0".parse().unwrap();
    c.database = dir.path().join("server.db");
    c.table = dir.path().join("table.secret");
    c.table_updates = None;
    c.chunk_slots = 4;
    c.order.threshold = 3;
    c.order.synthetic_rate = 0.0;
    c.order.synthetic_cap = 2;
    c.worker.poll_interval_ms = 50;
    c.limits.rate_burst = 10_000;
    c.limits.rate_vouchers_per_second = 10_000.0;
    c.accounts = vec![
        AccountConfig { token: vouchsafe_server::BearerToken::new(ALICE), account: "alice".into(), excluded: false },
        AccountConfig { token: vouchsafe_server::BearerToken::new(BOB), account: "bob".into(), excluded: false },
    ];
    let service = c.order.service_id.clone();
    let matching: Vec<Vec<u8>> = (0..3).map(|s| png(s, 96, 80)).collect();
    let other: Vec<Vec<u8>> = (100..103).map(|s| png(s, 96, 80)).collect();
    let mut indicators: Vec<Vec<u8>> = matching.iter().map(|p| primary_of(p)).collect();
    indicators.extend((0u32..20).map(|i| format!("unrelated indicator {i}").into_bytes()));
    let table = vouchsafe_server::build_table(&c, indicators, &mut rng(5)).unwrap();
    let store = Arc::new(SqliteStore::open(&c.database).unwrap());
    let dyn_store: Arc<dyn Store> = store.clone();
    let server = vouchsafe_server::start(c.clone(), table, dyn_store).await.unwrap();
    let endpoint = format!("http://{}", server.local_addr());

    let open = |token: &str, sub: &str| {
        let mut cfg = ClientConfig::new(endpoint.clone(), BearerToken::new(token), dir.path().join(sub), service.clone());
        cfg.max_batch = 2;
        cfg.backoff_initial = Duration::from_millis(20);
        Client::open(cfg)
    };
    let alice = open(ALICE, "alice").await.unwrap();
    let bob = open(BOB, "bob").await.unwrap();
    let wrong = open("not-a-token-000000000000", "wrong").await.unwrap();
    // The table is public (the server serves it without a token); submitting needs a valid token.
    wrong.sync().await.unwrap();
    wrong.scan(other[0].clone(), [7; 32], SystemTime::now()).await.unwrap();
    let w = wrong.submit().await;
    assert!(matches!(w, Err(ClientError::Unauthenticated)), "{w:?}");
    assert_eq!(wrong.outbox_len(), 1);

    for cl in [&alice, &bob] {
        assert_eq!(cl.sync().await.unwrap().kind, SyncKind::Full);
        assert_eq!(cl.sync().await.unwrap().kind, SyncKind::UpToDate);
    }
    let now = SystemTime::now();
    for (i, img) in matching.iter().enumerate() {
        let o = alice.scan(img.clone(), [i as u8; 32], now).await.unwrap();
        assert_eq!(o.kind, VoucherKind::Real);
    }
    for (i, img) in other.iter().enumerate() {
        bob.scan(img.clone(), [i as u8; 32], now).await.unwrap();
        alice.scan(img.clone(), [50 + i as u8; 32], now).await.unwrap();
    }
    let ra = alice.submit().await.unwrap();
    let rb = bob.submit().await.unwrap();
    assert_eq!((ra.vouchers, ra.remaining, rb.vouchers, rb.remaining), (6, 0, 3, 0));

    let start = Instant::now();
    loop {
        if store.stats().unwrap().batches_pending == 0 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "worker did not drain");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let cases = store.list_cases(&CaseFilter::default()).unwrap();
    assert_eq!(cases.len(), 1, "exactly one account crossed the threshold");
    assert_eq!(cases[0].account, "alice");
    server.shutdown().await.unwrap();
}
