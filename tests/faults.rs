//! Faults: a database that goes away while requests flow, and a process killed mid-storm.
//!
//! During an outage requests get a prompt 503 with a generic body and `Retry-After` (never
//! a hang past the acquire timeout, never a panic); afterwards the server serves again
//! without a restart. After `kill -9` and a restart on the same database, every write the
//! server acknowledged is there.

#[path = "support/http.rs"]
mod http_support;
#[path = "support/pg.rs"]
mod pg;
#[path = "support/private_pg.rs"]
mod private_pg;
#[path = "support/process.rs"]
mod process;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use http_support::{client, hardened_config, serve_auth};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::Mutex;
use tower_auth::{Auth, PgStore, PgStoreOptions};

const PW: &str = "correct horse battery staple";
/// How long the pool waits for a connection before answering 503.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(1);
/// A request taking longer than this has hung (far above the acquire timeout, so a slow
/// machine never trips it).
const HANG: Duration = Duration::from_secs(20);

/// What the writers saw.
#[derive(Default)]
struct Seen {
    /// Emails whose registration was acknowledged (200).
    acknowledged: Vec<String>,
    /// Every other answer: status, `Retry-After`, body.
    refused: Vec<(StatusCode, Option<String>, Value)>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_outage_gets_prompt_503s_and_loses_nothing() {
    let Some(pg) = private_pg::PrivatePg::start() else {
        return;
    };
    let mut options = PgStoreOptions::default();
    options.acquire_timeout = ACQUIRE_TIMEOUT;
    options.max_connections = 4;
    options.min_connections = 0;
    let store = PgStore::connect_with(&pg.url(), options)
        .await
        .expect("connect");
    let mut config = hardened_config();
    config.max_registrations_per_ip = None;
    let auth = Auth::new(store, config).expect("valid config");
    let server = serve_auth(&auth).await;

    let seen = Arc::new(Mutex::new(Seen::default()));
    let running = Arc::new(AtomicBool::new(true));
    let mut writers = tokio::task::JoinSet::new();
    for writer in 0..4 {
        let (seen, running, url) = (
            Arc::clone(&seen),
            Arc::clone(&running),
            server.url("/users"),
        );
        writers.spawn(async move {
            let http = client();
            let mut n = 0;
            while running.load(Ordering::SeqCst) {
                n += 1;
                let email = format!("w{writer}-{n}@example.com");
                let started = Instant::now();
                let response = tokio::time::timeout(
                    HANG,
                    http.post(&url)
                        .form(&[("email", email.as_str()), ("password", PW)])
                        .send(),
                )
                .await
                .unwrap_or_else(|_| panic!("a registration hung past {HANG:?}"))
                .expect("an answer");
                let status = response.status();
                let retry_after = response
                    .headers()
                    .get("retry-after")
                    .map(|v| v.to_str().expect("ASCII").to_owned());
                let body: Value = response.json().await.unwrap_or(Value::Null);
                let mut seen = seen.lock().await;
                if status == StatusCode::OK {
                    seen.acknowledged.push(email);
                } else {
                    seen.refused.push((status, retry_after, body));
                    // Refused requests come back at once; don't spin on them.
                    drop(seen);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                assert!(started.elapsed() < HANG);
            }
        });
    }

    let acknowledged = || async { seen.lock().await.acknowledged.len() };
    wait_until("registrations before the outage", || async {
        acknowledged().await >= 20
    })
    .await;

    pg.stop();
    wait_until("503s during the outage", || async {
        seen.lock().await.refused.len() >= 20
    })
    .await;
    let before_restart = acknowledged().await;
    pg.start_server();
    wait_until("registrations after the restart", || async {
        acknowledged().await >= before_restart + 20
    })
    .await;
    running.store(false, Ordering::SeqCst);
    while let Some(done) = writers.join_next().await {
        done.expect("writer");
    }

    let seen = seen.lock().await;
    for (status, retry_after, body) in &seen.refused {
        assert_eq!(*status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(retry_after.as_deref(), Some("1"));
        assert_eq!(
            *body,
            json!({"message": "service temporarily unavailable; retry shortly"})
        );
    }
    // Every acknowledged registration is there and logs in, through the same server.
    for email in &seen.acknowledged {
        let login = client()
            .post(server.url("/sessions"))
            .form(&[("email", email.as_str()), ("password", PW)])
            .send()
            .await
            .expect("login");
        assert_eq!(login.status(), StatusCode::OK, "{email} was acknowledged");
    }
}

/// Polls `done` every 50 ms, for at most a minute.
async fn wait_until<F, Fut>(what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ----- a process killed mid-storm ------------------------------------------------------------

/// What a storm's clients were told: acknowledged registrations, and sessions whose
/// logout was acknowledged.
#[derive(Default)]
struct Acknowledged {
    registered: Vec<String>,
    logged_out: Vec<String>,
}

/// Clients register, log in and log out until the server dies under them.
async fn storm(base: String, round: usize, acknowledged: Arc<Mutex<Acknowledged>>) {
    let mut clients = tokio::task::JoinSet::new();
    for c in 0..6 {
        let (base, acknowledged) = (base.clone(), Arc::clone(&acknowledged));
        clients.spawn(async move {
            let http = client();
            for n in 0.. {
                let email = format!("r{round}-c{c}-{n}@example.com");
                let Ok(registered) = http
                    .post(format!("{base}/users"))
                    .form(&[("email", email.as_str()), ("password", PW)])
                    .send()
                    .await
                else {
                    return; // the server died
                };
                if registered.status() != StatusCode::OK {
                    continue;
                }
                acknowledged.lock().await.registered.push(email.clone());
                let Ok(login) = http
                    .post(format!("{base}/sessions"))
                    .form(&[("email", email.as_str()), ("password", PW)])
                    .send()
                    .await
                else {
                    return;
                };
                let Some(cookie) = http_support::set_cookies(&login)
                    .first()
                    .and_then(|c| c.split(';').next())
                    .map(str::to_owned)
                else {
                    continue;
                };
                let Ok(logout) = http
                    .delete(format!("{base}/sessions"))
                    .header("Cookie", &cookie)
                    .send()
                    .await
                else {
                    return;
                };
                if logout.status() == StatusCode::FOUND {
                    acknowledged.lock().await.logged_out.push(cookie);
                }
            }
        });
    }
    while clients.join_next().await.is_some() {}
}

/// Three times: a registration and login storm, `kill -9` mid-way, a restart on the same
/// database. Every acknowledged registration logs in afterwards, every acknowledged logout
/// stays ended.
async fn killed_mid_storm_loses_nothing(database_url: &str) {
    let binary = tokio::task::spawn_blocking(process::spec_server_binary)
        .await
        .expect("build spec_server");
    let acknowledged = Arc::new(Mutex::new(Acknowledged::default()));
    for round in 0..3 {
        let server = process::SpecServer::start(&binary, database_url, &[]).await;
        let storming = tokio::spawn(storm(server.base.clone(), round, Arc::clone(&acknowledged)));
        let before = acknowledged.lock().await.registered.len();
        wait_until("the storm to get going", || async {
            acknowledged.lock().await.registered.len() >= before + 30
        })
        .await;
        server.kill();
        storming.await.expect("storm");
    }
    let server = process::SpecServer::start(&binary, database_url, &[]).await;
    let http = client();
    let acknowledged = acknowledged.lock().await;
    assert!(acknowledged.registered.len() >= 90);
    for email in &acknowledged.registered {
        let login = http
            .post(format!("{}/sessions", server.base))
            .form(&[("email", email.as_str()), ("password", PW)])
            .send()
            .await
            .expect("login");
        assert_eq!(login.status(), StatusCode::OK, "{email} was acknowledged");
    }
    for cookie in &acknowledged.logged_out {
        let profile = http
            .get(format!("{}/profile", server.base))
            .header("Cookie", cookie)
            .send()
            .await
            .expect("profile");
        assert_eq!(
            profile.status(),
            StatusCode::FORBIDDEN,
            "a logout was acknowledged"
        );
    }
    server.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_storm_on_sqlite_loses_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("a.db").display());
    killed_mid_storm_loses_nothing(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_storm_on_postgres_loses_nothing() {
    let Some(db) = pg::test_database().await else {
        return;
    };
    killed_mid_storm_loses_nothing(db.url()).await;
}

// ----- SQLite on a full disk ----------------------------------------------------------------

/// A size-limited tmpfs mounted on a temporary directory (root only), unmounted on drop.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// `None` (with a notice) when this process cannot mount, unless faults are required.
    fn mount(size: &str) -> Option<Self> {
        let dir = tempfile::tempdir().expect("temp dir");
        let mounted = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !mounted {
            assert!(
                !pg::required(),
                "AUTH_REQUIRE_POSTGRES=1 (CI) but a tmpfs cannot be mounted: run as root"
            );
            eprintln!("SKIPPED: full-disk test (mounting a tmpfs needs root)");
            return None;
        }
        Some(Self { dir })
    }

    fn path(&self) -> &std::path::Path {
        self.dir.path()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        // Lazily: the store's connections may still hold files open.
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Fills the disk holding `path` with a file of zeros until it is full.
fn fill(path: &std::path::Path) {
    use std::io::Write as _;
    let mut filler = std::fs::File::create(path).expect("filler");
    let block = vec![0u8; 64 * 1024];
    while filler.write_all(&block).is_ok() {}
    let mut byte = [0u8; 1];
    while filler.write_all(&byte[..]).is_ok() {
        byte[0] = 0;
    }
    let _ = filler.sync_all();
}

/// SQLite on a disk that fills up: writes fail with a 5xx and a generic body, reads keep
/// working, nothing is corrupted, and once space is freed writes succeed again without a
/// restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_on_a_full_disk_fails_writes_keeps_reads_and_recovers() {
    let Some(disk) = SmallDisk::mount("4m") else {
        return;
    };
    let db = disk.path().join("a.db");
    let url = format!("sqlite://{}?mode=rwc", db.display());
    let store = tower_auth::SqliteStore::connect(&url)
        .await
        .expect("connect");
    let auth = Auth::new(store, http_support::spec_config()).expect("valid config");
    let server = serve_auth(&auth).await;
    let http = client();
    let register = |email: String| {
        let http = http.clone();
        let url = server.url("/users");
        async move {
            http.post(url)
                .form(&[("email", email.as_str()), ("password", PW)])
                .send()
                .await
                .expect("an answer")
        }
    };
    for i in 0..20 {
        assert_eq!(
            register(format!("before{i}@example.com")).await.status(),
            StatusCode::OK
        );
    }
    let login = http
        .post(server.url("/sessions"))
        .form(&[("email", "before0@example.com"), ("password", PW)])
        .send()
        .await
        .expect("login");
    let cookie = http_support::set_cookies(&login)[0]
        .split(';')
        .next()
        .expect("cookie")
        .to_owned();

    let filler = disk.path().join("filler");
    fill(&filler);

    // Writes fail once SQLite needs a page it cannot get (the WAL may hold a few first).
    let mut refused = None;
    for i in 0..2_000 {
        let response = register(format!("during{i}@example.com")).await;
        if response.status() != StatusCode::OK {
            refused = Some((
                response.status(),
                response.json::<Value>().await.expect("JSON"),
            ));
            break;
        }
    }
    let (status, body) = refused.expect("a write refused on the full disk");
    assert!(status.is_server_error(), "{status}");
    assert_eq!(body, json!({"message": "internal server error"}));

    // Reads keep working: the session, and a login check (which only writes counters
    // after a failure).
    let profile = http
        .get(server.url("/profile"))
        .header("Cookie", &cookie)
        .send()
        .await
        .expect("profile");
    assert_eq!(profile.status(), StatusCode::OK);
    assert!(
        auth.valid_login("before1@example.com", PW)
            .await
            .expect("read")
    );

    // Space comes back: writes work again, without a restart, and nothing is corrupt.
    std::fs::remove_file(&filler).expect("free space");
    assert_eq!(
        register("after@example.com".into()).await.status(),
        StatusCode::OK
    );
    let check: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(
            &sqlx::SqlitePool::connect(&url)
                .await
                .expect("a second connection"),
        )
        .await
        .expect("integrity check");
    assert_eq!(check, "ok");
    for i in 0..20 {
        assert!(
            auth.valid_login(&format!("before{i}@example.com"), PW)
                .await
                .expect("read")
        );
    }
}

// ----- an outage under open-loop traffic, as the spec server ships ---------------------------

/// One request of the open-loop traffic, as its client saw it.
#[derive(Debug)]
struct Outcome {
    what: &'static str,
    sent: Instant,
    took: Duration,
    /// The status and `Retry-After`, or the transport error (a reset, a refused connection).
    answer: Result<(StatusCode, Option<String>), String>,
}

/// Sends one request and records what came back.
async fn record(
    what: &'static str,
    request: reqwest::RequestBuilder,
    outcomes: Arc<Mutex<Vec<Outcome>>>,
) {
    let sent = Instant::now();
    let answer = match request.send().await {
        Ok(response) => {
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let status = response.status();
            match response.bytes().await {
                Ok(_) => Ok((status, retry_after)),
                Err(e) => Err(format!("body: {e}")),
            }
        }
        Err(e) => Err(format!("{e:?}")),
    };
    outcomes.lock().await.push(Outcome {
        what,
        sent,
        took: sent.elapsed(),
        answer,
    });
}

/// The spec server on PostgreSQL with its defaults (pool of 10, 5 s acquire timeout, 64
/// connections per address), `GET /profile` 10 times a second and a registration 3 times a
/// second from one address, whether or not earlier requests have been answered, while the
/// database is stopped for 12 s. Once the database is known to be down every answer is a
/// prompt 503 with `Retry-After` (no request waits out the acquire timeout, so connections
/// do not pile up and none is reset), and the service is back within a second of the
/// database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_under_open_loop_traffic_answers_503_at_once() {
    let Some(pg) = private_pg::PrivatePg::start() else {
        return;
    };
    let pg = Arc::new(pg);
    let binary = process::spec_server_binary();
    let server = process::SpecServer::start(&binary, &pg.url(), &[]).await;
    let http = client();
    let form = [("email", "alice@example.com"), ("password", PW)];
    let registered = http
        .post(format!("{}/users", server.base))
        .form(&form)
        .send()
        .await
        .expect("register");
    assert_eq!(registered.status(), StatusCode::OK);
    let login = http
        .post(format!("{}/sessions", server.base))
        .form(&form)
        .send()
        .await
        .expect("log in");
    let cookie = http_support::session_cookie_value(&http_support::set_cookies(&login))
        .expect("a session cookie");

    let outcomes = Arc::new(Mutex::new(Vec::new()));
    let running = Arc::new(AtomicBool::new(true));
    let traffic = tokio::spawn({
        let (outcomes, running, base) = (
            Arc::clone(&outcomes),
            Arc::clone(&running),
            server.base.clone(),
        );
        async move {
            let mut requests = tokio::task::JoinSet::new();
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            let mut n = 0u32;
            while running.load(Ordering::SeqCst) {
                tick.tick().await;
                let profile = http
                    .get(format!("{base}/profile"))
                    .header("cookie", format!("session_id={cookie}"));
                requests.spawn(record("profile", profile, Arc::clone(&outcomes)));
                if n.is_multiple_of(3) {
                    let email = format!("open-loop-{n}@example.com");
                    let register = http
                        .post(format!("{base}/users"))
                        .form(&[("email", email.as_str()), ("password", PW)]);
                    requests.spawn(record("register", register, Arc::clone(&outcomes)));
                }
                n += 1;
            }
            while let Some(done) = requests.join_next().await {
                done.expect("request task");
            }
        }
    });

    tokio::time::sleep(Duration::from_secs(3)).await;
    let stopping = Arc::clone(&pg);
    tokio::task::spawn_blocking(move || stopping.stop())
        .await
        .expect("stop");
    let down = Instant::now();
    tokio::time::sleep(Duration::from_secs(12)).await;
    let starting = Arc::clone(&pg);
    tokio::task::spawn_blocking(move || starting.start_server())
        .await
        .expect("start");
    let up = Instant::now();
    tokio::time::sleep(Duration::from_secs(5)).await;
    running.store(false, Ordering::SeqCst);
    tokio::time::timeout(Duration::from_secs(30), traffic)
        .await
        .expect("every request answered")
        .expect("traffic");

    let outcomes = outcomes.lock().await;
    let failed: Vec<&Outcome> = outcomes.iter().filter(|o| o.answer.is_err()).collect();
    assert!(
        failed.is_empty(),
        "no connection reset or refused: {failed:#?}"
    );
    let during: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| o.sent >= down && o.sent < up)
        .collect();
    assert!(
        during.len() >= 100,
        "open-loop traffic throughout: {}",
        during.len()
    );
    let slow: Vec<&Outcome> = during
        .iter()
        .copied()
        .filter(|o| o.took > Duration::from_secs(1))
        .collect();
    assert!(
        slow.is_empty(),
        "every answer within 1 s while down: {slow:#?}"
    );
    let mut unavailable = 0;
    for outcome in &during {
        let (status, retry_after) = outcome.answer.as_ref().expect("an answer");
        if *status == StatusCode::SERVICE_UNAVAILABLE {
            unavailable += 1;
            assert_eq!(retry_after.as_deref(), Some("1"), "{outcome:?}");
        } else {
            // Answered before the outage was noticed, or from what the service already knew.
            assert_eq!(*status, StatusCode::OK, "{outcome:?}");
        }
    }
    assert!(
        unavailable * 10 >= during.len() * 9,
        "the outage is answered 503: {unavailable} of {}",
        during.len()
    );
    let back: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| o.sent >= up + Duration::from_secs(1))
        .collect();
    assert!(!back.is_empty());
    for outcome in back {
        let (status, _) = outcome.answer.as_ref().expect("an answer");
        assert_eq!(
            *status,
            StatusCode::OK,
            "a second after the database returned, everything is served: {outcome:?}"
        );
    }
    let slowest = during.iter().map(|o| o.took).max().unwrap_or_default();
    let first_ok = outcomes
        .iter()
        .filter(|o| o.sent >= up && matches!(o.answer, Ok((StatusCode::OK, _))))
        .map(|o| o.sent.duration_since(up) + o.took)
        .min();
    let registrations = during.iter().filter(|o| o.what == "register").count();
    eprintln!(
        "outage: {} requests while down ({registrations} registrations), {unavailable} answered \
         503, slowest {slowest:?}; first 200 {first_ok:?} after the database returned",
        during.len()
    );
}
