#![no_main]
//! Decoders must return an error, never panic; a value they accept must re-encode to the same bytes. A decoded
//! signed release (and a signed release record) is also verified against a fixed key (it must fail cleanly, never
//! panic).
use libfuzzer_sys::fuzz_target;
use vouchsafe_release::{CentreDb, CentreSigningKey, Release, ReleaseRecord, SignedRelease, SignedReleaseRecord};

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = Release::decode(data) {
        assert_eq!(r.encode(), data, "release decode/encode must round-trip");
    }
    if let Ok(s) = SignedRelease::decode(data) {
        assert_eq!(s.encode(), data, "signed release decode/encode must round-trip");
        let key = CentreSigningKey::from_bytes(&[7u8; 32]).public();
        let _ = s.verify(&key);
    }
    if let Ok(r) = ReleaseRecord::decode(data) {
        assert_eq!(r.encode(), data, "release record decode/encode must round-trip");
    }
    if let Ok(r) = SignedReleaseRecord::decode(data) {
        assert_eq!(r.encode(), data, "signed release record decode/encode must round-trip");
        let key = CentreSigningKey::from_bytes(&[7u8; 32]).public();
        let _ = r.verify(&key);
    }
    if let Ok(db) = CentreDb::decode(data) {
        assert_eq!(db.encode(), data, "database decode/encode must round-trip");
    }
});
