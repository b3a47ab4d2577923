//! Per-account token bucket: `rate` vouchers per second, at most `burst` at once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// Token buckets of every account that submitted.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    pub(crate) fn new(rate: f64, burst: u32) -> Self {
        RateLimiter { rate, burst: f64::from(burst), buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes `n` tokens from `account`'s bucket at `now`; false (and nothing taken) if there are not enough.
    pub(crate) fn try_take(&self, account: &str, n: usize, now: Instant) -> bool {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let (tokens, last) = buckets.entry(account.to_owned()).or_insert((self.burst, now));
        let elapsed = now.saturating_duration_since(*last).as_secs_f64();
        *tokens = (*tokens + elapsed * self.rate).min(self.burst);
        *last = now;
        let need = n as f64;
        if *tokens >= need {
            *tokens -= need;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bucket_refills_at_the_rate() {
        let l = RateLimiter::new(10.0, 20);
        let t0 = Instant::now();
        assert!(l.try_take("a", 20, t0));
        assert!(!l.try_take("a", 1, t0));
        assert!(l.try_take("b", 20, t0), "buckets are per account");
        assert!(!l.try_take("a", 6, t0 + Duration::from_millis(500)));
        assert!(l.try_take("a", 5, t0 + Duration::from_millis(500)));
        assert!(l.try_take("a", 20, t0 + Duration::from_secs(100)), "refill is capped at the burst");
        assert!(!l.try_take("a", 1, t0 + Duration::from_secs(100)));
    }
}
