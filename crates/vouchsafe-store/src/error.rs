//! Error type of the store.

/// Errors of the store. Messages never contain stored data.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database reported an error. The message only says so; the
    /// backend's own error (SQLite's, for [`SqliteStore`](crate::SqliteStore))
    /// is the [`source`](std::error::Error::source), so log the whole chain,
    /// not just this message. Boxed so that the type names no backend's
    /// driver.
    #[error("database error")]
    Database(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
    /// The database was written by a newer version of this software.
    #[error("unsupported schema version {found} (this build supports up to {supported})")]
    UnsupportedSchema {
        /// Version found in the database.
        found: i64,
        /// Latest version this build knows.
        supported: i64,
    },
    /// An argument is out of range or malformed.
    #[error("invalid argument: {0}")]
    InvalidArgument(&'static str),
    /// A batch id the account already used for a batch with other content
    /// (other vouchers, or another client state). Nothing was stored; the
    /// first batch is unchanged.
    #[error("batch_id was already used for a batch with other content")]
    BatchConflict,
    /// The batch names a client state the account does not have yet, and the
    /// account already has the most client states allowed under the order.
    #[error("the account already has {max} client states under this order (the most allowed)")]
    TooManyClientStates {
        /// The limit.
        max: u32,
    },
    /// A referenced row does not exist.
    #[error("not found: {0}")]
    NotFound(&'static str),
    /// The change was refused because the stored state does not allow it
    /// (already decided, already delivered, deadline passed, a concurrent
    /// change, …). Nothing was changed. The message says which, in words
    /// fit for the caller's user.
    #[error("conflict: {0}")]
    Conflict(&'static str),
    /// A case status change that is not allowed.
    #[error("invalid case status transition")]
    InvalidTransition,
    /// A stored value has an impossible shape (e.g. an id of the wrong length).
    #[error("corrupt stored data: {0}")]
    Corrupt(&'static str),
    /// An unprocessed inbox batch cannot be read back: its spool file is
    /// missing, or its stored vouchers do not decode. Nothing can recover its
    /// vouchers; the caller should record this and complete the batch with
    /// every voucher counted as invalid, so the rest of the inbox is not held
    /// up behind it.
    #[error("inbox batch {} cannot be read: {reason}", id.0)]
    UnreadableBatch {
        /// The batch.
        id: crate::InboxId,
        /// Its voucher count.
        vouchers: u64,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A file operation on the inbox spool (or the creation of the database
    /// file) failed. The operating system's error is the source (paths are
    /// the store's own; no file content is ever in it). Its message is also
    /// part of this one, for callers that print only the top error.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The audit chain does not verify at entry `seq`.
    #[error("audit chain broken at entry {seq}")]
    AuditChainBroken {
        /// Sequence number of the first entry that fails.
        seq: u64,
    },
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Database(Box::new(e))
    }
}
