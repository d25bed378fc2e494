//! [`AuthLayer`]: puts a lazy [`AuthContext`] into every request's extensions.

use std::net::{IpAddr, SocketAddr};
use std::task::{Context, Poll};

use axum::extract::ConnectInfo;
use http::{HeaderValue, Request};
use tower::{Layer, Service};

use crate::auth::{Auth, AuthError, Client, LoggedIn, LoginAttempt, SessionInfo};
use crate::config::AuthConfig;
use crate::http::cookie_headers::CookieHeaders;
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
/// # let mailer = tower_auth::Mailer::dev_outbox("target/outbox", "app@localhost", "http://localhost:3000")?;
/// let auth = Auth::new(MemoryStore::new(), AuthConfig::hardened_with(mailer))?;
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
        // An app built outside a runtime starts its mail worker here, where it is served.
        self.start_mail_worker();
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
        warn_if_cookie_is_dropped(&self.auth, req.headers());
        if req.extensions().get::<AuthContext>().is_none() {
            let context = AuthContext {
                auth: self.auth.clone(),
                cookies: CookieHeaders::of(req.headers()),
                client_ip: client_ip(self.auth.config(), &req),
                // Read by the extractor, only for the handlers that take a context.
                user_agent: None,
                user: tokio::sync::OnceCell::new(),
            };
            req.extensions_mut().insert(context);
        }
        self.inner.call(req)
    }
}

/// Says once, in the log, when the `Secure` session cookie cannot work: over plain HTTP on
/// a host other than localhost, browsers drop it, and logging in seems to do nothing with
/// no clue why. Behind a TLS proxy that sends `X-Forwarded-Proto: https`, nothing is said.
fn warn_if_cookie_is_dropped(auth: &Auth, headers: &http::HeaderMap) {
    let warned = auth.insecure_cookie_warned();
    if !auth.config().cookie.secure || warned.load(std::sync::atomic::Ordering::Relaxed) {
        return;
    }
    let host = headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let hostname = host.rsplit_once(':').map_or(host, |(name, port)| {
        if port.bytes().all(|b| b.is_ascii_digit()) {
            name
        } else {
            host
        }
    });
    let local = host.is_empty()
        || matches!(hostname, "localhost" | "127.0.0.1" | "[::1]")
        || hostname.ends_with(".localhost");
    let https = headers
        .get("x-forwarded-proto")
        .is_some_and(|p| p.as_bytes().eq_ignore_ascii_case(b"https"));
    if !local && !https && !warned.swap(true, std::sync::atomic::Ordering::Relaxed) {
        tracing::warn!(
            target: "tower_auth",
            host = hostname,
            cookie = %auth.config().cookie.name,
            "browsers drop this Secure session cookie over plain http on a host other than \
             localhost, so logging in will seem to do nothing: serve the site over https \
             (or a TLS proxy sending X-Forwarded-Proto: https), or open it as \
             http://localhost; for development over plain http on another host, set \
             cookie.secure = false and a cookie name without the __Host- prefix"
        );
    }
}

