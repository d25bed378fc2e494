//! Signing in with an OpenID Connect provider, against a real local provider (npm's
//! oauth2-mock-server 8.2.3, started here with node; `npm install --prefix tests/oidc`
//! first) over real HTTP: new accounts, linking to a confirmed account (mailed), refusals
//! for unverified emails and unconfirmed accounts (no pre-registration takeover), replayed
//! callbacks, a wrong state, a wrong nonce, a provider that is down, linking from a
//! session and unlinking (never the last way in).

#![cfg(feature = "oidc")]

#[path = "support/http.rs"]
mod http_support;
#[path = "support/mail.rs"]
mod mail;
#[path = "support/totp.rs"]
mod totp;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use http_support::{Answer, form};
use mail::Capture;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tower_auth::oidc::{OAuth2Endpoints, Provider, ProvidersConfig, UserinfoHook};
use tower_auth::second_factor::SecondFactorKey;
use tower_auth::store::{UserLookup, UserUpdate};
use tower_auth::{Auth, AuthConfig, Mailer, MemoryStore, Store};

const SESSION: &str = "__Host-session_id";
const STATE: &str = "__Host-oidc_state";

/// The provider: a node process, its stdin to set the claims of the next tokens.
struct LocalProvider {
    child: Child,
    stdin: ChildStdin,
    answers: std::io::Lines<BufReader<std::process::ChildStdout>>,
    issuer: String,
}

/// Set to 1 (as `.ci/run` does) to fail, not skip, when the local provider cannot run.
const REQUIRE_OIDC_VAR: &str = "AUTH_REQUIRE_OIDC";

/// Whether the local provider can run: node, and the npm package (installed here once with
/// `npm ci` when missing); otherwise a skip notice, or a failure under `AUTH_REQUIRE_OIDC=1`.
fn provider_available(dir: &str) -> bool {
    static INSTALLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let ok = *INSTALLED.get_or_init(|| {
        let installed = || {
            std::path::Path::new(dir)
                .join("node_modules/oauth2-mock-server")
                .exists()
        };
        installed()
            || Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--silent"])
                .current_dir(dir)
                .status()
                .is_ok_and(|s| s.success())
                && installed()
    });
    if !ok {
        assert!(
            !std::env::var(REQUIRE_OIDC_VAR).is_ok_and(|v| v.trim() == "1"),
            "{REQUIRE_OIDC_VAR}=1 but the local provider cannot run: install node and npm, \
             then npm ci --prefix tests/oidc"
        );
        eprintln!(
            "SKIPPED: OpenID Connect tests (node and npm ci --prefix tests/oidc to run them)"
        );
    }
    ok
}

impl LocalProvider {
    /// The provider, started; `None` (the test is skipped) when it cannot run here.
    fn start() -> Option<Self> {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/oidc");
        if !provider_available(dir) {
            return None;
        }
        let mut child = Command::new("node")
            .arg("mock_provider.mjs")
            .current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("node runs");
        let stdin = child.stdin.take().expect("stdin");
        let mut answers = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let first = answers
            .next()
            .expect("the provider starts")
            .expect("a line");
        let issuer = serde_json::from_str::<Value>(&first).expect("json")["issuer"]
            .as_str()
            .expect("issuer")
            .to_owned();
        Some(Self {
            child,
            stdin,
            answers,
            issuer,
        })
    }

    /// The claims of every token signed from now on.
    fn claims(&mut self, claims: Value) {
        writeln!(self.stdin, "{claims}").expect("write");
        let answer = self.answers.next().expect("an answer").expect("a line");
        assert_eq!(answer, "ok");
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for LocalProvider {
    fn drop(&mut self) {
        self.stop();
    }
}

struct App {
    auth: Auth,
    store: MemoryStore,
    mail: Capture,
    base: String,
}

/// The app, with the provider `mock` at `issuer`.
async fn start(issuer: &str) -> App {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let base = format!("http://{addr}");
    let mail = Capture::default();
    let mailer = Mailer::new(mail.clone(), "app@example.com", &base).expect("mailer");
    let mut config = AuthConfig::hardened_with(mailer);
    config.bcrypt_cost = 4;
    config.require_confirmed_email = false;
    config.conceal_registered_emails = false;
    let provider = Provider::new(
        "mock",
        "Mock",
        issuer,
        "tower-auth-tests",
        Some("client secret".into()),
        format!("{base}/oidc/mock/callback"),
    );
    // The same local provider once more, as a plain OAuth2 one (no ID token: its userinfo
    // endpoint, read by a hook).
    let base_issuer = issuer.trim_end_matches('/');
    let plain = Provider::oauth2(
        "plain",
        "Plain",
        OAuth2Endpoints::new(
            format!("{base_issuer}/authorize"),
            format!("{base_issuer}/token"),
            format!("{base_issuer}/userinfo"),
        ),
        UserinfoHook::standard_claims(),
        "tower-auth-tests",
        Some("client secret".into()),
        format!("{base}/oidc/plain/callback"),
    );
    let mut providers =
        ProvidersConfig::new(SecondFactorKey::from_bytes([3; 32]), vec![provider, plain]);
    providers.timeout = Duration::from_secs(3);
    config.providers = Some(providers);
    config.second_factors = Some(tower_auth::second_factor::SecondFactorConfig::new(
        SecondFactorKey::from_bytes([3; 32]),
        "Example",
    ));
    let store = MemoryStore::new();
    let auth = Auth::new(store.clone(), config).expect("valid config");
    let router = auth.router();
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .expect("serve");
    });
    App {
        auth,
        store,
        mail,
        base,
    }
}

