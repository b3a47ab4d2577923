//! The seam between the client and the network: the seven RPCs the client makes, in the client's own terms.
//!
//! [`crate::Client`] speaks only to a [`Transport`]; no generated protobuf type and no `tonic::Status` reaches it.
//! [`GrpcTransport`] (tonic, the default) is the one place that converts the `vouchsafe.v1.Matching` and
//! `vouchsafe.v1.Transparency` messages and maps gRPC statuses to [`RpcError`]. Another transport (an in-memory
//! one in tests, or a messenger's own HTTP/2 stack) implements the same seven methods. Nothing a transport returns
//! is trusted: the client verifies all of it against its pins.

mod grpc;

use core::fmt;
use std::future::Future;
use std::pin::Pin;

pub use grpc::{GrpcTransport, is_loopback_host};

use crate::verify::{ManifestInfo, UpdateInfo};

/// A boxed future, as the [`Transport`] methods return (so that the trait can be used as `dyn Transport`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A message received from the server together with its size on the wire (for [`crate::SyncReport`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received<T> {
    /// The message.
    pub message: T,
    /// Its encoded size in bytes.
    pub wire_bytes: u64,
}

/// One chunk of a streamed table (mirrors the `TableChunk` message).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkMessage {
    /// The chunk index it was sent with.
    pub index: u32,
    /// The `TableChunk` encoding.
    pub chunk: Vec<u8>,
}

/// The server's acknowledgement of a batch (mirrors the `SubmitAck` message).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubmitAck {
    /// The batch id acknowledged.
    pub batch_id: Vec<u8>,
    /// Vouchers the server holds for that batch.
    pub accepted: u32,
}

/// The newest checkpoint (mirrors the `LogCheckpoint` message).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointMessage {
    /// The C2SP signed note: checkpoint body, blank line, the log's signature and witness cosignature lines.
    pub note: Vec<u8>,
}

/// An inclusion proof (mirrors the `LogInclusionProof` message).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InclusionProofMessage {
    /// The leaf index the proof is for.
    pub leaf_index: u64,
    /// The tree size it is for.
    pub tree_size: u64,
    /// The `vouchsafe_log::InclusionProof` encoding.
    pub proof: Vec<u8>,
}

/// A consistency proof (mirrors the `LogConsistencyProof` message).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsistencyProofMessage {
    /// The older tree size.
    pub old_size: u64,
    /// The newer tree size.
    pub new_size: u64,
    /// The `vouchsafe_log::ConsistencyProof` encoding.
    pub proof: Vec<u8>,
}

/// One notice of the account (mirrors the `Notice` message): a report the provider sent to the Centre about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    /// The notice's id, for [`crate::Client::appeal`].
    pub id: u64,
    /// The detection order's id and hash (its leaf in the transparency log), hex.
    pub order_id: String,
    /// See `order_id`.
    pub order_hash: String,
    /// When the report was sent, Unix seconds.
    pub reported_at: i64,
    /// The reported attachments: the attachment reference the app put in the voucher, and the time it hashed it.
    pub attachments: Vec<([u8; 32], u64)>,
    /// What happens next, in plain words (show it to the user).
    pub next_steps: String,
    /// Until when an appeal is accepted, Unix seconds.
    pub appeal_deadline: i64,
    /// How to appeal, in plain words.
    pub how_to_appeal: String,
    /// `"none"`, `"pending"`, `"upheld"` or `"dismissed"`.
    pub appeal_status: String,
    /// The supervisor's reason once the appeal is decided.
    pub appeal_reason: String,
    /// Whether the account action taken with the report was reversed (an upheld appeal).
    pub action_reversed: bool,
}

/// The acknowledgement of an appeal (mirrors `AppealAck`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppealAck {
    /// The appeal's id.
    pub appeal_id: u64,
    /// When it was filed, Unix seconds.
    pub filed_at: i64,
}

/// Why an RPC failed, in the terms the client acts on. A transport maps its own failures here in one place.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RpcError {
    /// The bearer token was refused (UNAUTHENTICATED).
    Unauthenticated,
    /// The account is excluded from the order (PERMISSION_DENIED).
    PermissionDenied,
    /// No detection order is active (FAILED_PRECONDITION).
    NoActiveOrder,
    /// The table version named in the request is not served: StreamTable for a version that is no longer current,
    /// GetUpdate from a base the server's history no longer reaches (NOT_FOUND). Fetch the manifest again, or
    /// download the table in full.
    VersionNotServed,
    /// The request was refused as malformed (INVALID_ARGUMENT).
    InvalidArgument,
    /// Rate limited or over a size limit (RESOURCE_EXHAUSTED). Transient.
    ResourceExhausted,
    /// The account already has the most client states the server allows under the order (RESOURCE_EXHAUSTED with
    /// the metadata `vouchsafe-refusal: client-state-limit`). Not transient.
    TooManyClientStates,
    /// The server could not be reached or did not answer in time (UNAVAILABLE, DEADLINE_EXCEEDED, ABORTED,
    /// CANCELLED, UNKNOWN, or a local transport failure). Transient.
    Unavailable {
        /// The gRPC code name, or a short description of the local failure.
        code: &'static str,
    },
    /// The TLS handshake failed. Not transient.
    Tls {
        /// What the TLS library reported.
        reason: String,
    },
    /// An appeal was refused: the notice does not exist for this account (`code` NOT_FOUND), or its deadline passed
    /// or it was already appealed (FAILED_PRECONDITION); `message` is the server's explanation, to show the user.
    AppealRefused {
        /// The gRPC code name.
        code: &'static str,
        /// The server's message.
        message: String,
    },
    /// Any other status (INTERNAL, OUT_OF_RANGE, UNIMPLEMENTED, ...).
    Server {
        /// The gRPC code name.
        code: &'static str,
    },
}

