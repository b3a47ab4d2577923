//! Every domain-separation label, prefix, type byte and version constant of the log, in one place.
//!
//! The Merkle prefixes are RFC 6962's (§2.1), the signature type bytes and line syntax are C2SP signed-note's
//! (<https://c2sp.org/signed-note>), the cosigned-message header is C2SP tlog-cosignature's
//! (<https://c2sp.org/tlog-cosignature>). Only [`LEAF_VERSION`] and [`PROOF_VERSION`] are vouchsafe's own.

/// First byte of the leaf-hash input: `leaf hash = SHA-256(0x00 ‖ leaf encoding)` (RFC 6962 §2.1).
pub const MERKLE_LEAF_PREFIX: u8 = 0x00;
/// First byte of the interior-node hash input: `SHA-256(0x01 ‖ left ‖ right)` (RFC 6962 §2.1).
pub const MERKLE_NODE_PREFIX: u8 = 0x01;

/// Version byte that starts every leaf encoding (`version ‖ kind ‖ u32 length ‖ bytes`).
pub const LEAF_VERSION: u8 = 1;
/// Version byte that starts the wire encoding of an inclusion or consistency proof.
pub const PROOF_VERSION: u8 = 1;

/// Signed-note signature type of a plain Ed25519 note signature (the log's checkpoint signature).
pub const SIG_TYPE_ED25519: u8 = 0x01;
/// Signed-note signature type of a timestamped Ed25519 witness cosignature (tlog-cosignature, cosignature/v1).
pub const SIG_TYPE_COSIGNATURE_V1: u8 = 0x04;

/// The first line of the message a witness signs (without its newline): the cosignature's domain separation.
pub const COSIGNATURE_V1_HEADER: &str = "cosignature/v1";
/// The prefix of the second line of the cosigned message, followed by the decimal POSIX timestamp.
pub const COSIGNATURE_TIME_PREFIX: &str = "time ";

/// The start of every signature line of a signed note: em dash (U+2014) and a space.
pub const NOTE_SIGNATURE_PREFIX: &str = "\u{2014} ";
/// The prefix of the private-key string form (`PRIVATE+KEY+name+keyid+base64(type ‖ seed)`, as Go's `note`).
pub const PRIVATE_KEY_PREFIX: &str = "PRIVATE+KEY+";
