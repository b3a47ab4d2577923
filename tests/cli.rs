//! The `vouchsafe` binary: the demo runs and exits 0; errors exit non-zero with one precise line on stderr.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // test code: a failure is the test failing

mod common;

use common::{stderr_line, vouchsafe};
use rand::SeedableRng;

#[test]
fn demo_runs_crosses_the_threshold_and_exits_zero() {
    let keep = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let kept = keep.path().join("demo-data");
    let kept_s = kept.to_string_lossy().into_owned();
    let o = vouchsafe(&["demo", "--seed", "7", "--keep", &kept_s]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "demo failed: {}\n{out}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains("THRESHOLD CROSSED: alice"), "{out}");
    assert!(!out.contains("THRESHOLD CROSSED: bob"), "{out}");
    assert!(out.contains("second-hash check passed"), "{out}");
    assert!(out.contains("synthetic vouchers identified and discarded"), "{out}");
    assert!(out.contains("server's posterior on the real count"), "{out}");
    assert!(out.contains("chain verified"), "{out}");
    // --keep leaves the files, and no token is printed (tokens live only in the kept config).
    let toml = std::fs::read_to_string(kept.join("server.toml")).unwrap_or_else(|e| panic!("{e}"));
    for line in toml.lines().filter(|l| l.trim_start().starts_with("token")) {
        let token = line.split('"').nth(1).unwrap_or_else(|| panic!("token line {line}"));
        assert!(!out.contains(token), "a bearer token was printed");
    }
    assert!(kept.join("server.db").exists() && kept.join("table.secret").exists());
    // A non-empty --keep directory is refused as a usage error.
    let again = vouchsafe(&["demo", "--keep", &kept_s]);
    assert_eq!(again.status.code(), Some(2));
    assert!(stderr_line(&again).contains("not empty"));
}

#[test]
fn missing_config_file_is_a_usage_error() {
    let o = vouchsafe(&["serve", "--config", "/nonexistent/vouchsafe.toml"]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr_line(&o);
    assert!(e.contains("config file /nonexistent/vouchsafe.toml"), "{e}");
    let o = vouchsafe(&["table", "build", "--config", "/nonexistent/v.toml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr_line(&o).contains("config file"));
}

#[test]
fn invalid_config_names_the_key() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let p = dir.path().join("bad.toml");
    std::fs::write(&p, "listen = \"127.0.0.1:0\"\n").unwrap_or_else(|e| panic!("{e}"));
    let o = vouchsafe(&["serve", "--config", &p.to_string_lossy()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr_line(&o).contains("configuration"));
}

#[test]
fn bad_image_path_is_a_runtime_error_naming_the_file() {
    let o = vouchsafe(&["hash", "/nonexistent/picture.png"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr_line(&o).contains("/nonexistent/picture.png"));
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let p = dir.path().join("not-an-image.png");
    std::fs::write(&p, b"definitely not a png").unwrap_or_else(|e| panic!("{e}"));
    let o = vouchsafe(&["hash", &p.to_string_lossy()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr_line(&o).contains("not-an-image.png"));
    let o = vouchsafe(&[
        "client",
        "--token",
        "t0123456789abcdef",
        "--data-dir",
        &dir.path().join("d").to_string_lossy(),
        "scan",
        "/nonexistent/x.jpg",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr_line(&o).contains("/nonexistent/x.jpg"));
}

#[test]
fn hash_prints_canonical_hashes_and_verdict() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let p = dir.path().join("a.png");
    vouchsafe_phash::fixtures::benign_image(3, 96, 80).save(&p).unwrap_or_else(|e| panic!("{e}"));
    let o = vouchsafe(&["hash", &p.to_string_lossy()]);
    assert!(o.status.success());
    let out = String::from_utf8_lossy(&o.stdout);
    // The recommended configuration, 2, unless another is asked for.
    let h = vouchsafe_phash::hash_file(&vouchsafe_phash::HashConfig::V2, &p).unwrap_or_else(|e| panic!("{e}"));
    assert!(out.contains(&hex::encode(h.primary.to_canonical_bytes())), "{out}");
    assert!(out.contains("quality gate: accept"), "{out}");
    let o = vouchsafe(&["hash", "--hash-config", "1", &p.to_string_lossy()]);
    assert!(o.status.success());
    let h1 = vouchsafe_phash::hash_file(&vouchsafe_phash::HashConfig::V1, &p).unwrap_or_else(|e| panic!("{e}"));
    assert!(String::from_utf8_lossy(&o.stdout).contains(&hex::encode(h1.primary.to_canonical_bytes())));
    let o = vouchsafe(&["hash", "--hash-config", "9", &p.to_string_lossy()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr_line(&o).contains("hash configuration 9 is unknown"));
}

#[test]
fn usage_errors_exit_two_on_one_line() {
    let o = vouchsafe(&["leakage", "--vouchers", "10"]);
    assert_eq!(o.status.code(), Some(2));
    stderr_line(&o);
    let o = vouchsafe(&["client", "sync"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr_line(&o).contains("VOUCHSAFE_TOKEN"));
    let o = vouchsafe(&[
        "leakage",
        "--vouchers",
        "10",
        "--opened",
        "11",
        "--rate",
        "0.1",
        "--cap",
        "3",
        "--threshold",
        "5",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr_line(&o).contains("exceeds"));
}

#[test]
fn leakage_prints_a_normalised_posterior() {
    let o = vouchsafe(&[
        "leakage",
        "--vouchers",
        "200",
        "--opened",
        "2",
        "--rate",
        "0.02",
        "--cap",
        "60",
        "--threshold",
        "30",
        "--match-rate",
        "0.001",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    let probs: Vec<f64> = out
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let r = it.next()?.parse::<u32>().ok()?;
            let p = it.next()?.parse::<f64>().ok()?;
            it.next().is_none().then_some((r, p))
        })
        .map(|(_, p)| p)
        .collect();
    assert_eq!(probs.len(), 3, "R in 0..=2: {out}");
    assert!((probs.iter().sum::<f64>() - 1.0).abs() < 1e-4, "{out}");
    assert!(probs[0] > probs[2], "with a tiny match rate, R = 0 is likelier than R = 2: {out}");
}

/// `table keygen` and `log keygen` write a secret (0600) and a public file and refuse to overwrite; `table build`
/// builds only from the verified chain with the order's table key (another key is refused, nothing written).
#[test]
fn provider_keys_and_a_table_only_from_the_chain() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let p = |n: &str| dir.path().join(n).to_string_lossy().into_owned();
    let o = vouchsafe(&["table", "keygen", "--out", &p("t.key")]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(dir.path().join("t.key.pub")).unwrap_or_else(|e| panic!("{e}"));
    assert!(text.starts_with("vouchsafe-table-public-key v1\n"), "{text}");
    assert!(String::from_utf8_lossy(&o.stdout).contains(text.lines().nth(1).unwrap_or("?")));
    assert_eq!(vouchsafe(&["table", "keygen", "--out", &p("t.key")]).status.code(), Some(2));
    let o = vouchsafe(&["log", "keygen", "--origin", "provider.example/log", "--out", &p("l.key")]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let public = std::fs::read_to_string(dir.path().join("l.key.pub")).unwrap_or_else(|e| panic!("{e}"));
    assert!(vouchsafe_log::LogVerifier::parse(public.trim()).is_ok(), "{public}");
    #[cfg(unix)]
    for f in ["t.key", "l.key"] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(f)).map(|m| m.permissions().mode() & 0o777).unwrap_or(0);
        assert_eq!(mode, 0o600, "{f}");
    }

    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(3);
    let fx_dir = dir.path().join("provider");
    let fx = vouchsafe_server::governance::Fixture::create(
        &fx_dir,
        vouchsafe_server::governance::FixtureSpec::new(vec![(b"one".to_vec(), b"one".to_vec())]),
        &mut rng,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut c = fx.config.clone();
    c.table_signing = Some(vouchsafe_server::TableSigningConfig { key: dir.path().join("t.key") });
    let other_cfg = dir.path().join("other.toml");
    std::fs::write(&other_cfg, c.to_toml_string().unwrap_or_else(|e| panic!("{e}"))).unwrap_or_else(|e| panic!("{e}"));
    let o = vouchsafe(&["table", "build", "--config", &other_cfg.to_string_lossy()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr_line(&o).contains("its public key is not the order's table key"), "{}", stderr_line(&o));
    assert!(!fx.config.table.exists(), "nothing written");
    let cfg = fx.write_config().unwrap_or_else(|e| panic!("{e}"));
    let o = vouchsafe(&["table", "build", "--config", &cfg.to_string_lossy()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("(1 indicators)"));
    // A release directory holding no release of the order's line: refused.
    let o = vouchsafe(&["table", "build", "--config", &cfg.to_string_lossy(), "--release-dir", &p("")]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr_line(&o).contains("no release of the order's line demo"), "{}", stderr_line(&o));
}

/// An unknown token: the client commands fail with the server's refusal, exit 1, and never echo the token.
#[test]
fn unknown_token_is_refused_without_echo() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(4);
    let mut indicators = Vec::new();
    for s in 0..5u64 {
        let img = image::DynamicImage::ImageRgb8(vouchsafe_phash::fixtures::benign_image(s, 96, 80));
        let h = vouchsafe_phash::hash_image(&vouchsafe_phash::HashConfig::V1, &img).unwrap_or_else(|e| panic!("{e}"));
        indicators.push((h.primary.to_canonical_bytes(), h.secondary.to_canonical_bytes()));
    }
    // The CLI draws its own randomness: with p > 0 the one scanned image would be a synthetic voucher in a
    // fraction p of runs, and the test asserts on "real" (the fixture's order has p = 0).
    let mut fx = vouchsafe_server::governance::Fixture::create(
        dir.path(),
        vouchsafe_server::governance::FixtureSpec::new(indicators),
        &mut rng,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    fx.config.chunk_slots = 64;
    let c = fx.config.clone();
    let cfg_path = fx.write_config().unwrap_or_else(|e| panic!("{e}"));
    let o = vouchsafe(&["table", "build", "--config", &cfg_path.to_string_lossy()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("5 indicators"));
    let service = fx.order.order().service_id().to_owned();

    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap_or_else(|e| panic!("{e}"));
    let store = vouchsafe_server::open_store(&c).unwrap_or_else(|e| panic!("{e}"));
    let server = rt.block_on(vouchsafe_server::start(c.clone(), store)).unwrap_or_else(|e| panic!("{e}"));
    let endpoint = format!("http://{}", server.local_addr());
    rt.block_on(fx.cosign_all(server.local_addr())).unwrap_or_else(|e| panic!("{e}"));
    let pin = |n: &str| dir.path().join(n).to_string_lossy().into_owned();
    let (authority, centre, log, w1, w2) = (
        pin("authority.pub"),
        pin("centre.pub"),
        pin("log.key.pub"),
        pin("witness-1.key.pub"),
        pin("witness-2.key.pub"),
    );
    let data = dir.path().join("device");
    let img = dir.path().join("photo.png");
    vouchsafe_phash::fixtures::benign_image(1, 96, 80).save(&img).unwrap_or_else(|e| panic!("{e}"));
    let bad_token = "unknown-token-0123456789abcdef";
    let common = [
        "client",
        "--endpoint",
        &endpoint,
        "--token",
        bad_token,
        "--data-dir",
        &*data.to_string_lossy(),
        "--service-id",
        &service,
        "--authority-key",
        &authority,
        "--centre-key",
        &centre,
        "--log-key",
        &log,
        "--witness",
        &w1,
        "--witness",
        &w2,
        "--quorum",
        "2",
    ];
    let run = |extra: &[&str]| {
        let mut args: Vec<&str> = common.to_vec();
        args.extend_from_slice(extra);
        vouchsafe(&args)
    };
    // The table is public: sync works with any token; scanning is local.
    let o = run(&["sync"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = run(&["scan", &img.to_string_lossy()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("real"));
    let o = run(&["submit"]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr_line(&o);
    assert!(e.contains("unauthenticated"), "{e}");
    assert!(!e.contains(bad_token) && !String::from_utf8_lossy(&o.stdout).contains(bad_token));
    // The demo account's token works and the voucher queued under the bad token is then delivered.
    let good = c.accounts[0].token.expose().to_owned();
    let mut args: Vec<&str> = common.to_vec();
    args[4] = &good;
    args.push("submit");
    let o = vouchsafe(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("submitted 1 vouchers"));
    rt.block_on(server.shutdown()).unwrap_or_else(|e| panic!("{e}"));
}

/// The client pins its keys on the command line; without them, or with a key file of the wrong kind, nothing runs
/// (usage error, exit 2, naming the flag or the file).
#[test]
fn client_requires_the_pins() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let d = |n: &str| dir.path().join(n).to_string_lossy().into_owned();
    let base = ["client", "--token", "t0123456789abcdef", "--data-dir"];
    let run = |extra: &[&str]| {
        let data = d("data");
        let mut args: Vec<&str> = base.to_vec();
        args.push(&data);
        args.extend_from_slice(extra);
        vouchsafe(&args)
    };
    let o = run(&["sync"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr_line(&o).contains("--authority-key"));

    let auth = d("authority.key");
    let centre = d("centre.key");
    assert!(vouchsafe(&["authority", "keygen", "--out", &auth]).status.success());
    assert!(vouchsafe(&["centre", "keygen", "--out", &centre]).status.success());
    let (auth_pub, centre_pub) = (format!("{auth}.pub"), format!("{centre}.pub"));
    let o = run(&["--authority-key", &auth_pub, "sync"]);
    assert!(stderr_line(&o).contains("--centre-key"), "{}", String::from_utf8_lossy(&o.stderr));
    // The Centre's key where the authority's belongs: refused, naming the file.
    let o = run(&["--authority-key", &centre_pub, "--centre-key", &centre_pub, "sync"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr_line(&o).contains("centre.key.pub"));
    let o = run(&["--authority-key", &auth_pub, "--centre-key", &centre_pub, "sync"]);
    assert!(stderr_line(&o).contains("--log-key"));
    let o = run(&["--authority-key", &auth_pub, "--centre-key", &centre_pub, "--log-key", "not-a-key", "sync"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr_line(&o).contains("log key"));
}

/// The leakage toolkit end to end: a capture below the threshold passes the battery against the ideal and against
/// its own simulation; a capture where every account reaches exactly T real matches is flagged (exit 1, one line);
/// an unreadable view is a usage error.
#[test]
fn leakage_capture_simulate_distinguish() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).to_string_lossy().into_owned();
    let (v, s, t) = (p("v.jsonl"), p("s.jsonl"), p("t.jsonl"));
    let o = vouchsafe(&["leakage", "capture", "--accounts", "8", "--images", "100", "--matches", "3", "--out", &v]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = vouchsafe(&["leakage", "simulate", "--view", &v, "--out", &s, "--seed", "5"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for args in
        [vec!["leakage", "distinguish", "--view", &v], vec!["leakage", "distinguish", "--view", &v, "--against", &s]]
    {
        let o = vouchsafe(&args);
        assert!(o.status.success(), "{:?}: {}", args, String::from_utf8_lossy(&o.stdout));
        assert!(String::from_utf8_lossy(&o.stdout).contains("PASS"));
    }
    let o = vouchsafe(&[
        "leakage",
        "capture",
        "--accounts",
        "3",
        "--images",
        "50",
        "--matches",
        "10",
        "--threshold",
        "10",
        "--cap",
        "4",
        "--rate",
        "0",
        "--out",
        &t,
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = vouchsafe(&["leakage", "distinguish", "--view", &t]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stdout).contains("relation.detectable_hash"));
    assert!(stderr_line(&o).contains("flagged"));
    let o = vouchsafe(&["leakage", "distinguish", "--view", &p("missing.jsonl")]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr_line(&o).contains("cannot read"));
}

/// `leakage capture --from`: a server capture log (here written from an in-memory capture: its params and voucher
/// lines, and a `state` line per client state) assembles into exactly that view; a log with two orders needs
/// `--order`; bad input is a usage error (exit 2) that names the problem.
#[test]
fn leakage_capture_from_a_server_log() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).to_string_lossy().into_owned();
    let (v, log, out) = (p("v.jsonl"), p("capture.jsonl"), p("out.jsonl"));
    let o = vouchsafe(&["leakage", "capture", "--accounts", "4", "--images", "60", "--matches", "3", "--out", &v]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let view = std::fs::read_to_string(&v).unwrap();
    let mut text = String::new();
    for line in view.lines() {
        let mut r: serde_json::Value = serde_json::from_str(line).unwrap();
        if r["kind"] == "account" {
            r = serde_json::json!({
                "kind": "state", "account": r["account"], "client_state": r["client_state"], "state": r["state"]
            });
        }
        text.push_str(&r.to_string());
        text.push('\n');
    }
    std::fs::write(&log, &text).unwrap();
    let o = vouchsafe(&["leakage", "capture", "--from", &log, "--out", &out]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("assembled"));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), view, "the assembled view is the captured one");

    // A second order in the log: ambiguous without --order, fine with it.
    let first: serde_json::Value = serde_json::from_str(view.lines().next().unwrap()).unwrap();
    let order = first["order"].as_str().unwrap().to_owned();
    let mut other = first.clone();
    other["order"] = serde_json::Value::String("ab".repeat(16));
    let voucher = view.lines().nth(1).unwrap();
    std::fs::write(&log, format!("{text}{other}\n{voucher}\n")).unwrap();
    let o = vouchsafe(&["leakage", "capture", "--from", &log, "--out", &out]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr_line(&o).contains("more than one order"), "{}", stderr_line(&o));
    let o = vouchsafe(&["leakage", "capture", "--from", &log, "--order", &order, "--out", &out]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), view);

    let o = vouchsafe(&["leakage", "capture", "--from", &log, "--order", "xyz", "--out", &out]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr_line(&o).contains("--order"), "{}", stderr_line(&o));
    let o = vouchsafe(&["leakage", "capture", "--from", &log, "--accounts", "3", "--out", &out]);
    assert_eq!(o.status.code(), Some(2), "--from and a scenario conflict");
    std::fs::write(&log, "{\"kind\":\"voucher\"\n").unwrap();
    let o = vouchsafe(&["leakage", "capture", "--from", &log, "--out", &out]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr_line(&o).contains("line 1"), "{}", stderr_line(&o));
}

#[test]
fn eval_measures_a_corpus_and_writes_json_and_html() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("images");
    for s in 0..6u64 {
        let p = corpus.join(format!("pkg/p{s}.png"));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        vouchsafe_phash::fixtures::benign_image(s, 320, 256).save(&p).unwrap();
    }
    let out = dir.path().join("report");
    let (c, o) = (corpus.to_string_lossy().into_owned(), out.to_string_lossy().into_owned());
    let r = vouchsafe(&["eval", "--corpus", &c, "--out", &o]);
    let text = String::from_utf8_lossy(&r.stdout);
    assert!(r.status.success(), "{}\n{text}", String::from_utf8_lossy(&r.stderr));
    assert!(text.contains("6 pictures + 0 tiles"), "{text}");
    assert!(text.contains("msg-half-q75") && text.contains("extrapolated exact false matches per day"), "{text}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("eval.json")).unwrap()).unwrap();
    assert_eq!(json["schemes"][0]["originals"], 6);
    assert!(std::fs::read_to_string(out.join("eval.html")).unwrap().contains("<svg"));
    for chart in ["recall-v1.svg", "distances-v1.svg"] {
        assert!(std::fs::read_to_string(out.join(chart)).unwrap().starts_with("<svg"), "{chart}");
    }

    // A missing corpus and an unknown configuration are usage errors naming what is wrong.
    let missing = dir.path().join("nothing").to_string_lossy().into_owned();
    let r = vouchsafe(&["eval", "--corpus", &missing]);
    assert_eq!(r.status.code(), Some(2));
    assert!(stderr_line(&r).contains("fetch-eval-corpus.sh"), "{}", stderr_line(&r));
    let r = vouchsafe(&["eval", "--corpus", &c, "--config", "v7"]);
    assert_eq!(r.status.code(), Some(2));
    assert!(stderr_line(&r).contains("unknown hash configuration \"v7\""), "{}", stderr_line(&r));
}
