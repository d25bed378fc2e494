//! Passkey ceremonies over real HTTP, as an attacker would abuse them: a ceremony cookie
//! is single use, cannot be altered or moved to another purpose or account, expires, and a
//! malformed answer is a 4xx; the routes exist only with second factors and a public
//! origin, and the options name the configured relying party. (Whole ceremonies with an
//! authenticator run in Chromium: tests/e2e/second_factors_browser.py.)

#![cfg(feature = "passkeys")]

#[path = "support/http.rs"]
mod http_support;

use std::collections::HashMap;

use http_support::{Answer, TestServer, form, serve_auth};
use reqwest::StatusCode;
use serde_json::json;
use tower_auth::clock::ManualClock;
use tower_auth::second_factor::{SecondFactorConfig, SecondFactorKey};
use tower_auth::{Auth, MemoryStore};

const CEREMONY: &str = "__Host-passkey_ceremony";

struct App {
    auth: Auth,
    clock: ManualClock,
    server: TestServer,
}

async fn start(public_origin: Option<&str>) -> App {
    let mut config = http_support::hardened_config();
    config.public_origin = public_origin.map(str::to_owned);
    config.second_factors = Some(SecondFactorConfig::new(
        SecondFactorKey::from_bytes([9; 32]),
        "Example App",
    ));
    let clock = ManualClock::new(1_800_000_000_000);
    let auth = Auth::builder(MemoryStore::new(), config)
        .clock(clock.clone())
        .build()
        .expect("valid config");
    let server = serve_auth(&auth).await;
    App {
        auth,
        clock,
        server,
    }
}

impl App {
    /// Sends a form with these cookies (and the configured origin, as a browser would).
    async fn post(
        &self,
        path: &str,
        cookies: &HashMap<&str, String>,
        fields: &[(&str, &str)],
    ) -> Answer {
        let mut request = http_support::client()
            .post(self.server.url(path))
            .header("origin", "https://app.example.com");
        let cookie: Vec<String> = cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
        if !cookie.is_empty() {
            request = request.header("cookie", cookie.join("; "));
        }
        request = request
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(fields));
        Answer::read(request.send().await.expect("request")).await
    }
}

fn ceremony_of(answer: &Answer) -> String {
    answer
        .set_cookies
        .iter()
        .find_map(|c| c.split(';').next()?.strip_prefix(&format!("{CEREMONY}=")))
        .expect("a ceremony cookie")
        .to_owned()
}

/// An assertion in the shape browsers send, which no authenticator made.
fn forged_assertion() -> String {
    json!({
        "id": "AAAA", "rawId": "AAAA", "type": "public-key",
        "response": { "authenticatorData": "AAAA", "clientDataJSON": "AAAA",
                      "signature": "AAAA", "userHandle": "AAAAAAAAAAAAAAAAAAAAAA" },
        "extensions": {}
    })
    .to_string()
}

