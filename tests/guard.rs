//! The login-redirect guard over real HTTP: a browser without a session is sent to the
//! login page with the way back, an API client gets the no-session status, a logged-in
//! user goes through; the way back is kept on this site.

#[path = "support/http.rs"]
mod http_support;

use axum::Router;
use axum::routing::{get, post};
use http_support::{client, hardened_config, serve, spec_config};
use reqwest::StatusCode;
use tower_auth::{Auth, AuthConfig, CurrentUser, LoginAttempt, LoginRequiredLayer, MemoryStore};

const PW: &str = "correct horse battery staple";

async fn app(config: AuthConfig) -> (Auth, http_support::TestServer) {
    let auth = Auth::new(MemoryStore::new(), config).expect("config");
    let private = Router::new()
        .route(
            "/private",
            get(|CurrentUser(u): CurrentUser| async move { u.email }),
        )
        .route("/private/save", post(|| async { "saved" }))
        .route_layer(LoginRequiredLayer::new("/login"));
    let router = Router::new()
        .route("/login", get(|| async { "login form" }))
        .route("/", get(|| async { "home" }))
        .merge(private)
        .layer(auth.layer());
    let server = serve(router).await;
    (auth, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browsers_go_to_the_login_page_and_api_clients_get_401() {
    let (auth, server) = app(hardened_config()).await;
    let http = client();
    let html = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

    let page = http
        .get(server.url("/private?tab=email&x=1"))
        .header("accept", html)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        page.headers()["location"],
        "/login?next=%2Fprivate%3Ftab%3Demail%26x%3D1"
    );
    // What a browser sends when it navigates, whatever its Accept header.
    let navigate = http
        .get(server.url("/private"))
        .header("sec-fetch-mode", "navigate")
        .send()
        .await
        .unwrap();
    assert_eq!(navigate.status(), StatusCode::SEE_OTHER);
    // A form post without a session: to the login page, without a way back to a POST.
    let post = http
        .post(server.url("/private/save"))
        .header("accept", html)
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), StatusCode::SEE_OTHER);
    assert_eq!(post.headers()["location"], "/login");

    for accept in [None, Some("application/json"), Some("*/*")] {
        let mut request = http.get(server.url("/private"));
        if let Some(accept) = accept {
            request = request.header("accept", accept);
        }
        let api = request.send().await.unwrap();
        assert_eq!(api.status(), StatusCode::UNAUTHORIZED, "{accept:?}");
        assert_eq!(
            api.json::<serde_json::Value>().await.unwrap(),
            serde_json::json!({"message": "no valid session"})
        );
    }
    // Unguarded routes are not affected.
    assert_eq!(
        http.get(server.url("/")).send().await.unwrap().status(),
        StatusCode::OK
    );

    // With a session, through.
    auth.register_user("bob@example.com", PW).await.unwrap();
    let logged_in = auth
        .log_in(
            &tower_auth::Client::default(),
            LoginAttempt::new("bob@example.com", PW),
        )
        .await
        .unwrap();
    let cookie = format!("{}={}", auth.config().cookie.name, logged_in.session_id);
    for accept in ["application/json", html] {
        let ok = http
            .get(server.url("/private"))
            .header("accept", accept)
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(ok.status(), StatusCode::OK);
        assert_eq!(ok.text().await.unwrap(), "bob@example.com");
    }
    // A made-up session is no session.
    let made_up = http
        .get(server.url("/private"))
        .header("accept", html)
        .header("cookie", format!("{}=made-up", auth.config().cookie.name))
        .send()
        .await
        .unwrap();
    assert_eq!(made_up.status(), StatusCode::SEE_OTHER);
}

/// The spec preset's no-session status is the seed's 403, for the guard too.
/// The guard covers the routes it was put on, never the router's fallback: an unknown URL
/// is a 404 with or without a session, for a browser and an API client alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_urls_are_404_behind_the_guard() {
    let (_auth, server) = app(hardened_config()).await;
    let http = client();
    for path in ["/nonexistent", "/private/nope", "/login/x"] {
        for accept in ["text/html", "application/json"] {
            let answer = http
                .get(server.url(path))
                .header("accept", accept)
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status(), StatusCode::NOT_FOUND, "{path} ({accept})");
        }
    }
    let answer = http.get(server.url("/private")).send().await.unwrap();
    assert_eq!(
        answer.status(),
        StatusCode::UNAUTHORIZED,
        "the guard still guards"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_clients_get_the_configured_status() {
    let (_, server) = app(spec_config()).await;
    let api = client().get(server.url("/private")).send().await.unwrap();
    assert_eq!(api.status(), StatusCode::FORBIDDEN);
}

/// A path that would send the way back off this site is not offered as one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_way_back_never_leaves_the_site() {
    let (_, server) = app(hardened_config()).await;
    let raw = http_support::raw(
        server.addr,
        b"GET //private?to=//evil.example HTTP/1.1\r\nHost: x\r\nAccept: text/html\r\nConnection: close\r\n\r\n",
    )
    .await;
    // Sent to the login page, and the way back (if any) stays on this site (the test
    // server merges the slashes first, as the spec server does).
    assert_eq!(raw.status(), 303);
    let location = raw.header("location").expect("a location");
    let next = location.strip_prefix("/login?next=").unwrap_or("/");
    let next = percent_encoding::percent_decode_str(next)
        .decode_utf8()
        .unwrap();
    assert_eq!(tower_auth::safe_next(Some(&next)), next, "{location}");
    assert!(!next.starts_with("//"), "{location}");
}
