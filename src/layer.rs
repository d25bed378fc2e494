//! [`AuthLayer`]: puts a lazy [`AuthContext`] into every request's extensions.

use std::net::{IpAddr, SocketAddr};
use std::task::{Context, Poll};

use axum::extract::ConnectInfo;
use http::Request;
use tower::{Layer, Service};

use crate::auth::{Auth, AuthError, LoggedIn, LoginAttempt};
use crate::config::AuthConfig;
use crate::session_cookie::CookieHeaders;
use crate::user::User;

/// A tower [`Layer`] that makes the current user available to handlers.
///
/// It reads nothing and queries nothing by itself: it only places an [`AuthContext`] in
/// the request extensions (one small allocation). The session cookie is parsed, and the
/// user loaded, the first time something asks ([`CurrentUser`](crate::CurrentUser),
/// [`MaybeUser`](crate::MaybeUser) or [`AuthContext::user`]), and at most once per request.
/// It works on any tower service, axum or not, and beside any cookie middleware: handlers
/// set the session cookie by returning a [`SessionCookie`](crate::SessionCookie).
///
/// Applying it twice (around your app and, inside, around [`Auth::router`], which carries
/// one of its own) costs nothing more: the inner one sees the context already there and
/// passes the request on.
///
/// ```
/// use axum::{Router, routing::get};
/// use tower_auth::{Auth, AuthConfig, CurrentUser, MemoryStore};
///
/// # fn main() -> Result<(), tower_auth::ConfigError> {
/// let auth = Auth::new(MemoryStore::new(), AuthConfig::default())?;
/// let app: Router = Router::new()
///     .route("/me", get(|CurrentUser(user): CurrentUser| async move { user.email }))
///     .layer(auth.layer());
/// # let _ = app; Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct AuthLayer {
    auth: Auth,
}

impl AuthLayer {
    /// A layer serving `auth`'s sessions.
    pub fn new(auth: Auth) -> Self {
        Self { auth }
    }
}

impl Auth {
    /// The [`AuthLayer`] for this service, to add with `.layer(auth.layer())`.
    pub fn layer(&self) -> AuthLayer {
        AuthLayer::new(self.clone())
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            auth: self.auth.clone(),
        }
    }
}

/// The service [`AuthLayer`] wraps around yours.
#[derive(Debug, Clone)]
pub struct AuthService<S> {
    inner: S,
    auth: Auth,
}

impl<S, B> Service<Request<B>> for AuthService<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        if req.extensions().get::<AuthContext>().is_none() {
            let context = AuthContext {
                auth: self.auth.clone(),
                cookies: CookieHeaders::of(req.headers()),
                client_ip: client_ip(self.auth.config(), &req),
                user: tokio::sync::OnceCell::new(),
            };
            req.extensions_mut().insert(context);
        }
        self.inner.call(req)
    }
}

/// The client's IP: the last `X-Forwarded-For` hop when the proxy is trusted, else the TCP
/// peer (when the server was started with connect info).
fn client_ip<B>(config: &AuthConfig, req: &Request<B>) -> Option<IpAddr> {
    if config.trust_forwarded_for {
        let forwarded = req
            .headers()
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|hop| hop.trim().parse::<IpAddr>().ok())
            .next_back();
        if forwarded.is_some() {
            return forwarded;
        }
    }
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
}

/// Per-request access to the session: the session cookie, the client's address, the
/// (lazily loaded) user and the [`Auth`] service. Put into request extensions by
/// [`AuthLayer`]; take it as an axum extractor, use [`CurrentUser`](crate::CurrentUser) /
/// [`MaybeUser`](crate::MaybeUser), or borrow it with
/// `req.extensions().get::<AuthContext>()` in a plain tower service.
///
/// Its [`log_in`](Self::log_in) and [`log_out`](Self::log_out) are the protected flows of
/// the crate's router, for a host app's own handlers: the client address (per-client
/// throttling) and the presented session (session-fixation defence) come from the request.
///
/// The user is loaded once per context: the extractors share the one in the request's
/// extensions. A clone carries the user if it was loaded before the clone was made.
#[derive(Clone)]
pub struct AuthContext {
    auth: Auth,
    cookies: CookieHeaders,
    client_ip: Option<IpAddr>,
    user: tokio::sync::OnceCell<Option<User>>,
}

impl std::fmt::Debug for AuthContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthContext")
            .field("client_ip", &self.client_ip)
            .field("user", &self.user.get())
            .finish_non_exhaustive()
    }
}

impl AuthContext {
    /// The service.
    pub fn auth(&self) -> &Auth {
        &self.auth
    }

    /// The session token the client sent, if any (a secret: do not log it). Only a cookie
    /// of exactly the configured name counts; with several, the first.
    pub fn session_id(&self) -> Option<String> {
        self.cookies.get(&self.auth.config().cookie.name)
    }

    /// The client's address: the TCP peer when the server runs with connect info
    /// (`into_make_service_with_connect_info::<SocketAddr>()`), or the last
    /// `X-Forwarded-For` hop when [`trust_forwarded_for`](AuthConfig::trust_forwarded_for)
    /// is set. `None` when neither is available (per-client throttling is then off, and
    /// the service says so once in its log).
    pub fn client_ip(&self) -> Option<IpAddr> {
        self.client_ip
    }

    /// The logged-in user, loading it on the first call only (one indexed read).
    ///
    /// # Errors
    /// A store failure (not cached: a later call tries again).
    pub async fn user(&self) -> Result<Option<User>, AuthError> {
        self.user
            .get_or_try_init(|| async {
                let token = self.session_id();
                self.auth.get_user_from_session_id(token.as_deref()).await
            })
            .await
            .cloned()
    }

    /// Logs in with every protection of the crate's `POST /sessions`: per-account and
    /// per-client throttling, session-fixation defence (the presented session ends), a
    /// new session. Return [`LoggedIn::cookie`] with the response.
    ///
    /// # Errors
    /// As [`Auth::log_in`].
    pub async fn log_in(&self, email: &str, password: &str) -> Result<LoggedIn, AuthError> {
        let presented = self.session_id();
        self.auth
            .log_in(
                LoginAttempt::new(email, password)
                    .client_ip(self.client_ip)
                    .current_session(presented.as_deref()),
            )
            .await
    }

    /// Ends the presented session and returns its user; clear the browser's cookie with
    /// [`Auth::expired_session_cookie`].
    ///
    /// # Errors
    /// As [`Auth::log_out`].
    pub async fn log_out(&self) -> Result<User, AuthError> {
        self.auth.log_out(self.session_id().as_deref()).await
    }
}
