//! The embedded default store: one SQLite file, through sqlx.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::StoreError;
use super::sql::{impl_sql_store, user_columns};

/// A [`Store`](crate::Store) on a SQLite database file (for example `sqlite://a.db?mode=rwc`).
///
/// Connecting runs the embedded migrations (`migrations/sqlite`), and every connection uses
/// WAL journaling (readers never wait for the writer), `synchronous = FULL` (an
/// acknowledged write survives a power cut), foreign keys and a busy timeout.
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

impl SqliteStore {
    /// Opens (creating with `?mode=rwc`) the database at `url` and brings its schema up to date.
    ///
    /// # Errors
    /// A malformed URL, an unreachable file, or a failed migration.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::open(url, false).await
    }

    /// Like [`connect`](Self::connect), but first drops every table this crate owns, as the
    /// seed's `DB()` does at start: all users and sessions are lost.
    ///
    /// # Errors
    /// As [`connect`](Self::connect).
    pub async fn connect_fresh(url: &str) -> Result<Self, StoreError> {
        Self::open(url, true).await
    }

    /// Wraps an existing pool (for example one the application shares), running migrations.
    ///
    /// # Errors
    /// A failed migration.
    pub async fn from_pool(pool: SqlitePool) -> Result<Self, StoreError> {
        MIGRATOR.run(&pool).await.map_err(StoreError::backend)?;
        Ok(Self { pool })
    }

    /// The underlying pool.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    async fn open(url: &str, fresh: bool) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(StoreError::backend)?
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        // Every connection to an in-memory database is a database of its own: keep exactly one.
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let max = if in_memory { 1 } else { 8 };
        let pool = SqlitePoolOptions::new()
            .max_connections(max)
            .min_connections(u32::from(in_memory))
            .idle_timeout((!in_memory).then_some(Duration::from_secs(600)))
            .max_lifetime(None)
            .connect_with(options)
            .await
            .map_err(StoreError::backend)?;
        if fresh {
            for table in ["sessions", "counters", "users", "_sqlx_migrations"] {
                sqlx::query(&format!("DROP TABLE IF EXISTS {table}"))
                    .execute(&pool)
                    .await
                    .map_err(StoreError::backend)?;
            }
        }
        Self::from_pool(pool).await
    }
}

impl_sql_store!(SqliteStore, sqlx::Sqlite, sqlx::sqlite::SqliteRow);
