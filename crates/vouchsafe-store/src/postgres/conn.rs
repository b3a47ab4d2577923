//! Connections of the PostgreSQL store: a fixed pool of sessions driven by a
//! private runtime thread, a synchronous facade over tokio-postgres'
//! statements, and the transaction helpers every module uses.
//!
//! The store's API is synchronous (the server calls it from
//! `spawn_blocking`). Each connection's I/O task runs on a current-thread
//! tokio runtime of the store's own, on a thread of its own; a call waits
//! for its client futures with `futures_executor::block_on` on the calling
//! thread. So a call never starts or drops a tokio runtime on the caller's
//! thread, and works alike from a plain thread, a blocking-pool thread or
//! (blocking it, as a SQLite call would) an async task.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use futures_executor::block_on;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, IsolationLevel, NoTls, Row, Statement, Transaction};

use crate::{Result, StoreError};

/// How often a write transaction that lost a serialization conflict to a
/// concurrent one (another thread or another replica) is run again.
const MAX_ATTEMPTS: u32 = 12;

/// The driver's error, kept as the [`StoreError::Database`] source without
/// what PostgreSQL says beyond its message: a server error's DETAIL, HINT and
/// WHERE can quote stored values (a duplicate key names the key), so they are
/// never kept, printed or logged.
#[derive(Debug)]
pub(crate) struct PgError {
    code: Option<SqlState>,
    constraint: Option<String>,
    message: String,
}

impl std::fmt::Display for PgError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for PgError {}

/// Converts a driver error into a [`StoreError::Database`] (see [`PgError`]).
pub(crate) fn db(e: tokio_postgres::Error) -> StoreError {
    let (code, constraint, message) = match e.as_db_error() {
        Some(d) => (
            Some(d.code().clone()),
            d.constraint().map(str::to_owned),
            format!("PostgreSQL {} {}: {}", d.severity(), d.code().code(), d.message()),
        ),
        None => {
            // The client's own errors (connection, TLS handshake, protocol) with their causes, which name what
            // failed (e.g. the certificate's issuer is not the CA given) and carry no row data.
            let mut message = format!("PostgreSQL client: {e}");
            let mut cause = std::error::Error::source(&e);
            while let Some(c) = cause {
                message.push_str(": ");
                message.push_str(&c.to_string());
                cause = c.source();
            }
            (e.code().cloned(), None, message)
        }
    };
    StoreError::Database(Box::new(PgError { code, constraint, message }))
}

/// Whether `e` is a conflict with a concurrent transaction that running the
/// transaction again resolves: a serialization failure, a deadlock, or two
/// transactions that appended the same audit sequence number (PostgreSQL
/// reports that as a serialization failure too when the loser read the
/// chain's head first, as every append does; the constraint check covers
/// the case where it does not).
fn retryable(e: &StoreError) -> bool {
    let StoreError::Database(source) = e else { return false };
    let Some(pg) = source.downcast_ref::<PgError>() else { return false };
    match &pg.code {
        Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED => true,
        Some(c) if *c == SqlState::UNIQUE_VIOLATION => pg.constraint.as_deref() == Some("audit_log_pkey"),
        _ => false,
    }
}

/// Whether `e` is PostgreSQL giving up waiting for a lock (`lock_timeout`).
pub(crate) fn is_lock_timeout(e: &StoreError) -> bool {
    let StoreError::Database(source) = e else { return false };
    source.downcast_ref::<PgError>().is_some_and(|pg| pg.code.as_ref() == Some(&SqlState::LOCK_NOT_AVAILABLE))
}

/// The runtime that drives the connections' I/O, on a thread of its own. The
/// thread ends (and drops the runtime there) when this is dropped.
struct IoThread {
    handle: tokio::runtime::Handle,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl IoThread {
    fn start() -> Result<Self> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|source| StoreError::Io { what: "starting the PostgreSQL I/O runtime", source })?;
        let handle = rt.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("vouchsafe-pg-io".into())
            .spawn(move || {
                // Returns when the sender is dropped (or sends).
                let _ = rt.block_on(stopped);
            })
            .map_err(|source| StoreError::Io { what: "starting the PostgreSQL I/O thread", source })?;
        Ok(IoThread { handle, _stop: stop })
    }
}

/// One connection and the statements prepared on it.
pub(crate) struct Session {
    client: Client,
    cache: RefCell<HashMap<String, Statement>>,
}

/// A fixed pool of sessions, each opened on first use and opened again when
/// its connection was closed (a restarted server, a network failure).
pub(crate) struct Pool {
    config: tokio_postgres::Config,
    /// TLS to the server, if configured.
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    schema: Option<String>,
    sessions: Vec<Mutex<Option<Session>>>,
    next: AtomicUsize,
    io: IoThread,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool").field("sessions", &self.sessions.len()).finish_non_exhaustive()
    }
}

/// Largest CA file read.
const MAX_CA_FILE: u64 = 1 << 20;

