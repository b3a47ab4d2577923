//! The 64-bit prime field GF(p), p = 2^64 − 59, used by the detectable hash functions.
//!
//! Every [`Fp`] holds its canonical representative (`< P`). Reduction uses the identity
//! 2^64 ≡ 59 (mod p), so no division is performed anywhere in the arithmetic.
//!
//! Addition, subtraction, negation and multiplication use no secret-dependent branches that the
//! compiler cannot turn into conditional moves, but this module makes no formal constant-time
//! claim: in this system the field only carries values the matching server sees anyway (the
//! opened `r` vectors) and the client's detectable-hash coefficients, which are evaluated with
//! the same branch-free operations. [`Fp::pow`] is variable-time in the (public) exponent.

use core::fmt;
use core::ops::{Add, AddAssign, Mul, MulAssign, Neg, Sub, SubAssign};

use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};
use zeroize::Zeroize;

/// The field modulus p = 2^64 − 59, the largest prime below 2^64.
pub const P: u64 = 0xFFFF_FFFF_FFFF_FFC5;

/// 2^64 − P = 59, i.e. 2^64 mod P.
const C: u64 = 59;

/// An element of GF(2^64 − 59), always in canonical form (`< P`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, Zeroize)]
pub struct Fp(u64);

/// Reduce any 128-bit value modulo P without division.
#[inline(always)]
pub(crate) fn reduce128(x: u128) -> u64 {
    let lo = x as u64;
    let hi = (x >> 64) as u64;
    // x ≡ hi·59 + lo; hi·59 + lo < 60·2^64.
    let t = (hi as u128) * (C as u128) + lo as u128;
    let lo2 = t as u64;
    let hi2 = (t >> 64) as u64; // < 60
    // t ≡ hi2·59 + lo2 with hi2·59 < 3540.
    let (s, carry) = lo2.overflowing_add(hi2 * C);
    // On carry, s wrapped: s + 2^64 ≡ s + 59 and s < 3540, so this cannot overflow.
    let s = s.wrapping_add(C * carry as u64);
    canon(s)
}

/// `Σ a_i·b_i mod P` over the common length, with one reduction: the 128-bit products' halves are accumulated
/// separately (independent multiplications instead of a Horner chain of reductions). Valid for up to 2^32 terms.
pub fn dot(a: &[Fp], b: &[Fp]) -> Fp {
    let (mut lo, mut hi) = (0u128, 0u128);
    for (x, y) in a.iter().zip(b) {
        let p = x.0 as u128 * y.0 as u128;
        lo += p as u64 as u128;
        hi += p >> 64;
    }
    // Σ = hi·2^64 + lo ≡ hi·59 + lo (mod P); both terms are < 2^96, so the sum fits in 128 bits.
    Fp(reduce128(hi * C as u128 + lo))
}

/// `v + a·b` modulo P for any `v < 2^64` and `a, b < P`, in the redundant range `0..2^64`
/// (not necessarily canonical; pass through [`canon`] before comparing).
#[inline(always)]
pub(crate) fn mul_add_lazy(v: u64, a: u64, b: u64) -> u64 {
    // a·b + v ≤ (P−1)^2 + 2^64 − 1 < 2^128.
    let x = a as u128 * b as u128 + v as u128;
    let t = ((x >> 64) as u64 as u128) * (C as u128) + (x as u64 as u128);
    let (s, carry) = (t as u64).overflowing_add(((t >> 64) as u64) * C);
    s.wrapping_add(C * carry as u64)
}

/// `a + b mod P` for canonical `a`, `b`.
#[inline(always)]
const fn add_raw(a: u64, b: u64) -> u64 {
    let (s, carry) = a.overflowing_add(b);
    // On carry the true sum is s + 2^64 ≡ s + 59, and s < P − 59, so no overflow.
    canon(s.wrapping_add(C & (carry as u64).wrapping_neg()))
}

/// `a − b mod P` for canonical `a`, `b`.
#[inline(always)]
const fn sub_raw(a: u64, b: u64) -> u64 {
    let (d, borrow) = a.overflowing_sub(b);
    // On borrow d = a − b + 2^64 ≥ 60; the result is a − b + P = d − 59.
    d.wrapping_sub(C & (borrow as u64).wrapping_neg())
}

/// Map a u64 to its canonical representative (one conditional subtraction suffices).
#[inline(always)]
pub(crate) const fn canon(v: u64) -> u64 {
    let (d, borrow) = v.overflowing_sub(P);
    if borrow { v } else { d }
}

impl Fp {
    /// The additive identity.
    pub const ZERO: Fp = Fp(0);
    /// The multiplicative identity.
    pub const ONE: Fp = Fp(1);

    /// The element with canonical value `v`; `None` if `v >= P` (canonical decoding).
    #[inline]
    pub const fn new(v: u64) -> Option<Fp> {
        if v < P { Some(Fp(v)) } else { None }
    }

    /// `v mod P`.
    #[inline]
    pub const fn reduce(v: u64) -> Fp {
        Fp(canon(v))
    }

