//! The exact-integer area pHash (the primary hash of configuration 2).
//!
//! V1's pHash resizes the luminance to 16 × 16 *8-bit* pixels before its DCT. Rounding those 256 pixels to integers
//! is a noise source shared by every edit: a one-pixel shift or a recompression moves some of them across a
//! rounding boundary, which moves the coefficients by about one unit, which flips the bits whose coefficient lies
//! near the median. Measured on natural images (`docs/HASHING.md` §8) that rounding, not the edit, decides most of
//! V1's misses.
//!
//! This hash (the exact-integer area pHash) keeps every step exact, in integers, so it is also bit-identical on every platform without relying on
//! floating point:
//!
//! 1. **Area cells.** The `w × h` luminance is divided into an `n × n` grid of cells of real-valued extent
//!    `w / n × h / n`. Scaling coordinates by `n`, pixel `x` covers `[x·n, x·n + n)` and cell `c` covers
//!    `[c·w, c·w + w)`, so each overlap is an integer; a cell's value is the exact sum of `overlap_x · overlap_y ·
//!    luma` over the pixels it touches (every cell has total weight `w·h`). No rounding.
//! 2. **DCT.** The unnormalised 2-D DCT-II of the cells with a fixed integer cosine table
//!    (`round(cos(π (m + ½) k / n) · 2¹⁵)`, embedded, never computed from the platform's `cos`), in `i128`.
//! 3. **Bits.** The 8 × 8 lowest-frequency coefficients `(u, v)`, `u, v < 8` (`u` horizontal, `v` vertical
//!    frequency), row-major (`v` outer, `u` inner: V1's bit order); bit `i` is set iff coefficient `i` lies above the
//!    median of the 64 (the mean of the 32nd and 33rd smallest, compared exactly as `2·c > a + b`). So every hash
//!    has 32 bits set when no coefficient ties with the median, and the DC coefficient's bit is always one of them.
//!
//! The coefficient set is V1's. The first 64 AC coefficients in zigzag order ([`zigzag`]) were measured too
//! (`vouchsafe eval --config area`): the same recall, but 3 fewer effective bits and 10× the extrapolated false
//! matches, so they are not used.

use image::GrayImage;

use crate::PhashError;

/// Cells per side of the area grid.
pub const AREA_CELLS: usize = 32;
/// Bits of the area pHash.
pub const AREA_BITS: usize = 64;

/// `round(cos(π (m + ½) k / 32) · 2¹⁵)` for `k` in `0..11`, `m` in `0..32` (checked against `f64` in the tests).
#[rustfmt::skip]
const COS32: [[i64; 32]; 11] = [
    [32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768],
    [32729, 32413, 31786, 30853, 29622, 28106, 26320, 24279, 22006, 19520, 16846, 14010, 11039, 7962, 4808, 1608, -1608, -4808, -7962, -11039, -14010, -16846, -19520, -22006, -24279, -26320, -28106, -29622, -30853, -31786, -32413, -32729],
    [32610, 31357, 28899, 25330, 20788, 15447, 9512, 3212, -3212, -9512, -15447, -20788, -25330, -28899, -31357, -32610, -32610, -31357, -28899, -25330, -20788, -15447, -9512, -3212, 3212, 9512, 15447, 20788, 25330, 28899, 31357, 32610],
    [32413, 29622, 24279, 16846, 7962, -1608, -11039, -19520, -26320, -30853, -32729, -31786, -28106, -22006, -14010, -4808, 4808, 14010, 22006, 28106, 31786, 32729, 30853, 26320, 19520, 11039, 1608, -7962, -16846, -24279, -29622, -32413],
    [32138, 27246, 18205, 6393, -6393, -18205, -27246, -32138, -32138, -27246, -18205, -6393, 6393, 18205, 27246, 32138, 32138, 27246, 18205, 6393, -6393, -18205, -27246, -32138, -32138, -27246, -18205, -6393, 6393, 18205, 27246, 32138],
    [31786, 24279, 11039, -4808, -19520, -29622, -32729, -28106, -16846, -1608, 14010, 26320, 32413, 30853, 22006, 7962, -7962, -22006, -30853, -32413, -26320, -14010, 1608, 16846, 28106, 32729, 29622, 19520, 4808, -11039, -24279, -31786],
    [31357, 20788, 3212, -15447, -28899, -32610, -25330, -9512, 9512, 25330, 32610, 28899, 15447, -3212, -20788, -31357, -31357, -20788, -3212, 15447, 28899, 32610, 25330, 9512, -9512, -25330, -32610, -28899, -15447, 3212, 20788, 31357],
    [30853, 16846, -4808, -24279, -32729, -26320, -7962, 14010, 29622, 31786, 19520, -1608, -22006, -32413, -28106, -11039, 11039, 28106, 32413, 22006, 1608, -19520, -31786, -29622, -14010, 7962, 26320, 32729, 24279, 4808, -16846, -30853],
    [30274, 12540, -12540, -30274, -30274, -12540, 12540, 30274, 30274, 12540, -12540, -30274, -30274, -12540, 12540, 30274, 30274, 12540, -12540, -30274, -30274, -12540, 12540, 30274, 30274, 12540, -12540, -30274, -30274, -12540, 12540, 30274],
    [29622, 7962, -19520, -32729, -22006, 4808, 28106, 30853, 11039, -16846, -32413, -24279, 1608, 26320, 31786, 14010, -14010, -31786, -26320, -1608, 24279, 32413, 16846, -11039, -30853, -28106, -4808, 22006, 32729, 19520, -7962, -29622],
    [28899, 3212, -25330, -31357, -9512, 20788, 32610, 15447, -15447, -32610, -20788, 9512, 31357, 25330, -3212, -28899, -28899, -3212, 25330, 31357, 9512, -20788, -32610, -15447, 15447, 32610, 20788, -9512, -31357, -25330, 3212, 28899],
];

