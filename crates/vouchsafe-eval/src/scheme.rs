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
    /// The secondary hash bits (empty for a configuration without one): after the threshold the server compares the
    /// secondary hash recomputed from the voucher's derivative with the indicator's, and drops the match if they are
    /// more than [`SchemeInfo::secondary_max_distance`] apart.
    pub secondary: Vec<u8>,
}

impl Hashed {
    /// The smallest distance from one of this image's probes to `indicator`.
    pub fn probe_distance(&self, indicator: &[u8]) -> u32 {
        self.probes.iter().map(|p| distance(p, indicator)).min().unwrap_or(u32::MAX)
    }

    /// The smallest distance from one of this image's probes to one of an indicator's table entries (its
    /// [`Scheme::indicator`] hashes): 0 is a match.
    pub fn match_distance(&self, table: &[Vec<u8>]) -> u32 {
        table.iter().map(|t| self.probe_distance(t)).min().unwrap_or(u32::MAX)
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
    /// The post-threshold secondary check's largest accepted distance (`None`: no secondary hash).
    pub secondary_max_distance: Option<u32>,
    /// Hashes the Centre releases per indicator at most (each distinct one is one table entry); the report gives the
    /// mean it measured.
    pub variants: u32,
}

/// A hash configuration under evaluation.
pub trait Scheme: Sync {
    /// Name, bits, probes and variants.
    fn info(&self) -> SchemeInfo;
    /// Hashes one image (gate verdict and primary hash).
    fn hash(&self, img: &RgbImage) -> Result<Hashed, EvalError>;
    /// The distinct hashes the Centre releases for an indicator made from `img` (whose own hash is `own`, which the
    /// gate accepted): the primary first. Without Centre-side variants, the primary alone.
    fn indicator(&self, img: &RgbImage, own: &Hashed) -> Result<Vec<Vec<u8>>, EvalError> {
        let _ = img;
        Ok(vec![own.primary.clone()])
    }
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
            secondary_max_distance: Some(self.0.secondary_max_distance()),
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
        Ok(Hashed { rejected, probes: vec![primary.clone()], primary, secondary: h.secondary.as_bytes().to_vec() })
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
            secondary_max_distance: Some(HashConfig::V1.secondary_max_distance()),
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
        h.probes = flips(&h.primary, &flip);
        Ok(h)
    }
}

/// The exact-integer area pHash ([`vouchsafe_phash::area`]) under V1's quality gate: an evaluation candidate for
/// configuration 2 (`area-block` is what V2 ships). `block` takes V1's coefficient set (the 8 × 8 corner, DC included)
/// instead of the zigzag; `k > 0` adds device-side probes that keep the weight: every swap of `j` of the `k` set bits
/// nearest the median with `j` of the `k` clear bits nearest it (exact, from the integer coefficients).
#[derive(Clone, Copy, Debug)]
pub struct Area {
    /// V1's 8 × 8 block instead of the first 64 AC coefficients in zigzag order.
    pub block: bool,
    /// Bits probed.
    pub k: u32,
}

impl Area {
    fn order(&self) -> Vec<(usize, usize)> {
        if self.block {
            vouchsafe_phash::area::block8()
        } else {
            vouchsafe_phash::area::zigzag(vouchsafe_phash::area::AREA_BITS)
        }
    }
}

impl Scheme for Area {
    fn info(&self) -> SchemeInfo {
        let name = match (self.block, self.k) {
            (false, 0) => "area".to_owned(),
            (true, 0) => "area-block".to_owned(),
            (false, k) => format!("area-probe{k}"),
            (true, k) => format!("area-block-probe{k}"),
        };
        SchemeInfo {
            name,
            description: format!(
                "exact-integer area pHash: {0} x {0} area cells, integer DCT-II, {1} against their median; V1's \
                 quality gate{2}; evaluation candidate",
                vouchsafe_phash::area::AREA_CELLS,
                if self.block { "the 8 x 8 low-frequency block" } else { "the first 64 AC coefficients (zigzag)" },
                if self.k > 0 {
                    format!(
                        "; probes: every swap of j of the {0} least stable set bits with j of the {0} least stable clear bits",
                        self.k
                    )
                } else {
                    String::new()
                }
            ),
            bits: 64,
            probes: binomial(2 * self.k.min(8), self.k.min(8)),
            secondary_max_distance: Some(HashConfig::V1.secondary_max_distance()),
            variants: 1,
        }
    }

