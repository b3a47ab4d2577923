//! Decoding arbitrary (and nearly valid) bytes never panics, and encode ∘ decode is the identity on valid values.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // test code: a failure is the test failing

mod common;
use common::*;
use proptest::prelude::*;
use vouchsafe_case::*;

/// Runs every decoder (and every verifier, under a fixed key); each value a decoder accepts must re-encode to
/// the same bytes.
fn decode_all(bytes: &[u8]) {
    let k = keys(3);
    if let Ok(m) = Message::decode(bytes) {
        assert_eq!(m.encode().unwrap(), bytes);
    }
    if let Ok(s) = SignedMessage::decode(bytes) {
        assert_eq!(s.encode(), bytes);
        assert_eq!(s.message_unverified().unwrap().encode().unwrap(), s.message_bytes());
        let _ = s.verify(&k.provider.public());
    }
    if let Ok(r) = Receipt::decode(bytes) {
        assert_eq!(r.encode().unwrap(), bytes);
    }
    if let Ok(s) = SignedReceipt::decode(bytes) {
        assert_eq!(s.encode(), bytes);
        let _ = s.verify(&k.centre.public());
    }
    if let Ok(t) = TransparencyReport::decode(bytes) {
        assert_eq!(t.encode().unwrap(), bytes);
    }
    if let Ok(s) = SignedTransparencyReport::decode(bytes) {
        assert_eq!(s.encode(), bytes);
        let _ = s.verify(&k.provider.public());
    }
}

fn name() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[A-Za-z0-9._@-]{1,64}").unwrap()
}

/// Text without control characters other than tab, LF, CR (any other Unicode allowed), within `max` bytes.
fn text(min: usize, max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[^\\p{{Cc}}]{{{min},80}}|[\\t\\n\\r a-z]{{{min},{max}}}"))
        .unwrap()
        .prop_filter("within the byte limit", move |s| s.len() <= max && s.len() >= min)
}

fn account() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[^\\p{Cc}]{1,64}").unwrap().prop_filter("≤ 256 bytes", |s| s.len() <= 256)
}

fn decision() -> impl Strategy<Value = Decision> {
    (name(), any::<bool>(), any::<bool>(), 0usize..4, text(0, 300), any::<i64>()).prop_map(
        |(reviewer, sup, confirm, reason, comment, at)| {
            let verdict = if confirm { Verdict::Confirm } else { Verdict::Reject };
            let reason = if confirm {
                ReasonCode::KnownImage
            } else {
                ReasonCode::ALL[1 + reason % (ReasonCode::ALL.len() - 1)]
            };
            Decision {
                reviewer,
                role: if sup { Role::Supervisor } else { Role::Reviewer },
                verdict,
                reason,
                comment,
                at,
            }
        },
    )
}

fn report_strategy() -> impl Strategy<Value = Report> {
    (
        (
            any::<[u8; 16]>(),
            name(),
            any::<[u8; 16]>(),
            any::<[u8; 32]>(),
            proptest::collection::vec(any::<u8>(), 1..200),
        ),
        (any::<u64>(), any::<[u8; 32]>(), any::<u64>(), account(), any::<bool>(), any::<bool>()),
        (any::<i64>(), any::<i64>()),
        proptest::collection::btree_map(any::<[u8; 16]>(), proptest::collection::vec(any::<u8>(), 1..100), 1..8),
        proptest::collection::vec(decision(), 1..=MAX_DECISIONS),
    )
        .prop_map(|(a, b, c, items, decisions)| Report {
            report_id: a.0,
            provider: a.1,
            order_id: a.2,
            order_hash: a.3,
            signed_order: a.4,
            release_number: b.0,
            release_hash: b.1,
            case_id: b.2,
            account: b.3,
            urgent: b.4,
            four_eyes: b.5,
            threshold_at: c.0,
            created_at: c.1,
            items: items.into_iter().rev().map(|(voucher_id, ad)| ReportItem { voucher_id, ad }).collect(),
            decisions,
        })
}

fn message_strategy() -> impl Strategy<Value = Message> {
    let withdrawal = (any::<[u8; 16]>(), name(), any::<[u8; 16]>(), any::<[u8; 16]>(), text(1, 400), any::<i64>())
        .prop_map(|(withdrawal_id, provider, report_id, order_id, reason, at)| {
            Message::Withdrawal(Withdrawal { withdrawal_id, provider, report_id, order_id, reason, at })
        });
    let feedback = (
        any::<[u8; 16]>(),
        name(),
        any::<[u8; 16]>(),
        any::<u64>(),
        proptest::collection::btree_map(proptest::collection::vec(any::<u8>(), 1..=64), any::<(u64, u64)>(), 1..20),
        any::<i64>(),
    )
        .prop_map(|(feedback_id, provider, order_id, release_number, entries, at)| {
            let entries = entries
                .into_iter()
                .map(|(primary, (d, r))| IndicatorCount { primary, second_hash_drops: d, review_rejections: r })
                .collect();
            Message::Feedback(IndicatorFeedback { feedback_id, provider, order_id, release_number, entries, at })
        });
    prop_oneof![report_strategy().prop_map(Message::Report), withdrawal, feedback]
}

