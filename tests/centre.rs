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

/// `centre import --images` attests each image's Centre-side variants (docs/HASHING.md §8) under
/// `<file>#<rendering>`, idempotently; `--variants none` attests the images alone; `centre flag` of an image takes its
/// variants along, and the next release leaves them all out.
#[test]
fn image_imports_attest_the_centre_side_variants_and_flags_take_them_along() {
    use vouchsafe_phash::variants::{VariantSet, variant_hashes};
    use vouchsafe_phash::{HashConfig, read_image_file};
    let d = tempfile::tempdir().unwrap();
    let images = d.path().join("images");
    std::fs::create_dir_all(&images).unwrap();
    let cfg = HashConfig::RECOMMENDED;
    let mut expected: Vec<(Vec<u8>, Vec<Vec<u8>>)> = Vec::new();
    for i in 0..3u64 {
        let path = images.join(format!("img-{i}.png"));
        vouchsafe_phash::fixtures::benign_image(70 + i, 640, 480).save(&path).unwrap();
        let img = read_image_file(&path).unwrap();
        let own = vouchsafe_phash::hash_image(&cfg, &img).unwrap();
        let v = variant_hashes(&cfg, &img, &own, VariantSet::Pipelines).unwrap();
        expected
            .push((own.primary.to_canonical_bytes(), v.iter().map(|(_, h)| h.primary.to_canonical_bytes()).collect()));
    }
    let renderings: usize = expected.iter().map(|(_, v)| v.len()).sum();
    assert!(renderings > 0, "a recompressed rendering of some picture hashes differently");

    let import = |db: &Path, extra: &[&str]| {
        let mut args = vec!["centre", "import", "--db", s(db), "--source", "source-a"];
        args.extend_from_slice(extra);
        vouchsafe(&args)
    };
    let db = d.path().join("centre.db");
    let out = ok(&import(&db, &["--images", s(&images)]));
    assert!(out.contains(&format!("variants (pipelines): {renderings} of the entries are renderings")), "{out}");
    let decoded = vouchsafe_release::CentreDb::decode(&std::fs::read(&db).unwrap()).unwrap();
    assert_eq!(decoded.len(), 3 + renderings);
    for (i, (primary, variants)) in expected.iter().enumerate() {
        let rec = decoded.get(primary).unwrap();
        assert_eq!(rec.attestations[0].reference(), format!("img-{i}.png"));
        for v in variants {
            let vrec = decoded.get(v).unwrap();
            let r = vrec.attestations[0].reference().to_owned();
            assert!(r.starts_with(&format!("img-{i}.png#msg-")), "{r}");
            assert_eq!(vrec.secondary, rec.secondary, "a variant carries its image's secondary hash");
        }
    }
    let again = ok(&import(&db, &["--images", s(&images)]));
    assert!(again.contains(&format!("{} unchanged", 3 + renderings)), "importing twice changes nothing: {again}");

    // Without variants: the three images alone.
    let plain = d.path().join("plain.db");
    let out = ok(&import(&plain, &["--images", s(&images), "--variants", "none"]));
    assert!(out.contains("3 new indicators") && out.contains("variants (none): 0"), "{out}");
    // A set that does not exist, and variants of a list (no images to render), are usage errors.
    let o = import(&plain, &["--images", s(&images), "--variants", "all"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(err(&o).contains("--variants \"all\": expected one of none, pipelines, generic"), "{}", err(&o));
    let list = d.path().join("a.txt");
    std::fs::write(&list, entry(1, "a-1")).unwrap();
    let o = import(&plain, &["--list", s(&list), "--variants", "generic"]);
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert!(err(&o).contains("--variants needs --images"), "{}", err(&o));

    // Flagging the image with the most variants flags them too; the release leaves every one of them out.
    let (primary, variants) = expected.iter().max_by_key(|(_, v)| v.len()).unwrap();
    let out =
        ok(&vouchsafe(&["centre", "flag", "--db", s(&db), "--primary", &hex::encode(primary), "--reason", "test"]));
    assert!(
        out.contains(&format!("with its {n} Centre-side variant(s) ({n} newly marked)", n = variants.len())),
        "{out}"
    );
    let decoded = vouchsafe_release::CentreDb::decode(&std::fs::read(&db).unwrap()).unwrap();
    assert!(decoded.is_false_positive(primary));
    assert!(variants.iter().all(|v| decoded.is_false_positive(v)));
    assert_eq!(decoded.false_positives().count(), 1 + variants.len(), "the other images are untouched");
    let key = d.path().join("centre.key");
    ok(&vouchsafe(&["centre", "keygen", "--out", s(&key)]));
    let r1 = ok(&vouchsafe(&[
        "centre",
        "release",
        "--db",
        s(&db),
        "--key",
        s(&key),
        "--line",
        "eu-main",
        "--dir",
        s(&d.path().join("rel")),
        "--min-sources",
        "1",
    ]));
    assert!(r1.contains(&format!("{} added", 3 + renderings - 1 - variants.len())), "{r1}");
    assert!(r1.contains(&format!("left out: {} marked as false positives", 1 + variants.len())), "{r1}");
}
