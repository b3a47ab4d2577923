//! Every domain-separation label, version byte and limit of the case formats, in one place (re-exported at the
//! crate root).
//!
//! Each label names the protocol, its version, the signer and the purpose (`vouchsafe/v1/<party>/<object>/<use>`),
//! so that no signature or hash of this crate shares an input space with another one, here or elsewhere in
//! vouchsafe: a provider's signature over a message never verifies as one over a transparency report, and a
//! Centre receipt signature (made with the same key as the Centre's release signatures) never verifies as a
//! release, release record or export signature.

/// Version byte that starts every encoding of this crate.
pub const VERSION: u8 = 1;

/// Ed25519 signature input of a message: `LABEL_MESSAGE_SIGN ‖ Message::encode()`.
pub const LABEL_MESSAGE_SIGN: &[u8] = b"vouchsafe/v1/provider/message/sign";
/// Ed25519 signature input of a receipt: `LABEL_RECEIPT_SIGN ‖ Receipt::encode()`.
pub const LABEL_RECEIPT_SIGN: &[u8] = b"vouchsafe/v1/centre/receipt/sign";
/// Ed25519 signature input of an export bundle: `LABEL_EXPORT_SIGN ‖ SHA-256(bundle)`.
pub const LABEL_EXPORT_SIGN: &[u8] = b"vouchsafe/v1/centre/export/sign";
/// Ed25519 signature input of a transparency report: `LABEL_TRANSPARENCY_SIGN ‖ TransparencyReport::encode()`.
pub const LABEL_TRANSPARENCY_SIGN: &[u8] = b"vouchsafe/v1/provider/transparency-report/sign";
/// A signed message's digest: `SHA-256(LABEL_MESSAGE_DIGEST ‖ SignedMessage::encode())`.
pub const LABEL_MESSAGE_DIGEST: &[u8] = b"vouchsafe/v1/provider/message/digest";
/// A provider key id: the first 8 bytes of `SHA-256(LABEL_PROVIDER_KEY_ID ‖ public key)`.
pub const LABEL_PROVIDER_KEY_ID: &[u8] = b"vouchsafe/v1/provider/key-id";

/// Largest encoding of a whole [`crate::SignedMessage`] (16 MiB).
pub const MAX_MESSAGE_BYTES: usize = 16 << 20;
/// Bytes a [`crate::SignedMessage`] adds around the message encoding: the version byte and the signature.
pub const SIGNED_OVERHEAD: usize = 1 + SIGNATURE_LEN;
/// Largest [`crate::Message`] encoding: what fits in a [`MAX_MESSAGE_BYTES`] signed message.
pub const MAX_MESSAGE_BODY: usize = MAX_MESSAGE_BYTES - SIGNED_OVERHEAD;
/// Most items in a report.
pub const MAX_ITEMS: usize = 1024;
/// Most review decisions in a report.
pub const MAX_DECISIONS: usize = 16;
/// Longest free text (a decision's comment, a withdrawal's reason, a receipt's false-positive reason), in bytes
/// of UTF-8.
pub const MAX_TEXT: usize = 4000;
/// Longest provider or reviewer name, in bytes (names are 1..=64 bytes of `[A-Za-z0-9._@-]`).
pub const MAX_NAME: usize = 64;
/// Longest account reference, in bytes of UTF-8 (1..=256, no control characters).
pub const MAX_ACCOUNT: usize = 256;
/// Longest associated data of one report item, in bytes (1..=65535).
pub const MAX_AD: usize = 65535;
/// Longest authority-signed order a report carries, in bytes (1..=65536).
pub const MAX_SIGNED_ORDER: usize = 65536;
/// Most entries in an indicator feedback message.
pub const MAX_FEEDBACK_ENTRIES: usize = 100_000;
/// Longest primary hash in an indicator feedback entry, in bytes (1..=64).
pub const MAX_PRIMARY: usize = 64;
/// Most counters in a transparency report.
pub const MAX_COUNTERS: usize = 64;
/// Longest counter name, in bytes (1..=64 of `[a-z0-9_]`).
pub const MAX_COUNTER_NAME: usize = 64;
/// Most decision times in a transparency report.
pub const MAX_DECISION_TIMES: usize = 100_000;

/// Length of an Ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;
/// Length of a message, voucher, order or export id.
pub const ID_LEN: usize = 16;

/// Message kind tag of a report.
pub const KIND_REPORT: u8 = 1;
/// Message kind tag of a withdrawal.
pub const KIND_WITHDRAWAL: u8 = 2;
/// Message kind tag of an indicator feedback.
pub const KIND_FEEDBACK: u8 = 3;
