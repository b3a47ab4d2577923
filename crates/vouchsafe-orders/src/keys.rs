//! Authority keys: the key id, the pinned public keys (the keyring) and the signing key.

use core::fmt;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rand_core::CryptoRng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::error::{OrderError, Result};
use crate::labels::{
    KEY_ID_LEN, LABEL_AUTHORITY_KEY_ID, LABEL_ORDER_SIGN, LABEL_REVOCATION_SIGN, MAX_PINNED_KEYS, PUBLIC_KEY_LEN,
    VERSION,
};
use crate::order::{DetectionOrder, SignedOrder, VerifiedOrder};
use crate::revocation::{Revocation, SignedRevocation, VerifiedRevocation};
use crate::wire::Reader;

/// An authority key id: the first 16 bytes of `SHA-256(LABEL_AUTHORITY_KEY_ID ‖ public key)`. Public.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId(pub [u8; KEY_ID_LEN]);

impl KeyId {
    /// The key id of an Ed25519 public key (its 32 encoded bytes).
    pub fn of(public_key: &[u8; PUBLIC_KEY_LEN]) -> KeyId {
        let digest = Sha256::new().chain_update(LABEL_AUTHORITY_KEY_ID).chain_update(public_key).finalize();
        let mut id = [0u8; KEY_ID_LEN];
        for (out, b) in id.iter_mut().zip(digest.iter()) {
            *out = *b;
        }
        KeyId(id)
    }

    /// The 16 bytes.
    pub fn as_bytes(&self) -> &[u8; KEY_ID_LEN] {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// Decodes an Ed25519 public key, refusing non-canonical point encodings and points of small order (the weak keys
/// under which a signature can be forged for many messages).
pub(crate) fn public_key(what: &'static str, bytes: &[u8; PUBLIC_KEY_LEN]) -> Result<VerifyingKey> {
    let key = VerifyingKey::from_bytes(bytes).map_err(|_| OrderError::InvalidKey { what })?;
    if key.is_weak() || key.to_edwards().compress().as_bytes() != bytes {
        return Err(OrderError::InvalidKey { what });
    }
    Ok(key)
}

/// A pinned authority public key and its key id.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthorityPublicKey {
    key: VerifyingKey,
    id: KeyId,
}

impl AuthorityPublicKey {
    /// Decodes a public key (32 bytes; canonical, not of small order).
    pub fn from_bytes(bytes: &[u8; PUBLIC_KEY_LEN]) -> Result<Self> {
        let key = public_key("authority public key", bytes)?;
        Ok(AuthorityPublicKey { key, id: KeyId::of(bytes) })
    }

    /// The 32 bytes of the key.
    pub fn to_bytes(&self) -> [u8; PUBLIC_KEY_LEN] {
        self.key.to_bytes()
    }

    /// The key id that orders and revocations signed by this key name.
    pub fn key_id(&self) -> KeyId {
        self.id
    }

    /// Strict Ed25519 verification (canonical `s`, `R` and key not of small order) of `label ‖ body`.
    pub(crate) fn verify(&self, what: &'static str, label: &[u8], body: &[u8], sig: &Signature) -> Result<()> {
        let mut msg = Vec::with_capacity(label.len() + body.len());
        msg.extend_from_slice(label);
        msg.extend_from_slice(body);
        self.key.verify_strict(&msg, sig).map_err(|_| OrderError::BadSignature { what })
    }
}

impl fmt::Debug for AuthorityPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorityPublicKey").field("id", &self.id).finish_non_exhaustive()
    }
}

/// The authority public keys a client or server pins, by key id. Only orders and revocations signed by one of them
/// verify.
///
/// Encoding (what the application ships): `VERSION (0x01) ‖ u8 n (1..=16) ‖ n × 32-byte Ed25519 public key`, the
/// keys in strictly ascending order of their key ids (so no key appears twice), nothing after.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthorityKeyring {
    // Sorted by key id, distinct.
    keys: Vec<AuthorityPublicKey>,
}

impl AuthorityKeyring {
    /// A keyring of the given keys (1..=16 of them; sorted by key id here, duplicates dropped).
    pub fn new(keys: impl IntoIterator<Item = AuthorityPublicKey>) -> Result<Self> {
        let mut keys: Vec<AuthorityPublicKey> = keys.into_iter().collect();
        keys.sort_by_key(AuthorityPublicKey::key_id);
        keys.dedup_by_key(|k| k.key_id());
        if keys.is_empty() || keys.len() > MAX_PINNED_KEYS {
            return Err(OrderError::OutOfRange { what: "keyring: 1..=16 keys" });
        }
        Ok(AuthorityKeyring { keys })
    }

