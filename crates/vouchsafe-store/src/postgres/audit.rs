//! The hash-chained audit log of the PostgreSQL store. Two transactions
//! (of any session or replica) that read the same head and append the same
//! sequence number cannot both commit: `seq` is the primary key, and the
//! loser fails with a serialization failure and runs again on the new head
//! (`conn::Pool::write`). A transaction-level advisory lock taken before
//! the head is read makes the loser wait for the winner's commit instead of
//! doing its work in parallel only to throw it away. The chain's hashing,
//! linking and checks are the shared ones of `crate::audit`.

use super::PostgresStore;
use super::conn::{Pg, get};
use crate::audit::{ChainVerifier, chain_record, check_entry, next_link};
use crate::convert::{hash32, limit_i64, to_i64, to_u64};
use crate::types::*;
use crate::{Result, StoreError};

/// Key of the advisory lock that serialises audit appends ("vsaudit\0").
const AUDIT_LOCK: i64 = 0x7673_6175_6469_7400;

/// Appends `e` inside the caller's transaction.
pub(super) fn append_audit_tx(q: &Pg<'_>, e: &AuditEntry<'_>) -> Result<AuditRecord> {
    check_entry(e)?;
    q.query_one("SELECT pg_advisory_xact_lock($1)", &[&AUDIT_LOCK])?;
    let last = q.query_opt("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1", &[])?;
    let last = match last {
        Some(r) => Some((to_u64(get(&r, 0)?)?, hash32(&get::<Vec<u8>>(&r, 1)?)?)),
        None => None,
    };
    let (seq, prev_hash) = next_link(last)?;
    let rec = chain_record(e, seq, prev_hash);
    q.execute(
        "INSERT INTO audit_log (seq, at, actor, action, detail, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[&to_i64(rec.seq)?, &rec.at, &rec.actor, &rec.action, &rec.detail, &&rec.prev_hash[..], &&rec.hash[..]],
    )?;
    Ok(rec)
}

fn audit_row(r: &tokio_postgres::Row) -> Result<AuditRecord> {
    Ok(AuditRecord {
        seq: to_u64(get(r, 0)?)?,
        at: get(r, 1)?,
        actor: get(r, 2)?,
        action: get(r, 3)?,
        detail: get(r, 4)?,
        prev_hash: hash32(&get::<Vec<u8>>(r, 5)?)?,
        hash: hash32(&get::<Vec<u8>>(r, 6)?)?,
    })
}

pub(super) fn append_audits(store: &PostgresStore, entries: &[AuditEntry<'_>]) -> Result<Vec<AuditRecord>> {
    if entries.is_empty() {
        return Ok(Vec::new());
    }
    store.pool.write(|q| entries.iter().map(|e| append_audit_tx(q, e)).collect())
}

pub(super) fn audit_entries(store: &PostgresStore, after_seq: u64, limit: usize) -> Result<Vec<AuditRecord>> {
    let after = i64::try_from(after_seq).unwrap_or(i64::MAX);
    store.pool.plain(|q| {
        q.query(
            "SELECT seq, at, actor, action, detail, prev_hash, hash FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2",
            &[&after, &limit_i64(limit)],
        )?
        .iter()
        .map(audit_row)
        .collect()
    })
}

/// Rows read per query while verifying (the chain is read in pages, in one
/// snapshot, so memory stays bounded on a long chain).
const VERIFY_PAGE: i64 = 10_000;

pub(super) fn verify_audit_chain(store: &PostgresStore) -> Result<AuditHead> {
    store.pool.read(|q| {
        let mut chain = ChainVerifier::new();
        let mut after = 0i64;
        loop {
            let rows = q.query(
                "SELECT seq, at, actor, action, detail, prev_hash, hash FROM audit_log
                 WHERE seq > $1 ORDER BY seq LIMIT $2",
                &[&after, &VERIFY_PAGE],
            )?;
            let Some(last) = rows.last() else { break };
            after = get(last, 0)?;
            for r in &rows {
                let rec = match audit_row(r) {
                    Ok(rec) => rec,
                    Err(StoreError::Corrupt(_)) => return Err(StoreError::AuditChainBroken { seq: chain.expected() }),
                    Err(e) => return Err(e),
                };
                chain.push(&rec)?;
            }
        }
        Ok(chain.finish())
    })
}
