//! The signed form of a [`Message`].
//!
//! Encoding: `0x01 ‖ signature (64) ‖ message encoding` (the message runs to the end of the input), at most
//! [`MAX_MESSAGE_BYTES`] bytes in all. The signature is the provider key's Ed25519 signature over
//! `"vouchsafe/v1/provider/message/sign" ‖ message encoding`.

use sha2::{Digest, Sha256};

use crate::error::Result;
use crate::keys::ProviderKey;
use crate::labels::{LABEL_MESSAGE_DIGEST, LABEL_MESSAGE_SIGN, MAX_MESSAGE_BYTES, SIGNED_OVERHEAD, VERSION};
use crate::message::Message;
use crate::wire::{Reader, check_size};

/// A [`Message`] and its provider's signature, as sent to the Centre. Decoding checks the format (the message
/// must decode and validate); [`SignedMessage::verify`] checks the signature. `Debug` shows the length and the
/// digest, never the bytes (a report's carry associated data and an account reference).
#[derive(Clone, PartialEq, Eq)]
pub struct SignedMessage {
    message: Vec<u8>,
    signature: [u8; 64],
}

impl core::fmt::Debug for SignedMessage {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let digest = self.digest();
        f.debug_struct("SignedMessage")
            .field("message", &format_args!("<{} bytes>", self.message.len()))
            .field("digest", &format_args!("{}", digest.iter().take(8).map(|b| format!("{b:02x}")).collect::<String>()))
            .finish_non_exhaustive()
    }
}

impl SignedMessage {
    pub(crate) fn from_parts(message: Vec<u8>, signature: [u8; 64]) -> Self {
        SignedMessage { message, signature }
    }

    /// `0x01 ‖ signature (64) ‖ message encoding`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(SIGNED_OVERHEAD + self.message.len());
        out.push(VERSION);
        out.extend_from_slice(&self.signature);
        out.extend_from_slice(&self.message);
        out
    }

    /// Decodes (without checking the signature), refusing more than [`MAX_MESSAGE_BYTES`], a wrong version, and a
    /// message that does not decode and validate.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        check_size("signed message", bytes, MAX_MESSAGE_BYTES)?;
        let mut r = Reader::new("signed message", bytes);
        r.version(VERSION)?;
        let signature = r.array()?;
        let message = r.rest();
        Message::decode(message)?;
        r.finish()?;
        Ok(SignedMessage { message: message.to_vec(), signature })
    }

    /// The message encoding that the signature covers.
    pub fn message_bytes(&self) -> &[u8] {
        &self.message
    }

    /// The signature.
    pub fn signature(&self) -> &[u8; 64] {
        &self.signature
    }

    /// The message, unverified: to find out which provider's key to verify it with. Trust nothing else in it
    /// before [`SignedMessage::verify`].
    pub fn message_unverified(&self) -> Result<Message> {
        Message::decode(&self.message)
    }

    /// Verifies the signature (strictly) under `key` and returns the message; [`crate::Error::BadSignature`] if
    /// it does not verify.
    pub fn verify(&self, key: &ProviderKey) -> Result<Message> {
        key.verify(LABEL_MESSAGE_SIGN, &self.message, &self.signature)?;
        Message::decode(&self.message)
    }

    /// `SHA-256("vouchsafe/v1/provider/message/digest" ‖ encode())`: what a receipt names, and what tells a
    /// redelivery (same digest) from another message under the same id.
    pub fn digest(&self) -> [u8; 32] {
        Sha256::new()
            .chain_update(LABEL_MESSAGE_DIGEST)
            .chain_update([VERSION])
            .chain_update(self.signature)
            .chain_update(&self.message)
            .finalize()
            .into()
    }
}
