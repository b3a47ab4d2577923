//! The blinded cuckoo table: server-side build and incremental updates, chunked distribution with a Merkle root,
//! and client-side verification and validation.

use core::fmt;

use curve25519_dalek::constants::RISTRETTO_BASEPOINT_TABLE;
use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use rand_core::CryptoRng;
use sha2::{Digest, Sha256, Sha512};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::crypto::{check_item, decode_point, decode_scalar, hash_to_group, random_nonzero_scalar, sha256};
use crate::error::{Error, Result};
use crate::labels::*;
use crate::params::{EPOCH_PARAMS_LEN, EpochParams};
use crate::wire::Reader;

const EMPTY: u32 = u32::MAX;
/// Cuckoo random-walk evictions tried for one insertion before the attempt is abandoned.
const MAX_KICKS: usize = 4096;
/// Fresh nonces tried before the build gives up (each is a new, independent placement).
const MAX_BUILD_ATTEMPTS: usize = 64;
/// Default number of slots per distribution chunk.
pub const DEFAULT_CHUNK_SLOTS: u32 = 4096;
/// Largest chunk accepted.
pub const MAX_CHUNK_SLOTS: u32 = 1 << 16;

/// The server's secret blinding key α (non-zero). Zeroized on drop, redacted in `Debug`.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct BlindingKey {
    alpha: Scalar,
}

impl fmt::Debug for BlindingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BlindingKey(<redacted>)")
    }
}

impl BlindingKey {
    /// A fresh random key.
    pub fn random<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        BlindingKey { alpha: random_nonzero_scalar(rng) }
    }
    /// Decodes a key from its canonical 32-byte encoding (zero is rejected).
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self> {
        let alpha = decode_scalar(bytes, "blinding key")?;
        if alpha == Scalar::ZERO {
            return Err(Error::Parameter { what: "blinding key must be non-zero" });
        }
        Ok(BlindingKey { alpha })
    }
    /// The secret encoding (handle with care: this is α).
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.alpha.to_bytes())
    }
    /// L = α·G.
    pub fn public(&self) -> RistrettoPoint {
        &self.alpha * RISTRETTO_BASEPOINT_TABLE
    }
    pub(crate) fn alpha(&self) -> &Scalar {
        &self.alpha
    }
}

/// The k = 3 distinct cuckoo positions of `y` in a table of `m >= 3` slots under the epoch nonce.
///
/// Each 32-byte block `SHA-256(LABEL_POSITIONS ‖ nonce ‖ m ‖ counter ‖ len(y) ‖ y)` yields four 64-bit words, each
/// reduced mod m; the first three distinct values are the positions (the bias of a 64-bit value mod m < 2^26 is
/// below 2^-38 and public).
pub fn positions(nonce: &[u8; 16], m: u32, y: &[u8]) -> [u32; K] {
    let mut out = [0u32; K];
    let mut found = 0;
    let mut counter = 0u32;
    let mut prefix = Sha256::new();
    prefix.update(LABEL_POSITIONS);
    prefix.update(nonce);
    prefix.update(m.to_le_bytes());
    while found < K {
        let mut h = prefix.clone();
        h.update(counter.to_le_bytes());
        h.update((y.len() as u16).to_le_bytes());
        h.update(y);
        let block: [u8; 32] = h.finalize().into();
        for w in block.chunks_exact(8) {
            let mut b = [0u8; 8];
            b.copy_from_slice(w);
            let p = (u64::from_le_bytes(b) % m as u64) as u32;
            if found < K && !out[..found].contains(&p) {
                out[found] = p;
                found += 1;
            }
        }
        counter += 1;
    }
    out
}

/// The number of slots for `n` indicators: `max(ceil(1.12·n), n + 4, 8)`.
///
/// DESIGN asks for m ≥ 1.1·n. The extra 2% keeps the load at 0.893, below the k = 3 cuckoo threshold (≈ 0.918)
/// with room for ~2.8% of additions by incremental update before a new epoch is needed, and keeps the full table
/// at ≈ 35.9 bytes per indicator (bar: 36).
pub fn slot_count_for(n: usize) -> usize {
    (n + (n * 3).div_ceil(25)).max(n + 4).max(8)
}

/// What the operator chooses for a new epoch; the rest of [`EpochParams`] comes from the build.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableConfig {
    /// Epoch number.
    pub epoch: u64,
    /// Detection order id.
    pub order_id: [u8; 16],
    /// Threshold T.
    pub threshold: u16,
    /// Synthetic cap s.
    pub synthetic_cap: u16,
    /// Synthetic probability as a fraction of 2^32.
    pub synthetic_rate: u32,
    /// Padded associated-data length.
    pub ad_len: u16,
    /// Slots per distribution chunk.
    pub chunk_slots: u32,
}

