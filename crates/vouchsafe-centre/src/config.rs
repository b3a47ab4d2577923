//! `centre.toml`: the Centre's configuration ([`CentreConfig::load`]), and the keys it names ([`Keys::load`]).
//!
//! Unknown keys are refused; relative paths are resolved against the file's directory. A parse error names the
//! line, the column, the key (if it is one of the schema's) and the kind of problem, never the text of the line
//! (which may hold something pasted in the wrong place).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use vouchsafe_case::{CentreReceiptSigner, ProviderKey};
use vouchsafe_orders::{AuthorityKeyring, AuthorityPublicKey};
use vouchsafe_release::{CentreKey, CentreSigningKey};

use crate::error::{CentreError, Result};

/// Header of the Centre's secret key file (`vouchsafe centre keygen`).
pub const CENTRE_KEY_HEADER: &str = "vouchsafe-centre-key v1";
/// Header of a provider's public key file (hex of the 32 `ProviderKey` bytes).
pub const PROVIDER_PUBLIC_HEADER: &str = "vouchsafe-provider-public-key v1";
/// Header of an authority's public key file (`vouchsafe authority keygen`).
pub const AUTHORITY_PUBLIC_HEADER: &str = "vouchsafe-authority-public-key v1";
/// Most pinned authority keys.
pub const MAX_AUTHORITY_KEYS: usize = 16;
/// Most providers.
pub const MAX_PROVIDERS: usize = 1024;
/// Most services per provider.
pub const MAX_SERVICES: usize = 256;

/// The Centre's configuration (see `docs/CENTRE.md`).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CentreConfig {
    /// Address the gRPC server listens on (`127.0.0.1:0` picks a free port).
    pub listen: SocketAddr,
    /// The Centre's secret key file (`vouchsafe-centre-key v1`).
    pub key: PathBuf,
    /// The intake database (SQLite, created if missing).
    pub database: PathBuf,
    /// The indicator database of `vouchsafe centre import` (read at each check, for false-positive marks).
    pub indicators: PathBuf,
    /// The directory of the Centre's releases (`<line>-NNNNNN.bin`).
    pub releases: PathBuf,
    /// Pinned authority public key files.
    pub authority_keys: Vec<PathBuf>,
    /// Directory of signed revocations (`*.bin`); optional.
    #[serde(default)]
    pub revocations: Option<PathBuf>,
    /// Where export bundles are written: one directory per forwarded report.
    pub exports: PathBuf,
    /// The providers whose messages the Centre accepts.
    #[serde(default)]
    pub providers: Vec<ProviderConfig>,
}

/// One pinned provider.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// Its name: must equal the `provider` field of its messages.
    pub id: String,
    /// Its public key file (`vouchsafe-provider-public-key v1`).
    pub key: PathBuf,
    /// The order service ids it may report under.
    pub services: Vec<String>,
}

fn name_ok(s: &str) -> bool {
    (1..=vouchsafe_case::MAX_NAME).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'@' | b'-'))
}

