//! The configuration's tests: TOML round trip, environment overrides, validation.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::*;
use crate::error::ServerError;

fn demo() -> ServerConfig {
    ServerConfig::in_dir(Path::new("/srv/vouchsafe"))
}

#[test]
fn demo_config_is_valid_and_round_trips_through_toml() {
    let c = demo();
    c.validate().unwrap_or_else(|e| panic!("{e}"));
    let text = c.to_toml_string().unwrap_or_else(|e| panic!("{e}"));
    let back = ServerConfig::from_toml_str(&text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(back, c);
}

#[test]
fn debug_redacts_tokens() {
    let c = demo();
    let dbg = format!("{c:?}");
    assert!(!dbg.contains("demo-token-not-secret-0001"));
    assert!(dbg.contains("<redacted>"));
}

#[test]
fn env_overrides_apply_and_errors_name_the_variable() {
    let mut c = demo();
    let env: HashMap<&str, &str> = [
        ("VOUCHSAFE_LISTEN", "0.0.0.0:7000"),
        ("VOUCHSAFE_LIMITS_MAX_VOUCHERS_PER_BATCH", "17"),
        ("VOUCHSAFE_ORDER_AD_LEN", "90"),
        ("VOUCHSAFE_WORKER_HANDOFF_BYTES", "0"),
        ("VOUCHSAFE_ACCOUNTS", "alice=aaaaaaaaaaaaaaaaaaaa, bob=bbbbbbbbbbbbbbbbbbbbbbb"),
    ]
    .into_iter()
    .collect();
    c.apply_env(|k| env.get(k).map(|v| v.to_string())).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.listen.port(), 7000);
    assert_eq!(c.limits.max_vouchers_per_batch, 17);
    assert_eq!(c.order.ad_len, 90);
    assert_eq!(c.worker.handoff_bytes, 0);
    assert_eq!(c.accounts.len(), 2);
    assert_eq!(c.accounts[1].account, "bob");
    c.validate().unwrap_or_else(|e| panic!("{e}"));

    let err = c.apply_env(|k| (k == "VOUCHSAFE_ORDER_EPOCH").then(|| "x".to_owned()));
    assert!(matches!(err, Err(ServerError::Config { ref key, .. }) if key == "VOUCHSAFE_ORDER_EPOCH"));
}

fn key_of(c: &ServerConfig) -> String {
    match c.validate() {
        Err(ServerError::Config { key, .. }) => key,
        other => panic!("expected a config error, got {other:?}"),
    }
}

#[test]
fn validation_names_the_key() {
    let base = demo();
    let mut c = base.clone();
    c.order.authority_keys.clear();
    assert_eq!(key_of(&c), "order.authority_keys");
    let mut c = base.clone();
    c.order.ad_len = 20_000;
    assert_eq!(key_of(&c), "order.ad_len");
    let mut c = base.clone();
    c.log.witnesses = vec!["not a key".into()];
    assert_eq!(key_of(&c), "log.witnesses[0]");
    let mut c = base.clone();
    c.accounts[0].classes = vec!["st ate".into()];
    assert_eq!(key_of(&c), "accounts[0].classes[0]");
    let mut c = base.clone();
    c.limits.rate_burst = 1;
    assert_eq!(key_of(&c), "limits.rate_burst");
    let mut c = base.clone();
    c.limits.max_message_bytes = 100;
    assert_eq!(key_of(&c), "limits.max_message_bytes");
    let mut c = base.clone();
    c.accounts[0].token = BearerToken::new("short");
    assert_eq!(key_of(&c), "accounts[0].token");
    let mut c = base.clone();
    let mut dup = c.accounts[0].clone();
    dup.account = "other".into();
    c.accounts.push(dup);
    assert_eq!(key_of(&c), "accounts[1].token");
    let mut c = base.clone();
    c.limits.request_timeout_seconds = 0;
    assert_eq!(key_of(&c), "limits.request_timeout_seconds");
    let mut c = base.clone();
    c.limits.max_concurrent_streams = 0;
    assert_eq!(key_of(&c), "limits.max_concurrent_streams");
    let mut c = base.clone();
    c.worker.handoff_bytes = (4 << 30) + 1;
    assert_eq!(key_of(&c), "worker.handoff_bytes");
    let mut c = base;
    c.releases.dir = PathBuf::new();
    assert_eq!(key_of(&c), "releases.dir");
}

#[test]
fn tls_from_the_file_or_the_environment() {
    let mut c = demo();
    c.tls = Some(TlsConfig { cert: "/etc/vouchsafe/cert.pem".into(), key: "/etc/vouchsafe/key.pem".into() });
    let back = ServerConfig::from_toml_str(&c.to_toml_string().unwrap_or_else(|e| panic!("{e}")))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(back.tls, c.tls);
    // One variable overrides one field of the file's [tls].
    c.apply_env(|k| (k == "VOUCHSAFE_TLS_KEY").then(|| "/run/key.pem".to_owned())).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.tls.as_ref().map(|t| t.key.as_path()), Some(Path::new("/run/key.pem")));
    // Without [tls] in the file, both variables are needed.
    let mut c = demo();
    let err = c.apply_env(|k| (k == "VOUCHSAFE_TLS_CERT").then(|| "/run/cert.pem".to_owned()));
    assert!(matches!(err, Err(ServerError::Config { ref key, .. }) if key == "VOUCHSAFE_TLS_CERT"));
    c.apply_env(|k| k.starts_with("VOUCHSAFE_TLS_").then(|| format!("/run/{k}"))).unwrap_or_else(|e| panic!("{e}"));
    assert!(c.tls.is_some());
    c.tls = Some(TlsConfig { cert: PathBuf::new(), key: "/k".into() });
    assert_eq!(key_of(&c), "tls.cert");
}