fn map_maybe_parallel<T: Send, F: Fn(usize) -> T + Sync + Send>(n: usize, f: F) -> Vec<T> {
    #[cfg(feature = "parallel")]
    {
        use rayon::prelude::*;
        (0..n).into_par_iter().with_min_len(64).map(f).collect()
    }
    #[cfg(not(feature = "parallel"))]
    {
        (0..n).map(f).collect()
    }
}

fn filler_point(seed: &[u8; 32], slot: u32) -> CompressedRistretto {
    let mut h = Sha512::new();
    h.update(LABEL_FILLER);
    h.update(seed);
    h.update(slot.to_le_bytes());
    RistrettoPoint::from_hash(h).compress()
}

fn check_chunk_slots(chunk_slots: u32) -> Result<()> {
    if chunk_slots == 0 || chunk_slots > MAX_CHUNK_SLOTS {
        return Err(Error::Parameter { what: "chunk_slots must be in 1..=65536" });
    }
    Ok(())
}

/// Cuckoo placement of items (given their positions) into `slot_item`. Returns the slots it changed, or None if an
/// insertion exceeded [`MAX_KICKS`] (then `slot_item` may be partly changed; callers roll back via the journal).
fn cuckoo_insert<R: CryptoRng + ?Sized>(
    slot_item: &mut [u32],
    pos_of: &dyn Fn(u32) -> [u32; K],
    item: u32,
    journal: &mut Vec<(u32, u32)>,
    rng: &mut R,
) -> bool {
    let mut current = item;
    let mut came_from = u32::MAX;
    for _ in 0..MAX_KICKS {
        let pos = pos_of(current);
        if let Some(&free) = pos.iter().find(|&&p| slot_item[p as usize] == EMPTY) {
            journal.push((free, slot_item[free as usize]));
            slot_item[free as usize] = current;
            return true;
        }
        // Evict from a random position other than the one we were just placed from.
        let choices: Vec<u32> = pos.iter().copied().filter(|&p| p != came_from).collect();
        let victim_slot = choices[(rng.next_u32() as usize) % choices.len()];
        let victim = slot_item[victim_slot as usize];
        journal.push((victim_slot, victim));
        slot_item[victim_slot as usize] = current;
        came_from = victim_slot;
        current = victim;
    }
    false
}

/// Breadth-first search limit of [`cuckoo_insert_shortest`] (slots visited).
const MAX_BFS_SLOTS: usize = 1 << 16;

/// Inserts `item` along a SHORTEST eviction path (breadth-first search over the cuckoo graph), so an incremental
/// update changes as few slots as possible (at load ≈ 0.9 the random walk moves dozens of items per insertion, the
/// shortest path a handful). Falls back to the random walk if no free slot is reached within [`MAX_BFS_SLOTS`].
/// Changed slots are appended to `journal`.
fn cuckoo_insert_shortest<R: CryptoRng + ?Sized>(
    slot_item: &mut [u32],
    pos_of: &dyn Fn(u32) -> [u32; K],
    item: u32,
    journal: &mut Vec<(u32, u32)>,
    rng: &mut R,
) -> bool {
    // Nodes are slots; a node's children are the other positions of its occupant, and `parent` points back. A
    // free slot at node f gives the path root → … → parent(f) → f along which every occupant moves one step down
    // and `item` takes the root (one of its own positions).
    let mut nodes: Vec<(u32, u32)> = Vec::new(); // (slot, parent node index or u32::MAX)
    let mut seen = std::collections::HashSet::new();
    for p in pos_of(item) {
        if seen.insert(p) {
            nodes.push((p, u32::MAX));
        }
    }
    let mut head = 0;
    let mut found = None;
    while head < nodes.len() && nodes.len() < MAX_BFS_SLOTS {
        let (slot, _) = nodes[head];
        let occupant = slot_item[slot as usize];
        if occupant == EMPTY {
            found = Some(head);
            break;
        }
        for q in pos_of(occupant) {
            if seen.insert(q) {
                nodes.push((q, head as u32));
            }
        }
        head += 1;
    }
    let Some(mut at) = found else {
        return cuckoo_insert(slot_item, pos_of, item, journal, rng);
    };
    // Walk back: each slot on the path takes the occupant of its parent slot; the root takes `item`.
    loop {
        let (slot, parent) = nodes[at];
        let incoming = if parent == u32::MAX { item } else { slot_item[nodes[parent as usize].0 as usize] };
        journal.push((slot, slot_item[slot as usize]));
        slot_item[slot as usize] = incoming;
        if parent == u32::MAX {
            return true;
        }
        at = parent as usize;
    }
}

