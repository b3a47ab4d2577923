#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
//! RFC 6962 known answers and generated-proof round trips.
//!
//! The vectors are the reference test tree of the Certificate Transparency project (the eight leaves below and
//! their roots, audit paths and consistency proofs, as in certificate-transparency's `merkle_tree_test.cc`
//! and Go's `transparency-dev/merkle` `testonly` data), which follow from RFC 6962 §2.1 by hand: e.g. the root
//! of size 1 is `SHA-256(0x00)` = 6e340b9c….

use proptest::prelude::*;
use vouchsafe_log::merkle::{Hash, Tree, leaf_hash, node_hash, verify_consistency, verify_inclusion};
use vouchsafe_log::{ConsistencyProof, Error, InclusionProof, TreeHead};

const LEAVES: [&str; 8] =
    ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"];

const ROOTS: [&str; 9] = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

fn h(s: &str) -> Hash {
    Hash(hex::decode(s).unwrap().try_into().unwrap())
}

fn data(i: usize) -> Vec<u8> {
    hex::decode(LEAVES[i]).unwrap()
}

fn reference_tree() -> Tree {
    let mut t = Tree::new();
    for i in 0..8 {
        assert_eq!(t.append(&data(i)).unwrap(), i as u64);
    }
    t
}

fn head(t: &Tree, size: u64) -> TreeHead {
    t.tree_head(size).unwrap()
}

#[test]
fn roots_match_rfc6962_reference_tree() {
    let t = reference_tree();
    assert_eq!(Hash::empty_root(), h(ROOTS[0]));
    for (size, root) in ROOTS.iter().enumerate() {
        assert_eq!(t.tree_head(size as u64).unwrap().root, h(root), "size {size}");
    }
    // The hashing primitives on their own: leaf = SHA-256(0x00 ‖ d), node = SHA-256(0x01 ‖ l ‖ r).
    assert_eq!(leaf_hash(&[]), h(ROOTS[1]));
    assert_eq!(node_hash(&leaf_hash(&data(0)), &leaf_hash(&data(1))), h(ROOTS[2]));
}

