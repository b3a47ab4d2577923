//! Every domain-separation label and version constant of protocol v1, in one place.
//!
//! Each label names the protocol, its version and the purpose of the derivation, so that no two uses of a hash,
//! KDF or AEAD in the protocol can ever share an input space. `docs/PROTOCOL.md` lists them with their use.

/// Version byte that starts every wire and storage encoding of protocol v1.
pub const WIRE_VERSION: u8 = 1;

/// Number of cuckoo position functions (k). Fixed by the protocol.
pub const K: usize = 3;

/// Hash-to-group H(y): `hash_from_bytes::<Sha512>(LABEL_H2G ‖ nonce ‖ len(y) ‖ y)`.
pub const LABEL_H2G: &[u8] = b"vouchsafe/v1/hash-to-group";
/// Cuckoo position functions h_1..h_3.
pub const LABEL_POSITIONS: &[u8] = b"vouchsafe/v1/cuckoo-positions";
/// Uniformly random points for empty table slots (hash-to-group of a fresh seed and the slot index).
pub const LABEL_FILLER: &[u8] = b"vouchsafe/v1/table-filler";
/// The epoch context `ctx = SHA-256(LABEL_CONTEXT ‖ encode(EpochParams))`.
pub const LABEL_CONTEXT: &[u8] = b"vouchsafe/v1/epoch-context";
/// HKDF salt for the per-position key `K_j = KDF(S_j ‖ Q, ctx ‖ id)`.
pub const LABEL_ROUTE_KEY: &[u8] = b"vouchsafe/v1/kdf/position-key";
/// AEAD associated data prefix of `rct`.
pub const LABEL_RCT_AAD: &[u8] = b"vouchsafe/v1/aead/rct";
/// AEAD associated data prefix of `ct_j`.
pub const LABEL_CT_AAD: &[u8] = b"vouchsafe/v1/aead/ct";
/// HKDF salt for `adkey = KDF(a0)`.
pub const LABEL_ADKEY: &[u8] = b"vouchsafe/v1/kdf/adkey";
/// HKDF salt for the per-voucher ad key `KDF(adkey ‖ rkey)`.
pub const LABEL_AD_ITEM_KEY: &[u8] = b"vouchsafe/v1/kdf/ad-item-key";
/// AEAD associated data prefix of `adct`.
pub const LABEL_ADCT_AAD: &[u8] = b"vouchsafe/v1/aead/adct";
/// Client seed expansion: Shamir coefficient i (i = 0 is a0).
pub const LABEL_SEED_SHAMIR: &[u8] = b"vouchsafe/v1/client-seed/shamir-coefficient";
/// Client seed expansion: the image PRF key.
pub const LABEL_SEED_PRF: &[u8] = b"vouchsafe/v1/client-seed/prf-key";
/// Client seed expansion: the coefficients of detectable-hash polynomial i (info `label ‖ u32 LE i`; the coefficients are
/// consecutive 8-byte words of one expansion).
pub const LABEL_SEED_DETECT: &[u8] = b"vouchsafe/v1/client-seed/detectable-hash-coefficient";
/// The public id of a client state: `HKDF-Expand(seed, LABEL_SEED_STATE_ID, 16)` (docs/PROTOCOL.md §4).
pub const LABEL_SEED_STATE_ID: &[u8] = b"vouchsafe/v1/client-seed/state-id";
/// The image PRF `(x, x', tag) = PRF(y)`.
pub const LABEL_IMAGE_PRF: &[u8] = b"vouchsafe/v1/image-prf";
/// Hash of one table chunk.
pub const LABEL_CHUNK: &[u8] = b"vouchsafe/v1/table/chunk";
/// Inner node of the Merkle tree over chunk hashes.
pub const LABEL_MERKLE_NODE: &[u8] = b"vouchsafe/v1/table/merkle-node";
/// The table root that is published in the append-only log.
pub const LABEL_TABLE_ROOT: &[u8] = b"vouchsafe/v1/table/root";

/// Largest indicator (canonical perceptual-hash bytes) the protocol accepts.
pub const MAX_ITEM_LEN: usize = 1024;
/// Largest threshold T: the threshold crate's bound, the one definition (the seed expansion of one detectable-hash
/// polynomial, 8·(T − 1) bytes, must also fit one HKDF-SHA256 output of at most 8160 bytes).
pub const MAX_THRESHOLD: u16 = narrow(vouchsafe_threshold::MAX_THRESHOLD);
/// Largest synthetic cap s: the threshold crate's bound on detectable-hash polynomials.
pub const MAX_SYNTHETIC_CAP: u16 = narrow(vouchsafe_threshold::MAX_SYNTHETIC);

// The seed expansion of the largest detectable-hash polynomial fits one HKDF-SHA256 output, or the build stops.
const _: () = assert!((MAX_THRESHOLD as usize - 1) * 8 <= 255 * 32);

/// The wire carries T and s as u16: a bound that does not fit stops the build.
const fn narrow(v: usize) -> u16 {
    assert!(v <= u16::MAX as usize, "bound does not fit the wire's u16");
    v as u16
}
/// Largest padded associated-data length.
pub const MAX_AD_LEN: u16 = 16384;
/// Largest table (slots).
pub const MAX_SLOTS: u32 = 1 << 26;
