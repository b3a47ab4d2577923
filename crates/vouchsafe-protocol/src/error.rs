//! The protocol crate's error type, grouped by whose fault it is (as rustls groups its errors): the peer's input
//! was invalid, the caller misused the API, or an invariant of this crate broke. Messages describe what was wrong
//! with public input; they never carry secrets.

use core::fmt;

/// Everything that can go wrong in the protocol core, grouped by fault.
///
/// A server maps [`Error::Invalid`] to "the device sent something invalid" (a client error status), a client maps
/// it to "the server sent something invalid" (refuse and keep the old state); [`Error::Misuse`] is a bug or a
/// configuration error in the caller; [`Error::Internal`] is a bug in this crate and must never be blamed on a peer.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// Bytes or values from another party (a voucher, a table, a manifest, an update, a stored state or table
    /// file) did not decode or failed validation: the peer misbehaved, or the stored data is corrupt.
    Invalid(InvalidInput),
    /// The caller asked for something this API refuses (parameters out of range, a state of another order, an
    /// empty item, an indicator set that cannot be placed).
    Misuse(Misuse),
    /// An invariant of this crate did not hold (a bug here, never the peer's or the caller's fault).
    Internal {
        /// Which invariant.
        what: &'static str,
    },
}

/// Invalid input from another party. The fields name the input and what was expected.
#[non_exhaustive]
#[allow(missing_docs)] // fields are self-describing: which input, what was expected, what came
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvalidInput {
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
    /// A decoded value was outside its allowed range.
    Parameter { what: &'static str },
    /// The table is invalid (repeated slot, wrong chunk, root mismatch, ...).
    Table { reason: &'static str },
    /// Threshold reconstruction failed cleanly on the opened vouchers (inconsistent shares, no ad decrypted, ...).
    Reconstruction { reason: &'static str },
    /// The threshold crate refused the shares or coefficients (duplicate x, zero x, ...).
    Threshold(vouchsafe_threshold::Error),
}

/// A request this API refuses. The fields name the argument and the rule.
#[non_exhaustive]
#[allow(missing_docs)] // fields are self-describing
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Misuse {
    /// A parameter given by the caller was outside its allowed range.
    Parameter { what: &'static str },
    /// The client state does not belong to these parameters.
    StateMismatch { what: &'static str },
    /// An indicator or image hash was empty or too long.
    Item { reason: &'static str },
    /// The table could not be built (every indicator must be placed; see the message).
    TableBuild { reason: &'static str },
}

impl Error {
    /// An internal error: `what` names the invariant that did not hold.
    pub(crate) const fn internal(what: &'static str) -> Self {
        Error::Internal { what }
    }

    /// The range checks of decoded values also guard what a caller passes in (the table builder validates its
    /// configuration with the same function that validates a received manifest): there, a value out of range is
    /// the caller's fault, not a peer's.
    pub(crate) fn into_misuse(self) -> Self {
        match self {
            Error::Invalid(InvalidInput::Parameter { what }) => Error::Misuse(Misuse::Parameter { what }),
            other => other,
        }
    }
}

impl fmt::Display for InvalidInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InvalidInput::Length { what, expected, got } => write!(f, "{what}: expected {expected} bytes, got {got}"),
            InvalidInput::TrailingBytes { what } => write!(f, "{what}: trailing bytes after the encoding"),
            InvalidInput::Version { what, got } => write!(f, "{what}: unsupported version {got}"),
            InvalidInput::NonCanonicalPoint { what } => write!(f, "{what}: not a canonical ristretto255 point"),
            InvalidInput::IdentityPoint { what } => write!(f, "{what}: identity point is not allowed"),
            InvalidInput::NonCanonicalScalar { what } => write!(f, "{what}: non-canonical scalar or field element"),
            InvalidInput::Parameter { what } => write!(f, "parameter out of range: {what}"),
            InvalidInput::Table { reason } => write!(f, "invalid table: {reason}"),
            InvalidInput::Reconstruction { reason } => write!(f, "threshold reconstruction failed: {reason}"),
            InvalidInput::Threshold(e) => write!(f, "threshold: {e}"),
        }
    }
}

impl fmt::Display for Misuse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Misuse::Parameter { what } => write!(f, "parameter out of range: {what}"),
            Misuse::StateMismatch { what } => write!(f, "client state does not match the order: {what}"),
            Misuse::Item { reason } => write!(f, "invalid item: {reason}"),
            Misuse::TableBuild { reason } => write!(f, "table build failed: {reason}"),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Invalid(e) => e.fmt(f),
            Error::Misuse(e) => e.fmt(f),
            Error::Internal { what } => write!(f, "internal error (a bug in vouchsafe-protocol): {what}"),
        }
    }
}

impl std::error::Error for InvalidInput {}
impl std::error::Error for Misuse {}

// The groups print their inner error, so `source()` stays `None` (a chain walker would print it twice).
impl std::error::Error for Error {}

impl From<InvalidInput> for Error {
    fn from(e: InvalidInput) -> Self {
        Error::Invalid(e)
    }
}

impl From<Misuse> for Error {
    fn from(e: Misuse) -> Self {
        Error::Misuse(e)
    }
}

/// Errors of the threshold crate reach the protocol only from shares and coefficients that were decoded or
/// opened, so they are the peer's fault.
impl From<vouchsafe_threshold::Error> for InvalidInput {
    fn from(e: vouchsafe_threshold::Error) -> Self {
        InvalidInput::Threshold(e)
    }
}

impl From<vouchsafe_threshold::Error> for Error {
    fn from(e: vouchsafe_threshold::Error) -> Self {
        Error::Invalid(InvalidInput::Threshold(e))
    }
}

/// Result alias for the protocol crate.
pub type Result<T, E = Error> = core::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_the_inner_message() {
        let e: Error = InvalidInput::Length { what: "voucher", expected: 3, got: 2 }.into();
        assert_eq!(e.to_string(), "voucher: expected 3 bytes, got 2");
        let m: Error = Misuse::Item { reason: "empty" }.into();
        assert_eq!(m.to_string(), "invalid item: empty");
        assert!(Error::internal("x").to_string().contains("bug"));
    }
}
