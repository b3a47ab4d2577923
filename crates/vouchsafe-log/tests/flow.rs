#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
//! Log → witnesses → device, and every refusal on the way.

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use vouchsafe_log::{
    Checkpoint, CheckpointPolicy, ClientLogState, ConsistencyProof, Error, Leaf, LeafKind, Log, LogSigningKey,
    LogVerifier, Note, TreeHead, Witness, WitnessSigningKey, WitnessVerifier, verify_inclusion,
};

const ORIGIN: &str = "log.vouchsafe.example/v1";
const NOW: u64 = 1_790_000_000;

/// Go's `golang.org/x/mod/sumdb/note` example key and note (note.go's package documentation, `ExampleSign`).
const GO_SKEY: &str = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const GO_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const GO_TEXT: &str =
    "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
const GO_NOTE: &str = concat!(
    "If you think cryptography is the answer to your problem,\n",
    "then you don't know what your problem is.\n",
    "\n",
    "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n",
);

#[test]
fn go_sumdb_note_vector() {
    let sk = LogSigningKey::from_private_key(GO_SKEY).unwrap();
    assert_eq!(sk.verifier().to_string(), GO_VKEY);
    assert_eq!(sk.key_id(), 0xc74f20a3);
    assert_eq!(sk.to_private_key().as_str(), GO_SKEY);
    let vk: LogVerifier = GO_VKEY.parse().unwrap();
    assert_eq!(vk, sk.verifier());
    // Ed25519 is deterministic: signing the text reproduces Go's note byte for byte.
    let mut note = Note::new(GO_TEXT).unwrap();
    sk.sign_note(&mut note).unwrap();
    assert_eq!(note.encode(), GO_NOTE);
    let parsed = Note::parse(GO_NOTE.as_bytes()).unwrap();
    assert_eq!(parsed, note);
    vk.verify_note(&parsed).unwrap();
    // A witness key is another signature type: the same string does not parse as one.
    assert!(WitnessVerifier::parse(GO_VKEY).is_err());
}

#[test]
fn verifier_key_strings_are_strict() {
    assert!(GO_VKEY.parse::<LogVerifier>().is_ok());
    for bad in [
        "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", // wrong id
        "PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", // upper-case hex
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T",  // short base64
        "PeterNeumann+c74f20a3+BBpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", // another type
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a3",
        "",
        "+++",
    ] {
        assert!(bad.parse::<LogVerifier>().is_err(), "{bad}");
    }
}

#[test]
fn secrets_print_redacted() {
    let sk = LogSigningKey::from_private_key(GO_SKEY).unwrap();
    let dbg = format!("{sk:?}");
    assert!(dbg.contains("redacted") && dbg.contains("PeterNeumann"), "{dbg}");
    assert!(!dbg.contains("AYEKFALV"), "{dbg}");
}

struct World {
    log: Log,
    log_key: LogSigningKey,
    witnesses: Vec<Witness>,
    policy: CheckpointPolicy,
}

fn world(n_witnesses: usize, quorum: usize) -> World {
    let mut rng = ChaCha20Rng::from_seed([7; 32]);
    let log_key = LogSigningKey::generate(ORIGIN, &mut rng).unwrap();
    let mut witnesses = Vec::new();
    for i in 0..n_witnesses {
        let mut w = Witness::new(WitnessSigningKey::generate(&format!("witness{i}.example"), &mut rng).unwrap());
        w.follow(log_key.verifier()).unwrap();
        witnesses.push(w);
    }
    let policy =
        CheckpointPolicy::new(log_key.verifier(), witnesses.iter().map(Witness::verifier).collect(), quorum).unwrap();
    World { log: Log::new(), log_key, witnesses, policy }
}

impl World {
    fn append(&mut self, n: usize) {
        for i in 0..n {
            let kind = [LeafKind::Order, LeafKind::Release, LeafKind::Manifest][i % 3];
            self.log.append(Leaf::new(kind, format!("object {}", self.log.size()).into_bytes()).unwrap()).unwrap();
        }
    }

