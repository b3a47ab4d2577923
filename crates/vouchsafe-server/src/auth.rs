//! Bearer-token authentication. Tokens are kept only as SHA-256 digests and compared in constant time against
//! every known digest (no early exit), so neither timing nor memory reveals a token.

use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};

use crate::config::AccountConfig;
use crate::error::{Result, ServerError};

/// SHA-256 of a token (domain-separated).
pub(crate) fn digest(token: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"vouchsafe-server/v1/bearer-token");
    h.update(token.as_bytes());
    h.finalize().into()
}

/// An authenticated account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Account {
    pub(crate) id: String,
    pub(crate) excluded: bool,
}

/// The token table.
pub(crate) struct Authenticator {
    entries: Vec<([u8; 32], Account)>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator").field("accounts", &self.entries.len()).finish()
    }
}

impl Authenticator {
    pub(crate) fn new(accounts: &[AccountConfig]) -> Self {
        Authenticator {
            entries: accounts
                .iter()
                .map(|a| (digest(a.token.expose()), Account { id: a.account.clone(), excluded: a.excluded }))
                .collect(),
        }
    }

    /// Authenticates the value of an `authorization` header (`Bearer <token>`).
    pub(crate) fn authenticate(&self, header: Option<&[u8]>) -> Result<&Account> {
        let header = header.ok_or(ServerError::Unauthenticated)?;
        let token = header
            .strip_prefix(b"Bearer ")
            .or_else(|| header.strip_prefix(b"bearer "))
            .ok_or(ServerError::Unauthenticated)?;
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
    use crate::config::BearerToken;

    fn auth() -> Authenticator {
        Authenticator::new(&[
            AccountConfig { token: BearerToken::new("token-of-alice-0000"), account: "alice".into(), excluded: false },
            AccountConfig { token: BearerToken::new("token-of-bob-000000"), account: "bob".into(), excluded: true },
        ])
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