/// The server's table for one epoch: α, the indicators, the placement and the blinded slots.
pub struct ServerTable {
    params: EpochParams,
    key: BlindingKey,
    version: u64,
    chunk_slots: u32,
    items: Vec<Box<[u8]>>,
    slot_item: Vec<u32>,
    slots: Vec<[u8; 32]>,
}

impl fmt::Debug for ServerTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTable")
            .field("epoch", &self.params.epoch)
            .field("version", &self.version)
            .field("indicators", &self.items.len())
            .field("slots", &self.slots.len())
            .field("key", &"<redacted>")
            .finish()
    }
}

impl ServerTable {
    /// Builds the blinded table. Indicators are deduplicated; every one is placed (a failed placement retries with a
    /// fresh epoch nonce, never dropping an indicator). The elliptic-curve work runs on all cores.
    pub fn build<R: CryptoRng + ?Sized>(
        config: &TableConfig,
        key: BlindingKey,
        indicators: Vec<Vec<u8>>,
        rng: &mut R,
    ) -> Result<Self> {
        for y in &indicators {
            check_item(y)?;
        }
        check_chunk_slots(config.chunk_slots)?;
        let mut items: Vec<Box<[u8]>> = indicators.into_iter().map(Vec::into_boxed_slice).collect();
        items.sort_unstable();
        items.dedup();
        let m = slot_count_for(items.len());
        if m > MAX_SLOTS as usize {
            return Err(Error::TableBuild { reason: "too many indicators" });
        }
        let m = m as u32;
        let public = key.public().compress().to_bytes();

        for _ in 0..MAX_BUILD_ATTEMPTS {
            let mut nonce = [0u8; 16];
            rng.fill_bytes(&mut nonce);
            let params = EpochParams {
                epoch: config.epoch,
                nonce,
                order_id: config.order_id,
                blinding_public: public,
                slot_count: m,
                threshold: config.threshold,
                synthetic_cap: config.synthetic_cap,
                synthetic_rate: config.synthetic_rate,
                ad_len: config.ad_len,
            };
            params.validate()?;
            let pos: Vec<[u32; K]> = map_maybe_parallel(items.len(), |i| positions(&nonce, m, &items[i]));
            let mut slot_item = vec![EMPTY; m as usize];
            let mut journal = Vec::new();
            let pos_of = |i: u32| pos[i as usize];
            let mut ok = true;
            for i in 0..items.len() as u32 {
                journal.clear();
                if !cuckoo_insert(&mut slot_item, &pos_of, i, &mut journal, rng) {
                    ok = false;
                    break;
                }
            }
            if !ok {
                continue;
            }
            drop(pos);
            let mut seed = Zeroizing::new([0u8; 32]);
            rng.fill_bytes(&mut seed[..]);
            let alpha = key.alpha();
            let slots = map_maybe_parallel(m as usize, |s| {
                let it = slot_item[s];
                if it == EMPTY {
                    filler_point(&seed, s as u32).to_bytes()
                } else {
                    (alpha * hash_to_group(&nonce, &items[it as usize])).compress().to_bytes()
                }
            });
            return Ok(ServerTable {
                params,
                key,
                version: 1,
                chunk_slots: config.chunk_slots,
                items,
                slot_item,
                slots,
            });
        }
        Err(Error::TableBuild { reason: "no cuckoo placement found after 64 fresh nonces" })
    }

    /// The public epoch parameters.
    pub fn params(&self) -> &EpochParams {
        &self.params
    }
    /// The secret key (for the opening side of the server).
    pub fn key(&self) -> &BlindingKey {
        &self.key
    }
    /// Current table version (1 after a build, +1 per update).
    pub fn version(&self) -> u64 {
        self.version
    }
    /// Number of indicators placed.
    pub fn indicator_count(&self) -> usize {
        self.items.len()
    }
    /// The blinded slots.
    pub fn slots(&self) -> &[[u8; 32]] {
        &self.slots
    }
    /// Slots per chunk.
    pub fn chunk_slots(&self) -> u32 {
        self.chunk_slots
    }
    /// Number of chunks.
    pub fn chunk_count(&self) -> u32 {
        self.slots.len().div_ceil(self.chunk_slots as usize) as u32
    }

    /// Encodes chunk `index` (None if out of range).
    pub fn chunk(&self, index: u32) -> Option<TableChunk> {
        let c = self.chunk_slots as usize;
        let start = (index as usize).checked_mul(c)?;
        if start >= self.slots.len() {
            return None;
        }
        let end = (start + c).min(self.slots.len());
        Some(TableChunk { index, first_slot: start as u32, slots: self.slots[start..end].to_vec() })
    }

