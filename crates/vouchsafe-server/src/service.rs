//! The domain side of the RPCs: authentication, cheap structural validation, rate limiting, durable intake, and
//! the table views. No gRPC types here; `grpc` converts.

use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use subtle::ConstantTimeEq;
use tokio::sync::Notify;
use vouchsafe_protocol::labels::WIRE_VERSION;
use vouchsafe_protocol::table::TableUpdate;
use vouchsafe_protocol::voucher::Voucher;
use vouchsafe_store::{ClientStateId, DEFAULT_CLIENT_STATE, InsertOutcome, NewBatch, Store, StoreError};

use crate::events::{Audited, Event};

use vouchsafe_log::{Leaf, LeafKind};
use vouchsafe_orders::{SignedManifest, VerifiedRevocation};
use vouchsafe_protocol::table::ServerTable;

use crate::auth::{Account, Authenticator};
use crate::backlog::Backlog;
use crate::config::{ServerConfig, unix_now};
use crate::error::{ErrorChain, Result, ServerError};
use crate::governance::{Governance, load_log_key, load_manifest, parse_witnesses};
use crate::handoff::Handoff;
use crate::ratelimit::RateLimiter;
use crate::table::{ServedTable, TableReload, load_table, read_updates};
use crate::translog::TransLog;

/// The acknowledgement of a stored batch. Depends only on the request envelope and the stored batch's count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ack {
    pub(crate) batch_id: [u8; 16],
    pub(crate) accepted: u32,
}

/// An update for a client, with the served table (manifest, root) of the version it leads to.
pub(crate) struct UpdateView {
    pub(crate) from_version: u64,
    pub(crate) update: Option<TableUpdate>,
    pub(crate) served: Arc<ServedTable>,
}

/// Everything a reload swaps at once: the verified order and chain, the revocations, the served table with its
/// signed manifest, and the order's leaf index. Readers clone it and keep one consistent view for the request.
#[derive(Clone)]
pub(crate) struct Served {
    pub(crate) gov: Arc<Governance>,
    pub(crate) revocations: Arc<Vec<VerifiedRevocation>>,
    pub(crate) table: Arc<ServedTable>,
    pub(crate) order_leaf: u64,
}

/// What was read and verified for a (re)load, before anything is appended to the log or served.
struct Pending {
    gov: Governance,
    revocations: Vec<VerifiedRevocation>,
    table: ServerTable,
    history: Vec<TableUpdate>,
    manifest: SignedManifest,
}

/// Reads and verifies every file of the configuration: order, revocations, releases, table, signed manifest and
/// update history. Nothing is written.
fn read_state(config: &ServerConfig) -> Result<Pending> {
    let gov = Governance::load(config)?;
    let revocations = gov.load_revocations(config)?;
    let table = load_table(&config.table)?;
    gov.check_table(config, &table)?;
    let manifest = load_manifest(&config.manifest_path())?;
    gov.check_manifest(&table, &manifest)?;
    let history = match &config.table_updates {
        Some(p) => read_updates(p)?,
        None => Vec::new(),
    };
    Ok(Pending { gov, revocations, table, history, manifest })
}

fn leaf(kind: LeafKind, bytes: Vec<u8>) -> Result<Leaf> {
    Leaf::new(kind, bytes).map_err(|e| ServerError::Log(e.to_string()))
}

/// The log leaves of a state, in order: the order, the public record of every release of the chain (never the
/// release: it carries the indicator hashes), the manifest, the order's revocations.
fn leaves_of(gov: &Governance, revocations: &[VerifiedRevocation], manifest: &SignedManifest) -> Result<Vec<Leaf>> {
    let mut out = vec![leaf(LeafKind::Order, gov.order().signed().encode())?];
    for r in gov.records() {
        out.push(leaf(LeafKind::Release, r.encode())?);
    }
    out.push(leaf(LeafKind::Manifest, manifest.encode())?);
    for r in revocations {
        out.push(leaf(LeafKind::Revocation, r.signed().encode())?);
    }
    Ok(out)
}

