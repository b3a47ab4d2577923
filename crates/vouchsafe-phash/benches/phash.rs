//! Hashing cost: a 1024x768 image (decoded pixels and PNG bytes), and the server's
//! secondary-hash recomputation from a derivative.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // test code: a failure is the test failing

use std::hint::black_box;
use std::io::Cursor;

use criterion::{Criterion, criterion_group, criterion_main};
use image::{DynamicImage, ImageFormat};
use vouchsafe_phash::fixtures::benign_image;
use vouchsafe_phash::{AssociatedData, HashConfig, hash_bytes, hash_image, secondary_from_derivative};

fn bench(c: &mut Criterion) {
    let cfg = HashConfig::V1;
    let img = DynamicImage::ImageRgb8(benign_image(1, 1024, 768));
    let mut png = Cursor::new(Vec::new());
    if img.write_to(&mut png, ImageFormat::Png).is_err() {
        return;
    }
    let png = png.into_inner();
    let Ok(hashes) = hash_image(&cfg, &img) else {
        return;
    };
    let Ok(ad) = AssociatedData::new(&cfg, &hashes, [7; 32], 0) else {
        return;
    };
    let enc = ad.encode();

    c.bench_function("hash_image 1024x768 rgb8", |b| b.iter(|| hash_image(&cfg, black_box(&img))));
    c.bench_function("hash_bytes 1024x768 png (decode + hash)", |b| b.iter(|| hash_bytes(&cfg, black_box(&png))));
    c.bench_function("secondary_from_derivative 64x64", |b| {
        b.iter(|| secondary_from_derivative(&cfg, black_box(&hashes.derivative)))
    });
    c.bench_function("AssociatedData decode", |b| b.iter(|| AssociatedData::decode(black_box(&enc))));
}

criterion_group!(benches, bench);
criterion_main!(benches);
