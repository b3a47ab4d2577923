//! Measurements behind the choices in `docs/HASHING.md`. Run with
//! `cargo test -p vouchsafe-phash --release -- --ignored --nocapture experiments`.

use image::DynamicImage;

use crate::config::{Algorithm, HashSpec, Preprocessing, ResizeFilter};
use crate::fixtures::{NearDuplicateKind, benign_image, near_duplicate, near_duplicate_kind};
use crate::hash::{HashKind, luminance, run_hasher};
use crate::{HashConfig, hash_image};

const SEEDS: u64 = 300;
const W: u32 = 320;
const H: u32 = 240;

fn candidates() -> Vec<(&'static str, HashSpec)> {
    use Algorithm::*;
    use Preprocessing::{Dct, None as NoPre};
    let t = ResizeFilter::Triangle;
    vec![
        ("median+dct 16x16", HashSpec::new(Median, 16, 16, t, Dct, 256)),
        ("median+dct 8x8", HashSpec::new(Median, 8, 8, t, Dct, 64)),
        ("median+dct 16x8", HashSpec::new(Median, 16, 8, t, Dct, 128)),
        ("median+dct 8x8 catmullrom", HashSpec::new(Median, 8, 8, ResizeFilter::CatmullRom, Dct, 64)),
        ("mean+dct 8x8", HashSpec::new(Mean, 8, 8, t, Dct, 64)),
        ("gradient 16x16", HashSpec::new(Gradient, 16, 16, t, NoPre, 256)),
        ("gradient 8x8", HashSpec::new(Gradient, 8, 8, t, NoPre, 64)),
        ("doublegradient 16x16", HashSpec::new(DoubleGradient, 16, 16, t, NoPre, 144)),
        ("blockhash 16x16 (full image)", HashSpec::new(Blockhash, 16, 16, t, NoPre, 256)),
    ]
}

fn hist(v: &[u32]) -> String {
    let mut s = v.to_vec();
    s.sort_unstable();
    let q = |p: usize| s.get((s.len().saturating_sub(1)) * p / 100).copied().unwrap_or(0);
    format!("min {} p50 {} p90 {} p99 {} max {}", q(0), q(50), q(90), q(99), q(100))
}