    /// Decodes a keyring (see the type's documentation for the bytes).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new("authority keyring", bytes);
        r.version(VERSION)?;
        let n = usize::from(r.u8()?);
        if n == 0 || n > MAX_PINNED_KEYS {
            return Err(OrderError::OutOfRange { what: "keyring: 1..=16 keys" });
        }
        let mut keys: Vec<AuthorityPublicKey> = Vec::with_capacity(n);
        for _ in 0..n {
            let key = AuthorityPublicKey::from_bytes(&r.array()?)?;
            if keys.last().is_some_and(|prev| prev.key_id() >= key.key_id()) {
                return Err(OrderError::NonCanonical { what: "keyring: keys in ascending key id order" });
            }
            keys.push(key);
        }
        r.finish()?;
        Ok(AuthorityKeyring { keys })
    }

    /// The canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(2 + self.keys.len() * PUBLIC_KEY_LEN);
        out.push(VERSION);
        out.push(u8::try_from(self.keys.len()).unwrap_or(u8::MAX));
        for k in &self.keys {
            out.extend_from_slice(&k.to_bytes());
        }
        out
    }

    /// The pinned key with this id.
    pub fn get(&self, id: &KeyId) -> Option<&AuthorityPublicKey> {
        self.keys.binary_search_by(|k| k.id.cmp(id)).ok().and_then(|i| self.keys.get(i))
    }

    /// The pinned keys, in ascending key id order.
    pub fn keys(&self) -> &[AuthorityPublicKey] {
        &self.keys
    }

    fn key(&self, id: &KeyId) -> Result<&AuthorityPublicKey> {
        self.get(id).ok_or(OrderError::UnknownAuthority { key_id: *id })
    }

    /// Verifies a signed order: its authority key id must be pinned here and its signature must verify under that
    /// key. Says nothing about time or revocation: see [`VerifiedOrder::check_active`].
    pub fn verify_order(&self, signed: &SignedOrder) -> Result<VerifiedOrder> {
        let key = self.key(signed.order().authority_key_id())?;
        key.verify("signed order", LABEL_ORDER_SIGN, &signed.order().encode(), signed.signature())?;
        Ok(VerifiedOrder::new(signed.clone(), key.clone()))
    }

    /// Decodes and verifies a signed order.
    pub fn verify_order_bytes(&self, bytes: &[u8]) -> Result<VerifiedOrder> {
        self.verify_order(&SignedOrder::decode(bytes)?)
    }

    /// Verifies a signed revocation: its authority key id must be pinned here and its signature must verify under
    /// that key.
    pub fn verify_revocation(&self, signed: &SignedRevocation) -> Result<VerifiedRevocation> {
        let key = self.key(signed.revocation().authority_key_id())?;
        key.verify("signed revocation", LABEL_REVOCATION_SIGN, &signed.revocation().encode(), signed.signature())?;
        Ok(VerifiedRevocation::new(signed.clone()))
    }

    /// Decodes and verifies a signed revocation.
    pub fn verify_revocation_bytes(&self, bytes: &[u8]) -> Result<VerifiedRevocation> {
        self.verify_revocation(&SignedRevocation::decode(bytes)?)
    }
}

/// An issuing authority's Ed25519 signing key. Zeroized on drop; `Debug` prints only the key id.
pub struct AuthoritySigningKey {
    key: SigningKey,
    public: AuthorityPublicKey,
}

impl AuthoritySigningKey {
    /// A fresh key from the caller's RNG.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut seed = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(&mut seed[..]);
        Self::from_secret_bytes(&seed)
    }

    /// The key of a 32-byte Ed25519 secret key (RFC 8032 seed).
    pub fn from_secret_bytes(secret: &[u8; 32]) -> Self {
        let key = SigningKey::from_bytes(secret);
        let verifying = key.verifying_key();
        let public = AuthorityPublicKey { key: verifying, id: KeyId::of(verifying.as_bytes()) };
        AuthoritySigningKey { key, public }
    }

    /// The key of a 32-byte secret given as a slice (as read from a file), refusing any other length.
    pub fn from_secret_slice(secret: &[u8]) -> Result<Self> {
        let bytes: Zeroizing<[u8; 32]> = Zeroizing::new(secret.try_into().map_err(|_| OrderError::Length {
            what: "authority secret key",
            expected: 32,
            got: secret.len(),
        })?);
        Ok(Self::from_secret_bytes(&bytes))
    }

    /// The 32 secret bytes, for the caller to store (zeroized when dropped).
    pub fn to_secret_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.key.to_bytes())
    }

    /// The public half, to pin in keyrings.
    pub fn public_key(&self) -> &AuthorityPublicKey {
        &self.public
    }

    /// The key id that orders and revocations signed by this key must name.
    pub fn key_id(&self) -> KeyId {
        self.public.id
    }

    /// Constant-time comparison with another key's secret.
    pub fn ct_eq(&self, other: &AuthoritySigningKey) -> bool {
        bool::from(self.key.as_bytes().ct_eq(other.key.as_bytes()))
    }

    fn sign(&self, label: &[u8], body: &[u8]) -> Signature {
        let mut msg = Vec::with_capacity(label.len() + body.len());
        msg.extend_from_slice(label);
        msg.extend_from_slice(body);
        self.key.sign(&msg)
    }

    /// Signs an order; it must name this key's id ([`OrderError::KeyMismatch`] otherwise: nobody could verify it).
    pub fn sign_order(&self, order: DetectionOrder) -> Result<SignedOrder> {
        if *order.authority_key_id() != self.key_id() {
            return Err(OrderError::KeyMismatch);
        }
        let signature = self.sign(LABEL_ORDER_SIGN, &order.encode());
        Ok(SignedOrder::new(order, signature))
    }

    /// Signs a revocation; it must name this key's id ([`OrderError::KeyMismatch`] otherwise).
    pub fn sign_revocation(&self, revocation: Revocation) -> Result<SignedRevocation> {
        if *revocation.authority_key_id() != self.key_id() {
            return Err(OrderError::KeyMismatch);
        }
        let signature = self.sign(LABEL_REVOCATION_SIGN, &revocation.encode());
        Ok(SignedRevocation::new(revocation, signature))
    }
}

impl fmt::Debug for AuthoritySigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthoritySigningKey").field("id", &self.public.id).field("secret", &"<redacted>").finish()
    }
}
