//! Bearer-token authentication. Tokens are kept only as SHA-256 digests and compared in constant time against
//! every known digest (no early exit), so neither timing nor memory reveals a token.
//!
//! The token type lives here, and this module depends on nothing else in the crate but the error type: the
//! configuration holds [`BearerToken`]s and hands them to [`Authenticator::new`], never the other way round.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};
use zeroize::Zeroizing;

use crate::error::{Result, ServerError};

/// Longest bearer token, in bytes. Longer ones are answered UNAUTHENTICATED without being hashed.
pub const MAX_TOKEN_LEN: usize = 4096;

/// A secret bearer token: zeroized on drop, redacted in `Debug`, compared in constant time.
#[derive(Clone)]
pub struct BearerToken(Zeroizing<String>);

impl PartialEq for BearerToken {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

impl Eq for BearerToken {}

impl BearerToken {
    /// Wraps a token.
    pub fn new(token: impl Into<String>) -> Self {
        BearerToken(Zeroizing::new(token.into()))
    }
    /// The secret value.
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// The token's domain-separated SHA-256 digest: what the server keeps and compares.
    pub(crate) fn digest(&self) -> [u8; 32] {
        digest(&self.0)
    }
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerToken(<redacted>)")
    }
}

impl Serialize for BearerToken {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for BearerToken {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Ok(BearerToken(Zeroizing::new(String::deserialize(d)?)))
    }
}

/// SHA-256 of a token (domain-separated).
fn digest(token: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"vouchsafe-server/v1/bearer-token");
    h.update(token.as_bytes());
    h.finalize().into()
}

/// An authenticated account and what the account registry says about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Account {
    pub(crate) id: String,
    pub(crate) components: Vec<String>,
    pub(crate) groups: Vec<String>,
    pub(crate) classes: Vec<String>,
}

impl Account {
    #[cfg(test)]
    fn plain(id: &str) -> Account {
        Account { id: id.to_owned(), components: Vec::new(), groups: Vec::new(), classes: Vec::new() }
    }
}

/// An authenticated person on the Review API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Reviewer {
    pub(crate) id: String,
    pub(crate) role: crate::config::ReviewRole,
}

/// A token table: the devices' (entries are [`Account`]s) or the Review API's (entries are [`Reviewer`]s). The two
/// are separate tables on separate listeners, so a token of one is unknown to the other.
pub(crate) struct Authenticator<T = Account> {
    entries: Vec<([u8; 32], T)>,
}

impl<T> std::fmt::Debug for Authenticator<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator").field("entries", &self.entries.len()).finish()
    }
}

impl<T> Authenticator<T> {
    /// The token table of `(token, entry)` pairs.
    pub(crate) fn new<'a>(entries: impl IntoIterator<Item = (&'a BearerToken, T)>) -> Self {
        Authenticator { entries: entries.into_iter().map(|(token, a)| (token.digest(), a)).collect() }
    }

    /// Authenticates the value of an `authorization` header (`Bearer <token>`): every entry is compared in
    /// constant time.
    pub(crate) fn authenticate(&self, header: Option<&[u8]>) -> Result<&T> {
        let header = header.ok_or(ServerError::Unauthenticated)?;
        let token = header
            .strip_prefix(b"Bearer ")
            .or_else(|| header.strip_prefix(b"bearer "))
            .ok_or(ServerError::Unauthenticated)?;
        // No token of ours is longer (the configuration refuses them); the length is public.
        if token.len() > MAX_TOKEN_LEN + 2 {
            return Err(ServerError::Unauthenticated);
        }
        let token = std::str::from_utf8(token).map_err(|_| ServerError::Unauthenticated)?;
        let d = digest(token.trim());
        let mut found = subtle::Choice::from(0u8);
        let mut index = 0u32;
        for (i, (e, _)) in self.entries.iter().enumerate() {
            let eq = e.ct_eq(&d);
            index.conditional_assign(&(i as u32), eq);
            found |= eq;
        }
        if bool::from(found) {
            self.entries.get(index as usize).map(|(_, a)| a).ok_or(ServerError::Unauthenticated)
        } else {
            Err(ServerError::Unauthenticated)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> Authenticator {
        let (alice, bob) = (BearerToken::new("token-of-alice-0000"), BearerToken::new("token-of-bob-000000"));
        Authenticator::new([(&alice, Account::plain("alice")), (&bob, Account::plain("bob"))])
    }

    #[test]
    fn debug_redacts_the_token() {
        let dbg = format!("{:?}", BearerToken::new("token-of-alice-0000"));
        assert!(!dbg.contains("token-of-alice") && dbg.contains("<redacted>"), "{dbg}");
    }

    #[test]
    fn finds_the_right_account() {
        let a = auth();
        assert_eq!(a.authenticate(Some(b"Bearer token-of-bob-000000")).map(|a| a.id.as_str()).ok(), Some("bob"));
        assert_eq!(a.authenticate(Some(b"Bearer token-of-alice-0000")).map(|a| a.id.as_str()).ok(), Some("alice"));
    }

    #[test]
    fn rejects_missing_unknown_and_malformed() {
        let a = auth();
        for h in [
            None,
            Some(&b"token-of-bob-000000"[..]),
            Some(b"Bearer nope"),
            Some(b"Basic token-of-bob-000000"),
            Some(b"Bearer \xff"),
        ] {
            assert!(matches!(a.authenticate(h), Err(ServerError::Unauthenticated)));
        }
    }
}
