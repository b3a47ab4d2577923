//! The transparency log the server keeps (`[log] dir`): every order, revocation, Centre release and signed
//! manifest it serves under is a leaf; the checkpoint is signed with the log key and carries the witnesses'
//! cosignatures handed in through `AddCosignature`.
//!
//! Files (the server is the only writer):
//! * `leaves`: the leaves' encodings (`vouchsafe_log::Leaf::encode`, self-delimiting), appended and fsynced
//!   before any checkpoint covers them. A truncated last record (a crash while appending) was never covered by a
//!   checkpoint and is cut off at start.
//! * `checkpoint`: the signed note (log signature, then cosignatures), replaced atomically.
//!
//! At start the tree is rebuilt from `leaves`, and the server refuses to start if `checkpoint` is not signed by
//! the log key or does not match the tree at its size (a rewritten or truncated log).
//!
//! Replicas on one database each keep their own log directory with the same tree (the same leaves, appended in
//! the same order), so they sign byte-identical checkpoints (Ed25519 is deterministic). The witnesses'
//! cosignatures are shared through the store (`Store::put_log_cosignature`): one handed to any replica is stored
//! there, and every replica attaches the stored ones of its current checkpoint when it serves it, after verifying
//! each again.

use std::collections::{HashMap, HashSet};
use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use vouchsafe_log::{
    Checkpoint, ConsistencyProof, InclusionProof, Leaf, LogSigningKey, Note, NoteSignature, WitnessVerifier,
};
use vouchsafe_store::{LogCosignatures, NewLogCosignature, Store};

use crate::error::{Result, ServerError};

/// Most leaves in one `GetLeaves` answer.
pub(crate) const MAX_LEAVES_PER_RESPONSE: usize = 256;
/// Most bytes of leaves in one `GetLeaves` answer.
pub(crate) const MAX_LEAVES_BYTES: usize = 16 << 20;
/// How long a replica serves the shared cosignatures it read (or failed to read) before it reads them again: at
/// most one database read a second, however many devices ask for the checkpoint.
const SHARED_READ_TTL: Duration = Duration::from_secs(1);
/// Stored lines that did not verify, remembered so that each is logged once.
const MAX_REJECTED: usize = 1024;
/// Largest leaves file read at start.
const MAX_LEAVES_FILE: u64 = 1 << 34;

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> ServerError + use<> {
    let path = path.to_owned();
    move |source| ServerError::Io { what, path, source }
}

/// The log, its files and its keys.
pub(crate) struct TransLog {
    leaves_path: PathBuf,
    checkpoint_path: PathBuf,
    key: LogSigningKey,
    witnesses: Vec<WitnessVerifier>,
    log: vouchsafe_log::Log,
    index: HashMap<[u8; 32], u64>,
    note: Note,
    /// Where the cosignatures are shared with the other replicas, if anywhere.
    shared: Option<Arc<dyn Store>>,
    /// The checkpoint whose shared cosignatures were last read, and when the read started.
    shared_read: Option<([u8; 32], Instant)>,
    /// Stored lines that did not verify (each logged once).
    rejected: HashSet<String>,
}

