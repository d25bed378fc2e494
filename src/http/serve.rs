//! Serving an app so that connections cannot be hoarded: [`serve`] with
//! [`ConnectionLimits`].
//!
//! `axum::serve` keeps an idle or half-sent connection open as long as the client likes and
//! accepts as many as the process has file descriptors, so a few thousand idle sockets from
//! one client can make the server refuse everyone ("Too many open files"). [`serve`] is the
//! same loop with bounds: at most [`max_connections`](ConnectionLimits::max_connections)
//! open (past that, new connections wait in the listen backlog), at most
//! [`max_connections_per_ip`](ConnectionLimits::max_connections_per_ip) from one address
//! (past that, they are closed at once), and a connection that has not sent a complete
//! request head within [`header_read_timeout`](ConnectionLimits::header_read_timeout)
//! (a fresh one that sends nothing, one that sends its headers a byte at a time, an idle
//! keep-alive one waiting for its next request) is closed. A body that trickles is the
//! router's to bound: [`body_read_timeout`](crate::AuthConfig::body_read_timeout).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tower::{Service, ServiceExt as _};

use crate::per_ip::PerIp;

/// How many connections [`serve`] keeps open, and for how long an idle or slow one.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConnectionLimits {
    /// Most connections open at once. Default: 1,024 (keep it well under the process's
    /// open-file limit, `ulimit -n`, which the store's connections share). 0: no limit.
    pub max_connections: usize,
    /// Most connections open at once from one client address. Default: 64. Behind a
    /// reverse proxy every connection comes from the proxy: raise it to `max_connections`
    /// there, and let the proxy bound its clients. 0: no limit.
    pub max_connections_per_ip: usize,
    /// A connection must send a complete request head within this time of being opened or
    /// of finishing its previous response, or it is closed. Default: 10 s.
    pub header_read_timeout: Duration,
    /// At shutdown, how long open connections may take to finish their requests. Default:
    /// 10 s.
    pub shutdown_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            max_connections_per_ip: 64,
            header_read_timeout: Duration::from_secs(10),
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

/// Serves `app` on `listener` (HTTP/1.1) within `limits` until `shutdown` completes, then
/// stops accepting, lets open connections finish their requests (up to
/// [`shutdown_timeout`](ConnectionLimits::shutdown_timeout)) and returns. Each request
/// carries the client's address as `ConnectInfo<SocketAddr>`, as `axum::serve` with
/// `into_make_service_with_connect_info` gives it, for per-client throttling.
///
/// ```no_run
/// use tower_auth::serve::{ConnectionLimits, serve};
/// use tower_auth::{Auth, AuthConfig};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// # let mailer = tower_auth::Mailer::dev_outbox("target/outbox", "app@localhost", "http://localhost:3000")?;
/// let auth = Auth::connect("sqlite://app.db?mode=rwc", AuthConfig::hardened_with(mailer)).await?;
/// let app = axum::Router::new().merge(auth.router()).layer(auth.layer());
/// let listener = tokio::net::TcpListener::bind("0.0.0.0:3000").await?;
/// serve(listener, app, ConnectionLimits::default(), std::future::pending()).await;
/// # Ok(()) }
/// ```
pub async fn serve<S, B>(
    listener: TcpListener,
    app: S,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) where
    S: Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let no_limit = |max: usize| {
        if max == 0 {
            Semaphore::MAX_PERMITS
        } else {
            max
        }
    };
    let open = Arc::new(Semaphore::new(no_limit(limits.max_connections)));
    let per_ip_max = no_limit(limits.max_connections_per_ip);
    let per_ip = PerIp::default();
    let (stop, stopping) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut warned_accept = false;
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&open).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        while connections.try_join_next().is_some() {}
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                // Out of file descriptors, or a connection reset before it was accepted:
                // wait a moment rather than spin, and keep serving.
                if !warned_accept {
                    warned_accept = true;
                    tracing::warn!(target: "tower_auth", error = %err, "accept failed; retrying");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(slot) = per_ip.take(peer.ip(), per_ip_max) else {
            tracing::debug!(target: "tower_auth", client = %peer.ip(), "connection refused: too many from this address");
            continue;
        };
        // Small responses go out at once rather than after Nagle's delay.
        let _ = stream.set_nodelay(true);
        let service = app.clone().map_request(move |mut req: Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
            req
        });
        let header_read_timeout = limits.header_read_timeout;
        let mut stopping = stopping.clone();
        connections.spawn(async move {
            let _held = (permit, slot);
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(header_read_timeout);
            let connection =
                builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                () = async {
                    // Never a guard across the await: the loop only reads the value.
                    while !*stopping.borrow_and_update() {
                        if stopping.changed().await.is_err() {
                            return;
                        }
                    }
                } => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
    }
    drop(listener);
    let _ = stop.send(true);
    let drained = tokio::time::timeout(limits.shutdown_timeout, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(target: "tower_auth", "shutdown timeout: closing the remaining connections");
    }
}