#[test]
fn inclusion_proofs_match_reference() {
    let t = reference_tree();
    let cases: [(u64, u64, &[&str]); 4] = [
        (
            0,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            5,
            8,
            &[
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (2, 3, &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
        (0, 1, &[]),
    ];
    for (index, size, want) in cases {
        let want = InclusionProof::from_hashes(want.iter().map(|s| h(s)).collect()).unwrap();
        let got = t.inclusion_proof(index, size).unwrap();
        assert_eq!(got, want, "inclusion ({index}, {size})");
        verify_inclusion(&data(index as usize), index, &want, &head(&t, size)).unwrap();
    }
}

#[test]
fn consistency_proofs_match_reference() {
    let t = reference_tree();
    let cases: [(u64, u64, &[&str]); 3] = [
        (
            2,
            8,
            &[
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            6,
            8,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (8, 8, &[]),
    ];
    for (old, new, want) in cases {
        let want = ConsistencyProof::from_hashes(want.iter().map(|s| h(s)).collect()).unwrap();
        assert_eq!(t.consistency_proof(old, new).unwrap(), want, "consistency ({old}, {new})");
        verify_consistency(&head(&t, old), &head(&t, new), &want).unwrap();
    }
}

#[test]
fn degenerate_consistency_cases() {
    let t = reference_tree();
    let empty = ConsistencyProof::default();
    // Every tree extends the empty tree, with an empty proof; not with a bogus old root or a non-empty proof.
    verify_consistency(&TreeHead::empty(), &head(&t, 8), &empty).unwrap();
    let bogus_empty = TreeHead { size: 0, root: h(ROOTS[1]) };
    assert_eq!(verify_consistency(&bogus_empty, &head(&t, 8), &empty), Err(Error::ConsistencyProofInvalid));
    let one = ConsistencyProof::from_hashes(vec![h(ROOTS[1])]).unwrap();
    assert_eq!(verify_consistency(&TreeHead::empty(), &head(&t, 8), &one), Err(Error::ConsistencyProofInvalid));
    // Equal sizes: empty proof and equal roots.
    verify_consistency(&head(&t, 4), &head(&t, 4), &empty).unwrap();
    let other4 = TreeHead { size: 4, root: h(ROOTS[5]) };
    assert!(verify_consistency(&head(&t, 4), &other4, &empty).is_err());
    assert!(verify_consistency(&head(&t, 4), &head(&t, 4), &one).is_err());
    // Backwards is a rollback.
    assert!(matches!(verify_consistency(&head(&t, 8), &head(&t, 6), &empty), Err(Error::Rollback { .. })));
    // A missing proof is refused.
    assert!(verify_consistency(&head(&t, 6), &head(&t, 8), &empty).is_err());
}

#[test]
fn out_of_range_and_huge_sizes_are_errors_not_panics() {
    let t = reference_tree();
    assert!(t.inclusion_proof(8, 8).is_err());
    assert!(t.inclusion_proof(0, 9).is_err());
    assert!(t.consistency_proof(5, 3).is_err());
    assert!(t.consistency_proof(0, 9).is_err());
    assert!(t.tree_head(9).is_err());
    let p = t.inclusion_proof(5, 8).unwrap();
    assert!(verify_inclusion(&data(5), 8, &p, &head(&t, 8)).is_err());
    let huge = TreeHead { size: u64::MAX, root: h(ROOTS[8]) };
    assert!(verify_inclusion(&data(5), u64::MAX - 1, &p, &huge).is_err());
    let c = t.consistency_proof(6, 8).unwrap();
    assert!(verify_consistency(&head(&t, 6), &huge, &c).is_err());
    assert!(verify_consistency(&TreeHead { size: u64::MAX - 1, ..huge }, &huge, &c).is_err());
}

#[test]
fn proof_encoding_round_trips_and_is_strict() {
    let t = reference_tree();
    let p = t.inclusion_proof(5, 8).unwrap();
    let enc = p.encode();
    assert_eq!(InclusionProof::decode(&enc).unwrap(), p);
    assert!(InclusionProof::decode(&enc[..enc.len() - 1]).is_err());
    let mut longer = enc.clone();
    longer.push(0);
    assert!(InclusionProof::decode(&longer).is_err());
    let mut v2 = enc.clone();
    v2[0] = 2;
    assert!(InclusionProof::decode(&v2).is_err());
    assert!(InclusionProof::decode(&[]).is_err());
    let c = t.consistency_proof(6, 8).unwrap();
    assert_eq!(ConsistencyProof::decode(&c.encode()).unwrap(), c);
    assert!(InclusionProof::from_hashes(vec![Hash([0; 32]); 129]).is_err());
}

/// Every generated proof verifies and every small tampering fails, for every index and pair of sizes up to 40.
#[test]
fn exhaustive_small_trees() {
    let mut t = Tree::new();
    let datum = |i: u64| format!("leaf {i}").into_bytes();
    for i in 0..40u64 {
        t.append(&datum(i)).unwrap();
    }
    for size in 1..=40u64 {
        let th = head(&t, size);
        for index in 0..size {
            let p = t.inclusion_proof(index, size).unwrap();
            verify_inclusion(&datum(index), index, &p, &th).unwrap();
            assert!(verify_inclusion(&datum(index + 1), index, &p, &th).is_err());
            if size > 1 {
                let other = (index + 1) % size;
                assert!(verify_inclusion(&datum(index), other, &p, &th).is_err(), "{index} as {other} in {size}");
            }
        }
        for old in 0..=size {
            let p = t.consistency_proof(old, size).unwrap();
            verify_consistency(&head(&t, old), &th, &p).unwrap();
        }
    }
}

fn flip(hashes: &[Hash], which: usize, byte: usize, bit: u8) -> Vec<Hash> {
    let mut v = hashes.to_vec();
    v[which].0[byte] ^= 1 << bit;
    v
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn inclusion_verifies_and_tampering_fails(size in 1u64..300, index_seed: u64, which: usize, byte in 0usize..32,
                                               bit in 0u8..8) {
        let mut t = Tree::new();
        for i in 0..size {
            t.append(&i.to_be_bytes()).unwrap();
        }
        let index = index_seed % size;
        let th = head(&t, size);
        let p = t.inclusion_proof(index, size).unwrap();
        prop_assert!(verify_inclusion(&index.to_be_bytes(), index, &p, &th).is_ok());
        if !p.hashes().is_empty() {
            let bad = InclusionProof::from_hashes(flip(p.hashes(), which % p.hashes().len(), byte, bit)).unwrap();
            prop_assert!(verify_inclusion(&index.to_be_bytes(), index, &bad, &th).is_err());
            let short = InclusionProof::from_hashes(p.hashes()[1..].to_vec()).unwrap();
            prop_assert!(verify_inclusion(&index.to_be_bytes(), index, &short, &th).is_err());
        }
        let mut long = p.hashes().to_vec();
        long.push(Hash([0xab; 32]));
        let long = InclusionProof::from_hashes(long).unwrap();
        prop_assert!(verify_inclusion(&index.to_be_bytes(), index, &long, &th).is_err());
        let mut root = th;
        root.root.0[byte] ^= 1 << bit;
        prop_assert!(verify_inclusion(&index.to_be_bytes(), index, &p, &root).is_err());
    }

    #[test]
    fn consistency_verifies_and_tampering_fails(new in 1u64..300, old_seed: u64, which: usize, byte in 0usize..32,
                                                 bit in 0u8..8) {
        let mut t = Tree::new();
        for i in 0..new {
            t.append(&i.to_be_bytes()).unwrap();
        }
        let old = old_seed % (new + 1);
        let (o, n) = (head(&t, old), head(&t, new));
        let p = t.consistency_proof(old, new).unwrap();
        prop_assert!(verify_consistency(&o, &n, &p).is_ok());
        if !p.hashes().is_empty() {
            let bad = ConsistencyProof::from_hashes(flip(p.hashes(), which % p.hashes().len(), byte, bit)).unwrap();
            prop_assert!(verify_consistency(&o, &n, &bad).is_err());
            let short = ConsistencyProof::from_hashes(p.hashes()[..p.hashes().len() - 1].to_vec()).unwrap();
            prop_assert!(verify_consistency(&o, &n, &short).is_err());
        }
        let mut long = p.hashes().to_vec();
        long.push(Hash([0xcd; 32]));
        prop_assert!(verify_consistency(&o, &n, &ConsistencyProof::from_hashes(long).unwrap()).is_err());
        // Every tree extends the empty one, so from size 0 there is no root to get wrong.
        if old > 0 {
            let mut bad_new = n;
            bad_new.root.0[byte] ^= 1 << bit;
            prop_assert!(verify_consistency(&o, &bad_new, &p).is_err());
            let mut bad_old = o;
            bad_old.root.0[byte] ^= 1 << bit;
            prop_assert!(verify_consistency(&bad_old, &n, &p).is_err());
        }
    }
}