/// A config file written before `worker.handoff_bytes` existed still loads, with the default budget.
#[test]
fn handoff_bytes_defaults_when_absent() {
    let text = demo().to_toml_string().unwrap_or_else(|e| panic!("{e}"));
    let line = text.lines().find(|l| l.starts_with("handoff_bytes")).unwrap_or_else(|| panic!("{text}"));
    let old = text.replace(&format!("{line}\n"), "");
    let back = ServerConfig::from_toml_str(&old).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(back.worker.handoff_bytes, 64 << 20);
}

#[test]
fn unknown_keys_are_rejected() {
    let mut text = demo().to_toml_string().unwrap_or_else(|e| panic!("{e}"));
    text.insert_str(0, "listen_address = \"x\"\n");
    assert!(ServerConfig::from_toml_str(&text).is_err());
}

/// Relative paths of a loaded file are relative to the file's directory.
#[test]
fn relative_paths_resolve_against_the_config_file() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut c = ServerConfig::in_dir(Path::new("rel"));
    c.order.authority_keys = vec![PathBuf::from("keys/authority.pub")];
    c.postgres.ca = Some(PathBuf::from("tls/pg-ca.pem"));
    let path = dir.path().join("server.toml");
    std::fs::write(&path, c.to_toml_string().unwrap_or_else(|e| panic!("{e}"))).unwrap_or_else(|e| panic!("{e}"));
    let back = ServerConfig::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(back.order.authority_keys, vec![dir.path().join("keys/authority.pub")]);
    assert_eq!(back.log.dir, dir.path().join("rel/log"));
    assert_eq!(back.postgres.ca, Some(dir.path().join("tls/pg-ca.pem")));
    assert_eq!(back.manifest_path(), dir.path().join("rel/table.secret.manifest"));
}

fn with_review(c: &mut ServerConfig, reviewer_token: &str) {
    c.provider = Some(ProviderConfig { id: "provider-a".into(), key: PathBuf::from("/srv/vouchsafe/provider.key") });
    c.centre = Some(CentreConfig {
        endpoint: "http://127.0.0.1:7443".into(),
        ca: None,
        retry_initial_seconds: 1,
        retry_max_seconds: 60,
    });
    c.review = Some(ReviewConfig {
        listen: "127.0.0.1:7444".parse().unwrap_or_else(|e| panic!("{e}")),
        four_eyes: false,
        appeal_seconds: 14 * 24 * 3600,
        reviewers: vec![ReviewerConfig {
            id: "r1".into(),
            token: BearerToken::new(reviewer_token),
            role: ReviewRole::Reviewer,
        }],
    });
}

#[test]
fn review_configuration_is_validated_and_names_the_key() {
    let mut c = demo();
    with_review(&mut c, "reviewer-token-0123456789");
    c.validate().unwrap_or_else(|e| panic!("{e}"));
    let text = c.to_toml_string().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ServerConfig::from_toml_str(&text).unwrap_or_else(|e| panic!("{e}")), c);

    // A reviewer's token that is also a device token.
    let device = c.accounts[0].token.expose().to_owned();
    let mut bad = demo();
    with_review(&mut bad, &device);
    assert_eq!(key_of(&bad), "review.reviewers[0].token");
    // [review] without [provider] or [centre].
    let mut bad = c.clone();
    bad.provider = None;
    assert_eq!(key_of(&bad), "provider");
    let mut bad = c.clone();
    bad.centre = None;
    assert_eq!(key_of(&bad), "centre");
    // Four-eyes with one reviewer; a listener shared with the devices'; an account too long for a report.
    let mut bad = c.clone();
    if let Some(r) = bad.review.as_mut() {
        r.four_eyes = true;
    }
    assert_eq!(key_of(&bad), "review.four_eyes");
    let mut bad = c.clone();
    bad.listen = "127.0.0.1:7444".parse().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(key_of(&bad), "review.listen");
    let mut bad = c.clone();
    bad.accounts[0].account = "a".repeat(300);
    assert_eq!(key_of(&bad), "accounts[0].account");
}

#[test]
fn a_postgres_url_is_printed_without_its_password() {
    let mut c = demo();
    c.database = "postgres://vs:s3cret@db.internal:5432/vouchsafe?sslmode=disable&password=other".into();
    let shown = c.database_display();
    assert_eq!(shown, "postgres://vs:***@db.internal:5432/vouchsafe?sslmode=disable&password=***");
    assert!(!shown.contains("s3cret") && !shown.contains("other"));
    c.database = "postgresql:///vouchsafe?host=/run/postgresql".into();
    assert_eq!(c.database_display(), "postgresql:///vouchsafe?host=/run/postgresql");
    c.database = "/var/lib/vouchsafe/server.db".into();
    assert_eq!(c.database_display(), "/var/lib/vouchsafe/server.db");
}

#[test]
fn a_postgres_url_is_not_resolved_against_the_config_directory() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = demo();
    c.database = "postgres://vs@localhost/vouchsafe".into();
    let path = dir.path().join("server.toml");
    std::fs::write(&path, c.to_toml_string().unwrap()).unwrap();
    let back = ServerConfig::load(&path).unwrap();
    assert_eq!(back.database, std::path::PathBuf::from("postgres://vs@localhost/vouchsafe"));
    assert!(back.database_is_postgres());
}