    /// The signed-over manifest for the current version.
    pub fn manifest(&self) -> TableManifest {
        let chunk_hashes = map_maybe_parallel(self.chunk_count() as usize, |i| {
            // In range by construction.
            self.chunk(i as u32).map(|c| c.hash()).unwrap_or([0u8; 32])
        });
        TableManifest {
            params: self.params.clone(),
            table_version: self.version,
            chunk_slots: self.chunk_slots,
            chunk_hashes,
        }
    }

    fn find(&self, y: &[u8]) -> Option<(u32, u32)> {
        positions(&self.params.nonce, self.params.slot_count, y).into_iter().find_map(|p| {
            let it = self.slot_item[p as usize];
            (it != EMPTY && &*self.items[it as usize] == y).then_some((p, it))
        })
    }

    /// Whether `y` is in the table.
    pub fn contains(&self, y: &[u8]) -> bool {
        self.find(y).is_some()
    }

    /// Adds and removes indicators in place and returns the update (only changed slots) from the previous version.
    /// Removed slots get fresh random points. All or nothing: if an addition cannot be placed (the table is too
    /// full; start a new epoch) nothing changes.
    pub fn update<R: CryptoRng + ?Sized>(
        &mut self,
        add: Vec<Vec<u8>>,
        remove: &[Vec<u8>],
        rng: &mut R,
    ) -> Result<TableUpdate> {
        for y in add.iter().chain(remove) {
            check_item(y)?;
        }
        let nonce = self.params.nonce;
        let m = self.params.slot_count;
        let mut slot_item = self.slot_item.clone();
        let mut items = self.items.clone();
        let mut changed: Vec<u32> = Vec::new();
        // Removals: free the slot, swap-remove the item and re-point the moved item's slot.
        for y in remove {
            let Some(p) = positions(&nonce, m, y)
                .into_iter()
                .find(|&p| slot_item[p as usize] != EMPTY && &*items[slot_item[p as usize] as usize] == y.as_slice())
            else {
                continue;
            };
            let idx = slot_item[p as usize];
            slot_item[p as usize] = EMPTY;
            changed.push(p);
            let last = (items.len() - 1) as u32;
            items.swap_remove(idx as usize);
            if idx != last {
                let moved = &items[idx as usize];
                if let Some(q) = positions(&nonce, m, moved).into_iter().find(|&q| slot_item[q as usize] == last) {
                    slot_item[q as usize] = idx;
                }
            }
        }
        let mut add: Vec<Box<[u8]>> = add.into_iter().map(Vec::into_boxed_slice).collect();
        add.sort_unstable();
        add.dedup();
        let mut journal = Vec::new();
        for y in add {
            let present = positions(&nonce, m, &y)
                .into_iter()
                .any(|p| slot_item[p as usize] != EMPTY && items[slot_item[p as usize] as usize] == y);
            if present {
                continue;
            }
            items.push(y);
            let idx = (items.len() - 1) as u32;
            let pos_of = |i: u32| positions(&nonce, m, &items[i as usize]);
            journal.clear();
            if !cuckoo_insert_shortest(&mut slot_item, &pos_of, idx, &mut journal, rng) {
                return Err(Error::TableBuild { reason: "table too full for this update; build a new epoch" });
            }
            changed.extend(journal.iter().map(|(s, _)| *s));
        }
        changed.sort_unstable();
        changed.dedup();
        let mut seed = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(&mut seed[..]);
        let alpha = self.key.alpha();
        let new_points = map_maybe_parallel(changed.len(), |i| {
            let s = changed[i];
            let it = slot_item[s as usize];
            if it == EMPTY {
                filler_point(&seed, s).to_bytes()
            } else {
                (alpha * hash_to_group(&nonce, &items[it as usize])).compress().to_bytes()
            }
        });
        let mut changes = Vec::with_capacity(changed.len());
        for (s, p) in changed.iter().zip(new_points) {
            if self.slots[*s as usize] != p {
                changes.push((*s, p));
            }
        }
        for (s, p) in &changes {
            self.slots[*s as usize] = *p;
        }
        self.slot_item = slot_item;
        self.items = items;
        let from = self.version;
        self.version += 1;
        Ok(TableUpdate { epoch: self.params.epoch, from_version: from, to_version: self.version, changes })
    }

