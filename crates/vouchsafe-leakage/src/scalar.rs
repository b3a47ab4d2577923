//! Scalars mod ℓ (the ristretto255 group order) and elements of 𝔽_p (p = 2⁶⁴ − 59) as the view carries them,
//! and their ideal distributions. No curve arithmetic: only comparison with ℓ and rejection sampling.

use rand_core::Rng;
use vouchsafe_threshold::field::P;

/// ℓ = 2²⁵² + 27742317777372353535851937790883648493, little-endian.
pub const ELL: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

/// Whether 32 little-endian bytes are a canonical scalar (`< ℓ`).
pub fn is_canonical(b: &[u8; 32]) -> bool {
    for (x, l) in b.iter().rev().zip(ELL.iter().rev()) {
        if x != l {
            return x < l;
        }
    }
    false // equal to ℓ
}

/// A uniformly random scalar in `[0, ℓ)`: 32 random bytes with the top 3 bits cleared (a value below 2²⁵³), rejected
/// if `>= ℓ` (about half the draws).
pub fn random_scalar<R: Rng + ?Sized>(rng: &mut R) -> [u8; 32] {
    loop {
        let mut b = [0u8; 32];
        rng.fill_bytes(&mut b);
        if let Some(top) = b.last_mut() {
            *top &= 0x1f;
        }
        if is_canonical(&b) {
            return b;
        }
    }
}

/// A uniformly random non-zero scalar in `[1, ℓ)`.
pub fn random_nonzero_scalar<R: Rng + ?Sized>(rng: &mut R) -> [u8; 32] {
    loop {
        let b = random_scalar(rng);
        if b != [0u8; 32] {
            return b;
        }
    }
}

/// A uniformly random element of 𝔽_p (rejection sampling on u64).
pub fn random_fp<R: Rng + ?Sized>(rng: &mut R) -> u64 {
    loop {
        let v = rng.next_u64();
        if v < P {
            return v;
        }
    }
}

/// The top 64 of the 252 significant bits of a scalar (bits 188..252), as a number in `[0, 2⁶⁴)`: a scalar uniform
/// mod ℓ gives a value uniform on `[0, 2⁶⁴)` up to a relative error of 2⁻¹²⁶, so `u / 2⁶⁴` is uniform on `[0, 1)`.
pub fn scalar_top64(b: &[u8; 32]) -> u64 {
    let low = b.get(23).copied().unwrap_or(0);
    let hi = b.get(24..32).map_or(0, |s| s.iter().rev().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)));
    (hi << 4) | u64::from(low >> 4)
}

/// Bits 248..252 of a scalar (the top 4 of its 252 significant bits): uniform on `0..16` for a uniform scalar.
pub fn scalar_top4(b: &[u8; 32]) -> usize {
    usize::from(b.last().copied().unwrap_or(0) & 0x0f)
}

/// Bits 0..4 of a scalar.
pub fn scalar_low4(b: &[u8; 32]) -> usize {
    usize::from(b.first().copied().unwrap_or(0) & 0x0f)
}

/// The top 4 bits of an 𝔽_p element (as a 64-bit number).
pub fn fp_top4(v: u64) -> usize {
    (v >> 60) as usize
}

/// The low 4 bits of an 𝔽_p element.
pub fn fp_low4(v: u64) -> usize {
    (v & 0x0f) as usize
}

/// `u / 2⁶⁴` in `[0, 1)`.
pub fn unit(v: u64) -> f64 {
    v as f64 / 18_446_744_073_709_551_616.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn canonical_boundary() {
        let mut l = ELL;
        assert!(!is_canonical(&l));
        l[0] -= 1;
        assert!(is_canonical(&l));
        assert!(is_canonical(&[0u8; 32]));
        let mut big = [0u8; 32];
        big[31] = 0x10;
        assert!(is_canonical(&big)); // 2^252 < ℓ
        big[16] = 1;
        assert!(!is_canonical(&big));
    }

    #[test]
    fn draws_are_canonical_and_spread() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let mut top = [0u32; 16];
        for _ in 0..16_000 {
            let s = random_nonzero_scalar(&mut rng);
            assert!(is_canonical(&s) && s != [0u8; 32]);
            top[scalar_top4(&s)] += 1;
            assert!(random_fp(&mut rng) < P);
        }
        assert!(top.iter().all(|&c| (800..1200).contains(&c)), "{top:?}");
    }

    #[test]
    fn top64() {
        let mut b = [0u8; 32];
        b[31] = 0x0f;
        b[30] = 0xff;
        b[23] = 0xf0;
        assert_eq!(scalar_top64(&b), (0xfffu64 << 52) | 0xf);
        assert_eq!(scalar_top64(&[0xff; 32]) >> 60, 0xf);
    }
}
