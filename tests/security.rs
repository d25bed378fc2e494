//! Issue 5's security suite, over real HTTP.
//!
//! Every protection of the hardened preset (`AuthConfig::default()`) and of the spec preset
//! (`AuthConfig::spec()`) is exercised through the crate's own router on a real socket, with
//! `reqwest` as the client. Each config field that differs between the presets is tested with
//! each of its values. Time only moves through a [`ManualClock`]: nothing sleeps and nothing
//! measures time.
//!
//! Cookies are sent by hand (a `Cookie` header) rather than through a cookie jar, because the
//! hardened cookie is `Secure` and a jar would rightly refuse to send it over plain HTTP.
//!
//! Tests that apply to both presets are written once as `async fn name(preset: Preset)` and
//! instantiated by `both_presets!` as `name::hardened` and `name::spec`.

#[path = "support/http.rs"]
mod http_support;
#[path = "support/logs.rs"]
mod logs;
#[path = "support/mail.rs"]
mod mail;

use std::collections::BTreeMap;
use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine as _;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tower_auth::clock::{Clock as _, ManualClock};
use tower_auth::password::{Bcrypt, HashError, PasswordHasher};
use tower_auth::seed::WireStyle;
use tower_auth::store::{TokenHash, TokenPurpose, UserLookup};
use tower_auth::{
    Auth, AuthConfig, Mailer, MemoryStore, NoSessionStatus, ResetDelivery, Store, TokenFormat,
};

// ----- fixtures ---------------------------------------------------------------------------

const START_MS: i64 = 1_700_000_000_000;
const MS: Duration = Duration::from_millis(1);
const SECOND: Duration = Duration::from_secs(1);
const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(24 * 3600);

const ALICE: &str = "alice@example.com";
const BOB: &str = "bob@example.com";
const GHOST: &str = "ghost@example.com";
/// Passwords that pass both presets' policies (15+ characters, not on the common list).
const PW: &str = "correct horse battery staple";
const PW2: &str = "tr0ub4dor and three more words";
const PW3: &str = "a third passphrase, long enough";
const WRONG: &str = "this is certainly not the password";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Preset {
    Hardened,
    Spec,
}

impl Preset {
    /// The preset with a cheap bcrypt cost. The hardened one mails (the harness captures
    /// the mail), and here lets unconfirmed accounts log in and registration answer as the
    /// seed does: email confirmation and concealed registration have their own tests
    /// (tests/mail.rs), and every protection here applies to confirmed accounts alike.
    fn config(self) -> AuthConfig {
        let mut config = match self {
            Self::Hardened => {
                let mut config = AuthConfig::hardened_with(
                    Mailer::new(
                        mail::Capture::default(),
                        "app@example.com",
                        "http://localhost",
                    )
                    .expect("mailer"),
                );
                config.require_confirmed_email = false;
                config.conceal_registered_emails = false;
                config
            }
            Self::Spec => AuthConfig::spec(),
        };
        config.bcrypt_cost = 4;
        config
    }
}

/// Runs `async fn $name(Preset)` once per preset, as `$name::hardened` and `$name::spec`.
macro_rules! both_presets {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn hardened() {
                super::$name(super::Preset::Hardened).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn spec() {
                super::$name(super::Preset::Spec).await;
            }
        }
    )*};
}

/// The mail a harness sends, read as `(recipient, reset token)` pairs of its reset links.
#[derive(Clone, Default)]
struct Outbox(mail::Capture);

impl Outbox {
    fn sent(&self) -> Vec<(String, String)> {
        self.0
            .sent()
            .into_iter()
            .filter(|m| m.parsed().subject == "Reset your password")
            .map(|m| (m.to.clone(), m.token()))
            .collect()
    }

    fn sent_to(&self, email: &str) -> Vec<String> {
        self.sent()
            .into_iter()
            .filter(|(to, _)| to == email)
            .map(|(_, token)| token)
            .collect()
    }
}

/// bcrypt (cost 4) that counts its calls.
#[derive(Clone, Default)]
struct CountingHasher {
    hashes: Arc<AtomicUsize>,
    verifies: Arc<AtomicUsize>,
}

impl CountingHasher {
    fn hashes(&self) -> usize {
        self.hashes.load(Ordering::SeqCst)
    }

    fn verifies(&self) -> usize {
        self.verifies.load(Ordering::SeqCst)
    }
}

impl PasswordHasher for CountingHasher {
    fn hash(&self, password: &str) -> Result<String, HashError> {
        self.hashes.fetch_add(1, Ordering::SeqCst);
        Bcrypt::new(4).hash(password)
    }

    fn verify(&self, password: &str, hash: &str) -> Result<bool, HashError> {
        self.verifies.fetch_add(1, Ordering::SeqCst);
        Bcrypt::new(4).verify(password, hash)
    }
}

/// A response, read whole.
#[derive(Debug)]
struct Resp {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.body))
    }

    fn message(&self) -> String {
        self.json()["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    /// The `Set-Cookie` header for cookie `name`.
    fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .find(|c| c.starts_with(&format!("{name}=")))
    }

    /// Every header but `Date`, for comparing two responses.
    fn headers_but_date(&self) -> BTreeMap<String, Vec<String>> {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (name, value) in &self.headers {
            if name != "date" {
                out.entry(name.to_string())
                    .or_default()
                    .push(value.to_str().unwrap().to_owned());
            }
        }
        out
    }

    #[track_caller]
    fn expect(&self, status: StatusCode) -> &Self {
        assert_eq!(self.status, status, "unexpected answer: {self:?}");
        self
    }
}

/// A logged-in client's session.
#[derive(Debug, Clone)]
struct Sess {
    /// The session token (the cookie's value).
    token: String,
    /// `name=value`, ready for a `Cookie` header.
    cookie: String,
    /// The whole `Set-Cookie` header that created it.
    set_cookie: String,
}

/// The router of one `Auth`, served as the spec server serves it (the shared harness:
/// `support/http.rs`), and a client for it.
struct Server {
    base: String,
    /// `127.0.0.1:<port>`, as the client sends it in `Host`.
    host: String,
    cookie_name: String,
    /// The status of a request that needs a session and has none (403 spec, 401 hardened).
    no_session: StatusCode,
    http: reqwest::Client,
}

impl Server {
    async fn start(auth: &Auth) -> Self {
        let server = http_support::serve_auth(auth).await;
        Self {
            base: server.base(),
            host: server.host(),
            cookie_name: auth.config().cookie.name.clone(),
            no_session: match auth.config().no_session_status {
                NoSessionStatus::Forbidden => StatusCode::FORBIDDEN,
                _ => StatusCode::UNAUTHORIZED,
            },
            http: http_support::client(),
        }
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        form: &[(&str, &str)],
        cookie: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if !form.is_empty() {
            req = req.form(form);
        }
        if let Some(cookie) = cookie {
            req = req.header("cookie", cookie);
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let res = req.send().await.expect("request failed");
        Resp {
            status: res.status(),
            headers: res.headers().clone(),
            body: res.text().await.unwrap(),
        }
    }

    async fn register(&self, email: &str, password: &str) -> Resp {
        let form = [("email", email), ("password", password)];
        self.send(Method::POST, "/users", &form, None, &[]).await
    }

    async fn login(&self, email: &str, password: &str) -> Resp {
        self.login_with(email, password, None, &[]).await
    }

    async fn login_with(
        &self,
        email: &str,
        password: &str,
        cookie: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let form = [("email", email), ("password", password)];
        self.send(Method::POST, "/sessions", &form, cookie, headers)
            .await
    }

    /// Logs in, expecting success, and returns the new session.
    async fn session(&self, email: &str, password: &str) -> Sess {
        self.session_presenting(email, password, None).await
    }

    async fn session_presenting(&self, email: &str, password: &str, old: Option<&Sess>) -> Sess {
        let res = self
            .login_with(email, password, old.map(|s| s.cookie.as_str()), &[])
            .await;
        res.expect(StatusCode::OK);
        let set_cookie = res
            .set_cookie(&self.cookie_name)
            .expect("login sets the session cookie");
        let pair = set_cookie.split(';').next().unwrap().to_owned();
        let token = pair.split_once('=').unwrap().1.to_owned();
        Sess {
            token,
            cookie: pair,
            set_cookie,
        }
    }

    async fn profile(&self, s: &Sess) -> Resp {
        self.send(Method::GET, "/profile", &[], Some(&s.cookie), &[])
            .await
    }

    async fn logout(&self, s: &Sess) -> Resp {
        self.send(Method::DELETE, "/sessions", &[], Some(&s.cookie), &[])
            .await
    }

    async fn request_reset(&self, email: &str) -> Resp {
        self.send(
            Method::POST,
            "/reset_password",
            &[("email", email)],
            None,
            &[],
        )
        .await
    }

    async fn reset(&self, email: &str, token: &str, new_password: &str) -> Resp {
        let form = [
            ("email", email),
            ("reset_token", token),
            ("new_password", new_password),
        ];
        self.send(Method::PUT, "/reset_password", &form, None, &[])
            .await
    }
}

/// One `Auth` (with a manual clock and, where the config sends reset tokens, a capturing
/// sender) and its server.
struct Harness {
    auth: Auth,
    store: Arc<dyn Store>,
    clock: ManualClock,
    outbox: Outbox,
    server: Server,
}

impl Deref for Harness {
    type Target = Server;
    fn deref(&self) -> &Server {
        &self.server
    }
}

impl Harness {
    /// Over a fresh `MemoryStore`. A `Sender` delivery is replaced with the capturing outbox
    /// (the hardened default would write into the system temp directory).
    async fn start(config: AuthConfig) -> Self {
        Self::build(config, Arc::new(MemoryStore::new()), None, true).await
    }

