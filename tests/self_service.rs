//! Account self-service and session management over real HTTP (DESIGN.md 6.4): the list
//! of my sessions, ending them, sudo mode, password change, account deletion and
//! remember-me, on the in-memory store, SQLite and PostgreSQL.

#[path = "support/http.rs"]
mod http_support;
#[path = "support/logs.rs"]
mod logs;
#[path = "support/pg.rs"]
mod pg;

use std::sync::Arc;
use std::time::Duration;

use http_support::{Answer, TestServer, hardened_config, serve_auth};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tower_auth::clock::ManualClock;
use tower_auth::password::HashAlgorithm;
use tower_auth::store::UserLookup;
use tower_auth::{Auth, AuthConfig, MemoryStore, Store};

const ALICE: &str = "alice@example.com";
const BOB: &str = "bob@example.com";
const PW: &str = "correct horse battery staple";
const NEW_PW: &str = "a brand new passphrase, long enough";
const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like \
                      Gecko) Chrome/131.0.0.0 Safari/537.36";
const MINUTE: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy)]
enum Backend {
    Memory,
    Sqlite,
    Postgres,
}

/// One `Auth` served over HTTP, on a fresh store of one backend, with a manual clock.
struct App {
    auth: Auth,
    store: Arc<dyn Store>,
    clock: ManualClock,
    server: TestServer,
    _dir: Option<tempfile::TempDir>,
    #[cfg(feature = "postgres")]
    _db: Option<pg::TestDatabase>,
}

/// A browser: the session cookie it holds (`name=value`) and its user agent.
#[derive(Debug, Clone)]
struct Device {
    cookie: String,
    user_agent: &'static str,
}

impl App {
    /// `None` when PostgreSQL is not available and not required (the test then skips).
    async fn start(backend: Backend, mut config: AuthConfig) -> Option<Self> {
        config.bcrypt_cost = 4;
        let mut dir = None;
        #[cfg(feature = "postgres")]
        let mut db = None;
        let store: Arc<dyn Store> = match backend {
            Backend::Memory => Arc::new(MemoryStore::new()),
            Backend::Sqlite => {
                let tmp = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}?mode=rwc", tmp.path().join("a.db").display());
                dir = Some(tmp);
                tower_auth::store::connect(&url, false)
                    .await
                    .expect("sqlite store")
            }
            Backend::Postgres => {
                #[cfg(feature = "postgres")]
                {
                    let test_db = pg::test_database().await?;
                    let store = tower_auth::store::connect(test_db.url(), false)
                        .await
                        .expect("postgres store");
                    db = Some(test_db);
                    store
                }
                #[cfg(not(feature = "postgres"))]
                return None;
            }
        };
        let clock = ManualClock::new(1_800_000_000_000);
        let auth = Auth::builder_shared(Arc::clone(&store), config)
            .clock(clock.clone())
            .build()
            .expect("valid config");
        let server = serve_auth(&auth).await;
        Some(Self {
            auth,
            store,
            clock,
            server,
            _dir: dir,
            #[cfg(feature = "postgres")]
            _db: db,
        })
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        form: &[(&str, &str)],
        device: Option<&Device>,
    ) -> Answer {
        let headers: Vec<(&str, &str)> = device.map_or_else(Vec::new, |device| {
            vec![
                ("Cookie", device.cookie.as_str()),
                ("User-Agent", device.user_agent),
            ]
        });
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

    /// Logs in from a browser with this user agent; the answer and, on success, the device.
    async fn try_log_in(
        &self,
        email: &str,
        password: &str,
        user_agent: &'static str,
        remember_me: bool,
    ) -> (Answer, Option<Device>) {
        let mut form = vec![("email", email), ("password", password)];
        if remember_me {
            form.push(("remember_me", "true"));
        }
        let stranger = Device {
            cookie: String::new(),
            user_agent,
        };
        let answer = self
            .send(Method::POST, "/sessions", &form, Some(&stranger))
            .await;
        let name = &self.auth.config().cookie.name;
        let device = answer
            .set_cookies
            .iter()
            .find_map(|c| c.split(';').next()?.strip_prefix(&format!("{name}=")))
            .filter(|value| !value.is_empty())
            .map(|value| Device {
                cookie: format!("{name}={value}"),
                user_agent,
            });
        (answer, device)
    }

    async fn log_in(&self, email: &str, user_agent: &'static str) -> Device {
        let (answer, device) = self.try_log_in(email, PW, user_agent, false).await;
        answer.expect(StatusCode::OK);
        device.expect("a session cookie")
    }

    /// Alice and Bob registered; Alice logged in on a laptop (Firefox) and a phone
    /// (Chrome), Bob on Firefox.
    async fn alice_on_two_devices_and_bob(&self) -> (Device, Device, Device) {
        self.register(ALICE).await;
        self.register(BOB).await;
        let laptop = self.log_in(ALICE, FIREFOX).await;
        let phone = self.log_in(ALICE, CHROME).await;
        let bobs = self.log_in(BOB, FIREFOX).await;
        (laptop, phone, bobs)
    }

    async fn profile(&self, device: &Device) -> StatusCode {
        self.send(Method::GET, "/profile", &[], Some(device))
            .await
            .status
    }

    async fn sessions(&self, device: &Device) -> Vec<Value> {
        let answer = self.send(Method::GET, "/sessions", &[], Some(device)).await;
        answer.expect(StatusCode::OK);
        answer.body["sessions"]
            .as_array()
            .expect("a sessions array")
            .clone()
    }

    /// The handle `GET /sessions` shows for the session `device` holds.
    async fn handle_of(&self, device: &Device) -> String {
        let sessions = self.sessions(device).await;
        let current: Vec<&Value> = sessions.iter().filter(|s| s["current"] == true).collect();
        assert_eq!(
            current.len(),
            1,
            "exactly one session is current: {sessions:?}"
        );
        current[0]["id"].as_str().expect("an id").to_owned()
    }

    async fn stored_hash(&self, email: &str) -> String {
        self.store
            .find_user_by(UserLookup::Email(email))
            .await
            .expect("lookup")
            .expect("user")
            .password_hash
    }
}

