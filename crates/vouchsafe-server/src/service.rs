//! The domain side of the RPCs: authentication, cheap structural validation, rate limiting, durable intake, and
//! the table views. No gRPC types here; `grpc` converts.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::Notify;
use vouchsafe_protocol::labels::WIRE_VERSION;
use vouchsafe_protocol::table::{TableChunk, TableManifest, TableUpdate};
use vouchsafe_protocol::voucher::Voucher;
use vouchsafe_store::{InsertOutcome, Store};

use crate::auth::Authenticator;
use crate::config::{OrderConfig, ServerConfig, unix_now};
use crate::error::{Result, ServerError};
use crate::handoff::Handoff;
use crate::ratelimit::RateLimiter;
use crate::table::ServedTable;

/// The acknowledgement of a stored batch. Depends only on the request envelope and the stored batch's count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ack {
    pub(crate) batch_id: [u8; 16],
    pub(crate) accepted: u32,
}

/// An update for a client, with the manifest of the version it leads to.
pub(crate) struct UpdateView<'a> {
    pub(crate) from_version: u64,
    pub(crate) update: Option<TableUpdate>,
    pub(crate) manifest: &'a TableManifest,
    pub(crate) root: [u8; 32],
}

/// State shared by the RPC handlers and the worker.
pub(crate) struct Shared {
    pub(crate) config: ServerConfig,
    pub(crate) served: ServedTable,
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
        let auth = Authenticator::new(&config.accounts);
        let limiter = RateLimiter::new(config.limits.rate_vouchers_per_second, config.limits.rate_burst);
        let voucher_len = config.voucher_len();
        let handoff = Handoff::new(config.worker.handoff_bytes);
        Shared { config, served, store, wake: Notify::new(), handoff, auth, limiter, voucher_len }
    }

    pub(crate) fn order(&self) -> &OrderConfig {
        &self.config.order
    }

    fn require_active(&self) -> Result<()> {
        if self.config.order.active_at(unix_now()) { Ok(()) } else { Err(ServerError::OrderNotActive) }
    }

    /// The current manifest and root.
    pub(crate) fn manifest(&self) -> Result<(&TableManifest, [u8; 32])> {
        self.require_active()?;
        Ok((&self.served.manifest, self.served.root))
    }

    /// Checks a stream request and returns the chunk range to send.
    pub(crate) fn stream_range(&self, table_version: u64, first_chunk: u32) -> Result<std::ops::Range<u32>> {
        self.require_active()?;
        let current = self.served.version();
        if table_version != current {
            return Err(ServerError::TableVersionNotServed { requested: table_version, current });
        }
        let count = self.served.table.chunk_count();
        if first_chunk >= count {
            return Err(ServerError::ChunkOutOfRange { first: first_chunk, count });
        }
        Ok(first_chunk..count)
    }

    /// Chunk `index` of the current table.
    pub(crate) fn chunk(&self, index: u32) -> Option<TableChunk> {
        self.served.table.chunk(index)
    }

    /// The update from `from_version` to the current version.
    pub(crate) fn update(&self, from_version: u64) -> Result<UpdateView<'_>> {
        self.require_active()?;
        let update = self.served.update_from(from_version)?;
        Ok(UpdateView { from_version, update, manifest: &self.served.manifest, root: self.served.root })
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
        let epoch = Voucher::peek_epoch(v)
            .map_err(|e| ServerError::MalformedVoucher { index, reason: e.to_string() })?;
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
