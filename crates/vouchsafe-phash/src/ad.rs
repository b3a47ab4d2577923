//! The fixed-length associated data encrypted into every voucher.

use core::fmt;

use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::hash::HashKind;
use crate::{HashConfig, ImageHashes, PerceptualHash, PhashError, VisualDerivative};

/// Version byte of the associated-data encoding.
pub const AD_VERSION: u8 = 1;

/// Length of the opaque attachment reference.
pub const ATTACHMENT_REF_LEN: usize = 32;

/// Length of the fixed header: version, config id, source width, source height, time,
/// attachment reference.
const HEADER_LEN: usize = 1 + 2 + 4 + 4 + 8 + ATTACHMENT_REF_LEN;

/// Encoded length of associated data under `cfg`.
pub const fn encoded_len(cfg: &HashConfig) -> usize {
    HEADER_LEN + cfg.primary().byte_len() + cfg.secondary().byte_len() + cfg.derivative_len()
}

/// The associated data of one image (see `docs/HASHING.md` for the byte layout):
///
/// | offset | len  | field |
/// |-------:|-----:|-------|
/// | 0      | 1    | version = 1 |
/// | 1      | 2    | config id, u16 LE |
/// | 3      | 4    | source width, u32 LE |
/// | 7      | 4    | source height, u32 LE |
/// | 11     | 8    | time, u64 LE unix seconds |
/// | 19     | 32   | attachment reference (opaque) |
/// | 51     | 8    | primary hash (V1: 64 bits) |
/// | 59     | 32   | secondary hash (V1: 256 bits) |
/// | 91     | 4096 | visual derivative (V1: 64x64, row-major) |
///
/// It describes a user's image, so it is zeroized on drop and prints redacted.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct AssociatedData {
    #[zeroize(skip)]
    config: HashConfig,
    source_width: u32,
    source_height: u32,
    time: u64,
    attachment_ref: [u8; ATTACHMENT_REF_LEN],
    primary: PerceptualHash,
    secondary: PerceptualHash,
    derivative: VisualDerivative,
}

impl AssociatedData {
    /// Encoded length under [`HashConfig::V1`]: 4187 bytes.
    pub const ENCODED_LEN: usize = encoded_len(&HashConfig::V1);

    /// Assembles the associated data of a hashed image.
    pub fn new(
        cfg: &HashConfig,
        hashes: &ImageHashes,
        attachment_ref: [u8; ATTACHMENT_REF_LEN],
        time: u64,
    ) -> Result<Self, PhashError> {
        let id = cfg.id();
        if hashes.primary.config_id() != id
            || hashes.primary.kind() != HashKind::Primary
            || hashes.secondary.config_id() != id
            || hashes.secondary.kind() != HashKind::Secondary
            || hashes.derivative.config_id() != id
        {
            return Err(PhashError::ConfigMismatch);
        }
        Ok(Self {
            config: *cfg,
            source_width: hashes.source_width,
            source_height: hashes.source_height,
            time,
            attachment_ref,
            primary: hashes.primary.clone(),
            secondary: hashes.secondary.clone(),
            derivative: hashes.derivative.clone(),
        })
    }

