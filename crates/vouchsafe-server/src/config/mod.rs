//! Server configuration: a TOML file ([`ServerConfig::load`]), then `VOUCHSAFE_*` environment overrides
//! ([`ServerConfig::apply_env`]), then validation with precise errors ([`ServerConfig::validate`]).
//! `docs/OPERATIONS.md` explains every key.
//!
//! One file per job: `schema` (the keys and their defaults), `file` (TOML in and out, with errors that never quote
//! the file), `env` (the overrides), `validate`, `demo` (the file layout in one directory) and `clock`.

mod clock;
mod demo;
mod env;
mod file;
mod schema;
mod validate;

#[cfg(test)]
mod tests;

pub use crate::auth::BearerToken;
pub use clock::unix_now;
pub use schema::{
    AccountConfig, CentreConfig, LimitsConfig, LogConfig, LogFormat, OrderConfig, PostgresConfig, ProviderConfig,
    ReleasesConfig, RetentionConfig, ReviewConfig, ReviewRole, ReviewerConfig, ServerConfig, TableSigningConfig,
    TlsConfig, WorkerConfig, WorkerSchedule,
};
pub use validate::MAX_ORDER_SECONDS;
