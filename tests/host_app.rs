//! Protections travel with the API, not with the crate's router: a host app's own login
//! handler (`AuthContext::log_in`) gets per-account and per-client throttling and
//! session-fixation defence without passing anything by hand; its own routes get the
//! same-origin check and `Cache-Control: no-store` from public layers; a missing client
//! address or a missing auth layer is said in the log, not left to fail in silence.

#[path = "support/http.rs"]
mod http_support;
#[path = "support/logs.rs"]
mod logs;

use std::collections::BTreeMap;

use axum::Router;
use axum::routing::{get, post};
use http_support::{TestServer, client, hardened_config, serve, serve_without_connect_info};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tower_auth::{
    Auth, AuthConfig, AuthContext, AuthRejection, CurrentUser, MemoryStore, NoStoreLayer,
    SessionCookie,
};

const PASSWORD: &str = "correct horse battery staple";

/// The host app's own JSON login.
async fn login(
    auth: AuthContext,
    axum::Json(form): axum::Json<BTreeMap<String, String>>,
) -> Result<(SessionCookie, axum::Json<Value>), AuthRejection> {
    let field = |name: &str| form.get(name).map_or("", String::as_str);
    let logged_in = auth.log_in(field("email"), field("password")).await?;
    Ok((
        logged_in.cookie,
        axum::Json(json!({ "welcome": logged_in.user.email })),
    ))
}

/// A host app: its own login, an account page and a state-changing route, with the
/// crate's layers applied by the host.
fn host_app(auth: &Auth) -> Router {
    Router::new()
        .route("/login", post(login))
        .route(
            "/account",
            get(|CurrentUser(user): CurrentUser| async move { user.email }).layer(NoStoreLayer),
        )
        .route(
            "/orders",
            post(|| async { "ordered" }).layer(auth.same_origin_layer()),
        )
        .layer(auth.layer())
}

async fn app(config: AuthConfig) -> (Auth, TestServer) {
    let auth = Auth::new(MemoryStore::new(), config).expect("valid config");
    let server = serve(host_app(&auth)).await;
    (auth, server)
}

async fn log_in(
    server: &TestServer,
    email: &str,
    password: &str,
    cookie: Option<&str>,
) -> reqwest::Response {
    let mut request = client()
        .post(server.url("/login"))
        .json(&json!({ "email": email, "password": password }));
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    request.send().await.expect("login request")
}

/// The `name=value` pair of the session cookie a response sets.
fn session_pair(response: &reqwest::Response, name: &str) -> String {
    http_support::set_cookies(response)
        .into_iter()
        .find(|c| c.starts_with(&format!("{name}=")))
        .and_then(|c| c.split(';').next().map(str::to_owned))
        .expect("a session cookie")
}

