//! Admission control: the unprocessed backlog (batches and voucher bytes in the inbox) is bounded by
//! `limits.max_backlog_batches` and `limits.max_backlog_bytes`.
//!
//! Intake reserves a batch's share of the bound *before* storing it and gives it back if nothing was stored (a
//! retry, a refusal, an error); the worker gives it back once the batch is processed. Reservations are atomic, so
//! concurrent submissions can never overshoot the bound, and a refused submission stored nothing.
//!
//! The decision depends only on the global backlog, never on the submitting account or on what any voucher
//! contains: every device sees the same answer at the same moment (docs/LEAKAGE.md §8).

use std::sync::atomic::{AtomicU64, Ordering};

use vouchsafe_store::Backlog as StoredBacklog;

use crate::config::LimitsConfig;
use crate::error::ServerError;

/// The in-memory mirror of the inbox's unprocessed part, with its peaks since start.
#[derive(Debug, Default)]
pub(crate) struct Backlog {
    batches: AtomicU64,
    bytes: AtomicU64,
    peak_batches: AtomicU64,
    peak_bytes: AtomicU64,
    refused: AtomicU64,
}

/// A snapshot of [`Backlog`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BacklogView {
    /// Unprocessed batches (stored, or being stored).
    pub batches: u64,
    /// Their voucher bytes.
    pub bytes: u64,
    /// Highest `batches` since the server started.
    pub peak_batches: u64,
    /// Highest `bytes` since the server started.
    pub peak_bytes: u64,
    /// Submissions refused because the backlog was full.
    pub refused: u64,
}

/// A reservation of one batch's share of the bound; released on drop unless [`Reservation::keep`] was called.
pub(crate) struct Reservation<'a> {
    backlog: &'a Backlog,
    bytes: u64,
    kept: bool,
}

impl Reservation<'_> {
    /// The batch was stored: its share stays reserved until the worker processes it.
    pub(crate) fn keep(mut self) {
        self.kept = true;
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if !self.kept {
            self.backlog.processed(1, self.bytes);
        }
    }
}

impl Backlog {
    /// Starts from what the store holds unprocessed.
    pub(crate) fn new(stored: StoredBacklog) -> Self {
        let b = Backlog::default();
        b.batches.store(stored.batches, Ordering::SeqCst);
        b.bytes.store(stored.bytes, Ordering::SeqCst);
        b.peak_batches.store(stored.batches, Ordering::SeqCst);
        b.peak_bytes.store(stored.bytes, Ordering::SeqCst);
        b
    }

    /// Reserves room for a batch of `bytes`, or refuses with [`ServerError::Overloaded`] (nothing reserved).
    pub(crate) fn reserve(&self, bytes: u64, limits: &LimitsConfig) -> Result<Reservation<'_>, ServerError> {
        let batches = self.batches.fetch_add(1, Ordering::SeqCst) + 1;
        let total = self.bytes.fetch_add(bytes, Ordering::SeqCst) + bytes;
        if batches > limits.max_backlog_batches || total > limits.max_backlog_bytes {
            self.processed(1, bytes);
            self.refused.fetch_add(1, Ordering::Relaxed);
            return Err(ServerError::Overloaded { batches: batches - 1, mib: (total - bytes) >> 20 });
        }
        self.peak_batches.fetch_max(batches, Ordering::Relaxed);
        self.peak_bytes.fetch_max(total, Ordering::Relaxed);
        Ok(Reservation { backlog: self, bytes, kept: false })
    }

    /// `batches` batches of `bytes` in all left the backlog.
    pub(crate) fn processed(&self, batches: u64, bytes: u64) {
        // Saturating: a resync may have set a lower value meanwhile.
        let _ = self.batches.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| Some(v.saturating_sub(batches)));
        let _ = self.bytes.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| Some(v.saturating_sub(bytes)));
    }

    /// Sets the counts to what the store holds (after a batch was set aside without its size being known).
    pub(crate) fn resync(&self, stored: StoredBacklog) {
        self.batches.store(stored.batches, Ordering::SeqCst);
        self.bytes.store(stored.bytes, Ordering::SeqCst);
    }

    /// The counts now.
    pub(crate) fn view(&self) -> BacklogView {
        BacklogView {
            batches: self.batches.load(Ordering::SeqCst),
            bytes: self.bytes.load(Ordering::SeqCst),
            peak_batches: self.peak_batches.load(Ordering::Relaxed),
            peak_bytes: self.peak_bytes.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(batches: u64, bytes: u64) -> LimitsConfig {
        LimitsConfig { max_backlog_batches: batches, max_backlog_bytes: bytes, ..LimitsConfig::default() }
    }

    #[test]
    fn reservations_never_overshoot_and_refusals_reserve_nothing() {
        let b = Backlog::new(StoredBacklog { batches: 1, vouchers: 4, bytes: 100 });
        let l = limits(3, 1000);
        let r1 = b.reserve(400, &l).unwrap();
        r1.keep();
        // 500 + 600 > 1000: refused by bytes, and nothing stays reserved.
        assert!(matches!(b.reserve(600, &l), Err(ServerError::Overloaded { batches: 2, .. })));
        assert_eq!((b.view().batches, b.view().bytes, b.view().refused), (2, 500, 1));
        // A reservation that is not kept (a retry, an error) is given back.
        drop(b.reserve(500, &l).unwrap());
        assert_eq!((b.view().batches, b.view().bytes), (2, 500));
        b.reserve(500, &l).unwrap().keep();
        // Three batches: refused by count, whatever the size.
        assert!(b.reserve(0, &l).is_err());
        b.processed(2, 900);
        assert_eq!((b.view().batches, b.view().bytes, b.view().peak_batches, b.view().peak_bytes), (1, 100, 3, 1000));
        b.resync(StoredBacklog::default());
        b.processed(1, 100);
        assert_eq!((b.view().batches, b.view().bytes), (0, 0));
    }
}
