//! Account integrity where it meets serving: limits that would make the service unusable
//! are refused at start-up (or mean "no limit"), the web example serves with the crate's
//! bounded loop, and registrations from many addresses cannot fill the hashing pool that
//! logins need, in the spec preset too.

#[path = "support/http.rs"]
mod http_support;
#[path = "support/process.rs"]
mod process;

use std::net::{IpAddr, Ipv4Addr};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use reqwest::StatusCode;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tower_auth::password::{Bcrypt, HashError, PasswordHasher};
use tower_auth::{Auth, AuthConfig, MemoryStore};

const PW: &str = "correct horse battery staple";

#[test]
fn limits_that_would_refuse_every_login_are_refused_at_start_up() {
    let binary = process::spec_server_binary();
    for flag in ["--max-login-failures", "--max-login-failures-per-ip"] {
        let output = Command::new(&binary)
            .args(["--bind", "127.0.0.1:0", "--database-url", "memory:"])
            .args([flag, "0"])
            .stdin(Stdio::null())
            .output()
            .expect("run spec_server");
        assert!(!output.status.success(), "{flag} 0 must not start");
        let stderr = String::from_utf8_lossy(&output.stderr);
        let field = flag.trim_start_matches("--").replace('-', "_");
        assert!(
            stderr.contains(&format!("{field} must be at least 1")),
            "{flag} 0: the reason is said: {stderr}"
        );
    }
    let mut config = AuthConfig::spec();
    config.max_login_failures = 0;
    assert!(matches!(
        Auth::new(MemoryStore::new(), config),
        Err(tower_auth::ConfigError::ZeroLoginFailures(
            "max_login_failures"
        ))
    ));
}

/// Opens `count` connections from this address that send nothing.
async fn idle_connections(addr: &str, count: usize) -> Vec<TcpStream> {
    let mut held = Vec::with_capacity(count);
    for _ in 0..count {
        held.push(TcpStream::connect(addr).await.expect("connect"));
    }
    held
}

/// True when the server closes `stream` (EOF or reset) within a few seconds of a request
/// being sent on it; false when it answers.
async fn is_refused(mut stream: TcpStream) -> bool {
    let _ = stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await;
    let mut buf = [0u8; 64];
    match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await {
        Ok(Ok(0) | Err(_)) => true,
        Ok(Ok(_)) => false,
        Err(_) => panic!("neither answered nor closed within 5 s"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_connections_per_address_means_no_limit() {
    let binary = process::spec_server_binary();
    let server =
        process::SpecServer::start(&binary, "memory:", &["--max-connections-per-ip", "0"]).await;
    let addr = server.base.trim_start_matches("http://").to_owned();
    let _held = idle_connections(&addr, 100).await;
    let extra = TcpStream::connect(&addr).await.expect("connect");
    assert!(
        !is_refused(extra).await,
        "with 0 (no limit), the 101st connection from one address is served"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_example_bounds_connections_per_address() {
    let binary = process::example_binary("web_app");
    let dir = tempfile::tempdir().expect("temp dir");
    let port = process::free_port();
    let mut child = Command::new(&binary)
        .args(["--bind", &format!("127.0.0.1:{port}")])
        .args(["--database-url", "memory:"])
        .arg("--outbox")
        .arg(dir.path().join("outbox"))
        .args(["--bcrypt-cost", "4"])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("start web_app");
    let addr = format!("127.0.0.1:{port}");
    let mut started = false;
    for _ in 0..400 {
        if TcpStream::connect(&addr).await.is_ok() {
            started = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(started, "web_app did not start");
    // The crate's loop, not `axum::serve`: 64 connections from one address at most.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let held = idle_connections(&addr, 64).await;
    let extra = TcpStream::connect(&addr).await.expect("connect");
    let refused = is_refused(extra).await;
    drop(held);
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        refused,
        "the 65th idle connection from one address is closed"
    );
}

/// bcrypt at cost 4 that waits while `held` is set, so a test can fill the pool.
#[derive(Clone, Default)]
struct Held {
    held: Arc<AtomicBool>,
}

impl Held {
    fn wait(&self) {
        while self.held.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

impl PasswordHasher for Held {
    fn hash(&self, password: &str) -> Result<String, HashError> {
        self.wait();
        Bcrypt::new(4).hash(password)
    }

    fn verify(&self, password: &str, hash: &str) -> Result<bool, HashError> {
        self.wait();
        Bcrypt::new(4).verify(password, hash)
    }
}

fn client_from(n: u8) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, n)))
        .build()
        .expect("client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrations_from_many_addresses_leave_room_for_logins() {
    let hasher = Held::default();
    let mut config = AuthConfig::spec();
    config.hash_permits = 1;
    config.hash_queue = 8;
    let auth = Auth::builder(MemoryStore::new(), config)
        .password_hasher(hasher.clone())
        .build()
        .expect("valid config");
    let server = http_support::serve_auth(&auth).await;
    // The seed's contract for one well-behaved client: registrations one at a time.
    let owner = client_from(2);
    for email in ["owner@example.com", "second@example.com"] {
        let registered = owner
            .post(server.url("/users"))
            .form(&[("email", email), ("password", PW)])
            .send()
            .await
            .expect("register");
        assert_eq!(registered.status(), StatusCode::OK);
    }

    hasher.held.store(true, Ordering::SeqCst);
    let mut storm = tokio::task::JoinSet::new();
    for n in 0..30u8 {
        let (http, url) = (client_from(10 + n % 10), server.url("/users"));
        storm.spawn(async move {
            http.post(url)
                .form(&[
                    ("email", format!("bot{n}@example.com").as_str()),
                    ("password", PW),
                ])
                .send()
                .await
                .expect("an answer")
                .status()
        });
    }
    // Every registration over its share is answered while the rest are still held.
    let mut refused = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        while let Some(done) = storm.try_join_next() {
            refused.push(done.expect("task"));
        }
        let waiting = storm.len();
        if waiting > 0 && waiting == auth.hash_pool().in_flight() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{waiting} registrations waiting, {} in the pool",
            auth.hash_pool().in_flight()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let hashing = auth.hash_pool().in_flight();
    assert!(
        hashing <= 4,
        "registrations hold at most half the pool's queue (4 of 8): {hashing}"
    );
    // A login still finds a place.
    let login = tokio::spawn({
        let url = server.url("/sessions");
        async move {
            client_from(3)
                .post(url)
                .form(&[("email", "owner@example.com"), ("password", PW)])
                .send()
                .await
                .expect("login")
                .status()
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    hasher.held.store(false, Ordering::SeqCst);
    assert_eq!(login.await.expect("login task"), StatusCode::OK);
    while let Some(done) = storm.join_next().await {
        refused.push(done.expect("task"));
    }
    let ok = refused.iter().filter(|s| **s == StatusCode::OK).count();
    let busy = refused
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!(
        ok + busy,
        30,
        "every registration is a 200 or a 429: {refused:?}"
    );
    assert!(
        ok >= 4,
        "the registrations that had a place went through: {refused:?}"
    );
}