/// The TLS connector for a server whose certificate chains to a CA of the PEM file `ca` (TLS 1.2 and 1.3, ring,
/// the server's name checked against the URL's host).
pub(crate) fn tls_connector(ca: &std::path::Path) -> Result<tokio_postgres_rustls::MakeRustlsConnect> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;
    let unusable = |why: &str| StoreError::Database(format!("the PostgreSQL CA file {}: {why}", ca.display()).into());
    let pem = vouchsafe_files::read_limited(ca, MAX_CA_FILE).map_err(|e| unusable(&e.to_string()))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|_| unusable("not PEM certificates"))?;
        roots.add(cert).map_err(|e| unusable(&format!("not a usable CA certificate ({e})")))?;
    }
    if roots.is_empty() {
        return Err(unusable("no certificate in it"));
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| unusable(&e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// Drives `connection` on the I/O runtime until it ends. An I/O error ends it; the client then reports it closed
/// and the session is opened again on next use.
fn drive<S, T>(connection: tokio_postgres::Connection<S, T>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let _ = connection.await;
    });
}

/// Quotes an SQL identifier (a schema name).
pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

impl Pool {
    pub(crate) fn new(
        config: tokio_postgres::Config,
        schema: Option<String>,
        size: usize,
        tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    ) -> Result<Self> {
        let sessions = (0..size.max(1)).map(|_| Mutex::new(None)).collect();
        Ok(Pool { config, tls, schema, sessions, next: AtomicUsize::new(0), io: IoThread::start()? })
    }

    fn connect(&self) -> Result<Session> {
        let config = self.config.clone();
        let tls = self.tls.clone();
        let task = self.io.handle.spawn(async move {
            let client = match tls {
                Some(tls) => {
                    let (client, connection) = config.connect(tls).await?;
                    drive(connection);
                    client
                }
                None => {
                    let (client, connection) = config.connect(NoTls).await?;
                    drive(connection);
                    client
                }
            };
            Ok::<_, tokio_postgres::Error>(client)
        });
        let client = block_on(task)
            .map_err(|_| StoreError::Database("the PostgreSQL I/O thread stopped".into()))?
            .map_err(db)?;
        if let Some(schema) = &self.schema {
            block_on(client.batch_execute(&format!("SET search_path TO {}", quote_ident(schema)))).map_err(db)?;
        }
        Ok(Session { client, cache: RefCell::new(HashMap::new()) })
    }

