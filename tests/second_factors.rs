//! Second factors over real HTTP, in the hardened preset: an authenticator app enrolled
//! with a code computed here (RFC 6238 by this file's own HMAC-SHA-1, not the crate's),
//! logins that wait for it, codes that cannot be replayed, a throttle that strangers cannot
//! turn against the owner's browser, single-use recovery codes, no bypass through a reset
//! or a magic link, and a browser that may skip it when its owner asks.

#[path = "support/http.rs"]
mod http_support;
#[path = "support/mail.rs"]
mod mail;
#[path = "support/totp.rs"]
mod totp;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};

use http_support::{Answer, TestServer, form, serve_auth};
use mail::Capture;
use reqwest::{Method, StatusCode};
use serde_json::json;
use totp::{base32_decode, totp};
use tower_auth::clock::ManualClock;
use tower_auth::second_factor::{SecondFactorConfig, SecondFactorKey};
use tower_auth::{Auth, AuthConfig, Mailer, MemoryStore};

const PW: &str = "correct horse battery staple";
const ALICE: &str = "alice@example.com";
const START_MS: i64 = 1_800_000_000_000;

struct App {
    auth: Auth,
    store: MemoryStore,
    clock: ManualClock,
    mail: Capture,
    server: TestServer,
}

/// A client: its own loopback address and every cookie it was given.
struct Browser {
    http: reqwest::Client,
    cookies: HashMap<String, String>,
}

impl Browser {
    fn from(n: u8) -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, n)))
            .build()
            .expect("client");
        Self {
            http,
            cookies: HashMap::new(),
        }
    }

    fn has(&self, name: &str) -> bool {
        self.cookies.contains_key(name)
    }
}

impl App {
    async fn start() -> Self {
        let mail = Capture::default();
        let mailer =
            Mailer::new(mail.clone(), "app@example.com", "http://localhost").expect("mailer");
        let mut config = AuthConfig::hardened_with(mailer);
        config.bcrypt_cost = 4;
        config.second_factors = Some(SecondFactorConfig::new(
            SecondFactorKey::from_bytes([42; 32]),
            "Example App",
        ));
        let clock = ManualClock::new(START_MS);
        let store = MemoryStore::new();
        let auth = Auth::builder(store.clone(), config)
            .clock(clock.clone())
            .build()
            .expect("valid config");
        let server = serve_auth(&auth).await;
        Self {
            auth,
            store,
            clock,
            mail,
            server,
        }
    }

