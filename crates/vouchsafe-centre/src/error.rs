//! The crate's one error type. The gRPC edge maps it to a status in exactly one place (`grpc::to_status`).
//!
//! Messages name what was wrong (a field, a check, an item's index, an indicator by the first 8 hex digits of its
//! hash, a file path); they never carry a key, a derivative, an account reference, a comment or any other case
//! content.

use std::path::PathBuf;

/// Everything that can go wrong in the Centre.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum CentreError {
    /// The configuration is invalid: `key` names the TOML key (or the file) at fault.
    #[error("configuration: {key}: {reason}")]
    Config {
        /// The offending key, e.g. `providers.key`.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A file could not be read or written.
    #[error("{what} {path}: {kind}")]
    Io {
        /// What the file is.
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// The kind of failure (never the content).
        kind: std::io::ErrorKind,
    },
    /// A file the Centre relies on (a release, a revocation, a key, the indicator database) was refused.
    #[error("{what}: {reason}")]
    Evidence {
        /// Which file.
        what: String,
        /// Why.
        reason: String,
    },
    /// The message is larger than `vouchsafe_case::MAX_MESSAGE_BYTES`.
    #[error("the message is larger than the Centre accepts: {len} bytes, the limit is {max}")]
    TooLarge {
        /// Its size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The message does not decode (the reason names the field).
    #[error("the message does not decode: {0}")]
    Malformed(String),
    /// The message names a provider the Centre does not pin.
    #[error("unknown provider")]
    UnknownProvider,
    /// The signature does not verify under the pinned provider key.
    #[error("signature does not verify")]
    BadSignature,
    /// Another message with the same id (and other bytes) is already held.
    #[error("a different message with this id was already delivered")]
    Conflict,
    /// The message is well-formed and signed but refused: the order, the release, an item, the decisions or the
    /// report a withdrawal names. The reason says which check.
    #[error("{0}")]
    Refused(String),
    /// The intake database failed.
    #[error("intake database: {0}")]
    Database(String),
    /// Anything else that is our fault.
    #[error("internal error: {0}")]
    Internal(&'static str),
}

impl CentreError {
    pub(crate) fn config(key: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        CentreError::Config { key: key.into(), reason: reason.to_string() }
    }

    pub(crate) fn io(what: &'static str, path: &std::path::Path) -> impl FnOnce(std::io::Error) -> CentreError + use<> {
        let path = path.to_owned();
        move |e| CentreError::Io { what, path, kind: e.kind() }
    }

    pub(crate) fn evidence(what: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        CentreError::Evidence { what: what.into(), reason: reason.to_string() }
    }

    pub(crate) fn refused(reason: impl Into<String>) -> Self {
        CentreError::Refused(reason.into())
    }
}

impl From<rusqlite::Error> for CentreError {
    fn from(e: rusqlite::Error) -> Self {
        // rusqlite's messages name the statement's failure, never a bound value.
        CentreError::Database(e.to_string())
    }
}

/// Result alias of this crate.
pub type Result<T, E = CentreError> = core::result::Result<T, E>;