async fn account(server: &TestServer, cookie: &str) -> StatusCode {
    client()
        .get(server.url("/account"))
        .header("cookie", cookie)
        .send()
        .await
        .expect("account request")
        .status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_login_is_throttled_per_account() {
    let mut config = hardened_config();
    config.max_login_failures = 3;
    let (auth, server) = app(config).await;
    auth.register_user("alice@example.com", PASSWORD)
        .await
        .unwrap();
    for _ in 0..3 {
        let response = log_in(&server, "alice@example.com", "wrong password!!", None).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let response = log_in(&server, "alice@example.com", PASSWORD, None).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key("retry-after"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_login_is_throttled_per_client() {
    let mut config = hardened_config();
    config.max_login_failures_per_ip = 3;
    let (auth, server) = app(config).await;
    auth.register_user("alice@example.com", PASSWORD)
        .await
        .unwrap();
    // Three accounts, one wrong guess each: only the client's counter can add them up.
    for victim in ["bob@example.com", "carol@example.com", "dave@example.com"] {
        let response = log_in(&server, victim, "wrong password!!", None).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let response = log_in(&server, "alice@example.com", PASSWORD, None).await;
    assert_eq!(
        response.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "the client address reached the login through the context"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_login_ends_the_presented_session() {
    let (auth, server) = app(hardened_config()).await;
    auth.register_user("alice@example.com", PASSWORD)
        .await
        .unwrap();
    let name = auth.config().cookie.name.clone();
    let first = log_in(&server, "alice@example.com", PASSWORD, None).await;
    assert_eq!(first.status(), StatusCode::OK);
    let first = session_pair(&first, &name);
    assert_eq!(account(&server, &first).await, StatusCode::OK);

    let second = log_in(&server, "alice@example.com", PASSWORD, Some(&first)).await;
    assert_eq!(second.status(), StatusCode::OK);
    let second = session_pair(&second, &name);
    assert_ne!(first, second, "a login issues a new token");
    assert_eq!(
        account(&server, &first).await,
        StatusCode::UNAUTHORIZED,
        "the session presented at login is ended (session fixation)"
    );
    assert_eq!(account(&server, &second).await, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_routes_get_the_same_origin_check_and_no_store() {
    let (auth, server) = app(hardened_config()).await;
    auth.register_user("alice@example.com", PASSWORD)
        .await
        .unwrap();
    let own_origin = server.base();
    for (headers, expected) in [
        (vec![], StatusCode::OK),
        (vec![("origin", own_origin.as_str())], StatusCode::OK),
        (vec![("sec-fetch-site", "same-origin")], StatusCode::OK),
        (
            vec![("origin", "http://evil.example")],
            StatusCode::FORBIDDEN,
        ),
        (
            vec![("sec-fetch-site", "cross-site")],
            StatusCode::FORBIDDEN,
        ),
        (vec![("origin", "null")], StatusCode::FORBIDDEN),
    ] {
        let mut request = client().post(server.url("/orders"));
        for (name, value) in &headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("orders request");
        assert_eq!(response.status(), expected, "{headers:?}");
        if expected == StatusCode::FORBIDDEN {
            assert_eq!(
                response.json::<Value>().await.unwrap(),
                json!({ "message": "cross-site request refused" })
            );
        }
    }
    // A read from another site is not refused (it changes nothing, and CORS keeps the
    // answer from the other site's script).
    let name = auth.config().cookie.name.clone();
    let login = log_in(&server, "alice@example.com", PASSWORD, None).await;
    let cookie = session_pair(&login, &name);
    let response = client()
        .get(server.url("/account"))
        .header("cookie", &cookie)
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response
            .headers()
            .get("cache-control")
            .map(|v| v.to_str().unwrap()),
        Some("no-store"),
        "NoStoreLayer marks the host's account page uncacheable"
    );
}

// Current-thread runtimes below: the server runs on the test's thread, so the capture sees
// what it logs.

#[tokio::test]
async fn a_login_without_the_client_address_is_said_once_in_the_log() {
    let capture = logs::Capture::default();
    let _capturing = capture.start();
    let auth = Auth::new(MemoryStore::new(), hardened_config()).expect("valid config");
    auth.register_user("alice@example.com", PASSWORD)
        .await
        .unwrap();
    let server = serve_without_connect_info(host_app(&auth)).await;
    for _ in 0..3 {
        let response = log_in(&server, "alice@example.com", PASSWORD, None).await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    let warnings: Vec<String> = capture
        .events()
        .iter()
        .map(logs::Captured::text)
        .filter(|line| line.contains("per-client login throttling is off"))
        .collect();
    assert_eq!(warnings.len(), 1, "said once, not per login: {warnings:?}");
    assert!(
        warnings[0].contains("into_make_service_with_connect_info"),
        "{warnings:?}"
    );
}

#[tokio::test]
async fn an_extractor_outside_the_layer_says_so_in_the_log_and_the_answer() {
    let capture = logs::Capture::default();
    let _capturing = capture.start();
    let auth = Auth::new(MemoryStore::new(), hardened_config()).expect("valid config");
    let app = Router::new()
        .route(
            "/covered",
            get(|CurrentUser(u): CurrentUser| async move { u.email }),
        )
        .layer(auth.layer())
        .route(
            "/uncovered",
            get(|CurrentUser(u): CurrentUser| async move { u.email }),
        );
    let server = serve(app).await;
    let covered = client().get(server.url("/covered")).send().await.unwrap();
    assert_eq!(
        covered.status(),
        StatusCode::UNAUTHORIZED,
        "no session: refused with the hardened preset's 401"
    );
    let uncovered = client().get(server.url("/uncovered")).send().await.unwrap();
    assert_eq!(uncovered.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body = uncovered.json::<Value>().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("AuthLayer does not cover this route")),
        "{body}"
    );
    let logged = capture
        .events()
        .iter()
        .any(|e| e.text().contains("AuthLayer does not cover this route"));
    assert!(logged, "the mistake is in the log too");
}
