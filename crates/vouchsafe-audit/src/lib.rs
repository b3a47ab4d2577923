//! # vouchsafe-audit
//!
//! What an auditor (a data-protection authority, a researcher, a Centre analyst) runs against a provider's
//! transparency log: [`replay`] takes the log's newest cosigned checkpoint and *all* its leaves, and checks
//! everything that can be checked from public data with pinned keys alone. Sans-IO: the caller fetches the leaves
//! (the `vouchsafe log verify` command does it over the `Transparency` gRPC service).
//!
//! ## What is checked, in this order
//!
//! 1. The checkpoint: the pinned log key signed it and a quorum of pinned witnesses cosigned it
//!    (`vouchsafe_log::CheckpointPolicy`).
//! 2. The leaves: there are exactly `size` of them, each decodes strictly, and the RFC 6962 root recomputed from
//!    them equals the checkpoint's root. So the leaves are the log, not a selection.
//! 3. If the auditor has audited before: the tree it saw then is a prefix of this one (the root at the old size
//!    recomputed from the leaves equals the old root). A log that rewrote history fails here.
//! 4. Every leaf, in log order:
//!    * **order**: signature by a pinned authority; no second, different order under the same id;
//!    * **revocation**: signature by a pinned authority, by the authority of an order logged before it;
//!    * **release record**: signed by the Centre key that a logged order names for this record's line; the line's
//!      records chain (number + 1, parent = previous release hash, same hash configuration, time not going back,
//!      `total = previous total + additions − removals`);
//!    * **manifest**: signed by the table key of the logged order it names (and naming that order's hash); built
//!      from a release record already logged in that order's line; its protocol table manifest decodes and its
//!      epoch parameters carry the order's id, T, s and p; its `issued_at` inside the order's validity window
//!      and the order not revoked by an earlier leaf; table versions of one epoch strictly increasing.
//!    * **transparency report**: signed by a pinned provider key; about an order logged before it; its period inside
//!      that order's validity (or the whole order); counters consistent with each other (opened ≤ received,
//!      upheld ≤ appeals filed ≤ notices ≤ reports sent, …);
//!    * any other kind is refused (this auditor does not know how to check it).
//!
//! ## What it does not show
//!
//! What a table contains: the log holds the manifest (chunk hashes of blinded points), not the indicators, so an
//! auditor learns that everybody got the same table and which release it claims to come from, not that the
//! provider built it honestly from that release (DESIGN.md §4, v1 limitation). Nor that a provider served
//! nothing outside the log: a device refuses what is not included, so an unlogged table cannot be used by a
//! conforming client.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::collections::BTreeMap;
use std::fmt;

use vouchsafe_case::{ProviderKey, SignedTransparencyReport, TransparencyReport};
use vouchsafe_log::merkle::Tree;
use vouchsafe_log::{CheckpointPolicy, Leaf, LeafKind, TreeHead};
use vouchsafe_orders::{AuthorityKeyring, SignedManifest, SignedOrder, SignedRevocation, VerifiedOrder};
use vouchsafe_protocol::table::TableManifest;
use vouchsafe_release::{CentreKey, ReleaseRecord, SignedReleaseRecord};

/// What the auditor pins: the log's checkpoint policy (log key, witnesses, quorum), the authority keys and the
/// provider keys whose transparency reports it accepts.
#[derive(Clone, Debug)]
pub struct AuditPins {
    /// Log key, witness keys and quorum.
    pub policy: CheckpointPolicy,
    /// The issuing authorities whose orders and revocations are legitimate.
    pub authorities: AuthorityKeyring,
    /// The providers' report-signing keys (`vouchsafe provider keygen`): a transparency-report leaf must be signed
    /// by one of them. Empty: a log with a transparency report fails the audit (nothing to check it against).
    pub providers: Vec<ProviderKey>,
}

/// Why an audit failed. `leaf` is the index of the offending leaf, when there is one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditError {
    /// The leaf at fault, if the failure is about one leaf.
    pub leaf: Option<u64>,
    /// What failed.
    pub reason: String,
}

impl fmt::Display for AuditError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.leaf {
            Some(i) => write!(f, "leaf {i}: {}", self.reason),
            None => f.write_str(&self.reason),
        }
    }
}

impl std::error::Error for AuditError {}

fn at(leaf: u64, reason: impl fmt::Display) -> AuditError {
    AuditError { leaf: Some(leaf), reason: reason.to_string() }
}

fn whole(reason: impl fmt::Display) -> AuditError {
    AuditError { leaf: None, reason: reason.to_string() }
}