impl TransLog {
    /// Opens (or creates) the log in `dir`: rebuilds the tree from the leaves file and checks the persisted
    /// checkpoint against it.
    pub(crate) fn open(dir: &Path, key: LogSigningKey, witnesses: Vec<WitnessVerifier>) -> Result<TransLog> {
        vouchsafe_files::create_private_dir(dir).map_err(io("log directory", dir))?;
        let leaves_path = dir.join("leaves");
        let checkpoint_path = dir.join("checkpoint");
        let verifier = key.verifier();
        let mut log = vouchsafe_log::Log::new();
        let mut index = HashMap::new();
        let bytes = match vouchsafe_files::read_limited(&leaves_path, MAX_LEAVES_FILE) {
            Ok(b) => b,
            Err(vouchsafe_files::KeyTextError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                zeroize::Zeroizing::new(Vec::new())
            }
            Err(e) => return Err(ServerError::Log(format!("leaves file {}: {e}", leaves_path.display()))),
        };
        let mut rest: &[u8] = &bytes;
        let mut good = 0usize;
        while !rest.is_empty() {
            let Some(len) = rest.get(2..6).and_then(|b| <[u8; 4]>::try_from(b).ok()).map(u32::from_be_bytes) else {
                break;
            };
            let Some(total) = (len as usize).checked_add(6).filter(|t| *t <= rest.len()) else { break };
            let (rec, tail) = rest.split_at(total);
            let leaf = Leaf::decode(rec).map_err(|e| {
                ServerError::Log(format!("leaves file {}: leaf {}: {e}", leaves_path.display(), log.size()))
            })?;
            index.entry(leaf.hash().0).or_insert(log.size());
            log.append(leaf).map_err(|e| ServerError::Log(e.to_string()))?;
            good += total;
            rest = tail;
        }
        if good < bytes.len() {
            tracing::warn!(path = %leaves_path.display(), "cutting off a truncated last leaf (never checkpointed)");
            let f = OpenOptions::new().write(true).open(&leaves_path).map_err(io("log leaves", &leaves_path))?;
            f.set_len(good as u64).and_then(|()| f.sync_all()).map_err(io("log leaves", &leaves_path))?;
        }
        let note = match std::fs::read(&checkpoint_path) {
            Ok(b) => {
                let refuse = |why: String| {
                    ServerError::Log(format!(
                        "checkpoint {}: {why}: the log was rewritten or truncated; refusing to serve it",
                        checkpoint_path.display()
                    ))
                };
                let note = Note::parse(&b).map_err(|e| refuse(e.to_string()))?;
                verifier.verify_note(&note).map_err(|e| refuse(e.to_string()))?;
                let cp = Checkpoint::parse(note.text()).map_err(|e| refuse(e.to_string()))?;
                if cp.origin() != verifier.name() {
                    return Err(refuse("another origin than the log key's".into()));
                }
                let head = cp.tree_head();
                if head.size > log.size() {
                    return Err(refuse(format!("size {} but {} leaves", head.size, log.size())));
                }
                let at = log.tree_head_at(head.size).map_err(|e| refuse(e.to_string()))?;
                if at.root != head.root {
                    return Err(refuse(format!("its root is not the root of the first {} leaves", head.size)));
                }
                Some(note)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io("log checkpoint", &checkpoint_path)(e)),
        };
        let mut t = TransLog {
            leaves_path,
            checkpoint_path,
            key,
            witnesses,
            log,
            index,
            note: Note::new("placeholder\n").map_err(|e| ServerError::Log(e.to_string()))?,
            shared: None,
            shared_read: None,
            rejected: HashSet::new(),
        };
        match note {
            Some(n) if Checkpoint::parse(n.text()).map(|c| c.tree_head().size).ok() == Some(t.log.size()) => {
                t.note = n;
            }
            // No checkpoint yet, or leaves appended after it (a crash before it was replaced): sign the tree.
            _ => {
                let note = t.sign(&t.log)?;
                t.persist_note(&note)?;
                t.note = note;
            }
        }
        Ok(t)
    }

    /// Shares the witnesses' cosignatures through `store` from now on (see the module's documentation).
    pub(crate) fn share_cosignatures(&mut self, store: Arc<dyn Store>) {
        self.shared = Some(store);
    }

    fn sign(&self, log: &vouchsafe_log::Log) -> Result<Note> {
        let cp = Checkpoint::new(self.key.name(), log.tree_head()).map_err(|e| ServerError::Log(e.to_string()))?;
        self.key.sign_checkpoint(&cp).map_err(|e| ServerError::Log(e.to_string()))
    }

    fn persist_note(&self, note: &Note) -> Result<()> {
        vouchsafe_files::write_secret(&self.checkpoint_path, note.encode().as_bytes())
            .map_err(io("log checkpoint", &self.checkpoint_path))
    }

    /// The index of each of `leaves`, appending (in order) those not yet in the log: the new leaves are written
    /// and fsynced, then a new checkpoint is signed and replaces the old one. All or nothing: on an error the
    /// leaves file is cut back and the log is unchanged.
    pub(crate) fn ensure(&mut self, leaves: &[Leaf]) -> Result<Vec<u64>> {
        let mut next = self.log.clone();
        let mut index = self.index.clone();
        let mut fresh: Vec<u8> = Vec::new();
        let mut out = Vec::with_capacity(leaves.len());
        for leaf in leaves {
            let h = leaf.hash().0;
            let i = match index.get(&h) {
                Some(i) => *i,
                None => {
                    fresh.extend_from_slice(&leaf.encode());
                    let i = next.append(leaf.clone()).map_err(|e| ServerError::Log(e.to_string()))?;
                    index.insert(h, i);
                    i
                }
            };
            out.push(i);
        }
        if fresh.is_empty() {
            return Ok(out);
        }
        let path = self.leaves_path.clone();
        let mut f = OpenOptions::new().append(true).create(true).open(&path).map_err(io("log leaves", &path))?;
        let old_len = f.metadata().map_err(io("log leaves", &path))?.len();
        let written = f
            .write_all(&fresh)
            .and_then(|()| f.sync_all())
            .map_err(io("log leaves", &path))
            .and_then(|()| self.sign(&next))
            .and_then(|note| self.persist_note(&note).map(|()| note));
        match written {
            Ok(note) => {
                self.log = next;
                self.index = index;
                self.note = note;
                tracing::info!(size = self.log.size(), "transparency log grew; new checkpoint signed");
                Ok(out)
            }
            Err(e) => {
                let _ = f.set_len(old_len).and_then(|()| f.sync_all());
                Err(e)
            }
        }
    }