    /// Encodes to exactly `encoded_len(config)` bytes ([`Self::ENCODED_LEN`] for V1).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(encoded_len(&self.config));
        out.push(AD_VERSION);
        out.extend_from_slice(&self.config.id().to_le_bytes());
        out.extend_from_slice(&self.source_width.to_le_bytes());
        out.extend_from_slice(&self.source_height.to_le_bytes());
        out.extend_from_slice(&self.time.to_le_bytes());
        out.extend_from_slice(&self.attachment_ref);
        out.extend_from_slice(self.primary.as_bytes());
        out.extend_from_slice(self.secondary.as_bytes());
        out.extend_from_slice(self.derivative.as_bytes());
        out
    }

    /// Decodes; rejects unknown versions and configurations, short input and trailing bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, PhashError> {
        let (&version, rest) =
            bytes.split_first().ok_or(PhashError::InvalidLength { expected: Self::ENCODED_LEN, found: 0 })?;
        if version != AD_VERSION {
            return Err(PhashError::UnsupportedVersion { version });
        }
        let short = PhashError::InvalidLength { expected: HEADER_LEN, found: bytes.len() };
        let (id, rest) = rest.split_first_chunk::<2>().ok_or(short.clone())?;
        let config = HashConfig::from_id(u16::from_le_bytes(*id))?;
        let expected = encoded_len(&config);
        if bytes.len() != expected {
            return Err(PhashError::InvalidLength { expected, found: bytes.len() });
        }
        let (w, rest) = rest.split_first_chunk::<4>().ok_or(short.clone())?;
        let (h, rest) = rest.split_first_chunk::<4>().ok_or(short.clone())?;
        let (t, rest) = rest.split_first_chunk::<8>().ok_or(short.clone())?;
        let (aref, rest) = rest.split_first_chunk::<ATTACHMENT_REF_LEN>().ok_or(short)?;
        let too_short = || PhashError::InvalidLength { expected, found: bytes.len() };
        let (p, rest) = rest.split_at_checked(config.primary().byte_len()).ok_or_else(too_short)?;
        let (s, d) = rest.split_at_checked(config.secondary().byte_len()).ok_or_else(too_short)?;
        Ok(Self {
            config,
            source_width: u32::from_le_bytes(*w),
            source_height: u32::from_le_bytes(*h),
            time: u64::from_le_bytes(*t),
            attachment_ref: *aref,
            primary: PerceptualHash::from_raw(&config, HashKind::Primary, p)?,
            secondary: PerceptualHash::from_raw(&config, HashKind::Secondary, s)?,
            derivative: VisualDerivative::from_bytes(&config, d)?,
        })
    }

    /// The hash configuration.
    pub fn config(&self) -> &HashConfig {
        &self.config
    }
    /// Source width in pixels (to undo the derivative's stretch when displaying it).
    pub fn source_width(&self) -> u32 {
        self.source_width
    }
    /// Source height in pixels.
    pub fn source_height(&self) -> u32 {
        self.source_height
    }
    /// Time, unix seconds.
    pub fn time(&self) -> u64 {
        self.time
    }
    /// The opaque attachment reference.
    pub fn attachment_ref(&self) -> &[u8; ATTACHMENT_REF_LEN] {
        &self.attachment_ref
    }
    /// The primary hash.
    pub fn primary(&self) -> &PerceptualHash {
        &self.primary
    }
    /// The secondary hash as the device computed it.
    pub fn secondary(&self) -> &PerceptualHash {
        &self.secondary
    }
    /// The visual derivative.
    pub fn derivative(&self) -> &VisualDerivative {
        &self.derivative
    }

    /// Server-side check after the threshold: recomputes the secondary hash from the
    /// derivative, requires it to equal the one the device sent (else the associated data is
    /// inconsistent), and returns its Hamming distance to the indicator's secondary hash.
    pub fn secondary_distance(&self, indicator_secondary: &PerceptualHash) -> Result<u32, PhashError> {
        let recomputed = crate::secondary_from_derivative(&self.config, &self.derivative)?;
        if recomputed != self.secondary {
            return Err(PhashError::InconsistentSecondary);
        }
        recomputed.hamming_distance(indicator_secondary)
    }

    /// Whether the secondary check confirms a primary match against an indicator:
    /// [`Self::secondary_distance`] is at most [`HashConfig::secondary_max_distance`].
    pub fn secondary_confirms(&self, indicator_secondary: &PerceptualHash) -> Result<bool, PhashError> {
        Ok(self.secondary_distance(indicator_secondary)? <= self.config.secondary_max_distance())
    }
}

impl PartialEq for AssociatedData {
    fn eq(&self, other: &Self) -> bool {
        self.config == other.config
            && self.source_width == other.source_width
            && self.source_height == other.source_height
            && self.time == other.time
            && bool::from(self.attachment_ref.ct_eq(&other.attachment_ref))
            && self.primary == other.primary
            && self.secondary == other.secondary
            && self.derivative == other.derivative
    }
}

impl Eq for AssociatedData {}

impl fmt::Debug for AssociatedData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AssociatedData").field("config_id", &self.config.id()).field("contents", &"<redacted>").finish()
    }
}
