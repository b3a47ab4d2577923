//! # vouchsafe-wire
//!
//! The cursor that the decoders of every vouchsafe format (the protocol's vouchers, tables and states, detection
//! orders, Centre releases) read with: fixed-width little-endian integers, length-prefixed byte strings, a version
//! byte, and a final check that nothing trails. It never panics and never allocates; every failure is a
//! [`WireError`] naming the encoding (`what`), which each crate maps into its own error type (a decoding failure
//! is always the peer's or the stored file's fault).

use core::fmt;

/// Why bytes did not decode. Deliberately exhaustive: every crate maps each kind into its own error, and a new
/// kind must be mapped everywhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireError {
    /// The input ended early: `expected` bytes were needed in all, `got` were there.
    Length {
        /// The encoding being read.
        what: &'static str,
        /// Bytes needed up to the end of the field that did not fit.
        expected: usize,
        /// Bytes in the input.
        got: usize,
    },
    /// Bytes were left after a complete value.
    TrailingBytes {
        /// The encoding being read.
        what: &'static str,
    },
    /// The version byte is not the one this implementation speaks.
    Version {
        /// The encoding being read.
        what: &'static str,
        /// The version byte found.
        got: u8,
    },
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Length { what, expected, got } => write!(f, "{what}: expected {expected} bytes, got {got}"),
            WireError::TrailingBytes { what } => write!(f, "{what}: trailing bytes after the encoding"),
            WireError::Version { what, got } => write!(f, "{what}: unsupported version {got}"),
        }
    }
}

impl std::error::Error for WireError {}

/// A cursor over one encoding.
#[derive(Debug)]
pub struct Reader<'a> {
    what: &'static str,
    buf: &'a [u8],
    total: usize,
}

impl<'a> Reader<'a> {
    /// A cursor over `buf`, which holds one `what` (the name used in errors).
    pub fn new(what: &'static str, buf: &'a [u8]) -> Self {
        Reader { what, buf, total: buf.len() }
    }

    /// Reads the version byte and checks it.
    pub fn version(&mut self, expected: u8) -> Result<(), WireError> {
        let got = self.u8()?;
        if got != expected {
            return Err(WireError::Version { what: self.what, got });
        }
        Ok(())
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        let Some((head, tail)) = self.buf.split_at_checked(n) else {
            let consumed = self.total.saturating_sub(self.buf.len());
            return Err(WireError::Length { what: self.what, expected: consumed.saturating_add(n), got: self.total });
        };
        self.buf = tail;
        Ok(head)
    }

    /// The next `N` bytes as an array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        let (head, tail) = self.buf.split_first_chunk::<N>().ok_or_else(|| {
            let consumed = self.total.saturating_sub(self.buf.len());
            WireError::Length { what: self.what, expected: consumed.saturating_add(N), got: self.total }
        })?;
        self.buf = tail;
        Ok(*head)
    }

    /// A byte.
    pub fn u8(&mut self) -> Result<u8, WireError> {
        let [b] = self.array::<1>()?;
        Ok(b)
    }
    /// A little-endian `u16`.
    pub fn u16(&mut self) -> Result<u16, WireError> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    /// A little-endian `u32`.
    pub fn u32(&mut self) -> Result<u32, WireError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    /// A little-endian `u64`.
    pub fn u64(&mut self) -> Result<u64, WireError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    /// A little-endian two's-complement `i64`.
    pub fn i64(&mut self) -> Result<i64, WireError> {
        Ok(i64::from_le_bytes(self.array()?))
    }

    /// A `u8` length prefix and that many bytes.
    pub fn bytes_u8(&mut self) -> Result<&'a [u8], WireError> {
        let n = self.u8()?;
        self.take(usize::from(n))
    }
    /// A `u16` length prefix and that many bytes.
    pub fn bytes_u16(&mut self) -> Result<&'a [u8], WireError> {
        let n = self.u16()?;
        self.take(usize::from(n))
    }

    /// The rest of the input (consumes it).
    pub fn rest(&mut self) -> &'a [u8] {
        core::mem::take(&mut self.buf)
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// Fails unless every byte was read.
    pub fn finish(self) -> Result<(), WireError> {
        if self.buf.is_empty() { Ok(()) } else { Err(WireError::TrailingBytes { what: self.what }) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_in_order_and_refuses_truncation_and_trailing_bytes() {
        let bytes = [1u8, 0x34, 0x12, 2, b'h', b'i', 9];
        let mut r = Reader::new("t", &bytes);
        r.version(1).unwrap();
        assert_eq!(r.u16().unwrap(), 0x1234);
        assert_eq!(r.bytes_u8().unwrap(), b"hi");
        assert_eq!(r.remaining(), 1);
        assert_eq!(Reader::new("t", &bytes).finish(), Err(WireError::TrailingBytes { what: "t" }));
        let mut r = Reader::new("t", &bytes);
        assert_eq!(r.version(2), Err(WireError::Version { what: "t", got: 1 }));
        let mut r = Reader::new("t", &bytes[..3]);
        r.u8().unwrap();
        assert_eq!(r.u32(), Err(WireError::Length { what: "t", expected: 5, got: 3 }));
        assert_eq!(r.take(3), Err(WireError::Length { what: "t", expected: 4, got: 3 }));
        assert_eq!(r.rest(), &[0x34, 0x12]);
        r.finish().unwrap();
        for cut in 0..bytes.len() {
            let mut r = Reader::new("t", &bytes[..cut]);
            let _ = r.version(1).and_then(|()| r.u16()).and_then(|_| r.bytes_u8()).and_then(|_| r.u8());
        }
    }
}