    /// Secret, versioned encoding of the whole server table (contains α: store it like a private key).
    pub fn to_secret_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Vec::new();
        out.push(WIRE_VERSION);
        out.extend_from_slice(&self.params.encode());
        out.extend_from_slice(&self.key.to_bytes()[..]);
        out.extend_from_slice(&self.version.to_le_bytes());
        out.extend_from_slice(&self.chunk_slots.to_le_bytes());
        out.extend_from_slice(&(self.items.len() as u32).to_le_bytes());
        for it in &self.items {
            out.extend_from_slice(&(it.len() as u16).to_le_bytes());
            out.extend_from_slice(it);
        }
        for s in &self.slot_item {
            out.extend_from_slice(&s.to_le_bytes());
        }
        for s in &self.slots {
            out.extend_from_slice(s);
        }
        Zeroizing::new(out)
    }

    /// Decodes [`ServerTable::to_secret_bytes`], checking that the key matches L and that every placed indicator sits
    /// at one of its own positions.
    pub fn from_secret_bytes(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new("server table", bytes);
        r.version(WIRE_VERSION)?;
        let params = EpochParams::decode(r.take(EPOCH_PARAMS_LEN)?)?;
        let key = BlindingKey::from_bytes(&r.array()?)?;
        if key.public().compress().to_bytes() != params.blinding_public {
            return Err(Error::Table { reason: "blinding key does not match L" });
        }
        let version = r.u64()?;
        let chunk_slots = r.u32()?;
        check_chunk_slots(chunk_slots)?;
        let n = r.u32()? as usize;
        let m = params.slot_count as usize;
        if n > m {
            return Err(Error::Table { reason: "more indicators than slots" });
        }
        let mut items = Vec::with_capacity(n);
        for _ in 0..n {
            let len = r.u16()? as usize;
            let y = r.take(len)?;
            check_item(y)?;
            items.push(y.to_vec().into_boxed_slice());
        }
        if r.remaining() != m * 36 {
            return Err(Error::Length {
                what: "server table",
                expected: bytes.len() - r.remaining() + m * 36,
                got: bytes.len(),
            });
        }
        let mut slot_item = Vec::with_capacity(m);
        for _ in 0..m {
            slot_item.push(r.u32()?);
        }
        let mut slots = Vec::with_capacity(m);
        for _ in 0..m {
            slots.push(r.array::<32>()?);
        }
        r.finish()?;
        let mut seen = vec![false; n];
        for (s, &it) in slot_item.iter().enumerate() {
            if it == EMPTY {
                continue;
            }
            let i = it as usize;
            if i >= n || seen[i] || !positions(&params.nonce, params.slot_count, &items[i]).contains(&(s as u32)) {
                return Err(Error::Table { reason: "inconsistent placement" });
            }
            seen[i] = true;
        }
        if seen.iter().any(|s| !s) {
            return Err(Error::Table { reason: "an indicator is not placed" });
        }
        Ok(ServerTable { params, key, version, chunk_slots, items, slot_item, slots })
    }
}

/// One distribution chunk: consecutive slots starting at `first_slot`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableChunk {
    /// Chunk index.
    pub index: u32,
    /// First slot it holds (= index · chunk_slots).
    pub first_slot: u32,
    /// The compressed points.
    pub slots: Vec<[u8; 32]>,
}

impl TableChunk {
    /// `version ‖ index u32 ‖ first_slot u32 ‖ count u32 ‖ count × 32 bytes`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(13 + 32 * self.slots.len());
        out.push(WIRE_VERSION);
        out.extend_from_slice(&self.index.to_le_bytes());
        out.extend_from_slice(&self.first_slot.to_le_bytes());
        out.extend_from_slice(&(self.slots.len() as u32).to_le_bytes());
        for s in &self.slots {
            out.extend_from_slice(s);
        }
        out
    }

    /// Decodes a chunk (structure only; [`TableDownload::add_chunk`] checks it against the manifest).
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new("table chunk", bytes);
        r.version(WIRE_VERSION)?;
        let index = r.u32()?;
        let first_slot = r.u32()?;
        let count = r.u32()?;
        if count == 0 || count > MAX_CHUNK_SLOTS {
            return Err(Error::Table { reason: "chunk slot count out of range" });
        }
        let expected = 13 + 32 * count as usize;
        if bytes.len() != expected {
            return Err(Error::Length { what: "table chunk", expected, got: bytes.len() });
        }
        let mut slots = Vec::with_capacity(count as usize);
        for _ in 0..count {
            slots.push(r.array::<32>()?);
        }
        r.finish()?;
        Ok(TableChunk { index, first_slot, slots })
    }

    /// `SHA-256(LABEL_CHUNK ‖ encode(chunk))`.
    pub fn hash(&self) -> [u8; 32] {
        sha256(&[LABEL_CHUNK, &self.encode()])
    }
}

/// Merkle root (SHA-256, domain-separated nodes; an odd last node is carried up unchanged) over chunk hashes.
pub fn merkle_root(leaves: &[[u8; 32]]) -> [u8; 32] {
    if leaves.is_empty() {
        return sha256(&[LABEL_MERKLE_NODE]);
    }
    let mut level = leaves.to_vec();
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|p| if p.len() == 2 { sha256(&[LABEL_MERKLE_NODE, &p[0], &p[1]]) } else { p[0] })
            .collect();
    }
    level[0]
}

