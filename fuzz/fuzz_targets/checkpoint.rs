#![no_main]
//! Note, checkpoint and cosignature decoding must return an error, never panic; a note or checkpoint that parses
//! must re-encode to the same bytes; verification under a fixed policy must never panic either.
use libfuzzer_sys::fuzz_target;
use vouchsafe_log::{
    Checkpoint, CheckpointPolicy, ClientLogState, ConsistencyProof, LogSigningKey, Note, WitnessSigningKey,
};

fuzz_target!(|data: &[u8]| {
    if let Ok(note) = Note::parse(data) {
        assert_eq!(note.encode().as_bytes(), data, "note must round-trip");
        if let Ok(c) = Checkpoint::parse(note.text()) {
            assert_eq!(c.body(), note.text(), "checkpoint must round-trip");
        }
    }
    let (Ok(log), Ok(w)) =
        (LogSigningKey::from_seed("log.example", &[1; 32]), WitnessSigningKey::from_seed("w.example", &[2; 32]))
    else {
        return;
    };
    let Ok(policy) = CheckpointPolicy::new(log.verifier(), vec![w.verifier()], 1) else { return };
    let _ = policy.verify_checkpoint(data);
    let mut state = ClientLogState::new(policy);
    let _ = state.advance(data, &ConsistencyProof::default());
    let _ = ConsistencyProof::decode(data);
});
