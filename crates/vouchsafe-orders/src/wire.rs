//! A cursor for decoding without panics, and the writer helpers of the canonical encodings.

use crate::error::{OrderError, Result};

pub(crate) struct Reader<'a> {
    what: &'static str,
    buf: &'a [u8],
    total: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(what: &'static str, buf: &'a [u8]) -> Self {
        Reader { what, buf, total: buf.len() }
    }

    /// Reads and checks the version byte.
    pub(crate) fn version(&mut self, expected: u8) -> Result<()> {
        let v = self.u8()?;
        if v != expected {
            return Err(OrderError::Version { what: self.what, got: v });
        }
        Ok(())
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.buf.len() < n {
            return Err(OrderError::Length {
                what: self.what,
                expected: (self.total - self.buf.len()).saturating_add(n),
                got: self.total,
            });
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let s = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(s);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8> {
        let [b] = self.array::<1>()?;
        Ok(b)
    }
    pub(crate) fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    pub(crate) fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    pub(crate) fn i64(&mut self) -> Result<i64> {
        Ok(i64::from_le_bytes(self.array()?))
    }

    /// The rest of the input (consumes it).
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        core::mem::take(&mut self.buf)
    }

    /// Fails unless every byte was consumed.
    pub(crate) fn finish(self) -> Result<()> {
        if self.buf.is_empty() { Ok(()) } else { Err(OrderError::TrailingBytes { what: self.what }) }
    }
}

/// Appends `u8 len ‖ bytes`; the caller has checked that `bytes` fits a u8 length.
pub(crate) fn put_short(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(u8::try_from(bytes.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(bytes);
}
