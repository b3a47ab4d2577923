//! Every refusal the format and the validity check promise, each with its own error.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // test code: a failure is the test failing

mod common;
use common::*;
use ed25519_dalek::{Signer, SigningKey};
use vouchsafe_orders::labels::{LABEL_ORDER_SIGN, MAX_ORDER_SECONDS};
use vouchsafe_orders::{
    AuthorityKeyring, AuthoritySigningKey, DetectionOrder, KeyId, OrderError, Revocation, RevocationReason, Scope,
    SignedOrder, SignedRevocation,
};

#[test]
fn a_flipped_bit_anywhere_in_a_signed_order_is_refused() {
    let k = keys(1);
    let ring = keyring(&k);
    let bytes = signed(&k).encode();
    ring.verify_order_bytes(&bytes).unwrap();
    for i in 0..bytes.len() {
        for bit in [0x01u8, 0x80] {
            let mut b = bytes.clone();
            b[i] ^= bit;
            assert!(ring.verify_order_bytes(&b).is_err(), "byte {i} bit {bit:#x} accepted");
        }
    }
}

#[test]
fn a_flipped_bit_anywhere_in_a_signed_revocation_is_refused() {
    let k = keys(1);
    let ring = keyring(&k);
    let bytes = revocation(&k).encode();
    ring.verify_revocation_bytes(&bytes).unwrap();
    for i in 0..bytes.len() {
        for bit in [0x01u8, 0x80] {
            let mut b = bytes.clone();
            b[i] ^= bit;
            assert!(ring.verify_revocation_bytes(&b).is_err(), "byte {i} bit {bit:#x} accepted");
        }
    }
}

#[test]
fn an_unknown_authority_is_refused() {
    let k = keys(1);
    let stranger = keys(2);
    let ring = AuthorityKeyring::new([stranger.authority.public_key().clone()]).unwrap();
    let id = k.authority.key_id();
    assert_eq!(ring.verify_order(&signed(&k)), Err(OrderError::UnknownAuthority { key_id: id }));
    assert_eq!(ring.verify_revocation(&revocation(&k)), Err(OrderError::UnknownAuthority { key_id: id }));
}

/// Both keys are pinned, the order names the first, the signature is by the second: refused.
#[test]
fn a_signature_by_another_pinned_key_is_refused() {
    let k = keys(1);
    let ring = keyring(&k);
    let order = order(&k);
    let other = SigningKey::from_bytes(&k.other.to_secret_bytes());
    let sig = other.sign(&[LABEL_ORDER_SIGN, &order.encode()].concat());
    let mut forged = vec![1u8];
    forged.extend_from_slice(&sig.to_bytes());
    forged.extend_from_slice(&order.encode());
    let decoded = SignedOrder::decode(&forged).unwrap();
    assert_eq!(ring.verify_order(&decoded), Err(OrderError::BadSignature { what: "signed order" }));
    // The same key signing the same bytes without the label is refused too (the label is part of the input).
    let own = SigningKey::from_bytes(&k.authority.to_secret_bytes());
    forged[1..65].copy_from_slice(&own.sign(&order.encode()).to_bytes());
    assert!(ring.verify_order_bytes(&forged).is_err());
}

#[test]
fn signing_an_order_or_revocation_of_another_key_is_refused() {
    let k = keys(1);
    assert_eq!(k.other.sign_order(order(&k)).err(), Some(OrderError::KeyMismatch));
    let r = Revocation::new([0; 16], 0, RevocationReason::Unspecified, k.authority.key_id());
    assert_eq!(k.other.sign_revocation(r).err(), Some(OrderError::KeyMismatch));
}

#[test]
fn the_window_is_half_open() {
    let k = keys(1);
    let v = keyring(&k).verify_order(&signed(&k)).unwrap();
    assert_eq!(
        v.check_active(NOT_BEFORE - 1, &[]),
        Err(OrderError::NotYetValid { not_before: NOT_BEFORE, now: NOT_BEFORE - 1 })
    );
    assert_eq!(v.check_active(i64::MIN, &[]), Err(OrderError::NotYetValid { not_before: NOT_BEFORE, now: i64::MIN }));
    v.check_active(NOT_BEFORE, &[]).unwrap();
    v.check_active(NOT_AFTER - 1, &[]).unwrap();
    assert_eq!(v.check_active(NOT_AFTER, &[]), Err(OrderError::Expired { not_after: NOT_AFTER, now: NOT_AFTER }));
    assert_eq!(v.check_active(i64::MAX, &[]), Err(OrderError::Expired { not_after: NOT_AFTER, now: i64::MAX }));
}

