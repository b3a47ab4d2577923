#![no_main]
//! The signed-order decoder and the verification path must return an error, never panic; a value the decoder
//! accepts must re-encode to the same bytes (the encoding is canonical). The same bytes are also tried as a signed
//! revocation and as a keyring.
use libfuzzer_sys::fuzz_target;
use vouchsafe_orders::{AuthorityKeyring, AuthoritySigningKey, SignedOrder, SignedRevocation};

fuzz_target!(|data: &[u8]| {
    let authority = AuthoritySigningKey::from_secret_bytes(&[7u8; 32]);
    let ring = match AuthorityKeyring::new([authority.public_key().clone()]) {
        Ok(ring) => ring,
        Err(e) => panic!("fixed keyring must build: {e}"),
    };
    if let Ok(v) = SignedOrder::decode(data) {
        assert_eq!(v.encode(), data, "decode/encode must round-trip");
        if let Ok(order) = ring.verify_order(&v) {
            let _ = order.check_active(order.not_before(), &[]);
            let _ = order.covers(None, None);
        }
    }
    if let Ok(v) = SignedRevocation::decode(data) {
        assert_eq!(v.encode(), data, "decode/encode must round-trip");
        let _ = ring.verify_revocation(&v);
    }
    if let Ok(v) = AuthorityKeyring::from_bytes(data) {
        assert_eq!(v.encode(), data, "decode/encode must round-trip");
    }
});
