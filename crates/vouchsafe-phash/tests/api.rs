//! Behaviour of the public API: configuration, canonical bytes (golden), derivative and
//! secondary hash, associated data (golden), quality gate, decoding limits.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // test code: a failure is the test failing

use std::io::Cursor;

use image::{DynamicImage, GrayImage, ImageFormat, Luma, RgbImage};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use sha2::{Digest, Sha256};
use vouchsafe_phash::fixtures::{benign_image, near_duplicate};
use vouchsafe_phash::*;

/// An image defined by integer arithmetic only (independent of the fixture generator).
fn integer_image() -> DynamicImage {
    let img = RgbImage::from_fn(200, 150, |x, y| {
        let r = ((x * 7 + y * 3) % 256) as u8;
        let g = (((x / 20) + (y / 15)) % 2 * 200 + 20) as u8;
        let b = ((x * x + y * y) / 64 % 256) as u8;
        image::Rgb([r, g, b])
    });
    DynamicImage::ImageRgb8(img)
}

fn fixture(seed: u64) -> DynamicImage {
    DynamicImage::ImageRgb8(benign_image(seed, 320, 240))
}

fn encode(img: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut buf = Cursor::new(Vec::new());
    img.write_to(&mut buf, format).unwrap();
    buf.into_inner()
}

#[test]
fn config_lookup() {
    assert_eq!(HashConfig::from_id(1).unwrap(), HashConfig::V1);
    assert_eq!(HashConfig::default(), HashConfig::V1);
    assert_eq!(HashConfig::from_id(0), Err(PhashError::UnknownConfig { id: 0 }));
    assert_eq!(HashConfig::from_id(2).unwrap(), HashConfig::V2);
    assert_eq!(HashConfig::from_id(3), Err(PhashError::UnknownConfig { id: 3 }));
    assert_eq!(HashConfig::RECOMMENDED, HashConfig::V2);
    // V2 changes the primary hash only.
    let v2 = HashConfig::V2;
    assert_eq!(v2.primary().bits(), 64);
    assert_eq!(v2.primary().algorithm(), vouchsafe_phash::Algorithm::AreaMedian);
    assert_eq!(v2.secondary(), HashConfig::V1.secondary());
    assert_eq!(v2.derivative_side(), HashConfig::V1.derivative_side());
    assert_eq!(v2.min_luma_variance(), HashConfig::V1.min_luma_variance());
    assert_eq!(v2.secondary_max_distance(), HashConfig::V1.secondary_max_distance());
    let v1 = HashConfig::V1;
    assert_eq!(v1.primary().bits(), 64);
    assert_eq!(v1.secondary().bits(), 256);
    assert_eq!(v1.derivative_len(), 64 * 64);
    assert_ne!(v1.primary().algorithm(), v1.secondary().algorithm());
}

#[test]
fn canonical_bytes_golden() {
    let cfg = HashConfig::V1;
    let a = hash_image(&cfg, &integer_image()).unwrap();
    let b = hash_image(&cfg, &fixture(7)).unwrap();
    // Golden values: a change here changes every indicator; it needs a new config id.
    assert_eq!(hex::encode(a.primary.to_canonical_bytes()), "010100b910bc472055ff55");
    assert_eq!(
        hex::encode(a.secondary.to_canonical_bytes()),
        "01010024dba0b7db24249b649bd92664d924d99b64b62c269b9b24db2664db4992d924"
    );
    assert_eq!(
        hex::encode(Sha256::digest(a.derivative.as_bytes())),
        "d7f3690e55692abc10b181f0c0e4060536fe1938f1d625d155fa342ecd7ef498"
    );
    assert_eq!(hex::encode(b.primary.to_canonical_bytes()), "010100415759a54acb76aa");
    assert_eq!(
        hex::encode(b.secondary.to_canonical_bytes()),
        "010100f8dff0dfc0cf00807f497f907e087812f87fe0f8c0f800f8f0ffe03f800f00cf"
    );
    assert_eq!(
        hex::encode(Sha256::digest(b.derivative.as_bytes())),
        "552e7dd81c792497025ca622bc6f92a20ceae7e8420de0f2a02b0217fb9a6009"
    );
}