    fn signed(&self) -> Note {
        let cp = Checkpoint::new(ORIGIN, self.log.tree_head()).unwrap();
        self.log_key.sign_checkpoint(&cp).unwrap()
    }

    /// The current checkpoint, cosigned by the first `k` witnesses.
    fn cosigned(&mut self, k: usize) -> Vec<u8> {
        let mut note = self.signed();
        let bytes = note.encode().into_bytes();
        for w in self.witnesses.iter_mut().take(k) {
            let last = w.last_cosigned(ORIGIN).unwrap();
            let proof = self.log.consistency_proof(last.size, self.log.size()).unwrap();
            note.add_signature(w.cosign(&bytes, &proof, NOW).unwrap()).unwrap();
        }
        note.encode().into_bytes()
    }

    fn proof_from(&self, client: &ClientLogState) -> ConsistencyProof {
        self.log.consistency_proof(client.tree_head().size, self.log.size()).unwrap()
    }
}

#[test]
fn happy_path_with_inclusion() {
    let mut w = world(3, 2);
    w.append(5);
    let note = w.cosigned(2);
    let mut client = ClientLogState::new(w.policy.clone());
    let proof = w.proof_from(&client);
    let v = client.advance(&note, &proof).unwrap().clone();
    assert_eq!(v.tree_head(), w.log.tree_head());
    assert_eq!(v.quorum_time(), NOW);
    v.check_fresh(NOW + 3600, 3600).unwrap();
    assert_eq!(v.check_fresh(NOW + 3601, 3600), Err(Error::Stale { quorum_time: NOW, now: NOW + 3601 }));
    for i in 0..5 {
        let leaf = w.log.leaf(i).unwrap().clone();
        verify_inclusion(&leaf, i, &w.log.inclusion_proof(i, 5).unwrap(), &v).unwrap();
    }
    // Grow, cosign, advance along a consistency proof; old leaves still prove against the new checkpoint.
    w.append(7);
    let note2 = w.cosigned(3);
    let proof = w.proof_from(&client);
    let v2 = client.advance(&note2, &proof).unwrap().clone();
    assert_eq!(v2.tree_head().size, 12);
    let leaf = w.log.leaf(3).unwrap().clone();
    verify_inclusion(&leaf, 3, &w.log.inclusion_proof(3, 12).unwrap(), &v2).unwrap();
    // A restored device has the same view.
    let restored = ClientLogState::restore(w.policy.clone(), v2.note().as_bytes()).unwrap();
    assert_eq!(restored.tree_head(), v2.tree_head());
}

#[test]
fn wrong_or_missing_inclusion_proof_is_refused() {
    let mut w = world(2, 2);
    w.append(6);
    let note = w.cosigned(2);
    let v = w.policy.verify_checkpoint(&note).unwrap();
    let leaf = w.log.leaf(2).unwrap().clone();
    let proof = w.log.inclusion_proof(2, 6).unwrap();
    verify_inclusion(&leaf, 2, &proof, &v).unwrap();
    // Missing proof, another leaf's proof, another index, the same bytes under another kind.
    assert_eq!(verify_inclusion(&leaf, 2, &Default::default(), &v), Err(Error::InclusionProofInvalid));
    assert!(verify_inclusion(&leaf, 2, &w.log.inclusion_proof(3, 6).unwrap(), &v).is_err());
    assert!(verify_inclusion(&leaf, 3, &proof, &v).is_err());
    let relabelled = Leaf::new(LeafKind::Revocation, leaf.bytes().to_vec()).unwrap();
    assert!(verify_inclusion(&relabelled, 2, &proof, &v).is_err());
    assert!(matches!(verify_inclusion(&leaf, 6, &proof, &v), Err(Error::OutOfRange { .. })));
    // A leaf not yet in the checkpoint's tree.
    w.append(1);
    let later = w.log.leaf(6).unwrap().clone();
    assert!(verify_inclusion(&later, 6, &w.log.inclusion_proof(6, 7).unwrap(), &v).is_err());
}

