//! How soon a session revoked on one instance is refused by another, on one PostgreSQL
//! database (each instance with its own pool and session cache, as separate processes).
//!
//! ```sh
//! TOWER_AUTH_BENCH_PG_URL=postgres://user:pass@127.0.0.1/bench cargo bench --bench revocation
//! ```
//!
//! The database's tower-auth tables are dropped first. Each trial registers an account on
//! instance A and logs it in, makes sure instance B answers that session from its cache,
//! revokes it on A over HTTP (in turn: logout, a password change from another session,
//! account deletion), and from the moment A's response arrives polls `GET /profile` on B
//! until B refuses it. Reports percentiles of that delay over `TRIALS` trials (default
//! 100); the target is a p99 of at most 50 ms. Without the URL it says so and exits.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use tokio::net::TcpListener;
use tower_auth::{Auth, AuthConfig, Mailer, PgStore};

const PW: &str = "correct horse battery staple";
const NEW_PW: &str = "a brand new passphrase, long enough";

#[derive(Debug, Clone, Copy)]
enum Kind {
    LogOut,
    PasswordChange,
    AccountDeletion,
}

struct Instance {
    auth: Auth,
    addr: SocketAddr,
    http: reqwest::Client,
}

impl Instance {
    async fn start(auth: Auth) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let app = auth
            .router()
            .into_make_service_with_connect_info::<SocketAddr>();
        tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        Self { auth, addr, http }
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        form: &[(&str, &str)],
        cookie: Option<&str>,
    ) -> (StatusCode, Vec<String>) {
        let mut request = self
            .http
            .request(method, format!("http://{}{path}", self.addr));
        if let Some(cookie) = cookie {
            request = request.header("Cookie", cookie);
        }
        if !form.is_empty() {
            request = request.form(form);
        }
        let response = request.send().await.expect("request");
        let cookies = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split(';').next())
            .map(str::to_owned)
            .collect();
        (response.status(), cookies)
    }

    async fn log_in(&self, email: &str) -> String {
        let (status, cookies) = self
            .send(
                Method::POST,
                "/sessions",
                &[("email", email), ("password", PW)],
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "login");
        let name = format!("{}=", self.auth.config().cookie.name);
        cookies
            .into_iter()
            .find(|c| c.starts_with(&name))
            .expect("a session cookie")
    }

    async fn profile(&self, cookie: &str) -> StatusCode {
        self.send(Method::GET, "/profile", &[], Some(cookie))
            .await
            .0
    }
}

fn config(outbox: &std::path::Path) -> AuthConfig {
    let mailer = Mailer::dev_outbox(outbox, "bench@localhost", "http://localhost")
        .expect("mailer")
        .poll_interval(Duration::from_secs(3600));
    let mut config = AuthConfig::hardened_with(mailer);
    config.bcrypt_cost = 4;
    config.require_confirmed_email = false;
    config.conceal_registered_emails = false;
    config.max_registrations_per_ip = None;
    config
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` would pass nothing else either.
    let Ok(url) = std::env::var("TOWER_AUTH_BENCH_PG_URL") else {
        println!("revocation: TOWER_AUTH_BENCH_PG_URL is not set; nothing measured");
        return;
    };
    let trials: usize = std::env::var("TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let outbox = tempfile::tempdir().expect("outbox dir");
    let a = PgStore::connect_fresh(&url)
        .await
        .expect("instance A's store");
    let b = PgStore::connect(&url).await.expect("instance B's store");
    let a = Instance::start(Auth::new(a, config(outbox.path())).expect("config")).await;
    let b = Instance::start(Auth::new(b, config(outbox.path())).expect("config")).await;

    let kinds = [Kind::LogOut, Kind::PasswordChange, Kind::AccountDeletion];
    let mut delays: Vec<(Kind, Duration, usize)> = Vec::new();
    for trial in 0..trials {
        let kind = kinds[trial % kinds.len()];
        let email = format!("user{trial}@example.com");
        let (status, _) = a
            .send(
                Method::POST,
                "/users",
                &[("email", &email), ("password", PW)],
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "register");
        let victim = a.log_in(&email).await;
        let other = a.log_in(&email).await;
        // B answers the victim's session from its cache before the revocation.
        loop {
            assert_eq!(b.profile(&victim).await, StatusCode::OK);
            let hits = b.auth.session_cache_stats().expect("cache on").hits;
            assert_eq!(b.profile(&victim).await, StatusCode::OK);
            if b.auth.session_cache_stats().expect("cache on").hits > hits {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let (status, _) = match kind {
            Kind::LogOut => {
                a.send(Method::DELETE, "/sessions", &[], Some(&victim))
                    .await
            }
            Kind::PasswordChange => {
                a.send(
                    Method::PUT,
                    "/password",
                    &[("current_password", PW), ("new_password", NEW_PW)],
                    Some(&other),
                )
                .await
            }
            Kind::AccountDeletion => {
                a.send(
                    Method::DELETE,
                    "/users/me",
                    &[("password", PW)],
                    Some(&other),
                )
                .await
            }
        };
        assert!(
            status.is_success() || status.is_redirection(),
            "{kind:?}: {status}"
        );
        let revoked = Instant::now();
        let mut polls = 0;
        loop {
            polls += 1;
            if b.profile(&victim).await != StatusCode::OK {
                break;
            }
            assert!(
                revoked.elapsed() < Duration::from_secs(10),
                "B never refused the session"
            );
        }
        delays.push((kind, revoked.elapsed(), polls));
    }

    println!("revocation across two instances on one PostgreSQL, {trials} trials");
    println!("(from the revoking response on A to the first refusal on B)");
    let mut all: Vec<Duration> = delays.iter().map(|(_, d, _)| *d).collect();
    all.sort();
    let refused_at_once = delays.iter().filter(|(_, _, polls)| *polls == 1).count();
    for kind in kinds {
        let mut some: Vec<Duration> = delays
            .iter()
            .filter(|(k, _, _)| std::mem::discriminant(k) == std::mem::discriminant(&kind))
            .map(|(_, d, _)| *d)
            .collect();
        some.sort();
        if !some.is_empty() {
            println!(
                "  {kind:?}: p50 {}, p99 {}, max {} ({} trials)",
                ms(percentile(&some, 50.0)),
                ms(percentile(&some, 99.0)),
                ms(percentile(&some, 100.0)),
                some.len()
            );
        }
    }
    println!(
        "all: p50 {}, p90 {}, p99 {}, max {}; refused by the first request after the \
         revocation in {refused_at_once} of {trials} (target: p99 <= 50 ms)",
        ms(percentile(&all, 50.0)),
        ms(percentile(&all, 90.0)),
        ms(percentile(&all, 99.0)),
        ms(percentile(&all, 100.0)),
    );
}