/// The client's IP: from `X-Forwarded-For` behind trusted proxies, else the TCP peer (when
/// the server was started with connect info).
fn client_ip<B>(config: &AuthConfig, req: &Request<B>) -> Option<IpAddr> {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    crate::http::forwarded::client_ip(req.headers(), config.trusted_proxies, peer)
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
    /// The request's `User-Agent`: filled in when the context is extracted (a login
    /// records it), so requests that never log in do not copy it.
    pub(crate) user_agent: Option<HeaderValue>,
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
    /// client address the trusted proxies recorded in `X-Forwarded-For` when
    /// [`trusted_proxies`](AuthConfig::trusted_proxies) is set. `None` when neither is available (per-client throttling is then off, and
    /// the service says so once in its log).
    pub fn client_ip(&self) -> Option<IpAddr> {
        self.client_ip
    }

    /// The logged-in user, loading it on the first call only (from the session cache, or one
    /// indexed read).
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

    /// The request's client: its address, `User-Agent` and the session and device cookies
    /// it presented, for [`Auth`]'s flows.
    pub fn client(&self) -> Client {
        let config = self.auth.config();
        let mut client = Client::new(self.client_ip)
            .user_agent(self.user_agent())
            .session(self.session_id().as_deref())
            .device(self.device_cookie().as_deref());
        client.second_factor_device = config
            .second_factors
            .as_ref()
            .and_then(|sf| sf.device_cookie.as_ref())
            .and_then(|name| self.cookies.get(name));
        client
    }

    /// The value of the cookie `name` the browser presented (the first, if several).
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.cookies.get(name)
    }

    /// The passkey ceremony's cookie the browser presented, if any.
    pub fn passkey_ceremony(&self) -> Option<String> {
        self.auth
            .config()
            .second_factors
            .as_ref()
            .and_then(|sf| self.cookies.get(&sf.ceremony_cookie))
    }

    /// The pending login's token the browser presented (a login waiting for its second
    /// factor), if any.
    pub fn pending_login(&self) -> Option<String> {
        self.auth
            .config()
            .second_factors
            .as_ref()
            .and_then(|sf| self.cookies.get(&sf.pending_cookie))
    }

    /// Logs in with every protection of the crate's `POST /sessions`: per-account and
    /// per-client throttling, session-fixation defence (the presented session ends), a
    /// new session that records the client's user agent (and address, when configured).
    /// Return [`LoggedIn::cookie`] with the response.
    ///
    /// # Errors
    /// As [`Auth::log_in`].
    pub async fn log_in(&self, email: &str, password: &str) -> Result<LoggedIn, AuthError> {
        self.log_in_with(LoginAttempt::new(email, password)).await
    }

    /// [`log_in`](Self::log_in) with options, such as "remember me":
    /// `context.log_in_with(LoginAttempt::new(email, password).remember_me(true))`.
    ///
    /// # Errors
    /// As [`Auth::log_in`].
    pub async fn log_in_with(&self, attempt: LoginAttempt<'_>) -> Result<LoggedIn, AuthError> {
        self.auth.log_in(&self.client(), attempt).await
    }

    /// Logs in a user the application verified by means of its own, with every protection
    /// of a password login after the password ([`Auth::log_in_verified`]).
    ///
    /// # Errors
    /// As [`Auth::log_in_verified`].
    pub async fn log_in_verified(
        &self,
        user_id: crate::UserId,
        how: crate::Verified,
    ) -> Result<LoggedIn, AuthError> {
        self.auth
            .log_in_verified(&self.client(), user_id, how)
            .await
    }

    /// Counts a failed verification of the application's own against the account's and
    /// this client's login limits ([`Auth::note_failed_verification`]).
    ///
    /// # Errors
    /// As [`Auth::note_failed_verification`].
    pub async fn note_failed_verification(&self, user_id: crate::UserId) -> Result<(), AuthError> {
        self.auth
            .note_failed_verification(&self.client(), user_id)
            .await
    }

    /// Registers a user, as [`Auth::register`].
    ///
    /// # Errors
    /// As [`Auth::register`].
    pub async fn register(&self, email: &str, password: &str) -> Result<User, AuthError> {
        self.auth.register(&self.client(), email, password).await
    }

    /// Asks for a password reset, as [`Auth::request_password_reset`].
    ///
    /// # Errors
    /// As [`Auth::request_password_reset`].
    pub async fn request_password_reset(
        &self,
        email: &str,
    ) -> Result<crate::ResetRequested, AuthError> {
        self.auth
            .request_password_reset(&self.client(), email)
            .await
    }

    /// Sets a new password with a reset token, as [`Auth::reset_password`].
    ///
    /// # Errors
    /// As [`Auth::reset_password`].
    pub async fn reset_password(
        &self,
        email: &str,
        reset_token: &str,
        new_password: &str,
    ) -> Result<User, AuthError> {
        self.auth
            .reset_password(&self.client(), email, reset_token, new_password)
            .await
    }

    /// Asks for a new confirmation link, as [`Auth::resend_confirmation`].
    ///
    /// # Errors
    /// As [`Auth::resend_confirmation`].
    pub async fn resend_confirmation(&self, email: &str) -> Result<(), AuthError> {
        self.auth.resend_confirmation(&self.client(), email).await
    }

    /// Asks for a magic (login) link, as [`Auth::request_magic_link`].
    ///
    /// # Errors
    /// As [`Auth::request_magic_link`].
    pub async fn request_magic_link(&self, email: &str) -> Result<(), AuthError> {
        self.auth.request_magic_link(&self.client(), email).await
    }

    /// The trusted-device cookie the client presented, if any.
    fn device_cookie(&self) -> Option<String> {
        self.auth
            .config()
            .trusted_device_cookie
            .as_ref()
            .and_then(|name| self.cookies.get(name))
    }

    /// Logs in with a magic link's token, as [`Auth::log_in_with_magic_link`]. Return
    /// [`LoggedIn::cookie`] with the response.
    ///
    /// # Errors
    /// As [`Auth::log_in_with_magic_link`].
    pub async fn log_in_with_magic_link(&self, token: &str) -> Result<LoggedIn, AuthError> {
        self.auth
            .log_in_with_magic_link(&self.client(), token)
            .await
    }

    /// Confirms the account's email with a confirmation link's token, as
    /// [`Auth::confirm_email`]: the account keeps its password when `password` is right or
    /// the request presents a session of the account; otherwise (never confirmed before)
    /// its password is cleared.
    ///
    /// # Errors
    /// As [`Auth::confirm_email`].
    pub async fn confirm_email(
        &self,
        token: &str,
        password: Option<&str>,
    ) -> Result<crate::Confirmed, AuthError> {
        self.auth
            .confirm_email(&self.client(), token, password)
            .await
    }

    /// Asks to move the logged-in account to `new_email`, as
    /// [`Auth::request_email_change`] (needs a recent authentication).
    ///
    /// # Errors
    /// As [`Auth::request_email_change`].
    pub async fn request_email_change(&self, new_email: &str) -> Result<(), AuthError> {
        self.auth
            .request_email_change(&self.client(), new_email)
            .await
    }

    /// Ends the presented session and returns its user; clear the browser's cookie with
    /// [`Auth::expired_session_cookie`].
    ///
    /// # Errors
    /// As [`Auth::log_out`].
    pub async fn log_out(&self) -> Result<User, AuthError> {
        self.auth.log_out(&self.client()).await
    }

    /// The live sessions of the logged-in user, this one marked `current`
    /// ([`Auth::list_my_sessions`]).
    ///
    /// # Errors
    /// As [`Auth::list_my_sessions`].
    pub async fn sessions(&self) -> Result<Vec<SessionInfo>, AuthError> {
        self.auth.list_my_sessions(&self.client()).await
    }

    /// Ends one of the logged-in user's sessions by its handle ([`Auth::end_my_session`]).
    ///
    /// # Errors
    /// As [`Auth::end_my_session`].
    pub async fn end_session(&self, handle: &str) -> Result<SessionInfo, AuthError> {
        self.auth.end_my_session(&self.client(), handle).await
    }

    /// Ends every session of the logged-in user but this one ([`Auth::end_other_sessions`]).
    ///
    /// # Errors
    /// As [`Auth::end_other_sessions`].
    pub async fn end_other_sessions(&self) -> Result<u64, AuthError> {
        self.auth.end_other_sessions(&self.client()).await
    }

    /// Ends every session of the logged-in user, this one too; needs a recent
    /// authentication ([`Auth::end_all_my_sessions`]).
    ///
    /// # Errors
    /// As [`Auth::end_all_my_sessions`].
    pub async fn end_all_sessions(&self) -> Result<u64, AuthError> {
        self.auth.end_all_my_sessions(&self.client()).await
    }

    /// Proves the user's identity again with their password ([`Auth::reauthenticate`]).
    ///
    /// # Errors
    /// As [`Auth::reauthenticate`].
    pub async fn reauthenticate(&self, password: &str) -> Result<User, AuthError> {
        self.auth.reauthenticate(&self.client(), password).await
    }

    /// The logged-in user, if this session authenticated within the
    /// [`sudo_window`](AuthConfig::sudo_window) ([`Auth::require_recent_authentication`]).
    ///
    /// # Errors
    /// As [`Auth::require_recent_authentication`].
    pub async fn require_recent_authentication(&self) -> Result<User, AuthError> {
        self.auth
            .require_recent_authentication(&self.client())
            .await
    }

    /// Changes the logged-in user's password; other sessions end, this one stays
    /// ([`Auth::change_password`]).
    ///
    /// # Errors
    /// As [`Auth::change_password`].
    pub async fn change_password(
        &self,
        current_password: &str,
        new_password: &str,
    ) -> Result<User, AuthError> {
        self.auth
            .change_password(&self.client(), current_password, new_password)
            .await
    }

    /// Deletes the logged-in user's account, confirmed by the password or a recent
    /// authentication ([`Auth::delete_account`]).
    ///
    /// # Errors
    /// As [`Auth::delete_account`].
    pub async fn delete_account(&self, password: Option<&str>) -> Result<User, AuthError> {
        self.auth.delete_account(&self.client(), password).await
    }

    /// The request's `User-Agent`, when it is text.
    fn user_agent(&self) -> Option<&str> {
        self.user_agent.as_ref().and_then(|v| v.to_str().ok())
    }
}
