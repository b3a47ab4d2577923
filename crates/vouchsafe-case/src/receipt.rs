//! The Centre's signed answer to each message it accepted.
//!
//! ## Encoding of a [`Receipt`] (version 1)
//!
//! `0x01 ‖ message_id (16) ‖ message_digest (32) ‖ kind (u8: 0x01 report, 0x02 withdrawal, 0x03 feedback) ‖
//! verdict ‖ at (i64 LE, Unix seconds)`, the verdict being one tag byte and its data:
//!
//! | tag | verdict | data | only for kind |
//! |---|---|---|---|
//! | `0x01` | forwarded | export_id (16) | report |
//! | `0x02` | false-positive | reason: `u32 LE length ‖ UTF-8`, 1..=4000 bytes, no control character but tab, LF, CR | report |
//! | `0x03` | withdrawn | none | withdrawal |
//! | `0x04` | recorded | none | feedback |
//!
//! A signed receipt is `0x01 ‖ signature (64) ‖ receipt encoding` (the receipt runs to the end), the signature
//! the Centre key's Ed25519 signature over `"vouchsafe/v1/centre/receipt/sign" ‖ receipt encoding`.

use crate::error::{Result, invalid};
use crate::keys::CentreReceiptKey;
use crate::labels::{LABEL_RECEIPT_SIGN, SIGNED_OVERHEAD, VERSION};
use crate::message::MessageKind;
use crate::wire::{Reader, check_text, put_bytes, string, unknown_tag};

/// A receipt's longest encoding: the fixed fields and a false-positive reason of 4000 bytes.
const MAX_RECEIPT_BYTES: usize = 1 + 16 + 32 + 1 + 1 + 4 + crate::MAX_TEXT + 8;

/// What the Centre did with a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReceiptVerdict {
    /// The report passed every check and was forwarded to law enforcement as this signed export.
    Forwarded {
        /// The export's id.
        export_id: [u8; 16],
    },
    /// The report is a manifest false positive and was not forwarded.
    ManifestFalsePositive {
        /// Why (names the indicator, never the content).
        reason: String,
    },
    /// The withdrawal was recorded (and passed on if the report had been forwarded).
    Withdrawn,
    /// The feedback was recorded.
    Recorded,
}

impl ReceiptVerdict {
    /// `"forwarded"`, `"false-positive"`, `"withdrawn"` or `"recorded"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            ReceiptVerdict::Forwarded { .. } => "forwarded",
            ReceiptVerdict::ManifestFalsePositive { .. } => "false-positive",
            ReceiptVerdict::Withdrawn => "withdrawn",
            ReceiptVerdict::Recorded => "recorded",
        }
    }

    /// The kind of message this verdict can answer.
    pub fn kind(&self) -> MessageKind {
        match self {
            ReceiptVerdict::Forwarded { .. } | ReceiptVerdict::ManifestFalsePositive { .. } => MessageKind::Report,
            ReceiptVerdict::Withdrawn => MessageKind::Withdrawal,
            ReceiptVerdict::Recorded => MessageKind::Feedback,
        }
    }
}

/// The Centre's answer to one message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    /// The message's id.
    pub message_id: [u8; 16],
    /// Its [`crate::SignedMessage::digest`].
    pub message_digest: [u8; 32],
    /// Its kind.
    pub kind: MessageKind,
    /// What the Centre did.
    pub verdict: ReceiptVerdict,
    /// When, Unix seconds.
    pub at: i64,
}

impl Receipt {
    /// Checks that the verdict fits the kind (forwarded and false-positive answer reports only, withdrawn a
    /// withdrawal, recorded a feedback) and the reason's text rules.
    pub fn validate(&self) -> Result<()> {
        if self.verdict.kind() != self.kind {
            return Err(invalid("receipt verdict", "does not fit the message kind"));
        }
        if let ReceiptVerdict::ManifestFalsePositive { reason } = &self.verdict {
            check_text("false-positive reason", reason, true)?;
        }
        Ok(())
    }

    /// The canonical encoding; refuses a receipt that [`Receipt::validate`] refuses.
    pub fn encode(&self) -> Result<Vec<u8>> {
        self.validate()?;
        let mut out = Vec::with_capacity(MAX_RECEIPT_BYTES);
        out.push(VERSION);
        out.extend_from_slice(&self.message_id);
        out.extend_from_slice(&self.message_digest);
        out.push(self.kind.tag());
        match &self.verdict {
            ReceiptVerdict::Forwarded { export_id } => {
                out.push(1);
                out.extend_from_slice(export_id);
            }
            ReceiptVerdict::ManifestFalsePositive { reason } => {
                out.push(2);
                put_bytes(&mut out, reason.as_bytes());
            }
            ReceiptVerdict::Withdrawn => out.push(3),
            ReceiptVerdict::Recorded => out.push(4),
        }
        out.extend_from_slice(&self.at.to_le_bytes());
        Ok(out)
    }

    /// Decodes and validates.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        crate::wire::check_size("receipt", bytes, MAX_RECEIPT_BYTES)?;
        let mut r = Reader::new("receipt", bytes);
        r.version(VERSION)?;
        let message_id = r.array()?;
        let message_digest = r.array()?;
        let kind = MessageKind::from_tag(r.u8()?)?;
        let verdict = match r.u8()? {
            1 => ReceiptVerdict::Forwarded { export_id: r.array()? },
            2 => ReceiptVerdict::ManifestFalsePositive { reason: string(&mut r, "false-positive reason")? },
            3 => ReceiptVerdict::Withdrawn,
            4 => ReceiptVerdict::Recorded,
            got => return Err(unknown_tag("receipt verdict", got)),
        };
        let at = r.i64()?;
        r.finish()?;
        let receipt = Receipt { message_id, message_digest, kind, verdict, at };
        receipt.validate()?;
        Ok(receipt)
    }
}

/// A [`Receipt`] with the Centre's signature.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SignedReceipt {
    receipt: Vec<u8>,
    signature: [u8; 64],
}

impl SignedReceipt {
    pub(crate) fn from_parts(receipt: Vec<u8>, signature: [u8; 64]) -> Self {
        SignedReceipt { receipt, signature }
    }

    /// `0x01 ‖ signature (64) ‖ receipt encoding`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(SIGNED_OVERHEAD + self.receipt.len());
        out.push(VERSION);
        out.extend_from_slice(&self.signature);
        out.extend_from_slice(&self.receipt);
        out
    }

    /// Decodes (without checking the signature); the receipt must decode and validate.
    pub fn decode(b: &[u8]) -> Result<Self> {
        crate::wire::check_size("signed receipt", b, SIGNED_OVERHEAD + MAX_RECEIPT_BYTES)?;
        let mut r = Reader::new("signed receipt", b);
        r.version(VERSION)?;
        let signature = r.array()?;
        let receipt = r.rest();
        Receipt::decode(receipt)?;
        r.finish()?;
        Ok(SignedReceipt { receipt: receipt.to_vec(), signature })
    }

    /// The receipt, unverified.
    pub fn receipt_unverified(&self) -> Result<Receipt> {
        Receipt::decode(&self.receipt)
    }

    /// Verifies the Centre's signature (strictly) under `key` and returns the receipt ([`crate::Error::BadSignature`]
    /// if it does not verify).
    pub fn verify(&self, key: &CentreReceiptKey) -> Result<Receipt> {
        key.verify(LABEL_RECEIPT_SIGN, &self.receipt, &self.signature)?;
        Receipt::decode(&self.receipt)
    }
}
