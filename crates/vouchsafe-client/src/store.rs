//! The verified table, the per-order protocol state, the known revocations and the newest log checkpoint on disk.
//!
//! * `table.bin` (magic `VSCTABLE`, format 2): `u32 LE n ‖ signed order (n) ‖ u32 LE k ‖ signed manifest (k) ‖
//!   slots (32 × m)`. Reloaded at start and revalidated from scratch under the current pins: the order verifies
//!   under the keyring and is for the configured service and the pinned Centre key, the signed manifest verifies
//!   under the order's table key, the protocol manifest is the one it states, and the slots pass the full table
//!   validation. A format-1 table (from before signed orders; it cannot be verified) is ignored and replaced at
//!   the next sync.
//! * `state-<order id hex>.bin` (magic `VSCSTATE`, format 1): the protocol's `ClientState` encoding. One file per
//!   order, so a new order always starts a new state; a file whose state names another order is refused.
//! * `revocations.bin` (magic `VSCREVOK`, format 1): `u32 LE count ‖ count × (u16 LE len ‖ signed revocation)`,
//!   every revocation the device learnt (from the server or [`crate::Client::add_revocation`]); each is verified
//!   again under the keyring at start.
//! * `checkpoint.bin` (magic `VSCCHKPT`, format 1): the newest verified checkpoint note (C2SP signed note with the
//!   witness cosignatures), restored at start with `vouchsafe_log::ClientLogState::restore` (verified again).

use std::path::{Path, PathBuf};

use vouchsafe_orders::{AuthorityKeyring, OrderError, VerifiedOrder, VerifiedRevocation};
use vouchsafe_protocol::client::ClientState;
use vouchsafe_protocol::table::{ClientTable, TableManifest};

use crate::config::ClientConfig;
use crate::error::{ClientError, Result};
use crate::files;
use crate::verify::{self, MAX_REVOCATIONS, VerifiedManifest};

const TABLE_MAGIC: &[u8; 8] = b"VSCTABLE";
const TABLE_FORMAT: u16 = 2;
/// The format before signed orders: ignored (cannot be verified), replaced by the next sync.
const TABLE_FORMAT_UNSIGNED: u16 = 1;
const STATE_MAGIC: &[u8; 8] = b"VSCSTATE";
const STATE_FORMAT: u16 = 1;
const REVOCATIONS_MAGIC: &[u8; 8] = b"VSCREVOK";
const REVOCATIONS_FORMAT: u16 = 1;
const CHECKPOINT_MAGIC: &[u8; 8] = b"VSCCHKPT";
const CHECKPOINT_FORMAT: u16 = 1;
const TABLE_FILE: &str = "table.bin";
const REVOCATIONS_FILE: &str = "revocations.bin";
const CHECKPOINT_FILE: &str = "checkpoint.bin";

/// A verified table together with the verified order it serves and the signed manifest that describes it. Made
/// by [`load_table`] (revalidated from disk), [`LoadedTable::from_verified`], or the client's sync once the table
/// verified.
#[derive(Debug)]
pub struct LoadedTable {
    table: ClientTable,
    order: VerifiedOrder,
    manifest: vouchsafe_orders::VerifiedManifest,
}

impl LoadedTable {
    /// A table the caller validated ([`crate::verify::assemble_table`]) with the order and signed manifest of the
    /// manifest it verified against. Refused unless the table's manifest and root are the verified manifest's.
    pub fn from_verified(table: ClientTable, verified: &VerifiedManifest) -> Result<Self> {
        if table.root() != verified.root() || table.manifest() != verified.manifest() {
            return Err(ClientError::Verification { reason: "the table's root differs from the verified manifest's" });
        }
        Ok(LoadedTable { table, order: verified.order().clone(), manifest: verified.signed_manifest().clone() })
    }

    /// The client's own: a table validated by `verify` and the order and signed manifest it was verified under.
    pub(crate) fn new(table: ClientTable, order: VerifiedOrder, manifest: vouchsafe_orders::VerifiedManifest) -> Self {
        LoadedTable { table, order, manifest }
    }

    /// The validated table.
    pub fn table(&self) -> &ClientTable {
        &self.table
    }

    /// The verified order it serves.
    pub fn order(&self) -> &VerifiedOrder {
        &self.order
    }

    /// The signed manifest of the table, verified under the order's table key.
    pub fn signed_manifest(&self) -> &vouchsafe_orders::VerifiedManifest {
        &self.manifest
    }
}

fn state_name(order_id: &[u8; 16]) -> String {
    format!("state-{}.bin", hex::encode(order_id))
}

/// Path of the state file for an order inside `dir`.
pub fn state_path(dir: &Path, order_id: &[u8; 16]) -> PathBuf {
    dir.join(state_name(order_id))
}

