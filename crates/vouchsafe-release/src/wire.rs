//! A tiny cursor for decoding, and the writers for encoding, without panics.

use crate::error::Error;

pub(crate) use vouchsafe_wire::Reader;

impl From<vouchsafe_wire::WireError> for Error {
    fn from(e: vouchsafe_wire::WireError) -> Self {
        use vouchsafe_wire::WireError as W;
        match e {
            W::Length { what, expected, got } => Error::Length { what, expected, got },
            W::TrailingBytes { what } => Error::TrailingBytes { what },
            W::Version { what, got } => Error::Version { what, got },
        }
    }
}

/// A `u32` count as a `usize` (a count larger than the address space cannot be backed by input anyway).
pub(crate) fn count(n: u32) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// Appends a `u8` length prefix and the bytes. The caller validated `bytes.len() <= 255`.
pub(crate) fn put_u8_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(u8::try_from(bytes.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(bytes);
}

/// Appends a `u16` length prefix and the bytes. The caller validated `bytes.len() <= 65535`.
pub(crate) fn put_u16_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&u16::try_from(bytes.len()).unwrap_or(u16::MAX).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// Appends a `u32` count. The caller validated `n <= u32::MAX`.
pub(crate) fn put_count(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes());
}
