//! Shared helpers for tests that talk to a real server over HTTP.
//!
//! Include it from a test file with
//!
//! ```ignore
//! #[path = "support/http.rs"]
//! mod http_support;
//! ```
//!
//! [`serve`] starts any axum `Router` on `127.0.0.1:0` (behind [`MergeSlashesLayer`] and with
//! connect info, as `examples/spec_server.rs` serves it) and returns its address; [`raw`]
//! is a tiny HTTP/1.1 client over a bare `TcpStream` for what `reqwest` hides (the exact
//! status line with its reason phrase, request targets such as `//users`, non-UTF-8 header
//! bytes, chunked uploads).
#![allow(dead_code)]

use std::net::SocketAddr;

use axum::Router;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tower::Layer as _;
use tower_auth::seed::MergeSlashesLayer;
use tower_auth::{Auth, AuthConfig, MemoryStore, Store};

/// A server running on the test's runtime (it stops when the test's runtime does).
#[derive(Debug, Clone)]
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
}

impl TestServer {
    /// `http://127.0.0.1:<port>`, no trailing slash.
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `base()` followed by `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base())
    }

    /// The value `reqwest` sends as `Host` (`127.0.0.1:<port>`).
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// Sends `request` (raw bytes) on a fresh connection and reads the whole response.
    pub async fn raw(&self, request: &[u8]) -> RawResponse {
        raw(self.addr, request).await
    }

    /// A raw request with `Host` and `Connection: close` added after `head_lines`
    /// (`"POST /users HTTP/1.1"` and header lines, without the blank line), then `body`
    /// with its `Content-Length` when the body is non-empty.
    pub async fn raw_request(&self, head_lines: &[&str], body: &[u8]) -> RawResponse {
        let mut request = Vec::new();
        for line in head_lines {
            request.extend_from_slice(line.as_bytes());
            request.extend_from_slice(b"\r\n");
        }
        request.extend_from_slice(
            format!("Host: {}\r\nConnection: close\r\n", self.host()).as_bytes(),
        );
        if !body.is_empty() {
            request.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
        }
        request.extend_from_slice(b"\r\n");
        request.extend_from_slice(body);
        self.raw(&request).await
    }
}

/// The spec preset with a test-speed bcrypt cost.
pub fn spec_config() -> AuthConfig {
    let mut config = AuthConfig::spec();
    config.bcrypt_cost = 4;
    config
}

/// The hardened preset with a test-speed bcrypt cost, mailing into a development outbox
/// under the target directory. Unconfirmed accounts may log in and registration answers
/// as the seed does: the tests that use it are about other protections, and email
/// confirmation and concealed registration have their own (tests/mail.rs). The mail worker
/// wakes only when mail is queued (no periodic poll), so tests that count store calls
/// count only their own.
pub fn hardened_config() -> AuthConfig {
    let outbox = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("outbox");
    let mailer = tower_auth::Mailer::dev_outbox(outbox, "app@example.com", "http://localhost")
        .expect("mailer")
        .poll_interval(std::time::Duration::from_secs(24 * 3600));
    let mut config = AuthConfig::hardened_with(mailer);
    config.require_confirmed_email = false;
    config.conceal_registered_emails = false;
    config.bcrypt_cost = 4;
    config
}

/// An `Auth` over a fresh `MemoryStore` with [`spec_config`].
pub fn memory_auth() -> Auth {
    Auth::new(MemoryStore::new(), spec_config()).expect("valid config")
}

/// An `Auth` over `store` with [`spec_config`].
pub fn spec_auth(store: impl Store) -> Auth {
    Auth::new(store, spec_config()).expect("valid config")
}

/// Starts `router` on `127.0.0.1:0` behind [`MergeSlashesLayer`], with connect info.
pub async fn serve(router: Router) -> TestServer {
    let app = MergeSlashesLayer.layer(router);
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        axum::serve(
            listener,
            axum::ServiceExt::<axum::extract::Request>::into_make_service_with_connect_info::<
                SocketAddr,
            >(app),
        )
        .await
        .expect("server failed");
    });
    TestServer { addr }
}

/// Starts `router` on `127.0.0.1:0` without connect info, as a plain `axum::serve(listener,
/// app)` does: handlers then cannot know the client's address.
pub async fn serve_without_connect_info(router: Router) -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        axum::serve(listener, router).await.expect("server failed");
    });
    TestServer { addr }
}

/// Starts `auth.router()` at the root, as the spec server does.
pub async fn serve_auth(auth: &Auth) -> TestServer {
    serve(auth.router()).await
}

