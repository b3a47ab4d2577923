//! Configuration 2's primary hash against a reference written from `docs/HASHING.md` §1 alone, in `f64`, the way a
//! reimplementer would: area averages over real-valued cells, the textbook DCT-II with the platform's `cos`, the
//! 8 × 8 block, the median rule. The shipped code works in exact integers with an embedded cosine table; both
//! must give the same bits.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use image::{DynamicImage, GrayImage, Luma, RgbImage};
use vouchsafe_phash::fixtures::benign_image;
use vouchsafe_phash::{HashConfig, hash_image, luminance};

/// The 8 × 8 lowest frequencies, row-major (v outer, u inner; u horizontal, v vertical frequency).
fn block() -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    for v in 0..8 {
        for u in 0..8 {
            out.push((u, v));
        }
    }
    out
}

/// Returns the reference bits and the smallest relative distance of a coefficient from the median (a reference in
/// floating point cannot be trusted on a coefficient that sits on the median).
fn reference(gray: &GrayImage) -> (Vec<u8>, f64) {
    let n = 32usize;
    let (w, h) = (gray.width() as usize, gray.height() as usize);
    let overlap = |p: usize, c: usize, len: usize| -> f64 {
        let (lo, hi) = (c as f64 * len as f64 / n as f64, (c + 1) as f64 * len as f64 / n as f64);
        ((p + 1) as f64).min(hi) - (p as f64).max(lo)
    };
    let mut cells = vec![0f64; n * n];
    for cy in 0..n {
        for cx in 0..n {
            let mut s = 0.0;
            for y in 0..h {
                let oy = overlap(y, cy, h);
                if oy <= 0.0 {
                    continue;
                }
                for x in 0..w {
                    let ox = overlap(x, cx, w);
                    if ox > 0.0 {
                        s += ox * oy * f64::from(gray.get_pixel(x as u32, y as u32).0[0]);
                    }
                }
            }
            cells[cy * n + cx] = s;
        }
    }
    let c = |k: usize, m: usize| (std::f64::consts::PI * (m as f64 + 0.5) * k as f64 / n as f64).cos();
    let coef: Vec<f64> = block()
        .iter()
        .map(|&(u, v)| {
            let mut s = 0.0;
            for y in 0..n {
                for x in 0..n {
                    s += c(u, x) * c(v, y) * cells[y * n + x];
                }
            }
            s
        })
        .collect();
    let mut sorted = coef.clone();
    sorted.sort_by(f64::total_cmp);
    let median = (sorted[31] + sorted[32]) / 2.0;
    let scale = sorted.iter().map(|v| v.abs()).fold(0.0, f64::max).max(1.0);
    let margin = coef.iter().map(|v| (v - median).abs() / scale).fold(f64::INFINITY, f64::min);
    let mut bits = vec![0u8; 8];
    for (i, &v) in coef.iter().enumerate() {
        if v > median {
            bits[i / 8] |= 1 << (i % 8);
        }
    }
    (bits, margin)
}

fn images() -> Vec<(String, DynamicImage)> {
    let mut out = Vec::new();
    for (seed, w, h) in [(1u64, 320u32, 240u32), (2, 257, 411), (3, 100, 100), (4, 33, 47), (5, 640, 360)] {
        out.push((format!("benign {seed} {w}x{h}"), DynamicImage::ImageRgb8(benign_image(seed, w, h))));
    }
    out.push((
        "radial 300x199".to_owned(),
        DynamicImage::ImageRgb8(RgbImage::from_fn(300, 199, |x, y| {
            let d = ((x as i64 - 120).pow(2) + (y as i64 - 80).pow(2)) as u64;
            image::Rgb([(d % 251) as u8, (x % 256) as u8, (y * 3 % 256) as u8])
        })),
    ));
    out.push((
        "strip 31x500".to_owned(),
        DynamicImage::ImageLuma8(GrayImage::from_fn(31, 500, |x, y| Luma([((x * 9 + y * y / 50) % 256) as u8]))),
    ));
    out
}

#[test]
fn v2_primary_matches_the_reference() {
    let mut compared = 0;
    for (name, img) in images() {
        let shipped = hash_image(&HashConfig::V2, &img).unwrap();
        let (bits, margin) = reference(&luminance(&img).unwrap());
        if margin < 1e-9 {
            println!("{name}: a coefficient sits on the median (margin {margin:e}), skipped");
            continue;
        }
        assert_eq!(hex::encode(shipped.primary.as_bytes()), hex::encode(&bits), "{name}");
        // The canonical bytes carry configuration id 2.
        assert_eq!(&shipped.primary.to_canonical_bytes()[..3], &[1, 2, 0], "{name}");
        compared += 1;
    }
    assert!(compared >= 6, "only {compared} images compared");
}

#[test]
fn v2_differs_from_v1_only_in_the_primary() {
    let img = DynamicImage::ImageRgb8(benign_image(9, 320, 240));
    let a = hash_image(&HashConfig::V1, &img).unwrap();
    let b = hash_image(&HashConfig::V2, &img).unwrap();
    assert_eq!(a.derivative.as_bytes(), b.derivative.as_bytes());
    assert_eq!(a.secondary.as_bytes(), b.secondary.as_bytes());
    assert_ne!(a.primary.to_canonical_bytes(), b.primary.to_canonical_bytes());
    // Hashes of different configurations never compare.
    assert!(a.primary.hamming_distance(&b.primary).is_err());
}
