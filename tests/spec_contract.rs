//! The HTTP contract of DESIGN.md section 2 (preset `AuthConfig::spec()`), over real HTTP:
//! every transcript of the seed (tasks 6, 7, 11, 14, 15, 17, 19) with exact status lines,
//! headers and bodies, the seed's task-20 flow, and the router mounted in a host app.

#[path = "support/http.rs"]
mod http_support;

use axum::Router;
use axum::routing::get;
use http_support::{
    RawResponse, TestServer, client, form, memory_auth, serve, serve_auth, session_cookie_value,
    set_cookies, spec_auth, spec_config,
};
use serde_json::{Value, json};
use tower_auth::{Auth, CurrentUser, MemoryStore, SqliteStore};

/// Werkzeug 1.0's 401 page, as in the seed's task-11 transcript (338 bytes).
const PAGE_401: &str = "<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 3.2 Final//EN\">\n\
<title>401 Unauthorized</title>\n\
<h1>Unauthorized</h1>\n\
<p>The server could not verify that you are authorized to access the URL requested. You either supplied the wrong credentials (e.g. a bad password), or your browser doesn't understand how to supply the credentials required.</p>\n";

/// Werkzeug 1.0's 403 page, as in the seed's task-15 transcript (234 bytes).
const PAGE_403: &str = "<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 3.2 Final//EN\">\n\
<title>403 Forbidden</title>\n\
<h1>Forbidden</h1>\n\
<p>You don't have the permission to access the requested resource. It is either read-protected or not readable by the server.</p>\n";

// ----- helpers ------------------------------------------------------------------------------