    async fn build(
        mut config: AuthConfig,
        store: Arc<dyn Store>,
        hasher: Option<CountingHasher>,
        capture_delivery: bool,
    ) -> Self {
        let outbox = Outbox::default();
        if capture_delivery && config.mailer.is_some() {
            config.mailer = Some(
                Mailer::new(outbox.0.clone(), "app@example.com", "http://localhost")
                    .expect("mailer"),
            );
        }
        let clock = ManualClock::new(START_MS);
        let mut builder = Auth::builder_shared(store.clone(), config).clock(clock.clone());
        if let Some(hasher) = hasher {
            builder = builder.password_hasher(hasher);
        }
        let auth = builder.build().expect("valid config");
        let server = Server::start(&auth).await;
        Self {
            auth,
            store,
            clock,
            outbox,
            server,
        }
    }

    fn delivers_in_response(&self) -> bool {
        matches!(self.auth.config().reset_delivery, ResetDelivery::InResponse)
    }

    /// Asks for a reset token the way the preset hands it out, and returns it.
    /// `POST /reset_password`, then waits for the background delivery it started, so the
    /// outbox is complete when the test reads it.
    async fn request_reset(&self, email: &str) -> Resp {
        let res = self.server.request_reset(email).await;
        self.auth.background_idle().await;
        self.auth.flush_mail().await;
        res
    }

    async fn reset_token(&self, email: &str) -> String {
        let before = self.outbox.sent().len();
        let res = self.request_reset(email).await;
        if self.delivers_in_response() {
            res.expect(StatusCode::OK);
            res.json()["reset_token"].as_str().unwrap().to_owned()
        } else {
            res.expect(StatusCode::ACCEPTED);
            let sent = self.outbox.sent();
            assert_eq!(sent.len(), before + 1, "one token sent");
            sent.last().unwrap().1.clone()
        }
    }

    async fn stored_session_exists(&self, s: &Sess) -> bool {
        self.store
            .find_session(&TokenHash::of(&s.token))
            .await
            .unwrap()
            .is_some()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

// ----- presets ----------------------------------------------------------------------------

/// Every field that differs between the presets, and the shared defaults the issue names,
/// hold the documented values.
#[test]
fn presets_hold_the_documented_values() {
    let h = AuthConfig::default();
    assert_eq!(format!("{h:?}"), format!("{:?}", AuthConfig::hardened()));
    assert_eq!(h.session_idle_timeout, 30 * MINUTE);
    assert_eq!(h.session_lifetime, 12 * HOUR);
    assert_eq!(h.session_token_format, TokenFormat::Random256);
    assert_eq!(h.cookie.name, "__Host-session_id");
    assert_eq!(h.cookie.path, "/");
    assert!(h.cookie.secure);
    assert!(!h.single_session);
    assert!(h.end_presented_session_on_login);
    assert_eq!(h.password_policy.min_chars, 15);
    assert!(h.password_policy.reject_common);
    assert_eq!(h.reset_delivery, ResetDelivery::Mail);
    assert!(h.mailer.is_none(), "no silent default transport");
    assert!(h.require_confirmed_email && h.conceal_registered_emails);
    assert_eq!(h.max_reset_requests_per_hour, Some(3));
    assert!(h.end_sessions_on_password_reset);
    assert_eq!(h.wire_style, WireStyle::Json);

    let s = AuthConfig::spec();
    assert_eq!(s.session_idle_timeout, 7 * DAY);
    assert_eq!(s.session_lifetime, 30 * DAY);
    assert_eq!(s.session_token_format, TokenFormat::Uuid);
    assert_eq!(s.cookie.name, "session_id");
    assert_eq!(s.cookie.path, "/");
    assert!(!s.cookie.secure);
    assert!(s.single_session);
    assert!(!s.end_presented_session_on_login);
    assert_eq!(s.password_policy.min_chars, 1);
    assert!(!s.password_policy.reject_common);
    assert_eq!(s.reset_delivery, ResetDelivery::InResponse);
    assert!(!s.require_confirmed_email && !s.conceal_registered_emails);
    assert_eq!(s.max_reset_requests_per_hour, None);
    assert!(!s.end_sessions_on_password_reset);
    assert_eq!(s.wire_style, WireStyle::Werkzeug);

    for c in [&h, &s] {
        assert_eq!(c.bcrypt_cost, 12);
        assert_eq!(c.reset_token_ttl, HOUR);
        assert_eq!(c.max_login_failures, 10);
        assert_eq!(c.max_login_failures_per_ip, 100);
        assert!(c.max_login_failures_per_ip > c.max_login_failures);
        assert_eq!(c.login_failure_window, 15 * MINUTE);
        assert_eq!(c.trusted_proxies, 0);
        assert!(c.allowed_origins.is_empty());
        assert_eq!(c.logout_redirect, "/");
    }
}

// ----- both presets: tokens at rest -------------------------------------------------------

both_presets!(tokens_are_stored_hashed, only_the_exact_cookie_name_counts);
#[cfg(feature = "sqlite")]
both_presets!(tokens_are_stored_hashed_in_sqlite);

/// Only a cookie of exactly the configured name carries the session: a percent-encoded or
/// otherwise different spelling (`__Host%2Dsession_id`, which any site on the network path
/// could set, as the `__Host-` prefix is what stops it) is another cookie and is ignored,
/// on reads, logouts and logins alike.
async fn only_the_exact_cookie_name_counts(preset: Preset) {
    let h = Harness::start(preset.config()).await;
    h.register(ALICE, PW).await.expect(StatusCode::OK);
    let s = h.session(ALICE, PW).await;
    let encoded_dash = h.cookie_name.replace('-', "%2D");
    let encoded_underscore = h.cookie_name.replace('_', "%5F");
    let lookalikes: Vec<String> = [
        encoded_dash.clone(),
        encoded_underscore.clone(),
        h.cookie_name.to_uppercase(),
        h.cookie_name.replace("session", "Session"),
    ]
    .into_iter()
    .filter(|name| *name != h.cookie_name)
    .collect();
    assert!(lookalikes.len() >= 3, "{lookalikes:?}");
    for name in &lookalikes {
        let cookie = format!("{name}={}", s.token);
        h.send(Method::GET, "/profile", &[], Some(&cookie), &[])
            .await
            .expect(h.no_session);
        h.send(Method::DELETE, "/sessions", &[], Some(&cookie), &[])
            .await
            .expect(h.no_session);
    }
    // The look-alike did not end the session; the exact name still works, also when a
    // look-alike with another value comes first.
    let both = format!("{encoded_underscore}=forged; {}", s.cookie);
    h.send(Method::GET, "/profile", &[], Some(&both), &[])
        .await
        .expect(StatusCode::OK);
    h.profile(&s).await.expect(StatusCode::OK);
}

/// Session and reset tokens are kept as `TokenHash::of(token)`; the stored hash presented
/// as a token grants nothing.
async fn tokens_are_stored_hashed(preset: Preset) {
    let h = Harness::start(preset.config()).await;
    h.register(ALICE, PW).await.expect(StatusCode::OK);
    let s = h.session(ALICE, PW).await;

    let (session, user) = h
        .store
        .find_session(&TokenHash::of(&s.token))
        .await
        .unwrap()
        .expect("the session is stored under the token's hash");
    assert_eq!(session.token_hash, TokenHash::of(&s.token));
    assert_eq!(user.email, ALICE);

    // A copied database grants no session: its hash, in any encoding, is not a token.
    let digest = TokenHash::of(&s.token).0;
    for forged in [
        hex(&digest),
        hex(&digest).to_lowercase(),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest),
    ] {
        let cookie = format!("{}={forged}", h.cookie_name);
        h.send(Method::GET, "/profile", &[], Some(&cookie), &[])
            .await
            .expect(h.no_session);
    }

    let token = h.reset_token(ALICE).await;
    let (stored, _) = h
        .store
        .find_token(
            &TokenHash::of(&token),
            TokenPurpose::ResetPassword,
            h.clock.now_ms(),
        )
        .await
        .unwrap()
        .expect("a pending reset token, stored as its SHA-256");
    assert!(stored.expires_at_ms > START_MS);
    // ...and the stored hash does not redeem.
    h.reset(ALICE, &hex(&stored.hash.0).to_lowercase(), PW2)
        .await
        .expect(StatusCode::FORBIDDEN);
    h.login(ALICE, PW).await.expect(StatusCode::OK);
}

#[cfg(feature = "sqlite")]
/// On SQLite, no text or blob column of any table, and no byte of the database files
/// (main file and WAL), holds a session or reset token in the clear.
async fn tokens_are_stored_hashed_in_sqlite(preset: Preset) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("auth.db").display());
    let sqlite = tower_auth::SqliteStore::connect(&url).await.unwrap();
    let h = Harness::build(preset.config(), Arc::new(sqlite.clone()), None, true).await;

    h.register(ALICE, PW).await.expect(StatusCode::OK);
    let s1 = h.session(ALICE, PW).await;
    let s2 = h.session(ALICE, PW).await;
    // A used reset token and a pending one.
    let used = h.reset_token(ALICE).await;
    h.reset(ALICE, &used, PW2).await.expect(StatusCode::OK);
    let s3 = h.session(ALICE, PW2).await;
    let pending = h.reset_token(ALICE).await;
    let secrets = [&s1.token, &s2.token, &s3.token, &used, &pending];