/// Exact area sums of `gray` over an `n × n` grid, row-major (see the module documentation).
pub fn cell_sums(gray: &GrayImage, n: usize) -> Result<Vec<u64>, PhashError> {
    let (w, h) = (gray.width() as usize, gray.height() as usize);
    if w == 0 || h == 0 || n == 0 {
        return Err(PhashError::EmptyImage);
    }
    // For one axis of length `len`: the (cell, overlap) pairs of every pixel.
    let spans = |len: usize| -> Vec<Vec<(usize, u64)>> {
        (0..len)
            .map(|p| {
                let (lo, hi) = (p * n, p * n + n);
                let mut out = Vec::with_capacity(2);
                let mut c = lo / len;
                while c < n && c * len < hi {
                    let (a, b) = ((c * len).max(lo), ((c + 1) * len).min(hi));
                    if b > a {
                        out.push((c, (b - a) as u64));
                    }
                    c += 1;
                }
                out
            })
            .collect()
    };
    let xs = spans(w);
    let ys = spans(h);
    let raw = gray.as_raw();
    let mut cells = vec![0u64; n * n];
    let mut row = vec![0u64; n];
    for (y, yspan) in ys.iter().enumerate() {
        row.iter_mut().for_each(|v| *v = 0);
        let line = raw.get(y * w..(y + 1) * w).ok_or(PhashError::Internal("luminance row"))?;
        for (&luma, xspan) in line.iter().zip(&xs) {
            for &(c, o) in xspan {
                if let Some(v) = row.get_mut(c) {
                    *v += o * u64::from(luma);
                }
            }
        }
        for &(cy, oy) in yspan {
            let dst = cells.get_mut(cy * n..(cy + 1) * n).ok_or(PhashError::Internal("cell row"))?;
            for (d, &r) in dst.iter_mut().zip(&row) {
                *d += oy * r;
            }
        }
    }
    Ok(cells)
}

/// The zigzag order of the AC coefficients: `(u, v)` with `u + v ≥ 1`, by `u + v`, then by `v`.
pub fn zigzag(count: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::with_capacity(count);
    let mut d = 1;
    while out.len() < count {
        for v in 0..=d {
            if out.len() < count {
                out.push((d - v, v));
            }
        }
        d += 1;
    }
    out
}

/// The 8 × 8 lowest frequencies, row-major: `(u, v)` for `v` in `0..8`, `u` in `0..8`.
pub fn block8() -> Vec<(usize, usize)> {
    (0..8).flat_map(|v| (0..8).map(move |u| (u, v))).collect()
}

/// The [`block8`] coefficients of the [`AREA_CELLS`]-grid DCT of `gray`.
pub fn area_coefficients(gray: &GrayImage) -> Result<Vec<i128>, PhashError> {
    coefficients_at(gray, &block8())
}

