//! Centre keys, signed releases and their verification.

use core::fmt;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rand_core::CryptoRng;
use sha2::{Digest, Sha256};
use zeroize::{ZeroizeOnDrop, Zeroizing};

use crate::error::{Error, Result, invalid};
use crate::labels::{KEY_ID_LEN, LABEL_KEY_ID, LABEL_RELEASE_HASH, LABEL_SIGNATURE, SIGNED_RELEASE_VERSION};
use crate::release::Release;
use crate::wire::{Reader, count, put_count};

/// A Centre key id: the first 16 bytes of `SHA-256(LABEL_KEY_ID ‖ public key)`.
pub type KeyId = [u8; KEY_ID_LEN];

fn key_id(public: &[u8; 32]) -> KeyId {
    let digest = Sha256::new().chain_update(LABEL_KEY_ID).chain_update(public).finalize();
    let mut id = [0u8; KEY_ID_LEN];
    id.copy_from_slice(digest.get(..KEY_ID_LEN).unwrap_or(&[0u8; KEY_ID_LEN]));
    id
}

/// The bytes Ed25519 signs: `LABEL_SIGNATURE ‖ encode(Release)`.
fn signature_input(release_bytes: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(LABEL_SIGNATURE.len() + release_bytes.len());
    m.extend_from_slice(LABEL_SIGNATURE);
    m.extend_from_slice(release_bytes);
    m
}

fn hex16(id: &KeyId) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

/// The Centre's Ed25519 signing key. The 32 secret bytes are zeroized on drop; `Debug` prints only the key id.
/// Deliberately not `Clone`.
pub struct CentreSigningKey {
    key: SigningKey,
}

// The inner `SigningKey` (feature `zeroize`) zeroizes its secret when dropped.
impl ZeroizeOnDrop for CentreSigningKey {}

impl fmt::Debug for CentreSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CentreSigningKey")
            .field("key_id", &hex16(&self.public().key_id()))
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl CentreSigningKey {
    /// A fresh key from the caller's cryptographic RNG. The seed is drawn into a zeroizing buffer (ed25519-dalek's
    /// own `generate` would leave a copy of it on the stack); the same 32 bytes as `SigningKey::generate` draws.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut seed = zeroize::Zeroizing::new([0u8; 32]);
        rng.fill_bytes(&mut seed[..]);
        Self::from_bytes(&seed)
    }
    /// The key with these 32 secret bytes (the RFC 8032 seed).
    pub fn from_bytes(secret: &[u8; 32]) -> Self {
        CentreSigningKey { key: SigningKey::from_bytes(secret) }
    }
    /// The 32 secret bytes, to be stored (handle with care).
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.key.to_bytes())
    }
    pub(crate) fn signing_key(&self) -> &SigningKey {
        &self.key
    }
    /// The public key.
    pub fn public(&self) -> CentreKey {
        CentreKey::from_verifying(self.key.verifying_key())
    }
    /// Signs a release: Ed25519 over `LABEL_SIGNATURE ‖ encode(release)`.
    pub fn sign(&self, release: &Release) -> SignedRelease {
        let release_bytes = release.encode();
        let signature = self.key.sign(&signature_input(&release_bytes)).to_bytes();
        SignedRelease { key_id: self.public().key_id(), release: release.clone(), release_bytes, signature }
    }
}

/// A Centre public key, as pinned by a provider (and named in a detection order by its id).
#[derive(Clone, PartialEq, Eq)]
pub struct CentreKey {
    key: VerifyingKey,
    id: KeyId,
}

impl fmt::Debug for CentreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CentreKey({})", hex16(&self.id))
    }
}

