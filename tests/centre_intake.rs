//! `vouchsafe centre serve | stats | feedback | flag` with the real binary: the Centre imports two sources' images
//! and releases them with the CLI, the intake runs as a child process on 127.0.0.1 and takes a report over gRPC,
//! `flag` turns the next report of that image into a manifest false positive and the next release removes it,
//! feedback becomes removal proposals, SIGTERM stops it gracefully, and a bad configuration is exit 2 naming the
//! key. Every wait is bounded.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // test code: a failure is the test failing

mod common;

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use common::{ServerProc, spawn_reporting, terminate, vouchsafe};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use vouchsafe_case::{
    CentreReceiptKey, Decision, IndicatorCount, IndicatorFeedback, Message, ProviderSigningKey, ReasonCode,
    ReceiptVerdict, Report, ReportItem, Role, SignedReceipt, Verdict,
};
use vouchsafe_orders::{AuthoritySigningKey, DetectionOrder, MaterialKind, OrderTerms, Scope, TableSigningKey};
use vouchsafe_phash::{AssociatedData, HashConfig, ImageHashes, hash_file};
use vouchsafe_proto::v1::DeliverRequest;
use vouchsafe_proto::v1::centre_client::CentreClient;
use vouchsafe_release::{SignedRelease, VerifiedRelease};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Starts `vouchsafe centre serve --config`, waits (bounded) for `centre listening on ADDR`.
fn spawn_centre(config: &Path, log: &Path) -> (ServerProc, String) {
    let _ = std::fs::remove_file(log);
    let (proc, _) = spawn_reporting(&["centre", "serve", "--config", s(config)], log, &["centre listening on "]);
    let addr = proc.addr.clone();
    (proc, addr)
}

