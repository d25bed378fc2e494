//! The session cache over real HTTP, on the in-memory store, SQLite and PostgreSQL: a
//! revoked session is refused at once by the instance that revoked it and, once the change
//! is heard, by every other; on PostgreSQL the cache is set aside while the change feed is
//! lost (fail closed); expiry and the last-seen time work as without it; memory is bounded.

#![cfg(all(feature = "sqlite", feature = "postgres"))]

#[path = "support/http.rs"]
mod http_support;
#[path = "support/pg.rs"]
mod pg;
#[path = "support/process.rs"]
mod process;
#[path = "support/store.rs"]
mod store_support;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http_support::{Answer, TestServer, hardened_config, serve_auth};
use reqwest::{Method, StatusCode};
use store_support::InstrumentedStore;
use tower_auth::clock::{Clock, ManualClock};
use tower_auth::store::TokenHash;
use tower_auth::{Auth, AuthConfig, MemoryStore, SessionCacheStats, Store};

const PW: &str = "correct horse battery staple";
const NEW_PW: &str = "a brand new passphrase, long enough";
const MINUTE: Duration = Duration::from_secs(60);
/// How long a test waits for something that must happen (a notification, a reconnect)
/// before it fails: a liveness bound, far above the milliseconds these take.
const PATIENCE: Duration = Duration::from_secs(20);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Memory,
    Sqlite,
    Postgres,
}

const ALL: [Backend; 3] = [Backend::Memory, Backend::Sqlite, Backend::Postgres];

/// One instance: an `Auth` served over HTTP.
struct Instance {
    auth: Auth,
    server: TestServer,
}

/// Instances of one deployment, sharing one database: in-process stores are shared by
/// every instance (one store, as in one process); on PostgreSQL each instance connects on
/// its own, as separate processes do, and hears the others only through the database.
struct Deployment {
    instances: Vec<Instance>,
    /// A store on the same database, for checking what is stored.
    store: Arc<dyn Store>,
    clock: ManualClock,
    _dir: Option<tempfile::TempDir>,
    _db: Option<pg::TestDatabase>,
}

fn config() -> AuthConfig {
    let mut config = hardened_config();
    // Tests here advance a manual clock by minutes; the age bound has its own test.
    config.session_cache_max_age = Duration::from_secs(24 * 3600);
    config
}

impl Deployment {
    /// `None` when PostgreSQL is not available and not required (the test then skips).
    async fn start(backend: Backend, instances: usize, config: AuthConfig) -> Option<Self> {
        let mut dir = None;
        let mut db = None;
        let url = match backend {
            Backend::Memory => "memory:".to_owned(),
            Backend::Sqlite => {
                let tmp = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}?mode=rwc", tmp.path().join("a.db").display());
                dir = Some(tmp);
                url
            }
            Backend::Postgres => {
                let test_db = pg::test_database().await?;
                let url = test_db.url().to_owned();
                db = Some(test_db);
                url
            }
        };
        let shared = tower_auth::store::connect(&url, false)
            .await
            .expect("store");
        let clock = ManualClock::new(1_800_000_000_000);
        let mut list = Vec::new();
        for _ in 0..instances {
            let store = if backend == Backend::Postgres {
                tower_auth::store::connect(&url, false)
                    .await
                    .expect("store")
            } else {
                Arc::clone(&shared)
            };
            let auth = Auth::builder_shared(store, config.clone())
                .clock(clock.clone())
                .build()
                .expect("valid config");
            let server = serve_auth(&auth).await;
            list.push(Instance { auth, server });
        }
        Some(Self {
            instances: list,
            store: shared,
            clock,
            _dir: dir,
            _db: db,
        })
    }

    fn at(&self, i: usize) -> &Instance {
        &self.instances[i]
    }
}

impl Instance {
    async fn send(
        &self,
        method: Method,
        path: &str,
        form: &[(&str, &str)],
        cookie: Option<&str>,
    ) -> Answer {
        let headers: Vec<(&str, &str)> = cookie.map_or_else(Vec::new, |c| vec![("Cookie", c)]);
        http_support::send(&self.server, method, path, form, &headers).await
    }

