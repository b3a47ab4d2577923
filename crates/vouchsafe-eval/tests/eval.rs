//! The evaluation end to end on a small corpus written here: loading rules, the measurement's counts, the outputs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::path::Path;

use image::{RgbImage, Rgba, RgbaImage};
use vouchsafe_eval::corpus::{self, CorpusLimits};
use vouchsafe_eval::edits::{EDITS, Family};
use vouchsafe_eval::measure::measure;
use vouchsafe_eval::report::{REPORT_VERSION, Report, to_html, to_json, to_text};
use vouchsafe_eval::scheme::by_name;
use vouchsafe_phash::fixtures::benign_image;

const PICTURES: u64 = 10;

fn save(root: &Path, rel: &str, img: &RgbImage) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    img.save(&p).unwrap();
}

/// Ten pictures in two "packages", one of them also at a second size (a duplicate), one large enough to tile, plus
/// an excluded directory, an icon and a logo with transparency.
fn write_corpus(root: &Path) {
    for s in 0..PICTURES {
        let pkg = if s % 2 == 0 { "pkg-a" } else { "pkg-b" };
        save(root, &format!("{pkg}/usr/share/backgrounds/p{s:02}.png"), &benign_image(s, 400, 300));
    }
    // The same picture as p03 at another resolution: merged, the larger kept.
    save(
        root,
        "pkg-b/usr/share/backgrounds/p03-large.jpg",
        &image::imageops::resize(&benign_image(3, 400, 300), 800, 600, image::imageops::FilterType::Lanczos3),
    );
    // Large enough for 2 × 2 tiles of 512.
    save(root, "pkg-a/usr/share/backgrounds/big.png", &benign_image(99, 1100, 1050));
    // Kept for the independent check: never read.
    save(root, "gnome-backgrounds/usr/share/backgrounds/gnome/g.png", &benign_image(50, 400, 300));
    // Too small.
    save(root, "pkg-a/usr/share/icons/i.png", &benign_image(51, 64, 64));
    // A cut-out.
    let mut logo = RgbaImage::from_pixel(300, 300, Rgba([0, 0, 0, 0]));
    for y in 100..200 {
        for x in 100..200 {
            logo.put_pixel(x, y, Rgba([200, 30, 60, 255]));
        }
    }
    let p = root.join("pkg-b/usr/share/logo.png");
    logo.save(&p).unwrap();
}

#[test]
fn the_corpus_loader_applies_its_rules() {
    let dir = tempfile::tempdir().unwrap();
    write_corpus(dir.path());
    let c = corpus::load(dir.path(), CorpusLimits::default(), &|_, _| {}).unwrap();
    let s = &c.summary;
    assert_eq!(s.excluded, 1, "{s:?}");
    assert_eq!(s.too_small, 1, "{s:?}");
    assert_eq!(s.cutouts, 1, "{s:?}");
    assert_eq!(s.duplicates, 1, "{s:?}");
    assert_eq!(s.pictures, PICTURES as usize + 1);
    assert_eq!(s.tiles, 4);
    assert_eq!(c.originals.len(), PICTURES as usize + 1 + 4);
    // The larger copy of p03 was kept; the tiles name their picture.
    assert!(c.originals.iter().any(|o| o.name.ends_with("p03-large.jpg") && o.image.width() == 800));
    assert!(!c.originals.iter().any(|o| o.name.ends_with("p03.png")));
    assert!(
        c.originals
            .iter()
            .filter(|o| o.tile)
            .all(|o| o.name.contains("big.png#tile-") && o.image.dimensions() == (512, 512))
    );
    // Deterministic.
    let again = corpus::load(dir.path(), CorpusLimits::default(), &|_, _| {}).unwrap();
    assert_eq!(corpus::digest(&c), corpus::digest(&again));
    let fewer =
        corpus::load(dir.path(), CorpusLimits { max_pictures: Some(3), max_tiles_per_picture: 1 }, &|_, _| {}).unwrap();
    // The first three pictures in path order; big.png (pkg-a/…/big.png sorts first) gives its one tile.
    assert_eq!(fewer.originals.len(), 4);
    assert_eq!(fewer.originals.iter().filter(|o| o.tile).count(), 1);
    assert!(matches!(
        corpus::load(&dir.path().join("missing"), CorpusLimits::default(), &|_, _| {}),
        Err(vouchsafe_eval::EvalError::NoCorpus(_))
    ));
}

