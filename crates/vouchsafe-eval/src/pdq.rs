//! PDQ, Meta's open 256-bit perceptual hash (the one hash-sharing programmes exchange), as an evaluation candidate.
//!
//! Written from the reference implementation (facebook/ThreatExchange, `pdq/cpp`: `pdqhashing.cpp`,
//! `downscaling.cpp`, `torben.cpp`), in `f32` as it is:
//!
//! 1. luminance `Y = 0.299 R + 0.587 G + 0.114 B` (`f32`);
//! 2. two passes of the Jarosz filter (a box filter along the rows, then along the columns) with window
//!    `⌈old / 128⌉`-ish (`(old + 127) / 128`, the reference's `computeJaroszFilterWindowSize(old, 64)`), then
//!    decimation to 64 × 64 by taking the sample at `⌊(i + ½) · old / 64⌋`;
//! 3. the quality metric: the sum over neighbouring samples of `|⌊(u − v) · 100 / 255⌋|`, divided by 90, capped at
//!    100 (the reference treats quality under 50 as unusable);
//! 4. `B = D A Dᵀ` with the 16 × 64 matrix `D[i][j] = √(2/64) · cos(π/128 · (i + 1) · (2j + 1))` (the DC row is
//!    skipped);
//! 5. bit `16 i + j` is set iff `B[i][j]` is greater than the median (Torben's: the 128th smallest of the 256).
//!
//! Before step 1 the reference hashers scale a picture larger than 512 px on a side down to fit 512 × 512 ([`thumbnail`];
//! Python keeps the aspect with a bicubic filter, as here). `side = 8` is a 64-bit cut of the same computation (the 8 × 8 lowest non-DC
//! frequencies of step 4, median of the 64), to tell PDQ's filtering from its length.
//!
//! Matching PDQ is normally done at a Hamming distance of up to 31 of 256 bits; the PSI matches exactly, which is what
//! is measured here.

use image::RgbImage;

use crate::EvalError;
use crate::scheme::{Hashed, Scheme, SchemeInfo};

/// The reference's quality threshold: hashes of images under it are not used.
pub const MIN_QUALITY: u32 = 50;

/// The PDQ candidate.
#[derive(Clone, Copy, Debug)]
pub struct Pdq {
    /// 16: PDQ (256 bits). 8: its 8 × 8 lowest frequencies (64 bits).
    pub side: usize,
    /// Scale every picture so that its longer side is exactly 512 px (up or down) before the filter, instead of
    /// only shrinking larger ones: the Jarosz window then no longer depends on the picture's size.
    pub fixed: bool,
    /// Judge images by the shipped quality gate (configuration 2's) instead of PDQ's quality metric, so that the
    /// candidate is measured on the same indicators as V2.
    pub shipped_gate: bool,
}

impl Pdq {
    /// Plain PDQ (256 bits, its own quality gate).
    pub const PDQ: Pdq = Pdq { side: 16, fixed: false, shipped_gate: false };

    /// Parses `pdq`, `pdq8`, optionally followed by `-fixed` and `-g2`.
    pub fn by_name(name: &str) -> Option<Pdq> {
        let mut rest = name.strip_prefix("pdq")?;
        let side = if let Some(r) = rest.strip_prefix('8') {
            rest = r;
            8
        } else {
            16
        };
        let fixed = match rest.strip_prefix("-fixed") {
            Some(r) => {
                rest = r;
                true
            }
            None => false,
        };
        let shipped_gate = match rest.strip_prefix("-g2") {
            Some(r) => {
                rest = r;
                true
            }
            None => false,
        };
        rest.is_empty().then_some(Pdq { side, fixed, shipped_gate })
    }
}

/// The Jarosz window of the reference for `old` samples to 64.
fn window(old: usize) -> usize {
    old.div_ceil(2 * 64)
}

/// One box pass over `len` samples at `stride` from `input` into `out` (the reference's `box1DFloat`).
fn box_1d(input: &[f32], out: &mut [f32], start: usize, len: usize, stride: usize, full: usize) {
    let half = (full + 2) / 2;
    let at = |v: &[f32], k: usize| v.get(start + k * stride).copied().unwrap_or(0.0);
    let (mut li, mut ri, mut oi) = (0usize, 0usize, 0usize);
    let mut sum = 0.0f32;
    let mut n = 0usize;
    let put = |out: &mut [f32], oi: usize, v: f32| {
        if let Some(o) = out.get_mut(start + oi * stride) {
            *o = v;
        }
    };
    for _ in 0..half.saturating_sub(1) {
        sum += at(input, ri);
        n += 1;
        ri += 1;
    }
    for _ in 0..(full + 1).saturating_sub(half) {
        sum += at(input, ri);
        n += 1;
        put(out, oi, sum / n as f32);
        ri += 1;
        oi += 1;
    }
    for _ in 0..len.saturating_sub(full) {
        sum += at(input, ri);
        sum -= at(input, li);
        put(out, oi, sum / n as f32);
        li += 1;
        ri += 1;
        oi += 1;
    }
    for _ in 0..half.saturating_sub(1) {
        sum -= at(input, li);
        n = n.saturating_sub(1).max(1);
        put(out, oi, sum / n as f32);
        li += 1;
        oi += 1;
    }
}