/// Path of the table file inside `dir`.
pub fn table_path(dir: &Path) -> PathBuf {
    dir.join(TABLE_FILE)
}

/// Path of the revocations file inside `dir`.
pub fn revocations_path(dir: &Path) -> PathBuf {
    dir.join(REVOCATIONS_FILE)
}

/// Path of the checkpoint file inside `dir`.
pub fn checkpoint_path(dir: &Path) -> PathBuf {
    dir.join(CHECKPOINT_FILE)
}

/// Writes a client state (atomic, fsynced, mode 0600).
pub fn save_state(dir: &Path, state: &ClientState) -> Result<()> {
    let body = state.encode();
    files::write_framed(dir, &state_name(state.order_id()), STATE_MAGIC, STATE_FORMAT, &body)
}

/// Reads the state for `order_id`; `Ok(None)` if there is none. A corrupted, truncated, unknown-format file, or one
/// holding a state for another order, is refused.
pub fn load_state(dir: &Path, order_id: &[u8; 16]) -> Result<Option<ClientState>> {
    let Some(body) = files::read_framed(&state_path(dir, order_id), "state", STATE_MAGIC, STATE_FORMAT)? else {
        return Ok(None);
    };
    let state = ClientState::decode(&body)
        .map_err(|_| ClientError::Storage { file: "state", reason: "the state does not decode" })?;
    if state.order_id() != order_id {
        return Err(ClientError::Storage { file: "state", reason: "the state belongs to another order" });
    }
    Ok(Some(state))
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) -> Result<()> {
    let n = u32::try_from(b.len())
        .map_err(|_| ClientError::Storage { file: "table", reason: "a signed object is too large to store" })?;
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(b);
    Ok(())
}

/// Writes the verified table with its signed order and signed manifest (atomic, fsynced).
pub fn save_table(dir: &Path, t: &LoadedTable) -> Result<()> {
    let order = t.order.signed().encode();
    let manifest = t.manifest.signed().encode();
    let slots = t.table.slots();
    let mut body = Vec::with_capacity(8 + order.len() + manifest.len() + 32 * slots.len());
    put_bytes(&mut body, &order)?;
    put_bytes(&mut body, &manifest)?;
    for s in slots {
        body.extend_from_slice(s);
    }
    files::write_framed(dir, TABLE_FILE, TABLE_MAGIC, TABLE_FORMAT, &body)
}

struct Cursor<'a> {
    file: &'static str,
    rest: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let (a, b) =
            self.rest.split_at_checked(n).ok_or(ClientError::Storage { file: self.file, reason: "truncated body" })?;
        self.rest = b;
        Ok(a)
    }
    fn arr<const N: usize>(&mut self) -> Result<[u8; N]> {
        let s = self.take(N)?;
        s.try_into().map_err(|_| ClientError::Storage { file: self.file, reason: "truncated body" })
    }
    fn bytes32(&mut self) -> Result<&'a [u8]> {
        let n = u32::from_le_bytes(self.arr()?) as usize;
        self.take(n)
    }
}

fn read_table_body(dir: &Path) -> Result<Option<zeroize::Zeroizing<Vec<u8>>>> {
    let path = table_path(dir);
    match files::read_framed(&path, "table", TABLE_MAGIC, TABLE_FORMAT) {
        Err(ClientError::Storage { reason: "unsupported format version", .. })
            if files::read_framed(&path, "table", TABLE_MAGIC, TABLE_FORMAT_UNSIGNED).is_ok_and(|b| b.is_some()) =>
        {
            Ok(None)
        }
        other => other,
    }
}

