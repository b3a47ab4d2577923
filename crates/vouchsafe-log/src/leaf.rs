//! Log leaves: what the log records, as a kind and opaque bytes (the signed object's own canonical encoding).

use crate::error::{Error, Result};
use crate::labels::LEAF_VERSION;
use crate::merkle::{Hash, leaf_hash};

/// The largest leaf payload the log accepts (16 MiB).
pub const MAX_LEAF_BYTES: usize = 1 << 24;

/// What a leaf records. The byte values are part of the leaf encoding and never change.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum LeafKind {
    /// An authority-signed detection order.
    Order = 1,
    /// An authority-signed revocation of an order.
    Revocation = 2,
    /// A Centre-signed indicator release.
    Release = 3,
    /// A table manifest signed with an order's table key.
    Manifest = 4,
    /// A signed transparency report for an order.
    TransparencyReport = 5,
}

impl LeafKind {
    fn from_byte(b: u8) -> Option<LeafKind> {
        Some(match b {
            1 => LeafKind::Order,
            2 => LeafKind::Revocation,
            3 => LeafKind::Release,
            4 => LeafKind::Manifest,
            5 => LeafKind::TransparencyReport,
            _ => return None,
        })
    }
}

/// One log entry: a kind and the signed object's bytes. Encoded as `version ‖ kind ‖ u32 big-endian length ‖
/// bytes`; the leaf hash is RFC 6962's `SHA-256(0x00 ‖ encoding)`, so the kind and version are committed to and a
/// release can never be presented as an order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leaf {
    kind: LeafKind,
    bytes: Vec<u8>,
}

impl Leaf {
    /// A leaf; refuses a payload over [`MAX_LEAF_BYTES`].
    pub fn new(kind: LeafKind, bytes: Vec<u8>) -> Result<Leaf> {
        if bytes.len() > MAX_LEAF_BYTES {
            return Err(Error::Misuse { what: "leaf payload over MAX_LEAF_BYTES" });
        }
        Ok(Leaf { kind, bytes })
    }

    /// What the leaf records.
    pub fn kind(&self) -> LeafKind {
        self.kind
    }

    /// The recorded object's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The versioned encoding the leaf hash is computed over.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(6 + self.bytes.len());
        out.push(LEAF_VERSION);
        out.push(self.kind as u8);
        // new() bounds the length by MAX_LEAF_BYTES < 2^32.
        out.extend_from_slice(&u32::try_from(self.bytes.len()).unwrap_or(u32::MAX).to_be_bytes());
        out.extend_from_slice(&self.bytes);
        out
    }

    /// Decodes [`Leaf::encode`]'s output; refuses another version, an unknown kind, a length over
    /// [`MAX_LEAF_BYTES`] and missing or trailing bytes.
    pub fn decode(bytes: &[u8]) -> Result<Leaf> {
        let what = "leaf encoding";
        let (version, kind, len, rest) = match bytes {
            [v, k, a, b, c, d, rest @ ..] => (*v, *k, u32::from_be_bytes([*a, *b, *c, *d]), rest),
            _ => return Err(Error::Malformed { what }),
        };
        if version != LEAF_VERSION {
            return Err(Error::Malformed { what: "leaf version" });
        }
        let kind = LeafKind::from_byte(kind).ok_or(Error::Malformed { what: "leaf kind" })?;
        let len = usize::try_from(len).map_err(|_| Error::Malformed { what })?;
        if len > MAX_LEAF_BYTES || rest.len() != len {
            return Err(Error::Malformed { what });
        }
        Ok(Leaf { kind, bytes: rest.to_vec() })
    }

    /// The RFC 6962 leaf hash `SHA-256(0x00 ‖ encode())`.
    pub fn hash(&self) -> Hash {
        leaf_hash(&self.encode())
    }
}
