//! Abuse resistance over real HTTP, tried as an attacker would: hashing shared fairly
//! between clients, no lockout of the owner by a stranger's guesses, reset requests that
//! answer the same whatever the email and however the sender fares, one account per
//! person whatever the spelling, and the client address behind trusted proxies.

#[path = "support/http.rs"]
mod http_support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http_support::{Answer, TestServer, client, hardened_config, serve_auth, spec_config};
use reqwest::{Method, StatusCode};
use tokio::sync::Semaphore;
use tower_auth::mail::{MailError, MailTransport};
use tower_auth::password::{Bcrypt, HashError, PasswordHasher};
use tower_auth::{Auth, AuthConfig, Mailer, MemoryStore, ResetDelivery};

const ALICE: &str = "alice@example.com";
const PW: &str = "correct horse battery staple";
const WRONG: &str = "not the passphrase at all";

/// bcrypt (cost 4) that takes at least `delay` per operation and counts verifications:
/// slow enough that a flood keeps the pool full while the test's other clients ask.
#[derive(Clone)]
struct SlowHasher {
    delay: Duration,
    verifies: Arc<AtomicUsize>,
}

impl PasswordHasher for SlowHasher {
    fn hash(&self, password: &str) -> Result<String, HashError> {
        std::thread::sleep(self.delay);
        Bcrypt::new(4).hash(password)
    }

    fn verify(&self, password: &str, hash: &str) -> Result<bool, HashError> {
        self.verifies.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(self.delay);
        Bcrypt::new(4).verify(password, hash)
    }
}

struct App {
    auth: Auth,
    server: TestServer,
    http: reqwest::Client,
}

impl App {
    async fn start(config: AuthConfig) -> Self {
        Self::with(Auth::new(MemoryStore::new(), config).expect("valid config")).await
    }

    async fn with(auth: Auth) -> Self {
        let server = serve_auth(&auth).await;
        Self {
            auth,
            server,
            http: client(),
        }
    }

    /// A form request from the client `from` (its `X-Forwarded-For`), with `cookies`.
    async fn send(
        &self,
        method: Method,
        path: &str,
        form: &[(&str, &str)],
        from: Option<&str>,
        cookies: &[&str],
    ) -> Answer {
        let mut request = self
            .http
            .request(method, self.server.url(path))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(http_support::form(form));
        if let Some(from) = from {
            request = request.header("X-Forwarded-For", from);
        }
        if !cookies.is_empty() {
            request = request.header("Cookie", cookies.join("; "));
        }
        Answer::read(request.send().await.expect("request")).await
    }

    async fn register(&self, email: &str, from: Option<&str>) -> Answer {
        self.send(
            Method::POST,
            "/users",
            &[("email", email), ("password", PW)],
            from,
            &[],
        )
        .await
    }

    async fn log_in(
        &self,
        email: &str,
        password: &str,
        from: Option<&str>,
        cookies: &[&str],
    ) -> Answer {
        self.send(
            Method::POST,
            "/sessions",
            &[("email", email), ("password", password)],
            from,
            cookies,
        )
        .await
    }
}