    let pool = sqlite.pool();
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'")
            .fetch_all(pool)
            .await
            .unwrap();
    for table in [
        "auth_users",
        "auth_sessions",
        "auth_tokens",
        "auth_counters",
    ] {
        assert!(tables.iter().any(|t| t == table), "table {table} exists");
    }
    let mut cells = 0;
    for table in &tables {
        let columns: Vec<String> =
            sqlx::query_scalar(&format!("SELECT name FROM pragma_table_info('{table}')"))
                .fetch_all(pool)
                .await
                .unwrap();
        for column in columns {
            // hex() of a TEXT value is the hex of its UTF-8 bytes, of a BLOB its bytes.
            let values: Vec<Option<String>> =
                sqlx::query_scalar(&format!("SELECT hex(\"{column}\") FROM \"{table}\""))
                    .fetch_all(pool)
                    .await
                    .unwrap();
            for value in values.into_iter().flatten() {
                cells += 1;
                for secret in secrets {
                    assert!(
                        !value.contains(&hex(secret.as_bytes())),
                        "{table}.{column} holds a token in the clear"
                    );
                }
            }
        }
    }
    assert!(cells > 0);

    // Positive control: what is there is the SHA-256 of the live tokens.
    let session_hashes: Vec<Vec<u8>> = sqlx::query_scalar("SELECT token_hash FROM auth_sessions")
        .fetch_all(pool)
        .await
        .unwrap();
    assert!(session_hashes.contains(&TokenHash::of(&s3.token).0.to_vec()));
    let reset_hashes: Vec<Vec<u8>> = sqlx::query_scalar(
        "SELECT token_hash FROM auth_tokens WHERE account_email = $1 AND purpose = 'reset_password'",
    )
    .bind(ALICE)
    .fetch_all(pool)
    .await
    .unwrap();
    assert_eq!(reset_hashes, [TokenHash::of(&pending).0.to_vec()]);

    // The files themselves: a copy of them grants nothing.
    let mut files = 0;
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        files += 1;
        for secret in secrets {
            assert!(!contains_bytes(&bytes, secret.as_bytes()));
            assert!(!contains_bytes(&bytes, hex(secret.as_bytes()).as_bytes()));
        }
    }
    assert!(files >= 1);
}

// ----- both presets: session expiry -------------------------------------------------------

both_presets!(
    session_idle_timeout,
    session_lifetime,
    expired_sessions_are_swept_without_being_presented,
);

fn idle_timeout_of(preset: Preset) -> Duration {
    match preset {
        Preset::Hardened => 30 * MINUTE,
        Preset::Spec => 7 * DAY,
    }
}

fn lifetime_of(preset: Preset) -> Duration {
    match preset {
        Preset::Hardened => 12 * HOUR,
        Preset::Spec => 30 * DAY,
    }
}

/// A session unused for the idle timeout (30 min hardened, 7 days spec) is refused with 403
/// and removed; one used just before the boundary lives on, and each use renews it.
async fn session_idle_timeout(preset: Preset) {
    let config = preset.config();
    let idle = idle_timeout_of(preset);
    assert_eq!(config.session_idle_timeout, idle);
    let h = Harness::start(config).await;
    h.register(ALICE, PW).await.expect(StatusCode::OK);
    let s = h.session(ALICE, PW).await;

    h.clock.advance(idle - MS);
    h.profile(&s).await.expect(StatusCode::OK);
    // That request counted as use: another idle period minus 1 ms is still fine.
    h.clock.advance(idle - MS);
    h.profile(&s).await.expect(StatusCode::OK);
    assert!(h.stored_session_exists(&s).await);

    h.clock.advance(idle);
    h.profile(&s).await.expect(h.no_session);
    assert!(
        !h.stored_session_exists(&s).await,
        "an expired session is removed from the store"
    );
    h.logout(&s).await.expect(h.no_session);
    // The account itself is fine.
    let fresh = h.session(ALICE, PW).await;
    h.profile(&fresh).await.expect(StatusCode::OK);
}

/// A session older than its absolute lifetime (12 h hardened, 30 days spec) is refused and
/// removed even though it was used all along; 1 ms before, it is still accepted.
async fn session_lifetime(preset: Preset) {
    let config = preset.config();
    let lifetime = lifetime_of(preset);
    assert_eq!(config.session_lifetime, lifetime);
    let step = idle_timeout_of(preset) / 2;
    let h = Harness::start(config).await;
    h.register(ALICE, PW).await.expect(StatusCode::OK);
    let s = h.session(ALICE, PW).await;

    let mut elapsed = Duration::ZERO;
    while elapsed + step < lifetime - MS {
        h.clock.advance(step);
        elapsed += step;
        h.profile(&s).await.expect(StatusCode::OK);
    }
    h.clock.advance(lifetime - MS - elapsed);
    h.profile(&s).await.expect(StatusCode::OK);

    h.clock.advance(MS);
    h.profile(&s).await.expect(h.no_session);
    assert!(!h.stored_session_exists(&s).await);
    h.logout(&s).await.expect(h.no_session);
}

/// Expired sessions are cleaned up even if nobody presents them again, by the sweep that
/// runs on its own every `sweep_interval`, never as a request's work.
async fn expired_sessions_are_swept_without_being_presented(preset: Preset) {
    let mut config = preset.config();
    config.sweep_interval = Some(Duration::from_millis(100));
    let h = Harness::start(config).await;
    h.register(ALICE, PW).await.expect(StatusCode::OK);
    h.register(BOB, PW).await.expect(StatusCode::OK);
    let alice = h.session(ALICE, PW).await;
    let bob = h.session(BOB, PW).await;
    h.clock.advance(idle_timeout_of(preset) / 2);
    h.profile(&bob).await.expect(StatusCode::OK);
    h.clock.advance(idle_timeout_of(preset) / 2);
    assert!(h.stored_session_exists(&alice).await);
    // No request: the sweep comes within a few intervals, and leaves the live session.
    let mut swept = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if !h.stored_session_exists(&alice).await {
            swept = true;
            break;
        }
    }
    assert!(swept, "the expired session was swept");
    assert!(h.stored_session_exists(&bob).await, "the live one stays");
}

// ----- both presets: logout ---------------------------------------------------------------

both_presets!(logout_destroys_the_session_and_clears_the_cookie);

/// `DELETE /sessions`: 302 (`Location: /` hardened, `http://<host>/` spec), the session is
/// gone from the store, the cookie is cleared with `Max-Age=0`, and the old cookie is 403.
async fn logout_destroys_the_session_and_clears_the_cookie(preset: Preset) {
    let h = Harness::start(preset.config()).await;
    h.register(ALICE, PW).await.expect(StatusCode::OK);
    let s = h.session(ALICE, PW).await;
    assert!(h.stored_session_exists(&s).await);

    let res = h.logout(&s).await;
    res.expect(StatusCode::FOUND);
    let expected_location = match preset {
        Preset::Hardened => "/".to_owned(),
        Preset::Spec => format!("http://{}/", h.host),
    };
    assert_eq!(res.header("location"), Some(expected_location.as_str()));
    let cleared = res
        .set_cookie(&h.cookie_name)
        .expect("logout clears the cookie");
    assert!(
        cleared.starts_with(&format!("{}=;", h.cookie_name)),
        "{cleared}"
    );
    assert!(cleared.contains("; Max-Age=0"), "{cleared}");
    assert!(cleared.contains("; Path=/"), "{cleared}");
    assert_eq!(cleared.contains("; Secure"), preset == Preset::Hardened);

    assert!(!h.stored_session_exists(&s).await, "destroyed server-side");
    h.profile(&s).await.expect(h.no_session);
    h.logout(&s).await.expect(h.no_session);
}

// ----- both presets: reset tokens ---------------------------------------------------------

both_presets!(
    reset_token_expires,
    reset_token_dies_on_use,
    new_reset_token_replaces_the_old,
    reset_token_of_another_email_changes_nothing,
);

/// A reset token is refused once `reset_token_ttl` (1 h) has passed, and nothing changes;
/// 1 ms before, it works.
async fn reset_token_expires(preset: Preset) {
    let config = preset.config();
    assert_eq!(config.reset_token_ttl, HOUR);
    let h = Harness::start(config).await;
    h.register(ALICE, PW).await.expect(StatusCode::OK);

    let expired = h.reset_token(ALICE).await;
    h.clock.advance(HOUR);
    h.reset(ALICE, &expired, PW2)
        .await
        .expect(StatusCode::FORBIDDEN);
    h.login(ALICE, PW).await.expect(StatusCode::OK);
    h.login(ALICE, PW2).await.expect(StatusCode::UNAUTHORIZED);

    let fresh = h.reset_token(ALICE).await;
    h.clock.advance(HOUR - MS);
    let res = h.reset(ALICE, &fresh, PW2).await;
    res.expect(StatusCode::OK);
    assert_eq!(
        res.json(),
        json!({"email": ALICE, "message": "Password updated"})
    );
    h.login(ALICE, PW2).await.expect(StatusCode::OK);
    h.login(ALICE, PW).await.expect(StatusCode::UNAUTHORIZED);
}

