//! The server's error type. One enum for every layer; the gRPC edge maps it to a status in exactly one place
//! (`grpc::to_status`). Messages never contain tokens, keys, shares, voucher contents or associated data.

use std::path::PathBuf;

/// Everything that can go wrong in the server.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The configuration is invalid: `key` names the TOML key (or environment variable) at fault.
    #[error("configuration: {key}: {reason}")]
    Config {
        /// The offending key, e.g. `limits.max_vouchers_per_batch` or `VOUCHSAFE_LISTEN`.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A file could not be read or written.
    #[error("{what} {path}: {source}")]
    Io {
        /// What the file is (e.g. "table file").
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The table file (or the update history) does not match the configured order.
    #[error("table does not match the configuration: {field}")]
    TableMismatch {
        /// Which parameter differs.
        field: &'static str,
    },
    /// A table reload was refused; the served table is unchanged.
    #[error("table reload refused: {reason}")]
    TableReload {
        /// Why.
        reason: String,
    },
    /// The protocol core rejected something (a table file, an update history, a reconstruction).
    #[error("protocol: {0}")]
    Protocol(#[from] vouchsafe_protocol::Error),
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] vouchsafe_store::StoreError),
    /// Missing or unknown bearer token.
    #[error("missing or invalid bearer token")]
    Unauthenticated,
    /// The account is outside the order's scope, or in a class the order excludes.
    #[error("permission denied: {0}")]
    PermissionDenied(&'static str),
    /// The detection order is not active now: not yet valid, expired, or revoked (the `OrderError` says which).
    #[error("{}", describe_inactive(.0))]
    OrderInactive(vouchsafe_orders::OrderError),
    /// A governance object (order, authority key, revocation, release, manifest, table or log key) was refused:
    /// the server does not start, or the reload is refused and the served state stays.
    #[error("{what}: {reason}")]
    Governance {
        /// Which object, and usually its file.
        what: String,
        /// Why it was refused.
        reason: String,
    },
    /// The transparency log on disk does not match its checkpoint (rewritten or truncated), or it cannot grow.
    #[error("transparency log: {0}")]
    Log(String),
    /// A transparency request names a leaf or a tree size the log does not have.
    #[error("{0}")]
    LogRange(String),
    /// A cosignature was handed in for a checkpoint that is not the current one.
    #[error("the checkpoint is not the current one (the log grew meanwhile): fetch it again")]
    StaleCheckpoint,
    /// A cosignature line that does not parse, is not by a configured witness, or does not verify.
    #[error("cosignature refused: {0}")]
    BadCosignature(String),
    /// The request envelope is invalid (batch id, empty batch, ...).
    #[error("invalid request: {0}")]
    InvalidRequest(&'static str),
    /// One voucher of a batch fails the structural checks.
    #[error("voucher {index}: {reason}")]
    MalformedVoucher {
        /// Index of the voucher in the batch.
        index: usize,
        /// What is wrong with it (length, version or epoch; never its contents).
        reason: String,
    },
    /// The batch holds more vouchers than allowed.
    #[error("batch holds {count} vouchers, the limit is {max}")]
    BatchTooLarge {
        /// Vouchers in the batch.
        count: usize,
        /// Configured limit.
        max: usize,
    },
    /// The request conflicts with the state of what it names (a decided case, a second decision by the same
    /// reviewer, an appeal after its deadline or a second appeal): nothing changed.
    #[error("{0}")]
    Conflict(String),
    /// What the request names does not exist (or, for a notice, is not the caller's: the same answer).
    #[error("no such {0}")]
    NotFound(&'static str),
    /// A report, withdrawal, feedback or transparency report could not be built within the format's limits (an
    /// account reference or a case too large for a report, …): nothing was queued.
    #[error("cannot build the message to the Centre: {0}")]
    Case(#[from] vouchsafe_case::Error),
    /// Talking to the Centre failed, or its answer was refused (the outbox retries; never a client's answer).
    #[error("centre: {0}")]
    Centre(String),
    /// The account exceeded its voucher rate.
    #[error("rate limit exceeded; retry later")]
    RateLimited,
    /// The unprocessed backlog is at its bound (`limits.max_backlog_batches` / `limits.max_backlog_bytes`): new
    /// batches wait until the worker has caught up. Global: it says nothing about any account, and the message
    /// gives no figures (the backlog's size is the operator's to see, not every device's).
    #[error("the server's backlog is full; retry with backoff")]
    Overloaded,
    /// The batch id was already used by this account for a batch with other content.
    #[error("batch_id was already used for a batch with other vouchers or another client state; use a new batch_id")]
    BatchConflict,
    /// The account already has the most client states allowed under the order.
    #[error(
        "the account already has {max} client states under this order (limits.max_client_states); \
         this device cannot start another"
    )]
    TooManyClientStates {
        /// The limit.
        max: u32,
    },
    /// The requested table version is not served.
    #[error("table version {requested} is not served (current is {current})")]
    TableVersionNotServed {
        /// Requested version.
        requested: u64,
        /// Current version.
        current: u64,
    },
    /// A chunk index beyond the table.
    #[error("first_chunk {first} is not below the chunk count {count}")]
    ChunkOutOfRange {
        /// Requested first chunk.
        first: u32,
        /// Number of chunks.
        count: u32,
    },
    /// No update can be produced from this version.
    #[error("no update from table version {from} to {current}; resync fully")]
    UpdateUnavailable {
        /// Requested base version.
        from: u64,
        /// Current version.
        current: u64,
    },
    /// The client claims a version newer than the server's.
    #[error("table version {from} is ahead of the current version {current}")]
    VersionAhead {
        /// Requested base version.
        from: u64,
        /// Current version.
        current: u64,
    },
    /// The gRPC transport failed (bind, accept).
    #[error("transport: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// A background task failed or panicked.
    #[error("internal: {0}")]
    Internal(&'static str),
}

/// Result alias of this crate.
pub type Result<T, E = ServerError> = std::result::Result<T, E>;

/// The message of an inactive order: which of the three it is, and when.
fn describe_inactive(e: &vouchsafe_orders::OrderError) -> String {
    use vouchsafe_orders::OrderError as E;
    match e {
        E::NotYetValid { not_before, .. } => format!("the detection order is not yet valid: valid from {not_before}"),
        E::Expired { not_after, .. } => format!("the detection order expired at {not_after}"),
        E::Revoked { revoked_at, reason } => {
            format!("the detection order was revoked at {revoked_at} (reason: {reason:?})")
        }
        other => format!("the detection order is not active: {other}"),
    }
}

impl ServerError {
    pub(crate) fn governance(what: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        ServerError::Governance { what: what.into(), reason: reason.to_string() }
    }

    pub(crate) fn config(key: impl Into<String>, reason: impl Into<String>) -> Self {
        ServerError::Config { key: key.into(), reason: reason.into() }
    }
}

/// Displays an error with its whole `source()` chain, `outer: inner: innermost`, for the log: an operator needs
/// "store: database error: disk I/O error", not "store: database error". A source whose message the text so far
/// already ends with (an enum that formats its source into its own message) is not repeated. The chain holds only
/// what the errors themselves print, and none of this crate's errors (nor the store's) print secrets.
#[derive(Clone, Copy)]
pub struct ErrorChain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut text = self.0.to_string();
        let mut next = self.0.source();
        while let Some(e) = next {
            let m = e.to_string();
            if !m.is_empty() && !text.ends_with(&m) {
                text.push_str(": ");
                text.push_str(&m);
            }
            next = e.source();
        }
        f.write_str(&text)
    }
}

impl std::fmt::Debug for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("disk I/O error")]
    struct Disk;

    #[derive(Debug, thiserror::Error)]
    #[error("database error")]
    struct Db(#[source] Disk);

    #[test]
    fn the_chain_names_every_cause_once() {
        let io = ServerError::Io { what: "table file", path: "/x".into(), source: std::io::Error::other(Db(Disk)) };
        // io::Error::new(.., e) displays e and has e as its source: "database error" is not repeated.
        assert_eq!(ErrorChain(&io).to_string(), "table file /x: database error: disk I/O error");
    }
}
