//! Log and witness keys (Ed25519), in the signed-note key forms: verifier keys `name+keyid+base64(type ‖ public
//! key)` and private keys `PRIVATE+KEY+name+keyid+base64(type ‖ seed)` (the forms of Go's `sumdb/note`), with
//! `keyid = SHA-256(name ‖ 0x0A ‖ type ‖ public key)[:4]` (type 0x01 for the log, 0x04 for cosignature/v1).

use core::fmt;

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use rand_core::CryptoRng;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::labels::{PRIVATE_KEY_PREFIX, SIG_TYPE_COSIGNATURE_V1, SIG_TYPE_ED25519};
use crate::note::{Note, NoteSignature, b64_decode, b64_encode, is_valid_key_name};

/// The signed-note key id: `SHA-256(name ‖ 0x0A ‖ type ‖ public key)[:4]`, big-endian.
pub fn key_id(name: &str, sig_type: u8, public_key: &[u8]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([0x0a, sig_type]);
    h.update(public_key);
    let d: [u8; 32] = h.finalize().into();
    let [a, b, c, e, ..] = d;
    u32::from_be_bytes([a, b, c, e])
}

/// A public key with its name, type and id.
#[derive(Clone, PartialEq, Eq)]
struct PublicKey {
    name: String,
    sig_type: u8,
    id: u32,
    key: VerifyingKey,
}

impl PublicKey {
    fn new(name: &str, sig_type: u8, key: VerifyingKey) -> Result<PublicKey> {
        if !is_valid_key_name(name) {
            return Err(Error::Misuse { what: "invalid key name" });
        }
        Ok(PublicKey { name: name.to_owned(), sig_type, id: key_id(name, sig_type, key.as_bytes()), key })
    }

    fn parse(s: &str, sig_type: u8) -> Result<PublicKey> {
        let what = "verifier key";
        // The base64 part may itself contain '+': split off name and id only (as Go's `note` does).
        let mut parts = s.splitn(3, '+');
        let (name, id, b64) = match (parts.next(), parts.next(), parts.next()) {
            (Some(n), Some(i), Some(b)) => (n, i, b),
            _ => return Err(Error::Malformed { what }),
        };
        let pk = parse_key_material(name, id, b64, sig_type, what)?;
        let key = VerifyingKey::from_bytes(&pk).map_err(|_| Error::Malformed { what: "verifier key point" })?;
        let out = PublicKey::new(name, sig_type, key).map_err(|_| Error::Malformed { what })?;
        if format!("{:08x}", out.id) != id {
            return Err(Error::Malformed { what: "verifier key id" });
        }
        Ok(out)
    }

    /// Verifies an Ed25519 signature strictly (no small-order keys, canonical `S`).
    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        let Ok(sig) = Signature::from_slice(sig) else { return false };
        self.key.verify_strict(msg, &sig).is_ok()
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut raw = vec![self.sig_type];
        raw.extend_from_slice(self.key.as_bytes());
        write!(f, "{}+{:08x}+{}", self.name, self.id, b64_encode(&raw))
    }
}

/// Checks name and hex id syntax and decodes `base64(type ‖ 32 bytes)`.
fn parse_key_material(
    name: &str,
    id: &str,
    b64: &str,
    sig_type: u8,
    what: &'static str,
) -> Result<Zeroizing<[u8; 32]>> {
    if !is_valid_key_name(name)
        || id.len() != 8
        || !id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(Error::Malformed { what });
    }
    let raw = Zeroizing::new(b64_decode(b64, what)?);
    match raw.as_slice() {
        [t, key @ ..] if *t == sig_type && key.len() == 32 => {
            let mut out = Zeroizing::new([0u8; 32]);
            out.copy_from_slice(key);
            Ok(out)
        }
        _ => Err(Error::Malformed { what: "key type or length" }),
    }
}

/// An Ed25519 secret key with its name and id. The dalek key zeroizes itself on drop.
struct SecretKey {
    public: PublicKey,
    secret: SigningKey,
}

impl SecretKey {
    fn generate<R: CryptoRng + ?Sized>(name: &str, sig_type: u8, rng: &mut R) -> Result<SecretKey> {
        let mut seed = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(&mut seed[..]);
        SecretKey::from_seed(name, sig_type, &seed)
    }

    fn from_seed(name: &str, sig_type: u8, seed: &[u8; 32]) -> Result<SecretKey> {
        let secret = SigningKey::from_bytes(seed);
        Ok(SecretKey { public: PublicKey::new(name, sig_type, secret.verifying_key())?, secret })
    }