/// A reset token works once.
async fn reset_token_dies_on_use(preset: Preset) {
    let h = Harness::start(preset.config()).await;
    h.register(ALICE, PW).await.expect(StatusCode::OK);
    let token = h.reset_token(ALICE).await;
    h.reset(ALICE, &token, PW2).await.expect(StatusCode::OK);
    h.reset(ALICE, &token, PW3)
        .await
        .expect(StatusCode::FORBIDDEN);
    h.login(ALICE, PW2).await.expect(StatusCode::OK);
    h.login(ALICE, PW3).await.expect(StatusCode::UNAUTHORIZED);
    let left = h
        .store
        .find_token(
            &TokenHash::of(&token),
            TokenPurpose::ResetPassword,
            h.clock.now_ms(),
        )
        .await
        .unwrap();
    assert!(left.is_none(), "the used token is gone");
}

/// Asking again replaces the earlier token: the old one is 403, the new one works.
async fn new_reset_token_replaces_the_old(preset: Preset) {
    let h = Harness::start(preset.config()).await;
    h.register(ALICE, PW).await.expect(StatusCode::OK);
    let old = h.reset_token(ALICE).await;
    let new = h.reset_token(ALICE).await;
    assert_ne!(old, new);
    h.reset(ALICE, &old, PW2)
        .await
        .expect(StatusCode::FORBIDDEN);
    h.login(ALICE, PW).await.expect(StatusCode::OK);
    h.reset(ALICE, &new, PW2).await.expect(StatusCode::OK);
    h.login(ALICE, PW2).await.expect(StatusCode::OK);
}

/// `PUT /reset_password` with a token issued for another email is 403 and changes nothing:
/// both passwords still work, and the token still works for its own email.
async fn reset_token_of_another_email_changes_nothing(preset: Preset) {
    let h = Harness::start(preset.config()).await;
    h.register(ALICE, PW).await.expect(StatusCode::OK);
    h.register(BOB, PW2).await.expect(StatusCode::OK);
    let alices = h.reset_token(ALICE).await;

    h.reset(BOB, &alices, PW3)
        .await
        .expect(StatusCode::FORBIDDEN);
    h.reset(GHOST, &alices, PW3)
        .await
        .expect(StatusCode::FORBIDDEN);
    h.login(ALICE, PW).await.expect(StatusCode::OK);
    h.login(BOB, PW2).await.expect(StatusCode::OK);
    h.login(ALICE, PW3).await.expect(StatusCode::UNAUTHORIZED);
    h.login(BOB, PW3).await.expect(StatusCode::UNAUTHORIZED);

    h.reset(ALICE, &alices, PW3).await.expect(StatusCode::OK);
    h.login(ALICE, PW3).await.expect(StatusCode::OK);
    h.login(BOB, PW2).await.expect(StatusCode::OK);
}

// ----- both presets: equal login cost -----------------------------------------------------

both_presets!(login_verifies_exactly_once_whatever_the_email);

/// Known email with the wrong password, with the right one, unknown email, malformed email:
/// each login costs exactly one `verify`, so response time does not tell whether the
/// account exists. (The dummy hash for unknown emails is made once, lazily: one `hash`.)
async fn login_verifies_exactly_once_whatever_the_email(preset: Preset) {
    let hasher = CountingHasher::default();
    let h = Harness::build(
        preset.config(),
        Arc::new(MemoryStore::new()),
        Some(hasher.clone()),
        true,
    )
    .await;
    h.register(ALICE, PW).await.expect(StatusCode::OK);
    assert_eq!(hasher.verifies(), 0);

    let cases = [
        (ALICE, WRONG, StatusCode::UNAUTHORIZED),
        (ALICE, PW, StatusCode::OK),
        (GHOST, PW, StatusCode::UNAUTHORIZED),
        ("not-an-email", PW, StatusCode::UNAUTHORIZED),
        ("ALICE@example.com", WRONG, StatusCode::UNAUTHORIZED),
        (GHOST, WRONG, StatusCode::UNAUTHORIZED),
    ];
    for (email, password, status) in cases {
        let before = hasher.verifies();
        h.login(email, password).await.expect(status);
        assert_eq!(
            hasher.verifies(),
            before + 1,
            "login as {email:?} verifies exactly once"
        );
    }
    // Through the library API too.
    for (email, password, valid) in [
        (ALICE, PW, true),
        (ALICE, WRONG, false),
        (GHOST, PW, false),
        ("@", PW, false),
    ] {
        let before = hasher.verifies();
        assert_eq!(h.auth.valid_login(email, password).await.unwrap(), valid);
        assert_eq!(hasher.verifies(), before + 1);
    }
    // Registration hashed once; the dummy hash was made once, on first use, not per login.
    assert_eq!(hasher.hashes(), 2);
}

// ----- both presets: password length and NUL ----------------------------------------------

both_presets!(long_and_nul_passwords_are_refused_never_truncated);

/// Passwords over 72 bytes or containing NUL are a 400 with a clear message on register and
/// reset; a 73-byte password whose first 72 bytes are the real password does not log in.
async fn long_and_nul_passwords_are_refused_never_truncated(preset: Preset) {
    let h = Harness::start(preset.config()).await;
    let pw72: String = "Tr0ub4dor&3 horse-battery ".repeat(3)[..72].to_owned();
    assert_eq!(pw72.len(), 72);
    let pw73 = format!("{pw72}x");

    let res = h.register(ALICE, &pw73).await;
    res.expect(StatusCode::BAD_REQUEST);
    assert_eq!(res.message(), "password must be at most 72 bytes");
    // 19 characters but 76 bytes: bytes are what bcrypt reads.
    let emoji76 = "\u{1F600}".repeat(19);
    let res = h.register(ALICE, &emoji76).await;
    res.expect(StatusCode::BAD_REQUEST);
    assert_eq!(res.message(), "password must be at most 72 bytes");
    let res = h.register(ALICE, "a long password\0with a NUL").await;
    res.expect(StatusCode::BAD_REQUEST);
    assert_eq!(res.message(), "password must not contain NUL characters");
    // None of that created the account.
    h.login(ALICE, &pw72).await.expect(StatusCode::UNAUTHORIZED);

    h.register(ALICE, &pw72).await.expect(StatusCode::OK);
    h.login(ALICE, &pw72).await.expect(StatusCode::OK);
    h.login(ALICE, &pw73).await.expect(StatusCode::UNAUTHORIZED);
    h.login(ALICE, &format!("{pw72}\0"))
        .await
        .expect(StatusCode::UNAUTHORIZED);
    h.login(ALICE, &format!("{}\0", &pw72[..71]))
        .await
        .expect(StatusCode::UNAUTHORIZED);

    let token = h.reset_token(ALICE).await;
    let res = h.reset(ALICE, &token, &pw73).await;
    res.expect(StatusCode::BAD_REQUEST);
    assert_eq!(res.message(), "password must be at most 72 bytes");
    let res = h.reset(ALICE, &token, "another long one\0").await;
    res.expect(StatusCode::BAD_REQUEST);
    assert_eq!(res.message(), "password must not contain NUL characters");
    // The refused attempts did not use up the token or change the password.
    h.login(ALICE, &pw72).await.expect(StatusCode::OK);
    h.reset(ALICE, &token, PW).await.expect(StatusCode::OK);
    h.login(ALICE, PW).await.expect(StatusCode::OK);
}

// ----- both presets: emails ---------------------------------------------------------------

both_presets!(emails_are_trimmed_and_case_insensitive);

/// `Bob@X.io` and ` bob@x.io ` are one account, for register, login and reset.
async fn emails_are_trimmed_and_case_insensitive(preset: Preset) {
    let h = Harness::start(preset.config()).await;
    let res = h.register("Bob@X.io", PW).await;
    res.expect(StatusCode::OK);
    assert_eq!(res.json()["email"], "bob@x.io");
    let res = h.register(" bob@x.io ", PW2).await;
    res.expect(StatusCode::BAD_REQUEST);
    assert_eq!(res.message(), "email already registered");

    let res = h.login(" bob@x.io ", PW).await;
    res.expect(StatusCode::OK);
    assert_eq!(res.json()["email"], "bob@x.io");
    let s = h.session("BOB@X.IO", PW).await;
    assert_eq!(
        h.profile(&s).await.json(),
        json!({"email": "bob@x.io"}),
        "one account"
    );

    let token = h.reset_token("  BOB@x.Io").await;
    if !h.delivers_in_response() {
        assert_eq!(h.outbox.sent_to("bob@x.io"), vec![token.clone()]);
    }
    h.reset("Bob@X.io ", &token, PW2)
        .await
        .expect(StatusCode::OK);
    h.login("bob@x.io", PW2).await.expect(StatusCode::OK);
}

// ----- both presets: login throttling -----------------------------------------------------

both_presets!(
    account_throttling_is_identical_for_known_and_unknown_emails,
    a_successful_login_resets_the_account_counter,
    ip_throttling_ignores_forwarded_for_by_default,
    ip_throttling_honours_forwarded_for_when_trusted,
    throttling_counters_live_in_the_store,
    concurrent_guesses_cannot_exceed_the_account_limit,
    concurrent_guesses_cannot_exceed_the_client_limit,
    successful_logins_do_not_count_against_the_client,
);