/// The reference hashers' first step: a picture larger than 512 px on a side is scaled down to fit 512 × 512,
/// keeping its aspect (Python's `Image.thumbnail((512, 512))`, bicubic; here Catmull-Rom).
pub fn thumbnail(img: &RgbImage) -> std::borrow::Cow<'_, RgbImage> {
    let (w, h) = img.dimensions();
    if w <= 512 && h <= 512 { std::borrow::Cow::Borrowed(img) } else { std::borrow::Cow::Owned(to_512(img)) }
}

/// `img` scaled (Catmull-Rom) so that its longer side is 512 px.
fn to_512(img: &RgbImage) -> RgbImage {
    let (w, h) = img.dimensions();
    let long = w.max(h).max(1);
    let (tw, th) = (
        ((u64::from(w) * 512 + u64::from(long) / 2) / u64::from(long)).max(1) as u32,
        ((u64::from(h) * 512 + u64::from(long) / 2) / u64::from(long)).max(1) as u32,
    );
    if (tw, th) == (w, h) {
        img.clone()
    } else {
        image::imageops::resize(img, tw, th, image::imageops::FilterType::CatmullRom)
    }
}

/// The 64 × 64 Jarosz-filtered, decimated luminance and the quality metric.
pub fn downsample(img: &RgbImage) -> ([[f32; 64]; 64], u32) {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let mut a: Vec<f32> = img
        .pixels()
        .map(|p| 0.299 * f32::from(p.0[0]) + 0.587 * f32::from(p.0[1]) + 0.114 * f32::from(p.0[2]))
        .collect();
    let mut b = vec![0.0f32; a.len()];
    let (wr, wc) = (window(w), window(h));
    for _ in 0..2 {
        for row in 0..h {
            box_1d(&a, &mut b, row * w, w, 1, wr);
        }
        for col in 0..w {
            box_1d(&b, &mut a, col, h, w, wc);
        }
    }
    let mut out = [[0.0f32; 64]; 64];
    for (i, row) in out.iter_mut().enumerate() {
        let ini = (((i as f64 + 0.5) * h as f64) / 64.0) as usize;
        for (j, v) in row.iter_mut().enumerate() {
            let inj = (((j as f64 + 0.5) * w as f64) / 64.0) as usize;
            *v = a.get(ini * w + inj).copied().unwrap_or(0.0);
        }
    }
    let step = |u: f32, v: f32| (((u - v) * 100.0) / 255.0).trunc().abs() as i64;
    let mut gradient: i64 = 0;
    for pair in out.windows(2) {
        if let [up, down] = pair {
            gradient += up.iter().zip(down).map(|(&u, &v)| step(u, v)).sum::<i64>();
        }
    }
    for row in &out {
        gradient += row.windows(2).map(|p| if let [u, v] = p { step(*u, *v) } else { 0 }).sum::<i64>();
    }
    (out, (gradient / 90).min(100) as u32)
}

/// `B = D A Dᵀ`, the 16 × 16 coefficients (row `i`: vertical frequency `i + 1`).
pub fn dct16(a: &[[f32; 64]; 64]) -> [[f32; 16]; 16] {
    let scale = (2.0f64 / 64.0).sqrt() as f32;
    let mut d = [[0.0f32; 64]; 16];
    for (i, row) in d.iter_mut().enumerate() {
        for (j, v) in row.iter_mut().enumerate() {
            *v = scale * ((std::f64::consts::PI / 2.0 / 64.0) * (i as f64 + 1.0) * (2.0 * j as f64 + 1.0)).cos() as f32;
        }
    }
    // T = D A (16 × 64), then B = T Dᵀ; every sum runs over k in order, as the reference's.
    let mut t = [[0.0f32; 64]; 16];
    for (trow, drow) in t.iter_mut().zip(&d) {
        for (j, v) in trow.iter_mut().enumerate() {
            *v = drow.iter().zip(a).fold(0.0f32, |s, (dk, arow)| s + dk * arow.get(j).copied().unwrap_or(0.0));
        }
    }
    let mut out = [[0.0f32; 16]; 16];
    for (orow, trow) in out.iter_mut().zip(&t) {
        for (v, drow) in orow.iter_mut().zip(&d) {
            *v = trow.iter().zip(drow).fold(0.0f32, |s, (tk, dk)| s + tk * dk);
        }
    }
    out
}

