//! Two spec servers (two processes, two pools) on one PostgreSQL database behave as one
//! service: sessions, logouts, reset tokens and duplicate checks are shared at once.

#![cfg(feature = "postgres")]

#[path = "support/pg.rs"]
mod pg;
#[path = "support/process.rs"]
mod process;

use process::{SpecServer, spec_server_binary};
use reqwest::StatusCode;
use reqwest::redirect::Policy;

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .expect("client")
}

async fn post_form(url: String, form: &[(&str, &str)]) -> reqwest::Response {
    client().post(url).form(form).send().await.expect("request")
}

/// The `session_id=<value>` pair from a login response.
fn session_cookie(response: &reqwest::Response) -> String {
    let set_cookie = response
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("Set-Cookie on login");
    set_cookie
        .split(';')
        .next()
        .expect("cookie pair")
        .to_owned()
}

async fn profile_status(base: &str, cookie: &str) -> StatusCode {
    client()
        .get(format!("{base}/profile"))
        .header("Cookie", cookie)
        .send()
        .await
        .expect("profile")
        .status()
}

async fn two_servers() -> Option<(pg::TestDatabase, SpecServer, SpecServer)> {
    let db = pg::test_database().await?;
    let binary = tokio::task::spawn_blocking(spec_server_binary)
        .await
        .expect("build spec_server");
    // 100 racing registrations hash at once; let them all queue rather than shed.
    let a = SpecServer::start(&binary, db.url(), &["--hash-queue", "1000"]).await;
    let b = SpecServer::start(&binary, db.url(), &["--hash-queue", "1000"]).await;
    Some((db, a, b))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_logouts_and_resets_cross_instances() {
    let Some((_db, a, b)) = two_servers().await else {
        return;
    };
    let (email, password) = ("guillaume@holberton.io", "b4l0u");

    let r = post_form(
        format!("{}/users", a.base),
        &[("email", email), ("password", password)],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = post_form(
        format!("{}/users", b.base),
        &[("email", email), ("password", password)],
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "B sees A's user");

    // A session created on A is honoured on B.
    let login = post_form(
        format!("{}/sessions", a.base),
        &[("email", email), ("password", password)],
    )
    .await;
    assert_eq!(login.status(), StatusCode::OK);
    let cookie = session_cookie(&login);
    assert_eq!(profile_status(&b.base, &cookie).await, StatusCode::OK);
    let body: serde_json::Value = client()
        .get(format!("{}/profile", b.base))
        .header("Cookie", &cookie)
        .send()
        .await
        .expect("profile")
        .json()
        .await
        .expect("json");
    assert_eq!(body, serde_json::json!({ "email": email }));

    // Logout on B is seen by A at once.
    let logout = client()
        .delete(format!("{}/sessions", b.base))
        .header("Cookie", &cookie)
        .send()
        .await
        .expect("logout");
    assert_eq!(logout.status(), StatusCode::FOUND);
    assert_eq!(
        profile_status(&a.base, &cookie).await,
        StatusCode::FORBIDDEN
    );

    // A reset token issued by A works on B, once.
    let reset: serde_json::Value =
        post_form(format!("{}/reset_password", a.base), &[("email", email)])
            .await
            .json()
            .await
            .expect("reset json");
    let token = reset["reset_token"]
        .as_str()
        .expect("reset_token")
        .to_owned();
    let new_password = "t4rt1fl3tt3";
    let update = [
        ("email", email),
        ("reset_token", token.as_str()),
        ("new_password", new_password),
    ];
    let r = client()
        .put(format!("{}/reset_password", b.base))
        .form(&update)
        .send()
        .await
        .expect("update");
    assert_eq!(r.status(), StatusCode::OK);
    let r = client()
        .put(format!("{}/reset_password", a.base))
        .form(&update)
        .send()
        .await
        .expect("update again");
    assert_eq!(
        r.status(),
        StatusCode::FORBIDDEN,
        "a used token is dead on every instance"
    );

    // The new password works on A, the old one nowhere.
    let r = post_form(
        format!("{}/sessions", a.base),
        &[("email", email), ("password", new_password)],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = post_form(
        format!("{}/sessions", b.base),
        &[("email", email), ("password", password)],
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_of_100_racing_registrations_wins_across_instances() {
    let Some((db, a, b)) = two_servers().await else {
        return;
    };
    let email = "race@example.com";
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..100 {
        let base = if i % 2 == 0 {
            a.base.clone()
        } else {
            b.base.clone()
        };
        // From 25 addresses: one client has at most 4 registrations hashing at once.
        let from = std::net::Ipv4Addr::new(127, 0, 0, 10 + (i % 25) as u8);
        tasks.spawn(async move {
            reqwest::Client::builder()
                .local_address(std::net::IpAddr::V4(from))
                .build()
                .expect("client")
                .post(format!("{base}/users"))
                .form(&[("email", email), ("password", "pw")])
                .send()
                .await
                .expect("request")
                .status()
        });
    }
    let (mut ok, mut duplicate) = (0, 0);
    while let Some(status) = tasks.join_next().await {
        match status.expect("task") {
            StatusCode::OK => ok += 1,
            StatusCode::BAD_REQUEST => duplicate += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!((ok, duplicate), (1, 99));

    let pool = sqlx::PgPool::connect(db.url()).await.expect("connect");
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM auth_users WHERE email = $1")
        .bind(email)
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(count, 1);
    pool.close().await;
}