#[test]
fn at_most_731_days() {
    assert_eq!(MAX_ORDER_SECONDS, 63_158_400);
    let k = keys(1);
    let mut t = terms(&k);
    t.not_after = t.not_before + MAX_ORDER_SECONDS;
    let longest = DetectionOrder::new(t.clone()).unwrap();
    t.not_after += 1;
    assert!(matches!(DetectionOrder::new(t.clone()), Err(OrderError::OutOfRange { .. })));
    // The decoder refuses it too (patch the longest order's not_after by one second).
    let enc = longest.encode();
    let too_long = patch(
        &enc,
        &(NOT_BEFORE + MAX_ORDER_SECONDS).to_le_bytes(),
        &(NOT_BEFORE + MAX_ORDER_SECONDS + 1).to_le_bytes(),
    );
    assert!(matches!(DetectionOrder::decode(&too_long), Err(OrderError::OutOfRange { .. })));
    // Empty and reversed windows, and windows whose difference overflows.
    for (nb, na) in [(NOT_BEFORE, NOT_BEFORE), (NOT_BEFORE, NOT_BEFORE - 1), (i64::MIN, i64::MAX), (i64::MAX, i64::MIN)]
    {
        t.not_before = nb;
        t.not_after = na;
        assert!(matches!(DetectionOrder::new(t.clone()), Err(OrderError::OutOfRange { .. })), "{nb}..{na}");
    }
}

#[test]
fn a_revocation_ends_the_order_at_once() {
    let k = keys(1);
    let ring = keyring(&k);
    let v = ring.verify_order(&signed(&k)).unwrap();
    let rev = ring.verify_revocation(&revocation(&k)).unwrap();
    // revoked_at is a day after not_before; the revocation applies before that too.
    for now in [NOT_BEFORE, NOT_BEFORE + 2 * 86_400, NOT_AFTER] {
        assert_eq!(
            v.check_active(now, std::slice::from_ref(&rev)),
            Err(OrderError::Revoked { revoked_at: NOT_BEFORE + 86_400, reason: RevocationReason::Annulled })
        );
    }
    // A revocation of another order, or by another authority, does not end this one.
    let other_order = Revocation::new(*b"kat-order-000002", 0, RevocationReason::Superseded, k.authority.key_id());
    let by_other = Revocation::new(*v.order_id(), 0, RevocationReason::Superseded, k.other.key_id());
    let others = [
        ring.verify_revocation(&k.authority.sign_revocation(other_order).unwrap()).unwrap(),
        ring.verify_revocation(&k.other.sign_revocation(by_other).unwrap()).unwrap(),
    ];
    v.check_active(NOT_BEFORE, &others).unwrap();
}

fn whole_service(k: &Keys) -> Vec<u8> {
    let mut t = terms(k);
    t.scope = Scope::WholeService;
    DetectionOrder::new(t).unwrap().encode()
}

#[test]
fn only_known_imagery() {
    let k = keys(1);
    let enc = whole_service(&k);
    // version ‖ id ‖ str8 service id ‖ scope tag ‖ material
    let at = 1 + 16 + 1 + "example-messenger.eu".len() + 1;
    assert_eq!(enc[at], 1);
    DetectionOrder::decode(&enc).unwrap();
    for b in [0u8, 2, 3, 0x7f, 0xff] {
        let mut e = enc.clone();
        e[at] = b;
        assert_eq!(DetectionOrder::decode(&e), Err(OrderError::UnknownTag { what: "material kind", got: b }));
    }
}

#[test]
fn unknown_scope_tag_and_version() {
    let k = keys(1);
    let enc = whole_service(&k);
    let mut e = enc.clone();
    e[1 + 16 + 1 + "example-messenger.eu".len()] = 3;
    assert_eq!(DetectionOrder::decode(&e), Err(OrderError::UnknownTag { what: "scope", got: 3 }));
    let mut e = enc.clone();
    e[0] = 2;
    assert_eq!(DetectionOrder::decode(&e), Err(OrderError::Version { what: "detection order", got: 2 }));
    let mut s = signed(&k).encode();
    s[0] = 0;
    assert_eq!(SignedOrder::decode(&s), Err(OrderError::Version { what: "signed order", got: 0 }));
}

