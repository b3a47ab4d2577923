//! The client library's error type. Messages name what went wrong; they never contain the bearer token, image
//! content, hashes, voucher bytes or any per-account secret.

use core::fmt;

/// Everything that can go wrong in the client library.
#[non_exhaustive]
#[derive(Debug)]
pub enum ClientError {
    /// The configuration is unusable (bad endpoint URI, token not a valid header value, zero batch size, ...).
    Config {
        /// What is wrong.
        what: &'static str,
    },
    /// The server rejected the bearer token (gRPC UNAUTHENTICATED). Get a new token; retrying will not help.
    Unauthenticated,
    /// The account is excluded from, or not covered by, the active detection order (PERMISSION_DENIED). Scanning
    /// and submitting must stop for this account.
    PermissionDenied,
    /// No detection order is active (FAILED_PRECONDITION from the server, no verified table yet, or the order's
    /// validity window does not contain the time). Nothing may be hashed or sent; the messenger sends the
    /// attachment as usual.
    NoActiveOrder {
        /// Why there is no usable order.
        reason: &'static str,
    },
    /// The server refused the request envelope as malformed (INVALID_ARGUMENT). This is a bug or a version skew
    /// between client and server; the batch stays in the outbox.
    InvalidArgument,
    /// The server is rate limiting or the batch is too large (RESOURCE_EXHAUSTED) and the retries were used up.
    /// Back off and call `submit` later; nothing is lost.
    ResourceExhausted,
    /// The server could not be reached or did not answer in time (UNAVAILABLE, DEADLINE_EXCEEDED, transport errors)
    /// and the retries were used up. Nothing is lost; try again later.
    Unavailable {
        /// The gRPC status code name, or "transport".
        code: &'static str,
    },
    /// The TLS handshake with an `https://` endpoint failed: the server's certificate does not verify against the
    /// trusted roots (`ClientConfig::tls_ca_pem` or the built-in ones), names another host, or the endpoint does
    /// not speak TLS. Not retried: a configuration or deployment problem, or an interception attempt.
    Tls {
        /// rustls's description, e.g. `invalid peer certificate: UnknownIssuer`.
        reason: String,
    },
    /// The server answered with a status this client does not expect from that call (INTERNAL, NOT_FOUND after
    /// retries, OUT_OF_RANGE, UNIMPLEMENTED, ...).
    Server {
        /// The gRPC status code name.
        code: &'static str,
    },
    /// What the server sent does not verify: wrong root, tampered chunk, invalid table, inconsistent manifest,
    /// rollback to an older version, or an acknowledgement for another batch. The table is not used.
    Verification {
        /// What did not verify.
        reason: &'static str,
    },
    /// The protocol core refused an input (table, parameters, state). Its message names the input.
    Protocol(vouchsafe_protocol::Error),
    /// Perceptual hashing failed in a way that is not an image problem (configuration mismatch).
    Hashing(vouchsafe_phash::PhashError),
    /// A local file (state, table, outbox) is corrupted, truncated, of an unknown format version or belongs to
    /// something else. It is refused, never silently replaced.
    Storage {
        /// Which file kind.
        file: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A local file operation failed.
    Io {
        /// What was being done.
        op: &'static str,
        /// The OS error kind.
        kind: std::io::ErrorKind,
    },
    /// Another client instance holds the data directory.
    DataDirLocked,
    /// The operating system's random number generator failed.
    Randomness,
    /// A background task failed (panicked or was cancelled).
    Task,
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Config { what } => write!(f, "invalid client configuration: {what}"),
            ClientError::Unauthenticated => f.write_str("the server rejected the bearer token (unauthenticated)"),
            ClientError::PermissionDenied => {
                f.write_str("the account is excluded from or not covered by the active detection order")
            }
            ClientError::NoActiveOrder { reason } => write!(f, "no active detection order: {reason}"),
            ClientError::InvalidArgument => {
                f.write_str("the server refused the request as malformed (invalid argument; client/server skew?)")
            }
            ClientError::ResourceExhausted => {
                f.write_str("the server is rate limiting or the batch is too large (resource exhausted); retry later")
            }
            ClientError::Unavailable { code } => write!(f, "server unavailable after retries ({code}); retry later"),
            ClientError::Tls { reason } => write!(f, "TLS handshake with the server failed: {reason}"),
            ClientError::Server { code } => write!(f, "unexpected server status {code}"),
            ClientError::Verification { reason } => write!(f, "table verification failed: {reason}"),
            ClientError::Protocol(e) => write!(f, "protocol: {e}"),
            ClientError::Hashing(e) => write!(f, "hashing: {e}"),
            ClientError::Storage { file, reason } => write!(f, "{file} file refused: {reason}"),
            ClientError::Io { op, kind } => write!(f, "i/o error while {op}: {kind}"),
            ClientError::DataDirLocked => f.write_str("the data directory is in use by another client instance"),
            ClientError::Randomness => f.write_str("the operating system random number generator failed"),
            ClientError::Task => f.write_str("a background task failed"),
        }
    }
}

