//! The durable outbox: vouchers waiting to be sent, and batches with their idempotency ids.
//!
//! Layout of `outbox/`:
//! * `v-<seq>.vch` (magic `VSCVOUCH`, format 2): order id ‖ epoch u64 ‖ client-state id (16) ‖ voucher encoding.
//!   One file per voucher, written atomically before `scan` returns. Format 1 (no client-state id, written before
//!   client-state ids existed) is still read, as the default state (all zeros), which is how a server treats the
//!   batches such a client sent before.
//! * `b-<seq>.bat` (magic `VSCBATCH`, format 1): batch id (16 random bytes) ‖ count u32 ‖ voucher seqs (u64 each).
//!   A batch is written (durably) before it is sent for the first time, so every retry, including after a crash
//!   and restart, reuses the same batch id, and the server (idempotent on (account, batch id)) counts it once.
//!
//! A batch holds vouchers of one (order, epoch, client state) only, and its content is fixed when it is formed:
//! its voucher files are immutable and are only ever removed, so the id is never sent with other content (the
//! server refuses that with ALREADY_EXISTS).
//!
//! After an acknowledgement the batch's voucher files are removed first and the batch file last. On open, a batch
//! some of whose voucher files are missing was therefore acknowledged: its leftovers are removed. A voucher listed in
//! a batch is never put into another batch.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{ClientError, Result};
use crate::files;

const VOUCHER_MAGIC: &[u8; 8] = b"VSCVOUCH";
const BATCH_MAGIC: &[u8; 8] = b"VSCBATCH";
/// Format of batch files.
const FORMAT: u16 = 1;
/// Format of voucher files (2 added the client-state id; 1 is still read).
const VOUCHER_FORMAT: u16 = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Group {
    order_id: [u8; 16],
    epoch: u64,
    client_state: [u8; 16],
}

/// A batch ready to send.
#[derive(Clone, Debug)]
pub struct Batch {
    /// Sequence number of the batch file.
    pub seq: u64,
    /// The idempotency key, fixed when the batch was formed.
    pub id: [u8; 16],
    /// The client state that made its vouchers.
    pub client_state: [u8; 16],
    /// The encoded vouchers.
    pub vouchers: Vec<Vec<u8>>,
}

#[derive(Debug)]
struct BatchMeta {
    id: [u8; 16],
    seqs: Vec<u64>,
}

/// The on-disk outbox.
#[derive(Debug)]
pub struct Outbox {
    dir: PathBuf,
    next_seq: u64,
    /// Vouchers not yet in a batch.
    pending: BTreeMap<u64, Group>,
    /// Batches formed and not yet acknowledged.
    batches: BTreeMap<u64, BatchMeta>,
    /// Group of every voucher held in a batch.
    batched: BTreeMap<u64, Group>,
}

