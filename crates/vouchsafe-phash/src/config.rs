//! Versioned perceptual-hash configurations.
//!
//! A configuration fixes every parameter that influences hash bits, so that the Centre (which
//! hashes indicators), the device (which hashes images) and the server (which re-hashes visual
//! derivatives) compute bit-identical results. It is identified on the wire by a `u16` id; the
//! id is part of the canonical hash bytes, so hashes of different configurations never match.
//! See `docs/HASHING.md` for the reasons behind [`HashConfig::V1`].

use crate::PhashError;

/// Perceptual-hash algorithm (a subset of `image_hasher::HashAlg`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Algorithm {
    /// Each bit: is the (resized or DCT) value at least the mean?
    Mean,
    /// Each bit: is the (resized or DCT) value at least the median? (pHash with DCT.)
    Median,
    /// Each bit: is a value smaller than its right neighbour? (dHash.)
    Gradient,
    /// Gradient along rows and along columns.
    DoubleGradient,
    /// Blockhash.io: block sums compared to the median of their horizontal band.
    Blockhash,
    /// The exact-integer area pHash of [`crate::area`]: exact area cells, integer DCT-II, the 8 × 8
    /// low-frequency coefficients against their median. Computed by this crate, not by `image_hasher`.
    AreaMedian,
}

impl Algorithm {
    /// The `image_hasher` algorithm, or `None` for the algorithms this crate computes itself.
    pub(crate) fn to_backend(self) -> Option<image_hasher::HashAlg> {
        match self {
            Self::Mean => Some(image_hasher::HashAlg::Mean),
            Self::Median => Some(image_hasher::HashAlg::Median),
            Self::Gradient => Some(image_hasher::HashAlg::Gradient),
            Self::DoubleGradient => Some(image_hasher::HashAlg::DoubleGradient),
            Self::Blockhash => Some(image_hasher::HashAlg::Blockhash),
            Self::AreaMedian => None,
        }
    }
}

/// Filter used to resize images. Only filters whose kernel uses nothing but IEEE-754 basic
/// arithmetic (no `sin`/`exp` from the platform's libm) are offered, so results are
/// bit-identical on every platform.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ResizeFilter {
    /// Tent filter whose support scales with the reduction ratio: an area-weighted average.
    Triangle,
    /// Catmull-Rom cubic.
    CatmullRom,
    /// Exact area sums over a grid of real-valued cells, in integers, without rounding ([`crate::area`]).
    Area,
}

impl ResizeFilter {
    /// The `image` crate's filter, or `None` for [`Self::Area`], which this crate computes itself.
    pub(crate) fn to_backend(self) -> Option<image::imageops::FilterType> {
        match self {
            Self::Triangle => Some(image::imageops::FilterType::Triangle),
            Self::CatmullRom => Some(image::imageops::FilterType::CatmullRom),
            Self::Area => None,
        }
    }
}

/// Preprocessing applied after resizing and before the bit decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Preprocessing {
    /// Bits are taken from the resized luminance directly.
    None,
    /// Resize to twice the hash size, 2-D DCT-II, keep the low-frequency quarter.
    Dct,
}

/// One hash function: algorithm, hash size, resize filter and preprocessing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HashSpec {
    algorithm: Algorithm,
    width: u32,
    height: u32,
    filter: ResizeFilter,
    preprocessing: Preprocessing,
    bits: u32,
}

impl HashSpec {
    /// Builds a spec; `bits` is the number of hash bits the backend produces for it.
    pub(crate) const fn new(
        algorithm: Algorithm,
        width: u32,
        height: u32,
        filter: ResizeFilter,
        preprocessing: Preprocessing,
        bits: u32,
    ) -> Self {
        Self { algorithm, width, height, filter, preprocessing, bits }
    }

    /// The algorithm.
    pub const fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
    /// Hash grid width (as given to `image_hasher::HasherConfig::hash_size`).
    pub const fn width(&self) -> u32 {
        self.width
    }
    /// Hash grid height.
    pub const fn height(&self) -> u32 {
        self.height
    }
    /// The resize filter.
    pub const fn filter(&self) -> ResizeFilter {
        self.filter
    }
    /// The preprocessing.
    pub const fn preprocessing(&self) -> Preprocessing {
        self.preprocessing
    }
    /// Number of hash bits.
    pub const fn bits(&self) -> u32 {
        self.bits
    }
    /// Number of hash bytes (`bits / 8`, rounded up).
    pub const fn byte_len(&self) -> usize {
        self.bits.div_ceil(8) as usize
    }

