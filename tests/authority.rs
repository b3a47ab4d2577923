//! `vouchsafe authority …` with the real binary: a key, an order, a revocation, and every refusal with its message
//! and exit code (2 for a bad invocation or input file, 1 for an order that does not verify or is not active).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // test code: a failure is the test failing

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const CENTRE: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
const TABLE: &str = "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c";
const NOW: i64 = 1_780_000_000;

fn vouchsafe(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vouchsafe")).args(args).output().expect("run vouchsafe")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn keygen(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let key = dir.join(name);
    let o = vouchsafe(&["authority", "keygen", "--out", s(&key)]);
    assert!(o.status.success(), "{}", stderr(&o));
    (key.clone(), dir.join(format!("{name}.pub")))
}

fn issue_for(key: &Path, out: &Path, days: &str, extra: &[&str]) -> Output {
    let nb = NOW.to_string();
    let mut args = vec![
        "authority",
        "issue",
        "--key",
        s(key),
        "--service",
        "demo-messenger",
        "--not-before",
        &nb,
        "--days",
        days,
        "--threshold",
        "30",
        "--synthetic-rate",
        "0.01",
        "--synthetic-cap",
        "60",
        "--centre-key",
        CENTRE,
        "--release-line",
        "eu-main",
        "--table-key",
        TABLE,
        "--out",
        s(out),
    ];
    args.extend_from_slice(extra);
    vouchsafe(&args)
}

fn issue(key: &Path, out: &Path, extra: &[&str]) -> Output {
    issue_for(key, out, "90", extra)
}

fn show(pubs: &[&Path], order: &Path, extra: &[&str]) -> Output {
    let mut args: Vec<String> = vec!["authority".into(), "show".into()];
    for p in pubs {
        args.push("--authority".into());
        args.push(s(p).into());
    }
    args.extend(extra.iter().map(|e| (*e).to_owned()));
    args.push(s(order).into());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    vouchsafe(&refs)
}