impl CentreConfig {
    /// Reads the TOML file at `path`, resolves relative paths against its directory and validates.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = vouchsafe_files::read_limited(path, 1 << 20)
            .map_err(|e| CentreError::config(path.display().to_string(), e))?;
        let text =
            std::str::from_utf8(&bytes).map_err(|_| CentreError::config(path.display().to_string(), "not UTF-8"))?;
        let mut cfg = Self::from_toml_str(text)?;
        let base = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        cfg.resolve_paths(base);
        cfg.validate()?;
        Ok(cfg)
    }

    /// Parses TOML (no path resolution, no validation).
    pub fn from_toml_str(text: &str) -> Result<Self> {
        toml::from_str(text).map_err(|e| describe(text, &e))
    }

    /// Makes every relative path absolute against `base`.
    pub fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        fix(&mut self.key);
        fix(&mut self.database);
        fix(&mut self.indicators);
        fix(&mut self.releases);
        fix(&mut self.exports);
        self.authority_keys.iter_mut().for_each(fix);
        if let Some(r) = self.revocations.as_mut() {
            fix(r);
        }
        for p in &mut self.providers {
            fix(&mut p.key);
        }
    }

    /// The rules serde cannot express.
    pub fn validate(&self) -> Result<()> {
        if self.authority_keys.is_empty() || self.authority_keys.len() > MAX_AUTHORITY_KEYS {
            return Err(CentreError::config("authority_keys", format!("1..={MAX_AUTHORITY_KEYS} key files")));
        }
        if self.providers.len() > MAX_PROVIDERS {
            return Err(CentreError::config("providers", format!("at most {MAX_PROVIDERS}")));
        }
        for (i, p) in self.providers.iter().enumerate() {
            if !name_ok(&p.id) {
                return Err(CentreError::config(
                    format!("providers[{i}].id"),
                    "1..=64 bytes of letters, digits, `.`, `_`, `@`, `-`",
                ));
            }
            if self.providers.iter().take(i).any(|q| q.id == p.id) {
                return Err(CentreError::config(format!("providers[{i}].id"), "a provider is listed twice"));
            }
            if p.services.is_empty() || p.services.len() > MAX_SERVICES {
                return Err(CentreError::config(format!("providers[{i}].services"), format!("1..={MAX_SERVICES}")));
            }
            if p.services.iter().any(|s| s.is_empty() || s.len() > 255 || s.chars().any(char::is_control)) {
                return Err(CentreError::config(
                    format!("providers[{i}].services"),
                    "each a service id of 1..=255 bytes without control characters",
                ));
            }
        }
        Ok(())
    }
}

/// The keys the configuration names, read and checked.
pub struct Keys {
    /// The Centre's release key (same secret as the receipt signer).
    pub centre: CentreKey,
    /// The receipt and export signer.
    pub signer: CentreReceiptSigner,
    /// The pinned authority keys.
    pub authorities: AuthorityKeyring,
    /// The pinned providers: name, key, services.
    pub providers: Vec<(String, ProviderKey, Vec<String>)>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("centre_key_id", &hex::encode(self.centre.key_id()))
            .field("providers", &self.providers.len())
            .finish_non_exhaustive()
    }
}

impl Keys {
    /// Reads the Centre key, the authority keys and every provider key; errors name the key and the file.
    pub fn load(config: &CentreConfig) -> Result<Self> {
        let secret = vouchsafe_files::read_key_text(&config.key, CENTRE_KEY_HEADER)
            .map_err(|e| CentreError::config("key", format!("{}: {e}", config.key.display())))?;
        let centre = CentreSigningKey::from_bytes(&secret).public();
        let signer = CentreReceiptSigner::from_secret_bytes(&secret);
        drop(secret);
        if signer.public().to_bytes() != centre.to_bytes() {
            return Err(CentreError::Internal("the receipt signer's key is not the Centre key"));
        }
        let mut keys = Vec::with_capacity(config.authority_keys.len());
        for (i, p) in config.authority_keys.iter().enumerate() {
            let what = || format!("authority_keys[{i}]");
            let bytes = vouchsafe_files::read_key_text(p, AUTHORITY_PUBLIC_HEADER)
                .map_err(|e| CentreError::config(what(), format!("{}: {e}", p.display())))?;
            keys.push(
                AuthorityPublicKey::from_bytes(&bytes)
                    .map_err(|e| CentreError::config(what(), format!("{}: {e}", p.display())))?,
            );
        }
        let authorities = AuthorityKeyring::new(keys).map_err(|e| CentreError::config("authority_keys", e))?;
        let mut providers = Vec::with_capacity(config.providers.len());
        for (i, p) in config.providers.iter().enumerate() {
            let what = || format!("providers[{i}].key");
            let bytes = vouchsafe_files::read_key_text(&p.key, PROVIDER_PUBLIC_HEADER)
                .map_err(|e| CentreError::config(what(), format!("{}: {e}", p.key.display())))?;
            let key = ProviderKey::from_bytes(&bytes)
                .map_err(|e| CentreError::config(what(), format!("{}: {e}", p.key.display())))?;
            providers.push((p.id.clone(), key, p.services.clone()));
        }
        Ok(Keys { centre, signer, authorities, providers })
    }