/// After `max_login_failures` (10) failures in the window (15 min), the next attempt is 429
/// with `Retry-After`, with the very same status, headers and body for a known and an
/// unknown email; the right password is refused too, without being verified; when the
/// window ends, logging in works again.
async fn account_throttling_is_identical_for_known_and_unknown_emails(preset: Preset) {
    let hasher = CountingHasher::default();
    let h = Harness::build(
        preset.config(),
        Arc::new(MemoryStore::new()),
        Some(hasher.clone()),
        true,
    )
    .await;
    assert_eq!(h.auth.config().max_login_failures, 10);
    h.register(ALICE, PW).await.expect(StatusCode::OK);

    for _ in 0..10 {
        h.login(ALICE, WRONG).await.expect(StatusCode::UNAUTHORIZED);
        h.login(GHOST, WRONG).await.expect(StatusCode::UNAUTHORIZED);
    }
    let verifies = hasher.verifies();
    let known = h.login(ALICE, WRONG).await;
    let unknown = h.login(GHOST, WRONG).await;
    known.expect(StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(known.header("retry-after"), Some("900"));
    assert_eq!(known.status, unknown.status);
    assert_eq!(known.headers_but_date(), unknown.headers_but_date());
    assert_eq!(known.body, unknown.body);
    assert!(known.message().contains("too many"), "{}", known.body);

    // Throttled: even the right password is refused, and no hash work is done.
    h.login(ALICE, PW)
        .await
        .expect(StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(hasher.verifies(), verifies);

    h.clock.advance(15 * MINUTE - SECOND);
    let res = h.login(ALICE, PW).await;
    res.expect(StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(res.header("retry-after"), Some("1"));
    h.clock.advance(SECOND);
    h.login(ALICE, PW).await.expect(StatusCode::OK);
    h.login(GHOST, WRONG).await.expect(StatusCode::UNAUTHORIZED);
}

/// A success clears the account's failures: 9 failures, a success, then 10 more failures
/// are all 401 before the 429.
async fn a_successful_login_resets_the_account_counter(preset: Preset) {
    let h = Harness::start(preset.config()).await;
    h.register(ALICE, PW).await.expect(StatusCode::OK);
    for _ in 0..9 {
        h.login(ALICE, WRONG).await.expect(StatusCode::UNAUTHORIZED);
    }
    h.login(ALICE, PW).await.expect(StatusCode::OK);
    for _ in 0..10 {
        h.login(ALICE, WRONG).await.expect(StatusCode::UNAUTHORIZED);
    }
    h.login(ALICE, PW)
        .await
        .expect(StatusCode::TOO_MANY_REQUESTS);
}

fn ip_throttling_config(preset: Preset, trusted_proxies: usize) -> AuthConfig {
    let mut config = preset.config();
    config.max_login_failures = 3;
    config.max_login_failures_per_ip = 5;
    config.trusted_proxies = trusted_proxies;
    config
}

/// Spreads 5 failures (the per-IP limit) over accounts that each stay under their own limit.
async fn fail_from(h: &Harness, forwarded_for: &str) {
    for i in 0..5 {
        h.login_with(
            &format!("user{i}@example.com"),
            WRONG,
            None,
            &[("x-forwarded-for", forwarded_for)],
        )
        .await
        .expect(StatusCode::UNAUTHORIZED);
    }
}

/// With `trusted_proxies = 0` (both presets' default) the TCP peer is the client:
/// after the per-IP limit, every login from it is 429, whatever `X-Forwarded-For` claims.
async fn ip_throttling_ignores_forwarded_for_by_default(preset: Preset) {
    let h = Harness::start(ip_throttling_config(preset, 0)).await;
    h.register(ALICE, PW).await.expect(StatusCode::OK);
    fail_from(&h, "198.51.100.7").await;
    for forwarded in [None, Some("198.51.100.7"), Some("203.0.113.9")] {
        let headers: Vec<(&str, &str)> = forwarded
            .map(|f| ("x-forwarded-for", f))
            .into_iter()
            .collect();
        let res = h.login_with(ALICE, PW, None, &headers).await;
        res.expect(StatusCode::TOO_MANY_REQUESTS);
        assert!(res.header("retry-after").is_some());
    }
    h.clock.advance(15 * MINUTE);
    h.login(ALICE, PW).await.expect(StatusCode::OK);
}

/// With `trusted_proxies = 1` the last `X-Forwarded-For` hop is the client: its
/// failures throttle it alone, not other forwarded clients nor the proxy itself.
async fn ip_throttling_honours_forwarded_for_when_trusted(preset: Preset) {
    let h = Harness::start(ip_throttling_config(preset, 1)).await;
    h.register(ALICE, PW).await.expect(StatusCode::OK);
    fail_from(&h, "203.0.113.9, 198.51.100.7").await;

    let throttled = h
        .login_with(ALICE, PW, None, &[("x-forwarded-for", "198.51.100.7")])
        .await;
    throttled.expect(StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(throttled.header("retry-after"), Some("900"));
    h.login_with(
        ALICE,
        PW,
        None,
        &[("x-forwarded-for", "10.0.0.1, 198.51.100.7")],
    )
    .await
    .expect(StatusCode::TOO_MANY_REQUESTS);
    // Another client behind the same proxy, and the proxy's own address, are unaffected.
    h.login_with(
        ALICE,
        PW,
        None,
        &[("x-forwarded-for", "198.51.100.7, 203.0.113.9")],
    )
    .await
    .expect(StatusCode::OK);
    h.login(ALICE, PW).await.expect(StatusCode::OK);
}

/// Two `Auth` instances over one store (as several processes over one PostgreSQL) share
/// the failure counters: failures on either count, a success on either resets.
async fn throttling_counters_live_in_the_store(preset: Preset) {
    let mut config = preset.config();
    config.max_login_failures = 3;
    let store = MemoryStore::new();
    let clock = ManualClock::new(START_MS);
    let one = Auth::builder(store.clone(), config.clone())
        .clock(clock.clone())
        .build()
        .expect("valid config");
    let two = Auth::builder(store.clone(), config)
        .clock(clock.clone())
        .build()
        .expect("valid config");
    let (a, b) = (Server::start(&one).await, Server::start(&two).await);
    a.register(ALICE, PW).await.expect(StatusCode::OK);

    a.login(ALICE, WRONG).await.expect(StatusCode::UNAUTHORIZED);
    b.login(ALICE, WRONG).await.expect(StatusCode::UNAUTHORIZED);
    a.login(ALICE, WRONG).await.expect(StatusCode::UNAUTHORIZED);
    b.login(ALICE, PW)
        .await
        .expect(StatusCode::TOO_MANY_REQUESTS);
    a.login(ALICE, PW)
        .await
        .expect(StatusCode::TOO_MANY_REQUESTS);

    clock.advance(15 * MINUTE);
    b.login(ALICE, PW).await.expect(StatusCode::OK);

    a.login(ALICE, WRONG).await.expect(StatusCode::UNAUTHORIZED);
    a.login(ALICE, WRONG).await.expect(StatusCode::UNAUTHORIZED);
    b.login(ALICE, PW).await.expect(StatusCode::OK);
    for _ in 0..3 {
        a.login(ALICE, WRONG).await.expect(StatusCode::UNAUTHORIZED);
    }
    b.login(ALICE, PW)
        .await
        .expect(StatusCode::TOO_MANY_REQUESTS);
}

/// The same across two independent connection pools on one SQLite file, as two processes
/// sharing a database would be; concurrent guesses through both stay within the limit.
#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_counters_are_shared_through_one_database() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("auth.db").display());
    let mut config = Preset::Hardened.config();
    config.max_login_failures = 3;
    let clock = ManualClock::new(START_MS);
    let hasher = CountingHasher::default();
    let mut servers = Vec::new();
    for _ in 0..2 {
        let store = tower_auth::SqliteStore::connect(&url).await.unwrap();
        let auth = Auth::builder(store, config.clone())
            .clock(clock.clone())
            .password_hasher(hasher.clone())
            .build()
            .expect("valid config");
        servers.push(Server::start(&auth).await);
    }
    let (a, b) = (&servers[0], &servers[1]);
    a.register(ALICE, PW).await.expect(StatusCode::OK);

    let mut guesses = tokio::task::JoinSet::new();
    for i in 0..12 {
        let server = &servers[i % 2];
        let (http, url) = (server.http.clone(), format!("{}/sessions", server.base));
        guesses.spawn(async move {
            let password = format!("guess number {i} of many");
            let form = [("email", ALICE), ("password", password.as_str())];
            http.post(url).form(&form).send().await.unwrap().status()
        });
    }
    let statuses = guesses.join_all().await;
    let failed = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    assert_eq!(failed, 3, "{statuses:?}");
    assert_eq!(hasher.verifies(), 3);
    a.login(ALICE, PW)
        .await
        .expect(StatusCode::TOO_MANY_REQUESTS);
    b.login(ALICE, PW)
        .await
        .expect(StatusCode::TOO_MANY_REQUESTS);
    clock.advance(15 * MINUTE);
    b.login(ALICE, PW).await.expect(StatusCode::OK);
    a.login(ALICE, WRONG).await.expect(StatusCode::UNAUTHORIZED);
}

/// Sends every `(email, password)` login at once and returns their statuses (in the order
/// they finished).
async fn log_in_at_once(
    h: &Harness,
    attempts: impl Iterator<Item = (String, String)>,
) -> Vec<StatusCode> {
    let mut logins = tokio::task::JoinSet::new();
    for (email, password) in attempts {
        let (http, url) = (h.http.clone(), format!("{}/sessions", h.base));
        logins.spawn(async move {
            let form = [("email", email.as_str()), ("password", password.as_str())];
            http.post(url).form(&form).send().await.unwrap().status()
        });
    }
    let mut statuses = Vec::new();
    while let Some(status) = logins.join_next().await {
        statuses.push(status.unwrap());
    }
    statuses
}

/// Many concurrent guesses for one account: at most `max_login_failures` of them are
/// verified, the rest get 429 (the limit is not a check-then-act race).
async fn concurrent_guesses_cannot_exceed_the_account_limit(preset: Preset) {
    let mut config = preset.config();
    config.max_login_failures = 3;
    let hasher = CountingHasher::default();
    let h = Harness::build(
        config,
        Arc::new(MemoryStore::new()),
        Some(hasher.clone()),
        true,
    )
    .await;
    h.register(ALICE, PW).await.expect(StatusCode::OK);

    let statuses = log_in_at_once(
        &h,
        (0..24).map(|i| (ALICE.to_owned(), format!("guess number {i} of many"))),
    )
    .await;
    let failed = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    let throttled = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!(failed + throttled, 24, "{statuses:?}");
    assert_eq!(failed, 3, "exactly the limit was tried: {statuses:?}");
    assert_eq!(hasher.verifies(), 3);
}

/// Many concurrent guesses from one client, each for another account (all under their own
/// limit): at most `max_login_failures_per_ip` of them are verified, the rest get 429.
async fn concurrent_guesses_cannot_exceed_the_client_limit(preset: Preset) {
    let hasher = CountingHasher::default();
    let h = Harness::build(
        ip_throttling_config(preset, 0),
        Arc::new(MemoryStore::new()),
        Some(hasher.clone()),
        true,
    )
    .await;
    let statuses = log_in_at_once(
        &h,
        (0..24).map(|i| (format!("user{i}@example.com"), WRONG.to_owned())),
    )
    .await;
    let count = |wanted: StatusCode| statuses.iter().filter(|s| **s == wanted).count();
    assert_eq!(
        (
            count(StatusCode::UNAUTHORIZED),
            count(StatusCode::TOO_MANY_REQUESTS)
        ),
        (5, 19),
        "exactly the client's limit was tried: {statuses:?}"
    );
    assert_eq!(hasher.verifies(), 5);
}

/// The per-client counter counts failures only: successful logins in between do not use up
/// the client's allowance.
async fn successful_logins_do_not_count_against_the_client(preset: Preset) {
    let h = Harness::start(ip_throttling_config(preset, 0)).await;
    h.register(ALICE, PW).await.expect(StatusCode::OK);
    for i in 0..4 {
        h.login(&format!("user{i}@example.com"), WRONG)
            .await
            .expect(StatusCode::UNAUTHORIZED);
    }
    for _ in 0..6 {
        h.login(ALICE, PW).await.expect(StatusCode::OK);
    }
    h.login("user4@example.com", WRONG)
        .await
        .expect(StatusCode::UNAUTHORIZED);
    h.login(ALICE, PW)
        .await
        .expect(StatusCode::TOO_MANY_REQUESTS);
}

// ----- both presets: CSRF -----------------------------------------------------------------

both_presets!(cross_site_writes_are_refused, allowed_origins_may_write);

/// A state-changing request: method, path, form fields, cookie.
type Write<'a> = (Method, &'a str, Vec<(&'a str, &'a str)>, Option<&'a str>);

/// State-changing requests with `Sec-Fetch-Site: cross-site`, or an `Origin` that is not
/// the host, are 403 and change nothing; same-origin ones and ones with neither header
/// (curl, scripts) are served; reads are never refused.
async fn cross_site_writes_are_refused(preset: Preset) {
    let h = Harness::start(preset.config()).await;
    h.register(ALICE, PW).await.expect(StatusCode::OK);
    let s = h.session(ALICE, PW).await;
    let token = h.reset_token(ALICE).await;
    let foreign: [&[(&str, &str)]; 4] = [
        &[("sec-fetch-site", "cross-site")],
        &[("origin", "http://evil.example")],
        &[("origin", "null")],
        // The host's name on another port is another origin.
        &[("origin", "http://127.0.0.1:1")],
    ];
    for headers in foreign {
        let writes: [Write<'_>; 5] = [
            (
                Method::POST,
                "/users",
                vec![("email", BOB), ("password", PW)],
                None,
            ),
            (
                Method::POST,
                "/sessions",
                vec![("email", ALICE), ("password", PW)],
                None,
            ),
            (Method::DELETE, "/sessions", vec![], Some(s.cookie.as_str())),
            (
                Method::POST,
                "/reset_password",
                vec![("email", ALICE)],
                None,
            ),
            (
                Method::PUT,
                "/reset_password",
                vec![
                    ("email", ALICE),
                    ("reset_token", token.as_str()),
                    ("new_password", PW2),
                ],
                None,
            ),
        ];
        for (method, path, form, cookie) in writes {
            let res = h.send(method.clone(), path, &form, cookie, headers).await;
            res.expect(StatusCode::FORBIDDEN);
            assert_eq!(
                res.message(),
                "cross-site request refused",
                "{method} {path}"
            );
            assert!(res.set_cookie(&h.cookie_name).is_none());
        }
        // Reads are not state-changing: served.
        h.send(Method::GET, "/profile", &[], Some(&s.cookie), headers)
            .await
            .expect(StatusCode::OK);
    }
    // Nothing happened: no account for Bob, Alice's session and password and reset token
    // are as they were, and no other token was issued.
    h.login(BOB, PW).await.expect(StatusCode::UNAUTHORIZED);
    h.profile(&s).await.expect(StatusCode::OK);
    assert_eq!(
        h.outbox.sent().len(),
        usize::from(!h.delivers_in_response())
    );
    h.reset(ALICE, &token, PW2).await.expect(StatusCode::OK);

    // Same-origin, user-initiated and header-less writes go through.
    let own_origin = format!("http://{}", h.host);
    for headers in [
        vec![("sec-fetch-site", "same-origin")],
        vec![("sec-fetch-site", "none")],
        vec![("origin", own_origin.as_str())],
        vec![
            ("sec-fetch-site", "same-origin"),
            ("origin", own_origin.as_str()),
        ],
        vec![],
    ] {
        h.login_with(ALICE, PW2, None, &headers)
            .await
            .expect(StatusCode::OK);
    }
    h.send(
        Method::POST,
        "/users",
        &[("email", BOB), ("password", PW)],
        None,
        &[("origin", &own_origin)],
    )
    .await
    .expect(StatusCode::OK);
}

/// `allowed_origins`: empty (both presets) refuses a foreign origin; listing it lets that
/// origin (and only it) write.
async fn allowed_origins_may_write(preset: Preset) {
    let app = "https://app.example";
    let h = Harness::start(preset.config()).await;
    h.register(ALICE, PW).await.expect(StatusCode::OK);
    h.login_with(ALICE, PW, None, &[("origin", app)])
        .await
        .expect(StatusCode::FORBIDDEN);

    let mut config = preset.config();
    config.allowed_origins = vec![app.to_owned()];
    let h = Harness::start(config).await;
    h.register(ALICE, PW).await.expect(StatusCode::OK);
    h.login_with(ALICE, PW, None, &[("origin", app)])
        .await
        .expect(StatusCode::OK);
    h.login_with(ALICE, PW, None, &[("origin", "https://other.example")])
        .await
        .expect(StatusCode::FORBIDDEN);
    h.login_with(
        ALICE,
        PW,
        None,
        &[("origin", &format!("http://{}", h.host))],
    )
    .await
    .expect(StatusCode::OK);
}

// ----- both presets: caching --------------------------------------------------------------

both_presets!(responses_with_sessions_or_tokens_are_not_cached);

/// `Cache-Control: no-store` on login, reset token, logout and profile responses, failures
/// included.
async fn responses_with_sessions_or_tokens_are_not_cached(preset: Preset) {
    let h = Harness::start(preset.config()).await;
    let mut responses = vec![h.register(ALICE, PW).await];
    responses.push(h.login(ALICE, PW).await);
    responses.push(h.login(ALICE, WRONG).await);
    let s = h.session(ALICE, PW).await;
    responses.push(h.profile(&s).await);
    responses.push(h.request_reset(ALICE).await);
    responses.push(h.request_reset(GHOST).await);
    let token = h.reset_token(ALICE).await;
    responses.push(h.reset(ALICE, &token, PW2).await);
    responses.push(h.logout(&s).await);
    responses.push(h.profile(&s).await);
    for res in responses {
        assert_eq!(res.header("cache-control"), Some("no-store"), "{res:?}");
    }
}

// ----- both presets: auth events ----------------------------------------------------------

use logs::{Capture, Captured};

// Current-thread runtimes: the server's tasks run on the test's thread, so everything
// they trace is captured (and nothing from tests running on other threads).
#[tokio::test]
async fn auth_events_are_traced_without_secrets_hardened() {
    auth_events_are_traced_without_secrets(Preset::Hardened).await;
}

#[tokio::test]
async fn auth_events_are_traced_without_secrets_spec() {
    auth_events_are_traced_without_secrets(Preset::Spec).await;
}

/// register, login ok / failed / throttled, logout, reset requested / used are events on
/// target `tower_auth::event` with field `event` and the user id; nothing any subscriber
/// sees contains a password, a bcrypt hash, a token or a token's hash.
async fn auth_events_are_traced_without_secrets(preset: Preset) {
    let capture = Capture::default();
    let _capturing = capture.start();

    let mut config = preset.config();
    config.max_login_failures = 2;
    let h = Harness::start(config).await;
    h.register(ALICE, PW).await.expect(StatusCode::OK);
    let id = h
        .store
        .find_user_by(UserLookup::Email(ALICE))
        .await
        .unwrap()
        .unwrap()
        .user
        .id
        .0
        .to_string();
    let s1 = h.session(ALICE, PW).await;
    h.login(ALICE, WRONG).await.expect(StatusCode::UNAUTHORIZED);
    h.login(ALICE, WRONG).await.expect(StatusCode::UNAUTHORIZED);
    h.login(ALICE, WRONG)
        .await
        .expect(StatusCode::TOO_MANY_REQUESTS);
    h.login(GHOST, WRONG).await.expect(StatusCode::UNAUTHORIZED);
    h.clock.advance(15 * MINUTE);
    let s2 = h.session(ALICE, PW).await;
    h.logout(&s2).await.expect(StatusCode::FOUND);
    let token = h.reset_token(ALICE).await;
    h.reset(ALICE, &token, PW2).await.expect(StatusCode::OK);
    let hashed = h
        .store
        .find_user_by(UserLookup::Email(ALICE))
        .await
        .unwrap()
        .unwrap()
        .password_hash;

    let captured = capture.0.lock().unwrap().clone();
    let events: Vec<&Captured> = captured
        .iter()
        .filter(|c| c.target == "tower_auth::event")
        .collect();
    let with = |name: &str, user: Option<&str>| {
        events.iter().any(|e| {
            e.fields.get("event").map(String::as_str) == Some(name)
                && e.fields.get("user_id").map(String::as_str) == user
        })
    };
    for name in [
        "registered",
        "logged_in",
        "login_failed",
        "login_throttled",
        "logged_out",
        "reset_requested",
        "password_reset",
    ] {
        assert!(
            with(name, Some(&id)),
            "event {name} with user_id {id} in {events:#?}"
        );
    }
    assert!(with("login_failed", None), "unknown email: no user id");
    assert_eq!(
        events
            .iter()
            .filter(|e| e.fields.get("event").map(String::as_str) == Some("logged_in"))
            .count(),
        2
    );

    let digest = |t: &str| hex(&TokenHash::of(t).0);
    let secrets = [
        PW.to_owned(),
        PW2.to_owned(),
        WRONG.to_owned(),
        "$2b$".to_owned(),
        hashed.clone(),
        s1.token.clone(),
        s2.token.clone(),
        token.clone(),
        digest(&s1.token),
        digest(&s1.token).to_lowercase(),
        digest(&token).to_lowercase(),
    ];
    assert!(!captured.is_empty());
    for c in &captured {
        let text = c.text();
        for secret in &secrets {
            assert!(!text.contains(secret.as_str()), "secret leaked in {text}");
        }
    }
}

// ----- session token and cookie -----------------------------------------------------------

both_presets!(session_token_and_cookie_shape, sessions_per_user);

/// Hardened: 43-char base64url tokens (256 bits) in `__Host-session_id=..; HttpOnly;
/// SameSite=Lax; Secure; Path=/`. Spec: UUID v4 in `session_id=..; HttpOnly; SameSite=Lax;
/// Path=/`. Every login gets a new token.
async fn session_token_and_cookie_shape(preset: Preset) {
    let h = Harness::start(preset.config()).await;
    h.register(ALICE, PW).await.expect(StatusCode::OK);
    let s = h.session(ALICE, PW).await;
    match preset {
        Preset::Hardened => {
            assert_eq!(s.token.len(), 43, "{}", s.token);
            assert!(
                s.token
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            );
            let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(&s.token)
                .unwrap();
            assert_eq!(bytes.len(), 32);
            assert_eq!(
                s.set_cookie,
                format!(
                    "__Host-session_id={}; HttpOnly; SameSite=Lax; Secure; Path=/",
                    s.token
                )
            );
        }
        Preset::Spec => {
            let uuid = uuid::Uuid::parse_str(&s.token).unwrap();
            assert_eq!(uuid.get_version_num(), 4);
            assert_eq!(uuid.hyphenated().to_string(), s.token);
            assert_eq!(
                s.set_cookie,
                format!("session_id={}; HttpOnly; SameSite=Lax; Path=/", s.token)
            );
        }
    }
    let again = h.session(ALICE, PW).await;
    assert_ne!(again.token, s.token);
}

/// Hardened (`single_session = false`): two logins give two live sessions and logging out
/// of one keeps the other. Spec (`single_session = true`): a new login ends the old session.
async fn sessions_per_user(preset: Preset) {
    let h = Harness::start(preset.config()).await;
    h.register(ALICE, PW).await.expect(StatusCode::OK);
    let first = h.session(ALICE, PW).await;
    let second = h.session(ALICE, PW).await;
    assert_ne!(first.token, second.token);
    h.profile(&second).await.expect(StatusCode::OK);
    match preset {
        Preset::Hardened => {
            h.profile(&first).await.expect(StatusCode::OK);
            h.logout(&first).await.expect(StatusCode::FOUND);
            h.profile(&second).await.expect(StatusCode::OK);
        }
        Preset::Spec => {
            h.profile(&first).await.expect(h.no_session);
            assert!(!h.stored_session_exists(&first).await);
        }
    }
}

both_presets!(logging_in_with_a_session_cookie_issues_a_new_token);

/// Hardened (`end_presented_session_on_login = true`): a login presenting a session cookie
/// ends that session (fixation) and issues a different token. With `false` (spec's value,
/// tested here with several sessions allowed so that only this field decides), the
/// presented session survives, and the token is new all the same.
async fn logging_in_with_a_session_cookie_issues_a_new_token(preset: Preset) {
    let mut config = preset.config();
    let ends = config.end_presented_session_on_login;
    assert_eq!(ends, preset == Preset::Hardened);
    config.single_session = false;
    let h = Harness::start(config).await;
    h.register(ALICE, PW).await.expect(StatusCode::OK);
    h.register(BOB, PW).await.expect(StatusCode::OK);

    let old = h.session(ALICE, PW).await;
    let new = h.session_presenting(ALICE, PW, Some(&old)).await;
    assert_ne!(new.token, old.token);
    h.profile(&new).await.expect(StatusCode::OK);
    let expected = if ends { h.no_session } else { StatusCode::OK };
    h.profile(&old).await.expect(expected);
    assert_eq!(h.stored_session_exists(&old).await, !ends);

    // A planted cookie (someone else's session, or a made-up value) never becomes the
    // victim's session: the login always answers with a fresh token.
    let planted = h.session(BOB, PW).await;
    let victim = h.session_presenting(ALICE, PW, Some(&planted)).await;
    assert_ne!(victim.token, planted.token);
    assert_eq!(h.profile(&victim).await.json()["email"], ALICE);
    let made_up = Sess {
        token: "attacker-chosen".into(),
        cookie: format!("{}=attacker-chosen", h.cookie_name),
        set_cookie: String::new(),
    };
    let victim = h.session_presenting(ALICE, PW, Some(&made_up)).await;
    assert_ne!(victim.token, made_up.token);
    h.profile(&made_up).await.expect(h.no_session);
}

/// The spec preset itself (`single_session` and `end_presented_session_on_login = false`):
/// presenting the old cookie, the new login replaces it with a new token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spec_login_presenting_a_cookie_replaces_the_session() {
    let h = Harness::start(Preset::Spec.config()).await;
    h.register(ALICE, PW).await.expect(StatusCode::OK);
    let old = h.session(ALICE, PW).await;
    let new = h.session_presenting(ALICE, PW, Some(&old)).await;
    assert_ne!(new.token, old.token);
    h.profile(&old).await.expect(h.no_session);
    h.profile(&new).await.expect(StatusCode::OK);
}

// ----- password policy --------------------------------------------------------------------

const COMMON_LONG: &str = "1q2w3e4r5t6y7u8i9o0p";

/// Hardened: at least 15 characters (counted as characters), no composition rules, not on
/// the common-password list; each refusal is a 400 with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hardened_password_policy() {
    let h = Harness::start(Preset::Hardened.config()).await;
    let emoji14 = "\u{1F600}".repeat(14);
    // Fifteen different emoji: 15 characters in 60 bytes.
    let emoji15: String = (0..15u32)
        .map(|i| char::from_u32(0x1F600 + i * 7).expect("emoji"))
        .collect();
    let cases = [
        (
            "fourteen chars",
            Some("password must be at least 15 characters"),
        ),
        (COMMON_LONG, Some("password is too common; choose another")),
        (
            "1Q2W3E4R5T6Y7U8I9O0P",
            Some("password is too common; choose another"),
        ),
        (
            emoji14.as_str(),
            Some("password must be at least 15 characters"),
        ),
        // No digits, no capitals, no symbols: fine.
        ("zqxjvbnmwptkrsl", None),
        // 15 characters in 60 bytes: fine.
        (emoji15.as_str(), None),
    ];
    for (i, (password, refusal)) in cases.into_iter().enumerate() {
        let email = format!("user{i}@example.com");
        let res = h.register(&email, password).await;
        match refusal {
            Some(reason) => {
                res.expect(StatusCode::BAD_REQUEST);
                assert_eq!(res.json(), json!({ "message": reason }), "{password}");
            }
            None => {
                res.expect(StatusCode::OK);
                h.login(&email, password).await.expect(StatusCode::OK);
            }
        }
    }

    // The same policy guards a reset, and a refused password leaves the token usable.
    h.register(ALICE, PW).await.expect(StatusCode::OK);
    let token = h.reset_token(ALICE).await;
    let res = h.reset(ALICE, &token, "short one").await;
    res.expect(StatusCode::BAD_REQUEST);
    assert_eq!(res.message(), "password must be at least 15 characters");
    let res = h.reset(ALICE, &token, COMMON_LONG).await;
    res.expect(StatusCode::BAD_REQUEST);
    assert_eq!(res.message(), "password is too common; choose another");
    h.reset(ALICE, &token, PW2).await.expect(StatusCode::OK);
}

/// The blocklist on its own (`reject_common` true and false), with `min_chars` lowered so
/// that short common passwords reach it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn common_password_blocklist_each_value() {
    for reject_common in [true, false] {
        let mut config = Preset::Hardened.config();
        config.password_policy.min_chars = 8;
        config.password_policy.reject_common = reject_common;
        config.password_policy.min_strength = None;
        let h = Harness::start(config).await;
        for (i, password) in ["password1", "Password1", "iloveyou", "qwertyuiop"]
            .into_iter()
            .enumerate()
        {
            let res = h.register(&format!("u{i}@example.com"), password).await;
            if reject_common {
                res.expect(StatusCode::BAD_REQUEST);
                assert_eq!(res.message(), "password is too common; choose another");
            } else {
                res.expect(StatusCode::OK);
            }
        }
        h.register(ALICE, "short")
            .await
            .expect(StatusCode::BAD_REQUEST);
        h.register(BOB, "zqxjvbnm").await.expect(StatusCode::OK);
    }
}

