//! Decoders never panic on arbitrary bytes, and encode ∘ decode is the identity on every value they accept.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // test code: a failure is the test failing

mod common;
use common::*;
use proptest::prelude::*;
use vouchsafe_release::{CentreDb, IndicatorEntry, Release, ReleaseParts, SignedRelease, SourceId};

fn arb_source() -> impl Strategy<Value = SourceId> {
    "[a-z0-9][a-z0-9._-]{0,31}".prop_map(|s| SourceId::new(&s).unwrap())
}

fn arb_entry(min: usize) -> impl Strategy<Value = IndicatorEntry> {
    (
        prop::collection::vec(any::<u8>(), 1..=48),
        prop::collection::vec(any::<u8>(), 1..=48),
        prop::collection::btree_set(arb_source(), min..=min + 3),
    )
        .prop_map(|(primary, secondary, sources)| IndicatorEntry {
            primary,
            secondary,
            sources: sources.into_iter().collect(),
        })
}

prop_compose! {
    fn arb_release()(
        line in "[a-z0-9][a-z0-9._-]{0,63}",
        number in 1u64..=u64::MAX,
        parent in any::<[u8; 32]>(),
        hash_config in any::<u16>(),
        created_at in any::<i64>(),
        additions in prop::collection::btree_map(prop::collection::vec(any::<u8>(), 1..=48), arb_entry(2), 0..6),
        removals in prop::collection::btree_set(prop::collection::vec(any::<u8>(), 49..=64), 0..4),
        extra in 0u64..1000,
    ) -> Release {
        let first = number == 1;
        let additions: Vec<_> = additions.into_iter().map(|(p, e)| IndicatorEntry { primary: p, ..e }).collect();
        let removals: Vec<_> = if first { vec![] } else { removals.into_iter().collect() };
        let total = additions.len() as u64 + if first { 0 } else { extra };
        Release::new(ReleaseParts {
            line,
            number,
            parent: (!first).then_some(parent),
            hash_config,
            min_sources: 2,
            created_at,
            additions,
            removals,
            total,
        })
        .unwrap()
    }
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(r) = Release::decode(&bytes) {
            prop_assert_eq!(r.encode(), bytes.clone());
        }
        if let Ok(s) = SignedRelease::decode(&bytes) {
            prop_assert_eq!(s.encode(), bytes.clone());
        }
        if let Ok(r) = vouchsafe_release::ReleaseRecord::decode(&bytes) {
            prop_assert_eq!(r.encode(), bytes.clone());
        }
        if let Ok(r) = vouchsafe_release::SignedReleaseRecord::decode(&bytes) {
            prop_assert_eq!(r.encode(), bytes.clone());
        }
        if let Ok(d) = CentreDb::decode(&bytes) {
            prop_assert_eq!(d.encode(), bytes);
        }
    }

    #[test]
    fn encode_decode_is_the_identity(release in arb_release(), seed in any::<u64>()) {
        let bytes = release.encode();
        let decoded = Release::decode(&bytes).unwrap();
        prop_assert_eq!(&decoded, &release);
        prop_assert_eq!(decoded.encode(), bytes);
        let signed = key(seed).sign(&release);
        let again = SignedRelease::decode(&signed.encode()).unwrap();
        prop_assert_eq!(&again, &signed);
        prop_assert!(again.verify(&key(seed).public()).is_ok());
        // Its public record round-trips and verifies too.
        let record = key(seed).sign_record(&again.verify(&key(seed).public()).unwrap()).unwrap();
        let back = vouchsafe_release::SignedReleaseRecord::decode(&record.encode()).unwrap();
        prop_assert_eq!(&back, &record);
        prop_assert!(back.verify(&key(seed).public()).is_ok());
    }

    /// Mutations of a valid encoding (a byte changed, truncated, extended) never panic; a decoded mutation is
    /// canonical.
    #[test]
    fn mutated_encodings_never_panic(release in arb_release(), at in any::<prop::sample::Index>(), b in any::<u8>(), cut in any::<prop::sample::Index>()) {
        let bytes = release.encode();
        let mut m = bytes.clone();
        let i = at.index(m.len());
        m[i] = b;
        if let Ok(r) = Release::decode(&m) {
            prop_assert_eq!(r.encode(), m);
        }
        let short = &bytes[..cut.index(bytes.len())];
        prop_assert!(Release::decode(short).is_err());
        let mut long = bytes.clone();
        long.push(b);
        prop_assert!(Release::decode(&long).is_err());
    }
}
