//! The device side: per-account state, and making real, synthetic and null vouchers.

use core::fmt;
use std::collections::BTreeSet;

use curve25519_dalek::constants::RISTRETTO_BASEPOINT_POINT;
use curve25519_dalek::ristretto::RistrettoPoint;
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::MultiscalarMul;
use hkdf::Hkdf;
use rand_core::CryptoRng;
use sha2::Sha256;
use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};
use vouchsafe_threshold::{DetectableHash, Fp, SharePolynomial};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::crypto::{
    ad_item_key, adct_aad, adkey, check_item, ct_aad, hash_to_group, position_key, random_nonzero_scalar, rct_aad,
    seal, seal_into,
};
use crate::error::{Error, InvalidInput, Misuse, Result};
use crate::labels::*;
use crate::params::EpochParams;
use crate::table::ClientTable;
use crate::voucher::{CT_LEN, Voucher, VoucherLayout};
use crate::wire::Reader;

/// Persistent per-(account, order) client state. Everything secret is derived from `seed`.
/// Zeroized on drop; `Debug` shows only public counters; equality is constant-time (it covers the seed).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct ClientState {
    order_id: [u8; 16],
    threshold: u16,
    synthetic_cap: u16,
    seed: [u8; 32],
    synthetics_made: u16,
    vouchers_made: u64,
    #[zeroize(skip)]
    seen: BTreeSet<[u8; 16]>,
}

impl ConstantTimeEq for ClientState {
    fn ct_eq(&self, other: &Self) -> Choice {
        let (a, b) = (self.encode(), other.encode());
        a.as_slice().ct_eq(b.as_slice())
    }
}

impl PartialEq for ClientState {
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(other).into()
    }
}

impl Eq for ClientState {}

impl fmt::Debug for ClientState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientState")
            .field("threshold", &self.threshold)
            .field("synthetic_cap", &self.synthetic_cap)
            .field("vouchers_made", &self.vouchers_made)
            .field("seed", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl ClientState {
    /// Fresh secrets for an account under an order.
    pub fn new<R: CryptoRng + ?Sized>(params: &EpochParams, rng: &mut R) -> Self {
        let mut state = ClientState {
            order_id: params.order_id,
            threshold: params.threshold,
            synthetic_cap: params.synthetic_cap,
            seed: [0u8; 32],
            synthetics_made: 0,
            vouchers_made: 0,
            seen: BTreeSet::new(),
        };
        // Drawn in place, so no copy of the seed is left on the stack.
        rng.fill_bytes(&mut state.seed);
        state
    }

    /// The order this state belongs to.
    pub fn order_id(&self) -> &[u8; 16] {
        &self.order_id
    }
    /// Synthetic vouchers made so far.
    pub fn synthetics_made(&self) -> u16 {
        self.synthetics_made
    }
    /// Vouchers made so far (all kinds).
    pub fn vouchers_made(&self) -> u64 {
        self.vouchers_made
    }
    /// Distinct images vouchered so far.
    pub fn images_seen(&self) -> usize {
        self.seen.len()
    }

    /// The state's public id: `HKDF-Expand(PRK = seed, info = LABEL_SEED_STATE_ID, L = 16)`. A device sends it with
    /// every batch so that the server runs detection per state (several devices and reinstalls of one account each
    /// have their own). It is a PRF output of the seed, so it reveals nothing about the seed or the secrets
    /// derived from it (other info labels), is the same after a restart, and differs between states.
    pub fn state_id(&self) -> Result<[u8; 16]> {
        let mut id = [0u8; 16];
        expand(&self.seed, &[LABEL_SEED_STATE_ID], &mut id)?;
        Ok(id)
    }

    /// `version ‖ order_id ‖ T u16 ‖ s u16 ‖ seed ‖ synthetics u16 ‖ vouchers u64 ‖ count u32 ‖ sorted tags`.
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Vec::with_capacity(1 + 16 + 4 + 32 + 2 + 8 + 4 + 16 * self.seen.len());
        out.push(WIRE_VERSION);
        out.extend_from_slice(&self.order_id);
        out.extend_from_slice(&self.threshold.to_le_bytes());
        out.extend_from_slice(&self.synthetic_cap.to_le_bytes());
        out.extend_from_slice(&self.seed);
        out.extend_from_slice(&self.synthetics_made.to_le_bytes());
        out.extend_from_slice(&self.vouchers_made.to_le_bytes());
        out.extend_from_slice(&(self.seen.len() as u32).to_le_bytes());
        for t in &self.seen {
            out.extend_from_slice(t);
        }
        Zeroizing::new(out)
    }

    /// Decodes [`ClientState::encode`]; tags must be strictly ascending (one canonical encoding).
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new("client state", bytes);
        r.version(WIRE_VERSION)?;
        let order_id = r.array()?;
        let threshold = r.u16()?;
        let synthetic_cap = r.u16()?;
        if !(2..=MAX_THRESHOLD).contains(&threshold) || synthetic_cap > MAX_SYNTHETIC_CAP {
            return Err(Error::Invalid(InvalidInput::Parameter {
                what: "client state threshold or synthetic cap out of range",
            }));
        }
        let seed = r.array()?;
        let synthetics_made = r.u16()?;
        if synthetics_made > synthetic_cap {
            return Err(Error::Invalid(InvalidInput::Parameter {
                what: "client state has more synthetics than its cap",
            }));
        }
        let vouchers_made = r.u64()?;
        let count = r.u32()? as usize;
        if r.remaining() != 16 * count {
            return Err(Error::Invalid(InvalidInput::Length {
                what: "client state",
                expected: bytes.len() - r.remaining() + 16 * count,
                got: bytes.len(),
            }));
        }
        let mut seen = BTreeSet::new();
        let mut prev: Option<[u8; 16]> = None;
        for _ in 0..count {
            let t: [u8; 16] = r.array()?;
            if prev.is_some_and(|p| p >= t) {
                return Err(Error::Invalid(InvalidInput::Parameter {
                    what: "client state tags must be strictly ascending",
                }));
            }
            prev = Some(t);
            seen.insert(t);
        }
        r.finish()?;
        Ok(ClientState { order_id, threshold, synthetic_cap, seed, synthetics_made, vouchers_made, seen })
    }
}

