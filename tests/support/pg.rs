//! Shared helpers for tests that need a PostgreSQL server.
//!
//! Include it from a test file with
//!
//! ```ignore
//! #[path = "support/pg.rs"]
//! mod pg;
//! ```
//!
//! The server is named by `TOWER_AUTH_TEST_PG_URL` (for example
//! `postgres://tower_auth:tower_auth@127.0.0.1:5432/tower_auth`; `bash .ci/postgres.sh`
//! installs, starts and provisions one and prints that URL). Its role needs `CREATEDB`:
//! every test gets a database of its own ([`test_database`]), so tests and runs never see
//! each other's rows.
//!
//! Without the variable the PostgreSQL tests are skipped, and say so on stderr. With
//! `AUTH_REQUIRE_POSTGRES=1` (set by `.ci/run`), a missing or unreachable server fails the
//! test instead.
#![allow(dead_code)]

use std::io::Write as _;

/// The environment variable naming the PostgreSQL server the tests use.
pub const PG_URL_VAR: &str = "TOWER_AUTH_TEST_PG_URL";
/// Set to `1` to turn a missing or unreachable server into a test failure.
pub const REQUIRE_VAR: &str = "AUTH_REQUIRE_POSTGRES";
/// Set (to anything) to keep the per-test databases after the tests, for inspection.
pub const KEEP_VAR: &str = "TOWER_AUTH_TEST_PG_KEEP";
/// Every per-test database's name starts with this.
pub const DB_PREFIX: &str = "tower_auth_test_";

/// True when PostgreSQL tests must run (`AUTH_REQUIRE_POSTGRES=1`).
pub fn required() -> bool {
    std::env::var(REQUIRE_VAR).is_ok_and(|v| v.trim() == "1")
}

/// Prints a skip notice straight to stderr. It bypasses the test harness's output capture
/// (which only swallows `print!`/`eprint!`), so `cargo test` shows it even for a passing
/// test; nextest keeps each test's stderr with its result.
pub fn skip(why: &str) {
    let _ = writeln!(std::io::stderr(), "SKIPPED: PostgreSQL tests ({why})");
}

/// The server URL from `TOWER_AUTH_TEST_PG_URL`, or `None` (after printing why) when the
/// tests should be skipped.
///
/// # Panics
/// When the variable is unset (or empty) and `AUTH_REQUIRE_POSTGRES=1`.
pub fn pg_url() -> Option<String> {
    match std::env::var(PG_URL_VAR) {
        Ok(url) if !url.trim().is_empty() => Some(url.trim().to_owned()),
        _ if required() => panic!(
            "{REQUIRE_VAR}=1 but {PG_URL_VAR} is not set: PostgreSQL tests cannot run. \
             Start a server and export its URL, e.g. \
             `export {PG_URL_VAR}=\"$(bash .ci/postgres.sh)\"`"
        ),
        _ => {
            skip(&format!("set {PG_URL_VAR} to run them"));
            None
        }
    }
}

/// `url` with its database name replaced by `database` (query parameters kept).
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.find('?') {
        Some(i) => (&url[..i], &url[i..]),
        None => (url, ""),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    format!("{}/{database}{query}", &base[..path_start])
}

#[cfg(feature = "postgres")]
pub use db::*;

#[cfg(feature = "postgres")]
mod db {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use sqlx::Connection as _;
    use sqlx::Executor as _;
    use sqlx::postgres::PgConnection;

    use super::{DB_PREFIX, KEEP_VAR, PG_URL_VAR, REQUIRE_VAR, pg_url, required, skip};

    /// How long connecting to the server may take before it counts as unreachable.
    const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
    /// Per-test databases older than this are left over from killed runs and swept.
    const STALE_AFTER_SECS: u64 = 24 * 60 * 60;

    /// A database created for one test. Dropped (with `DROP DATABASE ... WITH (FORCE)`)
    /// when this value is dropped, unless the test panicked or `TOWER_AUTH_TEST_PG_KEEP` is
    /// set: then it is kept and its name printed. Declare it before any pool on it.
    #[derive(Debug)]
    pub struct TestDatabase {
        url: String,
        name: String,
        server_url: String,
    }

