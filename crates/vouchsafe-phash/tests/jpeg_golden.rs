//! The JPEG decoder must give the same pixels on every platform, or a device and the Centre would hash the same
//! file to different bits.
//!
//! Two fixtures made by libjpeg-turbo's `cjpeg` 2.1.5 (a standard encoder, not ours) from a 96 × 64 pattern:
//! `golden-420.jpg` (baseline, q80, 4:2:0) and `golden-422-progressive.jpg` (progressive, q85, 4:2:2), so that
//! chroma upsampling, both entropy decoders and the colour conversion all run.
//!
//! The SHA-256 of the RGB pixels [`vouchsafe_phash::decode_image`] gives, and the V1 and V2 primary hashes, are pinned. A
//! platform or a decoder upgrade that changes one pixel fails here.
//!
//! The decoder (zune-jpeg, through the image crate) picks AVX2, SSE or NEON code at run time, and its options offer
//! no way to force the portable code from outside. So `.ci/run` also runs this very test binary under
//! `qemu-x86_64 -cpu Westmere` (no AVX2) and `-cpu qemu64` (no SSE4.1): the same golden values must come out.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use sha2::{Digest, Sha256};
use vouchsafe_phash::{HashConfig, decode_image, hash_image};

const FIXTURES: &[(&str, &[u8], &str, &str, &str)] = &[
    ("golden-420.jpg", include_bytes!("data/golden-420.jpg"), GOLDEN_420_PIXELS, GOLDEN_420_HASH, GOLDEN_420_V2),
    (
        "golden-422-progressive.jpg",
        include_bytes!("data/golden-422-progressive.jpg"),
        GOLDEN_422P_PIXELS,
        GOLDEN_422P_HASH,
        GOLDEN_422P_V2,
    ),
];

const GOLDEN_420_PIXELS: &str = "5da8199528fa96d55c24e42e42514c5c11c3b723faf4d5c4072fc593f14c3c11";
const GOLDEN_420_HASH: &str = "0101001bc86d308da5acb7";
const GOLDEN_422P_PIXELS: &str = "0cffda91ab56072f61b810e9d45a972a30482731fd07522e32660c7392f5f739";
const GOLDEN_422P_HASH: &str = "0101001b486d308df5acb5";
const GOLDEN_420_V2: &str = "0102001bc86d30adb5aca5";
const GOLDEN_422P_V2: &str = "0102001bc86d308db5acb5";

#[test]
fn jpeg_pixels_and_hashes_are_the_golden_ones() {
    for (name, bytes, pixels, hash, v2) in FIXTURES {
        let img = decode_image(bytes).unwrap();
        assert_eq!((img.width(), img.height()), (96, 64), "{name}");
        let rgb = img.to_rgb8();
        let got_pixels = hex::encode(Sha256::digest(rgb.as_raw()));
        let h = hash_image(&HashConfig::V1, &img).unwrap();
        let got_hash = hex::encode(h.primary.to_canonical_bytes());
        println!("{name}: pixels {got_pixels} hash {got_hash}");
        assert_eq!(got_pixels, *pixels, "{name}: decoded pixels changed");
        assert_eq!(got_hash, *hash, "{name}: V1 primary hash changed");
        let h2 = hash_image(&HashConfig::V2, &img).unwrap();
        let got_v2 = hex::encode(h2.primary.to_canonical_bytes());
        assert_eq!(got_v2, *v2, "{name}: V2 primary hash changed");
    }
}