fn receipt_strategy() -> impl Strategy<Value = Receipt> {
    let verdict = prop_oneof![
        any::<[u8; 16]>().prop_map(|export_id| ReceiptVerdict::Forwarded { export_id }),
        text(1, MAX_TEXT).prop_map(|reason| ReceiptVerdict::ManifestFalsePositive { reason }),
        Just(ReceiptVerdict::Withdrawn),
        Just(ReceiptVerdict::Recorded),
    ];
    (any::<[u8; 16]>(), any::<[u8; 32]>(), verdict, any::<i64>()).prop_map(
        |(message_id, message_digest, verdict, at)| Receipt {
            message_id,
            message_digest,
            kind: verdict.kind(),
            verdict,
            at,
        },
    )
}

fn transparency_strategy() -> impl Strategy<Value = TransparencyReport> {
    (
        name(),
        any::<[u8; 16]>(),
        any::<i64>(),
        any::<i64>(),
        proptest::collection::btree_map(
            proptest::string::string_regex("[a-z0-9_]{1,64}").unwrap(),
            any::<u64>(),
            0..=8,
        ),
        proptest::collection::vec(any::<u64>(), 0..50),
        any::<i64>(),
    )
        .prop_map(|(provider, order_id, a, b, counters, decision_seconds, created_at)| TransparencyReport {
            provider,
            order_id,
            from: a.min(b),
            to: a.max(b),
            counters: counters.into_iter().collect(),
            decision_seconds,
            created_at,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        decode_all(&bytes);
    }

    /// Arbitrary bytes behind a valid prefix reach the later fields' decoders.
    #[test]
    fn arbitrary_bodies_never_panic(
        prefix in prop_oneof![Just(vec![1u8, 1]), Just(vec![1u8, 2]), Just(vec![1u8, 3]), Just(vec![1u8])],
        signed in any::<bool>(),
        body in proptest::collection::vec(any::<u8>(), 0..600),
    ) {
        let mut b = if signed { let mut s = vec![1u8]; s.extend_from_slice(&[0; 64]); s } else { Vec::new() };
        b.extend_from_slice(&prefix);
        b.extend_from_slice(&body);
        decode_all(&b);
    }

    /// Valid encodings with a few bytes changed, cut or extended: never a panic; what decodes re-encodes.
    #[test]
    fn mutated_encodings_never_panic(
        m in message_strategy(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let k = keys(3);
        for mut b in [m.encode().unwrap(), k.provider.sign(&m).unwrap().encode()] {
            for (i, v) in &edits {
                let at = i.index(b.len());
                b[at] = *v;
            }
            if truncate {
                b.truncate(cut.index(b.len() + 1));
            }
            decode_all(&b);
        }
    }

    #[test]
    fn messages_round_trip(m in message_strategy()) {
        let k = keys(3);
        let bytes = m.encode().unwrap();
        prop_assert_eq!(&Message::decode(&bytes).unwrap(), &m);
        let signed = k.provider.sign(&m).unwrap();
        let back = SignedMessage::decode(&signed.encode()).unwrap();
        prop_assert_eq!(&back, &signed);
        prop_assert_eq!(back.verify(&k.provider.public()).unwrap(), m);
        prop_assert_eq!(back.digest(), signed.digest());
    }

    #[test]
    fn receipts_round_trip(r in receipt_strategy()) {
        let k = keys(3);
        prop_assert_eq!(&Receipt::decode(&r.encode().unwrap()).unwrap(), &r);
        let signed = k.centre.sign(&r).unwrap();
        let back = SignedReceipt::decode(&signed.encode()).unwrap();
        prop_assert_eq!(&back, &signed);
        prop_assert_eq!(back.verify(&k.centre.public()).unwrap(), r);
    }

    #[test]
    fn transparency_reports_round_trip(t in transparency_strategy()) {
        let k = keys(3);
        prop_assert_eq!(&TransparencyReport::decode(&t.encode().unwrap()).unwrap(), &t);
        let signed = k.provider.sign_transparency(&t).unwrap();
        let back = SignedTransparencyReport::decode(&signed.encode()).unwrap();
        prop_assert_eq!(&back, &signed);
        prop_assert_eq!(back.verify(&k.provider.public()).unwrap(), t);
    }

    #[test]
    fn exports_verify_exactly_their_bundle(bundle in proptest::collection::vec(any::<u8>(), 0..300), flip in any::<prop::sample::Index>()) {
        let k = keys(3);
        let sig = k.centre.sign_export(&bundle);
        k.centre.public().verify_export(&bundle, &sig).unwrap();
        if !bundle.is_empty() {
            let mut b = bundle.clone();
            let at = flip.index(b.len());
            b[at] ^= 1;
            prop_assert!(k.centre.public().verify_export(&b, &sig).is_err());
        }
    }
}
