//! C2SP tlog-checkpoint bodies (<https://c2sp.org/tlog-checkpoint>): `origin\nsize\nbase64(root)\n`, signed by the
//! log as a signed note whose key name is the origin.

use crate::error::{Error, Result};
use crate::keys::{LogSigningKey, LogVerifier};
use crate::merkle::{HASH_LEN, Hash, TreeHead};
use crate::note::{Note, b64_decode, b64_encode, is_valid_key_name};

/// A checkpoint: the log's origin and a tree head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    origin: String,
    tree: TreeHead,
}

impl Checkpoint {
    /// A checkpoint; the origin must be a valid key name (it is the log key's name).
    pub fn new(origin: &str, tree: TreeHead) -> Result<Checkpoint> {
        if !is_valid_key_name(origin) {
            return Err(Error::Misuse { what: "checkpoint origin must be a valid key name" });
        }
        Ok(Checkpoint { origin: origin.to_owned(), tree })
    }

    /// The log's origin line.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The tree head.
    pub fn tree_head(&self) -> TreeHead {
        self.tree
    }

    /// The checkpoint body (the note text).
    pub fn body(&self) -> String {
        format!("{}\n{}\n{}\n", self.origin, self.tree.size, b64_encode(&self.tree.root.0))
    }

    /// Parses a checkpoint body. Strict: exactly the three lines (this log writes no extension lines, so a
    /// checkpoint with any is refused), a decimal size without leading zeros, a canonical base64 32-byte root.
    pub fn parse(body: &str) -> Result<Checkpoint> {
        let what = "checkpoint body";
        let body = body.strip_suffix('\n').ok_or(Error::Malformed { what })?;
        let mut lines = body.split('\n');
        let (origin, size, root) = match (lines.next(), lines.next(), lines.next(), lines.next()) {
            (Some(o), Some(s), Some(r), None) => (o, s, r),
            (Some(_), Some(_), Some(_), Some(_)) => {
                return Err(Error::Malformed { what: "checkpoint extension lines are not accepted" });
            }
            _ => return Err(Error::Malformed { what }),
        };
        if !is_valid_key_name(origin) {
            return Err(Error::Malformed { what: "checkpoint origin" });
        }
        if size.is_empty() || !size.bytes().all(|b| b.is_ascii_digit()) || (size.len() > 1 && size.starts_with('0')) {
            return Err(Error::Malformed { what: "checkpoint size" });
        }
        let size: u64 = size.parse().map_err(|_| Error::Malformed { what: "checkpoint size" })?;
        let root = b64_decode(root, "checkpoint root")?;
        let root: [u8; HASH_LEN] = root.try_into().map_err(|_| Error::Malformed { what: "checkpoint root length" })?;
        Ok(Checkpoint { origin: origin.to_owned(), tree: TreeHead { size, root: Hash(root) } })
    }
}

impl LogSigningKey {
    /// Signs a checkpoint as a signed note; the checkpoint's origin must be this key's name.
    pub fn sign_checkpoint(&self, checkpoint: &Checkpoint) -> Result<Note> {
        if checkpoint.origin() != self.name() {
            return Err(Error::Misuse { what: "the checkpoint origin is not the log key's name" });
        }
        let mut note = Note::new(&checkpoint.body())?;
        self.sign_note(&mut note)?;
        Ok(note)
    }
}

/// Opens a checkpoint note under the log's key: the origin must be the key's name, at least one line under the
/// key's name and id must exist, and every such line must verify (signed-note: a failing signature from a known
/// key rejects the note). Lines of other keys are left to the caller.
pub(crate) fn open_checkpoint(note: &Note, log: &LogVerifier) -> Result<Checkpoint> {
    let checkpoint = Checkpoint::parse(note.text())?;
    if checkpoint.origin() != log.name() {
        return Err(Error::OriginMismatch);
    }
    log.verify_note(note)?;
    Ok(checkpoint)
}