    /// Decode 8 little-endian bytes; `None` if the value is not canonical (`>= P`).
    #[inline]
    pub const fn from_le_bytes(b: [u8; 8]) -> Option<Fp> {
        Fp::new(u64::from_le_bytes(b))
    }

    /// The canonical 8-byte little-endian encoding.
    #[inline]
    pub const fn to_le_bytes(self) -> [u8; 8] {
        self.0.to_le_bytes()
    }

    /// The canonical value, in `0..P`.
    #[inline]
    pub const fn value(self) -> u64 {
        self.0
    }

    /// Whether this is zero.
    #[inline]
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// `self^e`, by square-and-multiply (variable-time in `e` only).
    pub fn pow(self, mut e: u64) -> Fp {
        let mut base = self;
        let mut acc = Fp::ONE;
        while e != 0 {
            if e & 1 == 1 {
                acc *= base;
            }
            base *= base;
            e >>= 1;
        }
        acc
    }

    /// The multiplicative inverse, `None` for zero (Fermat: `self^(P−2)`).
    pub fn inv(self) -> Option<Fp> {
        if self.0 == 0 { None } else { Some(self.pow(P - 2)) }
    }

    /// A uniformly random element (rejection sampling of 64-bit words; rejects with
    /// probability 59/2^64).
    pub fn random<R: rand_core::CryptoRng + ?Sized>(rng: &mut R) -> Fp {
        loop {
            if let Some(v) = Fp::new(rng.next_u64()) {
                return v;
            }
        }
    }

    /// `self + a·b`, with a single reduction.
    #[inline(always)]
    pub fn mul_add(self, a: Fp, b: Fp) -> Fp {
        // a·b ≤ (P−1)^2, plus self < P: far below 2^128.
        Fp(reduce128(a.0 as u128 * b.0 as u128 + self.0 as u128))
    }
}

impl fmt::Debug for Fp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fp({})", self.0)
    }
}

impl fmt::Display for Fp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl From<u32> for Fp {
    /// Small integers are always canonical.
    fn from(v: u32) -> Fp {
        Fp(v as u64)
    }
}

impl ConstantTimeEq for Fp {
    fn ct_eq(&self, other: &Fp) -> Choice {
        self.0.ct_eq(&other.0)
    }
}

impl ConditionallySelectable for Fp {
    fn conditional_select(a: &Fp, b: &Fp, choice: Choice) -> Fp {
        Fp(u64::conditional_select(&a.0, &b.0, choice))
    }
}

impl Add for Fp {
    type Output = Fp;
    #[inline(always)]
    fn add(self, rhs: Fp) -> Fp {
        Fp(add_raw(self.0, rhs.0))
    }
}

impl Sub for Fp {
    type Output = Fp;
    #[inline(always)]
    fn sub(self, rhs: Fp) -> Fp {
        Fp(sub_raw(self.0, rhs.0))
    }
}

impl Neg for Fp {
    type Output = Fp;
    #[inline(always)]
    fn neg(self) -> Fp {
        Fp::ZERO - self
    }
}

impl Mul for Fp {
    type Output = Fp;
    #[inline(always)]
    fn mul(self, rhs: Fp) -> Fp {
        Fp(reduce128(self.0 as u128 * rhs.0 as u128))
    }
}

impl AddAssign for Fp {
    #[inline(always)]
    fn add_assign(&mut self, rhs: Fp) {
        *self = *self + rhs;
    }
}

impl SubAssign for Fp {
    #[inline(always)]
    fn sub_assign(&mut self, rhs: Fp) {
        *self = *self - rhs;
    }
}

impl MulAssign for Fp {
    #[inline(always)]
    fn mul_assign(&mut self, rhs: Fp) {
        *self = *self * rhs;
    }
}

impl core::iter::Sum for Fp {
    fn sum<I: Iterator<Item = Fp>>(iter: I) -> Fp {
        iter.fold(Fp::ZERO, |a, b| a + b)
    }
}