/// One order found in the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderEntry {
    /// Its leaf index.
    pub leaf: u64,
    /// Order id.
    pub order_id: [u8; 16],
    /// Service.
    pub service_id: String,
    /// Validity window `[not_before, not_after)`.
    pub not_before: i64,
    /// End of validity (exclusive).
    pub not_after: i64,
    /// Leaf index of its revocation, if it was revoked.
    pub revoked_at_leaf: Option<u64>,
    /// How many table manifests were logged under it.
    pub manifests: usize,
}

/// One release record found in the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReleaseEntry {
    /// Its leaf index.
    pub leaf: u64,
    /// The record.
    pub record: ReleaseRecord,
}

/// One manifest found in the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestEntry {
    /// Its leaf index.
    pub leaf: u64,
    /// The order it serves.
    pub order_id: [u8; 16],
    /// Table epoch.
    pub epoch: u64,
    /// Table version.
    pub table_version: u64,
    /// Slot count.
    pub slot_count: u32,
    /// The table root.
    pub root: [u8; 32],
    /// The release line and number it was built from.
    pub release: (String, u64),
}

/// What a successful replay found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditReport {
    /// The checkpoint's tree head.
    pub tree: TreeHead,
    /// The checkpoint's origin (the log's name).
    pub origin: String,
    /// When a quorum of witnesses had cosigned it (POSIX seconds).
    pub quorum_time: u64,
    /// Orders, in log order.
    pub orders: Vec<OrderEntry>,
    /// Revocations: (leaf, order id).
    pub revocations: Vec<(u64, [u8; 16])>,
    /// Release records, in log order.
    pub releases: Vec<ReleaseEntry>,
    /// Manifests, in log order.
    pub manifests: Vec<ManifestEntry>,
    /// Transparency reports, in log order.
    pub transparency_reports: Vec<TransparencyEntry>,
}

/// One transparency report found in the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransparencyEntry {
    /// Its leaf index.
    pub leaf: u64,
    /// The verified report.
    pub report: TransparencyReport,
}

/// Counters of a transparency report that cannot exceed another (`smaller ≤ larger`): a report breaking one of
/// these is not a count of what happened.
const COUNTER_BOUNDS: &[(&str, &str)] = &[
    ("vouchers_opened", "vouchers_received"),
    ("vouchers_non_matching", "vouchers_received"),
    ("accounts_over_threshold", "accounts"),
    ("reports_sent", "reports_queued"),
    ("appeals_upheld", "appeals_filed"),
    ("appeals_dismissed", "appeals_filed"),
    ("appeals_filed", "notices"),
    ("notices", "reports_sent"),
    ("withdrawals_sent", "appeals_upheld"),
];

struct LoggedOrder {
    verified: VerifiedOrder,
    leaf: u64,
    revoked_at_leaf: Option<u64>,
    manifests: usize,
    /// Newest table version per epoch.
    versions: BTreeMap<u64, u64>,
}

#[derive(Default)]
struct State {
    orders: BTreeMap<[u8; 16], LoggedOrder>,
    order_list: Vec<[u8; 16]>,
    /// (Centre key id, line) -> records in chain order.
    lines: BTreeMap<([u8; 16], String), Vec<ReleaseRecord>>,
    revocations: Vec<(u64, [u8; 16])>,
    releases: Vec<ReleaseEntry>,
    manifests: Vec<ManifestEntry>,
    transparency: Vec<TransparencyEntry>,
}

impl State {
    /// A transparency report: signed by a pinned provider key, about an order logged before it, for a period
    /// inside that order's validity, and with counters that are consistent with each other.
    fn transparency(&mut self, i: u64, bytes: &[u8], pins: &AuditPins) -> Result<(), AuditError> {
        let signed = SignedTransparencyReport::decode(bytes).map_err(|e| at(i, format!("transparency report: {e}")))?;
        let report = pins
            .providers
            .iter()
            .find_map(|k| signed.verify(k).ok())
            .ok_or_else(|| at(i, "transparency report: not signed by a pinned provider key"))?;
        let order = self
            .orders
            .get(&report.order_id)
            .ok_or_else(|| at(i, "transparency report about an order not logged before it"))?;
        let (nb, na) = (order.verified.not_before(), order.verified.not_after());
        if !(report.from == 0 && report.to == 0) && (report.from < nb || report.to > na.saturating_add(366 * 86_400)) {
            return Err(at(i, "transparency report for a period outside its order's validity"));
        }
        for (small, large) in COUNTER_BOUNDS {
            if let (Some(a), Some(b)) = (report.counter(small), report.counter(large))
                && a > b
            {
                return Err(at(i, format!("transparency report: {small} = {a} exceeds {large} = {b}")));
            }
        }
        self.transparency.push(TransparencyEntry { leaf: i, report });
        Ok(())
    }