/// The kind of voucher that was made (known to the device only; the server cannot tell before opening).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VoucherKind {
    /// A real voucher for a new image.
    Real,
    /// A synthetic voucher standing in for a new image.
    Synthetic,
    /// A null voucher (repeated image, or an image that failed the quality gate).
    Null,
}

/// A voucher and its kind.
#[derive(Clone, Debug)]
pub struct MadeVoucher {
    /// What goes on the wire.
    pub voucher: Voucher,
    /// What the device made.
    pub kind: VoucherKind,
}

/// PRF output for one image: Shamir abscissa, detectable-hash abscissa, dedupe tag.
struct ImagePrf {
    x: Scalar,
    x_prime: Fp,
    tag: [u8; 16],
}

/// A client state with its derived secrets, ready to make vouchers.
pub struct ClientSession {
    state: ClientState,
    poly: SharePolynomial,
    detect: DetectableHash,
    prf_key: Zeroizing<[u8; 32]>,
    adkey: Zeroizing<[u8; 32]>,
}

impl fmt::Debug for ClientSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientSession").field("state", &self.state).finish_non_exhaustive()
    }
}

fn expand(seed: &[u8; 32], info: &[&[u8]], out: &mut [u8]) -> Result<()> {
    let hk =
        Hkdf::<Sha256>::from_prk(seed).map_err(|_| Error::internal("a 32-byte seed is a valid HKDF-SHA256 PRK"))?;
    hk.expand_multi_info(info, out)
        .map_err(|_| Error::internal("seed expansions fit one HKDF-SHA256 output (MAX_THRESHOLD bounds them)"))
}

