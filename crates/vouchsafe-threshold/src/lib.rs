//! Threshold machinery of vouchsafe (see DESIGN.md §3 "Threshold, per account").
//!
//! - [`field`]: the 64-bit prime field GF(2^64 − 59) of the detectable hash functions.
//! - [`shamir`]: Shamir secret sharing over the ristretto255 scalar field: the device's adkey
//!   secret a₀ = f(0), one share (x, f(x)) per real voucher, reconstruction at the threshold.
//! - [`detect`](mod@detect): Apple-PSI "detectable hash functions" and the server's threshold detection,
//!   which tells real from synthetic vouchers once at least T real ones are open.
//!
//! Sans-IO: no I/O, no threads, no global state; randomness is passed in explicitly.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod detect;
mod error;
pub mod field;
pub mod shamir;

pub use detect::{Column, DetectableHash, Detection, detect};
pub use error::Error;
pub use field::Fp;
pub use shamir::{Share, SharePolynomial, interpolate, recover_secret};

/// Largest accepted threshold T: the one bound of the whole project (the protocol's `labels::MAX_THRESHOLD`, the
/// server's order validation and docs/PROTOCOL.md's `2..=1000` all come from this constant).
pub const MAX_THRESHOLD: usize = 1000;

/// Largest accepted number of detectable-hash polynomials s (the synthetic cap).
pub const MAX_SYNTHETIC: usize = 1024;

/// Largest number of columns [`detect()`] accepts (guard against absurd matrix sizes).
pub const MAX_COLUMNS: usize = 4096;
