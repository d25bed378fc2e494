//! Connections cannot be hoarded (`tower_auth::serve`, as the spec server serves): idle,
//! half-sent and trickling connections are closed after their timeouts, one address holds
//! a bounded number, and a real login still succeeds while an attacker holds all it can.

#[path = "support/http.rs"]
mod http_support;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use http_support::{client, spec_config};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tower::Layer as _;
use tower_auth::seed::MergeSlashesLayer;
use tower_auth::serve::{ConnectionLimits, serve};
use tower_auth::{Auth, MemoryStore};

/// How long a test waits for the server to close a connection before failing: far longer
/// than the timeouts configured here, so a slow machine never fails it, and a server that
/// never closes does.
const PATIENCE: Duration = Duration::from_secs(30);

async fn start(limits: ConnectionLimits) -> (Auth, SocketAddr) {
    let mut config = spec_config();
    config.body_read_timeout = Duration::from_millis(500);
    let auth = Auth::new(MemoryStore::new(), config).expect("valid config");
    let app = MergeSlashesLayer.layer(auth.router());
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(serve(listener, app, limits, std::future::pending()));
    (auth, addr)
}

/// A connection to `server` from the loopback address `from` (127.0.0.0/8 is all local).
async fn connect_from(from: &str, server: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(from.parse::<IpAddr>().expect("ip"), 0))?;
    socket.connect(server).await
}

/// Reads until the server closes the connection; what it sent before.
async fn until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    let read = tokio::time::timeout(PATIENCE, stream.read_to_end(&mut received)).await;
    assert!(
        read.is_ok(),
        "the server kept the connection open past {PATIENCE:?}: {}",
        String::from_utf8_lossy(&received)
    );
    received
}

/// True when the server has closed `stream` already (or does within a few milliseconds).
async fn closed_soon(stream: &mut TcpStream) -> bool {
    let mut byte = [0u8; 1];
    matches!(
        tokio::time::timeout(Duration::from_millis(20), stream.read(&mut byte)).await,
        Ok(Ok(0) | Err(_))
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hoarded_connections_are_bounded_and_closed_and_logins_still_work() {
    let mut limits = ConnectionLimits::default();
    limits.max_connections = 512;
    limits.max_connections_per_ip = 32;
    limits.header_read_timeout = Duration::from_secs(3);
    let (auth, server) = start(limits).await;
    auth.register_user("bob@example.com", "a fine passphrase")
        .await
        .expect("register");

    // One attacker address opens 1,500 connections and sends nothing.
    let mut idle = Vec::new();
    for _ in 0..1_500 {
        match connect_from("127.0.0.2", server).await {
            Ok(stream) => idle.push(stream),
            Err(e) => panic!("connect: {e}"),
        }
    }
    // Another sends half a request head, another a head and part of its body.
    let mut half_head = connect_from("127.0.0.3", server).await.expect("connect");
    half_head
        .write_all(b"POST /sessions HTTP/1.1\r\nHost: x\r\nContent-Ty")
        .await
        .expect("write");
    let mut trickle = connect_from("127.0.0.4", server).await.expect("connect");
    trickle
        .write_all(
            b"POST /sessions HTTP/1.1\r\nHost: x\r\n\
              Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nemail=",
        )
        .await
        .expect("write");

    // While the attacker holds all it can, a real client logs in.
    let login = client()
        .post(format!("http://{server}/sessions"))
        .form(&[
            ("email", "bob@example.com"),
            ("password", "a fine passphrase"),
        ])
        .send()
        .await
        .expect("login");
    assert_eq!(login.status(), 200);

    // The server kept at most its per-address bound of the idle ones.
    let mut kept = 0;
    for stream in &mut idle {
        if !closed_soon(stream).await {
            kept += 1;
        }
    }
    assert!(
        (1..=32).contains(&kept),
        "{kept} idle connections kept from one address"
    );

    // The kept idle ones, the half-sent head and the trickling body are closed in time;
    // the trickle is told why first.
    for stream in idle.iter_mut().take(64) {
        until_closed(stream).await;
    }
    until_closed(&mut half_head).await;
    let answer = String::from_utf8(until_closed(&mut trickle).await).expect("UTF-8");
    assert!(
        answer.starts_with("HTTP/1.1 408"),
        "a trickling body gets 408: {answer}"
    );
    assert!(
        answer.contains("request body not received in time"),
        "{answer}"
    );
}

/// A keep-alive connection that finished its request and then idles is closed too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_is_closed() {
    let mut limits = ConnectionLimits::default();
    limits.header_read_timeout = Duration::from_millis(300);
    let (_, server) = start(limits).await;
    let mut stream = TcpStream::connect(server).await.expect("connect");
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let answer = String::from_utf8(until_closed(&mut stream).await).expect("UTF-8");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("Bienvenue"), "{answer}");
}

/// At the bound of open connections new ones wait in the backlog rather than fail, and
/// are served as soon as a place frees.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_bound_connections_wait_for_a_place() {
    let mut limits = ConnectionLimits::default();
    limits.max_connections = 4;
    limits.header_read_timeout = Duration::from_millis(300);
    let (_, server) = start(limits).await;
    let mut held = Vec::new();
    for i in 0..4 {
        held.push(
            connect_from(&format!("127.0.1.{i}"), server)
                .await
                .expect("connect"),
        );
    }
    let response = tokio::time::timeout(PATIENCE, client().get(format!("http://{server}/")).send())
        .await
        .expect("served once the idle connections were closed")
        .expect("response");
    assert_eq!(response.status(), 200);
}
