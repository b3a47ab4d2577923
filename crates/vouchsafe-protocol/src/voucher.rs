//! The voucher wire format and the server's opening of a voucher.

use core::fmt;

use curve25519_dalek::constants::RISTRETTO_BASEPOINT_POINT;
use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use subtle::{Choice, ConstantTimeEq};
use vouchsafe_threshold::{Fp, Share};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::crypto::{NONCE_LEN, SEAL_OVERHEAD, ct_aad, decode_point, decode_scalar, open_into, position_key, rct_aad};
use crate::error::{Error, InvalidInput, Misuse, Result};
use crate::labels::*;
use crate::params::EpochParams;
use crate::table::BlindingKey;
use crate::wire::Reader;

/// Length of one position ciphertext `ct_j`: nonce ‖ AEAD(rkey) ‖ tag.
pub const CT_LEN: usize = NONCE_LEN + 32 + crate::crypto::TAG_LEN;
/// Header: version ‖ epoch ‖ id ‖ Q.
const HEADER_LEN: usize = 1 + 8 + 16 + 32;

/// Byte layout of the variable-size parts, fixed per epoch by (s, ad_len).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VoucherLayout {
    /// Synthetic cap s (= number of detectable-hash values r_i).
    pub synthetic_cap: usize,
    /// Padded associated-data length.
    pub ad_len: usize,
}

impl VoucherLayout {
    /// Layout for an epoch.
    pub fn of(params: &EpochParams) -> Self {
        VoucherLayout { synthetic_cap: params.synthetic_cap as usize, ad_len: params.ad_len as usize }
    }
    /// `adct` = nonce ‖ AEAD(KDF(adkey ‖ rkey), pad(ad)) ‖ tag.
    pub fn adct_len(&self) -> usize {
        self.ad_len + SEAL_OVERHEAD
    }
    /// Plaintext of `rct`: x' ‖ r_1..r_s ‖ share.x ‖ share.y.
    pub fn rct_plain_len(&self) -> usize {
        8 + 8 * self.synthetic_cap + 64
    }
    /// `rct` = nonce ‖ AEAD(rkey, plaintext) ‖ tag.
    pub fn rct_len(&self) -> usize {
        self.rct_plain_len() + SEAL_OVERHEAD
    }
    /// Total voucher length; identical for real, synthetic and null vouchers.
    pub fn voucher_len(&self) -> usize {
        HEADER_LEN + K * CT_LEN + self.rct_len() + self.adct_len()
    }
    /// Length of [`OpenedVoucher::encode`] for a voucher of this layout (the same for every opened voucher of an
    /// epoch): `1 + 8 + 16 + 8 + 2 + 8·s + 96 + 2 + adct_len`.
    pub fn opened_len(&self) -> usize {
        1 + 8 + 16 + 8 + 2 + 8 * self.synthetic_cap + 96 + 2 + self.adct_len()
    }
}

/// A voucher as sent on the wire. Real, synthetic and null vouchers share this type, length and encoding.
#[derive(Clone, PartialEq, Eq)]
pub struct Voucher {
    /// Epoch whose table and key it was made for.
    pub epoch: u64,
    /// Random public identifier (the idempotency key of the voucher).
    pub id: [u8; 16],
    /// Q, compressed.
    pub q: [u8; 32],
    /// The shuffled position ciphertexts.
    pub cts: [[u8; CT_LEN]; K],
    /// The ciphertext of (x', r, share) under rkey.
    pub rct: Vec<u8>,
    /// The associated data, under a key derived from the account's adkey and this voucher's rkey.
    pub adct: Vec<u8>,
}

impl fmt::Debug for Voucher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Voucher").field("epoch", &self.epoch).field("id", &hex16(&self.id)).finish_non_exhaustive()
    }
}

