//! What the root package's benches share: distinct fixture images whose hashes are indicators.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)] // bench code; each bench uses a part

use image::DynamicImage;
use vouchsafe_phash::{AssociatedData, HashConfig, fixtures, hash_image};

/// `n` distinct benign fixture images (96 × 80): their primary hash (the PSI item) with their associated data.
/// `secondaries[i]` is picture i's secondary hash, which its indicator must carry for the server's second-hash
/// check to file it.
pub struct Pictures {
    pub items: Vec<(Vec<u8>, Vec<u8>)>,
    pub secondaries: Vec<Vec<u8>>,
}

impl Pictures {
    pub fn new(n: usize) -> Pictures {
        let cfg = HashConfig::V1;
        let (mut items, mut secondaries) = (Vec::new(), Vec::new());
        let mut seen = std::collections::HashSet::new();
        for seed in 1u64.. {
            if items.len() == n {
                break;
            }
            let img = DynamicImage::ImageRgb8(fixtures::benign_image(seed, 96, 80));
            let Ok(h) = hash_image(&cfg, &img) else { continue };
            let y = h.primary.to_canonical_bytes();
            if seen.insert(y.clone()) {
                let ad = AssociatedData::new(&cfg, &h, [seed as u8; 32], 1_700_000_000).unwrap();
                items.push((y, ad.encode()));
                secondaries.push(h.secondary.to_canonical_bytes());
            }
        }
        Pictures { items, secondaries }
    }

    /// The indicators of a table of `total`: the pictures with their real secondary hashes, then fillers
    /// (`indicator i`, secondary = primary) that no image hashes to.
    pub fn indicators(&self, total: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.items
            .iter()
            .zip(&self.secondaries)
            .map(|((y, _), s)| (y.clone(), s.clone()))
            .chain((self.items.len()..total).map(|i| format!("indicator {i}").into_bytes()).map(|y| (y.clone(), y)))
            .collect()
    }
}
