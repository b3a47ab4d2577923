//! The server's side of issue 8, built directly from the libraries (no server crate): an authority that signs an
//! order, a Centre release the table is built from, a provider that signs the table manifest with the order's
//! table key, a transparency log with its checkpoints cosigned by witnesses, and an in-memory [`Transport`] that
//! serves all of it, with knobs to misbehave.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use vouchsafe_client::transport::{
    BoxFuture, CheckpointMessage, ChunkMessage, ChunkStream, ConsistencyProofMessage, InclusionProofMessage, Received,
    RpcError, SubmitAck, Transport,
};
use vouchsafe_client::verify::{ManifestInfo, UpdateInfo};
use vouchsafe_client::{BearerToken, ClientConfig, TrustAnchors};
use vouchsafe_log::{Checkpoint, Leaf, LeafKind, Log, LogSigningKey, Note, Witness, WitnessSigningKey};
use vouchsafe_orders::{
    AuthorityKeyring, AuthoritySigningKey, DetectionOrder, ManifestStatement, MaterialKind, OrderTerms, Revocation,
    RevocationReason, Scope, SignedManifest, SignedOrder, SignedRevocation, TableSigningKey, VerifiedOrder,
};
use vouchsafe_protocol::table::{BlindingKey, ServerTable, TableManifest, TableUpdate};
use vouchsafe_release::{CentreDb, CentreSigningKey, ImportEntry, SignedRelease, SourceId};

use super::{ORDER, SERVICE, rng, table_config};

pub const ORIGIN: &str = "log.provider.example/v1";
pub const LINE: &str = "eu-main";
pub const WITNESSES: usize = 3;
pub const QUORUM: usize = 2;

pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// Every key of every party.
pub struct Keys {
    pub authority: AuthoritySigningKey,
    pub other_authority: AuthoritySigningKey,
    pub centre: CentreSigningKey,
    pub table: TableSigningKey,
    pub other_table: TableSigningKey,
    pub log: LogSigningKey,
    pub witness_seeds: Vec<[u8; 32]>,
}

impl Keys {
    pub fn new(seed: u64) -> Keys {
        let mut r = rng(seed);
        let mut seeds = Vec::new();
        for _ in 0..WITNESSES {
            let mut s = [0u8; 32];
            rand_core::Rng::fill_bytes(&mut r, &mut s);
            seeds.push(s);
        }
        Keys {
            authority: AuthoritySigningKey::generate(&mut r),
            other_authority: AuthoritySigningKey::generate(&mut r),
            centre: CentreSigningKey::generate(&mut r),
            table: TableSigningKey::generate(&mut r),
            other_table: TableSigningKey::generate(&mut r),
            log: LogSigningKey::generate(ORIGIN, &mut r).unwrap(),
            witness_seeds: seeds,
        }
    }

    pub fn witness(&self, i: usize) -> WitnessSigningKey {
        WitnessSigningKey::from_seed(&format!("witness-{i}.example"), &self.witness_seeds[i]).unwrap()
    }

    /// What the app pins: the authority, the Centre, the log, the three witnesses, quorum 2.
    pub fn anchors(&self) -> TrustAnchors {
        TrustAnchors::new(
            AuthorityKeyring::new([self.authority.public_key().clone()]).unwrap(),
            self.centre.public().to_bytes(),
            self.log.verifier(),
            (0..WITNESSES).map(|i| self.witness(i).verifier()).collect(),
            QUORUM,
        )
        .unwrap()
    }

    /// The order's terms: whole service, valid from an hour ago for 30 days, T = 3, s = 2, p = 0, configuration 1,
    /// this Centre and table key, `state-security` excluded.
    pub fn terms(&self) -> OrderTerms {
        let now = now();
        OrderTerms {
            order_id: ORDER,
            service_id: SERVICE.into(),
            scope: Scope::WholeService,
            material: MaterialKind::KnownImagery,
            not_before: now - 3600,
            not_after: now + 30 * 86_400,
            threshold: 3,
            synthetic_rate: 0,
            synthetic_cap: 2,
            hash_config: 1,
            centre_key: self.centre.public().to_bytes(),
            release_line: LINE.into(),
            table_key: self.table.public_key(),
            excluded_classes: vec!["state-security".into()],
            authority_key_id: self.authority.key_id(),
        }
    }

