//! Matching images open, non-matching ones do not, across thousands of random sets; wrong keys open nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // test code: a failure is the test failing

mod common;
use common::*;
use rand_core::Rng;
use vouchsafe_protocol::client::VoucherKind;
use vouchsafe_protocol::table::{BlindingKey, ServerTable};
use vouchsafe_protocol::voucher::{OpenOutcome, Opener, VoucherLayout};

#[test]
fn matches_open_and_non_matches_do_not_over_thousands_of_sets() {
    let mut rng = rng(1);
    let cfg = config(3, 0, 0);
    let mut opened = 0;
    let mut non = 0;
    for set in 0..1500u64 {
        let n = 1 + (set as usize % 12);
        let items = random_items(n, &mut rng);
        let (_table, opener, client) = setup(&cfg, items.clone(), &mut rng);
        let mut session = session(&client, &mut rng);
        // One matching and one non-matching image per set.
        let hit = &items[(rng.next_u32() as usize) % n];
        let miss = random_items(1, &mut rng).pop().unwrap();
        let v = session.voucher(&client, hit, b"ad", &mut rng).unwrap();
        assert_eq!(v.kind, VoucherKind::Real);
        match opener.open_bytes(&v.voucher.encode()) {
            OpenOutcome::Opened(o) => {
                assert_eq!(o.id(), &v.voucher.id);
                opened += 1
            }
            other => panic!("set {set}: matching voucher did not open: {other:?}"),
        }
        let v = session.voucher(&client, &miss, b"ad", &mut rng).unwrap();
        match opener.open_bytes(&v.voucher.encode()) {
            OpenOutcome::NonMatch => non += 1,
            other => panic!("set {set}: non-matching voucher classified {other:?}"),
        }
    }
    assert_eq!((opened, non), (1500, 1500));
}

#[test]
fn every_indicator_of_a_larger_table_opens() {
    let mut rng = rng(2);
    let cfg = config(2, 0, 0);
    let items = random_items(3000, &mut rng);
    let (table, opener, client) = setup(&cfg, items.clone(), &mut rng);
    assert_eq!(table.indicator_count(), 3000);
    assert!(client.slots().len() * 10 >= 11 * 3000, "m >= 1.1 n");
    let mut session = session(&client, &mut rng);
    for y in items.iter().step_by(7) {
        let v = session.voucher(&client, y, b"", &mut rng).unwrap();
        assert!(matches!(opener.open_bytes(&v.voucher.encode()), OpenOutcome::Opened(_)));
    }
    for y in random_items(200, &mut rng) {
        let v = session.voucher(&client, &y, b"", &mut rng).unwrap();
        assert!(matches!(opener.open_bytes(&v.voucher.encode()), OpenOutcome::NonMatch));
    }
}

#[test]
fn a_wrong_alpha_opens_nothing() {
    let mut rng = rng(3);
    let cfg = config(2, 4, u32::MAX / 2);
    let items = random_items(50, &mut rng);
    let (table, _opener, client) = setup(&cfg, items.clone(), &mut rng);
    // A server holding another α (the same public parameters cannot be forged, so bypass L by building a twin
    // table with a different key over the same items and using its opener on our vouchers).
    let other = ServerTable::build(&cfg, BlindingKey::random(&mut rng), items.clone(), &mut rng).unwrap();
    let mut params = other.params().clone();
    params.nonce = table.params().nonce;
    params.slot_count = table.params().slot_count;
    let wrong = Opener::new(other.key().clone(), params).unwrap();
    let mut session = session(&client, &mut rng);
    for y in &items {
        let v = session.voucher(&client, y, b"", &mut rng).unwrap();
        let outcome = wrong.open_bytes(&v.voucher.encode());
        assert!(!matches!(outcome, OpenOutcome::Opened(_)), "wrong key opened a {:?} voucher", v.kind);
    }
}

