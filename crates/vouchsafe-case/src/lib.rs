//! # vouchsafe-case
//!
//! The formats of what follows the threshold (DESIGN §5): a provider's signed [`Report`] of a confirmed case to
//! the Centre, its [`Withdrawal`] after an upheld appeal, [`IndicatorFeedback`] on the indicators that produced
//! second-hash drops and review rejections; the Centre's signed [`Receipt`] for each, and its detached signature
//! over an export bundle to law enforcement; and the provider's signed [`TransparencyReport`] per order.
//!
//! Sans-IO: no files, clocks or network (times are arguments; key generation takes the caller's `CryptoRng`).
//! Every encoding starts with the version byte `0x01`, uses fixed-width little-endian integers and u32-length
//! prefixed byte strings, and is canonical: decoders refuse truncation, trailing bytes, unknown tags and any
//! value outside its rule, so decoding then encoding gives back the same bytes. Nothing that decodes input
//! panics. Each type's docs give its exact byte layout; `docs/PROTOCOL.md` ("Formats after the threshold") has
//! them all in one place.
//!
//! Signatures are pure Ed25519 over `label ‖ encoding`, exactly as the order and release crates sign (see
//! [`labels`]); the one exception is the export bundle, signed detached over `LABEL_EXPORT_SIGN ‖
//! SHA-256(bundle)`. Verification is strict. The Centre's [`CentreReceiptSigner`] is made from the same secret as
//! its release key: the labels keep the two uses apart.
//!
//! ```
//! use vouchsafe_case::*;
//!
//! # fn main() -> Result<()> {
//! let provider = ProviderSigningKey::from_secret_bytes(&[1; 32]);
//! let centre = CentreReceiptSigner::from_secret_bytes(&[2; 32]); // the Centre's release-key secret
//! let withdrawal = Message::Withdrawal(Withdrawal {
//!     withdrawal_id: [3; 16],
//!     provider: "provider-a".into(),
//!     report_id: [4; 16],
//!     order_id: [5; 16],
//!     reason: "appeal upheld".into(),
//!     at: 1_767_225_600,
//! });
//! // Provider: sign and send the bytes.
//! let wire = provider.sign(&withdrawal)?.encode();
//! // Centre: decode, find the provider's pinned key by name, verify, answer with a signed receipt.
//! let signed = SignedMessage::decode(&wire)?;
//! assert_eq!(signed.message_unverified()?.provider(), "provider-a");
//! let message = signed.verify(&provider.public())?;
//! let receipt = Receipt {
//!     message_id: message.id(),
//!     message_digest: signed.digest(),
//!     kind: message.kind(),
//!     verdict: ReceiptVerdict::Withdrawn,
//!     at: 1_767_225_700,
//! };
//! let answer = centre.sign(&receipt)?.encode();
//! // Provider: verify the receipt under the pinned Centre key.
//! assert_eq!(SignedReceipt::decode(&answer)?.verify(&centre.public())?, receipt);
//! assert_eq!(signed.verify(&ProviderSigningKey::from_secret_bytes(&[9; 32]).public()), Err(Error::BadSignature));
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

mod error;
mod keys;
pub mod labels;
mod message;
mod receipt;
mod signed;
mod transparency;
mod wire;

pub use error::{DecodeReason, Error, Result};
pub use keys::{CentreReceiptKey, CentreReceiptSigner, ProviderKey, ProviderSigningKey};
pub use labels::*;
pub use message::{
    Decision, IndicatorCount, IndicatorFeedback, Message, MessageKind, ReasonCode, Report, ReportItem, Role, Verdict,
    Withdrawal,
};
pub use receipt::{Receipt, ReceiptVerdict, SignedReceipt};
pub use signed::SignedMessage;
pub use transparency::{SignedTransparencyReport, TransparencyReport};
