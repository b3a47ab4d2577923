//! Threshold detection: real vs synthetic columns, and reconstruction from what is found real.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // test code: a failure is the test failing

use curve25519_dalek::Scalar;
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use vouchsafe_threshold::{
    Column, DetectableHash, Detection, Error, Fp, MAX_COLUMNS, MAX_SYNTHETIC, Share, SharePolynomial, detect, field::P,
    interpolate,
};

fn rng(seed: u8) -> ChaCha20Rng {
    ChaCha20Rng::from_seed([seed; 32])
}

fn shuffle<T>(v: &mut [T], rng: &mut ChaCha20Rng) {
    for i in (1..v.len()).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
}

/// A simulated opened voucher: its detection column, its share, and whether it is real.
#[derive(Clone)]
struct Opened {
    column: Column,
    share: Share,
    real: bool,
}

struct Account {
    f: SharePolynomial,
    dh: DetectableHash,
}

impl Account {
    fn new(t: usize, s: usize, rng: &mut ChaCha20Rng) -> Self {
        Account { f: SharePolynomial::random(t, rng).unwrap(), dh: DetectableHash::random(t, s, rng).unwrap() }
    }

    fn real(&self, rng: &mut ChaCha20Rng) -> Opened {
        Opened {
            column: self.dh.column(Fp::random(rng)),
            share: self.f.share(Scalar::random(rng)).unwrap(),
            real: true,
        }
    }

    fn synthetic(&self, rng: &mut ChaCha20Rng) -> Opened {
        Opened {
            column: Column::random(self.dh.s(), rng),
            share: Share { x: Scalar::random(rng), y: Scalar::random(rng) },
            real: false,
        }
    }

    /// `reals` real and `synth` synthetic vouchers, shuffled.
    fn vouchers(&self, reals: usize, synth: usize, rng: &mut ChaCha20Rng) -> Vec<Opened> {
        let mut v: Vec<Opened> = (0..reals).map(|_| self.real(rng)).collect();
        for _ in 0..synth {
            v.push(self.synthetic(rng));
        }
        shuffle(&mut v, rng);
        v
    }
}

fn columns(v: &[Opened]) -> Vec<Column> {
    v.iter().map(|o| o.column.clone()).collect()
}

fn truth(v: &[Opened]) -> (Vec<usize>, Vec<usize>) {
    let real = (0..v.len()).filter(|&i| v[i].real).collect();
    let synth = (0..v.len()).filter(|&i| !v[i].real).collect();
    (real, synth)
}

/// Assert the detection classifies exactly the real vouchers as real, then reconstruct f.
fn assert_exact(acct: &Account, v: &[Opened], t: usize, s: usize) {
    let d = detect(&columns(v), t, s).unwrap();
    let (real, synthetic) = truth(v);
    assert_eq!(d, Detection::Found { real: real.clone(), synthetic });
    let shares: Vec<Share> = real.iter().map(|&i| v[i].share.clone()).collect();
    let f = interpolate(&shares, t).unwrap();
    assert_eq!(f.secret(), acct.f.secret());
    assert!(shares.iter().all(|sh| f.contains(sh)));
}

#[test]
fn below_threshold_t_minus_1_reals_and_s_synthetics() {
    let mut r = rng(10);
    for (t, s) in [(2, 0), (2, 1), (2, 5), (3, 3), (5, 10), (10, 20), (30, 60)] {
        let acct = Account::new(t, s, &mut r);
        for reals in 0..t {
            for synth in [0, s / 2, s] {
                let v = acct.vouchers(reals, synth, &mut r);
                assert_eq!(
                    detect(&columns(&v), t, s).unwrap(),
                    Detection::BelowThreshold,
                    "T={t} s={s} reals={reals} synth={synth}"
                );
            }
        }
    }
}

#[test]
fn exactly_t_reals_and_s_synthetics_are_separated() {
    let mut r = rng(11);
    for (t, s) in [(2, 1), (2, 5), (3, 3), (4, 8), (10, 20), (30, 60), (7, 1)] {
        let acct = Account::new(t, s, &mut r);
        for _ in 0..5 {
            let v = acct.vouchers(t, s, &mut r);
            assert_exact(&acct, &v, t, s);
        }
    }
}

#[test]
fn fewer_synthetics_than_s() {
    let mut r = rng(12);
    let (t, s) = (10, 20);
    let acct = Account::new(t, s, &mut r);
    for synth in [0, 1, 7, 19] {
        let v = acct.vouchers(t, synth, &mut r);
        assert_exact(&acct, &v, t, s);
    }
}

