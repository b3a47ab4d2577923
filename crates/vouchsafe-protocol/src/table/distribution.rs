//! What travels to devices: chunks, the Merkle root over them, the manifest and incremental updates, with their
//! wire formats.

use crate::crypto::sha256;
use crate::error::{Error, InvalidInput, Result};
use crate::labels::*;
use crate::params::{EPOCH_PARAMS_LEN, EpochParams};
use crate::wire::Reader;

use super::*;

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
            return Err(Error::Invalid(InvalidInput::Table { reason: "chunk slot count out of range" }));
        }
        let expected = 13 + 32 * count as usize;
        if bytes.len() != expected {
            return Err(Error::Invalid(InvalidInput::Length { what: "table chunk", expected, got: bytes.len() }));
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
/// The root of no leaves is `SHA-256(LABEL_MERKLE_NODE)`.
pub fn merkle_root(leaves: &[[u8; 32]]) -> [u8; 32] {
    let mut level = leaves.to_vec();
    loop {
        match level.as_slice() {
            [] => return sha256(&[LABEL_MERKLE_NODE]),
            [root] => return *root,
            _ => {
                let (pairs, odd) = level.as_chunks::<2>();
                let mut next: Vec<[u8; 32]> = pairs.iter().map(|[l, r]| sha256(&[LABEL_MERKLE_NODE, l, r])).collect();
                next.extend_from_slice(odd);
                level = next;
            }
        }
    }
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
            return Err(Error::Invalid(InvalidInput::Table { reason: "chunk count does not match slot count" }));
        }
        if r.remaining() != 32 * count {
            return Err(Error::Invalid(InvalidInput::Length {
                what: "table manifest",
                expected: bytes.len() - r.remaining() + 32 * count,
                got: bytes.len(),
            }));
        }
        let mut chunk_hashes = Vec::with_capacity(count);
        for _ in 0..count {
            chunk_hashes.push(r.array()?);
        }
        r.finish()?;
        Ok(TableManifest { params, table_version, chunk_slots, chunk_hashes })
    }

    pub(super) fn chunk_range(&self, index: u32) -> Option<(usize, usize)> {
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
            return Err(Error::Invalid(InvalidInput::Table { reason: "update must move to a later version" }));
        }
        let count = r.u32()? as usize;
        if r.remaining() != 36 * count {
            return Err(Error::Invalid(InvalidInput::Length {
                what: "table update",
                expected: bytes.len() - r.remaining() + 36 * count,
                got: bytes.len(),
            }));
        }
        let mut changes: Vec<(u32, [u8; 32])> = Vec::with_capacity(count);
        for _ in 0..count {
            let s = r.u32()?;
            if changes.last().is_some_and(|(prev, _)| *prev >= s) {
                return Err(Error::Invalid(InvalidInput::Table { reason: "update slots must be strictly ascending" }));
            }
            changes.push((s, r.array()?));
        }
        r.finish()?;
        Ok(TableUpdate { epoch, from_version, to_version, changes })
    }

    /// Composes consecutive updates `self` (v→w) and `next` (w→z) into one (v→z), the later value winning.
    pub fn then(&self, next: &TableUpdate) -> Result<TableUpdate> {
        if next.epoch != self.epoch || next.from_version != self.to_version {
            return Err(Error::Invalid(InvalidInput::Table { reason: "updates are not consecutive" }));
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
