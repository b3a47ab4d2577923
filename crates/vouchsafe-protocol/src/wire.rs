//! A tiny cursor for decoding fixed-layout encodings without panics.

use crate::error::{Error, InvalidInput, Result};

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
            return Err(Error::Invalid(InvalidInput::Version { what: self.what, got: v }));
        }
        Ok(())
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.buf.len() < n {
            return Err(Error::Invalid(InvalidInput::Length {
                what: self.what,
                expected: self.total - self.buf.len() + n,
                got: self.total,
            }));
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
        Ok(self.array::<1>()?[0])
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

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// Fails unless every byte was consumed.
    pub(crate) fn finish(self) -> Result<()> {
        if self.buf.is_empty() { Ok(()) } else { Err(Error::Invalid(InvalidInput::TrailingBytes { what: self.what })) }
    }
}
