//! Conversions between the signed 64-bit integers and byte strings databases
//! store and the store's types, shared by every backend.

use crate::{Result, StoreError};

/// Seconds in a UTC day (per-order counters are kept per day).
pub(crate) const SECONDS_PER_DAY: i64 = 86_400;

pub(crate) fn to_i64(v: u64) -> Result<i64> {
    i64::try_from(v).map_err(|_| StoreError::InvalidArgument("count out of range"))
}

pub(crate) fn to_u64(v: i64) -> Result<u64> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt("negative count"))
}

pub(crate) fn id16(v: &[u8]) -> Result<[u8; 16]> {
    <[u8; 16]>::try_from(v).map_err(|_| StoreError::Corrupt("id is not 16 bytes"))
}

pub(crate) fn hash32(v: &[u8]) -> Result<[u8; 32]> {
    <[u8; 32]>::try_from(v).map_err(|_| StoreError::Corrupt("hash is not 32 bytes"))
}

pub(crate) fn limit_i64(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}
