//! "Detectable hash functions" (Apple PSI, §"Synthetic matches") and threshold detection.
//!
//! The client keeps s secret polynomials p₁..p_s of degree T−2 over [`Fp`]. A real voucher carries
//! a column (x′, r) with r = (p₁(x′), …, p_s(x′)); a synthetic voucher carries random values. The
//! server stacks the opened vouchers into the (T−1+s) × N matrix whose i-th column is
//! (1, x′ᵢ, …, x′ᵢ^(T−2), rᵢ₁, …, rᵢₛ) and looks for a linear dependency among the columns.
//!
//! Why this works: the real columns all lie in the (T−1)-dimensional subspace
//! V = {(v, C·v) : v ∈ Fp^(T−1)} (C is the s × (T−1) coefficient matrix), and any T−1 of them
//! with distinct x′ are linearly independent (Vandermonde). With at most s synthetic columns,
//! V and the synthetics' span meet only in 0 with overwhelming probability, so every dependency
//! uses real columns only, uses at least T of them, and those T span all of V. Hence the
//! support of any kernel vector is real, and the span of the support is exactly V: every real
//! column (and, w.h.p., no synthetic one) lies in it.

use core::fmt;

use rand_core::CryptoRng;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::field::{Fp, P, canon, mul_add_lazy};
use crate::{Error, MAX_COLUMNS, MAX_SYNTHETIC, MAX_THRESHOLD};

fn check_threshold(threshold: usize) -> Result<(), Error> {
    if (2..=MAX_THRESHOLD).contains(&threshold) { Ok(()) } else { Err(Error::InvalidThreshold) }
}

fn check_s(s: usize) -> Result<(), Error> {
    if s <= MAX_SYNTHETIC { Ok(()) } else { Err(Error::TooManySynthetic { max: MAX_SYNTHETIC, got: s }) }
}

/// The client's secret detectable hash: s polynomials p₁..p_s of degree `threshold − 2` over
/// [`Fp`] (`threshold − 1` coefficients each, constant term first).
///
/// Zeroized on drop; `Debug` shows only the parameters.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct DetectableHash {
    threshold: usize,
    s: usize,
    /// Flat: polynomial j occupies `coeffs[j·(T−1) .. (j+1)·(T−1)]`, constant term first.
    coeffs: Vec<Fp>,
}

impl fmt::Debug for DetectableHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DetectableHash")
            .field("threshold", &self.threshold)
            .field("s", &self.s)
            .field("coeffs", &"<redacted>")
            .finish()
    }
}

impl DetectableHash {
    /// s uniformly random polynomials of degree `threshold − 2`. `threshold` must be in
    /// `2..=MAX_THRESHOLD`; `s` may be 0 and at most [`MAX_SYNTHETIC`].
    pub fn random<R: CryptoRng + ?Sized>(threshold: usize, s: usize, rng: &mut R) -> Result<Self, Error> {
        check_threshold(threshold)?;
        check_s(s)?;
        let coeffs = (0..s * (threshold - 1)).map(|_| Fp::random(rng)).collect();
        Ok(DetectableHash { threshold, s, coeffs })
    }

    /// The detectable hash with the given polynomials (each with `threshold − 1` coefficients,
    /// constant term first); s is `polys.len()`. The input is wiped.
    pub fn from_coefficients(threshold: usize, polys: Vec<Vec<Fp>>) -> Result<Self, Error> {
        let polys = Zeroizing::new(polys);
        check_threshold(threshold)?;
        check_s(polys.len())?;
        let width = threshold - 1;
        let mut coeffs = Vec::with_capacity(polys.len() * width);
        for p in polys.iter() {
            if p.len() != width {
                coeffs.zeroize();
                return Err(Error::PolynomialLength { expected: width, got: p.len() });
            }
            coeffs.extend_from_slice(p);
        }
        Ok(DetectableHash { threshold, s: polys.len(), coeffs })
    }

    /// The threshold T (the polynomials have degree T−2).
    pub fn threshold(&self) -> usize {
        self.threshold
    }

    /// The number of polynomials s (the cap on synthetic vouchers).
    pub fn s(&self) -> usize {
        self.s
    }

    /// The polynomials, each as its `threshold − 1` coefficients, constant term first.
    pub fn polynomials(&self) -> impl Iterator<Item = &[Fp]> {
        // `threshold ≥ 2`, so chunks of size ≥ 1.
        self.coeffs.chunks_exact(self.threshold.saturating_sub(1).max(1))
    }

