//! The whole chain of issue 8 with the real binary and nothing but its commands, over loopback: the authority, the
//! Centre (two sources; an indicator attested by one is left out), the provider (table key, log key, table from the
//! release, `serve`), two witnesses cosigning, a device verifying everything before it scans, an auditor replaying
//! the log; then the refusals: a conversation outside the scope, an excluded account, a forged order, a revocation
//! (server, device, log, auditor), and a rewritten log that the witnesses and the device refuse. Every wait is
//! bounded.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // test code: a failure is the test failing

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{ServerProc, connect, spawn_server, stderr_line, terminate, vouchsafe_with_token};
use vouchsafe_phash::fixtures;
use vouchsafe_proto::v1;
use vouchsafe_server::ServerConfig;

const TOKEN: &str = "e2e-governance-token-alice-0001";
const TOKEN_STATE: &str = "e2e-governance-token-state-0002";

fn run(args: &[&str]) -> Output {
    vouchsafe_with_token(args, None)
}

fn run_env(args: &[&str], token: Option<&str>) -> Output {
    vouchsafe_with_token(args, token)
}

fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "expected success: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A refusal: exit 1 (a runtime refusal, not a usage error) and one line on stderr containing `needle`.
fn refused(o: Output, needle: &str) -> String {
    let line = stderr_line(&o);
    assert_eq!(o.status.code(), Some(1), "{line}");
    assert!(line.to_lowercase().contains(&needle.to_lowercase()), "expected {needle:?} in {line:?}");
    line
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn hex_of_pub(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap().lines().nth(1).unwrap().trim().to_owned()
}

fn write_png(path: &Path, seed: u64) {
    let img = image::DynamicImage::ImageRgb8(fixtures::benign_image(seed, 160, 120));
    img.save(path).unwrap();
}

struct World {
    dir: PathBuf,
    config: PathBuf,
}

impl World {
    fn f(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn client(&self, device: &str, extra: &[&str], token: &str) -> Output {
        let data = self.f(device);
        let (a, c, l, w1, w2) = (
            self.f("authority.key.pub"),
            self.f("centre.key.pub"),
            self.f("log.key.pub"),
            self.f("w1.key.pub"),
            self.f("w2.key.pub"),
        );
        let addr = std::fs::read_to_string(self.f("addr")).unwrap();
        let endpoint = format!("http://{addr}");
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
        args.extend_from_slice(extra);
        run_env(&args, Some(token))
    }

    fn cosign(&self, witness: &str) -> Output {
        let addr = std::fs::read_to_string(self.f("addr")).unwrap();
        let server = format!("http://{addr}");
        let key = self.f(&format!("{witness}.key"));
        let state = self.f(&format!("{witness}.state"));
        let log = self.f("log.key.pub");
        run(&["witness", "cosign", "--server", &server, "--key", p(&key), "--log-key", p(&log), "--state", p(&state)])
    }

    fn verify_log(&self) -> Output {
        let addr = std::fs::read_to_string(self.f("addr")).unwrap();
        let server = format!("http://{addr}");
        let (l, w1, w2, a, st) = (
            self.f("log.key.pub"),
            self.f("w1.key.pub"),
            self.f("w2.key.pub"),
            self.f("authority.key.pub"),
            self.f("auditor.state"),
        );
        run(&[
            "log",
            "verify",
            "--server",
            &server,
            "--log-key",
            p(&l),
            "--witness",
            p(&w1),
            "--witness",
            p(&w2),
            "--quorum",
            "2",
            "--authority",
            p(&a),
            "--state",
            p(&st),
        ])
    }

    fn serve(&self) -> ServerProc {
        let s = spawn_server(&self.config, &self.f("server.log"));
        std::fs::write(self.f("addr"), &s.addr).unwrap();
        s
    }
}

/// Everyone's keys and files, made with the CLI only.
fn setup(dir: &Path) -> World {
    let f = |n: &str| dir.join(n);
    ok(run(&["authority", "keygen", "--out", p(&f("authority.key"))]));
    ok(run(&["centre", "keygen", "--out", p(&f("centre.key"))]));
    ok(run(&["table", "keygen", "--out", p(&f("table.key"))]));
    ok(run(&["log", "keygen", "--origin", "provider.example/log", "--out", p(&f("log.key"))]));
    ok(run(&["witness", "keygen", "--name", "w1.example", "--out", p(&f("w1.key"))]));
    ok(run(&["witness", "keygen", "--name", "w2.example", "--out", p(&f("w2.key"))]));
    // Two sources: source a has three images, source b two of them; the third has one source only.
    for (d, seeds) in [("src-a", &[11u64, 12, 13][..]), ("src-b", &[11u64, 12][..])] {
        std::fs::create_dir_all(f(d)).unwrap();
        for s in seeds {
            write_png(&f(d).join(format!("img-{s}.png")), *s);
        }
    }
    let db = f("centre.db");
    ok(run(&["centre", "import", "--db", p(&db), "--source", "hotline-a", "--images", p(&f("src-a"))]));
    ok(run(&["centre", "import", "--db", p(&db), "--source", "hotline-b", "--images", p(&f("src-b"))]));
    // The database was created under the recommended configuration 2; importing under another is refused.
    let refused = run(&[
        "centre",
        "import",
        "--db",
        p(&db),
        "--source",
        "hotline-c",
        "--images",
        p(&f("src-b")),
        "--hash-config",
        "1",
    ]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("holds hash configuration 2"));
    let out = ok(run(&[
        "centre",
        "release",
        "--db",
        p(&db),
        "--key",
        p(&f("centre.key")),
        "--line",
        "eu-main",
        "--dir",
        p(&f("releases")),
    ]));
    assert!(out.contains("1 of 2") || out.contains("left out") || out.contains("attested by 1"), "{out}");
    assert!(f("releases/eu-main-000001.record").exists());
    let centre = hex_of_pub(&f("centre.key.pub"));
    let table = hex_of_pub(&f("table.key.pub"));
    ok(run(&[
        "authority",
        "issue",
        "--key",
        p(&f("authority.key")),
        "--service",
        "demo-messenger",
        "--days",
        "30",
        "--threshold",
        "3",
        "--synthetic-rate",
        "0",
        "--synthetic-cap",
        "2",
        "--hash-config",
        "2",
        "--centre-key",
        &centre,
        "--release-line",
        "eu-main",
        "--table-key",
        &table,
        "--components",
        "chat",
        "--exclude",
        "state-security",
        "--out",
        p(&f("order.bin")),
    ]));

    let mut cfg = ServerConfig::in_dir(dir);
    cfg.order.authority_keys = vec![f("authority.key.pub")];
    cfg.log.witnesses =
        ["w1.key.pub", "w2.key.pub"].iter().map(|n| std::fs::read_to_string(f(n)).unwrap().trim().to_owned()).collect();
    cfg.worker.poll_interval_ms = 50;
    let mut alice = vouchsafe_server::AccountConfig::new(TOKEN, "alice");
    alice.components = vec!["chat".into()];
    let mut state = vouchsafe_server::AccountConfig::new(TOKEN_STATE, "ministry");
    state.components = vec!["chat".into()];
    state.classes = vec!["state-security".into()];
    cfg.accounts = vec![alice, state];
    std::fs::create_dir_all(f("revocations")).unwrap();
    let config = f("server.toml");
    std::fs::write(&config, cfg.to_toml_string().unwrap()).unwrap();
    let out = ok(run(&["table", "build", "--config", p(&config)]));
    assert!(out.contains("release") || out.contains("eu-main"), "{out}");
    World { dir: dir.to_owned(), config }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_chain_and_every_refusal_with_the_real_binary() {
    let tmp = tempfile::tempdir().unwrap();
    let w = setup(tmp.path());
    let img = w.f("src-a/img-11.png");
    let lone = w.f("src-a/img-13.png");

    let server = w.serve();
    // Before any witness cosigned, a device refuses: the checkpoint has no quorum.
    refused(w.client("dev-early", &["sync"], TOKEN), "witness");
    ok(w.cosign("w1"));
    let out = ok(w.cosign("w2"));
    assert!(out.contains("2 cosignature"), "{out}");

    // A device verifies the order, the manifest and the log, then downloads and scans.
    ok(w.client("dev-alice", &["sync"], TOKEN));
    ok(w.client("dev-alice", &["scan", "--component", "chat", p(&img), p(&lone)], TOKEN));
    ok(w.client("dev-alice", &["submit"], TOKEN));
    // A conversation outside the scope: nothing hashed, nothing queued.
    refused(w.client("dev-alice", &["scan", "--component", "channels", p(&img)], TOKEN), "scope");
    // An excluded account: the device refuses before it downloads anything; the server refuses its vouchers.
    refused(w.client("dev-state", &["--class", "state-security", "sync"], TOKEN_STATE), "exclude");
    ok(w.client("dev-state-lying", &["sync"], TOKEN_STATE));
    ok(w.client("dev-state-lying", &["scan", "--component", "chat", p(&img)], TOKEN_STATE));
    refused(w.client("dev-state-lying", &["submit"], TOKEN_STATE), "excluded from or not covered");

    // The auditor replays the log: order, release record, manifest.
    let out = ok(w.verify_log());
    assert!(out.contains("every leaf"), "{out}");
    assert!(out.contains("release eu-main #1: +2"), "the one-source image is not in the release: {out}");

    // The authority revokes; the operator drops the file in place and sends SIGHUP.
    ok(run(&[
        "authority",
        "revoke",
        "--key",
        p(&w.f("authority.key")),
        "--order",
        p(&w.f("order.bin")),
        "--reason",
        "annulled",
        "--out",
        p(&w.f("revocations/annulled.bin")),
    ]));
    let pid = server.child.id().to_string();
    assert!(Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
    let start = Instant::now();
    loop {
        let mut c = connect(&server.addr).await;
        match c.get_manifest(v1::GetManifestRequest {}).await {
            Err(s) if s.code() == tonic::Code::FailedPrecondition => {
                assert!(s.message().contains("revoked"), "{}", s.message());
                break;
            }
            _ => {}
        }
        assert!(start.elapsed() < Duration::from_secs(20), "the revocation did not take effect");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The device that already holds the table stops too, once it learns of the revocation from its app.
    ok(w.client("dev-alice", &["add-revocation", p(&w.f("revocations/annulled.bin"))], TOKEN));
    refused(w.client("dev-alice", &["scan", "--component", "chat", p(&img)], TOKEN), "revoked");
    // The log grew by the revocation; the witnesses cosign the extension, the auditor sees it.
    ok(w.cosign("w1"));
    ok(w.cosign("w2"));
    let out = ok(w.verify_log());
    assert!(out.contains("revoked"), "{out}");
    terminate(server);

    // A forged order: one flipped byte and the server refuses to start (exit 2, naming the order).
    let order = std::fs::read(w.f("order.bin")).unwrap();
    let mut forged = order.clone();
    let last = forged.len() - 20;
    forged[last] ^= 1;
    std::fs::write(w.f("order.bin"), &forged).unwrap();
    let o = run(&["serve", "--config", p(&w.config)]);
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("order"), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::write(w.f("order.bin"), &order).unwrap();

    // A rewritten log: the operator throws the log away and starts afresh without the revocation. The new log is
    // shorter than what the witnesses cosigned: they refuse to cosign it (a rollback), so it never reaches the
    // quorum that the auditor and the devices require.
    std::fs::remove_dir_all(w.f("log")).unwrap();
    std::fs::remove_file(w.f("revocations/annulled.bin")).unwrap();
    let server = w.serve();
    refused(w.cosign("w1"), "refused to cosign");
    refused(w.cosign("w2"), "refused to cosign");
    // Without the witnesses the rewritten log has no quorum: the auditor and the devices refuse it.
    refused(w.verify_log(), "quorum is 2");
    refused(w.client("dev-state-lying", &["sync"], TOKEN_STATE), "quorum is 2");
    terminate(server);
}