/// Appends what is missing of `p` to the log (persisted, checkpoint signed) and returns the state to serve.
fn commit(p: Pending, log: &mut TransLog) -> Result<Served> {
    let leaves = leaves_of(&p.gov, &p.revocations, &p.manifest)?;
    let idx = log.ensure(&leaves)?;
    let (Some(&order_leaf), Some(&manifest_leaf)) = (idx.first(), idx.last()) else {
        return Err(ServerError::Internal("no log index for the order or the manifest"));
    };
    Ok(Served {
        gov: Arc::new(p.gov),
        revocations: Arc::new(p.revocations),
        table: Arc::new(ServedTable::new(p.table, p.history, p.manifest, manifest_leaf)),
        order_leaf,
    })
}

/// State shared by the RPC handlers and the worker.
pub(crate) struct Shared {
    pub(crate) config: ServerConfig,
    /// The served state; replaced as a whole by [`Shared::reload_table`] and [`Shared::refresh_revocations`].
    served: RwLock<Served>,
    /// Serialises reloads (reading the files, checking, appending to the log, swapping).
    reload: Mutex<()>,
    /// The transparency log.
    pub(crate) log: Mutex<TransLog>,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) wake: Notify,
    /// Freshly stored batches, for the worker to take without reading them back.
    pub(crate) handoff: Handoff,
    auth: Authenticator,
    /// Review, reports, notices and appeals; `None` without `[review]`.
    pub(crate) aftercare: Option<crate::aftercare::Aftercare>,
    /// Wakes the outbox loop (a decision or an appeal queued a message).
    pub(crate) outbox_wake: Notify,
    limiter: RateLimiter,
    voucher_len: usize,
    /// The bound on unprocessed batches (admission control).
    pub(crate) backlog: Arc<Backlog>,
    /// The leakage capture (`worker.capture`); `None` by default.
    pub(crate) capture: Option<crate::capture::CaptureSink>,
    /// The Prometheus metrics (`metrics_listen`), kept whether or not they are served.
    pub(crate) metrics: Arc<crate::metrics::Metrics>,
}

impl Shared {
    /// Verifies every file of the configuration, opens the transparency log (refusing a rewritten one), appends
    /// what it lacks, and makes the state to serve.
    pub(crate) fn open(config: ServerConfig, store: Arc<dyn Store>) -> Result<Self> {
        config.validate()?;
        let pending = read_state(&config)?;
        let key = load_log_key(&config.log.key)?;
        let witnesses = parse_witnesses(&config.log.witnesses)?;
        let mut log = TransLog::open(&config.log.dir, key, witnesses)?;
        log.share_cosignatures(Arc::clone(&store));
        let served = commit(pending, &mut log)?;
        let auth = Authenticator::new(config.accounts.iter().map(|a| {
            let account = Account {
                id: a.account.clone(),
                components: a.components.clone(),
                groups: a.groups.clone(),
                classes: a.classes.clone(),
            };
            (&a.token, account)
        }));
        let limiter = RateLimiter::new(config.limits.rate_vouchers_per_second, config.limits.rate_burst);
        let voucher_len = config.voucher_len(served.gov.order().synthetic_cap());
        let handoff = Handoff::new(config.worker.handoff_bytes);
        let aftercare = crate::aftercare::Aftercare::load(&config)?;
        let backlog = Arc::new(Backlog::new(store.backlog()?));
        let capture = config.worker.capture.as_deref().map(crate::capture::CaptureSink::open).transpose()?;
        Ok(Shared {
            config,
            served: RwLock::new(served),
            reload: Mutex::new(()),
            log: Mutex::new(log),
            store,
            wake: Notify::new(),
            handoff,
            auth,
            aftercare,
            outbox_wake: Notify::new(),
            limiter,
            voucher_len,
            backlog,
            capture,
            metrics: Arc::new(crate::metrics::Metrics::new()),
        })
    }

