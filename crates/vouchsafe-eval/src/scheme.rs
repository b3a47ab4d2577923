//! A hash configuration as the evaluation sees it.
//!
//! The PSI matches the primary hash exactly, so a configuration is judged by its primary hash: an edited image is
//! detected if one of the device's probe hashes equals one of the Centre's variant hashes of the original. V1 has
//! one probe and one variant (the hash itself).

use image::{DynamicImage, RgbImage};
use serde::Serialize;
use vouchsafe_phash::{HashConfig, QualityVerdict, hash_image, quality_gate};

use crate::EvalError;

/// One hashed image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hashed {
    /// The quality gate's rejection reason, if it rejected the image (the device sends a null voucher).
    pub rejected: Option<String>,
    /// The primary hash bytes (the raw bits, not the canonical encoding): what the Centre releases for an indicator.
    pub primary: Vec<u8>,
    /// The hashes the device probes for this image (the primary first). An edit is detected if one of them equals the
    /// original's primary.
    pub probes: Vec<Vec<u8>>,
}

impl Hashed {
    /// The smallest distance from one of this image's probes to `indicator`.
    pub fn probe_distance(&self, indicator: &[u8]) -> u32 {
        self.probes.iter().map(|p| distance(p, indicator)).min().unwrap_or(u32::MAX)
    }
}

/// What a configuration costs, for the report.
#[derive(Clone, Debug, Serialize)]
pub struct SchemeInfo {
    /// Name (the CLI's `--config` value).
    pub name: String,
    /// What it is.
    pub description: String,
    /// Primary hash bits.
    pub bits: u32,
    /// Hashes the device probes per image (each costs the server one opening attempt).
    pub probes: u32,
    /// Hashes the Centre releases per indicator (each is one table entry).
    pub variants: u32,
}

/// A hash configuration under evaluation.
pub trait Scheme: Sync {
    /// Name, bits, probes and variants.
    fn info(&self) -> SchemeInfo;
    /// Hashes one image (gate verdict and primary hash).
    fn hash(&self, img: &RgbImage) -> Result<Hashed, EvalError>;
}

/// A shipped [`HashConfig`], exactly as the device and the Centre compute it.
#[derive(Clone, Copy, Debug)]
pub struct Shipped(pub HashConfig);

impl Scheme for Shipped {
    fn info(&self) -> SchemeInfo {
        let p = self.0.primary();
        SchemeInfo {
            name: format!("v{}", self.0.id()),
            description: format!(
                "hash configuration {}: {:?} {}x{} {:?}, {} bits; quality gate as shipped",
                self.0.id(),
                p.algorithm(),
                p.width(),
                p.height(),
                p.preprocessing(),
                p.bits()
            ),
            bits: p.bits(),
            probes: 1,
            variants: 1,
        }
    }

    fn hash(&self, img: &RgbImage) -> Result<Hashed, EvalError> {
        let h =
            hash_image(&self.0, &DynamicImage::ImageRgb8(img.clone())).map_err(|e| EvalError::Hash(e.to_string()))?;
        let rejected = match quality_gate(&self.0, &h) {
            QualityVerdict::Accept => None,
            QualityVerdict::Reject(r) => Some(format!("{r:?}").split([' ', '{']).next().unwrap_or("Reject").to_owned()),
            _ => Some("Reject".to_owned()),
        };
        let primary = h.primary.as_bytes().to_vec();
        Ok(Hashed { rejected, probes: vec![primary.clone()], primary })
    }
}

/// V1 with device-side probes (an evaluation candidate, not a shipped configuration): besides its V1 hash, the device
/// probes every hash obtained by flipping a subset of the `k` least stable bits, those whose DCT coefficient lies
/// nearest the median: `2^k` probes per image, all inside one voucher.
///
/// The coefficients are recomputed here in `f64` (luminance, Triangle resize to 16 × 16, unnormalised 2-D DCT-II,
/// low 8 × 8 corner, row-major: the bit order of `image_hasher`'s pHash). They only rank the bits; the bits
/// themselves are V1's, from the shipped code.
#[derive(Clone, Copy, Debug)]
pub struct Probed {
    /// Bits flipped.
    pub k: u32,
}

