//! # vouchsafe-release
//!
//! The Centre's indicator releases, sans-IO (no files, no network, no clock, no global randomness: the caller
//! passes `now` and an explicit `CryptoRng`).
//!
//! * The Centre imports each independent source's list into a [`CentreDb`] ([`CentreDb::import`]): per primary
//!   hash, one [`IndicatorRecord`] with its secondary hash and every source's [`Attestation`].
//! * [`CentreDb::next_release`] plans the next [`Release`] of a *release line* under the **admission rule**, and
//!   [`CentreSigningKey::sign`] makes it a [`SignedRelease`].
//! * A provider decodes a [`SignedRelease`], verifies it with its pinned [`CentreKey`] ([`SignedRelease::verify`]
//!   → [`VerifiedRelease`]) and applies it to its [`ReleaseChain`], which yields the current indicator set with
//!   each indicator's secondary hash. The secondary hashes stay on the provider's server for the post-threshold
//!   check; nothing of a release reaches a device except the primaries, blinded into the table.
//!
//! Hashes are opaque here: canonical perceptual-hash bytes, 1..=1024 long, all of one release line computed under
//! one hash configuration (a `u16` id). Hashes and source references never appear in `Debug` output or error
//! messages. Comparisons of hashes are variable-time: they touch only the Centre's and the provider's own data.
//!
//! ## The admission rule
//!
//! An indicator enters a release only if at least `min_sources` **distinct** [`SourceId`]s attest it (default
//! [`labels::DEFAULT_MIN_SOURCES`] = 2; at least 1; recorded in every release) and it is not marked as a false
//! positive ([`CentreDb::mark_false_positive`]). One source attesting twice (under two references) counts once.
//! Source ids are lowercase-only (`a-z 0-9 . _ -`, starting with a letter or digit, 1..=32 bytes), so that one
//! source cannot appear as two by case. Every addition in a release lists its distinct sources (sorted; at most
//! 255), and decoding refuses an addition with fewer than the release's `min_sources`: a release shows that it
//! kept the rule. A release adds only indicators not in the line's set, and removes (false positives) only
//! indicators in it.
//!
//! ## Encoding of a [`Release`] (version 1)
//!
//! All integers are little-endian and fixed-width; `i64` is two's complement. Byte strings are compared as
//! unsigned bytes, lexicographically, a proper prefix sorting first (Rust's `<[u8]>::cmp`).
//!
//! | field | bytes | rule |
//! |---|---|---|
//! | version | 1 | `0x01` |
//! | line length `n` | 1 | 1..=64 |
//! | line | `n` | ASCII `a-z 0-9 . _ -`, the first a letter or digit |
//! | number | 8 (`u64`) | ≥ 1 |
//! | parent flag | 1 | `0x00` if number = 1, else `0x01` |
//! | parent | 32 if the flag is `0x01` | hash of the previous signed release of the line (below) |
//! | hash_config | 2 (`u16`) | |
//! | min_sources | 1 (`u8`) | ≥ 1 |
//! | created_at | 8 (`i64`) | seconds since the Unix epoch |
//! | addition count `a` | 4 (`u32`) | |
//! | `a` additions | | strictly ascending by primary hash (so unique) |
//! | removal count `r` | 4 (`u32`) | |
//! | `r` removals | | strictly ascending (so unique); none equal to an addition's primary |
//! | total | 8 (`u64`) | ≥ `a`; the size of the line's set after applying the release |
//!
//! An addition is: primary length `p` (`u16`, 1..=1024), the primary hash (`p` bytes), secondary length `s`
//! (`u16`, 1..=1024), the secondary hash (`s` bytes), source count `k` (`u8`, ≥ min_sources), and `k` sources,
//! strictly ascending (so distinct), each a length `m` (`u8`, 1..=32) and `m` bytes of a source id (same
//! alphabet as the line). A removal is a length `p` (`u16`, 1..=1024) and the primary hash.
//!
//! Release number 1 has no removals and its total equals `a`. Decoders refuse anything else: another version,
//! a value out of range, an unsorted or repeated list, a truncated encoding, trailing bytes. So a release has
//! exactly one encoding.
//!
//! ## Encoding of a [`SignedRelease`] (version 1)
//!
//! | field | bytes |
//! |---|---|
//! | version | 1: `0x01` |
//! | key id | 16: the signer's [`CentreKey::key_id`] |
//! | release length `L` | 4 (`u32`) |
//! | release | `L`: the canonical encoding of the [`Release`] above |
//! | signature | 64: Ed25519 (RFC 8032, pure, no context) |
//!
//! No trailing bytes. The signature input is `"vouchsafe/v1/release/sign" ‖ release` ([`labels::LABEL_SIGNATURE`]
//! followed by the `L` release bytes, no length prefix). Verification is strict (`verify_strict`: canonical `S`,
//! no small-order `R` or key) and requires the key id to be that of the verifying key.
//!
//! * Key id: the first 16 bytes of `SHA-256("vouchsafe/v1/release/key-id" ‖ the 32-byte Ed25519 public key)`
//!   ([`labels::LABEL_KEY_ID`]).
//! * Release hash (a successor's `parent`): `SHA-256("vouchsafe/v1/release/hash" ‖ the whole signed
//!   release encoding)` ([`labels::LABEL_RELEASE_HASH`]).
//! * The signing key is the RFC 8032 32-byte secret seed ([`CentreSigningKey::from_bytes`]).
//!
//! ## Storage
//!
//! [`CentreDb::encode`] / [`CentreDb::decode`] are the database's own versioned encoding (specified on
//! [`CentreDb::encode`]); it holds source references and never leaves the Centre.
//!
//! ## Chaining
//!
//! [`ReleaseChain`] applies the releases of one line in order: release 1 first; then each release must have the
//! same line and hash configuration, number = previous + 1, parent = hash of the previous signed release,
//! `created_at` not below the previous one, removals only of indicators in the set, additions only of indicators
//! not in it, and `total` equal to the set's size afterwards.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod chain;
mod db;
mod error;
mod ids;
pub mod labels;
mod record;
mod release;
mod signed;
mod wire;

pub use chain::{Indicator, ReleaseChain};
pub use db::{CentreDb, ImportEntry, ImportReport, IndicatorRecord, NextRelease, ReleaseReport};
pub use error::{Error, Result};
pub use ids::{Attestation, SourceId};
pub use record::{ReleaseRecord, SignedReleaseRecord};
pub use release::{IndicatorEntry, Release, ReleaseParts};
pub use signed::{CentreKey, CentreSigningKey, KeyId, SignedRelease, VerifiedRelease};
