//! Centre-side variants: the renderings of a known image that the Centre hashes besides the image itself, so that
//! the copies messengers make of it are matched too (docs/HASHING.md §8, "Centre-side variants").
//!
//! A messenger resizes and recompresses every image it sends, and a 64-bit perceptual hash of the copy differs from
//! the original's in a few bits often enough to miss a third of them. The Centre holds the known image, so it can
//! render the usual messenger pipelines itself (bound the longer side, scale, JPEG) and release the distinct
//! primary hashes of those renderings as further table entries. The device and the voucher do not change, nor does
//! the server's cost per voucher; the table grows by the distinct entries (about 2.2 per indicator for
//! [`VariantSet::Pipelines`] on the evaluation corpus), and so does the chance of a false match.
//!
//! The renderings use the `jpeg-encoder` crate (IJG quantisation tables, 4:2:0) and a Catmull-Rom resampler, not the
//! device's code: the evaluation measures them against copies made with another encoder and resampler, and a Centre
//! cannot know a messenger's code anyway. They are decoded with the device's decoder ([`crate::decode_image`]).
//! Renderings are deterministic for a given build; they need not agree across platforms, since only the Centre
//! computes them.

use image::{DynamicImage, RgbImage, imageops};

use crate::{HashConfig, ImageHashes, PhashError, QualityVerdict, hash_image, quality_gate};

/// One rendering: bound the longer side, scale, JPEG.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rendering {
    /// Stable name (the suffix of the variant's reference).
    pub name: &'static str,
    /// Longer side bound in pixels (`u32::MAX`: none).
    pub max_side: u32,
    /// Percent of each side after the bound.
    pub percent: u32,
    /// JPEG quality.
    pub quality: u8,
}

const fn r(name: &'static str, max_side: u32, percent: u32, quality: u8) -> Rendering {
    Rendering { name, max_side, percent, quality }
}

/// The messenger pipelines of the evaluation (full size q80, half size q75, 1600 / 1280 / 800 px at q75 / q80 / q70).
pub const PIPELINES: &[Rendering] = &[
    r("msg-q80", u32::MAX, 100, 80),
    r("msg-half-q75", u32::MAX, 50, 75),
    r("msg-1600-q75", 1600, 100, 75),
    r("msg-1280-q80", 1280, 100, 80),
    r("msg-800-q70", 800, 100, 70),
];

/// Sizes and qualities that none of the evaluation's edits uses (full size q85, q65, q45; 1024 px q75; 640 px q60;
/// 40 % q70): what a Centre can render without knowing the messengers' settings.
pub const GENERIC: &[Rendering] = &[
    r("q85", u32::MAX, 100, 85),
    r("q65", u32::MAX, 100, 65),
    r("q45", u32::MAX, 100, 45),
    r("1024-q75", 1024, 100, 75),
    r("640-q60", 640, 100, 60),
    r("40pc-q70", u32::MAX, 40, 70),
];

/// Which renderings the Centre adds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum VariantSet {
    /// None: the image's own hash only.
    None,
    /// [`PIPELINES`] (the default of `centre import --images`).
    #[default]
    Pipelines,
    /// [`GENERIC`].
    Generic,
}

impl VariantSet {
    /// Names for the command line.
    pub const NAMES: &'static str = "none, pipelines, generic";

    /// Looks a set up by name.
    pub fn by_name(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "none" => Some(Self::None),
            "pipelines" => Some(Self::Pipelines),
            "generic" => Some(Self::Generic),
            _ => None,
        }
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Pipelines => "pipelines",
            Self::Generic => "generic",
        }
    }

    /// Its renderings.
    pub fn renderings(self) -> &'static [Rendering] {
        match self {
            Self::None => &[],
            Self::Pipelines => PIPELINES,
            Self::Generic => GENERIC,
        }
    }
}

/// `v · num / den`, rounded, at least 1.
fn scaled(v: u32, num: u32, den: u32) -> u32 {
    ((u64::from(v) * u64::from(num) + u64::from(den) / 2) / u64::from(den.max(1))).max(1) as u32
}