    pub fn sign(&self, terms: OrderTerms) -> SignedOrder {
        let key =
            if terms.authority_key_id == self.authority.key_id() { &self.authority } else { &self.other_authority };
        key.sign_order(DetectionOrder::new(terms).unwrap()).unwrap()
    }

    /// `order` as a verified order (under whichever of the two authorities signed it).
    pub fn verified(&self, order: &SignedOrder) -> VerifiedOrder {
        AuthorityKeyring::new([self.authority.public_key().clone(), self.other_authority.public_key().clone()])
            .unwrap()
            .verify_order(order)
            .unwrap()
    }

    pub fn revoke(&self, order: &SignedOrder) -> SignedRevocation {
        let r = Revocation::new(*order.order().order_id(), now(), RevocationReason::Annulled, self.authority.key_id());
        self.authority.sign_revocation(r).unwrap()
    }

    /// The provider's signed manifest of `manifest` under `order` (with `key`, normally the order's table key).
    pub fn sign_manifest_with(&self, key: &TableSigningKey, order: &SignedOrder, m: &TableManifest) -> SignedManifest {
        self.sign_manifest_of_release(key, order, m, 1, [0x5e; 32])
    }

    /// As [`Keys::sign_manifest_with`], naming release `number` with hash `hash`.
    pub fn sign_manifest_of_release(
        &self,
        key: &TableSigningKey,
        order: &SignedOrder,
        m: &TableManifest,
        number: u64,
        hash: [u8; 32],
    ) -> SignedManifest {
        let v = self.verified(order);
        let statement = ManifestStatement {
            order_id: *order.order().order_id(),
            order_hash: order.hash(),
            release_number: number,
            release_hash: hash,
            issued_at: now(),
            table_manifest: m.encode(),
        };
        if key.public_key() == v.table_key().to_bytes() {
            return key.sign_manifest(&v, statement).unwrap();
        }
        // Another key: TableSigningKey refuses, so sign the statement by hand (what a rogue provider would do).
        use ed25519_dalek::Signer as _;
        let body = statement.encode().unwrap();
        let sk = ed25519_dalek::SigningKey::from_bytes(&key.to_secret_bytes());
        let sig = sk.sign(&[vouchsafe_orders::labels::LABEL_MANIFEST_SIGN, body.as_slice()].concat());
        SignedManifest::decode(&[&[1u8][..], &sig.to_bytes(), &body].concat()).unwrap()
    }

    /// The log's checkpoint of `log` at its current size, cosigned by the witnesses `cosigners` at `time`.
    pub fn checkpoint(&self, log: &Log, cosigners: &[usize], time: u64) -> Vec<u8> {
        let cp = Checkpoint::new(ORIGIN, log.tree_head()).unwrap();
        let mut note = self.log.sign_checkpoint(&cp).unwrap();
        for &i in cosigners {
            // A fresh witness following from the empty tree: it needs no proof (every tree extends the empty one).
            let mut w = Witness::new(self.witness(i));
            w.follow(self.log.verifier()).unwrap();
            let sig = w.cosign(note.encode().as_bytes(), &Default::default(), time).unwrap();
            note.add_signature(sig).unwrap();
        }
        note.encode().into_bytes()
    }
}

/// One served table version: its signed manifest and where its leaf is.
#[derive(Clone)]
pub struct Version {
    pub manifest: TableManifest,
    pub signed: SignedManifest,
    pub leaf_index: u64,
    /// The update from the previous version, if there is one.
    pub update: Option<TableUpdate>,
}

/// A change the fake server makes to what it sends.
pub type Edit<T> = Box<dyn Fn(&mut T) + Send>;

/// What the fake server serves, and how it misbehaves.
pub struct World {
    pub keys: Keys,
    pub order: SignedOrder,
    pub order_index: u64,
    pub table: ServerTable,
    pub versions: Vec<Version>,
    pub log: Log,
    pub note: Vec<u8>,
    /// Revocations put in the manifest.
    pub revocations: Vec<SignedRevocation>,
    /// Edits the manifest after it is built (tampering).
    pub edit_manifest: Option<Edit<ManifestInfo>>,
    /// Serve this note instead of the current checkpoint.
    pub note_override: Option<Vec<u8>>,
    /// Edits inclusion proofs.
    pub edit_inclusion: Option<Edit<InclusionProofMessage>>,
    /// Submitted batches.
    pub submitted: Vec<Vec<Vec<u8>>>,
    /// The client-state id of each submitted batch.
    pub client_states: Vec<[u8; 16]>,
    /// How many chunk messages were streamed.
    pub chunks_streamed: usize,
}

