//! The device's side: a download checked chunk by chunk against the manifest, and the validated table that
//! vouchers are made with.

use core::fmt;

use curve25519_dalek::ristretto::RistrettoPoint;

use crate::crypto::decode_point;
use crate::error::{Error, InvalidInput, Result};
use crate::labels::*;
use crate::params::EpochParams;

use super::*;

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
        let (start, end) = self
            .manifest
            .chunk_range(chunk.index)
            .ok_or(Error::Invalid(InvalidInput::Table { reason: "chunk index out of range" }))?;
        if chunk.first_slot as usize != start || chunk.slots.len() != end - start {
            return Err(Error::Invalid(InvalidInput::Table { reason: "chunk does not fit the slot layout" }));
        }
        let expected = self
            .manifest
            .chunk_hashes
            .get(chunk.index as usize)
            .ok_or(Error::Invalid(InvalidInput::Table { reason: "chunk index out of range" }))?;
        if &chunk.hash() != expected {
            return Err(Error::Invalid(InvalidInput::Table { reason: "chunk hash does not match the manifest" }));
        }
        // chunk_range and the checks above bound both by the manifest's layout, which `slots` and `received` follow.
        let (Some(slots), Some(received)) =
            (self.slots.get_mut(start..end), self.received.get_mut(chunk.index as usize))
        else {
            return Err(Error::internal("the download's buffers follow the manifest's layout"));
        };
        slots.copy_from_slice(&chunk.slots);
        *received = true;
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
            return Err(Error::Invalid(InvalidInput::Table { reason: "chunks missing" }));
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
    let blocks: Vec<&[[u8; 32]]> = slots.chunks(1024).collect();
    let chunks = map_maybe_parallel(&blocks, |_, block| {
        let mut points = Vec::with_capacity(if keep { block.len() } else { 0 });
        for s in block.iter() {
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
            Err(Error::Invalid(InvalidInput::IdentityPoint { .. })) => {
                return Err(Error::Invalid(InvalidInput::Table { reason: "a slot is the identity" }));
            }
            Err(_) => return Err(Error::Invalid(InvalidInput::Table { reason: "a slot is not a canonical point" })),
        }
    }
    let mut sorted = slots.to_vec();
    sorted.sort_unstable();
    if sorted.windows(2).any(|w| w.first() == w.last()) {
        return Err(Error::Invalid(InvalidInput::Table { reason: "two slots are equal" }));
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
            return Err(Error::Invalid(InvalidInput::Table { reason: "slot count does not match the manifest" }));
        }
        // A chunk the manifest's layout does not cover, or that does not fit the slots, hashes to None and fails the
        // comparison (the manifest decoder already refuses such layouts).
        let hashes = map_maybe_parallel(&manifest.chunk_hashes, |i, _| {
            let (s, e) = manifest.chunk_range(i as u32)?;
            Some(TableChunk { index: i as u32, first_slot: s as u32, slots: slots.get(s..e)?.to_vec() }.hash())
        });
        if !hashes.iter().map(Option::as_ref).eq(manifest.chunk_hashes.iter().map(Some)) {
            return Err(Error::Invalid(InvalidInput::Table { reason: "chunk hash does not match the manifest" }));
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
            return Err(Error::Invalid(InvalidInput::Table { reason: "update is for another epoch" }));
        }
        if update.from_version != self.manifest.table_version || update.to_version != new_manifest.table_version {
            return Err(Error::Invalid(InvalidInput::Table { reason: "update versions do not match" }));
        }
        let mut slots = self.slots.clone();
        for (s, p) in &update.changes {
            *slots
                .get_mut(*s as usize)
                .ok_or(Error::Invalid(InvalidInput::Table { reason: "update slot out of range" }))? = *p;
        }
        ClientTable::with_options(new_manifest, slots, self.points.is_some())
    }

    /// The three candidate slots for image hash `y`, decoded.
    pub(crate) fn candidate_points(&self, y: &[u8]) -> Result<[RistrettoPoint; K]> {
        let pos = positions(&self.manifest.params.nonce, self.manifest.params.slot_count, y);
        let mut out = [RistrettoPoint::default(); K];
        for (o, p) in out.iter_mut().zip(pos) {
            // Positions are reduced mod m, and a ClientTable holds exactly m slots (checked at construction).
            let missing = || Error::internal("positions are below the slot count");
            *o = match &self.points {
                Some(points) => *points.get(p as usize).ok_or_else(missing)?,
                None => decode_point(self.slots.get(p as usize).ok_or_else(missing)?, "table slot")?,
            };
        }
        Ok(out)
    }
}
