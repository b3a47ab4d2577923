//! Threshold detection and reconstruction at the design's reference size: T = 30, s = 60,
//! 30 real and 60 synthetic opened vouchers in shuffled order.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // test code: a failure is the test failing

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use curve25519_dalek::Scalar;
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use vouchsafe_threshold::{
    Column, DetectableHash, Detection, Share, SharePolynomial, detect, interpolate, recover_secret,
};

const T: usize = 30;
const S: usize = 60;

struct Fixture {
    columns: Vec<Column>,
    shares: Vec<Share>,
    real_shares: Vec<Share>,
}

fn fixture() -> Fixture {
    let mut rng = ChaCha20Rng::from_seed([42u8; 32]);
    let f = SharePolynomial::random(T, &mut rng).expect("valid threshold");
    let dh = DetectableHash::random(T, S, &mut rng).expect("valid parameters");
    let mut items: Vec<(Column, Share)> = Vec::with_capacity(T + S);
    for _ in 0..T {
        let col = dh.column(vouchsafe_threshold::Fp::random(&mut rng));
        let share = f.share(Scalar::random(&mut rng)).expect("non-zero x");
        items.push((col, share));
    }
    for _ in 0..S {
        let col = Column::random(S, &mut rng);
        let share = Share { x: Scalar::random(&mut rng), y: Scalar::random(&mut rng) };
        items.push((col, share));
    }
    for i in (1..items.len()).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
    let (columns, shares): (Vec<Column>, Vec<Share>) = items.into_iter().unzip();
    let real_shares: Vec<Share> = shares.iter().filter(|s| f.contains(s)).cloned().collect();
    assert_eq!(real_shares.len(), T);
    Fixture { columns, shares, real_shares }
}

fn bench(c: &mut Criterion) {
    let fx = fixture();

    c.benchmark_group("detect_T30_s60")
        .bench_function("detect", |b| b.iter(|| detect(black_box(&fx.columns), T, S).expect("valid input")));

    let mut g = c.benchmark_group("interpolate_T30");
    g.bench_function("interpolate", |b| b.iter(|| interpolate(black_box(&fx.real_shares), T).expect("valid shares")));
    g.bench_function("recover_secret", |b| {
        b.iter(|| recover_secret(black_box(&fx.real_shares), T).expect("valid shares"))
    });
    g.finish();

    c.benchmark_group("detect_and_reconstruct_T30_s60").bench_function("detect_and_reconstruct", |b| {
        b.iter(|| {
            let Detection::Found { real, .. } = detect(black_box(&fx.columns), T, S).expect("valid input") else {
                panic!("threshold reached but nothing found");
            };
            let real: Vec<Share> = real.iter().filter_map(|&i| fx.shares.get(i)).cloned().collect();
            interpolate(&real, T).expect("valid shares")
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
