//! In-memory handoff of freshly stored batches from the intake to the worker.
//!
//! After [`Store::insert_batch`](vouchsafe_store::Store::insert_batch) returned `Inserted`, the intake still holds
//! the batch's decoded vouchers; it leaves them here, keyed by `(account, batch_id)`, and the worker takes them
//! instead of reading the batch back from storage (measured at about a quarter of the opening's cost per voucher:
//! reading the spool file and decoding it into 256 allocations).
//!
//! It is only a cache. The store's inbox stays the record: the worker learns *which* batches to process from the
//! store, and reads from storage any batch that is not here (evicted, stored before a restart, or fetched before
//! the intake put it here). An entry is only ever put for a batch that was just stored with exactly these vouchers,
//! and `(account, batch_id)` never names another batch (the inbox is idempotent on it), so what the worker takes is
//! what was stored. Entries that nobody takes (the worker read the batch from storage first) expire after
//! [`MAX_AGE`], and the whole cache is bounded by a byte budget: when full, new batches are simply not cached.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Entries older than this are dropped (the worker reads those batches from storage).
pub(crate) const MAX_AGE: Duration = Duration::from_secs(60);

type Key = (String, [u8; 16]);

#[derive(Default)]
struct Inner {
    entries: HashMap<Key, Vec<Vec<u8>>>,
    /// Insertion order with times, for expiry. May name keys already taken.
    order: VecDeque<(Instant, Key)>,
    bytes: usize,
}

/// See the module documentation.
pub(crate) struct Handoff {
    inner: Mutex<Inner>,
    max_bytes: usize,
}

fn size(vouchers: &[Vec<u8>]) -> usize {
    vouchers.iter().map(Vec::len).sum::<usize>()
}

impl Handoff {
    /// A cache holding at most `max_bytes` of vouchers (0 disables it).
    pub(crate) fn new(max_bytes: usize) -> Self {
        Handoff { inner: Mutex::new(Inner::default()), max_bytes }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // The cache holds no invariant worth poisoning over: at worst an entry is missing.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Leaves the vouchers of a batch that was just stored (outcome `Inserted`). Dropped if the budget is full.
    pub(crate) fn put(&self, account: &str, batch_id: [u8; 16], vouchers: Vec<Vec<u8>>, now: Instant) {
        let n = size(&vouchers);
        let mut inner = self.lock();
        expire(&mut inner, now);
        if inner.bytes.saturating_add(n) > self.max_bytes {
            return;
        }
        let key = (account.to_owned(), batch_id);
        if let Some(old) = inner.entries.insert(key.clone(), vouchers) {
            // Cannot happen for an `Inserted` batch; keep the accounting right regardless.
            inner.bytes = inner.bytes.saturating_sub(size(&old));
        }
        inner.bytes = inner.bytes.saturating_add(n);
        inner.order.push_back((now, key));
    }

    /// Takes the vouchers of a batch, if they are here.
    pub(crate) fn take(&self, account: &str, batch_id: &[u8; 16]) -> Option<Vec<Vec<u8>>> {
        let mut inner = self.lock();
        let v = inner.entries.remove(&(account.to_owned(), *batch_id))?;
        inner.bytes = inner.bytes.saturating_sub(size(&v));
        Some(v)
    }

    /// Drops entries older than [`MAX_AGE`] at `now`.
    pub(crate) fn expire(&self, now: Instant) {
        expire(&mut self.lock(), now);
    }

    /// Bytes currently held.
    #[cfg(test)]
    fn bytes(&self) -> usize {
        self.lock().bytes
    }
}

fn expire(inner: &mut Inner, now: Instant) {
    while let Some((at, _)) = inner.order.front() {
        if now.saturating_duration_since(*at) < MAX_AGE {
            break;
        }
        if let Some((_, key)) = inner.order.pop_front()
            && let Some(v) = inner.entries.remove(&key)
        {
            inner.bytes = inner.bytes.saturating_sub(size(&v));
        }
    }
    // Keys taken long ago would otherwise pile up in `order` while entries keep being taken promptly.
    if inner.entries.is_empty() {
        inner.order.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(n: usize, tag: u8) -> Vec<Vec<u8>> {
        (0..n).map(|_| vec![tag; 10]).collect()
    }

    #[test]
    fn put_take_budget_and_expiry() {
        let h = Handoff::new(50);
        let t0 = Instant::now();
        h.put("a", [1; 16], batch(3, 1), t0);
        assert_eq!(h.bytes(), 30);
        // Over budget: not cached.
        h.put("a", [2; 16], batch(3, 2), t0);
        assert_eq!(h.take("a", &[2; 16]), None);
        // Keyed by account and batch id.
        assert_eq!(h.take("b", &[1; 16]), None);
        assert_eq!(h.take("a", &[1; 16]), Some(batch(3, 1)));
        assert_eq!(h.take("a", &[1; 16]), None);
        assert_eq!(h.bytes(), 0);

        // An entry nobody takes expires and frees its budget.
        h.put("a", [3; 16], batch(4, 3), t0);
        h.expire(t0 + MAX_AGE / 2);
        assert_eq!(h.bytes(), 40);
        h.expire(t0 + MAX_AGE);
        assert_eq!(h.bytes(), 0);
        assert_eq!(h.take("a", &[3; 16]), None);

        // A disabled cache keeps nothing.
        let off = Handoff::new(0);
        off.put("a", [1; 16], batch(1, 1), t0);
        assert_eq!(off.take("a", &[1; 16]), None);
    }
}