fn parse_name(name: &str, prefix: &str, suffix: &str) -> Option<u64> {
    let digits = name.strip_prefix(prefix)?.strip_suffix(suffix)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn voucher_name(seq: u64) -> String {
    format!("v-{seq:020}.vch")
}
fn batch_name(seq: u64) -> String {
    format!("b-{seq:020}.bat")
}

fn read_voucher(dir: &Path, seq: u64) -> Result<Option<(Group, Vec<u8>)>> {
    let Some((version, body)) =
        files::read_framed_versions(&dir.join(voucher_name(seq)), "outbox voucher", VOUCHER_MAGIC, 1..=VOUCHER_FORMAT)?
    else {
        return Ok(None);
    };
    let bad = || ClientError::Storage { file: "outbox voucher", reason: "truncated body" };
    let (order_id, rest) = body.split_first_chunk::<16>().ok_or_else(bad)?;
    let (epoch, rest) = rest.split_first_chunk::<8>().ok_or_else(bad)?;
    let (client_state, voucher) = match version {
        1 => ([0u8; 16], rest),
        _ => {
            let (cs, v) = rest.split_first_chunk::<16>().ok_or_else(bad)?;
            (*cs, v)
        }
    };
    if voucher.is_empty() {
        return Err(ClientError::Storage { file: "outbox voucher", reason: "empty voucher" });
    }
    Ok(Some((Group { order_id: *order_id, epoch: u64::from_le_bytes(*epoch), client_state }, voucher.to_vec())))
}

fn decode_batch(body: &[u8]) -> Result<BatchMeta> {
    let bad = ClientError::Storage { file: "outbox batch", reason: "malformed body" };
    let (id, rest) = body.split_first_chunk::<16>().ok_or(bad)?;
    let (count, rest) =
        rest.split_first_chunk::<4>().ok_or(ClientError::Storage { file: "outbox batch", reason: "malformed body" })?;
    let count = u32::from_le_bytes(*count) as usize;
    if count == 0 || rest.len() != 8 * count {
        return Err(ClientError::Storage { file: "outbox batch", reason: "malformed body" });
    }
    let seqs = rest
        .chunks_exact(8)
        .map(|c| <[u8; 8]>::try_from(c).map(u64::from_le_bytes))
        .collect::<Result<Vec<u64>, _>>()
        .map_err(|_| ClientError::Storage { file: "outbox batch", reason: "malformed body" })?;
    Ok(BatchMeta { id: *id, seqs })
}

impl Outbox {
    /// Opens (creating if needed) the outbox in `dir`, finishing the cleanup of batches acknowledged before a crash.
    pub fn open(dir: &Path) -> Result<Self> {
        files::create_private_dir(dir)?;
        let mut voucher_seqs = Vec::new();
        let mut batch_seqs = Vec::new();
        let mut max_seq = 0u64;
        for entry in fs::read_dir(dir).map_err(ClientError::io("listing the outbox"))? {
            let entry = entry.map_err(ClientError::io("listing the outbox"))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.starts_with('.') && name.ends_with(".tmp") {
                // An interrupted atomic write: the rename never happened, so nothing refers to it.
                files::remove(&entry.path())?;
            } else if let Some(s) = parse_name(name, "v-", ".vch") {
                voucher_seqs.push(s);
                max_seq = max_seq.max(s);
            } else if let Some(s) = parse_name(name, "b-", ".bat") {
                batch_seqs.push(s);
                max_seq = max_seq.max(s);
            }
        }
        let mut pending = BTreeMap::new();
        for s in voucher_seqs {
            if let Some((g, _)) = read_voucher(dir, s)? {
                pending.insert(s, g);
            }
        }
        let mut batches = BTreeMap::new();
        let mut batched = BTreeMap::new();
        let mut cleaned = false;
        for b in batch_seqs {
            let path = dir.join(batch_name(b));
            let Some(body) = files::read_framed(&path, "outbox batch", BATCH_MAGIC, FORMAT)? else { continue };
            let meta = decode_batch(&body)?;
            if meta.seqs.iter().any(|s| !pending.contains_key(s)) {
                // Acknowledged, cleanup interrupted: finish it.
                for s in &meta.seqs {
                    pending.remove(s);
                    files::remove(&dir.join(voucher_name(*s)))?;
                }
                files::remove(&path)?;
                cleaned = true;
                continue;
            }
            for s in &meta.seqs {
                if let Some(g) = pending.remove(s) {
                    batched.insert(*s, g);
                }
            }
            batches.insert(b, meta);
        }
        if cleaned {
            files::sync_dir(dir)?;
        }
        Ok(Outbox { dir: dir.to_path_buf(), next_seq: max_seq.saturating_add(1), pending, batches, batched })
    }

    fn take_seq(&mut self) -> u64 {
        let s = self.next_seq;
        self.next_seq = self.next_seq.saturating_add(1);
        s
    }

    /// Durably queues a voucher made for `order_id` / `epoch` by the client state `client_state`.
    pub fn push(&mut self, order_id: [u8; 16], epoch: u64, client_state: [u8; 16], voucher: &[u8]) -> Result<()> {
        let seq = self.take_seq();
        let mut body = Vec::with_capacity(40 + voucher.len());
        body.extend_from_slice(&order_id);
        body.extend_from_slice(&epoch.to_le_bytes());
        body.extend_from_slice(&client_state);
        body.extend_from_slice(voucher);
        files::write_framed(&self.dir, &voucher_name(seq), VOUCHER_MAGIC, VOUCHER_FORMAT, &body)?;
        self.pending.insert(seq, Group { order_id, epoch, client_state });
        Ok(())
    }

    /// Vouchers waiting (in a batch or not).
    pub fn len(&self) -> usize {
        self.pending.len() + self.batched.len()
    }

    /// Removes every voucher and batch not made for `order_id` (the order ended; the server refuses them).
    /// Returns how many vouchers were removed.
    pub fn discard_other_orders(&mut self, order_id: &[u8; 16]) -> Result<usize> {
        let mut removed = 0;
        let stale: Vec<u64> = self
            .batches
            .iter()
            .filter(|(_, m)| m.seqs.iter().any(|s| self.batched.get(s).is_some_and(|g| &g.order_id != order_id)))
            .map(|(b, _)| *b)
            .collect();
        for b in stale {
            removed += self.complete(b)?;
        }
        let loose: Vec<u64> = self.pending.iter().filter(|(_, g)| &g.order_id != order_id).map(|(s, _)| *s).collect();
        for s in loose {
            files::remove(&self.dir.join(voucher_name(s)))?;
            self.pending.remove(&s);
            removed += 1;
        }
        if removed > 0 {
            files::sync_dir(&self.dir)?;
        }
        Ok(removed)
    }

    /// The next batch to send: the oldest unacknowledged batch, or else a new one of at most `max` vouchers of one
    /// (order, epoch, client state) with a fresh random id, durably recorded before it is returned.
    pub fn next_batch<R: rand_core::CryptoRng + ?Sized>(&mut self, max: usize, rng: &mut R) -> Result<Option<Batch>> {
        if let Some((&seq, _)) = self.batches.iter().next() {
            return self.load_batch(seq).map(Some);
        }
        let Some((_, &group)) = self.pending.iter().next() else { return Ok(None) };
        let seqs: Vec<u64> =
            self.pending.iter().filter(|(_, g)| **g == group).map(|(s, _)| *s).take(max.max(1)).collect();
        let mut id = [0u8; 16];
        rng.fill_bytes(&mut id);
        let mut body = Vec::with_capacity(20 + 8 * seqs.len());
        body.extend_from_slice(&id);
        body.extend_from_slice(&(seqs.len() as u32).to_le_bytes());
        for s in &seqs {
            body.extend_from_slice(&s.to_le_bytes());
        }
        let bseq = self.take_seq();
        files::write_framed(&self.dir, &batch_name(bseq), BATCH_MAGIC, FORMAT, &body)?;
        for s in &seqs {
            self.pending.remove(s);
            self.batched.insert(*s, group);
        }
        self.batches.insert(bseq, BatchMeta { id, seqs });
        self.load_batch(bseq).map(Some)
    }

    fn load_batch(&self, seq: u64) -> Result<Batch> {
        let meta =
            self.batches.get(&seq).ok_or(ClientError::Storage { file: "outbox batch", reason: "unknown batch" })?;
        let mut vouchers = Vec::with_capacity(meta.seqs.len());
        let mut client_state = None;
        for s in &meta.seqs {
            let (g, v) = read_voucher(&self.dir, *s)?
                .ok_or(ClientError::Storage { file: "outbox voucher", reason: "a batched voucher is missing" })?;
            if *client_state.get_or_insert(g.client_state) != g.client_state {
                return Err(ClientError::Storage { file: "outbox batch", reason: "a batch mixes client states" });
            }
            vouchers.push(v);
        }
        Ok(Batch { seq, id: meta.id, client_state: client_state.unwrap_or_default(), vouchers })
    }

    /// Removes an acknowledged batch: its vouchers first, then the batch file. Returns how many vouchers it held.
    pub fn complete(&mut self, seq: u64) -> Result<usize> {
        let Some(meta) = self.batches.get(&seq) else { return Ok(0) };
        let n = meta.seqs.len();
        for s in &meta.seqs {
            files::remove(&self.dir.join(voucher_name(*s)))?;
        }
        files::sync_dir(&self.dir)?;
        files::remove(&self.dir.join(batch_name(seq)))?;
        files::sync_dir(&self.dir)?;
        if let Some(meta) = self.batches.remove(&seq) {
            for s in meta.seqs {
                self.batched.remove(&s);
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    const CS: [u8; 16] = [9; 16];

    #[test]
    fn batch_id_survives_reopen_and_ack_cleans_up() {
        let d = tempfile::tempdir().unwrap();
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let mut o = Outbox::open(d.path()).unwrap();
        for i in 0..5u8 {
            o.push([1; 16], 7, CS, &[i; 10]).unwrap();
        }
        let b = o.next_batch(3, &mut rng).unwrap().unwrap();
        assert_eq!(b.vouchers, vec![vec![0u8; 10], vec![1; 10], vec![2; 10]]);
        drop(o);
        let mut o = Outbox::open(d.path()).unwrap();
        assert_eq!(o.len(), 5);
        let again = o.next_batch(3, &mut rng).unwrap().unwrap();
        assert_eq!(again.id, b.id);
        assert_eq!(again.vouchers, b.vouchers);
        assert_eq!(o.complete(again.seq).unwrap(), 3);
        let next = o.next_batch(3, &mut rng).unwrap().unwrap();
        assert_ne!(next.id, b.id);
        assert_eq!(next.vouchers, vec![vec![3u8; 10], vec![4; 10]]);
        drop(o);
        let o = Outbox::open(d.path()).unwrap();
        assert_eq!(o.len(), 2);
    }

    #[test]
    fn interrupted_ack_cleanup_is_finished_on_open() {
        let d = tempfile::tempdir().unwrap();
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let mut o = Outbox::open(d.path()).unwrap();
        for i in 0..3u8 {
            o.push([1; 16], 7, CS, &[i; 4]).unwrap();
        }
        let b = o.next_batch(2, &mut rng).unwrap().unwrap();
        // Crash after removing the first voucher file of an acknowledged batch.
        fs::remove_file(d.path().join(voucher_name(*o.batches[&b.seq].seqs.first().unwrap()))).unwrap();
        drop(o);
        let mut o = Outbox::open(d.path()).unwrap();
        assert_eq!(o.len(), 1);
        let n = o.next_batch(2, &mut rng).unwrap().unwrap();
        assert_ne!(n.id, b.id);
        assert_eq!(n.vouchers, vec![vec![2u8; 4]]);
    }

    #[test]
    fn batches_never_mix_groups_and_other_orders_are_discarded() {
        let d = tempfile::tempdir().unwrap();
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let mut o = Outbox::open(d.path()).unwrap();
        o.push([1; 16], 7, CS, &[1; 4]).unwrap();
        o.push([2; 16], 9, CS, &[2; 4]).unwrap();
        o.push([1; 16], 7, CS, &[3; 4]).unwrap();
        let b = o.next_batch(10, &mut rng).unwrap().unwrap();
        assert_eq!(b.vouchers, vec![vec![1u8; 4], vec![3; 4]]);
        assert_eq!(o.discard_other_orders(&[2; 16]).unwrap(), 2);
        assert_eq!(o.len(), 1);
        let b = o.next_batch(10, &mut rng).unwrap().unwrap();
        assert_eq!(b.vouchers, vec![vec![2u8; 4]]);
    }

    #[test]
    fn batches_hold_one_client_state_and_carry_it() {
        let d = tempfile::tempdir().unwrap();
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        let mut o = Outbox::open(d.path()).unwrap();
        o.push([1; 16], 7, [5; 16], &[1; 4]).unwrap();
        o.push([1; 16], 7, [6; 16], &[2; 4]).unwrap();
        o.push([1; 16], 7, [5; 16], &[3; 4]).unwrap();
        let b = o.next_batch(10, &mut rng).unwrap().unwrap();
        assert_eq!((b.client_state, b.vouchers.clone()), ([5; 16], vec![vec![1u8; 4], vec![3; 4]]));
        o.complete(b.seq).unwrap();
        let b = o.next_batch(10, &mut rng).unwrap().unwrap();
        assert_eq!((b.client_state, b.vouchers), ([6; 16], vec![vec![2u8; 4]]));
    }

    #[test]
    fn format_1_vouchers_are_read_as_the_default_state() {
        let d = tempfile::tempdir().unwrap();
        let mut body = Vec::new();
        body.extend_from_slice(&[1; 16]);
        body.extend_from_slice(&7u64.to_le_bytes());
        body.extend_from_slice(&[8; 4]);
        files::write_framed(d.path(), &voucher_name(3), VOUCHER_MAGIC, 1, &body).unwrap();
        let mut o = Outbox::open(d.path()).unwrap();
        let b = o.next_batch(10, &mut ChaCha20Rng::seed_from_u64(5)).unwrap().unwrap();
        assert_eq!((b.client_state, b.vouchers), ([0; 16], vec![vec![8u8; 4]]));
    }

    /// A batch id is never reused for other content: across a crash before the acknowledgement (the batch comes
    /// back with its id and exactly its vouchers, even with new vouchers queued meanwhile), and after an interrupted
    /// acknowledgement cleanup (its id is gone for good; the leftovers are not resent under it).
    #[test]
    fn a_batch_id_never_names_other_content_across_crashes() {
        let d = tempfile::tempdir().unwrap();
        let mut rng = ChaCha20Rng::seed_from_u64(6);
        let mut o = Outbox::open(d.path()).unwrap();
        for i in 0..4u8 {
            o.push([1; 16], 7, CS, &[i; 4]).unwrap();
        }
        let first = o.next_batch(2, &mut rng).unwrap().unwrap();
        drop(o); // crash before the acknowledgement
        let mut o = Outbox::open(d.path()).unwrap();
        o.push([1; 16], 7, CS, &[9; 4]).unwrap();
        let again = o.next_batch(10, &mut rng).unwrap().unwrap();
        assert_eq!((again.id, &again.vouchers, again.client_state), (first.id, &first.vouchers, CS));
        // Acknowledged; the cleanup is interrupted after one voucher file.
        fs::remove_file(d.path().join(voucher_name(*o.batches[&again.seq].seqs.first().unwrap()))).unwrap();
        drop(o);
        let mut o = Outbox::open(d.path()).unwrap();
        let mut seen = Vec::new();
        while let Some(b) = o.next_batch(10, &mut rng).unwrap() {
            assert_ne!(b.id, first.id);
            assert!(b.vouchers.iter().all(|v| !first.vouchers.contains(v)), "an acknowledged voucher came back");
            seen.extend(b.vouchers.clone());
            o.complete(b.seq).unwrap();
        }
        assert_eq!(seen, vec![vec![2u8; 4], vec![3; 4], vec![9; 4]]);
    }
}
