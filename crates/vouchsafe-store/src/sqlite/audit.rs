//! The hash-chained audit log of the SQLite store: appending entries (inside
//! a caller's transaction or on their own), reading and verifying the chain.

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::SqliteStore;
use super::convert::{collect, hash32, limit_i64, to_i64, to_u64};
use crate::audit::{ChainVerifier, chain_record, check_entry, next_link};
use crate::types::*;
use crate::{Result, StoreError};

pub(super) fn append_audit_tx(tx: &Transaction<'_>, e: &AuditEntry<'_>) -> Result<AuditRecord> {
    check_entry(e)?;
    let last: Option<(i64, Vec<u8>)> = tx
        .query_row("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let last = last.map(|(s, h)| Ok::<_, StoreError>((to_u64(s)?, hash32(&h)?))).transpose()?;
    let (seq, prev_hash) = next_link(last)?;
    let rec = chain_record(e, seq, prev_hash);
    tx.execute(
        "INSERT INTO audit_log (seq, at, actor, action, detail, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![to_i64(rec.seq)?, rec.at, rec.actor, rec.action, rec.detail, &rec.prev_hash[..], &rec.hash[..]],
    )?;
    Ok(rec)
}

fn audit_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<AuditRecord>> {
    let seq: i64 = r.get(0)?;
    let prev: Vec<u8> = r.get(5)?;
    let hash: Vec<u8> = r.get(6)?;
    let at: i64 = r.get(1)?;
    let actor: String = r.get(2)?;
    let action: String = r.get(3)?;
    let detail: String = r.get(4)?;
    Ok((|| {
        Ok(AuditRecord {
            seq: to_u64(seq)?,
            at,
            actor,
            action,
            detail,
            prev_hash: hash32(&prev)?,
            hash: hash32(&hash)?,
        })
    })())
}

pub(super) fn append_audit(store: &SqliteStore, entry: &AuditEntry<'_>) -> Result<AuditRecord> {
    append_audits(store, std::slice::from_ref(entry))?.pop().ok_or(StoreError::Corrupt("no audit record"))
}

pub(super) fn append_audits(store: &SqliteStore, entries: &[AuditEntry<'_>]) -> Result<Vec<AuditRecord>> {
    if entries.is_empty() {
        return Ok(Vec::new());
    }
    store.write(|tx| entries.iter().map(|e| append_audit_tx(tx, e)).collect())
}

pub(super) fn audit_entries(conn: &Connection, after_seq: u64, limit: usize) -> Result<Vec<AuditRecord>> {
    let mut stmt = conn.prepare(
        "SELECT seq, at, actor, action, detail, prev_hash, hash FROM audit_log
         WHERE seq > ?1 ORDER BY seq LIMIT ?2",
    )?;
    let after = i64::try_from(after_seq).unwrap_or(i64::MAX);
    let rows = stmt.query_map(params![after, limit_i64(limit)], audit_row)?;
    collect(rows)
}

pub(super) fn verify_audit_chain(conn: &Connection) -> Result<AuditHead> {
    let mut stmt =
        conn.prepare("SELECT seq, at, actor, action, detail, prev_hash, hash FROM audit_log ORDER BY seq")?;
    let mut rows = stmt.query_map([], audit_row)?;
    let mut chain = ChainVerifier::new();
    for row in &mut rows {
        let rec = match row? {
            Ok(rec) => rec,
            Err(StoreError::Corrupt(_)) => {
                return Err(StoreError::AuditChainBroken { seq: chain.expected() });
            }
            Err(e) => return Err(e),
        };
        chain.push(&rec)?;
    }
    Ok(chain.finish())
}
