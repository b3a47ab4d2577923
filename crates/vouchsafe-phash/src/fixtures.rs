//! Deterministic synthetic benign images for the demo and tests.
//!
//! Nothing here is cryptographic; the generator is a fixed SplitMix64 so that the same seed
//! gives the same pixels on every platform and in every version of this crate's dependencies.

use std::io::Cursor;

use image::{ImageFormat, Rgb, RgbImage};

/// SplitMix64: tiny, fixed, platform-independent.
#[derive(Clone, Debug)]
struct Mix(u64);

impl Mix {
    fn new(seed: u64, stream: u64) -> Self {
        let mut m = Self(seed ^ stream.wrapping_mul(0xD6E8_FEB8_6659_FD93));
        m.next();
        m
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (n > 0), slightly biased, fine for pictures.
    fn below(&mut self, n: u32) -> u32 {
        if n == 0 { 0 } else { (((self.next() >> 32) * u64::from(n)) >> 32) as u32 }
    }
    /// Uniform in `[0, 1)` with 24 bits, exactly representable: no platform variance.
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u32 << 24) as f32
    }
    fn color(&mut self) -> [f32; 3] {
        [self.unit() * 255.0, self.unit() * 255.0, self.unit() * 255.0]
    }
}

/// Sine from IEEE basic operations only (no platform libm), accurate to ~1e-4: enough for
/// pictures, and bit-identical everywhere.
fn sin_poly(x: f32) -> f32 {
    use core::f32::consts::{PI, TAU};
    let x = x - TAU * (x / TAU + 0.5).floor();
    // Fold to [-pi/2, pi/2].
    let x = if x > PI / 2.0 {
        PI - x
    } else if x < -PI / 2.0 {
        -PI - x
    } else {
        x
    };
    let x2 = x * x;
    x * (1.0 - x2 / 6.0 * (1.0 - x2 / 20.0 * (1.0 - x2 / 42.0 * (1.0 - x2 / 72.0))))
}

fn cos_poly(x: f32) -> f32 {
    sin_poly(x + core::f32::consts::FRAC_PI_2)
}

fn put(img: &mut RgbImage, x: u32, y: u32, c: [f32; 3], alpha: f32) {
    if let Some(p) = img.get_pixel_mut_checked(x, y) {
        for (dst, src) in p.0.iter_mut().zip(c) {
            let v = f32::from(*dst) * (1.0 - alpha) + src * alpha;
            *dst = v.clamp(0.0, 255.0) as u8;
        }
    }
}