/// `name=value` of the cookie called `name` among `set_cookies`.
fn cookie_pair(set_cookies: &[String], name: &str) -> Option<String> {
    set_cookies
        .iter()
        .filter_map(|c| c.split(';').next())
        .find(|pair| pair.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

fn count(statuses: &[StatusCode]) -> BTreeMap<u16, usize> {
    let mut counts = BTreeMap::new();
    for status in statuses {
        *counts.entry(status.as_u16()).or_default() += 1;
    }
    counts
}

// ----- hashing shared fairly ---------------------------------------------------------------

/// One client floods 600 concurrent logins, 600 registrations and 600 redemptions of a
/// valid reset token; meanwhile every login of other clients succeeds. The flooder gets
/// 401/400/403 for what it was allowed to try and 429 with `Retry-After` for the rest,
/// never more than its share in the pool, and no more verifications than its limits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_clients_flood_does_not_push_others_into_503() {
    let mut config = hardened_config();
    config.trusted_proxies = 1;
    config.hash_permits = 2;
    config.hash_queue = 48;
    config.max_hash_jobs_per_client = 8;
    config.max_login_failures_per_ip = 40;
    config.reset_delivery = ResetDelivery::InResponse;
    let verifies = Arc::new(AtomicUsize::new(0));
    let hasher = SlowHasher {
        delay: Duration::from_millis(15),
        verifies: Arc::clone(&verifies),
    };
    let auth = Auth::builder(MemoryStore::new(), config)
        .password_hasher(hasher)
        .build()
        .expect("valid config");
    let app = Arc::new(App::with(auth).await);
    const FLOODER: &str = "198.51.100.66";
    for i in 0..20 {
        app.register(
            &format!("user{i}@example.com"),
            Some(&format!("203.0.113.{i}")),
        )
        .await
        .expect(StatusCode::OK);
    }
    let reset_token = app
        .auth
        .get_reset_password_token("user0@example.com")
        .await
        .expect("token");
    let before = verifies.load(Ordering::SeqCst);

    let mut flood = tokio::task::JoinSet::new();
    for i in 0..600 {
        let app = Arc::clone(&app);
        let token = reset_token.clone();
        flood.spawn(async move {
            let email = format!("target{i}@example.com");
            let answer = match i % 3 {
                0 => app.log_in(&email, WRONG, Some(FLOODER), &[]).await,
                1 => app.register(&email, Some(FLOODER)).await,
                _ => {
                    app.send(
                        Method::PUT,
                        "/reset_password",
                        &[
                            ("email", "user0@example.com"),
                            ("reset_token", &token),
                            ("new_password", "a brand new passphrase, long enough"),
                        ],
                        Some(FLOODER),
                        &[],
                    )
                    .await
                }
            };
            if answer.status == StatusCode::TOO_MANY_REQUESTS {
                assert!(answer.retry_after.is_some(), "429 without Retry-After");
            }
            answer.status
        });
    }
    // While the flood runs, other clients log in, each from its own address.
    let mut others = tokio::task::JoinSet::new();
    for i in 1..20 {
        let app = Arc::clone(&app);
        others.spawn(async move {
            tokio::time::sleep(Duration::from_millis(5 * i)).await;
            app.log_in(
                &format!("user{i}@example.com"),
                PW,
                Some(&format!("203.0.113.{i}")),
                &[],
            )
            .await
            .status
        });
    }
    let others: Vec<StatusCode> = others.join_all().await;
    let flooded: Vec<StatusCode> = flood.join_all().await;
    assert!(
        others.iter().all(|s| *s == StatusCode::OK),
        "other clients' logins: {:?}",
        count(&others)
    );
    let flooded = count(&flooded);
    assert!(
        !flooded.contains_key(&503) && !flooded.contains_key(&500),
        "the flooder is refused for its own excess (429), never shed for everyone: {flooded:?}"
    );
    assert!(flooded.get(&429).copied().unwrap_or(0) > 0, "{flooded:?}");
    // At most its login limit of logins reached the hasher, the others were refused first.
    let flooder_verifies = verifies.load(Ordering::SeqCst) - before - others.len();
    assert!(
        flooder_verifies <= 40,
        "{flooder_verifies} verifications for the flooder"
    );
}

/// A client over its registration or reset-request limit gets 429 with `Retry-After`;
/// other clients are unaffected, and the window ends.
#[tokio::test]
async fn registrations_and_reset_requests_are_limited_per_client() {
    let mut config = hardened_config();
    config.trusted_proxies = 1;
    config.max_registrations_per_ip = Some(3);
    config.max_reset_requests_per_ip = Some(2);
    let app = App::start(config).await;
    for i in 0..3 {
        app.register(&format!("u{i}@example.com"), Some("198.51.100.1"))
            .await
            .expect(StatusCode::OK);
    }
    let limited = app.register("u3@example.com", Some("198.51.100.1")).await;
    limited.expect(StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = limited
        .retry_after
        .as_deref()
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!((3_500..=3_600).contains(&retry_after), "{retry_after}");
    assert_eq!(
        limited.body["message"],
        "too many requests from this client; retry later"
    );
    app.register("u3@example.com", Some("198.51.100.2"))
        .await
        .expect(StatusCode::OK);

    for email in ["u0@example.com", "nobody@example.com"] {
        app.send(
            Method::POST,
            "/reset_password",
            &[("email", email)],
            Some("198.51.100.3"),
            &[],
        )
        .await
        .expect(StatusCode::ACCEPTED);
    }
    app.send(
        Method::POST,
        "/reset_password",
        &[("email", ALICE)],
        Some("198.51.100.3"),
        &[],
    )
    .await
    .expect(StatusCode::TOO_MANY_REQUESTS);
    app.auth.background_idle().await;
}

// ----- no lockout of the innocent ----------------------------------------------------------

/// An attacker exhausts Alice's failure limit from one address and stays throttled; Alice,
/// from a browser that logged in before (its trusted-device cookie), still logs in with the
/// right password, even from the attacker's own address (a shared NAT).
#[tokio::test]
async fn a_strangers_guesses_do_not_lock_out_the_owner() {
    let mut config = hardened_config();
    config.trusted_proxies = 1;
    let device_name = config
        .trusted_device_cookie
        .clone()
        .expect("hardened default");
    let app = App::start(config).await;
    app.register(ALICE, Some("203.0.113.5"))
        .await
        .expect(StatusCode::OK);
    let first = app.log_in(ALICE, PW, Some("203.0.113.5"), &[]).await;
    first.expect(StatusCode::OK);
    let device = cookie_pair(&first.set_cookies, &device_name).expect("a trusted-device cookie");
    assert!(
        first.set_cookies.iter().any(|c| c.starts_with(&device_name)
            && c.contains("HttpOnly")
            && c.contains("Secure")
            && c.contains("Max-Age=15552000")),
        "{:?}",
        first.set_cookies
    );

    const ATTACKER: &str = "198.51.100.9";
    for _ in 0..10 {
        app.log_in(ALICE, WRONG, Some(ATTACKER), &[])
            .await
            .expect(StatusCode::UNAUTHORIZED);
    }
    for from in [ATTACKER, "192.0.2.44"] {
        // The right password from an unknown browser is throttled too: the account's limit.
        app.log_in(ALICE, PW, Some(from), &[])
            .await
            .expect(StatusCode::TOO_MANY_REQUESTS);
    }
    // A forged or foreign device cookie is no better than none.
    let forged = format!("{device_name}=forged-value");
    app.log_in(ALICE, PW, Some(ATTACKER), &[&forged])
        .await
        .expect(StatusCode::TOO_MANY_REQUESTS);

    for from in ["203.0.113.5", ATTACKER] {
        let owner = app.log_in(ALICE, PW, Some(from), &[&device]).await;
        owner.expect(StatusCode::OK);
        assert!(
            cookie_pair(&owner.set_cookies, &device_name).is_none(),
            "a trusted device keeps its cookie"
        );
    }
    app.log_in(ALICE, WRONG, Some(ATTACKER), &[])
        .await
        .expect(StatusCode::TOO_MANY_REQUESTS);

    // The device has a limit of its own: ten failures from it throttle it alone.
    for _ in 0..10 {
        app.log_in(ALICE, WRONG, Some("203.0.113.5"), &[&device])
            .await
            .expect(StatusCode::UNAUTHORIZED);
    }
    app.log_in(ALICE, PW, Some("203.0.113.5"), &[&device])
        .await
        .expect(StatusCode::TOO_MANY_REQUESTS);
}

/// The spec preset sets the seed's one cookie and no other.
#[tokio::test]
async fn the_spec_preset_sets_no_device_cookie() {
    let app = App::start(spec_config()).await;
    app.register(ALICE, None).await.expect(StatusCode::OK);
    let login = app.log_in(ALICE, PW, None, &[]).await;
    login.expect(StatusCode::OK);
    assert_eq!(login.set_cookies.len(), 1, "{:?}", login.set_cookies);
    assert!(login.set_cookies[0].starts_with("session_id="));
}

// ----- uniform answers ---------------------------------------------------------------------

/// A mail transport that waits for a permit, then fails or records the recipients of
/// reset mail.
struct GatedTransport {
    gate: Arc<Semaphore>,
    fail: bool,
    sent: Arc<std::sync::Mutex<Vec<String>>>,
}

#[async_trait::async_trait]
impl MailTransport for GatedTransport {
    async fn send(&self, _from: &str, to: &str, message: &[u8]) -> Result<(), MailError> {
        let _permit = self.gate.acquire().await.expect("gate");
        if self.fail {
            return Err(MailError::Transient("mail server down".into()));
        }
        if String::from_utf8_lossy(message).contains("Subject: Reset your password") {
            self.sent.lock().expect("sent").push(to.to_owned());
        }
        Ok(())
    }
}

/// In the hardened preset a reset request answers 202 with one body for known and unknown
/// emails while delivery has not even started (it happens off the request path), and a
/// failing sender changes nothing in the answer.
#[tokio::test]
async fn reset_requests_answer_alike_whatever_the_email_or_the_sender() {
    for fail in [false, true] {
        let gate = Arc::new(Semaphore::new(0));
        let sent = Arc::default();
        let mut config = hardened_config();
        let transport = GatedTransport {
            gate: Arc::clone(&gate),
            fail,
            sent: Arc::clone(&sent),
        };
        config.mailer =
            Some(Mailer::new(transport, "app@example.com", "http://localhost").expect("mailer"));
        let app = App::start(config).await;
        app.register(ALICE, None).await.expect(StatusCode::OK);
        let mut bodies = Vec::new();
        for email in [ALICE, "nobody@example.com", "not an email"] {
            let answer = app
                .send(
                    Method::POST,
                    "/reset_password",
                    &[("email", email)],
                    None,
                    &[],
                )
                .await;
            answer.expect(StatusCode::ACCEPTED);
            bodies.push(answer.body);
        }
        assert!(bodies.windows(2).all(|w| w[0] == w[1]), "{bodies:?}");
        // Delivery is held at the gate: the answers came first.
        assert!(sent.lock().expect("sent").is_empty());
        gate.add_permits(10);
        app.auth.background_idle().await;
        app.auth.flush_mail().await;
        let delivered = sent.lock().expect("sent").clone();
        let expected: Vec<String> = if fail { vec![] } else { vec![ALICE.to_owned()] };
        assert_eq!(delivered, expected, "one token, to the known email only");
    }
}

// ----- one account per person --------------------------------------------------------------

/// Look-alike spellings of an existing account fold into it (log in, no second account);
/// invisible characters, mixed scripts and a trailing dot are refused with the reason.
#[tokio::test]
async fn look_alike_emails_fold_or_are_refused() {
    let app = App::start(hardened_config()).await;
    app.register(ALICE, None).await.expect(StatusCode::OK);
    for look_alike in [
        "\u{ff21}\u{ff2c}\u{ff29}\u{ff23}\u{ff25}@example.com",
        "\u{1d41a}lice@example.com",
        " ALICE@EXAMPLE.COM",
    ] {
        let again = app.register(look_alike, None).await;
        again.expect(StatusCode::BAD_REQUEST);
        assert_eq!(
            again.body["message"], "email already registered",
            "{look_alike}"
        );
        app.log_in(look_alike, PW, None, &[])
            .await
            .expect(StatusCode::OK);
    }
    for (variant, reason) in [
        ("ali\u{200b}ce@example.com", "invisible"),
        ("alice\u{202e}@example.com", "invisible"),
        ("\u{430}lice@example.com", "mix scripts"),
        ("alice@example.com.", "dot"),
    ] {
        let refused = app.register(variant, None).await;
        refused.expect(StatusCode::BAD_REQUEST);
        let message = refused.body["message"].as_str().expect("message");
        assert!(message.contains(reason), "{variant:?}: {message}");
    }
}

// ----- proxies -----------------------------------------------------------------------------

/// With two trusted proxies the client is the second entry from the right; what the client
/// wrote further left is ignored, and an entry that is not an address makes the client
/// unknown (the TCP peer counts) instead of being skipped for the forged one.
#[tokio::test]
async fn the_client_is_counted_from_the_right_behind_trusted_proxies() {
    let mut config = hardened_config();
    config.trusted_proxies = 2;
    config.max_login_failures = 100;
    config.max_login_failures_per_ip = 3;
    let app = App::start(config).await;
    app.register(ALICE, None).await.expect(StatusCode::OK);
    for forged in ["1.1.1.1", "2.2.2.2", "3.3.3.3"] {
        let chain = format!("{forged}, 198.51.100.7:4711, 10.0.0.2");
        app.log_in(ALICE, WRONG, Some(&chain), &[])
            .await
            .expect(StatusCode::UNAUTHORIZED);
    }
    app.log_in(ALICE, PW, Some("4.4.4.4, 198.51.100.7, 10.0.0.2"), &[])
        .await
        .expect(StatusCode::TOO_MANY_REQUESTS);
    app.log_in(ALICE, PW, Some("[2001:db8::7]:443, 10.0.0.2"), &[])
        .await
        .expect(StatusCode::OK);

    // "unknown" where the proxy should have written an address: the peer's bucket.
    for _ in 0..3 {
        app.log_in(ALICE, WRONG, Some("5.5.5.5, unknown, 10.0.0.2"), &[])
            .await
            .expect(StatusCode::UNAUTHORIZED);
    }
    app.log_in(ALICE, PW, None, &[])
        .await
        .expect(StatusCode::TOO_MANY_REQUESTS);
    app.log_in(ALICE, PW, Some("6.6.6.6, 192.0.2.8, 10.0.0.2"), &[])
        .await
        .expect(StatusCode::OK);
}

// ----- same origin against a configured public origin -------------------------------------

/// With `public_origin` set, writes must come from exactly that scheme, host and port; the
/// request's `Host` no longer counts.
#[tokio::test]
async fn writes_are_checked_against_the_public_origin() {
    let mut config = hardened_config();
    config.public_origin = Some("https://app.example.com".into());
    let app = App::start(config).await;
    let own_host = format!("http://{}", app.server.host());
    for (origin, allowed) in [
        ("https://app.example.com", true),
        ("https://APP.example.com:443", true),
        ("http://app.example.com", false),
        ("https://app.example.com:8443", false),
        ("https://evil.example.com", false),
        (own_host.as_str(), false),
        ("null", false),
    ] {
        let status = app
            .http
            .post(app.server.url("/users"))
            .header("Origin", origin)
            .form(&[("email", "x@example.com"), ("password", "")])
            .send()
            .await
            .expect("request")
            .status();
        // Allowed writes reach the handler (400: empty password); refused ones are 403.
        let expected = if allowed {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::FORBIDDEN
        };
        assert_eq!(status, expected, "{origin}");
    }
}