/// A 256-bit hash in the reference's hex form: its sixteen 16-bit words, the last (bits 240..=255) first.
pub fn to_reference_hex(hash: &[u8]) -> String {
    hash.chunks(2)
        .rev()
        .map(|w| format!("{:02x}{:02x}", w.get(1).copied().unwrap_or(0), w.first().copied().unwrap_or(0)))
        .collect()
}

/// Bits `> median` (the `⌈n/2⌉`-th smallest, as Torben's selection gives it), bit `k` = bit `k % 8` of byte `k / 8`.
pub fn median_bits(values: &[f32]) -> Vec<u8> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f32::total_cmp);
    let median = sorted.get(values.len().div_ceil(2).saturating_sub(1)).copied().unwrap_or(0.0);
    let mut out = vec![0u8; values.len().div_ceil(8)];
    for (k, v) in values.iter().enumerate() {
        if *v > median
            && let Some(b) = out.get_mut(k / 8)
        {
            *b |= 1 << (k % 8);
        }
    }
    out
}

impl Scheme for Pdq {
    fn info(&self) -> SchemeInfo {
        let bits = (self.side * self.side) as u32;
        let mut name = if self.side == 16 { "pdq".to_owned() } else { format!("pdq{}", self.side) };
        let mut notes = String::new();
        if self.fixed {
            name.push_str("-fixed");
            notes.push_str("; every picture scaled to 512 px on its longer side first");
        }
        if self.shipped_gate {
            name.push_str("-g2");
            notes.push_str("; gate: configuration 2's instead of PDQ's quality");
        }
        SchemeInfo {
            name,
            description: if self.side == 16 {
                format!(
                    "PDQ (Meta's reference algorithm): Jarosz-filtered 64 x 64 luminance, 16 x 16 DCT without DC, 256 \
                     bits against the median; gate: PDQ quality >= {MIN_QUALITY}; evaluation candidate"
                )
            } else {
                format!(
                    "PDQ's filtering and DCT cut to the {0} x {0} lowest frequencies, {1} bits against their median; \
                     gate: PDQ quality >= {MIN_QUALITY}; evaluation candidate",
                    self.side, bits
                )
            } + &notes,
            bits,
            probes: 1,
            secondary_max_distance: None,
            variants: 1,
        }
    }