    async fn register(&self, email: &str) {
        self.send(
            Method::POST,
            "/users",
            &[("email", email), ("password", PW)],
            None,
        )
        .await
        .expect(StatusCode::OK);
    }

    /// Logs in and returns the session cookie (`name=value`).
    async fn log_in(&self, email: &str, password: &str) -> String {
        let answer = self
            .send(
                Method::POST,
                "/sessions",
                &[("email", email), ("password", password)],
                None,
            )
            .await;
        answer.expect(StatusCode::OK);
        let name = &self.auth.config().cookie.name;
        answer
            .set_cookies
            .iter()
            .find_map(|c| {
                let pair = c.split(';').next()?;
                pair.starts_with(&format!("{name}="))
                    .then(|| pair.to_owned())
            })
            .expect("a session cookie")
    }

    async fn profile(&self, cookie: &str) -> Answer {
        self.send(Method::GET, "/profile", &[], Some(cookie)).await
    }

    fn stats(&self) -> SessionCacheStats {
        self.auth.session_cache_stats().expect("the cache is on")
    }

    /// Looks `cookie` up until the answer comes from the cache (the cache starts using
    /// itself once the store's change feed is open); panics if that never happens.
    async fn warm(&self, cookie: &str) {
        eventually("the session is answered from the cache", || async {
            self.profile(cookie).await.expect(StatusCode::OK);
            let before = self.stats().hits;
            self.profile(cookie).await.expect(StatusCode::OK);
            self.stats().hits > before
        })
        .await;
    }
}

