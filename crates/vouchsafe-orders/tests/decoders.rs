//! Decoding arbitrary bytes never panics, and encode ∘ decode is the identity on valid orders.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // test code: a failure is the test failing

mod common;
use common::*;
use proptest::prelude::*;
use vouchsafe_orders::labels::MAX_ORDER_SECONDS;
use vouchsafe_orders::{
    AuthorityKeyring, DetectionOrder, MaterialKind, OrderTerms, Revocation, Scope, SignedOrder, SignedRevocation,
};

/// Runs every decoder; each value it accepts must re-encode to the same bytes.
fn decode_all(bytes: &[u8]) {
    if let Ok(v) = DetectionOrder::decode(bytes) {
        assert_eq!(v.encode(), bytes);
    }
    if let Ok(v) = SignedOrder::decode(bytes) {
        assert_eq!(v.encode(), bytes);
    }
    if let Ok(v) = Revocation::decode(bytes) {
        assert_eq!(v.encode(), bytes);
    }
    if let Ok(v) = SignedRevocation::decode(bytes) {
        assert_eq!(v.encode(), bytes);
    }
    if let Ok(v) = AuthorityKeyring::from_bytes(bytes) {
        assert_eq!(v.encode(), bytes);
    }
    if let Ok(v) = vouchsafe_orders::ManifestStatement::decode(bytes) {
        assert_eq!(v.encode().unwrap(), bytes);
    }
    if let Ok(v) = vouchsafe_orders::SignedManifest::decode(bytes) {
        assert_eq!(v.encode(), bytes);
    }
}

fn ident(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[!-~]{{1,{max}}}")).unwrap()
}

fn scope() -> impl Strategy<Value = Scope> {
    prop_oneof![
        Just(Scope::WholeService),
        proptest::collection::vec(ident(64), 1..20).prop_map(Scope::Components),
        proptest::collection::vec(ident(64), 1..20).prop_map(Scope::Groups),
    ]
}

prop_compose! {
    fn valid_terms()(
        order_id in any::<[u8; 16]>(),
        service_id in "[^\\p{Cc}]{1,60}",
        scope in scope(),
        not_before in any::<i64>(),
        len in 1..=MAX_ORDER_SECONDS,
        threshold in 2u16..=1000,
        synthetic_rate in any::<u32>(),
        cap in 1u16..=1024,
        hash_config in any::<u16>(),
        release_line in ident(64),
        excluded_classes in proptest::collection::vec(ident(32), 0..10),
        which in 0usize..3,
    ) -> OrderTerms {
        let k = keys(which as u64);
        let not_before = not_before.min(i64::MAX - len);
        OrderTerms {
            order_id,
            service_id: service_id.chars().take(60).collect::<String>(),
            scope,
            material: MaterialKind::KnownImagery,
            not_before,
            not_after: not_before + len,
            threshold,
            synthetic_rate,
            synthetic_cap: if synthetic_rate == 0 { cap % 2 } else { cap },
            hash_config,
            centre_key: k.centre,
            release_line,
            table_key: k.table,
            excluded_classes,
            authority_key_id: k.authority.key_id(),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        decode_all(&bytes);
        // The same bytes behind each version byte, to get past the first check.
        let mut v = vec![1u8];
        v.extend_from_slice(&bytes);
        decode_all(&v);
    }

    #[test]
    fn manifest_statements_round_trip(
        order_id in any::<[u8; 16]>(), order_hash in any::<[u8; 32]>(), release_number in any::<u64>(),
        release_hash in any::<[u8; 32]>(), issued_at in any::<i64>(),
        table_manifest in proptest::collection::vec(any::<u8>(), 1..300),
    ) {
        let s = vouchsafe_orders::ManifestStatement {
            order_id, order_hash, release_number, release_hash, issued_at, table_manifest,
        };
        let enc = s.encode().unwrap();
        prop_assert_eq!(vouchsafe_orders::ManifestStatement::decode(&enc).unwrap(), s);
    }

    #[test]
    fn encode_decode_is_the_identity(terms in valid_terms()) {
        let order = DetectionOrder::new(terms).unwrap();
        let enc = order.encode();
        let back = DetectionOrder::decode(&enc).unwrap();
        prop_assert_eq!(&back, &order);
        prop_assert_eq!(back.encode(), enc);
    }

    #[test]
    fn signed_orders_round_trip_and_mutants_never_panic(
        terms in valid_terms(), at in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<prop::sample::Index>()
    ) {
        let k = keys(0);
        let mut terms = terms;
        terms.authority_key_id = k.authority.key_id();
        let signed = k.authority.sign_order(DetectionOrder::new(terms).unwrap()).unwrap();
        let enc = signed.encode();
        let ring = AuthorityKeyring::new([k.authority.public_key().clone()]).unwrap();
        let verified = ring.verify_order_bytes(&enc).unwrap();
        prop_assert_eq!(verified.signed(), &signed);
        let mut m = enc.clone();
        let i = at.index(m.len());
        m[i] = byte;
        decode_all(&m);
        if m != enc {
            prop_assert!(ring.verify_order_bytes(&m).is_err());
        }
        decode_all(&enc[..cut.index(enc.len())]);
    }
}
