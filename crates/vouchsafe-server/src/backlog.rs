//! Admission control: the unprocessed backlog (batches and voucher bytes in the inbox) is bounded by
//! `limits.max_backlog_batches` and `limits.max_backlog_bytes`.
//!
//! The counts are kept in memory in two parts: what is **stored** unprocessed (it starts from the store at start,
//! grows when a batch is stored and shrinks when the worker processes one) and what is **reserved** by
//! submissions being stored right now. Intake reserves a batch's share of the bound *before* storing it
//! ([`Backlog::reserve`]); the reservation is resolved in the blocking task that stores the batch, so it is resolved
//! exactly once even if the request is cancelled meanwhile: [`Reservation::stored`] moves it to the stored part,
//! dropping it gives it back. The admission test is `stored + reserved + this batch ≤ bound`, under one lock, so
//! concurrent submissions can never overshoot the bound.
//!
//! The in-memory counts can drift from the store only through an error whose outcome is unknown (a COMMIT that
//! fails but committed, which is counted as not stored) and a batch set aside as unreadable (whose size is not
//! known here). [`Backlog::reset_if_idle`], called by the worker between runs, corrects that: when nothing is
//! reserved, it reads the store's backlog under the same lock (no submission can start or finish meanwhile) and
//! takes it as the stored part.
//!
//! The decision depends only on the global backlog, never on the submitting account or on what any voucher
//! contains: every device sees the same answer at the same moment (docs/LEAKAGE.md §2).

use std::sync::{Arc, Mutex, MutexGuard};

use vouchsafe_store::{Backlog as StoredBacklog, Store};

use crate::config::LimitsConfig;
use crate::error::{Result, ServerError};

/// The stored part is signed: the worker can process a batch (and subtract it) in the moment between its commit and
/// the resolution of its reservation (which adds it), so the stored part can be one batch below zero while the
/// reservation still covers it; the sum is right at every moment.
#[derive(Debug, Default)]
struct Counts {
    stored_batches: i64,
    stored_bytes: i64,
    reserved_batches: u64,
    reserved_bytes: u64,
    peak_batches: u64,
    peak_bytes: u64,
    refused: u64,
}

impl Counts {
    /// Stored + reserved batches (never below zero).
    fn batches(&self) -> u64 {
        u64::try_from(self.stored_batches.saturating_add(signed(self.reserved_batches))).unwrap_or(0)
    }
    /// Stored + reserved bytes (never below zero).
    fn bytes(&self) -> u64 {
        u64::try_from(self.stored_bytes.saturating_add(signed(self.reserved_bytes))).unwrap_or(0)
    }
}

