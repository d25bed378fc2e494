//! tower-auth's own schema migrations, kept apart from the host application's.
//!
//! An embedded crate lives in someone else's database: the host app may run its own
//! `sqlx::migrate!` (numbered 1, 2, ...) in the same SQLite file or PostgreSQL database,
//! and sqlx's bookkeeping table (`_sqlx_migrations`) would then mix both histories, each
//! side refusing the other's versions. So our migrations are recorded in a table of our
//! own, `auth_schema_migrations`, and applied by this small runner: each in one
//! transaction, under a lock (SQLite's `BEGIN IMMEDIATE`, a PostgreSQL advisory lock) so
//! instances starting together apply it once.
//!
//! A database made by tower-auth 0.1 (tables `users`, `sessions`, `counters`, recorded in
//! `_sqlx_migrations` by the 0.1 migration's exact checksum) is upgraded in place by the
//! first migration: rows copied into the `auth_` tables, old tables dropped, its row taken
//! out of `_sqlx_migrations` (the table itself dropped when nothing else is recorded there).

use sha2::{Digest, Sha256};

/// One migration: its version, what it does, and its SQL.
struct Migration {
    version: i64,
    description: &'static str,
    sql: &'static str,
}

impl Migration {
    fn checksum(&self) -> Vec<u8> {
        Sha256::digest(self.sql.as_bytes()).to_vec()
    }
}

/// Why the schema could not be brought up to date.
#[derive(Debug, thiserror::Error)]
enum SchemaError {
    #[error(
        "auth_schema_migrations records version {0}, newer than this tower-auth knows; \
         upgrade tower-auth"
    )]
    Newer(i64),
    #[error("migration {0} was changed after it was applied (checksum mismatch)")]
    Changed(i64),
}

/// The bookkeeping table, created before anything else.
const BOOKKEEPING: &str = "CREATE TABLE IF NOT EXISTS auth_schema_migrations (\
     version BIGINT PRIMARY KEY, description TEXT NOT NULL, checksum BYTEA NOT NULL, \
     applied_at_ms BIGINT NOT NULL)";

/// The advisory lock key PostgreSQL instances take while migrating ("tower-auth" in ASCII,
/// truncated to 8 bytes).
#[cfg(feature = "postgres")]
const PG_LOCK_KEY: i64 = 0x746f_7765_722d_6175;

/// Brings a database's schema up to date; the shared body of both backends' runners.
/// `$conn` is a connection already inside the migration's transaction and lock.
macro_rules! apply_migrations {
    ($conn:expr, $migrations:expr, $legacy:expr) => {{
        use sqlx::Row as _;
        let conn = $conn;
        sqlx::Executor::execute(&mut *conn, BOOKKEEPING)
            .await
            .map_err(StoreError::backend)?;
        let applied: Vec<(i64, Vec<u8>)> =
            sqlx::query("SELECT version, checksum FROM auth_schema_migrations ORDER BY version")
                .fetch_all(&mut *conn)
                .await
                .map_err(StoreError::backend)?
                .iter()
                .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
                .collect::<Result<_, sqlx::Error>>()
                .map_err(StoreError::backend)?;
        let known = $migrations.last().map_or(0, |m: &Migration| m.version);
        if let Some((version, _)) = applied.iter().find(|(v, _)| *v > known) {
            return Err(StoreError::backend(SchemaError::Newer(*version)));
        }
        for migration in $migrations {
            let checksum = migration.checksum();
            if let Some((_, recorded)) = applied.iter().find(|(v, _)| *v == migration.version) {
                if *recorded != checksum {
                    return Err(StoreError::backend(SchemaError::Changed(migration.version)));
                }
                continue;
            }
            sqlx::Executor::execute(&mut *conn, migration.sql)
                .await
                .map_err(StoreError::backend)?;
            if migration.version == 1 {
                upgrade_legacy(&mut *conn, $legacy).await?;
            }
            sqlx::query(
                "INSERT INTO auth_schema_migrations \
                 (version, description, checksum, applied_at_ms) VALUES ($1, $2, $3, $4)",
            )
            .bind(migration.version)
            .bind(migration.description)
            .bind(checksum)
            .bind(crate::clock::Clock::now_ms(&crate::clock::SystemClock))
            .execute(&mut *conn)
            .await
            .map_err(StoreError::backend)?;
        }
        Ok(())
    }};
}

