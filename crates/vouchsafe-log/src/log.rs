//! The append-only log: leaves, tree heads and proofs. In memory and sans-IO; the server persists the leaves
//! and rebuilds the log from them.

use crate::error::{Error, Result};
use crate::leaf::Leaf;
use crate::merkle::{ConsistencyProof, InclusionProof, Tree, TreeHead};

/// An append-only log of [`Leaf`]s over an RFC 6962 Merkle tree.
#[derive(Clone, Debug, Default)]
pub struct Log {
    tree: Tree,
    leaves: Vec<Leaf>,
}

impl Log {
    /// The empty log.
    pub fn new() -> Log {
        Log { tree: Tree::new(), leaves: Vec::new() }
    }

    /// Appends a leaf; returns its index. Nothing can be removed or replaced.
    pub fn append(&mut self, leaf: Leaf) -> Result<u64> {
        let index = self.tree.append(&leaf.encode())?;
        self.leaves.push(leaf);
        Ok(index)
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.tree.size()
    }

    /// The leaf at `index`.
    pub fn leaf(&self, index: u64) -> Option<&Leaf> {
        usize::try_from(index).ok().and_then(|i| self.leaves.get(i))
    }

    /// The current tree head.
    pub fn tree_head(&self) -> TreeHead {
        // The current size is always in range.
        self.tree.tree_head(self.size()).unwrap_or_else(|_| TreeHead::empty())
    }

    /// The tree head of the first `size` leaves (an earlier checkpoint's).
    pub fn tree_head_at(&self, size: u64) -> Result<TreeHead> {
        self.tree.tree_head(size)
    }

    /// Proof that leaf `index` is in the tree of the first `size` leaves.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<InclusionProof> {
        self.tree.inclusion_proof(index, size)
    }

    /// Proof that the tree of the first `new` leaves extends that of the first `old`.
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<ConsistencyProof> {
        if old > new {
            return Err(Error::OutOfRange { index: old, size: new });
        }
        self.tree.consistency_proof(old, new)
    }
}