/// A `reqwest` client that neither follows redirects nor keeps cookies: tests send and
/// read cookies themselves.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("reqwest client")
}

/// The `session_id=...` value of a response's `Set-Cookie` header, if there is one
/// setting that cookie.
pub fn session_cookie_value(set_cookies: &[String]) -> Option<String> {
    set_cookies.iter().find_map(|c| {
        c.split(';')
            .next()
            .and_then(|pair| pair.trim().strip_prefix("session_id="))
            .map(str::to_owned)
    })
}

/// Sends `method path` to `server` with `headers` (a `Cookie`, a `User-Agent`, ...) and,
/// when `form` is not empty, a form body; reads the answer whole.
pub async fn send(
    server: &TestServer,
    method: reqwest::Method,
    path: &str,
    form: &[(&str, &str)],
    headers: &[(&str, &str)],
) -> Answer {
    let mut request = client().request(method, server.url(path));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if !form.is_empty() {
        request = request
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(self::form(form));
    }
    Answer::read(request.send().await.expect("request")).await
}

/// Every `Set-Cookie` header of a `reqwest` response, as text.
pub fn set_cookies(response: &reqwest::Response) -> Vec<String> {
    response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().expect("ASCII Set-Cookie").to_owned())
        .collect()
}

/// A response as the JSON tests read it: status, `Retry-After`, `Set-Cookie`s and the
/// JSON body (`Null` when empty).
#[derive(Debug)]
pub struct Answer {
    pub status: reqwest::StatusCode,
    pub retry_after: Option<String>,
    pub set_cookies: Vec<String>,
    pub body: serde_json::Value,
}

impl Answer {
    /// Reads `response` whole. Panics when a non-empty body is not JSON.
    pub async fn read(response: reqwest::Response) -> Self {
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .map(|v| v.to_str().expect("ASCII Retry-After").to_owned());
        let set_cookies = set_cookies(&response);
        let text = response.text().await.expect("body");
        let body = if text.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
        };
        Self {
            status,
            retry_after,
            set_cookies,
            body,
        }
    }

    /// Asserts the status, showing the whole answer when it differs.
    #[track_caller]
    pub fn expect(&self, status: reqwest::StatusCode) -> &Self {
        assert_eq!(self.status, status, "unexpected answer: {self:?}");
        self
    }
}

/// A response as read off the wire.
#[derive(Debug, Clone)]
pub struct RawResponse {
    /// The status line without its CRLF, e.g. `HTTP/1.1 401 UNAUTHORIZED`.
    pub status_line: String,
    /// The headers in order, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body (de-chunked when the response was chunked).
    pub body: Vec<u8>,
}

impl RawResponse {
    /// The status code from the status line.
    pub fn status(&self) -> u16 {
        self.status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {:?}", self.status_line))
    }

    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every header called `name` (case-insensitive).
    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The body as UTF-8 text.
    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("UTF-8 body")
    }

    /// The body parsed as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.text()))
    }
}

/// Sends `request` on a new connection to `addr`, shuts down the write side, and reads
/// until the server closes. Panics on I/O errors or an unparsable response.
pub async fn raw(addr: SocketAddr, request: &[u8]) -> RawResponse {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request).await.expect("write request");
    stream.flush().await.expect("flush");
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).await.expect("read response");
    parse_response(&bytes)
}

fn parse_response(bytes: &[u8]) -> RawResponse {
    let split = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| {
            panic!(
                "no end of head in response: {:?}",
                String::from_utf8_lossy(bytes)
            )
        });
    let head = std::str::from_utf8(&bytes[..split]).expect("ASCII response head");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("status line").to_owned();
    let headers: Vec<(String, String)> = lines
        .map(|line| {
            let (name, value) = line
                .split_once(':')
                .unwrap_or_else(|| panic!("bad header line {line:?}"));
            (name.trim().to_ascii_lowercase(), value.trim().to_owned())
        })
        .collect();
    let raw_body = &bytes[split + 4..];
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        dechunk(raw_body)
    } else {
        raw_body.to_vec()
    };
    RawResponse {
        status_line,
        headers,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size line");
        let size_text = std::str::from_utf8(&data[..line_end]).expect("ASCII chunk size");
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .expect("hex chunk size");
        data = &data[line_end + 2..];
        if size == 0 {
            return body;
        }
        body.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// `application/x-www-form-urlencoded` encoding of one value (everything but unreserved
/// characters percent-encoded).
pub fn form_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A form body from `(name, value)` pairs.
pub fn form(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}