/// A benign synthetic image: a two-colour linear gradient background, a sinusoidal or checker
/// texture patch, 3 to 8 shapes (discs, rectangles, rings, triangles) and mild pixel noise.
/// Different seeds give visually different images. A zero dimension gives an empty image.
pub fn benign_image(seed: u64, width: u32, height: u32) -> RgbImage {
    let mut img = RgbImage::new(width, height);
    if width == 0 || height == 0 {
        return img;
    }
    let mut r = Mix::new(seed, 1);
    let (w, h) = (width as f32, height as f32);

    // Background gradient along a random direction.
    let (c0, c1) = (r.color(), r.color());
    let angle = r.unit() * core::f32::consts::TAU;
    let (dx, dy) = (cos_poly(angle), sin_poly(angle));
    let norm = (dx.abs() * w + dy.abs() * h).max(1.0);
    for (x, y, p) in img.enumerate_pixels_mut() {
        let t = ((x as f32 - w / 2.0) * dx + (y as f32 - h / 2.0) * dy) / norm + 0.5;
        let t = t.clamp(0.0, 1.0);
        let mut out = [0u8; 3];
        for ((o, a), b) in out.iter_mut().zip(c0).zip(c1) {
            *o = (a + (b - a) * t).clamp(0.0, 255.0) as u8;
        }
        *p = Rgb(out);
    }

    // Texture patch.
    let (tx0, ty0) = (r.below(width / 2), r.below(height / 2));
    let (tw, th) = (width / 4 + r.below(width / 3 + 1), height / 4 + r.below(height / 3 + 1));
    let tc = r.color();
    let period = 4.0 + r.unit() * 20.0;
    let checker = r.below(2) == 0;
    let tang = r.unit() * core::f32::consts::PI;
    let (ca, sa) = (cos_poly(tang), sin_poly(tang));
    for y in ty0..(ty0 + th).min(height) {
        for x in tx0..(tx0 + tw).min(width) {
            let a = if checker {
                let cell = period.max(1.0) as u32;
                if ((x / cell) + (y / cell)).is_multiple_of(2) { 0.8 } else { 0.0 }
            } else {
                let u = x as f32 * ca + y as f32 * sa;
                0.4 + 0.4 * sin_poly(u * core::f32::consts::TAU / period)
            };
            put(&mut img, x, y, tc, a);
        }
    }

    // Shapes.
    let shapes = 3 + r.below(6);
    let scale = w.min(h);
    for _ in 0..shapes {
        let kind = r.below(4);
        let c = r.color();
        let cx = r.unit() * w;
        let cy = r.unit() * h;
        let size = scale * (0.08 + r.unit() * 0.3);
        let aspect = 0.5 + r.unit();
        let alpha = 0.6 + r.unit() * 0.4;
        let x0 = (cx - size * 1.6).max(0.0) as u32;
        let x1 = ((cx + size * 1.6).max(0.0) as u32).min(width);
        let y0 = (cy - size * 1.6).max(0.0) as u32;
        let y1 = ((cy + size * 1.6).max(0.0) as u32).min(height);
        for y in y0..y1 {
            for x in x0..x1 {
                let px = x as f32 + 0.5 - cx;
                let py = (y as f32 + 0.5 - cy) / aspect;
                let inside = match kind {
                    0 => px * px + py * py <= size * size,
                    1 => px.abs() <= size && py.abs() <= size * 0.7,
                    2 => {
                        let d = (px * px + py * py).sqrt();
                        d <= size && d >= size * 0.6
                    }
                    _ => py <= size * 0.8 && py >= -size && px.abs() <= (py + size) * 0.6,
                };
                if inside {
                    put(&mut img, x, y, c, alpha);
                }
            }
        }
    }

    // Mild deterministic noise.
    let mut n = Mix::new(seed, 2);
    for p in img.pixels_mut() {
        let v = n.next();
        for (i, ch) in p.0.iter_mut().enumerate() {
            let d = ((v >> (8 * i)) & 7) as i16 - 3;
            *ch = (i16::from(*ch) + d).clamp(0, 255) as u8;
        }
    }
    img
}

/// The kind of change [`near_duplicate`] makes for a given seed (`seed % 3`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NearDuplicateKind {
    /// Every channel shifted by ±2..=8 levels.
    Brightness,
    /// JPEG re-encoding at quality 80..=95.
    Reencode,
    /// 1-2 pixels cropped from each edge (the image becomes smaller).
    Crop,
}

/// The kind [`near_duplicate`] applies for `seed`.
pub fn near_duplicate_kind(seed: u64) -> NearDuplicateKind {
    match seed % 3 {
        0 => NearDuplicateKind::Brightness,
        1 => NearDuplicateKind::Reencode,
        _ => NearDuplicateKind::Crop,
    }
}

/// A near duplicate of `img`: a slight brightness change, a JPEG re-encode, or a 1-2 px crop
/// (chosen by [`near_duplicate_kind`]), as messengers and users routinely do.
pub fn near_duplicate(img: &RgbImage, seed: u64) -> RgbImage {
    let mut r = Mix::new(seed, 3);
    match near_duplicate_kind(seed) {
        NearDuplicateKind::Brightness => brightness(img, &mut r),
        NearDuplicateKind::Reencode => {
            let quality = 80 + r.below(16) as u8;
            let mut buf = Vec::new();
            let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut buf, quality);
            let decoded =
                img.write_with_encoder(enc).ok().and_then(|()| image::load(Cursor::new(&buf), ImageFormat::Jpeg).ok());
            match decoded {
                Some(d) => d.to_rgb8(),
                None => brightness(img, &mut r),
            }
        }
        NearDuplicateKind::Crop => {
            let (w, h) = img.dimensions();
            let (l, t) = (1 + r.below(2), 1 + r.below(2));
            let (rr, b) = (r.below(3), r.below(3));
            if w <= l + rr || h <= t + b {
                return img.clone();
            }
            image::imageops::crop_imm(img, l, t, w - l - rr, h - t - b).to_image()
        }
    }
}

fn brightness(img: &RgbImage, r: &mut Mix) -> RgbImage {
    let delta = (2 + r.below(7)) as i16;
    let delta = if r.below(2) == 0 { delta } else { -delta };
    let mut out = img.clone();
    for p in out.pixels_mut() {
        for ch in &mut p.0 {
            *ch = (i16::from(*ch) + delta).clamp(0, 255) as u8;
        }
    }
    out
}
