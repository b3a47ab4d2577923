//! The corpus: natural images read from a directory, de-duplicated, bounded in size, and tiled.
//!
//! `scripts/fetch-eval-corpus.sh` fills the directory from Debian's packages; nothing here downloads. The loader is
//! deterministic: the same files give the same originals in the same order on every machine.
//!
//! 1. Every `.png`, `.jpg` and `.jpeg` under the root is read (sorted by path), except paths with a component named
//!    after a source kept for the independent check ([`EXCLUDED_COMPONENTS`]).
//! 2. Images smaller than [`MIN_SIDE`] on a side are skipped, and so are cut-outs (more than 1 % of pixels
//!    transparent: logos and icons).
//! 3. Near-identical files (one wallpaper shipped at several resolutions or aspect ratios) are merged: two images are
//!    the same picture if, after the wider is cropped centrally to the other's aspect ratio, their 32 × 32 luminance
//!    thumbnails differ by at most [`DUPLICATE_MEAN_ABS`] on average or correlate at [`DUPLICATE_CORRELATION`] or
//!    more (one artwork in two colourings). The largest file of each group is kept, and the report lists every merge.
//! 4. Each kept picture becomes one original, downscaled (Lanczos3) so that its longer side is at most
//!    [`MAX_SIDE`]. Pictures at least `2 · TILE` on both sides also give non-overlapping [`TILE`] × [`TILE`] crops of
//!    the full-resolution picture, on a regular grid: more unrelated originals, the way the issue asks. A tile whose
//!    thumbnail is within [`DUPLICATE_MEAN_ABS`] of an earlier tile of the same picture (a periodic pattern, a flat
//!    sky) is left out: it is the same picture again, not an unrelated one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use image::{RgbImage, imageops};
use serde::Serialize;

use crate::EvalError;

/// Path components that are never read: Debian's GNOME, MATE, Plasma and UKUI wallpapers and the scikit-image,
/// scikit-learn, mahotas and matplotlib sample images are kept out of this corpus for an independent check.
pub const EXCLUDED_COMPONENTS: &[&str] = &[
    "gnome",
    "gnome-backgrounds",
    "mate",
    "mate-backgrounds",
    "plasma",
    "plasma-workspace-wallpapers",
    "wallpapers-plasma",
    "ukui",
    "ukui-wallpapers",
    "skimage",
    "scikit-image",
    "sklearn",
    "scikit-learn",
    "mahotas",
    "matplotlib",
    "mpl-data",
];

/// Smallest side of a file that is read as a picture.
pub const MIN_SIDE: u32 = 256;
/// Longer side of an original made from a whole picture.
pub const MAX_SIDE: u32 = 1600;
/// Side of a tile.
pub const TILE: u32 = 512;
/// Largest mean absolute difference (0..=255) of two 32 × 32 thumbnails of the same picture.
pub const DUPLICATE_MEAN_ABS: f64 = 6.0;
/// Smallest correlation of two 32 × 32 luminance thumbnails of one picture in two colourings (a wallpaper shipped
/// in blue and in green has the same luminance pattern, and the hash sees only luminance).
pub const DUPLICATE_CORRELATION: f64 = 0.97;

/// One original of the corpus.
#[derive(Clone, Debug)]
pub struct Original {
    /// Stable name: the file's path under the root, with `#tile-x-y` for a tile.
    pub name: String,
    /// Index of the picture it comes from (tiles share their picture's index).
    pub source: usize,
    /// Whether it is a tile of its picture.
    pub tile: bool,
    /// The pixels.
    pub image: RgbImage,
}