    /// The `image_hasher` hasher, or `None` if this crate computes the hash itself.
    pub(crate) fn hasher(&self) -> Option<image_hasher::Hasher> {
        let cfg = image_hasher::HasherConfig::new()
            .hash_alg(self.algorithm.to_backend()?)
            .hash_size(self.width, self.height)
            .resize_filter(self.filter.to_backend()?);
        Some(match self.preprocessing {
            Preprocessing::None => cfg.to_hasher(),
            Preprocessing::Dct => cfg.preproc_dct().to_hasher(),
        })
    }
}

/// A complete, versioned perceptual-hash configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HashConfig {
    id: u16,
    primary: HashSpec,
    secondary: HashSpec,
    derivative_side: u32,
    min_side: u32,
    min_luma_variance: u32,
    degenerate_margin_eighths: u32,
    secondary_max_distance: u32,
}

impl HashConfig {
    /// Configuration 1 (see `docs/HASHING.md`):
    /// - primary: pHash — Median over the 8x8 low-frequency DCT-II coefficients of the
    ///   luminance resized (Triangle) to 16x16: 64 bits;
    /// - derivative: luminance resized (Triangle) to 64x64, 8 bits per pixel;
    /// - secondary: Blockhash 16x16 (256 bits) computed from the derivative;
    /// - quality gate: sides at least 32 px, derivative luminance variance at least 16
    ///   (std. dev. 4 of 255), at least 1/8 of the hash bits set and at least 1/8 clear;
    /// - secondary check: Hamming distance at most 32 of 256 bits.
    pub const V1: Self = Self {
        id: 1,
        primary: HashSpec::new(Algorithm::Median, 8, 8, ResizeFilter::Triangle, Preprocessing::Dct, 64),
        secondary: HashSpec::new(Algorithm::Blockhash, 16, 16, ResizeFilter::Triangle, Preprocessing::None, 256),
        derivative_side: 64,
        min_side: 32,
        min_luma_variance: 16,
        degenerate_margin_eighths: 1,
        secondary_max_distance: 32,
    };

    /// Configuration 2 (see `docs/HASHING.md` §1 and §8): V1 with a more stable primary hash.
    /// - primary: the exact-integer area pHash ([`crate::area`]): the luminance summed exactly over 32 × 32 area
    ///   cells, an integer DCT-II, the 8 × 8 low-frequency coefficients against their median: 64 bits;
    /// - derivative, secondary hash, quality gate and secondary check: as in V1.
    pub const V2: Self = Self {
        id: 2,
        primary: HashSpec::new(Algorithm::AreaMedian, 32, 32, ResizeFilter::Area, Preprocessing::Dct, 64),
        ..Self::V1
    };

    /// Every configuration this build knows, oldest first.
    pub const ALL: &'static [Self] = &[Self::V1, Self::V2];

    /// The configuration new orders and Centre lists should use: the newest.
    pub const RECOMMENDED: Self = Self::V2;

    /// Looks a configuration up by its wire id.
    pub fn from_id(id: u16) -> Result<Self, PhashError> {
        Self::ALL.iter().find(|c| c.id == id).copied().ok_or(PhashError::UnknownConfig { id })
    }

    /// Builds a custom configuration (experiments only; never on the wire).
    #[cfg(test)]
    pub(crate) const fn custom(id: u16, primary: HashSpec, secondary: HashSpec) -> Self {
        let mut c = Self::V1;
        c.id = id;
        c.primary = primary;
        c.secondary = secondary;
        c
    }

    /// The wire id.
    pub const fn id(&self) -> u16 {
        self.id
    }
    /// The primary hash (blinded into the PSI table, matched exactly).
    pub const fn primary(&self) -> &HashSpec {
        &self.primary
    }
    /// The secondary hash (computed from the visual derivative, compared after the threshold).
    pub const fn secondary(&self) -> &HashSpec {
        &self.secondary
    }
    /// Side of the square visual derivative in pixels.
    pub const fn derivative_side(&self) -> u32 {
        self.derivative_side
    }
    /// Length of the visual derivative in bytes (one luminance byte per pixel).
    pub const fn derivative_len(&self) -> usize {
        (self.derivative_side as usize) * (self.derivative_side as usize)
    }
    /// Smallest accepted image width and height in pixels.
    pub const fn min_side(&self) -> u32 {
        self.min_side
    }
    /// Smallest accepted luminance variance of the derivative (0..=255 scale, squared).
    pub const fn min_luma_variance(&self) -> u32 {
        self.min_luma_variance
    }
    /// A hash is degenerate if fewer than `bits * margin / 8` of its bits are set, or clear.
    pub const fn degenerate_margin_eighths(&self) -> u32 {
        self.degenerate_margin_eighths
    }
    /// Largest secondary-hash Hamming distance that still confirms a primary match.
    pub const fn secondary_max_distance(&self) -> u32 {
        self.secondary_max_distance
    }
}

impl Default for HashConfig {
    fn default() -> Self {
        Self::V1
    }
}
