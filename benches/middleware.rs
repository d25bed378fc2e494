//! What the layer and an authenticated request cost, in process (no sockets), with
//! `tower::ServiceExt::oneshot` on an axum `Router`.
//!
//! ```sh
//! cargo bench --bench middleware              # about 40 s
//! cargo bench --bench middleware -- --quick
//! ```
//!
//! Every request carries the same session cookie, and every response body is read whole.
//!
//! | bench | router |
//! |---|---|
//! | `request/bare` | `GET /hello`, no layer |
//! | `request/layer_never_asks` | the same route with `.layer(auth.layer())`: the handler never asks for the user |
//! | `request/current_user_memory` | `GET /me` with `CurrentUser`, `MemoryStore` |
//! | `request/current_user_sqlite` | `GET /me` with `CurrentUser`, `SqliteStore` on a temporary file |
//! | `request/router_profile_sqlite` | the crate's own `auth.router()` `GET /profile` (guard middleware included), SQLite |
//! | `concurrent_32/current_user_*` | 32 `GET /me` at once (spawned tasks), per batch; throughput in requests/s |
//!
//! The `request/*` figures are the latency of one request alone: for SQLite that includes a
//! round trip to sqlx's connection thread and back, which a server under load overlaps with
//! other requests (see `concurrent_32`).
//!
//! With `TOWER_AUTH_BENCH_SERVE=127.0.0.1:PORT` set, the binary instead serves the
//! `GET /hello` router over HTTP (bare, or with the layer when `TOWER_AUTH_BENCH_LAYER=1`)
//! until killed, so `benches/load.sh` can compare both with wrk.

use std::hint::black_box;
use std::path::Path;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use criterion::{Criterion, criterion_group};
use http::{Request, StatusCode, header};
use tower::ServiceExt as _;
use tower_auth::{Auth, AuthConfig, CurrentUser, MemoryStore, SqliteStore, Store};

const EMAIL: &str = "bench@example.com";
const PASSWORD: &str = "bench password";

/// `GET /hello`: a route that never asks who the user is.
fn hello_router() -> Router {
    Router::new().route("/hello", get(|| async { "hello" }))
}

/// `GET /me`: a route that needs the logged-in user.
fn me_router() -> Router {
    Router::new().route(
        "/me",
        get(|CurrentUser(user): CurrentUser| async move { user.email }),
    )
}

fn config() -> AuthConfig {
    let mut config = AuthConfig::spec();
    config.bcrypt_cost = 4;
    config
}

/// An `Auth` over `store` with one registered user, and that user's session cookie.
async fn logged_in(store: impl Store) -> (Auth, String) {
    let auth = Auth::new(store, config()).expect("valid config");
    auth.register_user(EMAIL, PASSWORD).await.expect("register");
    let token = auth
        .create_session(EMAIL)
        .await
        .expect("session")
        .expect("known user");
    let cookie = format!("{}={token}", auth.config().cookie.name);
    (auth, cookie)
}

async fn sqlite_store(dir: &Path) -> SqliteStore {
    let url = format!("sqlite://{}?mode=rwc", dir.join("bench.db").display());
    SqliteStore::connect(&url).await.expect("sqlite store")
}

/// One request through `app`, body read whole; panics unless the answer is 200.
async fn get_ok(app: &Router, uri: &'static str, cookie: &str) -> usize {
    let request = Request::builder()
        .uri(uri)
        .header(header::COOKIE, cookie)
        .body(Body::empty())
        .expect("request");
    let response = app.clone().oneshot(request).await.expect("infallible");
    assert_eq!(response.status(), StatusCode::OK, "{uri}");
    axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body")
        .len()
}

fn requests(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");

    let (memory_auth, memory_cookie) = runtime.block_on(logged_in(MemoryStore::new()));
    let (sqlite_auth, sqlite_cookie) = runtime.block_on(async {
        let store = sqlite_store(dir.path()).await;
        logged_in(store).await
    });

    let bare = hello_router();
    let layered = hello_router().layer(memory_auth.layer());
    let me_memory = me_router().layer(memory_auth.layer());
    let me_sqlite = me_router().layer(sqlite_auth.layer());
    let profile_sqlite = sqlite_auth.router();

    let cases: [(&str, &Router, &'static str, &str); 5] = [
        ("bare", &bare, "/hello", &memory_cookie),
        ("layer_never_asks", &layered, "/hello", &memory_cookie),
        ("current_user_memory", &me_memory, "/me", &memory_cookie),
        ("current_user_sqlite", &me_sqlite, "/me", &sqlite_cookie),
        (
            "router_profile_sqlite",
            &profile_sqlite,
            "/profile",
            &sqlite_cookie,
        ),
    ];

    let mut group = c.benchmark_group("request");
    group.measurement_time(std::time::Duration::from_secs(4));
    for (name, app, uri, cookie) in cases {
        // Fail here, not in the middle of a measurement, if the setup is wrong.
        runtime.block_on(get_ok(app, uri, cookie));
        group.bench_function(name, |b| {
            b.to_async(&runtime)
                .iter(|| async { black_box(get_ok(app, uri, cookie).await) });
        });
    }
    group.finish();

    // The same lookups, 32 at once (as a server under load has them): time per batch, so
    // per request = time / 32. Each request is a spawned task on the one-thread runtime.
    let mut group = c.benchmark_group("concurrent_32");
    group
        .measurement_time(std::time::Duration::from_secs(4))
        .throughput(criterion::Throughput::Elements(32));
    for (name, app, uri, cookie) in [cases[2], cases[3]] {
        let (app, cookie) = (app.clone(), cookie.to_owned());
        group.bench_function(name, |b| {
            b.to_async(&runtime).iter(|| {
                let (app, cookie) = (app.clone(), cookie.clone());
                async move {
                    let mut set = tokio::task::JoinSet::new();
                    for _ in 0..32 {
                        let (app, cookie) = (app.clone(), cookie.clone());
                        set.spawn(async move { get_ok(&app, uri, &cookie).await });
                    }
                    while let Some(done) = set.join_next().await {
                        black_box(done.expect("join"));
                    }
                }
            });
        });
    }
    group.finish();
    drop(dir);
}

criterion_group!(benches, requests);

/// Serves `GET /hello` over HTTP, with or without the layer, for `benches/load.sh`.
fn serve(addr: &str, with_layer: bool) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let app = if with_layer {
            let (auth, _) = logged_in(MemoryStore::new()).await;
            hello_router().layer(auth.layer())
        } else {
            hello_router()
        };
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
        eprintln!(
            "serving GET /hello on {addr} ({})",
            if with_layer { "with AuthLayer" } else { "bare" }
        );
        axum::serve(listener, app).await.expect("serve");
    });
}

fn main() {
    if let Ok(addr) = std::env::var("TOWER_AUTH_BENCH_SERVE") {
        let with_layer = std::env::var("TOWER_AUTH_BENCH_LAYER").is_ok_and(|v| v == "1");
        serve(&addr, with_layer);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