impl CentreKey {
    fn from_verifying(key: VerifyingKey) -> Self {
        let id = key_id(&key.to_bytes());
        CentreKey { key, id }
    }
    /// Decodes a 32-byte Ed25519 public key; refuses bytes that are not a point and small-order (weak) keys.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self> {
        let key = VerifyingKey::from_bytes(bytes).map_err(|_| invalid("Centre key: not an Ed25519 public key"))?;
        if key.is_weak() {
            return Err(invalid("Centre key: small-order point"));
        }
        Ok(CentreKey::from_verifying(key))
    }
    /// The 32-byte public key.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.key.to_bytes()
    }
    /// The key id: the first 16 bytes of `SHA-256(LABEL_KEY_ID ‖ key)`.
    pub fn key_id(&self) -> KeyId {
        self.id
    }
    /// Strict Ed25519 verification of `msg` under this key.
    pub(crate) fn verify_strict(&self, msg: &[u8], sig: &Signature) -> Result<()> {
        self.key.verify_strict(msg, sig).map_err(|_| Error::BadSignature)
    }
}

/// A release with the Centre's signature, as published. Decoding checks the format only; [`SignedRelease::verify`]
/// is the only way to a [`VerifiedRelease`].
#[derive(Clone, PartialEq, Eq)]
pub struct SignedRelease {
    key_id: KeyId,
    release: Release,
    release_bytes: Vec<u8>,
    signature: [u8; 64],
}

impl fmt::Debug for SignedRelease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedRelease")
            .field("key_id", &hex16(&self.key_id))
            .field("release", &self.release)
            .finish_non_exhaustive()
    }
}

impl SignedRelease {
    /// `version (1) ‖ key id (16) ‖ u32 LE length ‖ encode(Release) ‖ signature (64)`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + KEY_ID_LEN + 4 + self.release_bytes.len() + 64);
        out.push(SIGNED_RELEASE_VERSION);
        out.extend_from_slice(&self.key_id);
        put_count(&mut out, self.release_bytes.len());
        out.extend_from_slice(&self.release_bytes);
        out.extend_from_slice(&self.signature);
        out
    }

    /// Decodes a signed release (the inner release must be canonical; the signature is not checked here).
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new("signed release", bytes);
        r.version(SIGNED_RELEASE_VERSION)?;
        let key_id = r.array::<KEY_ID_LEN>()?;
        let n = count(r.u32()?);
        let release_bytes = r.take(n)?.to_vec();
        let signature = r.array::<64>()?;
        r.finish()?;
        let release = Release::decode(&release_bytes)?;
        Ok(SignedRelease { key_id, release, release_bytes, signature })
    }

    /// The id of the key it claims to be signed with (to pick the pinned key to verify with).
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// Checks the signature with a pinned Centre key (strict Ed25519: canonical `S`, no small-order `R` or key).
    pub fn verify(&self, key: &CentreKey) -> Result<VerifiedRelease> {
        if self.key_id != key.key_id() {
            return Err(Error::WrongKey);
        }
        let signature = Signature::from_bytes(&self.signature);
        key.key.verify_strict(&signature_input(&self.release_bytes), &signature).map_err(|_| Error::BadSignature)?;
        let hash = Sha256::new().chain_update(LABEL_RELEASE_HASH).chain_update(self.encode()).finalize().into();
        Ok(VerifiedRelease { signed: self.clone(), hash })
    }
}

/// A release whose signature verified with a pinned Centre key. Only [`SignedRelease::verify`] makes one.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifiedRelease {
    signed: SignedRelease,
    hash: [u8; 32],
}

impl fmt::Debug for VerifiedRelease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifiedRelease").field("signed", &self.signed).finish_non_exhaustive()
    }
}

impl VerifiedRelease {
    /// The release.
    pub fn release(&self) -> &Release {
        &self.signed.release
    }
    /// `SHA-256(LABEL_RELEASE_HASH ‖ encode(SignedRelease))`: the successor's `parent`.
    pub fn hash(&self) -> [u8; 32] {
        self.hash
    }
    /// The id of the key that signed it.
    pub fn key_id(&self) -> KeyId {
        self.signed.key_id
    }
    /// The signed release (e.g. to publish it or append it to the log).
    pub fn signed(&self) -> &SignedRelease {
        &self.signed
    }
}
