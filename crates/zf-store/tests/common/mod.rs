//! The harness behind the store stories: one empty database per test, on either backend, with
//! raw SQL access to that same database for the checks that must go around the store (the
//! append-only triggers, a schema from the future, ciphertext moved between rows).
//!
//! PostgreSQL runs when `ZF_TEST_POSTGRES_URL` names a server (a `postgres://` URL). Each test
//! gets its own schema, selected through the connection's `search_path`, and drops it at the
//! end. Without the variable the PostgreSQL variants skip, unless `ZF_REQUIRE_POSTGRES=1`, in
//! which case they fail: CI sets it so a missing server cannot pass as green.

pub mod fixtures;

use std::path::PathBuf;

use tokio_postgres::NoTls;
use zf_store::{PgStore, SqliteStore, Store, StoreError};

pub const POSTGRES_URL_VAR: &str = "ZF_TEST_POSTGRES_URL";
pub const REQUIRE_POSTGRES_VAR: &str = "ZF_REQUIRE_POSTGRES";

/// Generates, for each story `async fn story(db: &TestDb)`, the tests `story_sqlite` and
/// `story_postgres`. `macro_rules!` cannot build identifiers, so both names are spelled out
/// and checked at compile time against the story's name.
macro_rules! on_both_backends {
    ($($story:ident => $sqlite:ident, $postgres:ident;)+) => {$(
        const _: () = assert!(
            $crate::common::same_str(stringify!($sqlite), concat!(stringify!($story), "_sqlite"))
                && $crate::common::same_str(
                    stringify!($postgres),
                    concat!(stringify!($story), "_postgres")
                ),
            concat!("test names for ", stringify!($story), " must be <story>_sqlite and <story>_postgres"),
        );

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $sqlite() {
            let db = $crate::common::TestDb::sqlite().await;
            $story(&db).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $postgres() {
            if let Some(db) = $crate::common::TestDb::postgres().await {
                $story(&db).await;
            }
        }
    )+};
}
pub(crate) use on_both_backends;

/// `a == b`, usable in a constant.
pub const fn same_str(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    Postgres,
}

/// An empty database of one backend. [`TestDb::open`] starts a store ("a node") on it; call it
/// again for a second node on the same database.
pub struct TestDb {
    backend: Backend,
    /// One chain key per database, shared by every node opened on it.
    chain_key: std::sync::Arc<zf_crypto::AuditChainKey>,
}

enum Backend {
    Sqlite {
        _dir: tempfile::TempDir,
        path: PathBuf,
    },
    Postgres {
        /// The server URL as configured, used to drop the schema at the end.
        base_url: String,
        /// `base_url` with `search_path` set to `schema`.
        url: String,
        schema: String,
        raw: tokio_postgres::Client,
    },
}

impl TestDb {
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("create a temporary directory");
        let path = dir.path().join("zhangfang.db");
        TestDb {
            backend: Backend::Sqlite { _dir: dir, path },
            chain_key: std::sync::Arc::new(zf_crypto::AuditChainKey::generate()),
        }
    }

    /// A fresh schema on the configured server, or `None` (after saying so) when none is
    /// configured and none is required.
    pub async fn postgres() -> Option<TestDb> {
        let base_url = match std::env::var(POSTGRES_URL_VAR) {
            Ok(url) if !url.trim().is_empty() => url.trim().to_owned(),
            _ => {
                if std::env::var(REQUIRE_POSTGRES_VAR).is_ok_and(|v| v.trim() == "1") {
                    panic!(
                        "{REQUIRE_POSTGRES_VAR}=1 but {POSTGRES_URL_VAR} is not set: the \
                         PostgreSQL store tests cannot run. Set it to a server URL such as \
                         postgres://postgres@127.0.0.1:5432/test"
                    );
                }
                eprintln!("skipping PostgreSQL: {POSTGRES_URL_VAR} not set");
                return None;
            }
        };
        let schema = format!("zf_t_{}", uuid::Uuid::new_v4().simple());

        let admin = connect(&base_url).await;
        admin
            .batch_execute(&format!("CREATE SCHEMA {schema}"))
            .await
            .unwrap_or_else(|e| panic!("create schema {schema}: {}", pg_message(&e)));
        drop(admin);

        let separator = if base_url.contains('?') { '&' } else { '?' };
        let url = format!("{base_url}{separator}options=-csearch_path%3D{schema}");
        let raw = connect(&url).await;
        let current: String = raw
            .query_one("SELECT current_schema()::TEXT", &[])
            .await
            .map(|row| row.get(0))
            .unwrap_or_else(|e| panic!("read current_schema(): {}", pg_message(&e)));
        assert_eq!(
            current, schema,
            "the search_path option in the URL did not select the test schema"
        );
        Some(TestDb {
            backend: Backend::Postgres {
                base_url,
                url,
                schema,
                raw,
            },
            chain_key: std::sync::Arc::new(zf_crypto::AuditChainKey::generate()),
        })
    }

    pub fn kind(&self) -> Kind {
        match self.backend {
            Backend::Sqlite { .. } => Kind::Sqlite,
            Backend::Postgres { .. } => Kind::Postgres,
        }
    }

    /// Opens a store on this database, running its migrations.
    pub async fn open(&self) -> Result<Box<dyn Store>, StoreError> {
        let store = self.open_unkeyed().await?;
        store.install_audit_chain_key(self.chain_key.clone());
        Ok(store)
    }

    /// Opens a store without its audit chain key, as a node is before its keys are loaded.
    pub async fn open_unkeyed(&self) -> Result<Box<dyn Store>, StoreError> {
        match &self.backend {
            Backend::Sqlite { path, .. } => Ok(Box::new(SqliteStore::open(path).await?)),
            Backend::Postgres { url, schema, .. } => {
                let store = PgStore::connect(url).await?;
                // Guards every other assertion: tables created anywhere but the test's own
                // schema would be shared between tests running in parallel.
                let here = self
                    .query_i64(&format!(
                        "SELECT COUNT(*) FROM information_schema.tables
                         WHERE table_schema = '{schema}' AND table_name = 'schema_migrations'"
                    ))
                    .await;
                assert_eq!(
                    here, 1,
                    "the store did not migrate the test schema {schema}"
                );
                Ok(Box::new(store))
            }
        }
    }

    /// [`TestDb::open`] for stories that need a working store to begin with.
    /// The SQLite database file, to look at it from outside the store.
    // Each test binary compiles this module; not all of them look at files.
    #[allow(dead_code)]
    pub fn sqlite_path(&self) -> Option<&std::path::Path> {
        match &self.backend {
            Backend::Sqlite { path, .. } => Some(path),
            Backend::Postgres { .. } => None,
        }
    }

    pub async fn store(&self) -> Box<dyn Store> {
        match self.open().await {
            Ok(store) => {
                assert_eq!(
                    store.backend(),
                    match self.kind() {
                        Kind::Sqlite => "sqlite",
                        Kind::Postgres => "postgres",
                    }
                );
                store
            }
            Err(e) => panic!("open the {:?} store: {e}", self.kind()),
        }
    }

    /// Runs one statement directly on the database, around the store. Returns the number of
    /// rows changed, or the database's error message.
    pub async fn exec(&self, sql: &str) -> Result<u64, String> {
        match &self.backend {
            Backend::Sqlite { path, .. } => raw_sqlite(path)
                .execute(sql, [])
                .map(|n| n as u64)
                .map_err(|e| e.to_string()),
            Backend::Postgres { raw, .. } => {
                raw.execute(sql, &[]).await.map_err(|e| pg_message(&e))
            }
        }
    }

    /// The single integer a query returns, read directly from the database.
    pub async fn query_i64(&self, sql: &str) -> i64 {
        match &self.backend {
            Backend::Sqlite { path, .. } => raw_sqlite(path)
                .query_row(sql, [], |r| r.get(0))
                .unwrap_or_else(|e| panic!("{sql}: {e}")),
            Backend::Postgres { raw, .. } => raw
                .query_one(sql, &[])
                .await
                .and_then(|row| row.try_get(0))
                .unwrap_or_else(|e| panic!("{sql}: {}", pg_message(&e))),
        }
    }

    /// A SQL literal for a byte string in this backend's dialect.
    pub fn blob_literal(&self, bytes: &[u8]) -> String {
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        match self.kind() {
            Kind::Sqlite => format!("X'{hex}'"),
            Kind::Postgres => format!("'\\x{hex}'::BYTEA"),
        }
    }
}

