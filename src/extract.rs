//! Axum extractors for handlers behind [`AuthLayer`](crate::AuthLayer).

use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Response};
use http::request::Parts;

use crate::auth::AuthError;
use crate::config::WireStyle;
use crate::error::{HttpError, LAYER_MISSING};
use crate::layer::AuthContext;
use crate::user::User;

/// The logged-in user; the request is refused with 403 when there is none, as the seed's
/// `GET /profile` does.
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
    style: WireStyle,
}

impl AuthRejection {
    pub(crate) fn new(error: HttpError, style: WireStyle) -> Self {
        Self { error, style }
    }
}

/// For handlers of your own that call [`Auth`](crate::Auth): `?` turns an [`AuthError`]
/// into the JSON answer the crate's router gives for it (400, 401, 403, 429, 503, or a 500
/// with a generic body).
impl From<AuthError> for AuthRejection {
    fn from(error: AuthError) -> Self {
        Self::new(error.into(), WireStyle::Json)
    }
}

impl IntoResponse for AuthRejection {
    fn into_response(self) -> Response {
        self.error.into_response_with(self.style)
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
        .ok_or_else(|| AuthRejection {
            error: HttpError::LayerMissing,
            style: WireStyle::Json,
        })
}

async fn load_user(parts: &Parts) -> Result<Option<User>, AuthRejection> {
    let context = context(parts)?;
    context.user().await.map_err(|e| AuthRejection {
        error: e.into(),
        style: context.auth().config().wire_style,
    })
}

/// The request's context, for handlers that log in or out themselves
/// ([`AuthContext::log_in`]). Refused with a 500 that names the mistake when the route is
/// not behind the [`AuthLayer`](crate::AuthLayer).
impl<S: Send + Sync> FromRequestParts<S> for AuthContext {
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        context(parts).cloned()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for CurrentUser {
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        match load_user(parts).await? {
            Some(user) => Ok(Self(user)),
            None => Err(AuthRejection {
                error: AuthError::NoSession.into(),
                style: parts
                    .extensions
                    .get::<AuthContext>()
                    .map_or(WireStyle::Json, |c| c.auth().config().wire_style),
            }),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for MaybeUser {
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        load_user(parts).await.map(Self)
    }
}