/// Renders `img` as `r` does: the pixels a copy made this way decodes to.
pub fn render(img: &RgbImage, r: &Rendering) -> Result<RgbImage, PhashError> {
    let (w, h) = img.dimensions();
    if w == 0 || h == 0 {
        return Err(PhashError::EmptyImage);
    }
    let long = w.max(h);
    let (mut tw, mut th) =
        if long > r.max_side { (scaled(w, r.max_side, long), scaled(h, r.max_side, long)) } else { (w, h) };
    if r.percent != 100 {
        tw = scaled(tw, r.percent, 100);
        th = scaled(th, r.percent, 100);
    }
    let resized =
        if (tw, th) == (w, h) { img.clone() } else { imageops::resize(img, tw, th, imageops::FilterType::CatmullRom) };
    let (rw, rh) = resized.dimensions();
    let (Ok(ew), Ok(eh)) = (u16::try_from(rw), u16::try_from(rh)) else {
        return Err(PhashError::ImageTooLarge { width: rw, height: rh, limit_pixels: u64::from(u16::MAX).pow(2) });
    };
    let mut buf = Vec::new();
    jpeg_encoder::Encoder::new(&mut buf, r.quality)
        .encode(resized.as_raw(), ew, eh, jpeg_encoder::ColorType::Rgb)
        .map_err(|_| PhashError::Internal("the variant encoder refused an image within its limits"))?;
    Ok(crate::decode_image(&buf)?.to_rgb8())
}

/// The hashes of `set`'s renderings of `img` that the quality gate accepts and whose primary hash differs from
/// `own`'s and from every earlier one's, with the rendering's name, in [`VariantSet::renderings`] order.
pub fn variant_hashes(
    cfg: &HashConfig,
    img: &DynamicImage,
    own: &ImageHashes,
    set: VariantSet,
) -> Result<Vec<(&'static str, ImageHashes)>, PhashError> {
    let renderings = set.renderings();
    if renderings.is_empty() {
        return Ok(Vec::new());
    }
    let rgb = img.to_rgb8();
    let mut out: Vec<(&'static str, ImageHashes)> = Vec::new();
    for r in renderings {
        let h = hash_image(cfg, &DynamicImage::ImageRgb8(render(&rgb, r)?))?;
        if quality_gate(cfg, &h) != QualityVerdict::Accept || h.primary == own.primary {
            continue;
        }
        if out.iter().any(|(_, o)| o.primary == h.primary) {
            continue;
        }
        out.push((r.name, h));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renderings_have_their_sizes() {
        let img = crate::fixtures::benign_image(3, 2000, 1000);
        let sizes: Vec<_> =
            PIPELINES.iter().map(|r| render(&img, r).map(|i| i.dimensions())).collect::<Result<_, _>>().unwrap();
        assert_eq!(sizes, vec![(2000, 1000), (1000, 500), (1600, 800), (1280, 640), (800, 400)]);
        let g = render(&img, &GENERIC[5]).unwrap();
        assert_eq!(g.dimensions(), (800, 400));
    }

    #[test]
    fn variants_are_distinct_accepted_and_not_the_original() {
        let cfg = HashConfig::RECOMMENDED;
        for seed in 0..6 {
            let img = DynamicImage::ImageRgb8(crate::fixtures::benign_image(seed, 640, 480));
            let own = hash_image(&cfg, &img).unwrap();
            let v = variant_hashes(&cfg, &img, &own, VariantSet::Pipelines).unwrap();
            assert!(v.len() <= PIPELINES.len());
            for (i, (name, h)) in v.iter().enumerate() {
                assert_ne!(h.primary, own.primary, "{name}");
                assert_eq!(quality_gate(&cfg, h), QualityVerdict::Accept);
                assert!(v.iter().skip(i + 1).all(|(_, o)| o.primary != h.primary));
            }
            // The same input gives the same variants.
            assert_eq!(variant_hashes(&cfg, &img, &own, VariantSet::Pipelines).unwrap(), v);
            assert!(variant_hashes(&cfg, &img, &own, VariantSet::None).unwrap().is_empty());
        }
    }

    #[test]
    fn names_round_trip() {
        for s in [VariantSet::None, VariantSet::Pipelines, VariantSet::Generic] {
            assert_eq!(VariantSet::by_name(s.name()), Some(s));
        }
        assert_eq!(VariantSet::by_name("all"), None);
        assert_eq!(VariantSet::default(), VariantSet::Pipelines);
    }
}
