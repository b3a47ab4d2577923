//! Import, admission, signing, verification and chaining.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // test code: a failure is the test failing

mod common;
use common::*;
use vouchsafe_release::{
    Attestation, CentreDb, CentreKey, Error, ImportEntry, Release, ReleaseChain, SignedRelease, SourceId,
};

#[test]
fn one_source_is_not_admitted_at_two_but_is_at_one() {
    let db = db();
    let next = db.next_release("eu", None, 2, 100, &[]).unwrap();
    let added: Vec<_> = next.release.additions().iter().map(|a| a.primary.clone()).collect();
    assert_eq!(added, vec![primary(1), primary(2), primary(3)]);
    // Indicators 4 (one source) and 5 (one source, twice) are left out, and counted, without hashes.
    assert_eq!(next.report.below_min_sources.get(&1), Some(&2));
    assert_eq!(next.report.added, 3);
    let text = next.report.to_string();
    assert!(text.contains("2 attested by 1 of 2 sources"), "{text}");
    assert!(!text.contains(&hex::encode(primary(4))));
    for a in next.release.additions() {
        assert_eq!(a.sources, vec![src("a"), src("b")]);
    }

    let next = db.next_release("eu", None, 1, 100, &[]).unwrap();
    assert_eq!(next.release.additions().len(), 5);
    assert_eq!(next.release.min_sources(), 1);
    assert!(next.report.below_min_sources.is_empty());
}

#[test]
fn the_same_source_twice_counts_once() {
    let db = db();
    let rec = db.get(&primary(5)).unwrap();
    assert_eq!(rec.attestations.len(), 2, "both references are kept as provenance");
    assert_eq!(rec.sources(), vec![src("a")]);
    let next = db.next_release("eu", None, 2, 100, &[]).unwrap();
    assert!(next.release.additions().iter().all(|a| a.primary != primary(5)));
    // A release built by hand with a source listed twice is refused, too.
    let err = Release::new(first_parts(vec![indicator(5, &["a", "a"])])).unwrap_err();
    assert!(matches!(err, Error::Invalid { .. }), "{err:?}");
}

#[test]
fn import_is_idempotent_and_merges_per_primary() {
    let mut db = db();
    let before = db.clone();
    let report = db.import(&src("b"), CONFIG, &[entry(1, "b-1"), entry(2, "b-2"), entry(3, "b-3")]).unwrap();
    assert_eq!((report.new_indicators, report.new_attestations, report.unchanged), (0, 0, 3));
    assert_eq!(db, before);
    let report = db.import(&src("c"), CONFIG, &[entry(4, "c-4"), entry(9, "c-9")]).unwrap();
    assert_eq!((report.new_indicators, report.new_attestations, report.unchanged), (1, 2, 0));
    assert_eq!(db.get(&primary(4)).unwrap().sources(), vec![src("a"), src("c")]);
}

#[test]
fn a_conflicting_secondary_is_refused_without_naming_hashes() {
    let mut db = db();
    let before = db.clone();
    let bad = ImportEntry { primary: primary(1), secondary: secondary(9), reference: "c-1".into() };
    let err = db.import(&src("c"), CONFIG, &[entry(7, "c-7"), bad.clone()]).unwrap_err();
    assert_eq!(err, Error::SecondaryConflict);
    assert_eq!(db, before, "a refused import changes nothing");
    let msg = err.to_string();
    for h in [primary(1), secondary(1), secondary(9)] {
        assert!(!msg.contains(&hex::encode(&h)), "{msg}");
    }
    // Within one list, too.
    let mut fresh = CentreDb::new(CONFIG);
    let err = fresh.import(&src("c"), CONFIG, &[entry(1, "c-1"), bad]).unwrap_err();
    assert_eq!(err, Error::SecondaryConflict);
    assert!(fresh.is_empty());
}

