//! Every rule of the formats refused, on both sides: the crate will not encode or sign a value that breaks it,
//! and will not decode bytes (built by the docs' layout in `common::spec`, which does not validate) that break it.
//! Then versions, trailing bytes, wrong keys, cross-label signatures and every flipped bit.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // test code: a failure is the test failing

mod common;
use common::*;
use vouchsafe_case::*;

fn field_of(e: &Error) -> &'static str {
    match e {
        Error::Invalid { field, .. } => field,
        other => panic!("expected Error::Invalid, got {other:?}"),
    }
}

/// `m` breaks a rule of `field`: encode, sign and decode all refuse it with the same error.
#[track_caller]
fn refused(m: Message, field: &str) {
    let k = keys(1);
    let e = m.encode().unwrap_err();
    assert_eq!(field_of(&e), field, "{e}");
    assert_eq!(m.validate().unwrap_err(), e);
    assert_eq!(k.provider.sign(&m).unwrap_err(), e);
    let bytes = spec::message(&m);
    assert_eq!(Message::decode(&bytes).unwrap_err(), e);
    let secret = *k.provider.to_secret_bytes();
    assert_eq!(SignedMessage::decode(&spec::signed(&secret, LABEL_MESSAGE_SIGN, &bytes)).unwrap_err(), e);
}

fn rep(f: impl FnOnce(&mut Report)) -> Message {
    let mut r = report();
    f(&mut r);
    Message::Report(r)
}

fn wd(f: impl FnOnce(&mut Withdrawal)) -> Message {
    let mut w = withdrawal();
    f(&mut w);
    Message::Withdrawal(w)
}

fn fb(f: impl FnOnce(&mut IndicatorFeedback)) -> Message {
    let mut x = feedback();
    f(&mut x);
    Message::Feedback(x)
}

fn item(i: u16, ad_len: usize) -> ReportItem {
    let mut voucher_id = [0u8; 16];
    voucher_id[..2].copy_from_slice(&i.to_le_bytes());
    ReportItem { voucher_id, ad: vec![7; ad_len] }
}

#[test]
fn the_fixtures_are_valid_and_at_the_limits_still_valid() {
    for m in [Message::Report(report()), Message::Withdrawal(withdrawal()), Message::Feedback(feedback())] {
        let b = m.encode().unwrap();
        assert_eq!(Message::decode(&b).unwrap(), m);
    }
    // Exactly at every limit: accepted.
    let at_limits = rep(|r| {
        r.provider = "a".repeat(MAX_NAME);
        r.account = "\u{e9}".repeat(MAX_ACCOUNT / 2);
        r.signed_order = vec![1; MAX_SIGNED_ORDER];
        r.items = (0..MAX_ITEMS as u16).map(|i| item(i, 1)).collect();
        r.items[0].ad = vec![2; MAX_AD];
        r.decisions = vec![r.decisions[0].clone(); MAX_DECISIONS];
        r.decisions[0].comment = "x".repeat(MAX_TEXT);
        r.decisions[1].reviewer = "Z".repeat(MAX_NAME);
    });
    assert_eq!(Message::decode(&at_limits.encode().unwrap()).unwrap(), at_limits);
    let w = wd(|w| w.reason = "y".repeat(MAX_TEXT));
    assert_eq!(Message::decode(&w.encode().unwrap()).unwrap(), w);
    let f = fb(|f| {
        f.entries = (0..MAX_FEEDBACK_ENTRIES as u32)
            .map(|i| IndicatorCount { primary: i.to_be_bytes().to_vec(), second_hash_drops: 1, review_rejections: 0 })
            .collect();
        f.entries[MAX_FEEDBACK_ENTRIES - 1].primary = vec![0xff; 64];
    });
    assert_eq!(Message::decode(&f.encode().unwrap()).unwrap(), f);
}

