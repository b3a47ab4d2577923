//! A witness (c2sp.org/tlog-witness semantics, sans-IO): it cosigns a log's checkpoint only if the log signed
//! it and a consistency proof shows it extends the last checkpoint the witness cosigned for that log, so no two
//! clients holding cosigned checkpoints can be shown different histories.

use std::collections::BTreeMap;

use crate::checkpoint::open_checkpoint;
use crate::error::{Error, Result};
use crate::keys::{LogVerifier, MAX_COSIGNATURE_TIMESTAMP, WitnessSigningKey, WitnessVerifier};
use crate::merkle::{ConsistencyProof, TreeHead, verify_consistency};
use crate::note::{Note, NoteSignature};

#[derive(Debug)]
struct Followed {
    log: LogVerifier,
    last: TreeHead,
}

/// A witness's state: its key and, per followed log, the newest tree head it cosigned.
///
/// Persistence is the caller's: after [`Witness::cosign`] returns, store [`Witness::last_cosigned`] durably
/// *before* publishing the cosignature, and rebuild with [`Witness::follow_from`] — a witness that forgets its
/// state can be made to cosign a fork.
#[derive(Debug)]
pub struct Witness {
    key: WitnessSigningKey,
    logs: BTreeMap<String, Followed>,
}

impl Witness {
    /// A witness with this key, following no log yet.
    pub fn new(key: WitnessSigningKey) -> Witness {
        Witness { key, logs: BTreeMap::new() }
    }

    /// The witness's verifier key (what clients pin).
    pub fn verifier(&self) -> WitnessVerifier {
        self.key.verifier()
    }

    /// Starts following a log from the empty tree; its origin is the log key's name.
    pub fn follow(&mut self, log: LogVerifier) -> Result<()> {
        self.follow_from(log, TreeHead::empty())
    }

    /// Follows a log from a persisted last-cosigned tree head.
    pub fn follow_from(&mut self, log: LogVerifier, last: TreeHead) -> Result<()> {
        if self.logs.contains_key(log.name()) {
            return Err(Error::Misuse { what: "the witness already follows this origin" });
        }
        self.logs.insert(log.name().to_owned(), Followed { log, last });
        Ok(())
    }

    /// The newest tree head cosigned for `origin` (the old size a log must prove consistency from).
    pub fn last_cosigned(&self, origin: &str) -> Option<TreeHead> {
        self.logs.get(origin).map(|f| f.last)
    }

    /// Cosigns a log-signed checkpoint note given a consistency proof from [`Witness::last_cosigned`] to it, at
    /// POSIX time `now`. Refuses an unknown origin, a bad log signature, a smaller tree ([`Error::Rollback`]), the
    /// same size with another root ([`Error::SplitView`]) and a proof that does not verify; on any refusal the
    /// state is unchanged. Re-cosigning the same tree head is allowed (a fresh timestamp).
    pub fn cosign(&mut self, note: &[u8], proof: &ConsistencyProof, now: u64) -> Result<NoteSignature> {
        if now > MAX_COSIGNATURE_TIMESTAMP {
            return Err(Error::Misuse { what: "cosignature timestamp past 2^63 - 1" });
        }
        let note = Note::parse(note)?;
        let origin = crate::checkpoint::Checkpoint::parse(note.text())?.origin().to_owned();
        let followed = self.logs.get_mut(&origin).ok_or(Error::UnknownOrigin)?;
        let checkpoint = open_checkpoint(&note, &followed.log)?;
        let new = checkpoint.tree_head();
        let last = followed.last;
        if new.size < last.size {
            return Err(Error::Rollback { seen: last.size, offered: new.size });
        }
        if new.size == last.size && new.root != last.root {
            return Err(Error::SplitView { size: new.size });
        }
        verify_consistency(&last, &new, proof)?;
        let sig = NoteSignature::new(self.key.name(), self.key.key_id(), self.key.cosign_text(now, note.text()))?;
        followed.last = new;
        Ok(sig)
    }
}
