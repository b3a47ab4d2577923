//! Times the primitives the protocol is built from (decompress, scalar multiplication, compress, hash-to-group,
//! KDF, AEAD trial and seal), to compare curve25519-dalek / poly1305 backends on a machine:
//!
//! `cargo run --release -p vouchsafe-protocol --example primitives`
//! `RUSTFLAGS='--cfg curve25519_dalek_backend="simd"' cargo run --release -p vouchsafe-protocol --example primitives`
//! (RUSTFLAGS replaces the flags of .cargo/config.toml; use a separate CARGO_TARGET_DIR per backend.)

use curve25519_dalek::ristretto::RistrettoPoint;
use curve25519_dalek::scalar::Scalar;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use std::time::Instant;
fn t<F: FnMut()>(name: &str, n: u32, mut f: F) {
    let s = Instant::now();
    for _ in 0..n {
        f()
    }
    println!("{name}: {:.2} µs", s.elapsed().as_secs_f64() * 1e6 / n as f64);
}
fn main() -> Result<(), vouchsafe_protocol::Error> {
    let mut rng = ChaCha20Rng::from_seed([1; 32]);
    let p = RistrettoPoint::random(&mut rng);
    let c = p.compress();
    let a = Scalar::random(&mut rng);
    let n = 20000;
    t("decompress", n, || {
        std::hint::black_box(std::hint::black_box(c).decompress());
    });
    t("mul", n, || {
        std::hint::black_box(a * std::hint::black_box(p));
    });
    t("compress", n, || {
        std::hint::black_box(std::hint::black_box(p).compress());
    });
    t("double_scalar_mul", n / 4, || {
        use curve25519_dalek::traits::MultiscalarMul;
        std::hint::black_box(RistrettoPoint::multiscalar_mul([a, a], [p, p]));
    });
    t("hash_to_group", n, || {
        std::hint::black_box(vouchsafe_protocol::crypto::hash_to_group(&[0; 16], b"0123456789abcdef0123456789abcdef"));
    });
    let pts: Vec<RistrettoPoint> = (0..64).map(|_| RistrettoPoint::random(&mut rng)).collect();
    t("double_and_compress_batch/64", n / 64, || {
        std::hint::black_box(RistrettoPoint::double_and_compress_batch(&pts));
    });
    t("position_key", n, || {
        std::hint::black_box(vouchsafe_protocol::crypto::position_key(&[1; 32], &[2; 32], &[3; 32], &[4; 16]));
    });
    let sealed = vouchsafe_protocol::crypto::seal(&[1; 32], b"aad", &[0u8; 32], &mut rng)?;
    let big = vec![7u8; 4700];
    t("seal 4700 B", n / 4, || {
        let _ = std::hint::black_box(vouchsafe_protocol::crypto::seal(&[1; 32], b"aad", &big, &mut rng.clone()));
    });
    let mut out = [0u8; 32];
    t("aead try (fail)", n, || {
        std::hint::black_box(vouchsafe_protocol::crypto::open_into(&[2; 32], b"aad", &sealed, &mut out));
    });
    t("aead try (ok)", n, || {
        std::hint::black_box(vouchsafe_protocol::crypto::open_into(&[1; 32], b"aad", &sealed, &mut out));
    });
    Ok(())
}
