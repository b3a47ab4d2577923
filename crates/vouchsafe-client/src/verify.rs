//! Verification of what the server sends, without any network: the authority-signed order and revocations, the
//! signed manifest, streamed chunks and incremental updates, each against the pins of the [`ClientConfig`] (never
//! against anything the server says about itself). [`crate::Client::sync`] is a thin network adapter around these
//! functions plus the transparency-log checks (`vouchsafe_log`), so every check here can be tested by feeding
//! messages built directly from `vouchsafe_orders` and a `vouchsafe_protocol::table::ServerTable`.
//!
//! The order of the checks ([`verify_manifest`]): the signed order verifies under the pinned keyring; every
//! revocation the server sent verifies; the order is for the configured service, names the pinned Centre key and
//! excludes none of the account's classes; it is active now ([`VerifiedOrder::check_active`], the one validity
//! function, with every known revocation); its hash configuration is known and the epoch parameters agree with it;
//! the envelope is consistent (slot count, chunking, hashes, root); the signed manifest verifies under the
//! order's table key, names this order, and its statement's table manifest is byte for byte the one the envelope
//! describes. Only a manifest that passed all of it becomes a [`VerifiedManifest`].

use vouchsafe_log::{Leaf, LeafKind};
use vouchsafe_orders::{AuthorityKeyring, Scope, SignedManifest, VerifiedOrder, VerifiedRevocation};
use vouchsafe_phash::HashConfig;
use vouchsafe_protocol::params::EpochParams;
use vouchsafe_protocol::table::{ClientTable, MAX_CHUNK_SLOTS, TableChunk, TableDownload, TableManifest, TableUpdate};

use crate::config::ClientConfig;
use crate::error::{ClientError, Result};

/// Longest validity window an order may have: the one definition, in `vouchsafe-orders` (731 days).
pub use vouchsafe_orders::labels::MAX_ORDER_SECONDS;

/// Most revocations a device keeps (and accepts in one manifest).
pub const MAX_REVOCATIONS: usize = 1024;

/// Which conversation a scan belongs to, as the messenger knows it: the service component (e.g. `chat`,
/// `channels`) and the group id, either unknown (`None`). An order scoped to components (groups) covers a scan
/// only if its component (group) is listed; a whole-service order covers every scan.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScanContext {
    /// The service component of the conversation.
    pub component: Option<String>,
    /// The group id of the conversation.
    pub group: Option<String>,
}

impl ScanContext {
    /// A conversation of unknown component and group (covered only by a whole-service order).
    pub fn new() -> Self {
        ScanContext::default()
    }

    /// The same context in `component`.
    pub fn component(mut self, component: impl Into<String>) -> Self {
        self.component = Some(component.into());
        self
    }

    /// The same context in `group`.
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.group = Some(group.into());
        self
    }
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
    /// The authority-signed order (`vouchsafe_orders::SignedOrder` encoding).
    pub signed_order: Vec<u8>,
    /// Signed revocations the server holds (`vouchsafe_orders::SignedRevocation` encodings).
    pub revocations: Vec<Vec<u8>>,
    /// The manifest signed with the order's table key (`vouchsafe_orders::SignedManifest` encoding).
    pub signed_manifest: Vec<u8>,
    /// Index of the order's leaf in the transparency log.
    pub order_leaf_index: u64,
    /// Index of the signed manifest's leaf in the transparency log.
    pub manifest_leaf_index: u64,
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
    /// The signed manifest of `to_version`.
    pub signed_manifest: Vec<u8>,
    /// Index of that signed manifest's leaf in the transparency log.
    pub manifest_leaf_index: u64,
}

/// A manifest that passed every network-free check of [`verify_manifest`]. Only that function makes one. Its
/// inclusion in the transparency log is checked by the client afterwards ([`VerifiedManifest::order_leaf`],
/// [`VerifiedManifest::manifest_leaf`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedManifest {
    manifest: TableManifest,
    root: [u8; 32],
    order: VerifiedOrder,
    signed: vouchsafe_orders::VerifiedManifest,
    hash_config: HashConfig,
    order_leaf_index: u64,
    manifest_leaf_index: u64,
}

impl VerifiedManifest {
    /// The protocol manifest (the one the signed statement covers).
    pub fn manifest(&self) -> &TableManifest {
        &self.manifest
    }

    /// Its root (equal to the announced root).
    pub fn root(&self) -> [u8; 32] {
        self.root
    }

    /// The verified order it serves.
    pub fn order(&self) -> &VerifiedOrder {
        &self.order
    }