#[test]
fn more_reals_than_t() {
    let mut r = rng(13);
    for (t, s) in [(2, 3), (5, 10), (30, 60)] {
        let acct = Account::new(t, s, &mut r);
        for reals in [t + 1, t + 5, 2 * t + 3, 3 * t + s] {
            let v = acct.vouchers(reals, s, &mut r);
            assert_exact(&acct, &v, t, s);
        }
    }
}

#[test]
fn s_zero() {
    let mut r = rng(14);
    for t in [2, 3, 8, 30] {
        let acct = Account::new(t, 0, &mut r);
        assert_eq!(acct.dh.s(), 0);
        assert!(acct.dh.eval(Fp::ONE).is_empty());
        let v = acct.vouchers(t - 1, 0, &mut r);
        assert_eq!(detect(&columns(&v), t, 0).unwrap(), Detection::BelowThreshold);
        for reals in [t, t + 4] {
            let v = acct.vouchers(reals, 0, &mut r);
            assert_exact(&acct, &v, t, 0);
        }
    }
}

#[test]
fn threshold_two() {
    // Degree-0 detectable hash: every real column is (1, c₁, …, c_s).
    let mut r = rng(15);
    for s in [0, 1, 4] {
        let acct = Account::new(2, s, &mut r);
        let v = acct.vouchers(1, s, &mut r);
        assert_eq!(detect(&columns(&v), 2, s).unwrap(), Detection::BelowThreshold);
        for reals in [2, 3, 6] {
            let v = acct.vouchers(reals, s, &mut r);
            assert_exact(&acct, &v, 2, s);
        }
    }
}

#[test]
fn more_than_s_synthetics_does_not_panic_and_reconstruction_fails_cleanly() {
    let mut r = rng(16);
    for (t, s) in [(2, 0), (2, 3), (3, 3), (10, 20), (30, 60)] {
        let acct = Account::new(t, s, &mut r);
        for _ in 0..3 {
            let v = acct.vouchers(t - 1, s + 1, &mut r);
            let d = detect(&columns(&v), t, s).unwrap();
            // N = T + s > T − 1 + s rows: there is always a kernel vector.
            let Detection::Found { real, synthetic } = d else {
                panic!("N > rows must give a kernel vector (T={t} s={s})");
            };
            let mut all: Vec<usize> = real.iter().chain(&synthetic).copied().collect();
            all.sort_unstable();
            assert_eq!(all, (0..v.len()).collect::<Vec<_>>());
            // Fewer than T reals exist, so whatever was classified real cannot reconstruct f.
            let shares: Vec<Share> = real.iter().map(|&i| v[i].share.clone()).collect();
            match interpolate(&shares, t) {
                Ok(g) => {
                    assert_ne!(g.secret(), acct.f.secret());
                    // The caller's consistency check catches it when more than T are "real".
                    if shares.len() > t {
                        assert!(!shares.iter().all(|sh| g.contains(sh)));
                    }
                }
                Err(e) => assert!(matches!(e, Error::NotEnoughShares { .. })),
            }
        }
    }
}

#[test]
fn t_reals_and_extra_synthetics_still_classifies_a_partition() {
    // With more than s synthetics the result may be wrong, but it must be a partition and the
    // reconstruction check must expose any wrong classification.
    let mut r = rng(17);
    let (t, s) = (5, 4);
    let acct = Account::new(t, s, &mut r);
    for extra in [1, 2, 10] {
        let v = acct.vouchers(t, s + extra, &mut r);
        let Detection::Found { real, synthetic } = detect(&columns(&v), t, s).unwrap() else {
            panic!("expected a kernel");
        };
        assert_eq!(real.len() + synthetic.len(), v.len());
        let shares: Vec<Share> = real.iter().map(|&i| v[i].share.clone()).collect();
        let all_real = real.iter().all(|&i| v[i].real);
        if let Ok(g) = interpolate(&shares, t) {
            let consistent = shares.iter().all(|sh| g.contains(sh));
            if !all_real {
                assert!(!consistent || g.secret() != acct.f.secret());
            }
        }
    }
}