    fn parse(s: &str, sig_type: u8) -> Result<SecretKey> {
        let what = "private key";
        let rest = s.strip_prefix(PRIVATE_KEY_PREFIX).ok_or(Error::Malformed { what })?;
        let mut parts = rest.splitn(3, '+');
        let (name, id, b64) = match (parts.next(), parts.next(), parts.next()) {
            (Some(n), Some(i), Some(b)) => (n, i, b),
            _ => return Err(Error::Malformed { what }),
        };
        let seed = parse_key_material(name, id, b64, sig_type, what)?;
        let key = SecretKey::from_seed(name, sig_type, &seed).map_err(|_| Error::Malformed { what })?;
        if format!("{:08x}", key.public.id) != id {
            return Err(Error::Malformed { what: "private key id" });
        }
        Ok(key)
    }

    fn to_private_string(&self) -> Zeroizing<String> {
        let mut raw = Zeroizing::new(vec![self.public.sig_type]);
        raw.extend_from_slice(self.secret.as_bytes());
        let b64 = Zeroizing::new(b64_encode(&raw));
        let id = format!("{:08x}", self.public.id);
        // Sized up front so the secret is never left behind in a buffer freed by a reallocation.
        let mut out = Zeroizing::new(String::with_capacity(
            PRIVATE_KEY_PREFIX.len() + self.public.name.len() + id.len() + b64.len() + 2,
        ));
        for part in [PRIVATE_KEY_PREFIX, &self.public.name, "+", &id, "+", &b64] {
            out.push_str(part);
        }
        out
    }

    fn sign(&self, msg: &[u8]) -> [u8; 64] {
        self.secret.sign(msg).to_bytes()
    }
}

macro_rules! key_pair {
    ($sk:ident, $vk:ident, $ty:expr, $who:literal) => {
        #[doc = concat!("The ", $who, "'s Ed25519 signing key. Zeroized on drop; `Debug` prints only the name and id.")]
        pub struct $sk(SecretKey);

        #[doc = concat!("The ", $who, "'s verifier key: name, key id and Ed25519 public key.")]
        #[derive(Clone, PartialEq, Eq)]
        pub struct $vk(PublicKey);

        impl $sk {
            /// A fresh key under this name, from the caller's RNG.
            pub fn generate<R: CryptoRng + ?Sized>(name: &str, rng: &mut R) -> Result<$sk> {
                Ok($sk(SecretKey::generate(name, $ty, rng)?))
            }
            /// The key with this 32-byte Ed25519 seed.
            pub fn from_seed(name: &str, seed: &[u8; 32]) -> Result<$sk> {
                Ok($sk(SecretKey::from_seed(name, $ty, seed)?))
            }
            /// Parses `PRIVATE+KEY+name+keyid+base64(type ‖ seed)`; the id must match.
            pub fn from_private_key(s: &str) -> Result<$sk> {
                Ok($sk(SecretKey::parse(s, $ty)?))
            }
            /// The private-key string form (a secret: zeroized on drop).
            pub fn to_private_key(&self) -> Zeroizing<String> {
                self.0.to_private_string()
            }
            /// The matching verifier key.
            pub fn verifier(&self) -> $vk {
                $vk(self.0.public.clone())
            }
            /// The key name.
            pub fn name(&self) -> &str {
                &self.0.public.name
            }
            /// The key id.
            pub fn key_id(&self) -> u32 {
                self.0.public.id
            }
        }

        impl fmt::Debug for $sk {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($sk))
                    .field("name", &self.0.public.name)
                    .field("key_id", &format_args!("{:08x}", self.0.public.id))
                    .field("secret", &"<redacted>")
                    .finish()
            }
        }

        impl $vk {
            /// Parses the verifier-key string `name+keyid+base64(type ‖ public key)`; the id must match.
            pub fn parse(s: &str) -> Result<$vk> {
                Ok($vk(PublicKey::parse(s, $ty)?))
            }
            /// The verifier for this name and Ed25519 public key.
            pub fn from_public_key(name: &str, public_key: &[u8; 32]) -> Result<$vk> {
                let key = VerifyingKey::from_bytes(public_key).map_err(|_| Error::Malformed { what: "public key" })?;
                Ok($vk(PublicKey::new(name, $ty, key)?))
            }
            /// The key name.
            pub fn name(&self) -> &str {
                &self.0.name
            }
            /// The key id.
            pub fn key_id(&self) -> u32 {
                self.0.id
            }
            /// The Ed25519 public key.
            pub fn public_key(&self) -> [u8; 32] {
                self.0.key.to_bytes()
            }
            pub(crate) fn matches(&self, sig: &crate::note::NoteSignature) -> bool {
                sig.name() == self.0.name && sig.key_id() == self.0.id
            }
        }

        impl fmt::Display for $vk {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl fmt::Debug for $vk {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($vk), self.0)
            }
        }

        impl core::str::FromStr for $vk {
            type Err = Error;
            fn from_str(s: &str) -> Result<$vk> {
                $vk::parse(s)
            }
        }
    };
}

