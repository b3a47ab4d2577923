//! The visual derivative: a fixed-size low-resolution grayscale thumbnail.

use core::fmt;

use image::GrayImage;
use image::imageops;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::hash::{HashKind, run_hasher};
use crate::{HashConfig, PerceptualHash, PhashError};

/// A square grayscale thumbnail of `cfg.derivative_side()` pixels a side, one luminance byte
/// per pixel, row-major, top row first.
///
/// It is the part of the associated data a human reviewer sees after the threshold, and the
/// input of the secondary hash. It shows a user's image, so it is zeroized on drop, prints
/// redacted and compares in constant time.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct VisualDerivative {
    #[zeroize(skip)]
    config_id: u16,
    #[zeroize(skip)]
    side: u32,
    pixels: Vec<u8>,
}

impl VisualDerivative {
    /// Resizes a luminance image (see [`crate::luminance`]) to the derivative size with the
    /// configuration's (platform-independent) filter. The aspect ratio is not kept: the
    /// derivative is stretched to a square, as the hashes are; the associated data carries the
    /// source dimensions so a viewer can undo the stretch.
    pub fn from_luminance(cfg: &HashConfig, gray: &GrayImage) -> Result<Self, PhashError> {
        if gray.width() == 0 || gray.height() == 0 {
            return Err(PhashError::EmptyImage);
        }
        let side = cfg.derivative_side();
        let filter = cfg.secondary().filter().to_backend().ok_or(PhashError::Internal("derivative filter"))?;
        let small = imageops::resize(gray, side, side, filter);
        Self::from_bytes(cfg, small.as_raw())
    }

    /// Rebuilds a derivative from its bytes (e.g. decoded associated data).
    pub fn from_bytes(cfg: &HashConfig, bytes: &[u8]) -> Result<Self, PhashError> {
        let expected = cfg.derivative_len();
        if bytes.len() != expected {
            return Err(PhashError::InvalidLength { expected, found: bytes.len() });
        }
        Ok(Self { config_id: cfg.id(), side: cfg.derivative_side(), pixels: bytes.to_vec() })
    }

    /// The configuration id.
    pub fn config_id(&self) -> u16 {
        self.config_id
    }

    /// Side length in pixels.
    pub fn side(&self) -> u32 {
        self.side
    }

    /// The pixels, row-major.
    pub fn as_bytes(&self) -> &[u8] {
        &self.pixels
    }

    /// The derivative as an image (for a reviewer's viewer). Fails only with [`PhashError::Internal`]: every
    /// constructor and decoder checks that there are side × side pixels.
    pub fn to_gray_image(&self) -> Result<GrayImage, PhashError> {
        GrayImage::from_raw(self.side, self.side, self.pixels.clone())
            .ok_or(PhashError::Internal("a derivative has side x side pixels"))
    }

    /// Population variance of the luminance, on the 0..=255 scale (exact, integer-based).
    pub fn luma_variance(&self) -> f64 {
        let (n, scaled) = self.scaled_variance();
        if n == 0 {
            return 0.0;
        }
        scaled as f64 / (n * n) as f64
    }

    /// Whether `n^2 * variance < n^2 * min` (exact integer comparison used by the gate).
    pub(crate) fn variance_below(&self, min: u32) -> bool {
        let (n, scaled) = self.scaled_variance();
        scaled < u128::from(min) * n * n
    }

    /// `(n, n^2 * variance)` over the pixels, in exact integers: `n * sum_sq - sum^2`, which is >= 0
    /// (Cauchy-Schwarz).
    fn scaled_variance(&self) -> (u128, u128) {
        let n = self.pixels.len() as u128;
        let sum: u128 = self.pixels.iter().map(|&p| u128::from(p)).sum();
        let sum_sq: u128 = self.pixels.iter().map(|&p| u128::from(p) * u128::from(p)).sum();
        (n, n * sum_sq - sum * sum)
    }
}

impl PartialEq for VisualDerivative {
    fn eq(&self, other: &Self) -> bool {
        self.config_id == other.config_id
            && self.side == other.side
            && bool::from(self.pixels.as_slice().ct_eq(other.pixels.as_slice()))
    }
}

impl Eq for VisualDerivative {}

impl fmt::Debug for VisualDerivative {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VisualDerivative")
            .field("config_id", &self.config_id)
            .field("side", &self.side)
            .field("pixels", &"<redacted>")
            .finish()
    }
}

/// Computes the secondary hash from a visual derivative.
///
/// The device calls this on the derivative it puts into the associated data, and the server
/// calls it on the derivative it decrypts after the threshold; both get the same bits.
pub fn secondary_from_derivative(
    cfg: &HashConfig,
    derivative: &VisualDerivative,
) -> Result<PerceptualHash, PhashError> {
    if derivative.config_id != cfg.id()
        || derivative.side != cfg.derivative_side()
        || derivative.pixels.len() != cfg.derivative_len()
    {
        return Err(PhashError::ConfigMismatch);
    }
    let gray = GrayImage::from_raw(derivative.side, derivative.side, derivative.pixels.clone())
        .ok_or(PhashError::ConfigMismatch)?;
    run_hasher(cfg, HashKind::Secondary, &gray)
}
