//! The device side: a pinned policy (log key, witness keys, quorum), checkpoint verification, the persisted
//! newest checkpoint that only moves forward along consistency proofs, and inclusion of what the device uses.

use std::collections::BTreeMap;

use crate::checkpoint::{Checkpoint, open_checkpoint};
use crate::error::{Error, Result};
use crate::keys::{LogVerifier, WitnessVerifier};
use crate::leaf::Leaf;
use crate::merkle::{ConsistencyProof, InclusionProof, TreeHead};
use crate::note::Note;

/// What a device pins: the log's key, the witnesses' keys and how many distinct witnesses must cosign.
#[derive(Clone, Debug)]
pub struct CheckpointPolicy {
    log: LogVerifier,
    witnesses: Vec<WitnessVerifier>,
    quorum: usize,
}

impl CheckpointPolicy {
    /// A policy; refuses a quorum of 0 or above the number of witnesses, and two witnesses with the same name
    /// and key id or the same public key (one party must not count twice).
    pub fn new(log: LogVerifier, witnesses: Vec<WitnessVerifier>, quorum: usize) -> Result<CheckpointPolicy> {
        if quorum == 0 || quorum > witnesses.len() {
            return Err(Error::Misuse { what: "quorum must be between 1 and the number of witnesses" });
        }
        for (i, a) in witnesses.iter().enumerate() {
            if witnesses
                .iter()
                .skip(i + 1)
                .any(|b| (a.name() == b.name() && a.key_id() == b.key_id()) || a.public_key() == b.public_key())
            {
                return Err(Error::Misuse { what: "duplicate witness key" });
            }
        }
        Ok(CheckpointPolicy { log, witnesses, quorum })
    }

    /// The pinned log key.
    pub fn log(&self) -> &LogVerifier {
        &self.log
    }

    /// The quorum.
    pub fn quorum(&self) -> usize {
        self.quorum
    }

    /// Verifies a cosigned checkpoint note: the log's signature (every line under its key must verify, at least
    /// one must exist), and cosignatures from at least `quorum` distinct pinned witnesses (every line under a
    /// pinned witness key must verify; several lines of one witness count once; lines of unknown keys are
    /// ignored, as signed-note requires).
    pub fn verify_checkpoint(&self, note: &[u8]) -> Result<VerifiedCheckpoint> {
        let note = Note::parse(note)?;
        let checkpoint = open_checkpoint(&note, &self.log)?;
        // Witness index -> newest verified cosignature timestamp.
        let mut cosigned: BTreeMap<usize, u64> = BTreeMap::new();
        for sig in note.signatures() {
            for (i, w) in self.witnesses.iter().enumerate() {
                if !w.matches(sig) {
                    continue;
                }
                let ts = w.verify_cosignature(note.text(), sig.signature()).ok_or(Error::CosignatureInvalid)?;
                let e = cosigned.entry(i).or_insert(ts);
                *e = (*e).max(ts);
            }
        }
        if cosigned.len() < self.quorum {
            return Err(Error::QuorumNotMet { got: cosigned.len(), need: self.quorum });
        }
        let mut times: Vec<u64> = cosigned.values().copied().collect();
        times.sort_unstable_by(|a, b| b.cmp(a));
        let quorum_time = times.get(self.quorum - 1).copied().ok_or(Error::Internal { what: "quorum time" })?;
        Ok(VerifiedCheckpoint { checkpoint, note: note.encode(), quorum_time })
    }
}

/// A checkpoint whose log signature and witness quorum verified under a [`CheckpointPolicy`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedCheckpoint {
    checkpoint: Checkpoint,
    note: String,
    quorum_time: u64,
}

impl VerifiedCheckpoint {
    /// The checkpoint.
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    /// Its tree head.
    pub fn tree_head(&self) -> TreeHead {
        self.checkpoint.tree_head()
    }

    /// The note as verified (what a device persists and [`ClientLogState::restore`] takes back).
    pub fn note(&self) -> &str {
        &self.note
    }

    /// The newest time at which a quorum of witnesses had cosigned: `quorum` distinct pinned witnesses vouched
    /// for this tree head at or after it. A device checks it against its clock to refuse a frozen log.
    pub fn quorum_time(&self) -> u64 {
        self.quorum_time
    }

    /// Refuses ([`Error::Stale`]) a checkpoint whose newest quorum is more than `max_age` seconds before `now`
    /// (POSIX seconds, the device's clock): without it a log that stops publishing, or a network that replays an
    /// old checkpoint, can keep a device on an old view (say, before a revocation) indefinitely.
    pub fn check_fresh(&self, now: u64, max_age: u64) -> Result<()> {
        if now.saturating_sub(self.quorum_time) > max_age {
            return Err(Error::Stale { quorum_time: self.quorum_time, now });
        }
        Ok(())
    }
}

/// A device's view of the log: its policy and the newest verified checkpoint, which only moves forward.
#[derive(Clone, Debug)]
pub struct ClientLogState {
    policy: CheckpointPolicy,
    latest: Option<VerifiedCheckpoint>,
}

impl ClientLogState {
    /// A device that has seen nothing yet (the empty tree).
    pub fn new(policy: CheckpointPolicy) -> ClientLogState {
        ClientLogState { policy, latest: None }
    }

    /// Restores a device from its persisted [`VerifiedCheckpoint::note`], verifying it again under the policy.
    pub fn restore(policy: CheckpointPolicy, persisted_note: &[u8]) -> Result<ClientLogState> {
        let latest = policy.verify_checkpoint(persisted_note)?;
        Ok(ClientLogState { policy, latest: Some(latest) })
    }

    /// The newest verified checkpoint, if any.
    pub fn latest(&self) -> Option<&VerifiedCheckpoint> {
        self.latest.as_ref()
    }

    /// The newest tree head seen (the empty tree before the first checkpoint).
    pub fn tree_head(&self) -> TreeHead {
        self.latest.as_ref().map_or_else(TreeHead::empty, VerifiedCheckpoint::tree_head)
    }

    /// Moves to a newer checkpoint: verifies it under the policy, refuses a smaller tree ([`Error::Rollback`]),
    /// the same size with another root ([`Error::SplitView`]) and a consistency proof from [`Self::tree_head`]
    /// that does not verify. On any refusal the state is unchanged. The same tree head is accepted (and kept if
    /// its quorum is more recent).
    pub fn advance(&mut self, note: &[u8], proof: &ConsistencyProof) -> Result<&VerifiedCheckpoint> {
        let new = self.policy.verify_checkpoint(note)?;
        let (old, new_head) = (self.tree_head(), new.tree_head());
        if new_head.size < old.size {
            return Err(Error::Rollback { seen: old.size, offered: new_head.size });
        }
        if new_head.size == old.size && new_head.root != old.root {
            return Err(Error::SplitView { size: old.size });
        }
        crate::merkle::verify_consistency(&old, &new_head, proof)?;
        let keep_old =
            self.latest.as_ref().is_some_and(|l| l.tree_head() == new_head && l.quorum_time >= new.quorum_time);
        if !keep_old {
            self.latest = Some(new);
        }
        self.latest.as_ref().ok_or(Error::Internal { what: "latest checkpoint" })
    }
}

/// Verifies that `leaf` is the leaf at `index` of the verified checkpoint's tree.
pub fn verify_inclusion(
    leaf: &Leaf,
    index: u64,
    proof: &InclusionProof,
    checkpoint: &VerifiedCheckpoint,
) -> Result<()> {
    crate::merkle::verify_inclusion(&leaf.encode(), index, proof, &checkpoint.tree_head())
}
