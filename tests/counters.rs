//! Throttling counters stay bounded whatever clients send: a counter's key has a fixed size
//! (a hash of the normalized email), input that cannot be an email counts under the client
//! only, and expired counters are swept.
//!
//! `TOWER_AUTH_COUNTER_ATTEMPTS` sets how many failed logins the size test sends (default
//! 2,000); run it with 100000 in release to measure:
//! `TOWER_AUTH_COUNTER_ATTEMPTS=100000 cargo test --release --test counters -- --nocapture`.
#![cfg(feature = "sqlite")]

#[path = "support/http.rs"]
mod http_support;

use std::path::Path;
use std::time::Duration;

use http_support::{TestServer, client, form, hardened_config, serve_auth};
use tower_auth::clock::ManualClock;
use tower_auth::password::{HashError, PasswordHasher};
use tower_auth::{Auth, AuthConfig, SqliteStore};

/// A hasher that costs nothing, so the test measures the store, not bcrypt.
struct PlainHasher;

impl PasswordHasher for PlainHasher {
    fn hash(&self, password: &str) -> Result<String, HashError> {
        Ok(format!("plain:{password}"))
    }

    fn verify(&self, password: &str, hash: &str) -> Result<bool, HashError> {
        Ok(hash.strip_prefix("plain:") == Some(password))
    }
}

fn attempts() -> usize {
    std::env::var("TOWER_AUTH_COUNTER_ATTEMPTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000)
}

fn config() -> AuthConfig {
    let mut config = hardened_config();
    // Every attempt reaches the counters: no client limit cuts the flood short.
    config.max_login_failures_per_ip = u32::MAX;
    config.max_body_bytes = 64 * 1024;
    config
}

async fn open(dir: &Path, clock: &ManualClock) -> (Auth, SqliteStore) {
    let url = format!("sqlite://{}?mode=rwc", dir.join("auth.db").display());
    let store = SqliteStore::connect(&url).await.expect("connect");
    let auth = Auth::builder(store.clone(), config())
        .clock(clock.clone())
        .password_hasher(PlainHasher)
        .build()
        .expect("valid config");
    (auth, store)
}

/// Counter rows and the longest key.
async fn counters(store: &SqliteStore) -> (i64, i64) {
    sqlx::query_as("SELECT COUNT(*), COALESCE(MAX(LENGTH(key)), 0) FROM auth_counters")
        .fetch_one(store.pool())
        .await
        .expect("count counters")
}

/// The database's size in bytes, as SQLite accounts it (pages in use), after a checkpoint.
async fn database_bytes(store: &SqliteStore) -> i64 {
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(store.pool())
        .await
        .expect("checkpoint");
    let (pages, size): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT page_count FROM pragma_page_count()) \
              - (SELECT freelist_count FROM pragma_freelist_count()), \
                (SELECT page_size FROM pragma_page_size())",
    )
    .fetch_one(store.pool())
    .await
    .expect("page count");
    pages * size
}

/// `POST /sessions` with these credentials; returns the status.
async fn log_in(server: &TestServer, email: &str, password: &str) -> u16 {
    client()
        .post(server.url("/sessions"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("email", email), ("password", password)]))
        .send()
        .await
        .expect("login request")
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_distinct_non_emails_count_under_the_client_only() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = ManualClock::new(1_800_000_000_000);
    let (auth, store) = open(dir.path(), &clock).await;
    let server = serve_auth(&auth).await;
    let before = database_bytes(&store).await;
    let n = attempts();
    for i in 0..n {
        let email = format!("{i:08}{}", "x".repeat(16 * 1024 - 8));
        assert_eq!(
            log_in(&server, &email, "wrong password!!").await,
            401,
            "attempt {i}"
        );
    }
    let (rows, longest) = counters(&store).await;
    assert_eq!(
        rows, 1,
        "only the client's counter: no key per 16 KiB input"
    );
    assert!(longest <= 64, "a key of {longest} bytes");
    let after = database_bytes(&store).await;
    println!(
        "{n} failed logins with distinct 16 KiB emails: database {before} -> {after} bytes \
         ({} bytes of input)",
        n * 16 * 1024
    );
    assert!(
        after - before <= 16 * 1024,
        "the database grew by {} bytes",
        after - before
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_keys_have_a_fixed_size_and_expired_counters_are_swept() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = ManualClock::new(1_800_000_000_000);
    let (auth, store) = open(dir.path(), &clock).await;
    auth.register_user("owner@example.com", "correct horse battery staple")
        .await
        .expect("register");
    let server = serve_auth(&auth).await;
    for i in 0..200 {
        // The longest email accepted, each one distinct.
        let email = format!("{i:03}{}@example.com", "a".repeat(254 - 3 - 12));
        assert_eq!(email.len(), 254);
        assert_eq!(log_in(&server, &email, "wrong password!!").await, 401);
    }
    let (rows, longest) = counters(&store).await;
    assert_eq!(
        rows, 201,
        "one counter per account tried, one for the client"
    );
    assert!(
        longest <= 64,
        "a key of {longest} bytes for a 254-byte email"
    );

    // After the window, a sweep removes them all.
    clock.advance(Duration::from_secs(16 * 60));
    let swept = auth.delete_expired().await.expect("sweep");
    assert_eq!(swept.counters, 201);
    let (rows, _) = counters(&store).await;
    assert_eq!(rows, 0, "expired counters are swept");
}
