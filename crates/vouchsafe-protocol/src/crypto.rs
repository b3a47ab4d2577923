//! Group, KDF and AEAD building blocks shared by the client and server halves of the protocol.
//!
//! Everything here that touches secrets is constant-time (curve25519-dalek's `*` and `RistrettoBasepointTable`,
//! ChaCha20-Poly1305's tag check). Functions whose name starts with `vartime_` only ever see public data.

use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Nonce, Tag};
use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::IsIdentity;
use hkdf::{Hkdf, HkdfExtract};
use rand_core::CryptoRng;
use sha2::{Digest, Sha256, Sha512};
use zeroize::Zeroizing;

use crate::error::{Error, InvalidInput, Misuse, Result};
use crate::labels::*;

/// AEAD nonce length (random 96-bit nonces).
pub const NONCE_LEN: usize = 12;
/// AEAD tag length.
pub const TAG_LEN: usize = 16;
/// Overhead of one sealed box: nonce ‖ ciphertext ‖ tag.
pub const SEAL_OVERHEAD: usize = NONCE_LEN + TAG_LEN;

/// Canonical encoding of 1/2 = (ℓ + 1)/2 in the scalar field.
const HALF_BYTES: [u8; 32] = [
    247, 233, 122, 46, 141, 49, 9, 44, 107, 206, 123, 81, 239, 124, 111, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 8,
];

/// 1/2 in the scalar field, used to halve scalars so that `double_and_compress_batch` returns the compressions of
/// the points themselves (a constant: no inversion on the hot path). `HALF_BYTES` is canonical (below ℓ), so the
/// reduction is the identity on it and cannot fail (a test checks 2 · half() = 1).
pub fn half() -> Scalar {
    Scalar::from_bytes_mod_order(HALF_BYTES)
}

/// H(y) under the epoch's domain-separation nonce. `y` must be at most [`MAX_ITEM_LEN`] bytes (checked by callers).
pub fn hash_to_group(nonce: &[u8; 16], y: &[u8]) -> RistrettoPoint {
    let len = (y.len() as u16).to_le_bytes();
    let mut h = Sha512::new();
    h.update(LABEL_H2G);
    h.update(nonce);
    h.update(len);
    h.update(y);
    RistrettoPoint::from_hash(h)
}

/// Checks an indicator / image hash before it is hashed into the group.
pub(crate) fn check_item(y: &[u8]) -> Result<()> {
    if y.is_empty() {
        return Err(Error::Misuse(Misuse::Item { reason: "empty" }));
    }
    if y.len() > MAX_ITEM_LEN {
        return Err(Error::Misuse(Misuse::Item { reason: "longer than MAX_ITEM_LEN" }));
    }
    Ok(())
}

/// A uniformly random non-zero scalar.
pub fn random_nonzero_scalar<R: CryptoRng + ?Sized>(rng: &mut R) -> Scalar {
    loop {
        let s = Scalar::random(rng);
        if s != Scalar::ZERO {
            return s;
        }
    }
}

/// Decodes a canonical, non-identity ristretto255 point.
pub fn decode_point(bytes: &[u8; 32], what: &'static str) -> Result<RistrettoPoint> {
    let p = CompressedRistretto(*bytes).decompress().ok_or(Error::Invalid(InvalidInput::NonCanonicalPoint { what }))?;
    if p.is_identity() {
        return Err(Error::Invalid(InvalidInput::IdentityPoint { what }));
    }
    Ok(p)
}

/// Decodes a canonical scalar.
pub fn decode_scalar(bytes: &[u8; 32], what: &'static str) -> Result<Scalar> {
    Option::<Scalar>::from(Scalar::from_canonical_bytes(*bytes))
        .ok_or(Error::Invalid(InvalidInput::NonCanonicalScalar { what }))
}

/// `K = HKDF-SHA256(salt = LABEL_ROUTE_KEY, ikm = S ‖ Q, info = ctx ‖ id)`.
pub fn position_key(s: &[u8; 32], q: &[u8; 32], ctx: &[u8; 32], id: &[u8; 16]) -> Zeroizing<[u8; 32]> {
    let hk = hkdf_two(LABEL_ROUTE_KEY, s, q);
    let mut out = Zeroizing::new([0u8; 32]);
    expand32(hk.expand_multi_info(&[ctx, id], &mut out[..]));
    out
}

/// HKDF-SHA256-Extract over the concatenation `a ‖ b` of two 32-byte inputs (fed in turn, no copy).
fn hkdf_two(salt: &[u8], a: &[u8; 32], b: &[u8; 32]) -> Hkdf<Sha256> {
    let mut ex = HkdfExtract::<Sha256>::new(Some(salt));
    ex.input_ikm(a);
    ex.input_ikm(b);
    ex.finalize().1
}

/// The result of an HKDF-SHA256 expansion into 32 bytes. HKDF-SHA256 refuses only outputs longer than 255 · 32
/// bytes, so this cannot fail; a zero key after a silently ignored error would be far worse than stopping.
#[allow(clippy::expect_used)]
fn expand32<E: core::fmt::Debug>(r: core::result::Result<(), E>) {
    r.expect("32 bytes is a valid HKDF-SHA256 output length");
}

/// `adkey = HKDF-SHA256(salt = LABEL_ADKEY, ikm = a0, info = order_id)`.
pub fn adkey(a0: &Scalar, order_id: &[u8; 16]) -> Zeroizing<[u8; 32]> {
    let a0b = Zeroizing::new(a0.to_bytes());
    let hk = Hkdf::<Sha256>::new(Some(LABEL_ADKEY), &a0b[..]);
    let mut out = Zeroizing::new([0u8; 32]);
    expand32(hk.expand(order_id, &mut out[..]));
    out
}

