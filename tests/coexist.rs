//! tower-auth lives in the host application's database: the host's own `users`,
//! `sessions` and `counters` tables and its own `sqlx::migrate!` (versions 1 and 2) run in
//! the same SQLite file and the same PostgreSQL database, in both orders, across restarts,
//! and neither side notices the other.

#[path = "support/pg.rs"]
mod pg;

use tower_auth::{Auth, AuthConfig, LoginAttempt};

/// Which side migrates first on each start.
#[derive(Debug, Clone, Copy)]
enum Order {
    HostFirst,
    AuthFirst,
}

fn config() -> AuthConfig {
    let mut config = AuthConfig::spec();
    config.bcrypt_cost = 4;
    config
}

/// One start of the application: both sides migrate in `order`, then each writes and reads
/// its own data; everything written on earlier starts is still there.
macro_rules! start_app {
    ($pool:expr, $url:expr, $migrator:expr, $order:expr, $round:expr) => {{
        let pool = $pool;
        let round: usize = $round;
        let auth = match $order {
            Order::HostFirst => {
                $migrator.run(&pool).await.expect("host migrations");
                Auth::connect($url, config())
                    .await
                    .expect("tower-auth connects")
            }
            Order::AuthFirst => {
                let auth = Auth::connect($url, config())
                    .await
                    .expect("tower-auth connects");
                $migrator.run(&pool).await.expect("host migrations");
                auth
            }
        };
        // The host's own tables work: a user of its own, a session row of its own.
        sqlx::query("INSERT INTO users (name, nickname) VALUES ($1, $2)")
            .bind(format!("host-user-{round}"))
            .bind("nick")
            .execute(&pool)
            .await
            .expect("host insert");
        sqlx::query(
            "INSERT INTO sessions (id, user_id) \
             SELECT $1, id FROM users WHERE name = $2",
        )
        .bind(format!("host-session-{round}"))
        .bind(format!("host-user-{round}"))
        .execute(&pool)
        .await
        .expect("host session insert");
        let host_users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&pool)
            .await
            .expect("host count");
        assert_eq!(
            host_users,
            round as i64 + 1,
            "the host keeps every user it wrote"
        );
        let versions: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
                .fetch_all(&pool)
                .await
                .expect("host bookkeeping");
        assert_eq!(versions, [1, 2], "the host's migration history is its own");
        let ours: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM auth_schema_migrations ORDER BY version")
                .fetch_all(&pool)
                .await
                .expect("tower-auth bookkeeping");
        assert_eq!(
            ours,
            [1, 2, 3, 4, 5, 6, 7, 8],
            "tower-auth's migration history is its own"
        );

        // tower-auth works, and every account of earlier starts still logs in.
        let email = format!("auth-user-{round}@example.com");
        auth.register_user(&email, "a fine passphrase")
            .await
            .expect("register");
        for earlier in 0..=round {
            let email = format!("auth-user-{earlier}@example.com");
            let logged_in = auth
                .log_in(
                    &tower_auth::Client::default(),
                    LoginAttempt::new(&email, "a fine passphrase"),
                )
                .await
                .unwrap_or_else(|e| panic!("{email} logs in on start {round}: {e}"));
            let user = auth
                .get_user_from_session_id(Some(&logged_in.session_id))
                .await
                .expect("session lookup");
            assert_eq!(user.map(|u| u.email), Some(email));
        }
        pool.close().await;
    }};
}

#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beside_a_host_app_in_one_sqlite_file() {
    static HOST: sqlx::migrate::Migrator = sqlx::migrate!("tests/fixtures/host_app/sqlite");
    for order in [Order::HostFirst, Order::AuthFirst] {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("app.db").display());
        for round in 0..2 {
            let pool = sqlx::SqlitePool::connect(&url).await.expect("host pool");
            start_app!(pool, &url, HOST, order, round);
        }
    }
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beside_a_host_app_in_one_postgres_database() {
    static HOST: sqlx::migrate::Migrator = sqlx::migrate!("tests/fixtures/host_app/postgres");
    for order in [Order::HostFirst, Order::AuthFirst] {
        let Some(db) = pg::test_database().await else {
            return;
        };
        for round in 0..2 {
            let pool = sqlx::PgPool::connect(db.url()).await.expect("host pool");
            start_app!(pool, db.url(), HOST, order, round);
        }
    }
}