    /// The pinned provider of this name.
    pub fn provider(&self, name: &str) -> Option<(&ProviderKey, &[String])> {
        self.providers.iter().find(|(n, _, _)| n == name).map(|(_, k, s)| (k, s.as_slice()))
    }
}

/// Every key of the schema: a key on the line of an error is named only if it is one of these.
const KNOWN_KEYS: &[&str] = &[
    "listen",
    "key",
    "database",
    "indicators",
    "releases",
    "authority_keys",
    "revocations",
    "exports",
    "providers",
    "id",
    "services",
];

/// The configuration error for a TOML parse error of `text`: position, known key, kind; never the text.
fn describe(text: &str, e: &toml::de::Error) -> CentreError {
    let (key, reason) = vouchsafe_files::describe_parse_error(text, e.message(), e.span(), KNOWN_KEYS);
    CentreError::config(key, reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
listen = "127.0.0.1:7443"
key = "centre.key"
database = "centre-intake.sqlite"
indicators = "centre.db"
releases = "releases"
authority_keys = ["authority.pub"]
revocations = "revocations"
exports = "exports"
[[providers]]
id = "provider-a"
key = "provider.pub"
services = ["messenger.example"]
"#;

    fn err(text: &str) -> (String, String) {
        match CentreConfig::from_toml_str(text).and_then(|c| c.validate().map(|()| c)) {
            Err(CentreError::Config { key, reason }) => (key, reason),
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn parses_and_resolves() {
        let mut c = CentreConfig::from_toml_str(GOOD).unwrap();
        c.validate().unwrap();
        c.resolve_paths(Path::new("/srv/centre"));
        assert_eq!(c.key, Path::new("/srv/centre/centre.key"));
        assert_eq!(c.providers[0].key, Path::new("/srv/centre/provider.pub"));
        assert_eq!(c.revocations.as_deref(), Some(Path::new("/srv/centre/revocations")));
    }

    #[test]
    fn unknown_key_is_named_without_its_value() {
        let (key, reason) = err(&GOOD.replace("exports = \"exports\"", "exports = \"exports\"\nsecret = \"hunter2\""));
        assert_eq!(key, "config file");
        assert!(reason.contains("unknown key") && !reason.contains("hunter2"), "{reason}");
        let (key, reason) = err(&GOOD.replace("services = [", "colour = 1\nservices = ["));
        assert_eq!(key, "providers");
        assert!(reason.contains("unknown key"), "{reason}");
    }

    #[test]
    fn bad_values_name_their_key() {
        let (key, reason) = err(&GOOD.replace("127.0.0.1:7443", "nowhere"));
        assert_eq!(key, "listen");
        assert!(reason.contains("invalid value") && !reason.contains("nowhere"), "{reason}");
        let (key, _) = err(&GOOD.replace("id = \"provider-a\"", "id = \"provider a\""));
        assert_eq!(key, "providers[0].id");
        let (key, _) = err(&GOOD.replace("services = [\"messenger.example\"]", "services = []"));
        assert_eq!(key, "providers[0].services");
        let (key, _) = err(&GOOD.replace("authority_keys = [\"authority.pub\"]", "authority_keys = []"));
        assert_eq!(key, "authority_keys");
        let (_, reason) = err(&GOOD.replace("database = \"centre-intake.sqlite\"\n", ""));
        assert!(reason.contains("missing key `database`"), "{reason}");
        let twice = format!("{GOOD}[[providers]]\nid = \"provider-a\"\nkey = \"b.pub\"\nservices = [\"x\"]\n");
        assert_eq!(err(&twice).0, "providers[1].id");
    }
}
