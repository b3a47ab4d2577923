//! The operator's table workflow with the real binary: `table build`, `serve`, `table update`, SIGHUP, and the
//! device's `client sync` getting each new version as an incremental update. A refused reload (a rebuilt table)
//! leaves the served version in place. Real gRPC on 127.0.0.1; every wait is bounded.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // test code: a failure is the test failing

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{ServerProc, connect, spawn_server, stderr_line, terminate, vouchsafe};
use vouchsafe_phash::{HashConfig, fixtures, hash_image};
use vouchsafe_proto::v1;
use vouchsafe_server::ServerConfig;
use vouchsafe_store::{SqliteStore, Store};

fn hash_line(seed: u64) -> String {
    let img = image::DynamicImage::ImageRgb8(fixtures::benign_image(seed, 96, 80));
    let h = hash_image(&HashConfig::V1, &img).unwrap_or_else(|e| panic!("{e}"));
    hex::encode(h.primary.to_canonical_bytes())
}

fn write_list(path: &Path, seeds: impl IntoIterator<Item = u64>) {
    let text: String = seeds.into_iter().map(|s| hash_line(s) + "\n").collect();
    std::fs::write(path, text).unwrap_or_else(|e| panic!("{e}"));
}

fn ok_stdout(o: &std::process::Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn hup(p: &ServerProc) {
    let pid = p.child.id().to_string();
    let ok = Command::new("kill").args(["-HUP", &pid]).status().map(|s| s.success()).unwrap_or(false);
    assert!(ok, "could not send SIGHUP");
}

async fn served_version(addr: &str) -> u64 {
    let mut c = connect(addr).await;
    c.get_manifest(v1::GetManifestRequest {}).await.unwrap_or_else(|e| panic!("{e}")).into_inner().table_version
}

/// Waits (bounded) until the server serves `version`.
async fn wait_for_version(addr: &str, version: u64) {
    let start = Instant::now();
    loop {
        let v = served_version(addr).await;
        if v == version {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "still serving version {v}, expected {version}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Waits (bounded) until the server's log contains `needle`.
fn wait_for_log(log: &Path, needle: &str) -> String {
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.contains(needle) {
            return text;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "{needle:?} not in the server log:\n{text}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "re-enabled when the server serves signed orders (issue 8): the client refuses a server without them"]
async fn table_update_and_sighup_reach_clients_incrementally() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut c = ServerConfig::demo_in(dir.path());
    c.table_updates = Some(dir.path().join("table.updates"));
    c.chunk_slots = 4;
    let cfg = dir.path().join("server.toml");
    std::fs::write(&cfg, c.to_toml_string().unwrap_or_else(|e| panic!("{e}"))).unwrap_or_else(|e| panic!("{e}"));
    let cfg_s = cfg.to_string_lossy().into_owned();
    let (initial, added, both) =
        (dir.path().join("initial.txt"), dir.path().join("added.txt"), dir.path().join("both.txt"));
    // Three indicators in the minimum of 8 slots: the two additions below then fill 5 of 8 slots, which cuckoo
    // placement with k = 3 fails to place about once in 10^4 builds. (With 8 indicators in 12 slots, adding 2 left
    // 10 items for 12 slots and failed in several percent of runs: the test was flaky, not the update.)
    write_list(&initial, [0, 1, 3]);
    write_list(&added, [40, 41]);
    write_list(&both, [3, 40]);
    let path = |p: &Path| p.to_string_lossy().into_owned();

    let out = ok_stdout(&vouchsafe(&[
        "table",
        "build",
        "--config",
        &cfg_s,
        "--indicators",
        &path(&initial),
        "--out",
        &path(&c.table),
    ]));
    assert!(out.contains("3 indicators"), "{out}");

    // Refused before anything is written: no change, a hash in both lists, no option at all.
    let o = vouchsafe(&["table", "update", "--config", &cfg_s, "--add", &path(&initial)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr_line(&o).contains("nothing to change"));
    let o = vouchsafe(&["table", "update", "--config", &cfg_s, "--add", &path(&both), "--remove", &path(&both)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr_line(&o).contains("both added and removed"));
    assert_eq!(vouchsafe(&["table", "update", "--config", &cfg_s]).status.code(), Some(2));
    assert!(
        !c.table_updates.as_deref().unwrap_or_else(|| panic!("history")).exists(),
        "a refused update wrote nothing"
    );

    let log = dir.path().join("server.log");
    let server = spawn_server(&cfg, &log);
    let endpoint = format!("http://{}", server.addr);
    let data = dir.path().join("device");
    let token = c.accounts[0].token.expose().to_owned();
    let sync = || {
        let args = [
            "client",
            "--endpoint",
            &endpoint,
            "--token",
            &token,
            "--data-dir",
            &path(&data),
            "--service-id",
            &c.order.service_id,
            "sync",
        ];
        ok_stdout(&vouchsafe(&args))
    };
    let out = sync();
    assert!(out.contains("Full") && out.contains("version 1"), "{out}");

    // Add two indicators, reload, and the device gets version 2 as an update.
    let out = ok_stdout(&vouchsafe(&["table", "update", "--config", &cfg_s, "--add", &path(&added)]));
    assert!(out.contains("from version 1 to 2: 2 added, 0 removed") && out.contains("5 indicators"), "{out}");
    assert_eq!(served_version(&server.addr).await, 1, "nothing changes before the signal");
    hup(&server);
    wait_for_version(&server.addr, 2).await;
    let out = sync();
    assert!(out.contains("Incremental") && out.contains("version 2"), "{out}");

    // Remove one of them (a confirmed false positive; one listed hash is not in the table): version 3.
    let out = ok_stdout(&vouchsafe(&["table", "update", "--config", &cfg_s, "--remove", &path(&both)]));
    assert!(out.contains("from version 2 to 3: 0 added, 2 removed"), "{out}");
    hup(&server);
    wait_for_version(&server.addr, 3).await;
    let out = sync();
    assert!(out.contains("Incremental") && out.contains("version 3"), "{out}");

    // A rebuilt table (new blinding key) under the same order: the reload is refused, version 3 stays served.
    ok_stdout(&vouchsafe(&[
        "table",
        "build",
        "--config",
        &cfg_s,
        "--indicators",
        &path(&initial),
        "--out",
        &path(&c.table),
    ]));
    hup(&server);
    let text = wait_for_log(&log, "table reload failed");
    assert!(text.contains("table reload refused"), "{text}");
    assert_eq!(served_version(&server.addr).await, 3);
    assert!(sync().contains("UpToDate"));
    terminate(server);

    // Both reloads that changed the table are in the audit log.
    let store = SqliteStore::open(&c.database).unwrap_or_else(|e| panic!("{e}"));
    let audit = store.audit_entries(0, 100).unwrap_or_else(|e| panic!("{e}"));
    let reloads: Vec<&str> = audit.iter().filter(|a| a.action == "table.reload").map(|a| a.detail.as_str()).collect();
    assert_eq!(reloads.len(), 2, "{reloads:?}");
    assert!(reloads[0].contains("from_version=1 to_version=2") && reloads[1].contains("from_version=2 to_version=3"));
    let entries = audit.len();
    drop(store);

    // `vouchsafe status`: the inbox, the verified audit chain and the table file (the rebuilt one, version 1).
    let out = ok_stdout(&vouchsafe(&["status", "--config", &cfg_s]));
    assert!(out.contains("0 batches pending"), "{out}");
    assert!(out.contains(&format!("audit log: {entries} entries, chain verified")), "{out}");
    assert!(out.contains("version 1, 3 indicators"), "{out}");
    // An edited audit entry: status says so and exits 1.
    let db = rusqlite::Connection::open(&c.database).unwrap_or_else(|e| panic!("{e}"));
    db.execute("UPDATE audit_log SET detail = 'edited' WHERE seq = 1", []).unwrap_or_else(|e| panic!("{e}"));
    drop(db);
    let o = vouchsafe(&["status", "--config", &cfg_s]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stdout).contains("NOT VERIFIED"));
    assert!(stderr_line(&o).contains("audit"));
}
