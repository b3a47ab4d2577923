//! The intake database (SQLite, WAL, `synchronous = FULL`): one row per accepted message with the receipt the
//! Centre gave, the withdrawals, and the latest indicator feedback per (provider, order, indicator).
//!
//! It holds no derivative, no account reference and no comment: what a forwarded report contains is in its
//! export; a manifest false positive is kept only as its verdict and reason.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior, params};

use crate::error::{CentreError, Result};

const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS messages (
    provider    TEXT    NOT NULL,
    id          BLOB    NOT NULL,
    digest      BLOB    NOT NULL,
    kind        TEXT    NOT NULL,
    order_id    BLOB    NOT NULL,
    received_at INTEGER NOT NULL,
    verdict     TEXT    NOT NULL,
    reason      TEXT,
    export_id   BLOB,
    urgent      INTEGER NOT NULL DEFAULT 0,
    receipt     BLOB    NOT NULL,
    PRIMARY KEY (provider, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS withdrawals (
    provider      TEXT    NOT NULL,
    report_id     BLOB    NOT NULL,
    withdrawal_id BLOB    NOT NULL,
    reason        TEXT    NOT NULL,
    at            INTEGER NOT NULL,
    PRIMARY KEY (provider, report_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS feedback (
    provider           TEXT    NOT NULL,
    order_id           BLOB    NOT NULL,
    primary_hash       BLOB    NOT NULL,
    second_hash_drops  INTEGER NOT NULL,
    review_rejections  INTEGER NOT NULL,
    at                 INTEGER NOT NULL,
    feedback_id        BLOB    NOT NULL,
    PRIMARY KEY (provider, order_id, primary_hash)
) WITHOUT ROWID;
";

fn configure(conn: &Connection) -> Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let _mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

/// Opens (creating if missing) the intake database and brings its schema up to date.
pub fn open(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    configure(&conn)?;
    conn.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY);")?;
    let v: i64 = conn.query_row("SELECT COALESCE(MAX(version), 0) FROM schema_version", [], |r| r.get(0))?;
    if v > SCHEMA_VERSION {
        return Err(CentreError::Database(format!("schema version {v} is newer than this build's {SCHEMA_VERSION}")));
    }
    if v < SCHEMA_VERSION {
        let tx = conn.unchecked_transaction()?;
        tx.execute_batch(SCHEMA)?;
        tx.execute("INSERT OR IGNORE INTO schema_version (version) VALUES (?1)", [SCHEMA_VERSION])?;
        tx.commit()?;
    }
    Ok(conn)
}

/// Opens an existing intake database (for `stats` and `feedback`: a missing file is an error, not a new one).
pub fn open_existing(path: &Path) -> Result<Connection> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(|_| CentreError::Io {
        what: "intake database",
        path: path.to_owned(),
        kind: std::io::ErrorKind::NotFound,
    })?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let v: i64 = conn
        .query_row("SELECT COALESCE(MAX(version), 0) FROM schema_version", [], |r| r.get(0))
        .map_err(|_| CentreError::Database("not a Centre intake database".to_owned()))?;
    if v != SCHEMA_VERSION {
        return Err(CentreError::Database(format!("schema version {v}, this build reads {SCHEMA_VERSION}")));
    }
    Ok(conn)
}

/// Begins the one write transaction of a message (IMMEDIATE: the write lock from the start).
pub fn begin(conn: &mut Connection) -> Result<Transaction<'_>> {
    Ok(conn.transaction_with_behavior(TransactionBehavior::Immediate)?)
}

/// What is held for a message id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Held {
    /// The digest of the message held.
    pub digest: [u8; 32],
    /// The receipt given for it.
    pub receipt: Vec<u8>,
}

fn arr<const N: usize>(v: Vec<u8>) -> Result<[u8; N]> {
    <[u8; N]>::try_from(v.as_slice()).map_err(|_| CentreError::Database("a stored id has the wrong length".into()))
}

/// The message `(provider, id)` if held.
pub fn held(conn: &Connection, provider: &str, id: &[u8; 16]) -> Result<Option<Held>> {
    let row: Option<(Vec<u8>, Vec<u8>)> = conn
        .query_row(
            "SELECT digest, receipt FROM messages WHERE provider = ?1 AND id = ?2",
            params![provider, &id[..]],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    row.map(|(d, receipt)| Ok(Held { digest: arr(d)?, receipt })).transpose()
}

/// A report as the intake database holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldReport {
    /// The order it was made under.
    pub order_id: [u8; 16],
    /// `forwarded` or `false-positive`.
    pub verdict: String,
    /// The export, if forwarded.
    pub export_id: Option<[u8; 16]>,
    /// Whether a withdrawal of it is recorded.
    pub withdrawn: bool,
}