impl ClientSession {
    /// Derives the Shamir polynomial f (degree T−1), the PRF key and the s detectable-hash polynomials (degree T−2)
    /// from the state's seed.
    pub fn new(state: ClientState) -> Result<Self> {
        let t = state.threshold as usize;
        let s = state.synthetic_cap as usize;
        let mut coeffs = Vec::with_capacity(t);
        let mut wide = Zeroizing::new([0u8; 64]);
        for i in 0..t as u32 {
            expand(&state.seed, &[LABEL_SEED_SHAMIR, &i.to_le_bytes()], &mut wide[..])?;
            coeffs.push(Scalar::from_bytes_mod_order_wide(&wide));
        }
        let poly = SharePolynomial::from_coefficients(coeffs)?;
        let mut polys = Vec::with_capacity(s);
        let mut buf = Zeroizing::new(vec![0u8; 8 * (t - 1)]);
        for i in 0..s as u32 {
            expand(&state.seed, &[LABEL_SEED_DETECT, &i.to_le_bytes()], &mut buf)?;
            polys.push(
                buf.chunks_exact(8)
                    .map(|c| {
                        let mut b = [0u8; 8];
                        b.copy_from_slice(c);
                        Fp::reduce(u64::from_le_bytes(b))
                    })
                    .collect(),
            );
        }
        let detect = DetectableHash::from_coefficients(t, polys)?;
        let mut prf_key = Zeroizing::new([0u8; 32]);
        expand(&state.seed, &[LABEL_SEED_PRF], &mut prf_key[..])?;
        let adkey = adkey(poly.secret(), &state.order_id);
        Ok(ClientSession { state, poly, detect, prf_key, adkey })
    }

    /// The state (persist it after every voucher, before the voucher is sent).
    pub fn state(&self) -> &ClientState {
        &self.state
    }

    fn prf(&self, y: &[u8]) -> Result<ImagePrf> {
        let mut out = Zeroizing::new([0u8; 88]);
        expand(&self.prf_key, &[LABEL_IMAGE_PRF, &(y.len() as u16).to_le_bytes(), y], &mut out[..])?;
        let (wide, rest) = out.split_first_chunk::<64>().ok_or(Error::internal("the PRF output is 88 bytes"))?;
        let (xp, rest) = rest.split_first_chunk::<8>().ok_or(Error::internal("the PRF output is 88 bytes"))?;
        let tag: [u8; 16] = rest.try_into().map_err(|_| Error::internal("the PRF output is 88 bytes"))?;
        let mut x = Scalar::from_bytes_mod_order_wide(wide);
        if x == Scalar::ZERO {
            // Probability 2^-252; x = 0 would reveal f(0).
            x = Scalar::ONE;
        }
        Ok(ImagePrf { x, x_prime: Fp::reduce(u64::from_le_bytes(*xp)), tag })
    }

    fn check_table(&self, table: &ClientTable) -> Result<()> {
        let p = table.params();
        if p.order_id != self.state.order_id {
            return Err(Error::Misuse(Misuse::StateMismatch { what: "order id" }));
        }
        if p.threshold != self.state.threshold || p.synthetic_cap != self.state.synthetic_cap {
            return Err(Error::Misuse(Misuse::StateMismatch { what: "threshold or synthetic cap" }));
        }
        Ok(())
    }

    /// Makes the voucher for image hash `y` (canonical perceptual-hash bytes) with associated data `ad`
    /// (at most `ad_len − 2` bytes). A repeated image gets a null voucher; a new image becomes a synthetic voucher
    /// with probability p while fewer than s were made, otherwise a real one. The state changes: persist it.
    ///
    /// Every kind costs the same: the same random draws in the same order, the same group operations (one
    /// double-scalar and three variable-base multiplications, one fixed-base multiplication, one batched
    /// compression), the same table reads at `y`'s positions, the same hashes and the same seals; the kinds differ
    /// only in values chosen with constant-time selection (docs/PROTOCOL.md §5, "Constant work").
    pub fn voucher<R: CryptoRng + ?Sized>(
        &mut self,
        table: &ClientTable,
        y: &[u8],
        ad: &[u8],
        rng: &mut R,
    ) -> Result<MadeVoucher> {
        self.check_table(table)?;
        check_item(y)?;
        let params = table.params();
        if ad.len() + 2 > params.ad_len as usize {
            return Err(Error::Misuse(Misuse::Parameter { what: "associated data longer than ad_len - 2" }));
        }
        let prf = self.prf(y)?;
        let repeat = self.state.seen.contains(&prf.tag);
        // The coin is drawn for every voucher, so the draws do not depend on the kind.
        let coin = rng.next_u32() < params.synthetic_rate;
        let kind = if repeat {
            VoucherKind::Null
        } else if coin && self.state.synthetics_made < self.state.synthetic_cap {
            VoucherKind::Synthetic
        } else {
            VoucherKind::Real
        };
        let voucher = self.assemble(table, y, &prf, ad, kind, rng)?;
        self.state.vouchers_made += 1;
        if !repeat {
            self.state.seen.insert(prf.tag);
        }
        if kind == VoucherKind::Synthetic {
            self.state.synthetics_made += 1;
        }
        Ok(MadeVoucher { voucher, kind })
    }

