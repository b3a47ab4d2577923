//! Shamir secret sharing over the ristretto255 scalar field.
//!
//! A [`SharePolynomial`] f of degree T−1 has the secret f(0) (the adkey secret a₀ of the design)
//! as its constant coefficient. A [`Share`] is a point (x, f(x)) with x ≠ 0. Any T shares with
//! distinct x determine f ([`interpolate`]) and f(0) ([`recover_secret`]); T−1 shares reveal
//! nothing about f(0).
//!
//! Scalar arithmetic is curve25519-dalek's constant-time arithmetic. The only branches in this
//! module depend on the x-coordinates being zero or equal, which are not secret towards the
//! party that holds the shares.

use core::fmt;

use curve25519_dalek::Scalar;
use rand_core::CryptoRng;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::{Error, MAX_THRESHOLD};

/// One Shamir share: the point (x, f(x)).
///
/// `Debug` is redacted and the share is zeroized on drop (it is not `Copy`, so no copy outlives the wipe
/// unnoticed; clone it explicitly where a second owner is needed). Equality is constant-time.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Share {
    /// The x-coordinate (must be non-zero).
    pub x: Scalar,
    /// The y-coordinate f(x).
    pub y: Scalar,
}

impl ConstantTimeEq for Share {
    fn ct_eq(&self, other: &Self) -> subtle::Choice {
        self.x.ct_eq(&other.x) & self.y.ct_eq(&other.y)
    }
}

impl PartialEq for Share {
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(other).into()
    }
}

impl Eq for Share {}

impl fmt::Debug for Share {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Share { x: <redacted>, y: <redacted> }")
    }
}

/// A secret polynomial f of degree `threshold − 1` over the scalar field; `f(0)` is the secret.
///
/// Zeroized on drop; `Debug` shows only the threshold.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SharePolynomial {
    /// `coeffs[i]` is the coefficient of `x^i`; `coeffs[0]` is the secret; `len() == threshold`.
    coeffs: Vec<Scalar>,
}

impl fmt::Debug for SharePolynomial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharePolynomial").field("threshold", &self.coeffs.len()).field("coeffs", &"<redacted>").finish()
    }
}

fn check_threshold(threshold: usize) -> Result<(), Error> {
    if (2..=MAX_THRESHOLD).contains(&threshold) { Ok(()) } else { Err(Error::InvalidThreshold) }
}

impl SharePolynomial {
    /// A uniformly random polynomial of degree `threshold − 1` (so `threshold` shares are needed
    /// to reconstruct it). `threshold` must be in `2..=MAX_THRESHOLD`.
    pub fn random<R: CryptoRng + ?Sized>(threshold: usize, rng: &mut R) -> Result<Self, Error> {
        check_threshold(threshold)?;
        let coeffs = (0..threshold).map(|_| Scalar::random(rng)).collect();
        Ok(SharePolynomial { coeffs })
    }

    /// The polynomial with the given coefficients (`coeffs[0]` is the secret). The threshold is
    /// `coeffs.len()`, which must be in `2..=MAX_THRESHOLD`.
    pub fn from_coefficients(coeffs: Vec<Scalar>) -> Result<Self, Error> {
        let poly = SharePolynomial { coeffs };
        check_threshold(poly.coeffs.len())?;
        Ok(poly)
    }

    /// The number of shares needed to reconstruct: degree + 1.
    pub fn threshold(&self) -> usize {
        self.coeffs.len()
    }

    /// The secret f(0).
    pub fn secret(&self) -> &Scalar {
        // `coeffs` has at least 2 entries by construction; `first` keeps this panic-free anyway.
        self.coeffs.first().unwrap_or(&Scalar::ZERO)
    }

    /// All coefficients, constant term first.
    pub fn coefficients(&self) -> &[Scalar] {
        &self.coeffs
    }

    /// f(x), by Horner's rule.
    pub fn eval(&self, x: &Scalar) -> Scalar {
        self.coeffs.iter().rev().fold(Scalar::ZERO, |acc, c| acc * x + c)
    }

    /// The share (x, f(x)). Fails with [`Error::ZeroX`] for x = 0, which would reveal the secret.
    pub fn share(&self, x: Scalar) -> Result<Share, Error> {
        if x == Scalar::ZERO {
            return Err(Error::ZeroX);
        }
        Ok(Share { x, y: self.eval(&x) })
    }

    /// Whether `share` lies on this polynomial (f(share.x) == share.y), compared in constant time.
    pub fn contains(&self, share: &Share) -> bool {
        let mut y = self.eval(&share.x);
        let eq: bool = y.ct_eq(&share.y).into();
        y.zeroize();
        eq
    }
}

