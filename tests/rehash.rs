//! Transparent upgrades of stored password hashes: after a successful login, a hash of
//! another algorithm or other parameters than the configuration's is replaced in the
//! background (bcrypt 4 -> 5 here, standing for 10 -> 12; bcrypt -> argon2id), never twice
//! at once for one user, and never over a password changed in between. On memory, SQLite
//! and PostgreSQL.

#[path = "support/pg.rs"]
mod pg;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tower_auth::password::{
    Argon2Params, ConfiguredHasher, HashAlgorithm, HashError, PasswordHasher,
};
use tower_auth::store::UserLookup;
use tower_auth::{Auth, AuthConfig, LoginAttempt, MemoryStore, Store};

const EMAIL: &str = "alice@example.com";
const PASSWORD: &str = "correct horse battery staple";
/// argon2id kept cheap for tests.
const SMALL_ARGON2: (u32, u32, u32) = (256, 1, 1);

/// The configured hasher, counting hashes and how many ran at once.
#[derive(Clone)]
struct Watched {
    inner: ConfiguredHasher,
    hashes: Arc<AtomicUsize>,
    running: Arc<AtomicUsize>,
    most_at_once: Arc<AtomicUsize>,
}

impl Watched {
    fn new(config: &AuthConfig) -> Self {
        Self {
            inner: ConfiguredHasher::from_config(config),
            hashes: Arc::default(),
            running: Arc::default(),
            most_at_once: Arc::default(),
        }
    }
}

impl PasswordHasher for Watched {
    fn hash(&self, password: &str) -> Result<String, HashError> {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_at_once.fetch_max(now, Ordering::SeqCst);
        self.hashes.fetch_add(1, Ordering::SeqCst);
        let hash = self.inner.hash(password);
        self.running.fetch_sub(1, Ordering::SeqCst);
        hash
    }

    fn verify(&self, password: &str, hash: &str) -> Result<bool, HashError> {
        self.inner.verify(password, hash)
    }

    fn needs_rehash(&self, hash: &str) -> bool {
        self.inner.needs_rehash(hash)
    }
}

fn bcrypt(cost: u32) -> AuthConfig {
    let mut config = AuthConfig::spec();
    config.bcrypt_cost = cost;
    config.hash_permits = 8;
    config
}

fn argon2() -> AuthConfig {
    let mut config = bcrypt(4);
    config.hash_algorithm = HashAlgorithm::Argon2id;
    let (m, t, p) = SMALL_ARGON2;
    config.argon2 = Argon2Params::new(m, t, p);
    config
}

async fn stored_hash(store: &Arc<dyn Store>) -> String {
    store
        .find_user_by(UserLookup::Email(EMAIL))
        .await
        .expect("find_user_by")
        .expect("the user")
        .password_hash
}