#[test]
fn too_few_and_duplicate_cosignatures() {
    let mut w = world(3, 2);
    w.append(3);
    let one = w.cosigned(1);
    assert_eq!(w.policy.verify_checkpoint(&one), Err(Error::QuorumNotMet { got: 1, need: 2 }));
    // The same witness's cosignature twice (two timestamps) still counts once.
    let mut note = Note::parse(&one).unwrap();
    let bytes = w.signed().encode().into_bytes();
    let size = w.log.size();
    let dup = w.witnesses[0].cosign(&bytes, &ConsistencyProof::default(), NOW + 5).unwrap();
    // add_signature would replace the older line of the same key; put both lines into the text instead.
    let two_lines = format!("{}{}", note.encode(), dup.to_line());
    assert_eq!(Note::parse(two_lines.as_bytes()).unwrap().signatures().len(), 3);
    assert_eq!(w.policy.verify_checkpoint(two_lines.as_bytes()), Err(Error::QuorumNotMet { got: 1, need: 2 }));
    note.add_signature(dup).unwrap();
    assert_eq!(note.signatures().len(), 2);
    // No log signature at all: refused whatever the witnesses say.
    let cosigs_only: String =
        Note::parse(&w.cosigned(3)).unwrap().signatures()[1..].iter().map(|s| s.to_line()).collect();
    let no_log =
        format!("{}\n{}", Checkpoint::new(ORIGIN, w.log.tree_head_at(size).unwrap()).unwrap().body(), cosigs_only);
    assert_eq!(w.policy.verify_checkpoint(no_log.as_bytes()), Err(Error::LogSignatureMissing));
}

#[test]
fn flipped_bytes_are_refused() {
    let mut w = world(2, 2);
    w.append(4);
    let note = w.cosigned(2);
    w.policy.verify_checkpoint(&note).unwrap();
    let mut refused = 0;
    for i in 0..note.len() {
        for bit in [0x01u8, 0x20] {
            let mut bad = note.clone();
            bad[i] ^= bit;
            if let Ok(v) = w.policy.verify_checkpoint(&bad) {
                panic!("flipping byte {i} ({bit:#x}) still verified: {v:?}");
            }
            refused += 1;
        }
    }
    assert_eq!(refused, 2 * note.len());
}

#[test]
fn wrong_keys_are_refused() {
    let mut w = world(2, 2);
    w.append(2);
    let note = w.cosigned(2);
    let mut rng = ChaCha20Rng::from_seed([9; 32]);
    // A policy pinning another log key under the same name: the line's id does not match, so it is missing.
    let other_log = LogSigningKey::generate(ORIGIN, &mut rng).unwrap();
    let ws: Vec<_> = w.witnesses.iter().map(Witness::verifier).collect();
    let p = CheckpointPolicy::new(other_log.verifier(), ws.clone(), 2).unwrap();
    assert_eq!(p.verify_checkpoint(&note), Err(Error::LogSignatureMissing));
    // Another log's origin.
    let elsewhere = LogSigningKey::generate("elsewhere.example", &mut rng).unwrap();
    let p = CheckpointPolicy::new(elsewhere.verifier(), ws.clone(), 2).unwrap();
    assert_eq!(p.verify_checkpoint(&note), Err(Error::OriginMismatch));
    // Pinned witnesses that did not cosign: quorum not met.
    let strangers: Vec<_> =
        (0..2).map(|i| WitnessSigningKey::generate(&format!("stranger{i}"), &mut rng).unwrap().verifier()).collect();
    let p = CheckpointPolicy::new(w.log_key.verifier(), strangers, 2).unwrap();
    assert_eq!(p.verify_checkpoint(&note), Err(Error::QuorumNotMet { got: 0, need: 2 }));
    // A forged line under a pinned witness's name and id fails the whole note.
    let mut forged = Note::parse(&note).unwrap();
    let sig = forged.signatures()[1].clone();
    let mut bytes = sig.signature().to_vec();
    bytes[20] ^= 1;
    forged.add_signature(vouchsafe_log::NoteSignature::new(sig.name(), sig.key_id(), bytes).unwrap()).unwrap();
    assert_eq!(w.policy.verify_checkpoint(forged.encode().as_bytes()), Err(Error::CosignatureInvalid));
    // A policy cannot count one witness twice, nor have an impossible quorum.
    assert!(CheckpointPolicy::new(w.log_key.verifier(), vec![ws[0].clone(), ws[0].clone()], 2).is_err());
    assert!(CheckpointPolicy::new(w.log_key.verifier(), ws.clone(), 3).is_err());
    assert!(CheckpointPolicy::new(w.log_key.verifier(), ws, 0).is_err());
}