/// A browser: its cookies for the app.
#[derive(Default)]
struct Browser {
    cookies: HashMap<String, String>,
}

impl Browser {
    fn keep(&mut self, set_cookies: &[String]) {
        for cookie in set_cookies {
            let pair = cookie.split(';').next().unwrap_or_default();
            if let Some((name, value)) = pair.split_once('=') {
                if value.is_empty() {
                    self.cookies.remove(name);
                } else {
                    self.cookies.insert(name.to_owned(), value.to_owned());
                }
            }
        }
    }

    fn header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

impl App {
    async fn send(
        &self,
        browser: &mut Browser,
        method: reqwest::Method,
        url: &str,
        fields: &[(&str, &str)],
    ) -> (Answer, Option<String>) {
        let url = if url.starts_with("http") {
            url.to_owned()
        } else {
            format!("{}{url}", self.base)
        };
        let mut request = http_support::client()
            .request(method, url)
            .header("origin", &self.base)
            .header("cookie", browser.header());
        if !fields.is_empty() {
            request = request
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form(fields));
        }
        let response = request.send().await.expect("request");
        let location = response
            .headers()
            .get("location")
            .map(|l| l.to_str().expect("ascii").to_owned());
        let answer = Answer::read(response).await;
        browser.keep(&answer.set_cookies);
        (answer, location)
    }

    /// Starts a sign-in and lets the provider answer: the callback URL it sends back to.
    async fn to_provider_and_back(
        &self,
        browser: &mut Browser,
        start: (reqwest::Method, &str),
    ) -> String {
        self.to_provider_and_back_with(browser, start, &[]).await
    }

    /// As `to_provider_and_back`, the start sending `fields`.
    async fn to_provider_and_back_with(
        &self,
        browser: &mut Browser,
        start: (reqwest::Method, &str),
        fields: &[(&str, &str)],
    ) -> String {
        let (started, location) = self.send(browser, start.0, start.1, fields).await;
        started.expect(StatusCode::SEE_OTHER);
        assert!(
            browser.cookies.contains_key(STATE),
            "the state cookie is set"
        );
        let authorize = location.expect("to the provider");
        let answer = http_support::client()
            .get(&authorize)
            .send()
            .await
            .expect("provider");
        assert!(
            answer.status().is_redirection(),
            "the provider answers: {}",
            answer.status()
        );
        let back = answer.headers()["location"]
            .to_str()
            .expect("ascii")
            .to_owned();
        assert!(back.starts_with(&format!("{}/oidc/", self.base)), "{back}");
        back
    }

    async fn sign_in(&self, browser: &mut Browser) -> (Answer, Option<String>) {
        let back = self
            .to_provider_and_back(
                browser,
                (reqwest::Method::GET, "/oidc/mock/start?next=/welcome"),
            )
            .await;
        self.send(browser, reqwest::Method::GET, &back, &[]).await
    }

    async fn profile(&self, browser: &mut Browser) -> Answer {
        self.send(browser, reqwest::Method::GET, "/profile", &[])
            .await
            .0
    }

    async fn confirmed_account(&self, email: &str, password: Option<&str>) -> tower_auth::User {
        let user = self
            .auth
            .register_user(email, password.unwrap_or("a long enough passphrase"))
            .await
            .expect("register");
        self.store
            .update_user(user.id, UserUpdate::new().confirm_email(1))
            .await
            .expect("confirm");
        user
    }
}