/// What the server publishes for one table version: parameters, version, chunking and chunk hashes. The root
/// (derived, never transmitted separately from what it commits to) is what goes into the public append-only log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableManifest {
    /// Epoch parameters.
    pub params: EpochParams,
    /// Table version.
    pub table_version: u64,
    /// Slots per chunk.
    pub chunk_slots: u32,
    /// Hash of every chunk, in order.
    pub chunk_hashes: Vec<[u8; 32]>,
}

impl TableManifest {
    /// `root = SHA-256(LABEL_TABLE_ROOT ‖ ctx ‖ table_version ‖ chunk_slots ‖ merkle_root(chunk_hashes))`.
    pub fn root(&self) -> [u8; 32] {
        sha256(&[
            LABEL_TABLE_ROOT,
            &self.params.context(),
            &self.table_version.to_le_bytes(),
            &self.chunk_slots.to_le_bytes(),
            &merkle_root(&self.chunk_hashes),
        ])
    }

    /// `version ‖ params ‖ table_version u64 ‖ chunk_slots u32 ‖ count u32 ‖ count × 32`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + EPOCH_PARAMS_LEN + 16 + 32 * self.chunk_hashes.len());
        out.push(WIRE_VERSION);
        out.extend_from_slice(&self.params.encode());
        out.extend_from_slice(&self.table_version.to_le_bytes());
        out.extend_from_slice(&self.chunk_slots.to_le_bytes());
        out.extend_from_slice(&(self.chunk_hashes.len() as u32).to_le_bytes());
        for h in &self.chunk_hashes {
            out.extend_from_slice(h);
        }
        out
    }

    /// Decodes and checks that the chunk count fits the slot count.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new("table manifest", bytes);
        r.version(WIRE_VERSION)?;
        let params = EpochParams::decode(r.take(EPOCH_PARAMS_LEN)?)?;
        let table_version = r.u64()?;
        let chunk_slots = r.u32()?;
        check_chunk_slots(chunk_slots)?;
        let count = r.u32()? as usize;
        if count != (params.slot_count as usize).div_ceil(chunk_slots as usize) {
            return Err(Error::Table { reason: "chunk count does not match slot count" });
        }
        if r.remaining() != 32 * count {
            return Err(Error::Length {
                what: "table manifest",
                expected: bytes.len() - r.remaining() + 32 * count,
                got: bytes.len(),
            });
        }
        let mut chunk_hashes = Vec::with_capacity(count);
        for _ in 0..count {
            chunk_hashes.push(r.array()?);
        }
        r.finish()?;
        Ok(TableManifest { params, table_version, chunk_slots, chunk_hashes })
    }

    fn chunk_range(&self, index: u32) -> Option<(usize, usize)> {
        let c = self.chunk_slots as usize;
        let start = (index as usize).checked_mul(c)?;
        let m = self.params.slot_count as usize;
        (start < m).then(|| (start, (start + c).min(m)))
    }
}

/// An incremental update: only the changed slots, `(slot u32, point)` = 36 bytes each.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableUpdate {
    /// Epoch it applies to.
    pub epoch: u64,
    /// Version it applies to.
    pub from_version: u64,
    /// Version it produces.
    pub to_version: u64,
    /// Changed slots, ascending and unique.
    pub changes: Vec<(u32, [u8; 32])>,
}

