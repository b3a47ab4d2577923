#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
//! Decoders never panic, and what they accept re-encodes to the same bytes.

use proptest::prelude::*;
use vouchsafe_log::{Checkpoint, CheckpointPolicy, InclusionProof, Leaf, LogSigningKey, Note, WitnessSigningKey};

fn policy() -> CheckpointPolicy {
    let log = LogSigningKey::from_seed("log.example", &[1; 32]).unwrap();
    let w = WitnessSigningKey::from_seed("w.example", &[2; 32]).unwrap();
    CheckpointPolicy::new(log.verifier(), vec![w.verifier()], 1).unwrap()
}

fn check(bytes: &[u8]) {
    if let Ok(n) = Note::parse(bytes) {
        assert_eq!(n.encode().as_bytes(), bytes, "note must round-trip");
        if let Ok(c) = Checkpoint::parse(n.text()) {
            assert_eq!(c.body(), n.text(), "checkpoint must round-trip");
        }
    }
    let _ = policy().verify_checkpoint(bytes);
    let _ = Leaf::decode(bytes);
    let _ = InclusionProof::decode(bytes);
}

proptest! {
    #[test]
    fn arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        check(&bytes);
    }

    #[test]
    fn note_shaped_text(origin in "[a-z./]{0,12}", size in "[0-9+ ]{0,5}", root in "[A-Za-z0-9+/=]{0,46}",
                        name in "[a-z. +]{0,8}", sig in "[A-Za-z0-9+/=]{0,110}", sep in "\n{0,3}") {
        let text = format!("{origin}\n{size}\n{root}\n{sep}\u{2014} {name} {sig}\n");
        check(text.as_bytes());
    }
}