/// Hardened: long passwords that an attacker's guessing rules find early (repeated words,
/// sequences, keyboard walks, the account's email, the service's name) are refused with the
/// estimator's reason; with `min_strength = None` they pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn predictable_passwords_are_refused_with_the_reason() {
    for min_strength in [Some(3), None] {
        let mut config = Preset::Hardened.config();
        config.password_policy.min_strength = min_strength;
        config.password_policy.context_words = vec!["acmewidgets".into()];
        let h = Harness::start(config).await;
        for (i, (email, password, reason)) in [
            ("u0@example.com", "passwordpasswordpassword", "Repeats like"),
            ("u1@example.com", "abcdefghijklmnopqrst", "Sequences like"),
            ("u2@example.com", "qwertyuiopasdfghjkl", ""),
            (
                "margaret.hamilton1936@example.com",
                "margaret.hamilton1936!",
                "",
            ),
            ("u4@example.com", "acmewidgetsacmewidgets", ""),
        ]
        .into_iter()
        .enumerate()
        {
            let res = h.register(email, password).await;
            if min_strength.is_some() {
                res.expect(StatusCode::BAD_REQUEST);
                let message = res.message();
                assert!(
                    message.starts_with("password is too easy to guess")
                        && message.contains(reason),
                    "case {i}: {message}"
                );
            } else {
                res.expect(StatusCode::OK);
            }
        }
        // A passphrase of unrelated words is fine, and the check guards resets too.
        h.register(ALICE, PW).await.expect(StatusCode::OK);
        let token = h.reset_token(ALICE).await;
        let res = h.reset(ALICE, &token, "alicealicealicealice").await;
        if min_strength.is_some() {
            res.expect(StatusCode::BAD_REQUEST);
            assert!(res.message().starts_with("password is too easy to guess"));
        } else {
            res.expect(StatusCode::OK);
        }
    }
}

