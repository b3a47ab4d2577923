//! The server's per-account threshold step: detection, reconstruction, decryption of every real ad, and the
//! classification of later opened vouchers once an account is revealed.

use core::fmt;
use std::collections::HashSet;

use vouchsafe_threshold::{Column, Detection, Share, SharePolynomial, detect};
use zeroize::Zeroizing;

use crate::crypto::{ad_item_key, adct_aad, adkey, decode_scalar, open};
use crate::error::{Error, InvalidInput, Result};
use crate::labels::*;
use crate::voucher::OpenedVoucher;
use crate::wire::Reader;

/// One decrypted associated-data item of a real match.
pub struct RevealedItem {
    /// Voucher id.
    pub id: [u8; 16],
    /// The unpadded associated data.
    pub ad: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for RevealedItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RevealedItem")
            .field("id", &crate::voucher::hex16(&self.id))
            .field("ad_len", &self.ad.len())
            .finish()
    }
}

/// The outcome of a threshold attempt over an account's opened vouchers.
#[derive(Debug)]
pub enum ThresholdOutcome {
    /// No detectable dependency: at most T−1 distinct real matches; nothing more is learned.
    Below {
        /// Opened vouchers with distinct share abscissae considered.
        distinct: usize,
    },
    /// Threshold crossed.
    Revealed(Revealed),
}

/// Everything the server learns when an account crosses the threshold.
#[derive(Debug)]
pub struct Revealed {
    /// Keeps the polynomial and adkey to classify later vouchers.
    pub account: RevealedAccount,
    /// Real matches with their decrypted ad.
    pub real: Vec<RevealedItem>,
    /// Opened vouchers identified as synthetic (to be discarded).
    pub synthetic: Vec<[u8; 16]>,
    /// Opened vouchers that were classified real but whose share or ad did not verify, or that repeated an abscissa.
    pub rejected: Vec<[u8; 16]>,
}

/// A revealed account: the Shamir polynomial and adkey. Secret; zeroized on drop, redacted in `Debug`.
#[derive(Clone)]
pub struct RevealedAccount {
    order_id: [u8; 16],
    poly: SharePolynomial,
    adkey: Zeroizing<[u8; 32]>,
}

impl fmt::Debug for RevealedAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RevealedAccount").field("threshold", &self.poly.threshold()).finish_non_exhaustive()
    }
}

/// How a voucher opened after the reveal is classified.
#[derive(Debug)]
pub enum Classified {
    /// Its share lies on f and its ad decrypted.
    Real(RevealedItem),
    /// Its share is not on f: a synthetic voucher.
    Synthetic,
    /// Its share lies on f but the ad did not decrypt.
    Rejected,
}

impl RevealedAccount {
    /// Classifies an opened voucher against f, decrypting its ad if it is real.
    pub fn classify(&self, v: &OpenedVoucher) -> Classified {
        if !self.poly.contains(&v.share) {
            return Classified::Synthetic;
        }
        match decrypt_ad(&self.adkey, &self.order_id, v) {
            Some(ad) => Classified::Real(RevealedItem { id: v.id, ad }),
            None => Classified::Rejected,
        }
    }

    /// Secret storage encoding: `version ‖ order_id ‖ T u16 ‖ T × coefficient`.
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        let c = self.poly.coefficients();
        let mut out = Vec::with_capacity(1 + 16 + 2 + 32 * c.len());
        out.push(WIRE_VERSION);
        out.extend_from_slice(&self.order_id);
        out.extend_from_slice(&(c.len() as u16).to_le_bytes());
        for s in c {
            out.extend_from_slice(s.as_bytes());
        }
        Zeroizing::new(out)
    }

    /// Decodes [`RevealedAccount::encode`].
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new("revealed account", bytes);
        r.version(WIRE_VERSION)?;
        let order_id = r.array()?;
        let t = r.u16()?;
        if !(2..=MAX_THRESHOLD).contains(&t) {
            return Err(Error::Invalid(InvalidInput::Parameter { what: "threshold must be in 2..=1000" }));
        }
        let mut coeffs = Vec::with_capacity(t as usize);
        for _ in 0..t {
            coeffs.push(decode_scalar(&r.array()?, "polynomial coefficient")?);
        }
        r.finish()?;
        let poly = SharePolynomial::from_coefficients(coeffs)?;
        let adkey = adkey(poly.secret(), &order_id);
        Ok(RevealedAccount { order_id, poly, adkey })
    }
}