#[test]
fn unknown_signature_lines_are_ignored() {
    let mut w = world(2, 2);
    w.append(2);
    let note = w.cosigned(2);
    let mut rng = ChaCha20Rng::from_seed([3; 32]);
    let stranger = WitnessSigningKey::generate("stranger.example", &mut rng).unwrap();
    let mut s = Witness::new(stranger);
    s.follow(w.log_key.verifier()).unwrap();
    let mut n = Note::parse(&note).unwrap();
    let proof = w.log.consistency_proof(0, 2).unwrap();
    n.add_signature(s.cosign(&note, &proof, NOW).unwrap()).unwrap();
    w.policy.verify_checkpoint(n.encode().as_bytes()).unwrap();
}

#[test]
fn client_refuses_rollback_split_view_and_bad_proof() {
    let mut w = world(2, 2);
    w.append(4);
    let note4 = w.cosigned(2);
    w.append(4);
    let note8 = w.cosigned(2);
    let mut client = ClientLogState::new(w.policy.clone());
    client.advance(&note8, &w.log.consistency_proof(0, 8).unwrap()).unwrap();
    // Rollback.
    assert_eq!(client.advance(&note4, &ConsistencyProof::default()), Err(Error::Rollback { seen: 8, offered: 4 }));
    // Split view: a second history of the same size, signed by the log and cosigned by colluding witnesses
    // that were never shown the first (fresh witness state).
    let mut fork = World { log: Log::new(), log_key: w.log_key, witnesses: Vec::new(), policy: w.policy.clone() };
    let mut rng = ChaCha20Rng::from_seed([7; 32]);
    let _ = LogSigningKey::generate(ORIGIN, &mut rng).unwrap();
    for i in 0..2 {
        let mut wi = Witness::new(WitnessSigningKey::generate(&format!("witness{i}.example"), &mut rng).unwrap());
        wi.follow(fork.log_key.verifier()).unwrap();
        fork.witnesses.push(wi);
    }
    for i in 0..8 {
        fork.log.append(Leaf::new(LeafKind::Order, format!("forked {i}").into_bytes()).unwrap()).unwrap();
    }
    let forked8 = fork.cosigned(2);
    fork.policy.verify_checkpoint(&forked8).unwrap();
    assert_eq!(client.advance(&forked8, &ConsistencyProof::default()), Err(Error::SplitView { size: 8 }));
    // A larger forked tree with the honest log's proof (or any proof) fails consistency.
    fork.log.append(Leaf::new(LeafKind::Order, b"more".to_vec()).unwrap()).unwrap();
    let forked9 = fork.cosigned(2);
    let proof = fork.log.consistency_proof(8, 9).unwrap();
    assert_eq!(client.advance(&forked9, &proof), Err(Error::ConsistencyProofInvalid));
    // State never moved.
    assert_eq!(client.tree_head(), w.log.tree_head());
    // The same checkpoint again is fine.
    client.advance(&note8, &ConsistencyProof::default()).unwrap();
}

