//! The crate's error type.

use core::fmt;

/// Everything that can go wrong in `vouchsafe-phash`.
///
/// Messages describe the failure class only; they never contain image content or hash bits.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PhashError {
    /// The hash configuration id is not one this build knows.
    UnknownConfig {
        /// The id that was asked for.
        id: u16,
    },
    /// Two values computed under different hash configurations (or of different kinds) were mixed.
    ConfigMismatch,
    /// The encoded input is larger than the configured limit.
    InputTooLarge {
        /// Size of the input in bytes.
        len: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// The image has more pixels than the limit (checked before decoding the pixels).
    ImageTooLarge {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
        /// The pixel limit.
        limit_pixels: u64,
    },
    /// The image has a zero width or height.
    EmptyImage,
    /// The data is not a PNG or JPEG image this build can decode.
    UnsupportedFormat,
    /// The image could not be decoded (corrupt data, decoder limit hit, ...).
    Decode,
    /// The file could not be read.
    Io,
    /// A wire encoding has an unknown version byte.
    UnsupportedVersion {
        /// The version byte found.
        version: u8,
    },
    /// A wire encoding has the wrong length (including trailing bytes).
    InvalidLength {
        /// The length this encoding must have.
        expected: usize,
        /// The length found.
        found: usize,
    },
    /// The secondary hash in associated data is not the one its derivative gives.
    InconsistentSecondary,
    /// The hashing backend produced a hash of an unexpected length (internal invariant).
    HashLength,
    /// An invariant of this crate did not hold (a bug here, never the input's fault); names the invariant.
    Internal(&'static str),
}

impl fmt::Display for PhashError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownConfig { id } => {
                write!(f, "unknown perceptual-hash configuration id {id}")
            }
            Self::ConfigMismatch => f.write_str("values from different hash configurations or kinds"),
            Self::InputTooLarge { len, limit } => {
                write!(f, "encoded image of {len} bytes exceeds the limit of {limit} bytes")
            }
            Self::ImageTooLarge { width, height, limit_pixels } => {
                write!(f, "image of {width}x{height} pixels exceeds the limit of {limit_pixels} pixels")
            }
            Self::EmptyImage => f.write_str("image has a zero dimension"),
            Self::UnsupportedFormat => f.write_str("unsupported image format (PNG and JPEG only)"),
            Self::Decode => f.write_str("image could not be decoded"),
            Self::Io => f.write_str("image file could not be read"),
            Self::UnsupportedVersion { version } => {
                write!(f, "unsupported encoding version {version}")
            }
            Self::InvalidLength { expected, found } => {
                write!(f, "invalid encoding length: expected {expected} bytes, found {found}")
            }
            Self::InconsistentSecondary => f.write_str("secondary hash does not match the visual derivative"),
            Self::HashLength => f.write_str("hash backend returned an unexpected hash length"),
            Self::Internal(what) => write!(f, "internal error (a bug in vouchsafe-phash): {what}"),
        }
    }
}

impl std::error::Error for PhashError {}