/// What loading found, for the report.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CorpusSummary {
    /// Image files found (after exclusions).
    pub files: usize,
    /// Files skipped because a path component is excluded.
    pub excluded: usize,
    /// Files that did not decode.
    pub undecodable: usize,
    /// Files below [`MIN_SIDE`].
    pub too_small: usize,
    /// Files skipped as cut-outs (logos, icons: more than 1 % of pixels transparent).
    pub cutouts: usize,
    /// Files merged into a larger copy of the same picture.
    pub duplicates: usize,
    /// The merges: `(first seen, merged into it)`; the larger of the two is kept.
    pub merged: Vec<(String, String)>,
    /// Pictures kept.
    pub pictures: usize,
    /// Tiles cut.
    pub tiles: usize,
    /// Tiles left out because their thumbnail is within [`DUPLICATE_MEAN_ABS`] of an earlier tile of the same picture
    /// (periodic or flat pictures).
    pub duplicate_tiles: usize,
    /// Files read per top-level directory (one directory per Debian package in the fetched layout).
    pub per_source: BTreeMap<String, usize>,
}

/// The loaded corpus.
#[derive(Clone, Debug)]
pub struct Corpus {
    /// The originals: whole pictures first (in path order), then tiles.
    pub originals: Vec<Original>,
    /// What loading found.
    pub summary: CorpusSummary,
}

/// Bounds on loading.
#[derive(Clone, Copy, Debug)]
pub struct CorpusLimits {
    /// At most this many pictures (in path order); `None`: all.
    pub max_pictures: Option<usize>,
    /// At most this many tiles per picture.
    pub max_tiles_per_picture: usize,
}

impl Default for CorpusLimits {
    fn default() -> Self {
        Self { max_pictures: None, max_tiles_per_picture: 12 }
    }
}

fn excluded(rel: &Path) -> bool {
    rel.components().any(|c| {
        let s = c.as_os_str().to_string_lossy().to_ascii_lowercase();
        EXCLUDED_COMPONENTS
            .iter()
            .any(|e| s == *e || s.starts_with(&format!("{e}-")) || s.starts_with(&format!("{e}_")))
    })
}

/// Logos and icons on a transparent background are not pictures a messenger carries as photos, and two logos of one
/// project differ only in colour: more than 1 % of pixels with alpha below 255 marks a cut-out.
fn is_cutout(img: &image::DynamicImage) -> bool {
    if !img.color().has_alpha() {
        return false;
    }
    let rgba = img.to_rgba8();
    let transparent = rgba.pixels().filter(|p| p.0[3] < 255).count() as u64;
    transparent * 100 > u64::from(img.width()) * u64::from(img.height())
}

fn is_image(p: &Path) -> bool {
    p.extension()
        .map(|e| {
            let e = e.to_string_lossy().to_ascii_lowercase();
            e == "png" || e == "jpg" || e == "jpeg"
        })
        .unwrap_or(false)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), EvalError> {
    let rd = std::fs::read_dir(dir).map_err(|e| EvalError::io(dir, e))?;
    for entry in rd {
        let entry = entry.map_err(|e| EvalError::io(dir, e))?;
        let ft = entry.file_type().map_err(|e| EvalError::io(&entry.path(), e))?;
        let p = entry.path();
        if ft.is_dir() {
            walk(&p, out)?;
        } else if ft.is_file() && is_image(&p) {
            out.push(p);
        }
    }
    Ok(())
}

struct Picture {
    rel: String,
    image: RgbImage,
    /// The picture bounded to 256 px, for the duplicate test.
    small: RgbImage,
    /// `thumbnail(&small)`, computed once: the side that is not cropped in [`same_picture`] uses it as it is.
    thumb: Vec<u8>,
}

fn thumbnail(img: &RgbImage) -> Vec<u8> {
    let small = imageops::resize(img, 32, 32, imageops::FilterType::Triangle);
    small
        .pixels()
        .map(|p| ((77 * u32::from(p.0[0]) + 150 * u32::from(p.0[1]) + 29 * u32::from(p.0[2])) >> 8) as u8)
        .collect()
}

/// The centred crop of `img` to the aspect ratio `w : h`.
fn crop_to_aspect(img: &RgbImage, w: u32, h: u32) -> RgbImage {
    let (iw, ih) = img.dimensions();
    // Compare iw/ih with w/h without division.
    let (cw, ch) = if u64::from(iw) * u64::from(h) > u64::from(w) * u64::from(ih) {
        ((u64::from(ih) * u64::from(w) / u64::from(h).max(1)).max(1) as u32, ih)
    } else {
        (iw, (u64::from(iw) * u64::from(h) / u64::from(w).max(1)).max(1) as u32)
    };
    imageops::crop_imm(img, (iw - cw.min(iw)) / 2, (ih - ch.min(ih)) / 2, cw.min(iw), ch.min(ih)).to_image()
}

