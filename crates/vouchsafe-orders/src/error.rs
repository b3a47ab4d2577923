//! The crate's one error type. Messages name what was wrong with public input (field names, public times, key
//! ids); they never carry a secret key.

use core::fmt;

use crate::keys::KeyId;
use crate::revocation::RevocationReason;

/// Everything that can go wrong with an order, a revocation or a keyring.
///
/// The decoding variants ([`OrderError::Length`] to [`OrderError::InvalidKey`]) mean the bytes are not a valid
/// encoding; [`OrderError::UnknownAuthority`] and [`OrderError::BadSignature`] mean they are not from a pinned
/// authority; [`OrderError::NotYetValid`], [`OrderError::Expired`] and [`OrderError::Revoked`] mean a verified
/// order is not active now. A client must not hash or send anything, and a server must refuse vouchers, on any of
/// them.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderError {
    /// The encoding ended early.
    Length {
        /// Which encoding.
        what: &'static str,
        /// Bytes needed to read the next field.
        expected: usize,
        /// Bytes there were.
        got: usize,
    },
    /// Bytes followed a complete encoding.
    TrailingBytes {
        /// Which encoding.
        what: &'static str,
    },
    /// The encoding started with a version this implementation does not speak.
    Version {
        /// Which encoding.
        what: &'static str,
        /// The version byte found.
        got: u8,
    },
    /// A tag byte (scope, material kind, revocation reason) is not one v1 defines.
    UnknownTag {
        /// Which tag.
        what: &'static str,
        /// The byte found.
        got: u8,
    },
    /// A value is outside its allowed range (a length, a count, T, p, s, the validity window).
    OutOfRange {
        /// Which field and rule.
        what: &'static str,
    },
    /// A list is not in canonical order: unsorted or with a duplicate.
    NonCanonical {
        /// Which list.
        what: &'static str,
    },
    /// A text field is not valid UTF-8, or uses characters its field refuses.
    InvalidText {
        /// Which field.
        what: &'static str,
    },
    /// A public key is not a canonical encoding of an Ed25519 point, or is of small order.
    InvalidKey {
        /// Which key.
        what: &'static str,
    },
    /// The object names an authority key id that the keyring does not pin.
    UnknownAuthority {
        /// The key id named.
        key_id: KeyId,
    },
    /// The signature does not verify under the authority key that the object names.
    BadSignature {
        /// Which object.
        what: &'static str,
    },
    /// A signed manifest names another order (its id or its hash differ from the verified order's).
    WrongOrder,
    /// The caller asked a signing key to sign an order or revocation that names another authority key id.
    KeyMismatch,
    /// The order's validity window has not begun: `now < not_before`.
    NotYetValid {
        /// Start of the window.
        not_before: i64,
        /// The time checked.
        now: i64,
    },
    /// The order's validity window has ended: `now ≥ not_after`.
    Expired {
        /// End of the window (exclusive).
        not_after: i64,
        /// The time checked.
        now: i64,
    },
    /// A verified revocation by the order's authority ends the order.
    Revoked {
        /// When the authority revoked it (its record; the revocation applies at once whatever this says).
        revoked_at: i64,
        /// Why.
        reason: RevocationReason,
    },
}

impl fmt::Display for OrderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OrderError::Length { what, expected, got } => {
                write!(f, "{what}: truncated, needed {expected} bytes, got {got}")
            }
            OrderError::TrailingBytes { what } => write!(f, "{what}: trailing bytes after the encoding"),
            OrderError::Version { what, got } => write!(f, "{what}: unsupported version {got}"),
            OrderError::UnknownTag { what, got } => write!(f, "{what}: unknown tag {got}"),
            OrderError::OutOfRange { what } => write!(f, "out of range: {what}"),
            OrderError::NonCanonical { what } => write!(f, "{what}: not sorted, or has a duplicate"),
            OrderError::InvalidText { what } => write!(f, "{what}: invalid text"),
            OrderError::InvalidKey { what } => write!(f, "{what}: not a valid Ed25519 public key"),
            OrderError::UnknownAuthority { key_id } => write!(f, "unknown authority key id {key_id}"),
            OrderError::BadSignature { what } => write!(f, "{what}: signature does not verify"),
            OrderError::WrongOrder => write!(f, "the manifest names another detection order"),
            OrderError::KeyMismatch => write!(f, "the signing key is not the authority key the object names"),
            OrderError::NotYetValid { not_before, now } => {
                write!(f, "order not yet valid: valid from {not_before}, now {now}")
            }
            OrderError::Expired { not_after, now } => write!(f, "order expired: valid until {not_after}, now {now}"),
            OrderError::Revoked { revoked_at, reason } => write!(f, "order revoked at {revoked_at} ({reason:?})"),
        }
    }
}

impl std::error::Error for OrderError {}

/// Result alias for this crate.
pub type Result<T, E = OrderError> = core::result::Result<T, E>;