/// Spec: any non-empty password (up to 72 bytes, no NUL), common or short.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spec_password_policy() {
    let h = Harness::start(Preset::Spec.config()).await;
    for (i, password) in ["a", "password", COMMON_LONG].into_iter().enumerate() {
        let email = format!("user{i}@example.com");
        h.register(&email, password).await.expect(StatusCode::OK);
        h.login(&email, password).await.expect(StatusCode::OK);
    }
    let res = h.register(ALICE, "").await;
    res.expect(StatusCode::BAD_REQUEST);
    assert_eq!(res.message(), "empty field: password");
}

// ----- password reset delivery ------------------------------------------------------------

/// Hardened: `POST /reset_password` is 202 with one body for known, unknown and malformed
/// emails; the token is never in the response and is mailed only to the real account.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hardened_reset_request_is_202_and_mails_the_account() {
    let h = Harness::start(Preset::Hardened.config()).await;
    h.register(ALICE, PW).await.expect(StatusCode::OK);

    let known = h.request_reset(ALICE).await;
    let unknown = h.request_reset(GHOST).await;
    let malformed = h.request_reset("not an email").await;
    for res in [&known, &unknown, &malformed] {
        res.expect(StatusCode::ACCEPTED);
        assert_eq!(res.body, known.body);
        assert_eq!(res.headers_but_date(), known.headers_but_date());
    }
    assert!(known.json().get("reset_token").is_none());

    let sent = h.outbox.sent();
    assert_eq!(sent.len(), 1, "only the real account gets a token");
    let (to, token) = &sent[0];
    assert_eq!(to, ALICE);
    assert!(!known.body.contains(token.as_str()));
    for value in known.headers.values() {
        assert!(!value.to_str().unwrap().contains(token.as_str()));
    }
    h.reset(ALICE, token, PW2).await.expect(StatusCode::OK);
    h.login(ALICE, PW2).await.expect(StatusCode::OK);
}

