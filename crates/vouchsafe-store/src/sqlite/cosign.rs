//! Witnesses' cosignatures of transparency-log checkpoints, shared by the server processes on one database.

use rusqlite::{Connection, params};

use super::SqliteStore;
use super::convert::{collect, to_i64, to_u64};
use crate::Result;
use crate::types::{LogCosignatures, NewLogCosignature};
use crate::validate::check_cosignature;

pub(super) fn put_log_cosignature(store: &SqliteStore, c: &NewLogCosignature<'_>) -> Result<()> {
    check_cosignature(c)?;
    let size = to_i64(c.tree_size)?;
    store.write(|tx| {
        tx.execute(
            "INSERT INTO log_cosignature (origin, checkpoint, tree_size, witness, line, added_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (checkpoint, witness) DO UPDATE SET line = excluded.line, added_at = excluded.added_at",
            params![c.origin, &c.checkpoint[..], size, c.witness, c.line, c.at],
        )?;
        Ok(())
    })
}

pub(super) fn log_cosignatures(conn: &mut Connection, origin: &str, checkpoint: &[u8; 32]) -> Result<LogCosignatures> {
    // One read transaction: the lines and the largest size from one snapshot.
    let tx = conn.transaction()?;
    let lines = {
        let mut stmt = tx.prepare("SELECT line FROM log_cosignature WHERE checkpoint = ?1 ORDER BY witness")?;
        let rows = stmt.query_map(params![&checkpoint[..]], |r| Ok(Ok(r.get::<_, String>(0)?)))?;
        collect(rows)?
    };
    let largest: i64 = tx.query_row(
        "SELECT COALESCE(MAX(tree_size), 0) FROM log_cosignature WHERE origin = ?1",
        params![origin],
        |r| r.get(0),
    )?;
    tx.commit()?;
    Ok(LogCosignatures { lines, largest_cosigned_size: to_u64(largest)? })
}
