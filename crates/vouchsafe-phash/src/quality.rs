//! The quality gate: images whose hashes would be meaningless get a null voucher.

use crate::{HashConfig, ImageHashes, PerceptualHash};

/// Why an image failed the quality gate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum QualityReason {
    /// Width or height below [`HashConfig::min_side`].
    TooSmall {
        /// Source width in pixels.
        width: u32,
        /// Source height in pixels.
        height: u32,
    },
    /// The derivative's luminance variance is below [`HashConfig::min_luma_variance`]: the
    /// image is (nearly) uniform and its hash bits are decided by noise.
    NearlyUniform,
    /// The primary hash has almost all bits equal.
    DegeneratePrimary,
    /// The secondary hash has almost all bits equal.
    DegenerateSecondary,
}

/// Verdict of [`quality_gate`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum QualityVerdict {
    /// The hashes are meaningful: make a real voucher.
    Accept,
    /// The hashes are not meaningful: the caller should send a null voucher.
    Reject(QualityReason),
}

impl QualityVerdict {
    /// Whether the image passed.
    pub fn is_accept(&self) -> bool {
        matches!(self, Self::Accept)
    }
}

/// Whether `hash` is degenerate under `cfg`: fewer than `bits * margin / 8` ones or zeros.
pub fn is_degenerate(cfg: &HashConfig, hash: &PerceptualHash) -> bool {
    let bits = hash.bit_len();
    let ones = hash.count_ones();
    let zeros = bits.saturating_sub(ones);
    let min = bits.saturating_mul(cfg.degenerate_margin_eighths()) / 8;
    ones < min || zeros < min
}

/// Checks, in order: source size, derivative luminance variance, degenerate primary hash,
/// degenerate secondary hash. Returns the first failure.
pub fn quality_gate(cfg: &HashConfig, hashes: &ImageHashes) -> QualityVerdict {
    if hashes.source_width < cfg.min_side() || hashes.source_height < cfg.min_side() {
        return QualityVerdict::Reject(QualityReason::TooSmall {
            width: hashes.source_width,
            height: hashes.source_height,
        });
    }
    if hashes.derivative.variance_below(cfg.min_luma_variance()) {
        return QualityVerdict::Reject(QualityReason::NearlyUniform);
    }
    if is_degenerate(cfg, &hashes.primary) {
        return QualityVerdict::Reject(QualityReason::DegeneratePrimary);
    }
    if is_degenerate(cfg, &hashes.secondary) {
        return QualityVerdict::Reject(QualityReason::DegenerateSecondary);
    }
    QualityVerdict::Accept
}
