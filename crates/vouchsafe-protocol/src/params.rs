//! Public per-epoch parameters (part of the manifest) and the epoch context every key is bound to.

use curve25519_dalek::ristretto::CompressedRistretto;

use crate::crypto::{decode_point, sha256};
use crate::error::{Error, InvalidInput, Result};
use crate::labels::*;
use crate::wire::Reader;

/// The public parameters of one table epoch. Clients get them in the signed manifest; every key derived in the
/// protocol is bound to [`EpochParams::context`], so a voucher made for one epoch, order or parameter set never opens
/// under another.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EpochParams {
    /// Epoch number (a new blinding key α and nonce per epoch).
    pub epoch: u64,
    /// Per-epoch 128-bit domain-separation nonce for H and the position functions.
    pub nonce: [u8; 16],
    /// The detection order this epoch serves.
    pub order_id: [u8; 16],
    /// The server's public blinding key L = α·G (compressed).
    pub blinding_public: [u8; 32],
    /// Number of table slots m.
    pub slot_count: u32,
    /// Threshold T of distinct real matches.
    pub threshold: u16,
    /// Synthetic cap s (also the number of detectable-hash polynomials).
    pub synthetic_cap: u16,
    /// Synthetic probability p as a fraction of 2^32 (a voucher is synthetic when a uniform u32 is below it).
    pub synthetic_rate: u32,
    /// Padded associated-data length in bytes (2-byte length prefix included).
    pub ad_len: u16,
}

/// Length of the [`EpochParams`] encoding.
pub const EPOCH_PARAMS_LEN: usize = 1 + 8 + 16 + 16 + 32 + 4 + 1 + 2 + 2 + 4 + 2;

impl EpochParams {
    /// Checks every range constraint; decoding and table building call this.
    pub fn validate(&self) -> Result<()> {
        if self.slot_count < 8 || self.slot_count > MAX_SLOTS {
            return Err(Error::Invalid(InvalidInput::Parameter { what: "slot_count must be in 8..=2^26" }));
        }
        if self.threshold < 2 || self.threshold > MAX_THRESHOLD {
            return Err(Error::Invalid(InvalidInput::Parameter { what: "threshold must be in 2..=1000" }));
        }
        if self.synthetic_cap > MAX_SYNTHETIC_CAP {
            return Err(Error::Invalid(InvalidInput::Parameter { what: "synthetic_cap must be at most 1024" }));
        }
        if self.ad_len < 2 || self.ad_len > MAX_AD_LEN {
            return Err(Error::Invalid(InvalidInput::Parameter { what: "ad_len must be in 2..=16384" }));
        }
        decode_point(&self.blinding_public, "blinding public key L")?;
        Ok(())
    }

    /// The public key L as a compressed point.
    pub fn blinding_public(&self) -> CompressedRistretto {
        CompressedRistretto(self.blinding_public)
    }

    /// Canonical encoding (version 1, fixed length [`EPOCH_PARAMS_LEN`]).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(EPOCH_PARAMS_LEN);
        out.push(WIRE_VERSION);
        out.extend_from_slice(&self.epoch.to_le_bytes());
        out.extend_from_slice(&self.nonce);
        out.extend_from_slice(&self.order_id);
        out.extend_from_slice(&self.blinding_public);
        out.extend_from_slice(&self.slot_count.to_le_bytes());
        out.push(K as u8);
        out.extend_from_slice(&self.threshold.to_le_bytes());
        out.extend_from_slice(&self.synthetic_cap.to_le_bytes());
        out.extend_from_slice(&self.synthetic_rate.to_le_bytes());
        out.extend_from_slice(&self.ad_len.to_le_bytes());
        out
    }

    /// Decodes and validates; rejects other versions, k != 3, out-of-range values and trailing bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        if bytes.len() != EPOCH_PARAMS_LEN {
            return Err(Error::Invalid(InvalidInput::Length {
                what: "epoch params",
                expected: EPOCH_PARAMS_LEN,
                got: bytes.len(),
            }));
        }
        let mut r = Reader::new("epoch params", bytes);
        r.version(WIRE_VERSION)?;
        let epoch = r.u64()?;
        let nonce = r.array()?;
        let order_id = r.array()?;
        let blinding_public = r.array()?;
        let slot_count = r.u32()?;
        if r.u8()? as usize != K {
            return Err(Error::Invalid(InvalidInput::Parameter { what: "k must be 3" }));
        }
        let p = EpochParams {
            epoch,
            nonce,
            order_id,
            blinding_public,
            slot_count,
            threshold: r.u16()?,
            synthetic_cap: r.u16()?,
            synthetic_rate: r.u32()?,
            ad_len: r.u16()?,
        };
        r.finish()?;
        p.validate()?;
        Ok(p)
    }

    /// `ctx = SHA-256(LABEL_CONTEXT ‖ encode(self))`.
    pub fn context(&self) -> [u8; 32] {
        sha256(&[LABEL_CONTEXT, &self.encode()])
    }

    /// The synthetic probability as a float (for display and leakage computations).
    pub fn synthetic_probability(&self) -> f64 {
        self.synthetic_rate as f64 / 4294967296.0
    }

    /// Converts a probability in [0, 1) to the wire's fraction of 2^32 (saturating just below 1).
    // `!(p > 0.0)` on purpose: NaN maps to 0 as well.
    #[allow(clippy::neg_cmp_op_on_partial_ord)]
    pub fn rate_from_probability(p: f64) -> u32 {
        if !(p > 0.0) {
            0
        } else if p >= 1.0 {
            u32::MAX
        } else {
            (p * 4294967296.0) as u32
        }
    }
}
