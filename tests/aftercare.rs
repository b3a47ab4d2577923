//! Issue 9 end to end with the real binary over loopback: after the threshold, a second-hash check against the
//! indicator drops a planted primary-hash collision before any reviewer; reviewers confirm one case and reject
//! another (a planted false positive), a third is confirmed but the Centre flags its indicator (manifest false
//! positive); the Centre forwards one as a signed export; the user gets a notice and appeals, a supervisor upholds
//! it and the forward is withdrawn; the transparency report is signed, logged and audited; indicator feedback
//! reaches the Centre. Refused with a precise error and nothing changed: a device token on the Review API, a
//! reviewer token on the device API, a second decision, another account's notice, a second appeal, an appeal decided
//! by a reviewer. Then `kill -9` of the provider between a decision and its delivery (Centre down), and of the
//! Centre while it receives: each report arrives exactly once. Every wait is bounded.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // test code: a failure is the test failing

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use common::{ServerProc, sigkill, spawn_reporting, stderr_line, terminate, vouchsafe_with_token};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use vouchsafe_phash::{HashConfig, fixtures, hash_image};
use vouchsafe_server::governance::{Fixture, FixtureSpec};
use vouchsafe_server::{AccountConfig, ReviewRole};
use vouchsafe_store::{CaseFilter, CaseStatus, SqliteStore, Store};

const T: u16 = 3;
const ALICE: &str = "aftercare-token-alice-000001";
const BOB: &str = "aftercare-token-bob-00000002";
const DAVE: &str = "aftercare-token-dave-0000003";
const ERIN: &str = "aftercare-token-erin-0000004";
const FRANK: &str = "aftercare-token-frank-000005";
const R1: &str = "aftercare-reviewer-one-00001";
const R2: &str = "aftercare-reviewer-two-00002";
const SUP: &str = "aftercare-supervisor-0000003";

fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "expected success: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A refusal: the given exit code and one line on stderr containing `needle`.
fn refused(o: Output, code: i32, needle: &str) -> String {
    let line = stderr_line(&o);
    assert_eq!(o.status.code(), Some(code), "{line}");
    assert!(line.to_lowercase().contains(&needle.to_lowercase()), "expected {needle:?} in {line:?}");
    line
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn png(path: &Path, seed: u64) -> Vec<u8> {
    let img = image::DynamicImage::ImageRgb8(fixtures::benign_image(seed, 160, 120));
    img.save(path).unwrap();
    hash_image(&HashConfig::V1, &img).unwrap().primary.to_canonical_bytes()
}

struct World {
    dir: PathBuf,
    fixture: Fixture,
    server: Option<ServerProc>,
    server_addr: String,
    review_addr: String,
    centre: Option<ServerProc>,
    centre_addr: String,
}

impl World {
    fn f(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn client(&self, device: &str, token: &str, action: &[&str]) -> Output {
        let data = self.f(device);
        let (a, c, l) = (self.f("authority.pub"), self.f("centre.pub"), self.f("log.key.pub"));
        let (w1, w2) = (self.f("witness-1.key.pub"), self.f("witness-2.key.pub"));
        let endpoint = format!("http://{}", self.server_addr);
        let mut args = vec![
            "client",
            "--endpoint",
            &endpoint,
            "--data-dir",
            p(&data),
            "--service-id",
            "demo-messenger",
            "--authority-key",
            p(&a),
            "--centre-key",
            p(&c),
            "--log-key",
            p(&l),
            "--witness",
            p(&w1),
            "--witness",
            p(&w2),
            "--quorum",
            "2",
        ];
        args.extend_from_slice(action);
        vouchsafe_with_token(&args, Some(token))
    }

    fn review(&self, token_file: &str, args: &[&str]) -> Output {
        let tf = self.f(token_file);
        let endpoint = format!("http://{}", self.review_addr);
        let mut all = vec!["review", "--endpoint", &endpoint, "--token-file", p(&tf)];
        all.extend_from_slice(args);
        vouchsafe_with_token(&all, None)
    }

    fn store(&self) -> SqliteStore {
        SqliteStore::open(&self.fixture.config.database).unwrap()
    }

    fn case_of(&self, account: &str) -> vouchsafe_store::CaseSummary {
        let f = CaseFilter { account: Some(account.into()), ..Default::default() };
        self.store().list_cases(&f).unwrap().pop().unwrap_or_else(|| panic!("no case for {account}"))
    }

    /// Waits (bounded) until `account`'s case has `status`.
    fn wait_status(&self, account: &str, status: CaseStatus) {
        let start = Instant::now();
        loop {
            let f = CaseFilter { account: Some(account.into()), ..Default::default() };
            if self.store().list_cases(&f).unwrap().iter().any(|c| c.status == status) {
                return;
            }
            assert!(start.elapsed() < Duration::from_secs(60), "{account}: case never reached {status:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn start_centre(&mut self, listen: &str) {
        std::fs::write(self.f("centre.toml"), self.fixture.centre_config(listen)).unwrap();
        let (proc, lines) = spawn_reporting(
            &["centre", "serve", "--config", p(&self.f("centre.toml"))],
            &self.f("centre.log"),
            &["centre listening on "],
        );
        self.centre = Some(proc);
        self.centre_addr = lines[0].clone();
    }

    fn start_server(&mut self) {
        let cfg = self.f("server.toml");
        let (proc, lines) = spawn_reporting(
            &["serve", "--config", p(&cfg)],
            &self.f("server.log"),
            &["vouchsafe: listening on ", "vouchsafe: review API listening on "],
        );
        self.server = Some(proc);
        self.server_addr = lines[0].clone();
        self.review_addr = lines[1].clone();
    }

    /// sync, scan the images, submit; the account then waits for its case.
    fn send(&self, device: &str, token: &str, images: &[PathBuf]) {
        ok(self.client(device, token, &["sync"]));
        let mut scan = vec!["scan"];
        scan.extend(images.iter().map(|i| p(i)));
        ok(self.client(device, token, &scan));
        ok(self.client(device, token, &["submit"]));
    }

    fn wait_case(&self, account: &str) -> vouchsafe_store::CaseSummary {
        let start = Instant::now();
        loop {
            let f = CaseFilter { account: Some(account.into()), ..Default::default() };
            if let Some(c) = self.store().list_cases(&f).unwrap().pop() {
                return c;
            }
            assert!(start.elapsed() < Duration::from_secs(60), "{account}: no case within 60 s");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn centre_reports(w: &World) -> u64 {
    let c = vouchsafe_centre::CentreConfig::load(w.f("centre.toml")).unwrap();
    vouchsafe_centre::stats(&c).unwrap().total.reports
}

fn exports(w: &World) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(w.f("exports"))
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_dir()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_threshold_with_the_real_binaries() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_owned();
    let mut rng = ChaCha20Rng::seed_from_u64(9);

    // Images: alice's, bob's (a planted false positive the reviewer rejects), dave's (the Centre flags one of its
    // indicators), and a planted collision: an indicator with the primary hash of an image alice sends, but the
    // secondary hash of another image.
    let img = |name: &str, seed: u64| {
        let path = dir.join(name);
        let primary = png(&path, seed);
        let secondary =
            hash_image(&HashConfig::V1, &image::DynamicImage::ImageRgb8(fixtures::benign_image(seed, 160, 120)))
                .unwrap()
                .secondary
                .to_canonical_bytes();
        (path, primary, secondary)
    };
    let a: Vec<_> = (0..3).map(|i| img(&format!("a{i}.png"), 10 + i)).collect();
    let b: Vec<_> = (0..3).map(|i| img(&format!("b{i}.png"), 20 + i)).collect();
    let d: Vec<_> = (0..3).map(|i| img(&format!("d{i}.png"), 30 + i)).collect();
    let collision = img("c0.png", 40);
    let other_secondary = img("unrelated.png", 41).2;
    let mut indicators: Vec<(Vec<u8>, Vec<u8>)> =
        a.iter().chain(&b).chain(&d).map(|(_, p, s)| (p.clone(), s.clone())).collect();
    indicators.push((collision.1.clone(), other_secondary));
    indicators.extend((0u32..10).map(|i| {
        let y = format!("unrelated indicator {i}").into_bytes();
        (y.clone(), y)
    }));

    let mut spec = FixtureSpec::new(indicators);
    spec.threshold = T;
    let mut fixture = Fixture::create(&dir, spec, &mut rng).unwrap();
    {
        let c = &mut fixture.config;
        c.chunk_slots = 8;
        c.worker.poll_interval_ms = 50;
        c.limits.rate_burst = 10_000;
        c.limits.rate_vouchers_per_second = 10_000.0;
        c.accounts = vec![
            AccountConfig::new(ALICE, "alice"),
            AccountConfig::new(BOB, "bob"),
            AccountConfig::new(DAVE, "dave"),
            AccountConfig::new(ERIN, "erin"),
            AccountConfig::new(FRANK, "frank"),
        ];
    }
    for (name, token) in [("r1.token", R1), ("r2.token", R2), ("sup.token", SUP), ("alice.token", ALICE)] {
        std::fs::write(dir.join(name), format!("{token}\n")).unwrap();
    }
    let mut w = World {
        dir: dir.clone(),
        fixture,
        server: None,
        server_addr: String::new(),
        review_addr: String::new(),
        centre: None,
        centre_addr: String::new(),
    };
    w.start_centre("127.0.0.1:0");
    let centre_endpoint = format!("http://{}", w.centre_addr);
    w.fixture.enable_review(
        &[("r1", R1, ReviewRole::Reviewer), ("r2", R2, ReviewRole::Reviewer), ("sup", SUP, ReviewRole::Supervisor)],
        false,
        &centre_endpoint,
    );
    w.fixture.build_table(&mut rng).unwrap();
    w.fixture.write_config().unwrap();
    w.start_server();
    let server: std::net::SocketAddr = w.server_addr.parse().unwrap();
    assert_eq!(w.fixture.cosign_all(server).await.unwrap(), 2);

    // Three accounts cross the threshold. Alice also sends the planted collision.
    let mut alice_images: Vec<PathBuf> = a.iter().map(|x| x.0.clone()).collect();
    alice_images.push(collision.0.clone());
    w.send("alice", ALICE, &alice_images);
    w.send("bob", BOB, &b.iter().map(|x| x.0.clone()).collect::<Vec<_>>());
    w.send("dave", DAVE, &d.iter().map(|x| x.0.clone()).collect::<Vec<_>>());
    let alice_case = w.wait_case("alice");
    let bob_case = w.wait_case("bob");
    let dave_case = w.wait_case("dave");

    // The collision never reached a reviewer: alice's case holds her three images only, the drop is audited with
    // its reason and counted for the Centre.
    assert_eq!(alice_case.items, 3, "the planted collision is not in the case");
    let audit = w.store().audit_entries(0, 10_000).unwrap();
    let dropped: Vec<_> = audit
        .iter()
        .filter_map(|r| match vouchsafe_server::events::Event::parse(r) {
            Ok(vouchsafe_server::events::Event::ItemDropped { reason, .. }) => Some(reason),
            _ => None,
        })
        .collect();
    assert_eq!(dropped, ["indicator-secondary-mismatch"]);

    // Credentials are per API: a device token is unknown to the Review API, a reviewer's to the device API.
    refused(w.review("alice.token", &["list"]), 2, "UNAUTHENTICATED");
    refused(w.client("alice-as-reviewer", R1, &["notices"]), 1, "unauthenticated");

    // Review: the list, a blurred view (PNG files), decisions.
    let list = ok(w.review("r1.token", &["list", "--status", "open"]));
    assert_eq!(
        list.lines().filter(|l| l.contains("alice") || l.contains("bob") || l.contains("dave")).count(),
        3,
        "{list}"
    );
    let views = dir.join("views");
    let shown = ok(w.review("r1.token", &["show", &alice_case.id.0.to_string(), "--out", p(&views)]));
    assert!(shown.to_lowercase().contains("blurred"), "{shown}");
    let pngs = std::fs::read_dir(&views).unwrap().count();
    assert_eq!(pngs, 3, "one PNG per item");

    // The Centre flags one of dave's indicators before his report arrives.
    w.fixture.flag(&d[0].1).unwrap();

    let id = |c: &vouchsafe_store::CaseSummary| c.id.0.to_string();
    ok(w.review("r1.token", &["decide", &id(&alice_case), "--confirm", "--reason", "known-image"]));
    ok(w.review(
        "r1.token",
        &["decide", &id(&bob_case), "--reject", "--reason", "benign", "--comment", "holiday photos"],
    ));
    ok(w.review("r2.token", &["decide", &id(&dave_case), "--confirm", "--reason", "known-image", "--urgent"]));
    // A second decision on a decided case is refused and changes nothing.
    let decided = |w: &World| {
        let a = w.store().audit_entries(0, 10_000).unwrap();
        a.iter().filter(|r| r.action == "case.decide").count()
    };
    let before = decided(&w);
    refused(w.review("r2.token", &["decide", &id(&alice_case), "--reject", "--reason", "other"]), 1, "already decided");
    assert_eq!(decided(&w), before);
    assert_eq!(w.store().case_decisions(alice_case.id).unwrap().len(), 1);

    w.wait_status("alice", CaseStatus::Forwarded);
    w.wait_status("dave", CaseStatus::FalsePositive);
    assert_eq!(w.case_of("bob").status, CaseStatus::Rejected);
    assert_eq!(centre_reports(&w), 2, "two reports at the Centre, the rejected case none");
    let ex = exports(&w);
    assert_eq!(ex.len(), 1, "only the forwarded report is exported: {ex:?}");
    let bundle = std::fs::read(ex[0].join("bundle.json")).unwrap();
    let sig_hex = std::fs::read_to_string(ex[0].join("bundle.sig")).unwrap();
    let mut sig = [0u8; 64];
    hex::decode_to_slice(sig_hex.trim(), &mut sig).unwrap();
    let key = vouchsafe_case::CentreReceiptKey::from_bytes(&w.fixture.centre_public()).unwrap();
    key.verify_export(&bundle, &sig).unwrap();
    let dave_reason = w.case_of("dave").centre_reason.unwrap_or_default();
    assert!(
        dave_reason.contains(&hex::encode(&d[0].1)[..8]) || dave_reason.contains("false positive"),
        "{dave_reason}"
    );

    // Notices: alice has one, bob and dave none; bob cannot appeal alice's notice (same answer as no notice).
    let notices = ok(w.client("alice", ALICE, &["notices"]));
    assert!(notices.contains("notice 1") && notices.contains("appeal: none"), "{notices}");
    assert!(ok(w.client("bob", BOB, &["notices"])).contains("no notices"));
    assert!(ok(w.client("dave", DAVE, &["notices"])).contains("no notices"));
    refused(w.client("bob", BOB, &["appeal", "--notice", "1", "--text", "not mine"]), 1, "NOT_FOUND");

    // Alice appeals; a second appeal is refused; a reviewer may not decide it; the supervisor upholds it.
    ok(w.client("alice", ALICE, &["appeal", "--notice", "1", "--text", "These are my own photos."]));
    refused(w.client("alice", ALICE, &["appeal", "--notice", "1", "--text", "again"]), 1, "already appealed");
    let appeals = ok(w.review("sup.token", &["appeals", "--status", "pending"]));
    assert!(appeals.contains("alice"), "{appeals}");
    refused(w.review("r1.token", &["decide-appeal", "1", "--uphold", "--reason", "x"]), 2, "supervisor");
    ok(w.review(
        "sup.token",
        &["decide-appeal", "1", "--uphold", "--reason", "The images are not what the indicator says."],
    ));
    w.wait_status("alice", CaseStatus::Withdrawn);
    let start = Instant::now();
    while !ex[0].join("WITHDRAWN.json").exists() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the Centre never recorded the withdrawal for the recipient"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let notices = ok(w.client("alice", ALICE, &["notices"]));
    assert!(notices.contains("appeal: upheld") && notices.contains("account action: reversed"), "{notices}");

    // Indicator feedback reached the Centre: the collision's drop and bob's three rejections.
    let start = Instant::now();
    loop {
        let c = vouchsafe_centre::CentreConfig::load(w.f("centre.toml")).unwrap();
        let s = vouchsafe_centre::stats(&c).unwrap();
        if s.second_hash_drops == 1 && s.review_rejections == 3 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "feedback never reached the Centre: {s:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let centre_toml = w.f("centre.toml");
    let fb = ok(vouchsafe_with_token(&["centre", "feedback", "--config", p(&centre_toml), "--min", "1"], None));
    assert!(fb.contains(&hex::encode(&collision.1)[..16]) || fb.contains(&hex::encode(&collision.1)), "{fb}");

    // The statistics, then the signed transparency report in the log, checked by an auditor.
    let endpoint = format!("http://{}", w.review_addr);
    let sup = w.f("sup.token");
    let json = ok(vouchsafe_with_token(
        &["report", "--endpoint", &endpoint, "--token-file", p(&sup), "--order", "current", "--format", "json"],
        None,
    ));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let count = |name: &str| v["counters"][name].as_u64().unwrap_or_else(|| panic!("{name} in {json}"));
    assert_eq!(count("cases"), 3);
    assert_eq!(count("second_hash_dropped"), 1);
    assert_eq!((count("reviews_confirmed"), count("reviews_rejected")), (2, 1));
    assert_eq!((count("reports_sent"), count("centre_forwarded"), count("centre_false_positive")), (2, 1, 1));
    assert_eq!((count("notices"), count("appeals_filed"), count("appeals_upheld")), (1, 1, 1));
    assert_eq!(count("withdrawals_sent"), 1);
    let html = w.f("report.html");
    ok(vouchsafe_with_token(
        &[
            "report",
            "--endpoint",
            &endpoint,
            "--token-file",
            p(&sup),
            "--order",
            "current",
            "--format",
            "html",
            "--out",
            p(&html),
            "--publish",
        ],
        None,
    ));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("<svg") && !page.contains("<script"), "an HTML report with charts and no script");
    assert_eq!(w.fixture.cosign_all(server).await.unwrap(), 2);
    let (lk, w1, w2, auth, prov) = (
        w.f("log.key.pub"),
        w.f("witness-1.key.pub"),
        w.f("witness-2.key.pub"),
        w.f("authority.pub"),
        w.f("provider.pub"),
    );
    let server_url = format!("http://{}", w.server_addr);
    let audit_args = [
        "log",
        "verify",
        "--server",
        &server_url,
        "--log-key",
        p(&lk),
        "--witness",
        p(&w1),
        "--witness",
        p(&w2),
        "--quorum",
        "2",
        "--authority",
        p(&auth),
        "--provider-key",
        p(&prov),
    ];
    let verified = ok(vouchsafe_with_token(&audit_args, None));
    assert!(verified.contains("transparency report by provider-a"), "{verified}");
    let status = ok(vouchsafe_with_token(&["status", "--config", p(&w.f("server.toml"))], None));
    assert!(status.contains("every entry a known event"), "{status}");

    // kill -9 of the provider between a decision and its delivery (the Centre is down), then both back: the
    // report arrives once.
    let centre_listen = w.centre_addr.clone();
    terminate(w.centre.take().unwrap());
    w.send("erin", ERIN, &a.iter().map(|x| x.0.clone()).collect::<Vec<_>>());
    let erin = w.wait_case("erin");
    ok(w.review("sup.token", &["decide", &id(&erin), "--confirm", "--reason", "known-image"]));
    std::thread::sleep(Duration::from_millis(300)); // the outbox tries and fails at least once
    sigkill(w.server.take().unwrap());
    w.start_server();
    w.start_centre(&centre_listen);
    w.wait_status("erin", CaseStatus::Forwarded);
    assert_eq!(centre_reports(&w), 3, "erin's report arrived exactly once");
    // The supervisor who confirmed erin's case cannot decide her appeal.
    let notices = ok(w.client("erin", ERIN, &["notices"]));
    let notice = notices.split_whitespace().nth(1).unwrap().to_owned();
    ok(w.client("erin", ERIN, &["appeal", "--notice", &notice, "--text", "I did not send these."]));
    let appeal = ok(w.review("sup.token", &["appeals", "--status", "pending"]));
    assert!(appeal.contains("erin"), "{appeal}");
    let erin_appeal = w.store().list_appeals(None, 10).unwrap().into_iter().find(|a| a.account == "erin").unwrap();
    refused(
        w.review("sup.token", &["decide-appeal", &erin_appeal.id.0.to_string(), "--dismiss", "--reason", "no"]),
        1,
        "another supervisor",
    );

    // kill -9 of the Centre while it receives frank's report, then back: exactly once.
    w.send("frank", FRANK, &a.iter().map(|x| x.0.clone()).collect::<Vec<_>>());
    let frank = w.wait_case("frank");
    ok(w.review("r1.token", &["decide", &id(&frank), "--confirm", "--reason", "known-image"]));
    std::thread::sleep(Duration::from_millis(20));
    sigkill(w.centre.take().unwrap());
    w.start_centre(&centre_listen);
    w.wait_status("frank", CaseStatus::Forwarded);
    assert_eq!(centre_reports(&w), 4, "frank's report arrived exactly once");
    assert_eq!(exports(&w).len(), 3, "alice's, erin's and frank's forwards: one export each");

    terminate(w.server.take().unwrap());
    terminate(w.centre.take().unwrap());
}
