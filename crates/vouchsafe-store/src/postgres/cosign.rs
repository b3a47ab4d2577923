//! Witnesses' cosignatures of transparency-log checkpoints, shared by the replicas.

use super::PostgresStore;
use super::conn::get;
use crate::Result;
use crate::convert::{to_i64, to_u64};
use crate::types::{LogCosignatures, NewLogCosignature};
use crate::validate::check_cosignature;

pub(super) fn put_log_cosignature(store: &PostgresStore, c: &NewLogCosignature<'_>) -> Result<()> {
    check_cosignature(c)?;
    let size = to_i64(c.tree_size)?;
    // One statement: two replicas storing the same witness's line at once settle on the key.
    store.pool.plain(|q| {
        q.execute(
            "INSERT INTO log_cosignature (origin, checkpoint, tree_size, witness, line, added_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (checkpoint, witness) DO UPDATE SET line = EXCLUDED.line, added_at = EXCLUDED.added_at",
            &[&c.origin, &&c.checkpoint[..], &size, &c.witness, &c.line, &c.at],
        )?;
        Ok(())
    })
}

pub(super) fn log_cosignatures(store: &PostgresStore, origin: &str, checkpoint: &[u8; 32]) -> Result<LogCosignatures> {
    // One statement, one snapshot: the checkpoint's lines and the origin's largest cosigned size beside each (or
    // one row of NULL lines when the checkpoint has none).
    store.pool.plain(|q| {
        let rows = q.query(
            "SELECT c.line, m.largest
             FROM (SELECT COALESCE(MAX(tree_size), 0)::BIGINT AS largest FROM log_cosignature WHERE origin = $1) m
             LEFT JOIN log_cosignature c ON c.checkpoint = $2 ORDER BY c.witness",
            &[&origin, &&checkpoint[..]],
        )?;
        let mut out = LogCosignatures::default();
        for r in &rows {
            out.largest_cosigned_size = to_u64(get::<i64>(r, 1)?)?;
            if let Some(line) = get::<Option<String>>(r, 0)? {
                out.lines.push(line);
            }
        }
        Ok(out)
    })
}
