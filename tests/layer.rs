//! `AuthLayer` and the extractors: the context on plain tower services, lazy loading (a
//! counting store proves the I/O), `CurrentUser` / `MaybeUser` outcomes, and session cookies
//! set by handlers of the host app, beside tower-cookies.

#[path = "support/http.rs"]
mod http_support;
#[path = "support/store.rs"]
mod store_support;

use std::collections::BTreeMap;
use std::convert::Infallible;

use axum::Router;
use axum::extract::Extension;
use axum::routing::get;
use http_support::{TestServer, client, hardened_config, serve, spec_config};
use serde_json::json;
use store_support::{Calls, InstrumentedStore};
use tower::{Layer as _, ServiceExt as _};
use tower_auth::{Auth, AuthConfig, AuthContext, AuthLayer, CurrentUser, MaybeUser, MemoryStore};

// ----- helpers ------------------------------------------------------------------------------

/// An `Auth` over a counting store with one registered, logged-in user; returns the
/// session id and the cookie name.
async fn logged_in(config: AuthConfig) -> (Auth, Calls, String) {
    let store = InstrumentedStore::memory();
    let calls = store.calls();
    let auth = Auth::new(store, config).expect("valid config");
    auth.register_user("bob@bob.com", "a perfectly fine passphrase")
        .await
        .unwrap();
    let session_id = auth
        .create_session("bob@bob.com")
        .await
        .unwrap()
        .expect("known user");
    // The registration's confirmation mail (hardened) goes out now, not while a test
    // counts store calls.
    auth.flush_mail().await;
    auth.background_idle().await;
    (auth, calls, session_id)
}

fn cookie_header(auth: &Auth, session_id: &str) -> String {
    format!("{}={session_id}", auth.config().cookie.name)
}

async fn handler_both(
    CurrentUser(current): CurrentUser,
    MaybeUser(maybe): MaybeUser,
    Extension(context): Extension<AuthContext>,
) -> String {
    let again = context.user().await.expect("store healthy");
    format!(
        "{} {} {}",
        current.email,
        maybe.map(|u| u.email).unwrap_or_default(),
        again.map(|u| u.email).unwrap_or_default()
    )
}

/// A host app with routes that do and don't ask for the user, behind `auth.layer()`.
async fn host_app(auth: &Auth) -> TestServer {
    let app = Router::new()
        .route("/plain", get(|| async { "no user needed" }))
        .route(
            "/context-only",
            get(|Extension(context): Extension<AuthContext>| async move {
                // Holding the context (and reading the cookie) costs no I/O either.
                format!("has cookie: {}", context.session_id().is_some())
            }),
        )
        .route("/both", get(handler_both))
        .route(
            "/current",
            get(|CurrentUser(user): CurrentUser| async move { user.email }),
        )
        .route(
            "/maybe",
            get(|MaybeUser(user): MaybeUser| async move {
                user.map_or_else(|| "anonymous".to_owned(), |u| u.email)
            }),
        )
        .layer(auth.layer());
    serve(app).await
}

async fn get_text(
    server: &TestServer,
    path: &str,
    cookie: Option<&str>,
) -> (u16, Option<String>, String) {
    let mut request = client().get(server.url(path));
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, content_type, response.text().await.unwrap())
}

// ----- AuthLayer on a plain tower service ---------------------------------------------------

/// A non-axum service: answers with the user's email, or `anonymous`.
fn whoami_service()
-> impl tower::Service<http::Request<String>, Response = http::Response<String>, Error = Infallible>
+ Clone {
    tower::service_fn(|req: http::Request<String>| async move {
        let context = req
            .extensions()
            .get::<AuthContext>()
            .cloned()
            .expect("AuthLayer put an AuthContext in the extensions");
        let user = context.user().await.expect("store healthy");
        let body = user.map_or_else(|| "anonymous".to_owned(), |u| u.email);
        Ok::<_, Infallible>(http::Response::new(body))
    })
}