    /// The current checkpoint note, with every cosignature it carries: those handed to this process and those of
    /// other replicas attached by [`TransLog::attach_stored`].
    pub(crate) fn checkpoint(&self) -> String {
        self.note.encode()
    }

    /// If the shared cosignatures of the current checkpoint are due to be read (sharing is on and the last read of
    /// this checkpoint began [`SHARED_READ_TTL`] ago or more): the store, the log's origin and the checkpoint's
    /// key, and the read counts as begun. The caller reads outside the log's lock and hands the result to
    /// [`TransLog::attach_stored`].
    pub(crate) fn take_shared_read(&mut self, now: Instant) -> Option<(Arc<dyn Store>, String, [u8; 32])> {
        let store = Arc::clone(self.shared.as_ref()?);
        let key = checkpoint_key(&self.note);
        if let Some((k, at)) = self.shared_read
            && k == key
            && now.saturating_duration_since(at) < SHARED_READ_TTL
        {
            return None;
        }
        self.shared_read = Some((key, now));
        Some((store, self.key.name().to_owned(), key))
    }

    /// Attaches the stored cosignatures `stored` (read for the checkpoint `key`) that this note lacks, each
    /// verified first; nothing if the log has moved on to another checkpoint meanwhile, or if its tree is smaller
    /// than the largest one its witnesses cosigned.
    pub(crate) fn attach_stored(&mut self, key: &[u8; 32], stored: LogCosignatures) -> Result<()> {
        if *key != checkpoint_key(&self.note) {
            return Ok(());
        }
        if stored.largest_cosigned_size > self.log.size() {
            // The witnesses cosigned a larger tree than this one: a log thrown away and rebuilt shorter (its old,
            // smaller checkpoint's cosignatures must not make it look current), or a replica that has not yet
            // reloaded an update (it catches up within a poll interval and keeps what it served meanwhile).
            tracing::warn!(
                size = self.log.size(),
                cosigned = stored.largest_cosigned_size,
                "this log is behind the largest tree its witnesses cosigned; shared cosignatures not served"
            );
            return Ok(());
        }
        let mut note = self.note.clone();
        let mut added = 0usize;
        for line in stored.lines {
            if note.signatures().iter().any(|s| s.to_line().strip_suffix('\n') == Some(line.as_str()))
                || self.rejected.contains(&line)
            {
                continue;
            }
            // Verified as if handed in: a row in the shared database is not trusted by itself.
            match self.verified(&line) {
                Ok(sig) => {
                    note.add_signature(sig).map_err(|e| ServerError::Log(e.to_string()))?;
                    added += 1;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "a stored log cosignature does not verify; not served");
                    if self.rejected.len() < MAX_REJECTED {
                        self.rejected.insert(line);
                    }
                }
            }
        }
        if added > 0 {
            self.persist_note(&note)?;
            self.note = note;
        }
        Ok(())
    }

    /// `line` checked as a cosignature of the current checkpoint by a configured witness.
    fn verified(&self, line: &str) -> Result<NoteSignature> {
        let sig = NoteSignature::parse_line(line).map_err(|e| ServerError::BadCosignature(e.to_string()))?;
        let witness =
            self.witnesses.iter().find(|w| w.name() == sig.name() && w.key_id() == sig.key_id()).ok_or_else(|| {
                ServerError::BadCosignature("not a witness this log collects cosignatures from".into())
            })?;
        witness.check_cosignature(self.note.text(), &sig).map_err(|e| ServerError::BadCosignature(e.to_string()))?;
        Ok(sig)
    }

    /// The log's size.
    pub(crate) fn size(&self) -> u64 {
        self.log.size()
    }

    pub(crate) fn inclusion_proof(&self, index: u64, size: u64) -> Result<InclusionProof> {
        if index >= size || size > self.log.size() {
            return Err(ServerError::LogRange(format!(
                "no leaf {index} in a tree of size {size} (the log has {})",
                self.log.size()
            )));
        }
        self.log.inclusion_proof(index, size).map_err(|e| ServerError::LogRange(e.to_string()))
    }

    pub(crate) fn consistency_proof(&self, old: u64, new: u64) -> Result<ConsistencyProof> {
        if old > new || new > self.log.size() {
            return Err(ServerError::LogRange(format!(
                "no consistency proof from size {old} to {new} (the log has {})",
                self.log.size()
            )));
        }
        self.log.consistency_proof(old, new).map_err(|e| ServerError::LogRange(e.to_string()))
    }

    /// Leaves `start..end`, at most [`MAX_LEAVES_PER_RESPONSE`] and [`MAX_LEAVES_BYTES`] (at least one).
    pub(crate) fn leaves(&self, start: u64, end: u64) -> Result<Vec<Vec<u8>>> {
        if start >= end || end > self.log.size() {
            return Err(ServerError::LogRange(format!("no leaves {start}..{end} (the log has {})", self.log.size())));
        }
        let mut out = Vec::new();
        let mut bytes = 0usize;
        for i in start..end {
            let Some(leaf) = self.log.leaf(i) else { break };
            let enc = leaf.encode();
            bytes = bytes.saturating_add(enc.len());
            if !out.is_empty() && (out.len() >= MAX_LEAVES_PER_RESPONSE || bytes > MAX_LEAVES_BYTES) {
                break;
            }
            out.push(enc);
        }
        Ok(out)
    }

    /// Attaches a witness's cosignature of the current checkpoint (text `checkpoint`), after checking it: the
    /// text is the current checkpoint's, the line parses, names a configured witness and verifies as its
    /// cosignature/v1. Persisted before it is served. Returns the number of configured witnesses that have
    /// cosigned the current checkpoint.
    pub(crate) fn add_cosignature(&mut self, checkpoint: &[u8], line: &str) -> Result<u32> {
        if checkpoint != self.note.text().as_bytes() {
            return Err(ServerError::StaleCheckpoint);
        }
        let line = line.strip_suffix('\n').unwrap_or(line);
        let sig = self.verified(line)?;
        let mut note = self.note.clone();
        note.add_signature(sig.clone()).map_err(|e| ServerError::BadCosignature(e.to_string()))?;
        // Shared, so that every replica can serve it. A database that cannot take it does not cost the
        // cosignature: this replica keeps and serves it (logged; the witness's next round shares its next one).
        if let Some(store) = &self.shared {
            let witness = format!("{} {:08x}", sig.name(), sig.key_id());
            let line = sig.to_line();
            let c = NewLogCosignature {
                origin: self.key.name(),
                checkpoint: &checkpoint_key(&self.note),
                tree_size: self.log.size(),
                witness: &witness,
                line: line.strip_suffix('\n').unwrap_or(&line),
                at: crate::config::unix_now(),
            };
            if let Err(e) = store.put_log_cosignature(&c) {
                tracing::warn!(error = %crate::error::ErrorChain(&e), "a witness cosignature not shared with the other replicas");
            }
        }
        self.persist_note(&note)?;
        self.note = note;
        Ok(self.cosignatures())
    }

    /// Configured witnesses with a cosignature line on the current checkpoint.
    fn cosignatures(&self) -> u32 {
        let n = self
            .witnesses
            .iter()
            .filter(|w| self.note.signatures().iter().any(|s| s.name() == w.name() && s.key_id() == w.key_id()))
            .count();
        u32::try_from(n).unwrap_or(u32::MAX)
    }
}

