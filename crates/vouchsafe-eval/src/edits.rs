//! The edits a messenger and a user make to an image, applied to an original's pixels.
//!
//! Every edit is deterministic (same pixels in, same pixels out, on every platform: integer arithmetic, the `image`
//! crate's encoders and decoders, and bilinear sampling in `f64` with basic operations only). Lossy steps go through
//! real JPEG bytes and [`vouchsafe_phash::decode_image`], the decoder the device uses.

use std::io::Cursor;

use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::{DynamicImage, ImageEncoder, Rgb, RgbImage, imageops};
use serde::Serialize;

use crate::EvalError;

/// Groups of edits, each with its target (docs/HASHING.md §8).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Family {
    /// Lossless re-encodings (PNG): must always match.
    Lossless,
    /// JPEG at full size.
    Jpeg,
    /// Downscaling without re-encoding.
    Downscale,
    /// What messengers do: downscale and JPEG. Target ≥ 95 %.
    Messenger,
    /// Brightness and contrast ±10 %. Target ≥ 90 %.
    Tone,
    /// Grayscale.
    Grayscale,
    /// 1–2 px shifts. Target ≥ 90 %.
    Shift,
    /// Border crops 1–5 %. Target ≥ 80 % at 2 %.
    Crop,
    /// A caption or a watermark. Target ≥ 50 % for the caption.
    Overlay,
    /// Small rotations (1–3°), cropped to the rotated image's inner rectangle.
    Rotation,
    /// Rotations by 90° and mirrors: known misses, measured so the report says so.
    KnownMiss,
}

impl Family {
    /// The target recall of the family's edits, if the issue sets one.
    pub fn target(self) -> Option<f64> {
        match self {
            Self::Lossless => Some(1.0),
            Self::Messenger => Some(0.95),
            Self::Tone | Self::Shift => Some(0.90),
            _ => None,
        }
    }
}

/// One edit.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Edit {
    /// PNG encode and decode.
    Png,
    /// JPEG at this quality, full size.
    Jpeg {
        /// Quality 1..=100.
        quality: u8,
    },
    /// Resize (Lanczos3) to this percentage of each side.
    Scale {
        /// Percent.
        percent: u32,
    },
    /// Resize (Lanczos3) so that the longer side is at most `max_side` (if `percent` is 100) or to `percent` of each
    /// side, then JPEG at `quality`.
    Pipeline {
        /// Longer side bound.
        max_side: u32,
        /// Percent of each side (applied after the bound).
        percent: u32,
        /// JPEG quality.
        quality: u8,
    },
    /// Add `delta` (of 255) to every channel, clamped.
    Brightness {
        /// Signed offset; ±26 is ±10 %.
        delta: i32,
    },
    /// Scale every channel's distance to mid-grey by `(100 + percent) / 100`, clamped.
    Contrast {
        /// Signed percent.
        percent: i32,
    },
    /// Luminance replicated into the three channels.
    Grayscale,
    /// Remove `px` columns on the left and `px` rows on the top (the content moves by `px`).
    Shift {
        /// Pixels.
        px: u32,
    },
    /// Remove `percent` of the width and of the height, split between opposite sides.
    CropCentre {
        /// Percent.
        percent: u32,
    },
    /// Remove `percent` of the width and of the height from the right and the bottom only.
    CropCorner {
        /// Percent.
        percent: u32,
    },
    /// A white caption with a black outline, 8 % of the height, across the lower third.
    Caption,
    /// A half-transparent white mark, 5 % of the height, in the lower right corner.
    Watermark,
    /// Rotate by `tenths` tenths of a degree (anticlockwise), bilinear, cropped to the largest centred rectangle of
    /// the same aspect inside the rotated image.
    Rotate {
        /// Tenths of a degree.
        tenths: i32,
    },
    /// Rotate by 90° clockwise.
    Rotate90,
    /// Mirror left to right.
    Mirror,
}

/// An edit with its stable name and family.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct NamedEdit {
    /// Stable name (the report's row).
    pub name: &'static str,
    /// Family.
    pub family: Family,
    /// What it does.
    pub edit: Edit,
}

const fn e(name: &'static str, family: Family, edit: Edit) -> NamedEdit {
    NamedEdit { name, family, edit }
}