#[test]
fn names_accounts_and_texts_out_of_their_rules_are_refused() {
    refused(rep(|r| r.provider = String::new()), "provider");
    refused(rep(|r| r.provider = "p".repeat(MAX_NAME + 1)), "provider");
    refused(rep(|r| r.provider = "provider a".into()), "provider");
    refused(rep(|r| r.provider = "pr\u{f6}vider".into()), "provider");
    refused(wd(|w| w.provider = "a/b".into()), "provider");
    refused(fb(|f| f.provider = String::new()), "provider");
    refused(rep(|r| r.decisions[1].reviewer = String::new()), "decision reviewer");
    refused(rep(|r| r.decisions[1].reviewer = "r".repeat(MAX_NAME + 1)), "decision reviewer");
    refused(rep(|r| r.decisions[1].reviewer = "bob:s".into()), "decision reviewer");
    refused(rep(|r| r.account = String::new()), "account");
    refused(rep(|r| r.account = "a".repeat(MAX_ACCOUNT + 1)), "account");
    refused(rep(|r| r.account = "acc\u{0}".into()), "account");
    refused(rep(|r| r.account = "acc\nount".into()), "account");
    refused(rep(|r| r.account = "acc\u{9b}".into()), "account"); // C1 control (CSI)
    refused(rep(|r| r.decisions[0].comment = "c".repeat(MAX_TEXT + 1)), "decision comment");
    refused(rep(|r| r.decisions[0].comment = "\u{1b}[2Jgone".into()), "decision comment");
    refused(wd(|w| w.reason = String::new()), "withdrawal reason");
    refused(wd(|w| w.reason = "r".repeat(MAX_TEXT + 1)), "withdrawal reason");
    refused(wd(|w| w.reason = "bell\u{7}".into()), "withdrawal reason");
    // Tab, LF and CR are text.
    wd(|w| w.reason = "a\tb\r\nc".into()).encode().unwrap();
}

#[test]
fn invalid_utf8_is_refused() {
    let m = Message::Report(report());
    let bytes = spec::message(&m);
    let at = bytes.windows(4).position(|w| w == b"acco").unwrap();
    let mut bad = bytes.clone();
    bad[at] = 0xff;
    assert_eq!(Message::decode(&bad), Err(Error::Invalid { field: "account", reason: "not UTF-8" }));
}

#[test]
fn counts_and_lengths_out_of_range_are_refused() {
    refused(rep(|r| r.signed_order.clear()), "signed order");
    refused(rep(|r| r.signed_order = vec![1; MAX_SIGNED_ORDER + 1]), "signed order");
    refused(rep(|r| r.items.clear()), "items");
    refused(rep(|r| r.items = (0..=MAX_ITEMS as u16).map(|i| item(i, 1)).collect()), "items");
    refused(rep(|r| r.items[1].ad.clear()), "item associated data");
    refused(rep(|r| r.items[1].ad = vec![0; MAX_AD + 1]), "item associated data");
    refused(rep(|r| r.decisions.clear()), "decisions");
    refused(rep(|r| r.decisions = vec![r.decisions[0].clone(); MAX_DECISIONS + 1]), "decisions");
    refused(fb(|f| f.entries.clear()), "feedback entries");
    refused(
        fb(|f| {
            f.entries = (0..=MAX_FEEDBACK_ENTRIES as u32)
                .map(|i| IndicatorCount {
                    primary: i.to_be_bytes().to_vec(),
                    second_hash_drops: 0,
                    review_rejections: 0,
                })
                .collect()
        }),
        "feedback entries",
    );
    refused(fb(|f| f.entries[0].primary.clear()), "feedback primary");
    refused(fb(|f| f.entries[2].primary = vec![0xfe; MAX_PRIMARY + 1]), "feedback primary");
}

#[test]
fn a_message_too_large_to_sign_is_refused_before_any_copy() {
    // 257 items of the largest AD: each limit holds, the whole does not fit MAX_MESSAGE_BYTES.
    let big = rep(|r| r.items = (0..257u16).map(|i| item(i, MAX_AD)).collect());
    let e = big.encode().unwrap_err();
    assert_eq!(field_of(&e), "message");
    assert!(keys(1).provider.sign(&big).is_err());
    let bytes = spec::message(&big);
    assert!(bytes.len() > MAX_MESSAGE_BODY);
    assert_eq!(
        Message::decode(&bytes),
        Err(Error::Decode {
            what: "message",
            reason: DecodeReason::TooLarge { max: MAX_MESSAGE_BODY, got: bytes.len() }
        })
    );
    let mut signed = vec![1u8; 65];
    signed.extend_from_slice(&bytes);
    assert!(matches!(
        SignedMessage::decode(&signed),
        Err(Error::Decode { what: "signed message", reason: DecodeReason::TooLarge { max: MAX_MESSAGE_BYTES, .. } })
    ));
    // One item fewer fits.
    let fits = rep(|r| r.items = (0..255u16).map(|i| item(i, MAX_AD)).collect());
    let s = keys(1).provider.sign(&fits).unwrap();
    assert!(s.encode().len() <= MAX_MESSAGE_BYTES);
    assert_eq!(SignedMessage::decode(&s.encode()).unwrap(), s);
}

