//! Conversions between SQLite values (signed 64-bit integers, blobs) and the
//! store's types.

use crate::{Result, StoreError};

pub(super) fn to_i64(v: u64) -> Result<i64> {
    i64::try_from(v).map_err(|_| StoreError::InvalidArgument("count out of range"))
}

pub(super) fn to_u64(v: i64) -> Result<u64> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt("negative count"))
}

pub(super) fn id16(v: &[u8]) -> Result<[u8; 16]> {
    <[u8; 16]>::try_from(v).map_err(|_| StoreError::Corrupt("id is not 16 bytes"))
}

pub(super) fn hash32(v: &[u8]) -> Result<[u8; 32]> {
    <[u8; 32]>::try_from(v).map_err(|_| StoreError::Corrupt("hash is not 32 bytes"))
}

pub(super) fn limit_i64(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

pub(super) fn collect<T>(rows: impl Iterator<Item = rusqlite::Result<Result<T>>>) -> Result<Vec<T>> {
    let mut out = Vec::new();
    for row in rows {
        out.push(row??);
    }
    Ok(out)
}
