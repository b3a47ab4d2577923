//! The release crate's error type. Messages name the input and the rule that failed; they never carry a hash, a
//! source reference or key material.

use core::fmt;

/// Everything that can go wrong with imports, releases, signatures and chains.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// An encoding was truncated: `what` needed more bytes than were left.
    Length {
        /// Which encoding.
        what: &'static str,
        /// Bytes the encoding needed so far.
        expected: usize,
        /// Bytes there were.
        got: usize,
    },
    /// An encoding had bytes after a complete value.
    TrailingBytes {
        /// Which encoding.
        what: &'static str,
    },
    /// An encoding started with a version this implementation does not speak.
    Version {
        /// Which encoding.
        what: &'static str,
        /// The version byte found.
        got: u8,
    },
    /// A value (decoded, or given by the caller) broke a rule of its format.
    Invalid {
        /// The field and the rule.
        what: &'static str,
    },
    /// The signed release names another key than the one it was verified with.
    WrongKey,
    /// The Ed25519 signature did not verify.
    BadSignature,
    /// A primary hash arrived with a different secondary hash than the one already recorded for it (the
    /// conflicting hashes are deliberately not named).
    SecondaryConflict,
    /// A release does not follow the chain it was applied to, or a planned release does not follow it.
    Chain {
        /// The rule that failed.
        reason: &'static str,
    },
    /// A removal named an indicator that is not in the current set, or that is not marked as a false positive.
    Removal {
        /// The rule that failed.
        reason: &'static str,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Length { what, expected, got } => {
                write!(f, "{what}: truncated (needed {expected} bytes, got {got})")
            }
            Error::TrailingBytes { what } => write!(f, "{what}: trailing bytes after the encoding"),
            Error::Version { what, got } => write!(f, "{what}: unsupported version {got}"),
            Error::Invalid { what } => write!(f, "invalid value: {what}"),
            Error::WrongKey => f.write_str("the release is signed by another Centre key"),
            Error::BadSignature => f.write_str("the release signature does not verify"),
            Error::SecondaryConflict => {
                f.write_str("a primary hash came with a different secondary hash than the one already recorded")
            }
            Error::Chain { reason } => write!(f, "release does not follow the chain: {reason}"),
            Error::Removal { reason } => write!(f, "invalid removal: {reason}"),
        }
    }
}

impl std::error::Error for Error {}

/// This crate's result type.
pub type Result<T> = core::result::Result<T, Error>;

pub(crate) const fn invalid(what: &'static str) -> Error {
    Error::Invalid { what }
}