/// Validate the first `threshold` shares: enough of them, no zero x. (Duplicates are detected
/// by the callers through a zero Lagrange denominator.)
fn first_shares(shares: &[Share], threshold: usize) -> Result<&[Share], Error> {
    check_threshold(threshold)?;
    let used = shares.get(..threshold).ok_or(Error::NotEnoughShares { needed: threshold, got: shares.len() })?;
    if used.iter().any(|s| s.x == Scalar::ZERO) {
        return Err(Error::ZeroX);
    }
    Ok(used)
}

/// Lagrange denominators dᵢ = ∏_{j≠i} (xᵢ − xⱼ), inverted. Each difference is computed once
/// and used for both i and j. Fails with [`Error::DuplicateX`] if two x are equal.
fn inverted_denominators(used: &[Share]) -> Result<Vec<Scalar>, Error> {
    let mut denoms = vec![Scalar::ONE; used.len()];
    for (i, si) in used.iter().enumerate() {
        // dᵢ is the last of `head`; the dⱼ with j > i are `tail`, in step with used[i+1..].
        let (head, tail) = denoms.split_at_mut(i + 1);
        let Some(di) = head.last_mut() else { continue };
        for (dj, sj) in tail.iter_mut().zip(used.iter().skip(i + 1)) {
            let diff = si.x - sj.x; // xᵢ − xⱼ
            *di *= diff;
            *dj *= diff; // accumulates (xⱼ − xᵢ)·(−1); fixed below
        }
        // dᵢ picked up (xᵢ − xⱼ)·(−1) once for every j < i.
        if i % 2 == 1 {
            *di = -*di;
        }
    }
    if denoms.contains(&Scalar::ZERO) {
        return Err(Error::DuplicateX);
    }
    Scalar::invert_batch_alloc(&mut denoms);
    Ok(denoms)
}

/// Reconstruct the whole polynomial of degree `threshold − 1` from the FIRST `threshold` shares
/// (which must have distinct, non-zero x). Further shares are ignored; check them with
/// [`SharePolynomial::contains`].
///
/// Lagrange interpolation in O(T²) scalar multiplications and one (batched) inversion. With
/// M(z) = ∏ⱼ (z − xⱼ) = Σ mₖ zᵏ, uᵢ = yᵢ / ∏_{j≠i}(xᵢ − xⱼ) and the weighted power sums
/// Pⱼ = Σᵢ uᵢ xᵢʲ, the Lagrange form f = Σᵢ uᵢ · M(z)/(z − xᵢ) has coefficients
/// f_{k−1} = Σ_{j≥0} m_{k+j} Pⱼ.
pub fn interpolate(shares: &[Share], threshold: usize) -> Result<SharePolynomial, Error> {
    let used = first_shares(shares, threshold)?;
    let t = used.len();
    let inv_denoms = inverted_denominators(used)?;

    // m = M(z) = ∏ (z − xⱼ), monic of degree t, m[k] = coefficient of z^k: each factor maps the coefficients c
    // to (0, c) − x·(c, 0).
    let mut m: Vec<Scalar> = Vec::with_capacity(t + 1);
    m.push(Scalar::ONE);
    for s in used {
        let neg_x = -s.x;
        let shifted = core::iter::once(Scalar::ZERO).chain(m.iter().copied());
        let scaled = m.iter().map(|c| c * neg_x).chain(core::iter::once(Scalar::ZERO));
        m = shifted.zip(scaled).map(|(a, b)| a + b).collect();
    }

    // Power sums Pⱼ = Σᵢ uᵢ xᵢʲ, j = 0..t−1.
    let mut power_sums: Zeroizing<Vec<Scalar>> = Zeroizing::new(vec![Scalar::ZERO; t]);
    for (s, inv_d) in used.iter().zip(&inv_denoms) {
        let mut w = Zeroizing::new(s.y * inv_d);
        let (last, init) = match power_sums.split_last_mut() {
            Some(v) => v,
            None => continue, // unreachable: t ≥ 2
        };
        for p in init.iter_mut() {
            *p += *w;
            *w *= s.x;
        }
        *last += *w;
    }

    // f_{k−1} = Σ_{j=0}^{t−k} m_{k+j} Pⱼ.
    let mut coeffs: Vec<Scalar> = Vec::with_capacity(t);
    for k in 1..=t {
        let c = m.iter().skip(k).zip(power_sums.iter()).fold(Scalar::ZERO, |acc, (mk, pj)| acc + mk * pj);
        coeffs.push(c);
    }
    Ok(SharePolynomial { coeffs })
}