/// The 64 low-frequency DCT-II coefficients of V1's primary hash, row-major (see [`Probed`]).
pub fn v1_coefficients(img: &RgbImage) -> Result<Vec<f64>, EvalError> {
    let gray = vouchsafe_phash::luminance(&DynamicImage::ImageRgb8(img.clone()))
        .map_err(|e| EvalError::Hash(e.to_string()))?;
    let small = image::imageops::resize(&gray, 16, 16, image::imageops::FilterType::Triangle);
    let x: Vec<f64> = small.as_raw().iter().map(|&v| f64::from(v)).collect();
    let n = 16usize;
    let cos: Vec<f64> = (0..n * n)
        .map(|i| {
            let (k, m) = (i / n, i % n);
            (std::f64::consts::PI / n as f64 * (m as f64 + 0.5) * k as f64).cos()
        })
        .collect();
    let c = |k: usize, m: usize| cos.get(k * n + m).copied().unwrap_or(0.0);
    let px = |yy: usize, xx: usize| x.get(yy * n + xx).copied().unwrap_or(0.0);
    let mut out = Vec::with_capacity(64);
    for v in 0..8 {
        for u in 0..8 {
            let mut s = 0.0;
            for yy in 0..n {
                let mut row = 0.0;
                for xx in 0..n {
                    row += px(yy, xx) * c(u, xx);
                }
                s += row * c(v, yy);
            }
            out.push(s);
        }
    }
    Ok(out)
}

impl Scheme for Probed {
    fn info(&self) -> SchemeInfo {
        SchemeInfo {
            name: format!("v1-probe{}", self.k),
            description: format!(
                "V1 plus device-side probes: every flip of the {} least stable bits (coefficients nearest the median);                  evaluation candidate",
                self.k
            ),
            bits: 64,
            probes: 1 << self.k.min(16),
            variants: 1,
        }
    }

    fn hash(&self, img: &RgbImage) -> Result<Hashed, EvalError> {
        let mut h = Shipped(HashConfig::V1).hash(img)?;
        let coef = v1_coefficients(img)?;
        let mut sorted = coef.clone();
        sorted.sort_by(f64::total_cmp);
        let median = match (sorted.get(31), sorted.get(32)) {
            (Some(a), Some(b)) => (a + b) / 2.0,
            _ => 0.0,
        };
        let mut order: Vec<usize> = (0..coef.len()).collect();
        order.sort_by(|&a, &b| {
            let da = (coef.get(a).copied().unwrap_or(0.0) - median).abs();
            let db = (coef.get(b).copied().unwrap_or(0.0) - median).abs();
            da.total_cmp(&db).then(a.cmp(&b))
        });
        let flip: Vec<usize> = order.into_iter().take(self.k.min(16) as usize).collect();
        let mut probes = Vec::with_capacity(1 << flip.len());
        for mask in 0u32..(1u32 << flip.len()) {
            let mut p = h.primary.clone();
            for (j, &bit) in flip.iter().enumerate() {
                if mask & (1 << j) != 0
                    && let Some(b) = p.get_mut(bit / 8)
                {
                    *b ^= 1 << (bit % 8);
                }
            }
            probes.push(p);
        }
        h.probes = probes;
        Ok(h)
    }
}

/// The configurations `--config` accepts.
pub fn by_name(name: &str) -> Result<Box<dyn Scheme>, EvalError> {
    let known: Vec<String> = HashConfig::ALL.iter().map(|c| format!("v{}", c.id())).collect();
    for c in HashConfig::ALL {
        if name.eq_ignore_ascii_case(&format!("v{}", c.id())) {
            return Ok(Box::new(Shipped(*c)));
        }
    }
    if let Some(k) = name.to_ascii_lowercase().strip_prefix("v1-probe").and_then(|k| k.parse::<u32>().ok())
        && (1..=12).contains(&k)
    {
        return Ok(Box::new(Probed { k }));
    }
    Err(EvalError::UnknownScheme(name.to_owned(), format!("{}, v1-probe1 … v1-probe12", known.join(", "))))
}

/// Hamming distance of two hashes of one configuration.
pub fn distance(a: &[u8], b: &[u8]) -> u32 {
    a.iter().zip(b).map(|(x, y)| (x ^ y).count_ones()).sum()
}