key_pair!(LogSigningKey, LogVerifier, SIG_TYPE_ED25519, "log");
key_pair!(WitnessSigningKey, WitnessVerifier, SIG_TYPE_COSIGNATURE_V1, "witness");

impl LogSigningKey {
    /// Adds this key's Ed25519 signature of the note text (signed-note §Ed25519 signatures), replacing an older
    /// line of this key.
    pub fn sign_note(&self, note: &mut Note) -> Result<()> {
        let sig = self.0.sign(note.text().as_bytes());
        note.add_signature(NoteSignature::new(self.name(), self.key_id(), sig.to_vec())?)
    }
}

impl LogVerifier {
    /// Verifies the note under this key as signed-note requires: lines of other keys are ignored, every line
    /// under this key's name and id must verify ([`Error::LogSignatureInvalid`]), and there must be at least one
    /// ([`Error::LogSignatureMissing`]).
    pub fn verify_note(&self, note: &Note) -> Result<()> {
        let mut found = false;
        for sig in note.signatures().iter().filter(|s| self.matches(s)) {
            if !self.0.verify(note.text().as_bytes(), sig.signature()) {
                return Err(Error::LogSignatureInvalid);
            }
            found = true;
        }
        if found { Ok(()) } else { Err(Error::LogSignatureMissing) }
    }
}

/// The message a cosignature/v1 signs: `cosignature/v1\ntime <t>\n` followed by the checkpoint text.
pub(crate) fn cosigned_message(timestamp: u64, checkpoint_text: &str) -> String {
    format!(
        "{}\n{}{timestamp}\n{checkpoint_text}",
        crate::labels::COSIGNATURE_V1_HEADER,
        crate::labels::COSIGNATURE_TIME_PREFIX
    )
}

/// The largest cosignature timestamp tlog-cosignature allows (2^63 − 1).
pub const MAX_COSIGNATURE_TIMESTAMP: u64 = (1 << 63) - 1;

impl WitnessSigningKey {
    /// The `timestamped_signature` (u64 big-endian timestamp ‖ Ed25519 signature) over the cosigned message.
    pub(crate) fn cosign_text(&self, timestamp: u64, text: &str) -> Vec<u8> {
        let sig = self.0.sign(cosigned_message(timestamp, text).as_bytes());
        let mut out = Vec::with_capacity(72);
        out.extend_from_slice(&timestamp.to_be_bytes());
        out.extend_from_slice(&sig);
        out
    }
}

impl WitnessVerifier {
    /// Verifies a `timestamped_signature` over `text`; returns its timestamp.
    pub(crate) fn verify_cosignature(&self, text: &str, sig: &[u8]) -> Option<u64> {
        let (ts, sig) = match sig {
            [a, b, c, d, e, f, g, h, rest @ ..] if rest.len() == 64 => {
                (u64::from_be_bytes([*a, *b, *c, *d, *e, *f, *g, *h]), rest)
            }
            _ => return None,
        };
        if ts > MAX_COSIGNATURE_TIMESTAMP {
            return None;
        }
        self.0.verify(cosigned_message(ts, text).as_bytes(), sig).then_some(ts)
    }

    /// Checks one signature line as this witness's cosignature/v1 of the checkpoint `text` (the note text):
    /// the line names this key ([`Error::UnknownKey`] otherwise) and its timestamped signature verifies
    /// ([`Error::CosignatureInvalid`]). Returns the cosignature's timestamp. What a log operator runs before it
    /// attaches a cosignature a witness handed in.
    pub fn check_cosignature(&self, text: &str, sig: &NoteSignature) -> Result<u64> {
        if !self.matches(sig) {
            return Err(Error::UnknownKey);
        }
        self.verify_cosignature(text, sig.signature()).ok_or(Error::CosignatureInvalid)
    }
}
