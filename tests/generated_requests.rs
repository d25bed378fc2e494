//! Generated requests over real HTTP: random methods, paths, headers, bodies and
//! encodings against the router in both presets. Whatever arrives, the server answers
//! (never hangs), with a status below 500 (never a panic or an internal error), and keeps
//! serving the next request.

#[path = "support/http.rs"]
mod http_support;

use std::net::SocketAddr;
use std::time::Duration;

use http_support::{hardened_config, serve_auth, spec_config};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tower_auth::{Auth, AuthConfig, LoginAttempt, MemoryStore};

/// Generated cases per preset.
const CASES: u32 = 1_500;
/// A request gets this long to be answered; any longer is a hang.
const ANSWER_WITHIN: Duration = Duration::from_secs(10);

/// One generated request, already on the wire.
#[derive(Debug, Clone)]
struct Generated {
    bytes: Vec<u8>,
}

fn method() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("GET".to_owned()),
        Just("POST".to_owned()),
        Just("PUT".to_owned()),
        Just("DELETE".to_owned()),
        Just("HEAD".to_owned()),
        Just("OPTIONS".to_owned()),
        Just("PATCH".to_owned()),
        "[A-Z]{1,10}",
    ]
}

fn known_path() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just("/"),
        Just("/users"),
        Just("/users/me"),
        Just("/sessions"),
        Just("/sessions/others"),
        Just("/sessions/all"),
        Just("/sessions/reauth"),
        Just("/sessions/0123456789abcdef0123456789abcdef"),
        Just("/profile"),
        Just("/password"),
        Just("/reset_password"),
        Just("/confirmation"),
        Just("/confirmation/resend"),
        Just("/magic_link"),
        Just("/sessions/magic"),
        Just("/email"),
        Just("/email/confirm"),
    ]
}

fn path() -> impl Strategy<Value = String> {
    prop_oneof![
        known_path().prop_map(str::to_owned),
        // Doubled slashes, encodings, dot segments, query strings, long or odd segments.
        (known_path(), "[a-zA-Z0-9%/._~?=&+-]{0,40}")
            .prop_map(|(base, tail)| format!("{base}{tail}")),
        "/[\\x21-\\x7e]{0,60}",
        Just(format!("/sessions/{}", "a".repeat(3000))),
        Just("//users".to_owned()),
        Just("/%2e%2e/profile".to_owned()),
    ]
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    let field = prop_oneof![
        Just("email"),
        Just("password"),
        Just("new_password"),
        Just("current_password"),
        Just("reset_token"),
        Just("remember_me"),
        Just("token"),
        Just("new_email"),
    ];
    let value = prop_oneof![
        Just("bob@example.com".to_owned()),
        Just("correct horse battery staple".to_owned()),
        Just(String::new()),
        "[\\x20-\\x7e]{0,40}",
        "%[0-9A-Fa-f]{0,2}[%+&=]{0,3}",
        "\\PC{0,30}",
        Just("x".repeat(100)),
    ];
    prop_oneof![
        proptest::collection::vec((field, value), 0..5).prop_map(|pairs| {
            pairs
                .iter()
                .map(|(f, v)| format!("{f}={v}"))
                .collect::<Vec<_>>()
                .join("&")
                .into_bytes()
        }),
        proptest::collection::vec(any::<u8>(), 0..300),
        Just(vec![b'a'; 20_000]),
        Just(Vec::new()),
    ]
}

/// A header; `session` is a real session cookie (`name=value`), sent now and then so that
/// the routes behind a session see generated input too.
fn header(session: String) -> impl Strategy<Value = (String, Vec<u8>)> {
    let value = || -> BoxedStrategy<Vec<u8>> {
        prop_oneof![
            "[\\x20-\\x7e]{0,80}".prop_map(String::into_bytes),
            proptest::collection::vec(0x20u8..=0xff, 0..60),
        ]
        .boxed()
    };
    let named = |name: &'static str, values: BoxedStrategy<Vec<u8>>| {
        values.prop_map(move |v| (name.to_owned(), v)).boxed()
    };
    prop_oneof![
        named(
            "Content-Type",
            prop_oneof![
                Just(b"application/x-www-form-urlencoded".to_vec()),
                Just(b"application/x-www-form-urlencoded; charset=utf-8".to_vec()),
                Just(b"application/json".to_vec()),
                Just(b"multipart/form-data; boundary=x".to_vec()),
                value(),
            ]
            .boxed()
        ),
        named(
            "Cookie",
            prop_oneof![
                "session_id=[\\x21-\\x7e]{0,60}".prop_map(String::into_bytes),
                "__Host-session_id=[a-zA-Z0-9_-]{0,50}; __Host-trusted_device=[a-zA-Z0-9_-]{0,50}"
                    .prop_map(String::into_bytes),
                Just(session.into_bytes()),
                value(),
            ]
            .boxed()
        ),
        named("Origin", value()),
        named(
            "Sec-Fetch-Site",
            prop_oneof![
                Just(b"cross-site".to_vec()),
                Just(b"same-origin".to_vec()),
                value()
            ]
            .boxed()
        ),
        named("X-Forwarded-For", value()),
        named("User-Agent", value()),
        named("Accept", value()),
        ("X-[A-Za-z-]{1,20}", value()).boxed(),
    ]
}