#[test]
fn canonical_bytes_golden_v2() {
    let cfg = HashConfig::V2;
    let a = hash_image(&cfg, &integer_image()).unwrap();
    let b = hash_image(&cfg, &fixture(7)).unwrap();
    // Golden values (docs/HASHING.md §1): a change here changes every V2 indicator; it needs a new config id.
    assert_eq!(hex::encode(a.primary.to_canonical_bytes()), "010200b910bc472255ef55");
    assert_eq!(hex::encode(b.primary.to_canonical_bytes()), "010200415759a54acb76aa");
    // The secondary hash and the derivative are V1's.
    let a1 = hash_image(&HashConfig::V1, &integer_image()).unwrap();
    assert_eq!(a.secondary.as_bytes(), a1.secondary.as_bytes());
    assert_eq!(a.derivative.as_bytes(), a1.derivative.as_bytes());
}

#[test]
fn canonical_bytes_format_and_roundtrip() {
    let h = hash_image(&HashConfig::V1, &fixture(3)).unwrap();
    let c = h.primary.to_canonical_bytes();
    assert_eq!(c.len(), 3 + 8);
    assert_eq!(c[0], CANONICAL_VERSION);
    assert_eq!(&c[1..3], &1u16.to_le_bytes());
    assert_eq!(&c[3..], h.primary.as_bytes());
    let back = PerceptualHash::from_canonical_bytes(HashKind::Primary, &c).unwrap();
    assert_eq!(back, h.primary);
    // Wrong kind: the secondary is 32 bytes, so the length check rejects it.
    assert!(PerceptualHash::from_canonical_bytes(HashKind::Secondary, &c).is_err());
    let mut bad = c.clone();
    bad[0] = 2;
    assert_eq!(
        PerceptualHash::from_canonical_bytes(HashKind::Primary, &bad),
        Err(PhashError::UnsupportedVersion { version: 2 })
    );
    let mut bad = c.clone();
    bad[1] = 9;
    assert_eq!(PerceptualHash::from_canonical_bytes(HashKind::Primary, &bad), Err(PhashError::UnknownConfig { id: 9 }));
    let mut long = c.clone();
    long.push(0);
    assert!(PerceptualHash::from_canonical_bytes(HashKind::Primary, &long).is_err());
    assert!(PerceptualHash::from_canonical_bytes(HashKind::Primary, &c[..c.len() - 1]).is_err());
    assert!(PerceptualHash::from_canonical_bytes(HashKind::Primary, &[]).is_err());
    assert!(PerceptualHash::from_canonical_bytes(HashKind::Primary, &[1, 1]).is_err());
}

#[test]
fn hashing_is_deterministic_and_mixing_is_rejected() {
    let cfg = HashConfig::V1;
    let a = hash_image(&cfg, &fixture(11)).unwrap();
    let b = hash_image(&cfg, &fixture(11)).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.primary.hamming_distance(&b.primary), Ok(0));
    assert_eq!(a.primary.hamming_distance(&a.secondary), Err(PhashError::ConfigMismatch));
}

#[test]
fn secondary_is_recomputed_from_derivative() {
    let cfg = HashConfig::V1;
    for seed in 0..50 {
        let h = hash_image(&cfg, &fixture(seed)).unwrap();
        // What the server does: rebuild the derivative from (decrypted) bytes and rehash.
        let d = VisualDerivative::from_bytes(&cfg, h.derivative.as_bytes()).unwrap();
        let s = secondary_from_derivative(&cfg, &d).unwrap();
        assert_eq!(s, h.secondary, "seed {seed}");
        assert_eq!(s.to_canonical_bytes(), h.secondary.to_canonical_bytes());
    }
    assert!(VisualDerivative::from_bytes(&cfg, &[0u8; 100]).is_err());
}

