//! Storage encoding of a batch's raw vouchers: one length-prefixed blob per
//! batch (schema v2), so a batch is one row and one overflow-page chain rather
//! than one row per voucher.
//!
//! Format (version 1): `version (u8 = 1) ‖ count (u32 BE) ‖ count × (len (u32 BE) ‖ bytes)`.
//! Decoding rejects another version, a count that differs from the batch's
//! stored voucher count, truncated entries and trailing bytes.

use crate::{Result, StoreError};

/// Version byte of the inbox blob encoding.
pub(crate) const INBOX_BLOB_VERSION: u8 = 1;

/// Encodes the vouchers of one batch.
pub(crate) fn encode<B: AsRef<[u8]>>(vouchers: &[B]) -> Result<Vec<u8>> {
    let count =
        u32::try_from(vouchers.len()).map_err(|_| StoreError::InvalidArgument("too many vouchers in one batch"))?;
    let total = vouchers
        .iter()
        .try_fold(5usize, |acc, v| acc.checked_add(4)?.checked_add(v.as_ref().len()))
        .ok_or(StoreError::InvalidArgument("batch too large"))?;
    let mut out = Vec::with_capacity(total);
    out.push(INBOX_BLOB_VERSION);
    out.extend_from_slice(&count.to_be_bytes());
    for v in vouchers {
        let v = v.as_ref();
        let len = u32::try_from(v.len()).map_err(|_| StoreError::InvalidArgument("voucher too large"))?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(v);
    }
    Ok(out)
}

/// Domain label of [`digest`].
const DIGEST_LABEL: &[u8] = b"vouchsafe/v1/store/batch-digest";

/// The digest a stored batch keeps for its idempotency: SHA-256 over a domain label, the client state and the
/// batch's [`encode`]d vouchers (so the count, every length and every byte, in order).
pub(crate) fn digest(client_state: &[u8; 16], blob: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(DIGEST_LABEL);
    h.update(client_state);
    h.update(blob);
    h.finalize().into()
}

fn take<'a>(rest: &mut &'a [u8], n: usize) -> Result<&'a [u8]> {
    let (head, tail) = rest.split_at_checked(n).ok_or(StoreError::Corrupt("inbox blob truncated"))?;
    *rest = tail;
    Ok(head)
}

fn take_u32(rest: &mut &[u8]) -> Result<u32> {
    let b = take(rest, 4)?;
    let arr: [u8; 4] = b.try_into().map_err(|_| StoreError::Corrupt("inbox blob truncated"))?;
    Ok(u32::from_be_bytes(arr))
}

/// Decodes a blob written by [`encode`]; `expected` is the batch's stored
/// voucher count.
pub(crate) fn decode(blob: &[u8], expected: u64) -> Result<Vec<Vec<u8>>> {
    let mut rest = blob;
    if take(&mut rest, 1)? != [INBOX_BLOB_VERSION] {
        return Err(StoreError::Corrupt("inbox blob version"));
    }
    let count = take_u32(&mut rest)?;
    if u64::from(count) != expected {
        return Err(StoreError::Corrupt("inbox voucher count"));
    }
    // Every entry takes at least 4 bytes: bound the allocation by the input.
    let cap = usize::try_from(count).unwrap_or(usize::MAX).min(rest.len() / 4);
    let mut out = Vec::with_capacity(cap);
    for _ in 0..count {
        let len = usize::try_from(take_u32(&mut rest)?).map_err(|_| StoreError::Corrupt("inbox blob entry length"))?;
        out.push(take(&mut rest, len)?.to_vec());
    }
    if !rest.is_empty() {
        return Err(StoreError::Corrupt("trailing bytes in inbox blob"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let v: Vec<Vec<u8>> = vec![vec![], vec![1, 2, 3], vec![0xff; 5000]];
        let blob = encode(&v).unwrap();
        assert_eq!(blob.len(), 5 + 3 * 4 + 3 + 5000);
        assert_eq!(decode(&blob, 3).unwrap(), v);
        let empty: [Vec<u8>; 0] = [];
        assert_eq!(decode(&encode(&empty).unwrap(), 0).unwrap(), Vec::<Vec<u8>>::new());
    }

    #[test]
    fn malformed_blobs_are_rejected_without_panicking() {
        let v: Vec<Vec<u8>> = vec![vec![7; 10], vec![8; 3]];
        let blob = encode(&v).unwrap();
        // Wrong expected count.
        assert!(matches!(decode(&blob, 3), Err(StoreError::Corrupt(_))));
        // Every truncation fails.
        for n in 0..blob.len() {
            assert!(matches!(decode(&blob[..n], 2), Err(StoreError::Corrupt(_))), "prefix {n}");
        }
        // Trailing bytes.
        let mut long = blob.clone();
        long.push(0);
        assert!(matches!(decode(&long, 2), Err(StoreError::Corrupt(_))));
        // Unknown version.
        let mut other = blob.clone();
        other[0] = 2;
        assert!(matches!(decode(&other, 2), Err(StoreError::Corrupt(_))));
        // A huge claimed count or length does not allocate or panic.
        let mut huge = vec![INBOX_BLOB_VERSION];
        huge.extend_from_slice(&u32::MAX.to_be_bytes());
        huge.extend_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(decode(&huge, u64::from(u32::MAX)), Err(StoreError::Corrupt(_))));
    }
}