impl World {
    /// The honest world: the order, one release, a table with `indicators` (plus filler), its signed manifest, and
    /// a log [order, release, manifest] whose checkpoint witnesses 0, 1 and 2 cosigned now.
    pub fn new(seed: u64, indicators: Vec<Vec<u8>>) -> World {
        let keys = Keys::new(seed);
        let order = keys.sign(keys.terms());
        World::with_order(keys, order, indicators, seed)
    }

    pub fn with_order(keys: Keys, order: SignedOrder, indicators: Vec<Vec<u8>>, seed: u64) -> World {
        let (table, release) = table_and_release(&keys.centre, indicators, seed);
        let mut log = Log::new();
        let order_index = log.append(Leaf::new(LeafKind::Order, order.encode()).unwrap()).unwrap();
        log.append(Leaf::new(LeafKind::Release, release.encode()).unwrap()).unwrap();
        let release = release.verify(&keys.centre.public()).unwrap();
        let manifest = table.manifest();
        let signed = keys.sign_manifest_of_release(&keys.table, &order, &manifest, 1, release.hash());
        let leaf_index = log.append(Leaf::new(LeafKind::Manifest, signed.encode()).unwrap()).unwrap();
        let note = keys.checkpoint(&log, &[0, 1, 2], now() as u64);
        World {
            keys,
            order,
            order_index,
            table,
            versions: vec![Version { manifest, signed, leaf_index, update: None }],
            log,
            note,
            revocations: vec![],
            edit_manifest: None,
            note_override: None,
            edit_inclusion: None,
            submitted: vec![],
            client_states: vec![],
            chunks_streamed: 0,
        }
    }

    pub fn current(&self) -> &Version {
        self.versions.last().unwrap()
    }

    /// Re-signs the checkpoint of the current log (cosigned by all witnesses now).
    pub fn publish(&mut self) {
        self.note = self.keys.checkpoint(&self.log, &[0, 1, 2], now() as u64);
    }

    /// A new table version adding `indicators`: update, signed manifest, its leaf, a new checkpoint.
    pub fn update_table(&mut self, indicators: Vec<Vec<u8>>, seed: u64) {
        let u = self.table.update(indicators, &[], &mut rng(seed)).unwrap();
        let manifest = self.table.manifest();
        let signed = self.keys.sign_manifest_with(&self.keys.table, &self.order, &manifest);
        let leaf_index = self.log.append(Leaf::new(LeafKind::Manifest, signed.encode()).unwrap()).unwrap();
        self.versions.push(Version { manifest, signed, leaf_index, update: Some(u) });
        self.publish();
    }

    /// Serves `table` (e.g. of a new epoch) from now on: signed manifest, its leaf, a new checkpoint; no update.
    pub fn replace_table(&mut self, table: ServerTable) {
        self.table = table;
        let manifest = self.table.manifest();
        let signed = self.keys.sign_manifest_with(&self.keys.table, &self.order, &manifest);
        let leaf_index = self.log.append(Leaf::new(LeafKind::Manifest, signed.encode()).unwrap()).unwrap();
        self.versions.push(Version { manifest, signed, leaf_index, update: None });
        self.publish();
    }

    /// Forgets the update to the current version (the server's history no longer reaches the previous one).
    pub fn forget_update(&mut self) {
        if let Some(v) = self.versions.last_mut() {
            v.update = None;
        }
    }

    /// Appends a leaf (e.g. a revocation) and publishes a new checkpoint.
    pub fn append(&mut self, kind: LeafKind, bytes: Vec<u8>) -> u64 {
        let i = self.log.append(Leaf::new(kind, bytes).unwrap()).unwrap();
        self.publish();
        i
    }

