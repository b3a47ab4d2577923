//! A tiny cursor for decoding, and the writers for encoding, without panics.

use crate::error::{Error, Result};

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
        let got = self.u8()?;
        if got != expected {
            return Err(Error::Version { what: self.what, got });
        }
        Ok(())
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let Some((head, tail)) = self.buf.split_at_checked(n) else {
            let consumed = self.total.saturating_sub(self.buf.len());
            return Err(Error::Length { what: self.what, expected: consumed.saturating_add(n), got: self.total });
        };
        self.buf = tail;
        Ok(head)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
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
    pub(crate) fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    pub(crate) fn i64(&mut self) -> Result<i64> {
        Ok(i64::from_le_bytes(self.array()?))
    }

    /// A `u8` length prefix and that many bytes.
    pub(crate) fn bytes_u8(&mut self) -> Result<&'a [u8]> {
        let n = self.u8()?;
        self.take(usize::from(n))
    }
    /// A `u16` length prefix and that many bytes.
    pub(crate) fn bytes_u16(&mut self) -> Result<&'a [u8]> {
        let n = self.u16()?;
        self.take(usize::from(n))
    }

    /// Fails unless every byte was consumed.
    pub(crate) fn finish(self) -> Result<()> {
        if self.buf.is_empty() { Ok(()) } else { Err(Error::TrailingBytes { what: self.what }) }
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
