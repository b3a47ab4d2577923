//! # vouchsafe-protocol
//!
//! The sans-IO core of vouchsafe's threshold private set intersection with associated data over ristretto255
//! (after "The Apple PSI System", Bhowmick et al. 2021; differences are argued in `docs/PROTOCOL.md`).
//!
//! No I/O, no async runtime, no global randomness: every function that needs randomness takes an explicit
//! `&mut R where R: CryptoRng`. The typestate of the flow:
//!
//! * server: [`table::ServerTable::build`] → [`table::TableManifest`] + [`table::TableChunk`]s;
//!   [`voucher::Opener::open`] → [`voucher::OpenOutcome`]; [`threshold::try_reveal`] → [`threshold::RevealedAccount`].
//! * client: [`table::TableDownload`] (each chunk checked against the manifest) → [`table::ClientTable`]
//!   (validated; the only table vouchers can be made with) and [`client::ClientState`] → [`client::ClientSession`]
//!   → [`voucher::Voucher`].
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod client;
#[cfg(feature = "hazmat")]
pub mod crypto;
#[cfg(not(feature = "hazmat"))]
mod crypto;
mod error;
pub mod labels;
pub mod params;
pub mod table;
pub mod threshold;
pub mod voucher;
mod wire;

pub use error::{Error, InvalidInput, Misuse, Result};
/// The threshold arithmetic (Shamir over the scalar field, the detectable-hash field, detection), for benches and
/// tests (feature `hazmat`).
#[cfg(feature = "hazmat")]
pub use vouchsafe_threshold as threshold_math;
/// The types of the threshold crate that appear in this crate's API.
pub use vouchsafe_threshold::{Fp, Share};
