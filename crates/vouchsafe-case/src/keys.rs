//! The provider's signing key and the Centre's receipt signer, with their public halves.
//!
//! Every signature of this crate is pure Ed25519 (RFC 8032, no context, no prehash) over `label ‖ encoding`,
//! exactly as the order and release crates sign (the label's ASCII bytes, no length, no terminator), with one
//! exception: an export bundle (a file the Centre writes, of any size) is signed detached over
//! `LABEL_EXPORT_SIGN ‖ SHA-256(bundle)`. Verification is always strict (`verify_strict`: canonical `s`, neither
//! `R` nor the key of small order).

use core::fmt;

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use rand_core::CryptoRng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq as _;
use zeroize::{ZeroizeOnDrop, Zeroizing};

use crate::error::{Error, Result};
use crate::labels::{LABEL_EXPORT_SIGN, LABEL_PROVIDER_KEY_ID, LABEL_RECEIPT_SIGN, LABEL_TRANSPARENCY_SIGN};
use crate::message::Message;
use crate::receipt::{Receipt, SignedReceipt};
use crate::signed::SignedMessage;
use crate::transparency::{SignedTransparencyReport, TransparencyReport};
use crate::wire::signature_input;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn public_from_bytes(b: &[u8; 32]) -> Result<VerifyingKey> {
    let key = VerifyingKey::from_bytes(b).map_err(|_| Error::BadKey)?;
    if key.is_weak() {
        return Err(Error::BadKey);
    }
    Ok(key)
}

pub(crate) fn verify(key: &VerifyingKey, label: &[u8], body: &[u8], sig: &[u8; 64]) -> Result<()> {
    key.verify_strict(&signature_input(label, body), &Signature::from_bytes(sig)).map_err(|_| Error::BadSignature)
}

fn export_input(bundle: &[u8]) -> Vec<u8> {
    signature_input(LABEL_EXPORT_SIGN, &Sha256::digest(bundle))
}

/// A provider's Ed25519 signing key: signs its messages to the Centre and its transparency reports. Zeroized on
/// drop (the inner `SigningKey` zeroizes itself); `Debug` prints only the key id.
pub struct ProviderSigningKey {
    key: SigningKey,
}

impl ZeroizeOnDrop for ProviderSigningKey {}

impl ProviderSigningKey {
    /// A fresh key from the caller's RNG (32 bytes drawn into a zeroizing buffer: the RFC 8032 seed).
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut seed = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(&mut seed[..]);
        Self::from_secret_bytes(&seed)
    }

    /// The key with these 32 secret bytes (the RFC 8032 seed).
    pub fn from_secret_bytes(secret: &[u8; 32]) -> Self {
        ProviderSigningKey { key: SigningKey::from_bytes(secret) }
    }

    /// The 32 secret bytes, for the caller to store (zeroized when dropped).
    pub fn to_secret_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.key.to_bytes())
    }

    /// The public key, for the Centre (and auditors of transparency reports) to pin.
    pub fn public(&self) -> ProviderKey {
        ProviderKey { key: self.key.verifying_key() }
    }

    /// Constant-time comparison with another key's secret.
    pub fn ct_eq(&self, other: &ProviderSigningKey) -> bool {
        bool::from(self.key.as_bytes().ct_eq(other.key.as_bytes()))
    }

    /// Validates and encodes `message`, then signs `LABEL_MESSAGE_SIGN ‖ encoding`.
    pub fn sign(&self, message: &Message) -> Result<SignedMessage> {
        let bytes = message.encode()?;
        let signature = self.key.sign(&signature_input(crate::LABEL_MESSAGE_SIGN, &bytes)).to_bytes();
        Ok(SignedMessage::from_parts(bytes, signature))
    }

    /// Validates and encodes `report`, then signs `LABEL_TRANSPARENCY_SIGN ‖ encoding`.
    pub fn sign_transparency(&self, report: &TransparencyReport) -> Result<SignedTransparencyReport> {
        let bytes = report.encode()?;
        let signature = self.key.sign(&signature_input(LABEL_TRANSPARENCY_SIGN, &bytes)).to_bytes();
        Ok(SignedTransparencyReport::from_parts(bytes, signature))
    }
}

