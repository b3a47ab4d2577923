//! The RFC 6962 / RFC 9162 Merkle tree: hashes, the append-only tree with inclusion and consistency proof
//! generation, the proofs' wire encoding, and their verification (by `ct-merkle`, an implementation independent of
//! the generator here, so the two check each other in the tests besides the RFC's known answers).
//!
//! This layer hashes opaque leaf *data*; [`crate::Log`] feeds it encoded [`crate::Leaf`]s.

use core::fmt;

use ct_merkle::{ConsistencyProof as CtConsistency, InclusionProof as CtInclusion, RootHash};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::labels::{MERKLE_LEAF_PREFIX, MERKLE_NODE_PREFIX, PROOF_VERSION};

/// Length of a SHA-256 hash.
pub const HASH_LEN: usize = 32;

/// The largest tree size this crate verifies or builds (2^62): beyond it `ct-merkle`'s index arithmetic panics,
/// and no real log comes near it.
pub const MAX_TREE_SIZE: u64 = 1 << 62;

/// The most hashes a proof may carry: an inclusion proof has at most ⌈log₂ n⌉ and a consistency proof at most
/// 2·⌈log₂ n⌉ hashes, so 128 covers every tree up to [`MAX_TREE_SIZE`].
pub const MAX_PROOF_HASHES: usize = 128;

/// A SHA-256 hash: a leaf hash, an interior node or a tree root.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hash(pub [u8; HASH_LEN]);

impl Hash {
    /// The root of the empty tree, `SHA-256("")` (RFC 6962 §2.1).
    pub fn empty_root() -> Hash {
        Hash(Sha256::digest([]).into())
    }

    /// The bytes of the hash.
    pub fn as_bytes(&self) -> &[u8; HASH_LEN] {
        &self.0
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// `SHA-256(0x00 ‖ data)`: the hash of one leaf (RFC 6962 §2.1).
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([MERKLE_LEAF_PREFIX]);
    h.update(data);
    Hash(h.finalize().into())
}

/// `SHA-256(0x01 ‖ left ‖ right)`: an interior node (RFC 6962 §2.1).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([MERKLE_NODE_PREFIX]);
    h.update(left.0);
    h.update(right.0);
    Hash(h.finalize().into())
}

/// A tree head: the number of leaves and the Merkle tree hash over them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TreeHead {
    /// Number of leaves.
    pub size: u64,
    /// `MTH(D[size])`.
    pub root: Hash,
}

impl TreeHead {
    /// The empty tree (size 0, root `SHA-256("")`), which every tree extends.
    pub fn empty() -> TreeHead {
        TreeHead { size: 0, root: Hash::empty_root() }
    }
}

/// The largest power of two strictly smaller than `n` (`n ≥ 2`), the split point `k` of RFC 6962 §2.1.
fn split(n: u64) -> u64 {
    // n ≥ 2, so n - 1 ≥ 1 and the shift is at most 63.
    1u64 << (63 - (n - 1).leading_zeros())
}

/// An append-only Merkle tree of leaf hashes. Stores every complete aligned subtree (2n − 1 hashes for n leaves),
/// so a root or proof for any size up to the current one costs O(log² n) hashes.
#[derive(Clone, Debug, Default)]
pub struct Tree {
    /// `levels[l][i]` is the hash of leaves `[i·2^l, (i+1)·2^l)`.
    levels: Vec<Vec<Hash>>,
}