    /// [p₁(x), …, p_s(x)].
    pub fn eval(&self, x: Fp) -> Vec<Fp> {
        // The powers 1, x, …, x^(T−2) once, then one lazily reduced dot product per polynomial.
        let mut powers = Vec::with_capacity(self.threshold.saturating_sub(1));
        let mut acc = Fp::ONE;
        for _ in 0..self.threshold.saturating_sub(1) {
            powers.push(acc);
            acc *= x;
        }
        self.polynomials().map(|p| crate::field::dot(p, &powers)).collect()
    }

    /// The column a real voucher with x′ = `x` carries: `Column { x, r: self.eval(x) }`.
    pub fn column(&self, x: Fp) -> Column {
        Column { x, r: self.eval(x) }
    }
}

/// What an opened voucher carries for detection: x′ and r = (p₁(x′), …, p_s(x′)) for a real
/// voucher, random values for a synthetic one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Column {
    /// x′, the evaluation point.
    pub x: Fp,
    /// r, the s hash values.
    pub r: Vec<Fp>,
}

impl Column {
    /// A uniformly random column with `s` hash values, as a synthetic voucher carries.
    pub fn random<R: CryptoRng + ?Sized>(s: usize, rng: &mut R) -> Column {
        Column { x: Fp::random(rng), r: (0..s).map(|_| Fp::random(rng)).collect() }
    }
}

/// The outcome of [`detect()`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Detection {
    /// No kernel vector: at most threshold−1 real columns among the input, nothing more is learned.
    BelowThreshold,
    /// Indices (into the input slice, ascending) classified real (in the span of a kernel
    /// vector's support) and synthetic (the rest).
    Found {
        /// Indices of the columns classified real, ascending.
        real: Vec<usize>,
        /// Indices of the remaining columns, ascending.
        synthetic: Vec<usize>,
    },
}

