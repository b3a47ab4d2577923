#![no_main]
//! Note, checkpoint and cosignature decoding must return an error, never panic; a note or checkpoint that parses
//! must re-encode to the same bytes; verification under a fixed policy must never panic either.
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use vouchsafe_log::{
    Checkpoint, CheckpointPolicy, ClientLogState, ConsistencyProof, LogSigningKey, Note, WitnessSigningKey,
};

/// One pinned log key and one witness, derived once (key derivation would otherwise dominate each run).
fn policy() -> Option<&'static CheckpointPolicy> {
    static POLICY: OnceLock<Option<CheckpointPolicy>> = OnceLock::new();
    POLICY
        .get_or_init(|| {
            let log = LogSigningKey::from_seed("log.example", &[1; 32]).ok()?;
            let w = WitnessSigningKey::from_seed("w.example", &[2; 32]).ok()?;
            CheckpointPolicy::new(log.verifier(), vec![w.verifier()], 1).ok()
        })
        .as_ref()
}

fuzz_target!(|data: &[u8]| {
    if let Ok(note) = Note::parse(data) {
        assert_eq!(note.encode().as_bytes(), data, "note must round-trip");
        if let Ok(c) = Checkpoint::parse(note.text()) {
            assert_eq!(c.body(), note.text(), "checkpoint must round-trip");
        }
    }
    let _ = ConsistencyProof::decode(data);
    let Some(policy) = policy() else { return };
    let _ = policy.verify_checkpoint(data);
    let mut state = ClientLogState::new(policy.clone());
    let _ = state.advance(data, &ConsistencyProof::default());
});
