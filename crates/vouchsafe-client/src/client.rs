//! The network client: sync, scan, submit.

use core::fmt;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::SeedableRng as _;
use rand_core::CryptoRng;
use vouchsafe_log::{ClientLogState, ConsistencyProof, InclusionProof, Leaf, TreeHead, VerifiedCheckpoint};
use vouchsafe_orders::VerifiedRevocation;
use vouchsafe_phash::{AssociatedData, PhashError, QualityReason, QualityVerdict};
use vouchsafe_protocol::client::{ClientSession, VoucherKind as ProtoKind};
use zeroize::Zeroizing;

use crate::config::ClientConfig;
use crate::error::{ClientError, Result};
use crate::files;
use crate::outbox::Outbox;
use crate::store::{self, LoadedTable};
use crate::transport::{GrpcTransport, RpcError, Transport};
use crate::verify::{self, MAX_REVOCATIONS, ScanContext, TableAssembler, VerifiedManifest};

/// An image to scan: encoded bytes (PNG or JPEG) or a file path.
#[derive(Clone)]
pub enum Image {
    /// The encoded image in memory.
    Bytes(Vec<u8>),
    /// A file to read.
    File(PathBuf),
}

impl fmt::Debug for Image {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Image::Bytes(b) => write!(f, "Image::Bytes({} bytes)", b.len()),
            Image::File(_) => f.write_str("Image::File(<path>)"),
        }
    }
}

impl From<Vec<u8>> for Image {
    fn from(b: Vec<u8>) -> Self {
        Image::Bytes(b)
    }
}
impl From<&[u8]> for Image {
    fn from(b: &[u8]) -> Self {
        Image::Bytes(b.to_vec())
    }
}
impl From<PathBuf> for Image {
    fn from(p: PathBuf) -> Self {
        Image::File(p)
    }
}
impl From<&Path> for Image {
    fn from(p: &Path) -> Self {
        Image::File(p.to_path_buf())
    }
}

/// Which kind of voucher the device made. Only the device knows this; the server cannot tell the kinds apart, and
/// this value must never be sent to it (or to anything it can read, such as uploaded logs or analytics).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VoucherKind {
    /// A real voucher: it opens on the server if and only if the image is in the table.
    Real,
    /// A synthetic voucher (it always opens, to hide the real match count below the threshold).
    Synthetic,
    /// A null voucher (never opens): see [`NullReason`].
    Null,
}

/// Why a null voucher was made.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NullReason {
    /// The same image (same primary hash) was already vouchered under this order.
    RepeatedImage,
    /// The image failed the hash quality gate.
    QualityGate(QualityReason),
    /// The image could not be read or decoded (not PNG/JPEG, corrupt, too large).
    Unreadable,
}

/// What [`Client::scan`] did. It never says whether the image matched: the device cannot know that.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScanOutcome {
    /// The kind of voucher made and queued.
    pub kind: VoucherKind,
    /// For a null voucher, why.
    pub null_reason: Option<NullReason>,
    /// Vouchers waiting in the outbox after queuing this one.
    pub queued: usize,
}

/// How [`Client::sync`] brought the table up to date.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncKind {
    /// The held table was already the current version.
    UpToDate,
    /// An incremental update was applied.
    Incremental,
    /// The whole table was downloaded.
    Full,
}

/// Result of [`Client::sync`].
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncReport {
    /// What was done.
    pub kind: SyncKind,
    /// Protobuf bytes received from the server by this sync (manifest, update or chunks).
    pub bytes_received: u64,
    /// Epoch of the table now held.
    pub epoch: u64,
    /// Version of the table now held.
    pub table_version: u64,
}

/// Result of [`Client::submit`].
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SubmitReport {
    /// Batches acknowledged by this call.
    pub batches: usize,
    /// Vouchers acknowledged by this call.
    pub vouchers: usize,
    /// Vouchers of an order that is no longer current, dropped without sending.
    pub discarded: usize,
    /// Vouchers still in the outbox.
    pub remaining: usize,
}

/// Public facts about the table held (all of it is the same for every device).
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableInfo {
    /// Epoch.
    pub epoch: u64,
    /// Version.
    pub table_version: u64,
    /// Root (the signed manifest that states it is in the transparency log).
    pub root: [u8; 32],
    /// Order id.
    pub order_id: [u8; 16],
    /// Order validity start, Unix seconds.
    pub not_before: i64,
    /// Order validity end, Unix seconds.
    pub not_after: i64,
    /// Slot count m.
    pub slot_count: u32,
    /// Whether the slots are held decompressed ([`crate::ClientConfig::point_cache`]).
    pub point_cache: bool,
}