impl Drop for TestDb {
    /// Drops the test's schema. Runs on its own thread and runtime because `Drop` cannot await
    /// and the test's runtime may be shutting down; failures are only reported.
    fn drop(&mut self) {
        let Backend::Postgres {
            base_url, schema, ..
        } = &self.backend
        else {
            return;
        };
        let (base_url, schema) = (base_url.clone(), schema.clone());
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async {
                let (client, connection) = tokio_postgres::connect(&base_url, NoTls)
                    .await
                    .map_err(|e| pg_message(&e))?;
                let driver = tokio::spawn(connection);
                let result = client
                    .batch_execute(&format!(
                        "SET lock_timeout = '10s'; DROP SCHEMA IF EXISTS {schema} CASCADE"
                    ))
                    .await
                    .map_err(|e| pg_message(&e));
                drop(client);
                let _ = driver.await;
                result
            })
        });
        match cleanup.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("could not drop a PostgreSQL test schema: {e}"),
            Err(_) => eprintln!("could not drop a PostgreSQL test schema: cleanup panicked"),
        }
    }
}

fn raw_sqlite(path: &std::path::Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(path).expect("open the SQLite file directly");
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .expect("set busy_timeout");
    conn
}

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "{POSTGRES_URL_VAR} is set but PostgreSQL is unreachable there: {}",
                pg_message(&e)
            )
        });
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            eprintln!("raw PostgreSQL connection ended: {e}");
        }
    });
    client
}

/// The server's own message (e.g. the trigger's "audit log is append-only") rather than
/// tokio-postgres's terse "db error".
fn pg_message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => e.to_string(),
    }
}