/// The key of one voucher's `adct`: `HKDF-SHA256(salt = LABEL_AD_ITEM_KEY, ikm = adkey ‖ rkey)`. Opening `adct`
/// needs both the account's adkey (threshold) and the voucher's rkey (a match).
pub fn ad_item_key(adkey: &[u8; 32], rkey: &[u8; 32]) -> Zeroizing<[u8; 32]> {
    let hk = hkdf_two(LABEL_AD_ITEM_KEY, adkey, rkey);
    let mut out = Zeroizing::new([0u8; 32]);
    expand32(hk.expand(&[], &mut out[..]));
    out
}

/// AEAD associated data of `adct`: `LABEL_ADCT_AAD ‖ order_id ‖ id`.
pub fn adct_aad(order_id: &[u8; 16], id: &[u8; 16]) -> Vec<u8> {
    let mut a = Vec::with_capacity(LABEL_ADCT_AAD.len() + 32);
    a.extend_from_slice(LABEL_ADCT_AAD);
    a.extend_from_slice(order_id);
    a.extend_from_slice(id);
    a
}

/// Length of the AAD of a position ciphertext.
pub(crate) const CT_AAD_LEN: usize = LABEL_CT_AAD.len() + 32;

/// AAD of a position ciphertext: `LABEL_CT_AAD ‖ ctx`.
pub(crate) fn ct_aad(ctx: &[u8; 32]) -> [u8; CT_AAD_LEN] {
    let mut out = [0u8; CT_AAD_LEN];
    for (o, b) in out.iter_mut().zip(LABEL_CT_AAD.iter().chain(ctx)) {
        *o = *b;
    }
    out
}

/// AAD of `rct`: `LABEL_RCT_AAD ‖ ctx ‖ id`.
pub(crate) fn rct_aad(ctx: &[u8; 32], id: &[u8; 16]) -> Vec<u8> {
    let mut a = Vec::with_capacity(LABEL_RCT_AAD.len() + 48);
    a.extend_from_slice(LABEL_RCT_AAD);
    a.extend_from_slice(ctx);
    a.extend_from_slice(id);
    a
}

/// Seals `plaintext` under `key` with a random 96-bit nonce into `out`, which must be exactly
/// `plaintext.len() + SEAL_OVERHEAD` long: nonce ‖ ciphertext ‖ tag.
pub fn seal_into<R: CryptoRng + ?Sized>(
    key: &[u8; 32],
    aad: &[u8],
    plaintext: &[u8],
    out: &mut [u8],
    rng: &mut R,
) -> Result<()> {
    if out.len() != plaintext.len() + SEAL_OVERHEAD {
        return Err(Error::internal("sealed-box buffer has the wrong length"));
    }
    let (nonce, rest) = out.split_at_mut(NONCE_LEN);
    let (body, tag_out) = rest.split_at_mut(plaintext.len());
    rng.fill_bytes(nonce);
    body.copy_from_slice(plaintext);
    let nonce = Nonce::try_from(&*nonce).map_err(|_| Error::internal("nonce is NONCE_LEN bytes"))?;
    let tag = ChaCha20Poly1305::new(key.into())
        .encrypt_inout_detached(&nonce, aad, body.into())
        // ChaCha20-Poly1305 only refuses messages longer than 256 GiB; ours are bounded by MAX_AD_LEN.
        .map_err(|_| Error::internal("ChaCha20-Poly1305 refused a bounded message"))?;
    tag_out.copy_from_slice(&tag);
    Ok(())
}

/// Seals `plaintext` under `key` with a random 96-bit nonce: returns nonce ‖ ciphertext ‖ tag.
pub fn seal<R: CryptoRng + ?Sized>(key: &[u8; 32], aad: &[u8], plaintext: &[u8], rng: &mut R) -> Result<Vec<u8>> {
    let mut out = vec![0u8; plaintext.len() + SEAL_OVERHEAD];
    seal_into(key, aad, plaintext, &mut out, rng)?;
    Ok(out)
}

/// Opens nonce ‖ ciphertext ‖ tag into `out` (which must be `sealed.len() - SEAL_OVERHEAD` long).
/// Returns false (and zeroes `out`) if the tag does not verify.
pub fn open_into(key: &[u8; 32], aad: &[u8], sealed: &[u8], out: &mut [u8]) -> bool {
    if sealed.len() < SEAL_OVERHEAD || out.len() != sealed.len() - SEAL_OVERHEAD {
        return false;
    }
    let (nonce, rest) = sealed.split_at(NONCE_LEN);
    let (ct, tag) = rest.split_at(rest.len() - TAG_LEN);
    out.copy_from_slice(ct);
    let (Ok(nonce), Ok(tag)) = (Nonce::try_from(nonce), Tag::try_from(tag)) else {
        return false;
    };
    let cipher = ChaCha20Poly1305::new(key.into());
    if cipher.decrypt_inout_detached(&nonce, aad, out.into(), &tag).is_ok() {
        true
    } else {
        out.iter_mut().for_each(|b| *b = 0);
        false
    }
}

/// Opens a sealed box into a fresh zeroizing buffer.
pub fn open(key: &[u8; 32], aad: &[u8], sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let len = sealed.len().checked_sub(SEAL_OVERHEAD)?;
    let mut out = Zeroizing::new(vec![0u8; len]);
    open_into(key, aad, sealed, &mut out).then_some(out)
}

/// SHA-256 over labelled parts.
pub(crate) fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_is_the_inverse_of_two() {
        assert_eq!(half() * Scalar::from(2u8), Scalar::ONE);
        assert_eq!(half(), Scalar::from(2u8).invert());
    }
}
