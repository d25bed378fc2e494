//! A database made by tower-auth 0.1 (`tests/fixtures/v0_1`, written by the 0.1 crate)
//! upgrades in place on connect: users, sessions, pending reset tokens and per-client
//! throttling counters intact, the old tables and sqlx's bookkeeping gone, and a second
//! connect (a restart) changes nothing.

#[path = "support/pg.rs"]
mod pg;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tower_auth::clock::ManualClock;
use tower_auth::store;
use tower_auth::store::UserLookup;
use tower_auth::{Auth, AuthConfig, AuthError, LoginAttempt, Store};

/// The secrets the 0.1 crate handed out while making the fixture.
#[derive(Deserialize)]
struct Secrets {
    clock_ms: i64,
    issued_at_ms: i64,
    passwords: BTreeMap<String, String>,
    sessions: BTreeMap<String, Vec<String>>,
    reset_tokens: BTreeMap<String, String>,
}

fn secrets(file: &str) -> Secrets {
    let path = format!("{}/tests/fixtures/v0_1/{file}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).expect("fixture secrets"))
        .expect("fixture secrets are JSON")
}

/// The configuration the fixture was made with.
fn auth(store: Arc<dyn Store>, clock: &ManualClock) -> Auth {
    let mut config = AuthConfig::spec();
    config.bcrypt_cost = 4;
    config.single_session = false;
    Auth::builder_shared(store, config)
        .clock(clock.clone())
        .build()
        .expect("valid config")
}

/// Everything the 0.1 database held works through the upgraded store.
async fn assert_upgraded(store: Arc<dyn Store>, secrets: &Secrets) {
    let clock = ManualClock::new(secrets.clock_ms);
    let auth = auth(store.clone(), &clock);
    for (email, tokens) in &secrets.sessions {
        for token in tokens {
            let user = auth
                .get_user_from_session_id(Some(token))
                .await
                .expect("session lookup");
            assert_eq!(
                user.map(|u| u.email).as_ref(),
                Some(email),
                "a 0.1 session keeps its user"
            );
        }
    }
    for (email, password) in &secrets.passwords {
        assert!(
            auth.valid_login(email, password).await.expect("verify"),
            "{email} logs in with the 0.1 password"
        );
        // Accounts from before email confirmation count as confirmed: requiring it later
        // locks none of them out.
        let record = store
            .find_user_by(UserLookup::Email(email))
            .await
            .expect("find")
            .expect("user");
        assert_eq!(
            record.user.email_confirmed_at_ms,
            Some(record.user.created_at_ms),
            "{email} is confirmed by the upgrade"
        );
    }
    let counter = store
        .get_counter("login:ip:192.0.2.7", secrets.issued_at_ms)
        .await
        .expect("get_counter");
    assert_eq!(
        counter.map(|c| c.count),
        Some(1),
        "the per-client failure count is carried over"
    );

    // Reset tokens keep their expiry: alice's and carol's (issued first) expire an hour
    // after they were issued, bob's half an hour later.
    clock.advance(Duration::from_millis(
        u64::try_from(secrets.issued_at_ms + 3_600_000 - secrets.clock_ms).unwrap(),
    ));
    for email in ["alice@example.com", "carol@example.com"] {
        let err = auth
            .reset_password(
                &tower_auth::Client::default(),
                email,
                &secrets.reset_tokens[email],
                "a brand new password",
            )
            .await
            .expect_err("an expired 0.1 reset token is refused");
        assert!(matches!(err, AuthError::InvalidResetToken), "{err:?}");
    }
    let bob = "bob@example.com";
    auth.reset_password(
        &tower_auth::Client::default(),
        bob,
        &secrets.reset_tokens[bob],
        "a brand new password",
    )
    .await
    .expect("a live 0.1 reset token redeems once");
    assert!(
        auth.reset_password(
            &tower_auth::Client::default(),
            bob,
            &secrets.reset_tokens[bob],
            "another one"
        )
        .await
        .is_err(),
        "and only once"
    );
    auth.log_in(
        &tower_auth::Client::default(),
        LoginAttempt::new(bob, "a brand new password"),
    )
    .await
    .expect("bob logs in with the new password");

    // New accounts get new ids.
    let newcomer = auth
        .register_user("dave@example.com", "dave-password-4")
        .await
        .expect("register after the upgrade");
    assert!(
        newcomer.id.0 > 3,
        "ids continue after the 0.1 ones: {newcomer:?}"
    );
}

/// Only tower-auth's tables remain: no 0.1 table, no sqlx bookkeeping.
fn assert_tables(mut tables: Vec<String>) {
    tables.retain(|t| !t.starts_with("sqlite_"));
    tables.sort();
    assert_eq!(
        tables,
        [
            "auth_counters",
            "auth_factors",
            "auth_identities",
            "auth_outbox",
            "auth_schema_migrations",
            "auth_sessions",
            "auth_tokens",
            "auth_users"
        ]
    );
}

#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_0_1_sqlite_database_upgrades_in_place() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("a.db");
    std::fs::copy(
        format!(
            "{}/tests/fixtures/v0_1/sqlite.db",
            env!("CARGO_MANIFEST_DIR")
        ),
        &file,
    )
    .expect("copy the fixture");
    let url = format!("sqlite://{}?mode=rwc", file.display());
    let secrets = secrets("sqlite.json");
    let store = store::connect(&url, false).await.expect("connect upgrades");
    assert_upgraded(store, &secrets).await;

    // A restart: nothing to do, nothing lost.
    let store = store::connect(&url, false).await.expect("connect again");
    let auth = auth(store, &ManualClock::new(secrets.clock_ms));
    assert!(
        auth.valid_login("dave@example.com", "dave-password-4")
            .await
            .unwrap()
    );
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_tables(tables);
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_0_1_postgres_database_upgrades_in_place() {
    use sqlx::Connection as _;

    let Some(db) = pg::test_database().await else {
        return;
    };
    let dump = std::fs::read_to_string(format!(
        "{}/tests/fixtures/v0_1/postgres.sql",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("the dump");
    // The dump changes its connection's search_path: load it on a connection of its own.
    let mut conn = sqlx::PgConnection::connect(db.url()).await.unwrap();
    sqlx::raw_sql(&dump)
        .execute(&mut conn)
        .await
        .expect("load the 0.1 dump");
    conn.close().await.unwrap();

    let secrets = secrets("postgres.json");
    let store = store::connect(db.url(), false)
        .await
        .expect("connect upgrades");
    assert_upgraded(store, &secrets).await;

    let store = store::connect(db.url(), false)
        .await
        .expect("connect again");
    let auth = auth(store, &ManualClock::new(secrets.clock_ms));
    assert!(
        auth.valid_login("dave@example.com", "dave-password-4")
            .await
            .unwrap()
    );
    let pool = sqlx::PgPool::connect(db.url()).await.unwrap();
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_tables(tables);
    pool.close().await;
}
