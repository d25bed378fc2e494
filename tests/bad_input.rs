//! Bad input on every endpoint: a clear 4xx with `{"message": ...}` naming the problem,
//! never a 5xx while the store is healthy; a failing store is a 500 with a generic body.

#[path = "support/http.rs"]
mod http_support;
#[path = "support/store.rs"]
mod store_support;

use http_support::{
    RawResponse, TestServer, client, form, hardened_config, memory_auth, serve_auth, spec_auth,
};
use serde_json::{Value, json};
use store_support::{BACKEND_SECRET, InstrumentedStore};
use tower_auth::Auth;

/// The form endpoints and their fields, in the order the handlers read them.
const FORM_ENDPOINTS: [(&str, &str, &[&str]); 4] = [
    ("POST", "/users", &["email", "password"]),
    ("POST", "/sessions", &["email", "password"]),
    ("POST", "/reset_password", &["email"]),
    (
        "PUT",
        "/reset_password",
        &["email", "reset_token", "new_password"],
    ),
];

const FORM: &str = "application/x-www-form-urlencoded";
const LIMIT: usize = 16 * 1024;

fn valid_value(field: &str) -> &'static str {
    match field {
        "email" => "bob@bob.com",
        "password" => "pw",
        "reset_token" => "6d3c1e1e-1b62-4e5e-9b76-0d7b8c0e4a11",
        "new_password" => "pw2",
        other => panic!("unknown field {other}"),
    }
}

/// Sends a request with an optional content type, body and cookie through reqwest.
async fn send(
    server: &TestServer,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
    cookie: Option<&str>,
) -> (u16, Option<String>, Vec<u8>) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = client().request(method, server.url(path));
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    if !body.is_empty() {
        request = request.body(body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = response.bytes().await.unwrap().to_vec();
    (status, content_type, bytes)
}

/// Asserts a JSON error: the status, `application/json`, and exactly `{"message": message}`.
fn assert_message(
    (status, content_type, body): &(u16, Option<String>, Vec<u8>),
    expected_status: u16,
    message: &str,
    context: &str,
) {
    let text = String::from_utf8_lossy(body);
    assert_eq!(*status, expected_status, "{context}: {text}");
    assert_eq!(
        content_type.as_deref(),
        Some("application/json"),
        "{context}: {text}"
    );
    let value: Value = serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("{context}: body is not JSON ({e}): {text}"));
    assert_eq!(value, json!({ "message": message }), "{context}");
}

async fn post_form(
    server: &TestServer,
    method: &str,
    path: &str,
    body: &str,
) -> (u16, Option<String>, Vec<u8>) {
    send(
        server,
        method,
        path,
        Some(FORM),
        body.as_bytes().to_vec(),
        None,
    )
    .await
}

async fn register(
    server: &TestServer,
    email: &str,
    password: &str,
) -> (u16, Option<String>, Vec<u8>) {
    post_form(
        server,
        "POST",
        "/users",
        &form(&[("email", email), ("password", password)]),
    )
    .await
}

async fn login_status(server: &TestServer, email: &str, password: &str) -> u16 {
    post_form(
        server,
        "POST",
        "/sessions",
        &form(&[("email", email), ("password", password)]),
    )
    .await
    .0
}

