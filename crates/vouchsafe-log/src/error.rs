//! The log crate's error type. Each refusal a device, a witness or the log itself can make has its own variant,
//! so that callers can tell a rollback from a split view from a bad proof. Messages name public data only (sizes,
//! which input was malformed); no key material ever reaches an error.

use core::fmt;

/// Everything that can go wrong in the log, the witness and the client verifier.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// Bytes or text from another party (a note, a checkpoint, a key string, a proof, a leaf) did not decode.
    Malformed {
        /// Which input and what was wrong with it.
        what: &'static str,
    },
    /// A checkpoint's origin is not the log the verifier is configured for.
    OriginMismatch,
    /// The witness has no log with this checkpoint's origin configured.
    UnknownOrigin,
    /// The note carries no signature from the pinned log key.
    LogSignatureMissing,
    /// A signature line under the pinned log key's name and id did not verify.
    LogSignatureInvalid,
    /// A signature line under a pinned witness key's name and id did not verify as a cosignature/v1.
    CosignatureInvalid,
    /// A signature line is not under the key it was checked against (a cosignature by a witness the log does
    /// not collect from).
    UnknownKey,
    /// Fewer distinct pinned witnesses cosigned the checkpoint than the policy's quorum.
    QuorumNotMet {
        /// Distinct pinned witnesses whose cosignature verified.
        got: usize,
        /// The quorum.
        need: usize,
    },
    /// The checkpoint is smaller than one already verified or cosigned: a rollback.
    Rollback {
        /// The size already seen.
        seen: u64,
        /// The size offered.
        offered: u64,
    },
    /// The checkpoint has the size of one already seen but another root: the log forked (a split view).
    SplitView {
        /// The tree size both checkpoints claim.
        size: u64,
    },
    /// The consistency proof does not show that the new tree extends the old one.
    ConsistencyProofInvalid,
    /// The inclusion proof does not show the leaf at that index under the checkpoint's root.
    InclusionProofInvalid,
    /// The newest quorum of cosignatures is older than the device accepts: the log may be frozen for it.
    Stale {
        /// [`crate::VerifiedCheckpoint::quorum_time`].
        quorum_time: u64,
        /// The device's time.
        now: u64,
    },
    /// A leaf index or tree size beyond the tree it refers to.
    OutOfRange {
        /// The index or size asked for.
        index: u64,
        /// The size of the tree.
        size: u64,
    },
    /// The caller asked for something this API refuses (an invalid key name, a checkpoint of another origin, a
    /// quorum of zero, a duplicate witness, a timestamp past 2^63 − 1, ...).
    Misuse {
        /// Which rule.
        what: &'static str,
    },
    /// An invariant of this crate did not hold (a bug here, never the peer's or the caller's fault).
    Internal {
        /// Which invariant.
        what: &'static str,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Malformed { what } => write!(f, "malformed input: {what}"),
            Error::OriginMismatch => f.write_str("checkpoint origin is not the pinned log"),
            Error::UnknownOrigin => f.write_str("the witness does not follow this checkpoint's log"),
            Error::LogSignatureMissing => f.write_str("checkpoint carries no signature of the pinned log key"),
            Error::LogSignatureInvalid => f.write_str("checkpoint signature of the pinned log key does not verify"),
            Error::UnknownKey => f.write_str("the signature line is not under the expected key"),
            Error::CosignatureInvalid => f.write_str("a pinned witness's cosignature does not verify"),
            Error::QuorumNotMet { got, need } => {
                write!(f, "checkpoint cosigned by {got} pinned witnesses, the quorum is {need}")
            }
            Error::Rollback { seen, offered } => {
                write!(f, "rollback: tree size {offered} offered after size {seen} was seen")
            }
            Error::SplitView { size } => write!(f, "split view: two different roots for tree size {size}"),
            Error::ConsistencyProofInvalid => f.write_str("consistency proof does not verify"),
            Error::InclusionProofInvalid => f.write_str("inclusion proof does not verify"),
            Error::Stale { quorum_time, now } => {
                write!(f, "stale checkpoint: a quorum cosigned it at {quorum_time}, it is now {now}")
            }
            Error::OutOfRange { index, size } => write!(f, "{index} is out of range for a tree of size {size}"),
            Error::Misuse { what } => write!(f, "refused: {what}"),
            Error::Internal { what } => write!(f, "internal error (a bug in vouchsafe-log): {what}"),
        }
    }
}

impl std::error::Error for Error {}

/// The crate's result type.
pub type Result<T> = core::result::Result<T, Error>;
