//! The client library's error type. Messages name what went wrong; they never contain the bearer token, image
//! content, hashes, voucher bytes or any per-account secret.

use core::fmt;

use crate::transport::RpcError;

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
    /// The server refuses another client state for this account under the order: the account already has as many
    /// devices and installs sending as the server allows (RESOURCE_EXHAUSTED marked `vouchsafe-refusal:
    /// client-state-limit`). Not transient: this device's vouchers stay in the outbox and every `submit` fails the
    /// same way until the operator raises the limit or the order ends. Not retried.
    TooManyClientStates,
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
    /// The server answered with a status this client does not expect from that call (INTERNAL, NOT_FOUND when the
    /// table version kept disappearing during a download, OUT_OF_RANGE, UNIMPLEMENTED, ...).
    Server {
        /// The gRPC status code name.
        code: &'static str,
    },
    /// The server refused an appeal: no such notice for this account (NOT_FOUND), or the deadline passed or the
    /// notice was already appealed (FAILED_PRECONDITION). The message says which; show it to the user.
    AppealRefused {
        /// The gRPC status code name.
        code: &'static str,
        /// The server's explanation.
        message: String,
    },
    /// What the server sent does not verify: wrong root, tampered chunk, invalid table, inconsistent manifest,
    /// rollback to an older version, or an acknowledgement for another batch. The table is not used.
    Verification {
        /// What did not verify.
        reason: &'static str,
    },
    /// The detection order refused: it does not decode or verify under the pinned authority keys
    /// (`UnknownAuthority`, `BadSignature`, a decoding error), it is not active now (`NotYetValid`, `Expired`,
    /// `Revoked`), or the signed manifest does not verify under the order's table key or names another order
    /// (`BadSignature { what: "signed manifest" }`, `WrongOrder`). Nothing is hashed or sent.
    Order(vouchsafe_orders::OrderError),
    /// The transparency log refused what the server showed: a checkpoint without the pinned log's signature or
    /// the witness quorum (`QuorumNotMet`, `CosignatureInvalid`, ...), older than the one this device saw
    /// (`Rollback`), of the same size with another root (`SplitView`), not provably consistent with it, stale, or
    /// an order or manifest not included in it (`InclusionProofInvalid`, `OutOfRange`, `Malformed`). Nothing is
    /// hashed or sent; the held table stays.
    Log(vouchsafe_log::Error),
    /// The order is for another service than [`crate::ClientConfig::service_id`].
    WrongService {
        /// The configured service.
        expected: String,
        /// The service the order names.
        got: String,
    },
    /// The order names a Centre key other than the pinned one ([`crate::TrustAnchors::centre_key`]): its table
    /// would not come from the Centre the app trusts.
    UntrustedCentre,
    /// The order does not cover this conversation: its scope lists components (groups) and the
    /// [`crate::ScanContext`] names none of them. Nothing is hashed; send the attachment as usual.
    OutOfScope {
        /// `"components"` or `"groups"`: which kind of scope the order has.
        scope: &'static str,
    },
    /// The order excludes a class this account has ([`crate::ClientConfig::account_classes`]): nothing is hashed
    /// or sent for this account.
    Excluded {
        /// The excluded class.
        class: String,
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
            ClientError::TooManyClientStates => f.write_str(
                "the server refuses another device or install for this account under the order (its client-state \
                 limit); this device cannot submit",
            ),
            ClientError::Unavailable { code } => write!(f, "server unavailable after retries ({code}); retry later"),
            ClientError::Tls { reason } => write!(f, "TLS handshake with the server failed: {reason}"),
            ClientError::Server { code } => write!(f, "unexpected server status {code}"),
            ClientError::AppealRefused { code, message } => write!(f, "appeal refused ({code}): {message}"),
            ClientError::Verification { reason } => write!(f, "table verification failed: {reason}"),
            ClientError::Order(e) => write!(f, "detection order refused: {e}"),
            ClientError::Log(e) => write!(f, "transparency log check failed: {e}"),
            ClientError::WrongService { expected, got } => {
                write!(f, "the detection order is for service {got:?}, this client is {expected:?}")
            }
            ClientError::UntrustedCentre => {
                f.write_str("the detection order names a Centre key other than the pinned one")
            }
            ClientError::OutOfScope { scope } => {
                write!(f, "the detection order does not cover this conversation (its scope lists {scope})")
            }
            ClientError::Excluded { class } => {
                write!(f, "the detection order excludes accounts of class {class:?}, which this account has")
            }
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
            ClientError::Order(e) => Some(e),
            ClientError::Log(e) => Some(e),
            _ => None,
        }
    }
}

impl From<vouchsafe_protocol::Error> for ClientError {
    fn from(e: vouchsafe_protocol::Error) -> Self {
        ClientError::Protocol(e)
    }
}

impl From<vouchsafe_orders::OrderError> for ClientError {
    fn from(e: vouchsafe_orders::OrderError) -> Self {
        ClientError::Order(e)
    }
}

impl From<vouchsafe_log::Error> for ClientError {
    fn from(e: vouchsafe_log::Error) -> Self {
        ClientError::Log(e)
    }
}

impl ClientError {
    /// Whether this is a refusal by the device's own checks of the order, its scope, the account or the log
    /// ([`ClientError::Order`], [`ClientError::Log`], [`ClientError::WrongService`],
    /// [`ClientError::UntrustedCentre`], [`ClientError::OutOfScope`], [`ClientError::Excluded`]): nothing was
    /// hashed or sent, and retrying without a change (a new order, a revocation lifted by a new order, another
    /// conversation) will not help.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            ClientError::Order(_)
                | ClientError::Log(_)
                | ClientError::WrongService { .. }
                | ClientError::UntrustedCentre
                | ClientError::OutOfScope { .. }
                | ClientError::Excluded { .. }
        )
    }

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

/// A failed RPC (after retries, for retryable ones) as the caller sees it.
impl From<RpcError> for ClientError {
    fn from(e: RpcError) -> Self {
        match e {
            RpcError::Unauthenticated => ClientError::Unauthenticated,
            RpcError::PermissionDenied => ClientError::PermissionDenied,
            RpcError::NoActiveOrder => {
                ClientError::NoActiveOrder { reason: "the server has no active detection order" }
            }
            RpcError::VersionNotServed => ClientError::Server { code: "NOT_FOUND" },
            RpcError::InvalidArgument => ClientError::InvalidArgument,
            RpcError::ResourceExhausted => ClientError::ResourceExhausted,
            RpcError::TooManyClientStates => ClientError::TooManyClientStates,
            RpcError::Unavailable { code } => ClientError::Unavailable { code },
            RpcError::Tls { reason } => ClientError::Tls { reason },
            RpcError::AppealRefused { code, message } => ClientError::AppealRefused { code, message },
            RpcError::Server { code } => ClientError::Server { code },
        }
    }
}
