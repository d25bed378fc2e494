//! The hashing pool sheds load instead of queueing without bound, and a login storm does
//! not stop logged-in traffic.
//!
//! A [`PasswordHasher`] that blocks until the test opens a gate is plugged into the
//! crate's router, served over real HTTP, with `hash_permits = 1` and `hash_queue = N - 1`.
//! N concurrent logins then fill the pool (one hashing, N - 1 waiting). While they are all
//! still held:
//! - the (N+1)-th login is answered `503` with `Retry-After` (it returns while the other N
//!   are still blocked, which is the proof it did not queue);
//! - a registration and a password reset are shed the same way;
//! - `GET /profile` with a valid session cookie still answers `200`.
//!
//! Then the gate opens and all N logins complete with `200` (right password) or `401`
//! (wrong password), and the pool is empty again.

#[path = "support/http.rs"]
mod http_support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use tokio::task::JoinHandle;
use tower_auth::password::{Bcrypt, HashError, PasswordHasher};
use tower_auth::{Auth, AuthConfig, MemoryStore};

/// Logins that fill the pool: 1 hashing + `N - 1` waiting.
const N: usize = 4;
const EMAIL: &str = "held@example.com";
const PASSWORD: &str = "the right password";

/// bcrypt at cost 4 behind a gate: while the gate is closed, every call waits for it.
#[derive(Clone, Default)]
struct GatedHasher {
    gate: Arc<Gate>,
}

#[derive(Default)]
struct Gate {
    closed: Mutex<bool>,
    opened: Condvar,
    /// Calls currently waiting at the closed gate.
    waiting: AtomicUsize,
}

impl Gate {
    fn close(&self) {
        *self.closed.lock().unwrap() = true;
    }

    fn open(&self) {
        *self.closed.lock().unwrap() = false;
        self.opened.notify_all();
    }