pub(crate) fn hex16(b: &[u8; 16]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl Voucher {
    /// `version ‖ epoch u64 ‖ id 16 ‖ Q 32 ‖ 3 × ct (60) ‖ rct ‖ adct`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + K * CT_LEN + self.rct.len() + self.adct.len());
        out.push(WIRE_VERSION);
        out.extend_from_slice(&self.epoch.to_le_bytes());
        out.extend_from_slice(&self.id);
        out.extend_from_slice(&self.q);
        for ct in &self.cts {
            out.extend_from_slice(ct);
        }
        out.extend_from_slice(&self.rct);
        out.extend_from_slice(&self.adct);
        out
    }

    /// Reads the epoch of an encoded voucher (to pick the epoch's key) without decoding the rest.
    pub fn peek_epoch(bytes: &[u8]) -> Result<u64> {
        let mut r = Reader::new("voucher", bytes);
        r.version(WIRE_VERSION)?;
        Ok(r.u64()?)
    }

    /// Reads the id of an encoded voucher (after its version and epoch) without decoding the rest.
    pub fn peek_id(bytes: &[u8]) -> Result<[u8; 16]> {
        let mut r = Reader::new("voucher", bytes);
        r.version(WIRE_VERSION)?;
        r.u64()?;
        Ok(r.array()?)
    }

    /// Decodes a voucher for an epoch: exact length, right version and epoch, Q canonical and not the identity.
    pub fn decode(bytes: &[u8], params: &EpochParams) -> Result<Self> {
        Ok(DecodedVoucher::decode(bytes, params)?.voucher)
    }
}

/// A decoded voucher together with its decompressed Q (so the server decompresses once).
#[derive(Clone, Debug)]
pub struct DecodedVoucher {
    /// The voucher.
    pub voucher: Voucher,
    q_point: RistrettoPoint,
}

impl DecodedVoucher {
    /// See [`Voucher::decode`].
    pub fn decode(bytes: &[u8], params: &EpochParams) -> Result<Self> {
        let layout = VoucherLayout::of(params);
        let mut r = Reader::new("voucher", bytes);
        r.version(WIRE_VERSION)?;
        if bytes.len() != layout.voucher_len() {
            return Err(Error::Invalid(InvalidInput::Length {
                what: "voucher",
                expected: layout.voucher_len(),
                got: bytes.len(),
            }));
        }
        let epoch = r.u64()?;
        if epoch != params.epoch {
            return Err(Error::Invalid(InvalidInput::Parameter { what: "voucher is for another epoch" }));
        }
        let id = r.array()?;
        let q = r.array()?;
        let q_point = decode_point(&q, "voucher Q")?;
        let mut cts = [[0u8; CT_LEN]; K];
        for ct in cts.iter_mut() {
            *ct = r.array()?;
        }
        let rct = r.take(layout.rct_len())?.to_vec();
        let adct = r.take(layout.adct_len())?.to_vec();
        r.finish()?;
        Ok(DecodedVoucher { voucher: Voucher { epoch, id, q, cts, rct, adct }, q_point })
    }
}

/// What the server learns from an opened voucher: the detectable-hash column, the Shamir share and the encrypted ad.
/// Secret-bearing (a share of the account's adkey secret, the voucher's rkey): zeroized on drop, redacted in
/// `Debug`, compared in constant time. Only [`Opener`] (a voucher that opened) and [`OpenedVoucher::decode`] (a
/// stored one) make one.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct OpenedVoucher {
    /// Voucher id.
    pub(crate) id: [u8; 16],
    /// Epoch it was opened under.
    pub(crate) epoch: u64,
    /// Detectable-hash abscissa x'.
    pub(crate) x_prime: Fp,
    /// Detectable-hash values r_1..r_s.
    pub(crate) r: Vec<Fp>,
    /// Shamir share (x, f(x)).
    pub(crate) share: Share,
    /// The voucher's rkey (secret): with the account's adkey it derives the key of `adct`.
    pub(crate) rkey: [u8; 32],
    /// `adct`, decryptable only with adkey and rkey.
    pub(crate) adct: Vec<u8>,
    /// Which of the three position ciphertexts opened (0-based, in the voucher's shuffled order), when this value
    /// came from [`Opener`]; `None` after [`OpenedVoucher::decode`]. Not part of the storage encoding, and not
    /// compared by `==`.
    pub(crate) position: Option<u8>,
}