/// Every edit the evaluation applies, in report order.
pub const EDITS: &[NamedEdit] = &[
    e("png", Family::Lossless, Edit::Png),
    e("jpeg-q95", Family::Jpeg, Edit::Jpeg { quality: 95 }),
    e("jpeg-q90", Family::Jpeg, Edit::Jpeg { quality: 90 }),
    e("jpeg-q75", Family::Jpeg, Edit::Jpeg { quality: 75 }),
    e("jpeg-q50", Family::Jpeg, Edit::Jpeg { quality: 50 }),
    e("jpeg-q30", Family::Jpeg, Edit::Jpeg { quality: 30 }),
    e("scale-75", Family::Downscale, Edit::Scale { percent: 75 }),
    e("scale-50", Family::Downscale, Edit::Scale { percent: 50 }),
    e("scale-25", Family::Downscale, Edit::Scale { percent: 25 }),
    e("msg-q80", Family::Messenger, Edit::Pipeline { max_side: u32::MAX, percent: 100, quality: 80 }),
    e("msg-half-q75", Family::Messenger, Edit::Pipeline { max_side: u32::MAX, percent: 50, quality: 75 }),
    e("msg-1600-q75", Family::Messenger, Edit::Pipeline { max_side: 1600, percent: 100, quality: 75 }),
    e("msg-1280-q80", Family::Messenger, Edit::Pipeline { max_side: 1280, percent: 100, quality: 80 }),
    e("msg-800-q70", Family::Messenger, Edit::Pipeline { max_side: 800, percent: 100, quality: 70 }),
    e("brightness+10", Family::Tone, Edit::Brightness { delta: 26 }),
    e("brightness-10", Family::Tone, Edit::Brightness { delta: -26 }),
    e("contrast+10", Family::Tone, Edit::Contrast { percent: 10 }),
    e("contrast-10", Family::Tone, Edit::Contrast { percent: -10 }),
    e("grayscale", Family::Grayscale, Edit::Grayscale),
    e("shift-1", Family::Shift, Edit::Shift { px: 1 }),
    e("shift-2", Family::Shift, Edit::Shift { px: 2 }),
    e("crop-1", Family::Crop, Edit::CropCentre { percent: 1 }),
    e("crop-2", Family::Crop, Edit::CropCentre { percent: 2 }),
    e("crop-2-corner", Family::Crop, Edit::CropCorner { percent: 2 }),
    e("crop-3", Family::Crop, Edit::CropCentre { percent: 3 }),
    e("crop-5", Family::Crop, Edit::CropCentre { percent: 5 }),
    e("caption", Family::Overlay, Edit::Caption),
    e("watermark", Family::Overlay, Edit::Watermark),
    e("rotate-1", Family::Rotation, Edit::Rotate { tenths: 10 }),
    e("rotate-2", Family::Rotation, Edit::Rotate { tenths: 20 }),
    e("rotate-3", Family::Rotation, Edit::Rotate { tenths: 30 }),
    e("rotate-90", Family::KnownMiss, Edit::Rotate90),
    e("mirror", Family::KnownMiss, Edit::Mirror),
];

/// The target recall of one edit: its family's, except crops (only the 2 % crops carry the ≥ 80 % target) and
/// overlays (the caption carries ≥ 50 %).
pub fn target(edit: &NamedEdit) -> Option<f64> {
    match edit.edit {
        Edit::CropCentre { percent: 2 } | Edit::CropCorner { percent: 2 } => Some(0.80),
        Edit::Caption => Some(0.50),
        _ => edit.family.target(),
    }
}

fn jpeg_round_trip(img: &RgbImage, quality: u8) -> Result<RgbImage, EvalError> {
    let mut buf = Vec::new();
    JpegEncoder::new_with_quality(&mut buf, quality)
        .encode_image(img)
        .map_err(|e| EvalError::Edit(format!("jpeg encode: {e}")))?;
    let img = vouchsafe_phash::decode_image(&buf).map_err(|e| EvalError::Edit(format!("jpeg decode: {e}")))?;
    Ok(img.to_rgb8())
}

fn png_round_trip(img: &RgbImage) -> Result<RgbImage, EvalError> {
    let mut buf = Vec::new();
    PngEncoder::new(Cursor::new(&mut buf))
        .write_image(img.as_raw(), img.width(), img.height(), image::ExtendedColorType::Rgb8)
        .map_err(|e| EvalError::Edit(format!("png encode: {e}")))?;
    let img = vouchsafe_phash::decode_image(&buf).map_err(|e| EvalError::Edit(format!("png decode: {e}")))?;
    Ok(img.to_rgb8())
}

fn scale_to(img: &RgbImage, w: u32, h: u32) -> RgbImage {
    imageops::resize(img, w.max(1), h.max(1), imageops::FilterType::Lanczos3)
}

fn percent_of(v: u32, percent: u32) -> u32 {
    ((u64::from(v) * u64::from(percent) + 50) / 100).max(1) as u32
}

