//! The domain side of the RPCs: authentication, cheap structural validation, rate limiting, durable intake, and
//! the table views. No gRPC types here; `grpc` converts.

use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use subtle::ConstantTimeEq;
use tokio::sync::Notify;
use vouchsafe_protocol::labels::WIRE_VERSION;
use vouchsafe_protocol::table::TableUpdate;
use vouchsafe_protocol::voucher::Voucher;
use vouchsafe_store::{AuditEntry, InsertOutcome, Store};

use crate::auth::Authenticator;
use crate::config::{OrderConfig, ServerConfig, unix_now};
use crate::error::{Result, ServerError};
use crate::handoff::Handoff;
use crate::ratelimit::RateLimiter;
use crate::table::{ServedTable, TableReload, check_table_matches, load_table, read_updates};

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

/// State shared by the RPC handlers and the worker.
pub(crate) struct Shared {
    pub(crate) config: ServerConfig,
    /// The served table; replaced as a whole by [`Shared::reload_table`]. Readers take the `Arc` and keep one
    /// consistent version for the whole request (or worker round).
    served: RwLock<Arc<ServedTable>>,
    /// Serialises reloads (reading the files, checking, swapping).
    reload: Mutex<()>,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) wake: Notify,
    /// Freshly stored batches, for the worker to take without reading them back.
    pub(crate) handoff: Handoff,
    auth: Authenticator,
    limiter: RateLimiter,
    voucher_len: usize,
}

impl Shared {
    pub(crate) fn new(config: ServerConfig, served: ServedTable, store: Arc<dyn Store>) -> Self {
        let auth = Authenticator::new(config.accounts.iter().map(|a| (&a.token, a.account.as_str(), a.excluded)));
        let limiter = RateLimiter::new(config.limits.rate_vouchers_per_second, config.limits.rate_burst);
        let voucher_len = config.voucher_len();
        let handoff = Handoff::new(config.worker.handoff_bytes);
        Shared {
            config,
            served: RwLock::new(Arc::new(served)),
            reload: Mutex::new(()),
            store,
            wake: Notify::new(),
            handoff,
            auth,
            limiter,
            voucher_len,
        }
    }

    /// The table served now.
    pub(crate) fn served(&self) -> Arc<ServedTable> {
        // A panic cannot leave the slot half-written (it is one `Arc` store), so poisoning is ignored.
        Arc::clone(&self.served.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Re-reads the table file and the update history named in the configuration and serves them, if the table
    /// is a later version of the same epoch: same parameters (nonce, slot count, order) and same blinding key.
    /// Anything else is refused and the served table stays: a rebuilt table (new α) is a new epoch and needs a
    /// new configuration and a restart, and an older version would roll clients back.
    pub(crate) fn reload_table(&self) -> Result<TableReload> {
        let _one = self.reload.lock().unwrap_or_else(|e| e.into_inner());
        let refuse = |reason: String| ServerError::TableReload { reason };
        let table = load_table(&self.config.table)?;
        check_table_matches(&self.config, &table)?;
        let history = match &self.config.table_updates {
            Some(p) => read_updates(p)?,
            None => Vec::new(),
        };
        let current = self.served();
        if table.params() != current.table.params() {
            return Err(refuse(
                "the table file has other epoch parameters (nonce or slot count): a new epoch needs a restart".into(),
            ));
        }
        let same_key: bool = table.key().to_bytes().ct_eq(&*current.table.key().to_bytes()).into();
        if !same_key {
            return Err(refuse(
                "the table file has another blinding key: a rebuilt table needs a new epoch and a restart".into(),
            ));
        }
        let (from, to) = (current.version(), table.version());
        let next = ServedTable::new(table, history);
        if to < from {
            return Err(refuse(format!("the table file is version {to}, older than the served version {from}")));
        }
        if to == from {
            if next.root != current.root {
                return Err(refuse(format!(
                    "the table file is version {to} like the served table but its content differs"
                )));
            }
            return Ok(TableReload {
                from_version: from,
                to_version: to,
                indicators: current.table.indicator_count(),
                changed: false,
            });
        }
        let indicators = next.table.indicator_count();
        // The audit entry is written first: a reload that cannot be recorded does not happen.
        let detail = format!(
            "epoch={} from_version={from} to_version={to} indicators={indicators} root={}",
            next.table.params().epoch,
            hex::encode(next.root)
        );
        let entry = AuditEntry { at: unix_now(), actor: crate::AUDIT_ACTOR, action: "table.reload", detail: &detail };
        self.store.append_audit(&entry)?;
        *self.served.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(next);
        Ok(TableReload { from_version: from, to_version: to, indicators, changed: true })
    }

    pub(crate) fn order(&self) -> &OrderConfig {
        &self.config.order
    }

    fn require_active(&self) -> Result<()> {
        if self.config.order.active_at(unix_now()) { Ok(()) } else { Err(ServerError::OrderNotActive) }
    }

    /// The current table (its manifest and root).
    pub(crate) fn manifest(&self) -> Result<Arc<ServedTable>> {
        self.require_active()?;
        Ok(self.served())
    }

    /// Checks a stream request and returns the table of that version with the chunk range to send.
    pub(crate) fn stream_range(
        &self,
        table_version: u64,
        first_chunk: u32,
    ) -> Result<(Arc<ServedTable>, std::ops::Range<u32>)> {
        self.require_active()?;
        let served = self.served();
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
        self.require_active()?;
        let served = self.served();
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

    /// SubmitVouchers: authenticate, check the order and the envelope, rate-limit, store durably, then acknowledge.
    pub(crate) async fn submit(
        self: &Arc<Self>,
        authorization: Option<&[u8]>,
        batch_id: &[u8],
        vouchers: Vec<Vec<u8>>,
    ) -> Result<Ack> {
        let account = self.auth.authenticate(authorization)?;
        self.require_active()?;
        if account.excluded {
            return Err(ServerError::PermissionDenied);
        }
        let batch_id: [u8; 16] =
            batch_id.try_into().map_err(|_| ServerError::InvalidRequest("batch_id must be exactly 16 bytes"))?;
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
        if !self.limiter.try_take(&account.id, vouchers.len(), Instant::now()) {
            return Err(ServerError::RateLimited);
        }
        let account_id = account.id.clone();
        let shared = Arc::clone(self);
        let outcome = tokio::task::spawn_blocking(move || {
            let outcome = shared.store.insert_batch(&account_id, batch_id, &vouchers, unix_now());
            // Only a batch stored just now with exactly these vouchers is handed to the worker in memory.
            if let Ok(InsertOutcome::Inserted { .. }) = outcome {
                shared.handoff.put(&account_id, batch_id, vouchers, Instant::now());
            }
            outcome
        })
        .await
        .map_err(|_| ServerError::Internal("storage task failed"))??;
        self.wake.notify_one();
        Ok(Ack { batch_id, accepted: outcome.vouchers() })
    }
}
