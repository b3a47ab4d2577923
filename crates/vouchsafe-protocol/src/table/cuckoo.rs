//! Cuckoo placement: the k = 3 positions of an indicator, the slot count, and insertion (random walk for a build,
//! shortest eviction path for an update).

use rand_core::CryptoRng;
use sha2::{Digest, Sha256};

use crate::labels::*;

pub(super) const EMPTY: u32 = u32::MAX;
/// Cuckoo random-walk evictions tried for one insertion before the attempt is abandoned.
const MAX_KICKS: usize = 4096;
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
            if !out.iter().take(found).any(|&q| q == p)
                && let Some(slot) = out.get_mut(found)
            {
                *slot = p;
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

/// Cuckoo placement of items (given their positions) into `slot_item`. Returns the slots it changed, or None if an
/// insertion exceeded [`MAX_KICKS`] (then `slot_item` may be partly changed; callers roll back via the journal).
// Placement indexes `slot_item` (m entries) only with positions, which are reduced mod m, and `choices` with a
// value reduced mod its length, which is at least 2 (three distinct positions, at most one excluded).
#[allow(clippy::indexing_slicing)]
pub(super) fn cuckoo_insert<R: CryptoRng + ?Sized>(
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
// The search indexes `slot_item` (m entries) only with positions, which are reduced mod m, and `nodes` only with
// indices of nodes it pushed before (`head < nodes.len()`, parents precede their children).
#[allow(clippy::indexing_slicing)]
pub(super) fn cuckoo_insert_shortest<R: CryptoRng + ?Sized>(
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