#[test]
fn derivative_is_the_resized_luminance() {
    let cfg = HashConfig::V1;
    // A 64x64 gray image is its own derivative.
    let g = GrayImage::from_fn(64, 64, |x, y| Luma([((x * 4) ^ (y * 3)) as u8]));
    let h = hash_image(&cfg, &DynamicImage::ImageLuma8(g.clone())).unwrap();
    assert_eq!(h.derivative.as_bytes(), g.as_raw().as_slice());
    assert_eq!(h.derivative.to_gray_image().unwrap(), g);
    assert_eq!((h.source_width, h.source_height), (64, 64));
}

#[test]
fn luminance_is_integer_bt601_over_white() {
    let px = |r, g, b, a| {
        let img = image::RgbaImage::from_pixel(1, 1, image::Rgba([r, g, b, a]));
        luminance(&DynamicImage::ImageRgba8(img)).unwrap().get_pixel(0, 0).0[0]
    };
    assert_eq!(px(255, 255, 255, 255), 255);
    assert_eq!(px(0, 0, 0, 255), 0);
    assert_eq!(px(255, 0, 0, 255), 77);
    assert_eq!(px(0, 255, 0, 255), 149);
    assert_eq!(px(0, 0, 255, 255), 29);
    assert_eq!(px(0, 0, 0, 0), 255); // fully transparent is white
    assert_eq!(px(0, 0, 0, 128), 127);
}

fn ad_fixture() -> AssociatedData {
    let cfg = HashConfig::V1;
    let h = hash_image(&cfg, &integer_image()).unwrap();
    let mut aref = [0u8; 32];
    for (i, b) in aref.iter_mut().enumerate() {
        *b = i as u8;
    }
    AssociatedData::new(&cfg, &h, aref, 1_767_225_600).unwrap()
}

#[test]
fn associated_data_golden_and_roundtrip() {
    assert_eq!(AssociatedData::ENCODED_LEN, 4187);
    assert_eq!(encoded_len(&HashConfig::V1), AssociatedData::ENCODED_LEN);
    let ad = ad_fixture();
    let enc = ad.encode();
    assert_eq!(enc.len(), AssociatedData::ENCODED_LEN);
    // Header: version 1, config 1, 200x150, time, attachment ref 00..1f.
    assert_eq!(
        hex::encode(&enc[..51]),
        concat!(
            "01",
            "0100",
            "c8000000",
            "96000000",
            "00b9556900000000",
            "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
        )
    );
    assert_eq!(&enc[51..59], ad.primary().as_bytes());
    assert_eq!(&enc[59..91], ad.secondary().as_bytes());
    assert_eq!(&enc[91..], ad.derivative().as_bytes());
    assert_eq!(hex::encode(Sha256::digest(&enc)), "e6dfa951281e12898c234e264954fb989921f60b57a87c6008f770676ed887a8");
    let back = AssociatedData::decode(&enc).unwrap();
    assert_eq!(back, ad);
    assert_eq!(back.encode(), enc);
    assert_eq!((back.source_width(), back.source_height(), back.time()), (200, 150, 1_767_225_600));
    assert_eq!(back.secondary_distance(ad.secondary()), Ok(0));
    assert_eq!(back.secondary_confirms(ad.secondary()), Ok(true));
}

#[test]
fn associated_data_random_roundtrip() {
    let cfg = HashConfig::V1;
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    for seed in 0..10 {
        let h = hash_image(&cfg, &fixture(seed)).unwrap();
        let mut aref = [0u8; 32];
        rng.fill_bytes(&mut aref);
        let ad = AssociatedData::new(&cfg, &h, aref, rng.next_u64()).unwrap();
        assert_eq!(AssociatedData::decode(&ad.encode()).unwrap(), ad);
    }
}

