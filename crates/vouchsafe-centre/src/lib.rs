//! # vouchsafe-centre
//!
//! The Centre's intake (DESIGN §5): `vouchsafe.v1.Centre/Deliver` takes a provider-signed message
//! (`vouchsafe-case`), checks it, and answers with a Centre-signed receipt.
//!
//! * A **report** of a confirmed case is checked in this order: its size; that it decodes; that its provider is
//!   pinned and signed it; idempotency (the same id and digest get the stored receipt, the same id with other
//!   bytes ALREADY_EXISTS); the order (verifies under the pinned authority keys, is the one the report names, is
//!   of a service the provider may report under, names this Centre, was active at the threshold and at the
//!   report's creation and is not revoked, the report is not from the future); the release (the Centre's own
//!   chain of the order's line has the named release with the named hash); each item (its associated data
//!   decodes under the order's hash configuration, its secondary hash is the one of its derivative, its primary
//!   hash is an indicator of that release, its secondary hash confirms the indicator's); the review decisions (no
//!   rejection, a confirmation as a known image, two distinct confirming reviewers under four eyes). Then the
//!   verdict: a **manifest false positive** if an item's indicator is flagged in the indicator database or was
//!   removed in a later release, else **forwarded** as a signed export bundle ([`export`]).
//! * A **withdrawal** (an upheld appeal) must name a report of the same provider that the Centre holds; if that
//!   report was forwarded, the recipient is told (`WITHDRAWN.json` in the export).
//! * **Indicator feedback** (second-hash drops and review rejections per indicator) is recorded, the latest
//!   counts per provider, order and indicator; `vouchsafe centre feedback` turns it into removal proposals.
//!
//! Crash safety: the export is on disk (temporary directory, fsync, rename) before the message's row and receipt
//! are committed in one SQLite transaction (`synchronous = FULL`); a retry after a crash at any point finds the
//! export (derived from the message digest) and keeps it, so every message has exactly one row and at most one
//! export. A refused message leaves nothing behind. Errors and log lines name checks, item indices, files and
//! indicators (by 8 hex digits), never keys or case content. `docs/CENTRE.md` is the analyst's guide.
#![forbid(unsafe_code)]

pub mod check;
mod config;
mod db;
mod error;
pub mod evidence;
pub mod export;
mod grpc;
mod intake;
mod server;
mod stats;

pub use check::{CheckedItem, CheckedReport, Evidence, ReportContext, ReportVerdict, check_report, indicator_name};
pub use config::{
    AUTHORITY_PUBLIC_HEADER, CENTRE_KEY_HEADER, CentreConfig, Keys, PROVIDER_PUBLIC_HEADER, ProviderConfig,
};
pub use error::{CentreError, Result};
pub use intake::Intake;
pub use server::{MAX_REQUEST_BYTES, RunningCentre, serve, start, termination_signal};
pub use stats::{
    CentreStats, DEFAULT_MIN_REJECTIONS, FeedbackRow, ProviderStats, indicator_feedback, removal_proposals, stats,
};

/// Now, in Unix seconds (0 if the clock is before 1970).
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .and_then(|d| i64::try_from(d.as_secs()).ok())
        .unwrap_or(0)
}

/// Rows in the intake database's messages table (what tests compare before and after a refusal).
pub fn message_count(config: &CentreConfig) -> Result<u64> {
    db::message_count(&db::open_existing(&config.database)?)
}
