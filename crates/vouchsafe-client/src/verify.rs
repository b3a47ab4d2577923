//! Verification of what the server sends, without any network: the manifest, streamed chunks and incremental
//! updates. [`crate::Client::sync`] is a thin network adapter around these functions, so every check here can be
//! tested by feeding messages built directly from a `vouchsafe_protocol::table::ServerTable`.

use vouchsafe_phash::HashConfig;
use vouchsafe_protocol::params::EpochParams;
use vouchsafe_protocol::table::{ClientTable, MAX_CHUNK_SLOTS, TableChunk, TableDownload, TableManifest, TableUpdate};

use crate::error::{ClientError, Result};

/// Longest validity window an order may have: the one definition, in `vouchsafe-orders` (731 days).
pub use vouchsafe_orders::labels::MAX_ORDER_SECONDS;

/// Summary of the detection order a table serves, as the server announces it (mirrors the `OrderInfo` message).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct OrderSummary {
    /// Order id, 16 bytes.
    pub order_id: Vec<u8>,
    /// The service the order applies to.
    pub service_id: String,
    /// Start of validity, Unix seconds.
    pub not_before: i64,
    /// End of validity, Unix seconds.
    pub not_after: i64,
    /// Threshold T.
    pub threshold: u32,
    /// Synthetic rate p, parts per 2^32.
    pub synthetic_rate: u32,
    /// Synthetic cap s.
    pub synthetic_cap: u32,
    /// Perceptual-hash configuration id (decimal `HashConfig` id, optionally prefixed with `v`: "1" or "v1").
    pub hash_config_id: String,
}

/// A manifest as received (mirrors the `Manifest` message; generated protobuf types stay out of this API).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ManifestInfo {
    /// `EpochParams` encoding.
    pub params: Vec<u8>,
    /// Table version.
    pub table_version: u64,
    /// Slot count m (must equal the one in `params`).
    pub slot_count: u32,
    /// Slots per chunk.
    pub chunk_slots: u32,
    /// The announced root, 32 bytes.
    pub root: Vec<u8>,
    /// Chunk hashes, 32 bytes each.
    pub chunk_hashes: Vec<Vec<u8>>,
    /// The order; `None` is refused.
    pub order: Option<OrderSummary>,
}

/// An incremental update as received (mirrors the `TableUpdate` message).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct UpdateInfo {
    /// Version the update applies to.
    pub from_version: u64,
    /// Version it produces.
    pub to_version: u64,
    /// `TableUpdate` encoding.
    pub update: Vec<u8>,
    /// Root of the table at `to_version`, 32 bytes.
    pub root: Vec<u8>,
    /// Chunk hashes at `to_version`.
    pub chunk_hashes: Vec<Vec<u8>>,
}

/// The order a verified table serves, in checked, fixed-size form. Only [`check_order`] (and so
/// [`verify_manifest`]) makes one: holding a `VerifiedOrder` means the checks passed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedOrder {
    order_id: [u8; 16],
    service_id: String,
    not_before: i64,
    not_after: i64,
    hash_config: HashConfig,
}

impl VerifiedOrder {
    /// Order id.
    pub fn order_id(&self) -> &[u8; 16] {
        &self.order_id
    }

    /// Service id (equal to the configured one).
    pub fn service_id(&self) -> &str {
        &self.service_id
    }

    /// Start of validity, Unix seconds.
    pub fn not_before(&self) -> i64 {
        self.not_before
    }

    /// End of validity, Unix seconds.
    pub fn not_after(&self) -> i64 {
        self.not_after
    }

    /// The hash configuration the order prescribes.
    pub fn hash_config(&self) -> HashConfig {
        self.hash_config
    }

    /// Whether `unix_seconds` is inside the validity window (both ends inclusive).
    pub fn is_active_at(&self, unix_seconds: i64) -> bool {
        self.not_before <= unix_seconds && unix_seconds <= self.not_after
    }
}

/// A manifest whose internal consistency and root were checked. Only [`verify_manifest`] makes one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedManifest {
    manifest: TableManifest,
    root: [u8; 32],
    order: VerifiedOrder,
}

impl VerifiedManifest {
    /// The protocol manifest.
    pub fn manifest(&self) -> &TableManifest {
        &self.manifest
    }