#[test]
fn the_measurement_counts_every_pair_and_every_edit() {
    let dir = tempfile::tempdir().unwrap();
    write_corpus(dir.path());
    let c = corpus::load(dir.path(), CorpusLimits::default(), &|_, _| {}).unwrap();
    let v1 = by_name("v1").unwrap();
    assert!(by_name("v9").is_err());
    let edits: Vec<_> =
        EDITS.iter().filter(|e| matches!(e.name, "png" | "jpeg-q90" | "mirror" | "crop-5")).copied().collect();
    let calls = std::sync::atomic::AtomicUsize::new(0);
    let r = measure(v1.as_ref(), &c, &edits, &|_, _| {
        calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    })
    .unwrap();
    let n = c.originals.len();
    assert_eq!(calls.into_inner(), n * (edits.len() + 2));
    let a = r.accepted as usize;
    assert_eq!(r.originals as usize, n);
    assert_eq!(a + r.rejected.iter().map(|x| x.originals as usize).sum::<usize>(), n);
    // Pairs: all pairs of accepted originals except big.png with each of its own tiles.
    let whole_big_accepted = a == n;
    let expected_pairs = a * (a - 1) / 2 - if whole_big_accepted { 4 } else { 0 };
    assert_eq!(r.unrelated.pairs as usize, expected_pairs);
    assert_eq!(r.unrelated.hist.len(), 65);
    for e in &r.edits {
        assert_eq!(e.trials as usize, a, "{}", e.name);
        assert_eq!(e.distance_hist.iter().sum::<u64>() + e.gate_rejected, e.trials);
        assert!(e.within.windows(2).all(|w| w[0] <= w[1]), "recall grows with the radius");
        assert!(e.confirmed <= e.within[0], "the secondary check only drops matches: {}", e.name);
    }
    let png = &r.edits[0];
    assert_eq!(png.name, "png");
    assert_eq!(png.recall(), 1.0, "a lossless re-encode always matches");
    assert_eq!(png.confirmed_recall(), 1.0, "and its secondary hash is the original's");
    assert_eq!(png.meets_target(), Some(true));
    let mirror = r.edits.iter().find(|e| e.family == Family::KnownMiss).unwrap();
    assert!(mirror.recall() < 0.5, "a mirror is a known miss: {}", mirror.recall());
    // Each accepted edit is compared with every other unrelated accepted original.
    let accepted_edits: u64 = r.edits.iter().map(|e| e.trials - e.gate_rejected).sum();
    assert!(r.edit_vs_other.pairs <= accepted_edits * (a as u64 - 1));
    assert!(r.edit_vs_other.pairs >= accepted_edits * (a as u64 - 5));
    assert!(r.unrelated.listed.iter().all(|l| l.distance <= 2));

    // Deterministic: a second run gives the same figures (everything but the time taken).
    let again = measure(v1.as_ref(), &c, &edits, &|_, _| {}).unwrap();
    let strip = |r: &vouchsafe_eval::measure::SchemeResult| {
        let mut v = serde_json::to_value(r).unwrap();
        v.as_object_mut().unwrap().remove("seconds");
        v
    };
    assert_eq!(strip(&r), strip(&again));
    assert_eq!(r.table_entries, 1.0, "without variants an indicator is one table entry");

    // Centre-side variants: the dihedral set finds every mirrored copy the gate accepts, the table grows, and the
    // extrapolated false matches grow with it (same primary distances, more comparisons).
    let dihedral = by_name("v1+var-dihedral").unwrap();
    let rv = measure(dihedral.as_ref(), &c, &edits, &|_, _| {}).unwrap();
    let mirror_v = rv.edits.iter().find(|e| e.name == "mirror").unwrap();
    assert_eq!(mirror_v.within[0] + mirror_v.gate_rejected, mirror_v.trials);
    assert!(mirror_v.within[0] > 0);
    assert!(rv.table_entries > 1.0 && rv.table_entries <= 8.0, "{}", rv.table_entries);
    assert_eq!(rv.unrelated.pairs, r.unrelated.pairs);
    assert_eq!(rv.unrelated.hist, r.unrelated.hist);
    assert!(rv.unrelated.exact >= r.unrelated.exact);
    if let (Some(f), Some(g)) = (&r.unrelated.fit, &rv.unrelated.fit) {
        assert!((g.false_matches_per_day / f.false_matches_per_day - rv.table_entries).abs() < 1e-9);
    }

    let report = Report {
        version: REPORT_VERSION,
        corpus_digest: corpus::digest(&c),
        corpus: c.summary.clone(),
        schemes: vec![r],
    };
    let json: serde_json::Value = serde_json::from_str(&to_json(&report).unwrap()).unwrap();
    assert_eq!(json["schemes"][0]["scheme"]["name"], "v1");
    assert_eq!(json["schemes"][0]["edits"].as_array().unwrap().len(), edits.len());
    let html = to_html(&report);
    assert!(html.starts_with("<!doctype html>") && html.matches("<svg").count() == 2, "two charts per configuration");
    let text = to_text(&report);
    assert!(text.contains("png") && text.contains("unrelated originals"));
}

#[test]
fn v1_info_says_what_it_costs() {
    let i = by_name("V1").unwrap().info();
    assert_eq!((i.bits, i.probes, i.variants), (64, 1, 1));
}

