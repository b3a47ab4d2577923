//! Centre-side variants: the Centre, which holds the known image, also releases the hashes of standard
//! transformations of it, as further table entries of the same indicator (a match of any of them is one match of that
//! indicator). The device and the per-voucher cost do not change; the table grows by the number of *distinct*
//! hashes, and so does every image's chance of a false match (each entry is one more comparison).
//!
//! To keep the evaluation from matching an encoder against itself, the Centre renders its variants with a different
//! JPEG encoder (the `jpeg-encoder` crate, IJG quantisation tables, 4:2:0) and a different resampler (Catmull-Rom)
//! than the edits the device sees (the `image` crate's encoder and Lanczos3, [`crate::edits`]). Both decode with the
//! device's decoder. The renderings are the shipped ones ([`vouchsafe_phash::variants`], what `centre import
//! --images` releases).
//!
//! Three sets are measured:
//! - [`VariantSet::PIPELINES`]: the messenger pipelines the evaluation's edits model (full size q80, half size q75,
//!   1600 / 1280 / 800 px at q75 / q80 / q70): what a Centre can do when it knows the messengers' settings but not
//!   their code;
//! - [`VariantSet::GENERIC`]: sizes and qualities that none of the edits uses (full size q85, q65 and q45; 1024 px
//!   q75; 640 px q60; 40 % q70): what a Centre can do without knowing them;
//! - [`VariantSet::Dihedral`]: the seven other rotations by multiples of 90° and mirrors (exact pixel operations, so
//!   they match the `rotate-90` and `mirror` edits by construction; measured for their cost in false matches);
//! - [`VariantSet::Flips`]: *Centre-side probes*. The base configuration's device-side probes (the hashes with its
//!   least stable bits flipped) are computed by the Centre on the original instead, and released as table entries;
//!   the device sends its primary hash alone. An edit flips the bits whose coefficients lie nearest the median, and
//!   those are (mostly) the same in the original and in the copy, so this buys most of what device-side probes buy,
//!   without a voucher that carries several hashes and without any cost per voucher on the server.
//!
//! Tone changes, shifts and crops are *not* offered as variants here: the Centre would apply the same deterministic
//! pixel operation as the evaluation's edit, so a match would only show that the operation is deterministic.

use image::{RgbImage, imageops};

use crate::EvalError;
use crate::scheme::{Hashed, Scheme, SchemeInfo};

/// A set of Centre-side variants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VariantSet {
    /// A set `centre import --images` ships ([`vouchsafe_phash::variants::VariantSet`], not `None`): the messenger
    /// pipelines of the edits, or sizes and qualities none of the edits uses, rendered by the Centre's own encoder
    /// and resampler.
    Rendered(vouchsafe_phash::variants::VariantSet),
    /// The seven other elements of the dihedral group (rotations by 90°, 180°, 270°, mirrors).
    Dihedral,
    /// The base configuration's probes, computed on the original by the Centre; the device sends one hash.
    Flips,
}

impl VariantSet {
    /// The names `+var-<name>` accepts.
    pub const NAMES: &'static str = "+var-pipelines, +var-generic, +var-dihedral, +var-flips";
    /// The shipped default: the messenger pipelines.
    pub const PIPELINES: Self = Self::Rendered(vouchsafe_phash::variants::VariantSet::Pipelines);
    /// The shipped alternative: sizes and qualities chosen without knowing the messengers'.
    pub const GENERIC: Self = Self::Rendered(vouchsafe_phash::variants::VariantSet::Generic);