    /// Its root (equal to the announced root).
    pub fn root(&self) -> [u8; 32] {
        self.root
    }

    /// The order it serves.
    pub fn order(&self) -> &VerifiedOrder {
        &self.order
    }
}

fn fail(reason: &'static str) -> ClientError {
    ClientError::Verification { reason }
}

fn table_err(e: vouchsafe_protocol::Error) -> ClientError {
    match e {
        vouchsafe_protocol::Error::Invalid(vouchsafe_protocol::InvalidInput::Table { reason }) => fail(reason),
        other => ClientError::Protocol(other),
    }
}

fn hash32(v: &[u8], what: &'static str) -> Result<[u8; 32]> {
    <[u8; 32]>::try_from(v).map_err(|_| fail(what))
}

/// Parses a hash configuration id ("1" or "v1") into a configuration this build knows.
pub fn parse_hash_config(id: &str) -> Result<HashConfig> {
    let t = id.trim();
    let digits = t.strip_prefix('v').or_else(|| t.strip_prefix('V')).unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(fail("the order's hash configuration id is not recognised"));
    }
    let n: u16 = digits.parse().map_err(|_| fail("the order's hash configuration id is not recognised"))?;
    HashConfig::from_id(n).map_err(|_| fail("the order prescribes a hash configuration this client does not know"))
}

/// Checks that the order agrees with the epoch parameters and the configured service, and fits the rules.
pub fn check_order(order: &OrderSummary, params: &EpochParams, service_id: &str) -> Result<VerifiedOrder> {
    let order_id: [u8; 16] = order.order_id.as_slice().try_into().map_err(|_| fail("order id is not 16 bytes"))?;
    if order_id != params.order_id {
        return Err(fail("the order id differs from the one in the epoch parameters"));
    }
    if order.threshold != u32::from(params.threshold)
        || order.synthetic_cap != u32::from(params.synthetic_cap)
        || order.synthetic_rate != params.synthetic_rate
    {
        return Err(fail("the order's threshold or synthetic parameters differ from the epoch parameters"));
    }
    if order.service_id != service_id {
        return Err(fail("the order is for another service"));
    }
    if order.not_before >= order.not_after {
        return Err(fail("the order's validity window is empty"));
    }
    if order.not_after.checked_sub(order.not_before).is_none_or(|d| d > MAX_ORDER_SECONDS) {
        return Err(fail("the order is valid for more than 24 months"));
    }
    let hash_config = parse_hash_config(&order.hash_config_id)?;
    if (params.ad_len as usize) < vouchsafe_phash::encoded_len(&hash_config) + 2 {
        return Err(fail("the epoch's ad_len is too small for the order's hash configuration"));
    }
    Ok(VerifiedOrder {
        order_id,
        service_id: order.service_id.clone(),
        not_before: order.not_before,
        not_after: order.not_after,
        hash_config,
    })
}

/// Verifies a manifest: parameters decode and validate, `slot_count` agrees, the chunking fits, every hash is 32
/// bytes, the recomputed root equals the announced root, and the order agrees with the parameters and the
/// configured service. `max_slots` bounds the table the device is willing to hold.
pub fn verify_manifest(info: &ManifestInfo, service_id: &str, max_slots: u32) -> Result<VerifiedManifest> {
    let params = EpochParams::decode(&info.params).map_err(|_| fail("the epoch parameters do not decode"))?;
    if params.slot_count != info.slot_count {
        return Err(fail("the manifest's slot count differs from the epoch parameters"));
    }
    if params.slot_count > max_slots {
        return Err(fail("the table is larger than this client accepts"));
    }
    if info.chunk_slots == 0 || info.chunk_slots > MAX_CHUNK_SLOTS {
        return Err(fail("chunk_slots out of range"));
    }
    let expected_chunks = (params.slot_count as usize).div_ceil(info.chunk_slots as usize);
    if info.chunk_hashes.len() != expected_chunks {
        return Err(fail("the number of chunk hashes does not match the slot count"));
    }
    let chunk_hashes =
        info.chunk_hashes.iter().map(|h| hash32(h, "a chunk hash is not 32 bytes")).collect::<Result<Vec<_>>>()?;
    let announced = hash32(&info.root, "the root is not 32 bytes")?;
    let order = info.order.as_ref().ok_or(fail("the manifest names no order"))?;
    let order = check_order(order, &params, service_id)?;
    let manifest =
        TableManifest { params, table_version: info.table_version, chunk_slots: info.chunk_slots, chunk_hashes };
    if manifest.root() != announced {
        return Err(fail("the manifest's root does not match its contents"));
    }
    Ok(VerifiedManifest { manifest, root: announced, order })
}

