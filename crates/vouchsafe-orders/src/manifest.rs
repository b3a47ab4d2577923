//! The signed table manifest: the provider's statement, under the table-signing key that the order names, that a
//! table version serves this order and was built from this Centre release.

use core::fmt;

use ed25519_dalek::{Signature, Signer, SigningKey};
use rand_core::CryptoRng;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::error::{OrderError, Result};
use crate::labels::{
    LABEL_MANIFEST_SIGN, LABEL_ORDER_HASH, MAX_MANIFEST_BYTES, ORDER_ID_LEN, PUBLIC_KEY_LEN, SIGNATURE_LEN, VERSION,
};
use crate::order::{SignedOrder, VerifiedOrder};
use crate::wire::Reader;

impl SignedOrder {
    /// The order's hash, `SHA-256("vouchsafe/v1/order/hash" ‖ signed order encoding)`: what a manifest names.
    pub fn hash(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(LABEL_ORDER_HASH);
        h.update(self.encode());
        h.finalize().into()
    }
}

/// What a table-signing key signs about one table version (plain data; see [`SignedManifest`]).
///
/// Encoding: `0x01 ‖ order id (16) ‖ order hash (32) ‖ release number (u64 LE) ‖ release hash (32) ‖ issued_at
/// (i64 LE) ‖ u32 LE length n ‖ n bytes table manifest`, where the table manifest is the protocol's
/// `TableManifest` encoding (epoch parameters, version, chunking, chunk hashes), n in 1..=[`MAX_MANIFEST_BYTES`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestStatement {
    /// The order this table serves.
    pub order_id: [u8; ORDER_ID_LEN],
    /// [`SignedOrder::hash`] of that order.
    pub order_hash: [u8; 32],
    /// Number of the Centre release the table was built from (in the order's release line).
    pub release_number: u64,
    /// Hash of that release (`vouchsafe_release::VerifiedRelease::hash`).
    pub release_hash: [u8; 32],
    /// When the provider signed it, Unix seconds.
    pub issued_at: i64,
    /// The protocol's `TableManifest` encoding, opaque here.
    pub table_manifest: Vec<u8>,
}

impl ManifestStatement {
    /// The canonical encoding; refuses a table manifest that is empty or over [`MAX_MANIFEST_BYTES`].
    pub fn encode(&self) -> Result<Vec<u8>> {
        let n = self.table_manifest.len();
        if n == 0 || n > MAX_MANIFEST_BYTES {
            return Err(OrderError::OutOfRange { what: "table manifest: 1..=MAX_MANIFEST_BYTES bytes" });
        }
        let len = u32::try_from(n).map_err(|_| OrderError::OutOfRange { what: "table manifest length" })?;
        let mut out = Vec::with_capacity(1 + 16 + 32 + 8 + 32 + 8 + 4 + n);
        out.push(VERSION);
        out.extend_from_slice(&self.order_id);
        out.extend_from_slice(&self.order_hash);
        out.extend_from_slice(&self.release_number.to_le_bytes());
        out.extend_from_slice(&self.release_hash);
        out.extend_from_slice(&self.issued_at.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&self.table_manifest);
        Ok(out)
    }

    /// Decodes, refusing truncation, trailing bytes and a length out of range.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new("manifest statement", bytes);
        r.version(VERSION)?;
        let order_id = r.array()?;
        let order_hash = r.array()?;
        let release_number = r.u64()?;
        let release_hash = r.array()?;
        let issued_at = r.i64()?;
        let n = r.u32()? as usize;
        if n == 0 || n > MAX_MANIFEST_BYTES {
            return Err(OrderError::OutOfRange { what: "table manifest: 1..=MAX_MANIFEST_BYTES bytes" });
        }
        let table_manifest = r.take(n)?.to_vec();
        r.finish()?;
        Ok(ManifestStatement { order_id, order_hash, release_number, release_hash, issued_at, table_manifest })
    }
}

/// A [`ManifestStatement`] and the table key's Ed25519 signature over `"vouchsafe/v1/manifest/sign" ‖ statement
/// encoding`. Encoding: `0x01 ‖ signature (64) ‖ statement encoding` (the statement runs to the end).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedManifest {
    statement: ManifestStatement,
    encoded_statement: Vec<u8>,
    signature: Signature,
}

impl SignedManifest {
    /// The statement (unverified).
    pub fn statement(&self) -> &ManifestStatement {
        &self.statement
    }

    /// The canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + SIGNATURE_LEN + self.encoded_statement.len());
        out.push(VERSION);
        out.extend_from_slice(&self.signature.to_bytes());
        out.extend_from_slice(&self.encoded_statement);
        out
    }

    /// Decodes (without verifying the signature).
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new("signed manifest", bytes);
        r.version(VERSION)?;
        let signature = Signature::from_bytes(&r.array()?);
        let rest = r.rest();
        let statement = ManifestStatement::decode(rest)?;
        r.finish()?;
        Ok(SignedManifest { statement, encoded_statement: rest.to_vec(), signature })
    }
}

/// A manifest whose signature verified under the table key of a verified order, and which names that very order.
/// Constructible only by [`VerifiedOrder::verify_manifest`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedManifest {
    signed: SignedManifest,
}

impl VerifiedManifest {
    /// The statement.
    pub fn statement(&self) -> &ManifestStatement {
        &self.signed.statement
    }