/// Every migration of one backend, from `migrations/<backend>/`, in order. Appending one
/// here appends it for both backends.
macro_rules! migrations {
    ($backend:literal) => {
        [
            Migration {
                version: 1,
                description: "auth tables",
                sql: include_str!(concat!(
                    "../../migrations/",
                    $backend,
                    "/0001_auth_tables.sql"
                )),
            },
            Migration {
                version: 2,
                description: "session details",
                sql: include_str!(concat!(
                    "../../migrations/",
                    $backend,
                    "/0002_session_details.sql"
                )),
            },
            Migration {
                version: 3,
                description: "email confirmation and outbox",
                sql: include_str!(concat!("../../migrations/", $backend, "/0003_mail.sql")),
            },
            Migration {
                version: 4,
                description: "change notices",
                sql: include_str!(concat!(
                    "../../migrations/",
                    $backend,
                    "/0004_change_notices.sql"
                )),
            },
            Migration {
                version: 5,
                description: "mail requests",
                sql: include_str!(concat!(
                    "../../migrations/",
                    $backend,
                    "/0005_mail_requests.sql"
                )),
            },
            Migration {
                version: 6,
                description: "sweep indexes",
                sql: include_str!(concat!(
                    "../../migrations/",
                    $backend,
                    "/0006_sweep_indexes.sql"
                )),
            },
            Migration {
                version: 7,
                description: "second factors",
                sql: include_str!(concat!(
                    "../../migrations/",
                    $backend,
                    "/0007_second_factors.sql"
                )),
            },
            Migration {
                version: 8,
                description: "provider identities",
                sql: include_str!(concat!(
                    "../../migrations/",
                    $backend,
                    "/0008_identities.sql"
                )),
            },
        ]
    };
}

/// The 0.1 schema's recognition and its upgrade, for one backend.
struct Legacy {
    /// The SHA-384 sqlx recorded for 0.1's `0001_init.sql`.
    checksum_hex: &'static str,
    /// The query telling whether `_sqlx_migrations` exists (one row when it does).
    bookkeeping_exists: &'static str,
    /// What the backend needs after the rows moved (PostgreSQL: the id sequence).
    after_upgrade_sql: Option<&'static str>,
}

/// Moves 0.1's rows into the new tables and drops the old ones (both backends).
const UPGRADE_SQL: &str = include_str!("../../migrations/upgrade_from_0_1.sql");

/// Recognises a 0.1 database by its migration record and upgrades it. The same macro
/// body serves both backends.
macro_rules! upgrade_legacy_body {
    ($conn:expr, $legacy:expr) => {{
        use sqlx::Row as _;
        let conn = $conn;
        let legacy: &Legacy = $legacy;
        let exists = sqlx::query(legacy.bookkeeping_exists)
            .fetch_optional(&mut *conn)
            .await
            .map_err(StoreError::backend)?
            .is_some();
        if !exists {
            return Ok(());
        }
        let checksum = hex_decode(legacy.checksum_hex);
        let ours = sqlx::query(
            "SELECT 1 FROM _sqlx_migrations WHERE version = 1 AND description = 'init' \
             AND checksum = $1",
        )
        .bind(&checksum)
        .fetch_optional(&mut *conn)
        .await
        .map_err(StoreError::backend)?
        .is_some();
        if !ours {
            return Ok(());
        }
        sqlx::Executor::execute(&mut *conn, super::UPGRADE_SQL)
            .await
            .map_err(StoreError::backend)?;
        if let Some(sql) = legacy.after_upgrade_sql {
            sqlx::Executor::execute(&mut *conn, sql)
                .await
                .map_err(StoreError::backend)?;
        }
        sqlx::query("DELETE FROM _sqlx_migrations WHERE version = 1 AND checksum = $1")
            .bind(&checksum)
            .execute(&mut *conn)
            .await
            .map_err(StoreError::backend)?;
        let left: i64 = sqlx::query("SELECT COUNT(*) FROM _sqlx_migrations")
            .fetch_one(&mut *conn)
            .await
            .and_then(|row| row.try_get(0))
            .map_err(StoreError::backend)?;
        if left == 0 {
            sqlx::Executor::execute(&mut *conn, "DROP TABLE _sqlx_migrations")
                .await
                .map_err(StoreError::backend)?;
        }
        tracing::info!(target: "tower_auth", "upgraded a tower-auth 0.1 database in place");
        Ok(())
    }};
}

fn hex_decode(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .filter_map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(feature = "sqlite")]
pub(crate) mod sqlite {
    use sqlx::SqliteConnection;
    use sqlx::sqlite::SqlitePool;

    use super::{BOOKKEEPING, Legacy, Migration, SchemaError, hex_decode};
    use crate::store::StoreError;

    const MIGRATIONS: &[Migration] = &migrations!("sqlite");