    /// The state served now.
    pub(crate) fn state(&self) -> Served {
        // A panic cannot leave the slot half-written (it is one store of `Arc`s), so poisoning is ignored.
        self.served.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The table served now.
    pub(crate) fn served(&self) -> Arc<ServedTable> {
        Arc::clone(&self.state().table)
    }

    fn set_state(&self, s: Served) {
        *self.served.write().unwrap_or_else(|e| e.into_inner()) = s;
    }

    pub(crate) fn with_log<T>(&self, f: impl FnOnce(&mut TransLog) -> Result<T>) -> Result<T> {
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut log)
    }

    /// The log's checkpoint note as `GetCheckpoint` serves it, with the other replicas' cosignatures of it from
    /// the store (read at most once a [`crate::translog`] TTL, outside the log's lock, so that a slow or
    /// unreachable database holds up neither the log's other calls nor a reload; a failed read is logged and the
    /// note served as this replica has it). Blocking.
    pub(crate) fn checkpoint(&self) -> Result<String> {
        if let Some((store, origin, key)) = self.with_log(|l| Ok(l.take_shared_read(std::time::Instant::now())))? {
            match store.log_cosignatures(&origin, &key) {
                Ok(stored) => self.with_log(|l| l.attach_stored(&key, stored))?,
                Err(e) => {
                    self.metrics.store_error("log.cosignatures");
                    tracing::warn!(error = %ErrorChain(&e), "shared log cosignatures not read; serving this replica's");
                }
            }
        }
        self.with_log(|l| Ok(l.checkpoint()))
    }

    /// Re-reads every file (order, revocations, releases, table, signed manifest, update history), verifies them
    /// as at start, and serves them if the order is the same and the table a later version of the same epoch
    /// (same parameters and blinding key). Anything else is refused and the served state stays, the log included:
    /// a new order or a rebuilt table (new α) is a new epoch and needs a restart, and an older version would roll
    /// clients back. New revocations and releases are logged and take effect even when the table is unchanged.
    pub(crate) fn reload_table(&self) -> Result<TableReload> {
        let _one = self.reload.lock().unwrap_or_else(|e| e.into_inner());
        let refuse = |reason: String| ServerError::TableReload { reason };
        let pending = read_state(&self.config)?;
        let current = self.state();
        if pending.gov.order().signed() != current.gov.order().signed() {
            return Err(refuse("the signed order changed: a new detection order needs a restart".into()));
        }
        let (cur, table) = (&current.table, &pending.table);
        if table.params() != cur.table.params() {
            return Err(refuse(
                "the table file has other epoch parameters (nonce or slot count): a new epoch needs a restart".into(),
            ));
        }
        let same_key: bool = table.key().to_bytes().ct_eq(&*cur.table.key().to_bytes()).into();
        if !same_key {
            return Err(refuse(
                "the table file has another blinding key: a rebuilt table needs a new epoch and a restart".into(),
            ));
        }
        let (from, to) = (cur.version(), table.version());
        if to < from {
            return Err(refuse(format!("the table file is version {to}, older than the served version {from}")));
        }
        if to == from && (table.manifest().root() != cur.root || pending.manifest != cur.signed_manifest) {
            return Err(refuse(format!(
                "the table file is version {to} like the served table but its content or signed manifest differs"
            )));
        }
        let indicators = table.indicator_count();
        let event = Event::TableReload {
            epoch: table.params().epoch,
            from_version: from,
            to_version: to,
            indicators: indicators as u64,
            root: hex::encode(table.manifest().root()),
            revocations: pending.revocations.len() as u64,
        };
        let news = to != from
            || pending.revocations.len() != current.revocations.len()
            || pending.gov.releases().len() != current.gov.releases().len();
        if news {
            // The audit entry is written first: a reload that cannot be recorded does not happen.
            self.store.append_audit(&Audited::new(unix_now(), crate::AUDIT_ACTOR, &event).entry())?;
        }
        let next = self.with_log(|log| commit(pending, log))?;
        self.set_state(next);
        Ok(TableReload { from_version: from, to_version: to, indicators, changed: to != from })
    }

