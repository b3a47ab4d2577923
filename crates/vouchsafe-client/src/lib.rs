//! # vouchsafe-client
//!
//! The library a messenger embeds on the device. It keeps a verified copy of the provider's blinded indicator
//! table, turns every image attachment into a voucher before the attachment is sent, and submits the vouchers in
//! the background. The device never learns whether an image matched; see `docs/API.md` for the integration guide.
//!
//! * [`Client::open`] → [`Client::sync`] (verified table, [`SyncReport`]) → [`Client::scan`] ([`ScanOutcome`]) →
//!   [`Client::submit`] ([`SubmitReport`]).
//! * [`verify`]: the network-free verification of manifests, chunks and updates that `sync` is built on.
//! * [`transport`]: the four RPCs behind a trait; [`transport::GrpcTransport`] (tonic) is the default, and
//!   [`Client::open_with_transport`] takes another one.
//! * Everything on disk (table, per-order state, outbox) is versioned, checksummed, written atomically and fsynced.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod client;
mod config;
mod error;
mod files;
mod outbox;
pub mod store;
pub mod transport;
pub mod verify;

pub use client::{Client, Image, NullReason, ScanOutcome, SubmitReport, SyncKind, SyncReport, TableInfo, VoucherKind};
pub use config::{BearerToken, ClientConfig};
pub use error::{ClientError, Result};
pub use vouchsafe_phash::{HashConfig, QualityReason};
