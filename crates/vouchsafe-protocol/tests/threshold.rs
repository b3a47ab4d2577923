//! Threshold edges, duplicates and near-duplicates, and the post-reveal path.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // test code: a failure is the test failing

mod common;
use common::*;
use vouchsafe_protocol::client::VoucherKind;
use vouchsafe_protocol::threshold::{Classified, ThresholdOutcome, try_reveal};
use vouchsafe_protocol::voucher::{OpenOutcome, OpenedVoucher, Opener};
use vouchsafe_protocol::{Error, InvalidInput};

fn open(opener: &Opener, bytes: &[u8]) -> Option<OpenedVoucher> {
    match opener.open_bytes(bytes) {
        OpenOutcome::Opened(o) => Some(o),
        OpenOutcome::NonMatch => None,
        OpenOutcome::Invalid(r) => panic!("invalid voucher: {r:?}"),
    }
}

struct Run {
    opened: Vec<OpenedVoucher>,
    real_ids: Vec<[u8; 16]>,
    synthetic_ids: Vec<[u8; 16]>,
    real_ads: Vec<Vec<u8>>,
}

/// Sends `reals` matching images and `synthetics` synthetic vouchers (forced via p ≈ 1 and the cap) plus
/// non-matching noise, returns what the server opened.
fn run(t: u16, s: u16, reals: usize, synthetics: usize, seed: u64) -> Run {
    let mut rng = rng(seed);
    let items = random_items(reals.max(1) + 10, &mut rng);
    // Phase 1: synthetics first with p ≈ 1 (the cap stops them), then p = 0 for the real ones.
    let cfg_syn = config(t, s, u32::MAX);
    let (table, opener, client) = setup(&cfg_syn, items.clone(), &mut rng);
    let _ = table;
    let mut session = session(&client, &mut rng);
    let mut out = Run { opened: vec![], real_ids: vec![], synthetic_ids: vec![], real_ads: vec![] };
    let noise = random_items(synthetics + 5, &mut rng);
    for y in noise.iter().take(synthetics) {
        let v = session.voucher(&client, y, b"", &mut rng).unwrap();
        assert_eq!(v.kind, VoucherKind::Synthetic);
        out.synthetic_ids.push(v.voucher.id);
        out.opened.push(open(&opener, &v.voucher.encode()).expect("synthetic opens"));
    }
    // Fill up the cap with non-matching images if fewer synthetics were asked for than s.
    let mut filler = random_items(s as usize, &mut rng).into_iter();
    while session.state().synthetics_made() < s {
        let v = session.voucher(&client, &filler.next().unwrap(), b"", &mut rng).unwrap();
        // These are synthetic too; the test only wanted `synthetics` of them, so it does not deliver the rest.
        assert_eq!(v.kind, VoucherKind::Synthetic);
    }
    for (i, y) in items.iter().take(reals).enumerate() {
        let ad = format!("derivative of image {i}").into_bytes();
        let v = session.voucher(&client, y, &ad, &mut rng).unwrap();
        assert_eq!(v.kind, VoucherKind::Real);
        out.real_ids.push(v.voucher.id);
        out.real_ads.push(ad);
        out.opened.push(open(&opener, &v.voucher.encode()).expect("match opens"));
        // The same image again: a null voucher that never opens.
        let dup = session.voucher(&client, y, b"again", &mut rng).unwrap();
        assert_eq!(dup.kind, VoucherKind::Null);
        assert!(open(&opener, &dup.voucher.encode()).is_none());
    }
    // Shuffle deterministically so that order carries no information.
    out.opened.reverse();
    out
}

#[test]
fn below_threshold_nothing_is_learned_even_with_all_synthetics() {
    for (t, s) in [(2u16, 0u16), (3, 3), (5, 8), (10, 20), (30, 60)] {
        let r = run(t, s, t as usize - 1, s as usize, 100 + t as u64);
        match try_reveal(b"order-0000000001", t, s, &r.opened).unwrap() {
            ThresholdOutcome::Below { distinct } => assert_eq!(distinct, t as usize - 1 + s as usize),
            ThresholdOutcome::Revealed(_) => panic!("T={t}, s={s}: revealed below the threshold"),
        }
    }
}

#[test]
fn at_threshold_exactly_the_real_ones_are_revealed_and_every_synthetic_marked() {
    for (t, s, extra) in [(2u16, 0u16, 0usize), (3, 3, 0), (5, 8, 3), (10, 20, 0), (30, 60, 5)] {
        let r = run(t, s, t as usize + extra, s as usize, 200 + t as u64);
        let ThresholdOutcome::Revealed(rev) = try_reveal(b"order-0000000001", t, s, &r.opened).unwrap() else {
            panic!("T={t}, s={s}: not revealed at the threshold");
        };
        let mut got: Vec<_> = rev.real.iter().map(|i| i.id).collect();
        got.sort();
        let mut want = r.real_ids.clone();
        want.sort();
        assert_eq!(got, want, "T={t}");
        let mut syn = rev.synthetic.clone();
        syn.sort();
        let mut want_syn = r.synthetic_ids.clone();
        want_syn.sort();
        assert_eq!(syn, want_syn, "T={t}");
        assert!(rev.rejected.is_empty());
        for item in &rev.real {
            let idx = r.real_ids.iter().position(|id| *id == item.id).unwrap();
            assert_eq!(&item.ad[..], &r.real_ads[idx][..]);
        }
        // After the reveal, later vouchers are classified against f directly.
        for o in &r.opened {
            match rev.account.classify(o) {
                Classified::Real(item) => assert!(r.real_ids.contains(&item.id)),
                Classified::Synthetic => assert!(r.synthetic_ids.contains(o.id())),
                Classified::Rejected => panic!("rejected an honest voucher"),
            }
        }
        // The revealed account survives its storage encoding.
        let again = vouchsafe_protocol::threshold::RevealedAccount::decode(&rev.account.encode()).unwrap();
        assert!(matches!(again.classify(&r.opened[0]), Classified::Real(_) | Classified::Synthetic));
    }
}