    async fn send(
        &self,
        browser: &mut Browser,
        method: Method,
        path: &str,
        fields: &[(&str, &str)],
    ) -> Answer {
        let mut request = browser.http.request(method, self.server.url(path));
        let cookies: Vec<String> = browser
            .cookies
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        if !cookies.is_empty() {
            request = request.header("cookie", cookies.join("; "));
        }
        if !fields.is_empty() {
            request = request
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form(fields));
        }
        let answer = Answer::read(request.send().await.expect("request")).await;
        for cookie in &answer.set_cookies {
            let pair = cookie.split(';').next().unwrap_or_default();
            if let Some((name, value)) = pair.split_once('=') {
                if value.is_empty() {
                    browser.cookies.remove(name);
                } else {
                    browser.cookies.insert(name.to_owned(), value.to_owned());
                }
            }
        }
        answer
    }

    async fn post(&self, browser: &mut Browser, path: &str, fields: &[(&str, &str)]) -> Answer {
        self.send(browser, Method::POST, path, fields).await
    }

    async fn mail_subjects(&self, to: &str) -> Vec<String> {
        self.auth.flush_mail().await;
        self.mail
            .sent_to(to)
            .iter()
            .map(|m| m.parsed().subject)
            .collect()
    }

    async fn newest_token(&self, to: &str) -> String {
        self.auth.flush_mail().await;
        self.mail.sent_to(to).last().expect("a mail").token()
    }

    /// The token of the newest message to `to` whose subject has `part`, once it arrives
    /// (a requested link comes a moment after the answer).
    async fn newest_token_titled(&self, to: &str, part: &str) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            self.auth.flush_mail().await;
            let sent = self.mail.sent_to(to);
            if let Some(found) = sent
                .iter()
                .rev()
                .find(|m| m.parsed().subject.contains(part))
            {
                return found.token();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no mail titled {part:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    async fn log_in(&self, browser: &mut Browser, password: &str) -> Answer {
        self.post(
            browser,
            "/sessions",
            &[("email", ALICE), ("password", password)],
        )
        .await
    }

    /// The code the authenticator app shows now.
    fn code(&self, secret: &[u8]) -> String {
        totp(secret, u64::try_from(self.clock_ms() / 1000).unwrap())
    }

    fn clock_ms(&self) -> i64 {
        tower_auth::clock::Clock::now_ms(&self.clock)
    }

    fn next_step(&self) {
        self.clock.advance(std::time::Duration::from_secs(30));
    }
}

#[test]
fn this_files_totp_matches_rfc_6238() {
    assert_eq!(totp(b"12345678901234567890", 59), "287082");
    assert_eq!(totp(b"12345678901234567890", 1_111_111_109), "081804");
}

/// Registers and confirms alice, logs her in from `browser`, enrols an authenticator app
/// and returns its secret and the recovery codes.
async fn enrolled(app: &App, browser: &mut Browser) -> (Vec<u8>, Vec<String>) {
    app.post(browser, "/users", &[("email", ALICE), ("password", PW)])
        .await
        .expect(StatusCode::ACCEPTED);
    let token = app.newest_token(ALICE).await;
    app.post(
        browser,
        "/confirmation",
        &[("token", &token), ("password", PW)],
    )
    .await
    .expect(StatusCode::OK);
    app.log_in(browser, PW).await.expect(StatusCode::OK);
    // A session alone (a stolen cookie, even a fresh one) cannot enrol a factor of its own.
    let refused = app.post(browser, "/second_factors/totp", &[]).await;
    refused.expect(StatusCode::FORBIDDEN);
    assert_eq!(refused.body["message"], json!("password required"));
    app.post(browser, "/second_factors/totp", &[("password", "a guess")])
        .await
        .expect(StatusCode::UNAUTHORIZED);
    let started = app
        .post(browser, "/second_factors/totp", &[("password", PW)])
        .await;
    started.expect(StatusCode::OK);
    let uri = started.body["uri"].as_str().expect("uri").to_owned();
    assert!(
        uri.starts_with("otpauth://totp/Example%20App:alice%40example.com?"),
        "{uri}"
    );
    assert!(
        started.body["qr_svg"]
            .as_str()
            .expect("svg")
            .contains("<svg")
    );
    let secret = base32_decode(started.body["secret"].as_str().expect("secret"));
    assert!(uri.contains(&format!(
        "secret={}",
        started.body["secret"].as_str().unwrap()
    )));
    assert_eq!(secret.len(), 20);
    // At rest the secret is sealed: neither its bytes nor its base32 are in the store.
    let user =
        tower_auth::Store::find_user_by(&app.store, tower_auth::store::UserLookup::Email(ALICE))
            .await
            .expect("store")
            .expect("alice");
    let stored = tower_auth::Store::list_factors(&app.store, user.user.id)
        .await
        .expect("store");
    assert_eq!(stored.len(), 1);
    let base32 = started.body["secret"].as_str().unwrap();
    assert!(!stored[0].secret.contains(base32));
    assert!(
        stored[0].secret.starts_with("v1:"),
        "sealed: {:?}",
        stored[0]
    );
    assert!(
        !format!("{:?}", stored[0]).contains(&stored[0].secret),
        "Debug hides it"
    );

    // An unfinished enrolment asks nothing at login.
    let mut other = Browser::from(9);
    app.log_in(&mut other, PW).await.expect(StatusCode::OK);

    let wrong = app
        .send(
            browser,
            Method::PUT,
            "/second_factors/totp",
            &[("code", "000000")],
        )
        .await;
    wrong.expect(StatusCode::UNAUTHORIZED);
    let code = app.code(&secret);
    let done = app
        .send(
            browser,
            Method::PUT,
            "/second_factors/totp",
            &[("code", &code)],
        )
        .await;
    done.expect(StatusCode::OK);
    let codes: Vec<String> = done.body["recovery_codes"]
        .as_array()
        .expect("codes")
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(codes.len(), 10);
    assert!(
        app.mail_subjects(ALICE)
            .await
            .contains(&"A second factor was added to your account".to_owned())
    );
    (secret, codes)
}

#[tokio::test]
async fn a_login_waits_for_a_code_that_cannot_be_replayed() {
    let app = App::start().await;
    let mut owner = Browser::from(1);
    let (secret, _) = enrolled(&app, &mut owner).await;
    app.send(&mut owner, Method::DELETE, "/sessions", &[]).await;
    assert!(!owner.has("__Host-session_id"));

    let first = app.log_in(&mut owner, PW).await;
    first.expect(StatusCode::UNAUTHORIZED);
    assert_eq!(first.body["message"], json!("second factor required"));
    assert_eq!(
        first.body["second_factor"],
        json!(["totp", "recovery_code"])
    );
    assert!(
        !owner.has("__Host-session_id"),
        "no session before the code"
    );
    assert!(
        owner.has("__Host-second_factor"),
        "the pending login is this browser's"
    );

    // The code used at enrolment, in the same time step: a replay.
    let replayed = app.code(&secret);
    app.post(
        &mut owner,
        "/sessions/second_factor",
        &[("code", &replayed)],
    )
    .await
    .expect(StatusCode::UNAUTHORIZED);

    // Another browser cannot finish this browser's pending login.
    app.next_step();
    let code = app.code(&secret);
    let mut stranger = Browser::from(2);
    app.post(&mut stranger, "/sessions/second_factor", &[("code", &code)])
        .await
        .expect(StatusCode::BAD_REQUEST);

    let finished = app
        .post(&mut owner, "/sessions/second_factor", &[("code", &code)])
        .await;
    finished.expect(StatusCode::OK);
    assert_eq!(finished.body["methods"], json!(["password", "totp"]));
    assert!(owner.has("__Host-session_id"));
    assert!(
        !owner.has("__Host-second_factor"),
        "the pending cookie is cleared"
    );
    let sessions = app.send(&mut owner, Method::GET, "/sessions", &[]).await;
    sessions.expect(StatusCode::OK);

    // The pending login was single use, and the code's step is spent.
    app.send(&mut owner, Method::DELETE, "/sessions", &[]).await;
    app.log_in(&mut owner, PW)
        .await
        .expect(StatusCode::UNAUTHORIZED);
    app.post(&mut owner, "/sessions/second_factor", &[("code", &code)])
        .await
        .expect(StatusCode::UNAUTHORIZED);
    app.next_step();
    let now = app.code(&secret);
    app.post(&mut owner, "/sessions/second_factor", &[("code", &now)])
        .await
        .expect(StatusCode::OK);
}

#[tokio::test]
async fn strangers_with_the_password_cannot_lock_the_owner_out() {
    let app = App::start().await;
    let mut owner = Browser::from(1);
    let (secret, _) = enrolled(&app, &mut owner).await;
    app.send(&mut owner, Method::DELETE, "/sessions", &[]).await;
    assert!(owner.has("__Host-trusted_device"));

    let mut stranger = Browser::from(3);
    app.log_in(&mut stranger, PW)
        .await
        .expect(StatusCode::UNAUTHORIZED);
    for _ in 0..10 {
        app.post(
            &mut stranger,
            "/sessions/second_factor",
            &[("code", "123456")],
        )
        .await
        .expect(StatusCode::UNAUTHORIZED);
    }
    let throttled = app
        .post(
            &mut stranger,
            "/sessions/second_factor",
            &[("code", "123456")],
        )
        .await;
    throttled.expect(StatusCode::TOO_MANY_REQUESTS);
    assert!(throttled.retry_after.is_some());
    // Even the right code is refused to the throttled stranger.
    app.next_step();
    let code = app.code(&secret);
    app.post(&mut stranger, "/sessions/second_factor", &[("code", &code)])
        .await
        .expect(StatusCode::TOO_MANY_REQUESTS);

    // The owner's trusted browser counts its own failures.
    app.log_in(&mut owner, PW)
        .await
        .expect(StatusCode::UNAUTHORIZED);
    app.post(&mut owner, "/sessions/second_factor", &[("code", &code)])
        .await
        .expect(StatusCode::OK);
}

#[tokio::test]
async fn recovery_codes_work_once_and_are_mailed() {
    let app = App::start().await;
    let mut owner = Browser::from(1);
    let (_, codes) = enrolled(&app, &mut owner).await;
    app.send(&mut owner, Method::DELETE, "/sessions", &[]).await;

    app.log_in(&mut owner, PW)
        .await
        .expect(StatusCode::UNAUTHORIZED);
    let used = app
        .post(
            &mut owner,
            "/sessions/second_factor",
            &[("recovery_code", &codes[0].to_uppercase())],
        )
        .await;
    used.expect(StatusCode::OK);
    assert_eq!(used.body["methods"], json!(["password", "recovery_code"]));
    assert!(
        app.mail_subjects(ALICE)
            .await
            .contains(&"A recovery code was used on your account".to_owned())
    );
    let status = app
        .send(&mut owner, Method::GET, "/second_factors", &[])
        .await;
    assert_eq!(
        status.body,
        json!({ "totp": true, "recovery_codes_left": 9 })
    );

    app.send(&mut owner, Method::DELETE, "/sessions", &[]).await;
    app.log_in(&mut owner, PW)
        .await
        .expect(StatusCode::UNAUTHORIZED);
    app.post(
        &mut owner,
        "/sessions/second_factor",
        &[("recovery_code", &codes[0])],
    )
    .await
    .expect(StatusCode::UNAUTHORIZED);
    app.post(
        &mut owner,
        "/sessions/second_factor",
        &[("code", "1"), ("recovery_code", "2")],
    )
    .await
    .expect(StatusCode::BAD_REQUEST);
    app.post(
        &mut owner,
        "/sessions/second_factor",
        &[("recovery_code", &codes[1])],
    )
    .await
    .expect(StatusCode::OK);

    // New codes (confirmed with the password) void the old ones.
    app.post(&mut owner, "/second_factors/recovery_codes", &[])
        .await
        .expect(StatusCode::FORBIDDEN);
    let fresh = app
        .post(
            &mut owner,
            "/second_factors/recovery_codes",
            &[("password", PW)],
        )
        .await;
    fresh.expect(StatusCode::OK);
    assert_eq!(fresh.body["recovery_codes"].as_array().unwrap().len(), 10);
    app.send(&mut owner, Method::DELETE, "/sessions", &[]).await;
    app.log_in(&mut owner, PW)
        .await
        .expect(StatusCode::UNAUTHORIZED);
    app.post(
        &mut owner,
        "/sessions/second_factor",
        &[("recovery_code", &codes[2])],
    )
    .await
    .expect(StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn resets_and_magic_links_never_bypass_the_second_factor() {
    let app = App::start().await;
    let mut owner = Browser::from(1);
    let (secret, _) = enrolled(&app, &mut owner).await;
    let mut thief = Browser::from(4);

    // Someone with the mailbox: a reset link sets a password, and the login still waits.
    app.post(&mut thief, "/reset_password", &[("email", ALICE)])
        .await
        .expect(StatusCode::ACCEPTED);
    let token = app.newest_token_titled(ALICE, "eset").await;
    let new_pw = "a thief's brand new passphrase";
    app.send(
        &mut thief,
        Method::PUT,
        "/reset_password",
        &[
            ("email", ALICE),
            ("reset_token", &token),
            ("new_password", new_pw),
        ],
    )
    .await
    .expect(StatusCode::OK);
    let login = app.log_in(&mut thief, new_pw).await;
    login.expect(StatusCode::UNAUTHORIZED);
    assert_eq!(login.body["message"], json!("second factor required"));
    assert!(!thief.has("__Host-session_id"));

    // A magic link too.
    app.post(&mut thief, "/magic_link", &[("email", ALICE)])
        .await
        .expect(StatusCode::ACCEPTED);
    let link = app.newest_token_titled(ALICE, "sign-in").await;
    let magic = app
        .post(&mut thief, "/sessions/magic", &[("token", &link)])
        .await;
    magic.expect(StatusCode::UNAUTHORIZED);
    assert_eq!(magic.body["message"], json!("second factor required"));
    assert!(!thief.has("__Host-session_id"));

    // The owner, with the app, finishes a magic-link login.
    app.next_step();
    let code = app.code(&secret);
    let finished = app
        .post(&mut thief, "/sessions/second_factor", &[("code", &code)])
        .await;
    finished.expect(StatusCode::OK);
    assert_eq!(finished.body["methods"], json!(["magic_link", "totp"]));
}

#[tokio::test]
async fn a_remembered_browser_skips_the_code_and_disabling_is_mailed() {
    let app = App::start().await;
    let mut owner = Browser::from(1);
    let (secret, _) = enrolled(&app, &mut owner).await;
    app.send(&mut owner, Method::DELETE, "/sessions", &[]).await;

    app.log_in(&mut owner, PW)
        .await
        .expect(StatusCode::UNAUTHORIZED);
    app.next_step();
    let code = app.code(&secret);
    app.post(
        &mut owner,
        "/sessions/second_factor",
        &[("code", &code), ("remember_device", "on")],
    )
    .await
    .expect(StatusCode::OK);
    assert!(owner.has("__Host-second_factor_device"));
    app.send(&mut owner, Method::DELETE, "/sessions", &[]).await;
    let again = app.log_in(&mut owner, PW).await;
    again.expect(StatusCode::OK);
    assert_eq!(again.body["methods"], json!(["password"]));

    // Another browser is still asked.
    let mut laptop = Browser::from(5);
    app.log_in(&mut laptop, PW)
        .await
        .expect(StatusCode::UNAUTHORIZED);

    // Disabling needs the password, then mails the owner; logins stop asking.
    app.clock.advance(std::time::Duration::from_secs(16 * 60));
    app.send(&mut owner, Method::DELETE, "/second_factors/totp", &[])
        .await
        .expect(StatusCode::FORBIDDEN);
    app.send(
        &mut owner,
        Method::DELETE,
        "/second_factors/totp",
        &[("password", PW)],
    )
    .await
    .expect(StatusCode::OK);
    assert!(
        app.mail_subjects(ALICE)
            .await
            .contains(&"A second factor was removed from your account".to_owned())
    );
    app.log_in(&mut laptop, PW).await.expect(StatusCode::OK);
}

#[tokio::test]
async fn a_session_older_than_the_sudo_window_enrols_with_its_password() {
    let app = App::start().await;
    let mut owner = Browser::from(1);
    app.post(&mut owner, "/users", &[("email", ALICE), ("password", PW)])
        .await
        .expect(StatusCode::ACCEPTED);
    let token = app.newest_token(ALICE).await;
    app.post(
        &mut owner,
        "/confirmation",
        &[("token", &token), ("password", PW)],
    )
    .await
    .expect(StatusCode::OK);
    app.log_in(&mut owner, PW).await.expect(StatusCode::OK);
    // Logged in long ago: the password typed for the enrolment proves who is there, for
    // both of its steps.
    app.clock.advance(std::time::Duration::from_secs(20 * 60));
    let started = app
        .post(&mut owner, "/second_factors/totp", &[("password", PW)])
        .await;
    started.expect(StatusCode::OK);
    let secret = base32_decode(started.body["secret"].as_str().expect("secret"));
    app.send(
        &mut owner,
        Method::PUT,
        "/second_factors/totp",
        &[("code", &app.code(&secret))],
    )
    .await
    .expect(StatusCode::OK);
}