    fn hash(&self, img: &RgbImage) -> Result<Hashed, EvalError> {
        let v1 = Shipped(HashConfig::V1).hash(img)?;
        let gray = vouchsafe_phash::luminance(&DynamicImage::ImageRgb8(img.clone()))
            .map_err(|e| EvalError::Hash(e.to_string()))?;
        let coef =
            vouchsafe_phash::area::coefficients_at(&gray, &self.order()).map_err(|e| EvalError::Hash(e.to_string()))?;
        let primary = vouchsafe_phash::area::median_bits(&coef);
        let mid2 = vouchsafe_phash::area::median_sum(&coef);
        // The median rule sets exactly 32 bits, so a probe that changes the weight can never match: a probe swaps
        // j of the k least stable set bits with j of the k least stable clear bits, for every j (C(2k, k) probes).
        let margin = |i: usize| ((2 * coef.get(i).copied().unwrap_or(0) - mid2).abs(), i);
        let k = self.k.min(8) as usize;
        let (mut above, mut below): (Vec<usize>, Vec<usize>) = (0..coef.len()).partition(|&i| bit(&primary, i));
        above.sort_by_key(|&i| margin(i));
        below.sort_by_key(|&i| margin(i));
        above.truncate(k);
        below.truncate(k);
        let mut probes = Vec::new();
        for ma in 0u32..(1 << above.len()) {
            for mb in 0u32..(1 << below.len()) {
                if ma.count_ones() != mb.count_ones() {
                    continue;
                }
                probes.push(flipped(&primary, subset(&above, ma).chain(subset(&below, mb))));
            }
        }
        Ok(Hashed { rejected: v1.rejected, probes, primary, secondary: v1.secondary })
    }
}

/// `C(n, k)`.
fn binomial(n: u32, k: u32) -> u32 {
    (0..k).fold(1u64, |acc, i| acc * u64::from(n - i) / u64::from(i + 1)) as u32
}

/// Bit `i` of a hash (bit `i % 8` of byte `i / 8`).
fn bit(hash: &[u8], i: usize) -> bool {
    hash.get(i / 8).is_some_and(|b| b & (1 << (i % 8)) != 0)
}

/// `hash` with the bits `bits` flipped.
fn flipped(hash: &[u8], bits: impl IntoIterator<Item = usize>) -> Vec<u8> {
    let mut p = hash.to_vec();
    for i in bits {
        if let Some(b) = p.get_mut(i / 8) {
            *b ^= 1 << (i % 8);
        }
    }
    p
}

/// The elements `set[j]` with bit `j` of `mask` set.
fn subset(set: &[usize], mask: u32) -> impl Iterator<Item = usize> + '_ {
    set.iter().enumerate().filter(move |(j, _)| mask & (1 << j) != 0).map(|(_, &b)| b)
}

/// Every hash obtained by flipping a subset of the bits `flip` of `primary` (`primary` itself first).
fn flips(primary: &[u8], flip: &[usize]) -> Vec<Vec<u8>> {
    (0u32..(1u32 << flip.len())).map(|mask| flipped(primary, subset(flip, mask))).collect()
}

/// The configurations `--config` accepts: a base configuration, optionally followed by one or more `+var-<set>` for
/// Centre-side variants ([`crate::variants::VariantSet`]).
pub fn by_name(name: &str) -> Result<Box<dyn Scheme>, EvalError> {
    // `base+var-a+var-b` is (base+var-a)+var-b: the sets' entries add up.
    if let Some((base, set)) = name.rsplit_once('+') {
        let set = set
            .strip_prefix("var-")
            .and_then(crate::variants::VariantSet::by_name)
            .ok_or_else(|| EvalError::UnknownScheme(name.to_owned(), crate::variants::VariantSet::NAMES.to_owned()))?;
        return Ok(Box::new(crate::variants::Variants::new(by_name(base)?, set)));
    }
    let known: Vec<String> = HashConfig::ALL.iter().map(|c| format!("v{}", c.id())).collect();
    for c in HashConfig::ALL {
        if name.eq_ignore_ascii_case(&format!("v{}", c.id())) {
            return Ok(Box::new(Shipped(*c)));
        }
    }
    let lower = name.to_ascii_lowercase();
    if let Some(p) = crate::pdq::Pdq::by_name(&lower) {
        return Ok(Box::new(p));
    }
    for (prefix, block) in [("area-block", true), ("area", false)] {
        if let Some(rest) = lower.strip_prefix(prefix) {
            let k = match rest {
                "" => Some(0),
                r => r.strip_prefix("-probe").and_then(|k| k.parse::<u32>().ok()).filter(|k| (1..=12).contains(k)),
            };
            if let Some(k) = k {
                return Ok(Box::new(Area { block, k }));
            }
        }
    }
    if let Some(k) = name.to_ascii_lowercase().strip_prefix("v1-probe").and_then(|k| k.parse::<u32>().ok())
        && (1..=12).contains(&k)
    {
        return Ok(Box::new(Probed { k }));
    }
    Err(EvalError::UnknownScheme(
        name.to_owned(),
        format!(
            "{}, v1-probe1 … v1-probe12, area, area-probe1 … 12, area-block, area-block-probe1 … 12, pdq, pdq8 (each optionally -fixed, -g2); each optionally \
             followed by +var-pipelines, +var-generic, +var-dihedral or +var-flips",
            known.join(", ")
        ),
    ))
}

/// Hamming distance of two hashes of one configuration.
pub fn distance(a: &[u8], b: &[u8]) -> u32 {
    a.iter().zip(b).map(|(x, y)| (x ^ y).count_ones()).sum()
}