/// Reloads the table; `Ok(None)` if there is none (or only a format-1 table, which cannot be verified). Everything
/// is revalidated under the pins of `config`: the order verifies under the keyring ([`ClientError::Order`]), is for
/// the configured service and names the pinned Centre key ([`ClientError::WrongService`],
/// [`ClientError::UntrustedCentre`]), the signed manifest verifies under the order and describes the stored
/// protocol manifest, the epoch parameters agree with the order, and the slots pass the full client-side table
/// validation. Whether the order is still active is asked at every scan, not here.
pub fn load_table(dir: &Path, config: &ClientConfig) -> Result<Option<LoadedTable>> {
    let Some(body) = read_table_body(dir)? else {
        return Ok(None);
    };
    let bad = |reason| ClientError::Storage { file: "table", reason };
    let mut c = Cursor { file: "table", rest: &body };
    let order = config.anchors.authorities.verify_order_bytes(c.bytes32()?).map_err(ClientError::Order)?;
    if order.service_id() != config.service_id {
        return Err(ClientError::WrongService { expected: config.service_id.clone(), got: order.service_id().into() });
    }
    if order.centre_key().to_bytes() != config.anchors.centre_key {
        return Err(ClientError::UntrustedCentre);
    }
    let signed = vouchsafe_orders::SignedManifest::decode(c.bytes32()?).map_err(ClientError::Order)?;
    let signed = order.verify_manifest(&signed).map_err(ClientError::Order)?;
    let manifest =
        TableManifest::decode(signed.table_manifest()).map_err(|_| bad("the stored manifest does not decode"))?;
    verify::check_params(&order, &manifest.params)
        .map_err(|_| bad("the stored order does not agree with the stored table"))?;
    let rest = c.rest;
    if rest.len() != 32 * manifest.params.slot_count as usize {
        return Err(bad("the slot data does not match the slot count"));
    }
    let slots: Vec<[u8; 32]> =
        rest.chunks_exact(32).map(|s| s.try_into().map_err(|_| bad("truncated slot"))).collect::<Result<_>>()?;
    let table = if config.point_cache {
        ClientTable::new_with_point_cache(manifest, slots)
    } else {
        ClientTable::new(manifest, slots)
    }
    .map_err(|_| bad("the stored table does not validate"))?;
    Ok(Some(LoadedTable { table, order, manifest: signed }))
}

/// Makes sure a state exists for the table's order: loads it, or creates and persists a fresh one.
pub fn ensure_state<R: rand_core::CryptoRng + ?Sized>(dir: &Path, t: &LoadedTable, rng: &mut R) -> Result<ClientState> {
    if let Some(s) = load_state(dir, t.order.order_id())? {
        return Ok(s);
    }
    let s = ClientState::new(t.table.params(), rng);
    save_state(dir, &s)?;
    Ok(s)
}

/// Writes the known revocations (atomic, fsynced).
pub fn save_revocations(dir: &Path, revocations: &[VerifiedRevocation]) -> Result<()> {
    let bad = || ClientError::Storage { file: "revocations", reason: "too many revocations to store" };
    if revocations.len() > MAX_REVOCATIONS {
        return Err(bad());
    }
    let mut body = Vec::with_capacity(4 + revocations.len() * 110);
    body.extend_from_slice(&u32::try_from(revocations.len()).map_err(|_| bad())?.to_le_bytes());
    for r in revocations {
        let enc = r.signed().encode();
        let n = u16::try_from(enc.len()).map_err(|_| bad())?;
        body.extend_from_slice(&n.to_le_bytes());
        body.extend_from_slice(&enc);
    }
    files::write_framed(dir, REVOCATIONS_FILE, REVOCATIONS_MAGIC, REVOCATIONS_FORMAT, &body)
}

/// Reads the known revocations, verifying each again under `keyring`; empty if there is no file. A revocation by
/// an authority key the keyring no longer pins is dropped (no order it could end verifies any more); one that
/// does not decode or verify is refused ([`ClientError::Storage`]).
pub fn load_revocations(dir: &Path, keyring: &AuthorityKeyring) -> Result<Vec<VerifiedRevocation>> {
    let file = "revocations";
    let Some(body) = files::read_framed(&revocations_path(dir), file, REVOCATIONS_MAGIC, REVOCATIONS_FORMAT)? else {
        return Ok(Vec::new());
    };
    let bad = |reason| ClientError::Storage { file, reason };
    let mut c = Cursor { file, rest: &body };
    let n = u32::from_le_bytes(c.arr()?) as usize;
    if n > MAX_REVOCATIONS {
        return Err(bad("more revocations than this client keeps"));
    }
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let len = usize::from(u16::from_le_bytes(c.arr()?));
        match keyring.verify_revocation_bytes(c.take(len)?) {
            Ok(r) => out.push(r),
            Err(OrderError::UnknownAuthority { .. }) => {}
            Err(_) => return Err(bad("a stored revocation does not verify")),
        }
    }
    if !c.rest.is_empty() {
        return Err(bad("trailing bytes"));
    }
    Ok(out)
}

/// Writes the newest verified checkpoint note (atomic, fsynced).
pub fn save_checkpoint(dir: &Path, note: &str) -> Result<()> {
    files::write_framed(dir, CHECKPOINT_FILE, CHECKPOINT_MAGIC, CHECKPOINT_FORMAT, note.as_bytes())
}

/// Reads the persisted checkpoint note, if any (unverified: restore it with `ClientLogState::restore`).
pub fn load_checkpoint(dir: &Path) -> Result<Option<Vec<u8>>> {
    Ok(files::read_framed(&checkpoint_path(dir), "checkpoint", CHECKPOINT_MAGIC, CHECKPOINT_FORMAT)?
        .map(|b| b.to_vec()))
}
