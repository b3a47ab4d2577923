//! # vouchsafe-client
//!
//! The library a messenger embeds on the device. It keeps a verified copy of the provider's blinded indicator
//! table, turns every image attachment into a voucher before the attachment is sent, and submits the vouchers in
//! the background. The device never learns whether an image matched; see `docs/API.md` for the integration guide.
//!
//! * [`Client::open`] (with the app's pinned [`TrustAnchors`]) → [`Client::sync`] (verified order, signed
//!   manifest, transparency log, table: [`SyncReport`]) → [`Client::scan`] (in a [`ScanContext`]; [`ScanOutcome`])
//!   → [`Client::submit`] ([`SubmitReport`]); [`Client::add_revocation`] ends an order at once.
//! * [`verify`]: the network-free verification of orders, manifests, chunks and updates that `sync` is built on.
//! * [`transport`]: the seven RPCs behind a trait; [`transport::GrpcTransport`] (tonic) is the default, and
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
pub use config::{BearerToken, ClientConfig, TrustAnchors};
pub use error::{ClientError, Result};
pub use transport::{AppealAck, Notice};
pub use verify::ScanContext;
/// The log key, witness key and error types of the pins and errors ([`TrustAnchors::log`], [`ClientError::Log`]).
pub use vouchsafe_log;
/// The order, revocation and keyring types of the pins and errors ([`TrustAnchors::authorities`],
/// [`ClientError::Order`]).
pub use vouchsafe_orders;
pub use vouchsafe_phash::{HashConfig, QualityReason};