/// Lagrange interpolation at zero from the FIRST `threshold` shares (distinct, non-zero x):
/// f(0) = Σᵢ yᵢ · ∏_{j≠i} xⱼ / (xⱼ − xᵢ).
pub fn recover_secret(shares: &[Share], threshold: usize) -> Result<Scalar, Error> {
    let used = first_shares(shares, threshold)?;
    let t = used.len();

    // Numerators ∏_{j≠i} xⱼ from prefix and suffix products (no inversion of x needed).
    let mut nums = vec![Scalar::ONE; t];
    let mut prefix = Scalar::ONE;
    for (n, s) in nums.iter_mut().zip(used) {
        *n = prefix;
        prefix *= s.x;
    }
    let mut suffix = Scalar::ONE;
    for (n, s) in nums.iter_mut().zip(used).rev() {
        *n *= suffix;
        suffix *= s.x;
    }

    // ∏_{j≠i} (xⱼ − xᵢ) = (−1)^(t−1) · dᵢ.
    let inv_denoms = inverted_denominators(used)?;
    let sign_flip = t % 2 == 0;

    let mut secret = Scalar::ZERO;
    for ((s, n), inv_d) in used.iter().zip(&nums).zip(&inv_denoms) {
        secret += s.y * (n * inv_d);
    }
    if sign_flip {
        secret = -secret;
    }
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn rng(seed: u8) -> ChaCha20Rng {
        ChaCha20Rng::from_seed([seed; 32])
    }

    fn shares_for(poly: &SharePolynomial, n: usize, rng: &mut ChaCha20Rng) -> Vec<Share> {
        (0..n).map(|_| poly.share(Scalar::random(rng)).unwrap()).collect()
    }

    /// Fisher–Yates with the test RNG.
    fn shuffle<T>(v: &mut [T], rng: &mut ChaCha20Rng) {
        use rand_core::Rng;
        for i in (1..v.len()).rev() {
            let j = (rng.next_u64() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    }

    #[test]
    fn round_trip_many_thresholds() {
        let mut r = rng(1);
        for t in [2usize, 3, 4, 5, 7, 10, 16, 30, 31, 64, 100] {
            let poly = SharePolynomial::random(t, &mut r).unwrap();
            assert_eq!(poly.threshold(), t);
            let shares = shares_for(&poly, t, &mut r);
            let back = interpolate(&shares, t).unwrap();
            assert_eq!(back.coefficients(), poly.coefficients(), "T = {t}");
            assert_eq!(recover_secret(&shares, t).unwrap(), *poly.secret(), "T = {t}");
            for s in &shares {
                assert!(back.contains(s));
            }
        }
    }

    #[test]
    fn small_x_values_round_trip() {
        // x = 1..=T, the textbook case, also with a known polynomial.
        let coeffs: Vec<Scalar> = (1u64..=5).map(Scalar::from).collect();
        let poly = SharePolynomial::from_coefficients(coeffs.clone()).unwrap();
        // f(2) = 1 + 2·2 + 3·4 + 4·8 + 5·16 = 129
        assert_eq!(poly.eval(&Scalar::from(2u64)), Scalar::from(129u64));
        let shares: Vec<Share> = (1u64..=5).map(|x| poly.share(Scalar::from(x)).unwrap()).collect();
        assert_eq!(interpolate(&shares, 5).unwrap().coefficients(), &coeffs[..]);
        assert_eq!(recover_secret(&shares, 5).unwrap(), Scalar::ONE);
    }

    #[test]
    fn any_t_shares_recover() {
        let mut r = rng(2);
        let t = 8;
        let poly = SharePolynomial::random(t, &mut r).unwrap();
        let mut shares = shares_for(&poly, 3 * t, &mut r);
        for _ in 0..20 {
            shuffle(&mut shares, &mut r);
            assert_eq!(recover_secret(&shares, t).unwrap(), *poly.secret());
            let back = interpolate(&shares, t).unwrap();
            assert_eq!(back.coefficients(), poly.coefficients());
            // Shares beyond the first T are ignored by interpolate but verify against the result.
            assert!(shares.iter().all(|s| back.contains(s)));
        }
    }

    #[test]
    fn fewer_than_t_shares_give_a_different_secret() {
        let mut r = rng(3);
        for t in [2usize, 3, 10, 30] {
            let poly = SharePolynomial::random(t, &mut r).unwrap();
            let shares = shares_for(&poly, t - 1, &mut r);
            // Interpolating T−1 shares as if the threshold were T−1 (when that is allowed)
            // yields a polynomial through them with a different constant term.
            if t > 2 {
                assert_ne!(recover_secret(&shares, t - 1).unwrap(), *poly.secret());
                let wrong = interpolate(&shares, t - 1).unwrap();
                assert!(shares.iter().all(|s| wrong.contains(s)));
                assert_ne!(wrong.secret(), poly.secret());
            }
            // Padding with one random (wrong) share gives a different secret too.
            let mut padded = shares.clone();
            padded.push(Share { x: Scalar::random(&mut r), y: Scalar::random(&mut r) });
            assert_ne!(recover_secret(&padded, t).unwrap(), *poly.secret());
            assert_eq!(recover_secret(&shares, t), Err(Error::NotEnoughShares { needed: t, got: t - 1 }));
        }
    }

    #[test]
    fn contains_true_and_false() {
        let mut r = rng(4);
        let poly = SharePolynomial::random(5, &mut r).unwrap();
        let s = poly.share(Scalar::random(&mut r)).unwrap();
        assert!(poly.contains(&s));
        let mut bad = s.clone();
        bad.y += Scalar::ONE;
        assert!(!poly.contains(&bad));
        let other = SharePolynomial::random(5, &mut r).unwrap();
        assert!(!other.contains(&s));
    }

    #[test]
    fn errors() {
        let mut r = rng(5);
        let poly = SharePolynomial::random(4, &mut r).unwrap();
        let mut shares = shares_for(&poly, 4, &mut r);

        assert_eq!(interpolate(&shares, 1).unwrap_err(), Error::InvalidThreshold);
        assert_eq!(interpolate(&shares, 0).unwrap_err(), Error::InvalidThreshold);
        assert_eq!(recover_secret(&shares, MAX_THRESHOLD + 1).unwrap_err(), Error::InvalidThreshold);
        assert_eq!(interpolate(&shares[..3], 4).unwrap_err(), Error::NotEnoughShares { needed: 4, got: 3 });
        assert_eq!(interpolate(&[], 2).unwrap_err(), Error::NotEnoughShares { needed: 2, got: 0 });

        let mut dup = shares.clone();
        dup[3] = dup[1].clone();
        assert_eq!(interpolate(&dup, 4).unwrap_err(), Error::DuplicateX);
        assert_eq!(recover_secret(&dup, 4).unwrap_err(), Error::DuplicateX);
        // Same x, different y is also a duplicate.
        dup[3].y += Scalar::ONE;
        assert_eq!(interpolate(&dup, 4).unwrap_err(), Error::DuplicateX);
        // A duplicate beyond the first T shares is ignored.
        let mut tail_dup = shares.clone();
        tail_dup.push(shares[0].clone());
        assert!(interpolate(&tail_dup, 4).is_ok());

        shares[2].x = Scalar::ZERO;
        assert_eq!(interpolate(&shares, 4).unwrap_err(), Error::ZeroX);
        assert_eq!(recover_secret(&shares, 4).unwrap_err(), Error::ZeroX);
        assert_eq!(poly.share(Scalar::ZERO).unwrap_err(), Error::ZeroX);

        assert_eq!(SharePolynomial::random(1, &mut r).unwrap_err(), Error::InvalidThreshold);
        assert_eq!(SharePolynomial::random(MAX_THRESHOLD + 1, &mut r).unwrap_err(), Error::InvalidThreshold);
        assert_eq!(SharePolynomial::from_coefficients(vec![Scalar::ONE]).unwrap_err(), Error::InvalidThreshold);
        assert_eq!(SharePolynomial::from_coefficients(vec![]).unwrap_err(), Error::InvalidThreshold);
    }

    #[test]
    fn debug_is_redacted() {
        let mut r = rng(6);
        let poly = SharePolynomial::from_coefficients(vec![Scalar::from(12345u64), Scalar::ONE]).unwrap();
        let s = poly.share(Scalar::from(2u64)).unwrap();
        let d = format!("{poly:?} {s:?}");
        assert!(d.contains("redacted"));
        assert!(!d.contains("12345"));
        assert!(!d.contains(&format!("{:?}", poly.secret())));
        let p2 = SharePolynomial::random(3, &mut r).unwrap();
        assert!(!format!("{p2:?}").contains(&format!("{:?}", p2.secret())));
    }

    #[test]
    fn zeroize_wipes() {
        let mut r = rng(7);
        let mut poly = SharePolynomial::random(3, &mut r).unwrap();
        poly.zeroize();
        // zeroize wipes the coefficients and empties the vector.
        assert!(poly.coefficients().is_empty());
        assert_eq!(*poly.secret(), Scalar::ZERO);
        let mut s = Share { x: Scalar::ONE, y: Scalar::ONE };
        s.zeroize();
        assert_eq!(s.y, Scalar::ZERO);
    }
}