#[test]
fn witness_refuses_rollback_fork_bad_signature_and_bad_proof() {
    let mut w = world(1, 1);
    w.append(4);
    let note4 = w.signed().encode().into_bytes();
    let mut witness = w.witnesses.pop().unwrap();
    // A proof from the wrong size (the witness is at 0, so only the empty proof is right).
    assert_eq!(
        witness.cosign(&note4, &w.log.consistency_proof(2, 4).unwrap(), NOW),
        Err(Error::ConsistencyProofInvalid)
    );
    witness.cosign(&note4, &ConsistencyProof::default(), NOW).unwrap();
    w.append(4);
    let note8 = w.signed().encode().into_bytes();
    assert_eq!(witness.cosign(&note8, &ConsistencyProof::default(), NOW), Err(Error::ConsistencyProofInvalid));
    assert_eq!(witness.last_cosigned(ORIGIN).unwrap().size, 4);
    witness.cosign(&note8, &w.log.consistency_proof(4, 8).unwrap(), NOW).unwrap();
    // Rollback.
    assert_eq!(witness.cosign(&note4, &ConsistencyProof::default(), NOW), Err(Error::Rollback { seen: 8, offered: 4 }));
    // Fork at the same size.
    let forked = TreeHead { size: 8, root: w.log.tree_head_at(7).unwrap().root };
    let forked_note = w.log_key.sign_checkpoint(&Checkpoint::new(ORIGIN, forked).unwrap()).unwrap();
    assert_eq!(
        witness.cosign(forked_note.encode().as_bytes(), &ConsistencyProof::default(), NOW),
        Err(Error::SplitView { size: 8 })
    );
    // Not signed by the log, or a log it does not follow.
    let mut rng = ChaCha20Rng::from_seed([1; 32]);
    let impostor = LogSigningKey::generate(ORIGIN, &mut rng).unwrap();
    let cp = Checkpoint::new(ORIGIN, w.log.tree_head()).unwrap();
    let bad = impostor.sign_checkpoint(&cp).unwrap().encode().into_bytes();
    assert_eq!(witness.cosign(&bad, &ConsistencyProof::default(), NOW), Err(Error::LogSignatureMissing));
    let other = LogSigningKey::generate("other.example", &mut rng).unwrap();
    let cp = Checkpoint::new("other.example", w.log.tree_head()).unwrap();
    let bad = other.sign_checkpoint(&cp).unwrap().encode().into_bytes();
    assert_eq!(witness.cosign(&bad, &ConsistencyProof::default(), NOW), Err(Error::UnknownOrigin));
    let mut flipped = note8.clone();
    flipped[note8.len() - 10] ^= 1;
    assert!(witness.cosign(&flipped, &ConsistencyProof::default(), NOW).is_err());
    // Re-cosigning the current head is allowed.
    witness.cosign(&note8, &ConsistencyProof::default(), NOW + 60).unwrap();
    assert_eq!(witness.last_cosigned(ORIGIN), Some(w.log.tree_head()));
    assert!(witness.cosign(&note8, &ConsistencyProof::default(), u64::MAX).is_err());
}

#[test]
fn checkpoint_body_is_strict() {
    let ok = Checkpoint::new(ORIGIN, TreeHead::empty()).unwrap();
    assert_eq!(Checkpoint::parse(&ok.body()).unwrap(), ok);
    assert_eq!(ok.body(), format!("{ORIGIN}\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"));
    let root = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";
    for bad in [
        format!("{ORIGIN}\n00\n{root}\n"),
        format!("{ORIGIN}\n+1\n{root}\n"),
        format!("{ORIGIN}\n18446744073709551616\n{root}\n"),
        format!("{ORIGIN}\n1\n{root}"),
        format!("{ORIGIN}\n1\n{root}\nextension\n"),
        format!("{ORIGIN}\n1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFV=\n"),
        format!("{ORIGIN}\n1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuF==\n"),
        format!("\n1\n{root}\n"),
        format!("has space\n1\n{root}\n"),
    ] {
        assert!(Checkpoint::parse(&bad).is_err(), "{bad:?}");
    }
}

