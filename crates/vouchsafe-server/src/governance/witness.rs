//! A witness's network step over the `Transparency` service (what `vouchsafe witness cosign`, the demo and the
//! tests run): fetch the checkpoint and a consistency proof from the last checkpoint this witness cosigned, cosign
//! with `vouchsafe_log::Witness` only if the log extends it, persist the new state **before** handing the
//! cosignature in (a witness that forgets can be made to cosign a fork), then `AddCosignature`.
//!
//! State file: the body of the last cosigned checkpoint (`origin\nsize\nroot\n`), replaced atomically.

use std::fmt;
use std::path::Path;

use tonic::transport::Channel;
use vouchsafe_log::{Checkpoint, ConsistencyProof, LogVerifier, Note, TreeHead, Witness, WitnessSigningKey};
use vouchsafe_proto::v1::transparency_client::TransparencyClient;
use vouchsafe_proto::v1::{AddCosignatureRequest, GetCheckpointRequest, GetConsistencyProofRequest};

/// Largest message accepted from the log.
const MAX_MESSAGE: usize = 32 << 20;

/// What one cosigning round did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cosigned {
    /// The tree head cosigned.
    pub head: TreeHead,
    /// Distinct configured witnesses on the checkpoint now, as the log reports it.
    pub cosignatures: u32,
}

/// Why a witness did not cosign.
#[derive(Debug)]
#[non_exhaustive]
pub enum CosignError {
    /// The witness refused: the log does not extend what it cosigned (rollback, split view, bad proof), or its
    /// checkpoint is not signed by the log key. Nothing was signed; the state file is unchanged (keep it as
    /// evidence).
    Refused {
        /// Size of the tree the witness had cosigned.
        last_size: u64,
        /// What failed.
        reason: vouchsafe_log::Error,
    },
    /// The state file cannot be read or written, or belongs to another log.
    State(String),
    /// The log could not be reached, or answered with an error.
    Rpc(String),
}

impl fmt::Display for CosignError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CosignError::Refused { last_size, reason } => write!(
                f,
                "REFUSED to cosign: {reason}; the log does not extend the checkpoint of size {last_size} this witness \
                 cosigned"
            ),
            CosignError::State(m) => write!(f, "witness state: {m}"),
            CosignError::Rpc(m) => write!(f, "log: {m}"),
        }
    }
}

impl std::error::Error for CosignError {}

/// Reads a state file: `None` if it does not exist; refuses one of another origin.
pub fn read_state(path: &Path, origin: &str) -> Result<Option<TreeHead>, CosignError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(CosignError::State(format!("{}: {}", path.display(), e.kind()))),
    };
    let text = std::str::from_utf8(&bytes).map_err(|_| CosignError::State(format!("{}: not UTF-8", path.display())))?;
    let cp = Checkpoint::parse(text).map_err(|e| CosignError::State(format!("{}: {e}", path.display())))?;
    if cp.origin() != origin {
        return Err(CosignError::State(format!("{}: for log {:?}, not {origin:?}", path.display(), cp.origin())));
    }
    Ok(Some(cp.tree_head()))
}

/// Replaces a state file atomically (mode 0600, fsynced).
pub fn write_state(path: &Path, origin: &str, head: TreeHead) -> Result<(), CosignError> {
    let cp = Checkpoint::new(origin, head).map_err(|e| CosignError::State(e.to_string()))?;
    vouchsafe_files::write_secret(path, cp.body().as_bytes())
        .map_err(|e| CosignError::State(format!("{}: {}", path.display(), e.kind())))
}

fn rpc(what: &str, s: &tonic::Status) -> CosignError {
    CosignError::Rpc(format!("{what}: {:?}: {}", s.code(), s.message()))
}

/// One cosigning round against the log behind `channel`, at POSIX time `now`.
pub async fn cosign(
    channel: Channel,
    key: WitnessSigningKey,
    log: LogVerifier,
    state: &Path,
    now: u64,
) -> Result<Cosigned, CosignError> {
    let origin = log.name().to_owned();
    let last = read_state(state, &origin)?.unwrap_or_else(TreeHead::empty);
    let mut witness = Witness::new(key);
    witness.follow_from(log, last).map_err(|e| CosignError::State(e.to_string()))?;
    let mut client = TransparencyClient::new(channel).max_decoding_message_size(MAX_MESSAGE);
    let note_bytes =
        client.get_checkpoint(GetCheckpointRequest {}).await.map_err(|s| rpc("GetCheckpoint", &s))?.into_inner().note;
    let note = Note::parse(&note_bytes).map_err(|e| CosignError::Rpc(format!("checkpoint: {e}")))?;
    let new_size =
        Checkpoint::parse(note.text()).map_err(|e| CosignError::Rpc(format!("checkpoint: {e}")))?.tree_head().size;
    let proof = if last.size == 0 || new_size < last.size {
        // From the empty tree the proof is empty; a smaller tree is refused by `cosign` as a rollback.
        ConsistencyProof::default()
    } else {
        let p = client
            .get_consistency_proof(GetConsistencyProofRequest { old_size: last.size, new_size })
            .await
            .map_err(|s| rpc("GetConsistencyProof", &s))?
            .into_inner();
        ConsistencyProof::decode(&p.proof).map_err(|e| CosignError::Rpc(format!("consistency proof: {e}")))?
    };
    let sig = witness
        .cosign(&note_bytes, &proof, now)
        .map_err(|reason| CosignError::Refused { last_size: last.size, reason })?;
    let head = witness.last_cosigned(&origin).ok_or_else(|| CosignError::State("lost the state".to_owned()))?;
    write_state(state, &origin, head)?;
    let line = sig.to_line();
    let ack = client
        .add_cosignature(AddCosignatureRequest {
            checkpoint: note.text().as_bytes().to_vec(),
            cosignature: line.trim_end_matches('\n').to_owned(),
        })
        .await
        .map_err(|s| rpc("AddCosignature", &s))?
        .into_inner();
    Ok(Cosigned { head, cosignatures: ack.cosignatures })
}