impl TableUpdate {
    /// `version ‖ epoch u64 ‖ from u64 ‖ to u64 ‖ count u32 ‖ count × (slot u32 ‖ 32 bytes)`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(29 + 36 * self.changes.len());
        out.push(WIRE_VERSION);
        out.extend_from_slice(&self.epoch.to_le_bytes());
        out.extend_from_slice(&self.from_version.to_le_bytes());
        out.extend_from_slice(&self.to_version.to_le_bytes());
        out.extend_from_slice(&(self.changes.len() as u32).to_le_bytes());
        for (s, p) in &self.changes {
            out.extend_from_slice(&s.to_le_bytes());
            out.extend_from_slice(p);
        }
        out
    }

    /// Decodes; slots must be strictly ascending.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new("table update", bytes);
        r.version(WIRE_VERSION)?;
        let epoch = r.u64()?;
        let from_version = r.u64()?;
        let to_version = r.u64()?;
        if to_version <= from_version {
            return Err(Error::Table { reason: "update must move to a later version" });
        }
        let count = r.u32()? as usize;
        if r.remaining() != 36 * count {
            return Err(Error::Length {
                what: "table update",
                expected: bytes.len() - r.remaining() + 36 * count,
                got: bytes.len(),
            });
        }
        let mut changes: Vec<(u32, [u8; 32])> = Vec::with_capacity(count);
        for _ in 0..count {
            let s = r.u32()?;
            if changes.last().is_some_and(|(prev, _)| *prev >= s) {
                return Err(Error::Table { reason: "update slots must be strictly ascending" });
            }
            changes.push((s, r.array()?));
        }
        r.finish()?;
        Ok(TableUpdate { epoch, from_version, to_version, changes })
    }

    /// Composes consecutive updates `self` (v→w) and `next` (w→z) into one (v→z), the later value winning.
    pub fn then(&self, next: &TableUpdate) -> Result<TableUpdate> {
        if next.epoch != self.epoch || next.from_version != self.to_version {
            return Err(Error::Table { reason: "updates are not consecutive" });
        }
        let mut map: std::collections::BTreeMap<u32, [u8; 32]> = self.changes.iter().copied().collect();
        map.extend(next.changes.iter().copied());
        Ok(TableUpdate {
            epoch: self.epoch,
            from_version: self.from_version,
            to_version: next.to_version,
            changes: map.into_iter().collect(),
        })
    }
}

/// A table being downloaded: chunks are checked against the manifest's chunk hashes as they arrive.
#[derive(Debug)]
pub struct TableDownload {
    manifest: TableManifest,
    slots: Vec<[u8; 32]>,
    received: Vec<bool>,
}

impl TableDownload {
    /// Starts a download for a manifest whose root the caller has checked (signature, public log).
    pub fn new(manifest: TableManifest) -> Self {
        let m = manifest.params.slot_count as usize;
        let n = manifest.chunk_hashes.len();
        TableDownload { manifest, slots: vec![[0u8; 32]; m], received: vec![false; n] }
    }

    /// The manifest.
    pub fn manifest(&self) -> &TableManifest {
        &self.manifest
    }

    /// Adds one encoded chunk; it must hash to the manifest's entry and fit the slot layout exactly.
    pub fn add_chunk(&mut self, bytes: &[u8]) -> Result<()> {
        let chunk = TableChunk::decode(bytes)?;
        let (start, end) =
            self.manifest.chunk_range(chunk.index).ok_or(Error::Table { reason: "chunk index out of range" })?;
        if chunk.first_slot as usize != start || chunk.slots.len() != end - start {
            return Err(Error::Table { reason: "chunk does not fit the slot layout" });
        }
        let expected = self
            .manifest
            .chunk_hashes
            .get(chunk.index as usize)
            .ok_or(Error::Table { reason: "chunk index out of range" })?;
        if &chunk.hash() != expected {
            return Err(Error::Table { reason: "chunk hash does not match the manifest" });
        }
        self.slots[start..end].copy_from_slice(&chunk.slots);
        self.received[chunk.index as usize] = true;
        Ok(())
    }

    /// Index of the first chunk still missing, if any.
    pub fn next_missing(&self) -> Option<u32> {
        self.received.iter().position(|r| !r).map(|i| i as u32)
    }

    /// Completes the download: every chunk present, then the full client-side validation.
    pub fn finish(self) -> Result<ClientTable> {
        self.complete(false)
    }

    /// As [`TableDownload::finish`], keeping the validated slots decompressed
    /// ([`ClientTable::new_with_point_cache`]).
    pub fn finish_with_point_cache(self) -> Result<ClientTable> {
        self.complete(true)
    }

    fn complete(self, cache: bool) -> Result<ClientTable> {
        if self.next_missing().is_some() {
            return Err(Error::Table { reason: "chunks missing" });
        }
        ClientTable::with_options(self.manifest, self.slots, cache)
    }
}

/// A verified, validated table on the client. Only this type can be used to make vouchers.
pub struct ClientTable {
    manifest: TableManifest,
    slots: Vec<[u8; 32]>,
    pub(crate) l_table: curve25519_dalek::ristretto::RistrettoBasepointTable,
    pub(crate) context: [u8; 32],
    points: Option<Vec<RistrettoPoint>>,
}

impl fmt::Debug for ClientTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientTable")
            .field("epoch", &self.manifest.params.epoch)
            .field("version", &self.manifest.table_version)
            .field("slots", &self.slots.len())
            .finish()
    }
}