#[test]
fn all_voucher_kinds_have_the_same_length() {
    let mut rng = rng(4);
    let cfg = config(3, 2, u32::MAX / 2);
    let items = random_items(20, &mut rng);
    let (_t, _o, client) = setup(&cfg, items.clone(), &mut rng);
    let mut session = session(&client, &mut rng);
    let expected = VoucherLayout::of(client.params()).voucher_len();
    let mut kinds = std::collections::HashSet::new();
    for y in items.iter().chain(items.iter()) {
        let v = session.voucher(&client, y, b"some ad", &mut rng).unwrap();
        kinds.insert(format!("{:?}", v.kind));
        assert_eq!(v.voucher.encode().len(), expected);
    }
    let v = session.null_voucher(&client, &mut rng).unwrap();
    assert_eq!(v.voucher.encode().len(), expected);
    assert_eq!(kinds.len(), 3, "expected real, synthetic and null vouchers, got {kinds:?}");
}

#[test]
fn synthetic_vouchers_open_and_respect_the_cap() {
    let mut rng = rng(5);
    let cfg = config(3, 5, u32::MAX); // p ≈ 1: every new image is synthetic until the cap
    let items = random_items(5, &mut rng);
    let (_t, opener, client) = setup(&cfg, items, &mut rng);
    let mut session = session(&client, &mut rng);
    let mut synthetic = 0;
    for y in random_items(20, &mut rng) {
        let v = session.voucher(&client, &y, b"", &mut rng).unwrap();
        if v.kind == VoucherKind::Synthetic {
            synthetic += 1;
            assert!(matches!(opener.open_bytes(&v.voucher.encode()), OpenOutcome::Opened(_)));
        } else {
            assert!(matches!(opener.open_bytes(&v.voucher.encode()), OpenOutcome::NonMatch));
        }
    }
    assert_eq!(synthetic, 5);
    assert_eq!(session.state().synthetics_made(), 5);
}

#[test]
fn vouchers_for_another_epoch_or_order_do_not_decode_or_open() {
    let mut rng = rng(6);
    let cfg = config(2, 0, 0);
    let items = random_items(10, &mut rng);
    let (_t, _opener, client) = setup(&cfg, items.clone(), &mut rng);
    let mut cfg2 = cfg.clone();
    cfg2.epoch = 8;
    let (_t2, opener2, _c2) = setup(&cfg2, items.clone(), &mut rng);
    let mut session = session(&client, &mut rng);
    let v = session.voucher(&client, &items[0], b"", &mut rng).unwrap();
    assert!(matches!(opener2.open_bytes(&v.voucher.encode()), OpenOutcome::Invalid(_)));
}

#[test]
fn batch_opening_gives_the_same_outcomes_as_one_by_one() {
    let mut rng = rng(9);
    let cfg = config(3, 3, u32::MAX / 4);
    let items = random_items(40, &mut rng);
    let (_t, opener, client) = setup(&cfg, items.clone(), &mut rng);
    let mut session = session(&client, &mut rng);
    let mut encoded: Vec<Vec<u8>> = Vec::new();
    for (i, y) in items.iter().chain(random_items(40, &mut rng).iter()).enumerate() {
        encoded.push(session.voucher(&client, y, b"ad", &mut rng).unwrap().voucher.encode());
        if i % 13 == 0 {
            encoded.push(vec![1u8; 10]); // malformed, in the middle of the batch
        }
    }
    let batch = opener.open_bytes_batch(&encoded);
    assert_eq!(batch.len(), encoded.len());
    let describe = |o: &OpenOutcome| match o {
        OpenOutcome::NonMatch => "non-match".to_string(),
        OpenOutcome::Opened(v) => format!("opened {:?}", v.encode().to_vec()),
        OpenOutcome::Invalid(r) => format!("invalid {r:?}"),
    };
    let mut opened = 0;
    for (b, bytes) in batch.iter().zip(&encoded) {
        assert_eq!(describe(b), describe(&opener.open_bytes(bytes)));
        opened += matches!(b, OpenOutcome::Opened(_)) as usize;
    }
    assert!(opened >= 40, "all matches (and synthetics) open in the batch path");
}

