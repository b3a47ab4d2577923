#![no_main]
//! Decoders of the formats after the threshold must return an error, never panic; a value they accept must
//! re-encode to the same bytes. A decoded signed message, receipt or transparency report is also verified against
//! a fixed key (it must fail cleanly, never panic).
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use vouchsafe_case::{
    CentreReceiptKey, CentreReceiptSigner, Message, ProviderKey, ProviderSigningKey, Receipt, SignedMessage,
    SignedReceipt, SignedTransparencyReport, TransparencyReport,
};

/// The fixed keys, derived once (a scalar multiplication each would dominate every run).
fn keys() -> &'static (ProviderKey, CentreReceiptKey) {
    static KEYS: OnceLock<(ProviderKey, CentreReceiptKey)> = OnceLock::new();
    KEYS.get_or_init(|| {
        (
            ProviderSigningKey::from_secret_bytes(&[7u8; 32]).public(),
            CentreReceiptSigner::from_secret_bytes(&[9u8; 32]).public(),
        )
    })
}

fuzz_target!(|data: &[u8]| {
    let (provider, centre) = keys();
    if let Ok(m) = Message::decode(data) {
        assert_eq!(m.encode().ok().as_deref(), Some(data), "message decode/encode must round-trip");
    }
    if let Ok(s) = SignedMessage::decode(data) {
        assert_eq!(s.encode(), data, "signed message decode/encode must round-trip");
        assert!(s.message_unverified().is_ok(), "a decoded signed message holds a valid message");
        let _ = s.verify(provider);
        let _ = s.digest();
    }
    if let Ok(r) = Receipt::decode(data) {
        assert_eq!(r.encode().ok().as_deref(), Some(data), "receipt decode/encode must round-trip");
    }
    if let Ok(s) = SignedReceipt::decode(data) {
        assert_eq!(s.encode(), data, "signed receipt decode/encode must round-trip");
        let _ = s.verify(centre);
    }
    if let Ok(t) = TransparencyReport::decode(data) {
        assert_eq!(t.encode().ok().as_deref(), Some(data), "transparency report decode/encode must round-trip");
    }
    if let Ok(s) = SignedTransparencyReport::decode(data) {
        assert_eq!(s.encode(), data, "signed transparency report decode/encode must round-trip");
        let _ = s.verify(provider);
    }
});