fn request(session: String) -> impl Strategy<Value = Generated> {
    (
        method(),
        path(),
        proptest::collection::vec(header(session), 0..6),
        body(),
        any::<bool>(),
    )
        .prop_map(|(method, path, headers, body, chunked)| {
            let mut bytes = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n").into_bytes();
            for (name, value) in headers {
                // Bytes a header cannot carry (CR, LF) would end it: leave them out.
                let value: Vec<u8> = value
                    .into_iter()
                    .filter(|b| *b != b'\r' && *b != b'\n')
                    .collect();
                bytes.extend_from_slice(name.as_bytes());
                bytes.extend_from_slice(b": ");
                bytes.extend_from_slice(&value);
                bytes.extend_from_slice(b"\r\n");
            }
            bytes.extend_from_slice(b"Connection: close\r\n");
            if chunked && !body.is_empty() {
                bytes.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
                for chunk in body.chunks(97) {
                    bytes.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                    bytes.extend_from_slice(chunk);
                    bytes.extend_from_slice(b"\r\n");
                }
                bytes.extend_from_slice(b"0\r\n\r\n");
            } else {
                bytes.extend_from_slice(
                    format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes(),
                );
                bytes.extend_from_slice(&body);
            }
            Generated { bytes }
        })
}

/// Sends `request` (which asks for `Connection: close`) on a new connection and returns the
/// status line of the answer (`None` when the server closed without one). The server may
/// answer before reading a whole body (413, 415): a failed write is not a failure, a
/// missing answer is. The write side stays open: hyper, like most servers, drops the
/// response of a client that half-closes mid-request.
async fn send(addr: SocketAddr, request: &[u8]) -> Option<String> {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let _ = stream.write_all(request).await;
    let mut received = Vec::new();
    let _ = stream.read_to_end(&mut received).await;
    let head = String::from_utf8_lossy(&received);
    head.lines()
        .next()
        .filter(|l| l.starts_with("HTTP/1.1 "))
        .map(str::to_owned)
}

fn run_preset(mut config: AuthConfig, seed_name: &str) {
    config.body_read_timeout = Duration::from_secs(2);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (session, addr): (String, SocketAddr) = runtime.block_on(async {
        let auth = Auth::new(MemoryStore::new(), config).expect("valid config");
        auth.register_user("bob@example.com", "correct horse battery staple")
            .await
            .expect("register");
        let logged_in = auth
            .log_in(
                &tower_auth::Client::default(),
                LoginAttempt::new("bob@example.com", "correct horse battery staple"),
            )
            .await
            .expect("log in");
        let session = format!("{}={}", auth.config().cookie.name, logged_in.session_id);
        let server = serve_auth(&auth).await;
        (session, server.addr)
    });
    let mut runner = TestRunner::new(Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&request(session), |generated| {
            let request = String::from_utf8_lossy(&generated.bytes).into_owned();
            let answer = runtime
                .block_on(async {
                    tokio::time::timeout(ANSWER_WITHIN, send(addr, &generated.bytes)).await
                })
                .map_err(|_| {
                    TestCaseError::fail(format!(
                        "{seed_name}: no answer within {ANSWER_WITHIN:?} to {request:?}"
                    ))
                })?;
            let status_line = answer.ok_or_else(|| {
                TestCaseError::fail(format!(
                    "{seed_name}: closed without an answer to {request:?}"
                ))
            })?;
            let status: u16 = status_line[9..12].parse().unwrap_or(0);
            prop_assert!(
                (100..500).contains(&status),
                "{seed_name}: {status_line} to {request:?}"
            );
            Ok(())
        })
        .unwrap_or_else(|failure| panic!("{failure}"));
    // Still serving.
    runtime.block_on(async {
        let answer = send(
            addr,
            b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert_eq!(answer.as_deref(), Some("HTTP/1.1 200 OK"));
    });
}

#[test]
fn generated_requests_never_get_a_5xx_in_the_spec_preset() {
    run_preset(spec_config(), "spec");
}

#[test]
fn generated_requests_never_get_a_5xx_in_the_hardened_preset() {
    run_preset(hardened_config(), "hardened");
}