    /// Re-reads the revocations directory; if it holds a revocation not yet known, logs it (leaf, checkpoint)
    /// and serves under it at once. Returns whether anything changed. On an error nothing changes.
    pub(crate) fn refresh_revocations(&self) -> Result<bool> {
        let _one = self.reload.lock().unwrap_or_else(|e| e.into_inner());
        let current = self.state();
        let revocations = current.gov.load_revocations(&self.config)?;
        if revocations.len() == current.revocations.len()
            && revocations.iter().all(|r| current.revocations.iter().any(|c| c.signed() == r.signed()))
        {
            return Ok(false);
        }
        let leaves =
            revocations.iter().map(|r| leaf(LeafKind::Revocation, r.signed().encode())).collect::<Result<Vec<_>>>()?;
        let event = Event::OrderRevocations {
            order: hex::encode(current.gov.order().order_id()),
            revocations: revocations.len() as u64,
        };
        self.store.append_audit(&Audited::new(unix_now(), crate::AUDIT_ACTOR, &event).entry())?;
        self.with_log(|log| log.ensure(&leaves))?;
        tracing::warn!(revocations = revocations.len(), "revocation of the detection order loaded: serving stops");
        self.set_state(Served { revocations: Arc::new(revocations), ..current });
        Ok(true)
    }

    /// The one validity check, for every RPC of the Matching service.
    fn require_active(&self, s: &Served) -> Result<()> {
        s.gov.check_active(unix_now(), &s.revocations)
    }

    /// The current state, if the order is active (GetManifest).
    pub(crate) fn manifest(&self) -> Result<Served> {
        let s = self.state();
        self.require_active(&s)?;
        Ok(s)
    }

    /// Checks a stream request and returns the table of that version with the chunk range to send.
    pub(crate) fn stream_range(
        &self,
        table_version: u64,
        first_chunk: u32,
    ) -> Result<(Arc<ServedTable>, std::ops::Range<u32>)> {
        let s = self.state();
        self.require_active(&s)?;
        let served = s.table;
        let current = served.version();
        if table_version != current {
            return Err(ServerError::TableVersionNotServed { requested: table_version, current });
        }
        let count = served.table.chunk_count();
        if first_chunk >= count {
            return Err(ServerError::ChunkOutOfRange { first: first_chunk, count });
        }
        Ok((served, first_chunk..count))
    }

    /// The update from `from_version` to the current version.
    pub(crate) fn update(&self, from_version: u64) -> Result<UpdateView> {
        let s = self.state();
        self.require_active(&s)?;
        let served = s.table;
        let update = served.update_from(from_version)?;
        Ok(UpdateView { from_version, update, served })
    }

    /// Structural checks that do not depend on matching: exact length, version byte, served epoch.
    fn check_voucher(&self, index: usize, v: &[u8]) -> Result<()> {
        if v.len() != self.voucher_len {
            return Err(ServerError::MalformedVoucher {
                index,
                reason: format!("length {} bytes, expected {}", v.len(), self.voucher_len),
            });
        }
        if v.first() != Some(&WIRE_VERSION) {
            return Err(ServerError::MalformedVoucher { index, reason: "unsupported voucher version".to_owned() });
        }
        let epoch =
            Voucher::peek_epoch(v).map_err(|e| ServerError::MalformedVoucher { index, reason: e.to_string() })?;
        if epoch != self.config.order.epoch {
            return Err(ServerError::MalformedVoucher { index, reason: format!("epoch {epoch} is not served") });
        }
        Ok(())
    }

    /// The device account of an `authorization` header (never a reviewer: the Review API has its own table).
    pub(crate) fn authenticate_device(&self, authorization: Option<&[u8]>) -> Result<&Account> {
        self.auth.authenticate(authorization)
    }