#[tokio::test]
async fn a_verified_email_makes_a_confirmed_account_and_logs_it_in() {
    let Some(mut provider) = LocalProvider::start() else {
        return;
    };
    let app = start(&provider.issuer).await;
    provider.claims(json!({ "sub": "ada-1", "email": "Ada@Example.com", "email_verified": true }));
    let mut browser = Browser::default();
    let (answer, location) = app.sign_in(&mut browser).await;
    answer.expect(StatusCode::SEE_OTHER);
    assert_eq!(location.as_deref(), Some("/welcome"));
    assert!(browser.cookies.contains_key(SESSION));
    assert!(
        !browser.cookies.contains_key(STATE),
        "the state cookie is cleared"
    );
    let profile = app.profile(&mut browser).await;
    profile.expect(StatusCode::OK);
    assert_eq!(profile.body["email"], json!("ada@example.com"));
    let record = app
        .store
        .find_user_by(UserLookup::Email("ada@example.com"))
        .await
        .unwrap()
        .expect("a new account");
    assert!(
        record.user.email_confirmed(),
        "the provider verified the email"
    );
    let sessions = app
        .auth
        .list_my_sessions(
            &tower_auth::Client::new(None)
                .session(browser.cookies.get(SESSION).map(String::as_str)),
        )
        .await
        .unwrap();
    assert!(
        sessions[0]
            .methods
            .contains(tower_auth::AuthMethod::Provider)
    );

    // The same identity again: the same account, through the protected login.
    let mut again = Browser::default();
    app.sign_in(&mut again)
        .await
        .0
        .expect(StatusCode::SEE_OTHER);
    assert_eq!(
        app.profile(&mut again).await.body["email"],
        json!("ada@example.com")
    );
}