impl ConstantTimeEq for OpenedVoucher {
    fn ct_eq(&self, other: &Self) -> Choice {
        let (a, b) = (self.encode(), other.encode());
        a.as_slice().ct_eq(b.as_slice())
    }
}

impl PartialEq for OpenedVoucher {
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(other).into()
    }
}

impl Eq for OpenedVoucher {}

impl fmt::Debug for OpenedVoucher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenedVoucher")
            .field("id", &hex16(&self.id))
            .field("epoch", &self.epoch)
            .finish_non_exhaustive()
    }
}

impl OpenedVoucher {
    /// The public voucher id.
    pub fn id(&self) -> &[u8; 16] {
        &self.id
    }

    /// The epoch it was opened under.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The detectable-hash abscissa x'.
    pub fn x_prime(&self) -> Fp {
        self.x_prime
    }

    /// The detectable-hash values r_1..r_s.
    pub fn r(&self) -> &[Fp] {
        &self.r
    }

    /// The Shamir share (x, f(x)).
    pub fn share(&self) -> &Share {
        &self.share
    }

    /// The encrypted associated data (openable only with the account's adkey and this voucher's rkey).
    pub fn adct(&self) -> &[u8] {
        &self.adct
    }

    /// Which of the voucher's three position ciphertexts opened (0-based, in the order they sit in the voucher), if
    /// this value came from opening; `None` for one decoded from storage (the index is not stored). The client
    /// shuffles the three, so the index is uniform whatever the voucher's kind: the leakage toolkit records it to
    /// check exactly that.
    pub fn position(&self) -> Option<u8> {
        self.position
    }

    /// The voucher's rkey (feature `hazmat`: known-answer tests and benches).
    #[cfg(feature = "hazmat")]
    pub fn rkey(&self) -> &[u8; 32] {
        &self.rkey
    }

    /// The encrypted associated data, mutable (feature `hazmat`: tests that tamper with it).
    #[cfg(feature = "hazmat")]
    pub fn adct_mut(&mut self) -> &mut Vec<u8> {
        &mut self.adct
    }

    fn from_plain(v: &Voucher, rkey: &[u8; 32], plain: &[u8], layout: VoucherLayout, position: u8) -> Result<Self> {
        let mut r = Reader::new("opened voucher", plain);
        let x_prime =
            Fp::from_le_bytes(r.array()?).ok_or(Error::Invalid(InvalidInput::NonCanonicalScalar { what: "x'" }))?;
        let mut rs = Vec::with_capacity(layout.synthetic_cap);
        for _ in 0..layout.synthetic_cap {
            rs.push(
                Fp::from_le_bytes(r.array()?).ok_or(Error::Invalid(InvalidInput::NonCanonicalScalar { what: "r" }))?,
            );
        }
        let x = decode_scalar(&r.array()?, "share x")?;
        if x == Scalar::ZERO {
            return Err(Error::Invalid(InvalidInput::Parameter { what: "share x must be non-zero" }));
        }
        let y = decode_scalar(&r.array()?, "share y")?;
        r.finish()?;
        Ok(OpenedVoucher {
            id: v.id,
            epoch: v.epoch,
            x_prime,
            r: rs,
            share: Share { x, y },
            rkey: *rkey,
            adct: v.adct.clone(),
            position: Some(position),
        })
    }

    /// Storage encoding: `version ‖ epoch ‖ id ‖ x' ‖ s u16 ‖ r ‖ x ‖ y ‖ rkey ‖ adct_len u16 ‖ adct`.
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Vec::with_capacity(1 + 8 + 16 + 8 + 2 + 8 * self.r.len() + 96 + 2 + self.adct.len());
        out.push(WIRE_VERSION);
        out.extend_from_slice(&self.epoch.to_le_bytes());
        out.extend_from_slice(&self.id);
        out.extend_from_slice(&self.x_prime.to_le_bytes());
        out.extend_from_slice(&(self.r.len() as u16).to_le_bytes());
        for v in &self.r {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(self.share.x.as_bytes());
        out.extend_from_slice(self.share.y.as_bytes());
        out.extend_from_slice(&self.rkey);
        out.extend_from_slice(&(self.adct.len() as u16).to_le_bytes());
        out.extend_from_slice(&self.adct);
        Zeroizing::new(out)
    }

