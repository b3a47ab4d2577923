//! The backends the conformance suite runs against: SQLite (a file database in a temporary directory, always) and
//! PostgreSQL (a schema of its own per test in the database `VOUCHSAFE_TEST_POSTGRES` names; `.ci/run` and
//! `scripts/test.sh` start a private cluster and set it). Without that variable the PostgreSQL half prints that it
//! was skipped; with `VOUCHSAFE_REQUIRE_POSTGRES=1` (CI) a missing variable fails the tests instead.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rusqlite::Connection;
use rusqlite::types::Value;
use vouchsafe_store::*;

/// One backend's store under test, with what the tests need to look beneath the trait.
pub struct Backend {
    pub store: Arc<dyn Store>,
    kind: Kind,
}

enum Kind {
    Sqlite { _dir: tempfile::TempDir, path: PathBuf },
    Postgres { url: String, schema: String, pg: Arc<PostgresStore> },
}

impl std::ops::Deref for Backend {
    type Target = dyn Store;
    fn deref(&self) -> &Self::Target {
        &*self.store
    }
}

static SCHEMAS: AtomicUsize = AtomicUsize::new(0);

impl Backend {
    pub fn sqlite() -> Backend {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("store.db");
        let store = Arc::new(SqliteStore::open(&path).expect("open SQLite"));
        Backend { store, kind: Kind::Sqlite { _dir: dir, path } }
    }

    /// A store on a fresh schema of the test database, or `None` (after saying so) when there is none.
    pub fn postgres(test: &str) -> Option<Backend> {
        let Ok(url) = std::env::var("VOUCHSAFE_TEST_POSTGRES") else {
            if std::env::var("VOUCHSAFE_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") {
                panic!("VOUCHSAFE_REQUIRE_POSTGRES=1 but VOUCHSAFE_TEST_POSTGRES is not set");
            }
            eprintln!(
                "{test}: PostgreSQL half skipped: VOUCHSAFE_TEST_POSTGRES is not set \
                 (scripts/test.sh starts a private cluster and sets it)"
            );
            return None;
        };
        let n = SCHEMAS.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let schema = format!("conf_{}_{n}_{nanos}", std::process::id());
        let pg = Arc::new(Self::open_pg(&url, &schema));
        Some(Backend { store: pg.clone(), kind: Kind::Postgres { url, schema, pg } })
    }

    fn open_pg(url: &str, schema: &str) -> PostgresStore {
        let options = PostgresOptions { connections: 4, schema: Some(schema.to_owned()), ca: None };
        PostgresStore::open_with(url, &options).unwrap_or_else(|e| panic!("open PostgreSQL: {e}: {:?}", e))
    }

    /// A second store on the same database, as another process (a restarted server, another replica) opens it.
    pub fn reopen(&self) -> Arc<dyn Store> {
        match &self.kind {
            Kind::Sqlite { path, .. } => Arc::new(SqliteStore::open(path).expect("reopen SQLite")),
            Kind::Postgres { url, schema, .. } => Arc::new(Self::open_pg(url, schema)),
        }
    }

    /// Every row of every table, as text, sorted: equal dumps mean nothing changed.
    pub fn dump(&self) -> Vec<String> {
        match &self.kind {
            Kind::Sqlite { path, .. } => {
                let c = Connection::open(path).unwrap();
                let tables: Vec<String> = {
                    let mut stmt =
                        c.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").unwrap();
                    stmt.query_map([], |r| r.get(0)).unwrap().collect::<rusqlite::Result<_>>().unwrap()
                };
                let mut out = Vec::new();
                for t in tables {
                    let mut stmt = c.prepare(&format!("SELECT * FROM \"{t}\"")).unwrap();
                    let n = stmt.column_count();
                    let mut rows = stmt.query([]).unwrap();
                    while let Some(r) = rows.next().unwrap() {
                        let vals: Vec<Value> = (0..n).map(|i| r.get::<_, Value>(i).unwrap()).collect();
                        out.push(format!("{t}: {vals:?}"));
                    }
                }
                out.sort();
                out
            }
            Kind::Postgres { pg, .. } => pg.debug_dump().unwrap(),
        }
    }

    /// The count a `SELECT COUNT(*) …` over the store's tables returns (SQL both backends read alike).
    /// SQL for the size a column's value takes where it is stored (after any compression): `length` on SQLite,
    /// which stores values as given, `pg_column_size` on PostgreSQL.
    pub fn stored_size(&self, column: &str) -> String {
        match &self.kind {
            Kind::Sqlite { .. } => format!("length({column})"),
            Kind::Postgres { .. } => format!("pg_column_size({column})::BIGINT"),
        }
    }

    pub fn count(&self, sql: &str) -> i64 {
        match &self.kind {
            Kind::Sqlite { path, .. } => Connection::open(path).unwrap().query_row(sql, [], |r| r.get(0)).unwrap(),
            Kind::Postgres { pg, .. } => pg.debug_count(sql).unwrap(),
        }
    }
}

/// Runs each named test function (`fn name(b: &Backend)`) once per backend: `sqlite::name` and `postgres::name`.
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $name() {
                    super::$name(&crate::support::Backend::sqlite());
                }
            )*
        }
        mod postgres {
            $(
                #[test]
                fn $name() {
                    if let Some(b) = crate::support::Backend::postgres(stringify!($name)) {
                        super::$name(&b);
                    }
                }
            )*
        }
    };
}
pub(crate) use conformance;