impl RpcError {
    /// Whether the same call may succeed if retried after a backoff.
    pub fn is_retryable(&self) -> bool {
        matches!(self, RpcError::Unavailable { .. } | RpcError::ResourceExhausted)
    }
}

impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RpcError::Unauthenticated => f.write_str("unauthenticated"),
            RpcError::PermissionDenied => f.write_str("permission denied"),
            RpcError::NoActiveOrder => f.write_str("no active detection order"),
            RpcError::VersionNotServed => f.write_str("the table version is not served"),
            RpcError::InvalidArgument => f.write_str("invalid argument"),
            RpcError::ResourceExhausted => f.write_str("resource exhausted"),
            RpcError::TooManyClientStates => f.write_str("the account's client-state limit is reached"),
            RpcError::Unavailable { code } => write!(f, "unavailable ({code})"),
            RpcError::Tls { reason } => write!(f, "TLS handshake failed: {reason}"),
            RpcError::AppealRefused { code, message } => write!(f, "appeal refused ({code}): {message}"),
            RpcError::Server { code } => write!(f, "server status {code}"),
        }
    }
}

impl std::error::Error for RpcError {}

/// The chunks of one StreamTable call, in the order the server sends them.
pub trait ChunkStream: Send {
    /// The next chunk; `Ok(None)` when the server ended the stream.
    fn next_chunk(&mut self) -> BoxFuture<'_, Result<Option<Received<ChunkMessage>>, RpcError>>;
}

/// The six calls of `vouchsafe.v1.Matching` and the three of `vouchsafe.v1.Transparency` the client makes.
/// Implementations attach the account's credentials themselves; they do not retry (the client does, with its
/// backoff).
pub trait Transport: Send + Sync + 'static {
    /// GetManifest: the manifest of the current table.
    fn get_manifest(&self) -> BoxFuture<'_, Result<Received<ManifestInfo>, RpcError>>;
    /// StreamTable: the chunks of `table_version` from `first_chunk` on.
    fn stream_table(
        &self,
        table_version: u64,
        first_chunk: u32,
    ) -> BoxFuture<'_, Result<Box<dyn ChunkStream>, RpcError>>;
    /// GetUpdate: the update from `from_version` to the current version.
    fn get_update(&self, from_version: u64) -> BoxFuture<'_, Result<Received<UpdateInfo>, RpcError>>;
    /// SubmitVouchers: one batch with its idempotency id and the id of the client state that made it.
    fn submit_vouchers<'a>(
        &'a self,
        batch_id: [u8; 16],
        client_state: [u8; 16],
        vouchers: &'a [Vec<u8>],
    ) -> BoxFuture<'a, Result<SubmitAck, RpcError>>;
    /// Transparency.GetCheckpoint: the newest checkpoint with its cosignatures.
    fn get_checkpoint(&self) -> BoxFuture<'_, Result<Received<CheckpointMessage>, RpcError>>;
    /// Transparency.GetInclusionProof: the audit path of leaf `leaf_index` in the tree of size `tree_size`.
    fn get_inclusion_proof(
        &self,
        leaf_index: u64,
        tree_size: u64,
    ) -> BoxFuture<'_, Result<Received<InclusionProofMessage>, RpcError>>;
    /// Transparency.GetConsistencyProof: the proof that the tree of `new_size` extends the tree of `old_size`.
    fn get_consistency_proof(
        &self,
        old_size: u64,
        new_size: u64,
    ) -> BoxFuture<'_, Result<Received<ConsistencyProofMessage>, RpcError>>;
    /// Matching.GetNotices: the account's own notices.
    fn get_notices(&self) -> BoxFuture<'_, Result<Vec<Notice>, RpcError>>;
    /// Matching.SubmitAppeal: appeals notice `notice_id` with `text`.
    fn submit_appeal<'a>(&'a self, notice_id: u64, text: &'a str) -> BoxFuture<'a, Result<AppealAck, RpcError>>;
}