    /// A null voucher for an image that failed the quality gate (counts as a voucher made, changes nothing else).
    /// It costs what any other voucher costs: it is assembled like one for a random 32-byte stand-in hash (drawn
    /// first), with the synthetic coin drawn and ignored.
    pub fn null_voucher<R: CryptoRng + ?Sized>(&mut self, table: &ClientTable, rng: &mut R) -> Result<MadeVoucher> {
        self.check_table(table)?;
        let mut y = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(&mut y[..]);
        let prf = self.prf(&y[..])?;
        let _coin = rng.next_u32();
        let voucher = self.assemble(table, &y[..], &prf, &[], VoucherKind::Null, rng)?;
        self.state.vouchers_made += 1;
        Ok(MadeVoucher { voucher, kind: VoucherKind::Null })
    }

    /// One voucher of any kind, with the same work for every kind.
    ///
    /// * Real: Q = β·H(y) + γ·G, S_j = β·P_j + γ·L; every ct_j seals rkey under K_j; rct carries (x′, p(x′), x,
    ///   f(x)); adct seals the padded ad under K_ad = KDF(adkey ‖ rkey).
    /// * Synthetic: the same with (β, γ) replaced by (0, β), so Q = β·G and every S_j = β·L = α·Q; ct at position 1
    ///   seals rkey under K_1, the others under random keys; rct carries random (x′, r, x, share); adct seals the
    ///   padded ad under a random key.
    /// * Null: Q as for a real voucher, every ct under a random key, rct and adct as for a synthetic one (nothing of
    ///   it can be opened: no key is derivable by the server).
    // `&*secret * x`: the secret scalars are multiplied through a reference so that no unzeroized copy is made.
    #[allow(clippy::op_ref)]
    fn assemble<R: CryptoRng + ?Sized>(
        &self,
        table: &ClientTable,
        y: &[u8],
        prf: &ImagePrf,
        ad: &[u8],
        kind: VoucherKind,
        rng: &mut R,
    ) -> Result<Voucher> {
        let real = Choice::from(u8::from(kind == VoucherKind::Real));
        let synthetic = Choice::from(u8::from(kind == VoucherKind::Synthetic));
        let params = table.params();
        let layout = VoucherLayout::of(params);
        let ctx = &table.context;

        // Draws, in the same order for every kind (docs/PROTOCOL.md §8).
        let mut id = [0u8; 16];
        rng.fill_bytes(&mut id);
        let mut rkey = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(&mut rkey[..]);
        let mut random_keys = Zeroizing::new([[0u8; 32]; K + 1]); // K ct keys and the adct key
        for k in random_keys.iter_mut() {
            rng.fill_bytes(k);
        }
        let fake_x_prime = Fp::random(rng);
        let fake_r: Vec<Fp> = (0..layout.synthetic_cap).map(|_| Fp::random(rng)).collect();
        let fake_x = random_nonzero_scalar(rng);
        let fake_share = Zeroizing::new(Scalar::random(rng));
        let beta = Zeroizing::new(random_nonzero_scalar(rng));
        let gamma = Zeroizing::new(random_nonzero_scalar(rng));

        // adct: the padded ad (empty unless real) under K_ad for a real voucher, under a random key otherwise.
        let mut padded = Zeroizing::new(vec![0u8; layout.ad_len]);
        let ad = if kind == VoucherKind::Real { ad } else { &[][..] };
        let (len, body) = padded.split_first_chunk_mut::<2>().ok_or(Error::internal("ad_len is at least 2"))?;
        *len = (ad.len() as u16).to_le_bytes();
        body.get_mut(..ad.len())
            .ok_or(Error::internal("ad.len() + 2 <= ad_len was checked by voucher()"))?
            .copy_from_slice(ad);
        let mut ad_key = ad_item_key(&self.adkey, &rkey);
        select_bytes(&mut ad_key, random_keys.get(K).ok_or(Error::internal("K + 1 random keys were drawn"))?, !real);
        let adct = seal(&ad_key, &adct_aad(&params.order_id, &id), &padded, rng)?;

        // rct: the share and column at the image's abscissas (computed for every kind), or the random ones.
        let fx = Zeroizing::new(self.poly.eval(&prf.x));
        let column = self.detect.eval(prf.x_prime);
        let mut plain = Zeroizing::new(Vec::with_capacity(layout.rct_plain_len()));
        plain.extend_from_slice(&Fp::conditional_select(&fake_x_prime, &prf.x_prime, real).to_le_bytes());
        for (fake, v) in fake_r.iter().zip(&column) {
            plain.extend_from_slice(&Fp::conditional_select(fake, v, real).to_le_bytes());
        }
        plain.extend_from_slice(Scalar::conditional_select(&fake_x, &prf.x, real).as_bytes());
        plain.extend_from_slice(Scalar::conditional_select(&*fake_share, &*fx, real).as_bytes());
        let rct = seal(&rkey, &rct_aad(ctx, &id), &plain, rng)?;

        // Q and S_1..S_3. Work with halves so that one `double_and_compress_batch` (a single shared field
        // inversion) yields compress(Q) and compress(S_j): compress(2·(a/2·X + b/2·G)) = compress(a·X + b·G).
        // Real and null: (a, b) = (β, γ); synthetic: (a, b) = (0, β).
        let half = crate::crypto::half();
        let a = Zeroizing::new(Scalar::conditional_select(&(&*beta * half), &Scalar::ZERO, synthetic));
        let b = Zeroizing::new(Scalar::conditional_select(&(&*gamma * half), &(&*beta * half), synthetic));
        let hy = hash_to_group(&params.nonce, y);
        let candidates = table.candidate_points(y)?;
        let b_l = &*b * &table.l_table;
        let mut halves = [RistrettoPoint::default(); K + 1];
        // One constant-time double-scalar multiplication (vectorised Straus) beats a variable-base plus a
        // fixed-base multiplication with the AVX-512 IFMA backend.
        halves[0] = RistrettoPoint::multiscalar_mul([&*a, &*b], [hy, RISTRETTO_BASEPOINT_POINT]);
        for (h, p) in halves[1..].iter_mut().zip(candidates) {
            *h = &*a * p + b_l;
        }
        let compressed = Zeroizing::new(
            RistrettoPoint::double_and_compress_batch(&halves).into_iter().map(|c| c.to_bytes()).collect::<Vec<_>>(),
        );
        halves.zeroize();
        let (q, s_list) = compressed.split_first().ok_or(Error::internal("K + 1 points were compressed"))?;
        let aad = &ct_aad(ctx);
        let mut cts = [[0u8; CT_LEN]; K];
        for (j, (ct, s)) in cts.iter_mut().zip(s_list).enumerate() {
            let mut k = position_key(s, q, ctx, &id);
            // Real: every derived key; synthetic: the first; null: none.
            let keep = real | (synthetic & Choice::from(u8::from(j == 0)));
            let random = random_keys.get(j).ok_or(Error::internal("K random keys were drawn"))?;
            select_bytes(&mut k, random, !keep);
            seal_into(&k, aad, &rkey[..], ct, rng)?;
        }
        shuffle(&mut cts, rng);
        Ok(Voucher { epoch: params.epoch, id, q: *q, cts, rct, adct })
    }
}

/// `*out = if choice { other } else { *out }`, in constant time.
fn select_bytes(out: &mut [u8; 32], other: &[u8; 32], choice: Choice) {
    for (o, b) in out.iter_mut().zip(other) {
        o.conditional_assign(b, choice);
    }
}

/// Fisher–Yates with unbiased indices: j is uniform on 0..=i by rejection sampling (a u32 at or above the largest
/// multiple of i + 1 is drawn again), so the position of the opening ciphertext is exactly uniform.
fn shuffle<R: CryptoRng + ?Sized>(cts: &mut [[u8; CT_LEN]; K], rng: &mut R) {
    for i in (1..K).rev() {
        let bound = (i + 1) as u32;
        let limit = (u32::MAX / bound) * bound;
        let j = loop {
            let v = rng.next_u32();
            if v < limit {
                break (v % bound) as usize;
            }
        };
        cts.swap(i, j);
    }
}
