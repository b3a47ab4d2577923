//! Perceptual hashes, their canonical bytes, and hashing of images.

use core::fmt;
use std::io::Cursor;

use image::{DynamicImage, GrayImage, ImageDecoder, ImageFormat, ImageReader, Limits};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::{HashConfig, HashSpec, PhashError};

/// Version byte of [`PerceptualHash::to_canonical_bytes`].
pub const CANONICAL_VERSION: u8 = 1;

/// Largest encoded image accepted by [`hash_bytes`] and [`hash_file`]: 50 MiB.
pub const MAX_ENCODED_LEN: usize = 50 * 1024 * 1024;

/// Largest image accepted by [`hash_bytes`] and [`hash_file`]: 64 Mpixel (checked from the
/// header, before any pixel is decoded).
pub const MAX_PIXELS: u64 = 64 * 1024 * 1024;

/// Largest width or height accepted by the decoder.
pub const MAX_SIDE: u32 = 32_768;

/// Upper bound on decoder allocations: 64 Mpixel of 8-bit RGBA plus slack.
const MAX_DECODER_ALLOC: u64 = 4 * MAX_PIXELS + 64 * 1024 * 1024;

/// Which of the two hashes of a configuration a [`PerceptualHash`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HashKind {
    /// The primary hash: blinded into the PSI table and matched exactly.
    Primary,
    /// The secondary hash: computed from the visual derivative, compared after the threshold.
    Secondary,
}

/// A perceptual hash computed under one [`HashConfig`].
///
/// It describes the content of a user's image, so it is zeroized on drop, prints redacted and
/// compares in constant time.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct PerceptualHash {
    #[zeroize(skip)]
    config_id: u16,
    #[zeroize(skip)]
    kind: HashKind,
    bytes: Vec<u8>,
}

impl PerceptualHash {
    /// Builds a hash from raw hash bytes, checking the length against the configuration.
    pub fn from_raw(cfg: &HashConfig, kind: HashKind, bytes: &[u8]) -> Result<Self, PhashError> {
        let expected = spec_of(cfg, kind).byte_len();
        if bytes.len() != expected {
            return Err(PhashError::InvalidLength { expected, found: bytes.len() });
        }
        Ok(Self { config_id: cfg.id(), kind, bytes: bytes.to_vec() })
    }

    /// Parses canonical bytes `[version][config id u16 LE][hash bytes]` of a hash of `kind`.
    /// Rejects unknown versions and configurations, and wrong lengths.
    pub fn from_canonical_bytes(kind: HashKind, bytes: &[u8]) -> Result<Self, PhashError> {
        let (&version, rest) = bytes.split_first().ok_or(PhashError::InvalidLength { expected: 3, found: 0 })?;
        if version != CANONICAL_VERSION {
            return Err(PhashError::UnsupportedVersion { version });
        }
        let (id, hash) =
            rest.split_first_chunk::<2>().ok_or(PhashError::InvalidLength { expected: 3, found: bytes.len() })?;
        let cfg = HashConfig::from_id(u16::from_le_bytes(*id))?;
        let expected = 3 + spec_of(&cfg, kind).byte_len();
        if bytes.len() != expected {
            return Err(PhashError::InvalidLength { expected, found: bytes.len() });
        }
        Self::from_raw(&cfg, kind, hash)
    }

    /// Canonical bytes: `[version = 1][config id u16 LE][hash bytes]`.
    ///
    /// For the primary hash these are the indicator / image bytes `y` that the protocol blinds
    /// into the PSI table; they are identical on every platform for the same pixels.
    pub fn to_canonical_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(3 + self.bytes.len());
        out.push(CANONICAL_VERSION);
        out.extend_from_slice(&self.config_id.to_le_bytes());
        out.extend_from_slice(&self.bytes);
        out
    }

    /// The configuration id this hash was computed under.
    pub fn config_id(&self) -> u16 {
        self.config_id
    }

    /// Primary or secondary.
    pub fn kind(&self) -> HashKind {
        self.kind
    }

    /// The raw hash bytes (bit `i` of the backend's output is bit `i % 8` of byte `i / 8`).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Number of hash bits.
    pub fn bit_len(&self) -> u32 {
        u32::try_from(self.bytes.len()).unwrap_or(u32::MAX).saturating_mul(8)
    }

    /// Number of set bits.
    pub fn count_ones(&self) -> u32 {
        self.bytes.iter().map(|b| b.count_ones()).sum()
    }

    /// Hamming distance to `other`; both must be of the same configuration and kind.
    pub fn hamming_distance(&self, other: &Self) -> Result<u32, PhashError> {
        if self.config_id != other.config_id || self.kind != other.kind || self.bytes.len() != other.bytes.len() {
            return Err(PhashError::ConfigMismatch);
        }
        Ok(self.bytes.iter().zip(&other.bytes).map(|(a, b)| (a ^ b).count_ones()).sum())
    }
}