#[test]
fn duplicate_columns_form_a_kernel_of_two() {
    let mut r = rng(18);
    let (t, s) = (5, 6);
    let acct = Account::new(t, s, &mut r);
    // Three synthetics and a copy of the second: the only dependency is the copy.
    let mut v = acct.vouchers(0, 3, &mut r);
    v.push(v[1].clone());
    assert_eq!(detect(&columns(&v), t, s).unwrap(), Detection::Found { real: vec![1, 3], synthetic: vec![0, 2] });
    // A duplicated real column among T−1 reals.
    let mut v = acct.vouchers(t - 1, 2, &mut r);
    let i = v.iter().position(|o| o.real).unwrap();
    v.insert(0, v[i].clone());
    let d = detect(&columns(&v), t, s).unwrap();
    assert_eq!(d, Detection::Found { real: vec![0, i + 1], synthetic: (1..v.len()).filter(|&j| j != i + 1).collect() });
    // Many identical columns.
    let v = vec![acct.real(&mut r).column; 10];
    assert_eq!(detect(&v, t, s).unwrap(), Detection::Found { real: (0..10).collect(), synthetic: vec![] });
}

#[test]
fn empty_and_single() {
    assert_eq!(detect(&[], 3, 2).unwrap(), Detection::BelowThreshold);
    let mut r = rng(19);
    let c = Column::random(2, &mut r);
    assert_eq!(detect(&[c], 3, 2).unwrap(), Detection::BelowThreshold);
}

#[test]
fn errors() {
    let mut r = rng(20);
    let cols: Vec<Column> = (0..4).map(|_| Column::random(3, &mut r)).collect();
    assert_eq!(detect(&cols, 1, 3).unwrap_err(), Error::InvalidThreshold);
    assert_eq!(detect(&cols, 0, 3).unwrap_err(), Error::InvalidThreshold);
    assert_eq!(detect(&cols, 1025, 3).unwrap_err(), Error::InvalidThreshold);
    assert_eq!(detect(&cols, 3, 2).unwrap_err(), Error::ColumnLength { expected: 2, got: 3 });
    let mut bad = cols.clone();
    bad[2].r.pop();
    assert_eq!(detect(&bad, 3, 3).unwrap_err(), Error::ColumnLength { expected: 3, got: 2 });
    assert_eq!(
        detect(&cols, 3, MAX_SYNTHETIC + 1).unwrap_err(),
        Error::TooManySynthetic { max: MAX_SYNTHETIC, got: MAX_SYNTHETIC + 1 }
    );
    let many = vec![Column { x: Fp::ONE, r: vec![] }; MAX_COLUMNS + 1];
    assert_eq!(detect(&many, 3, 0).unwrap_err(), Error::TooManyColumns { max: MAX_COLUMNS, got: MAX_COLUMNS + 1 });

    assert_eq!(DetectableHash::random(1, 3, &mut r).unwrap_err(), Error::InvalidThreshold);
    assert_eq!(
        DetectableHash::random(3, MAX_SYNTHETIC + 1, &mut r).unwrap_err(),
        Error::TooManySynthetic { max: MAX_SYNTHETIC, got: MAX_SYNTHETIC + 1 }
    );
    assert_eq!(
        DetectableHash::from_coefficients(3, vec![vec![Fp::ONE, Fp::ONE], vec![Fp::ONE]]).unwrap_err(),
        Error::PolynomialLength { expected: 2, got: 1 }
    );
}

#[test]
fn detectable_hash_eval_known_answer() {
    // p₁(x) = 1 + 2x + 3x², p₂(x) = (P−1) + 0x + x²  (T = 4).
    let f = |v: u64| Fp::new(v).unwrap();
    let dh = DetectableHash::from_coefficients(4, vec![vec![f(1), f(2), f(3)], vec![f(P - 1), f(0), f(1)]]).unwrap();
    assert_eq!((dh.threshold(), dh.s()), (4, 2));
    assert_eq!(dh.eval(f(10)), vec![f(321), f(99)]);
    assert_eq!(dh.eval(Fp::ZERO), vec![f(1), f(P - 1)]);
    assert_eq!(dh.column(f(10)), Column { x: f(10), r: vec![f(321), f(99)] });
    let polys: Vec<Vec<u64>> = dh.polynomials().map(|p| p.iter().map(|c| c.value()).collect()).collect();
    assert_eq!(polys, vec![vec![1, 2, 3], vec![P - 1, 0, 1]]);
    let dbg = format!("{dh:?}");
    assert!(dbg.contains("redacted") && !dbg.contains("321"));
}

// ---------- property test against an independent rank computation ----------

const PP: u128 = P as u128;

