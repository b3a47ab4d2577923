//! TLS to a PostgreSQL server on another host (`PostgresOptions::ca`): a private cluster of its own that takes TCP
//! connections on loopback over TLS only (scripts/pg-cluster.sh `--tls`), with a certificate for `localhost` made
//! here. The store connects and works over TLS with the right CA, and refuses, with an error and no panic, a server
//! whose certificate does not chain to the CA, a plain connection, a CA with a Unix socket URL, and a CA file that
//! is missing or holds no certificate.
//!
//! Runs where the PostgreSQL half of the suite runs (`VOUCHSAFE_TEST_POSTGRES` set: the server binaries are
//! installed); says it is skipped otherwise, and fails then under `VOUCHSAFE_REQUIRE_POSTGRES=1` (CI).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // test code: a failure is the test failing

use std::path::{Path, PathBuf};
use std::process::Command;

use vouchsafe_store::{PostgresOptions, PostgresStore, Store, StoreError};

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/pg-cluster.sh")
}

/// A started cluster, stopped when dropped.
struct Cluster {
    dir: tempfile::TempDir,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("bash").arg(script()).arg("stop").arg(self.dir.path()).output();
    }
}

/// An error with its sources, as the server logs it.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(s) = next {
        out.push_str(": ");
        out.push_str(&s.to_string());
        next = s.source();
    }
    out
}

fn options(ca: Option<&Path>) -> PostgresOptions {
    PostgresOptions { connections: 1, schema: Some("tls_test".into()), ca: ca.map(Path::to_path_buf) }
}

#[test]
fn tls_to_postgres_verifies_the_server_and_refuses_what_it_cannot_verify() {
    if std::env::var("VOUCHSAFE_TEST_POSTGRES").is_err() {
        assert!(
            std::env::var("VOUCHSAFE_REQUIRE_POSTGRES").as_deref() != Ok("1"),
            "VOUCHSAFE_REQUIRE_POSTGRES=1 but VOUCHSAFE_TEST_POSTGRES is not set"
        );
        eprintln!("postgres_tls: skipped: VOUCHSAFE_TEST_POSTGRES is not set (scripts/test.sh sets it)");
        return;
    }
    let files = tempfile::tempdir().unwrap();
    let write = |name: &str, text: String| {
        let p = files.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let server = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert = write("server.crt", server.cert.pem());
    let key = write("server.key", server.signing_key.serialize_pem());
    let other = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let other_ca = write("other-ca.crt", other.cert.pem());
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();

    let cluster = Cluster { dir: tempfile::tempdir().unwrap() };
    let out = Command::new("bash")
        .arg(script())
        .arg("start")
        .arg(cluster.dir.path())
        .arg("--fast")
        .arg("--tls")
        .args([&cert, &key])
        .arg(port.to_string())
        .output()
        .unwrap();
    assert!(out.status.success(), "the TLS cluster did not start: {}", String::from_utf8_lossy(&out.stderr));
    let url = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(url.contains("localhost") && url.contains(&port.to_string()), "{url}");

    // The right CA: the store migrates, works, and its session is a TLS one.
    let s = PostgresStore::open_with(&url, &options(Some(&cert))).unwrap_or_else(|e| panic!("over TLS: {e}"));
    s.insert_batch("alice", [1; 16], &[vec![1, 2, 3]], 10).unwrap();
    assert_eq!(s.stats().unwrap().batches_pending, 1);
    assert_eq!(s.debug_count("SELECT COUNT(*) FROM pg_stat_ssl WHERE pid = pg_backend_pid() AND ssl").unwrap(), 1);

    // A server certificate that does not chain to the CA given: refused, and the error says why.
    let e = PostgresStore::open_with(&url, &options(Some(&other_ca))).unwrap_err();
    assert!(matches!(e, StoreError::Database(_)), "{e:?}");
    assert!(chain(&e).to_lowercase().contains("certificate"), "{}", chain(&e));
    eprintln!("postgres_tls: another CA: {}", chain(&e));
    // No TLS: the server takes TCP connections over TLS only.
    assert!(PostgresStore::open_with(&url, &options(None)).is_err());
    // A CA with a Unix socket: refused before connecting.
    let unix = format!("postgresql:///postgres?host={}/socket&port={port}", cluster.dir.path().display());
    let e = PostgresStore::open_with(&unix, &options(Some(&cert))).unwrap_err();
    assert!(matches!(e, StoreError::InvalidArgument(m) if m.contains("Unix socket")), "{e:?}");
    // A CA file that is missing, or holds no certificate: an error naming the file.
    for (ca, why) in [(files.path().join("absent.crt"), ""), (key.clone(), "no certificate")] {
        let e = PostgresStore::open_with(&url, &options(Some(&ca))).unwrap_err();
        let text = chain(&e);
        assert!(text.contains(&*ca.to_string_lossy()) && text.contains(why), "{text}");
    }
}