impl core::iter::Product for Fp {
    fn product<I: Iterator<Item = Fp>>(iter: I) -> Fp {
        iter.fold(Fp::ONE, |a, b| a * b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    const PP: u128 = P as u128;

    fn arb_fp() -> impl Strategy<Value = Fp> {
        prop_oneof![(0..P).prop_map(Fp), (P - 200..P).prop_map(Fp), (0u64..200).prop_map(Fp),]
    }

    proptest! {
        #[test]
        fn dot_matches_the_reference(pairs in proptest::collection::vec((arb_fp(), arb_fp()), 0..1100)) {
            let a: Vec<Fp> = pairs.iter().map(|p| p.0).collect();
            let b: Vec<Fp> = pairs.iter().map(|p| p.1).collect();
            let want = pairs.iter().fold(0u128, |acc, (x, y)| (acc + x.0 as u128 * y.0 as u128 % PP) % PP);
            prop_assert_eq!(dot(&a, &b).value() as u128, want);
            prop_assert!(dot(&a, &b).value() < P);
        }
    }

    fn ref_pow(a: u64, mut e: u64) -> u64 {
        let mut base = a as u128 % PP;
        let mut acc: u128 = 1;
        while e > 0 {
            if e & 1 == 1 {
                acc = acc * base % PP;
            }
            base = base * base % PP;
            e >>= 1;
        }
        acc as u64
    }

    #[test]
    fn modulus_is_2_64_minus_59() {
        assert_eq!(P as u128, (1u128 << 64) - 59);
        // Fermat check that P behaves like a prime for a few bases (it is the known prime 2^64-59).
        for a in [2u64, 3, 5, 7, 11, 0x1234_5678_9abc_def0] {
            assert_eq!(ref_pow(a, P - 1), 1);
        }
    }

    #[test]
    fn canonical_decoding() {
        assert_eq!(Fp::new(P), None);
        assert_eq!(Fp::new(u64::MAX), None);
        assert_eq!(Fp::new(P - 1).map(Fp::value), Some(P - 1));
        assert_eq!(Fp::from_le_bytes(P.to_le_bytes()), None);
        assert_eq!(Fp::from_le_bytes([0xff; 8]), None);
        assert_eq!(Fp::from_le_bytes((P - 1).to_le_bytes()), Some(Fp(P - 1)));
        for v in P..=u64::MAX {
            assert_eq!(Fp::new(v), None, "{v}");
            assert_eq!(Fp::reduce(v).value(), v - P);
        }
    }

    #[test]
    fn inverse_of_zero_is_none() {
        assert_eq!(Fp::ZERO.inv(), None);
        assert_eq!(Fp::ONE.inv(), Some(Fp::ONE));
        assert_eq!(Fp(P - 1).inv(), Some(Fp(P - 1)));
    }

    #[test]
    fn random_is_canonical_and_varies() {
        let mut rng = ChaCha20Rng::from_seed([7u8; 32]);
        let a = Fp::random(&mut rng);
        let b = Fp::random(&mut rng);
        assert_ne!(a, b);
        for _ in 0..1000 {
            assert!(Fp::random(&mut rng).value() < P);
        }
    }

    #[test]
    fn debug_prints_value() {
        assert_eq!(format!("{:?}", Fp(42)), "Fp(42)");
    }

    proptest! {
        #[test]
        fn add_matches_reference(a in arb_fp(), b in arb_fp()) {
            prop_assert_eq!((a + b).value() as u128, (a.0 as u128 + b.0 as u128) % PP);
            let mut c = a; c += b; prop_assert_eq!(c, a + b);
        }

        #[test]
        fn sub_matches_reference(a in arb_fp(), b in arb_fp()) {
            prop_assert_eq!((a - b).value() as u128, (a.0 as u128 + PP - b.0 as u128) % PP);
            let mut c = a; c -= b; prop_assert_eq!(c, a - b);
            prop_assert_eq!((-a).value() as u128, (PP - a.0 as u128) % PP);
        }

        #[test]
        fn mul_matches_reference(a in arb_fp(), b in arb_fp()) {
            prop_assert_eq!((a * b).value() as u128, (a.0 as u128 * b.0 as u128) % PP);
            let mut c = a; c *= b; prop_assert_eq!(c, a * b);
        }

        #[test]
        fn mul_add_matches_reference(z in arb_fp(), a in arb_fp(), b in arb_fp()) {
            prop_assert_eq!(
                z.mul_add(a, b).value() as u128,
                (z.0 as u128 + a.0 as u128 * b.0 as u128) % PP
            );
        }

        #[test]
        fn mul_add_lazy_matches_reference(v in any::<u64>(), a in arb_fp(), b in arb_fp()) {
            let r = mul_add_lazy(v, a.0, b.0);
            prop_assert_eq!(canon(r) as u128, (v as u128 + a.0 as u128 * b.0 as u128) % PP);
        }

        #[test]
        fn reduce128_matches_reference(x in any::<u128>()) {
            prop_assert_eq!(reduce128(x) as u128, x % PP);
        }

        #[test]
        fn reduce_matches_reference(v in any::<u64>()) {
            prop_assert_eq!(Fp::reduce(v).value(), v % P);
            prop_assert_eq!(Fp::new(v).is_some(), v < P);
        }

        #[test]
        fn inverse_is_inverse(a in arb_fp()) {
            match a.inv() {
                None => prop_assert_eq!(a, Fp::ZERO),
                Some(i) => {
                    prop_assert_eq!(a * i, Fp::ONE);
                    prop_assert!(i.value() < P);
                }
            }
        }

        #[test]
        fn pow_matches_reference(a in arb_fp(), e in any::<u64>()) {
            prop_assert_eq!(a.pow(e).value(), ref_pow(a.0, e));
        }

        #[test]
        fn bytes_round_trip(a in arb_fp()) {
            prop_assert_eq!(Fp::from_le_bytes(a.to_le_bytes()), Some(a));
        }
    }
}