#[test]
fn import_refuses_malformed_input() {
    let mut db = CentreDb::new(CONFIG);
    assert!(db.import(&src("a"), CONFIG + 1, &[entry(1, "x")]).is_err(), "another hash configuration");
    let empty = ImportEntry { primary: vec![], secondary: secondary(1), reference: "x".into() };
    assert!(db.import(&src("a"), CONFIG, &[empty]).is_err());
    let long = ImportEntry { primary: vec![1; 1025], secondary: secondary(1), reference: "x".into() };
    assert!(db.import(&src("a"), CONFIG, &[long]).is_err());
    assert!(db.import(&src("a"), CONFIG, &[entry(1, &"r".repeat(129))]).is_err());
    assert!(db.import(&src("a"), CONFIG, &[entry(1, "")]).is_err());
    assert!(db.import(&src("a"), CONFIG, &[entry(1, &"r".repeat(128))]).is_ok());
    assert!(db.import(&src("a"), CONFIG, &[entry(2, "line\nbreak")]).is_err());
    for bad in ["", "NCMEC", "-a", "a b", &"a".repeat(33)] {
        assert!(SourceId::new(bad).is_err(), "{bad:?}");
    }
    assert!(SourceId::new(&"a".repeat(32)).is_ok());
    assert!(Attestation::new(src("a"), "ok").is_ok());
}

#[test]
fn signed_release_round_trips_and_verifies() {
    let key = key(1);
    let next = db().next_release("eu", None, 2, 100, &[]).unwrap();
    let signed = key.sign(&next.release);
    let bytes = signed.encode();
    let decoded = SignedRelease::decode(&bytes).unwrap();
    assert_eq!(decoded, signed);
    let verified = decoded.verify(&key.public()).unwrap();
    assert_eq!(verified.release(), &next.release);
    assert_eq!(verified.key_id(), key.public().key_id());
    let chain = ReleaseChain::new(&verified).unwrap();
    assert_eq!(chain.len(), 3);
    assert_eq!(chain.secondary(&primary(2)), Some(secondary(2).as_slice()));
    assert_eq!(chain.secondary(&primary(4)), None);
    let key_bytes = CentreKey::from_bytes(&key.public().to_bytes()).unwrap();
    assert_eq!(key_bytes, key.public());
}