    /// Decodes [`OpenedVoucher::encode`].
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new("opened voucher record", bytes);
        r.version(WIRE_VERSION)?;
        let epoch = r.u64()?;
        let id = r.array()?;
        let x_prime =
            Fp::from_le_bytes(r.array()?).ok_or(Error::Invalid(InvalidInput::NonCanonicalScalar { what: "x'" }))?;
        let s = r.u16()?;
        if s > MAX_SYNTHETIC_CAP {
            return Err(Error::Invalid(InvalidInput::Parameter { what: "synthetic_cap must be at most 1024" }));
        }
        let mut rs = Vec::with_capacity(s as usize);
        for _ in 0..s {
            rs.push(
                Fp::from_le_bytes(r.array()?).ok_or(Error::Invalid(InvalidInput::NonCanonicalScalar { what: "r" }))?,
            );
        }
        let x = decode_scalar(&r.array()?, "share x")?;
        if x == Scalar::ZERO {
            return Err(Error::Invalid(InvalidInput::Parameter { what: "share x must be non-zero" }));
        }
        let y = decode_scalar(&r.array()?, "share y")?;
        let rkey = r.array()?;
        let n = r.u16()? as usize;
        let adct = r.take(n)?.to_vec();
        r.finish()?;
        Ok(OpenedVoucher { id, epoch, x_prime, r: rs, share: Share { x, y }, rkey, adct, position: None })
    }
}

/// Why a voucher was classified invalid.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InvalidReason {
    /// It did not decode (the error says why).
    Malformed(Error),
    /// More than one position ciphertext opened.
    SeveralOpened,
    /// A position ciphertext opened but `rct` did not, or its content was malformed.
    BadPayload,
}

/// The server's classification of one voucher. Nothing else about the voucher is learned.
#[derive(Debug)]
pub enum OpenOutcome {
    /// No position ciphertext opened: keep nothing but a counter.
    NonMatch,
    /// Exactly one opened (a real match or a synthetic voucher; indistinguishable below the threshold).
    Opened(OpenedVoucher),
    /// Malformed or inconsistent.
    Invalid(InvalidReason),
}

/// The server's opening side for one epoch: α and the epoch context.
pub struct Opener {
    key: BlindingKey,
    /// α/2, for batch opening: compress(2·(α/2)·Q) = compress(α·Q) with one shared inversion per batch.
    half_alpha: Zeroizing<Scalar>,
    params: EpochParams,
    context: [u8; 32],
    layout: VoucherLayout,
}

impl fmt::Debug for Opener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Opener").field("epoch", &self.params.epoch).field("key", &"<redacted>").finish()
    }
}

impl Opener {
    /// Checks that the key matches the parameters' L.
    pub fn new(key: BlindingKey, params: EpochParams) -> Result<Self> {
        params.validate().map_err(Error::into_misuse)?;
        if key.public().compress().to_bytes() != params.blinding_public {
            return Err(Error::Misuse(Misuse::Parameter { what: "blinding key does not match L" }));
        }
        let context = params.context();
        let layout = VoucherLayout::of(&params);
        let half_alpha = Zeroizing::new(key.alpha() * crate::crypto::half());
        Ok(Opener { key, half_alpha, params, context, layout })
    }

    /// The epoch parameters.
    pub fn params(&self) -> &EpochParams {
        &self.params
    }

    /// Decodes and opens an encoded voucher.
    pub fn open_bytes(&self, bytes: &[u8]) -> OpenOutcome {
        match DecodedVoucher::decode(bytes, &self.params) {
            Ok(v) => self.open(&v),
            Err(e) => OpenOutcome::Invalid(InvalidReason::Malformed(e)),
        }
    }