#[test]
fn leaf_encoding_round_trips_and_is_strict() {
    let leaf = Leaf::new(LeafKind::TransparencyReport, b"report".to_vec()).unwrap();
    let enc = leaf.encode();
    assert_eq!(enc[..6], [1, 5, 0, 0, 0, 6]);
    assert_eq!(Leaf::decode(&enc).unwrap(), leaf);
    assert!(Leaf::decode(&enc[..enc.len() - 1]).is_err());
    let mut longer = enc.clone();
    longer.push(0);
    assert!(Leaf::decode(&longer).is_err());
    let mut kind = enc.clone();
    kind[1] = 9;
    assert!(Leaf::decode(&kind).is_err());
    let mut version = enc;
    version[0] = 2;
    assert!(Leaf::decode(&version).is_err());
}

/// The cosignature/v1 layout of c2sp.org/tlog-cosignature, checked outside the crate: the line's bytes are
/// `key id ‖ u64 big-endian timestamp ‖ Ed25519 signature`, the key id uses type 0x04, and the signature is over
/// `cosignature/v1\ntime <t>\n` followed by the checkpoint. The spec's example is at time 1679315147, whose
/// example line starts `jWbPPwAAAABkGFDL` = key id 8d66cf3f, then 00000000641850cb = 1679315147.
#[test]
fn cosignature_v1_layout_matches_the_spec() {
    use base64::Engine as _;
    use ed25519_dalek::{Signature, VerifyingKey};
    let t = 1_679_315_147u64;
    let example = base64::engine::general_purpose::STANDARD.decode("jWbPPwAAAABkGFDL").unwrap();
    assert_eq!(u64::from_be_bytes(example[4..12].try_into().unwrap()), t);

    let log = LogSigningKey::from_seed("example.com/behind-the-sofa", &[5; 32]).unwrap();
    let wkey = WitnessSigningKey::from_seed("witness.example.com/w1", &[6; 32]).unwrap();
    let wv = wkey.verifier();
    assert_eq!(wv.key_id(), vouchsafe_log::key_id(wv.name(), 0x04, &wv.public_key()));
    let mut witness = Witness::new(wkey);
    witness.follow(log.verifier()).unwrap();
    let mut l = Log::new();
    l.append(Leaf::new(LeafKind::Order, b"x".to_vec()).unwrap()).unwrap();
    let cp = Checkpoint::new(log.name(), l.tree_head()).unwrap();
    let note = log.sign_checkpoint(&cp).unwrap();
    let sig = witness.cosign(note.encode().as_bytes(), &ConsistencyProof::default(), t).unwrap();
    let line = sig.to_line();
    let b64 = line.strip_prefix("\u{2014} witness.example.com/w1 ").unwrap().strip_suffix('\n').unwrap();
    let raw = base64::engine::general_purpose::STANDARD.decode(b64).unwrap();
    assert_eq!(raw.len(), 4 + 8 + 64);
    assert_eq!(u32::from_be_bytes(raw[..4].try_into().unwrap()), wv.key_id());
    assert_eq!(u64::from_be_bytes(raw[4..12].try_into().unwrap()), t);
    let msg = format!("cosignature/v1\ntime {t}\n{}", cp.body());
    let vk = VerifyingKey::from_bytes(&wv.public_key()).unwrap();
    vk.verify_strict(msg.as_bytes(), &Signature::from_slice(&raw[12..]).unwrap()).unwrap();
    // And the log's own line is a plain Ed25519 signature over the body, key id type 0x01.
    let lv = log.verifier();
    assert_eq!(lv.key_id(), vouchsafe_log::key_id(lv.name(), 0x01, &lv.public_key()));
}