    /// The manifest as the server sends it.
    pub fn manifest_info(&self) -> ManifestInfo {
        let v = self.current();
        let m = &v.manifest;
        let mut info = ManifestInfo {
            params: m.params.encode(),
            table_version: m.table_version,
            slot_count: m.params.slot_count,
            chunk_slots: m.chunk_slots,
            root: m.root().to_vec(),
            chunk_hashes: m.chunk_hashes.iter().map(|h| h.to_vec()).collect(),
            signed_order: self.order.encode(),
            revocations: self.revocations.iter().map(|r| r.encode()).collect(),
            signed_manifest: v.signed.encode(),
            order_leaf_index: self.order_index,
            manifest_leaf_index: v.leaf_index,
        };
        if let Some(edit) = &self.edit_manifest {
            edit(&mut info);
        }
        info
    }

    /// The update from `from` to the current version, if the world has exactly that step.
    pub fn update_info(&self, from: u64) -> Option<UpdateInfo> {
        let v = self.current();
        let u = v.update.as_ref()?;
        (u.from_version == from).then(|| UpdateInfo {
            from_version: u.from_version,
            to_version: u.to_version,
            update: u.encode(),
            root: v.manifest.root().to_vec(),
            chunk_hashes: v.manifest.chunk_hashes.iter().map(|h| h.to_vec()).collect(),
            signed_manifest: v.signed.encode(),
            manifest_leaf_index: v.leaf_index,
        })
    }

    pub fn served_note(&self) -> Vec<u8> {
        self.note_override.clone().unwrap_or_else(|| self.note.clone())
    }

    pub fn inclusion(&self, leaf_index: u64, tree_size: u64) -> Result<InclusionProofMessage, RpcError> {
        let p =
            self.log.inclusion_proof(leaf_index, tree_size).map_err(|_| RpcError::Server { code: "OUT_OF_RANGE" })?;
        let mut m = InclusionProofMessage { leaf_index, tree_size, proof: p.encode() };
        if let Some(edit) = &self.edit_inclusion {
            edit(&mut m);
        }
        Ok(m)
    }

    pub fn consistency(&self, old_size: u64, new_size: u64) -> Result<ConsistencyProofMessage, RpcError> {
        let p =
            self.log.consistency_proof(old_size, new_size).map_err(|_| RpcError::Server { code: "OUT_OF_RANGE" })?;
        Ok(ConsistencyProofMessage { old_size, new_size, proof: p.encode() })
    }

    /// A client configuration with this world's pins.
    pub fn config(&self, dir: &std::path::Path) -> ClientConfig {
        let mut c =
            ClientConfig::new("http://in-memory.invalid", BearerToken::new("t"), dir, SERVICE, self.keys.anchors());
        c.max_retries = 0;
        c
    }
}

/// The Centre's first release of `indicators`, each attested by two sources (the client never sees releases; the
/// log holds it and the manifest names it).
pub fn release_of(key: &CentreSigningKey, indicators: &[Vec<u8>]) -> SignedRelease {
    let mut db = CentreDb::new(1);
    for source in ["hotline-a", "hotline-b"] {
        let entries: Vec<ImportEntry> = indicators
            .iter()
            .enumerate()
            .map(|(i, p)| ImportEntry {
                primary: p.clone(),
                secondary: [p.as_slice(), b"/secondary"].concat(),
                reference: format!("{source}-ref-{i}"),
            })
            .collect();
        db.import(&SourceId::new(source).unwrap(), 1, &entries).unwrap();
    }
    key.sign(&db.next_release(LINE, None, 2, now(), &[]).unwrap().release)
}

/// `indicators` plus 20 filler indicators, all released by the Centre, and the table built from exactly them.
pub fn table_and_release(
    key: &CentreSigningKey,
    mut indicators: Vec<Vec<u8>>,
    seed: u64,
) -> (ServerTable, SignedRelease) {
    for i in 0..20u8 {
        indicators.push(vec![i, 0xaa, 0x55, (seed & 0xff) as u8]);
    }
    let release = release_of(key, &indicators);
    let mut r = rng(seed);
    let table = ServerTable::build(&table_config(1), BlindingKey::random(&mut r), indicators, &mut r).unwrap();
    (table, release)
}

/// The in-memory server: the client's [`Transport`] answering from a shared [`World`].
#[derive(Clone)]
pub struct FakeServer(pub Arc<Mutex<World>>);

impl FakeServer {
    pub fn new(world: World) -> FakeServer {
        FakeServer(Arc::new(Mutex::new(world)))
    }

