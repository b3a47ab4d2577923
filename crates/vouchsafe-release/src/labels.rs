//! Every domain-separation label, version byte and limit of the release formats, in one place.
//!
//! Each label names the protocol, its version and its purpose (`vouchsafe/v1/release/<purpose>`, the scheme of
//! every label in the project), so no two uses of SHA-256 or Ed25519 in this crate or elsewhere in vouchsafe share
//! an input space.

/// Version byte that starts the encoding of a [`crate::Release`].
pub const RELEASE_VERSION: u8 = 1;
/// Version byte that starts the storage encoding of a [`crate::CentreDb`].
pub const DB_VERSION: u8 = 1;
/// Version byte that starts the encoding of a [`crate::SignedRelease`].
pub const SIGNED_RELEASE_VERSION: u8 = 1;

/// Ed25519 signs `LABEL_SIGNATURE ‖ encode(Release)`.
pub const LABEL_SIGNATURE: &[u8] = b"vouchsafe/v1/release/sign";
/// The hash of a signed release (a successor's `parent`): `SHA-256(LABEL_RELEASE_HASH ‖ encode(SignedRelease))`.
pub const LABEL_RELEASE_HASH: &[u8] = b"vouchsafe/v1/release/hash";
/// A Centre key id: the first 16 bytes of `SHA-256(LABEL_KEY_ID ‖ public key)`.
pub const LABEL_KEY_ID: &[u8] = b"vouchsafe/v1/release/key-id";
/// Version of the [`crate::ReleaseRecord`] and [`crate::SignedReleaseRecord`] encodings.
pub const RECORD_VERSION: u8 = 1;
/// Domain-separation label of the Centre's signature over a release record.
pub const LABEL_RECORD_SIGNATURE: &[u8] = b"vouchsafe/v1/release/record/sign";

/// Smallest canonical hash (primary or secondary), in bytes.
pub const MIN_HASH_LEN: usize = 1;
/// Largest canonical hash (primary or secondary), in bytes (the protocol's largest indicator).
pub const MAX_HASH_LEN: usize = 1024;
/// Largest [`crate::SourceId`], in bytes.
pub const MAX_SOURCE_ID_LEN: usize = 32;
/// Largest release line name, in bytes.
pub const MAX_LINE_LEN: usize = 64;
/// Largest source reference of an [`crate::Attestation`], in bytes.
pub const MAX_REFERENCE_LEN: usize = 128;
/// The admission rule's default: an indicator needs this many distinct sources.
pub const DEFAULT_MIN_SOURCES: u8 = 2;
/// Length of a Centre key id.
pub const KEY_ID_LEN: usize = 16;
