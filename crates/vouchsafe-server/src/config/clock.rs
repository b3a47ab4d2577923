//! The wall clock the server judges order validity and retention by.

use std::time::{SystemTime, UNIX_EPOCH};

/// Current Unix time in seconds (0 if the clock is before 1970).
pub fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)).unwrap_or(0)
}