#[test]
fn a_point_cached_table_makes_vouchers_that_open_identically() {
    let mut rng = rng(10);
    let cfg = config(2, 0, 0);
    let items = random_items(30, &mut rng);
    let (table, opener, client) = setup(&cfg, items.clone(), &mut rng);
    let cached =
        vouchsafe_protocol::table::ClientTable::new_with_point_cache(table.manifest(), table.slots().to_vec()).unwrap();
    assert!(cached.has_point_cache() && !client.has_point_cache());
    let mut session = session(&cached, &mut rng);
    for y in &items {
        let v = session.voucher(&cached, y, b"", &mut rng).unwrap();
        assert!(matches!(opener.open_bytes(&v.voucher.encode()), OpenOutcome::Opened(_)));
    }
    for y in random_items(30, &mut rng) {
        let v = session.voucher(&cached, &y, b"", &mut rng).unwrap();
        assert!(matches!(opener.open_bytes(&v.voucher.encode()), OpenOutcome::NonMatch));
    }
    // The cache is kept across updates, and an invalid table is still refused.
    let mut slots = table.slots().to_vec();
    slots[3] = [0u8; 32];
    assert!(vouchsafe_protocol::table::ClientTable::new_with_point_cache(table.manifest(), slots).is_err());
}

#[test]
fn incremental_updates_change_few_slots_and_keep_every_indicator_matching() {
    let mut rng = rng(11);
    let cfg = config(2, 0, 0);
    let items = random_items(2000, &mut rng);
    let (mut table, _opener, client) = setup(&cfg, items.clone(), &mut rng);
    let added = random_items(40, &mut rng);
    let removed: Vec<Vec<u8>> = items[..10].to_vec();
    let update = table
        .update_with_cover(added.clone(), &removed, vouchsafe_protocol::table::UpdateCover::NONE, &mut rng)
        .unwrap();
    // Shortest eviction paths: a handful of slots per change, not a random walk's dozens.
    assert!(update.changes.len() <= 10 * 50, "{} slots changed for 50 changes", update.changes.len());
    let encoded = update.encode();
    assert!(encoded.len() <= 40 * update.changes.len() + 29);
    let decoded = vouchsafe_protocol::table::TableUpdate::decode(&encoded).unwrap();
    let client = client.apply_update(&decoded, table.manifest()).unwrap();
    assert_eq!(client.root(), table.manifest().root());
    let opener = Opener::new(table.key().clone(), table.params().clone()).unwrap();
    let mut session = session(&client, &mut rng);
    for y in added.iter().chain(items[10..].iter().step_by(50)) {
        let v = session.voucher(&client, y, b"", &mut rng).unwrap();
        assert!(
            matches!(opener.open_bytes(&v.voucher.encode()), OpenOutcome::Opened(_)),
            "a present indicator did not open"
        );
    }
    for y in &removed {
        assert!(!table.contains(y));
        let v = session.voucher(&client, y, b"", &mut rng).unwrap();
        assert!(
            matches!(opener.open_bytes(&v.voucher.encode()), OpenOutcome::NonMatch),
            "a removed indicator still opened"
        );
    }
    // The server table survives its own encoding after the update.
    let again = ServerTable::from_secret_bytes(&table.to_secret_bytes()).unwrap();
    assert_eq!(again.manifest().root(), table.manifest().root());
}

