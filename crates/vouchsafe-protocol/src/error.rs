//! The protocol crate's error type. Messages describe what was wrong with public input; they never carry secrets.

use core::fmt;

/// Everything that can go wrong in the protocol core.
#[non_exhaustive]
#[allow(missing_docs)] // fields are self-describing: which input, what was expected, what came
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// An encoding had the wrong length (truncated or extended).
    Length { what: &'static str, expected: usize, got: usize },
    /// An encoding had trailing bytes after a complete value.
    TrailingBytes { what: &'static str },
    /// An encoding started with a version this implementation does not speak.
    Version { what: &'static str, got: u8 },
    /// A group element was not a canonical ristretto255 encoding.
    NonCanonicalPoint { what: &'static str },
    /// A group element was the identity where that is forbidden.
    IdentityPoint { what: &'static str },
    /// A scalar or field element was not canonically encoded.
    NonCanonicalScalar { what: &'static str },
    /// A parameter was outside its allowed range.
    Parameter { what: &'static str },
    /// The table is invalid (repeated slot, wrong chunk, root mismatch, ...).
    Table { reason: &'static str },
    /// The table could not be built (every indicator must be placed; see the message).
    TableBuild { reason: &'static str },
    /// The client state does not belong to these parameters.
    StateMismatch { what: &'static str },
    /// An indicator or image hash was empty or too long.
    Item { reason: &'static str },
    /// Threshold reconstruction failed cleanly (inconsistent shares, no ad decrypted, ...).
    Reconstruction { reason: &'static str },
    /// The threshold crate reported an error.
    Threshold(vouchsafe_threshold::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Length { what, expected, got } => {
                write!(f, "{what}: expected {expected} bytes, got {got}")
            }
            Error::TrailingBytes { what } => write!(f, "{what}: trailing bytes after the encoding"),
            Error::Version { what, got } => write!(f, "{what}: unsupported version {got}"),
            Error::NonCanonicalPoint { what } => write!(f, "{what}: not a canonical ristretto255 point"),
            Error::IdentityPoint { what } => write!(f, "{what}: identity point is not allowed"),
            Error::NonCanonicalScalar { what } => write!(f, "{what}: non-canonical scalar or field element"),
            Error::Parameter { what } => write!(f, "parameter out of range: {what}"),
            Error::Table { reason } => write!(f, "invalid table: {reason}"),
            Error::TableBuild { reason } => write!(f, "table build failed: {reason}"),
            Error::StateMismatch { what } => write!(f, "client state does not match the order: {what}"),
            Error::Item { reason } => write!(f, "invalid item: {reason}"),
            Error::Reconstruction { reason } => write!(f, "threshold reconstruction failed: {reason}"),
            Error::Threshold(e) => write!(f, "threshold: {e}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<vouchsafe_threshold::Error> for Error {
    fn from(e: vouchsafe_threshold::Error) -> Self {
        Error::Threshold(e)
    }
}

/// Result alias for the protocol crate.
pub type Result<T, E = Error> = core::result::Result<T, E>;
