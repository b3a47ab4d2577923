//! No input makes the decoders panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // test code: a failure is the test failing

use std::io::Cursor;

use image::{DynamicImage, ImageFormat};
use proptest::prelude::*;
use vouchsafe_phash::fixtures::benign_image;
use vouchsafe_phash::{AssociatedData, HashConfig, HashKind, PerceptualHash, hash_bytes};

fn valid(format: ImageFormat) -> Vec<u8> {
    let mut buf = Cursor::new(Vec::new());
    DynamicImage::ImageRgb8(benign_image(3, 48, 40)).write_to(&mut buf, format).unwrap();
    buf.into_inner()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn hash_bytes_random(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = hash_bytes(&HashConfig::V1, &bytes);
    }

    #[test]
    fn hash_bytes_png_prefixed(tail in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
        bytes.extend_from_slice(&tail);
        let _ = hash_bytes(&HashConfig::V1, &bytes);
        let mut bytes = vec![0xff, 0xd8, 0xff];
        bytes.extend_from_slice(&tail);
        let _ = hash_bytes(&HashConfig::V1, &bytes);
    }

    #[test]
    fn hash_bytes_mutated(png in any::<bool>(), flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..16), cut in any::<prop::sample::Index>()) {
        let mut bytes = valid(if png { ImageFormat::Png } else { ImageFormat::Jpeg });
        for (i, v) in flips {
            let i = i.index(bytes.len());
            bytes[i] ^= v;
        }
        let keep = cut.index(bytes.len() + 1);
        bytes.truncate(keep.max(bytes.len() / 2));
        let _ = hash_bytes(&HashConfig::V1, &bytes);
    }

    #[test]
    fn ad_decode_random(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = AssociatedData::decode(&bytes);
        let _ = PerceptualHash::from_canonical_bytes(HashKind::Primary, &bytes);
        let _ = PerceptualHash::from_canonical_bytes(HashKind::Secondary, &bytes);
    }

    #[test]
    fn ad_decode_right_length(mut bytes in proptest::collection::vec(any::<u8>(), AssociatedData::ENCODED_LEN..=AssociatedData::ENCODED_LEN + 1), version_ok in any::<bool>()) {
        if version_ok {
            bytes[0] = 1;
            bytes[1] = 1;
            bytes[2] = 0;
        }
        let r = AssociatedData::decode(&bytes);
        if version_ok && bytes.len() == AssociatedData::ENCODED_LEN {
            let ad = r.unwrap();
            prop_assert_eq!(ad.encode(), bytes);
            // The server-side check never panics on attacker-chosen associated data.
            let _ = ad.secondary_distance(ad.secondary());
        } else {
            prop_assert!(r.is_err());
        }
    }
}