#[test]
#[ignore = "measurement, prints figures"]
fn experiments_primary_candidates() {
    let originals: Vec<_> = (0..SEEDS).map(|s| benign_image(s, W, H)).collect();
    let dups: Vec<_> = originals.iter().enumerate().map(|(i, img)| near_duplicate(img, i as u64)).collect();
    let og: Vec<_> = originals.iter().map(|i| luminance(&DynamicImage::ImageRgb8(i.clone())).unwrap()).collect();
    let dg: Vec<_> = dups.iter().map(|i| luminance(&DynamicImage::ImageRgb8(i.clone())).unwrap()).collect();
    for (name, spec) in candidates() {
        let cfg = HashConfig::custom(900, spec, *HashConfig::V1.secondary());
        let ho: Vec<_> = og.iter().map(|g| run_hasher(&cfg, HashKind::Primary, g).unwrap()).collect();
        let hd: Vec<_> = dg.iter().map(|g| run_hasher(&cfg, HashKind::Primary, g).unwrap()).collect();
        let mut pair = Vec::new();
        for i in 0..ho.len() {
            for j in i + 1..ho.len() {
                pair.push(ho[i].hamming_distance(&ho[j]).unwrap());
            }
        }
        let near: Vec<u32> = ho.iter().zip(&hd).map(|(a, b)| a.hamming_distance(b).unwrap()).collect();
        let ident = near.iter().filter(|&&d| d == 0).count();
        println!("== {name} ({} bits)", spec.bits());
        println!("  distinct seeds: {}", hist(&pair));
        println!("  near dup all: identical {ident}/{} ; {}", near.len(), hist(&near));
        for kind in [NearDuplicateKind::Brightness, NearDuplicateKind::Reencode, NearDuplicateKind::Crop] {
            let k: Vec<u32> = near
                .iter()
                .enumerate()
                .filter(|(i, _)| near_duplicate_kind(*i as u64) == kind)
                .map(|(_, d)| *d)
                .collect();
            let id = k.iter().filter(|&&d| d == 0).count();
            println!("  {kind:?}: identical {id}/{} ; {}", k.len(), hist(&k));
        }
    }
    // Secondary (from the derivative) of V1.
    let cfg = HashConfig::V1;
    let so: Vec<_> = originals.iter().map(|i| hash_image(&cfg, &DynamicImage::ImageRgb8(i.clone())).unwrap()).collect();
    let sd: Vec<_> = dups.iter().map(|i| hash_image(&cfg, &DynamicImage::ImageRgb8(i.clone())).unwrap()).collect();
    let mut pair = Vec::new();
    for i in 0..so.len() {
        for j in i + 1..so.len() {
            pair.push(so[i].secondary.hamming_distance(&so[j].secondary).unwrap());
        }
    }
    let near: Vec<u32> = so.iter().zip(&sd).map(|(a, b)| a.secondary.hamming_distance(&b.secondary).unwrap()).collect();
    println!("== V1 secondary (from derivative)");
    println!("  distinct seeds: {}", hist(&pair));
    println!("  near dup: {}", hist(&near));
    let within = pair.iter().filter(|&&d| d <= cfg.secondary_max_distance()).count();
    println!("  distinct pairs within secondary_max_distance: {within}/{}", pair.len());
    let var: Vec<u32> = so.iter().map(|h| h.derivative.luma_variance() as u32).collect();
    println!("  derivative variance: {}", hist(&var));
}

/// The quality gate on content that sits at one edge (or in a corner) of a flat field: its verdict, and how far
/// apart the primary hashes of 12 different contents in the same place are. Figures in docs/HASHING.md §3.
#[test]
#[ignore = "measurement, prints figures"]
fn experiments_content_at_an_edge_of_a_flat_field() {
    use crate::quality_gate;
    use image::{Rgb, RgbImage};
    let cfg = HashConfig::V1;
    println!(
        "| placement | share of the frame | accepted of 12 | secondary ones (seed 0) | primary distance min / median / max |"
    );
    for (place, percents) in
        [("left strip", &[2u32, 3, 5, 10, 20, 50][..]), ("top-left corner", &[10, 20, 30, 40, 50][..])]
    {
        for &pc in percents {
            let mut hashes = Vec::new();
            let mut accepted = 0;
            let mut ones = 0;
            for seed in 0..12u64 {
                let content = benign_image(seed, 640, 480);
                let img = RgbImage::from_fn(640, 480, |x, y| {
                    let inside = match place {
                        "left strip" => x < 640 * pc / 100,
                        _ => x < 640 * pc / 100 && y < 480 * pc / 100,
                    };
                    if inside { *content.get_pixel(x, y) } else { Rgb([200, 200, 200]) }
                });
                let h = hash_image(&cfg, &DynamicImage::ImageRgb8(img)).unwrap();
                if quality_gate(&cfg, &h).is_accept() {
                    accepted += 1;
                }
                if seed == 0 {
                    ones = h.secondary.count_ones();
                }
                hashes.push(h.primary);
            }
            let mut d = Vec::new();
            for i in 0..hashes.len() {
                for j in i + 1..hashes.len() {
                    d.push(hashes[i].hamming_distance(&hashes[j]).unwrap());
                }
            }
            d.sort_unstable();
            let share = if place == "left strip" { pc } else { pc * pc / 100 };
            println!(
                "| {place} {pc} % | {share} % | {accepted} | {ones} of 256 | {} / {} / {} |",
                d[0],
                d[d.len() / 2],
                d[d.len() - 1]
            );
        }
    }
}