#[test]
fn scope_lists_must_be_sorted_and_distinct() {
    let k = keys(1);
    let enc = order(&k).encode(); // groups ["group-a", "group-b"]
    DetectionOrder::decode(&enc).unwrap();
    let unsorted = patch(&enc, b"\x07group-a\x07group-b", b"\x07group-b\x07group-a");
    assert_eq!(
        DetectionOrder::decode(&unsorted),
        Err(OrderError::NonCanonical { what: "scope groups: 1..=1024 ids of 1..=64 bytes" })
    );
    let dup = patch(&enc, b"\x07group-a\x07group-b", b"\x07group-a\x07group-a");
    assert!(matches!(DetectionOrder::decode(&dup), Err(OrderError::NonCanonical { .. })));
    let classes = patch(&enc, b"\x0agovernment\x0estate-security", b"\x0estate-security\x0agovernment");
    assert!(matches!(DetectionOrder::decode(&classes), Err(OrderError::NonCanonical { .. })));
    // The constructor canonicalises instead.
    let mut t = terms(&k);
    t.scope = Scope::Components(vec!["b".into(), "a".into(), "b".into()]);
    assert_eq!(DetectionOrder::new(t.clone()).unwrap().scope(), &Scope::Components(vec!["a".into(), "b".into()]));
    // Empty lists, bad identifiers and too many entries are refused.
    for bad in [vec![], vec![String::new()], vec!["has space".into()], vec!["ü".into()], vec!["x".repeat(65)]] {
        t.scope = Scope::Components(bad.clone());
        assert!(DetectionOrder::new(t.clone()).is_err(), "{bad:?}");
    }
    t.scope = Scope::Groups((0..1025).map(|i| format!("g{i:04}")).collect());
    assert!(matches!(DetectionOrder::new(t.clone()), Err(OrderError::OutOfRange { .. })));
    t.scope = Scope::Groups((0..1024).map(|i| format!("g{i:04}")).collect());
    let big = DetectionOrder::new(t).unwrap();
    assert_eq!(DetectionOrder::decode(&big.encode()).unwrap(), big);
}

#[test]
fn trailing_bytes_are_refused() {
    let k = keys(1);
    let mut e = order(&k).encode();
    e.push(0);
    assert_eq!(DetectionOrder::decode(&e), Err(OrderError::TrailingBytes { what: "detection order" }));
    let mut e = signed(&k).encode();
    e.push(0);
    assert_eq!(SignedOrder::decode(&e), Err(OrderError::TrailingBytes { what: "detection order" }));
    let mut e = revocation(&k).encode();
    e.push(0);
    assert_eq!(SignedRevocation::decode(&e), Err(OrderError::TrailingBytes { what: "signed revocation" }));
    let mut e = revocation(&k).revocation().encode();
    e.push(0);
    assert_eq!(Revocation::decode(&e), Err(OrderError::TrailingBytes { what: "revocation" }));
    let mut e = keyring(&k).encode();
    e.push(0);
    assert_eq!(AuthorityKeyring::from_bytes(&e), Err(OrderError::TrailingBytes { what: "authority keyring" }));
}

#[test]
fn truncation_is_refused_everywhere() {
    let k = keys(1);
    let s = signed(&k).encode();
    for n in 0..s.len() {
        assert!(SignedOrder::decode(&s[..n]).is_err(), "{n}");
    }
    let r = revocation(&k).encode();
    for n in 0..r.len() {
        assert!(SignedRevocation::decode(&r[..n]).is_err(), "{n}");
    }
}

#[test]
fn numeric_ranges() {
    let k = keys(1);
    let mut t = terms(&k);
    for (thr, ok) in [(0u16, false), (1, false), (2, true), (1000, true), (1001, false)] {
        t.threshold = thr;
        assert_eq!(DetectionOrder::new(t.clone()).is_ok(), ok, "T = {thr}");
    }
    t.threshold = 30;
    for (p, s, ok) in [(0u32, 0u16, true), (1, 0, false), (u32::MAX, 1, true), (0, 1024, true), (5, 1025, false)] {
        t.synthetic_rate = p;
        t.synthetic_cap = s;
        assert_eq!(DetectionOrder::new(t.clone()).is_ok(), ok, "p = {p}, s = {s}");
    }
    // The decoder applies the same rule: T = 30 → 1 in the golden order's bytes.
    let enc = order(&k).encode();
    let bad = patch(&enc, &[0x1e, 0x00, 0x00, 0x00, 0x00, 0x10], &[0x01, 0x00, 0x00, 0x00, 0x00, 0x10]);
    assert!(matches!(DetectionOrder::decode(&bad), Err(OrderError::OutOfRange { .. })));
}

