//! # vouchsafe-log
//!
//! The transparency log of vouchsafe (DESIGN.md §4): detection orders, revocations, indicator releases, table
//! manifests and transparency reports are leaves of an append-only Merkle log, published as signed checkpoints
//! that independent witnesses cosign only when the log has not forked. Devices pin the log key, the witness keys
//! and a quorum, persist the newest checkpoint, and require inclusion of what they use and consistency with what
//! they saw, failing closed (Go's checksum database is the model). Sans-IO: no files, no clock (times are
//! arguments), no global RNG.
//!
//! ## Formats
//!
//! * **Leaf** ([`Leaf`]): `version (1) ‖ kind (u8, [`LeafKind`]) ‖ u32 big-endian length ‖ bytes`; leaf hash
//!   `SHA-256(0x00 ‖ encoding)`, interior nodes `SHA-256(0x01 ‖ left ‖ right)`, empty root `SHA-256("")`
//!   (RFC 6962 §2.1; RFC 9162 §2.1). The kind is inside the hash, so one kind of object cannot be passed off as
//!   another.
//! * **Proofs** ([`InclusionProof`], [`ConsistencyProof`]): RFC 6962 §2.1.1 audit paths and §2.1.2 consistency
//!   proofs; wire form `version ‖ u8 count ‖ hashes`.
//! * **Checkpoint** ([`Checkpoint`], <https://c2sp.org/tlog-checkpoint>): `origin\nsize\nbase64(root)\n`; size in
//!   decimal without leading zeros, root in canonical padded standard base64. This log writes no extension lines
//!   and its verifiers refuse any.
//! * **Signed note** ([`Note`], <https://c2sp.org/signed-note>): text, a blank line, lines
//!   `— name base64(u32 key id ‖ signature)`. Key ids are `SHA-256(name ‖ 0x0A ‖ type ‖ public key)[:4]`;
//!   verifier keys are written `name+keyid+base64(type ‖ key)` ([`LogVerifier`], [`WitnessVerifier`]) and
//!   private keys `PRIVATE+KEY+name+keyid+base64(type ‖ seed)`, as Go's `sumdb/note` (its test vector is in the
//!   tests). The log signs with Ed25519, type 0x01; the key name is the origin.
//! * **Cosignature** (<https://c2sp.org/tlog-cosignature>, cosignature/v1): type 0x04; the signature bytes are
//!   `u64 big-endian timestamp ‖ Ed25519 signature` over `cosignature/v1\ntime <timestamp>\n<checkpoint text>`.
//!
//! Every constant is in [`labels`].
//!
//! ## What each check guarantees, and what it does not
//!
//! * [`CheckpointPolicy::verify_checkpoint`]: the pinned log key signed this tree head, and at least `quorum`
//!   distinct pinned witnesses each stated that, at their timestamp, it was the largest tree they had seen
//!   consistent with everything they cosigned before. Unless `quorum` witnesses collude with the log, no other
//!   device can hold a cosigned checkpoint of the same log that is inconsistent with this one. It does **not**
//!   say the checkpoint is recent: [`VerifiedCheckpoint::check_fresh`] compares its
//!   [`VerifiedCheckpoint::quorum_time`] with the device's clock (a log that stops publishing, or a replayed old
//!   checkpoint, can freeze a device otherwise). Lines of unknown keys are ignored;
//!   a failing line under a pinned key refuses the whole note.
//! * [`ClientLogState::advance`]: the device's view only moves forward along verified consistency proofs, so a
//!   log (or a network attacker) cannot roll it back, fork it or rewrite history it has seen. It does not detect
//!   a fork that the device never sees both sides of; the witnesses do that.
//! * [`verify_inclusion`]: the leaf, with its kind, is in the verified tree at that index, so it is public to
//!   everyone who watches the log. It says nothing about whether the object inside is valid (the order's own
//!   signature and validity rules still apply), nor that it has not been revoked by a later leaf.
//! * [`Witness::cosign`]: a witness cosigns only a log-signed checkpoint that extends its last cosigned one; it
//!   refuses rollback ([`Error::Rollback`]) and a second root for a size ([`Error::SplitView`]). It is only as
//!   good as its persisted state (see [`Witness`]).
//! * The log proves what it published, not what a provider-built table contains (DESIGN.md §4, v1 limitation).
//!
//! ## Building blocks, and why
//!
//! * **ed25519-dalek 3** for every signature: the same curve25519-dalek 5 / sha2 0.11 stack the protocol
//!   crate already builds, zeroizing secret keys, `verify_strict` (no small-order keys, canonical `S`).
//! * **ct-merkle 0.3** (rozbb; MIT/Apache-2.0; `no_std`, depends only on digest 0.11 and subtle, both already in
//!   the tree) verifies inclusion and consistency proofs. Its in-memory tree only proves against its *current*
//!   size, while a log must serve proofs for the size of an older checkpoint, so this crate generates proofs
//!   itself ([`merkle::Tree`], RFC 6962 §2.1.1–2.1.2) and tests the generator against the RFC's known answers and
//!   against ct-merkle's independent verifier. Its inclusion verifier can panic for leaf indexes above 2^63 despite
//!   its documentation, so sizes are capped at [`merkle::MAX_TREE_SIZE`] before it is called.
//! * **signed_note 0.2 / tlog_tiles 0.2** (Cloudflare azul) were not taken: they are built on ed25519-dalek 2,
//!   curve25519-dalek 4, sha2 0.10, rand_core 0.6, signature 2, base64 0.21 and thiserror 1 (tlog_tiles also url
//!   with its IDNA/ICU tree and serde_json), a second copy of the whole crypto stack; neither released version
//!   implements cosignature/v1 (timestamped, type 0x04), which is the part we need most; and tlog_tiles' proof
//!   code `assert!`s. The signed-note and checkpoint syntax they would have given us is about two hundred lines
//!   here, checked against Go's `sumdb/note` vector and the specs' rules.
//! * **base64 0.22** (already in the tree) for the note encodings, decoded strictly (canonical only).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod checkpoint;
mod client;
mod error;
mod keys;
pub mod labels;
mod leaf;
mod log;
pub mod merkle;
mod note;
mod witness;

pub use checkpoint::Checkpoint;
pub use client::{CheckpointPolicy, ClientLogState, VerifiedCheckpoint, verify_inclusion};
pub use error::{Error, Result};
pub use keys::{LogSigningKey, LogVerifier, MAX_COSIGNATURE_TIMESTAMP, WitnessSigningKey, WitnessVerifier, key_id};
pub use leaf::{Leaf, LeafKind, MAX_LEAF_BYTES};
pub use log::Log;
pub use merkle::{ConsistencyProof, Hash, InclusionProof, TreeHead};
pub use note::{MAX_NOTE_BYTES, MAX_NOTE_SIGNATURES, Note, NoteSignature, is_valid_key_name};
pub use witness::Witness;