#[test]
fn duplicates_unsorted_lists_and_reasons_that_do_not_fit_are_refused() {
    refused(rep(|r| r.items[1].voucher_id = r.items[0].voucher_id), "items");
    refused(rep(|r| r.items.push(r.items[0].clone())), "items");
    // Items keep their order (any order is fine when ids are distinct).
    rep(|r| r.items.reverse()).encode().unwrap();
    refused(fb(|f| f.entries.swap(0, 1)), "feedback entries");
    refused(fb(|f| f.entries[1].primary = f.entries[0].primary.clone()), "feedback entries");
    for reason in ReasonCode::ALL {
        for verdict in Verdict::ALL {
            let m = rep(|r| {
                r.decisions[1].verdict = *verdict;
                r.decisions[1].reason = *reason;
            });
            if reason.fits(*verdict) {
                m.encode().unwrap();
            } else {
                refused(m, "decision reason");
            }
        }
    }
    assert!(ReasonCode::KnownImage.fits(Verdict::Confirm));
    assert!(!ReasonCode::Benign.fits(Verdict::Confirm));
    assert!(!ReasonCode::KnownImage.fits(Verdict::Reject));
    assert!(ReasonCode::Other.fits(Verdict::Reject));
}

#[test]
fn names_of_enums_round_trip_and_unknown_ones_are_refused() {
    for r in Role::ALL {
        assert_eq!(Role::parse(r.as_str()), Some(*r));
    }
    for v in Verdict::ALL {
        assert_eq!(Verdict::parse(v.as_str()), Some(*v));
    }
    for c in ReasonCode::ALL {
        assert_eq!(ReasonCode::parse(c.as_str()), Some(*c));
    }
    for k in MessageKind::ALL {
        assert_eq!(MessageKind::parse(k.as_str()), Some(*k));
    }
    assert_eq!(ReasonCode::ALL.len(), 5);
    assert_eq!(ReasonCode::parse("known-image"), Some(ReasonCode::KnownImage));
    assert_eq!(Role::parse("Reviewer"), None);
    assert_eq!(Verdict::parse(""), None);
    assert_eq!(MessageKind::parse("receipt"), None);
    assert!("maybe".parse::<Verdict>().is_err());
}

/// Tag bytes: 0 and anything past the last value are refused, in every enum and bool of the encodings.
#[test]
fn unknown_tags_and_bools_are_refused() {
    let base = spec::message(&Message::Report(report()));
    let tag_at =
        |name: &[u8], after: usize| base.windows(name.len()).position(|w| w == name).unwrap() + name.len() + after;
    // Kind byte.
    for bad in [0u8, 4, 0xff] {
        let mut b = base.clone();
        b[1] = bad;
        assert_eq!(
            Message::decode(&b),
            Err(Error::Decode { what: "message kind", reason: DecodeReason::UnknownTag { got: bad } })
        );
    }
    // The urgent flag follows the account.
    let acc = report().account;
    let flag = tag_at(acc.as_bytes(), 0);
    for bad in [2u8, 0xff] {
        let mut b = base.clone();
        b[flag] = bad;
        assert!(matches!(Message::decode(&b), Err(Error::Decode { what: "urgent flag", .. })));
        let mut b = base.clone();
        b[flag + 1] = bad;
        assert!(matches!(Message::decode(&b), Err(Error::Decode { what: "four-eyes flag", .. })));
    }
    // Role, verdict, reason follow the first reviewer's name.
    let role = tag_at(b"alice@review", 0);
    for (off, what, max) in [(0, "role", 2u8), (1, "verdict", 2), (2, "reason code", 5)] {
        for bad in [0u8, max + 1] {
            let mut b = base.clone();
            b[role + off] = bad;
            assert_eq!(Message::decode(&b), Err(Error::Decode { what, reason: DecodeReason::UnknownTag { got: bad } }));
        }
    }
    // Receipt kind and verdict tags.
    let k = keys(1);
    let r = spec::receipt(&receipts(&k)[2]);
    for bad in [0u8, 4] {
        let mut b = r.clone();
        b[49] = bad;
        assert!(matches!(Receipt::decode(&b), Err(Error::Decode { what: "message kind", .. })));
    }
    for bad in [0u8, 5] {
        let mut b = r.clone();
        b[50] = bad;
        assert!(matches!(Receipt::decode(&b), Err(Error::Decode { what: "receipt verdict", .. })));
    }
}

