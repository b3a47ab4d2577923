//! End to end against the real `vouchsafe-server` on 127.0.0.1:0: sync, scan, submit, and the server's worker
//! crossing the threshold for exactly the account whose images are indicators.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // test code: a failure is the test failing

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use common::{png, rng};
use vouchsafe_client::{
    BearerToken, Client, ClientConfig, ClientError, ScanContext, SyncKind, TrustAnchors, VoucherKind,
};
use vouchsafe_server::governance::{Fixture, FixtureSpec};
use vouchsafe_server::{AccountConfig, PostgresConfig, ServerConfig};
use vouchsafe_store::{CaseFilter, SqliteStore, Store};

const ALICE: &str = "alice-token-0123456789";
const BOB: &str = "bob-token-0123456789ab";

/// The indicator of an image: its primary and secondary hash (the server checks a matching item's secondary hash
/// against the indicator's after the threshold).
fn indicator_of(png: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let h = vouchsafe_phash::hash_bytes(&vouchsafe_phash::HashConfig::V1, png).unwrap();
    (h.primary.to_canonical_bytes(), h.secondary.to_canonical_bytes())
}

/// A governance fixture in `dir` (signed order with T = 3, p = 0, s = 2, a two-source Centre release of
/// `indicators`, keys) with small chunks.
fn fixture(dir: &std::path::Path, indicators: Vec<(Vec<u8>, Vec<u8>)>) -> Fixture {
    let mut spec = FixtureSpec::new(indicators);
    spec.threshold = 3;
    spec.synthetic_cap = 2;
    let mut fx = Fixture::create(dir, spec, &mut rng(5)).unwrap();
    fx.config.chunk_slots = 4;
    fx
}

/// What the devices of the fixture's deployment pin.
fn anchors(fx: &Fixture) -> TrustAnchors {
    let (authorities, centre, log, witnesses, quorum) = fx.trust().unwrap();
    TrustAnchors::new(authorities, centre, log, witnesses, quorum).unwrap()
}

/// A running server on a fixture whose order has T = 3 (see [`fixture`]) and whose table holds `indicators`, with
/// generous rate limits and the configuration `tweak`ed; and what devices of it pin.
struct Deployment {
    store: Arc<dyn Store>,
    server: vouchsafe_server::RunningServer,
    endpoint: String,
    service: String,
    pins: TrustAnchors,
}

async fn deploy(
    dir: &std::path::Path,
    indicators: Vec<(Vec<u8>, Vec<u8>)>,
    tweak: impl FnOnce(&mut ServerConfig),
) -> Deployment {
    let mut fx = fixture(dir, indicators);
    let c = &mut fx.config;
    c.worker.poll_interval_ms = 50;
    c.limits.rate_burst = 10_000;
    c.limits.rate_vouchers_per_second = 10_000.0;
    tweak(c);
    fx.build_table(&mut rng(6)).unwrap();
    let c: ServerConfig = fx.config.clone();
    let service = fx.order.order().service_id().to_owned();
    // The database the server runs on: the SQLite file of the fixture, or, where the configuration names
    // PostgreSQL (`on_postgres`), a schema of its own in the test database.
    let store = vouchsafe_server::open_store(&c).unwrap();
    let server = vouchsafe_server::start(c.clone(), store.clone()).await.unwrap();
    let endpoint = format!("http://{}", server.local_addr());
    assert_eq!(fx.cosign_all(server.local_addr()).await.unwrap(), 2, "both witnesses cosigned");
    let pins = anchors(&fx);
    Deployment { store, server, endpoint, service, pins }
}