/// An update with cover changes at least the cover's share of the slots, only through empty slots (every indicator
/// still opens, the removed ones do not), and its likelihood-ratio bound is what docs/LEAKAGE.md §1 states.
#[test]
fn covered_updates_pad_with_empty_slots_and_keep_every_indicator_matching() {
    use vouchsafe_protocol::table::UpdateCover;
    let mut rng = rng(12);
    let cfg = config(2, 0, 0);
    let items = random_items(3000, &mut rng);
    let (mut table, _opener, client) = setup(&cfg, items.clone(), &mut rng);
    let m = table.params().slot_count;
    let before = table.slots().to_vec();
    let added = random_items(3, &mut rng);
    let removed: Vec<Vec<u8>> = items[..2].to_vec();
    let cover = UpdateCover::DEFAULT;
    let update = table.update(added.clone(), &removed, &mut rng).unwrap();
    assert!(update.changes.len() >= cover.slots(m) as usize, "{} < {}", update.changes.len(), cover.slots(m));
    assert!(update.changes.windows(2).all(|w| w[0].0 < w[1].0), "changes ascending and unique");
    assert!(update.changes.iter().all(|(s, p)| before[*s as usize] != *p), "every listed slot changed");
    let client = client.apply_update(&update, table.manifest()).unwrap();
    assert_eq!(client.root(), table.manifest().root());
    let opener = Opener::new(table.key().clone(), table.params().clone()).unwrap();
    let mut session = session(&client, &mut rng);
    for y in added.iter().chain(items[2..].iter().step_by(37)) {
        let v = session.voucher(&client, y, b"", &mut rng).unwrap();
        assert!(matches!(opener.open_bytes(&v.voucher.encode()), OpenOutcome::Opened(_)), "an indicator was lost");
    }
    for y in &removed {
        let v = session.voucher(&client, y, b"", &mut rng).unwrap();
        assert!(matches!(opener.open_bytes(&v.voucher.encode()), OpenOutcome::NonMatch));
    }
    // The numbers of LEAKAGE.md §1: the default cover bounds the ratio by 4; a bound of 2 needs d = 20.6 %.
    let d = f64::from(cover.ppm()) / 1e6;
    assert!((UpdateCover::likelihood_ratio_bound(d) - 4.0).abs() < 1e-3);
    assert_eq!(UpdateCover::for_likelihood_ratio(2.0).unwrap().ppm(), 206_300);
    assert!(UpdateCover::for_likelihood_ratio(1.0).is_err() && UpdateCover::from_ppm(1_000_001).is_err());
    assert!(UpdateCover::likelihood_ratio_bound(0.0).is_infinite());
    // With no cover, a one-indicator update lists a handful of slots: the leak the cover closes.
    let lone = table.update_with_cover(random_items(1, &mut rng), &[], UpdateCover::NONE, &mut rng).unwrap();
    assert!(lone.changes.len() < 20);
}

#[test]
fn an_opened_voucher_knows_which_ciphertext_opened_and_has_the_layouts_length() {
    use vouchsafe_protocol::voucher::{CT_LEN, OpenedVoucher};
    let mut rng = rng(6);
    let cfg = config(3, 3, u32::MAX / 3);
    let items = random_items(40, &mut rng);
    let (_t, opener, client) = setup(&cfg, items.clone(), &mut rng);
    let layout = VoucherLayout::of(client.params());
    let mut session = session(&client, &mut rng);
    let mut seen = [0u32; 3];
    for y in items.iter().chain(random_items(60, &mut rng).iter()) {
        let v = session.voucher(&client, y, b"ad", &mut rng).unwrap();
        let bytes = v.voucher.encode();
        let OpenOutcome::Opened(o) = opener.open_bytes(&bytes) else { continue };
        let p = o.position().expect("an opened value knows its position");
        seen[usize::from(p)] += 1;
        assert_eq!(o.encode().len(), layout.opened_len());
        // Corrupting that ciphertext (a byte after its 12-byte nonce) and no other makes the voucher a non-match.
        for j in 0..3u8 {
            let mut copy = bytes.clone();
            copy[1 + 8 + 16 + 32 + usize::from(j) * CT_LEN + 12] ^= 1;
            let closed = matches!(opener.open_bytes(&copy), OpenOutcome::NonMatch);
            assert_eq!(closed, j == p, "position {p}, corrupted {j}");
        }
        // The batch opener agrees, and the stored encoding forgets the position (it is not stored).
        match &opener.open_bytes_batch(&[&bytes])[..] {
            [OpenOutcome::Opened(b)] => assert_eq!(b.position(), Some(p)),
            other => panic!("batch opener: {other:?}"),
        }
        assert_eq!(OpenedVoucher::decode(&o.encode()).unwrap().position(), None);
    }
    assert!(seen.iter().all(|&n| n > 0), "every position occurs: {seen:?}");
}