#[test]
fn receipt_verdicts_must_fit_the_kind() {
    let k = keys(1);
    let base = receipts(&k);
    for r in &base {
        for kind in MessageKind::ALL {
            let mut x = r.clone();
            x.kind = *kind;
            if *kind == r.kind {
                assert_eq!(Receipt::decode(&x.encode().unwrap()).unwrap(), x);
                continue;
            }
            let e = x.encode().unwrap_err();
            assert_eq!(e, Error::Invalid { field: "receipt verdict", reason: "does not fit the message kind" });
            assert!(k.centre.sign(&x).is_err());
            assert_eq!(Receipt::decode(&spec::receipt(&x)).unwrap_err(), e);
        }
    }
    let mut fp = base[1].clone();
    for reason in [String::new(), "r".repeat(MAX_TEXT + 1), "esc\u{1b}".into()] {
        fp.verdict = ReceiptVerdict::ManifestFalsePositive { reason };
        assert_eq!(field_of(&fp.encode().unwrap_err()), "false-positive reason");
        assert!(Receipt::decode(&spec::receipt(&fp)).is_err());
    }
}

#[test]
fn transparency_reports_out_of_their_rules_are_refused() {
    let k = keys(1);
    let check = |f: &dyn Fn(&mut TransparencyReport), field: &str| {
        let mut t = transparency();
        f(&mut t);
        let e = t.encode().unwrap_err();
        assert_eq!(field_of(&e), field, "{e}");
        assert_eq!(k.provider.sign_transparency(&t).unwrap_err(), e);
        assert_eq!(TransparencyReport::decode(&spec::transparency(&t)).unwrap_err(), e);
    };
    check(&|t| t.provider = String::new(), "provider");
    check(&|t| t.provider = "x y".into(), "provider");
    check(&|t| t.from = t.to + 1, "period");
    check(&|t| t.counters = (0..=MAX_COUNTERS).map(|i| (format!("c{i:03}"), 0)).collect(), "counters");
    check(&|t| t.counters.swap(0, 1), "counters");
    check(&|t| t.counters[1].0 = t.counters[0].0.clone(), "counters");
    check(&|t| t.counters[0].0 = String::new(), "counter name");
    check(&|t| t.counters[0].0 = "a".repeat(MAX_COUNTER_NAME + 1), "counter name");
    check(&|t| t.counters[0].0 = "Cases".into(), "counter name");
    check(&|t| t.counters[0].0 = "cases-2".into(), "counter name");
    check(&|t| t.decision_seconds = vec![1; MAX_DECISION_TIMES + 1], "decision times");
    // At the limits, and the whole-order period 0..0 with no counters: fine.
    let mut t = transparency();
    t.counters = (0..MAX_COUNTERS).map(|i| (format!("c{i:03}"), i as u64)).collect();
    t.decision_seconds = vec![9; MAX_DECISION_TIMES];
    assert_eq!(TransparencyReport::decode(&t.encode().unwrap()).unwrap(), t);
    assert_eq!(t.counter("c007"), Some(7));
    assert_eq!(t.counter("c999"), None);
    let t = TransparencyReport { from: 0, to: 0, counters: vec![], decision_seconds: vec![], ..transparency() };
    assert_eq!(TransparencyReport::decode(&t.encode().unwrap()).unwrap(), t);
    assert_eq!(transparency().counter("reports_sent"), Some(1));
}

