//! Fixtures shared by the server's integration tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, dead_code)] // test code

use vouchsafe_phash::{AssociatedData, HashConfig, fixtures, hash_image};

/// One fixture image: its canonical primary hash (the PSI item), its secondary hash and its associated data.
pub struct Image {
    pub y: Vec<u8>,
    pub ad: Vec<u8>,
    pub secondary: Vec<u8>,
}

/// The deterministic benign fixture image of `seed` (96 × 80), hashed under hash configuration V1.
pub fn image(seed: u64) -> Image {
    let cfg = HashConfig::V1;
    let img = image::DynamicImage::ImageRgb8(fixtures::benign_image(seed, 96, 80));
    let h = hash_image(&cfg, &img).unwrap_or_else(|e| panic!("hash: {e}"));
    let ad = AssociatedData::new(&cfg, &h, [seed as u8; 32], 1_700_000_000 + seed)
        .unwrap_or_else(|e| panic!("ad: {e}"))
        .encode();
    Image { y: h.primary.to_canonical_bytes(), ad, secondary: h.secondary.to_canonical_bytes() }
}
