//! Conversions between SQLite values (signed 64-bit integers, blobs) and the
//! store's types: the backend-neutral ones of `crate::convert`, and the
//! collection of rows.

use crate::Result;
pub(super) use crate::convert::{hash32, id16, limit_i64, to_i64, to_u64};

pub(super) fn collect<T>(rows: impl Iterator<Item = rusqlite::Result<Result<T>>>) -> Result<Vec<T>> {
    let mut out = Vec::new();
    for row in rows {
        out.push(row??);
    }
    Ok(out)
}