/// Polls `check` until it is true; panics after [`PATIENCE`].
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never happened: {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The ways a session is revoked, as the user (or an operator) does them.
#[derive(Debug, Clone, Copy)]
enum Revocation {
    /// `DELETE /sessions` with the session itself.
    LogOut,
    /// `PUT /password` from another session: every other session ends.
    PasswordChange,
    /// `DELETE /sessions/others` from another session.
    EndOthers,
    /// `DELETE /users/me` from another session.
    AccountDeletion,
}

const REVOCATIONS: [Revocation; 4] = [
    Revocation::LogOut,
    Revocation::PasswordChange,
    Revocation::EndOthers,
    Revocation::AccountDeletion,
];

impl Revocation {
    /// Revokes `victim` on `instance`, using `other` (another session of the same user)
    /// where the action is taken from elsewhere.
    async fn apply(self, instance: &Instance, victim: &str, other: &str) {
        let (method, path, form, cookie): (Method, &str, &[(&str, &str)], &str) = match self {
            Self::LogOut => (Method::DELETE, "/sessions", &[], victim),
            Self::PasswordChange => (
                Method::PUT,
                "/password",
                &[("current_password", PW), ("new_password", NEW_PW)],
                other,
            ),
            Self::EndOthers => (Method::DELETE, "/sessions/others", &[], other),
            Self::AccountDeletion => (Method::DELETE, "/users/me", &[("password", PW)], other),
        };
        let answer = instance.send(method, path, form, Some(cookie)).await;
        assert!(
            answer.status.is_success() || answer.status.is_redirection(),
            "{self:?}: {answer:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_never_serves_a_session_it_has_ended() {
    for backend in ALL {
        let Some(app) = Deployment::start(backend, 1, config()).await else {
            continue;
        };
        let one = app.at(0);
        for (i, revocation) in REVOCATIONS.into_iter().enumerate() {
            let email = format!("user{i}@example.com");
            one.register(&email).await;
            let victim = one.log_in(&email, PW).await;
            let other = one.log_in(&email, PW).await;
            one.warm(&victim).await;
            revocation.apply(one, &victim, &other).await;
            // No waiting: the write's own change evicted the entry before it returned.
            one.profile(&victim).await.expect(StatusCode::UNAUTHORIZED);
            eprintln!("{backend:?} {revocation:?}: refused at once");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_sharing_a_store_hear_each_others_revocations() {
    for backend in ALL {
        let Some(app) = Deployment::start(backend, 2, config()).await else {
            continue;
        };
        let (a, b) = (app.at(0), app.at(1));
        for (i, revocation) in REVOCATIONS.into_iter().enumerate() {
            let email = format!("user{i}@example.com");
            a.register(&email).await;
            let victim = a.log_in(&email, PW).await;
            let other = a.log_in(&email, PW).await;
            b.warm(&victim).await;
            let heard = b.stats().changes_heard;
            revocation.apply(a, &victim, &other).await;
            if backend == Backend::Postgres {
                // Another process hears it from the database a moment after the commit
                // (benches/revocation.rs measures how long).
                eventually("B hears A's change", || async {
                    b.stats().changes_heard > heard
                })
                .await;
            }
            b.profile(&victim).await.expect(StatusCode::UNAUTHORIZED);
            assert_eq!(
                b.stats().entries,
                0,
                "{backend:?} {revocation:?}: nothing left cached"
            );
        }
    }
}

/// Runs `sql` on `pool` and waits until `instance` has heard the change it announces.
async fn sql_heard(instance: &Instance, pool: &sqlx::PgPool, sql: &str) {
    let heard = instance.stats().changes_heard;
    sqlx::query(sql).execute(pool).await.expect(sql);
    eventually(sql, || async { instance.stats().changes_heard > heard }).await;
}

/// Changes made to the tables directly (an operator's SQL) reach every instance's cache:
/// the database's triggers announce them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_made_in_sql_reach_the_cache() {
    let Some(app) = Deployment::start(Backend::Postgres, 1, config()).await else {
        return;
    };
    let one = app.at(0);
    let db = app._db.as_ref().expect("a database");
    let pool = sqlx::PgPool::connect(db.url()).await.expect("admin pool");

    one.register("alice@example.com").await;
    let cookie = one.log_in("alice@example.com", PW).await;
    one.warm(&cookie).await;
    sql_heard(
        one,
        &pool,
        "UPDATE auth_users SET email = 'alice@example.org'",
    )
    .await;
    let answer = one.profile(&cookie).await;
    answer.expect(StatusCode::OK);
    assert_eq!(answer.body["email"], "alice@example.org");

    one.warm(&cookie).await;
    sql_heard(one, &pool, "DELETE FROM auth_sessions").await;
    one.profile(&cookie).await.expect(StatusCode::UNAUTHORIZED);

    // The last-seen time is not a change: touching does not evict.
    let cookie = one.log_in("alice@example.org", PW).await;
    one.warm(&cookie).await;
    let heard = one.stats().changes_heard;
    sqlx::query("UPDATE auth_sessions SET last_seen_ms = last_seen_ms + 1")
        .execute(&pool)
        .await
        .expect("touch");
    // A change that is announced, after it, proves the touch was not.
    sql_heard(
        one,
        &pool,
        "UPDATE auth_users SET email = 'alice@example.net'",
    )
    .await;
    assert_eq!(
        one.stats().changes_heard,
        heard + 1,
        "one announcement: the email, not the touch"
    );
}

/// While the change feed is lost, the cache is not used: every lookup reads the database,
/// so a session revoked meanwhile (whose announcement this instance cannot hear) is
/// refused. When the feed is back, the cache starts again, empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_fails_closed_while_the_change_feed_is_lost() {
    use tower_auth::store::{PgStore, PgStoreOptions};

    let Some(db) = pg::test_database().await else {
        return;
    };
    let admin = sqlx::PgPool::connect(db.server_url())
        .await
        .expect("admin pool");
    let direct = sqlx::PgPool::connect(db.url()).await.expect("direct pool");
    // A fixed pool: while new connections are refused, the instance keeps its own.
    let mut options = PgStoreOptions::default();
    options.min_connections = 3;
    options.max_connections = 3;
    let store = PgStore::connect_with(db.url(), options)
        .await
        .expect("store");
    let auth = Auth::new(store, config()).expect("valid config");
    let one = Instance {
        server: serve_auth(&auth).await,
        auth,
    };
    let connections = |name: &'static str| {
        let admin = admin.clone();
        let database = db.name().to_owned();
        async move {
            sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND application_name = $2",
            )
            .bind(database)
            .bind(name)
            .fetch_one(&admin)
            .await
            .expect("pg_stat_activity")
        }
    };

    one.register("alice@example.com").await;
    one.register("bob@example.com").await;
    let alice = one.log_in("alice@example.com", PW).await;
    let bob = one.log_in("bob@example.com", PW).await;
    one.warm(&alice).await;
    one.warm(&bob).await;
    assert_eq!(connections(PgStore::CHANGE_LISTENER_NAME).await, 1);

    // Cut the feed and keep it cut: no new connection to this database, and the
    // listener's own connection terminated.
    sqlx::query(&format!(
        "ALTER DATABASE \"{}\" CONNECTION LIMIT 0",
        db.name()
    ))
    .execute(&admin)
    .await
    .expect("limit");
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = $1 AND application_name = $2",
    )
    .bind(db.name())
    .bind(PgStore::CHANGE_LISTENER_NAME)
    .execute(&admin)
    .await
    .expect("terminate");
    eventually("the instance notices the lost feed", || async {
        !one.stats().in_use
    })
    .await;
    assert_eq!(one.stats().feed_losses, 1);
    assert_eq!(one.stats().entries, 0, "emptied");

    // Alice's session is revoked where this instance cannot hear it.
    sqlx::query("DELETE FROM auth_sessions WHERE user_id = (SELECT id FROM auth_users WHERE email = 'alice@example.com')")
        .execute(&direct)
        .await
        .expect("revoke");
    let misses = one.stats().misses;
    one.profile(&alice).await.expect(StatusCode::UNAUTHORIZED);
    // Bob's is still good, read from the database each time.
    one.profile(&bob).await.expect(StatusCode::OK);
    one.profile(&bob).await.expect(StatusCode::OK);
    let stats = one.stats();
    assert_eq!(
        stats.misses,
        misses + 3,
        "every lookup went to the database"
    );
    assert!(!stats.in_use);

    // The feed comes back: the cache is used again, starting empty.
    sqlx::query(&format!(
        "ALTER DATABASE \"{}\" CONNECTION LIMIT -1",
        db.name()
    ))
    .execute(&admin)
    .await
    .expect("unlimit");
    eventually("the feed reconnects", || async { one.stats().in_use }).await;
    one.profile(&alice).await.expect(StatusCode::UNAUTHORIZED);
    one.warm(&bob).await;
    assert_eq!(connections(PgStore::CHANGE_LISTENER_NAME).await, 1);
}

/// A TCP proxy in front of PostgreSQL that can stop passing bytes without closing anything:
/// a connection that looks open and says nothing (a half-open connection, a pooler that
/// does not pass `LISTEN` through).
struct SilentProxy {
    addr: std::net::SocketAddr,
    paused: tokio::sync::watch::Sender<bool>,
}

impl SilentProxy {
    async fn start(upstream: String) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (paused, _) = tokio::sync::watch::channel(false);
        let gate = paused.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else {
                    continue;
                };
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                tokio::spawn(pump(client_read, server_write, gate.subscribe()));
                tokio::spawn(pump(server_read, client_write, gate.subscribe()));
            }
        });
        Self { addr, paused }
    }

    fn set_paused(&self, paused: bool) {
        self.paused.send_replace(paused);
    }
}