    fn hash(&self, img: &RgbImage) -> Result<Hashed, EvalError> {
        if img.width() < 5 || img.height() < 5 {
            return Ok(Hashed {
                rejected: Some("TooSmall".into()),
                primary: Vec::new(),
                probes: Vec::new(),
                secondary: Vec::new(),
            });
        }
        let (a, quality) = if self.fixed { downsample(&to_512(img)) } else { downsample(&thumbnail(img)) };
        let b = dct16(&a);
        let side = self.side.min(16);
        let values: Vec<f32> = b.iter().take(side).flat_map(|row| row.iter().take(side).copied()).collect();
        let primary = median_bits(&values);
        let rejected = if self.shipped_gate {
            crate::scheme::Shipped(vouchsafe_phash::HashConfig::V2).hash(img)?.rejected
        } else {
            (quality < MIN_QUALITY).then(|| "PdqQuality".to_owned())
        };
        Ok(Hashed { rejected, probes: vec![primary.clone()], primary, secondary: Vec::new() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hashes the reference publishes for its own test pictures (`pdq/python/README.md` and
    /// `pdq/wasm/test/TestData/PDQMD5TestData.csv` of facebook/ThreatExchange), against this implementation on the
    /// same files. The pictures are not committed (fetched code and data stay out of the tree), so this runs by hand:
    /// `VOUCHSAFE_PDQ_DATA=<ThreatExchange>/pdq/data cargo test -p vouchsafe-eval --release -- --ignored --nocapture
    /// reference_hashes`.
    #[test]
    #[ignore = "needs the reference's test pictures in VOUCHSAFE_PDQ_DATA"]
    fn reference_hashes() {
        let dir = std::env::var("VOUCHSAFE_PDQ_DATA").expect("VOUCHSAFE_PDQ_DATA=<ThreatExchange>/pdq/data");
        let cases = [
            ("bridge-mods/aaa-orig.jpg", "d8f8f0cce0f4a84f0e370a22028f67f0b36e2ed596623e1d33e6b39c4e9c9b22"),
            ("bridge-mods/blur-a-lot.jpg", "d8f8f0cce0f4e84f0637022a028f67f0b36e2ed596623e1d33e6b39c4e9c9b22"),
            ("bridge-mods/high-contrast.jpg", "d8f8f0cce0f4e84d06370a32068f67f0b36e2ed596621e1d33e6339c4e9c9b22"),
            ("bridge-mods/square-128x128.jpg", "d8f8f1eec0f4a84f0e37022a078f63f0b36e2ed596621e1d33e6239c4e9c9b22"),
            ("misc-images/c.png", "e4cc89d91c623842f8d1f1d9a398e78c9f199a3bf87925f2b7e11e0bf061b064"),
            ("misc-images/wee.jpg", "6227401f601ff4ccafcc9fad4b0d95d371a2eb7265a3285234d228ca94deeb2d"),
        ];
        let mut worst = 0;
        for (file, expected) in cases {
            let bytes = std::fs::read(std::path::Path::new(&dir).join(file)).unwrap();
            let img = vouchsafe_phash::decode_image(&bytes).unwrap().to_rgb8();
            let ours = to_reference_hex(&Pdq::PDQ.hash(&img).unwrap().primary);
            let d: u32 = ours
                .as_bytes()
                .chunks(2)
                .zip(expected.as_bytes().chunks(2))
                .map(|(a, b)| {
                    let (a, b) = (std::str::from_utf8(a).unwrap(), std::str::from_utf8(b).unwrap());
                    (u8::from_str_radix(a, 16).unwrap() ^ u8::from_str_radix(b, 16).unwrap()).count_ones()
                })
                .sum();
            println!("{file}: distance {d} of 256\n  ours      {ours}\n  reference {expected}");
            worst = worst.max(d);
        }
        // Decoders differ (the reference reads pictures with CImg or PIL; the device with zune-jpeg), so a few bits may.
        assert!(worst <= 8, "worst distance {worst}");
    }

    #[test]
    fn the_jarosz_window_is_the_references() {
        // computeJaroszFilterWindowSize(old, 64) = (old + 127) / 128.
        assert_eq!(window(64), 1);
        assert_eq!(window(128), 1);
        assert_eq!(window(129), 2);
        assert_eq!(window(1024), 8);
    }

    #[test]
    fn a_box_pass_averages_its_window_and_keeps_a_constant() {
        let input = [3.0f32; 10];
        let mut out = [0.0f32; 10];
        box_1d(&input, &mut out, 0, 10, 1, 3);
        assert!(out.iter().all(|v| (v - 3.0).abs() < 1e-6), "{out:?}");
        // A ramp stays a ramp inside (a centred window of 3 averages i-1, i, i+1).
        let ramp: Vec<f32> = (0..10).map(|i| i as f32).collect();
        let mut out = vec![0.0f32; 10];
        box_1d(&ramp, &mut out, 0, 10, 1, 3);
        for i in 1..9 {
            assert!((out[i] - i as f32).abs() < 1e-5, "{i}: {out:?}");
        }
    }

    #[test]
    fn pdq_has_half_its_bits_set_and_reads_the_picture() {
        let img = vouchsafe_phash::fixtures::benign_image(5, 640, 480);
        let p = Pdq::PDQ;
        assert_eq!(Pdq::by_name("pdq8-fixed-g2").map(|p| p.info().name), Some("pdq8-fixed-g2".to_owned()));
        assert!(Pdq::by_name("pdq-g2").is_some_and(|p| p.shipped_gate && !p.fixed && p.side == 16));
        assert!(Pdq::by_name("pdq9").is_none() && Pdq::by_name("pdq-g3").is_none());
        let h = p.hash(&img).unwrap();
        assert_eq!(h.primary.len(), 32);
        let ones: u32 = h.primary.iter().map(|b| b.count_ones()).sum();
        assert_eq!(ones, 128);
        // A mild recompression moves it a little; another picture moves it about half.
        let jpeg = crate::edits::Edit::Jpeg { quality: 90 }.apply(&img).unwrap();
        let other = p.hash(&vouchsafe_phash::fixtures::benign_image(6, 640, 480)).unwrap();
        let near = crate::scheme::distance(&p.hash(&jpeg).unwrap().primary, &h.primary);
        let far = crate::scheme::distance(&other.primary, &h.primary);
        assert!(near < 32, "{near}");
        assert!(far > 64, "{far}");
        let flat = RgbImage::from_pixel(256, 256, image::Rgb([90, 90, 90]));
        assert_eq!(p.hash(&flat).unwrap().rejected.as_deref(), Some("PdqQuality"));
        assert_eq!(Pdq { side: 8, ..Pdq::PDQ }.hash(&img).unwrap().primary.len(), 8);
    }
}