    /// A session: a free one if there is one, else waits for one.
    fn session(&self) -> Result<MutexGuard<'_, Option<Session>>> {
        let n = self.sessions.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        let mut guard = None;
        for i in 0..n {
            if let Some(m) = self.sessions.get((start + i) % n)
                && let Ok(g) = m.try_lock()
            {
                guard = Some(g);
                break;
            }
        }
        let mut guard = match guard {
            Some(g) => g,
            None => self
                .sessions
                .get(start)
                .ok_or(StoreError::Corrupt("empty pool"))?
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        };
        if guard.as_ref().is_none_or(|s| s.client.is_closed()) {
            *guard = Some(self.connect()?);
        }
        Ok(guard)
    }

    /// The schema the sessions work in, if not the database's default.
    pub(crate) fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    /// Runs `f` on a session outside any explicit transaction: every statement
    /// commits on its own. For single statements.
    pub(crate) fn plain<T>(&self, f: impl FnOnce(&Pg<'_>) -> Result<T>) -> Result<T> {
        let guard = self.session()?;
        let s = guard.as_ref().ok_or(StoreError::Corrupt("no session"))?;
        f(&Pg { inner: Inner::Client(&s.client), cache: &s.cache })
    }

    /// Runs `f` in a `REPEATABLE READ READ ONLY` transaction: several reads
    /// that see one snapshot of committed transactions. (Beside concurrent
    /// `SERIALIZABLE` writers such a snapshot can, rarely, show a state no
    /// serial order of them passes through; what the store reads this way,
    /// listings and statistics, is then consistent with the next snapshot.)
    pub(crate) fn read<T>(&self, f: impl FnOnce(&Pg<'_>) -> Result<T>) -> Result<T> {
        let mut guard = self.session()?;
        let s = guard.as_mut().ok_or(StoreError::Corrupt("no session"))?;
        let tx = block_on(
            s.client.build_transaction().isolation_level(IsolationLevel::RepeatableRead).read_only(true).start(),
        )
        .map_err(db)?;
        let out = f(&Pg { inner: Inner::Tx(&tx), cache: &s.cache })?;
        block_on(tx.commit()).map_err(db)?;
        Ok(out)
    }

    /// Runs `f` in one `SERIALIZABLE` transaction and commits. An error from
    /// `f` rolls everything back. A transaction that loses a serialization
    /// conflict (or a deadlock) against a concurrent one is run again from
    /// the start, so `f` must do nothing outside the database it cannot
    /// repeat. The effect is that of the SQLite store's one writer at a time.
    ///
    /// A connection lost during `COMMIT` leaves it unknown whether the
    /// transaction committed: the error is returned, and the caller's retry
    /// relies on the method's idempotency (batches, outbox messages, decisions
    /// and appeals are idempotent or refused the second time; an audit entry
    /// may then be appended twice, which the chain records honestly).
    pub(crate) fn write<T>(&self, f: impl FnMut(&Pg<'_>) -> Result<T>) -> Result<T> {
        self.write_at(IsolationLevel::Serializable, f)
    }

    /// [`Self::write`] at `READ COMMITTED`: each statement sees what
    /// committed before it started. For the migrations, whose advisory lock
    /// must be followed by a read of what the previous holder committed; the
    /// intake, whose races the unique key settles; and the outbox lease
    /// (`FOR UPDATE SKIP LOCKED`, which rechecks a row leased meanwhile).
    pub(crate) fn write_read_committed<T>(&self, f: impl FnMut(&Pg<'_>) -> Result<T>) -> Result<T> {
        self.write_at(IsolationLevel::ReadCommitted, f)
    }

    fn write_at<T>(&self, level: IsolationLevel, mut f: impl FnMut(&Pg<'_>) -> Result<T>) -> Result<T> {
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let result = (|| {
                let mut guard = self.session()?;
                let s = guard.as_mut().ok_or(StoreError::Corrupt("no session"))?;
                let tx = block_on(s.client.build_transaction().isolation_level(level).start()).map_err(db)?;
                let out = f(&Pg { inner: Inner::Tx(&tx), cache: &s.cache })?;
                block_on(tx.commit()).map_err(db)?;
                Ok(out)
            })();
            match result {
                Err(e) if retryable(&e) && attempt < MAX_ATTEMPTS => {
                    // A short, growing pause with jitter from the clock's
                    // nanoseconds (differs between threads and processes), so
                    // that two transactions that collided do not collide again.
                    let nanos = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| u64::from(d.subsec_nanos()));
                    let jitter_us = nanos % (1000 * u64::from(attempt).saturating_add(1));
                    std::thread::sleep(Duration::from_micros(u64::from(attempt) * 1000 + jitter_us));
                }
                r => return r,
            }
        }
    }
}

enum Inner<'a> {
    Client(&'a Client),
    Tx(&'a Transaction<'a>),
}

/// Statements on a session or inside a transaction, synchronously. Every
/// statement is prepared once per connection and cached.
pub(crate) struct Pg<'a> {
    inner: Inner<'a>,
    cache: &'a RefCell<HashMap<String, Statement>>,
}

/// A statement parameter.
pub(crate) type Param<'a> = &'a (dyn ToSql + Sync);

impl Pg<'_> {
    fn statement(&self, sql: &str) -> Result<Statement> {
        if let Some(s) = self.cache.borrow().get(sql) {
            return Ok(s.clone());
        }
        let st = match &self.inner {
            Inner::Client(c) => block_on(c.prepare(sql)),
            Inner::Tx(t) => block_on(t.prepare(sql)),
        }
        .map_err(db)?;
        self.cache.borrow_mut().insert(sql.to_owned(), st.clone());
        Ok(st)
    }

    /// Runs a statement; returns the number of rows it changed.
    pub(crate) fn execute(&self, sql: &str, params: &[Param<'_>]) -> Result<u64> {
        let st = self.statement(sql)?;
        match &self.inner {
            Inner::Client(c) => block_on(c.execute(&st, params)),
            Inner::Tx(t) => block_on(t.execute(&st, params)),
        }
        .map_err(db)
    }

    /// Runs a query; returns all its rows.
    pub(crate) fn query(&self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>> {
        let st = self.statement(sql)?;
        match &self.inner {
            Inner::Client(c) => block_on(c.query(&st, params)),
            Inner::Tx(t) => block_on(t.query(&st, params)),
        }
        .map_err(db)
    }

    /// Runs a query that returns at most one row.
    pub(crate) fn query_opt(&self, sql: &str, params: &[Param<'_>]) -> Result<Option<Row>> {
        let st = self.statement(sql)?;
        match &self.inner {
            Inner::Client(c) => block_on(c.query_opt(&st, params)),
            Inner::Tx(t) => block_on(t.query_opt(&st, params)),
        }
        .map_err(db)
    }

    /// Runs a query that returns exactly one row.
    pub(crate) fn query_one(&self, sql: &str, params: &[Param<'_>]) -> Result<Row> {
        self.query_opt(sql, params)?.ok_or(StoreError::Corrupt("a query returned no row"))
    }

    /// Runs several statements without parameters (not prepared, not cached).
    pub(crate) fn batch(&self, sql: &str) -> Result<()> {
        match &self.inner {
            Inner::Client(c) => block_on(c.batch_execute(sql)),
            Inner::Tx(t) => block_on(t.batch_execute(sql)),
        }
        .map_err(db)
    }
}

/// Column `idx` of `row` as a `T`; a type mismatch is a [`StoreError::Database`].
pub(crate) fn get<'r, T: tokio_postgres::types::FromSql<'r>>(row: &'r Row, idx: usize) -> Result<T> {
    row.try_get(idx).map_err(db)
}