/// A fresh schema of the test database (`VOUCHSAFE_TEST_POSTGRES`, set by scripts/test.sh) as a server's `database`
/// and `[postgres]`, or `None` after saying that the PostgreSQL run is skipped.
fn postgres_database(test: &str) -> Option<(std::path::PathBuf, PostgresConfig)> {
    let Ok(url) = std::env::var("VOUCHSAFE_TEST_POSTGRES") else {
        assert!(
            std::env::var("VOUCHSAFE_REQUIRE_POSTGRES").as_deref() != Ok("1"),
            "VOUCHSAFE_REQUIRE_POSTGRES=1 but VOUCHSAFE_TEST_POSTGRES is not set"
        );
        eprintln!("{test}: PostgreSQL run skipped: VOUCHSAFE_TEST_POSTGRES is not set (scripts/test.sh sets it)");
        return None;
    };
    let nanos = SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let schema = format!("e2e_{}_{nanos}", std::process::id());
    Some((url.into(), PostgresConfig { schema: Some(schema), ..PostgresConfig::default() }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_server_threshold_only_for_matching_account() {
    threshold_only_for_matching_account(false).await;
}

/// The same flow with the server on PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_server_on_postgres_threshold_only_for_matching_account() {
    threshold_only_for_matching_account(true).await;
}

async fn threshold_only_for_matching_account(pg: bool) {
    let database = match pg {
        true => match postgres_database("real_server_on_postgres_threshold_only_for_matching_account") {
            Some(d) => Some(d),
            None => return,
        },
        false => None,
    };
    let dir = tempfile::tempdir().unwrap();
    let matching: Vec<Vec<u8>> = (0..3).map(|s| png(s, 96, 80)).collect();
    let other: Vec<Vec<u8>> = (100..103).map(|s| png(s, 96, 80)).collect();
    let mut indicators: Vec<(Vec<u8>, Vec<u8>)> = matching.iter().map(|p| indicator_of(p)).collect();
    indicators.extend((0u32..20).map(|i| {
        let y = format!("unrelated indicator {i}").into_bytes();
        (y.clone(), y)
    }));
    let d = deploy(dir.path(), indicators, |c| {
        c.accounts = vec![AccountConfig::new(ALICE, "alice"), AccountConfig::new(BOB, "bob")];
        if let Some((url, postgres)) = &database {
            c.database = url.clone();
            c.postgres = postgres.clone();
        }
    })
    .await;
    let Deployment { store, server, endpoint, service, pins } = d;

    let open = |token: &str, sub: &str| {
        let mut cfg = ClientConfig::new(
            endpoint.clone(),
            BearerToken::new(token),
            dir.path().join(sub),
            service.clone(),
            pins.clone(),
        );
        cfg.max_batch = 2;
        cfg.backoff_initial = Duration::from_millis(20);
        Client::open(cfg)
    };
    let alice = open(ALICE, "alice").await.unwrap();
    let bob = open(BOB, "bob").await.unwrap();
    let wrong = open("not-a-token-000000000000", "wrong").await.unwrap();
    // The table is public (the server serves it without a token); submitting needs a valid token.
    wrong.sync().await.unwrap();
    wrong.scan(other[0].clone(), [7; 32], SystemTime::now(), &ScanContext::new()).await.unwrap();
    let w = wrong.submit().await;
    assert!(matches!(w, Err(ClientError::Unauthenticated)), "{w:?}");
    assert_eq!(wrong.outbox_len(), 1);

    for cl in [&alice, &bob] {
        assert_eq!(cl.sync().await.unwrap().kind, SyncKind::Full);
        assert_eq!(cl.sync().await.unwrap().kind, SyncKind::UpToDate);
    }
    let now = SystemTime::now();
    for (i, img) in matching.iter().enumerate() {
        let o = alice.scan(img.clone(), [i as u8; 32], now, &ScanContext::new()).await.unwrap();
        assert_eq!(o.kind, VoucherKind::Real);
    }
    for (i, img) in other.iter().enumerate() {
        bob.scan(img.clone(), [i as u8; 32], now, &ScanContext::new()).await.unwrap();
        alice.scan(img.clone(), [50 + i as u8; 32], now, &ScanContext::new()).await.unwrap();
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

/// Two devices of one account (a phone and a linked desktop: two data directories, one token) each have their own
/// client state, and the server applies the threshold to each: the desktop's three matches reveal its items, the
/// phone's two do not until its third; a third device beyond the server's client-state limit is refused with
/// `TooManyClientStates` (not retried) and keeps its vouchers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_device_of_an_account_has_its_own_state_and_threshold() {
    let dir = tempfile::tempdir().unwrap();
    let matching: Vec<Vec<u8>> = (0..3).map(|s| png(s, 96, 80)).collect();
    let d = deploy(dir.path(), matching.iter().map(|p| indicator_of(p)).collect(), |c| {
        c.limits.max_client_states = 2;
        c.accounts = vec![AccountConfig::new(ALICE, "alice")];
    })
    .await;
    let Deployment { store, server, endpoint, service, pins } = d;
    let open = |sub: &str| {
        let mut cfg = ClientConfig::new(
            endpoint.clone(),
            BearerToken::new(ALICE),
            dir.path().join(sub),
            service.clone(),
            pins.clone(),
        );
        cfg.backoff_initial = Duration::from_millis(20);
        Client::open(cfg)
    };
    let drained = || async {
        let start = Instant::now();
        while store.stats().unwrap().batches_pending > 0 {
            assert!(start.elapsed() < Duration::from_secs(30), "worker did not drain");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    };
    let items =
        || -> usize { store.list_cases(&CaseFilter::default()).unwrap().iter().map(|c| c.items as usize).sum() };
    let (phone, desktop, tablet) =
        (open("phone").await.unwrap(), open("desktop").await.unwrap(), open("tablet").await.unwrap());
    for d in [&phone, &desktop, &tablet] {
        d.sync().await.unwrap();
    }
    let now = SystemTime::now();
    for (i, img) in matching.iter().take(2).enumerate() {
        phone.scan(img.clone(), [i as u8; 32], now, &ScanContext::new()).await.unwrap();
    }
    for (i, img) in matching.iter().enumerate() {
        desktop.scan(img.clone(), [10 + i as u8; 32], now, &ScanContext::new()).await.unwrap();
    }
    phone.submit().await.unwrap();
    desktop.submit().await.unwrap();
    drained().await;
    assert_eq!(items(), 3, "only the desktop's state crossed T = 3");
    phone.scan(matching[2].clone(), [2; 32], now, &ScanContext::new()).await.unwrap();
    phone.submit().await.unwrap();
    drained().await;
    assert_eq!(items(), 6, "the phone's state crossed on its own");
    assert_eq!(store.list_cases(&CaseFilter::default()).unwrap().len(), 1, "one case for the account");
    assert_eq!(store.stats().unwrap().client_states, 2);
    // A third device: the server's limit is 2 client states.
    tablet.scan(matching[0].clone(), [20; 32], now, &ScanContext::new()).await.unwrap();
    let t = Instant::now();
    let r = tablet.submit().await;
    assert!(matches!(r, Err(ClientError::TooManyClientStates)), "{r:?}");
    assert!(!r.unwrap_err().is_transient());
    assert!(t.elapsed() < Duration::from_secs(2), "not retried with backoff");
    assert_eq!(tablet.outbox_len(), 1, "the voucher stays queued");
    server.shutdown().await.unwrap();
}

/// TLS end to end: the server with `[tls]` (a certificate made now for 127.0.0.1) and a client that trusts it
/// (`tls_ca_pem`) sync, scan and submit over https. A client with the built-in roots refuses the unknown
/// certificate, a plain-http client gets nothing from the TLS port, and unusable PEM is refused at open / start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_between_client_and_server() {
    let dir = tempfile::tempdir().unwrap();
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let cert_pem = ck.cert.pem();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, &cert_pem).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();

    let image = png(7, 96, 80);
    let mut fx = fixture(dir.path(), vec![indicator_of(&image)]);
    fx.config.accounts = vec![AccountConfig::new(ALICE, "alice")];
    fx.build_table(&mut rng(9)).unwrap();
    let mut c = fx.config.clone();
    let service = fx.order.order().service_id().to_owned();
    let store = Arc::new(SqliteStore::open(&c.database).unwrap());

    // Unusable files stop the start with a precise error.
    let mut bad = c.clone();
    bad.tls = Some(vouchsafe_server::TlsConfig { cert: cert.clone(), key: cert.clone() });
    let e = vouchsafe_server::start(bad.clone(), store.clone()).await.unwrap_err();
    assert!(e.to_string().contains("tls"), "{e}");
    bad.tls = Some(vouchsafe_server::TlsConfig { cert: dir.path().join("missing.pem"), key: key.clone() });
    let e = vouchsafe_server::start(bad, store.clone()).await.unwrap_err();
    assert!(e.to_string().contains("TLS certificate"), "{e}");

    // The witnesses cosign the log over plain HTTP/2 first (their cosignatures are kept with the checkpoint).
    let plain_server = vouchsafe_server::start(c.clone(), store.clone()).await.unwrap();
    assert_eq!(fx.cosign_all(plain_server.local_addr()).await.unwrap(), 2);
    plain_server.shutdown().await.unwrap();
    c.tls = Some(vouchsafe_server::TlsConfig { cert, key });
    let server = vouchsafe_server::start(c.clone(), store.clone()).await.unwrap();
    let port = server.local_addr().port();
    let pins = anchors(&fx);
    let config = |scheme: &str, sub: &str, ca: Option<&str>| {
        let endpoint = format!("{scheme}://127.0.0.1:{port}");
        let mut cfg =
            ClientConfig::new(endpoint, BearerToken::new(ALICE), dir.path().join(sub), service.clone(), pins.clone());
        cfg.max_retries = 0;
        cfg.connect_timeout = Duration::from_secs(5);
        cfg.request_timeout = Duration::from_secs(5);
        cfg.tls_ca_pem = ca.map(|p| p.as_bytes().to_vec());
        cfg
    };

    let client = Client::open(config("https", "trusting", Some(&cert_pem))).await.unwrap();
    assert_eq!(client.sync().await.unwrap().kind, SyncKind::Full);
    assert_eq!(
        client.scan(image.clone(), [1; 32], SystemTime::now(), &ScanContext::new()).await.unwrap().kind,
        VoucherKind::Real
    );
    assert_eq!(client.submit().await.unwrap().vouchers, 1);
    // Acknowledged means stored; the counters move when the worker has processed the batch (bounded wait).
    let t0 = Instant::now();
    while store.counters("alice").unwrap().received != 1 {
        assert!(t0.elapsed() < Duration::from_secs(30), "the worker did not process the batch");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Built-in roots: the self-signed certificate is refused, without retries (retries would be allowed here).
    let mut cfg = config("https", "untrusting", None);
    cfg.max_retries = 3;
    cfg.backoff_initial = Duration::from_secs(5);
    let untrusting = Client::open(cfg).await.unwrap();
    let t0 = Instant::now();
    match untrusting.sync().await {
        Err(e @ ClientError::Tls { .. }) => {
            assert!(e.to_string().contains("certificate") && !e.is_transient(), "{e}");
            assert!(t0.elapsed() < Duration::from_secs(5), "a TLS failure is not retried");
        }
        other => panic!("a self-signed certificate is not in the built-in roots: {other:?}"),
    }
    // https to a plain server port (the TLS server's own address is TLS; use a plain listener): a TLS failure too.
    let plain_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let plain_port = plain_listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        while let Ok((mut s, _)) = plain_listener.accept().await {
            let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
        }
    });
    let mut cfg = config("https", "not-tls", None);
    cfg.endpoint = format!("https://127.0.0.1:{plain_port}");
    let r = Client::open(cfg).await.unwrap().sync().await;
    assert!(matches!(r, Err(ClientError::Tls { .. })), "{r:?}");
    let plain = Client::open(config("http", "plain", None)).await.unwrap();
    assert!(plain.sync().await.is_err(), "plain HTTP/2 to the TLS port");
    let garbage = Client::open(config("https", "garbage", Some("not a certificate"))).await;
    assert!(matches!(garbage, Err(ClientError::Config { .. })), "{garbage:?}");
    server.shutdown().await.unwrap();
}
