//! The whole hashing of one image: luminance, primary hash, visual derivative, and the secondary hash computed
//! from the derivative. It composes `hash` (the hash functions) and `derivative` (the derivative and the secondary
//! hash computed from it), which do not import each other's callers.

use std::io::Read;
use std::path::Path;

use image::DynamicImage;

use crate::derivative::{VisualDerivative, secondary_from_derivative};
use crate::hash::{HashKind, MAX_ENCODED_LEN, PerceptualHash, decode_image, luminance, run_hasher};
use crate::{HashConfig, PhashError};

/// Everything hashing one image produces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageHashes {
    /// The primary hash of the full-resolution luminance.
    pub primary: PerceptualHash,
    /// The secondary hash, computed from `derivative` (exactly what the server recomputes).
    pub secondary: PerceptualHash,
    /// The visual derivative.
    pub derivative: VisualDerivative,
    /// Width of the hashed image (after EXIF orientation), in pixels.
    pub source_width: u32,
    /// Height of the hashed image (after EXIF orientation), in pixels.
    pub source_height: u32,
}

/// Hashes a decoded image: luminance, primary hash, visual derivative, and the secondary hash
/// computed from the derivative.
///
/// Any non-empty image is hashed; whether the result is good enough to voucher is decided by
/// [`crate::quality_gate`].
pub fn hash_image(cfg: &HashConfig, img: &DynamicImage) -> Result<ImageHashes, PhashError> {
    if img.width() == 0 || img.height() == 0 {
        return Err(PhashError::EmptyImage);
    }
    let gray = luminance(img)?;
    let primary = run_hasher(cfg, HashKind::Primary, &gray)?;
    let derivative = VisualDerivative::from_luminance(cfg, &gray)?;
    let secondary = secondary_from_derivative(cfg, &derivative)?;
    Ok(ImageHashes { primary, secondary, derivative, source_width: gray.width(), source_height: gray.height() })
}

/// Decodes a PNG or JPEG from memory (applying its EXIF orientation) and hashes it.
///
/// Rejects inputs over [`MAX_ENCODED_LEN`] bytes, images over [`MAX_PIXELS`](crate::MAX_PIXELS) pixels or
/// [`MAX_SIDE`](crate::MAX_SIDE) on a side (from the header, before decoding), and any other format.
pub fn hash_bytes(cfg: &HashConfig, bytes: &[u8]) -> Result<ImageHashes, PhashError> {
    let img = decode_image(bytes)?;
    hash_image(cfg, &img)
}

/// Reads a PNG or JPEG file (at most [`MAX_ENCODED_LEN`] bytes) and hashes it like
/// [`hash_bytes`].
pub fn hash_file(cfg: &HashConfig, path: impl AsRef<Path>) -> Result<ImageHashes, PhashError> {
    hash_image(cfg, &read_image_file(path)?)
}

/// Reads a PNG or JPEG file (at most [`MAX_ENCODED_LEN`] bytes) and decodes it like [`decode_image`].
pub fn read_image_file(path: impl AsRef<Path>) -> Result<DynamicImage, PhashError> {
    let file = std::fs::File::open(path).map_err(|_| PhashError::Io)?;
    let mut buf = Vec::new();
    let limit = u64::try_from(MAX_ENCODED_LEN).unwrap_or(u64::MAX).saturating_add(1);
    file.take(limit).read_to_end(&mut buf).map_err(|_| PhashError::Io)?;
    decode_image(&buf)
}