    /// The signed manifest, verified under the order's table key.
    pub fn signed_manifest(&self) -> &vouchsafe_orders::VerifiedManifest {
        &self.signed
    }

    /// The hash configuration the order prescribes.
    pub fn hash_config(&self) -> HashConfig {
        self.hash_config
    }

    /// The log index the server gave for the order's leaf (the inclusion proof decides whether it is true).
    pub fn order_leaf_index(&self) -> u64 {
        self.order_leaf_index
    }

    /// The log index the server gave for the signed manifest's leaf.
    pub fn manifest_leaf_index(&self) -> u64 {
        self.manifest_leaf_index
    }

    /// The order's log leaf: `Leaf(Order, signed order encoding)`.
    pub fn order_leaf(&self) -> Result<Leaf> {
        order_leaf(&self.order)
    }

    /// The signed manifest's log leaf: `Leaf(Manifest, signed manifest encoding)`.
    pub fn manifest_leaf(&self) -> Result<Leaf> {
        manifest_leaf(&self.signed)
    }
}

/// The log leaf of an order.
pub fn order_leaf(order: &VerifiedOrder) -> Result<Leaf> {
    Ok(Leaf::new(LeafKind::Order, order.signed().encode())?)
}

/// The log leaf of a signed manifest.
pub fn manifest_leaf(manifest: &vouchsafe_orders::VerifiedManifest) -> Result<Leaf> {
    Ok(Leaf::new(LeafKind::Manifest, manifest.signed().encode())?)
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

/// Decodes and verifies signed revocations under the keyring. Any that does not decode, names an authority key
/// that is not pinned, or does not verify refuses the whole list ([`ClientError::Order`]); more than
/// [`MAX_REVOCATIONS`] are refused too.
pub fn verify_revocations(keyring: &AuthorityKeyring, encoded: &[Vec<u8>]) -> Result<Vec<VerifiedRevocation>> {
    if encoded.len() > MAX_REVOCATIONS {
        return Err(fail("the server sent more revocations than this client keeps"));
    }
    encoded.iter().map(|r| keyring.verify_revocation_bytes(r).map_err(ClientError::Order)).collect()
}

/// Whether the order may be used by this device for this account at `now` (Unix seconds): it is for the
/// configured service ([`ClientError::WrongService`]), names the pinned Centre key
/// ([`ClientError::UntrustedCentre`]), excludes none of the account's classes ([`ClientError::Excluded`]), and is
/// active ([`VerifiedOrder::check_active`] with `revocations`: [`ClientError::Order`] with `NotYetValid`,
/// `Expired` or `Revoked`). In that order.
pub fn check_order(
    order: &VerifiedOrder,
    config: &ClientConfig,
    revocations: &[VerifiedRevocation],
    now: i64,
) -> Result<()> {
    if order.service_id() != config.service_id {
        return Err(ClientError::WrongService {
            expected: config.service_id.clone(),
            got: order.service_id().to_owned(),
        });
    }
    if order.centre_key().to_bytes() != config.anchors.centre_key {
        return Err(ClientError::UntrustedCentre);
    }
    if let Some(class) = config.account_classes.iter().find(|c| order.excludes(c)) {
        return Err(ClientError::Excluded { class: class.clone() });
    }
    order.check_active(now, revocations).map_err(ClientError::Order)
}

/// [`check_order`], then whether the order covers the conversation ([`ClientError::OutOfScope`]): what the
/// client asks before it hashes anything.
pub fn check_scan(
    order: &VerifiedOrder,
    config: &ClientConfig,
    revocations: &[VerifiedRevocation],
    now: i64,
    context: &ScanContext,
) -> Result<()> {
    check_order(order, config, revocations, now)?;
    if !order.covers(context.component.as_deref(), context.group.as_deref()) {
        let scope = match order.scope() {
            Scope::Groups(_) => "groups",
            _ => "components",
        };
        return Err(ClientError::OutOfScope { scope });
    }
    Ok(())
}

/// The order's hash configuration, if this build knows it.
pub fn hash_config_of(order: &VerifiedOrder) -> Result<HashConfig> {
    HashConfig::from_id(order.hash_config())
        .map_err(|_| fail("the order prescribes a hash configuration this client does not know"))
}

/// Checks that the epoch parameters agree with the order (order id, T, s, p) and that `ad_len` fits the order's
/// hash configuration; returns the configuration.
pub fn check_params(order: &VerifiedOrder, params: &EpochParams) -> Result<HashConfig> {
    if params.order_id != *order.order_id() {
        return Err(fail("the order id differs from the one in the epoch parameters"));
    }
    if params.threshold != order.threshold()
        || params.synthetic_cap != order.synthetic_cap()
        || params.synthetic_rate != order.synthetic_rate()
    {
        return Err(fail("the order's threshold or synthetic parameters differ from the epoch parameters"));
    }
    let hash_config = hash_config_of(order)?;
    if (params.ad_len as usize) < vouchsafe_phash::encoded_len(&hash_config) + 2 {
        return Err(fail("the epoch's ad_len is too small for the order's hash configuration"));
    }
    Ok(hash_config)
}

/// Verifies a signed manifest against the order and the protocol manifest the device is about to use: the
/// signature under the order's table key and the order it names ([`ClientError::Order`]), and the statement's
/// table manifest equal, byte for byte, to `manifest`'s encoding ([`ClientError::Verification`]).
pub fn verify_signed_manifest(
    order: &VerifiedOrder,
    signed_manifest: &[u8],
    manifest: &TableManifest,
) -> Result<vouchsafe_orders::VerifiedManifest> {
    let signed = SignedManifest::decode(signed_manifest).map_err(ClientError::Order)?;
    let verified = order.verify_manifest(&signed).map_err(ClientError::Order)?;
    if verified.table_manifest() != manifest.encode().as_slice() {
        return Err(fail("the signed manifest describes another table than the one served"));
    }
    Ok(verified)
}

/// Verifies a manifest, network-free, in the order of the module documentation. `known` are the revocations the
/// device already holds (the server's are added to them for the validity check); `now` is Unix seconds; the
/// pins, the service, the account's classes and the largest table come from `config`.
pub fn verify_manifest(
    info: &ManifestInfo,
    config: &ClientConfig,
    known: &[VerifiedRevocation],
    now: i64,
) -> Result<VerifiedManifest> {
    let order = config.anchors.authorities.verify_order_bytes(&info.signed_order).map_err(ClientError::Order)?;
    let mut revocations = verify_revocations(&config.anchors.authorities, &info.revocations)?;
    revocations.extend(known.iter().cloned());
    check_order(&order, config, &revocations, now)?;

    let params = EpochParams::decode(&info.params).map_err(|_| fail("the epoch parameters do not decode"))?;
    let hash_config = check_params(&order, &params)?;
    if params.slot_count != info.slot_count {
        return Err(fail("the manifest's slot count differs from the epoch parameters"));
    }
    if params.slot_count > config.max_table_slots {
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
    let manifest =
        TableManifest { params, table_version: info.table_version, chunk_slots: info.chunk_slots, chunk_hashes };
    if manifest.root() != announced {
        return Err(fail("the manifest's root does not match its contents"));
    }
    let signed = verify_signed_manifest(&order, &info.signed_manifest, &manifest)?;
    Ok(VerifiedManifest {
        manifest,
        root: announced,
        order,
        signed,
        hash_config,
        order_leaf_index: info.order_leaf_index,
        manifest_leaf_index: info.manifest_leaf_index,
    })
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

/// The update and the manifest it produces, checked against the held table's manifest.
fn update_manifest(held: &TableManifest, info: &UpdateInfo) -> Result<(TableUpdate, TableManifest)> {
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
    Ok((update, new_manifest))
}

/// Applies an incremental update to the held table: same epoch, `from_version` = the held version, the new root
/// recomputed from the update's chunk hashes and equal to the announced one, and the patched table fully
/// revalidated. On any error the held table is unchanged. (Checks the table only; [`verify_update`] also checks
/// the update's signed manifest.)
pub fn apply_update(current: &ClientTable, info: &UpdateInfo) -> Result<ClientTable> {
    let (update, new_manifest) = update_manifest(current.manifest(), info)?;
    current.apply_update(&update, new_manifest).map_err(table_err)
}

/// [`apply_update`] under a verified order: before the table is patched, the update's signed manifest must verify
/// under the order's table key, name the order, and describe exactly the manifest the update produces
/// ([`verify_signed_manifest`]).
pub fn verify_update(
    order: &VerifiedOrder,
    current: &ClientTable,
    info: &UpdateInfo,
) -> Result<(ClientTable, vouchsafe_orders::VerifiedManifest)> {
    let (update, new_manifest) = update_manifest(current.manifest(), info)?;
    let signed = verify_signed_manifest(order, &info.signed_manifest, &new_manifest)?;
    let table = current.apply_update(&update, new_manifest).map_err(table_err)?;
    Ok((table, signed))
}