/// The report `report_id` of `provider`, if held.
pub fn held_report(conn: &Connection, provider: &str, report_id: &[u8; 16]) -> Result<Option<HeldReport>> {
    type Row = (Vec<u8>, String, Option<Vec<u8>>, bool);
    let row: Option<Row> = conn
        .query_row(
            "SELECT m.order_id, m.verdict, m.export_id,
                    EXISTS (SELECT 1 FROM withdrawals w WHERE w.provider = m.provider AND w.report_id = m.id)
             FROM messages m WHERE m.provider = ?1 AND m.id = ?2 AND m.kind = 'report'",
            params![provider, &report_id[..]],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?;
    row.map(|(o, verdict, e, withdrawn)| {
        Ok(HeldReport { order_id: arr(o)?, verdict, export_id: e.map(arr).transpose()?, withdrawn })
    })
    .transpose()
}

/// The row of an accepted message.
#[derive(Clone, Debug)]
pub struct MessageRow<'a> {
    /// The sending provider.
    pub provider: &'a str,
    /// The message id.
    pub id: [u8; 16],
    /// Its digest.
    pub digest: [u8; 32],
    /// `report`, `withdrawal`, `feedback`.
    pub kind: &'a str,
    /// The order it names.
    pub order_id: [u8; 16],
    /// When the Centre received it.
    pub received_at: i64,
    /// The receipt verdict (`forwarded`, `false-positive`, `withdrawn`, `recorded`).
    pub verdict: &'a str,
    /// The false-positive reason.
    pub reason: Option<&'a str>,
    /// The export, if forwarded.
    pub export_id: Option<[u8; 16]>,
    /// A report's urgency flag.
    pub urgent: bool,
    /// The signed receipt.
    pub receipt: &'a [u8],
}

/// Inserts the message row.
pub fn insert_message(tx: &Transaction<'_>, m: &MessageRow<'_>) -> Result<()> {
    tx.execute(
        "INSERT INTO messages (provider, id, digest, kind, order_id, received_at, verdict, reason, export_id, urgent,
                               receipt)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            m.provider,
            &m.id[..],
            &m.digest[..],
            m.kind,
            &m.order_id[..],
            m.received_at,
            m.verdict,
            m.reason,
            m.export_id.as_ref().map(|e| &e[..]),
            m.urgent,
            m.receipt
        ],
    )?;
    Ok(())
}

/// Records a withdrawal.
pub fn insert_withdrawal(
    tx: &Transaction<'_>,
    provider: &str,
    report_id: &[u8; 16],
    withdrawal_id: &[u8; 16],
    reason: &str,
    at: i64,
) -> Result<()> {
    tx.execute(
        "INSERT INTO withdrawals (provider, report_id, withdrawal_id, reason, at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![provider, &report_id[..], &withdrawal_id[..], reason, at],
    )?;
    Ok(())
}

/// One feedback entry.
#[derive(Clone, Debug)]
pub struct FeedbackEntry<'a> {
    /// Canonical primary hash.
    pub primary: &'a [u8],
    /// Second-hash drops.
    pub second_hash_drops: i64,
    /// Review rejections.
    pub review_rejections: i64,
}

/// Sets the counts of (provider, order, primary) to the entry's unless a later feedback (by its `at`) is held.
pub fn upsert_feedback(
    tx: &Transaction<'_>,
    provider: &str,
    order_id: &[u8; 16],
    feedback_id: &[u8; 16],
    at: i64,
    e: &FeedbackEntry<'_>,
) -> Result<()> {
    tx.execute(
        "INSERT INTO feedback (provider, order_id, primary_hash, second_hash_drops, review_rejections, at, feedback_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (provider, order_id, primary_hash) DO UPDATE SET
             second_hash_drops = excluded.second_hash_drops,
             review_rejections = excluded.review_rejections,
             at = excluded.at,
             feedback_id = excluded.feedback_id
         WHERE excluded.at >= feedback.at",
        params![provider, &order_id[..], e.primary, e.second_hash_drops, e.review_rejections, at, &feedback_id[..]],
    )?;
    Ok(())
}

/// Rows of the messages table (for tests and `stats`).
pub fn message_count(conn: &Connection) -> Result<u64> {
    let n: i64 = conn.query_row("SELECT COUNT(*) FROM messages", [], |r| r.get(0))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feedback_keeps_the_latest_counts() {
        let d = tempfile::tempdir().unwrap();
        let mut conn = open(&d.path().join("i.sqlite")).unwrap();
        let e = |drops| FeedbackEntry { primary: b"p", second_hash_drops: drops, review_rejections: 0 };
        for (at, drops) in [(10, 1), (30, 3), (20, 2)] {
            let tx = begin(&mut conn).unwrap();
            upsert_feedback(&tx, "prov", &[1; 16], &[at as u8; 16], at, &e(drops)).unwrap();
            tx.commit().unwrap();
        }
        let drops: i64 = conn.query_row("SELECT second_hash_drops FROM feedback", [], |r| r.get(0)).unwrap();
        assert_eq!(drops, 3);
        // Opening again keeps the schema and the data.
        drop(conn);
        let conn = open_existing(&d.path().join("i.sqlite")).unwrap();
        assert_eq!(message_count(&conn).unwrap(), 0);
        assert!(open_existing(&d.path().join("missing.sqlite")).is_err());
    }
}
