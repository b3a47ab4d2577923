//! The crate's error type.

use core::fmt;

/// Everything that can go wrong in this crate.
///
/// Messages carry only sizes and counts, never secret values.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The threshold is below 2 or above [`crate::MAX_THRESHOLD`].
    InvalidThreshold,
    /// Fewer shares than the threshold were supplied.
    NotEnoughShares {
        /// Shares needed (the threshold).
        needed: usize,
        /// Shares supplied.
        got: usize,
    },
    /// Two of the shares used have the same x-coordinate.
    DuplicateX,
    /// One of the shares used has the x-coordinate zero (that would be the secret itself).
    ZeroX,
    /// A detection column's `r` vector does not have `s` entries.
    ColumnLength {
        /// Expected length (`s`).
        expected: usize,
        /// Actual length.
        got: usize,
    },
    /// More detection columns than [`crate::MAX_COLUMNS`].
    TooManyColumns {
        /// The limit.
        max: usize,
        /// Columns supplied.
        got: usize,
    },
    /// More detectable-hash polynomials (`s`) than [`crate::MAX_SYNTHETIC`].
    TooManySynthetic {
        /// The limit.
        max: usize,
        /// `s` requested.
        got: usize,
    },
    /// A polynomial handed to a constructor has the wrong number of coefficients.
    PolynomialLength {
        /// Expected number of coefficients.
        expected: usize,
        /// Actual number of coefficients.
        got: usize,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidThreshold => write!(f, "threshold must be between 2 and {}", crate::MAX_THRESHOLD),
            Error::NotEnoughShares { needed, got } => {
                write!(f, "not enough shares: needed {needed}, got {got}")
            }
            Error::DuplicateX => f.write_str("two shares have the same x-coordinate"),
            Error::ZeroX => f.write_str("a share has the x-coordinate zero"),
            Error::ColumnLength { expected, got } => {
                write!(f, "detection column has {got} hash values, expected {expected}")
            }
            Error::TooManyColumns { max, got } => {
                write!(f, "too many detection columns: {got} (at most {max})")
            }
            Error::TooManySynthetic { max, got } => {
                write!(f, "too many detectable-hash polynomials: {got} (at most {max})")
            }
            Error::PolynomialLength { expected, got } => {
                write!(f, "polynomial has {got} coefficients, expected {expected}")
            }
        }
    }
}

impl std::error::Error for Error {}
