//! Every domain-separation label, version byte and bound of the order formats, in one place.
//!
//! Each label names the protocol, its version and its purpose, so that a signature over an order can never be
//! taken for a signature over a revocation (or over anything else the project signs), and a key id can never
//! collide with another hash of the same key.

/// Version byte that starts every encoding of this crate (order, signed order, revocation, signed revocation,
/// keyring).
pub const VERSION: u8 = 1;

/// Ed25519 signature input of an order: `LABEL_ORDER_SIGN ‖ encode(DetectionOrder)`.
pub const LABEL_ORDER_SIGN: &[u8] = b"vouchsafe/v1/order/sign";
/// Ed25519 signature input of a revocation: `LABEL_REVOCATION_SIGN ‖ encode(Revocation)`.
pub const LABEL_REVOCATION_SIGN: &[u8] = b"vouchsafe/v1/order/revocation/sign";
/// Authority key id: the first 16 bytes of `SHA-256(LABEL_AUTHORITY_KEY_ID ‖ public key)`.
pub const LABEL_AUTHORITY_KEY_ID: &[u8] = b"vouchsafe/v1/order/authority-key-id";
/// Domain-separation label of an order's hash (what a signed manifest names).
pub const LABEL_ORDER_HASH: &[u8] = b"vouchsafe/v1/order/hash";
/// Domain-separation label of the table key's signature over a manifest statement.
pub const LABEL_MANIFEST_SIGN: &[u8] = b"vouchsafe/v1/manifest/sign";
/// Largest protocol `TableManifest` encoding a manifest statement carries (4 MiB: 2^17 chunk hashes).
pub const MAX_MANIFEST_BYTES: usize = 4 << 20;

/// Longest validity window of an order, in seconds: 24 months, defined as exactly 731 days (two years, one of them
/// a leap year) of 86 400 seconds each, so that no calendar arithmetic is needed. `not_after − not_before` must be
/// positive and at most this.
pub const MAX_ORDER_SECONDS: i64 = 731 * 86_400;

/// Longest service id, in bytes of UTF-8 (the u8 length prefix).
pub const MAX_SERVICE_ID_LEN: usize = 255;
/// Most entries in a `Components` or `Groups` scope.
pub const MAX_SCOPE_ENTRIES: usize = 1024;
/// Longest scope entry (a component or group id), in bytes.
pub const MAX_SCOPE_ENTRY_LEN: usize = 64;
/// Longest Centre release line, in bytes.
pub const MAX_RELEASE_LINE_LEN: usize = 64;
/// Most excluded account classes.
pub const MAX_EXCLUDED_CLASSES: usize = 64;
/// Longest excluded account class, in bytes.
pub const MAX_CLASS_LEN: usize = 32;
/// Smallest threshold T.
pub const MIN_THRESHOLD: u16 = 2;
/// Largest threshold T: the threshold crate's bound, the one definition the protocol uses too.
pub const MAX_THRESHOLD: u16 = narrow(vouchsafe_threshold::MAX_THRESHOLD);
/// Largest synthetic cap s: the threshold crate's bound, the one definition the protocol uses too.
pub const MAX_SYNTHETIC_CAP: u16 = narrow(vouchsafe_threshold::MAX_SYNTHETIC);

/// A bound of the threshold crate as the u16 of the order's wire fields (the build stops if it does not fit).
const fn narrow(v: usize) -> u16 {
    assert!(v <= u16::MAX as usize);
    v as u16
}
/// Most authority keys a keyring pins.
pub const MAX_PINNED_KEYS: usize = 16;

/// Length of an order id.
pub const ORDER_ID_LEN: usize = 16;
/// Length of an authority key id.
pub const KEY_ID_LEN: usize = 16;
/// Length of an Ed25519 public key.
pub const PUBLIC_KEY_LEN: usize = 32;
/// Length of an Ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;
/// Length of an encoded revocation.
pub const REVOCATION_LEN: usize = 1 + ORDER_ID_LEN + 8 + 1 + KEY_ID_LEN;

/// Scope tag: the whole service.
pub const SCOPE_WHOLE_SERVICE: u8 = 0;
/// Scope tag: listed components.
pub const SCOPE_COMPONENTS: u8 = 1;
/// Scope tag: listed groups.
pub const SCOPE_GROUPS: u8 = 2;
/// Material kind byte: known imagery (the only one v1 can express).
pub const MATERIAL_KNOWN_IMAGERY: u8 = 1;
