//! The reviewer's view of a visual derivative: a PNG, grayscale always (the derivative is luminance only), and
//! blurred unless the reviewer asks for the full view (DESIGN.md §5: the reviewers' well-being). The image is
//! restored to the source's aspect ratio (the derivative is stretched to a square, the associated data carries the
//! source dimensions) and scaled up so that a 64 × 64 derivative is not a thumbnail.

use image::imageops::{self, FilterType};
use image::{GrayImage, ImageEncoder, codecs::png::PngEncoder};
use vouchsafe_phash::AssociatedData;

use crate::error::{Result, ServerError};

/// Longest side of a shown derivative, in pixels.
pub const VIEW_SIDE: u32 = 256;
/// Gaussian blur of the default view, in output pixels: enough that faces and text are not readable, not so much
/// that the reviewer cannot tell whether to open the full view.
pub const BLUR_SIGMA: f32 = 6.0;

/// The display size for a source of `w` × `h` (aspect ratio kept, longest side [`VIEW_SIDE`]).
fn view_size(w: u32, h: u32) -> (u32, u32) {
    if w == 0 || h == 0 {
        return (VIEW_SIDE, VIEW_SIDE);
    }
    let (w, h) = (u64::from(w), u64::from(h));
    let side = u64::from(VIEW_SIDE);
    let (vw, vh) = if w >= h { (side, (h * side / w).max(1)) } else { ((w * side / h).max(1), side) };
    (vw as u32, vh as u32)
}

/// The PNG a reviewer sees of `ad`'s derivative: blurred unless `full`.
pub fn derivative_png(ad: &AssociatedData, full: bool) -> Result<Vec<u8>> {
    let small: GrayImage =
        ad.derivative().to_gray_image().map_err(|_| ServerError::Internal("a derivative has side x side pixels"))?;
    let (w, h) = view_size(ad.source_width(), ad.source_height());
    let filter = if full { FilterType::Nearest } else { FilterType::Triangle };
    let mut shown = imageops::resize(&small, w, h, filter);
    if !full {
        shown = imageops::blur(&shown, BLUR_SIGMA);
    }
    let mut out = Vec::new();
    PngEncoder::new(&mut out)
        .write_image(shown.as_raw(), shown.width(), shown.height(), image::ExtendedColorType::L8)
        .map_err(|_| ServerError::Internal("PNG encoding of a derivative failed"))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_keep_the_aspect_ratio() {
        assert_eq!(view_size(1000, 500), (256, 128));
        assert_eq!(view_size(500, 1000), (128, 256));
        assert_eq!(view_size(0, 5), (256, 256));
        assert_eq!(view_size(u32::MAX, 1), (256, 1));
    }
}
