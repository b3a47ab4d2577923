//! # vouchsafe-server
//!
//! The provider's matching server (`vouchsafe serve`): it serves under an authority-signed detection order, which
//! it verifies and enforces (validity window, revocations, scope, excluded classes), keeps a transparency log of
//! the order, its revocations, the Centre releases and the signed table manifests (`vouchsafe.v1.Transparency`),
//! distributes the blinded table built from the Centre's signed releases over gRPC (`vouchsafe.v1.Matching`), takes voucher batches from authenticated accounts, acknowledges them
//! once they are durably stored (the acknowledgement never depends on their contents), and matches them in a
//! background worker: open each voucher, keep counters for non-matches, store opened vouchers, run the per-account
//! threshold step, and open a case with the real matches' associated data after the second-hash check.
//!
//! Operations (configuration keys, files, monitoring, retention) are described in `docs/OPERATIONS.md`.
//!
//! Entry points:
//! * [`ServerConfig::load`]; [`governance::Fixture`] makes a whole consistent chain of keys and signed files;
//! * [`Governance::load`] verifies the signed order and the Centre release chain; [`build_table`] /
//!   [`update_table`] make and sign a table only from that chain, [`save_table`] + [`save_manifest`] persist it,
//!   [`append_update`] records an update;
//! * [`serve`] (bind the configured address, run until a shutdown future resolves), [`start`] (run in the
//!   background and learn the bound address, for tests), [`run_from_config`] (everything, for the CLI);
//! * [`process_pending`] to drain the inbox synchronously.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod aftercare;
mod auth;
mod backlog;
mod capture;
mod config;
mod error;
pub mod events;
pub mod governance;
mod grpc;
mod handoff;
mod metrics;
mod ratelimit;
mod review_grpc;
mod server;
mod service;
mod table;
mod translog;
mod worker;
mod worker_loop;

use std::sync::Arc;

use vouchsafe_store::{PostgresOptions, PostgresStore, SqliteStore, Store};

pub use aftercare::{PROVIDER_KEY_HEADER, PROVIDER_PUBLIC_KEY_HEADER, load_provider_key};
pub use backlog::BacklogView;
pub use config::{
    AccountConfig, BearerToken, CentreConfig, LimitsConfig, LogConfig, LogFormat, MAX_ORDER_SECONDS, OrderConfig,
    PostgresConfig, ProviderConfig, ReleasesConfig, RetentionConfig, ReviewConfig, ReviewRole, ReviewerConfig,
    ServerConfig, TableSigningConfig, TlsConfig, WorkerConfig, WorkerSchedule, unix_now,
};
pub use error::{ErrorChain, Result, ServerError};
pub use governance::{Governance, load_manifest, save_manifest};
pub use server::{RunningServer, serve, start};
pub use table::{
    TableReload, UpdateOutcome, append_update, build_table, load_table, read_updates, save_table, update_table,
};
pub use worker::{AUDIT_ACTOR, ProcessReport, SecondHashFailure, process_pending, second_hash_check};

/// Installs a `tracing` subscriber writing to stderr (JSON lines if `json`), filtered by `RUST_LOG` (default
/// `info`). The server never logs tokens, keys, shares, voucher contents or associated data.
pub fn init_tracing(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    // A second initialisation (tests) is harmless.
    let _ = if json { builder.json().try_init() } else { builder.try_init() };
}

/// Opens the configured database: PostgreSQL for a `postgres://` URL, else the SQLite file.
pub fn open_store(config: &ServerConfig) -> Result<Arc<dyn Store>> {
    if config.database_is_postgres() {
        let url = config.database.to_str().ok_or_else(|| ServerError::config("database", "is not UTF-8"))?;
        let options = PostgresOptions {
            connections: config.postgres.connections,
            schema: config.postgres.schema.clone(),
            ca: config.postgres.ca.clone(),
        };
        return Ok(Arc::new(PostgresStore::open_with(url, &options)?));
    }
    Ok(Arc::new(SqliteStore::open(&config.database)?))
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C): pass it to [`serve`] for graceful shutdown.
pub async fn termination_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Loads the table and opens the database named in `config`, then [`serve`]s until SIGTERM or SIGINT. On SIGHUP
/// it reloads the table file and the update history (see [`RunningServer::reload_table`]).
pub async fn run_from_config(config: ServerConfig) -> Result<()> {
    config.validate()?;
    let store = open_store(&config)?;
    let server = start(config, store).await?;
    wait_for_termination(&server).await;
    server.shutdown().await
}

/// Waits for SIGTERM or SIGINT; meanwhile every SIGHUP reloads the served table
/// ([`RunningServer::reload_table`]; a refused reload is logged and the served table stays).
pub async fn wait_for_termination(server: &RunningServer) {
    let term = termination_signal();
    tokio::pin!(term);
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::hangup()) {
            Ok(mut hup) => loop {
                tokio::select! {
                    _ = &mut term => return,
                    Some(()) = hup.recv() => {
                        let _ = server.reload_table().await;
                    }
                }
            },
            Err(_) => tracing::warn!("SIGHUP handler not installed: table updates need a restart"),
        }
    }
    #[cfg(not(unix))]
    let _ = server;
    term.await;
}