type DynRng = dyn CryptoRng + Send;

enum RngSource {
    /// A fresh ChaCha generator seeded from the OS for every operation.
    Os,
    /// Injected (tests).
    Injected(Box<DynRng>),
}

struct Active {
    loaded: Arc<LoadedTable>,
    session: ClientSession,
}

struct Inner {
    config: ClientConfig,
    transport: Box<dyn Transport>,
    active: Mutex<Option<Active>>,
    /// Every verified revocation the device knows (persisted in `revocations.bin`).
    revocations: Mutex<Vec<VerifiedRevocation>>,
    /// The device's view of the transparency log (its newest checkpoint persisted in `checkpoint.bin`).
    log: Mutex<ClientLogState>,
    outbox: Mutex<Outbox>,
    rng: Mutex<RngSource>,
    sync_lock: tokio::sync::Mutex<()>,
    submit_lock: tokio::sync::Mutex<()>,
    _dir_lock: File,
}

/// The vouchsafe client of one account. Cheap to clone (all clones share one state); every method takes `&self`
/// and may be called from any task. Holds an exclusive lock on its data directory while alive.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("endpoint", &self.inner.config.endpoint)
            .field("service_id", &self.inner.config.service_id)
            .field("token", &"<redacted>")
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> Result<MutexGuard<'_, T>> {
    m.lock().map_err(|_| ClientError::Task)
}

fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

fn now_seconds() -> i64 {
    unix_seconds(SystemTime::now())
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|_| ClientError::Task)?
}

enum SyncStep {
    Done(SyncReport),
    /// The table version disappeared while streaming: fetch the manifest again.
    Restart,
}

impl Client {
    /// Opens the client: validates the configuration, locks the data directory, reloads and revalidates the stored
    /// table (a stored table that no longer validates is refused with an error), its order's state and the outbox.
    /// Does not touch the network (the connection is made lazily). Randomness comes from the operating system.
    pub async fn open(config: ClientConfig) -> Result<Client> {
        let transport = GrpcTransport::new(&config)?;
        Self::open_inner(config, Box::new(transport), RngSource::Os).await
    }

    /// Like [`Client::open`] with an injected random generator (for deterministic tests; production code uses
    /// [`Client::open`]).
    pub async fn open_with_rng(config: ClientConfig, rng: impl CryptoRng + Send + 'static) -> Result<Client> {
        let transport = GrpcTransport::new(&config)?;
        Self::open_inner(config, Box::new(transport), RngSource::Injected(Box::new(rng))).await
    }

    /// Like [`Client::open`] over another [`Transport`] (e.g. [`GrpcTransport::with_channel`] to an in-memory
    /// server). `config.endpoint` and the TLS settings are then the transport's business and are not used.
    pub async fn open_with_transport(config: ClientConfig, transport: impl Transport) -> Result<Client> {
        Self::open_inner(config, Box::new(transport), RngSource::Os).await
    }

    /// [`Client::open_with_transport`] with an injected random generator (deterministic tests).
    pub async fn open_with_transport_and_rng(
        config: ClientConfig,
        transport: impl Transport,
        rng: impl CryptoRng + Send + 'static,
    ) -> Result<Client> {
        Self::open_inner(config, Box::new(transport), RngSource::Injected(Box::new(rng))).await
    }

