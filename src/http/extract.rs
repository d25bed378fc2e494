//! Axum extractors for handlers behind [`AuthLayer`](crate::AuthLayer).

use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Response};
use http::request::Parts;

use crate::auth::{Auth, AuthError};
use crate::http::error::{Answer, HttpError, LAYER_MISSING};
use crate::http::layer::AuthContext;
use crate::user::User;

/// The logged-in user; the request is refused when there is none, with the configured
/// [`no_session_status`](crate::AuthConfig::no_session_status) (hardened: 401; the seed's
/// preset: 403, as its `GET /profile`).
///
/// ```
/// use tower_auth::CurrentUser;
/// async fn profile(CurrentUser(user): CurrentUser) -> String {
///     user.email
/// }
/// ```
#[derive(Debug, Clone)]
pub struct CurrentUser(pub User);

/// The logged-in user, if any: for pages that look different when logged in.
///
/// ```
/// use tower_auth::MaybeUser;
/// async fn home(MaybeUser(user): MaybeUser) -> String {
///     user.map_or_else(|| "hello, stranger".to_owned(), |u| format!("hello, {}", u.email))
/// }
/// ```
#[derive(Debug, Clone)]
pub struct MaybeUser(pub Option<User>);

/// Why [`CurrentUser`] or [`MaybeUser`] refused a request.
#[derive(Debug)]
pub struct AuthRejection {
    error: HttpError,
    answer: Answer,
    /// Ask the server to close the connection after this answer (a body that will not
    /// come is not waited for).
    pub(crate) close_connection: bool,
}

impl AuthRejection {
    pub(crate) fn new(error: HttpError, answer: Answer) -> Self {
        Self {
            error,
            answer,
            close_connection: false,
        }
    }
}

/// For handlers of your own that call [`Auth`](crate::Auth): `?` turns an [`AuthError`]
/// into the JSON answer the hardened preset's router gives for it (400, 401, 403, 404,
/// 429, 503, or a 500 with a generic body). [`Auth::rejection`] answers as your
/// configuration says instead.
impl From<AuthError> for AuthRejection {
    fn from(error: AuthError) -> Self {
        Self::new(error.into(), Answer::HARDENED)
    }
}

impl Auth {
    /// The answer the crate's router gives for `error` under this configuration (its wire
    /// style and [`no_session_status`](crate::AuthConfig::no_session_status)), for handlers
    /// of your own: `.map_err(|e| auth.rejection(e))?`.
    pub fn rejection(&self, error: AuthError) -> AuthRejection {
        AuthRejection::new(error.into(), Answer::of(self.config()))
    }
}

impl IntoResponse for AuthRejection {
    fn into_response(self) -> Response {
        let mut response = self.error.into_response_with(self.answer);
        if self.close_connection {
            response.headers_mut().insert(
                http::header::CONNECTION,
                http::HeaderValue::from_static("close"),
            );
        }
        response
    }
}

impl std::fmt::Display for AuthRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.error {
            HttpError::Auth(e) => write!(f, "{e}"),
            HttpError::LayerMissing => f.write_str(LAYER_MISSING),
            _ => f.write_str("authentication failed"),
        }
    }
}

impl std::error::Error for AuthRejection {}

/// The request's [`AuthContext`], or the rejection that says the layer is missing.
fn context(parts: &Parts) -> Result<&AuthContext, AuthRejection> {
    parts
        .extensions
        .get::<AuthContext>()
        .ok_or_else(|| AuthRejection::new(HttpError::LayerMissing, Answer::HARDENED))
}

async fn load_user(parts: &Parts) -> Result<Option<User>, AuthRejection> {
    let context = context(parts)?;
    context
        .user()
        .await
        .map_err(|e| context.auth().rejection(e))
}

/// The request's context, for handlers that log in or out themselves
/// ([`AuthContext::log_in`]). Refused with a 500 that names the mistake when the route is
/// not behind the [`AuthLayer`](crate::AuthLayer).
impl<S: Send + Sync> FromRequestParts<S> for AuthContext {
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let mut context = context(parts)?.clone();
        context.user_agent = parts.headers.get(http::header::USER_AGENT).cloned();
        Ok(context)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for CurrentUser {
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        match load_user(parts).await? {
            Some(user) => Ok(Self(user)),
            None => Err(context(parts)?.auth().rejection(AuthError::NoSession)),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for MaybeUser {
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        load_user(parts).await.map(Self)
    }
}