    /// The protocol `TableManifest` encoding the statement covers.
    pub fn table_manifest(&self) -> &[u8] {
        &self.signed.statement.table_manifest
    }

    /// The signed form (for the log leaf).
    pub fn signed(&self) -> &SignedManifest {
        &self.signed
    }
}

impl VerifiedOrder {
    /// Verifies a signed manifest against this order: the signature verifies (strictly) under the order's
    /// table-signing key, and the statement names this order's id and hash ([`OrderError::WrongOrder`]). Says
    /// nothing about time: ask [`VerifiedOrder::check_active`] too.
    pub fn verify_manifest(&self, signed: &SignedManifest) -> Result<VerifiedManifest> {
        let mut msg = Vec::with_capacity(LABEL_MANIFEST_SIGN.len() + signed.encoded_statement.len());
        msg.extend_from_slice(LABEL_MANIFEST_SIGN);
        msg.extend_from_slice(&signed.encoded_statement);
        self.order()
            .table_key()
            .verify_strict(&msg, &signed.signature)
            .map_err(|_| OrderError::BadSignature { what: "signed manifest" })?;
        let s = &signed.statement;
        if s.order_id != *self.order_id() || s.order_hash != self.signed().hash() {
            return Err(OrderError::WrongOrder);
        }
        Ok(VerifiedManifest { signed: signed.clone() })
    }

    /// Decodes and verifies a signed manifest.
    pub fn verify_manifest_bytes(&self, bytes: &[u8]) -> Result<VerifiedManifest> {
        self.verify_manifest(&SignedManifest::decode(bytes)?)
    }
}

/// The provider's table-signing key (the order names its public half). Zeroized on drop; `Debug` prints only
/// the public key.
pub struct TableSigningKey {
    key: SigningKey,
}

impl TableSigningKey {
    /// A fresh key from the caller's RNG.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut seed = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(&mut seed[..]);
        Self::from_secret_bytes(&seed)
    }

    /// The key of a 32-byte Ed25519 secret key (RFC 8032 seed).
    pub fn from_secret_bytes(secret: &[u8; 32]) -> Self {
        TableSigningKey { key: SigningKey::from_bytes(secret) }
    }

    /// The key of a 32-byte secret given as a slice (as read from a file), refusing any other length.
    pub fn from_secret_slice(secret: &[u8]) -> Result<Self> {
        let bytes: Zeroizing<[u8; 32]> = Zeroizing::new(secret.try_into().map_err(|_| OrderError::Length {
            what: "table secret key",
            expected: 32,
            got: secret.len(),
        })?);
        Ok(Self::from_secret_bytes(&bytes))
    }

    /// The 32 secret bytes, for the caller to store (zeroized when dropped).
    pub fn to_secret_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.key.to_bytes())
    }

    /// The public key, to put in an order's `table_key`.
    pub fn public_key(&self) -> [u8; PUBLIC_KEY_LEN] {
        self.key.verifying_key().to_bytes()
    }

    /// Signs a statement. Refuses ([`OrderError::KeyMismatch`]) to sign for an order whose table key is another
    /// key, or a statement that does not name `order` (nobody could verify it).
    pub fn sign_manifest(&self, order: &VerifiedOrder, statement: ManifestStatement) -> Result<SignedManifest> {
        if order.order().table_key().to_bytes() != self.public_key() {
            return Err(OrderError::KeyMismatch);
        }
        if statement.order_id != *order.order_id() || statement.order_hash != order.signed().hash() {
            return Err(OrderError::WrongOrder);
        }
        let encoded_statement = statement.encode()?;
        let mut msg = Vec::with_capacity(LABEL_MANIFEST_SIGN.len() + encoded_statement.len());
        msg.extend_from_slice(LABEL_MANIFEST_SIGN);
        msg.extend_from_slice(&encoded_statement);
        let signature = self.key.sign(&msg);
        Ok(SignedManifest { statement, encoded_statement, signature })
    }
}

impl fmt::Debug for TableSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TableSigningKey").field("public", &hex_short(&self.public_key())).finish_non_exhaustive()
    }
}

fn hex_short(b: &[u8]) -> String {
    b.iter().take(8).map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::{MAX_MANIFEST_BYTES, VERSION};

    #[test]
    fn statement_round_trips_and_refuses_bad_lengths() {
        let s = ManifestStatement {
            order_id: [1; 16],
            order_hash: [2; 32],
            release_number: 3,
            release_hash: [4; 32],
            issued_at: 5,
            table_manifest: vec![6; 10],
        };
        let enc = s.encode().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(enc.first(), Some(&VERSION));
        assert_eq!(ManifestStatement::decode(&enc), Ok(s.clone()));
        let mut long = enc.clone();
        long.push(0);
        assert!(matches!(ManifestStatement::decode(&long), Err(OrderError::TrailingBytes { .. })));
        assert!(ManifestStatement::decode(&enc[..enc.len() - 1]).is_err());
        let empty = ManifestStatement { table_manifest: vec![], ..s.clone() };
        assert!(empty.encode().is_err());
        let huge = ManifestStatement { table_manifest: vec![0; MAX_MANIFEST_BYTES + 1], ..s };
        assert!(huge.encode().is_err());
    }
}
