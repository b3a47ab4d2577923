//! The operator's table workflow with the real binary: Centre releases, `table build`, `serve`, `table update`,
//! SIGHUP, and a device getting each new version as an incremental update with its signed manifest. A refused reload (a rebuilt table)
//! leaves the served version in place. Real gRPC on 127.0.0.1; every wait is bounded.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // test code: a failure is the test failing

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{ServerProc, connect, spawn_server, stderr_line, terminate, vouchsafe};
use rand::SeedableRng;
use vouchsafe_phash::{HashConfig, fixtures, hash_image};
use vouchsafe_proto::v1;
use vouchsafe_server::events::Event;
use vouchsafe_server::governance::{Fixture, FixtureSpec};
use vouchsafe_store::{SqliteStore, Store};

fn hash_line(seed: u64) -> String {
    let img = image::DynamicImage::ImageRgb8(fixtures::benign_image(seed, 96, 80));
    let h = hash_image(&HashConfig::V1, &img).unwrap_or_else(|e| panic!("{e}"));
    hex::encode(h.primary.to_canonical_bytes())
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

/// What a device asks after a reload: the update from `from` to the served version, with the signed manifest of
/// the new version (verified under the order) and its leaf index. (The `vouchsafe client` CLI is being changed
/// for issue 8 on another branch; this checks the wire directly.)
async fn update_from(addr: &str, fx: &Fixture, from: u64) -> (u64, u64) {
    let mut c = connect(addr).await;
    let u = c.get_update(v1::GetUpdateRequest { from_version: from }).await.unwrap_or_else(|e| panic!("{e}"));
    let u = u.into_inner();
    let m = c.get_manifest(v1::GetManifestRequest {}).await.unwrap_or_else(|e| panic!("{e}")).into_inner();
    let order = fx.keyring().unwrap_or_else(|e| panic!("{e}")).verify_order_bytes(&m.signed_order);
    let order = order.unwrap_or_else(|e| panic!("{e}"));
    let signed = order.verify_manifest_bytes(&u.signed_manifest).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(u.signed_manifest, m.signed_manifest);
    assert_eq!(u.manifest_leaf_index, m.manifest_leaf_index);
    (u.to_version, signed.statement().release_number)
}

fn pair(seed: u64) -> (Vec<u8>, Vec<u8>) {
    let y = hex::decode(hash_line(seed)).unwrap_or_else(|e| panic!("{e}"));
    (y.clone(), y)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_update_and_sighup_reach_clients_incrementally() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(5);
    // Three indicators in the minimum of 8 slots: the two additions below then fill 5 of 8 slots, which cuckoo
    // placement with k = 3 fails to place about once in 10^4 builds. (With 8 indicators in 12 slots, adding 2 left
    // 10 items for 12 slots and failed in several percent of runs: the test was flaky, not the update.)
    let mut fx = Fixture::create(dir.path(), FixtureSpec::new(vec![pair(0), pair(1), pair(3)]), &mut rng)
        .unwrap_or_else(|e| panic!("{e}"));
    fx.config.chunk_slots = 4;
    let c = fx.config.clone();
    let cfg = fx.write_config().unwrap_or_else(|e| panic!("{e}"));
    let cfg_s = cfg.to_string_lossy().into_owned();

    let out = ok_stdout(&vouchsafe(&["table", "build", "--config", &cfg_s]));
    assert!(out.contains("release 1 of line demo (3 indicators)"), "{out}");
    assert!(c.manifest_path().exists());

    // Refused before anything is written: the table already holds the newest release.
    let o = vouchsafe(&["table", "update", "--config", &cfg_s]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr_line(&o).contains("already holds release 1"), "{}", stderr_line(&o));
    assert!(
        !c.table_updates.as_deref().unwrap_or_else(|| panic!("history")).exists(),
        "a refused update wrote nothing"
    );

    let log = dir.path().join("server.log");
    let server = spawn_server(&cfg, &log);
    assert_eq!(served_version(&server.addr).await, 1);

    // The Centre releases two indicators; the operator updates; after SIGHUP devices get version 2.
    fx.release(&[pair(40), pair(41)], &[]).unwrap_or_else(|e| panic!("{e}"));
    let out = ok_stdout(&vouchsafe(&["table", "update", "--config", &cfg_s]));
    assert!(out.contains("from version 1 (release 1) to 2 (release 2): 2 added, 0 removed, 5 indicators"), "{out}");
    assert_eq!(served_version(&server.addr).await, 1, "nothing changes before the signal");
    hup(&server);
    wait_for_version(&server.addr, 2).await;
    assert_eq!(update_from(&server.addr, &fx, 1).await, (2, 2));

    // The Centre removes two (confirmed false positives): version 3.
    fx.release(&[], &[pair(3).0, pair(40).0]).unwrap_or_else(|e| panic!("{e}"));
    let out = ok_stdout(&vouchsafe(&["table", "update", "--config", &cfg_s]));
    assert!(out.contains("from version 2 (release 2) to 3 (release 3): 0 added, 2 removed"), "{out}");
    hup(&server);
    wait_for_version(&server.addr, 3).await;
    assert_eq!(update_from(&server.addr, &fx, 1).await, (3, 3));

    // A rebuilt table (new blinding key) under the same order: the reload is refused, version 3 stays served.
    ok_stdout(&vouchsafe(&["table", "build", "--config", &cfg_s]));
    hup(&server);
    let text = wait_for_log(&log, "table reload failed");
    assert!(text.contains("table reload refused"), "{text}");
    assert_eq!(served_version(&server.addr).await, 3);
    terminate(server);

    // Both reloads that changed the table are in the audit log.
    let store = SqliteStore::open(&c.database).unwrap_or_else(|e| panic!("{e}"));
    let audit = store.audit_entries(0, 100).unwrap_or_else(|e| panic!("{e}"));
    let reloads: Vec<(u64, u64)> = audit
        .iter()
        .filter_map(|a| match Event::parse(a) {
            Ok(Event::TableReload { from_version, to_version, .. }) => Some((from_version, to_version)),
            _ => None,
        })
        .collect();
    assert_eq!(reloads, [(1, 2), (2, 3)]);
    let entries = audit.len();
    drop(store);

    // `vouchsafe status`: the inbox, the verified audit chain and the table file (the rebuilt one, version 1).
    let out = ok_stdout(&vouchsafe(&["status", "--config", &cfg_s]));
    assert!(out.contains("0 batches pending"), "{out}");
    assert!(out.contains(&format!("audit log: {entries} entries, chain verified")), "{out}");
    assert!(out.contains("version 1, 3 indicators"), "{out}");
    assert!(out.contains("signed manifest verified") && out.contains("(active), release 3 of line demo"), "{out}");
    // An edited audit entry: status says so and exits 1.
    let db = rusqlite::Connection::open(&c.database).unwrap_or_else(|e| panic!("{e}"));
    db.execute("UPDATE audit_log SET detail = 'edited' WHERE seq = 1", []).unwrap_or_else(|e| panic!("{e}"));
    drop(db);
    let o = vouchsafe(&["status", "--config", &cfg_s]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stdout).contains("NOT VERIFIED"));
    assert!(stderr_line(&o).contains("audit"));
}