/// Spec (`ResetDelivery::InResponse`): 200 with exactly `{"email", "reset_token"}`; an
/// unknown email is 403.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spec_reset_request_returns_the_token() {
    let h = Harness::start(Preset::Spec.config()).await;
    h.register(ALICE, PW).await.expect(StatusCode::OK);
    let res = h.request_reset(ALICE).await;
    res.expect(StatusCode::OK);
    let token = res.json()["reset_token"].as_str().unwrap().to_owned();
    assert_eq!(res.json(), json!({"email": ALICE, "reset_token": token}));
    h.request_reset(GHOST).await.expect(StatusCode::FORBIDDEN);
    h.reset(ALICE, &token, PW2).await.expect(StatusCode::OK);
}

/// Hardened (`max_reset_requests_per_hour = Some(3)`): every request is 202, but at most 3
/// tokens per account are sent per hour; the next hour sends again; other accounts are
/// unaffected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_requests_are_limited_per_account() {
    let h = Harness::start(Preset::Hardened.config()).await;
    assert_eq!(h.auth.config().max_reset_requests_per_hour, Some(3));
    h.register(ALICE, PW).await.expect(StatusCode::OK);
    h.register(BOB, PW).await.expect(StatusCode::OK);

    let first = h.request_reset(ALICE).await;
    for _ in 0..5 {
        let res = h.request_reset(ALICE).await;
        res.expect(StatusCode::ACCEPTED);
        assert_eq!(res.body, first.body);
    }
    assert_eq!(h.outbox.sent_to(ALICE).len(), 3);
    h.request_reset(BOB).await.expect(StatusCode::ACCEPTED);
    assert_eq!(h.outbox.sent_to(BOB).len(), 1);

    h.clock.advance(HOUR - MS);
    h.request_reset(ALICE).await.expect(StatusCode::ACCEPTED);
    assert_eq!(h.outbox.sent_to(ALICE).len(), 3);
    h.clock.advance(MS);
    h.request_reset(ALICE).await.expect(StatusCode::ACCEPTED);
    let sent = h.outbox.sent_to(ALICE);
    assert_eq!(sent.len(), 4);
    h.reset(ALICE, sent.last().unwrap(), PW2)
        .await
        .expect(StatusCode::OK);
}

/// `max_reset_requests_per_hour = None` (spec's value) with a sender: every request sends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_requests_are_unlimited_with_none() {
    let mut config = Preset::Hardened.config();
    config.max_reset_requests_per_hour = None;
    let h = Harness::start(config).await;
    h.register(ALICE, PW).await.expect(StatusCode::OK);
    for _ in 0..6 {
        h.request_reset(ALICE).await.expect(StatusCode::ACCEPTED);
    }
    assert_eq!(h.outbox.sent_to(ALICE).len(), 6);
}

both_presets!(completed_reset_and_sessions);

/// Hardened (`end_sessions_on_password_reset = true`): a completed reset ends every session
/// of the user. Spec (`false`): a session opened before the reset still works, and logs out.
async fn completed_reset_and_sessions(preset: Preset) {
    let h = Harness::start(preset.config()).await;
    h.register(ALICE, PW).await.expect(StatusCode::OK);
    h.register(BOB, PW).await.expect(StatusCode::OK);
    let bobs = h.session(BOB, PW).await;
    let first = h.session(ALICE, PW).await;
    let second = h.session(ALICE, PW).await;
    let token = h.reset_token(ALICE).await;
    h.reset(ALICE, &token, PW2).await.expect(StatusCode::OK);
    match preset {
        Preset::Hardened => {
            for s in [&first, &second] {
                h.profile(s).await.expect(h.no_session);
                assert!(!h.stored_session_exists(s).await);
            }
        }
        Preset::Spec => {
            h.profile(&second).await.expect(StatusCode::OK);
            h.logout(&second).await.expect(StatusCode::FOUND);
        }
    }
    h.profile(&bobs).await.expect(StatusCode::OK);
    let fresh = h.session(ALICE, PW2).await;
    h.profile(&fresh).await.expect(StatusCode::OK);
}