/// A full download in progress: each chunk is checked against the verified manifest as it arrives.
#[derive(Debug)]
pub struct TableAssembler {
    download: TableDownload,
    root: [u8; 32],
    bytes: u64,
}

impl TableAssembler {
    /// Starts assembling the table of a verified manifest.
    pub fn new(verified: &VerifiedManifest) -> Self {
        TableAssembler { download: TableDownload::new(verified.manifest.clone()), root: verified.root, bytes: 0 }
    }

    /// Adds the chunk announced with index `index`; its encoded index must agree, it must fit the slot layout and
    /// hash to the manifest's entry.
    pub fn add(&mut self, index: u32, chunk: &[u8]) -> Result<()> {
        self.bytes = self.bytes.saturating_add(chunk.len() as u64);
        let decoded = TableChunk::decode(chunk).map_err(|_| fail("a chunk does not decode"))?;
        if decoded.index != index {
            return Err(fail("a chunk's index differs from the one it was sent with"));
        }
        self.download.add_chunk(chunk).map_err(table_err)
    }

    /// The first chunk still missing (where to resume an interrupted stream).
    pub fn next_missing(&self) -> Option<u32> {
        self.download.next_missing()
    }

    /// Chunk bytes received so far.
    pub fn bytes_received(&self) -> u64 {
        self.bytes
    }

    /// Every chunk present: validates the whole table (identity, non-canonical or repeated slots are refused).
    pub fn finish(self) -> Result<ClientTable> {
        self.complete(false)
    }

    /// As [`TableAssembler::finish`], keeping the slots decompressed ([`ClientTable::new_with_point_cache`]).
    pub fn finish_with_point_cache(self) -> Result<ClientTable> {
        self.complete(true)
    }

    fn complete(self, point_cache: bool) -> Result<ClientTable> {
        let table = if point_cache { self.download.finish_with_point_cache() } else { self.download.finish() }
            .map_err(table_err)?;
        if table.root() != self.root {
            return Err(fail("the assembled table's root differs from the manifest's"));
        }
        Ok(table)
    }
}

/// Assembles and validates a full table from `(index, chunk bytes)` pairs in any order.
pub fn assemble_table<I>(verified: &VerifiedManifest, chunks: I) -> Result<ClientTable>
where
    I: IntoIterator<Item = (u32, Vec<u8>)>,
{
    let mut a = TableAssembler::new(verified);
    for (i, c) in chunks {
        a.add(i, &c)?;
    }
    a.finish()
}

/// Applies an incremental update to the held table: same epoch, `from_version` = the held version, the new root
/// recomputed from the update's chunk hashes and equal to the announced one, and the patched table fully
/// revalidated. On any error the held table is unchanged.
pub fn apply_update(current: &ClientTable, info: &UpdateInfo) -> Result<ClientTable> {
    let held = current.manifest();
    if info.from_version != held.table_version {
        return Err(fail("the update starts from another version than the one held"));
    }
    let update = TableUpdate::decode(&info.update).map_err(|_| fail("the update does not decode"))?;
    if update.epoch != held.params.epoch
        || update.from_version != info.from_version
        || update.to_version != info.to_version
    {
        return Err(fail("the update's epoch or versions differ from its envelope"));
    }
    let chunk_hashes =
        info.chunk_hashes.iter().map(|h| hash32(h, "a chunk hash is not 32 bytes")).collect::<Result<Vec<_>>>()?;
    if chunk_hashes.len() != held.chunk_hashes.len() {
        return Err(fail("the update changes the number of chunks"));
    }
    let announced = hash32(&info.root, "the root is not 32 bytes")?;
    let new_manifest = TableManifest {
        params: held.params.clone(),
        table_version: info.to_version,
        chunk_slots: held.chunk_slots,
        chunk_hashes,
    };
    if new_manifest.root() != announced {
        return Err(fail("the update's root does not match its chunk hashes"));
    }
    current.apply_update(&update, new_manifest).map_err(table_err)
}