    fn order(&mut self, i: u64, bytes: &[u8], pins: &AuditPins) -> Result<(), AuditError> {
        let signed = SignedOrder::decode(bytes).map_err(|e| at(i, format!("order: {e}")))?;
        let verified = pins.authorities.verify_order(&signed).map_err(|e| at(i, format!("order: {e}")))?;
        let id = *verified.order_id();
        if let Some(prev) = self.orders.get(&id) {
            return Err(at(i, format!("a second order with the id of leaf {}", prev.leaf)));
        }
        self.order_list.push(id);
        self.orders.insert(
            id,
            LoggedOrder { verified, leaf: i, revoked_at_leaf: None, manifests: 0, versions: BTreeMap::new() },
        );
        Ok(())
    }

    fn revocation(&mut self, i: u64, bytes: &[u8], pins: &AuditPins) -> Result<(), AuditError> {
        let signed = SignedRevocation::decode(bytes).map_err(|e| at(i, format!("revocation: {e}")))?;
        let verified = pins.authorities.verify_revocation(&signed).map_err(|e| at(i, format!("revocation: {e}")))?;
        let id = *verified.order_id();
        let order =
            self.orders.get_mut(&id).ok_or_else(|| at(i, "revocation of an order that is not logged before it"))?;
        if order.verified.order().authority_key_id() != verified.authority_key_id() {
            return Err(at(i, "revocation by another authority than the order's"));
        }
        if order.revoked_at_leaf.is_none() {
            order.revoked_at_leaf = Some(i);
        }
        self.revocations.push((i, id));
        Ok(())
    }

    fn release(&mut self, i: u64, bytes: &[u8]) -> Result<(), AuditError> {
        let signed = SignedReleaseRecord::decode(bytes).map_err(|e| at(i, format!("release record: {e}")))?;
        let claimed = signed.record();
        // The Centre key comes from a logged order naming this line and key id, never from the record itself.
        let key = self
            .order_list
            .iter()
            .filter_map(|id| self.orders.get(id))
            .filter(|o| o.verified.release_line() == claimed.line)
            .filter_map(|o| CentreKey::from_bytes(&o.verified.centre_key().to_bytes()).ok())
            .find(|k| k.key_id() == claimed.key_id)
            .ok_or_else(|| at(i, "release record of a Centre key and line that no earlier order names"))?;
        let record = signed.verify(&key).map_err(|e| at(i, format!("release record: {e}")))?;
        let chain = self.lines.entry((record.key_id, record.line.clone())).or_default();
        match chain.last() {
            None if record.number != 1 => {
                return Err(at(i, format!("release line {} starts at number {}", record.line, record.number)));
            }
            None => {}
            Some(prev) => {
                let total = prev
                    .total
                    .checked_add(u64::from(record.additions))
                    .and_then(|t| t.checked_sub(u64::from(record.removals)));
                let why = if record.number != prev.number + 1 {
                    Some("its number does not follow the previous record's")
                } else if record.parent != Some(prev.release_hash) {
                    Some("its parent is not the previous release")
                } else if record.hash_config != prev.hash_config {
                    Some("it changes the hash configuration")
                } else if record.created_at < prev.created_at {
                    Some("it is older than the previous release")
                } else if total != Some(record.total) {
                    Some("its total does not follow from the previous total and its counts")
                } else {
                    None
                };
                if let Some(why) = why {
                    return Err(at(i, format!("release {} #{}: {why}", record.line, record.number)));
                }
            }
        }
        chain.push(record.clone());
        self.releases.push(ReleaseEntry { leaf: i, record });
        Ok(())
    }