fn signed(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The in-memory mirror of the inbox's unprocessed part, with its peaks since start.
#[derive(Debug, Default)]
pub(crate) struct Backlog {
    counts: Mutex<Counts>,
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

/// One batch's share of the bound while it is being stored. Dropping it gives the share back.
pub(crate) struct Reservation {
    backlog: Arc<Backlog>,
    bytes: u64,
    resolved: bool,
}

impl Reservation {
    /// The batch was stored: its share moves to the stored part until the worker processes it.
    pub(crate) fn stored(mut self) {
        self.resolved = true;
        let mut c = self.backlog.lock();
        c.reserved_batches = c.reserved_batches.saturating_sub(1);
        c.reserved_bytes = c.reserved_bytes.saturating_sub(self.bytes);
        c.stored_batches += 1;
        c.stored_bytes = c.stored_bytes.saturating_add(signed(self.bytes));
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if !self.resolved {
            let mut c = self.backlog.lock();
            c.reserved_batches = c.reserved_batches.saturating_sub(1);
            c.reserved_bytes = c.reserved_bytes.saturating_sub(self.bytes);
        }
    }
}

impl Backlog {
    /// Starts from what the store holds unprocessed.
    pub(crate) fn new(stored: StoredBacklog) -> Self {
        let counts = Counts {
            stored_batches: signed(stored.batches),
            stored_bytes: signed(stored.bytes),
            peak_batches: stored.batches,
            peak_bytes: stored.bytes,
            ..Counts::default()
        };
        Backlog { counts: Mutex::new(counts) }
    }

    fn lock(&self) -> MutexGuard<'_, Counts> {
        // The counts are plain integers updated in one step each: a panic elsewhere cannot leave them torn.
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reserves room for a batch of `bytes`, or answers [`ServerError::Overloaded`] (nothing reserved).
    pub(crate) fn reserve(self: &Arc<Self>, bytes: u64, limits: &LimitsConfig) -> Result<Reservation> {
        let mut c = self.lock();
        let batches = c.batches() + 1;
        let total = c.bytes().saturating_add(bytes);
        if batches > limits.max_backlog_batches || total > limits.max_backlog_bytes {
            return Err(ServerError::Overloaded);
        }
        c.reserved_batches += 1;
        c.reserved_bytes += bytes;
        c.peak_batches = c.peak_batches.max(batches);
        c.peak_bytes = c.peak_bytes.max(total);
        Ok(Reservation { backlog: Arc::clone(self), bytes, resolved: false })
    }

    /// Counts a submission refused because the backlog was full.
    pub(crate) fn refused(&self) {
        self.lock().refused += 1;
    }

    /// `batches` processed batches of `bytes` in all left the backlog.
    pub(crate) fn processed(&self, batches: u64, bytes: u64) {
        let mut c = self.lock();
        c.stored_batches = c.stored_batches.saturating_sub(signed(batches));
        c.stored_bytes = c.stored_bytes.saturating_sub(signed(bytes));
    }

    /// If no submission is being stored, takes the store's backlog as the stored part (see the module
    /// documentation). Returns whether it did.
    pub(crate) fn reset_if_idle(&self, store: &dyn Store) -> Result<bool> {
        let mut c = self.lock();
        if c.reserved_batches != 0 {
            return Ok(false);
        }
        let s = store.backlog()?;
        c.stored_batches = signed(s.batches);
        c.stored_bytes = signed(s.bytes);
        Ok(true)
    }

    /// The counts now.
    pub(crate) fn view(&self) -> BacklogView {
        let c = self.lock();
        BacklogView {
            batches: c.batches(),
            bytes: c.bytes(),
            peak_batches: c.peak_batches,
            peak_bytes: c.peak_bytes,
            refused: c.refused,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vouchsafe_store::SqliteStore;

    fn limits(batches: u64, bytes: u64) -> LimitsConfig {
        LimitsConfig { max_backlog_batches: batches, max_backlog_bytes: bytes, ..LimitsConfig::default() }
    }

    #[test]
    fn reservations_never_overshoot_and_refusals_reserve_nothing() {
        let b = Arc::new(Backlog::new(StoredBacklog { batches: 1, vouchers: 4, bytes: 100 }));
        let l = limits(3, 1000);
        let r1 = b.reserve(400, &l).unwrap();
        // Reserved but not yet stored: it counts against the bound already.
        assert!(matches!(b.reserve(600, &l), Err(ServerError::Overloaded)));
        r1.stored();
        assert_eq!((b.view().batches, b.view().bytes), (2, 500));
        // A reservation that is not stored (a retry, an error, a cancelled request) is given back.
        drop(b.reserve(500, &l).unwrap());
        assert_eq!((b.view().batches, b.view().bytes), (2, 500));
        b.reserve(500, &l).unwrap().stored();
        // Three batches: refused by count, whatever the size.
        assert!(b.reserve(0, &l).is_err());
        b.refused();
        b.processed(2, 900);
        let v = b.view();
        assert_eq!((v.batches, v.bytes, v.peak_batches, v.peak_bytes, v.refused), (1, 100, 3, 1000, 1));
    }

    /// The worker may process a batch between its commit and the resolution of its reservation: the count is
    /// right before, in between and after.
    #[test]
    fn a_batch_processed_before_its_reservation_is_resolved_is_counted_once() {
        let b = Arc::new(Backlog::new(StoredBacklog::default()));
        let r = b.reserve(100, &limits(10, 1000)).unwrap();
        b.processed(1, 100);
        assert_eq!((b.view().batches, b.view().bytes), (0, 0));
        r.stored();
        assert_eq!((b.view().batches, b.view().bytes), (0, 0));
        b.reserve(100, &limits(10, 1000)).unwrap().stored();
        assert_eq!((b.view().batches, b.view().bytes), (1, 100));
    }

    #[test]
    fn an_idle_reset_takes_the_stores_count_and_waits_for_reservations() {
        let store = SqliteStore::open_in_memory().unwrap();
        store.insert_batch("a", [1; 16], &[vec![0; 10]], 1).unwrap();
        // Drifted (e.g. a batch set aside whose size was not known).
        let b = Arc::new(Backlog::new(StoredBacklog { batches: 5, vouchers: 5, bytes: 999 }));
        let r = b.reserve(10, &limits(100, 10_000)).unwrap();
        assert!(!b.reset_if_idle(&store).unwrap(), "not while a submission is being stored");
        drop(r);
        assert!(b.reset_if_idle(&store).unwrap());
        assert_eq!((b.view().batches, b.view().bytes), (1, 10));
    }
}
