//! The verified table and the per-order protocol state on disk.
//!
//! * `table.bin` (magic `VSCTABLE`, format 1): root ‖ order ‖ manifest encoding ‖ slots. Reloaded at start and
//!   revalidated from scratch (root recomputed, every chunk hash and slot checked) before use.
//! * `state-<order id hex>.bin` (magic `VSCSTATE`, format 1): the protocol's `ClientState` encoding. One file per
//!   order, so a new order always starts a new state; a file whose state names another order is refused.

use std::path::{Path, PathBuf};

use vouchsafe_protocol::client::ClientState;
use vouchsafe_protocol::table::{ClientTable, TableManifest};

use crate::error::{ClientError, Result};
use crate::files;
use crate::verify::{OrderSummary, VerifiedManifest, VerifiedOrder, check_order};

const TABLE_MAGIC: &[u8; 8] = b"VSCTABLE";
const TABLE_FORMAT: u16 = 1;
const STATE_MAGIC: &[u8; 8] = b"VSCSTATE";
const STATE_FORMAT: u16 = 1;
const TABLE_FILE: &str = "table.bin";

/// A verified table together with the order it serves. Made by [`load_table`] (revalidated from disk),
/// [`LoadedTable::from_verified`], or the client's sync once the table verified.
#[derive(Debug)]
pub struct LoadedTable {
    table: ClientTable,
    order: VerifiedOrder,
}

impl LoadedTable {
    /// A table the caller validated ([`crate::verify::assemble_table`], [`crate::verify::apply_update`]) with the
    /// order of the manifest it verified against. Refused if the table's root is not the manifest's.
    pub fn from_verified(table: ClientTable, verified: &VerifiedManifest) -> Result<Self> {
        if table.root() != verified.root() {
            return Err(ClientError::Verification { reason: "the table's root differs from the verified manifest's" });
        }
        Ok(LoadedTable { table, order: verified.order().clone() })
    }

    /// The client's own: a table validated by `verify` (its root checked against what the server announced) and
    /// the order of the verified manifest it belongs to.
    pub(crate) fn new(table: ClientTable, order: VerifiedOrder) -> Self {
        LoadedTable { table, order }
    }

    /// The validated table.
    pub fn table(&self) -> &ClientTable {
        &self.table
    }

    /// The order it serves.
    pub fn order(&self) -> &VerifiedOrder {
        &self.order
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

fn encode_order(o: &VerifiedOrder, out: &mut Vec<u8>) {
    out.extend_from_slice(o.order_id());
    out.extend_from_slice(&o.not_before().to_le_bytes());
    out.extend_from_slice(&o.not_after().to_le_bytes());
    out.extend_from_slice(&o.hash_config().id().to_le_bytes());
    // At most u16::MAX bytes of the service id (the length prefix's range); a longer one is cut, not a panic.
    let sid = o.service_id().as_bytes();
    let sid = sid.get(..usize::from(u16::MAX)).unwrap_or(sid);
    out.extend_from_slice(&u16::try_from(sid.len()).unwrap_or(u16::MAX).to_le_bytes());
    out.extend_from_slice(sid);
}

/// Writes the verified table (atomic, fsynced).
pub fn save_table(dir: &Path, t: &LoadedTable) -> Result<()> {
    let manifest = t.table.manifest().encode();
    let slots = t.table.slots();
    let mut body = Vec::with_capacity(32 + 64 + manifest.len() + 4 + 32 * slots.len());
    body.extend_from_slice(&t.table.root());
    encode_order(&t.order, &mut body);
    body.extend_from_slice(&(manifest.len() as u32).to_le_bytes());
    body.extend_from_slice(&manifest);
    for s in slots {
        body.extend_from_slice(s);
    }
    files::write_framed(dir, TABLE_FILE, TABLE_MAGIC, TABLE_FORMAT, &body)
}

struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let (a, b) =
            self.0.split_at_checked(n).ok_or(ClientError::Storage { file: "table", reason: "truncated body" })?;
        self.0 = b;
        Ok(a)
    }
    fn arr<const N: usize>(&mut self) -> Result<[u8; N]> {
        let s = self.take(N)?;
        s.try_into().map_err(|_| ClientError::Storage { file: "table", reason: "truncated body" })
    }
}

/// Reloads the table; `Ok(None)` if there is none. Everything is revalidated: the manifest decodes, its root equals
/// the stored root, the order agrees with the parameters and `service_id`, and the slots pass the full client-side
/// table validation.
pub fn load_table(dir: &Path, service_id: &str, point_cache: bool) -> Result<Option<LoadedTable>> {
    let Some(body) = files::read_framed(&table_path(dir), "table", TABLE_MAGIC, TABLE_FORMAT)? else {
        return Ok(None);
    };
    let bad = |reason| ClientError::Storage { file: "table", reason };
    let mut c = Cursor(&body);
    let root: [u8; 32] = c.arr()?;
    let order_id: [u8; 16] = c.arr()?;
    let not_before = i64::from_le_bytes(c.arr()?);
    let not_after = i64::from_le_bytes(c.arr()?);
    let cfg_id = u16::from_le_bytes(c.arr()?);
    let sid_len = u16::from_le_bytes(c.arr()?) as usize;
    let sid = String::from_utf8(c.take(sid_len)?.to_vec()).map_err(|_| bad("service id is not UTF-8"))?;
    let mlen = u32::from_le_bytes(c.arr()?) as usize;
    let manifest = TableManifest::decode(c.take(mlen)?).map_err(|_| bad("the stored manifest does not decode"))?;
    if manifest.root() != root {
        return Err(bad("the stored manifest does not match the stored root"));
    }
    let rest = c.0;
    if rest.len() != 32 * manifest.params.slot_count as usize {
        return Err(bad("the slot data does not match the slot count"));
    }
    let slots: Vec<[u8; 32]> =
        rest.chunks_exact(32).map(|s| s.try_into().map_err(|_| bad("truncated slot"))).collect::<Result<_>>()?;
    let summary = OrderSummary {
        order_id: order_id.to_vec(),
        service_id: sid,
        not_before,
        not_after,
        threshold: u32::from(manifest.params.threshold),
        synthetic_rate: manifest.params.synthetic_rate,
        synthetic_cap: u32::from(manifest.params.synthetic_cap),
        hash_config_id: cfg_id.to_string(),
    };
    let order = check_order(&summary, &manifest.params, service_id)
        .map_err(|_| bad("the stored order does not agree with the stored table or the configuration"))?;
    let table = if point_cache {
        ClientTable::new_with_point_cache(manifest, slots)
    } else {
        ClientTable::new(manifest, slots)
    }
    .map_err(|_| bad("the stored table does not validate"))?;
    Ok(Some(LoadedTable { table, order }))
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
