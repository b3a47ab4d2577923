//! The server's side: the blinding key α, the operator's table configuration, the build, incremental updates and
//! the secret table file.

use core::fmt;

use curve25519_dalek::constants::RISTRETTO_BASEPOINT_TABLE;
use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use rand_core::CryptoRng;
use sha2::{Digest, Sha512};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::crypto::{check_item, decode_scalar, hash_to_group, random_nonzero_scalar};
use crate::error::{Error, InvalidInput, Misuse, Result};
use crate::labels::*;
use crate::params::{EPOCH_PARAMS_LEN, EpochParams};
use crate::wire::Reader;

use super::cuckoo::{EMPTY, cuckoo_insert, cuckoo_insert_shortest};
use super::*;

/// Fresh nonces tried before the build gives up (each is a new, independent placement).
const MAX_BUILD_ATTEMPTS: usize = 64;
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
            return Err(Error::Invalid(InvalidInput::Parameter { what: "blinding key must be non-zero" }));
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

fn filler_point(seed: &[u8; 32], slot: u32) -> CompressedRistretto {
    let mut h = Sha512::new();
    h.update(LABEL_FILLER);
    h.update(seed);
    h.update(slot.to_le_bytes());
    RistrettoPoint::from_hash(h).compress()
}

/// How many slots an incremental update changes at least, as parts per million of the slot count m (see
/// [`ServerTable::update_with_cover`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UpdateCover {
    ppm: u32,
}

impl UpdateCover {
    /// No cover: an update lists only the slots its additions and removals changed.
    pub const NONE: UpdateCover = UpdateCover { ppm: 0 };
    /// The default: d = 9.15 % of m, which bounds an update's likelihood ratio for any candidate by 4 (k = 3) and
    /// costs 9.15 % of a full download (3.3 MB at m = 10⁶). A k = 3 table at its build load of 0.893 has 10.7 %
    /// empty slots, so this cover is reachable right after a build.
    pub const DEFAULT: UpdateCover = UpdateCover { ppm: 91_440 };

    /// Cover of `ppm` parts per million of m (at most 10⁶).
    pub fn from_ppm(ppm: u32) -> Result<Self> {
        if ppm > 1_000_000 {
            return Err(Error::Misuse(Misuse::Parameter { what: "update cover above 10^6 ppm" }));
        }
        Ok(UpdateCover { ppm })
    }

    /// The smallest cover whose [`likelihood_ratio_bound`](Self::likelihood_ratio_bound) is at most `ratio` (> 1):
    /// d = 1 − (1 − 1/ratio)^(1/k).
    pub fn for_likelihood_ratio(ratio: f64) -> Result<Self> {
        if ratio.is_nan() || ratio <= 1.0 {
            return Err(Error::Misuse(Misuse::Parameter { what: "update likelihood-ratio bound must exceed 1" }));
        }
        let d = 1.0 - (1.0 - 1.0 / ratio).powf(1.0 / K as f64);
        Ok(UpdateCover { ppm: (d * 1e6).ceil().min(1e6) as u32 })
    }

    /// Parts per million of m.
    pub fn ppm(&self) -> u32 {
        self.ppm
    }

    /// The number of slots an update of a table with `m` slots changes at least (⌈ppm · m / 10⁶⌉).
    pub fn slots(&self, m: u32) -> u32 {
        ((u64::from(m) * u64::from(self.ppm)).div_ceil(1_000_000)) as u32
    }