    async fn open_inner(config: ClientConfig, transport: Box<dyn Transport>, rng: RngSource) -> Result<Client> {
        if config.max_batch == 0 {
            return Err(ClientError::Config { what: "max_batch must be at least 1" });
        }
        if config.submit_interval < Duration::from_secs(1) {
            return Err(ClientError::Config { what: "submit_interval must be at least 1 s" });
        }
        let policy = config.anchors.policy()?;
        let cfg = config.clone();
        let mut rng_src = rng;
        let (dir_lock, loaded, outbox, revocations, log, rng_src) = blocking(move || {
            let dir = cfg.data_dir.clone();
            files::create_private_dir(&dir)?;
            let lock_file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(dir.join("lock"))
                .map_err(ClientError::io("opening the data directory lock"))?;
            match lock_file.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => return Err(ClientError::DataDirLocked),
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(ClientError::Io { op: "locking the data directory", kind: e.kind() });
                }
            }
            let log = match store::load_checkpoint(&dir)? {
                Some(note) => ClientLogState::restore(policy, &note).map_err(|_| ClientError::Storage {
                    file: "checkpoint",
                    reason: "the persisted checkpoint does not verify under the pinned log and witness keys",
                })?,
                None => ClientLogState::new(policy),
            };
            let revocations = store::load_revocations(&dir, &cfg.anchors.authorities)?;
            let loaded = store::load_table(&dir, &cfg)?;
            let active = match loaded {
                Some(l) => {
                    let state = with_rng_src(&mut rng_src, |r| store::ensure_state(&dir, &l, r))??;
                    let session = ClientSession::new(state)?;
                    Some(Active { loaded: Arc::new(l), session })
                }
                None => None,
            };
            let outbox = Outbox::open(&dir.join("outbox"))?;
            Ok((lock_file, active, outbox, revocations, log, rng_src))
        })
        .await?;
        Ok(Client {
            inner: Arc::new(Inner {
                config,
                transport,
                active: Mutex::new(loaded),
                revocations: Mutex::new(revocations),
                log: Mutex::new(log),
                outbox: Mutex::new(outbox),
                rng: Mutex::new(rng_src),
                sync_lock: tokio::sync::Mutex::new(()),
                submit_lock: tokio::sync::Mutex::new(()),
                _dir_lock: dir_lock,
            }),
        })
    }

    /// Public facts about the table held, if any.
    pub fn table_info(&self) -> Option<TableInfo> {
        let g = lock(&self.inner.active).ok()?;
        let a = g.as_ref()?;
        let m = a.loaded.table().manifest();
        Some(TableInfo {
            epoch: m.params.epoch,
            table_version: m.table_version,
            root: a.loaded.table().root(),
            order_id: *a.loaded.order().order_id(),
            not_before: a.loaded.order().not_before(),
            not_after: a.loaded.order().not_after(),
            slot_count: m.params.slot_count,
            point_cache: a.loaded.table().has_point_cache(),
        })
    }

    /// Vouchers waiting to be submitted.
    pub fn outbox_len(&self) -> usize {
        lock(&self.inner.outbox).map(|o| o.len()).unwrap_or(0)
    }

    /// The tree head of the newest transparency-log checkpoint this device verified (persisted; `None` before the
    /// first sync).
    pub fn log_tree_head(&self) -> Option<TreeHead> {
        lock(&self.inner.log).ok()?.latest().map(VerifiedCheckpoint::tree_head)
    }

    /// The verified order of the table held, if any (whether it is active now is [`Client::check_scan`]'s
    /// question).
    pub fn order(&self) -> Option<vouchsafe_orders::VerifiedOrder> {
        lock(&self.inner.active).ok()?.as_ref().map(|a| a.loaded.order().clone())
    }

    /// Asks, without hashing anything, whether [`Client::scan`] would scan in `context` at `time`: a verified
    /// table is held and its order is usable for this account and covers the conversation
    /// ([`verify::check_scan`] with every known revocation, at `time` and at the device's clock). Apps may call it
    /// to skip work; `scan` asks the same itself.
    pub fn check_scan(&self, context: &ScanContext, time: SystemTime) -> Result<()> {
        self.inner.check_scan(context, unix_seconds(time))
    }

    /// Adds a signed revocation the app learnt by its own means (push message, app update, the log): verified
    /// under the pinned keyring ([`ClientError::Order`] if it does not decode or verify, nothing stored), persisted,
    /// and effective at once: if it names the order held, the next `scan` and `submit` refuse
    /// ([`vouchsafe_orders::OrderError::Revoked`]). Returns whether it ends the order held.
    pub async fn add_revocation(&self, signed_revocation: &[u8]) -> Result<bool> {
        let inner = self.inner.clone();
        let bytes = signed_revocation.to_vec();
        blocking(move || {
            let r = inner.config.anchors.authorities.verify_revocation_bytes(&bytes).map_err(ClientError::Order)?;
            let ends_held = lock(&inner.active)?.as_ref().is_some_and(|a| {
                let o = a.loaded.order();
                r.order_id() == o.order_id() && r.authority_key_id() == o.authority_key_id()
            });
            inner.merge_revocations(vec![r])?;
            Ok(ends_held)
        })
        .await
    }

    /// Brings the table up to date: GetManifest; verify the signed order, the revocations, the service, the Centre
    /// key, the account's classes, the validity window, the parameters, the envelope and the signed manifest
    /// ([`verify::verify_manifest`]; revocations the server sent are kept even if a later check fails); then the
    /// transparency log: the newest checkpoint (log signature, witness quorum, freshness if configured), consistent
    /// with the one persisted (no rollback, no split view), persisted atomically, and the order's and the
    /// manifest's leaves included under it. Only then nothing (same version), an incremental update (older version
    /// of the same epoch; its signed manifest verified and included too) or a full verified download. The
    /// verified table is persisted before it is used, and the state for its order is created if needed. On any
    /// failure the held table stays (and `scan` keeps asking whether its order is still active).
    pub async fn sync(&self) -> Result<SyncReport> {
        let _g = self.inner.sync_lock.lock().await;
        let mut bytes = 0u64;
        for _ in 0..3 {
            match self.sync_once(&mut bytes).await? {
                SyncStep::Done(r) => return Ok(r),
                SyncStep::Restart => continue,
            }
        }
        Err(ClientError::Server { code: "NOT_FOUND" })
    }

    /// One RPC with the configured retries: transient failures are retried after the backoff.
    async fn call<'a, T, F>(&'a self, mut f: F) -> std::result::Result<T, RpcError>
    where
        F: FnMut(&'a dyn Transport) -> crate::transport::BoxFuture<'a, std::result::Result<T, RpcError>>,
    {
        let mut attempt = 0;
        loop {
            match f(self.inner.transport.as_ref()).await {
                Ok(r) => return Ok(r),
                Err(e) if e.is_retryable() && attempt < self.inner.config.max_retries => {
                    tokio::time::sleep(self.inner.config.backoff(attempt)).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn sync_once(&self, bytes: &mut u64) -> Result<SyncStep> {
        let manifest = self.call(|t| t.get_manifest()).await?;
        *bytes = bytes.saturating_add(manifest.wire_bytes);
        let info = manifest.message;
        let inner = self.inner.clone();
        let verified = blocking(move || inner.verify_announced(&info)).await?;

        // The transparency log, before any table byte is used.
        let checkpoint = self.advance_log(bytes).await?;
        self.check_included(&verified.order_leaf()?, verified.order_leaf_index(), &checkpoint, bytes).await?;
        self.check_included(&verified.manifest_leaf()?, verified.manifest_leaf_index(), &checkpoint, bytes).await?;

        let current = lock(&self.inner.active)?.as_ref().map(|a| a.loaded.clone());
        let want = verified.manifest().table_version;
        if let Some(cur) =
            current.filter(|c| c.table().params() == &verified.manifest().params && c.order() == verified.order())
        {
            let held = cur.table().manifest().table_version;
            if held == want {
                if cur.table().root() != verified.root() {
                    return Err(ClientError::Verification {
                        reason: "the server announces another root for the version held",
                    });
                }
                return Ok(SyncStep::Done(self.report(SyncKind::UpToDate, *bytes, &cur)));
            }
            if held > want {
                return Err(ClientError::Verification {
                    reason: "the server offers an older table version than the one held (rollback)",
                });
            }
            let upd = self.call(|t| t.get_update(held)).await;
            match upd {
                Ok(u) => {
                    *bytes = bytes.saturating_add(u.wire_bytes);
                    let info = u.message;
                    if info.to_version < want {
                        return Err(ClientError::Verification {
                            reason: "the update ends before the manifest's version",
                        });
                    }
                    // The server moved on since the manifest: start again from the manifest (and its checks).
                    if info.to_version > want {
                        return Ok(SyncStep::Restart);
                    }
                    let order = verified.order().clone();
                    let expected = verified.manifest().clone();
                    let index = info.manifest_leaf_index;
                    let (table, signed) = blocking(move || {
                        let (table, signed) = verify::verify_update(&order, cur.table(), &info)?;
                        if table.manifest() != &expected {
                            return Err(ClientError::Verification {
                                reason: "the update does not produce the manifest the server announced",
                            });
                        }
                        Ok((table, signed))
                    })
                    .await?;
                    self.check_included(&verify::manifest_leaf(&signed)?, index, &checkpoint, bytes).await?;
                    let loaded = LoadedTable::new(table, verified.order().clone(), signed);
                    let loaded = self.install(loaded).await?;
                    return Ok(SyncStep::Done(self.report(SyncKind::Incremental, *bytes, &loaded)));
                }
                // The server's history no longer reaches our version (NOT_FOUND): full download. A server older
                // than this client answered FAILED_PRECONDITION for that too; so that such a server cannot keep
                // this device on a stale table, FAILED_PRECONDITION here also falls back to the full download,
                // which ends the sync with "no active order" (StreamTable answers FAILED_PRECONDITION) if that
                // is what the server meant. The manifest was verified moments ago, so the detour is rare.
                Err(RpcError::VersionNotServed | RpcError::NoActiveOrder) => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.full_download(verified, bytes).await
    }

    /// GetCheckpoint, then (if the tree grew) GetConsistencyProof from the persisted size; the log state advances
    /// only along a verified proof (rollback, split view, a bad proof or too few cosignatures are refused), the new
    /// checkpoint is persisted before it is used, and its freshness is checked if configured.
    async fn advance_log(&self, bytes: &mut u64) -> Result<VerifiedCheckpoint> {
        let cp = self.call(|t| t.get_checkpoint()).await?;
        *bytes = bytes.saturating_add(cp.wire_bytes);
        let note = cp.message.note;
        let offered = self.inner.config.anchors.policy()?.verify_checkpoint(&note)?.tree_head();
        let held = lock(&self.inner.log)?.tree_head();
        let proof = if held.size == 0 || offered.size <= held.size {
            // Nothing to prove (the empty tree, or the same size), or a rollback `advance` refuses by itself.
            ConsistencyProof::default()
        } else {
            let p = self.call(|t| t.get_consistency_proof(held.size, offered.size)).await?;
            *bytes = bytes.saturating_add(p.wire_bytes);
            if p.message.old_size != held.size || p.message.new_size != offered.size {
                return Err(ClientError::Verification { reason: "the consistency proof is for other tree sizes" });
            }
            ConsistencyProof::decode(&p.message.proof)?
        };
        let inner = self.inner.clone();
        blocking(move || {
            let mut state = lock(&inner.log)?.clone();
            let latest = state.advance(&note, &proof)?.clone();
            store::save_checkpoint(&inner.config.data_dir, latest.note())?;
            *lock(&inner.log)? = state;
            if let Some(age) = inner.config.anchors.max_checkpoint_age {
                latest.check_fresh(u64::try_from(now_seconds()).unwrap_or(0), age.as_secs())?;
            }
            Ok(latest)
        })
        .await
    }

    /// GetInclusionProof for `leaf` at `index` under `checkpoint`, verified.
    async fn check_included(
        &self,
        leaf: &Leaf,
        index: u64,
        checkpoint: &VerifiedCheckpoint,
        bytes: &mut u64,
    ) -> Result<()> {
        let size = checkpoint.tree_head().size;
        if index >= size {
            return Err(ClientError::Log(vouchsafe_log::Error::OutOfRange { index, size }));
        }
        let p = self.call(|t| t.get_inclusion_proof(index, size)).await?;
        *bytes = bytes.saturating_add(p.wire_bytes);
        if p.message.leaf_index != index || p.message.tree_size != size {
            return Err(ClientError::Verification { reason: "the inclusion proof is for another leaf or tree size" });
        }
        let proof = InclusionProof::decode(&p.message.proof)?;
        vouchsafe_log::verify_inclusion(leaf, index, &proof, checkpoint)?;
        Ok(())
    }

    async fn full_download(&self, verified: VerifiedManifest, bytes: &mut u64) -> Result<SyncStep> {
        let version = verified.manifest().table_version;
        let mut asm = TableAssembler::new(&verified);
        let mut attempt = 0u32;
        let timeout = self.inner.config.request_timeout;
        while let Some(first) = asm.next_missing() {
            let outcome: std::result::Result<(), StreamErr> = async {
                let mut stream = self.inner.transport.stream_table(version, first).await?;
                loop {
                    let msg = tokio::time::timeout(timeout, stream.next_chunk())
                        .await
                        .map_err(|_| RpcError::Unavailable { code: "DEADLINE_EXCEEDED" })??;
                    let Some(msg) = msg else { return Ok(()) };
                    *bytes = bytes.saturating_add(msg.wire_bytes);
                    // A chunk that fails verification refuses the whole download, with the precise reason.
                    asm.add(msg.message.index, &msg.message.chunk).map_err(StreamErr::Verify)?;
                }
            }
            .await;
            match outcome {
                Ok(()) if asm.next_missing().is_none() => break,
                // The stream ended early: resume from the first missing chunk.
                Ok(()) => {}
                Err(StreamErr::Verify(e)) => return Err(e),
                // The version is no longer served (a reload replaced it): start again from the manifest.
                Err(StreamErr::Rpc(RpcError::VersionNotServed)) => return Ok(SyncStep::Restart),
                Err(StreamErr::Rpc(e)) if e.is_retryable() => {}
                Err(StreamErr::Rpc(e)) => return Err(e.into()),
            }
            if attempt >= self.inner.config.max_retries {
                return Err(ClientError::Unavailable { code: "table stream incomplete after retries" });
            }
            tokio::time::sleep(self.inner.config.backoff(attempt)).await;
            attempt += 1;
        }
        let order = verified.order().clone();
        let signed = verified.signed_manifest().clone();
        let point_cache = self.inner.config.point_cache;
        let loaded = blocking(move || {
            let table = if point_cache { asm.finish_with_point_cache()? } else { asm.finish()? };
            Ok(LoadedTable::new(table, order, signed))
        })
        .await?;
        let loaded = self.install(loaded).await?;
        Ok(SyncStep::Done(self.report(SyncKind::Full, *bytes, &loaded)))
    }

    fn report(&self, kind: SyncKind, bytes: u64, t: &LoadedTable) -> SyncReport {
        let m = t.table().manifest();
        SyncReport { kind, bytes_received: bytes, epoch: m.params.epoch, table_version: m.table_version }
    }

    /// Persists a verified table, makes sure its order has a state, then swaps both in.
    async fn install(&self, loaded: LoadedTable) -> Result<Arc<LoadedTable>> {
        let inner = self.inner.clone();
        blocking(move || {
            let dir = &inner.config.data_dir;
            store::save_table(dir, &loaded)?;
            let mut active = lock(&inner.active)?;
            let same_order = active.as_ref().is_some_and(|a| a.session.state().order_id() == loaded.order().order_id());
            let loaded = Arc::new(loaded);
            match active.take() {
                Some(a) if same_order => *active = Some(Active { loaded: loaded.clone(), session: a.session }),
                _ => {
                    let state = {
                        let mut rng = lock(&inner.rng)?;
                        with_rng_src(&mut rng, |r| store::ensure_state(dir, &loaded, r))??
                    };
                    *active = Some(Active { loaded: loaded.clone(), session: ClientSession::new(state)? });
                }
            }
            Ok(loaded)
        })
        .await
    }

    /// Scans one image attachment of the conversation `context` before it is sent: hashes it (the order's hash
    /// configuration), applies the quality gate, builds the associated data (visual derivative, both hashes,
    /// `attachment_ref`, `time`) and makes a voucher (null if the image failed the gate, could not be read, or was
    /// already vouchered). The updated state is persisted before the voucher is queued in the durable outbox;
    /// [`Client::submit`] sends it.
    ///
    /// Before anything is hashed, and again before the voucher is made: a verified table is held
    /// ([`ClientError::NoActiveOrder`] otherwise), and its order is for this service, names the pinned Centre,
    /// excludes none of the account's classes, is active at `time` and at the device's clock with every known
    /// revocation, and covers `context` ([`verify::check_scan`]: [`ClientError::WrongService`],
    /// [`ClientError::UntrustedCentre`], [`ClientError::Excluded`], [`ClientError::Order`] (`NotYetValid`,
    /// `Expired`, `Revoked`), [`ClientError::OutOfScope`]). On any refusal nothing is hashed or queued, and the
    /// attachment is sent as usual.
    pub async fn scan(
        &self,
        image: impl Into<Image>,
        attachment_ref: [u8; 32],
        time: SystemTime,
        context: &ScanContext,
    ) -> Result<ScanOutcome> {
        let image = image.into();
        let inner = self.inner.clone();
        let context = context.clone();
        blocking(move || inner.scan(image, attachment_ref, time, &context)).await
    }

    /// The account's notices (GetNotices): one per report the provider sent about it, with what happens next and
    /// until when it may appeal. Works with or without an active order; only the account's own notices exist.
    pub async fn notices(&self) -> Result<Vec<crate::transport::Notice>> {
        Ok(self.call(|t| t.get_notices()).await?)
    }

    /// Appeals notice `notice_id` with the user's `text` (1..=4000 bytes). [`ClientError::AppealRefused`] says why
    /// the server refused it (no such notice, deadline passed, already appealed). Not retried automatically after
    /// an ambiguous failure: call [`Client::notices`] and look at `appeal_status` first.
    pub async fn appeal(&self, notice_id: u64, text: &str) -> Result<crate::transport::AppealAck> {
        if text.trim().is_empty() || text.len() > 4000 {
            return Err(ClientError::Config { what: "the appeal text must be 1..=4000 bytes and not blank" });
        }
        match self.inner.transport.submit_appeal(notice_id, text).await {
            Ok(a) => Ok(a),
            Err(e) => Err(e.into()),
        }
    }

    /// Sends the outbox in batches of at most `max_batch` vouchers. Each batch's 16-byte id is chosen once and
    /// stored with it, so a retry (after a timeout, UNAVAILABLE, a crash) never counts twice. Transient failures are
    /// retried with exponential backoff up to `max_retries`; a batch leaves the outbox only after its
    /// acknowledgement. Vouchers of an order that is no longer the current one are discarded.
    ///
    /// Nothing is sent unless the order held is usable now ([`verify::check_order`] with every known revocation,
    /// asked before every batch): after expiry or a revocation `submit` refuses ([`ClientError::Order`], ...) even
    /// if the server would still take vouchers; they stay in the outbox until a new order replaces the old one.
    pub async fn submit(&self) -> Result<SubmitReport> {
        let _g = self.inner.submit_lock.lock().await;
        let mut report = SubmitReport::default();
        let current = lock(&self.inner.active)?.as_ref().map(|a| *a.loaded.order().order_id());
        if let Some(order) = current {
            let inner = self.inner.clone();
            report.discarded = blocking(move || lock(&inner.outbox)?.discard_other_orders(&order)).await?;
        }
        loop {
            if self.outbox_len() == 0 {
                break;
            }
            self.inner.check_submit(now_seconds())?;
            let inner = self.inner.clone();
            let batch = blocking(move || {
                let mut o = lock(&inner.outbox)?;
                let mut rng = lock(&inner.rng)?;
                with_rng_src(&mut rng, |r| o.next_batch(inner.config.max_batch, r))?
            })
            .await?;
            let Some(batch) = batch else { break };
            let ack = self.call(|t| t.submit_vouchers(batch.id, batch.client_state, &batch.vouchers)).await?;
            if ack.batch_id != batch.id || ack.accepted as usize != batch.vouchers.len() {
                return Err(ClientError::Verification { reason: "the acknowledgement does not match the batch" });
            }
            let inner = self.inner.clone();
            let seq = batch.seq;
            let n = blocking(move || lock(&inner.outbox)?.complete(seq)).await?;
            report.batches += 1;
            report.vouchers += n;
        }
        report.remaining = self.outbox_len();
        Ok(report)
    }

    /// Sends the outbox on a schedule that does not follow image arrival: [`Client::submit`] on every tick of a
    /// fixed grid of [`ClientConfig::submit_interval`](crate::ClientConfig::submit_interval) (measured from the
    /// call), until `stop` resolves. A tick whose submission fails (no usable order, the server unreachable after
    /// the retries, ...) is logged and the vouchers wait for the next tick; nothing is lost. Run it once per
    /// account, in the background, instead of calling `submit` after each scan.
    pub async fn run_submissions(&self, stop: impl std::future::Future<Output = ()>) {
        let period = self.inner.config.submit_interval;
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = &mut stop => return,
                _ = ticks.tick() => {}
            }
            match self.submit().await {
                Ok(r) if r.batches > 0 => tracing::debug!(batches = r.batches, vouchers = r.vouchers, "outbox sent"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "outbox not sent; retrying at the next tick"),
            }
        }
    }
}

enum StreamErr {
    Rpc(RpcError),
    Verify(ClientError),
}

impl From<RpcError> for StreamErr {
    fn from(e: RpcError) -> Self {
        StreamErr::Rpc(e)
    }
}

fn with_rng_src<T>(src: &mut RngSource, f: impl FnOnce(&mut DynRng) -> T) -> Result<T> {
    match src {
        RngSource::Os => {
            let mut r =
                rand::rngs::StdRng::try_from_rng(&mut rand::rngs::SysRng).map_err(|_| ClientError::Randomness)?;
            Ok(f(&mut r))
        }
        RngSource::Injected(r) => Ok(f(r.as_mut())),
    }
}

enum Prepared {
    Voucher { primary: Zeroizing<Vec<u8>>, ad: Zeroizing<Vec<u8>> },
    Null(NullReason),
}

const NO_TABLE: ClientError = ClientError::NoActiveOrder { reason: "no verified table yet (call sync first)" };

impl Inner {
    /// The network-free part of sync: the server's revocations are verified and kept (so they apply even if a
    /// later check fails), then the whole manifest is verified with every known revocation.
    fn verify_announced(&self, info: &verify::ManifestInfo) -> Result<VerifiedManifest> {
        let from_server = verify::verify_revocations(&self.config.anchors.authorities, &info.revocations)?;
        self.merge_revocations(from_server)?;
        let known = lock(&self.revocations)?.clone();
        verify::verify_manifest(info, &self.config, &known, now_seconds())
    }

    /// Adds verified revocations to the known ones; persists the set first if it grew.
    fn merge_revocations(&self, new: Vec<VerifiedRevocation>) -> Result<()> {
        let mut known = lock(&self.revocations)?;
        let mut merged = known.clone();
        for r in new {
            if !merged.iter().any(|k| k.signed() == r.signed()) {
                merged.push(r);
            }
        }
        if merged.len() == known.len() {
            return Ok(());
        }
        if merged.len() > MAX_REVOCATIONS {
            return Err(ClientError::Verification { reason: "more revocations than this client keeps" });
        }
        store::save_revocations(&self.config.data_dir, &merged)?;
        *known = merged;
        Ok(())
    }

    /// [`verify::check_scan`] for the order held, at `time` and at the device's clock.
    fn check_scan(&self, context: &ScanContext, time: i64) -> Result<()> {
        let order = lock(&self.active)?.as_ref().map(|a| a.loaded.order().clone()).ok_or(NO_TABLE)?;
        let revocations = lock(&self.revocations)?;
        verify::check_scan(&order, &self.config, &revocations, time, context)?;
        verify::check_scan(&order, &self.config, &revocations, now_seconds(), context)
    }

    /// [`verify::check_order`] for the order held, at `now`.
    fn check_submit(&self, now: i64) -> Result<()> {
        let order = lock(&self.active)?.as_ref().map(|a| a.loaded.order().clone()).ok_or(NO_TABLE)?;
        let revocations = lock(&self.revocations)?;
        verify::check_order(&order, &self.config, &revocations, now)
    }

    fn scan(
        &self,
        image: Image,
        attachment_ref: [u8; 32],
        time: SystemTime,
        context: &ScanContext,
    ) -> Result<ScanOutcome> {
        let secs = unix_seconds(time);
        // Nothing is hashed unless the order held is usable here and now.
        self.check_scan(context, secs)?;
        let (order_id, cfg) = {
            let g = lock(&self.active)?;
            let a = g.as_ref().ok_or(NO_TABLE)?;
            (*a.loaded.order().order_id(), verify::hash_config_of(a.loaded.order())?)
        };
        let hashed = match &image {
            Image::Bytes(b) => vouchsafe_phash::hash_bytes(&cfg, b),
            Image::File(p) => vouchsafe_phash::hash_file(&cfg, p),
        };
        drop(image);
        let prepared = match hashed {
            Ok(h) => match vouchsafe_phash::quality_gate(&cfg, &h) {
                QualityVerdict::Accept => {
                    let ad = AssociatedData::new(&cfg, &h, attachment_ref, u64::try_from(secs).unwrap_or(0))
                        .map_err(ClientError::Hashing)?;
                    Prepared::Voucher {
                        primary: Zeroizing::new(h.primary.to_canonical_bytes()),
                        ad: Zeroizing::new(ad.encode()),
                    }
                }
                QualityVerdict::Reject(r) => Prepared::Null(NullReason::QualityGate(r)),
                _ => Prepared::Null(NullReason::Unreadable),
            },
            Err(
                e @ (PhashError::ConfigMismatch
                | PhashError::HashLength
                | PhashError::Internal(_)
                | PhashError::UnknownConfig { .. }),
            ) => {
                return Err(ClientError::Hashing(e));
            }
            Err(_) => Prepared::Null(NullReason::Unreadable),
        };

        let mut g = lock(&self.active)?;
        let a = g.as_mut().ok_or(NO_TABLE)?;
        if *a.loaded.order().order_id() != order_id {
            return Err(ClientError::NoActiveOrder { reason: "the order changed during the scan; scan again" });
        }
        // Asked again, under the lock the voucher is made under: a revocation may have arrived meanwhile.
        {
            let revocations = lock(&self.revocations)?;
            for t in [secs, now_seconds()] {
                verify::check_scan(a.loaded.order(), &self.config, &revocations, t, context)?;
            }
        }
        let before = a.session.state().clone();
        let table = a.loaded.table();
        let made = {
            let mut rng = lock(&self.rng)?;
            with_rng_src(&mut rng, |r| match &prepared {
                Prepared::Voucher { primary, ad } => a.session.voucher(table, primary, ad, r),
                Prepared::Null(_) => a.session.null_voucher(table, r),
            })??
        };
        // The state must be durable before the voucher can leave the device.
        if let Err(e) = store::save_state(&self.config.data_dir, a.session.state()) {
            a.session = ClientSession::new(before)?;
            return Err(e);
        }
        let (kind, null_reason) = match (made.kind, &prepared) {
            (ProtoKind::Real, _) => (VoucherKind::Real, None),
            (ProtoKind::Synthetic, _) => (VoucherKind::Synthetic, None),
            (ProtoKind::Null, Prepared::Null(r)) => (VoucherKind::Null, Some(*r)),
            (ProtoKind::Null, Prepared::Voucher { .. }) => (VoucherKind::Null, Some(NullReason::RepeatedImage)),
        };
        let order_id = *a.loaded.order().order_id();
        let epoch = table.params().epoch;
        let client_state = a.session.state().state_id()?;
        let encoded = made.voucher.encode();
        drop(g);
        let mut o = lock(&self.outbox)?;
        o.push(order_id, epoch, client_state, &encoded)?;
        Ok(ScanOutcome { kind, null_reason, queued: o.len() })
    }
}