fn request(cookie: Option<&str>) -> http::Request<String> {
    let mut builder = http::Request::builder().uri("/whoami");
    if let Some(cookie) = cookie {
        builder = builder.header(http::header::COOKIE, cookie);
    }
    builder.body(String::new()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn layer_on_a_plain_tower_service() {
    let (auth, calls, session_id) = logged_in(spec_config()).await;
    let service = AuthLayer::new(auth.clone()).layer(whoami_service());

    let before = calls.snapshot();
    let response = service
        .clone()
        .oneshot(request(Some(&cookie_header(&auth, &session_id))))
        .await
        .unwrap();
    assert_eq!(response.body(), "bob@bob.com");
    assert_eq!(
        calls.requests_since(&before),
        BTreeMap::from([("find_session", 1)])
    );

    let before = calls.snapshot();
    let response = service.clone().oneshot(request(None)).await.unwrap();
    assert_eq!(response.body(), "anonymous");
    assert_eq!(
        calls.requests_since(&before),
        BTreeMap::new(),
        "no cookie, no I/O"
    );

    let response = service
        .clone()
        .oneshot(request(Some("session_id=not-a-session")))
        .await
        .unwrap();
    assert_eq!(response.body(), "anonymous");

    // `auth.layer()` is the same layer.
    let response = auth
        .layer()
        .layer(whoami_service())
        .oneshot(request(Some(&cookie_header(&auth, &session_id))))
        .await
        .unwrap();
    assert_eq!(response.body(), "bob@bob.com");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn layer_on_a_plain_tower_service_over_http() {
    // A non-axum service (on axum's body type), served by a real HTTP server: `/logout`
    // ends the session and clears the cookie with the header value `SessionCookie` gives,
    // anything else answers who is logged in.
    let (auth, _calls, session_id) = logged_in(hardened_config()).await;
    let service = tower::service_fn(|req: axum::extract::Request| async move {
        let context = req.extensions().get::<AuthContext>().unwrap();
        let mut response = if req.uri().path() == "/logout" {
            let auth = context.auth();
            auth.log_out(&context.client())
                .await
                .expect("store healthy");
            let mut response = axum::response::Response::new(axum::body::Body::from("bye"));
            response.headers_mut().append(
                http::header::SET_COOKIE,
                auth.expired_session_cookie().header_value().clone(),
            );
            response
        } else {
            let user = context.user().await.expect("store healthy");
            let body = user.map_or_else(|| "anonymous".to_owned(), |u| u.email);
            axum::response::Response::new(axum::body::Body::from(body))
        };
        response
            .headers_mut()
            .insert("x-served-by", http::HeaderValue::from_static("plain"));
        Ok::<_, Infallible>(response)
    });
    let service = auth.layer().layer(service);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            axum::ServiceExt::<axum::extract::Request>::into_make_service(service),
        )
        .await
        .unwrap();
    });
    let server = TestServer { addr };
    let cookie = cookie_header(&auth, &session_id);

    let (status, _, body) = get_text(&server, "/anything", Some(&cookie)).await;
    assert_eq!((status, body.as_str()), (200, "bob@bob.com"));
    let (status, _, body) = get_text(&server, "/anything", None).await;
    assert_eq!((status, body.as_str()), (200, "anonymous"));

    let response = client()
        .get(server.url("/logout"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        http_support::set_cookies(&response),
        ["__Host-session_id=; HttpOnly; SameSite=Lax; Secure; Path=/; Max-Age=0"]
    );
    let (status, _, body) = get_text(&server, "/anything", Some(&cookie)).await;
    assert_eq!(
        (status, body.as_str()),
        (200, "anonymous"),
        "the session ended"
    );
}

/// A host app's own JSON login handler: `AuthContext::log_in`, errors through
/// `AuthRejection`, and the cookie returned as a `SessionCookie` response part.
async fn json_login(
    auth: AuthContext,
    axum::Json(form): axum::Json<BTreeMap<String, String>>,
) -> Result<(tower_auth::SessionCookie, &'static str), tower_auth::AuthRejection> {
    let field = |name: &str| form.get(name).map_or("", String::as_str);
    let logged_in = auth.log_in(field("email"), field("password")).await?;
    Ok((logged_in.cookie, "welcome"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_handlers_set_the_session_cookie_beside_tower_cookies() {
    // The host app keeps its own cookies with tower-cookies; the session cookie comes from
    // its own login handler. Neither gets in the other's way.
    for config in [spec_config(), hardened_config()] {
        let (auth, _calls, _) = logged_in(config).await;
        let app = Router::new()
            .route("/login", axum::routing::post(json_login))
            .route(
                "/me",
                get(
                    |CurrentUser(user): CurrentUser, cookies: tower_cookies::Cookies| async move {
                        let theme = cookies.get("theme").map(|c| c.value().to_owned());
                        cookies.add(tower_cookies::Cookie::new("visited", "yes"));
                        format!("{} {}", user.email, theme.unwrap_or_default())
                    },
                ),
            )
            .with_state(auth.clone())
            .layer(auth.layer())
            .layer(tower_cookies::CookieManagerLayer::new());
        let server = serve(app).await;
        let name = auth.config().cookie.name.clone();

        let log_in = |password: &'static str| {
            client()
                .post(server.url("/login"))
                .json(&json!({"email": "bob@bob.com", "password": password}))
                .send()
        };
        let wrong = log_in("not the passphrase").await.unwrap();
        assert_eq!(wrong.status(), 401, "{name}");
        assert!(http_support::set_cookies(&wrong).is_empty());
        let body: serde_json::Value = wrong.json().await.unwrap();
        assert_eq!(body, json!({"message": "invalid email or password"}));

        let ok = log_in("a perfectly fine passphrase").await.unwrap();
        assert_eq!(ok.status(), 200, "{name}");
        let set_cookies = http_support::set_cookies(&ok);
        // The session cookie, then (hardened) the trusted-device cookie.
        let device = auth.config().trusted_device_cookie.as_ref();
        assert_eq!(
            set_cookies.len(),
            1 + usize::from(device.is_some()),
            "{set_cookies:?}"
        );
        if let Some(device) = device {
            assert!(
                set_cookies[1].starts_with(&format!("{device}=")),
                "{set_cookies:?}"
            );
        }
        let (pair, attributes) = set_cookies[0].split_once("; ").unwrap();
        let session_id = pair.strip_prefix(&format!("{name}=")).unwrap().to_owned();
        let secure = if auth.config().cookie.secure {
            "; Secure"
        } else {
            ""
        };
        assert_eq!(
            attributes,
            format!("HttpOnly; SameSite=Lax{secure}; Path=/")
        );
        assert_eq!(ok.text().await.unwrap(), "welcome");

        let me = client()
            .get(server.url("/me"))
            .header("cookie", format!("theme=dark; {name}={session_id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(me.status(), 200);
        assert_eq!(http_support::set_cookies(&me), ["visited=yes"]);
        assert_eq!(me.text().await.unwrap(), "bob@bob.com dark");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_of_two_session_cookies_counts() {
    let (auth, _calls, session_id) = logged_in(spec_config()).await;
    let server = host_app(&auth).await;
    let valid = format!("session_id={session_id}");
    for (cookie, expected) in [
        (format!("{valid}; session_id=garbage"), "bob@bob.com"),
        (format!("session_id=garbage; {valid}"), "anonymous"),
    ] {
        let (status, _, body) = get_text(&server, "/maybe", Some(&cookie)).await;
        assert_eq!((status, body.as_str()), (200, expected), "{cookie}");
    }
}

#[test]
fn session_cookies_never_show_their_value_in_debug_output() {
    let auth = Auth::new(MemoryStore::new(), spec_config()).expect("valid config");
    let cookie = auth.session_cookie("0d8f1bb4-secret-token");
    assert!(
        cookie
            .header_value()
            .to_str()
            .unwrap()
            .starts_with("session_id=0d8f1bb4-secret-token; ")
    );
    assert_eq!(format!("{cookie:?}"), "SessionCookie(..)");
}

// ----- lazy loading, counted -----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_that_never_asks_for_the_user_does_no_store_io() {
    let (auth, calls, session_id) = logged_in(spec_config()).await;
    let server = host_app(&auth).await;
    let cookie = cookie_header(&auth, &session_id);

    for path in ["/plain", "/context-only"] {
        let before = calls.snapshot();
        let (status, _, body) = get_text(&server, path, Some(&cookie)).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert_eq!(
            calls.requests_since(&before),
            BTreeMap::new(),
            "{path} touched the store"
        );
    }
    let (_, _, body) = get_text(&server, "/context-only", Some(&cookie)).await;
    assert_eq!(body, "has cookie: true");

    // The counting store does count: a route that asks does one lookup.
    let before = calls.snapshot();
    let (status, _, body) = get_text(&server, "/current", Some(&cookie)).await;
    assert_eq!((status, body.as_str()), (200, "bob@bob.com"));
    assert_eq!(
        calls.requests_since(&before),
        BTreeMap::from([("find_session", 1)])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_user_is_loaded_once_per_request() {
    for config in [spec_config(), hardened_config()] {
        let (auth, calls, session_id) = logged_in(config).await;
        let server = host_app(&auth).await;
        let cookie = cookie_header(&auth, &session_id);
        for _ in 0..3 {
            let before = calls.snapshot();
            let (status, _, body) = get_text(&server, "/both", Some(&cookie)).await;
            assert_eq!(status, 200, "{body}");
            assert_eq!(body, "bob@bob.com bob@bob.com bob@bob.com");
            assert_eq!(
                calls.requests_since(&before),
                BTreeMap::from([("find_session", 1)]),
                "one lookup per request, shared by every extractor"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn current_user_refuses_and_maybe_user_is_none_without_a_valid_session() {
    let (auth, calls, session_id) = logged_in(spec_config()).await;
    let server = host_app(&auth).await;
    let unknown = format!("session_id={}", uuid::Uuid::new_v4());
    let cases: [(&str, Option<&str>, usize); 5] = [
        ("no cookie", None, 0),
        ("empty cookie", Some("session_id="), 0),
        ("garbage", Some("session_id=garbage"), 1),
        ("unknown", Some(&unknown), 1),
        ("other cookie", Some("theme=dark"), 0),
    ];
    for (what, cookie, lookups) in cases {
        let before = calls.snapshot();
        let (status, content_type, body) = get_text(&server, "/current", cookie).await;
        assert_eq!(status, 403, "{what}");
        // The spec preset refuses as the seed's /profile does.
        assert_eq!(content_type.as_deref(), Some("text/html; charset=utf-8"));
        assert!(body.contains("<title>403 Forbidden</title>"), "{body}");
        let expected: BTreeMap<_, _> = (lookups > 0)
            .then_some(("find_session", lookups))
            .into_iter()
            .collect();
        assert_eq!(calls.requests_since(&before), expected, "{what}");

        let (status, _, body) = get_text(&server, "/maybe", cookie).await;
        assert_eq!((status, body.as_str()), (200, "anonymous"), "{what}");
        let (status, _, _) = get_text(&server, "/both", cookie).await;
        assert_eq!(status, 403, "{what}");
    }

    // An ended session is refused too.
    let cookie = format!("session_id={session_id}");
    let (_, _, body) = get_text(&server, "/maybe", Some(&cookie)).await;
    assert_eq!(body, "bob@bob.com");
    auth.log_out(&tower_auth::Client::new(None).session(Some(&session_id)))
        .await
        .unwrap();
    let (status, _, _) = get_text(&server, "/current", Some(&cookie)).await;
    assert_eq!(status, 403);
    let (_, _, body) = get_text(&server, "/maybe", Some(&cookie)).await;
    assert_eq!(body, "anonymous");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn current_user_refuses_with_json_in_the_hardened_preset() {
    let (auth, _calls, session_id) = logged_in(hardened_config()).await;
    let server = host_app(&auth).await;
    let (status, content_type, body) = get_text(&server, "/current", None).await;
    assert_eq!(
        status, 401,
        "the hardened preset answers 401 without a session"
    );
    assert_eq!(content_type.as_deref(), Some("application/json"));
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body, json!({"message": "no valid session"}));

    // The hardened cookie name is the one that counts.
    let (status, _, _) = get_text(
        &server,
        "/current",
        Some(&format!("session_id={session_id}")),
    )
    .await;
    assert_eq!(status, 401);
    let (status, _, body) = get_text(
        &server,
        "/current",
        Some(&cookie_header(&auth, &session_id)),
    )
    .await;
    assert_eq!((status, body.as_str()), (200, "bob@bob.com"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extractors_without_the_layer_fail_closed() {
    // A host app that forgot `.layer(auth.layer())`: a 500 with a generic message, never
    // a user and never a panic.
    let app = Router::new()
        .route(
            "/current",
            get(|CurrentUser(user): CurrentUser| async move { user.email }),
        )
        .route(
            "/maybe",
            get(|MaybeUser(user): MaybeUser| async move { format!("{user:?}") }),
        );
    let server = serve(app).await;
    for path in ["/current", "/maybe"] {
        let (status, content_type, body) =
            get_text(&server, path, Some("session_id=whatever")).await;
        assert_eq!(status, 500, "{path}");
        assert_eq!(content_type.as_deref(), Some("application/json"));
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            body,
            json!({"message": "server misconfigured: AuthLayer does not cover this route; \
                                add `.layer(auth.layer())` around it"}),
            "the answer names the mistake instead of a bare 500"
        );
    }
}