// ----- fields ----------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_and_empty_fields_on_every_endpoint() {
    for config in [http_support::spec_config(), hardened_config()] {
        let server =
            serve_auth(&Auth::new(tower_auth::MemoryStore::new(), config).expect("valid config"))
                .await;
        for (method, path, fields) in FORM_ENDPOINTS {
            for missing in fields {
                let present: Vec<(&str, &str)> = fields
                    .iter()
                    .filter(|f| *f != missing)
                    .map(|f| (*f, valid_value(f)))
                    .collect();
                let response = post_form(&server, method, path, &form(&present)).await;
                assert_message(
                    &response,
                    400,
                    &format!("missing field: {missing}"),
                    &format!("{method} {path} without {missing}"),
                );

                let mut with_empty = present.clone();
                with_empty.push((missing, ""));
                let response = post_form(&server, method, path, &form(&with_empty)).await;
                assert_message(
                    &response,
                    400,
                    &format!("empty field: {missing}"),
                    &format!("{method} {path} with empty {missing}"),
                );
                // `name` with no `=` is an empty field too.
                let body = format!("{}&{missing}", form(&present));
                let response = post_form(&server, method, path, &body).await;
                assert_message(
                    &response,
                    400,
                    &format!("empty field: {missing}"),
                    &format!("{method} {path} with bare {missing}"),
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_content_type_and_no_body_is_a_missing_field() {
    let server = serve_auth(&memory_auth()).await;
    for (method, path, fields) in FORM_ENDPOINTS {
        let response = send(&server, method, path, None, Vec::new(), None).await;
        assert_message(
            &response,
            400,
            &format!("missing field: {}", fields[0]),
            &format!("{method} {path} with nothing"),
        );
        // The same with a form content type and an empty body.
        let response = send(&server, method, path, Some(FORM), Vec::new(), None).await;
        assert_message(
            &response,
            400,
            &format!("missing field: {}", fields[0]),
            &format!("{method} {path} with an empty form"),
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spec_style_errors_end_with_flasks_newline() {
    let server = serve_auth(&memory_auth()).await;
    let response = server.raw_request(&["POST /users HTTP/1.1"], b"").await;
    assert_eq!(response.status_line, "HTTP/1.1 400 BAD REQUEST");
    assert_eq!(response.text(), "{\"message\":\"missing field: email\"}\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_content_type_is_415() {
    let server = serve_auth(&memory_auth()).await;
    let message = "request body must be application/x-www-form-urlencoded";
    let bodies: [(Option<&str>, &[u8]); 6] = [
        (
            Some("application/json"),
            br#"{"email":"bob@bob.com","password":"pw"}"#,
        ),
        (
            Some("multipart/form-data; boundary=XyZ"),
            b"--XyZ\r\nContent-Disposition: form-data; name=\"email\"\r\n\r\nbob@bob.com\r\n--XyZ--\r\n",
        ),
        (Some("text/plain"), b"email=bob@bob.com&password=pw"),
        (Some("application/x-www-form-urlencodedX"), b"email=bob@bob.com&password=pw"),
        (Some("form"), b"email=bob@bob.com&password=pw"),
        // A body without a content type is not a form either.
        (None, b"email=bob@bob.com&password=pw"),
    ];
    for (method, path, _) in FORM_ENDPOINTS {
        for (content_type, body) in bodies {
            let response = send(&server, method, path, content_type, body.to_vec(), None).await;
            assert_message(
                &response,
                415,
                message,
                &format!("{method} {path} as {content_type:?}"),
            );
        }
    }
    // Nothing was registered by any of them.
    assert_eq!(register(&server, "bob@bob.com", "pw").await.0, 200);

    // Parameters and case in the form type are fine.
    for content_type in [
        "application/x-www-form-urlencoded; charset=UTF-8",
        "Application/X-WWW-Form-Urlencoded",
        " application/x-www-form-urlencoded ;charset=utf-8",
    ] {
        let body = form(&[("email", "bob@bob.com"), ("password", "pw")]);
        let response = send(
            &server,
            "POST",
            "/sessions",
            Some(content_type),
            body.into_bytes(),
            None,
        )
        .await;
        assert_eq!(response.0, 200, "{content_type}");
    }
}

// ----- size limits --------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_16_kib_is_413() {
    let server = serve_auth(&memory_auth()).await;
    let message = format!("request body is larger than {LIMIT} bytes");
    for (method, path, _) in FORM_ENDPOINTS {
        // At the limit: read, parsed, and refused for what it says.
        let email = format!(
            "{}@x.com",
            "a".repeat(LIMIT - "email=@x.com&password=pw".len())
        );
        let body = format!("email={email}&password=pw");
        assert_eq!(body.len(), LIMIT);
        let response = post_form(&server, method, path, &body).await;
        assert!(
            [400, 401, 403].contains(&response.0),
            "{method} {path} at the limit: {}",
            response.0
        );

        // One byte over, with Content-Length.
        let body = format!("{body}x");
        let response = post_form(&server, method, path, &body).await;
        assert_message(
            &response,
            413,
            &message,
            &format!("{method} {path} over the limit"),
        );

        // Far over.
        let response = post_form(&server, method, path, &"a".repeat(64 * 1024)).await;
        assert_message(
            &response,
            413,
            &message,
            &format!("{method} {path}, 64 KiB"),
        );
    }
}

/// A chunked request carrying `total` bytes of form body in 1 KiB chunks, no Content-Length.
fn chunked_request(server: &TestServer, path: &str, total: usize) -> Vec<u8> {
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\
         Content-Type: {FORM}\r\nTransfer-Encoding: chunked\r\n\r\n",
        server.host()
    )
    .into_bytes();
    let mut sent = 0;
    while sent < total {
        let n = (total - sent).min(1024);
        request.extend_from_slice(format!("{n:x}\r\n").as_bytes());
        request.extend(std::iter::repeat_n(b'a', n));
        request.extend_from_slice(b"\r\n");
        sent += n;
    }
    request.extend_from_slice(b"0\r\n\r\n");
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_body_over_16_kib_is_413() {
    let server = serve_auth(&memory_auth()).await;
    for path in ["/users", "/sessions", "/reset_password"] {
        let response = server.raw(&chunked_request(&server, path, LIMIT + 1)).await;
        assert_eq!(
            response.status_line, "HTTP/1.1 413 REQUEST ENTITY TOO LARGE",
            "{response:?}"
        );
        assert_eq!(response.header("content-type"), Some("application/json"));
        assert_eq!(
            response.json(),
            json!({"message": format!("request body is larger than {LIMIT} bytes")})
        );
        // Under the limit, a chunked body is read like any other.
        let response = server.raw(&chunked_request(&server, path, 100)).await;
        assert_eq!(response.status(), 400, "{response:?}");
        assert_eq!(response.json(), json!({"message": "missing field: email"}));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_of_10000_chars_is_400() {
    let server = serve_auth(&memory_auth()).await;
    let email = format!("{}@x.com", "a".repeat(10_000 - 6));
    assert_eq!(email.len(), 10_000);
    let response = register(&server, &email, "pw").await;
    assert_message(&response, 400, "email is too long", "register");
    // Logging in or asking for a reset with it is refused the same as any unknown email.
    assert_eq!(login_status(&server, &email, "pw").await, 401);
    let response = post_form(
        &server,
        "POST",
        "/reset_password",
        &form(&[("email", &email)]),
    )
    .await;
    assert_eq!(response.0, 403);
}

// ----- encoding ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8_is_400_and_never_silently_replaced() {
    let server = serve_auth(&memory_auth()).await;
    for (method, path, fields) in FORM_ENDPOINTS {
        for field in fields {
            let mut body: Vec<String> = fields
                .iter()
                .filter(|f| *f != field)
                .map(|f| format!("{f}={}", http_support::form_encode(valid_value(f))))
                .collect();
            body.push(format!("{field}=ab%FFcd"));
            let response = post_form(&server, method, path, &body.join("&")).await;
            assert_message(
                &response,
                400,
                &format!("malformed form body: {field} is not valid UTF-8"),
                &format!("{method} {path} with %FF in {field}"),
            );
        }
    }
    // Raw non-UTF-8 bytes (not percent-encoded), in a value and in a name.
    let response = send(
        &server,
        "POST",
        "/users",
        Some(FORM),
        b"email=bob@bob.com&password=\xff\xfe".to_vec(),
        None,
    )
    .await;
    assert_message(
        &response,
        400,
        "malformed form body: password is not valid UTF-8",
        "raw bytes",
    );
    let response = send(
        &server,
        "POST",
        "/users",
        Some(FORM),
        b"email=bob@bob.com&password=pw&\xff=1".to_vec(),
        None,
    )
    .await;
    assert_message(
        &response,
        400,
        "malformed form body: a field name is not valid UTF-8",
        "raw name",
    );

    // `%FF` and `%FE` must not both become U+FFFD: no account was made with either.
    assert_eq!(
        login_status(&server, "bob@bob.com", "ab\u{FFFD}cd").await,
        401
    );
    assert_eq!(register(&server, "bob@bob.com", "pw").await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn percent_signs_that_are_not_escapes_are_kept_as_werkzeug_does() {
    // `curl -d 'password=100%'` sends the `%` unencoded; the seed's server reads it as is.
    let server = serve_auth(&memory_auth()).await;
    let response = post_form(&server, "POST", "/users", "email=bob@bob.com&password=100%").await;
    assert_eq!(response.0, 200);
    assert_eq!(login_status(&server, "bob@bob.com", "100%").await, 200);
    let response = post_form(
        &server,
        "POST",
        "/users",
        "email=eve@bob.com&password=%zz%4",
    )
    .await;
    assert_eq!(response.0, 200);
    assert_eq!(login_status(&server, "eve@bob.com", "%zz%4").await, 200);
    // `+` is a space, `%2B` a plus.
    let response = post_form(
        &server,
        "POST",
        "/users",
        "email=amy@bob.com&password=a+b%2Bc",
    )
    .await;
    assert_eq!(response.0, 200);
    assert_eq!(login_status(&server, "amy@bob.com", "a b+c").await, 200);
    assert_eq!(login_status(&server, "amy@bob.com", "a+b+c").await, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_fields_first_wins() {
    let server = serve_auth(&memory_auth()).await;
    let response = post_form(
        &server,
        "POST",
        "/users",
        "email=first@x.com&email=second@x.com&password=one&password=two",
    )
    .await;
    assert_eq!(response.0, 200);
    let body: Value = serde_json::from_slice(&response.2).unwrap();
    assert_eq!(
        body,
        json!({"email": "first@x.com", "message": "user created"})
    );
    assert_eq!(login_status(&server, "first@x.com", "one").await, 200);
    assert_eq!(login_status(&server, "first@x.com", "two").await, 401);
    assert_eq!(login_status(&server, "second@x.com", "one").await, 401);
    // An empty first value is an empty field even when a later one is set.
    let response = post_form(
        &server,
        "POST",
        "/users",
        "email=&email=x@x.com&password=pw",
    )
    .await;
    assert_message(
        &response,
        400,
        "empty field: email",
        "empty first duplicate",
    );
}

// ----- passwords --------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_over_72_bytes_is_400_and_creates_nothing() {
    let server = serve_auth(&memory_auth()).await;
    let message = "password must be at most 72 bytes";
    for password in ["a".repeat(73), "€".repeat(25), "a".repeat(10_000)] {
        let response = register(&server, "bob@bob.com", &password).await;
        assert_message(
            &response,
            400,
            message,
            &format!("{} bytes", password.len()),
        );
        // It was refused, not truncated: no account exists.
        assert_eq!(
            login_status(&server, "bob@bob.com", &password[..72]).await,
            401
        );
    }
    // Exactly 72 bytes is accepted, and only the whole password logs in.
    let password = "b".repeat(72);
    assert_eq!(register(&server, "bob@bob.com", &password).await.0, 200);
    assert_eq!(login_status(&server, "bob@bob.com", &password).await, 200);
    assert_eq!(
        login_status(&server, "bob@bob.com", &password[..71]).await,
        401
    );
    assert_eq!(
        login_status(&server, "bob@bob.com", &format!("{password}b")).await,
        401
    );

    // On reset: refused, the token stays usable, the old password still works.
    let response = post_form(&server, "POST", "/reset_password", "email=bob@bob.com").await;
    let token = serde_json::from_slice::<Value>(&response.2).unwrap()["reset_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let too_long = "c".repeat(73);
    let response = post_form(
        &server,
        "PUT",
        "/reset_password",
        &form(&[
            ("email", "bob@bob.com"),
            ("reset_token", &token),
            ("new_password", &too_long),
        ]),
    )
    .await;
    assert_message(&response, 400, message, "reset to 73 bytes");
    assert_eq!(login_status(&server, "bob@bob.com", &password).await, 200);
    let response = post_form(
        &server,
        "PUT",
        "/reset_password",
        &form(&[
            ("email", "bob@bob.com"),
            ("reset_token", &token),
            ("new_password", "ok"),
        ]),
    )
    .await;
    assert_eq!(response.0, 200);
    assert_eq!(login_status(&server, "bob@bob.com", "ok").await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_with_nul_is_400() {
    let server = serve_auth(&memory_auth()).await;
    let response = post_form(
        &server,
        "POST",
        "/users",
        "email=bob@bob.com&password=a%00b",
    )
    .await;
    assert_message(
        &response,
        400,
        "password must not contain NUL characters",
        "NUL",
    );
    assert_eq!(register(&server, "bob@bob.com", "a").await.0, 200);
    // Logging in with one is just a wrong password.
    assert_eq!(login_status(&server, "bob@bob.com", "a\0").await, 401);
    let response = post_form(&server, "POST", "/users", "email=b%00b@bob.com&password=pw").await;
    assert_message(
        &response,
        400,
        "email must not contain spaces or control characters",
        "NUL in email",
    );
}

// ----- cookies ----------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_cookies_are_403_not_5xx() {
    let server = serve_auth(&memory_auth()).await;
    assert_eq!(register(&server, "bob@bob.com", "pw").await.0, 200);
    let long = format!("session_id={}", "a".repeat(8 * 1024));
    let many = (0..500)
        .map(|i| format!("c{i}=v{i}"))
        .collect::<Vec<_>>()
        .join("; ");
    let many_ids = (0..200)
        .map(|i| format!("session_id={i}"))
        .collect::<Vec<_>>()
        .join("; ");
    let cookie_lines: Vec<Vec<u8>> = vec![
        b";;;;===;=;".to_vec(),
        b"session_id".to_vec(),
        b"session_id=\"quoted\"".to_vec(),
        b"session_id= ".to_vec(),
        b"=session_id".to_vec(),
        b"session_id=a=b=c".to_vec(),
        b"session_id=%FF%00".to_vec(),
        b"session_id=\xff\xfe\x80".to_vec(),
        b"\xc3\x28=\xa0\xa1".to_vec(),
        long.into_bytes(),
        many.into_bytes(),
        many_ids.into_bytes(),
    ];
    for (method, path) in [("GET", "/profile"), ("DELETE", "/sessions")] {
        for line in &cookie_lines {
            let mut request = format!(
                "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nCookie: ",
                server.host()
            )
            .into_bytes();
            request.extend_from_slice(line);
            request.extend_from_slice(b"\r\n\r\n");
            let response = server.raw(&request).await;
            assert_eq!(
                response.status_line,
                "HTTP/1.1 403 FORBIDDEN",
                "{method} {path} with Cookie: {}",
                String::from_utf8_lossy(line)
            );
            assert!(response.text().contains("<title>403 Forbidden</title>"));
        }
        // Fifty Cookie header lines.
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
            server.host()
        );
        for i in 0..50 {
            request.push_str(&format!("Cookie: k{i}=v{i}; session_id=x{i}\r\n"));
        }
        request.push_str("\r\n");
        let response = server.raw(request.as_bytes()).await;
        assert_eq!(
            response.status_line, "HTTP/1.1 403 FORBIDDEN",
            "{method} {path}, 50 lines"
        );
    }

    // A valid session among other cookies still works.
    let (status, _, _) = post_form(
        &server,
        "POST",
        "/sessions",
        "email=bob@bob.com&password=pw",
    )
    .await;
    assert_eq!(status, 200);
    let response = client()
        .post(server.url("/sessions"))
        .form(&[("email", "bob@bob.com"), ("password", "pw")])
        .send()
        .await
        .unwrap();
    let id = http_support::session_cookie_value(&http_support::set_cookies(&response)).unwrap();
    let (status, _, _) = send(
        &server,
        "GET",
        "/profile",
        None,
        Vec::new(),
        Some(&format!("theme=dark; junk; session_id={id}; x=\"y\"")),
    )
    .await;
    assert_eq!(status, 200);
}

// ----- routing ----------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_methods_are_405_and_unknown_paths_404() {
    let server = serve_auth(&memory_auth()).await;
    let wrong_methods = [
        ("POST", "/"),
        ("DELETE", "/"),
        ("GET", "/users"),
        ("PUT", "/users"),
        ("PATCH", "/users"),
        ("DELETE", "/users"),
        ("GET", "/sessions"),
        ("PUT", "/sessions"),
        ("PATCH", "/sessions"),
        ("POST", "/profile"),
        ("DELETE", "/profile"),
        ("GET", "/reset_password"),
        ("DELETE", "/reset_password"),
        ("PATCH", "/reset_password"),
        ("FOO", "/users"),
        ("BREW", "/sessions"),
    ];
    for (method, path) in wrong_methods {
        let response = server
            .raw_request(&[format!("{method} {path} HTTP/1.1").as_str()], b"")
            .await;
        assert_eq!(response.status(), 405, "{method} {path}: {response:?}");
        assert!(response.header("allow").is_some(), "{method} {path}");
    }
    for path in [
        "/nope",
        "/users/",
        "/users/1",
        "/profile/",
        "/sessions/x",
        "/%FF",
        "/reset-password",
        "/USERS",
    ] {
        for method in ["GET", "POST", "DELETE"] {
            let response = server
                .raw_request(&[format!("{method} {path} HTTP/1.1").as_str()], b"")
                .await;
            assert_eq!(response.status(), 404, "{method} {path}: {response:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_garbage_is_refused_by_the_server_not_a_5xx() {
    let server = serve_auth(&memory_auth()).await;
    let requests: [&[u8]; 4] = [
        b"POST /users HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\nConnection: close\r\n\r\n",
        b"POST /users HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\nConnection: close\r\n\r\nhello!",
        b"POST /users HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\n",
        b"GARBAGE\r\n\r\n",
    ];
    for request in requests {
        let response = server.raw(request).await;
        let status = response.status();
        assert!((400..500).contains(&status), "{response:?}");
    }
    let index = server.raw_request(&["GET / HTTP/1.1"], b"").await;
    assert_eq!(index.status(), 200);
}

// ----- a failing store --------------------------------------------------------------------

/// Every request that needs the store, with well-formed input.
fn store_requests() -> Vec<(&'static str, &'static str, Option<&'static str>, String)> {
    let cookie = Some("session_id=6d3c1e1e-1b62-4e5e-9b76-0d7b8c0e4a11");
    vec![
        (
            "POST",
            "/users",
            None,
            form(&[("email", "bob@bob.com"), ("password", "pw")]),
        ),
        (
            "POST",
            "/sessions",
            None,
            form(&[("email", "bob@bob.com"), ("password", "pw")]),
        ),
        ("GET", "/profile", cookie, String::new()),
        ("DELETE", "/sessions", cookie, String::new()),
        (
            "POST",
            "/reset_password",
            None,
            form(&[("email", "bob@bob.com")]),
        ),
        (
            "PUT",
            "/reset_password",
            None,
            form(&[
                ("email", "bob@bob.com"),
                ("reset_token", "6d3c1e1e-1b62-4e5e-9b76-0d7b8c0e4a11"),
                ("new_password", "pw2"),
            ]),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_store_is_a_generic_500() {
    let server = serve_auth(&spec_auth(InstrumentedStore::failing())).await;
    for (method, path, cookie, body) in store_requests() {
        let mut head = vec![format!("{method} {path} HTTP/1.1")];
        if let Some(cookie) = cookie {
            head.push(format!("Cookie: {cookie}"));
        }
        if !body.is_empty() {
            head.push(format!("Content-Type: {FORM}"));
        }
        let head: Vec<&str> = head.iter().map(String::as_str).collect();
        let response: RawResponse = server.raw_request(&head, body.as_bytes()).await;
        assert_eq!(
            response.status_line, "HTTP/1.1 500 INTERNAL SERVER ERROR",
            "{method} {path}: {response:?}"
        );
        assert_eq!(response.header("content-type"), Some("application/json"));
        assert_eq!(response.text(), "{\"message\":\"internal server error\"}\n");
        for (name, value) in &response.headers {
            assert!(
                !BACKEND_SECRET.contains(value.as_str())
                    && !value.contains("disk")
                    && !value.contains("hunter2"),
                "{name}: {value}"
            );
        }
    }
    // What needs no store still works.
    let index = server.raw_request(&["GET / HTTP/1.1"], b"").await;
    assert_eq!(index.status(), 200);
    let anonymous = server.raw_request(&["GET /profile HTTP/1.1"], b"").await;
    assert_eq!(anonymous.status(), 403);
    let bad = server.raw_request(&["POST /users HTTP/1.1"], b"").await;
    assert_eq!(bad.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_store_is_a_generic_500_in_json_style_too() {
    let server = serve_auth(
        &Auth::new(InstrumentedStore::failing(), hardened_config()).expect("valid config"),
    )
    .await;
    for (method, path, cookie, body) in store_requests() {
        let cookie = cookie.map(|c| c.replace("session_id", "__Host-session_id"));
        let body = body.replace("password=pw", "password=correct%20horse%20battery%20staple");
        let response = send(
            &server,
            method,
            path,
            (!body.is_empty()).then_some(FORM),
            body.into_bytes(),
            cookie.as_deref(),
        )
        .await;
        assert_eq!(
            response.0,
            500,
            "{method} {path}: {:?}",
            String::from_utf8_lossy(&response.2)
        );
        assert_eq!(response.2, b"{\"message\":\"internal server error\"}");
    }
}

// ----- a deterministic fuzz loop ----------------------------------------------------------

/// A small deterministic generator (64-bit LCG), so failures reproduce.
struct Lcg(u64);

impl Lcg {
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        &items[((self.0 >> 33) as usize) % items.len()]
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzz_loop_never_5xx() {
    let auth = memory_auth();
    let server = serve_auth(&auth).await;
    assert_eq!(register(&server, "fuzz@x.com", "pw").await.0, 200);
    let valid = auth.create_session("fuzz@x.com").await.unwrap().unwrap();
    let valid_cookie = format!("session_id={valid}");
    let long_cookie = format!("session_id={}", "z".repeat(8 * 1024));

    let methods = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"];
    let paths = [
        "/",
        "/users",
        "/sessions",
        "/profile",
        "/reset_password",
        "//users",
        "///sessions",
        "/nope",
        "/users/",
        "/%FF",
        "/reset_password?email=fuzz@x.com",
        "/profile?x=%00",
    ];
    let big = "a".repeat(LIMIT + 10);
    let long_email = format!("email={}@x.com&password=pw", "e".repeat(300));
    let bodies: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"email=fuzz@x.com&password=pw".to_vec(),
        b"email=new@x.com&password=pw".to_vec(),
        b"email=&password=".to_vec(),
        b"email=%FF&password=%FE".to_vec(),
        b"=&=&&==&".to_vec(),
        b"email=fuzz@x.com&reset_token=x&new_password=y".to_vec(),
        b"email=fuzz@x.com&password=a%00b".to_vec(),
        b"{\"email\":\"fuzz@x.com\"}".to_vec(),
        b"\xff\xfe\x00\x01".to_vec(),
        big.into_bytes(),
        long_email.into_bytes(),
        b"email=fuzz@x.com&password="
            .iter()
            .chain(&[b'p'; 100])
            .copied()
            .collect(),
    ];
    let content_types = [
        None,
        Some(FORM),
        Some("application/json"),
        Some("multipart/form-data; boundary=x"),
        Some("text/plain"),
        Some("application/x-www-form-urlencoded; charset=latin1"),
    ];
    let cookies = [
        None,
        Some(valid_cookie.as_str()),
        Some("session_id="),
        Some("session_id=garbage"),
        Some(long_cookie.as_str()),
        Some(";;=;"),
    ];

    let mut rng = Lcg(0x5eed);
    let mut seen = std::collections::BTreeSet::new();
    for i in 0..200 {
        let method = *rng.pick(&methods);
        let path = *rng.pick(&paths);
        let body = rng.pick(&bodies).clone();
        let content_type = *rng.pick(&content_types);
        let cookie = *rng.pick(&cookies);
        let (status, response_type, response_body) =
            send(&server, method, path, content_type, body.clone(), cookie).await;
        let what = format!(
            "#{i}: {method} {path} type={content_type:?} cookie={:?} body={:?}",
            cookie.map(|c| &c[..c.len().min(40)]),
            String::from_utf8_lossy(&body[..body.len().min(60)])
        );
        assert!(status < 500, "{what} -> {status}");
        assert!(status != 0);
        if response_type.as_deref() == Some("application/json") && method != "HEAD" {
            let value: Value = serde_json::from_slice(&response_body)
                .unwrap_or_else(|e| panic!("{what}: bad JSON ({e})"));
            assert!(value.is_object(), "{what}");
        }
        seen.insert(status);
    }
    // The loop exercised successes and several kinds of refusal.
    for status in [200, 400, 403, 404, 405, 415] {
        assert!(seen.contains(&status), "no {status} among {seen:?}");
    }

    // The server still answers, and still works.
    let index = server.raw_request(&["GET / HTTP/1.1"], b"").await;
    assert_eq!(index.status(), 200);
    assert_eq!(register(&server, "after@x.com", "pw").await.0, 200);
    assert_eq!(login_status(&server, "after@x.com", "pw").await, 200);
}