#[test]
fn keygen_issue_show_revoke_and_every_refusal() {
    let d = tempfile::tempdir().unwrap();
    let (key, public) = keygen(d.path(), "authority.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let secret = std::fs::read_to_string(&key).unwrap();
    assert!(secret.starts_with("vouchsafe-authority-key v1\n"));

    // A second keygen onto the same file is refused and changes nothing.
    let again = vouchsafe(&["authority", "keygen", "--out", s(&key)]);
    assert_eq!(again.status.code(), Some(2), "{}", stderr(&again));
    assert!(stderr(&again).contains("refusing to overwrite"));
    assert_eq!(std::fs::read_to_string(&key).unwrap(), secret);

    let order = d.path().join("order.bin");
    let o = issue(&key, &order, &["--components", "chat,channels", "--exclude", "state-security"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Nothing the commands print or write beside the key file holds the secret.
    let secret_hex = secret.lines().nth(1).unwrap();
    assert!(!String::from_utf8_lossy(&o.stdout).contains(secret_hex));

    let at = (NOW + 10).to_string();
    let ok = show(&[&public], &order, &["--at", &at]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    let text = String::from_utf8_lossy(&ok.stdout);
    assert!(text.contains("components channels, chat"), "{text}");
    assert!(text.contains("excluded classes:   state-security"), "{text}");
    assert!(text.contains("status:             active"), "{text}");
    assert!(!text.contains(secret_hex));

    // Not yet valid, expired (the window is half-open: not_after itself is outside).
    let before = show(&[&public], &order, &["--at", &(NOW - 1).to_string()]);
    assert_eq!(before.status.code(), Some(1));
    assert!(stderr(&before).contains("not yet valid"), "{}", stderr(&before));
    let end = show(&[&public], &order, &["--at", &(NOW + 90 * 86_400).to_string()]);
    assert_eq!(end.status.code(), Some(1));
    assert!(stderr(&end).contains("expired"), "{}", stderr(&end));

    // A flipped byte anywhere in the order is refused.
    let bytes = std::fs::read(&order).unwrap();
    for i in [0, 1, 40, bytes.len() / 2, bytes.len() - 1] {
        let mut forged = bytes.clone();
        forged[i] ^= 0x01;
        let f = d.path().join(format!("forged-{i}.bin"));
        std::fs::write(&f, &forged).unwrap();
        let r = show(&[&public], &f, &["--at", &at]);
        assert_eq!(r.status.code(), Some(1), "byte {i}: {}", stderr(&r));
        assert!(!String::from_utf8_lossy(&r.stdout).contains("verified"), "byte {i} was accepted");
    }

    // Another authority's key does not verify it.
    let (_, other_pub) = keygen(d.path(), "other.key");
    let unknown = show(&[&other_pub], &order, &["--at", &at]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(stderr(&unknown).contains("authority"), "{}", stderr(&unknown));

    // Longer than 24 months, both scopes at once, and a bad key are refused before anything is written.
    let long = d.path().join("long.bin");
    let r = issue_for(&key, &long, "732", &[]);
    assert_eq!(r.status.code(), Some(2), "{}", stderr(&r));
    assert!(stderr(&r).contains("24 months"));
    assert!(!long.exists());
    let both = issue(&key, &d.path().join("both.bin"), &["--components", "a", "--groups", "b"]);
    assert_eq!(both.status.code(), Some(2));
    let unknown = d.path().join("unknown-config.bin");
    let r = issue_for(&key, &unknown, "30", &["--hash-config", "9"]);
    assert_eq!(r.status.code(), Some(2), "{}", stderr(&r));
    assert!(stderr(&r).contains("hash configuration 9 is unknown (this build knows 1, 2)"), "{}", stderr(&r));
    assert!(!unknown.exists());
    let bad_centre = d.path().join("bad.bin");
    let mut args: Vec<&str> = Vec::new();
    let nb = NOW.to_string();
    args.extend_from_slice(&["authority", "issue", "--key", s(&key), "--service", "x", "--not-before", &nb]);
    args.extend_from_slice(&["--days", "1", "--threshold", "3", "--centre-key", "zz", "--release-line", "l"]);
    args.extend_from_slice(&["--table-key", TABLE, "--out", s(&bad_centre)]);
    let r = vouchsafe(&args);
    assert_eq!(r.status.code(), Some(2));
    assert!(stderr(&r).contains("--centre-key"), "{}", stderr(&r));
    assert!(!bad_centre.exists());

    // Revocation: effective at once, whatever the time.
    let rev = d.path().join("revocation.bin");
    let r = vouchsafe(&[
        "authority",
        "revoke",
        "--key",
        s(&key),
        "--order",
        s(&order),
        "--reason",
        "annulled",
        "--out",
        s(&rev),
    ]);
    assert!(r.status.success(), "{}", stderr(&r));
    let revoked = show(&[&public], &order, &["--at", &at, "--revocation", s(&rev)]);
    assert_eq!(revoked.status.code(), Some(1));
    assert!(stderr(&revoked).contains("revoked"), "{}", stderr(&revoked));

    // A forged revocation is refused, not ignored.
    let mut rb = std::fs::read(&rev).unwrap();
    let last = rb.len() - 1;
    rb[last] ^= 0x80;
    let forged_rev = d.path().join("forged-rev.bin");
    std::fs::write(&forged_rev, &rb).unwrap();
    let r = show(&[&public], &order, &["--at", &at, "--revocation", s(&forged_rev)]);
    assert_eq!(r.status.code(), Some(1));
    assert!(stderr(&r).contains("revocation"), "{}", stderr(&r));

    // Another authority cannot revoke this order.
    let (other_key, _) = keygen(d.path(), "third.key");
    let r = vouchsafe(&[
        "authority",
        "revoke",
        "--key",
        s(&other_key),
        "--order",
        s(&order),
        "--out",
        s(&d.path().join("x.bin")),
    ]);
    assert_eq!(r.status.code(), Some(2), "{}", stderr(&r));

    // A key file that is not one is refused without echoing it.
    let junk = d.path().join("junk.key");
    std::fs::write(&junk, "vouchsafe-authority-key v1\nnot-hex-secret-value\n").unwrap();
    let r = issue(&junk, &d.path().join("j.bin"), &[]);
    assert_eq!(r.status.code(), Some(2));
    assert!(!stderr(&r).contains("not-hex-secret-value"), "{}", stderr(&r));
}
