//! The network client: sync, scan, submit.

use core::fmt;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use rand::SeedableRng as _;
use rand_core::CryptoRng;
use vouchsafe_phash::{AssociatedData, PhashError, QualityReason, QualityVerdict};
use vouchsafe_protocol::client::{ClientSession, VoucherKind as ProtoKind};
use zeroize::Zeroizing;

use crate::config::ClientConfig;
use crate::error::{ClientError, Result};
use crate::files;
use crate::outbox::Outbox;
use crate::store::{self, LoadedTable};
use crate::transport::{GrpcTransport, RpcError, Transport};
use crate::verify::{self, TableAssembler, VerifiedManifest};

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
    /// Root (compare it with the public append-only table log).
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
        let dir = config.data_dir.clone();
        let service = config.service_id.clone();
        let point_cache = config.point_cache;
        let mut rng_src = rng;
        let (dir_lock, loaded, outbox, rng_src) = blocking(move || {
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
            let loaded = store::load_table(&dir, &service, point_cache)?;
            let active = match loaded {
                Some(l) => {
                    let state = with_rng_src(&mut rng_src, |r| store::ensure_state(&dir, &l, r))??;
                    let session = ClientSession::new(state)?;
                    Some(Active { loaded: Arc::new(l), session })
                }
                None => None,
            };
            let outbox = Outbox::open(&dir.join("outbox"))?;
            Ok((lock_file, active, outbox, rng_src))
        })
        .await?;
        Ok(Client {
            inner: Arc::new(Inner {
                config,
                transport,
                active: Mutex::new(loaded),
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

    /// Brings the table up to date: GetManifest, verify it (root, parameters, order), then nothing (same version),
    /// an incremental update (older version of the same epoch) or a full verified download (first sync, another
    /// epoch, or the server cannot produce an update). The verified table is persisted before it is used, and the
    /// state for its order is created if needed. On any verification failure the held table stays in use.
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
        let service = self.inner.config.service_id.clone();
        let max_slots = self.inner.config.max_table_slots;
        let verified = blocking(move || verify::verify_manifest(&info, &service, max_slots)).await?;
        let now = unix_seconds(SystemTime::now());
        if now > verified.order().not_after() {
            return Err(ClientError::NoActiveOrder { reason: "the order has expired" });
        }
        if now < verified.order().not_before() {
            return Err(ClientError::NoActiveOrder { reason: "the order is not yet valid" });
        }
        let current = lock(&self.inner.active)?.as_ref().map(|a| a.loaded.clone());
        let want = verified.manifest().table_version;
        if let Some(cur) = current.filter(|c| c.table().params() == &verified.manifest().params) {
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
                    let order = verified.order().clone();
                    let loaded = blocking(move || {
                        let table = verify::apply_update(cur.table(), &info)?;
                        Ok(LoadedTable::new(table, order))
                    })
                    .await?;
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
        let point_cache = self.inner.config.point_cache;
        let loaded = blocking(move || {
            let table = if point_cache { asm.finish_with_point_cache()? } else { asm.finish()? };
            Ok(LoadedTable::new(table, order))
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

    /// Scans one image attachment before it is sent: hashes it (the order's hash configuration), applies the
    /// quality gate, builds the associated data (visual derivative, both hashes, `attachment_ref`, `time`) and
    /// makes a voucher (null if the image failed the gate, could not be read, or was already vouchered). The
    /// updated state is persisted before the voucher is queued in the durable outbox; [`Client::submit`] sends it.
    ///
    /// Refused with [`ClientError::NoActiveOrder`] when no verified table is held or `time` is outside the order's
    /// validity window: then nothing is hashed or queued, and the attachment is sent as usual.
    pub async fn scan(
        &self,
        image: impl Into<Image>,
        attachment_ref: [u8; 32],
        time: SystemTime,
    ) -> Result<ScanOutcome> {
        let image = image.into();
        let inner = self.inner.clone();
        blocking(move || inner.scan(image, attachment_ref, time)).await
    }

    /// Sends the outbox in batches of at most `max_batch` vouchers. Each batch's 16-byte id is chosen once and
    /// stored with it, so a retry (after a timeout, UNAVAILABLE, a crash) never counts twice. Transient failures are
    /// retried with exponential backoff up to `max_retries`; a batch leaves the outbox only after its
    /// acknowledgement. Vouchers of an order that is no longer the current one are discarded.
    pub async fn submit(&self) -> Result<SubmitReport> {
        let _g = self.inner.submit_lock.lock().await;
        let mut report = SubmitReport::default();
        let current = lock(&self.inner.active)?.as_ref().map(|a| *a.loaded.order().order_id());
        if let Some(order) = current {
            let inner = self.inner.clone();
            report.discarded = blocking(move || lock(&inner.outbox)?.discard_other_orders(&order)).await?;
        }
        loop {
            let inner = self.inner.clone();
            let batch = blocking(move || {
                let mut o = lock(&inner.outbox)?;
                let mut rng = lock(&inner.rng)?;
                with_rng_src(&mut rng, |r| o.next_batch(inner.config.max_batch, r))?
            })
            .await?;
            let Some(batch) = batch else { break };
            let ack = self.call(|t| t.submit_vouchers(batch.id, &batch.vouchers)).await?;
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

impl Inner {
    fn scan(&self, image: Image, attachment_ref: [u8; 32], time: SystemTime) -> Result<ScanOutcome> {
        let (cfg, _) = {
            let g = lock(&self.active)?;
            let a =
                g.as_ref().ok_or(ClientError::NoActiveOrder { reason: "no verified table yet (call sync first)" })?;
            (a.loaded.order().hash_config(), ())
        };
        let secs = unix_seconds(time);
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
        let a = g.as_mut().ok_or(ClientError::NoActiveOrder { reason: "no verified table yet (call sync first)" })?;
        if a.loaded.order().hash_config() != cfg {
            return Err(ClientError::NoActiveOrder { reason: "the order changed during the scan; scan again" });
        }
        if !a.loaded.order().is_active_at(secs) {
            return Err(ClientError::NoActiveOrder { reason: "the time is outside the order's validity window" });
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
        let encoded = made.voucher.encode();
        drop(g);
        let mut o = lock(&self.outbox)?;
        o.push(order_id, epoch, &encoded)?;
        Ok(ScanOutcome { kind, null_reason, queued: o.len() })
    }
}
