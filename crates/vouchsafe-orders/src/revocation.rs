//! The authority's revocation of an order: it ends the order at once.

use ed25519_dalek::Signature;

use crate::error::{OrderError, Result};
use crate::keys::KeyId;
use crate::labels::{ORDER_ID_LEN, REVOCATION_LEN, SIGNATURE_LEN, VERSION};
use crate::wire::Reader;

/// Why an order was revoked (one byte on the wire; any other byte is refused).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RevocationReason {
    /// No reason given (1).
    Unspecified,
    /// Replaced by a newer order (2).
    Superseded,
    /// Issued in error (3).
    IssuedInError,
    /// Annulled on review or appeal (4).
    Annulled,
    /// A key the order names (Centre or provider table key) is compromised (5).
    KeyCompromise,
}

impl RevocationReason {
    /// The byte on the wire.
    pub fn to_byte(self) -> u8 {
        match self {
            RevocationReason::Unspecified => 1,
            RevocationReason::Superseded => 2,
            RevocationReason::IssuedInError => 3,
            RevocationReason::Annulled => 4,
            RevocationReason::KeyCompromise => 5,
        }
    }

    /// The reason of a byte, refusing bytes v1 does not define.
    pub fn from_byte(b: u8) -> Result<Self> {
        Ok(match b {
            1 => RevocationReason::Unspecified,
            2 => RevocationReason::Superseded,
            3 => RevocationReason::IssuedInError,
            4 => RevocationReason::Annulled,
            5 => RevocationReason::KeyCompromise,
            got => return Err(OrderError::UnknownTag { what: "revocation reason", got }),
        })
    }
}

/// A revocation of one order by the authority that signed it.
///
/// Encoding (42 bytes): `VERSION (0x01) ‖ order id (16) ‖ revoked_at (i64 LE, Unix seconds) ‖ reason (u8) ‖
/// authority key id (16)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Revocation {
    order_id: [u8; ORDER_ID_LEN],
    revoked_at: i64,
    reason: RevocationReason,
    authority_key_id: KeyId,
}

impl Revocation {
    /// A revocation of `order_id` (which `authority_key_id`'s key signed).
    pub fn new(
        order_id: [u8; ORDER_ID_LEN],
        revoked_at: i64,
        reason: RevocationReason,
        authority_key_id: KeyId,
    ) -> Self {
        Revocation { order_id, revoked_at, reason, authority_key_id }
    }

    /// The order revoked.
    pub fn order_id(&self) -> &[u8; ORDER_ID_LEN] {
        &self.order_id
    }
    /// When the authority revoked it (Unix seconds; its record for the log and statistics).
    pub fn revoked_at(&self) -> i64 {
        self.revoked_at
    }
    /// Why.
    pub fn reason(&self) -> RevocationReason {
        self.reason
    }
    /// The key id of the authority key that signs the revocation (and signed the order).
    pub fn authority_key_id(&self) -> &KeyId {
        &self.authority_key_id
    }

    /// The canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(REVOCATION_LEN);
        out.push(VERSION);
        out.extend_from_slice(&self.order_id);
        out.extend_from_slice(&self.revoked_at.to_le_bytes());
        out.push(self.reason.to_byte());
        out.extend_from_slice(self.authority_key_id.as_bytes());
        out
    }

    /// Decodes the canonical encoding (exactly 42 bytes).
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new("revocation", bytes);
        let v = Self::read(&mut r)?;
        r.finish()?;
        Ok(v)
    }

    fn read(r: &mut Reader<'_>) -> Result<Self> {
        r.version(VERSION)?;
        let order_id = r.array()?;
        let revoked_at = r.i64()?;
        let reason = RevocationReason::from_byte(r.u8()?)?;
        let authority_key_id = KeyId(r.array()?);
        Ok(Revocation { order_id, revoked_at, reason, authority_key_id })
    }
}

/// A revocation with the authority's Ed25519 signature over `LABEL_REVOCATION_SIGN ‖ encode(revocation)`.
///
/// Encoding (107 bytes): `VERSION (0x01) ‖ signature (64) ‖ encode(revocation)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedRevocation {
    revocation: Revocation,
    signature: Signature,
}

impl SignedRevocation {
    pub(crate) fn new(revocation: Revocation, signature: Signature) -> Self {
        SignedRevocation { revocation, signature }
    }

    /// The revocation (unverified).
    pub fn revocation(&self) -> &Revocation {
        &self.revocation
    }
    /// The signature (unverified).
    pub fn signature(&self) -> &Signature {
        &self.signature
    }

    /// The canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + SIGNATURE_LEN + REVOCATION_LEN);
        out.push(VERSION);
        out.extend_from_slice(&self.signature.to_bytes());
        out.extend_from_slice(&self.revocation.encode());
        out
    }

    /// Decodes (without verifying the signature).
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new("signed revocation", bytes);
        r.version(VERSION)?;
        let signature = Signature::from_bytes(&r.array()?);
        let revocation = Revocation::read(&mut r)?;
        r.finish()?;
        Ok(SignedRevocation { revocation, signature })
    }
}

/// A revocation whose signature verified under a pinned authority key. Constructible only by
/// [`crate::AuthorityKeyring::verify_revocation`]; pass it to [`crate::VerifiedOrder::check_active`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedRevocation {
    signed: SignedRevocation,
}

impl VerifiedRevocation {
    pub(crate) fn new(signed: SignedRevocation) -> Self {
        VerifiedRevocation { signed }
    }

    /// The signed revocation, as verified (its [`SignedRevocation::encode`] is what the transparency log holds).
    pub fn signed(&self) -> &SignedRevocation {
        &self.signed
    }
    /// See [`Revocation::order_id`].
    pub fn order_id(&self) -> &[u8; ORDER_ID_LEN] {
        self.signed.revocation.order_id()
    }
    /// See [`Revocation::revoked_at`].
    pub fn revoked_at(&self) -> i64 {
        self.signed.revocation.revoked_at()
    }
    /// See [`Revocation::reason`].
    pub fn reason(&self) -> RevocationReason {
        self.signed.revocation.reason()
    }
    /// See [`Revocation::authority_key_id`].
    pub fn authority_key_id(&self) -> &KeyId {
        self.signed.revocation.authority_key_id()
    }
}