fn decrypt_ad(adkey: &[u8; 32], order_id: &[u8; 16], v: &OpenedVoucher) -> Option<Zeroizing<Vec<u8>>> {
    let key = ad_item_key(adkey, &v.rkey);
    let padded = open(&key, &adct_aad(order_id, &v.id), &v.adct)?;
    let len = u16::from_le_bytes([*padded.first()?, *padded.get(1)?]) as usize;
    let body = padded.get(2..2 + len)?;
    // Padding must be zero: one valid encoding per ad.
    if padded.get(2 + len..)?.iter().any(|b| *b != 0) {
        return None;
    }
    Some(Zeroizing::new(body.to_vec()))
}

/// Runs detection over an account's opened vouchers (all of one order) and, if T real shares are found,
/// reconstructs f, derives adkey and decrypts every real ad.
///
/// Vouchers whose share abscissa x repeats an earlier one are ignored (an honest client never produces them) and
/// reported as rejected if the account is revealed. With more than s synthetic vouchers (a client that ignores the
/// cap), detection can report a dependency that includes synthetics; reconstruction then fails cleanly with
/// [`InvalidInput::Reconstruction`](crate::InvalidInput::Reconstruction) and nothing is decrypted.
pub fn try_reveal(
    order_id: &[u8; 16],
    threshold: u16,
    synthetic_cap: u16,
    opened: &[OpenedVoucher],
) -> Result<ThresholdOutcome> {
    let t = threshold as usize;
    let mut seen = HashSet::new();
    let mut distinct: Vec<&OpenedVoucher> = Vec::with_capacity(opened.len());
    let mut duplicates = Vec::new();
    for v in opened {
        if v.r.len() != synthetic_cap as usize {
            return Err(Error::Invalid(InvalidInput::Parameter {
                what: "opened voucher has the wrong number of detectable-hash values",
            }));
        }
        if seen.insert(v.share.x.to_bytes()) {
            distinct.push(v);
        } else {
            duplicates.push(v.id);
        }
    }
    if distinct.len() < t {
        return Ok(ThresholdOutcome::Below { distinct: distinct.len() });
    }
    let columns: Vec<Column> = distinct.iter().map(|v| Column { x: v.x_prime, r: v.r.clone() }).collect();
    let (real_idx, synthetic_idx) = match detect(&columns, t, synthetic_cap as usize)? {
        Detection::BelowThreshold => return Ok(ThresholdOutcome::Below { distinct: distinct.len() }),
        Detection::Found { real, synthetic } => (real, synthetic),
    };
    if real_idx.len() < t {
        return Err(Error::Invalid(InvalidInput::Reconstruction { reason: "dependency found without T real shares" }));
    }
    let pick = |i: usize| {
        distinct.get(i).copied().ok_or(Error::internal("detect returns column indices below the column count"))
    };
    let shares: Vec<Share> = real_idx.iter().map(|&i| pick(i).map(|v| v.share.clone())).collect::<Result<_>>()?;
    let poly = vouchsafe_threshold::shamir::interpolate(&shares, t)?;
    let adkey = adkey(poly.secret(), order_id);
    let account = RevealedAccount { order_id: *order_id, poly, adkey };
    let mut real = Vec::new();
    let mut rejected = duplicates;
    for &i in &real_idx {
        let v = pick(i)?;
        match account.classify(v) {
            Classified::Real(item) => real.push(item),
            Classified::Synthetic | Classified::Rejected => rejected.push(v.id),
        }
    }
    if real.len() < t {
        return Err(Error::Invalid(InvalidInput::Reconstruction {
            reason: "fewer than T shares verified under the reconstructed polynomial",
        }));
    }
    let synthetic = synthetic_idx.iter().map(|&i| pick(i).map(|v| v.id)).collect::<Result<_>>()?;
    Ok(ThresholdOutcome::Revealed(Revealed { account, real, synthetic, rejected }))
}