#[tokio::test]
async fn a_verified_email_links_only_to_a_confirmed_account_and_says_so() {
    let Some(mut provider) = LocalProvider::start() else {
        return;
    };
    let app = start(&provider.issuer).await;
    let bob = app.confirmed_account("bob@example.com", None).await;
    provider.claims(json!({ "sub": "bob-1", "email": "bob@example.com", "email_verified": true }));
    let mut browser = Browser::default();
    app.sign_in(&mut browser)
        .await
        .0
        .expect(StatusCode::SEE_OTHER);
    assert_eq!(
        app.profile(&mut browser).await.body["email"],
        json!("bob@example.com")
    );
    let linked = app.store.list_identities(bob.id).await.unwrap();
    assert_eq!((linked.len(), linked[0].subject.as_str()), (1, "bob-1"));
    app.auth.flush_mail().await;
    let subjects: Vec<String> = app
        .mail
        .sent_to("bob@example.com")
        .iter()
        .map(|m| m.parsed().subject)
        .collect();
    assert!(
        subjects.contains(&"A sign-in provider was linked to your account".to_owned()),
        "{subjects:?}"
    );

    // Someone registered carol's address first and never confirmed it: the provider's
    // verified email does not hand that account over.
    let squatter = app
        .auth
        .register_user("carol@example.com", "the squatter's passphrase")
        .await
        .expect("register");
    provider
        .claims(json!({ "sub": "carol-1", "email": "carol@example.com", "email_verified": true }));
    let mut carol = Browser::default();
    let (refused, _) = app.sign_in(&mut carol).await;
    refused.expect(StatusCode::CONFLICT);
    assert!(!carol.cookies.contains_key(SESSION));
    assert!(
        app.store
            .list_identities(squatter.id)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn an_unverified_email_never_links_nor_makes_an_account() {
    let Some(mut provider) = LocalProvider::start() else {
        return;
    };
    let app = start(&provider.issuer).await;
    let dave = app.confirmed_account("dave@example.com", None).await;
    for (sub, email) in [
        ("mallory-1", "dave@example.com"),
        ("mallory-2", "nobody@example.com"),
    ] {
        provider.claims(json!({ "sub": sub, "email": email, "email_verified": false }));
        let mut browser = Browser::default();
        let (refused, _) = app.sign_in(&mut browser).await;
        refused.expect(StatusCode::CONFLICT);
        assert!(!browser.cookies.contains_key(SESSION));
    }
    assert!(app.store.list_identities(dave.id).await.unwrap().is_empty());
    assert!(
        app.store
            .find_user_by(UserLookup::Email("nobody@example.com"))
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn replayed_forged_and_misdirected_callbacks_are_4xx() {
    let Some(mut provider) = LocalProvider::start() else {
        return;
    };
    let app = start(&provider.issuer).await;
    provider.claims(json!({ "sub": "eve-1", "email": "eve@example.com", "email_verified": true }));

    // Replay: the same callback, state cookie and all, a second time.
    let mut browser = Browser::default();
    let back = app
        .to_provider_and_back(&mut browser, (reqwest::Method::GET, "/oidc/mock/start"))
        .await;
    let kept = browser.cookies.clone();
    app.send(&mut browser, reqwest::Method::GET, &back, &[])
        .await
        .0
        .expect(StatusCode::SEE_OTHER);
    let mut replayer = Browser { cookies: kept };
    replayer.cookies.remove(SESSION);
    let (replayed, _) = app
        .send(&mut replayer, reqwest::Method::GET, &back, &[])
        .await;
    replayed.expect(StatusCode::BAD_REQUEST);
    assert!(!replayer.cookies.contains_key(SESSION));

    // A wrong state, and no state cookie (a callback another browser started).
    let mut browser = Browser::default();
    let back = app
        .to_provider_and_back(&mut browser, (reqwest::Method::GET, "/oidc/mock/start"))
        .await;
    let forged = regex_replace_state(&back, "forged");
    app.send(&mut browser, reqwest::Method::GET, &forged, &[])
        .await
        .0
        .expect(StatusCode::BAD_REQUEST);
    let mut other = Browser::default();
    let back = app
        .to_provider_and_back(
            &mut Browser::default(),
            (reqwest::Method::GET, "/oidc/mock/start"),
        )
        .await;
    app.send(&mut other, reqwest::Method::GET, &back, &[])
        .await
        .0
        .expect(StatusCode::BAD_REQUEST);

    // The provider's own error, and a callback without a code.
    let mut browser = Browser::default();
    let back = app
        .to_provider_and_back(&mut browser, (reqwest::Method::GET, "/oidc/mock/start"))
        .await;
    let state = back
        .split("state=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_owned();
    let refused = format!("/oidc/mock/callback?error=access_denied&state={state}");
    let (answer, _) = app
        .send(&mut browser, reqwest::Method::GET, &refused, &[])
        .await;
    answer.expect(StatusCode::UNAUTHORIZED);
    assert_eq!(
        answer.body["message"],
        json!("the sign-in provider refused: access_denied")
    );
    app.send(
        &mut Browser::default(),
        reqwest::Method::GET,
        "/oidc/mock/callback",
        &[],
    )
    .await
    .0
    .expect(StatusCode::BAD_REQUEST);
    app.send(
        &mut Browser::default(),
        reqwest::Method::GET,
        "/oidc/nope/start",
        &[],
    )
    .await
    .0
    .expect(StatusCode::NOT_FOUND);

    // A token with another nonce (replayed from another sign-in) does not verify.
    provider.claims(json!({ "sub": "eve-1", "email": "eve@example.com", "email_verified": true, "nonce": "another sign-in's" }));
    let mut browser = Browser::default();
    let (answer, _) = app.sign_in(&mut browser).await;
    answer.expect(StatusCode::UNAUTHORIZED);
    assert!(!browser.cookies.contains_key(SESSION));
}

/// `url` with its `state` parameter replaced by `state`.
fn regex_replace_state(url: &str, state: &str) -> String {
    let (head, tail) = url.split_once("state=").expect("a state");
    let rest = tail
        .split_once('&')
        .map_or(String::new(), |(_, rest)| format!("&{rest}"));
    format!("{head}state={state}{rest}")
}

#[tokio::test]
async fn a_provider_that_is_down_is_a_503_at_once() {
    let Some(mut provider) = LocalProvider::start() else {
        return;
    };
    let issuer = provider.issuer.clone();
    let app = start(&issuer).await;
    provider.claims(json!({ "sub": "fay-1", "email": "fay@example.com", "email_verified": true }));
    let mut browser = Browser::default();
    let back = app
        .to_provider_and_back(&mut browser, (reqwest::Method::GET, "/oidc/mock/start"))
        .await;
    provider.stop();
    // The code exchange cannot reach it.
    let exchange = tokio::time::timeout(
        Duration::from_secs(30),
        app.send(&mut browser, reqwest::Method::GET, &back, &[]),
    )
    .await
    .expect("no hang");
    exchange.0.expect(StatusCode::SERVICE_UNAVAILABLE);
    assert!(exchange.0.retry_after.is_some());
    // A fresh instance cannot even discover it.
    let fresh = start(&issuer).await;
    let started = tokio::time::timeout(
        Duration::from_secs(30),
        fresh.send(
            &mut Browser::default(),
            reqwest::Method::GET,
            "/oidc/mock/start",
            &[],
        ),
    )
    .await
    .expect("no hang");
    started.0.expect(StatusCode::SERVICE_UNAVAILABLE);
    // Requests right after are answered at once, without trying again.
    for _ in 0..3 {
        fresh
            .send(
                &mut Browser::default(),
                reqwest::Method::GET,
                "/oidc/mock/start",
                &[],
            )
            .await
            .0
            .expect(StatusCode::SERVICE_UNAVAILABLE);
    }
}

#[tokio::test]
async fn linking_from_a_session_and_unlinking_never_the_last_way_in() {
    let Some(mut provider) = LocalProvider::start() else {
        return;
    };
    let app = start(&provider.issuer).await;
    let user = app
        .confirmed_account("gus@example.com", Some("gus's long passphrase"))
        .await;
    let mut browser = Browser::default();
    app.send(
        &mut browser,
        reqwest::Method::POST,
        "/sessions",
        &[
            ("email", "gus@example.com"),
            ("password", "gus's long passphrase"),
        ],
    )
    .await
    .0
    .expect(StatusCode::OK);
    // The provider's email is another one, unverified even: linking from a session needs
    // neither, only the session in sudo mode.
    provider
        .claims(json!({ "sub": "gus-at-idp", "email": "g@idp.example", "email_verified": false }));
    // A session alone cannot add a way in: the password confirms it.
    let (refused, _) = app
        .send(&mut browser, reqwest::Method::POST, "/oidc/mock/link", &[])
        .await;
    refused.expect(StatusCode::FORBIDDEN);
    assert_eq!(refused.body["message"], json!("password required"));
    let back = app
        .to_provider_and_back_with(
            &mut browser,
            (reqwest::Method::POST, "/oidc/mock/link?next=/security"),
            &[("password", "gus's long passphrase")],
        )
        .await;
    let (linked, location) = app
        .send(&mut browser, reqwest::Method::GET, &back, &[])
        .await;
    linked.expect(StatusCode::SEE_OTHER);
    assert_eq!(location.as_deref(), Some("/security"));
    let (list, _) = app
        .send(&mut browser, reqwest::Method::GET, "/identities", &[])
        .await;
    list.expect(StatusCode::OK);
    let identities = list.body["identities"].as_array().expect("a list").clone();
    assert_eq!(identities.len(), 1);
    assert_eq!(identities[0]["provider"], json!("mock"));

    // That identity now logs gus in.
    let mut other = Browser::default();
    app.sign_in(&mut other)
        .await
        .0
        .expect(StatusCode::SEE_OTHER);
    assert_eq!(
        app.profile(&mut other).await.body["email"],
        json!("gus@example.com")
    );

    // With a password, the identity can go.
    let id = identities[0]["id"].as_i64().expect("id");
    app.send(
        &mut browser,
        reqwest::Method::DELETE,
        &format!("/identities/{id}"),
        &[],
    )
    .await
    .0
    .expect(StatusCode::OK);
    assert!(app.store.list_identities(user.id).await.unwrap().is_empty());

    // An account made by a provider has no password: its only identity stays.
    provider.claims(json!({ "sub": "hal-1", "email": "hal@example.com", "email_verified": true }));
    let mut hal = Browser::default();
    app.sign_in(&mut hal).await.0.expect(StatusCode::SEE_OTHER);
    let (list, _) = app
        .send(&mut hal, reqwest::Method::GET, "/identities", &[])
        .await;
    let id = list.body["identities"][0]["id"].as_i64().expect("id");
    let (refused, _) = app
        .send(
            &mut hal,
            reqwest::Method::DELETE,
            &format!("/identities/{id}"),
            &[],
        )
        .await;
    refused.expect(StatusCode::CONFLICT);

    // An identity linked to one account cannot be linked to another.
    provider.claims(json!({ "sub": "hal-1", "email": "hal@example.com", "email_verified": true }));
    let back = app
        .to_provider_and_back_with(
            &mut browser,
            (reqwest::Method::POST, "/oidc/mock/link"),
            &[("password", "gus's long passphrase")],
        )
        .await;
    app.send(&mut browser, reqwest::Method::GET, &back, &[])
        .await
        .0
        .expect(StatusCode::CONFLICT);
}

#[tokio::test]
async fn a_provider_sign_in_still_asks_for_an_enrolled_second_factor() {
    let Some(mut provider) = LocalProvider::start() else {
        return;
    };
    let app = start(&provider.issuer).await;
    provider.claims(json!({ "sub": "ida-1", "email": "ida@example.com", "email_verified": true }));
    let mut browser = Browser::default();
    app.sign_in(&mut browser)
        .await
        .0
        .expect(StatusCode::SEE_OTHER);
    let client =
        tower_auth::Client::new(None).session(browser.cookies.get(SESSION).map(String::as_str));
    let enrolment = app
        .auth
        .start_totp_enrolment(&client, None)
        .await
        .expect("enrol");
    app.auth
        .confirm_totp(&client, &totp::totp_now(&enrolment.secret))
        .await
        .expect("confirm");

    let mut other = Browser::default();
    let (answer, _) = app.sign_in(&mut other).await;
    answer.expect(StatusCode::UNAUTHORIZED);
    assert_eq!(answer.body["message"], json!("second factor required"));
    assert!(!other.cookies.contains_key(SESSION));
    assert!(other.cookies.contains_key("__Host-second_factor"));
    // The next time step's code finishes it (the enrolment spent this one).
    let next_step = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 30;
    let code = totp::totp(&totp::base32_decode(&enrolment.secret), next_step);
    let (finished, _) = app
        .send(
            &mut other,
            reqwest::Method::POST,
            "/sessions/second_factor",
            &[("code", &code)],
        )
        .await;
    finished.expect(StatusCode::OK);
    assert_eq!(finished.body["methods"], json!(["totp", "provider"]));
}

#[tokio::test]
async fn a_plain_oauth2_provider_signs_in_through_its_userinfo() {
    let Some(mut provider) = LocalProvider::start() else {
        return;
    };
    let app = start(&provider.issuer).await;
    let (listed, _) = app
        .send(
            &mut Browser::default(),
            reqwest::Method::GET,
            "/oidc/providers",
            &[],
        )
        .await;
    assert_eq!(
        listed.body,
        json!({ "providers": [{ "id": "mock", "name": "Mock" }, { "id": "plain", "name": "Plain" }] })
    );
    provider.claims(json!({ "sub": "kim-1", "email": "kim@example.com", "email_verified": true }));
    let mut browser = Browser::default();
    let back = app
        .to_provider_and_back(
            &mut browser,
            (reqwest::Method::GET, "/oidc/plain/start?next=/here"),
        )
        .await;
    assert!(back.contains("/oidc/plain/callback?"), "{back}");
    let (answer, location) = app
        .send(&mut browser, reqwest::Method::GET, &back, &[])
        .await;
    answer.expect(StatusCode::SEE_OTHER);
    assert_eq!(location.as_deref(), Some("/here"));
    assert_eq!(
        app.profile(&mut browser).await.body["email"],
        json!("kim@example.com")
    );
    let kim = app
        .store
        .find_user_by(UserLookup::Email("kim@example.com"))
        .await
        .unwrap()
        .expect("an account");
    // The same person at the other provider is another identity: it links to the same
    // (confirmed) account by the verified email.
    let mut again = Browser::default();
    app.sign_in(&mut again)
        .await
        .0
        .expect(StatusCode::SEE_OTHER);
    let providers: Vec<String> = app
        .store
        .list_identities(kim.user.id)
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.provider)
        .collect();
    assert_eq!(providers, ["plain", "mock"]);

    // A userinfo answer too large to be a person's claims is refused, unread.
    provider.claims(json!({ "sub": "kim-1", "userinfo_only": { "padding": "x".repeat(100_000) } }));
    let mut browser = Browser::default();
    let back = app
        .to_provider_and_back(&mut browser, (reqwest::Method::GET, "/oidc/plain/start"))
        .await;
    let (refused, _) = app
        .send(&mut browser, reqwest::Method::GET, &back, &[])
        .await;
    refused.expect(StatusCode::UNAUTHORIZED);
    assert_eq!(
        refused.body["message"],
        json!("the sign-in provider refused: userinfo too large")
    );

    // A userinfo answer the hook cannot read is refused.
    provider.claims(json!({ "sub": null, "email": "x@example.com", "email_verified": true }));
    let mut browser = Browser::default();
    let back = app
        .to_provider_and_back(&mut browser, (reqwest::Method::GET, "/oidc/plain/start"))
        .await;
    app.send(&mut browser, reqwest::Method::GET, &back, &[])
        .await
        .0
        .expect(StatusCode::UNAUTHORIZED);
}