#[test]
fn associated_data_rejects_malformed() {
    let enc = ad_fixture().encode();
    let mut v = enc.clone();
    v[0] = 0;
    assert_eq!(AssociatedData::decode(&v), Err(PhashError::UnsupportedVersion { version: 0 }));
    let mut v = enc.clone();
    v[1] = 7;
    assert_eq!(AssociatedData::decode(&v), Err(PhashError::UnknownConfig { id: 7 }));
    let mut v = enc.clone();
    v.push(0);
    assert_eq!(AssociatedData::decode(&v), Err(PhashError::InvalidLength { expected: 4187, found: 4188 }));
    for cut in [0, 1, 2, 3, 50, 91, enc.len() - 1] {
        assert!(AssociatedData::decode(&enc[..cut]).is_err(), "cut {cut}");
    }
}

#[test]
fn secondary_check_detects_tampering_and_collisions() {
    let cfg = HashConfig::V1;
    let ad = ad_fixture();
    // Tampered derivative: the stored secondary no longer matches.
    let mut enc = ad.encode();
    for b in &mut enc[91..91 + 2048] {
        *b = 255 - *b;
    }
    let tampered = AssociatedData::decode(&enc).unwrap();
    assert_eq!(tampered.secondary_distance(ad.secondary()), Err(PhashError::InconsistentSecondary));
    // A different image (as an adversarial primary collision would be) is far in secondary.
    let other = hash_image(&cfg, &fixture(99)).unwrap();
    let d = ad.secondary_distance(&other.secondary).unwrap();
    assert!(d > cfg.secondary_max_distance(), "distance {d}");
    assert_eq!(ad.secondary_confirms(&other.secondary), Ok(false));
    // A near duplicate passes.
    let base = benign_image(42, 320, 240);
    let h0 = hash_image(&cfg, &DynamicImage::ImageRgb8(base.clone())).unwrap();
    let h1 = hash_image(&cfg, &DynamicImage::ImageRgb8(near_duplicate(&base, 1))).unwrap();
    let ad1 = AssociatedData::new(&cfg, &h1, [0; 32], 0).unwrap();
    assert_eq!(ad1.secondary_confirms(&h0.secondary), Ok(true));
}

#[test]
fn quality_gate_reasons() {
    let cfg = HashConfig::V1;
    let ok = hash_image(&cfg, &fixture(1)).unwrap();
    assert_eq!(quality_gate(&cfg, &ok), QualityVerdict::Accept);
    assert!(quality_gate(&cfg, &ok).is_accept());

    let small = DynamicImage::ImageRgb8(benign_image(1, 31, 100));
    let h = hash_image(&cfg, &small).unwrap();
    assert_eq!(quality_gate(&cfg, &h), QualityVerdict::Reject(QualityReason::TooSmall { width: 31, height: 100 }));

    // Uniform gray with +-1 noise.
    let flat = GrayImage::from_fn(300, 200, |x, y| Luma([128 + ((x * 31 + y * 17) % 3) as u8]));
    let h = hash_image(&cfg, &DynamicImage::ImageLuma8(flat)).unwrap();
    assert_eq!(quality_gate(&cfg, &h), QualityVerdict::Reject(QualityReason::NearlyUniform));

    // Half black, half white passes the variance check.
    let halves = GrayImage::from_fn(300, 200, |x, _| Luma([if x < 150 { 0 } else { 255 }]));
    let h = hash_image(&cfg, &DynamicImage::ImageLuma8(halves)).unwrap();
    assert!(!h.derivative.luma_variance().is_nan());
    assert!(h.derivative.luma_variance() > 16_000.0);

    let zeros = PerceptualHash::from_raw(&cfg, HashKind::Primary, &[0; 8]).unwrap();
    let ones = PerceptualHash::from_raw(&cfg, HashKind::Primary, &[0xff; 8]).unwrap();
    let seven =
        PerceptualHash::from_raw(&cfg, HashKind::Primary, &[0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]).unwrap();
    let eight =
        PerceptualHash::from_raw(&cfg, HashKind::Primary, &[0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]).unwrap();
    assert!(is_degenerate(&cfg, &zeros));
    assert!(is_degenerate(&cfg, &ones));
    assert!(is_degenerate(&cfg, &seven));
    assert!(!is_degenerate(&cfg, &eight));
    assert!(!is_degenerate(&cfg, &ok.primary));
}