fn map_channels(img: &RgbImage, f: impl Fn(u8) -> u8) -> RgbImage {
    let mut out = img.clone();
    for p in out.pixels_mut() {
        p.0 = p.0.map(&f);
    }
    out
}

fn crop(img: &RgbImage, x: u32, y: u32, w: u32, h: u32) -> RgbImage {
    imageops::crop_imm(img, x, y, w.max(1), h.max(1)).to_image()
}

/// A 5 × 7 bitmap font for the overlays' letters: one row per byte, bit 4 is the leftmost column.
fn glyph(c: char) -> [u8; 7] {
    match c {
        'A' => [0x0e, 0x11, 0x11, 0x1f, 0x11, 0x11, 0x11],
        'C' => [0x0e, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0e],
        'E' => [0x1f, 0x10, 0x10, 0x1e, 0x10, 0x10, 0x1f],
        'H' => [0x11, 0x11, 0x11, 0x1f, 0x11, 0x11, 0x11],
        'L' => [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1f],
        'M' => [0x11, 0x1b, 0x15, 0x15, 0x11, 0x11, 0x11],
        'N' => [0x11, 0x19, 0x15, 0x13, 0x11, 0x11, 0x11],
        'O' => [0x0e, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0e],
        'S' => [0x0f, 0x10, 0x10, 0x0e, 0x01, 0x01, 0x1e],
        'T' => [0x1f, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        'U' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0e],
        'V' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x0a, 0x04],
        'Y' => [0x11, 0x11, 0x0a, 0x04, 0x04, 0x04, 0x04],
        '@' => [0x0e, 0x11, 0x17, 0x15, 0x17, 0x10, 0x0e],
        '!' => [0x04, 0x04, 0x04, 0x04, 0x04, 0x00, 0x04],
        _ => [0; 7],
    }
}

/// The ink of `text` at scale `s` (each font pixel an `s × s` block, one blank column between letters): a mask of
/// `(text.len() · 6 − 1) · s` × `7 · s`.
fn text_mask(text: &str, s: u32) -> (u32, u32, Vec<bool>) {
    let n = u32::try_from(text.chars().count()).unwrap_or(0);
    let (w, h) = ((n * 6).saturating_sub(1) * s, 7 * s);
    let mut mask = vec![false; (w as usize) * (h as usize)];
    for (i, c) in text.chars().enumerate() {
        let g = glyph(c);
        for (row, bits) in g.iter().enumerate() {
            for col in 0..5u32 {
                if bits & (0x10 >> col) == 0 {
                    continue;
                }
                for dy in 0..s {
                    for dx in 0..s {
                        let x = (i as u32 * 6 + col) * s + dx;
                        let y = row as u32 * s + dy;
                        if let Some(m) = mask.get_mut((y * w + x) as usize) {
                            *m = true;
                        }
                    }
                }
            }
        }
    }
    (w, h, mask)
}

fn blend(p: &mut Rgb<u8>, colour: [u8; 3], alpha_256: u32) {
    for (c, t) in p.0.iter_mut().zip(colour) {
        *c = ((u32::from(*c) * (256 - alpha_256) + u32::from(t) * alpha_256 + 128) >> 8) as u8;
    }
}

/// Draws `text` with its ink `fill` at `alpha_256`/256 and, if `outline`, a black 1-block outline; `height` is the
/// text's height in pixels, `(cx, top)` its top centre (x) and top (y). Text wider than the image is shrunk.
fn draw_text(img: &mut RgbImage, text: &str, height: u32, cx: u32, top: u32, alpha_256: u32, outline: bool) {
    let mut s = (height / 7).max(1);
    let n = u32::try_from(text.chars().count()).unwrap_or(1).max(1);
    while s > 1 && (n * 6) * s > img.width() {
        s -= 1;
    }
    let (w, h, mask) = text_mask(text, s);
    let x0 = i64::from(cx) - i64::from(w) / 2;
    let y0 = i64::from(top);
    let at = |x: i64, y: i64| -> bool {
        x >= 0
            && y >= 0
            && x < i64::from(w)
            && y < i64::from(h)
            && mask.get((y * i64::from(w) + x) as usize).copied().unwrap_or(false)
    };
    let (iw, ih) = (i64::from(img.width()), i64::from(img.height()));
    let pad = i64::from(s);
    for y in -pad..i64::from(h) + pad {
        for x in -pad..i64::from(w) + pad {
            let (px, py) = (x0 + x, y0 + y);
            if px < 0 || py < 0 || px >= iw || py >= ih {
                continue;
            }
            let p = img.get_pixel_mut(px as u32, py as u32);
            if at(x, y) {
                blend(p, [255, 255, 255], alpha_256);
            } else if outline {
                let near = (-pad..=pad).any(|dy| (-pad..=pad).any(|dx| at(x + dx, y + dy)));
                if near {
                    blend(p, [0, 0, 0], 256);
                }
            }
        }
    }
}

