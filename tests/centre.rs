//! `vouchsafe centre …` with the real binary: two sources, the two-source rule, a chained second release that
//! removes a false positive, and the refusals (a forged release, a foreign key, a broken chain).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // test code: a failure is the test failing

use std::path::Path;
use std::process::{Command, Output};

fn vouchsafe(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vouchsafe")).args(args).output().expect("run vouchsafe")
}

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `n`-th test indicator: distinct 8-byte primary, 32-byte secondary.
fn entry(n: u8, reference: &str) -> String {
    format!("{} {} {reference}\n", hex::encode([n; 8]), hex::encode([n ^ 0xa5; 32]))
}

#[test]
fn two_sources_two_releases_and_refusals() {
    let d = tempfile::tempdir().unwrap();
    let key = d.path().join("centre.key");
    let out = ok(&vouchsafe(&["centre", "keygen", "--out", s(&key)]));
    assert!(out.contains("public key "), "{out}");
    let public = d.path().join("centre.key.pub");

    // Source A attests 1, 2, 3; source B attests 2, 3, 4. Only 2 and 3 have two sources.
    let a = d.path().join("a.txt");
    let b = d.path().join("b.txt");
    std::fs::write(&a, format!("# source A\n{}{}{}", entry(1, "a-1"), entry(2, "a-2"), entry(3, "a-3"))).unwrap();
    std::fs::write(&b, format!("{}{}{}", entry(2, "b-7"), entry(3, "b-8"), entry(4, "b-9"))).unwrap();
    let db = d.path().join("centre.db");
    ok(&vouchsafe(&["centre", "import", "--db", s(&db), "--source", "source-a", "--list", s(&a)]));
    let again = ok(&vouchsafe(&["centre", "import", "--db", s(&db), "--source", "source-a", "--list", s(&a)]));
    assert!(again.contains("3 unchanged"), "importing twice changes nothing: {again}");
    ok(&vouchsafe(&["centre", "import", "--db", s(&db), "--source", "source-b", "--list", s(&b)]));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&db).unwrap().permissions().mode() & 0o777, 0o600);
    }

    let dir = d.path().join("releases");
    let r1 =
        ok(&vouchsafe(&["centre", "release", "--db", s(&db), "--key", s(&key), "--line", "eu-main", "--dir", s(&dir)]));
    assert!(r1.contains("2 added"), "{r1}");
    assert!(r1.contains("2 attested by 1 of 2 sources"), "the single-source indicators are left out and said: {r1}");
    assert!(!r1.contains(&hex::encode([1u8; 8])), "no hash in the report");
    let shown = ok(&vouchsafe(&["centre", "show", "--centre", s(&public), "--line", "eu-main", "--dir", s(&dir)]));
    assert!(shown.contains("1 releases verified") && shown.contains("indicators: 2"), "{shown}");

    // Indicator 3 turns out to be a false positive: release 2 removes it, chained to release 1.
    let fp = d.path().join("fp.txt");
    std::fs::write(&fp, format!("{}\n", hex::encode([3u8; 8]))).unwrap();
    let r2 = ok(&vouchsafe(&[
        "centre",
        "release",
        "--db",
        s(&db),
        "--key",
        s(&key),
        "--line",
        "eu-main",
        "--dir",
        s(&dir),
        "--remove",
        s(&fp),
    ]));
    assert!(r2.contains("#2") && r2.contains("1 removed"), "{r2}");
    let shown = ok(&vouchsafe(&["centre", "show", "--centre", s(&public), "--line", "eu-main", "--dir", s(&dir)]));
    assert!(shown.contains("2 releases verified") && shown.contains("indicators: 1"), "{shown}");
    // With one source enough, release 3 adds 1 and 4 but never the removed false positive again.
    let r3 = ok(&vouchsafe(&[
        "centre",
        "release",
        "--db",
        s(&db),
        "--key",
        s(&key),
        "--line",
        "eu-main",
        "--dir",
        s(&dir),
        "--min-sources",
        "1",
    ]));
    assert!(r3.contains("2 added") && r3.contains("1 marked as false positives"), "{r3}");

    // Another Centre's key does not verify the line.
    let other = d.path().join("other.key");
    ok(&vouchsafe(&["centre", "keygen", "--out", s(&other)]));
    let o = vouchsafe(&[
        "centre",
        "show",
        "--centre",
        s(&d.path().join("other.key.pub")),
        "--line",
        "eu-main",
        "--dir",
        s(&dir),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));

    // A flipped byte in release 2 is refused, and so is everything chained after it.
    let p2 = dir.join("eu-main-000002.bin");
    let mut bytes = std::fs::read(&p2).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&p2, &bytes).unwrap();
    let o = vouchsafe(&["centre", "show", "--centre", s(&public), "--line", "eu-main", "--dir", s(&dir)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(err(&o).contains("eu-main-000002.bin"), "{}", err(&o));
    // Nor can a new release be chained onto a forged history.
    let o = vouchsafe(&["centre", "release", "--db", s(&db), "--key", s(&key), "--line", "eu-main", "--dir", s(&dir)]);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert!(!dir.join("eu-main-000004.bin").exists());

    // A malformed list line is a usage error naming the line, and nothing is imported.
    let bad = d.path().join("bad.txt");
    std::fs::write(&bad, format!("{}zz-not-hex\n", entry(9, "c-1"))).unwrap();
    let before = std::fs::read(&db).unwrap();
    let o = vouchsafe(&["centre", "import", "--db", s(&db), "--source", "source-c", "--list", s(&bad)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(err(&o).contains("line 2"), "{}", err(&o));
    assert_eq!(std::fs::read(&db).unwrap(), before);
    // An uppercase source id would let one source count twice: refused.
    let o = vouchsafe(&["centre", "import", "--db", s(&db), "--source", "Source-A", "--list", s(&a)]);
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
}
