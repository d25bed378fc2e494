//! [`AuthLayer`]: puts a lazy [`AuthContext`] into every request's extensions.

use std::task::{Context, Poll};

use http::Request;
use tower::{Layer, Service};

use crate::auth::{Auth, AuthError};
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
/// ```
/// use axum::{Router, routing::get};
/// use tower_auth::{Auth, AuthConfig, CurrentUser, MemoryStore};
///
/// let auth = Auth::new(MemoryStore::new(), AuthConfig::default());
/// let app: Router = Router::new()
///     .route("/me", get(|CurrentUser(user): CurrentUser| async move { user.email }))
///     .layer(auth.layer());
/// # let _ = app;
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
        let context = AuthContext {
            auth: self.auth.clone(),
            cookies: CookieHeaders::of(req.headers()),
            user: tokio::sync::OnceCell::new(),
        };
        req.extensions_mut().insert(context);
        self.inner.call(req)
    }
}

/// Per-request access to the session: the session cookie, the (lazily loaded) user and the
/// [`Auth`] service. Put into request extensions by [`AuthLayer`]; use
/// [`CurrentUser`](crate::CurrentUser) / [`MaybeUser`](crate::MaybeUser), or borrow it with
/// `req.extensions().get::<AuthContext>()` in a plain tower service.
///
/// The user is loaded once per context: the extractors share the one in the request's
/// extensions. A clone carries the user if it was loaded before the clone was made.
#[derive(Clone)]
pub struct AuthContext {
    auth: Auth,
    cookies: CookieHeaders,
    user: tokio::sync::OnceCell<Option<User>>,
}

impl std::fmt::Debug for AuthContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthContext")
            .field("user", &self.user.get())
            .finish_non_exhaustive()
    }
}

impl AuthContext {
    /// The service.
    pub fn auth(&self) -> &Auth {
        &self.auth
    }

    /// The session token the client sent, if any (a secret: do not log it). With several
    /// cookies of the session's name, the first counts.
    pub fn session_id(&self) -> Option<String> {
        self.cookies.get(&self.auth.config().cookie.name)
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
}
