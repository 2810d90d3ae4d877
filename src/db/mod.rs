//! Storage with diesel, one code path for two backends: SQLite (the embedded default, WAL,
//! bundled library) and PostgreSQL (several nodes). Migrations and queries are written once against
//! [`DbConnection`], a diesel multi-connection.
//!
//! Every query runs on actix's blocking pool through [`Db::run`], never on an actor's or a
//! worker's event-loop thread.

pub mod direct;
pub mod idempotency;
pub mod messages;
pub mod notifications;
pub mod products;
pub mod rooms;
pub mod schema;
pub mod users;

use std::path::Path;
use std::time::Duration;

use diesel::connection::{Connection, SimpleConnection};
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool};
use diesel::{PgConnection, SqliteConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use thiserror::Error;

/// One migration set serves both backends while their SQL is the same; split it (one
/// directory per backend) the day a migration needs backend-specific SQL.
const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// A connection to either backend.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Postgresql(PgConnection),
    Sqlite(SqliteConnection),
}

#[derive(Debug, Error)]
pub enum DbError {
    #[error("unsupported database url {0:?} (use sqlite://PATH, a path, or postgres://...)")]
    BadUrl(String),
    #[error("cannot create {path}: {err}")]
    Dir { path: String, err: std::io::Error },
    #[error("connection pool: {0}")]
    Pool(#[from] diesel::r2d2::PoolError),
    #[error("query: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("migration: {0}")]
    Migration(String),
    #[error("the blocking pool is gone")]
    Blocking,
}

/// Which backend a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Normalises `DATABASE_URL`: `postgres://…`/`postgresql://…`, `sqlite://PATH` or a path.
pub fn parse_url(url: &str) -> Result<(Backend, String), DbError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok((Backend::Postgres, url.to_owned()));
    }
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    if path.is_empty() || path.contains("://") {
        return Err(DbError::BadUrl(url.to_owned()));
    }
    Ok((Backend::Sqlite, path.to_owned()))
}

/// SQLite settings for every pooled connection: WAL, a busy timeout, foreign keys.
#[derive(Debug, Clone, Copy)]
struct Pragmas;

impl CustomizeConnection<DbConnection, diesel::r2d2::Error> for Pragmas {
    fn on_acquire(&self, conn: &mut DbConnection) -> Result<(), diesel::r2d2::Error> {
        if let DbConnection::Sqlite(c) = conn {
            c.batch_execute(
                "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; \
                 PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
            )
            .map_err(diesel::r2d2::Error::QueryError)?;
        }
        Ok(())
    }
}

/// The database: a pool of connections to one backend.
#[derive(Clone)]
pub struct Db {
    pool: Pool<ConnectionManager<DbConnection>>,
    backend: Backend,
}

impl Db {
    /// Opens a pool (creating the SQLite file's directory). Blocking: call at start-up.
    pub fn connect(url: &str, pool_size: u32) -> Result<Db, DbError> {
        let (backend, target) = parse_url(url)?;
        if backend == Backend::Sqlite {
            if let Some(dir) = Path::new(&target)
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
            {
                std::fs::create_dir_all(dir).map_err(|err| DbError::Dir {
                    path: dir.display().to_string(),
                    err,
                })?;
            }
        }
        let pool = Pool::builder()
            .max_size(pool_size.max(1))
            .min_idle(Some(1))
            .connection_timeout(Duration::from_secs(10))
            .connection_customizer(Box::new(Pragmas))
            .build(ConnectionManager::<DbConnection>::new(target))?;
        Ok(Db { pool, backend })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Applies pending migrations of this backend; returns their names. Blocking.
    pub fn migrate(&self) -> Result<Vec<String>, DbError> {
        let mut conn = self.pool.get()?;
        let applied = match &mut *conn {
            DbConnection::Sqlite(c) => c
                .run_pending_migrations(MIGRATIONS)
                .map(|v| v.iter().map(|m| m.to_string()).collect::<Vec<_>>()),
            DbConnection::Postgresql(c) => {
                // Several nodes may start at once against one database: one migrates at a
                // time (a session advisory lock), the others then find nothing to do.
                c.batch_execute("SELECT pg_advisory_lock(7274610001)")
                    .map_err(|e| DbError::Migration(e.to_string()))?;
                let done = c
                    .run_pending_migrations(MIGRATIONS)
                    .map(|v| v.iter().map(|m| m.to_string()).collect::<Vec<_>>());
                let _ = c.batch_execute("SELECT pg_advisory_unlock(7274610001)");
                done
            }
        }
        .map_err(|e| DbError::Migration(e.to_string()))?;
        Ok(applied)
    }

    /// Runs `f` with a pooled connection on the blocking pool.
    pub async fn run<F, T>(&self, f: F) -> Result<T, DbError>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, DbError> + Send + 'static,
        T: Send + 'static,
    {
        let pool = self.pool.clone();
        actix_web::web::block(move || {
            let mut conn = pool.get()?;
            f(&mut conn)
        })
        .await
        .map_err(|_| DbError::Blocking)?
    }

    /// Runs `f` with a pooled connection on the calling thread (start-up, CLI, tests).
    pub fn run_blocking<F, T>(&self, f: F) -> Result<T, DbError>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, DbError>,
    {
        let mut conn = self.pool.get()?;
        f(&mut conn)
    }

    /// True when a connection answers (for readiness).
    pub fn ping(&self) -> bool {
        // A short wait: readiness must answer quickly when the database is gone.
        self.pool
            .get_timeout(Duration::from_secs(2))
            .map(|mut c| c.batch_execute("SELECT 1").is_ok())
            .unwrap_or(false)
    }
}

/// Runs `f` in a transaction that holds the write lock from its first statement.
///
/// SQLite's default (deferred) transaction starts as a reader and fails at once with
/// `SQLITE_BUSY` when it later writes after another connection committed; `BEGIN IMMEDIATE`
/// takes the write lock up front (waiting up to the busy timeout) so read-then-write
/// transactions cannot fail that way. `f` must not open a nested transaction.
pub fn write_transaction<T, F>(conn: &mut DbConnection, f: F) -> Result<T, DbError>
where
    F: FnOnce(&mut DbConnection) -> Result<T, DbError>,
{
    if let DbConnection::Postgresql(_) = conn {
        return conn.transaction(f);
    }
    conn.batch_execute("BEGIN IMMEDIATE")
        .map_err(DbError::Query)?;
    match f(conn) {
        Ok(v) => {
            if let Err(e) = conn.batch_execute("COMMIT") {
                let _ = conn.batch_execute("ROLLBACK");
                return Err(DbError::Query(e));
            }
            Ok(v)
        }
        Err(e) => {
            let _ = conn.batch_execute("ROLLBACK");
            Err(e)
        }
    }
}

/// For inserts that may meet their own row (a retry, another node): a unique violation is
/// success.
pub fn ignore_duplicate(e: diesel::result::Error) -> Result<(), DbError> {
    use diesel::result::{DatabaseErrorKind, Error};
    match e {
        Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => Ok(()),
        e => Err(DbError::Query(e)),
    }
}

/// Milliseconds since the epoch, the time unit of every table.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(parse_url("postgres://u@h/db").unwrap().0, Backend::Postgres);
        assert_eq!(
            parse_url("sqlite://data/x.db").unwrap(),
            (Backend::Sqlite, "data/x.db".into())
        );
        assert_eq!(
            parse_url("/tmp/x.db").unwrap(),
            (Backend::Sqlite, "/tmp/x.db".into())
        );
        assert!(parse_url("mysql://x").is_err());
        assert!(parse_url("").is_err());
    }
}