#[test]
fn a_flipped_byte_anywhere_is_refused() {
    let key = key(1);
    let release = db().next_release("eu", None, 2, 100, &[]).unwrap().release;
    let bytes = key.sign(&release).encode();
    for i in 0..bytes.len() {
        for bit in [0x01u8, 0x80] {
            let mut b = bytes.clone();
            b[i] ^= bit;
            let outcome = SignedRelease::decode(&b).and_then(|s| s.verify(&key.public()));
            assert!(outcome.is_err(), "byte {i} bit {bit:#x} accepted");
        }
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(matches!(SignedRelease::decode(&longer), Err(Error::TrailingBytes { .. })));
    assert!(SignedRelease::decode(&bytes[..bytes.len() - 1]).is_err());
}

#[test]
fn the_wrong_key_is_refused() {
    let (key, other) = (key(1), key(2));
    let release = db().next_release("eu", None, 2, 100, &[]).unwrap().release;
    let signed = key.sign(&release);
    assert_eq!(signed.verify(&other.public()).unwrap_err(), Error::WrongKey);
    // Claiming the other key's id does not help: the signature is checked with that key.
    let mut bytes = signed.encode();
    bytes[1..17].copy_from_slice(&other.public().key_id());
    let forged = SignedRelease::decode(&bytes).unwrap();
    assert_eq!(forged.verify(&other.public()).unwrap_err(), Error::BadSignature);
    // A release signed by the other key, relabelled with the pinned key's id.
    let mut bytes = other.sign(&release).encode();
    bytes[1..17].copy_from_slice(&key.public().key_id());
    assert_eq!(SignedRelease::decode(&bytes).unwrap().verify(&key.public()).unwrap_err(), Error::BadSignature);
}

#[test]
fn secrets_and_hashes_stay_out_of_debug() {
    let key = key(1);
    let secret = hex::encode(*key.to_bytes());
    let dbg = format!("{key:?}");
    assert!(!dbg.contains(&secret) && dbg.contains("redacted"), "{dbg}");
    let restored = vouchsafe_release::CentreSigningKey::from_bytes(&key.to_bytes());
    assert_eq!(restored.public(), key.public());
    let db = db();
    let next = db.next_release("eu", None, 2, 100, &[]).unwrap();
    let verified = key.sign(&next.release).verify(&key.public()).unwrap();
    let chain = ReleaseChain::new(&verified).unwrap();
    let all = format!(
        "{db:?} {:?} {next:?} {verified:?} {chain:?} {:?}",
        db.get(&primary(1)),
        chain.indicators().collect::<Vec<_>>()
    );
    for i in 1..=5 {
        assert!(!all.contains(&hex::encode(primary(i))) && !all.contains(&hex::encode(secondary(i))), "{all}");
    }
    assert!(!all.contains("a-1"), "source references stay out: {all}");
}

#[test]
fn a_line_of_releases_with_a_false_positive() {
    let key = key(1);
    let mut db = db();
    let r1 = key.sign(&db.next_release("eu", None, 2, 100, &[]).unwrap().release).verify(&key.public()).unwrap();
    let mut chain = ReleaseChain::new(&r1).unwrap();

    // Nothing new: an empty release is still a release.
    let plan = db.next_release("eu", Some(&chain), 2, 200, &[]).unwrap();
    assert_eq!((plan.report.added, plan.report.already_released), (0, 3));
    assert!(plan.release.additions().is_empty());

    // A second source for 4; indicator 2 is found to be a false positive.
    db.import(&src("c"), CONFIG, &[entry(4, "c-4")]).unwrap();
    assert_eq!(
        db.next_release("eu", Some(&chain), 2, 200, &[primary(2)]).unwrap_err(),
        Error::Removal { reason: "the indicator is not marked as a false positive" }
    );
    assert!(db.mark_false_positive(&primary(2)).unwrap());
    let plan = db.next_release("eu", Some(&chain), 2, 200, &[primary(2)]).unwrap();
    assert_eq!(plan.release.number(), 2);
    assert_eq!(plan.release.parent(), Some(&r1.hash()));
    assert_eq!(plan.release.removals(), &[primary(2)]);
    assert_eq!(plan.release.additions().iter().map(|a| a.primary.clone()).collect::<Vec<_>>(), vec![primary(4)]);
    assert_eq!(plan.release.total(), 3);
    assert_eq!((plan.report.added, plan.report.removed, plan.report.false_positives), (1, 1, 1));
    let r2 = key.sign(&plan.release).verify(&key.public()).unwrap();
    chain.apply(&r2).unwrap();
    assert_eq!(chain.number(), 2);
    assert_eq!(chain.head(), r2.hash());
    assert!(!chain.contains(&primary(2)) && chain.contains(&primary(4)));
    assert_eq!(
        chain.indicators().map(|i| i.primary.to_vec()).collect::<Vec<_>>(),
        vec![primary(1), primary(3), primary(4)]
    );

    // The false positive is not added back, and cannot be removed twice.
    let plan = db.next_release("eu", Some(&chain), 2, 300, &[]).unwrap();
    assert!(plan.release.additions().is_empty());
    assert!(db.next_release("eu", Some(&chain), 2, 300, &[primary(2)]).is_err());
    // The plan refuses another line and a clock that went back.
    assert!(db.next_release("us", Some(&chain), 2, 300, &[]).is_err());
    assert!(db.next_release("eu", Some(&chain), 2, 199, &[]).is_err());
    assert!(db.next_release("eu", Some(&chain), 0, 300, &[]).is_err());
}

#[test]
fn removal_of_an_unknown_indicator_is_refused() {
    let key = key(1);
    let mut db = db();
    let r1 = signed(&key, first_parts(vec![indicator(1, &["a", "b"])]));
    let mut chain = ReleaseChain::new(&r1).unwrap();
    db.mark_false_positive(&primary(2)).unwrap();
    // Planned: 2 is a false positive but was never released on this line.
    assert_eq!(
        db.next_release("eu", Some(&chain), 2, chain.created_at(), &[primary(2)]).unwrap_err(),
        Error::Removal { reason: "the indicator is not in the line's set" }
    );
    assert!(db.next_release("eu", None, 2, 200, &[primary(1)]).is_err(), "nothing to remove from a new line");
    // Signed anyway: the chain refuses it and stays unchanged.
    let mut parts = next_parts(&chain, vec![], vec![]);
    parts.removals = vec![primary(2)];
    let bad = signed(&key, parts);
    let before = chain.clone();
    assert!(matches!(chain.apply(&bad), Err(Error::Removal { .. })));
    assert_eq!(chain, before);
}

#[test]
fn chain_refusals() {
    let key = key(1);
    let r1 = signed(&key, first_parts(vec![indicator(1, &["a", "b"]), indicator(2, &["a", "b"])]));
    let chain = ReleaseChain::new(&r1).unwrap();
    let good = next_parts(&chain, vec![indicator(3, &["a", "b"])], vec![]);
    let refused = |parts: vouchsafe_release::ReleaseParts| {
        let mut c = chain.clone();
        let err = c.apply(&signed(&key, parts)).unwrap_err();
        assert_eq!(c, chain, "a refused release changes nothing");
        err
    };
    // A gap.
    let mut p = good.clone();
    p.number = 3;
    assert!(matches!(refused(p), Error::Chain { .. }));
    // A replay of number 1 / a wrong parent.
    let mut p = good.clone();
    p.parent = Some([0u8; 32]);
    assert!(matches!(refused(p), Error::Chain { .. }));
    // Another line.
    let mut p = good.clone();
    p.line = "us".into();
    assert!(matches!(refused(p), Error::Chain { .. }));
    // Another hash configuration.
    let mut p = good.clone();
    p.hash_config = CONFIG + 1;
    assert!(matches!(refused(p), Error::Chain { .. }));
    // An addition already in the set.
    let p = next_parts(&chain, vec![indicator(2, &["a", "b"])], vec![]);
    assert!(matches!(refused(p), Error::Chain { .. }));
    // A wrong total.
    let mut p = good.clone();
    p.total += 1;
    assert!(matches!(refused(p), Error::Chain { .. }));
    // Older than its parent.
    let mut p = good.clone();
    p.created_at = chain.created_at() - 1;
    assert!(matches!(refused(p), Error::Chain { .. }));
    // A chain cannot start in the middle.
    let mut c = chain.clone();
    let r2 = signed(&key, good);
    assert!(ReleaseChain::new(&r2).is_err());
    c.apply(&r2).unwrap();
    // Nor can the same release be applied twice.
    assert!(c.apply(&r2).is_err());
}

#[test]
fn release_rules_are_checked_when_built() {
    // An addition below its own min_sources.
    assert!(Release::new(first_parts(vec![indicator(1, &["a"])])).is_err());
    let mut p = first_parts(vec![indicator(1, &["a"])]);
    p.min_sources = 1;
    assert!(Release::new(p).is_ok());
    let mut p = first_parts(vec![]);
    p.min_sources = 0;
    assert!(Release::new(p).is_err());
    // Duplicate additions.
    assert!(Release::new(first_parts(vec![indicator(1, &["a", "b"]), indicator(1, &["a", "b"])])).is_err());
    // Parent exactly for numbers above 1.
    let mut p = first_parts(vec![]);
    p.parent = Some([1; 32]);
    assert!(Release::new(p).is_err());
    let mut p = first_parts(vec![]);
    p.number = 2;
    assert!(Release::new(p).is_err());
    // Removals in the first release, or a total that does not add up.
    let mut p = first_parts(vec![]);
    p.removals = vec![primary(1)];
    assert!(Release::new(p).is_err());
    let mut p = first_parts(vec![indicator(1, &["a", "b"])]);
    p.total = 2;
    assert!(Release::new(p).is_err());
    // Added and removed at once.
    let mut p = first_parts(vec![indicator(1, &["a", "b"])]);
    (p.number, p.parent, p.removals) = (2, Some([1; 32]), vec![primary(1)]);
    assert!(Release::new(p).is_err());
    // Bad line names.
    for line in ["", "EU", &"l".repeat(65)] {
        let mut p = first_parts(vec![]);
        p.line = line.into();
        assert!(Release::new(p).is_err(), "{line:?}");
    }
    // Unsorted input is sorted, not refused.
    let r = Release::new(first_parts(vec![indicator(3, &["b", "a"]), indicator(1, &["a", "b"])])).unwrap();
    assert_eq!(r.additions()[0].primary, primary(1));
    assert_eq!(r.additions()[1].sources, vec![src("a"), src("b")]);
    assert_eq!(Release::decode(&r.encode()).unwrap(), r);
}

#[test]
fn the_database_round_trips_through_its_storage_encoding() {
    let mut db = db();
    db.mark_false_positive(&primary(3)).unwrap();
    let bytes = db.encode();
    let back = CentreDb::decode(&bytes).unwrap();
    assert_eq!(back, db);
    assert_eq!(back.encode(), bytes);
    assert!(back.is_false_positive(&primary(3)));
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(matches!(CentreDb::decode(&longer), Err(Error::TrailingBytes { .. })));
    for cut in 0..bytes.len() {
        assert!(CentreDb::decode(&bytes[..cut]).is_err(), "truncated at {cut}");
    }
    for i in 0..bytes.len() {
        let mut b = bytes.clone();
        b[i] ^= 0x80;
        if let Ok(d) = CentreDb::decode(&b) {
            assert_eq!(d.encode(), b, "byte {i}: a decoded database is canonical");
        }
    }
}