    pub fn world(&self) -> std::sync::MutexGuard<'_, World> {
        self.0.lock().unwrap()
    }

    /// A client configuration with the world's pins (the lock is not held afterwards).
    pub fn config(&self, dir: &std::path::Path) -> ClientConfig {
        self.world().config(dir)
    }
}

fn received<T>(message: T) -> Received<T> {
    Received { message, wire_bytes: 1 }
}

struct Chunks(std::vec::IntoIter<ChunkMessage>);

impl ChunkStream for Chunks {
    fn next_chunk(&mut self) -> BoxFuture<'_, Result<Option<Received<ChunkMessage>>, RpcError>> {
        let next = self.0.next().map(received);
        Box::pin(async move { Ok(next) })
    }
}

impl Transport for FakeServer {
    fn get_manifest(&self) -> BoxFuture<'_, Result<Received<ManifestInfo>, RpcError>> {
        let m = self.world().manifest_info();
        Box::pin(async move { Ok(received(m)) })
    }

    fn stream_table(
        &self,
        table_version: u64,
        first_chunk: u32,
    ) -> BoxFuture<'_, Result<Box<dyn ChunkStream>, RpcError>> {
        let mut w = self.world();
        let r = if table_version != w.table.version() {
            Err(RpcError::VersionNotServed)
        } else {
            let chunks: Vec<ChunkMessage> = (first_chunk..w.table.chunk_count())
                .map(|i| ChunkMessage { index: i, chunk: w.table.chunk(i).unwrap().encode() })
                .collect();
            w.chunks_streamed += chunks.len();
            Ok(Box::new(Chunks(chunks.into_iter())) as Box<dyn ChunkStream>)
        };
        Box::pin(async move { r })
    }

    fn get_update(&self, from_version: u64) -> BoxFuture<'_, Result<Received<UpdateInfo>, RpcError>> {
        let u = self.world().update_info(from_version).map(received).ok_or(RpcError::VersionNotServed);
        Box::pin(async move { u })
    }

    fn submit_vouchers<'a>(
        &'a self,
        batch_id: [u8; 16],
        client_state: [u8; 16],
        vouchers: &'a [Vec<u8>],
    ) -> BoxFuture<'a, Result<SubmitAck, RpcError>> {
        let mut w = self.world();
        w.submitted.push(vouchers.to_vec());
        w.client_states.push(client_state);
        drop(w);
        let ack = SubmitAck { batch_id: batch_id.to_vec(), accepted: vouchers.len() as u32 };
        Box::pin(async move { Ok(ack) })
    }

    fn get_checkpoint(&self) -> BoxFuture<'_, Result<Received<CheckpointMessage>, RpcError>> {
        let note = self.world().served_note();
        Box::pin(async move { Ok(received(CheckpointMessage { note })) })
    }

    fn get_inclusion_proof(
        &self,
        leaf_index: u64,
        tree_size: u64,
    ) -> BoxFuture<'_, Result<Received<InclusionProofMessage>, RpcError>> {
        let p = self.world().inclusion(leaf_index, tree_size).map(received);
        Box::pin(async move { p })
    }

    fn get_consistency_proof(
        &self,
        old_size: u64,
        new_size: u64,
    ) -> BoxFuture<'_, Result<Received<ConsistencyProofMessage>, RpcError>> {
        let p = self.world().consistency(old_size, new_size).map(received);
        Box::pin(async move { p })
    }

    fn get_notices(&self) -> BoxFuture<'_, Result<Vec<vouchsafe_client::Notice>, RpcError>> {
        Box::pin(async move { Ok(Vec::new()) })
    }

    fn submit_appeal<'a>(
        &'a self,
        _notice_id: u64,
        _text: &'a str,
    ) -> BoxFuture<'a, Result<vouchsafe_client::AppealAck, RpcError>> {
        Box::pin(async move { Err(RpcError::AppealRefused { code: "NOT_FOUND", message: "no such notice".into() }) })
    }
}

/// A note's text with one byte changed (for tampering tests).
pub fn flip(bytes: &[u8], i: usize) -> Vec<u8> {
    let mut b = bytes.to_vec();
    b[i] ^= 0x01;
    b
}

/// Keeps the `Note` import used (parsing a served note in tests).
pub fn parse_note(n: &[u8]) -> Note {
    Note::parse(n).unwrap()
}
