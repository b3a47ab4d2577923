//! # vouchsafe-orders
//!
//! The detection order under which alone vouchsafe may scan, and its revocation: one type ([`DetectionOrder`]),
//! one canonical encoding, one validity function ([`VerifiedOrder::check_active`]) shared by client and server.
//!
//! The flow: the authority fills in [`OrderTerms`], [`DetectionOrder::new`] checks and canonicalises them,
//! [`AuthoritySigningKey::sign_order`] makes a [`SignedOrder`]; a client or server decodes it and verifies it with
//! its pinned [`AuthorityKeyring`], getting a [`VerifiedOrder`] (the only way to get one), and before every use
//! asks [`VerifiedOrder::check_active`] with the current time and the [`VerifiedRevocation`]s it knows, and
//! [`VerifiedOrder::covers`] / [`VerifiedOrder::excludes`] for the conversation and account at hand.
//!
//! Sans-IO: no files, no clock, no global randomness (the time is an argument; key generation takes the caller's
//! `CryptoRng`). Nothing that decodes input panics.
//!
//! ## Encodings (version 1)
//!
//! Integers are fixed width, little-endian; `i64` is two's complement. `str8(x)` is `u8 len ‖ len bytes`. Every
//! decoder refuses a version other than `0x01`, an unknown tag, a value out of range, a list that is not strictly
//! ascending (unsorted or with a duplicate), invalid text or keys, truncation and trailing bytes; so decoding then
//! encoding gives back the same bytes.
//!
//! ### Detection order
//!
//! | bytes | field | rule |
//! |---|---|---|
//! | 1 | version | `0x01` |
//! | 16 | order id | any |
//! | 1 + n | service id, `str8` | n in 1..=255, UTF-8, no control characters (Unicode `Cc`) |
//! | 1 | scope tag | `0x00` whole service, `0x01` components, `0x02` groups; nothing follows `0x00` |
//! | 2 + … | (tags 1, 2) u16 count c, then c × `str8` id | c in 1..=1024; each id 1..=64 bytes of visible ASCII (`0x21..=0x7E`); strictly ascending bytewise |
//! | 1 | material kind | `0x01` known imagery; no other value exists in v1 |
//! | 8 | not_before, i64 | Unix seconds, inclusive |
//! | 8 | not_after, i64 | Unix seconds, exclusive; `0 < not_after − not_before ≤ 63 158 400` ([`labels::MAX_ORDER_SECONDS`], 731 days), computed without overflow |
//! | 2 | threshold T, u16 | 2..=1000 |
//! | 4 | synthetic rate p, u32 | a voucher is synthetic with probability p / 2³² |
//! | 2 | synthetic cap s, u16 | 0..=1024; s > 0 if p > 0 |
//! | 2 | hash configuration id, u16 | any |
//! | 32 | Centre Ed25519 public key | canonical point encoding, not of small order |
//! | 1 + n | Centre release line, `str8` | n in 1..=64, visible ASCII |
//! | 32 | provider table-signing Ed25519 public key | as the Centre key |
//! | 1 + … | u8 count e, then e × `str8` excluded account class | e in 0..=64; each 1..=32 bytes of visible ASCII; strictly ascending bytewise |
//! | 16 | authority key id | see below |
//!
//! ### Revocation (42 bytes)
//!
//! `0x01 ‖ order id (16) ‖ revoked_at (i64, Unix seconds) ‖ reason (u8: 1 unspecified, 2 superseded, 3 issued in
//! error, 4 annulled, 5 key compromise; others refused) ‖ authority key id (16)`.
//!
//! ### Signed forms
//!
//! * signed order: `0x01 ‖ signature (64) ‖ order encoding` (the order runs to the end of the input);
//! * signed revocation (107 bytes): `0x01 ‖ signature (64) ‖ revocation encoding`.
//!
//! The signature is Ed25519 (RFC 8032, pure, no context) by the authority key over
//! `"vouchsafe/v1/order/sign" ‖ order encoding`, respectively `"vouchsafe/v1/order/revocation/sign" ‖ revocation
//! encoding` (the labels' ASCII bytes, no length, no terminator; [`labels`]). Verification is strict
//! (`verify_strict`: canonical `s`, neither `R` nor the key of small order), under the pinned key whose key id the
//! order (revocation) names; an unknown key id is refused before any signature check.
//!
//! ### Key id and keyring
//!
//! Authority key id = the first 16 bytes of `SHA-256("vouchsafe/v1/order/authority-key-id" ‖ 32-byte public key)`.
//! A keyring is `0x01 ‖ u8 n (1..=16) ‖ n × 32-byte public key`, in strictly ascending key id order.
//!
//! ## Validity
//!
//! An order is active at `now` iff no verified revocation names its order id and its authority key id (a
//! revocation applies at once, whatever its `revoked_at`: a device's slow clock must not delay it), and
//! `not_before ≤ now < not_after`. Scope: a whole-service order covers every conversation; a component (group)
//! order covers a conversation only if its component (group) id is listed, byte for byte.
#![forbid(unsafe_code)]

mod error;
mod keys;
pub mod labels;
mod manifest;
mod order;
mod revocation;
mod wire;

pub use ed25519_dalek::{Signature, VerifyingKey};
pub use error::{OrderError, Result};
pub use keys::{AuthorityKeyring, AuthorityPublicKey, AuthoritySigningKey, KeyId};
pub use manifest::{ManifestStatement, SignedManifest, TableSigningKey, VerifiedManifest};
pub use order::{DetectionOrder, MaterialKind, OrderTerms, Scope, SignedOrder, VerifiedOrder};
pub use revocation::{Revocation, RevocationReason, SignedRevocation, VerifiedRevocation};