    /// One scalar multiplication A = α·Q, K = KDF(A ‖ Q, ctx ‖ id), then every ct is tried with K.
    pub fn open(&self, v: &DecodedVoucher) -> OpenOutcome {
        let a: CompressedRistretto = (self.key.alpha() * v.q_point).compress();
        self.finish(v, &a)
    }

    /// Opens many vouchers at once. Identical outcomes to [`Opener::open`] one by one, but the compressions of the
    /// A = α·Q share one field inversion (`double_and_compress_batch` on (α/2)·Q), which saves most of the cost of
    /// compressing A. The scalar multiplications stay constant-time.
    // `&*self.half_alpha * q`: through a reference so that no unzeroized copy of the key is made.
    #[allow(clippy::op_ref)]
    pub fn open_batch(&self, vouchers: &[DecodedVoucher]) -> Vec<OpenOutcome> {
        let halves: Vec<RistrettoPoint> = vouchers.iter().map(|v| &*self.half_alpha * v.q_point).collect();
        let compressed = RistrettoPoint::double_and_compress_batch(&halves);
        vouchers.iter().zip(compressed.iter()).map(|(v, a)| self.finish(v, a)).collect()
    }

    /// Decodes and opens a batch of encoded vouchers; malformed ones are `Invalid`, the rest are opened as by
    /// [`Opener::open_batch`]. Outcomes are in input order.
    ///
    /// Every input costs one scalar multiplication, malformed ones included (they are multiplied with the
    /// basepoint and the product is discarded), so inputs and outcomes correspond one to one by construction. (The
    /// AEAD trials that follow run only for inputs that decoded.)
    #[allow(clippy::op_ref)] // see open_batch
    pub fn open_bytes_batch<B: AsRef<[u8]>>(&self, encoded: &[B]) -> Vec<OpenOutcome> {
        let decoded: Vec<Result<DecodedVoucher>> =
            encoded.iter().map(|b| DecodedVoucher::decode(b.as_ref(), &self.params)).collect();
        let halves: Vec<RistrettoPoint> = decoded
            .iter()
            .map(|d| &*self.half_alpha * d.as_ref().map_or(RISTRETTO_BASEPOINT_POINT, |v| v.q_point))
            .collect();
        let compressed = RistrettoPoint::double_and_compress_batch(&halves);
        decoded
            .into_iter()
            .zip(compressed.iter())
            .map(|(d, a)| match d {
                Ok(v) => self.finish(&v, a),
                Err(e) => OpenOutcome::Invalid(InvalidReason::Malformed(e)),
            })
            .collect()
    }

    fn finish(&self, v: &DecodedVoucher, a: &CompressedRistretto) -> OpenOutcome {
        let key = position_key(a.as_bytes(), &v.voucher.q, &self.context, &v.voucher.id);
        let aad = &ct_aad(&self.context);
        let mut rkey = Zeroizing::new([0u8; 32]);
        let mut candidate = Zeroizing::new([0u8; 32]);
        let mut opened = 0u32;
        let mut position = 0u8;
        for (j, ct) in (0u8..).zip(&v.voucher.cts) {
            if open_into(&key, aad, ct, &mut candidate[..]) {
                opened += 1;
                position = j;
                rkey.copy_from_slice(&candidate[..]);
            }
        }
        match opened {
            0 => OpenOutcome::NonMatch,
            1 => {
                let rct_aad = rct_aad(&self.context, &v.voucher.id);
                let mut plain = Zeroizing::new(vec![0u8; self.layout.rct_plain_len()]);
                if !open_into(&rkey, &rct_aad, &v.voucher.rct, &mut plain) {
                    return OpenOutcome::Invalid(InvalidReason::BadPayload);
                }
                match OpenedVoucher::from_plain(&v.voucher, &rkey, &plain, self.layout, position) {
                    Ok(o) => OpenOutcome::Opened(o),
                    Err(_) => OpenOutcome::Invalid(InvalidReason::BadPayload),
                }
            }
            _ => OpenOutcome::Invalid(InvalidReason::SeveralOpened),
        }
    }
}