#[tokio::test]
async fn login_ceremonies_are_single_use_sealed_and_expiring() {
    let app = start(Some("https://app.example.com")).await;
    let none = HashMap::new();
    let started = app.post("/sessions/passkey/start", &none, &[]).await;
    started.expect(StatusCode::OK);
    assert_eq!(started.body["publicKey"]["rpId"], json!("app.example.com"));
    assert_eq!(
        started.body["publicKey"]["userVerification"],
        json!("required")
    );
    assert!(started.body["publicKey"]["challenge"].as_str().is_some());
    let cookie_line = started
        .set_cookies
        .iter()
        .find(|c| c.starts_with(CEREMONY))
        .expect("ceremony cookie");
    assert!(cookie_line.contains("HttpOnly") && cookie_line.contains("Secure"));
    let ceremony = ceremony_of(&started);

    // A forged answer is refused (4xx), and spends the ceremony.
    let cookies = HashMap::from([(CEREMONY, ceremony.clone())]);
    let forged = forged_assertion();
    let first = app
        .post("/sessions/passkey", &cookies, &[("credential", &forged)])
        .await;
    first.expect(StatusCode::UNAUTHORIZED);
    let again = app
        .post("/sessions/passkey", &cookies, &[("credential", &forged)])
        .await;
    again.expect(StatusCode::BAD_REQUEST);

    // Malformed answers, missing or altered cookies: 4xx, never 5xx.
    let fresh = ceremony_of(&app.post("/sessions/passkey/start", &none, &[]).await);
    let mut altered = fresh.clone();
    altered.pop();
    altered.push(if fresh.ends_with('A') { 'B' } else { 'A' });
    for (cookie, credential, status) in [
        (None, forged.as_str(), StatusCode::BAD_REQUEST),
        (Some(altered), forged.as_str(), StatusCode::BAD_REQUEST),
        (
            Some("v1:garbage".to_owned()),
            forged.as_str(),
            StatusCode::BAD_REQUEST,
        ),
        (Some(fresh.clone()), "not json", StatusCode::UNAUTHORIZED),
    ] {
        let cookies: HashMap<&str, String> = cookie.into_iter().map(|c| (CEREMONY, c)).collect();
        app.post("/sessions/passkey", &cookies, &[("credential", credential)])
            .await
            .expect(status);
    }
    app.post("/sessions/passkey", &HashMap::new(), &[])
        .await
        .expect(StatusCode::BAD_REQUEST);

    // Five minutes on, a ceremony is over.
    let late = ceremony_of(&app.post("/sessions/passkey/start", &none, &[]).await);
    app.clock.advance(std::time::Duration::from_secs(301));
    let cookies = HashMap::from([(CEREMONY, late)]);
    app.post("/sessions/passkey", &cookies, &[("credential", &forged)])
        .await
        .expect(StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_login_ceremony_cannot_register_a_passkey() {
    let app = start(Some("https://app.example.com")).await;
    app.auth
        .register_user("mallory@example.com", "correct horse battery staple")
        .await
        .expect("register");
    let logged_in = app
        .post(
            "/sessions",
            &HashMap::new(),
            &[
                ("email", "mallory@example.com"),
                ("password", "correct horse battery staple"),
            ],
        )
        .await;
    logged_in.expect(StatusCode::OK);
    let session = logged_in
        .set_cookies
        .iter()
        .find_map(|c| c.split(';').next()?.strip_prefix("__Host-session_id="))
        .expect("a session")
        .to_owned();
    // A login ceremony's cookie offered to the registration: refused.
    let login = ceremony_of(
        &app.post("/sessions/passkey/start", &HashMap::new(), &[])
            .await,
    );
    let cookies = HashMap::from([("__Host-session_id", session.clone()), (CEREMONY, login)]);
    app.post("/passkeys/register", &cookies, &[("credential", "{}")])
        .await
        .expect(StatusCode::BAD_REQUEST);
    // Registration options name the relying party and ask for a discoverable credential.
    let cookies = HashMap::from([("__Host-session_id", session.clone())]);
    // The password confirms it: a session alone is refused.
    app.post("/passkeys/register/start", &cookies, &[])
        .await
        .expect(StatusCode::FORBIDDEN);
    let started = app
        .post(
            "/passkeys/register/start",
            &cookies,
            &[("password", "correct horse battery staple")],
        )
        .await;
    started.expect(StatusCode::OK);
    let key = &started.body["publicKey"];
    assert_eq!(key["rp"]["id"], json!("app.example.com"));
    assert_eq!(key["rp"]["name"], json!("Example App"));
    assert_eq!(
        key["authenticatorSelection"]["residentKey"],
        json!("required")
    );
    assert_eq!(
        key["authenticatorSelection"]["userVerification"],
        json!("required")
    );
    assert_eq!(
        key["user"]["id"].as_str().map(str::len),
        Some(22),
        "the user handle is 16 bytes derived with the key, not the user id"
    );
    let list = http_support::client()
        .get(app.server.url("/passkeys"))
        .header("cookie", format!("__Host-session_id={session}"))
        .send()
        .await
        .expect("request");
    assert_eq!(list.status(), StatusCode::OK);
    assert_eq!(
        list.json::<serde_json::Value>().await.unwrap(),
        json!({ "passkeys": [] })
    );
    // A wrong password counts as a failed login would.
    app.post(
        "/passkeys/register/start",
        &cookies,
        &[("password", "a guess")],
    )
    .await
    .expect(StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn passkey_routes_need_second_factors_and_a_public_origin() {
    for (origin, second_factors) in [(None, true), (Some("https://app.example.com"), false)] {
        let mut config = http_support::hardened_config();
        config.public_origin = origin.map(str::to_owned);
        if second_factors {
            config.second_factors = Some(SecondFactorConfig::new(
                SecondFactorKey::from_bytes([9; 32]),
                "Example App",
            ));
        }
        let auth = Auth::new(MemoryStore::new(), config).expect("valid config");
        let server = serve_auth(&auth).await;
        let answer = http_support::client()
            .post(server.url("/sessions/passkey/start"))
            .send()
            .await
            .expect("request");
        assert_eq!(
            answer.status(),
            StatusCode::NOT_FOUND,
            "{origin:?} {second_factors}"
        );
    }
}