/// Rejects a slot set with an identity, a non-canonical point, or two equal slots. With `keep`, returns the
/// decompressed points (160 bytes per slot) instead of dropping them.
fn validate_slots(slots: &[[u8; 32]], keep: bool) -> Result<Option<Vec<RistrettoPoint>>> {
    let chunks = map_maybe_parallel(slots.len().div_ceil(1024), |c| {
        let end = ((c + 1) * 1024).min(slots.len());
        let mut points = Vec::with_capacity(if keep { end - c * 1024 } else { 0 });
        for s in &slots[c * 1024..end] {
            let p = decode_point(s, "table slot")?;
            if keep {
                points.push(p);
            }
        }
        Ok(points)
    });
    let mut points = Vec::with_capacity(if keep { slots.len() } else { 0 });
    for c in chunks {
        match c {
            Ok(mut p) => points.append(&mut p),
            Err(Error::IdentityPoint { .. }) => return Err(Error::Table { reason: "a slot is the identity" }),
            Err(_) => return Err(Error::Table { reason: "a slot is not a canonical point" }),
        }
    }
    let mut sorted = slots.to_vec();
    sorted.sort_unstable();
    if sorted.windows(2).any(|w| w[0] == w[1]) {
        return Err(Error::Table { reason: "two slots are equal" });
    }
    Ok(keep.then_some(points))
}

impl ClientTable {
    /// Validates a full set of slots against a manifest (chunk hashes recomputed) and L.
    pub fn new(manifest: TableManifest, slots: Vec<[u8; 32]>) -> Result<Self> {
        Self::with_options(manifest, slots, false)
    }

    /// As [`ClientTable::new`], but keeps every slot decompressed in memory (160 bytes per slot instead of 32):
    /// each voucher then skips its three point decompressions (about a third of the client's cost beyond its
    /// floor). For devices that can afford the memory; the default keeps the table compressed.
    pub fn new_with_point_cache(manifest: TableManifest, slots: Vec<[u8; 32]>) -> Result<Self> {
        Self::with_options(manifest, slots, true)
    }

    /// Whether the table keeps its slots decompressed.
    pub fn has_point_cache(&self) -> bool {
        self.points.is_some()
    }

    fn with_options(manifest: TableManifest, slots: Vec<[u8; 32]>, cache: bool) -> Result<Self> {
        manifest.params.validate()?;
        if slots.len() != manifest.params.slot_count as usize {
            return Err(Error::Table { reason: "slot count does not match the manifest" });
        }
        let hashes = map_maybe_parallel(manifest.chunk_hashes.len(), |i| {
            let (s, e) = manifest.chunk_range(i as u32).unwrap_or((0, 0));
            TableChunk { index: i as u32, first_slot: s as u32, slots: slots[s..e].to_vec() }.hash()
        });
        if hashes != manifest.chunk_hashes {
            return Err(Error::Table { reason: "chunk hash does not match the manifest" });
        }
        let points = validate_slots(&slots, cache)?;
        let l = decode_point(&manifest.params.blinding_public, "blinding public key L")?;
        let context = manifest.params.context();
        Ok(ClientTable {
            l_table: curve25519_dalek::ristretto::RistrettoBasepointTable::create(&l),
            context,
            manifest,
            slots,
            points,
        })
    }

    /// The manifest this table matches.
    pub fn manifest(&self) -> &TableManifest {
        &self.manifest
    }
    /// Epoch parameters.
    pub fn params(&self) -> &EpochParams {
        &self.manifest.params
    }
    /// The slots.
    pub fn slots(&self) -> &[[u8; 32]] {
        &self.slots
    }
    /// The root of this version.
    pub fn root(&self) -> [u8; 32] {
        self.manifest.root()
    }

    /// Applies an update and checks the result against the new manifest (same epoch parameters). On any error the
    /// table is unchanged.
    pub fn apply_update(&self, update: &TableUpdate, new_manifest: TableManifest) -> Result<ClientTable> {
        if new_manifest.params != self.manifest.params || update.epoch != self.manifest.params.epoch {
            return Err(Error::Table { reason: "update is for another epoch" });
        }
        if update.from_version != self.manifest.table_version || update.to_version != new_manifest.table_version {
            return Err(Error::Table { reason: "update versions do not match" });
        }
        let mut slots = self.slots.clone();
        for (s, p) in &update.changes {
            *slots.get_mut(*s as usize).ok_or(Error::Table { reason: "update slot out of range" })? = *p;
        }
        ClientTable::with_options(new_manifest, slots, self.points.is_some())
    }

    /// The three candidate slots for image hash `y`, decoded.
    pub(crate) fn candidate_points(&self, y: &[u8]) -> Result<[RistrettoPoint; K]> {
        let pos = positions(&self.manifest.params.nonce, self.manifest.params.slot_count, y);
        let mut out = [RistrettoPoint::default(); K];
        for (o, p) in out.iter_mut().zip(pos) {
            *o = match &self.points {
                Some(points) => points[p as usize],
                None => decode_point(&self.slots[p as usize], "table slot")?,
            };
        }
        Ok(out)
    }
}