/// A raw curl-like request, as in the seed's transcripts (`Host: localhost:5000`).
fn curl_request(method: &str, path: &str, cookie: Option<&str>, body: &str) -> Vec<u8> {
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost:5000\r\nUser-Agent: curl/7.58.0\r\n\
         Accept: */*\r\nConnection: close\r\n"
    );
    if let Some(cookie) = cookie {
        request.push_str(&format!("Cookie: {cookie}\r\n"));
    }
    if !body.is_empty() {
        request.push_str(&format!(
            "Content-Length: {}\r\nContent-Type: application/x-www-form-urlencoded\r\n",
            body.len()
        ));
    }
    request.push_str("\r\n");
    request.push_str(body);
    request.into_bytes()
}

/// Asserts a JSON response exactly: status line, `Content-Type: application/json` (no
/// charset), the whole object (exactly these keys) and the bytes Flask's `jsonify` sends
/// (compact, sorted keys, trailing newline).
fn assert_json(response: &RawResponse, status_line: &str, expected: &Value) {
    assert_eq!(response.status_line, status_line, "{response:?}");
    assert_eq!(
        response.header("content-type"),
        Some("application/json"),
        "{response:?}"
    );
    assert_eq!(&response.json(), expected, "{response:?}");
    assert_eq!(response.text(), format!("{expected}\n"));
    assert_eq!(
        response.header("content-length"),
        Some(response.body.len().to_string().as_str())
    );
}

/// Asserts one of Werkzeug's HTML error pages, byte for byte.
fn assert_page(response: &RawResponse, status_line: &str, page: &str, length: usize) {
    assert_eq!(response.status_line, status_line, "{response:?}");
    assert_eq!(
        response.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(page.len(), length);
    assert_eq!(
        response.header("content-length"),
        Some(length.to_string().as_str())
    );
    assert_eq!(response.text(), page);
}

fn assert_403(response: &RawResponse) {
    assert_page(response, "HTTP/1.1 403 FORBIDDEN", PAGE_403, 234);
}

/// Parses a `Set-Cookie` value into its `name=value` pair and its attributes.
fn cookie_parts(set_cookie: &str) -> (String, Vec<String>) {
    let mut parts = set_cookie.split(';').map(|p| p.trim().to_owned());
    let pair = parts.next().expect("name=value");
    (pair, parts.collect())
}

fn has_attr(attrs: &[String], wanted: &str) -> bool {
    attrs.iter().any(|a| a.eq_ignore_ascii_case(wanted))
}

/// Asserts the login cookie: `session_id=<uuid v4>; Path=/; HttpOnly; SameSite=Lax`, no
/// `Secure`, no `Domain`, not expiring; returns the session id.
fn assert_session_cookie(set_cookie: &[&str]) -> String {
    assert_eq!(
        set_cookie.len(),
        1,
        "exactly one Set-Cookie expected: {set_cookie:?}"
    );
    let (pair, attrs) = cookie_parts(set_cookie[0]);
    let id = pair
        .strip_prefix("session_id=")
        .unwrap_or_else(|| panic!("not the session cookie: {pair}"))
        .to_owned();
    let uuid = uuid::Uuid::parse_str(&id).expect("session id is a UUID");
    assert_eq!(uuid.get_version_num(), 4, "UUID v4 expected: {id}");
    assert_eq!(id, uuid.hyphenated().to_string(), "canonical UUID string");
    assert!(has_attr(&attrs, "Path=/"), "{attrs:?}");
    assert!(has_attr(&attrs, "HttpOnly"), "{attrs:?}");
    assert!(has_attr(&attrs, "SameSite=Lax"), "{attrs:?}");
    for attr in &attrs {
        let name = attr.split('=').next().unwrap_or_default();
        assert!(
            !["secure", "domain", "max-age", "expires"]
                .contains(&name.to_ascii_lowercase().as_str()),
            "unexpected cookie attribute {attr:?} in {attrs:?}"
        );
    }
    id
}

/// Asserts the logout cookie clears `session_id`: empty value, `Max-Age=0`, `Path=/`.
fn assert_cleared_cookie(set_cookie: &[&str]) {
    assert_eq!(set_cookie.len(), 1, "{set_cookie:?}");
    let (pair, attrs) = cookie_parts(set_cookie[0]);
    assert_eq!(pair, "session_id=");
    assert!(has_attr(&attrs, "Max-Age=0"), "{attrs:?}");
    assert!(has_attr(&attrs, "Path=/"), "{attrs:?}");
    assert!(has_attr(&attrs, "HttpOnly"), "{attrs:?}");
    assert!(!has_attr(&attrs, "Secure"), "{attrs:?}");
}

async fn raw_register(server: &TestServer, email: &str, password: &str) -> RawResponse {
    let body = form(&[("email", email), ("password", password)]);
    server
        .raw(&curl_request("POST", "/users", None, &body))
        .await
}

/// Registers through HTTP and checks the 200.
async fn register(server: &TestServer, email: &str, password: &str) {
    let response = raw_register(server, email, password).await;
    assert_json(
        &response,
        "HTTP/1.1 200 OK",
        &json!({"email": email, "message": "user created"}),
    );
}

/// Logs in through HTTP, checks the 200 and the cookie, returns the session id.
async fn log_in(server: &TestServer, email: &str, password: &str) -> String {
    let body = form(&[("email", email), ("password", password)]);
    let response = server
        .raw(&curl_request("POST", "/sessions", None, &body))
        .await;
    assert_json(
        &response,
        "HTTP/1.1 200 OK",
        &json!({"email": email, "message": "logged in"}),
    );
    assert_session_cookie(&response.headers_named("set-cookie"))
}

async fn profile(server: &TestServer, cookie: Option<&str>) -> RawResponse {
    server
        .raw(&curl_request("GET", "/profile", cookie, ""))
        .await
}

async fn log_out(server: &TestServer, cookie: Option<&str>) -> RawResponse {
    server
        .raw(&curl_request("DELETE", "/sessions", cookie, ""))
        .await
}

async fn reset_token(server: &TestServer, email: &str) -> String {
    let response = server
        .raw(&curl_request(
            "POST",
            "/reset_password",
            None,
            &form(&[("email", email)]),
        ))
        .await;
    assert_eq!(response.status_line, "HTTP/1.1 200 OK", "{response:?}");
    let body = response.json();
    let token = body["reset_token"]
        .as_str()
        .expect("reset_token")
        .to_owned();
    assert_json(
        &response,
        "HTTP/1.1 200 OK",
        &json!({"email": email, "reset_token": token}),
    );
    token
}

async fn update_password(
    server: &TestServer,
    email: &str,
    token: &str,
    new_password: &str,
) -> RawResponse {
    let body = form(&[
        ("email", email),
        ("reset_token", token),
        ("new_password", new_password),
    ]);
    server
        .raw(&curl_request("PUT", "/reset_password", None, &body))
        .await
}

fn cookie(id: &str) -> String {
    format!("session_id={id}")
}

async fn sqlite_auth() -> (Auth, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("a.db").display());
    let store = SqliteStore::connect(&url).await.expect("sqlite store");
    (spec_auth(store), dir)
}

// ----- task 6: GET / ----------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task6_index_says_bienvenue() {
    let server = serve_auth(&memory_auth()).await;
    let response = server.raw(&curl_request("GET", "/", None, "")).await;
    assert_json(
        &response,
        "HTTP/1.1 200 OK",
        &json!({"message": "Bienvenue"}),
    );

    // And through an ordinary client.
    let response = client().get(server.url("/")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    assert_eq!(body, json!({"message": "Bienvenue"}));
}

// ----- task 7: POST /users ------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task7_register_then_duplicate() {
    let server = serve_auth(&memory_auth()).await;
    let body = "email=bob@me.com&password=mySuperPwd";
    assert_eq!(body.len(), 36);

    let first = server
        .raw(&curl_request("POST", "/users", None, body))
        .await;
    assert_json(
        &first,
        "HTTP/1.1 200 OK",
        &json!({"email": "bob@me.com", "message": "user created"}),
    );
    assert!(first.headers_named("set-cookie").is_empty());

    let second = server
        .raw(&curl_request("POST", "/users", None, body))
        .await;
    assert_json(
        &second,
        "HTTP/1.1 400 BAD REQUEST",
        &json!({"message": "email already registered"}),
    );
    assert_eq!(second.header("content-length"), Some("39"));

    // The same email in another case is the same account.
    let third = raw_register(&server, "BOB@me.com", "other").await;
    assert_eq!(third.status(), 400, "{third:?}");
}

// ----- task 11: POST /sessions --------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task11_log_in_sets_cookie_and_wrong_password_is_401() {
    let server = serve_auth(&memory_auth()).await;
    register(&server, "bob@bob.com", "mySuperPwd").await;

    let body = "email=bob@bob.com&password=mySuperPwd";
    let ok = server
        .raw(&curl_request("POST", "/sessions", None, body))
        .await;
    assert_json(
        &ok,
        "HTTP/1.1 200 OK",
        &json!({"email": "bob@bob.com", "message": "logged in"}),
    );
    assert_eq!(ok.header("content-length"), Some("46"));
    let id = assert_session_cookie(&ok.headers_named("set-cookie"));

    // The cookie works.
    let me = profile(&server, Some(&cookie(&id))).await;
    assert_json(&me, "HTTP/1.1 200 OK", &json!({"email": "bob@bob.com"}));

    let wrong = server
        .raw(&curl_request(
            "POST",
            "/sessions",
            None,
            "email=bob@bob.com&password=BlaBla",
        ))
        .await;
    assert_page(&wrong, "HTTP/1.1 401 UNAUTHORIZED", PAGE_401, 338);
    assert!(wrong.headers_named("set-cookie").is_empty());

    let unknown = server
        .raw(&curl_request(
            "POST",
            "/sessions",
            None,
            "email=nobody@bob.com&password=mySuperPwd",
        ))
        .await;
    assert_page(&unknown, "HTTP/1.1 401 UNAUTHORIZED", PAGE_401, 338);
    assert!(unknown.headers_named("set-cookie").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task11_cookie_through_reqwest() {
    let server = serve_auth(&memory_auth()).await;
    register(&server, "bob@bob.com", "mySuperPwd").await;
    let response = client()
        .post(server.url("/sessions"))
        .form(&[("email", "bob@bob.com"), ("password", "mySuperPwd")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let cookies = set_cookies(&response);
    let id = assert_session_cookie(&cookies.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(session_cookie_value(&cookies), Some(id.clone()));
    let body: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    assert_eq!(
        body,
        json!({"email": "bob@bob.com", "message": "logged in"})
    );

    // A cookie-keeping client (like `requests.Session`) is logged in afterwards.
    let jar_client = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let login = jar_client
        .post(server.url("/sessions"))
        .form(&[("email", "bob@bob.com"), ("password", "mySuperPwd")])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let me = jar_client.get(server.url("/profile")).send().await.unwrap();
    assert_eq!(me.status(), 200);
    let body: Value = serde_json::from_str(&me.text().await.unwrap()).unwrap();
    assert_eq!(body, json!({"email": "bob@bob.com"}));
}

// ----- task 14: DELETE /sessions ------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task14_log_out_redirects_to_host_root_and_clears_cookie() {
    let server = serve_auth(&memory_auth()).await;
    register(&server, "bob@bob.com", "mySuperPwd").await;
    let id = log_in(&server, "bob@bob.com", "mySuperPwd").await;

    let out = log_out(&server, Some(&cookie(&id))).await;
    assert_eq!(out.status_line, "HTTP/1.1 302 FOUND", "{out:?}");
    // Werkzeug 1.0 makes the target absolute from the Host header the client sent.
    assert_eq!(out.header("location"), Some("http://localhost:5000/"));
    assert_eq!(out.header("content-type"), Some("text/html; charset=utf-8"));
    assert!(out.text().contains("Redirecting..."), "{out:?}");
    assert_cleared_cookie(&out.headers_named("set-cookie"));

    // The session is over: the old cookie is refused everywhere.
    assert_403(&profile(&server, Some(&cookie(&id))).await);
    assert_403(&log_out(&server, Some(&cookie(&id))).await);

    // Through reqwest, the Host is the server's address.
    let id = log_in(&server, "bob@bob.com", "mySuperPwd").await;
    let response = client()
        .delete(server.url("/sessions"))
        .header("cookie", cookie(&id))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    assert_eq!(
        response.headers()["location"],
        format!("http://{}/", server.host()).as_str()
    );
    let cleared = set_cookies(&response);
    assert_cleared_cookie(&cleared.iter().map(String::as_str).collect::<Vec<_>>());
    let second = client()
        .delete(server.url("/sessions"))
        .header("cookie", cookie(&id))
        .send()
        .await
        .unwrap();
    assert_eq!(second.status(), 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task14_location_host_is_exactly_the_host_header() {
    let server = serve_auth(&memory_auth()).await;
    register(&server, "bob@bob.com", "mySuperPwd").await;
    for host in [
        "example.test",
        "auth.example.test:8080",
        "127.0.0.1:5000",
        "[::1]:5000",
    ] {
        let id = log_in(&server, "bob@bob.com", "mySuperPwd").await;
        let request = format!(
            "DELETE /sessions HTTP/1.1\r\nHost: {host}\r\nCookie: session_id={id}\r\n\
             Connection: close\r\n\r\n"
        );
        let out = server.raw(request.as_bytes()).await;
        assert_eq!(out.status_line, "HTTP/1.1 302 FOUND", "{out:?}");
        assert_eq!(
            out.header("location"),
            Some(format!("http://{host}/").as_str())
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task14_a_host_that_is_not_a_plain_host_gives_a_relative_location() {
    // A Host header that is not `host[:port]` cannot steer the Location elsewhere.
    let server = serve_auth(&memory_auth()).await;
    register(&server, "bob@bob.com", "mySuperPwd").await;
    for host in [
        "evil.test/phish",
        "user@evil.test",
        "evil.test?x=",
        "evil.test#",
        "",
    ] {
        let id = log_in(&server, "bob@bob.com", "mySuperPwd").await;
        let request = format!(
            "DELETE /sessions HTTP/1.1\r\nHost: {host}\r\nCookie: session_id={id}\r\n\
             Connection: close\r\n\r\n"
        );
        let out = server.raw(request.as_bytes()).await;
        assert_eq!(out.status_line, "HTTP/1.1 302 FOUND", "{host:?}: {out:?}");
        assert_eq!(out.header("location"), Some("/"), "{host:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task14_and_15_refuse_missing_empty_unknown_and_ended_cookies() {
    let server = serve_auth(&memory_auth()).await;
    register(&server, "bob@bob.com", "mySuperPwd").await;
    let ended = log_in(&server, "bob@bob.com", "mySuperPwd").await;
    assert_eq!(log_out(&server, Some(&cookie(&ended))).await.status(), 302);
    let live = log_in(&server, "bob@bob.com", "mySuperPwd").await;

    let unknown = uuid::Uuid::new_v4().to_string();
    let cases: Vec<(&str, Option<String>)> = vec![
        ("missing", None),
        ("empty", Some("session_id=".into())),
        ("unknown uuid", Some(cookie(&unknown))),
        ("nope", Some("session_id=nope".into())),
        ("truncated", Some(cookie(&live[..live.len() - 1]))),
        ("ended", Some(cookie(&ended))),
        ("other cookie only", Some(format!("other={live}"))),
    ];
    for (what, cookie) in &cases {
        let me = profile(&server, cookie.as_deref()).await;
        assert_eq!(me.status(), 403, "GET /profile with {what} cookie");
        assert_403(&me);
        let out = log_out(&server, cookie.as_deref()).await;
        assert_eq!(out.status(), 403, "DELETE /sessions with {what} cookie");
        assert_403(&out);
        assert!(out.headers_named("set-cookie").is_empty());
    }
    // None of that touched the live session.
    let me = profile(&server, Some(&cookie(&live))).await;
    assert_json(&me, "HTTP/1.1 200 OK", &json!({"email": "bob@bob.com"}));
}

// ----- task 15: GET /profile ----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task15_profile() {
    let server = serve_auth(&memory_auth()).await;
    register(&server, "bob@bob.com", "mySuperPwd").await;
    let id = log_in(&server, "bob@bob.com", "mySuperPwd").await;

    let me = profile(&server, Some(&cookie(&id))).await;
    assert_json(&me, "HTTP/1.1 200 OK", &json!({"email": "bob@bob.com"}));
    assert!(me.headers_named("set-cookie").is_empty());

    let nope = profile(
        &server,
        Some("session_id=75c89af8-1729-44d9-a592-41b5e59de9a"),
    )
    .await;
    assert_403(&nope);
}

// ----- tasks 17 and 19: password reset ------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task17_and_19_reset_password() {
    let server = serve_auth(&memory_auth()).await;
    register(&server, "bob@bob.com", "mySuperPwd").await;
    register(&server, "eve@bob.com", "evePwd").await;

    // Task 17: unknown email is a 403; a known one gets a UUID token.
    let unknown = server
        .raw(&curl_request(
            "POST",
            "/reset_password",
            None,
            "email=nobody@bob.com",
        ))
        .await;
    assert_403(&unknown);
    let token = reset_token(&server, "bob@bob.com").await;
    let uuid = uuid::Uuid::parse_str(&token).expect("reset token is a UUID");
    assert_eq!(uuid.get_version_num(), 4);

    // Task 19: a wrong token, or the right token for another email, is a 403 and changes
    // nothing.
    let wrong = update_password(
        &server,
        "bob@bob.com",
        &uuid::Uuid::new_v4().to_string(),
        "x",
    )
    .await;
    assert_403(&wrong);
    let other_email = update_password(&server, "eve@bob.com", &token, "stolen").await;
    assert_403(&other_email);
    log_in(&server, "eve@bob.com", "evePwd").await;

    let updated = update_password(&server, "bob@bob.com", &token, "newPwd").await;
    assert_json(
        &updated,
        "HTTP/1.1 200 OK",
        &json!({"email": "bob@bob.com", "message": "Password updated"}),
    );

    // The token dies on use; the old password no longer works; the new one does.
    assert_403(&update_password(&server, "bob@bob.com", &token, "again").await);
    let old = server
        .raw(&curl_request(
            "POST",
            "/sessions",
            None,
            "email=bob@bob.com&password=mySuperPwd",
        ))
        .await;
    assert_page(&old, "HTTP/1.1 401 UNAUTHORIZED", PAGE_401, 338);
    log_in(&server, "bob@bob.com", "newPwd").await;

    // A newer token replaces an older one.
    let first = reset_token(&server, "bob@bob.com").await;
    let second = reset_token(&server, "bob@bob.com").await;
    assert_ne!(first, second);
    assert_403(&update_password(&server, "bob@bob.com", &first, "p1").await);
    assert_eq!(
        update_password(&server, "bob@bob.com", &second, "p2")
            .await
            .status(),
        200
    );
}

// ----- wire details -------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn werkzeug_reason_phrases() {
    let server = serve_auth(&memory_auth()).await;
    let register_body = "email=a@b.c&password=pw";
    let cases = [
        ("GET", "/", None, "", "HTTP/1.1 200 OK"),
        ("POST", "/users", None, register_body, "HTTP/1.1 200 OK"),
        (
            "POST",
            "/users",
            None,
            register_body,
            "HTTP/1.1 400 BAD REQUEST",
        ),
        (
            "POST",
            "/sessions",
            None,
            "email=a@b.c&password=bad",
            "HTTP/1.1 401 UNAUTHORIZED",
        ),
        ("GET", "/profile", None, "", "HTTP/1.1 403 FORBIDDEN"),
        ("DELETE", "/sessions", None, "", "HTTP/1.1 403 FORBIDDEN"),
        (
            "POST",
            "/reset_password",
            None,
            "email=x@b.c",
            "HTTP/1.1 403 FORBIDDEN",
        ),
    ];
    for (method, path, cookie, body, status_line) in cases {
        let response = server.raw(&curl_request(method, path, cookie, body)).await;
        assert_eq!(response.status_line, status_line, "{method} {path}");
    }
    let id = log_in(&server, "a@b.c", "pw").await;
    let out = log_out(&server, Some(&cookie(&id))).await;
    assert_eq!(out.status_line, "HTTP/1.1 302 FOUND");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_slashes_are_merged() {
    let server = serve_auth(&memory_auth()).await;
    let created = server
        .raw(&curl_request(
            "POST",
            "//users",
            None,
            "email=bob@bob.com&password=pw",
        ))
        .await;
    assert_json(
        &created,
        "HTTP/1.1 200 OK",
        &json!({"email": "bob@bob.com", "message": "user created"}),
    );
    // It really reached /users: the account exists.
    let again = raw_register(&server, "bob@bob.com", "pw").await;
    assert_eq!(again.status(), 400);

    let login = server
        .raw(&curl_request(
            "POST",
            "///sessions",
            None,
            "email=bob@bob.com&password=pw",
        ))
        .await;
    assert_eq!(login.status_line, "HTTP/1.1 200 OK", "{login:?}");
    let id = assert_session_cookie(&login.headers_named("set-cookie"));
    let me = server
        .raw(&curl_request("GET", "//profile", Some(&cookie(&id)), ""))
        .await;
    assert_json(&me, "HTTP/1.1 200 OK", &json!({"email": "bob@bob.com"}));
    let index = server.raw(&curl_request("GET", "//", None, "")).await;
    assert_json(&index, "HTTP/1.1 200 OK", &json!({"message": "Bienvenue"}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_login_replaces_the_old_session() {
    let server = serve_auth(&memory_auth()).await;
    register(&server, "bob@bob.com", "pw").await;
    let old = log_in(&server, "bob@bob.com", "pw").await;
    let new = log_in(&server, "bob@bob.com", "pw").await;
    assert_ne!(old, new);
    assert_403(&profile(&server, Some(&cookie(&old))).await);
    assert_403(&log_out(&server, Some(&cookie(&old))).await);
    let me = profile(&server, Some(&cookie(&new))).await;
    assert_json(&me, "HTTP/1.1 200 OK", &json!({"email": "bob@bob.com"}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_update_keeps_sessions_in_spec_preset() {
    let server = serve_auth(&memory_auth()).await;
    register(&server, "bob@bob.com", "pw").await;
    let id = log_in(&server, "bob@bob.com", "pw").await;
    let token = reset_token(&server, "bob@bob.com").await;
    assert_eq!(
        update_password(&server, "bob@bob.com", &token, "pw2")
            .await
            .status(),
        200
    );
    let me = profile(&server, Some(&cookie(&id))).await;
    assert_json(&me, "HTTP/1.1 200 OK", &json!({"email": "bob@bob.com"}));
    assert_eq!(log_out(&server, Some(&cookie(&id))).await.status(), 302);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_update_ends_sessions_when_configured() {
    // The same flow with the one field the hardened preset changes: the old session ends.
    let mut config = spec_config();
    config.end_sessions_on_password_reset = true;
    let server = serve_auth(&Auth::new(MemoryStore::new(), config).expect("valid config")).await;
    register(&server, "bob@bob.com", "pw").await;
    let id = log_in(&server, "bob@bob.com", "pw").await;
    let token = reset_token(&server, "bob@bob.com").await;
    assert_eq!(
        update_password(&server, "bob@bob.com", &token, "pw2")
            .await
            .status(),
        200
    );
    assert_403(&profile(&server, Some(&cookie(&id))).await);
}

// ----- task 20: the end-to-end flow ---------------------------------------------------------

const EMAIL: &str = "guillaume@holberton.io";
const PASSWD: &str = "b4l0u";
const NEW_PASSWD: &str = "t4rt1fl3tt3";

/// The seed's task-20 `main.py`, step by step.
async fn task20_flow(server: &TestServer) {
    // register_user
    register(server, EMAIL, PASSWD).await;
    // log_in_wrong_password
    let wrong = server
        .raw(&curl_request(
            "POST",
            "/sessions",
            None,
            &form(&[("email", EMAIL), ("password", NEW_PASSWD)]),
        ))
        .await;
    assert_page(&wrong, "HTTP/1.1 401 UNAUTHORIZED", PAGE_401, 338);
    // profile_unlogged
    assert_403(&profile(server, None).await);
    // log_in
    let session_id = log_in(server, EMAIL, PASSWD).await;
    // profile_logged
    let me = profile(server, Some(&cookie(&session_id))).await;
    assert_json(&me, "HTTP/1.1 200 OK", &json!({"email": EMAIL}));
    // log_out (and what a redirect-following client then fetches)
    let out = client()
        .delete(server.url("/sessions"))
        .header("cookie", cookie(&session_id))
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 302);
    let location = out.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(location, server.url("/"));
    let landing = client().get(&location).send().await.unwrap();
    assert_eq!(landing.status(), 200);
    let body: Value = serde_json::from_str(&landing.text().await.unwrap()).unwrap();
    assert_eq!(body, json!({"message": "Bienvenue"}));
    assert_403(&profile(server, Some(&cookie(&session_id))).await);
    // reset_password_token
    let token = reset_token(server, EMAIL).await;
    // update_password
    let updated = update_password(server, EMAIL, &token, NEW_PASSWD).await;
    assert_json(
        &updated,
        "HTTP/1.1 200 OK",
        &json!({"email": EMAIL, "message": "Password updated"}),
    );
    // log_in with the new password
    let session_id = log_in(server, EMAIL, NEW_PASSWD).await;
    let me = profile(server, Some(&cookie(&session_id))).await;
    assert_json(&me, "HTTP/1.1 200 OK", &json!({"email": EMAIL}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task20_flow_memory_store() {
    let server = serve_auth(&memory_auth()).await;
    task20_flow(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task20_flow_sqlite_store() {
    let (auth, _dir) = sqlite_auth().await;
    let server = serve_auth(&auth).await;
    task20_flow(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_data_survives_a_new_server_on_the_same_file() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("a.db").display());
    let first = serve_auth(&spec_auth(SqliteStore::connect(&url).await.unwrap())).await;
    register(&first, EMAIL, PASSWD).await;
    let id = log_in(&first, EMAIL, PASSWD).await;

    let second = serve_auth(&spec_auth(SqliteStore::connect(&url).await.unwrap())).await;
    let me = profile(&second, Some(&cookie(&id))).await;
    assert_json(&me, "HTTP/1.1 200 OK", &json!({"email": EMAIL}));
    assert_eq!(raw_register(&second, EMAIL, PASSWD).await.status(), 400);
}

// ----- mounting in a host app ---------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nested_under_a_prefix() {
    let mut config = spec_config();
    config.logout_redirect = "/auth/".into();
    let auth = Auth::new(MemoryStore::new(), config).expect("valid config");
    let server = serve(Router::new().nest("/auth", auth.router())).await;

    let index = server.raw(&curl_request("GET", "/auth", None, "")).await;
    assert_json(&index, "HTTP/1.1 200 OK", &json!({"message": "Bienvenue"}));
    let body = "email=bob@bob.com&password=pw";
    let created = server
        .raw(&curl_request("POST", "/auth/users", None, body))
        .await;
    assert_json(
        &created,
        "HTTP/1.1 200 OK",
        &json!({"email": "bob@bob.com", "message": "user created"}),
    );
    // Not at the root.
    let root = server
        .raw(&curl_request(
            "POST",
            "/users",
            None,
            "email=x@y.z&password=pw",
        ))
        .await;
    assert_eq!(root.status(), 404, "{root:?}");
    // Merged slashes work under the prefix too.
    let login = server
        .raw(&curl_request("POST", "//auth//sessions", None, body))
        .await;
    assert_eq!(login.status_line, "HTTP/1.1 200 OK", "{login:?}");
    let id = assert_session_cookie(&login.headers_named("set-cookie"));

    let me = server
        .raw(&curl_request(
            "GET",
            "/auth/profile",
            Some(&cookie(&id)),
            "",
        ))
        .await;
    assert_json(&me, "HTTP/1.1 200 OK", &json!({"email": "bob@bob.com"}));

    let out = server
        .raw(&curl_request(
            "DELETE",
            "/auth/sessions",
            Some(&cookie(&id)),
            "",
        ))
        .await;
    assert_eq!(out.status_line, "HTTP/1.1 302 FOUND", "{out:?}");
    assert_eq!(out.header("location"), Some("http://localhost:5000/auth/"));
    assert_cleared_cookie(&out.headers_named("set-cookie"));
    let gone = server
        .raw(&curl_request(
            "GET",
            "/auth/profile",
            Some(&cookie(&id)),
            "",
        ))
        .await;
    assert_403(&gone);

    let token = {
        let response = server
            .raw(&curl_request(
                "POST",
                "/auth/reset_password",
                None,
                "email=bob@bob.com",
            ))
            .await;
        assert_eq!(response.status(), 200, "{response:?}");
        response.json()["reset_token"].as_str().unwrap().to_owned()
    };
    let updated = server
        .raw(&curl_request(
            "PUT",
            "/auth/reset_password",
            None,
            &form(&[
                ("email", "bob@bob.com"),
                ("reset_token", &token),
                ("new_password", "pw2"),
            ]),
        ))
        .await;
    assert_json(
        &updated,
        "HTTP/1.1 200 OK",
        &json!({"email": "bob@bob.com", "message": "Password updated"}),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nested_logout_redirect_lands_on_the_nested_index() {
    // axum 0.8 serves a nested router's `/` at `/auth` (not `/auth/`): a redirect to
    // `/auth` lands on the auth router's index.
    let mut config = spec_config();
    config.logout_redirect = "/auth".into();
    let auth = Auth::new(MemoryStore::new(), config).expect("valid config");
    let server = serve(Router::new().nest("/auth", auth.router())).await;
    let body = "email=bob@bob.com&password=pw";
    assert_eq!(
        server
            .raw(&curl_request("POST", "/auth/users", None, body))
            .await
            .status(),
        200
    );
    let login = server
        .raw(&curl_request("POST", "/auth/sessions", None, body))
        .await;
    let id = assert_session_cookie(&login.headers_named("set-cookie"));
    let out = client()
        .delete(server.url("/auth/sessions"))
        .header("cookie", cookie(&id))
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 302);
    let location = out.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(location, server.url("/auth"));
    // Follow it as `requests` does for a 302: with GET.
    let landing = client().get(&location).send().await.unwrap();
    assert_eq!(landing.status(), 200);
    let landing: Value = serde_json::from_str(&landing.text().await.unwrap()).unwrap();
    assert_eq!(landing, json!({"message": "Bienvenue"}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_location_follows_config_in_json_style() {
    // Outside the Werkzeug wire style the Location is exactly the configured path.
    let mut config = spec_config();
    config.wire_style = tower_auth::seed::WireStyle::Json;
    config.logout_redirect = "/bye".into();
    let server = serve_auth(&Auth::new(MemoryStore::new(), config).expect("valid config")).await;
    register_json_style(&server).await;
    let login = server
        .raw(&curl_request(
            "POST",
            "/sessions",
            None,
            "email=bob@bob.com&password=pw",
        ))
        .await;
    let id = assert_session_cookie(&login.headers_named("set-cookie"));
    let out = log_out(&server, Some(&cookie(&id))).await;
    assert_eq!(out.status(), 302, "{out:?}");
    assert_eq!(out.header("location"), Some("/bye"));
    let again = log_out(&server, Some(&cookie(&id))).await;
    assert_eq!(again.status(), 403);
    assert_eq!(again.header("content-type"), Some("application/json"));
    assert_eq!(again.json(), json!({"message": "no valid session"}));
}

async fn register_json_style(server: &TestServer) {
    let created = raw_register(server, "bob@bob.com", "pw").await;
    assert_eq!(created.status(), 200, "{created:?}");
    assert_eq!(
        created.json(),
        json!({"email": "bob@bob.com", "message": "user created"})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merged_next_to_host_routes() {
    let auth = memory_auth();
    let app = Router::new()
        .route("/hello", get(|| async { "hello from the host app" }))
        .route(
            "/me",
            get(|CurrentUser(user): CurrentUser| async move { format!("you are {}", user.email) }),
        )
        .merge(auth.router())
        .layer(auth.layer());
    let server = serve(app).await;

    let hello = client().get(server.url("/hello")).send().await.unwrap();
    assert_eq!(hello.status(), 200);
    assert_eq!(hello.text().await.unwrap(), "hello from the host app");
    // The host's routes are untouched by the auth router's Werkzeug details.
    let hello = server.raw(&curl_request("GET", "/hello", None, "")).await;
    assert_eq!(hello.status_line, "HTTP/1.1 200 OK");

    register(&server, "bob@bob.com", "pw").await;
    let id = log_in(&server, "bob@bob.com", "pw").await;
    let me = client()
        .get(server.url("/me"))
        .header("cookie", cookie(&id))
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    assert_eq!(me.text().await.unwrap(), "you are bob@bob.com");
    let anonymous = client().get(server.url("/me")).send().await.unwrap();
    assert_eq!(anonymous.status(), 403);

    let profile = profile(&server, Some(&cookie(&id))).await;
    assert_json(
        &profile,
        "HTTP/1.1 200 OK",
        &json!({"email": "bob@bob.com"}),
    );
    let out = log_out(&server, Some(&cookie(&id))).await;
    assert_eq!(out.status(), 302);
    assert_cleared_cookie(&out.headers_named("set-cookie"));
    let after = client()
        .get(server.url("/me"))
        .header("cookie", cookie(&id))
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 403);
}