/// An encoding's name, its bytes, and whether its decoder accepts some bytes.
type Encoding = (&'static str, Vec<u8>, fn(&[u8]) -> bool);
/// Signed bytes, and whether they decode and verify.
type SignedCase = (Vec<u8>, Box<dyn Fn(&[u8]) -> bool>);

/// Every encoding of the crate, in its signed and plain forms, for the generic checks below.
fn all_encodings() -> Vec<Encoding> {
    let k = keys(1);
    let mut v: Vec<Encoding> = Vec::new();
    for m in [Message::Report(report()), Message::Withdrawal(withdrawal()), Message::Feedback(feedback())] {
        v.push(("message", m.encode().unwrap(), |b| Message::decode(b).is_ok()));
        v.push(("signed message", k.provider.sign(&m).unwrap().encode(), |b| SignedMessage::decode(b).is_ok()));
    }
    for r in receipts(&k) {
        v.push(("receipt", r.encode().unwrap(), |b| Receipt::decode(b).is_ok()));
        v.push(("signed receipt", k.centre.sign(&r).unwrap().encode(), |b| SignedReceipt::decode(b).is_ok()));
    }
    v.push(("transparency report", transparency().encode().unwrap(), |b| TransparencyReport::decode(b).is_ok()));
    v.push(("signed transparency report", k.provider.sign_transparency(&transparency()).unwrap().encode(), |b| {
        SignedTransparencyReport::decode(b).is_ok()
    }));
    v
}

#[test]
fn trailing_bytes_truncation_and_other_versions_are_refused() {
    for (what, bytes, ok) in all_encodings() {
        assert!(ok(&bytes), "{what}");
        let mut long = bytes.clone();
        long.push(0);
        assert!(!ok(&long), "{what}: trailing byte accepted");
        for cut in 0..bytes.len() {
            assert!(!ok(&bytes[..cut]), "{what}: truncated to {cut} accepted");
        }
        for v in [0u8, 2, 0xff] {
            let mut b = bytes.clone();
            b[0] = v;
            assert!(!ok(&b), "{what}: version {v} accepted");
        }
    }
    // The errors say which.
    let mut b = transparency().encode().unwrap();
    b.push(0);
    assert_eq!(
        TransparencyReport::decode(&b),
        Err(Error::Decode { what: "transparency report", reason: DecodeReason::TrailingBytes })
    );
    b[0] = 2;
    assert_eq!(
        TransparencyReport::decode(&b),
        Err(Error::Decode { what: "transparency report", reason: DecodeReason::Version { got: 2 } })
    );
    // The version inside a signed form is checked too.
    let k = keys(1);
    let mut s = k.provider.sign(&Message::Withdrawal(withdrawal())).unwrap().encode();
    s[65] = 2;
    assert_eq!(
        SignedMessage::decode(&s),
        Err(Error::Decode { what: "message", reason: DecodeReason::Version { got: 2 } })
    );
    assert_eq!(
        Message::decode(&[1, 1, 0]),
        Err(Error::Decode { what: "message", reason: DecodeReason::Truncated { expected: 18, got: 3 } })
    );
}

#[test]
fn a_huge_count_in_a_short_input_is_refused_without_allocating() {
    // 100 000 feedback entries announced, none present.
    let mut b = vec![1u8, 3];
    b.extend_from_slice(&[0; 16]);
    spec::bytes(&mut b, b"p");
    b.extend_from_slice(&[0; 16 + 8]);
    b.extend_from_slice(&(MAX_FEEDBACK_ENTRIES as u32).to_le_bytes());
    assert!(matches!(Message::decode(&b), Err(Error::Decode { reason: DecodeReason::Truncated { .. }, .. })));
    b.truncate(b.len() - 4);
    b.extend_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(field_of(&Message::decode(&b).unwrap_err()), "feedback entries");
    // A byte string announced as 4 GiB.
    let mut b = vec![1u8, 2];
    b.extend_from_slice(&[0; 16]);
    b.extend_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(Message::decode(&b), Err(Error::Decode { reason: DecodeReason::Truncated { .. }, .. })));
}

