//! A cursor for decoding without panics, and the writer helpers of the canonical encodings.

use crate::error::OrderError;

pub(crate) use vouchsafe_wire::Reader;

impl From<vouchsafe_wire::WireError> for OrderError {
    fn from(e: vouchsafe_wire::WireError) -> Self {
        use vouchsafe_wire::WireError as W;
        match e {
            W::Length { what, expected, got } => OrderError::Length { what, expected, got },
            W::TrailingBytes { what } => OrderError::TrailingBytes { what },
            W::Version { what, got } => OrderError::Version { what, got },
        }
    }
}

/// Appends `u8 len ‖ bytes`; the caller has checked that `bytes` fits a u8 length.
pub(crate) fn put_short(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(u8::try_from(bytes.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(bytes);
}