    impl TestDatabase {
        /// The URL of this test's own database.
        pub fn url(&self) -> &str {
            &self.url
        }

        /// The database's name (`tower_auth_test_<secs>_<random>`).
        pub fn name(&self) -> &str {
            &self.name
        }

        /// The URL of the server's default database (the one `TOWER_AUTH_TEST_PG_URL` names).
        pub fn server_url(&self) -> &str {
            &self.server_url
        }
    }

    impl Drop for TestDatabase {
        fn drop(&mut self) {
            if std::thread::panicking() || std::env::var_os(KEEP_VAR).is_some() {
                eprintln!("kept PostgreSQL test database {}", self.name);
                return;
            }
            let server_url = self.server_url.clone();
            let name = self.name.clone();
            // Drop may run inside an async test's runtime: do the blocking work on a thread
            // with a runtime of its own.
            let result = std::thread::spawn(move || -> Result<(), String> {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| e.to_string())?;
                rt.block_on(async {
                    let mut conn = connect(&server_url).await?;
                    conn.execute(
                        format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)").as_str(),
                    )
                    .await
                    .map_err(|e| e.to_string())?;
                    let _ = conn.close().await;
                    Ok(())
                })
            })
            .join();
            match result {
                Ok(Ok(())) => {}
                Ok(Err(e)) => eprintln!("could not drop test database {}: {e}", self.name),
                Err(_) => eprintln!("could not drop test database {}: panicked", self.name),
            }
        }
    }

    async fn connect(url: &str) -> Result<PgConnection, String> {
        match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect(url)).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {CONNECT_TIMEOUT:?}")),
        }
    }

    /// Creates a fresh, uniquely named database for one test and returns it, or `None`
    /// (after printing why) when PostgreSQL tests are skipped.
    ///
    /// Typical use:
    ///
    /// ```ignore
    /// let Some(db) = pg::test_database().await else { return };
    /// let store = PgStore::connect(db.url()).await.unwrap();
    /// ```
    ///
    /// # Panics
    /// With `AUTH_REQUIRE_POSTGRES=1`, when the URL is unset, the server is unreachable,
    /// or the database cannot be created. Without it, when the server answers but refuses
    /// to create the database (a misconfigured role is a bug to see, not a skip).
    pub async fn test_database() -> Option<TestDatabase> {
        let server_url = pg_url()?;
        let mut conn = match connect(&server_url).await {
            Ok(conn) => conn,
            Err(e) if required() => panic!(
                "{REQUIRE_VAR}=1 but the PostgreSQL server at {PG_URL_VAR} is unreachable: {e}"
            ),
            Err(e) => {
                skip(&format!(
                    "{PG_URL_VAR} is set but the server is unreachable: {e}"
                ));
                return None;
            }
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        sweep_stale(&mut conn, now).await;
        let name = format!("{DB_PREFIX}{now}_{}", uuid::Uuid::new_v4().simple());
        if let Err(e) = conn
            .execute(format!("CREATE DATABASE \"{name}\"").as_str())
            .await
        {
            panic!(
                "cannot create the test database {name} on {PG_URL_VAR} \
                 (the role needs CREATEDB): {e}"
            );
        }
        let _ = conn.close().await;
        Some(TestDatabase {
            url: super::with_database(&server_url, &name),
            name,
            server_url,
        })
    }

    /// Best effort: drops per-test databases left by runs that were killed long ago.
    async fn sweep_stale(conn: &mut PgConnection, now: u64) {
        let Ok(names) = sqlx::query_scalar::<_, String>(
            "SELECT datname FROM pg_database WHERE starts_with(datname, $1)",
        )
        .bind(DB_PREFIX)
        .fetch_all(&mut *conn)
        .await
        else {
            return;
        };
        for name in names {
            let created = name[DB_PREFIX.len()..]
                .split('_')
                .next()
                .and_then(|s| s.parse::<u64>().ok());
            if created.is_some_and(|t| t + STALE_AFTER_SECS < now) {
                let _ = conn
                    .execute(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)").as_str())
                    .await;
            }
        }
    }
}