    fn manifest(&mut self, i: u64, bytes: &[u8]) -> Result<(), AuditError> {
        let signed = SignedManifest::decode(bytes).map_err(|e| at(i, format!("manifest: {e}")))?;
        let id = signed.statement().order_id;
        let order = self.orders.get(&id).ok_or_else(|| at(i, "manifest of an order that is not logged before it"))?;
        let verified = order.verified.verify_manifest(&signed).map_err(|e| at(i, format!("manifest: {e}")))?;
        let st = verified.statement();
        let o = &order.verified;
        let centre_id = CentreKey::from_bytes(&o.centre_key().to_bytes())
            .map_err(|e| at(i, format!("the order's Centre key: {e}")))?
            .key_id();
        let line = o.release_line().to_owned();
        let built_from = self
            .lines
            .get(&(centre_id, line.clone()))
            .and_then(|c| c.iter().find(|r| r.number == st.release_number))
            .ok_or_else(|| at(i, format!("manifest built from release {line} #{}, not logged", st.release_number)))?;
        if built_from.release_hash != st.release_hash {
            return Err(at(i, format!("manifest names release {line} #{} with another hash", st.release_number)));
        }
        let tm = TableManifest::decode(&st.table_manifest).map_err(|e| at(i, format!("table manifest: {e}")))?;
        let p = &tm.params;
        if p.order_id != id
            || p.threshold != o.threshold()
            || p.synthetic_cap != o.synthetic_cap()
            || p.synthetic_rate != o.synthetic_rate()
        {
            return Err(at(i, "the table's epoch parameters differ from the order (id, T, s or p)"));
        }
        if st.issued_at < o.not_before() || st.issued_at >= o.not_after() {
            return Err(at(i, format!("manifest issued at {} outside the order's validity window", st.issued_at)));
        }
        if let Some(r) = order.revoked_at_leaf {
            return Err(at(i, format!("manifest logged after the order's revocation (leaf {r})")));
        }
        let root = tm.root();
        let order = self.orders.get_mut(&id).ok_or_else(|| at(i, "order vanished"))?;
        if let Some(v) = order.versions.get(&p.epoch)
            && tm.table_version <= *v
        {
            return Err(at(i, format!("table version {} after version {v} of epoch {}", tm.table_version, p.epoch)));
        }
        order.versions.insert(p.epoch, tm.table_version);
        order.manifests += 1;
        self.manifests.push(ManifestEntry {
            leaf: i,
            order_id: id,
            epoch: p.epoch,
            table_version: tm.table_version,
            slot_count: p.slot_count,
            root,
            release: (line, st.release_number),
        });
        Ok(())
    }
}

/// Replays a log: the cosigned checkpoint `note`, the log's leaves `0..size` (each in the log's leaf encoding),
/// and optionally the tree head this auditor accepted last time (`previous`). See the crate documentation for
/// every check. Any failure is an [`AuditError`] naming the leaf.
pub fn replay(
    pins: &AuditPins,
    note: &[u8],
    leaves: &[Vec<u8>],
    previous: Option<&TreeHead>,
) -> Result<AuditReport, AuditError> {
    let checkpoint = pins.policy.verify_checkpoint(note).map_err(|e| whole(format!("checkpoint: {e}")))?;
    let head = checkpoint.tree_head();
    if leaves.len() as u64 != head.size {
        return Err(whole(format!("the checkpoint has {} leaves, {} were replayed", head.size, leaves.len())));
    }
    let mut tree = Tree::new();
    let mut decoded = Vec::with_capacity(leaves.len());
    for (i, bytes) in leaves.iter().enumerate() {
        let leaf = Leaf::decode(bytes).map_err(|e| at(i as u64, format!("leaf encoding: {e}")))?;
        tree.append(bytes).map_err(|e| at(i as u64, e))?;
        decoded.push(leaf);
    }
    let rebuilt = tree.tree_head(head.size).map_err(whole)?;
    if rebuilt.root != head.root {
        return Err(whole("the leaves do not hash to the checkpoint's root"));
    }
    if let Some(prev) = previous {
        if prev.size > head.size {
            return Err(whole(format!(
                "rollback: this checkpoint has {} leaves, {} were audited before",
                head.size, prev.size
            )));
        }
        let then = tree.tree_head(prev.size).map_err(whole)?;
        if then.root != prev.root {
            return Err(whole(format!("fork: the first {} leaves differ from the log audited before", prev.size)));
        }
    }
    let mut st = State::default();
    for (i, leaf) in decoded.iter().enumerate() {
        let i = i as u64;
        match leaf.kind() {
            LeafKind::Order => st.order(i, leaf.bytes(), pins)?,
            LeafKind::Revocation => st.revocation(i, leaf.bytes(), pins)?,
            LeafKind::Release => st.release(i, leaf.bytes())?,
            LeafKind::Manifest => st.manifest(i, leaf.bytes())?,
            LeafKind::TransparencyReport => st.transparency(i, leaf.bytes(), pins)?,
            other => return Err(at(i, format!("leaf kind {other:?} is not one this auditor can check"))),
        }
    }
    let orders = st
        .order_list
        .iter()
        .filter_map(|id| st.orders.get(id))
        .map(|o| OrderEntry {
            leaf: o.leaf,
            order_id: *o.verified.order_id(),
            service_id: o.verified.service_id().to_owned(),
            not_before: o.verified.not_before(),
            not_after: o.verified.not_after(),
            revoked_at_leaf: o.revoked_at_leaf,
            manifests: o.manifests,
        })
        .collect();
    Ok(AuditReport {
        tree: head,
        origin: checkpoint.checkpoint().origin().to_owned(),
        quorum_time: checkpoint.quorum_time(),
        orders,
        revocations: st.revocations,
        releases: st.releases,
        manifests: st.manifests,
        transparency_reports: st.transparency,
    })
}