/// The store's key of a checkpoint: the SHA-256 of its text.
fn checkpoint_key(note: &Note) -> [u8; 32] {
    Sha256::digest(note.text().as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use vouchsafe_log::{LeafKind, Witness, WitnessSigningKey};
    use vouchsafe_store::SqliteStore;

    use super::*;

    /// The checkpoint as `Shared::checkpoint` serves it: the shared read (due: each call is a TTL later), then the
    /// note.
    fn served(t: &mut TransLog) -> String {
        if let Some((store, origin, key)) = t.take_shared_read(later()) {
            let stored = store.log_cosignatures(&origin, &key).unwrap_or_else(|e| panic!("{e}"));
            t.attach_stored(&key, stored).unwrap_or_else(|e| panic!("{e}"));
        }
        t.checkpoint()
    }

    /// A moment two seconds after the last one this returned: past the TTL of any read before.
    fn later() -> Instant {
        static STEP: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Instant::now() + Duration::from_secs(STEP.fetch_add(2, std::sync::atomic::Ordering::Relaxed))
    }

    fn key() -> LogSigningKey {
        LogSigningKey::from_seed("log.example", &[1; 32]).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Two replicas' logs on one database: the same leaves give the same checkpoint; a cosignature handed to one
    /// is served by the other, and a row that does not verify is served by neither.
    #[test]
    fn a_cosignature_handed_to_one_replica_is_served_by_another_and_a_forged_row_by_none() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store: Arc<dyn Store> =
            Arc::new(SqliteStore::open(dir.path().join("db.sqlite")).unwrap_or_else(|e| panic!("{e}")));
        let wkey = WitnessSigningKey::from_seed("witness.example", &[2; 32]).unwrap_or_else(|e| panic!("{e}"));
        let mut witness = Witness::new(wkey);
        witness.follow(key().verifier()).unwrap_or_else(|e| panic!("{e}"));
        let verifier = witness.verifier();
        let open = |name: &str| {
            let mut t =
                TransLog::open(&dir.path().join(name), key(), vec![verifier.clone()]).unwrap_or_else(|e| panic!("{e}"));
            t.share_cosignatures(Arc::clone(&store));
            t
        };
        let (mut a, mut b) = (open("a"), open("b"));
        let leaf = Leaf::new(LeafKind::Order, b"an order".to_vec()).unwrap_or_else(|e| panic!("{e}"));
        for t in [&mut a, &mut b] {
            t.ensure(std::slice::from_ref(&leaf)).unwrap_or_else(|e| panic!("{e}"));
        }
        let note = served(&mut a);
        assert_eq!(note, served(&mut b), "the same tree, the same signed checkpoint");
        let text = a.note.text().to_owned();

        // A row naming the witness but signed by nobody: not served, and not counted.
        let forged = format!("\u{2014} witness.example {}", "A".repeat(100));
        store
            .put_log_cosignature(&NewLogCosignature {
                origin: "log.example",
                checkpoint: &checkpoint_key(&a.note),
                tree_size: 1,
                witness: "witness.example 00000000",
                line: &forged,
                at: 1,
            })
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(served(&mut b), note, "a forged row is not served");
        assert_eq!(b.rejected.len(), 1, "and remembered, so that it is logged once");
        // Within the TTL of a read, no other read of the store.
        let t0 = later();
        assert!(b.take_shared_read(t0).is_some(), "due after the TTL");
        assert!(b.take_shared_read(t0 + Duration::from_millis(500)).is_none(), "not again within it");
        assert_eq!(b.cosignatures(), 0);

        let proof = a.consistency_proof(0, 1).unwrap_or_else(|e| panic!("{e}"));
        let sig = witness.cosign(note.as_bytes(), &proof, 1_700_000_000).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(a.add_cosignature(text.as_bytes(), &sig.to_line()).unwrap_or_else(|e| panic!("{e}")), 1);
        let served_b = served(&mut b);
        assert!(served_b.ends_with(&sig.to_line()), "replica b serves a's cosignature:\n{served_b}");
        assert_eq!(b.cosignatures(), 1);
        assert_eq!(served_b, served(&mut a));
        // Kept in b's own checkpoint file too: a restart of b without the database still has it.
        drop(b);
        let reopened =
            TransLog::open(&dir.path().join("b"), key(), vec![witness.verifier()]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(reopened.note.encode(), served_b);

        // The log grows and is cosigned at size 2; then a log rebuilt from the first leaf only (thrown away and
        // started afresh) signs the old size-1 checkpoint again. Its stored cosignatures are genuine, but they
        // must not make a log behind what the witnesses saw look current: not served.
        let second = Leaf::new(LeafKind::Revocation, b"a revocation".to_vec()).unwrap_or_else(|e| panic!("{e}"));
        a.ensure(std::slice::from_ref(&second)).unwrap_or_else(|e| panic!("{e}"));
        let grown = served(&mut a);
        let proof = a.consistency_proof(1, 2).unwrap_or_else(|e| panic!("{e}"));
        let sig = witness.cosign(grown.as_bytes(), &proof, 1_700_000_100).unwrap_or_else(|e| panic!("{e}"));
        let text = a.note.text().to_owned();
        assert_eq!(a.add_cosignature(text.as_bytes(), &sig.to_line()).unwrap_or_else(|e| panic!("{e}")), 1);
        let mut rebuilt = open("c");
        rebuilt.ensure(std::slice::from_ref(&leaf)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(rebuilt.note.text(), reopened.note.text(), "the old checkpoint, signed again");
        let _ = served(&mut rebuilt);
        assert_eq!(rebuilt.cosignatures(), 0, "a log behind the cosigned size gets no shared cosignature");
    }
}
