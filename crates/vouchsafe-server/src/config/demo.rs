//! The preset file layout of a configuration in one directory: what [`crate::governance::Fixture`] writes its keys
//! and signed files into, for the demo, the tests and the benches.

use std::net::SocketAddr;
use std::path::Path;

use vouchsafe_phash::HashConfig;

use super::schema::default_chunk_slots;
use super::{
    AccountConfig, LimitsConfig, LogConfig, OrderConfig, PostgresConfig, ReleasesConfig, RetentionConfig, ServerConfig,
    TableSigningConfig, WorkerConfig,
};

impl ServerConfig {
    /// A configuration whose every file is in `dir` (nothing is created): listens on 127.0.0.1:0 (a free port),
    /// `server.db`, `table.secret` (+ `.manifest`), `table.updates`, `order.bin`, `authority.pub`,
    /// `revocations/`, `table.key`, `releases/`, `log/` and `log.key`, epoch 1, the associated-data length of hash
    /// configuration 1, and one account `demo` with a fixed, publicly known token. Never use the token for anything
    /// but a demo.
    pub fn in_dir(dir: &Path) -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            database: dir.join("server.db"),
            postgres: PostgresConfig::default(),
            metrics_listen: None,
            log_format: super::LogFormat::Text,
            table: dir.join("table.secret"),
            table_updates: Some(dir.join("table.updates")),
            chunk_slots: default_chunk_slots(),
            worker: WorkerConfig::default(),
            limits: LimitsConfig::default(),
            order: OrderConfig {
                signed_order: dir.join("order.bin"),
                authority_keys: vec![dir.join("authority.pub")],
                revocations: Some(dir.join("revocations")),
                epoch: 1,
                ad_len: (vouchsafe_phash::encoded_len(&HashConfig::V1) + 2) as u16,
            },
            table_signing: Some(TableSigningConfig { key: dir.join("table.key") }),
            releases: ReleasesConfig { dir: dir.join("releases") },
            log: LogConfig { dir: dir.join("log"), key: dir.join("log.key"), witnesses: Vec::new() },
            retention: RetentionConfig::default(),
            accounts: vec![AccountConfig::new("demo-token-not-secret-0001", "demo")],
            tls: None,
            provider: None,
            review: None,
            centre: None,
        }
    }
}