/// Bilinear sample of `img` at `(x, y)` (pixel centres at integers), clamped to the edge.
fn sample(img: &RgbImage, x: f64, y: f64) -> [u8; 3] {
    let (w, h) = (f64::from(img.width()), f64::from(img.height()));
    let x = x.clamp(0.0, w - 1.0);
    let y = y.clamp(0.0, h - 1.0);
    let (x0, y0) = (x.floor(), y.floor());
    let (fx, fy) = (x - x0, y - y0);
    let (x0u, y0u) = (x0 as u32, y0 as u32);
    let (x1u, y1u) = ((x0u + 1).min(img.width() - 1), (y0u + 1).min(img.height() - 1));
    let p = |xx: u32, yy: u32| img.get_pixel(xx, yy).0;
    let (a, b, c, d) = (p(x0u, y0u), p(x1u, y0u), p(x0u, y1u), p(x1u, y1u));
    let mut out = [0u8; 3];
    for (k, o) in out.iter_mut().enumerate() {
        let get = |q: [u8; 3]| f64::from(q.get(k).copied().unwrap_or(0));
        let top = get(a) * (1.0 - fx) + get(b) * fx;
        let bot = get(c) * (1.0 - fx) + get(d) * fx;
        *o = (top * (1.0 - fy) + bot * fy).round().clamp(0.0, 255.0) as u8;
    }
    out
}

/// Rotation by `tenths` tenths of a degree, cropped to the largest centred rectangle of the original aspect that
/// holds only rotated pixels.
fn rotate_small(img: &RgbImage, tenths: i32) -> RgbImage {
    let theta = f64::from(tenths) / 10.0 * std::f64::consts::PI / 180.0;
    let (sin, cos) = (theta.sin().abs(), theta.cos());
    let (w, h) = (f64::from(img.width()), f64::from(img.height()));
    // A centred w·k × h·k rectangle fits inside the rotated w × h one when
    // k·(w·cos + h·sin) ≤ w and k·(w·sin + h·cos) ≤ h.
    let k = (w / (w * cos + h * sin)).min(h / (w * sin + h * cos));
    let (ow, oh) = ((w * k).floor().max(1.0) as u32, (h * k).floor().max(1.0) as u32);
    let (cx, cy) = ((w - 1.0) / 2.0, (h - 1.0) / 2.0);
    let (ocx, ocy) = ((f64::from(ow) - 1.0) / 2.0, (f64::from(oh) - 1.0) / 2.0);
    let (s, c) = (theta.sin(), theta.cos());
    RgbImage::from_fn(ow, oh, |x, y| {
        let (dx, dy) = (f64::from(x) - ocx, f64::from(y) - ocy);
        // Inverse rotation: where in the source does this output pixel come from?
        let sx = cx + dx * c - dy * s;
        let sy = cy + dx * s + dy * c;
        Rgb(sample(img, sx, sy))
    })
}