#[test]
fn the_probe_ranking_reads_the_coefficients_of_v1s_own_bits() {
    // Bits recomputed from the f64 coefficients (coefficient >= median) must be V1's bits, in V1's order; a wrong
    // bit order or transform would agree on about half of them.
    use vouchsafe_eval::scheme::{Probed, Scheme, Shipped, v1_coefficients};
    let (mut same, mut total) = (0u32, 0u32);
    for seed in 0..40 {
        let img = benign_image(seed, 320, 240);
        let v1 = Shipped(vouchsafe_phash::HashConfig::V1).hash(&img).unwrap();
        let c = v1_coefficients(&img).unwrap();
        let mut sorted = c.clone();
        sorted.sort_by(f64::total_cmp);
        let median = (sorted[31] + sorted[32]) / 2.0;
        for (i, &v) in c.iter().enumerate() {
            let bit = v1.primary[i / 8] >> (i % 8) & 1 == 1;
            same += u32::from(bit == (v >= median));
            total += 1;
        }
        // The probes: 2^k distinct hashes, the first the V1 hash, each within k bits of it.
        let p = Probed { k: 4 }.hash(&img).unwrap();
        assert_eq!(p.probes.len(), 16);
        assert_eq!(p.probes[0], v1.primary);
        let distinct: std::collections::BTreeSet<_> = p.probes.iter().collect();
        assert_eq!(distinct.len(), 16);
        assert!(p.probes.iter().all(|q| vouchsafe_eval::scheme::distance(q, &v1.primary) <= 4));
    }
    assert!(f64::from(same) / f64::from(total) > 0.99, "{same} of {total} bits agree");
}

#[test]
fn area_block_is_v2_and_its_probes_keep_the_weight() {
    use vouchsafe_eval::scheme::{Scheme, Shipped, by_name, distance};
    let probe3 = by_name("area-block-probe3").unwrap();
    assert_eq!(probe3.info().probes, 20);
    for seed in 0..20 {
        let img = benign_image(seed, 320, 240);
        let v2 = Shipped(vouchsafe_phash::HashConfig::V2).hash(&img).unwrap();
        // `area-block` is what V2 ships: the same primary bits and the same gate verdict.
        let plain = by_name("area-block").unwrap().hash(&img).unwrap();
        assert_eq!(plain.primary, v2.primary, "seed {seed}");
        assert_eq!(plain.rejected, v2.rejected, "seed {seed}");
        // C(6, 3) = 20 swap probes: distinct, the hash itself first, each an even distance of at most 6 away with
        // the hash's weight.
        let p = probe3.hash(&img).unwrap();
        assert_eq!(p.probes.len(), 20, "seed {seed}");
        assert_eq!(p.probes[0], v2.primary);
        let distinct: std::collections::BTreeSet<_> = p.probes.iter().collect();
        assert_eq!(distinct.len(), 20, "seed {seed}");
        let weight = |h: &[u8]| h.iter().map(|b| b.count_ones()).sum::<u32>();
        for q in &p.probes {
            let d = distance(q, &v2.primary);
            assert!(d.is_multiple_of(2) && d <= 6, "seed {seed}: distance {d}");
            assert_eq!(weight(q), weight(&v2.primary));
        }
    }
}

/// V2's gate and secondary hash, but one primary hash for every image: every edit "matches" exactly, so only the
/// secondary check tells a copy from a different picture.
struct ConstantPrimary;

impl vouchsafe_eval::scheme::Scheme for ConstantPrimary {
    fn info(&self) -> vouchsafe_eval::scheme::SchemeInfo {
        let mut i = by_name("v2").unwrap().info();
        i.name = "constant-primary".into();
        i
    }
    fn hash(&self, img: &RgbImage) -> Result<vouchsafe_eval::scheme::Hashed, vouchsafe_eval::EvalError> {
        let mut h = by_name("v2").unwrap().hash(img)?;
        h.primary = vec![0xa5; 8];
        h.probes = vec![h.primary.clone()];
        Ok(h)
    }
}

#[test]
fn the_secondary_check_drops_what_is_not_a_copy() {
    let dir = tempfile::tempdir().unwrap();
    write_corpus(dir.path());
    let c = corpus::load(dir.path(), CorpusLimits::default(), &|_, _| {}).unwrap();
    let edits: Vec<_> = EDITS.iter().filter(|e| matches!(e.name, "png" | "jpeg-q90" | "rotate-90")).copied().collect();
    let r = measure(&ConstantPrimary, &c, &edits, &|_, _| {}).unwrap();
    let by = |n: &str| r.edits.iter().find(|e| e.name == n).unwrap();
    for e in &r.edits {
        assert_eq!(e.within[0] + e.gate_rejected, e.trials, "{}: every accepted edit matches the constant", e.name);
    }
    // A re-encoded copy keeps its secondary hash near the original's; a quarter turn does not.
    assert_eq!(by("png").confirmed, by("png").within[0]);
    assert_eq!(by("jpeg-q90").confirmed, by("jpeg-q90").within[0]);
    assert!(by("rotate-90").confirmed < by("rotate-90").within[0], "{:?}", by("rotate-90"));
    // Every unrelated pair is an exact false match of the primary hash (the check after the threshold is what
    // stops them, which the false-match counts here do not credit).
    assert_eq!(r.unrelated.exact, r.unrelated.pairs);
}