/// Threshold detection over the opened columns of one account.
///
/// Builds the (threshold−1+s) × N matrix whose column i is (1, xᵢ, xᵢ², …, xᵢ^(threshold−2),
/// rᵢ₁, …, rᵢₛ) over [`Fp`] and brings it to reduced row-echelon form by Gauss–Jordan
/// elimination (O((T−1+s)²·N) field operations). If the columns are independent there is no
/// kernel vector and the result is [`Detection::BelowThreshold`]. Otherwise the kernel vector
/// belonging to the first column (in input order) that depends on earlier ones is taken: its
/// support is classified real, and so is every column in the span of the supported columns;
/// the rest are synthetic.
///
/// Guarantees, with ≤ s synthetic (uniformly random) columns and real columns with distinct x:
/// - fewer than `threshold` real columns: `BelowThreshold` (w.h.p.; N ≤ T−1+s);
/// - at least `threshold` real columns: `Found` with exactly the real columns as `real`
///   (w.h.p.), whatever their order.
///
/// Outside those assumptions the result is still well-defined, never panics, and is a
/// partition of the indices, but it can be wrong:
/// - With more than s synthetic columns a kernel vector can appear whose support contains
///   synthetic columns (with N > T−1+s columns there always is a kernel vector, e.g. T−1 real and
///   s+1 synthetic columns typically give one whose support is *every* column, so everything is
///   classified real). The caller then fails cleanly at reconstruction: the "real" shares do not
///   lie on one polynomial of degree T−1 (check with [`crate::SharePolynomial::contains`]) and
///   the adkey derived from them does not decrypt the associated data (the AEAD does not verify).
///   Clients never make more than s synthetic vouchers per account and order.
/// - Identical columns (the same voucher twice, or real columns with equal x) form a kernel
///   vector of support 2 by themselves; if that is the first dependency found, only the copies
///   are classified real. Callers should deduplicate by share x first, as the design requires.
///
/// This function is variable-time; its input (opened vouchers) is already known to the caller.
///
/// Errors: [`Error::InvalidThreshold`] (threshold outside `2..=MAX_THRESHOLD`),
/// [`Error::TooManySynthetic`] (s > [`MAX_SYNTHETIC`]), [`Error::TooManyColumns`]
/// (N > [`MAX_COLUMNS`]), [`Error::ColumnLength`] (some `r` does not have s entries).
// The elimination indexes one dense row-major m × n matrix, allocated below, with a row r < m and a column c < n
// (loop bounds), so `r * n + c < m * n` always holds; `pivot_cols`, `is_pivot`, `scratch` and `in_support` are sized
// by the same bounds. No index depends on the columns' values.
#[allow(clippy::indexing_slicing)]
pub fn detect(columns: &[Column], threshold: usize, s: usize) -> Result<Detection, Error> {
    check_threshold(threshold)?;
    check_s(s)?;
    let n = columns.len();
    if n > MAX_COLUMNS {
        return Err(Error::TooManyColumns { max: MAX_COLUMNS, got: n });
    }
    if let Some(c) = columns.iter().find(|c| c.r.len() != s) {
        return Err(Error::ColumnLength { expected: s, got: c.r.len() });
    }
    if n == 0 {
        return Ok(Detection::BelowThreshold);
    }

    let vdm_rows = threshold - 1;
    let m = vdm_rows + s;

    // Row-major m × n matrix of raw residues. Entries are kept in the redundant range 0..2^64
    // during elimination and canonicalised (`canon`) wherever they are compared with zero.
    let mut a = vec![0u64; m * n];
    for (i, col) in columns.iter().enumerate() {
        let mut pw = Fp::ONE;
        for k in 0..vdm_rows {
            a[k * n + i] = pw.value();
            pw *= col.x;
        }
        for (j, v) in col.r.iter().enumerate() {
            a[(vdm_rows + j) * n + i] = v.value();
        }
    }

    // Gauss–Jordan elimination to reduced row-echelon form.
    let mut pivot_cols: Vec<usize> = Vec::with_capacity(m.min(n));
    let mut is_pivot = vec![false; n];
    let mut scratch = vec![0u64; n];
    for col in 0..n {
        let rank = pivot_cols.len();
        if rank == m {
            break;
        }
        let Some(p) = (rank..m).find(|&r| canon(a[r * n + col]) != 0) else {
            continue;
        };
        if p != rank {
            // Rows `rank` and `p` (rank < p): swap their tails from `col` on (both are zero before).
            let (top, bottom) = a.split_at_mut(p * n);
            top[rank * n + col..(rank + 1) * n].swap_with_slice(&mut bottom[col..n]);
        }
        let Some(inv) = Fp::reduce(a[rank * n + col]).inv() else {
            continue; // unreachable: the pivot is non-zero
        };
        // Normalise the pivot row (canonically) and keep a copy of its tail.
        let tail_len = n - col - 1;
        {
            let row = &mut a[rank * n + col..(rank + 1) * n];
            row[0] = 1;
            for (v, sc) in row[1..].iter_mut().zip(scratch.iter_mut()) {
                *v = (Fp::reduce(*v) * inv).value();
                *sc = *v;
            }
        }
        let pivot_tail = &scratch[..tail_len];
        for r in 0..m {
            if r == rank {
                continue;
            }
            let row = &mut a[r * n + col..(r + 1) * n];
            let f = canon(row[0]);
            if f == 0 {
                continue;
            }
            let nf = P - f; // −f, canonical since 0 < f < P
            row[0] = 0;
            for (v, &pv) in row[1..].iter_mut().zip(pivot_tail) {
                *v = mul_add_lazy(*v, nf, pv);
            }
        }
        pivot_cols.push(col);
        is_pivot[col] = true;
    }

    // The first column that is not a pivot depends on the pivots before it.
    let Some(free) = is_pivot.iter().position(|&p| !p) else {
        return Ok(Detection::BelowThreshold);
    };
    let rank = pivot_cols.len();
    // In RREF, column j of the original matrix equals Σ_k a[k][j] · (pivot column k). The kernel
    // vector for `free` is e_free − Σ_k a[k][free] e_{pivot k}, so its support spans the same
    // space as the pivot columns k with a[k][free] ≠ 0 ("support rows").
    let in_support: Vec<bool> = (0..rank).map(|k| canon(a[k * n + free]) != 0).collect();
    // Column j is in that span iff its coordinates outside the support rows are all zero.
    let mut real = Vec::new();
    let mut synthetic = Vec::new();
    for j in 0..n {
        let in_span = (0..rank).all(|k| in_support[k] || canon(a[k * n + j]) == 0);
        if in_span {
            real.push(j);
        } else {
            synthetic.push(j);
        }
    }
    Ok(Detection::Found { real, synthetic })
}