impl std::error::Error for ClientError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ClientError::Protocol(e) => Some(e),
            ClientError::Hashing(e) => Some(e),
            _ => None,
        }
    }
}

impl From<vouchsafe_protocol::Error> for ClientError {
    fn from(e: vouchsafe_protocol::Error) -> Self {
        ClientError::Protocol(e)
    }
}

impl ClientError {
    /// Whether retrying the same call later can succeed without any change on the device (network, overload, rate
    /// limit). Useful for a background submit loop.
    pub fn is_transient(&self) -> bool {
        matches!(self, ClientError::Unavailable { .. } | ClientError::ResourceExhausted | ClientError::Server { .. })
    }

    pub(crate) fn io(op: &'static str) -> impl FnOnce(std::io::Error) -> ClientError {
        move |e| ClientError::Io { op, kind: e.kind() }
    }
}

/// Result alias of the client library.
pub type Result<T, E = ClientError> = core::result::Result<T, E>;

/// The stable name of a gRPC code (no status message: server messages are not trusted to be secret-free here).
pub(crate) fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Whether a status is worth retrying with backoff.
pub(crate) fn retryable(code: tonic::Code) -> bool {
    matches!(
        code,
        tonic::Code::Unavailable
            | tonic::Code::DeadlineExceeded
            | tonic::Code::ResourceExhausted
            | tonic::Code::Aborted
            | tonic::Code::Cancelled
            | tonic::Code::Unknown
    )
}

/// Whether a failed call is worth retrying with backoff: a retryable code and not a TLS failure.
pub(crate) fn retryable_status(status: &tonic::Status) -> bool {
    retryable(status.code()) && tls_failure(status).is_none()
}

/// A TLS failure while connecting, as rustls reports it: an `io::Error` of kind `InvalidData` in the status's
/// source chain (only local transport errors have a source; a server's status never does).
fn tls_failure(status: &tonic::Status) -> Option<String> {
    if status.code() != tonic::Code::Unavailable {
        return None;
    }
    let mut next = std::error::Error::source(status);
    while let Some(e) = next {
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::InvalidData
        {
            return Some(io.to_string());
        }
        next = e.source();
    }
    None
}

/// Maps a status to the error the caller sees (after retries, for retryable ones).
pub(crate) fn from_status(status: &tonic::Status) -> ClientError {
    use tonic::Code;
    if let Some(reason) = tls_failure(status) {
        return ClientError::Tls { reason };
    }
    match status.code() {
        Code::Unauthenticated => ClientError::Unauthenticated,
        Code::PermissionDenied => ClientError::PermissionDenied,
        Code::FailedPrecondition => ClientError::NoActiveOrder { reason: "the server has no active detection order" },
        Code::InvalidArgument => ClientError::InvalidArgument,
        Code::ResourceExhausted => ClientError::ResourceExhausted,
        c @ (Code::Unavailable | Code::DeadlineExceeded | Code::Aborted | Code::Cancelled | Code::Unknown) => {
            ClientError::Unavailable { code: code_name(c) }
        }
        c => ClientError::Server { code: code_name(c) },
    }
}
