//! Perceptual hashing for vouchsafe.
//!
//! Used on the messenger device (hash an image, gate it, build the associated data of its
//! voucher) and on the matching server (after the threshold, recompute the secondary hash from
//! the visual derivative to drop adversarial collisions of the primary hash).
//!
//! - [`HashConfig`]: the versioned configuration ([`HashConfig::V1`]).
//! - [`hash_image`], [`hash_bytes`], [`hash_file`]: give [`ImageHashes`] (primary and
//!   secondary [`PerceptualHash`], [`VisualDerivative`]).
//! - [`PerceptualHash::to_canonical_bytes`]: the bytes blinded in the PSI table.
//! - [`quality_gate`]: which images get a null voucher, and why.
//! - [`AssociatedData`]: the fixed-length associated data of a voucher.
//! - [`fixtures`]: deterministic benign synthetic images.
//! - [`variants`]: the Centre-side variants of a known image (its renderings by the usual messenger pipelines).
//!
//! See `docs/HASHING.md` for the choices and measured figures.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod ad;
pub mod area;
mod config;
mod derivative;
mod error;
#[cfg(test)]
mod experiments;
pub mod fixtures;
mod hash;
mod pipeline;
mod quality;
pub mod variants;

pub use ad::{AD_VERSION, ATTACHMENT_REF_LEN, AssociatedData, encoded_len};
pub use config::{Algorithm, HashConfig, HashSpec, Preprocessing, ResizeFilter};
pub use derivative::{VisualDerivative, secondary_from_derivative};
pub use error::PhashError;
pub use hash::{
    CANONICAL_VERSION, HashKind, MAX_ENCODED_LEN, MAX_PIXELS, MAX_SIDE, PerceptualHash, decode_image, luminance,
};
pub use pipeline::{ImageHashes, hash_bytes, hash_file, hash_image, read_image_file};
pub use quality::{QualityReason, QualityVerdict, is_degenerate, quality_gate};