    /// The bound on the likelihood ratio P(a position of the candidate changed | it was added or removed) /
    /// P(the same | it was not) for an update that changed a fraction `d` of the slots: 1 / (1 − (1 − d)^k).
    /// Infinite for d = 0.
    pub fn likelihood_ratio_bound(d: f64) -> f64 {
        1.0 / (1.0 - (1.0 - d.clamp(0.0, 1.0)).powi(K as i32))
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

// The placement code (`build`, `find`, `update`) indexes `slot_item` (m entries) with positions, which are reduced
// mod m, and `items` with the entries of `slot_item`, which are EMPTY or below the item count: `build` and `update`
// keep that invariant, and `from_secret_bytes` checks it on every table it loads. Those three functions carry a
// scoped `allow(clippy::indexing_slicing)` for it; nothing else in this impl indexes.
impl ServerTable {
    /// Builds the blinded table. Indicators are deduplicated; every one is placed (a failed placement retries with a
    /// fresh epoch nonce, never dropping an indicator). The elliptic-curve work runs on all cores.
    #[allow(clippy::indexing_slicing)] // placement invariant: see the comment above the impl
    pub fn build<R: CryptoRng + ?Sized>(
        config: &TableConfig,
        key: BlindingKey,
        indicators: Vec<Vec<u8>>,
        rng: &mut R,
    ) -> Result<Self> {
        for y in &indicators {
            check_item(y)?;
        }
        check_chunk_slots(config.chunk_slots).map_err(Error::into_misuse)?;
        let mut items: Vec<Box<[u8]>> = indicators.into_iter().map(Vec::into_boxed_slice).collect();
        items.sort_unstable();
        items.dedup();
        let m = slot_count_for(items.len());
        if m > MAX_SLOTS as usize {
            return Err(Error::Misuse(Misuse::TableBuild { reason: "too many indicators" }));
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
            params.validate().map_err(Error::into_misuse)?;
            let pos: Vec<[u32; K]> = map_maybe_parallel(&items, |_, y| positions(&nonce, m, y));
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
            let slots = map_maybe_parallel(&slot_item, |s, &it| {
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
        Err(Error::Misuse(Misuse::TableBuild { reason: "no cuckoo placement found after 64 fresh nonces" }))
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
        let end = start.checked_add(c)?.min(self.slots.len());
        Some(TableChunk { index, first_slot: start as u32, slots: self.slots.get(start..end)?.to_vec() })
            .filter(|chunk| !chunk.slots.is_empty())
    }

    /// The signed-over manifest for the current version.
    pub fn manifest(&self) -> TableManifest {
        let blocks: Vec<&[[u8; 32]]> = self.slots.chunks(self.chunk_slots as usize).collect();
        let chunk_hashes = map_maybe_parallel(&blocks, |i, block| {
            let first_slot = i as u32 * self.chunk_slots;
            TableChunk { index: i as u32, first_slot, slots: block.to_vec() }.hash()
        });
        TableManifest {
            params: self.params.clone(),
            table_version: self.version,
            chunk_slots: self.chunk_slots,
            chunk_hashes,
        }
    }

    #[allow(clippy::indexing_slicing)] // placement invariant: see the comment above the impl
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

    /// Adds and removes indicators in place and returns the update (only changed slots) from the previous version,
    /// padded with [`UpdateCover::DEFAULT`] cover slots. See [`ServerTable::update_with_cover`].
    pub fn update<R: CryptoRng + ?Sized>(
        &mut self,
        add: Vec<Vec<u8>>,
        remove: &[Vec<u8>],
        rng: &mut R,
    ) -> Result<TableUpdate> {
        self.update_with_cover(add, remove, UpdateCover::DEFAULT, rng)
    }

    /// Adds and removes indicators in place and returns the update from the previous version. Removed slots get
    /// fresh random points. All or nothing: if an addition cannot be placed (the table is too full; start a new
    /// epoch) nothing changes.
    ///
    /// The update lists the slots that changed, and a hash's positions are public, so a device holding a candidate
    /// image could test whether it was just added or removed. `cover` pads the changed slots: empty slots, drawn
    /// uniformly without replacement, get fresh filler points until at least `cover.slots(m)` slots changed (or
    /// every empty slot did). A device then sees a given position change with probability at least d = changed / m
    /// whether or not its candidate changed, which bounds the likelihood ratio of the test by
    /// [`UpdateCover::likelihood_ratio_bound`] (docs/LEAKAGE.md §1).
    #[allow(clippy::indexing_slicing)] // placement invariant: see the comment above the impl
    pub fn update_with_cover<R: CryptoRng + ?Sized>(
        &mut self,
        add: Vec<Vec<u8>>,
        remove: &[Vec<u8>],
        cover: UpdateCover,
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
                return Err(Error::Misuse(Misuse::TableBuild {
                    reason: "table too full for this update; build a new epoch",
                }));
            }
            changed.extend(journal.iter().map(|(s, _)| *s));
        }
        changed.sort_unstable();
        changed.dedup();
        // Cover: empty slots not yet changed, a uniform sample (partial Fisher–Yates, one u64 per pick) until the
        // update changes at least cover.slots(m) slots.
        let want = cover.slots(m) as usize;
        if changed.len() < want {
            let mut free: Vec<u32> =
                (0..m).filter(|&s| slot_item[s as usize] == EMPTY && changed.binary_search(&s).is_err()).collect();
            let picks = (want - changed.len()).min(free.len());
            for i in 0..picks {
                let j = i + (rng.next_u64() % (free.len() - i) as u64) as usize;
                free.swap(i, j);
            }
            changed.extend_from_slice(&free[..picks]);
            changed.sort_unstable();
        }
        let mut seed = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(&mut seed[..]);
        let alpha = self.key.alpha();
        let new_points = map_maybe_parallel(&changed, |_, &s| {
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
            return Err(Error::Invalid(InvalidInput::Table { reason: "blinding key does not match L" }));
        }
        let version = r.u64()?;
        let chunk_slots = r.u32()?;
        check_chunk_slots(chunk_slots)?;
        let n = r.u32()? as usize;
        let m = params.slot_count as usize;
        if n > m {
            return Err(Error::Invalid(InvalidInput::Table { reason: "more indicators than slots" }));
        }
        let mut items = Vec::with_capacity(n);
        for _ in 0..n {
            let len = r.u16()? as usize;
            let y = r.take(len)?;
            check_item(y)
                .map_err(|_| Error::Invalid(InvalidInput::Table { reason: "an indicator is empty or too long" }))?;
            items.push(y.to_vec().into_boxed_slice());
        }
        if r.remaining() != m * 36 {
            return Err(Error::Invalid(InvalidInput::Length {
                what: "server table",
                expected: bytes.len() - r.remaining() + m * 36,
                got: bytes.len(),
            }));
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
            let inconsistent = Error::Invalid(InvalidInput::Table { reason: "inconsistent placement" });
            let (Some(seen), Some(item)) = (seen.get_mut(it as usize), items.get(it as usize)) else {
                return Err(inconsistent);
            };
            if *seen || !positions(&params.nonce, params.slot_count, item).contains(&(s as u32)) {
                return Err(inconsistent);
            }
            *seen = true;
        }
        if seen.iter().any(|s| !s) {
            return Err(Error::Invalid(InvalidInput::Table { reason: "an indicator is not placed" }));
        }
        Ok(ServerTable { params, key, version, chunk_slots, items, slot_item, slots })
    }
}