    const LEGACY: Legacy = Legacy {
        checksum_hex: "bbfae14537dc682fb904e780f8ba66e8e8230d7cc36a115619f915dfb2246a47\
                       ddd5fddd1a7a547cfe2f2ddd2516983e",
        bookkeeping_exists: "SELECT 1 FROM sqlite_master WHERE type = 'table' \
                             AND name = '_sqlx_migrations'",
        after_upgrade_sql: None,
    };

    /// The tables [`drop_all`] removes, in an order foreign keys allow.
    const TABLES: &[&str] = &[
        "auth_outbox",
        "auth_factors",
        "auth_identities",
        "auth_sessions",
        "auth_tokens",
        "auth_counters",
        "auth_users",
        "auth_schema_migrations",
    ];

    /// Brings the schema up to date, in one `BEGIN IMMEDIATE` transaction (SQLite's
    /// writer lock: a second process waits, then finds the work done).
    pub(crate) async fn run(pool: &SqlitePool) -> Result<(), StoreError> {
        let mut conn = pool.acquire().await.map_err(StoreError::backend)?;
        sqlx::Executor::execute(&mut *conn, "BEGIN IMMEDIATE")
            .await
            .map_err(StoreError::backend)?;
        let applied = apply(&mut conn).await;
        let end = if applied.is_ok() {
            "COMMIT"
        } else {
            "ROLLBACK"
        };
        let ended = sqlx::Executor::execute(&mut *conn, end).await;
        applied?;
        ended.map(|_| ()).map_err(StoreError::backend)
    }

    async fn apply(conn: &mut SqliteConnection) -> Result<(), StoreError> {
        apply_migrations!(conn, MIGRATIONS, &LEGACY)
    }

    async fn upgrade_legacy(
        conn: &mut SqliteConnection,
        legacy: &Legacy,
    ) -> Result<(), StoreError> {
        upgrade_legacy_body!(conn, legacy)
    }

    /// Drops every table tower-auth owns (all accounts and sessions are lost).
    pub(crate) async fn drop_all(pool: &SqlitePool) -> Result<(), StoreError> {
        for table in TABLES {
            sqlx::raw_sql(&format!("DROP TABLE IF EXISTS {table}"))
                .execute(pool)
                .await
                .map_err(StoreError::backend)?;
        }
        Ok(())
    }
}

#[cfg(feature = "postgres")]
pub(crate) mod postgres {
    use sqlx::PgConnection;
    use sqlx::postgres::PgPool;

    use super::{BOOKKEEPING, Legacy, Migration, PG_LOCK_KEY, SchemaError, hex_decode};
    use crate::store::StoreError;

    const MIGRATIONS: &[Migration] = &migrations!("postgres");

    const LEGACY: Legacy = Legacy {
        checksum_hex: "1c8b252e2e83b60e0eee3a686c245bb9469f33e7b6a146ad1bed5eff9985c98d\
                       2391f8229d3f600b4549f12c97c635b1",
        bookkeeping_exists: "SELECT 1 WHERE to_regclass('_sqlx_migrations') IS NOT NULL",
        // New ids continue after the copied ones.
        after_upgrade_sql: Some(
            "SELECT setval(pg_get_serial_sequence('auth_users', 'id'), \
             COALESCE((SELECT MAX(id) FROM auth_users), 0) + 1, false)",
        ),
    };

    /// Brings the schema up to date in one transaction, under an advisory lock so that
    /// instances starting together apply each migration once.
    pub(crate) async fn run(pool: &PgPool) -> Result<(), StoreError> {
        let mut tx = pool.begin().await.map_err(StoreError::backend)?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(PG_LOCK_KEY)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::backend)?;
        apply(&mut tx).await?;
        tx.commit().await.map_err(StoreError::backend)
    }

    async fn apply(conn: &mut PgConnection) -> Result<(), StoreError> {
        apply_migrations!(conn, MIGRATIONS, &LEGACY)
    }

    async fn upgrade_legacy(conn: &mut PgConnection, legacy: &Legacy) -> Result<(), StoreError> {
        upgrade_legacy_body!(conn, legacy)
    }

    /// Drops every table and function tower-auth owns (all accounts and sessions are
    /// lost).
    pub(crate) async fn drop_all(pool: &PgPool) -> Result<(), StoreError> {
        sqlx::raw_sql(
            "DROP TABLE IF EXISTS auth_outbox, auth_factors, auth_identities, auth_sessions, auth_tokens, auth_counters, \
             auth_users, auth_schema_migrations; \
             DROP FUNCTION IF EXISTS auth_announce_session_change(), \
             auth_announce_user_change()",
        )
        .execute(pool)
        .await
        .map(|_| ())
        .map_err(StoreError::backend)
    }
}