    fn pass(&self) {
        let mut closed = self.closed.lock().unwrap();
        if *closed {
            self.waiting.fetch_add(1, Ordering::SeqCst);
            while *closed {
                closed = self.opened.wait(closed).unwrap();
            }
            self.waiting.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Opens the gate when dropped, so a failed assertion never leaves blocking threads behind
/// (the runtime would wait for them forever on shutdown).
struct OpenOnDrop(Arc<Gate>);

impl Drop for OpenOnDrop {
    fn drop(&mut self) {
        self.0.open();
    }
}

impl PasswordHasher for GatedHasher {
    fn hash(&self, password: &str) -> Result<String, HashError> {
        self.gate.pass();
        Bcrypt::new(4).hash(password)
    }

    fn verify(&self, password: &str, hash: &str) -> Result<bool, HashError> {
        self.gate.pass();
        Bcrypt::new(4).verify(password, hash)
    }
}

use http_support::client;

async fn post(url: String, form: &[(&str, &str)]) -> reqwest::Response {
    client().post(url).form(form).send().await.expect("request")
}

async fn put(url: String, form: &[(&str, &str)]) -> reqwest::Response {
    client().put(url).form(form).send().await.expect("request")
}

/// An `Auth` over a `MemoryStore` whose hasher waits at the returned gate while it is
/// closed: the spec preset with `hash_permits = 1` and `hash_queue = N - 1`, then `tweak`.
/// The guard opens the gate when dropped.
fn gated_auth(tweak: impl FnOnce(&mut AuthConfig)) -> (Auth, Arc<Gate>, OpenOnDrop) {
    let hasher = GatedHasher::default();
    let gate = hasher.gate.clone();
    let mut config = AuthConfig::spec();
    config.hash_permits = 1;
    config.hash_queue = N - 1;
    tweak(&mut config);
    let auth = Auth::builder(MemoryStore::new(), config)
        .password_hasher(hasher)
        .build()
        .expect("valid config");
    (auth, gate.clone(), OpenOnDrop(gate))
}

/// Registers `email` with [`PASSWORD`] through `POST /users`, which must succeed.
async fn register(base: &str, email: &str) {
    let registered = post(
        format!("{base}/users"),
        &[("email", email), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(registered.status(), StatusCode::OK, "registering {email}");
}

/// Serves the crate's router as the spec server does; returns its base URL.
async fn serve(auth: &Auth) -> String {
    http_support::serve_auth(auth).await.base()
}

/// Waits (up to 10 s) until `done` holds.
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting until {what}");
}

/// A shed answer: 503, `Retry-After` of at least one second, a JSON message. `request`
/// must be answered while the pool is still held, so it gets 10 s: a request that queued
/// instead would wait for the gate, which opens only at the end of the test.
async fn assert_shed(request: impl Future<Output = reqwest::Response>, what: &str) {
    let response = tokio::time::timeout(Duration::from_secs(10), request)
        .await
        .unwrap_or_else(|_| panic!("{what} was queued instead of shed"));
    assert_eq!(
        response.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "{what} should be shed"
    );
    let retry_after = response
        .headers()
        .get("retry-after")
        .unwrap_or_else(|| panic!("{what}: 503 without Retry-After"))
        .to_str()
        .expect("ascii")
        .parse::<u64>()
        .expect("Retry-After in seconds");
    assert!(retry_after >= 1, "{what}: Retry-After {retry_after}");
    let body: serde_json::Value = response.json().await.expect("JSON body");
    assert!(body["message"].is_string(), "{what}: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_hash_pool_sheds_with_503_and_profile_still_answers() {
    let (auth, gate, _release) = gated_auth(|_| {});
    let base = serve(&auth).await;

    // Before the storm: an account, a logged-in session and a reset token (issuing a token
    // hashes nothing; redeeming it does).
    register(&base, EMAIL).await;
    let login = post(
        format!("{base}/sessions"),
        &[("email", EMAIL), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(login.status(), StatusCode::OK);
    let cookie = login
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("session cookie")
        .to_owned();
    let reset = post(format!("{base}/reset_password"), &[("email", EMAIL)]).await;
    assert_eq!(reset.status(), StatusCode::OK);
    let reset: serde_json::Value = reset.json().await.expect("JSON");
    let reset_token = reset["reset_token"].as_str().expect("token").to_owned();
    assert_eq!(auth.hash_pool().in_flight(), 0);

    // The storm: N logins, held in the pool. Two of them have the wrong password. Logins
    // for the same account replace each other's sessions (spec preset: one session per
    // user), so they use a second account and leave `cookie` alone.
    let other = "storm@example.com";
    register(&base, other).await;
    gate.close();
    let logins: Vec<JoinHandle<StatusCode>> = (0..N)
        .map(|i| {
            let url = format!("{base}/sessions");
            let password = if i % 2 == 0 { PASSWORD } else { "wrong" };
            tokio::spawn(async move {
                post(url, &[("email", other), ("password", password)])
                    .await
                    .status()
            })
        })
        .collect();
    until("one login hashes and the others wait for a permit", || {
        gate.waiting.load(Ordering::SeqCst) == 1 && auth.hash_pool().in_flight() == N
    })
    .await;

    // The (N+1)-th login: answered at once, while the N are still held.
    assert_shed(
        post(
            format!("{base}/sessions"),
            &[("email", other), ("password", PASSWORD)],
        ),
        "login N+1",
    )
    .await;
    // Registration and password reset go through the same pool, and are shed the same way.
    assert_shed(
        post(
            format!("{base}/users"),
            &[("email", "late@example.com"), ("password", PASSWORD)],
        ),
        "registration",
    )
    .await;
    assert_shed(
        put(
            format!("{base}/reset_password"),
            &[
                ("email", EMAIL),
                ("reset_token", &reset_token),
                ("new_password", "a new password"),
            ],
        ),
        "password reset",
    )
    .await;
    // Logged-in traffic needs no hashing and is not held up.
    for _ in 0..10 {
        let profile = client()
            .get(format!("{base}/profile"))
            .header("Cookie", &cookie)
            .send()
            .await
            .expect("profile");
        assert_eq!(profile.status(), StatusCode::OK);
        let body: serde_json::Value = profile.json().await.expect("JSON");
        assert_eq!(body["email"], EMAIL);
    }
    // All of that happened while the N logins were still blocked in the pool.
    assert!(logins.iter().all(|login| !login.is_finished()));
    assert_eq!(gate.waiting.load(Ordering::SeqCst), 1);
    assert_eq!(auth.hash_pool().in_flight(), N);

    // Release: every held login completes, right passwords with 200, wrong ones with 401.
    gate.open();
    let mut statuses = Vec::new();
    for login in logins {
        statuses.push(
            tokio::time::timeout(Duration::from_secs(10), login)
                .await
                .expect("login completes after release")
                .expect("join"),
        );
    }
    let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    assert_eq!((ok, refused), (N.div_ceil(2), N / 2), "{statuses:?}");
    until("the pool is empty", || auth.hash_pool().in_flight() == 0).await;

    // Nothing was lost by shedding: the reset token was not consumed, and new work is served.
    let redeem = put(
        format!("{base}/reset_password"),
        &[
            ("email", EMAIL),
            ("reset_token", &reset_token),
            ("new_password", "a new password"),
        ],
    )
    .await;
    assert_eq!(redeem.status(), StatusCode::OK);
    register(&base, "late@example.com").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shed_logins_do_not_count_against_the_account() {
    // Logins answered 503 never reached the hasher: they must not use up the account's
    // allowance of failed attempts, or a login storm would lock its users out.
    const MAX_FAILURES: u32 = 2;
    let (auth, gate, _release) = gated_auth(|config| config.max_login_failures = MAX_FAILURES);
    let base = serve(&auth).await;
    // The storm logs in N other accounts, one each: N concurrent attempts on one account
    // would be over its allowance themselves.
    let storm_emails: Vec<String> = (0..N).map(|i| format!("storm{i}@example.com")).collect();
    for email in std::iter::once(EMAIL).chain(storm_emails.iter().map(String::as_str)) {
        register(&base, email).await;
    }

    gate.close();
    let storm: Vec<JoinHandle<StatusCode>> = storm_emails
        .into_iter()
        .map(|email| {
            let url = format!("{base}/sessions");
            tokio::spawn(async move {
                post(url, &[("email", email.as_str()), ("password", PASSWORD)])
                    .await
                    .status()
            })
        })
        .collect();
    until("the storm fills the pool", || {
        auth.hash_pool().in_flight() == N
    })
    .await;
    for attempt in 0..3 * MAX_FAILURES {
        assert_shed(
            post(
                format!("{base}/sessions"),
                &[("email", EMAIL), ("password", PASSWORD)],
            ),
            &format!("login {attempt} while the pool is full"),
        )
        .await;
    }
    gate.open();
    for login in storm {
        assert_eq!(login.await.expect("join"), StatusCode::OK);
    }
    until("the pool is empty", || auth.hash_pool().in_flight() == 0).await;

    // Six shed attempts later, the account still has its whole allowance.
    let login = post(
        format!("{base}/sessions"),
        &[("email", EMAIL), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(login.status(), StatusCode::OK);
    for _ in 0..MAX_FAILURES {
        let wrong = post(
            format!("{base}/sessions"),
            &[("email", EMAIL), ("password", "wrong")],
        )
        .await;
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    }
    let throttled = post(
        format!("{base}/sessions"),
        &[("email", EMAIL), ("password", "wrong")],
    )
    .await;
    assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
}

/// The default bounds the issue asks for: one permit per core, 512 waiting.
#[test]
fn default_bounds() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    for config in [AuthConfig::default(), AuthConfig::spec()] {
        assert_eq!(config.hash_permits, cores);
        assert_eq!(config.hash_queue, 512);
    }
}

/// At the pool level: with every permit busy and the queue full, the next job is refused
/// without waiting, and a waiting job that is given up frees its place in the queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_refuses_at_once_and_frees_abandoned_places() {
    use tower_auth::password::{HashPool, PoolError};

    let hasher = GatedHasher::default();
    let gate = hasher.gate.clone();
    let _release = OpenOnDrop(gate.clone());
    let stored = Bcrypt::new(4).hash(PASSWORD).expect("hash");
    let pool = HashPool::new(Arc::new(hasher), 1, 2);
    gate.close();
    // One at a time, so that the first holds the permit and the other two wait (FIFO).
    let mut held = Vec::new();
    for i in 1..=3 {
        let (pool2, stored) = (pool.clone(), stored.clone());
        held.push(tokio::spawn(async move {
            pool2.verify(PASSWORD.into(), stored).await
        }));
        until("the job is in the pool", || pool.in_flight() == i).await;
    }
    until("the first job hashes", || {
        gate.waiting.load(Ordering::SeqCst) == 1
    })
    .await;
    assert!(matches!(
        pool.verify(PASSWORD.into(), stored.clone()).await,
        Err(PoolError::Overloaded(_))
    ));
    // A caller that gives up while waiting for a permit leaves the queue.
    held[2].abort();
    until("the abandoned job leaves", || pool.in_flight() == 2).await;
    let replacement = {
        let (pool, stored) = (pool.clone(), stored.clone());
        tokio::spawn(async move { pool.verify(PASSWORD.into(), stored).await })
    };
    until("the replacement is queued", || pool.in_flight() == 3).await;
    gate.open();
    for job in held.into_iter().take(2).chain([replacement]) {
        assert!(job.await.expect("join").expect("verify"));
    }
    assert_eq!(pool.in_flight(), 0);
}