fn ref_inv(a: u64) -> u64 {
    let (mut base, mut e, mut acc) = (a as u128, P - 2, 1u128);
    while e > 0 {
        if e & 1 == 1 {
            acc = acc * base % PP;
        }
        base = base * base % PP;
        e >>= 1;
    }
    acc as u64
}

/// Rank of a set of column vectors, by plain u128 % arithmetic.
fn ref_rank(cols: &[Vec<u64>]) -> usize {
    let mut basis: Vec<(usize, Vec<u64>)> = Vec::new(); // (pivot index, normalised vector)
    for c in cols {
        let mut v = c.clone();
        for (p, b) in &basis {
            let f = v[*p] as u128;
            if f != 0 {
                for (x, y) in v.iter_mut().zip(b) {
                    *x = ((*x as u128 + PP * PP - f * *y as u128) % PP) as u64;
                }
            }
        }
        if let Some(p) = v.iter().position(|&x| x != 0) {
            let inv = ref_inv(v[p]) as u128;
            for x in v.iter_mut() {
                *x = (*x as u128 * inv % PP) as u64;
            }
            basis.push((p, v));
        }
    }
    basis.len()
}

fn ref_column(c: &Column, t: usize) -> Vec<u64> {
    let mut out = Vec::new();
    let mut pw = 1u128;
    for _ in 0..t - 1 {
        out.push(pw as u64);
        pw = pw * c.x.value() as u128 % PP;
    }
    out.extend(c.r.iter().map(|v| v.value()));
    out
}

fn small_fp() -> impl Strategy<Value = Fp> {
    prop_oneof![(0u64..4).prop_map(|v| Fp::new(v).unwrap()), Just(Fp::new(P - 1).unwrap())]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Degenerate small-valued matrices (many dependencies): never panics, and the result is
    /// consistent with linear algebra: BelowThreshold iff the columns are independent; when
    /// Found, the "real" set is dependent and no "synthetic" column lies in its span.
    #[test]
    fn detect_is_consistent_with_rank(
        t in 2usize..5,
        s in 0usize..4,
        n in 0usize..10,
        seed in prop::collection::vec(small_fp(), 0..200),
    ) {
        let mut it = seed.into_iter().chain(core::iter::repeat(Fp::ONE));
        let cols: Vec<Column> = (0..n)
            .map(|_| Column { x: it.next().unwrap(), r: (0..s).map(|_| it.next().unwrap()).collect() })
            .collect();
        let vecs: Vec<Vec<u64>> = cols.iter().map(|c| ref_column(c, t)).collect();
        let full = ref_rank(&vecs);
        match detect(&cols, t, s).unwrap() {
            Detection::BelowThreshold => prop_assert_eq!(full, n),
            Detection::Found { real, synthetic } => {
                prop_assert!(full < n);
                let mut all: Vec<usize> = real.iter().chain(&synthetic).copied().collect();
                all.sort_unstable();
                prop_assert_eq!(all, (0..n).collect::<Vec<_>>());
                prop_assert!(real.windows(2).all(|w| w[0] < w[1]));
                prop_assert!(synthetic.windows(2).all(|w| w[0] < w[1]));
                let real_vecs: Vec<Vec<u64>> = real.iter().map(|&i| vecs[i].clone()).collect();
                let rr = ref_rank(&real_vecs);
                prop_assert!(rr < real.len(), "real set must contain a dependency");
                for &j in &synthetic {
                    let mut with = real_vecs.clone();
                    with.push(vecs[j].clone());
                    prop_assert_eq!(ref_rank(&with), rr + 1, "synthetic column in span of real");
                }
            }
        }
    }

    /// Random T, s, counts: with ≤ s synthetics the classification is exact.
    #[test]
    fn exact_with_at_most_s_synthetics(
        t in 2usize..12,
        s in 0usize..12,
        extra_reals in 0usize..6,
        seed in any::<[u8; 32]>(),
        synth_frac in 0.0f64..=1.0,
    ) {
        let mut r = ChaCha20Rng::from_seed(seed);
        let acct = Account::new(t, s, &mut r);
        let synth = ((s as f64) * synth_frac) as usize;
        let v = acct.vouchers(t + extra_reals, synth, &mut r);
        let (real, synthetic) = truth(&v);
        prop_assert_eq!(detect(&columns(&v), t, s).unwrap(), Detection::Found { real, synthetic });
        let v = acct.vouchers(t - 1, synth, &mut r);
        prop_assert_eq!(detect(&columns(&v), t, s).unwrap(), Detection::BelowThreshold);
    }
}