impl PartialEq for PerceptualHash {
    fn eq(&self, other: &Self) -> bool {
        self.config_id == other.config_id
            && self.kind == other.kind
            && bool::from(self.bytes.as_slice().ct_eq(other.bytes.as_slice()))
    }
}

impl Eq for PerceptualHash {}

impl fmt::Debug for PerceptualHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PerceptualHash")
            .field("config_id", &self.config_id)
            .field("kind", &self.kind)
            .field("bits", &self.bit_len())
            .field("bytes", &"<redacted>")
            .finish()
    }
}

pub(crate) fn spec_of(cfg: &HashConfig, kind: HashKind) -> &HashSpec {
    match kind {
        HashKind::Primary => cfg.primary(),
        HashKind::Secondary => cfg.secondary(),
    }
}

pub(crate) fn run_hasher(cfg: &HashConfig, kind: HashKind, gray: &GrayImage) -> Result<PerceptualHash, PhashError> {
    if gray.width() == 0 || gray.height() == 0 {
        return Err(PhashError::EmptyImage);
    }
    let spec = spec_of(cfg, kind);
    let bytes = match spec.algorithm() {
        crate::Algorithm::AreaMedian => crate::area::area_phash(gray)?,
        _ => {
            let hasher = spec.hasher().ok_or(PhashError::Internal("no image_hasher backend for this hash"))?;
            hasher.hash_image(gray).as_bytes().to_vec()
        }
    };
    PerceptualHash::from_raw(cfg, kind, &bytes).map_err(|_| PhashError::HashLength)
}

/// Canonical luminance of an image: 8-bit sRGB channels (the `image` crate's integer
/// conversion for other depths), composited over white by alpha, then
/// `Y = (77 R + 150 G + 29 B + 128) >> 8` (BT.601 weights in 8-bit fixed point).
/// Integer-only, so identical on every platform.
///
/// Fails only with [`PhashError::Internal`] (the pixel count did not match the dimensions), which would be a bug.
pub fn luminance(img: &DynamicImage) -> Result<GrayImage, PhashError> {
    fn y(r: u8, g: u8, b: u8, a: u8) -> u8 {
        let luma = (77 * u32::from(r) + 150 * u32::from(g) + 29 * u32::from(b) + 128) >> 8;
        let a = u32::from(a);
        let v = (luma * a + 255 * (255 - a) + 127) / 255;
        u8::try_from(v).unwrap_or(u8::MAX)
    }
    fn rgba_luma(raw: &[u8]) -> Vec<u8> {
        raw.as_chunks::<4>().0.iter().map(|&[r, g, b, a]| y(r, g, b, a)).collect()
    }
    let (w, h) = (img.width(), img.height());
    let px: Vec<u8> = match img {
        DynamicImage::ImageLuma8(g) => g.as_raw().clone(),
        DynamicImage::ImageLumaA8(g) => g.as_raw().as_chunks::<2>().0.iter().map(|&[l, a]| y(l, l, l, a)).collect(),
        DynamicImage::ImageRgb8(c) => c.as_raw().as_chunks::<3>().0.iter().map(|&[r, g, b]| y(r, g, b, 255)).collect(),
        DynamicImage::ImageRgba8(c) => rgba_luma(c.as_raw()),
        other => rgba_luma(other.to_rgba8().as_raw()),
    };
    // One luma byte per pixel of a w × h image: the length always matches.
    GrayImage::from_raw(w, h, px).ok_or(PhashError::Internal("luminance has one byte per pixel"))
}

/// Decodes a PNG or JPEG from memory under the crate's limits and applies EXIF orientation.
pub fn decode_image(bytes: &[u8]) -> Result<DynamicImage, PhashError> {
    if bytes.len() > MAX_ENCODED_LEN {
        return Err(PhashError::InputTooLarge { len: bytes.len(), limit: MAX_ENCODED_LEN });
    }
    let format = image::guess_format(bytes).map_err(|_| PhashError::UnsupportedFormat)?;
    if !matches!(format, ImageFormat::Png | ImageFormat::Jpeg) {
        return Err(PhashError::UnsupportedFormat);
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODER_ALLOC);
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(|_| PhashError::Decode)?;
    let (width, height) = decoder.dimensions();
    if width == 0 || height == 0 {
        return Err(PhashError::EmptyImage);
    }
    if u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(PhashError::ImageTooLarge { width, height, limit_pixels: MAX_PIXELS });
    }
    // A missing or broken EXIF block means "no rotation", as in every image viewer.
    let orientation = decoder.orientation().unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder).map_err(|_| PhashError::Decode)?;
    img.apply_orientation(orientation);
    Ok(img)
}