#[test]
fn signatures_verify_only_under_the_right_key() {
    let k = keys(1);
    for m in [Message::Report(report()), Message::Withdrawal(withdrawal()), Message::Feedback(feedback())] {
        let s = k.provider.sign(&m).unwrap();
        assert_eq!(s.verify(&k.provider.public()).unwrap(), m);
        assert_eq!(s.message_unverified().unwrap(), m);
        assert_eq!(s.verify(&k.other_provider.public()), Err(Error::BadSignature));
        assert_eq!(Message::decode(s.message_bytes()).unwrap(), m);
    }
    for r in receipts(&k) {
        let s = k.centre.sign(&r).unwrap();
        assert_eq!(s.verify(&k.centre.public()).unwrap(), r);
        assert_eq!(s.receipt_unverified().unwrap(), r);
        assert_eq!(s.verify(&k.other_centre.public()), Err(Error::BadSignature));
    }
    let t = k.provider.sign_transparency(&transparency()).unwrap();
    assert_eq!(t.verify(&k.provider.public()).unwrap(), transparency());
    assert_eq!(t.report_unverified().unwrap(), transparency());
    assert_eq!(t.verify(&k.other_provider.public()), Err(Error::BadSignature));
    let sig = k.centre.sign_export(BUNDLE);
    k.centre.public().verify_export(BUNDLE, &sig).unwrap();
    assert_eq!(k.other_centre.public().verify_export(BUNDLE, &sig), Err(Error::BadSignature));
    assert_eq!(k.centre.public().verify_export(b"another bundle", &sig), Err(Error::BadSignature));
}

/// A signature made under one label never verifies under another: the provider's key over a receipt (or
/// transparency) label is no message signature, the Centre key over a message or release label is no receipt,
/// and an export signature is no receipt signature.
#[test]
fn signatures_under_another_label_are_refused() {
    let k = keys(1);
    let psecret = *k.provider.to_secret_bytes();
    let pkey = k.provider.public();
    let ckey = k.centre.public();
    let m = spec::message(&Message::Report(report()));
    for label in [LABEL_RECEIPT_SIGN, LABEL_TRANSPARENCY_SIGN, LABEL_EXPORT_SIGN, LABEL_MESSAGE_DIGEST, b"" as &[u8]] {
        let s = SignedMessage::decode(&spec::signed(&psecret, label, &m)).unwrap();
        assert_eq!(s.verify(&pkey), Err(Error::BadSignature));
    }
    let r = spec::receipt(&receipts(&k)[0]);
    for label in [
        LABEL_MESSAGE_SIGN,
        LABEL_EXPORT_SIGN,
        LABEL_TRANSPARENCY_SIGN,
        b"vouchsafe/v1/release/sign",
        b"vouchsafe/v1/release/record/sign",
    ] {
        let s = SignedReceipt::decode(&spec::signed(&k.centre_secret, label, &r)).unwrap();
        assert_eq!(s.verify(&ckey), Err(Error::BadSignature));
    }
    // The provider's key over the receipt label: a receipt that the provider forged is no Centre receipt.
    let forged = SignedReceipt::decode(&spec::signed(&psecret, LABEL_RECEIPT_SIGN, &r)).unwrap();
    assert_eq!(forged.verify(&ckey), Err(Error::BadSignature));
    let t = spec::transparency(&transparency());
    let s = SignedTransparencyReport::decode(&spec::signed(&psecret, LABEL_MESSAGE_SIGN, &t)).unwrap();
    assert_eq!(s.verify(&pkey), Err(Error::BadSignature));
    // An export signature over a receipt's bytes is not a receipt signature, and a receipt signature is not an
    // export signature.
    let export_sig = k.centre.sign_export(&r);
    let mut spliced = vec![1u8];
    spliced.extend_from_slice(&export_sig);
    spliced.extend_from_slice(&r);
    assert_eq!(SignedReceipt::decode(&spliced).unwrap().verify(&ckey), Err(Error::BadSignature));
    let receipt_sig: [u8; 64] = k.centre.sign(&receipts(&k)[0]).unwrap().encode()[1..65].try_into().unwrap();
    assert_eq!(ckey.verify_export(&r, &receipt_sig), Err(Error::BadSignature));
}