#[test]
fn below_threshold_no_ad_can_be_decrypted_with_any_t_minus_1_shares() {
    // With T−1 real shares the interpolated "secret" is wrong, so adkey is wrong and no adct verifies.
    let t = 4u16;
    let r = run(t, 0, t as usize - 1, 0, 300);
    let shares: Vec<_> = r.opened.iter().map(|o| o.share().clone()).collect();
    let poly = vouchsafe_protocol::threshold_math::shamir::interpolate(&shares, t as usize - 1).unwrap();
    let key = vouchsafe_protocol::crypto::adkey(poly.secret(), b"order-0000000001");
    for o in &r.opened {
        // Even with the voucher's rkey (the server has it for every opened voucher), the wrong adkey opens nothing.
        let item_key = vouchsafe_protocol::crypto::ad_item_key(&key, o.rkey());
        let aad = vouchsafe_protocol::crypto::adct_aad(b"order-0000000001", o.id());
        assert!(vouchsafe_protocol::crypto::open(&item_key, &aad, o.adct()).is_none());
    }
    // Positive control: with the true polynomial (all T shares) the same call decrypts.
    let r = run(t, 0, t as usize, 0, 301);
    let shares: Vec<_> = r.opened.iter().map(|o| o.share().clone()).collect();
    let poly = vouchsafe_protocol::threshold_math::shamir::interpolate(&shares, t as usize).unwrap();
    let key = vouchsafe_protocol::crypto::adkey(poly.secret(), b"order-0000000001");
    let o = &r.opened[0];
    let item_key = vouchsafe_protocol::crypto::ad_item_key(&key, o.rkey());
    let aad = vouchsafe_protocol::crypto::adct_aad(b"order-0000000001", o.id());
    assert!(vouchsafe_protocol::crypto::open(&item_key, &aad, o.adct()).is_some());
}

#[test]
fn more_synthetics_than_the_cap_fails_cleanly() {
    // A dishonest client ignoring the cap: s + 1 synthetic-like opened vouchers with T−1 real ones. Detection may
    // find a dependency among random columns; the reveal must then fail with a clean error, never decrypt, never
    // panic.
    let (t, s) = (3u16, 2u16);
    let base = run(t, s, t as usize - 1, s as usize, 400);
    let extra = run(t, s, 0, s as usize, 401); // synthetics of another session: random columns, random shares
    let mut opened = base.opened;
    opened.extend(extra.opened.into_iter().take(2));
    match try_reveal(b"order-0000000001", t, s, &opened) {
        Ok(ThresholdOutcome::Below { .. }) => {}
        Err(Error::Invalid(InvalidInput::Reconstruction { .. })) => {}
        Ok(ThresholdOutcome::Revealed(r)) => panic!("revealed {} items from a cap violation", r.real.len()),
        Err(e) => panic!("unexpected error {e}"),
    }
}

#[test]
fn the_same_image_counts_once_and_near_duplicates_count_separately() {
    let t = 3u16;
    let mut rng = rng(500);
    let mut items = random_items(1, &mut rng);
    // A near-identical hash: one bit flipped. It is a different indicator, so it counts separately.
    let mut near = items[0].clone();
    near[10] ^= 1;
    items.push(near.clone());
    let (_table, opener, client) = setup(&config(t, 0, 0), items.clone(), &mut rng);
    let mut session = session(&client, &mut rng);
    let mut opened = Vec::new();
    for _ in 0..50 {
        let v = session.voucher(&client, &items[0], b"x", &mut rng).unwrap();
        if let Some(o) = open(&opener, &v.voucher.encode()) {
            opened.push(o);
        }
    }
    assert_eq!(opened.len(), 1, "the same image opened more than once");
    let v = session.voucher(&client, &near, b"y", &mut rng).unwrap();
    assert_eq!(v.kind, VoucherKind::Real);
    opened.push(open(&opener, &v.voucher.encode()).unwrap());
    assert_ne!(opened[0].share().x, opened[1].share().x);
    // Two distinct matches < T = 3: still below.
    assert!(matches!(try_reveal(b"order-0000000001", t, 0, &opened).unwrap(), ThresholdOutcome::Below { distinct: 2 }));
    // The same image in another account gets an unrelated share abscissa.
    let mut other = common::session(&client, &mut rng);
    let v = other.voucher(&client, &items[0], b"x", &mut rng).unwrap();
    let o = open(&opener, &v.voucher.encode()).unwrap();
    assert_ne!(o.share().x, opened[0].share().x);
}

#[test]
fn opened_voucher_records_round_trip() {
    let r = run(3, 2, 2, 2, 600);
    for o in &r.opened {
        let back = OpenedVoucher::decode(&o.encode()).unwrap();
        assert!(back == *o);
    }
}

#[test]
fn a_tampered_adct_is_rejected_at_the_reveal_and_never_decrypted() {
    let t = 3u16;
    let mut r = run(t, 0, t as usize + 1, 0, 700);
    let victim = *r.opened[0].id();
    r.opened[0].adct_mut()[40] ^= 1;
    let ThresholdOutcome::Revealed(rev) = try_reveal(b"order-0000000001", t, 0, &r.opened).unwrap() else {
        panic!("T + 1 real shares must reveal");
    };
    assert_eq!(rev.rejected, vec![victim]);
    assert_eq!(rev.real.len(), t as usize);
    assert!(rev.real.iter().all(|i| i.id != victim));
}