impl Edit {
    /// Applies the edit.
    pub fn apply(&self, img: &RgbImage) -> Result<RgbImage, EvalError> {
        let (w, h) = img.dimensions();
        Ok(match *self {
            Self::Png => png_round_trip(img)?,
            Self::Jpeg { quality } => jpeg_round_trip(img, quality)?,
            Self::Scale { percent } => scale_to(img, percent_of(w, percent), percent_of(h, percent)),
            Self::Pipeline { max_side, percent, quality } => {
                let bounded = crate::corpus::bound(img, max_side);
                let (bw, bh) = bounded.dimensions();
                let scaled = if percent == 100 {
                    bounded
                } else {
                    scale_to(&bounded, percent_of(bw, percent), percent_of(bh, percent))
                };
                jpeg_round_trip(&scaled, quality)?
            }
            Self::Brightness { delta } => map_channels(img, |v| (i32::from(v) + delta).clamp(0, 255) as u8),
            Self::Contrast { percent } => map_channels(img, |v| {
                let d = (i32::from(v) - 128) * (100 + percent);
                (128 + (d + d.signum() * 50) / 100).clamp(0, 255) as u8
            }),
            Self::Grayscale => {
                let g = vouchsafe_phash::luminance(&DynamicImage::ImageRgb8(img.clone()))
                    .map_err(|e| EvalError::Edit(e.to_string()))?;
                RgbImage::from_fn(w, h, |x, y| {
                    let v = g.get_pixel(x, y).0[0];
                    Rgb([v, v, v])
                })
            }
            Self::Shift { px } => crop(img, px, px, w.saturating_sub(px), h.saturating_sub(px)),
            Self::CropCentre { percent } => {
                let (cw, ch) = (w - percent_of(w, 100 - percent), h - percent_of(h, 100 - percent));
                crop(img, cw.div_ceil(2), ch.div_ceil(2), w - cw, h - ch)
            }
            Self::CropCorner { percent } => crop(img, 0, 0, percent_of(w, 100 - percent), percent_of(h, 100 - percent)),
            Self::Caption => {
                let mut out = img.clone();
                let th = (h * 8 / 100).max(7);
                draw_text(&mut out, "SEE YOU SOON!", th, w / 2, h * 2 / 3, 256, true);
                out
            }
            Self::Watermark => {
                let mut out = img.clone();
                let th = (h * 5 / 100).max(7);
                let text = "@VOUCH";
                let tw = 6 * (th / 7).max(1) * 6;
                draw_text(
                    &mut out,
                    text,
                    th,
                    w.saturating_sub(tw / 2 + w / 40),
                    h.saturating_sub(th + h / 40),
                    115,
                    false,
                );
                out
            }
            Self::Rotate { tenths } => rotate_small(img, tenths),
            Self::Rotate90 => imageops::rotate90(img),
            Self::Mirror => imageops::flip_horizontal(img),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| Rgb([(x * 255 / w) as u8, (y * 255 / h) as u8, ((x + y) % 256) as u8]))
    }

    #[test]
    fn every_edit_gives_an_image_of_the_stated_size() {
        let img = gradient(400, 300);
        for e in EDITS {
            let out = e.edit.apply(&img).unwrap();
            let (w, h) = out.dimensions();
            match e.edit {
                Edit::Scale { percent: 50 } | Edit::Pipeline { percent: 50, .. } => {
                    assert_eq!((w, h), (200, 150), "{}", e.name)
                }
                Edit::Scale { percent: 75 } => assert_eq!((w, h), (300, 225)),
                Edit::Scale { percent: 25 } => assert_eq!((w, h), (100, 75)),
                Edit::Shift { px } => assert_eq!((w, h), (400 - px, 300 - px)),
                Edit::CropCentre { percent: 5 } | Edit::CropCorner { percent: 5 } => assert_eq!((w, h), (380, 285)),
                Edit::Rotate90 => assert_eq!((w, h), (300, 400)),
                Edit::Rotate { .. } => assert!(w < 400 && h < 300 && w > 340 && h > 250, "{} {w}x{h}", e.name),
                Edit::Pipeline { max_side: 800, .. } => assert_eq!((w, h), (400, 300)),
                _ => assert!(w >= 380 && h >= 285, "{}", e.name),
            }
        }
    }

    #[test]
    fn lossless_and_tone_edits_do_what_they_say() {
        let img = gradient(64, 48);
        assert_eq!(Edit::Png.apply(&img).unwrap(), img);
        let b = Edit::Brightness { delta: 26 }.apply(&img).unwrap();
        assert_eq!(b.get_pixel(0, 0).0[0], 26);
        assert_eq!(b.get_pixel(63, 0).0[0], 255);
        let c = Edit::Contrast { percent: 10 }.apply(&img).unwrap();
        // 0 → 128 − 140.8 → clamped 0; 250 → 128 + 134.2 → 255 (clamped); 148 → 150.
        let px = |im: &RgbImage, x| im.get_pixel(x, 0).0[0];
        assert!(px(&c, 0) == 0);
        let x148 = (0..64).find(|&x| px(&img, x) >= 148).unwrap();
        assert!(px(&c, x148) > px(&img, x148));
        let m = Edit::Mirror.apply(&img).unwrap();
        assert_eq!(m.get_pixel(0, 5), img.get_pixel(63, 5));
        let r0 = Edit::Rotate { tenths: 0 }.apply(&img).unwrap();
        assert_eq!(r0, img);
    }

    #[test]
    fn overlays_change_a_bounded_part_of_the_image() {
        let img = RgbImage::from_pixel(640, 480, Rgb([90, 90, 90]));
        for (edit, lo, hi) in [(Edit::Caption, 0.02, 0.20), (Edit::Watermark, 0.002, 0.05)] {
            let out = edit.apply(&img).unwrap();
            let changed = out.pixels().zip(img.pixels()).filter(|(a, b)| a != b).count() as f64 / (640.0 * 480.0);
            assert!(changed > lo && changed < hi, "{edit:?} changed {changed}");
        }
    }
}