#[test]
fn hash_bytes_png_jpeg_and_file() {
    let cfg = HashConfig::V1;
    let img = fixture(21);
    let direct = hash_image(&cfg, &img).unwrap();
    let png = encode(&img, ImageFormat::Png);
    assert_eq!(hash_bytes(&cfg, &png).unwrap(), direct); // PNG is lossless
    let jpg = encode(&img, ImageFormat::Jpeg);
    let j = hash_bytes(&cfg, &jpg).unwrap();
    assert!(j.primary.hamming_distance(&direct.primary).unwrap() <= 8);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.png");
    std::fs::write(&path, &png).unwrap();
    assert_eq!(hash_file(&cfg, &path).unwrap(), direct);
    assert_eq!(hash_file(&cfg, dir.path().join("missing.png")), Err(PhashError::Io));
}

#[test]
fn hash_bytes_rejects_bad_input() {
    let cfg = HashConfig::V1;
    assert_eq!(hash_bytes(&cfg, b""), Err(PhashError::UnsupportedFormat));
    assert_eq!(hash_bytes(&cfg, b"GIF89a....."), Err(PhashError::UnsupportedFormat));
    assert_eq!(hash_bytes(&cfg, b"\x89PNG\r\n\x1a\nbroken"), Err(PhashError::Decode));
    let big = vec![0u8; MAX_ENCODED_LEN + 1];
    assert_eq!(
        hash_bytes(&cfg, &big),
        Err(PhashError::InputTooLarge { len: MAX_ENCODED_LEN + 1, limit: MAX_ENCODED_LEN })
    );
    // A PNG header announcing 10000x10000 pixels (100 Mpixel) is refused before decoding.
    let png = png_header_only(10_000, 10_000);
    assert_eq!(
        hash_bytes(&cfg, &png),
        Err(PhashError::ImageTooLarge { width: 10_000, height: 10_000, limit_pixels: MAX_PIXELS })
    );
    // Beyond MAX_SIDE the decoder's own limit refuses it.
    assert_eq!(hash_bytes(&cfg, &png_header_only(40_000, 10)), Err(PhashError::Decode));
    assert_eq!(hash_image(&cfg, &DynamicImage::new_rgb8(0, 5)), Err(PhashError::EmptyImage));
}

fn crc32(data: &[u8]) -> u32 {
    let mut c = 0xffff_ffffu32;
    for &b in data {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 == 1 { 0xedb8_8320 ^ (c >> 1) } else { c >> 1 };
        }
    }
    !c
}

fn png_header_only(w: u32, h: u32) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = b"IHDR".to_vec();
    chunk.extend_from_slice(&w.to_be_bytes());
    chunk.extend_from_slice(&h.to_be_bytes());
    chunk.extend_from_slice(&[8, 2, 0, 0, 0]);
    out.extend_from_slice(&13u32.to_be_bytes());
    out.extend_from_slice(&chunk);
    out.extend_from_slice(&crc32(&chunk).to_be_bytes());
    // An empty IDAT and IEND so the decoder gets past the header.
    for name in [&b"IDAT"[..], &b"IEND"[..]] {
        out.extend_from_slice(&0u32.to_be_bytes());
        out.extend_from_slice(name);
        out.extend_from_slice(&crc32(name).to_be_bytes());
    }
    out
}

#[test]
fn debug_is_redacted() {
    let h = hash_image(&HashConfig::V1, &fixture(2)).unwrap();
    let hex_primary = hex::encode(h.primary.as_bytes());
    let s = format!("{h:?} {:?}", ad_fixture());
    assert!(s.contains("redacted"));
    assert!(!s.contains(&hex_primary));
    assert!(!s.contains(&format!("{:?}", h.primary.as_bytes())));
}