impl fmt::Debug for ProviderSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProviderSigningKey(<redacted>, id {})", hex(&self.public().key_id()))
    }
}

/// A provider's Ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ProviderKey {
    key: VerifyingKey,
}

impl ProviderKey {
    /// Decodes a 32-byte Ed25519 public key; refuses ([`Error::BadKey`]) bytes that are not a canonical point and
    /// keys of small order.
    pub fn from_bytes(b: &[u8; 32]) -> Result<Self> {
        Ok(ProviderKey { key: public_from_bytes(b)? })
    }

    /// The 32-byte public key.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// The key id: the first 8 bytes of `SHA-256("vouchsafe/v1/provider/key-id" ‖ key)` (for logs and file
    /// names; nothing on the wire carries it).
    pub fn key_id(&self) -> [u8; 8] {
        let h = Sha256::new().chain_update(LABEL_PROVIDER_KEY_ID).chain_update(self.key.as_bytes()).finalize();
        let mut id = [0u8; 8];
        id.copy_from_slice(h.get(..8).unwrap_or(&[0u8; 8]));
        id
    }

    pub(crate) fn verify(&self, label: &[u8], body: &[u8], sig: &[u8; 64]) -> Result<()> {
        verify(&self.key, label, body, sig)
    }
}

/// The Centre's signer of receipts and export bundles.
///
/// Built from the same 32-byte Ed25519 secret as `vouchsafe_release::CentreSigningKey` (one Centre identity; the
/// labels keep a receipt signature from ever verifying as a release signature and vice versa), so its public key
/// bytes equal `CentreKey::to_bytes()`. Zeroized on drop; `Debug` prints only the public key's first bytes.
pub struct CentreReceiptSigner {
    key: SigningKey,
}

impl ZeroizeOnDrop for CentreReceiptSigner {}

impl CentreReceiptSigner {
    /// The signer of this 32-byte secret (the RFC 8032 seed, as the Centre's key file holds it).
    pub fn from_secret_bytes(secret: &[u8; 32]) -> Self {
        CentreReceiptSigner { key: SigningKey::from_bytes(secret) }
    }

    /// The public key, for providers and export recipients to pin.
    pub fn public(&self) -> CentreReceiptKey {
        CentreReceiptKey { key: self.key.verifying_key() }
    }

    /// Validates and encodes `receipt`, then signs `LABEL_RECEIPT_SIGN ‖ encoding`.
    pub fn sign(&self, receipt: &Receipt) -> Result<SignedReceipt> {
        let bytes = receipt.encode()?;
        let signature = self.key.sign(&signature_input(LABEL_RECEIPT_SIGN, &bytes)).to_bytes();
        Ok(SignedReceipt::from_parts(bytes, signature))
    }

    /// A detached signature over an export bundle: Ed25519 over `LABEL_EXPORT_SIGN ‖ SHA-256(bundle)`.
    pub fn sign_export(&self, bundle: &[u8]) -> [u8; 64] {
        self.key.sign(&export_input(bundle)).to_bytes()
    }
}

impl fmt::Debug for CentreReceiptSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let public = self.key.verifying_key().to_bytes();
        write!(f, "CentreReceiptSigner(<redacted>, public {}…)", hex(public.get(..8).unwrap_or(&[])))
    }
}

/// The Centre's public key as providers and export recipients pin it (the same 32 bytes as its release key).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct CentreReceiptKey {
    key: VerifyingKey,
}

impl CentreReceiptKey {
    /// Decodes a 32-byte Ed25519 public key; refuses ([`Error::BadKey`]) bytes that are not a canonical point and
    /// keys of small order.
    pub fn from_bytes(b: &[u8; 32]) -> Result<Self> {
        Ok(CentreReceiptKey { key: public_from_bytes(b)? })
    }

    /// The 32-byte public key.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// Verifies a detached export signature ([`Error::BadSignature`] if it does not verify).
    pub fn verify_export(&self, bundle: &[u8], sig: &[u8; 64]) -> Result<()> {
        self.key.verify_strict(&export_input(bundle), &Signature::from_bytes(sig)).map_err(|_| Error::BadSignature)
    }

    pub(crate) fn verify(&self, label: &[u8], body: &[u8], sig: &[u8; 64]) -> Result<()> {
        verify(&self.key, label, body, sig)
    }
}