impl Tree {
    /// The empty tree.
    pub fn new() -> Tree {
        Tree { levels: vec![Vec::new()] }
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    /// Appends the leaf with this data; returns its index.
    pub fn append(&mut self, data: &[u8]) -> Result<u64> {
        self.append_hash(leaf_hash(data))
    }

    /// Appends a leaf by its leaf hash; returns its index.
    pub fn append_hash(&mut self, leaf: Hash) -> Result<u64> {
        let index = self.size();
        if index >= MAX_TREE_SIZE {
            return Err(Error::Misuse { what: "the tree is full" });
        }
        let mut carry = leaf;
        let mut level = 0usize;
        loop {
            if self.levels.len() <= level {
                self.levels.push(Vec::new());
            }
            let row = self.levels.get_mut(level).ok_or(Error::Internal { what: "tree level" })?;
            row.push(carry);
            if !row.len().is_multiple_of(2) {
                return Ok(index);
            }
            let (left, right) = match row.as_slice() {
                [.., l, r] => (*l, *r),
                _ => return Err(Error::Internal { what: "tree row" }),
            };
            carry = node_hash(&left, &right);
            level += 1;
        }
    }

    fn node(&self, level: u32, index: u64) -> Result<Hash> {
        let row = self.levels.get(level as usize).ok_or(Error::Internal { what: "tree node level" })?;
        let i = usize::try_from(index).map_err(|_| Error::Internal { what: "tree node index" })?;
        row.get(i).copied().ok_or(Error::Internal { what: "tree node missing" })
    }

    /// `MTH(D[lo:hi])` for `lo < hi ≤ size`.
    fn subtree(&self, lo: u64, hi: u64) -> Result<Hash> {
        let n = hi - lo;
        if n.is_power_of_two() && lo.is_multiple_of(n) {
            return self.node(n.trailing_zeros(), lo / n);
        }
        let k = split(n);
        Ok(node_hash(&self.subtree(lo, lo + k)?, &self.subtree(lo + k, hi)?))
    }

    /// The tree head of the first `size` leaves.
    pub fn tree_head(&self, size: u64) -> Result<TreeHead> {
        if size > self.size() {
            return Err(Error::OutOfRange { index: size, size: self.size() });
        }
        let root = if size == 0 { Hash::empty_root() } else { self.subtree(0, size)? };
        Ok(TreeHead { size, root })
    }

    /// The inclusion proof `PATH(index, D[size])` (RFC 6962 §2.1.1), leaf to root.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<InclusionProof> {
        if size > self.size() {
            return Err(Error::OutOfRange { index: size, size: self.size() });
        }
        if index >= size {
            return Err(Error::OutOfRange { index, size });
        }
        let mut out = Vec::new();
        self.path(index, 0, size, &mut out)?;
        Ok(InclusionProof { hashes: out })
    }

    fn path(&self, m: u64, lo: u64, hi: u64, out: &mut Vec<Hash>) -> Result<()> {
        if hi - lo == 1 {
            return Ok(());
        }
        let k = split(hi - lo);
        if m < lo + k {
            self.path(m, lo, lo + k, out)?;
            out.push(self.subtree(lo + k, hi)?);
        } else {
            self.path(m, lo + k, hi, out)?;
            out.push(self.subtree(lo, lo + k)?);
        }
        Ok(())
    }

    /// The consistency proof `PROOF(old, D[new])` (RFC 6962 §2.1.2); empty when `old` is 0 or equals `new`.
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<ConsistencyProof> {
        if new > self.size() {
            return Err(Error::OutOfRange { index: new, size: self.size() });
        }
        if old > new {
            return Err(Error::OutOfRange { index: old, size: new });
        }
        let mut out = Vec::new();
        if old > 0 {
            self.subproof(old, 0, new, true, &mut out)?;
        }
        Ok(ConsistencyProof { hashes: out })
    }

    fn subproof(&self, m: u64, lo: u64, hi: u64, whole: bool, out: &mut Vec<Hash>) -> Result<()> {
        let n = hi - lo;
        if m == n {
            if !whole {
                out.push(self.subtree(lo, hi)?);
            }
            return Ok(());
        }
        let k = split(n);
        if m <= k {
            self.subproof(m, lo, lo + k, whole, out)?;
            out.push(self.subtree(lo + k, hi)?);
        } else {
            self.subproof(m - k, lo + k, hi, false, out)?;
            out.push(self.subtree(lo, lo + k)?);
        }
        Ok(())
    }
}

fn encode_hashes(hashes: &[Hash]) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + HASH_LEN * hashes.len());
    out.push(PROOF_VERSION);
    // Every constructor keeps a proof within MAX_PROOF_HASHES (128) hashes, so the count fits a byte.
    out.push(u8::try_from(hashes.len()).unwrap_or(u8::MAX));
    for h in hashes {
        out.extend_from_slice(&h.0);
    }
    out
}

fn decode_hashes(bytes: &[u8], what: &'static str) -> Result<Vec<Hash>> {
    let (version, count, rest) = match bytes {
        [v, c, rest @ ..] => (*v, usize::from(*c), rest),
        _ => return Err(Error::Malformed { what }),
    };
    if version != PROOF_VERSION || count > MAX_PROOF_HASHES || rest.len() != count * HASH_LEN {
        return Err(Error::Malformed { what });
    }
    Ok(rest
        .chunks_exact(HASH_LEN)
        .map(|c| {
            let mut h = [0u8; HASH_LEN];
            h.copy_from_slice(c);
            Hash(h)
        })
        .collect())
}

