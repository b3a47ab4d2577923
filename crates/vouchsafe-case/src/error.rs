//! The crate's one error type. Messages name the encoding or field and the rule that failed, with public numbers
//! only; they never carry key material, associated data, account references or free text from the input.

/// Why bytes are not a valid encoding (the [`Error::Decode`] detail).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeReason {
    /// The input ended early: `expected` bytes were needed up to the end of the field that did not fit.
    Truncated {
        /// Bytes needed.
        expected: usize,
        /// Bytes in the input.
        got: usize,
    },
    /// Bytes followed a complete encoding.
    TrailingBytes,
    /// The version byte is not [`crate::VERSION`].
    Version {
        /// The byte found.
        got: u8,
    },
    /// A tag byte is not one v1 defines.
    UnknownTag {
        /// The byte found.
        got: u8,
    },
    /// The input is longer than its format allows.
    TooLarge {
        /// The largest allowed length.
        max: usize,
        /// The length given.
        got: usize,
    },
}

impl core::fmt::Display for DecodeReason {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            DecodeReason::Truncated { expected, got } => write!(f, "truncated (needed {expected} bytes, got {got})"),
            DecodeReason::TrailingBytes => f.write_str("trailing bytes after the encoding"),
            DecodeReason::Version { got } => write!(f, "unsupported version {got}"),
            DecodeReason::UnknownTag { got } => write!(f, "unknown tag {got}"),
            DecodeReason::TooLarge { max, got } => write!(f, "too large ({got} bytes, at most {max})"),
        }
    }
}

/// Everything that can go wrong with the case formats.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The bytes are not an encoding of `what`.
    #[error("{what}: {reason}")]
    Decode {
        /// Which encoding (or tag) was being read.
        what: &'static str,
        /// What was wrong.
        reason: DecodeReason,
    },
    /// A value (decoded, or given by the caller to encode or sign) breaks a rule of its format.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// The rule it breaks.
        reason: &'static str,
    },
    /// The Ed25519 signature does not verify (strictly) under the key given.
    #[error("signature does not verify")]
    BadSignature,
    /// 32 bytes that are not a canonical Ed25519 public key, or a key of small order.
    #[error("not a valid Ed25519 public key")]
    BadKey,
}

/// This crate's result type.
pub type Result<T> = core::result::Result<T, Error>;

pub(crate) const fn invalid(field: &'static str, reason: &'static str) -> Error {
    Error::Invalid { field, reason }
}

impl From<vouchsafe_wire::WireError> for Error {
    fn from(e: vouchsafe_wire::WireError) -> Self {
        use vouchsafe_wire::WireError as W;
        match e {
            W::Length { what, expected, got } => {
                Error::Decode { what, reason: DecodeReason::Truncated { expected, got } }
            }
            W::TrailingBytes { what } => Error::Decode { what, reason: DecodeReason::TrailingBytes },
            W::Version { what, got } => Error::Decode { what, reason: DecodeReason::Version { got } },
        }
    }
}