    /// Looks a set up by name (the shipped sets by their `--variants` names).
    pub fn by_name(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "dihedral" => Some(Self::Dihedral),
            "flips" => Some(Self::Flips),
            other => vouchsafe_phash::variants::VariantSet::by_name(other)
                .filter(|s| !s.renderings().is_empty())
                .map(Self::Rendered),
        }
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Rendered(s) => s.name(),
            Self::Dihedral => "dihedral",
            Self::Flips => "flips",
        }
    }

    /// Variants rendered per indicator, besides the original itself (none for [`Self::Flips`], whose entries come
    /// from the base configuration's probes).
    pub fn len(self) -> usize {
        match self {
            Self::Rendered(s) => s.renderings().len(),
            Self::Dihedral => 7,
            Self::Flips => 0,
        }
    }

    /// Whether the set renders nothing ([`Self::Flips`]).
    pub fn is_empty(self) -> bool {
        self.len() == 0
    }

    /// The Centre's renderings of `img`.
    pub fn render(self, img: &RgbImage) -> Result<Vec<RgbImage>, EvalError> {
        match self {
            // The code `centre import --images` runs.
            Self::Rendered(s) => s
                .renderings()
                .iter()
                .map(|r| {
                    vouchsafe_phash::variants::render(img, r)
                        .map_err(|e| EvalError::Edit(format!("centre variant: {e}")))
                })
                .collect(),
            Self::Dihedral => {
                let r90 = imageops::rotate90(img);
                let r180 = imageops::rotate180(img);
                let r270 = imageops::rotate270(img);
                Ok(vec![
                    imageops::flip_horizontal(img),
                    imageops::flip_horizontal(&r90),
                    imageops::flip_horizontal(&r180),
                    imageops::flip_horizontal(&r270),
                    r90,
                    r180,
                    r270,
                ])
            }
            Self::Flips => Ok(Vec::new()),
        }
    }
}

/// A configuration with Centre-side variants: the device side (gate, primary hash, probes) is `inner`'s; the Centre
/// also releases the distinct hashes of `set`'s renderings of each indicator that `inner`'s gate accepts.
pub struct Variants {
    inner: Box<dyn Scheme>,
    set: VariantSet,
}

impl Variants {
    /// `inner` with `set`.
    pub fn new(inner: Box<dyn Scheme>, set: VariantSet) -> Self {
        Self { inner, set }
    }
}

impl Scheme for Variants {
    fn info(&self) -> SchemeInfo {
        let i = self.inner.info();
        if self.set == VariantSet::Flips {
            return SchemeInfo {
                name: format!("{}+var-flips", i.name),
                description: format!(
                    "{}; its probes computed by the Centre on the original and released as table entries, the device \
                     sending its primary hash alone (Centre-side probes)",
                    i.description
                ),
                bits: i.bits,
                probes: 1,
                secondary_max_distance: i.secondary_max_distance,
                variants: i.probes.saturating_mul(i.variants),
            };
        }
        SchemeInfo {
            name: format!("{}+var-{}", i.name, self.set.name()),
            description: format!(
                "{}; with Centre-side variants ({}: {} renderings per indicator by a second JPEG encoder and resampler, \
                 distinct hashes released)",
                i.description,
                self.set.name(),
                self.set.len()
            ),
            bits: i.bits,
            probes: i.probes,
            secondary_max_distance: i.secondary_max_distance,
            variants: i.variants.saturating_mul(1 + self.set.len() as u32),
        }
    }

    fn hash(&self, img: &RgbImage) -> Result<Hashed, EvalError> {
        let mut h = self.inner.hash(img)?;
        if self.set == VariantSet::Flips {
            h.probes = vec![h.primary.clone()];
        }
        Ok(h)
    }