/// Runs each test body on the three backends: `name::memory`, `name::sqlite`,
/// `name::postgres` (skipped without PostgreSQL unless `AUTH_REQUIRE_POSTGRES=1`).
macro_rules! on_every_store {
    ($(#[$meta:meta])* async fn $name:ident($backend:ident: Backend) $body:block) => {
        mod $name {
            use super::*;

            $(#[$meta])*
            async fn run($backend: Backend) $body

            #[tokio::test]
            async fn memory() {
                run(Backend::Memory).await;
            }

            #[tokio::test]
            async fn sqlite() {
                run(Backend::Sqlite).await;
            }

            #[tokio::test]
            async fn postgres() {
                run(Backend::Postgres).await;
            }
        }
    };
}

fn is_rfc3339_utc(value: &Value) -> bool {
    value.as_str().is_some_and(|s| {
        s.len() >= 20
            && s.ends_with('Z')
            && s.as_bytes()[4] == b'-'
            && s.as_bytes()[10] == b'T'
            && s.starts_with("2027-01-15")
    })
}

on_every_store! {
    /// `GET /sessions` lists my live sessions only, with a public handle, times in RFC
    /// 3339, the user agent described and the client address, and marks this one.
    async fn my_sessions_are_listed_with_the_current_one_marked(backend: Backend) {
        let Some(app) = App::start(backend, hardened_config()).await else { return };
        app.register(ALICE).await;
        app.register(BOB).await;
        let laptop = app.log_in(ALICE, FIREFOX).await;
        app.clock.advance(MINUTE);
        let desktop = app.log_in(ALICE, CHROME).await;
        let bobs = app.log_in(BOB, FIREFOX).await;

        let answer = app.send(Method::GET, "/sessions", &[], Some(&laptop)).await;
        answer.expect(StatusCode::OK);
        let text = answer.body.to_string();
        for device in [&laptop, &desktop, &bobs] {
            let token = device.cookie.split_once('=').expect("name=value").1;
            assert!(!text.contains(token), "a token must never be listed: {text}");
        }
        let sessions = answer.body["sessions"].as_array().expect("sessions");
        assert_eq!(sessions.len(), 2, "my two sessions, not Bob's: {sessions:?}");
        // Most recently used first: the desktop logged in a minute later.
        assert_eq!(sessions[0]["user_agent"], "Chrome 131 on Windows 10");
        assert_eq!(sessions[0]["current"], false);
        assert_eq!(sessions[1]["user_agent"], "Firefox 133 on Linux");
        assert_eq!(sessions[1]["current"], true);
        for session in sessions {
            let id = session["id"].as_str().expect("id");
            assert!(
                id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
                "a public handle of 32 hex digits: {id}"
            );
            assert_eq!(session["client_ip"], "127.0.0.1");
            assert_eq!(session["remembered"], false);
            for field in ["created_at", "last_seen_at", "authenticated_at", "expires_at"] {
                assert!(is_rfc3339_utc(&session[field]), "{field}: {}", session[field]);
            }
        }
        assert_ne!(sessions[0]["id"], sessions[1]["id"]);
        assert_eq!(
            app.handle_of(&desktop).await,
            sessions[0]["id"].as_str().expect("id"),
            "the desktop sees the same handle for itself, marked current"
        );
    }
}

on_every_store! {
    /// `DELETE /sessions/{id}` ends one of mine (204), never someone else's (404), and
    /// ending this very session clears the cookie.
    async fn one_session_is_ended_by_its_handle(backend: Backend) {
        let Some(app) = App::start(backend, hardened_config()).await else { return };
        let (laptop, phone, bobs) = app.alice_on_two_devices_and_bob().await;
        let phone_id = app.handle_of(&phone).await;
        let bobs_id = app.handle_of(&bobs).await;

        let ended = app
            .send(Method::DELETE, &format!("/sessions/{phone_id}"), &[], Some(&laptop))
            .await;
        ended.expect(StatusCode::NO_CONTENT);
        assert!(ended.set_cookies.is_empty(), "another session: this cookie stays");
        assert_eq!(app.profile(&phone).await, StatusCode::UNAUTHORIZED);
        assert_eq!(app.profile(&laptop).await, StatusCode::OK);

        for not_mine in [bobs_id.as_str(), phone_id.as_str(), "0123456789abcdef0123456789abcdef", "x"] {
            let answer = app
                .send(Method::DELETE, &format!("/sessions/{not_mine}"), &[], Some(&laptop))
                .await;
            answer.expect(StatusCode::NOT_FOUND);
            assert_eq!(answer.body, json!({"message": "no such session"}));
        }
        assert_eq!(app.profile(&bobs).await, StatusCode::OK, "Bob's session is untouched");
        let malformed = app
            .send(Method::DELETE, "/sessions/%FF%FE", &[], Some(&laptop))
            .await;
        malformed.expect(StatusCode::BAD_REQUEST);
        assert_eq!(malformed.body, json!({"message": "malformed session id"}));
        let long = format!("/sessions/{}", "a".repeat(4000));
        app.send(Method::DELETE, &long, &[], Some(&laptop))
            .await
            .expect(StatusCode::NOT_FOUND);

        let own_id = app.handle_of(&laptop).await;
        let own = app
            .send(Method::DELETE, &format!("/sessions/{own_id}"), &[], Some(&laptop))
            .await;
        own.expect(StatusCode::NO_CONTENT);
        assert!(
            own.set_cookies.iter().any(|c| c.contains("Max-Age=0")),
            "ending this session clears its cookie: {:?}",
            own.set_cookies
        );
        assert_eq!(app.profile(&laptop).await, StatusCode::UNAUTHORIZED);
    }
}

on_every_store! {
    /// "Log out everywhere else" ends every other session of mine and keeps this one;
    /// "log out everywhere" needs a recent authentication and ends this one too.
    async fn other_sessions_and_all_sessions_end(backend: Backend) {
        let Some(app) = App::start(backend, hardened_config()).await else { return };
        app.register(ALICE).await;
        app.register(BOB).await;
        let laptop = app.log_in(ALICE, FIREFOX).await;
        let phone = app.log_in(ALICE, CHROME).await;
        let tablet = app.log_in(ALICE, CHROME).await;
        let bobs = app.log_in(BOB, FIREFOX).await;

        let answer = app.send(Method::DELETE, "/sessions/others", &[], Some(&laptop)).await;
        answer.expect(StatusCode::OK);
        assert_eq!(answer.body, json!({"ended": 2}));
        assert_eq!(app.profile(&phone).await, StatusCode::UNAUTHORIZED);
        assert_eq!(app.profile(&tablet).await, StatusCode::UNAUTHORIZED);
        assert_eq!(app.profile(&laptop).await, StatusCode::OK);
        assert_eq!(app.profile(&bobs).await, StatusCode::OK);

        // Sixteen minutes after the login, the session is no longer "recent".
        let phone = app.log_in(ALICE, CHROME).await;
        app.clock.advance(16 * MINUTE);
        let answer = app.send(Method::DELETE, "/sessions/all", &[], Some(&laptop)).await;
        answer.expect(StatusCode::FORBIDDEN);
        assert_eq!(answer.body, json!({"message": "reauthentication required"}));
        assert_eq!(app.profile(&phone).await, StatusCode::OK, "nothing ended");

        app.send(Method::POST, "/sessions/reauth", &[("password", "wrong password!")], Some(&laptop))
            .await
            .expect(StatusCode::UNAUTHORIZED);
        let answer = app
            .send(Method::POST, "/sessions/reauth", &[("password", PW)], Some(&laptop))
            .await;
        answer.expect(StatusCode::OK);
        assert_eq!(answer.body, json!({"message": "reauthenticated"}));

        let answer = app.send(Method::DELETE, "/sessions/all", &[], Some(&laptop)).await;
        answer.expect(StatusCode::OK);
        assert_eq!(answer.body, json!({"ended": 2}));
        assert!(answer.set_cookies.iter().any(|c| c.contains("Max-Age=0")));
        assert_eq!(app.profile(&laptop).await, StatusCode::UNAUTHORIZED);
        assert_eq!(app.profile(&phone).await, StatusCode::UNAUTHORIZED);
        assert_eq!(app.profile(&bobs).await, StatusCode::OK);
    }
}

on_every_store! {
    /// Sudo mode follows the injectable clock: fresh after login, stale after the window,
    /// fresh again for another window after `POST /sessions/reauth`.
    async fn sudo_expires_and_reauthentication_renews_it(backend: Backend) {
        let Some(app) = App::start(backend, hardened_config()).await else { return };
        app.register(ALICE).await;
        let laptop = app.log_in(ALICE, FIREFOX).await;
        let window = app.auth.config().sudo_window;
        assert_eq!(window, 15 * MINUTE);

        app.clock.advance(window - Duration::from_millis(1));
        assert!(app.auth.require_recent_authentication(&tower_auth::Client::new(None).session(Some(token(&laptop)))).await.is_ok());
        app.clock.advance(Duration::from_millis(1));
        assert!(matches!(
            app.auth.require_recent_authentication(&tower_auth::Client::new(None).session(Some(token(&laptop)))).await,
            Err(tower_auth::AuthError::ReauthenticationRequired)
        ));
        app.send(Method::DELETE, "/users/me", &[], Some(&laptop))
            .await
            .expect(StatusCode::FORBIDDEN);

        app.send(Method::POST, "/sessions/reauth", &[("password", PW)], Some(&laptop))
            .await
            .expect(StatusCode::OK);
        let sessions = app.sessions(&laptop).await;
        assert_ne!(
            sessions[0]["authenticated_at"], sessions[0]["created_at"],
            "reauthentication is recorded: {sessions:?}"
        );
        app.clock.advance(window - Duration::from_millis(1));
        assert!(app.auth.require_recent_authentication(&tower_auth::Client::new(None).session(Some(token(&laptop)))).await.is_ok());
        app.clock.advance(Duration::from_millis(1));
        assert!(app.auth.require_recent_authentication(&tower_auth::Client::new(None).session(Some(token(&laptop)))).await.is_err());
    }
}

on_every_store! {
    /// `PUT /password` needs the current password; on success every other session ends,
    /// this one stays, and only the new password logs in.
    async fn a_password_change_ends_the_other_devices_only(backend: Backend) {
        let Some(app) = App::start(backend, hardened_config()).await else { return };
        let (laptop, phone, bobs) = app.alice_on_two_devices_and_bob().await;

        let wrong = app
            .send(
                Method::PUT,
                "/password",
                &[("current_password", "not my password"), ("new_password", NEW_PW)],
                Some(&laptop),
            )
            .await;
        wrong.expect(StatusCode::UNAUTHORIZED);
        assert_eq!(wrong.body, json!({"message": "wrong password"}));
        app.send(
            Method::PUT,
            "/password",
            &[("current_password", PW), ("new_password", "short")],
            Some(&laptop),
        )
        .await
        .expect(StatusCode::BAD_REQUEST);
        app.send(Method::PUT, "/password", &[("new_password", NEW_PW)], Some(&laptop))
            .await
            .expect(StatusCode::BAD_REQUEST);
        assert_eq!(app.profile(&phone).await, StatusCode::OK, "failed changes end nothing");

        let answer = app
            .send(
                Method::PUT,
                "/password",
                &[("current_password", PW), ("new_password", NEW_PW)],
                Some(&laptop),
            )
            .await;
        answer.expect(StatusCode::OK);
        assert_eq!(answer.body, json!({"message": "Password updated"}));
        assert_eq!(app.profile(&laptop).await, StatusCode::OK, "this session stays");
        assert_eq!(app.profile(&phone).await, StatusCode::UNAUTHORIZED, "the other one ends");
        assert_eq!(app.profile(&bobs).await, StatusCode::OK, "other users are untouched");

        let hash = app.stored_hash(ALICE).await;
        assert!(hash.starts_with("$2b$04$"), "the configured parameters: {hash}");
        let (old, _) = app.try_log_in(ALICE, PW, FIREFOX, false).await;
        old.expect(StatusCode::UNAUTHORIZED);
        let (new, _) = app.try_log_in(ALICE, NEW_PW, FIREFOX, false).await;
        new.expect(StatusCode::OK);
    }
}

on_every_store! {
    /// `DELETE /users/me` removes the account with every session and token, clears the
    /// cookie, and frees the email; it needs the password, or a recent authentication.
    async fn a_deleted_account_leaves_nothing_usable_behind(backend: Backend) {
        let Some(app) = App::start(backend, hardened_config()).await else { return };
        let (laptop, phone, bobs) = app.alice_on_two_devices_and_bob().await;
        let reset_token = app
            .auth
            .get_reset_password_token(ALICE)
            .await
            .expect("reset token");

        app.send(Method::DELETE, "/users/me", &[("password", "not my password")], Some(&laptop))
            .await
            .expect(StatusCode::UNAUTHORIZED);
        app.clock.advance(16 * MINUTE);
        let stale = app.send(Method::DELETE, "/users/me", &[], Some(&laptop)).await;
        stale.expect(StatusCode::FORBIDDEN);
        assert_eq!(stale.body, json!({"message": "reauthentication required"}));
        assert_eq!(app.profile(&laptop).await, StatusCode::OK, "nothing deleted yet");

        let deleted = app
            .send(Method::DELETE, "/users/me", &[("password", PW)], Some(&laptop))
            .await;
        deleted.expect(StatusCode::OK);
        assert_eq!(deleted.body, json!({"message": "account deleted"}));
        assert!(deleted.set_cookies.iter().any(|c| c.contains("Max-Age=0")));
        assert_eq!(app.profile(&laptop).await, StatusCode::UNAUTHORIZED);
        assert_eq!(app.profile(&phone).await, StatusCode::UNAUTHORIZED);
        assert_eq!(app.profile(&bobs).await, StatusCode::OK);
        app.send(
            Method::PUT,
            "/reset_password",
            &[("email", ALICE), ("reset_token", &reset_token), ("new_password", NEW_PW)],
            None,
        )
        .await
        .expect(StatusCode::FORBIDDEN);
        let (login, _) = app.try_log_in(ALICE, PW, FIREFOX, false).await;
        login.expect(StatusCode::UNAUTHORIZED);

        // The email registers again, as a new account.
        app.register(ALICE).await;
        let again = app.log_in(ALICE, FIREFOX).await;
        assert_eq!(app.sessions(&again).await.len(), 1);
        // ...which a fresh login may delete without the password (sudo mode).
        app.send(Method::DELETE, "/users/me", &[], Some(&again))
            .await
            .expect(StatusCode::OK);
        assert_eq!(app.profile(&again).await, StatusCode::UNAUTHORIZED);
    }
}

on_every_store! {
    /// `remember_me=true` gives a persistent cookie and the longer lifetime; without it the
    /// cookie is a browser-session cookie and the session ends with the normal lifetime.
    async fn remember_me_persists_the_cookie_and_the_session(backend: Backend) {
        let mut config = hardened_config();
        // Idle timeouts out of the way, so the lifetimes decide.
        config.session_idle_timeout = Duration::from_secs(40 * 24 * 3600);
        config.remembered_session_idle_timeout = Duration::from_secs(40 * 24 * 3600);
        let Some(app) = App::start(backend, config).await else { return };
        app.register(ALICE).await;
        let (remembered, laptop) = app.try_log_in(ALICE, PW, FIREFOX, true).await;
        remembered.expect(StatusCode::OK);
        let laptop = laptop.expect("cookie");
        let (plain, phone) = app.try_log_in(ALICE, PW, CHROME, false).await;
        plain.expect(StatusCode::OK);
        let phone = phone.expect("cookie");

        let cookie = &remembered.set_cookies[0];
        for attribute in ["Max-Age=2592000", "HttpOnly", "SameSite=Lax", "Secure", "Path=/"] {
            assert!(cookie.contains(attribute), "{attribute} in {cookie}");
        }
        assert!(cookie.starts_with("__Host-session_id="), "{cookie}");
        let plain_cookie = &plain.set_cookies[0];
        assert!(
            !plain_cookie.contains("Max-Age") && !plain_cookie.contains("Expires"),
            "without remember-me the cookie ends with the browser session: {plain_cookie}"
        );
        let sessions = app.sessions(&laptop).await;
        let mine = sessions.iter().find(|s| s["current"] == true).expect("current");
        assert_eq!(mine["remembered"], true);

        app.clock.advance(Duration::from_secs(13 * 3600));
        assert_eq!(app.profile(&phone).await, StatusCode::UNAUTHORIZED, "12 h lifetime");
        assert_eq!(app.profile(&laptop).await, StatusCode::OK, "30 days remembered");
        app.clock.advance(Duration::from_secs(30 * 24 * 3600));
        assert_eq!(app.profile(&laptop).await, StatusCode::UNAUTHORIZED);
    }
}

/// The hardened preset's idle timeout applies to remembered sessions too, unless
/// configured otherwise.
#[tokio::test]
async fn a_remembered_session_still_times_out_when_idle() {
    let app = App::start(Backend::Memory, hardened_config())
        .await
        .expect("memory");
    app.register(ALICE).await;
    let (_, laptop) = app.try_log_in(ALICE, PW, FIREFOX, true).await;
    let laptop = laptop.expect("cookie");
    app.clock.advance(29 * MINUTE);
    assert_eq!(app.profile(&laptop).await, StatusCode::OK);
    app.clock.advance(31 * MINUTE);
    assert_eq!(app.profile(&laptop).await, StatusCode::UNAUTHORIZED);
}

/// Every self-service route answers 401 without a session in the hardened preset; the
/// spec preset keeps the seed's routes, 403s and 405s exactly.
#[tokio::test]
async fn without_a_session_hardened_answers_401_and_spec_keeps_the_seed() {
    let app = App::start(Backend::Memory, hardened_config())
        .await
        .expect("memory");
    let stranger = Device {
        cookie: "__Host-session_id=made-up".into(),
        user_agent: FIREFOX,
    };
    for device in [None, Some(&stranger)] {
        for (method, path, form) in [
            (Method::GET, "/profile", &[][..]),
            (Method::DELETE, "/sessions", &[]),
            (Method::GET, "/sessions", &[]),
            (Method::DELETE, "/sessions/others", &[]),
            (Method::DELETE, "/sessions/all", &[]),
            (
                Method::DELETE,
                "/sessions/0123456789abcdef0123456789abcdef",
                &[],
            ),
            (Method::POST, "/sessions/reauth", &[("password", PW)]),
            (
                Method::PUT,
                "/password",
                &[("current_password", PW), ("new_password", NEW_PW)],
            ),
            (Method::DELETE, "/users/me", &[("password", PW)]),
        ] {
            let answer = app.send(method.clone(), path, form, device).await;
            answer.expect(StatusCode::UNAUTHORIZED);
            assert_eq!(
                answer.body,
                json!({"message": "no valid session"}),
                "{method} {path}"
            );
        }
    }

    let mut spec = tower_auth::AuthConfig::spec();
    spec.bcrypt_cost = 4;
    let app = App::start(Backend::Memory, spec).await.expect("memory");
    let raw = app
        .server
        .raw_request(&["GET /profile HTTP/1.1"], b"")
        .await;
    assert_eq!(raw.status(), 403, "the seed's 403 without a session");
    let raw = app
        .server
        .raw_request(&["GET /sessions HTTP/1.1"], b"")
        .await;
    assert_eq!(raw.status(), 405, "the seed has no GET /sessions");
    let raw = app
        .server
        .raw_request(&["PUT /password HTTP/1.1"], b"")
        .await;
    assert_eq!(raw.status(), 404, "nor PUT /password");
}

/// With `sudo_for_password_change`, a stale session cannot change the password even with
/// the current one; argon2id configured means the new hash is argon2id.
#[tokio::test]
async fn password_change_can_require_sudo_and_uses_the_configured_algorithm() {
    let mut config = hardened_config();
    config.sudo_for_password_change = true;
    config.hash_algorithm = HashAlgorithm::Argon2id;
    config.argon2 = tower_auth::password::Argon2Params::new(1024, 1, 1);
    let app = App::start(Backend::Memory, config).await.expect("memory");
    app.register(ALICE).await;
    let laptop = app.log_in(ALICE, FIREFOX).await;
    let change = [("current_password", PW), ("new_password", NEW_PW)];
    app.clock.advance(16 * MINUTE);
    let stale = app
        .send(Method::PUT, "/password", &change, Some(&laptop))
        .await;
    stale.expect(StatusCode::FORBIDDEN);
    assert_eq!(stale.body, json!({"message": "reauthentication required"}));
    app.send(
        Method::POST,
        "/sessions/reauth",
        &[("password", PW)],
        Some(&laptop),
    )
    .await
    .expect(StatusCode::OK);
    app.send(Method::PUT, "/password", &change, Some(&laptop))
        .await
        .expect(StatusCode::OK);
    let hash = app.stored_hash(ALICE).await;
    assert!(hash.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"), "{hash}");
}

/// Wrong passwords given to confirm actions count against the session's own limit (the
/// login limit), so a stolen session cannot guess faster than the login form could; the
/// session is a client that logged in before, so they do not lock the account for others.
#[tokio::test]
async fn wrong_current_passwords_are_throttled_like_logins() {
    let app = App::start(Backend::Memory, hardened_config())
        .await
        .expect("memory");
    app.register(ALICE).await;
    let laptop = app.log_in(ALICE, FIREFOX).await;
    let limit = app.auth.config().max_login_failures;
    for _ in 0..limit {
        app.send(
            Method::POST,
            "/sessions/reauth",
            &[("password", "guess, guess")],
            Some(&laptop),
        )
        .await
        .expect(StatusCode::UNAUTHORIZED);
    }
    let throttled = app
        .send(
            Method::POST,
            "/sessions/reauth",
            &[("password", PW)],
            Some(&laptop),
        )
        .await;
    throttled.expect(StatusCode::TOO_MANY_REQUESTS);
    app.send(
        Method::PUT,
        "/password",
        &[("current_password", PW), ("new_password", NEW_PW)],
        Some(&laptop),
    )
    .await
    .expect(StatusCode::TOO_MANY_REQUESTS);
    let (login, _) = app.try_log_in(ALICE, PW, FIREFOX, false).await;
    login.expect(StatusCode::OK);
}

/// A host app's administrators list and end a user's sessions by user id; the account
/// deletion emits its event without any secret in it.
#[tokio::test]
async fn administration_by_user_id_and_the_deletion_event() {
    let capture = logs::Capture::default();
    let _capturing = capture.start();
    let app = App::start(Backend::Memory, hardened_config())
        .await
        .expect("memory");
    app.register(ALICE).await;
    let laptop = app.log_in(ALICE, FIREFOX).await;
    let phone = app.log_in(ALICE, CHROME).await;
    let user = app
        .store
        .find_user_by(UserLookup::Email(ALICE))
        .await
        .expect("lookup")
        .expect("alice")
        .user;

    let listed = app.auth.list_sessions(user.id).await.expect("list");
    assert_eq!(listed.len(), 2);
    assert!(
        listed.iter().all(|s| !s.current),
        "no request, no current session"
    );
    let phone_id = app.handle_of(&phone).await;
    let ended = app.auth.end_session(user.id, &phone_id).await.expect("end");
    assert_eq!(
        ended.user_agent.as_deref(),
        Some("Chrome 131 on Windows 10")
    );
    assert_eq!(app.profile(&phone).await, StatusCode::UNAUTHORIZED);
    assert!(matches!(
        app.auth
            .end_session(tower_auth::UserId(user.id.0 + 1), &phone_id)
            .await,
        Err(tower_auth::AuthError::SessionNotFound)
    ));
    assert_eq!(app.auth.end_sessions(user.id).await.expect("end all"), 1);
    assert_eq!(app.profile(&laptop).await, StatusCode::UNAUTHORIZED);

    let laptop = app.log_in(ALICE, FIREFOX).await;
    app.send(
        Method::DELETE,
        "/users/me",
        &[("password", PW)],
        Some(&laptop),
    )
    .await
    .expect(StatusCode::OK);
    let captured = capture.0.lock().expect("captured").clone();
    let events: Vec<&logs::Captured> = captured
        .iter()
        .filter(|c| c.target == "tower_auth::event")
        .collect();
    let deleted = events
        .iter()
        .find(|e| e.fields.get("event").map(String::as_str) == Some("account_deleted"))
        .unwrap_or_else(|| panic!("an account_deleted event: {events:?}"));
    assert_eq!(deleted.fields.get("user_id"), Some(&user.id.0.to_string()));
    let all: String = captured.iter().map(logs::Captured::text).collect();
    assert!(
        !all.contains(PW) && !all.contains(token(&laptop)),
        "no secret in the logs"
    );
}

fn token(device: &Device) -> &str {
    device.cookie.split_once('=').expect("name=value").1
}

/// The times of a session list are times, not integers: they format as they are, and
/// `GET /sessions` writes the same instant.
#[tokio::test]
async fn session_times_are_formattable_times() {
    let Some(app) = App::start(Backend::Memory, hardened_config()).await else {
        return;
    };
    app.register(ALICE).await;
    let (answer, device) = app.try_log_in(ALICE, PW, FIREFOX, false).await;
    answer.expect(StatusCode::OK);
    let user = app
        .store
        .find_user_by(UserLookup::Email(ALICE))
        .await
        .expect("store")
        .expect("alice");
    let sessions = app
        .auth
        .list_sessions(user.user.id)
        .await
        .expect("sessions");
    let rfc3339 = &time::format_description::well_known::Rfc3339;
    assert_eq!(
        sessions[0].last_seen_at.format(rfc3339).expect("format"),
        "2027-01-15T08:00:00Z"
    );
    assert_eq!(
        sessions[0].expires_at - sessions[0].created_at,
        time::Duration::hours(12)
    );
    let listed = app
        .send(Method::GET, "/sessions", &[], device.as_ref())
        .await;
    listed.expect(StatusCode::OK);
    assert_eq!(
        listed.body["sessions"][0]["last_seen_at"],
        "2027-01-15T08:00:00Z"
    );
}