/// Whether two files show the same picture: their thumbnails, after cropping the wider one centrally to the other's
/// aspect ratio (the same artwork shipped at 16:9 and at 4:3), differ by at most [`DUPLICATE_MEAN_ABS`] on average.
fn same_picture(a: &Picture, b: &Picture) -> bool {
    let (aw, ah) = a.image.dimensions();
    let (bw, bh) = b.image.dimensions();
    // Pictures whose aspect ratios differ by more than 2× are never the same picture.
    let (ra, rb) = (f64::from(aw) / f64::from(ah), f64::from(bw) / f64::from(bh));
    if ra / rb > 2.0 || rb / ra > 2.0 {
        return false;
    }
    let (ta, tb) = if ra > rb {
        (thumbnail(&crop_to_aspect(&a.small, bw, bh)), b.thumb.clone())
    } else {
        (a.thumb.clone(), thumbnail(&crop_to_aspect(&b.small, aw, ah)))
    };
    mean_abs(&ta, &tb) <= DUPLICATE_MEAN_ABS || correlation(&ta, &tb) >= DUPLICATE_CORRELATION
}

/// Mean absolute difference of two thumbnails.
fn mean_abs(a: &[u8], b: &[u8]) -> f64 {
    let sum: u64 = a.iter().zip(b).map(|(x, y)| u64::from(x.abs_diff(*y))).sum();
    sum as f64 / a.len().max(1) as f64
}

/// Pearson correlation of two thumbnails (0 if either is flat).
fn correlation(a: &[u8], b: &[u8]) -> f64 {
    let (x, y): (Vec<f64>, Vec<f64>) = a.iter().zip(b).map(|(&p, &q)| (f64::from(p), f64::from(q))).unzip();
    vouchsafe_leakage::stats::pearson(&x, &y).unwrap_or(0.0)
}

/// Downscales `img` (Lanczos3) so that its longer side is at most `max_side`.
pub fn bound(img: &RgbImage, max_side: u32) -> RgbImage {
    let (w, h) = img.dimensions();
    let long = w.max(h);
    if long <= max_side {
        return img.clone();
    }
    let nw = ((u64::from(w) * u64::from(max_side) + u64::from(long) / 2) / u64::from(long)).max(1) as u32;
    let nh = ((u64::from(h) * u64::from(max_side) + u64::from(long) / 2) / u64::from(long)).max(1) as u32;
    imageops::resize(img, nw, nh, imageops::FilterType::Lanczos3)
}