#[test]
fn every_flipped_bit_of_a_signed_encoding_is_refused() {
    let k = keys(1);
    let pkey = k.provider.public();
    let ckey = k.centre.public();
    let mut cases: Vec<SignedCase> = Vec::new();
    for m in [Message::Report(report()), Message::Withdrawal(withdrawal()), Message::Feedback(feedback())] {
        cases.push((
            k.provider.sign(&m).unwrap().encode(),
            Box::new(move |b| SignedMessage::decode(b).and_then(|s| s.verify(&pkey)).is_ok()),
        ));
    }
    for r in receipts(&k) {
        cases.push((
            k.centre.sign(&r).unwrap().encode(),
            Box::new(move |b| SignedReceipt::decode(b).and_then(|s| s.verify(&ckey)).is_ok()),
        ));
    }
    cases.push((
        k.provider.sign_transparency(&transparency()).unwrap().encode(),
        Box::new(move |b| SignedTransparencyReport::decode(b).and_then(|s| s.verify(&pkey)).is_ok()),
    ));
    for (bytes, ok) in &cases {
        assert!(ok(bytes));
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut b = bytes.clone();
                b[i] ^= 1 << bit;
                assert!(!ok(&b), "byte {i} bit {bit} flipped and accepted");
            }
        }
    }
    // The export signature: every bit of the bundle and of the signature.
    let sig = k.centre.sign_export(BUNDLE);
    for i in 0..BUNDLE.len() * 8 {
        let mut b = BUNDLE.to_vec();
        b[i / 8] ^= 1 << (i % 8);
        assert!(ckey.verify_export(&b, &sig).is_err());
    }
    for i in 0..512 {
        let mut s = sig;
        s[i / 8] ^= 1 << (i % 8);
        assert!(ckey.verify_export(BUNDLE, &s).is_err());
    }
}

#[test]
fn digests_differ_for_every_change_and_name_the_signed_bytes() {
    let k = keys(1);
    let a = k.provider.sign(&Message::Withdrawal(withdrawal())).unwrap();
    let b = k.provider.sign(&wd(|w| w.reason = "appeal upheld.".into())).unwrap();
    let c = k.other_provider.sign(&Message::Withdrawal(withdrawal())).unwrap();
    assert_ne!(a.digest(), b.digest());
    assert_ne!(a.digest(), c.digest(), "the digest covers the signature too");
    assert_eq!(a.digest(), SignedMessage::decode(&a.encode()).unwrap().digest());
}

#[test]
fn keys_refuse_bad_bytes_and_print_no_secret() {
    // Not a point (y = 2 has no x on the curve), and the identity (small order).
    let mut not_point = [0u8; 32];
    not_point[0] = 2;
    assert_eq!(ProviderKey::from_bytes(&not_point), Err(Error::BadKey));
    let mut identity = [0u8; 32];
    identity[0] = 1;
    assert_eq!(ProviderKey::from_bytes(&identity), Err(Error::BadKey));
    assert_eq!(CentreReceiptKey::from_bytes(&identity), Err(Error::BadKey));
    let k = keys(1);
    let pk = k.provider.public();
    assert_eq!(ProviderKey::from_bytes(&pk.to_bytes()).unwrap(), pk);
    let ck = k.centre.public();
    assert_eq!(CentreReceiptKey::from_bytes(&ck.to_bytes()).unwrap(), ck);
    let secret = k.provider.to_secret_bytes();
    assert!(ProviderSigningKey::from_secret_bytes(&secret).ct_eq(&k.provider));
    assert!(!k.other_provider.ct_eq(&k.provider));
    let shown = format!("{:?} {:?}", k.provider, k.centre);
    assert!(shown.contains("<redacted>"));
    assert!(shown.contains(&hex::encode(pk.key_id())));
    for s in [hex::encode(&secret[..]), hex::encode(k.centre_secret)] {
        assert!(!shown.contains(&s[..16]), "a secret in Debug output");
    }
    // The report's Debug never prints associated data.
    let shown = format!("{:?}", report());
    assert!(shown.contains("<27 bytes>"));
    assert!(!shown.contains("associated data of item one"));
    let signed = k.provider.sign(&Message::Report(report())).unwrap();
    let shown = format!("{signed:?}");
    assert!(shown.contains(&hex::encode(&signed.digest()[..8])), "{shown}");
    assert!(!shown.contains(&hex::encode(b"associated data")) && !shown.contains("account"), "{shown}");
    // Error messages name fields and rules, never the values.
    let e = rep(|r| r.account = "secret-account\u{0}".into()).encode().unwrap_err();
    assert!(!e.to_string().contains("secret-account"), "{e}");
}