/// Waits until the stored hash starts with `prefix` and no hash is running. A guard
/// against a hang, not a timing: the upgrade is a background task of the login.
async fn upgraded_to(store: &Arc<dyn Store>, watched: &Watched, prefix: &str) -> String {
    for _ in 0..2_000 {
        let hash = stored_hash(store).await;
        if hash.starts_with(prefix) && watched.running.load(Ordering::SeqCst) == 0 {
            return hash;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("the stored hash was never upgraded to {prefix}");
}

async fn log_in(auth: &Auth) {
    auth.log_in(
        &tower_auth::Client::default(),
        LoginAttempt::new(EMAIL, PASSWORD),
    )
    .await
    .expect("the password still logs in");
}

/// Registers under `from`, then logs in under `to` (same store): the hash moves to `to`'s
/// algorithm and parameters once, and the next login changes nothing.
async fn upgrade(store: Arc<dyn Store>, from: AuthConfig, to: AuthConfig, prefix: &str) {
    let old = Auth::builder_shared(store.clone(), from).build().unwrap();
    old.register_user(EMAIL, PASSWORD).await.expect("register");
    let before = stored_hash(&store).await;
    assert!(!before.starts_with(prefix), "{before}");

    let watched = Watched::new(&to);
    let new = Auth::builder_shared(store.clone(), to)
        .password_hasher(watched.clone())
        .build()
        .unwrap();
    log_in(&new).await;
    let after = upgraded_to(&store, &watched, prefix).await;
    assert_eq!(watched.hashes.load(Ordering::SeqCst), 1, "one rehash");
    assert_ne!(after, before);

    // The upgraded hash logs in, verifies under the old configuration's hasher too (a
    // rollback keeps working), and is not replaced again.
    log_in(&new).await;
    assert!(
        ConfiguredHasher::from_config(old.config())
            .verify(PASSWORD, &after)
            .unwrap()
    );
    assert!(new.valid_login(EMAIL, PASSWORD).await.unwrap());
    assert!(!new.valid_login(EMAIL, "wrong password!!").await.unwrap());
    assert_eq!(
        watched.hashes.load(Ordering::SeqCst),
        1,
        "a current hash is kept"
    );
    assert_eq!(stored_hash(&store).await, after);
}

/// Many logins at once for one user: one upgrade at a time, and the password works after.
async fn concurrent_logins_upgrade_once_at_a_time(store: Arc<dyn Store>) {
    let old = Auth::builder_shared(store.clone(), bcrypt(4))
        .build()
        .unwrap();
    old.register_user(EMAIL, PASSWORD).await.expect("register");
    let watched = Watched::new(&bcrypt(5));
    let new = Auth::builder_shared(store.clone(), bcrypt(5))
        .password_hasher(watched.clone())
        .build()
        .unwrap();
    // Fewer than `max_login_failures` (10): attempts in flight count against it.
    let logins: Vec<_> = (0..8)
        .map(|_| {
            let new = new.clone();
            tokio::spawn(async move { log_in(&new).await })
        })
        .collect();
    for login in logins {
        login.await.expect("login task");
    }
    upgraded_to(&store, &watched, "$2b$05$").await;
    assert_eq!(
        watched.most_at_once.load(Ordering::SeqCst),
        1,
        "never two upgrades of one user at once"
    );
    log_in(&new).await;
}

/// A password reset between the verification and the upgrade is not undone by it.
async fn a_password_change_wins_over_a_pending_upgrade(store: Arc<dyn Store>) {
    let old = Auth::builder_shared(store.clone(), bcrypt(4))
        .build()
        .unwrap();
    old.register_user(EMAIL, PASSWORD).await.expect("register");
    let stale = stored_hash(&store).await;
    let token = old.get_reset_password_token(EMAIL).await.unwrap();
    old.reset_password(
        &tower_auth::Client::default(),
        EMAIL,
        &token,
        "a brand new passphrase",
    )
    .await
    .unwrap();
    let id = store
        .find_user_by(UserLookup::Email(EMAIL))
        .await
        .unwrap()
        .unwrap()
        .user
        .id;
    // What a late upgrade of the old hash would do: refused.
    assert!(
        !store
            .replace_password_hash(id, &stale, "$2b$05$late")
            .await
            .unwrap()
    );
    assert!(
        old.valid_login(EMAIL, "a brand new passphrase")
            .await
            .unwrap()
    );
}

async fn every_scenario(store: impl Fn() -> Arc<dyn Store>) {
    upgrade(store(), bcrypt(4), bcrypt(5), "$2b$05$").await;
    upgrade(
        store(),
        bcrypt(4),
        argon2(),
        "$argon2id$v=19$m=256,t=1,p=1$",
    )
    .await;
    upgrade(store(), argon2(), bcrypt(4), "$2b$04$").await;
    concurrent_logins_upgrade_once_at_a_time(store()).await;
    a_password_change_wins_over_a_pending_upgrade(store()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_memory() {
    every_scenario(|| Arc::new(MemoryStore::new())).await;
}

#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sqlite() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut stores = Vec::new();
    for i in 0..5 {
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join(format!("{i}.db")).display()
        );
        stores.push(
            tower_auth::store::connect(&url, false)
                .await
                .expect("sqlite"),
        );
    }
    let next = std::sync::Mutex::new(stores.into_iter());
    every_scenario(|| next.lock().unwrap().next().expect("a store per scenario")).await;
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres() {
    let mut dbs = Vec::new();
    for _ in 0..5 {
        let Some(db) = pg::test_database().await else {
            return;
        };
        dbs.push(db);
    }
    let mut stores = Vec::new();
    for db in &dbs {
        stores.push(
            tower_auth::store::connect(db.url(), false)
                .await
                .expect("postgres"),
        );
    }
    let next = std::sync::Mutex::new(stores.into_iter());
    every_scenario(|| next.lock().unwrap().next().expect("a store per scenario")).await;
}

/// A login for an unknown email verifies against a dummy hash of the configured algorithm,
/// so it costs what a known account's login costs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_emails_verify_against_a_hash_of_the_configured_algorithm() {
    for (config, prefix) in [
        (bcrypt(5), "$2b$05$"),
        (argon2(), "$argon2id$v=19$m=256,t=1,p=1$"),
    ] {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let hasher = Seen(Watched::new(&config), seen.clone());
        let auth = Auth::builder(MemoryStore::new(), config)
            .password_hasher(hasher)
            .build()
            .unwrap();
        let refused = auth
            .log_in(
                &tower_auth::Client::default(),
                LoginAttempt::new("nobody@example.com", PASSWORD),
            )
            .await;
        assert!(refused.is_err());
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 1, "one verification");
        assert!(seen[0].starts_with(prefix), "{} against {prefix}", seen[0]);
    }
}

/// Records the stored hash of every verification.
struct Seen(Watched, Arc<std::sync::Mutex<Vec<String>>>);

impl PasswordHasher for Seen {
    fn hash(&self, password: &str) -> Result<String, HashError> {
        self.0.hash(password)
    }

    fn verify(&self, password: &str, hash: &str) -> Result<bool, HashError> {
        self.1.lock().unwrap().push(hash.to_owned());
        self.0.verify(password, hash)
    }
}

#[test]
fn argon2_holds_hashing_to_the_memory_budget() {
    let mut config = argon2();
    config.hash_permits = 8;
    config.argon2 = Argon2Params::new(1024, 1, 1); // 1 MiB a hash
    config.hash_memory_budget = 3 * 1024 * 1024 + 512;
    assert_eq!(config.effective_hash_permits(), 3, "3 MiB hold 3 hashes");
    let auth = Auth::new(MemoryStore::new(), config.clone()).unwrap();
    assert_eq!(auth.hash_pool().permits(), 3);

    config.hash_memory_budget = 512 * 1024;
    assert!(matches!(
        Auth::new(MemoryStore::new(), config.clone()),
        Err(tower_auth::ConfigError::HashMemoryBudget { .. })
    ));
    // bcrypt needs no budget.
    config.hash_algorithm = HashAlgorithm::Bcrypt;
    assert_eq!(
        Auth::new(MemoryStore::new(), config)
            .unwrap()
            .hash_pool()
            .permits(),
        8
    );
}
