//! Schema migrations of the PostgreSQL store: applied at open, in one
//! transaction, under an advisory lock, so replicas that start together
//! apply each migration once and none of them reads a half-migrated schema.

use super::conn::{Pool, get, quote_ident};
use super::schema::MIGRATIONS;
use crate::{Result, StoreError};

/// Key of the advisory lock held while migrating ("vsmigr\0\0").
const MIGRATION_LOCK: i64 = 0x7673_6d69_6772_0000;

/// Creates the schema (if the store has one of its own) and applies the
/// pending migrations up to `target`.
pub(super) fn migrate(pool: &Pool, schema: Option<&str>, target: i64) -> Result<()> {
    // READ COMMITTED: after the lock, the version read is the one the last
    // holder committed (a SERIALIZABLE snapshot would be older than the lock).
    pool.write_read_committed(|q| {
        q.query_one("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
        if let Some(schema) = schema {
            q.batch(&format!("CREATE SCHEMA IF NOT EXISTS {}", quote_ident(schema)))?;
        }
        q.batch(
            "CREATE TABLE IF NOT EXISTS schema_version (
                 version    BIGINT PRIMARY KEY,
                 applied_at BIGINT NOT NULL
             )",
        )?;
        let current: i64 = get(&q.query_one("SELECT COALESCE(MAX(version), 0)::BIGINT FROM schema_version", &[])?, 0)?;
        let supported = i64::try_from(MIGRATIONS.len()).map_err(|_| StoreError::Corrupt("migration count"))?;
        if current > supported || current < 0 {
            return Err(StoreError::UnsupportedSchema { found: current, supported });
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        for (i, sql) in MIGRATIONS.iter().enumerate() {
            let version = i64::try_from(i + 1).map_err(|_| StoreError::Corrupt("migration count"))?;
            if version <= current || version > target {
                continue;
            }
            q.batch(sql)?;
            q.execute("INSERT INTO schema_version (version, applied_at) VALUES ($1, $2)", &[&version, &now])?;
        }
        Ok(())
    })
}