/// The DCT-II coefficients `(u, v)` (horizontal, vertical frequency; each below 11) of the [`AREA_CELLS`]-grid area
/// cells of `gray`, in the order given.
pub fn coefficients_at(gray: &GrayImage, order: &[(usize, usize)]) -> Result<Vec<i128>, PhashError> {
    if order.iter().any(|&(u, v)| u >= COS32.len() || v >= COS32.len()) {
        return Err(PhashError::Internal("DCT frequency beyond the cosine table"));
    }
    let n = AREA_CELLS;
    let cells = cell_sums(gray, n)?;
    let cos = |k: usize, m: usize| -> i128 { COS32.get(k).and_then(|r| r.get(m)).copied().map_or(0, i128::from) };
    // Row transforms first: t[y][u] = Σ_x cos(u, x) · cells[y][x] for the u that are needed.
    let max_u = order.iter().map(|&(u, _)| u).max().unwrap_or(0);
    let mut t = vec![0i128; n * (max_u + 1)];
    for y in 0..n {
        let line = cells.get(y * n..(y + 1) * n).ok_or(PhashError::Internal("cell row"))?;
        for u in 0..=max_u {
            let s: i128 = line.iter().enumerate().map(|(x, &c)| cos(u, x) * i128::from(c)).sum();
            if let Some(slot) = t.get_mut(y * (max_u + 1) + u) {
                *slot = s;
            }
        }
    }
    Ok(order
        .iter()
        .map(|&(u, v)| (0..n).map(|y| cos(v, y) * t.get(y * (max_u + 1) + u).copied().unwrap_or(0)).sum())
        .collect())
}

/// Twice the median of `coef`: `a + b`, with `a`, `b` the two middle values (so `2·c > median_sum` is `c` above the
/// median, exactly).
pub fn median_sum(coef: &[i128]) -> i128 {
    let mut sorted = coef.to_vec();
    sorted.sort_unstable();
    let mid = sorted.len() / 2;
    let a = sorted.get(mid.saturating_sub(1)).copied().unwrap_or(0);
    let b = sorted.get(mid).copied().unwrap_or(0);
    a + b
}

/// Bit `i` (byte `i / 8`, bit `i % 8`) set iff `coef[i]` lies above the median of `coef` (exactly: `2·c >`
/// [`median_sum`]).
pub fn median_bits(coef: &[i128]) -> Vec<u8> {
    let m2 = median_sum(coef);
    let mut out = vec![0u8; coef.len().div_ceil(8)];
    for (i, &c) in coef.iter().enumerate() {
        if 2 * c > m2
            && let Some(byte) = out.get_mut(i / 8)
        {
            *byte |= 1 << (i % 8);
        }
    }
    out
}

/// The area pHash of a luminance image: [`AREA_BITS`] bits.
pub fn area_phash(gray: &GrayImage) -> Result<Vec<u8>, PhashError> {
    Ok(median_bits(&area_coefficients(gray)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_table_is_the_rounded_cosine() {
        for (k, row) in COS32.iter().enumerate() {
            for (m, &v) in row.iter().enumerate() {
                let exact = (std::f64::consts::PI * (m as f64 + 0.5) * k as f64 / 32.0).cos() * 32768.0;
                assert_eq!(v, exact.round() as i64, "k {k} m {m}");
                // Far from a rounding boundary, so no platform's cos could round differently.
                assert!((exact - exact.floor() - 0.5).abs() > 1e-6, "k {k} m {m}");
            }
        }
    }

    #[test]
    fn cells_carry_every_pixel_once() {
        for (w, h) in [(32, 32), (33, 17), (100, 7), (1, 1), (517, 300)] {
            let img = GrayImage::from_fn(w, h, |x, y| image::Luma([((x * 7 + y * 13) % 256) as u8]));
            let cells = cell_sums(&img, 32).unwrap();
            let total: u64 = img.as_raw().iter().map(|&v| u64::from(v)).sum();
            // Every pixel has weight n·n in total.
            assert_eq!(cells.iter().sum::<u64>(), total * 32 * 32, "{w}x{h}");
        }
        // A uniform image: every cell has the same value, w·h·luma.
        let flat = GrayImage::from_pixel(517, 300, image::Luma([9]));
        assert!(cell_sums(&flat, 32).unwrap().iter().all(|&c| c == 517 * 300 * 9));
    }

    #[test]
    fn zigzag_starts_at_the_lowest_frequencies() {
        let z = zigzag(64);
        assert_eq!(z.get(..5), Some(&[(1, 0), (0, 1), (2, 0), (1, 1), (0, 2)][..]));
        assert_eq!(z.len(), 64);
        assert!(z.iter().all(|&(u, v)| u + v <= 10 && u + v >= 1));
    }

    #[test]
    fn hash_is_balanced_and_scale_free() {
        let img = GrayImage::from_fn(300, 200, |x, y| image::Luma([((x * x / 7 + y * 3) % 256) as u8]));
        let h = area_phash(&img).unwrap();
        assert_eq!(h.len(), 8);
        let ones: u32 = h.iter().map(|b| b.count_ones()).sum();
        assert_eq!(ones, 32);
        // Doubling every pixel (a 2x nearest upscale) gives the same cells up to a factor: the same hash.
        let up = image::imageops::resize(&img, 600, 400, image::imageops::FilterType::Nearest);
        assert_eq!(area_phash(&up).unwrap(), h);
    }
}