/// Copies bytes from `from` to `to`, holding them while the gate says paused.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut paused: tokio::sync::watch::Receiver<bool>,
) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut buf = vec![0; 16 * 1024];
    loop {
        let Ok(n) = from.read(&mut buf).await else {
            return;
        };
        if n == 0 {
            return;
        }
        while *paused.borrow_and_update() {
            if paused.changed().await.is_err() {
                return;
            }
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// A listener whose connection goes silent without closing is lost all the same: it hears
/// nothing, not even the pings every instance sends, and the cache is set aside until a
/// new listener hears again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_change_feed_counts_as_lost() {
    let Some(db) = pg::test_database().await else {
        return;
    };
    let url = reqwest::Url::parse(db.url()).expect("database URL");
    let upstream = format!(
        "{}:{}",
        url.host_str().expect("host"),
        url.port().unwrap_or(5432)
    );
    let proxy = SilentProxy::start(upstream).await;
    let mut through = url.clone();
    through.set_host(Some("127.0.0.1")).expect("host");
    through.set_port(Some(proxy.addr.port())).expect("port");
    let auth = Auth::connect(through.as_str(), config())
        .await
        .expect("connect");
    let one = Instance {
        server: serve_auth(&auth).await,
        auth,
    };
    one.register("alice@example.com").await;
    let cookie = one.log_in("alice@example.com", PW).await;
    one.warm(&cookie).await;

    proxy.set_paused(true);
    eventually("the silent feed is noticed", || async {
        !one.stats().in_use
    })
    .await;
    assert_eq!(one.stats().feed_losses, 1);
    assert_eq!(one.stats().entries, 0, "emptied");

    proxy.set_paused(false);
    eventually("a new listener hears again", || async {
        one.stats().in_use
    })
    .await;
    one.warm(&cookie).await;
}

/// Expiry is enforced to the minute and the last-seen time recorded, cached or not; a
/// stale cached copy never expires a session another instance kept in use.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_and_last_seen_hold_with_cached_sessions() {
    for backend in ALL {
        let Some(app) = Deployment::start(backend, 2, config()).await else {
            continue;
        };
        let (a, b) = (app.at(0), app.at(1));
        a.register("alice@example.com").await;
        let cookie = a.log_in("alice@example.com", PW).await;
        let token = cookie.split_once('=').expect("name=value").1.to_owned();
        a.warm(&cookie).await;
        b.warm(&cookie).await;
        let stored_last_seen = || async {
            let (session, _) = app
                .store
                .find_session(&TokenHash::of(&token))
                .await
                .expect("lookup")
                .expect("the session is stored");
            session.last_seen_ms
        };

        // 25 idle minutes of 30, then a request on A: its use is recorded.
        app.clock.advance(25 * MINUTE);
        a.profile(&cookie).await.expect(StatusCode::OK);
        assert_eq!(stored_last_seen().await, app.clock.now_ms(), "{backend:?}");
        // 10 minutes on, B's cached copy says 35 idle minutes; the store says 10.
        app.clock.advance(10 * MINUTE);
        b.profile(&cookie).await.expect(StatusCode::OK);
        assert_eq!(
            stored_last_seen().await,
            app.clock.now_ms(),
            "{backend:?}: B recorded its use"
        );
        // 31 idle minutes later, both refuse.
        app.clock.advance(31 * MINUTE);
        a.profile(&cookie).await.expect(StatusCode::UNAUTHORIZED);
        b.profile(&cookie).await.expect(StatusCode::UNAUTHORIZED);

        // The absolute lifetime (12 h) holds for a session in constant use.
        let cookie = a.log_in("alice@example.com", PW).await;
        a.warm(&cookie).await;
        for _ in 0..(12 * 60 / 20 - 1) {
            app.clock.advance(20 * MINUTE);
            a.profile(&cookie).await.expect(StatusCode::OK);
        }
        app.clock.advance(20 * MINUTE);
        a.profile(&cookie).await.expect(StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_holds_at_most_its_capacity() {
    let mut config = config();
    config.session_cache_capacity = 4;
    for backend in ALL {
        let Some(app) = Deployment::start(backend, 1, config.clone()).await else {
            continue;
        };
        let one = app.at(0);
        let mut cookies = Vec::new();
        for i in 0..12 {
            let email = format!("user{i}@example.com");
            one.register(&email).await;
            cookies.push(one.log_in(&email, PW).await);
        }
        one.warm(&cookies[0]).await;
        for round in 0..2 {
            for cookie in &cookies {
                one.profile(cookie).await.expect(StatusCode::OK);
                let stats = one.stats();
                assert!(stats.entries <= 4, "{backend:?} round {round}: {stats:?}");
            }
        }
        for cookie in &cookies {
            one.send(Method::DELETE, "/sessions", &[], Some(cookie))
                .await;
            one.profile(cookie).await.expect(StatusCode::UNAUTHORIZED);
        }
    }
}

/// Two stores opened separately on one SQLite file in one process (two `Auth::connect`
/// calls, say) hear each other at once, as clones of one store do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_opened_apart_on_one_sqlite_file_hear_each_other() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}?mode=rwc", tmp.path().join("a.db").display());
    let mut instances = Vec::new();
    for _ in 0..2 {
        let auth = Auth::connect(&url, config()).await.expect("connect");
        let server = serve_auth(&auth).await;
        instances.push(Instance { auth, server });
    }
    let (a, b) = (&instances[0], &instances[1]);
    a.register("alice@example.com").await;
    let cookie = a.log_in("alice@example.com", PW).await;
    b.warm(&cookie).await;
    a.send(Method::DELETE, "/sessions", &[], Some(&cookie))
        .await;
    b.profile(&cookie).await.expect(StatusCode::UNAUTHORIZED);
}

/// The age bound: a change this instance cannot hear (another process writing the same
/// SQLite file, here the spec server) is seen once the cached entry is older than
/// `session_cache_max_age`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_are_read_again_past_their_age_bound() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}?mode=rwc", tmp.path().join("a.db").display());
    let binary = tokio::task::spawn_blocking(process::spec_server_binary)
        .await
        .expect("build spec_server");
    let other = process::SpecServer::start(&binary, &url, &[]).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis();
    let clock = ManualClock::new(i64::try_from(now).expect("ms fit in i64"));
    let mut config = AuthConfig::spec();
    config.bcrypt_cost = 4;
    config.session_cache_max_age = Duration::from_secs(10);
    let store = tower_auth::store::connect(&url, false)
        .await
        .expect("store");
    let auth = Auth::builder_shared(store, config)
        .clock(clock.clone())
        .build()
        .expect("valid config");
    let here = Instance {
        server: serve_auth(&auth).await,
        auth,
    };

    let http = http_support::client();
    let form = [("email", "alice@example.com"), ("password", PW)];
    let registered = http
        .post(format!("{}/users", other.base))
        .form(&form)
        .send()
        .await;
    assert_eq!(registered.expect("register").status(), StatusCode::OK);
    let login = http
        .post(format!("{}/sessions", other.base))
        .form(&form)
        .send()
        .await
        .expect("login");
    let cookie = http_support::set_cookies(&login)
        .iter()
        .find_map(|c| {
            c.split(';')
                .next()
                .filter(|p| p.starts_with("session_id="))
                .map(str::to_owned)
        })
        .expect("a session cookie");
    here.warm(&cookie).await;
    let logout = http
        .delete(format!("{}/sessions", other.base))
        .header("Cookie", &cookie)
        .send()
        .await
        .expect("logout");
    assert!(logout.status().is_redirection(), "{}", logout.status());
    clock.advance(Duration::from_secs(10));
    // The spec preset refuses as the seed does: 403, with an HTML body.
    let refused = http
        .get(here.server.url("/profile"))
        .header("Cookie", &cookie)
        .send()
        .await
        .expect("profile");
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
}

/// A store that cannot tell of changes (the trait's default) is never cached: every
/// lookup reads it. With the cache turned off there are no statistics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unheard_stores_and_a_zero_capacity_are_never_cached() {
    let store = InstrumentedStore::memory();
    let calls = store.calls();
    let auth = Auth::new(store, config()).expect("valid config");
    let one = Instance {
        server: serve_auth(&auth).await,
        auth,
    };
    one.register("alice@example.com").await;
    let cookie = one.log_in("alice@example.com", PW).await;
    for _ in 0..5 {
        let before = calls.snapshot();
        one.profile(&cookie).await.expect(StatusCode::OK);
        assert_eq!(calls.since(&before).get("find_session"), Some(&1));
    }
    let stats = one.stats();
    assert!(
        !stats.in_use && stats.hits == 0 && stats.entries == 0,
        "{stats:?}"
    );

    let mut off = config();
    off.session_cache_capacity = 0;
    let auth = Auth::new(MemoryStore::new(), off).expect("valid config");
    assert_eq!(auth.session_cache_stats(), None);
    let one = Instance {
        server: serve_auth(&auth).await,
        auth,
    };
    one.register("alice@example.com").await;
    let cookie = one.log_in("alice@example.com", PW).await;
    one.profile(&cookie).await.expect(StatusCode::OK);
    one.send(Method::DELETE, "/sessions", &[], Some(&cookie))
        .await;
    one.profile(&cookie).await.expect(StatusCode::UNAUTHORIZED);
}