async fn connect(addr: &str) -> CentreClient<tonic::transport::Channel> {
    let start = Instant::now();
    loop {
        match CentreClient::connect(format!("http://{addr}")).await {
            Ok(c) => return c,
            Err(e) if start.elapsed() > Duration::from_secs(20) => panic!("connect: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

fn release_hash(dir: &Path, n: u64, key: &vouchsafe_release::CentreKey) -> [u8; 32] {
    let bytes = std::fs::read(dir.join(format!("demo-{n:06}.bin"))).unwrap();
    let v: VerifiedRelease = SignedRelease::decode(&bytes).unwrap().verify(key).unwrap();
    v.hash()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn centre_serve_stats_flag_feedback_with_the_binary() {
    let d = tempfile::tempdir().unwrap();
    let p = |n: &str| d.path().join(n);
    let mut rng = ChaCha20Rng::seed_from_u64(99);

    // The Centre's key and indicators: two sources attest the same three images.
    ok(&vouchsafe(&["centre", "keygen", "--out", s(&p("centre.key"))]));
    let centre_secret = vouchsafe_files::read_key_text(&p("centre.key"), "vouchsafe-centre-key v1").unwrap();
    let centre = vouchsafe_release::CentreSigningKey::from_bytes(&centre_secret).public();
    std::fs::create_dir_all(p("images")).unwrap();
    let mut hashes: Vec<ImageHashes> = Vec::new();
    for i in 0..3u64 {
        let path = p("images").join(format!("img-{i}.png"));
        vouchsafe_phash::fixtures::benign_image(40 + i, 256, 192).save(&path).unwrap();
        hashes.push(hash_file(&HashConfig::RECOMMENDED, &path).unwrap());
    }
    for source in ["source-a", "source-b"] {
        ok(&vouchsafe(&[
            "centre",
            "import",
            "--db",
            s(&p("centre.db")),
            "--source",
            source,
            "--images",
            s(&p("images")),
            // The indicators are the three images alone (the Centre-side variants are tested in tests/centre.rs).
            "--variants",
            "none",
        ]));
    }
    let releases = p("releases");
    let r1 = ok(&vouchsafe(&[
        "centre",
        "release",
        "--db",
        s(&p("centre.db")),
        "--key",
        s(&p("centre.key")),
        "--line",
        "demo",
        "--dir",
        s(&releases),
    ]));
    assert!(r1.contains("3 added"), "{r1}");

    // The authority and its order; the provider.
    let authority = AuthoritySigningKey::generate(&mut rng);
    std::fs::write(
        p("authority.pub"),
        vouchsafe_files::key_text("vouchsafe-authority-public-key v1", &authority.public_key().to_bytes()).as_bytes(),
    )
    .unwrap();
    let provider = ProviderSigningKey::generate(&mut rng);
    std::fs::write(
        p("provider.pub"),
        vouchsafe_files::key_text("vouchsafe-provider-public-key v1", &provider.public().to_bytes()).as_bytes(),
    )
    .unwrap();
    let t = now();
    let order = authority
        .sign_order(
            DetectionOrder::new(OrderTerms {
                order_id: [5; 16],
                service_id: "messenger.example".into(),
                scope: Scope::WholeService,
                material: MaterialKind::KnownImagery,
                not_before: t - 86_400,
                not_after: t + 86_400,
                threshold: 3,
                synthetic_rate: 0,
                synthetic_cap: 0,
                hash_config: HashConfig::RECOMMENDED.id(),
                centre_key: centre.to_bytes(),
                release_line: "demo".into(),
                table_key: TableSigningKey::generate(&mut rng).public_key(),
                excluded_classes: Vec::new(),
                authority_key_id: authority.key_id(),
            })
            .unwrap(),
        )
        .unwrap();

    let config = p("centre.toml");
    let text = "listen = \"127.0.0.1:0\"\nkey = \"centre.key\"\ndatabase = \"intake.sqlite\"\nindicators = \"centre.db\"\n\
                releases = \"releases\"\nauthority_keys = [\"authority.pub\"]\nexports = \"exports\"\n\
                [[providers]]\nid = \"provider-a\"\nkey = \"provider.pub\"\nservices = [\"messenger.example\"]\n";
    std::fs::write(&config, text).unwrap();
    let report = |id: u8, img: usize| {
        let ad = AssociatedData::new(&HashConfig::RECOMMENDED, &hashes[img], [id; 32], 1_700_000_000).unwrap().encode();
        let r = Report {
            report_id: [id; 16],
            provider: "provider-a".into(),
            order_id: [5; 16],
            order_hash: order.hash(),
            signed_order: order.encode(),
            release_number: 1,
            release_hash: release_hash(&releases, 1, &centre),
            case_id: u64::from(id),
            account: "acct".into(),
            urgent: false,
            four_eyes: false,
            threshold_at: now() - 100,
            created_at: now() - 50,
            items: vec![ReportItem { voucher_id: [id; 16], ad }],
            decisions: vec![Decision {
                reviewer: "alice".into(),
                role: Role::Reviewer,
                verdict: Verdict::Confirm,
                reason: ReasonCode::KnownImage,
                comment: String::new(),
                at: now() - 60,
            }],
        };
        DeliverRequest { message: provider.sign(&Message::Report(r)).unwrap().encode() }
    };
    let receipt_key = CentreReceiptKey::from_bytes(&centre.to_bytes()).unwrap();
    let verdict = |bytes: Vec<u8>| SignedReceipt::decode(&bytes).unwrap().verify(&receipt_key).unwrap().verdict;

    let (proc, addr) = spawn_centre(&config, &p("centre1.log"));
    let mut c = connect(&addr).await;
    let r = c.deliver(report(1, 0)).await.unwrap().into_inner().receipt;
    assert!(matches!(verdict(r), ReceiptVerdict::Forwarded { .. }));

    // Flag image 0: its next report is a manifest false positive, at once (the database is read at each check).
    let primary0 = hex::encode(hashes[0].primary.to_canonical_bytes());
    let out = ok(&vouchsafe(&[
        "centre",
        "flag",
        "--db",
        s(&p("centre.db")),
        "--primary",
        &primary0,
        "--reason",
        "benign photo",
    ]));
    assert!(out.contains("marked a false positive"), "{out}");
    assert!(std::fs::read_to_string(p("centre.db.flags")).unwrap().contains(&format!("{primary0} benign photo")));
    let r = c.deliver(report(2, 0)).await.unwrap().into_inner().receipt;
    assert!(matches!(verdict(r), ReceiptVerdict::ManifestFalsePositive { .. }));

    // Feedback from the provider: image 1 had a second-hash drop.
    let mut entries = vec![
        IndicatorCount { primary: hashes[1].primary.to_canonical_bytes(), second_hash_drops: 1, review_rejections: 0 },
        IndicatorCount { primary: hashes[2].primary.to_canonical_bytes(), second_hash_drops: 0, review_rejections: 1 },
    ];
    entries.sort_by(|a, b| a.primary.cmp(&b.primary));
    let fb = IndicatorFeedback {
        feedback_id: [9; 16],
        provider: "provider-a".into(),
        order_id: [5; 16],
        release_number: 1,
        entries,
        at: now(),
    };
    let msg = provider.sign(&Message::Feedback(fb)).unwrap().encode();
    let r = c.deliver(DeliverRequest { message: msg }).await.unwrap().into_inner().receipt;
    assert_eq!(verdict(r), ReceiptVerdict::Recorded);

    let stats = ok(&vouchsafe(&["centre", "stats", "--config", s(&config), "--json"]));
    let json: serde_json::Value = serde_json::from_str(&stats).unwrap();
    assert_eq!(json["total"]["reports"], 2);
    assert_eq!(json["total"]["forwarded"], 1);
    assert_eq!(json["total"]["false_positives"], 1);
    assert_eq!(json["providers"]["provider-a"]["feedback_messages"], 1);
    assert_eq!(json["second_hash_drops"], 1);
    let shown = ok(&vouchsafe(&["centre", "stats", "--config", s(&config)]));
    assert!(shown.contains("2 reports") && shown.contains("1 forwarded"), "{shown}");

    let proposals = p("proposals.txt");
    let out = ok(&vouchsafe(&["centre", "feedback", "--config", s(&config), "--out", s(&proposals)]));
    assert!(out.contains("1 removal proposals"), "{out}");
    let listed = std::fs::read_to_string(&proposals).unwrap();
    let lines: Vec<&str> = listed.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(lines, vec![hex::encode(hashes[1].primary.to_canonical_bytes())]);
    let out = ok(&vouchsafe(&["centre", "feedback", "--config", s(&config), "--min", "1"]));
    assert!(out.contains("2 removal proposals"), "{out}");

    // The next release removes the flagged indicator without being told again.
    let r2 = ok(&vouchsafe(&[
        "centre",
        "release",
        "--db",
        s(&p("centre.db")),
        "--key",
        s(&p("centre.key")),
        "--line",
        "demo",
        "--dir",
        s(&releases),
    ]));
    assert!(r2.contains("#2") && r2.contains("1 removed"), "{r2}");

    drop(c);
    terminate(proc);
    let log = std::fs::read_to_string(p("centre1.log")).unwrap();
    assert!(!log.contains("acct") && !log.contains(&primary0), "no case content in the log: {log}");

    // A configuration error: exit 2, one line naming the key.
    std::fs::write(&config, text.replace("listen = \"127.0.0.1:0\"", "listen = \"nowhere\"")).unwrap();
    let o = vouchsafe(&["centre", "serve", "--config", s(&config)]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("listen") && !err.contains("nowhere"), "{err}");
    std::fs::write(&config, text.replace("provider.pub", "missing.pub")).unwrap();
    let o = vouchsafe(&["centre", "serve", "--config", s(&config)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("providers[0].key"), "{}", String::from_utf8_lossy(&o.stderr));
}