    fn indicator(&self, img: &RgbImage, own: &Hashed) -> Result<Vec<Vec<u8>>, EvalError> {
        if self.set == VariantSet::Flips {
            // The inner configuration's probes of the original (its primary first), each once.
            let mut table: Vec<Vec<u8>> = Vec::new();
            for p in self.inner.hash(img)?.probes {
                if !table.contains(&p) {
                    table.push(p);
                }
            }
            for t in self.inner.indicator(img, own)? {
                if !table.contains(&t) {
                    table.push(t);
                }
            }
            return Ok(table);
        }
        let mut table = self.inner.indicator(img, own)?;
        for v in self.set.render(img)? {
            let h = self.inner.hash(&v)?;
            // The Centre hashes with the device's code; a rendering the gate rejects is not released.
            if h.rejected.is_none() && !table.contains(&h.primary) {
                table.push(h.primary);
            }
        }
        Ok(table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheme::Shipped;
    use vouchsafe_phash::HashConfig;

    fn picture() -> RgbImage {
        vouchsafe_phash::fixtures::benign_image(3, 640, 480)
    }

    #[test]
    fn renderings_have_the_sizes_of_their_pipelines() {
        let img = picture();
        let p = VariantSet::PIPELINES.render(&img).unwrap();
        let sizes: Vec<_> = p.iter().map(|i| i.dimensions()).collect();
        // 640 px is under every bound: full, half, full, full, full (800 px bound).
        assert_eq!(sizes, vec![(640, 480), (320, 240), (640, 480), (640, 480), (640, 480)]);
        let g = VariantSet::GENERIC.render(&img).unwrap();
        assert_eq!(g.len(), VariantSet::GENERIC.len());
        assert_eq!(g.get(5).map(|i| i.dimensions()), Some((256, 192)));
        let d = VariantSet::Dihedral.render(&img).unwrap();
        assert_eq!(d.iter().filter(|i| i.dimensions() == (480, 640)).count(), 4);
        assert!(!d.contains(&img), "the identity is not a variant");
    }

    #[test]
    fn the_centres_encoder_is_not_the_devices() {
        // The same pipeline through the two encoders gives different pixels; otherwise the variants would test the
        // encoder against itself.
        let img = picture();
        let centre = vouchsafe_phash::variants::render(&img, &vouchsafe_phash::variants::PIPELINES[0]).unwrap();
        let device =
            crate::edits::Edit::Pipeline { max_side: u32::MAX, percent: 100, quality: 80 }.apply(&img).unwrap();
        assert_eq!(centre.dimensions(), device.dimensions());
        assert_ne!(centre, device);
    }

    #[test]
    fn the_table_starts_with_the_primary_and_holds_distinct_hashes() {
        let img = picture();
        let s = Variants::new(Box::new(Shipped(HashConfig::V2)), VariantSet::Dihedral);
        let own = s.hash(&img).unwrap();
        assert!(own.rejected.is_none());
        let table = s.indicator(&img, &own).unwrap();
        assert_eq!(table.first(), Some(&own.primary));
        for (i, a) in table.iter().enumerate() {
            assert!(!table.iter().skip(i + 1).any(|b| b == a), "duplicate entry");
        }
        assert!(table.len() > 1 && table.len() <= 8, "{}", table.len());
        // A mirrored copy is matched through its variant, not through the primary.
        let mirrored = s.hash(&imageops::flip_horizontal(&img)).unwrap();
        assert_eq!(mirrored.match_distance(&table), 0);
        assert_ne!(mirrored.probe_distance(&own.primary), 0);
    }

    #[test]
    fn centre_side_flips_move_the_probes_into_the_table() {
        let img = picture();
        let base = crate::scheme::by_name("area-block-probe2").unwrap();
        let s = crate::scheme::by_name("area-block-probe2+var-flips").unwrap();
        assert_eq!(s.info().probes, 1);
        assert_eq!(s.info().variants, 6);
        let device = s.hash(&img).unwrap();
        assert_eq!(device.probes, vec![device.primary.clone()], "the device sends one hash");
        let table = s.indicator(&img, &device).unwrap();
        assert_eq!(table, base.hash(&img).unwrap().probes, "the Centre releases the base's probes");
        assert_eq!(table.first(), Some(&device.primary));
    }

    #[test]
    fn names_round_trip() {
        for set in [VariantSet::PIPELINES, VariantSet::GENERIC, VariantSet::Dihedral, VariantSet::Flips] {
            assert_eq!(VariantSet::by_name(set.name()), Some(set));
        }
        assert_eq!(VariantSet::by_name("nope"), None);
        assert_eq!(VariantSet::by_name("none"), None, "no variants is the base configuration, not a set");
        let s = crate::scheme::by_name("v2+var-generic").unwrap();
        assert_eq!(s.info().name, "v2+var-generic");
        assert_eq!(s.info().variants, 7);
        assert!(crate::scheme::by_name("v2+var-nope").is_err());
        assert!(crate::scheme::by_name("v9+var-generic").is_err());
        let both = crate::scheme::by_name("area-block-probe1+var-flips+var-pipelines").unwrap();
        assert_eq!(both.info().name, "area-block-probe1+var-flips+var-pipelines");
        assert_eq!(both.info().probes, 1);
        assert_eq!(both.info().variants, 12);
    }
}