/// An RFC 6962 inclusion proof (the audit path, leaf to root).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct InclusionProof {
    hashes: Vec<Hash>,
}

/// An RFC 6962 consistency proof.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ConsistencyProof {
    hashes: Vec<Hash>,
}

macro_rules! proof_common {
    ($t:ident, $what:literal) => {
        impl $t {
            /// A proof from its hashes, in RFC 6962 order; refuses more than [`MAX_PROOF_HASHES`].
            pub fn from_hashes(hashes: Vec<Hash>) -> Result<$t> {
                if hashes.len() > MAX_PROOF_HASHES {
                    return Err(Error::Malformed { what: $what });
                }
                Ok($t { hashes })
            }
            /// The proof's hashes, in RFC 6962 order.
            pub fn hashes(&self) -> &[Hash] {
                &self.hashes
            }
            /// Wire encoding: `version ‖ u8 count ‖ count × 32-byte hash`.
            pub fn encode(&self) -> Vec<u8> {
                encode_hashes(&self.hashes)
            }
            /// Decodes [`Self::encode`]'s output; refuses another version, more than [`MAX_PROOF_HASHES`] hashes
            /// and any missing or trailing byte.
            pub fn decode(bytes: &[u8]) -> Result<$t> {
                Ok($t { hashes: decode_hashes(bytes, $what)? })
            }
            fn concat(&self) -> Vec<u8> {
                self.hashes.iter().flat_map(|h| h.0).collect()
            }
        }
    };
}
proof_common!(InclusionProof, "inclusion proof encoding");
proof_common!(ConsistencyProof, "consistency proof encoding");

fn root(head: &TreeHead) -> RootHash<Sha256> {
    RootHash::new(head.root.0.into(), head.size)
}

/// Verifies that `data` is the leaf at `index` of the tree `head` (RFC 9162 §2.1.3.2, by `ct-merkle`).
pub fn verify_inclusion(data: &[u8], index: u64, proof: &InclusionProof, head: &TreeHead) -> Result<()> {
    if head.size > MAX_TREE_SIZE || proof.hashes.len() > MAX_PROOF_HASHES {
        return Err(Error::InclusionProofInvalid);
    }
    if index >= head.size {
        return Err(Error::OutOfRange { index, size: head.size });
    }
    let p = CtInclusion::<Sha256>::try_from_bytes(proof.concat()).map_err(|_| Error::InclusionProofInvalid)?;
    root(head).verify_inclusion(&data, index, &p).map_err(|_| Error::InclusionProofInvalid)
}

/// Verifies that the tree `new` extends the tree `old` (RFC 9162 §2.1.4.2, by `ct-merkle`). Every tree extends
/// the empty one (the proof must then be empty and `old.root` the empty root); equal sizes need an empty proof and
/// equal roots.
pub fn verify_consistency(old: &TreeHead, new: &TreeHead, proof: &ConsistencyProof) -> Result<()> {
    if new.size > MAX_TREE_SIZE || proof.hashes.len() > MAX_PROOF_HASHES {
        return Err(Error::ConsistencyProofInvalid);
    }
    if old.size > new.size {
        return Err(Error::Rollback { seen: old.size, offered: new.size });
    }
    if old.size == 0 {
        return if proof.hashes.is_empty() && old.root == Hash::empty_root() {
            Ok(())
        } else {
            Err(Error::ConsistencyProofInvalid)
        };
    }
    let p = CtConsistency::<Sha256>::try_from_bytes(proof.concat()).map_err(|_| Error::ConsistencyProofInvalid)?;
    root(new).verify_consistency(&root(old), &p).map_err(|_| Error::ConsistencyProofInvalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_is_largest_power_below() {
        assert_eq!(split(2), 1);
        assert_eq!(split(3), 2);
        assert_eq!(split(4), 2);
        assert_eq!(split(5), 4);
        assert_eq!(split(8), 4);
        assert_eq!(split(9), 8);
        assert_eq!(split(u64::MAX), 1 << 63);
    }
}