#[test]
fn text_and_keys() {
    let k = keys(1);
    let mut t = terms(&k);
    for bad in ["", "tab\there", &"x".repeat(256)] {
        t.service_id = bad.into();
        assert!(DetectionOrder::new(t.clone()).is_err(), "{bad:?}");
    }
    t.service_id = "Nachrichtendienst für Österreich".into(); // UTF-8 is fine in the service id
    DetectionOrder::new(t.clone()).unwrap();
    t.release_line = String::new();
    assert!(DetectionOrder::new(t.clone()).is_err());
    t.release_line = "line".into();
    // Small-order (identity) and non-canonical keys are refused.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let mut non_canonical = [0xffu8; 32];
    non_canonical[31] = 0x7f; // y = 2^255 - 1 ≥ p
    for bad in [identity, non_canonical] {
        t.centre_key = bad;
        assert!(matches!(DetectionOrder::new(t.clone()), Err(OrderError::InvalidKey { .. })));
    }
    // Invalid UTF-8 in the service id is refused by the decoder.
    let enc = order(&k).encode();
    let bad = patch(&enc, b"example", b"exampl\xff");
    assert_eq!(DetectionOrder::decode(&bad), Err(OrderError::InvalidText { what: "service id" }));
}

#[test]
fn keyring_encoding() {
    let k = keys(1);
    let ring = keyring(&k);
    assert_eq!(AuthorityKeyring::from_bytes(&ring.encode()).unwrap(), ring);
    let keys_bytes = ring.encode();
    let (a, b) = (&keys_bytes[2..34], &keys_bytes[34..66]);
    let swapped = [&[1u8, 2][..], b, a].concat();
    assert!(matches!(AuthorityKeyring::from_bytes(&swapped), Err(OrderError::NonCanonical { .. })));
    let dup = [&[1u8, 2][..], a, a].concat();
    assert!(matches!(AuthorityKeyring::from_bytes(&dup), Err(OrderError::NonCanonical { .. })));
    assert!(matches!(AuthorityKeyring::from_bytes(&[1, 0]), Err(OrderError::OutOfRange { .. })));
    assert!(AuthorityKeyring::new([]).is_err());
    assert_eq!(ring.get(&k.authority.key_id()).unwrap().key_id(), k.authority.key_id());
    assert!(ring.get(&KeyId([0; 16])).is_none());
}

#[test]
fn covers_and_excludes() {
    let k = keys(1);
    let ring = keyring(&k);
    let v = ring.verify_order(&signed(&k)).unwrap(); // groups a, b
    assert!(v.covers(None, Some("group-a")));
    assert!(v.covers(Some("any"), Some("group-b")));
    assert!(!v.covers(None, Some("group-c")));
    assert!(!v.covers(Some("group-a"), None), "a group scope does not look at components");
    assert!(!v.covers(None, None));
    assert!(v.excludes("government") && v.excludes("state-security"));
    assert!(!v.excludes("Government") && !v.excludes(""));
    let mut t = terms(&k);
    t.scope = Scope::WholeService;
    let whole = ring.verify_order(&k.authority.sign_order(DetectionOrder::new(t.clone()).unwrap()).unwrap()).unwrap();
    assert!(whole.covers(None, None));
    t.scope = Scope::Components(vec!["chats".into()]);
    let comp = ring.verify_order(&k.authority.sign_order(DetectionOrder::new(t).unwrap()).unwrap()).unwrap();
    assert!(
        comp.covers(Some("chats"), None) && !comp.covers(Some("channels"), Some("chats")) && !comp.covers(None, None)
    );
}

#[test]
fn secret_keys_round_trip_and_print_redacted() {
    let k = keys(1);
    let secret = k.authority.to_secret_bytes();
    let again = AuthoritySigningKey::from_secret_slice(&secret[..]).unwrap();
    assert!(again.ct_eq(&k.authority) && !again.ct_eq(&k.other));
    assert_eq!(again.key_id(), k.authority.key_id());
    let shown = format!("{:?}", k.authority);
    assert!(shown.contains("redacted") && !shown.contains(&hex::encode(&secret[..])));
    assert!(matches!(AuthoritySigningKey::from_secret_slice(&[0; 31]), Err(OrderError::Length { .. })));
    // Signing is deterministic and the verified order keeps every field.
    let v = keyring(&k).verify_order(&signed(&k)).unwrap();
    assert_eq!(v.signed(), &signed(&k));
    assert_eq!(v.order(), &order(&k));
    assert_eq!(v.authority().key_id(), k.authority.key_id());
    assert_eq!((v.threshold(), v.synthetic_rate(), v.synthetic_cap(), v.hash_config()), (30, 1 << 28, 60, 1));
    assert_eq!(v.centre_key().to_bytes(), k.centre);
    assert_eq!(v.table_key().to_bytes(), k.table);
    assert_eq!((v.service_id(), v.release_line()), ("example-messenger.eu", "eu-known-imagery"));
}

#[test]
fn error_messages_are_public() {
    let e = OrderError::Revoked { revoked_at: 5, reason: RevocationReason::Superseded };
    assert_eq!(e.to_string(), "order revoked at 5 (Superseded)");
    let e = OrderError::UnknownAuthority { key_id: KeyId([0xab; 16]) };
    assert!(e.to_string().contains("abababab"));
}