/// Loads the corpus under `root`; `progress` is called once per file read.
pub fn load(root: &Path, limits: CorpusLimits, progress: &(dyn Fn(usize, usize) + Sync)) -> Result<Corpus, EvalError> {
    if !root.is_dir() {
        return Err(EvalError::NoCorpus(root.display().to_string()));
    }
    let mut paths = Vec::new();
    walk(root, &mut paths)?;
    paths.sort();
    let mut summary = CorpusSummary::default();
    let mut pictures: Vec<Picture> = Vec::new();
    let total = paths.len();
    for (i, p) in paths.iter().enumerate() {
        progress(i + 1, total);
        let rel_path = p.strip_prefix(root).unwrap_or(p);
        if excluded(rel_path) {
            summary.excluded += 1;
            continue;
        }
        summary.files += 1;
        let top =
            rel_path.components().next().map(|c| c.as_os_str().to_string_lossy().into_owned()).unwrap_or_default();
        let bytes = std::fs::read(p).map_err(|e| EvalError::io(p, e))?;
        let Ok(img) = vouchsafe_phash::decode_image(&bytes) else {
            summary.undecodable += 1;
            continue;
        };
        if img.width() < MIN_SIDE || img.height() < MIN_SIDE {
            summary.too_small += 1;
            continue;
        }
        if is_cutout(&img) {
            summary.cutouts += 1;
            continue;
        }
        *summary.per_source.entry(top).or_default() += 1;
        let image = img.to_rgb8();
        let small = bound(&image, 256);
        let thumb = thumbnail(&small);
        let pic = Picture { rel: rel_path.to_string_lossy().replace('\\', "/"), image, small, thumb };
        if let Some(prev) = pictures.iter_mut().find(|q| same_picture(q, &pic)) {
            summary.duplicates += 1;
            summary.merged.push((prev.rel.clone(), pic.rel.clone()));
            let (pa, pb) = (
                u64::from(prev.image.width()) * u64::from(prev.image.height()),
                u64::from(pic.image.width()) * u64::from(pic.image.height()),
            );
            if pb > pa {
                *prev = pic;
            }
            continue;
        }
        pictures.push(pic);
    }
    if let Some(max) = limits.max_pictures {
        pictures.truncate(max);
    }
    summary.pictures = pictures.len();
    let mut originals = Vec::new();
    let mut tiles = Vec::new();
    for (source, pic) in pictures.iter().enumerate() {
        originals.push(Original { name: pic.rel.clone(), source, tile: false, image: bound(&pic.image, MAX_SIDE) });
        let (w, h) = pic.image.dimensions();
        if w >= 2 * TILE && h >= 2 * TILE {
            let (nx, ny) = (w / TILE, h / TILE);
            // Centre the grid so that the unused margin is split between both sides.
            let (ox, oy) = ((w - nx * TILE) / 2, (h - ny * TILE) / 2);
            let mut n = 0;
            let mut kept = Vec::new();
            'grid: for ty in 0..ny {
                for tx in 0..nx {
                    if n >= limits.max_tiles_per_picture {
                        break 'grid;
                    }
                    let tile = imageops::crop_imm(&pic.image, ox + tx * TILE, oy + ty * TILE, TILE, TILE).to_image();
                    // Tiles of a periodic or flat picture repeat one another: such a tile is the same picture as an
                    // earlier one, not an unrelated original.
                    let thumb = thumbnail(&tile);
                    if kept.iter().any(|t: &Vec<u8>| mean_abs(t, &thumb) <= DUPLICATE_MEAN_ABS) {
                        summary.duplicate_tiles += 1;
                        continue;
                    }
                    kept.push(thumb);
                    tiles.push(Original {
                        name: format!("{}#tile-{tx}-{ty}", pic.rel),
                        source,
                        tile: true,
                        image: tile,
                    });
                    n += 1;
                }
            }
        }
    }
    summary.tiles = tiles.len();
    originals.extend(tiles);
    Ok(Corpus { originals, summary })
}

/// SHA-256 over every original's name, dimensions and pixels, in order (hex): two runs that print the same digest
/// measured the same corpus.
pub fn digest(corpus: &Corpus) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for o in &corpus.originals {
        h.update((o.name.len() as u64).to_le_bytes());
        h.update(o.name.as_bytes());
        h.update(o.image.width().to_le_bytes());
        h.update(o.image.height().to_le_bytes());
        h.update(o.image.as_raw());
    }
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excluded_sources_are_never_read() {
        for p in [
            "gnome-backgrounds/usr/share/backgrounds/gnome/a.jpg",
            "x/usr/share/wallpapers/plasma/a.png",
            "ukui-wallpapers/a.png",
            "python3-skimage/lib/skimage/data/astronaut.png",
            "python3-matplotlib/mpl-data/sample_data/grace_hopper.jpg",
            "mate-backgrounds/a.jpg",
        ] {
            assert!(excluded(Path::new(p)), "{p}");
        }
        for p in [
            "lomiri-wallpapers/usr/share/backgrounds/a.jpg",
            "desktop-base/usr/share/desktop-base/x.png",
            "automate/a.png",
        ] {
            assert!(!excluded(Path::new(p)), "{p}");
        }
    }
}