    /// SubmitVouchers: authenticate, check the order and the envelope, admit (backlog bound), rate-limit, store
    /// durably, then acknowledge.
    pub(crate) async fn submit(
        self: &Arc<Self>,
        authorization: Option<&[u8]>,
        batch_id: &[u8],
        client_state: &[u8],
        vouchers: Vec<Vec<u8>>,
    ) -> Result<Ack> {
        let account = self.auth.authenticate(authorization)?;
        let state = self.state();
        self.require_active(&state)?;
        state.gov.permits(&account.components, &account.groups, &account.classes)?;
        let batch_id: [u8; 16] =
            batch_id.try_into().map_err(|_| ServerError::InvalidRequest("batch_id must be exactly 16 bytes"))?;
        let client_state: ClientStateId = match client_state.len() {
            0 => DEFAULT_CLIENT_STATE,
            _ => client_state
                .try_into()
                .map_err(|_| ServerError::InvalidRequest("client_state must be empty or exactly 16 bytes"))?,
        };
        if vouchers.is_empty() {
            return Err(ServerError::InvalidRequest("the batch is empty"));
        }
        let max = self.config.limits.max_vouchers_per_batch;
        if vouchers.len() > max {
            return Err(ServerError::BatchTooLarge { count: vouchers.len(), max });
        }
        for (i, v) in vouchers.iter().enumerate() {
            self.check_voucher(i, v)?;
        }
        let bytes = vouchers.iter().map(|v| v.len() as u64).sum::<u64>();
        let reservation = match self.backlog.reserve(bytes, &self.config.limits) {
            Ok(r) => Some(r),
            Err(full) => {
                // A retry of a batch already stored adds nothing to the backlog: it is answered as usual.
                let store = Arc::clone(&self.store);
                let id = account.id.clone();
                let known = tokio::task::spawn_blocking(move || store.stored_batch(&id, batch_id))
                    .await
                    .map_err(|_| ServerError::Internal("storage task failed"))??;
                if known.is_none() {
                    self.backlog.refused();
                    return Err(full);
                }
                None
            }
        };
        if !self.limiter.try_take(&account.id, vouchers.len(), Instant::now()) {
            return Err(ServerError::RateLimited);
        }
        let account_id = account.id.clone();
        let order_id = *state.gov.order().order_id();
        let max_states = self.config.limits.max_client_states;
        let shared = Arc::clone(self);
        // The reservation is resolved in the blocking task, which runs to its end even if this request is
        // cancelled meanwhile: a stored batch always keeps its share of the bound, one not stored never does.
        let outcome = tokio::task::spawn_blocking(move || {
            let outcome = shared.store.store_batch(&NewBatch {
                account: &account_id,
                client_state,
                batch_id,
                vouchers: &vouchers,
                received_at: unix_now(),
                state_limit: Some((order_id, max_states)),
            });
            if let Ok(InsertOutcome::Inserted { .. }) = outcome {
                if let Some(r) = reservation {
                    r.stored();
                }
                // Only a batch stored just now with exactly these vouchers is handed to the worker in memory.
                shared.handoff.put(&account_id, batch_id, vouchers, Instant::now());
            }
            outcome
        })
        .await
        .map_err(|_| ServerError::Internal("storage task failed"))?;
        let outcome = match outcome {
            Ok(o) => o,
            Err(StoreError::BatchConflict) => return Err(ServerError::BatchConflict),
            Err(StoreError::TooManyClientStates { max }) => return Err(ServerError::TooManyClientStates { max }),
            Err(e) => {
                self.metrics.store_error("intake");
                return Err(e.into());
            }
        };
        let intake = match outcome {
            InsertOutcome::Inserted { .. } => crate::metrics::Intake::Inserted,
            InsertOutcome::Duplicate { .. } => crate::metrics::Intake::Duplicate,
        };
        self.metrics.intake(intake, u64::from(outcome.vouchers()));
        // Under the fixed schedule the worker is not told: when it works must not follow arrivals.
        if self.config.worker.schedule == crate::config::WorkerSchedule::Eager {
            self.wake.notify_one();
        }
        Ok(Ack { batch_id, accepted: outcome.vouchers() })
    }

    /// The backlog now, with its peaks since start.
    pub(crate) fn backlog(&self) -> crate::backlog::BacklogView {
        self.backlog.view()
    }
}
