//! The demo presets: a complete, valid configuration for a local demo, the tests and the benches.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use vouchsafe_phash::HashConfig;

use super::schema::default_chunk_slots;
use super::{AccountConfig, LimitsConfig, OrderConfig, RetentionConfig, ServerConfig, WorkerConfig, unix_now};
use crate::auth::BearerToken;

impl ServerConfig {
    /// [`ServerConfig::default_for_demo`] on 127.0.0.1:0 (a free port) with the database and the table file in
    /// `dir` and no update history: what the demo, the tests and the benches start from.
    pub fn demo_in(dir: &Path) -> Self {
        let mut c = Self::default_for_demo();
        c.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        c.database = dir.join("server.db");
        c.table = dir.join("table.secret");
        c.table_updates = None;
        c
    }

    /// A complete, valid configuration for a local demo: listens on 127.0.0.1:50051, files in the working
    /// directory, T = 3, p = 0.05, s = 4, an order valid from a minute ago for 30 days, and one account `demo`
    /// with a fixed, publicly known token. Never use it for anything but a demo.
    pub fn default_for_demo() -> Self {
        let now = unix_now();
        let hash = HashConfig::V1;
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            database: PathBuf::from("vouchsafe-demo.db"),
            table: PathBuf::from("vouchsafe-demo.table"),
            table_updates: Some(PathBuf::from("vouchsafe-demo.updates")),
            chunk_slots: default_chunk_slots(),
            worker: WorkerConfig::default(),
            limits: LimitsConfig::default(),
            order: OrderConfig {
                order_id: *b"vouchsafe-demo-1",
                service_id: "demo-messenger".to_owned(),
                epoch: 1,
                threshold: 3,
                synthetic_rate: 0.05,
                synthetic_cap: 4,
                ad_len: (vouchsafe_phash::encoded_len(&hash) + 2) as u16,
                hash_config_id: hash.id(),
                not_before: now - 60,
                not_after: now + 30 * 24 * 3600,
            },
            retention: RetentionConfig::default(),
            accounts: vec![AccountConfig {
                token: BearerToken::new("demo-token-not-secret-0001"),
                account: "demo".to_owned(),
                excluded: false,
            }],
            tls: None,
        }
    }
}
