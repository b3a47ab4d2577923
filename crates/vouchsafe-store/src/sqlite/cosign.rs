//! Witnesses' cosignatures of transparency-log checkpoints, shared by the server processes on one database.

use rusqlite::{Connection, params};

use super::SqliteStore;
use super::convert::{collect, to_i64, to_u64};
use crate::Result;
use crate::types::LogCosignatures;
use crate::validate::check_cosignature;

pub(super) fn put_log_cosignature(
    store: &SqliteStore,
    checkpoint: &[u8; 32],
    tree_size: u64,
    witness: &str,
    line: &str,
    at: i64,
) -> Result<()> {
    check_cosignature(witness, line)?;
    let size = to_i64(tree_size)?;
    store.write(|tx| {
        tx.execute(
            "INSERT INTO log_cosignature (checkpoint, tree_size, witness, line, added_at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (checkpoint, witness) DO UPDATE SET line = excluded.line, added_at = excluded.added_at",
            params![&checkpoint[..], size, witness, line, at],
        )?;
        Ok(())
    })
}

pub(super) fn log_cosignatures(conn: &Connection, checkpoint: &[u8; 32]) -> Result<LogCosignatures> {
    // One read transaction: the lines and the largest size from one snapshot.
    let tx = conn.unchecked_transaction()?;
    let lines = {
        let mut stmt = tx.prepare("SELECT line FROM log_cosignature WHERE checkpoint = ?1 ORDER BY witness")?;
        let rows = stmt.query_map(params![&checkpoint[..]], |r| Ok(Ok(r.get::<_, String>(0)?)))?;
        collect(rows)?
    };
    let largest: i64 = tx.query_row("SELECT COALESCE(MAX(tree_size), 0) FROM log_cosignature", [], |r| r.get(0))?;
    tx.commit()?;
    Ok(LogCosignatures { lines, largest_cosigned_size: to_u64(largest)? })
}
