//! [`AuthLayer`]: puts a lazy [`AuthContext`] into every request's extensions.

use std::sync::Arc;
use std::task::{Context, Poll};

use http::Request;
use tower::{Layer, Service};
use tower_cookies::{CookieManager, Cookies};

use crate::auth::{Auth, AuthError};
use crate::user::User;

/// A tower [`Layer`] that makes the current user available to handlers.
///
/// It reads nothing and queries nothing by itself: it only places an [`AuthContext`] in
/// the request extensions. The session cookie is read, and the user loaded, the first time
/// something asks ([`CurrentUser`](crate::CurrentUser), [`MaybeUser`](crate::MaybeUser) or
/// [`AuthContext::user`]), and at most once per request. It includes tower-cookies'
/// `CookieManager`, so it works on any tower service, axum or not.
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
    type Service = CookieManager<AuthService<S>>;

    fn layer(&self, inner: S) -> Self::Service {
        CookieManager::new(AuthService {
            inner,
            auth: self.auth.clone(),
        })
    }
}

/// The service [`AuthLayer`] wraps around yours (inside tower-cookies' `CookieManager`).
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
        if let Some(cookies) = req.extensions().get::<Cookies>().cloned() {
            let context = AuthContext {
                auth: self.auth.clone(),
                cookies,
                user: Arc::default(),
            };
            req.extensions_mut().insert(context);
        }
        self.inner.call(req)
    }
}

/// Per-request access to the session: the cookie, the (lazily loaded) user and the
/// [`Auth`] service. Put into request extensions by [`AuthLayer`]; extract it with
/// `Extension<AuthContext>` or use [`CurrentUser`](crate::CurrentUser) /
/// [`MaybeUser`](crate::MaybeUser).
#[derive(Clone)]
pub struct AuthContext {
    auth: Auth,
    cookies: Cookies,
    user: Arc<tokio::sync::OnceCell<Option<User>>>,
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

    /// The request's cookie jar (also where the router sets and clears the session cookie).
    pub fn cookies(&self) -> &Cookies {
        &self.cookies
    }

    /// The session token the client sent, if any (a secret: do not log it).
    pub fn session_id(&self) -> Option<String> {
        self.cookies
            .get(&self.auth.config().cookie.name)
            .map(|c| c.value().to_owned())
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
