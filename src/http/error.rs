//! The one place where errors become HTTP responses: every status code the crate sends for
//! a failure is decided in [`status_of`].

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};

use crate::auth::AuthError;
use crate::config::{AuthConfig, NoSessionStatus, WireStyle};
use crate::store::StoreError;

/// Werkzeug's 401 page, byte for byte as the seed's server sends it.
const WERKZEUG_401: &str = "<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 3.2 Final//EN\">\n\
<title>401 Unauthorized</title>\n\
<h1>Unauthorized</h1>\n\
<p>The server could not verify that you are authorized to access the URL requested. You \
either supplied the wrong credentials (e.g. a bad password), or your browser doesn't \
understand how to supply the credentials required.</p>\n";

/// Werkzeug's 403 page, byte for byte as the seed's server sends it.
const WERKZEUG_403: &str = "<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 3.2 Final//EN\">\n\
<title>403 Forbidden</title>\n\
<h1>Forbidden</h1>\n\
<p>You don't have the permission to access the requested resource. It is either \
read-protected or not readable by the server.</p>\n";

/// The answer (and log line) when an extractor runs outside the auth layer.
pub(crate) const LAYER_MISSING: &str = "server misconfigured: AuthLayer does not cover this \
     route; add `.layer(auth.layer())` around it";

/// A failure on the HTTP side: from [`Auth`](crate::Auth), or from the request itself.
#[derive(Debug)]
pub(crate) enum HttpError {
    /// The service refused or failed.
    Auth(AuthError),
    /// A field is missing, empty or malformed; the message says which.
    BadRequest(String),
    /// The body is over the configured limit.
    PayloadTooLarge(usize),
    /// The body did not arrive whole within the configured time.
    BodyTimeout,
    /// The body is not `application/x-www-form-urlencoded`.
    UnsupportedMediaType,
    /// An extractor ran on a route that the [`AuthLayer`](crate::AuthLayer) does not cover:
    /// a mistake in the app's setup, not the client's.
    LayerMissing,
}

/// How failures are answered under a configuration: the wire style, and the status of a
/// request that needs a session and has none.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Answer {
    pub(crate) style: WireStyle,
    pub(crate) no_session: NoSessionStatus,
}

impl Answer {
    /// The hardened preset's answers.
    pub(crate) const HARDENED: Self = Self {
        style: WireStyle::Json,
        no_session: NoSessionStatus::Unauthorized,
    };

    /// The answers `config` asks for.
    pub(crate) fn of(config: &AuthConfig) -> Self {
        Self {
            style: config.wire_style,
            no_session: config.no_session_status,
        }
    }
}

impl From<AuthError> for HttpError {
    fn from(err: AuthError) -> Self {
        Self::Auth(err)
    }
}

/// The status for each failure.
fn status_of(err: &HttpError, answer: Answer) -> StatusCode {
    match err {
        HttpError::BadRequest(_) => StatusCode::BAD_REQUEST,
        HttpError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        HttpError::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
        HttpError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        HttpError::LayerMissing => StatusCode::INTERNAL_SERVER_ERROR,
        HttpError::Auth(err) => match err {
            AuthError::UserExists(_) | AuthError::InvalidEmail(_) | AuthError::WeakPassword(_) => {
                StatusCode::BAD_REQUEST
            }
            AuthError::InvalidCredentials | AuthError::WrongPassword => StatusCode::UNAUTHORIZED,
            AuthError::NoSession => match answer.no_session {
                NoSessionStatus::Forbidden => StatusCode::FORBIDDEN,
                NoSessionStatus::Unauthorized => StatusCode::UNAUTHORIZED,
            },
            AuthError::InvalidToken => StatusCode::BAD_REQUEST,
            AuthError::UnknownEmail
            | AuthError::InvalidResetToken
            | AuthError::EmailNotConfirmed
            | AuthError::ReauthenticationRequired
            | AuthError::PasswordRequired => StatusCode::FORBIDDEN,
            AuthError::SessionNotFound | AuthError::UnknownUser | AuthError::NoSecondFactor => {
                StatusCode::NOT_FOUND
            }
            AuthError::SecondFactorRequired(_) | AuthError::InvalidCode => StatusCode::UNAUTHORIZED,
            AuthError::SecondFactorExists | AuthError::LinkRefused(_) => StatusCode::CONFLICT,
            AuthError::UnknownProvider => StatusCode::NOT_FOUND,
            AuthError::ProviderRefused(_) => StatusCode::UNAUTHORIZED,
            AuthError::ProviderUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            AuthError::Throttled { .. } | AuthError::ClientBusy | AuthError::RateLimited { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            AuthError::Overloaded | AuthError::Store(StoreError::Unavailable(_)) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            AuthError::Store(_)
            | AuthError::Hash(_)
            | AuthError::Random(_)
            | AuthError::TokenCollision
            | AuthError::Mail(_)
            | AuthError::Config(_) => StatusCode::INTERNAL_SERVER_ERROR,
        },
    }
}

/// The client-facing message. Internals are logged, never sent.
fn message_of(err: &HttpError) -> String {
    match err {
        HttpError::BadRequest(msg) => msg.clone(),
        HttpError::PayloadTooLarge(limit) => format!("request body is larger than {limit} bytes"),
        HttpError::BodyTimeout => "request body not received in time".into(),
        HttpError::UnsupportedMediaType => {
            "request body must be application/x-www-form-urlencoded".into()
        }
        HttpError::LayerMissing => LAYER_MISSING.into(),
        HttpError::Auth(err) => match err {
            AuthError::UserExists(_) => "email already registered".into(),
            AuthError::InvalidEmail(reason) => (*reason).into(),
            AuthError::WeakPassword(reason) => reason.to_string(),
            AuthError::InvalidCredentials => "invalid email or password".into(),
            AuthError::WrongPassword => "wrong password".into(),
            AuthError::NoSession => "no valid session".into(),
            AuthError::ReauthenticationRequired => "reauthentication required".into(),
            AuthError::PasswordRequired => "password required".into(),
            AuthError::SessionNotFound => "no such session".into(),
            AuthError::UnknownUser => "no such user".into(),
            AuthError::SecondFactorRequired(_) => "second factor required".into(),
            AuthError::InvalidCode => "invalid code".into(),
            AuthError::SecondFactorExists => {
                "a second factor of this kind is already enrolled".into()
            }
            AuthError::NoSecondFactor => "no second factor enrolled".into(),
            AuthError::UnknownProvider => "no such provider".into(),
            AuthError::ProviderUnavailable => {
                "the sign-in provider cannot be reached; retry shortly".into()
            }
            AuthError::ProviderRefused(reason) => format!("the sign-in provider refused: {reason}"),
            AuthError::LinkRefused(reason) => (*reason).into(),
            AuthError::UnknownEmail => "no account with this email".into(),
            AuthError::InvalidResetToken => "invalid or expired reset token".into(),
            AuthError::InvalidToken => "invalid or expired token".into(),
            AuthError::EmailNotConfirmed => "email not confirmed".into(),
            AuthError::Throttled { .. } => "too many failed attempts; retry later".into(),
            AuthError::ClientBusy => {
                "too many requests from this client in progress; retry shortly".into()
            }
            AuthError::RateLimited { .. } => {
                "too many requests from this client; retry later".into()
            }
            AuthError::Overloaded => "server busy; retry shortly".into(),
            AuthError::Store(StoreError::Unavailable(_)) => {
                "service temporarily unavailable; retry shortly".into()
            }
            AuthError::Store(_)
            | AuthError::Hash(_)
            | AuthError::Random(_)
            | AuthError::TokenCollision
            | AuthError::Mail(_)
            | AuthError::Config(_) => "internal server error".into(),
        },
    }
}

impl HttpError {
    /// Renders the error as `answer` says.
    pub(crate) fn into_response_with(self, answer: Answer) -> Response {
        let style = answer.style;
        let status = status_of(&self, answer);
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(target: "tower_auth", error = %DisplayChain(&self), "request failed");
        } else if matches!(self, HttpError::Auth(AuthError::Store(_))) {
            tracing::warn!(target: "tower_auth", error = %DisplayChain(&self), "store unavailable");
        }
        let html = match (style, status) {
            (WireStyle::Werkzeug, StatusCode::UNAUTHORIZED) => Some(WERKZEUG_401),
            (WireStyle::Werkzeug, StatusCode::FORBIDDEN) => Some(WERKZEUG_403),
            _ => None,
        };
        let mut response = match html {
            Some(page) => (
                status,
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                )],
                page,
            )
                .into_response(),
            None => {
                let mut body = serde_json::json!({ "message": message_of(&self) });
                if let HttpError::Auth(AuthError::SecondFactorRequired(pending)) = &self {
                    body["second_factor"] = serde_json::json!(pending.factors);
                }
                json_response(status, &body, style)
            }
        };
        if let HttpError::Auth(AuthError::SecondFactorRequired(pending)) = &self {
            // The pending login's cookie: the second step is only for this browser.
            for value in pending.cookie.header_values() {
                response
                    .headers_mut()
                    .append(header::SET_COOKIE, value.clone());
            }
        }
        let retry_after = match &self {
            HttpError::Auth(
                AuthError::Throttled { retry_after } | AuthError::RateLimited { retry_after },
            ) => Some(retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0)),
            HttpError::Auth(
                AuthError::Overloaded
                | AuthError::ClientBusy
                | AuthError::ProviderUnavailable
                | AuthError::Store(StoreError::Unavailable(_)),
            ) => Some(1),
            _ => None,
        };
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        response
    }
}

/// A JSON response with `Content-Type: application/json` (no charset, as Flask sends it);
/// the Werkzeug style also ends the body with a newline, as Flask's `jsonify` does.
pub(crate) fn json_response(
    status: StatusCode,
    value: &serde_json::Value,
    style: WireStyle,
) -> Response {
    let mut body = value.to_string();
    if style == WireStyle::Werkzeug {
        body.push('\n');
    }
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Formats an error with its sources, for operators' logs.
struct DisplayChain<'a>(&'a HttpError);

impl std::fmt::Display for DisplayChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let HttpError::Auth(err) = self.0 else {
            return write!(f, "{}", message_of(self.0));
        };
        write!(f, "{err}")?;
        let mut source = std::error::Error::source(err);
        while let Some(s) = source {
            write!(f, ": {s}")?;
            source = s.source();
        }
        Ok(())
    }
}

/// Sets Werkzeug's upper-case reason phrase (`401 UNAUTHORIZED`) on an HTTP/1 response.
pub(crate) fn werkzeug_reason_phrase(response: &mut Response) {
    let phrase: &'static [u8] = match response.status() {
        StatusCode::OK => b"OK",
        StatusCode::FOUND => b"FOUND",
        StatusCode::BAD_REQUEST => b"BAD REQUEST",
        StatusCode::UNAUTHORIZED => b"UNAUTHORIZED",
        StatusCode::FORBIDDEN => b"FORBIDDEN",
        StatusCode::NOT_FOUND => b"NOT FOUND",
        StatusCode::METHOD_NOT_ALLOWED => b"METHOD NOT ALLOWED",
        StatusCode::PAYLOAD_TOO_LARGE => b"REQUEST ENTITY TOO LARGE",
        StatusCode::REQUEST_TIMEOUT => b"REQUEST TIMEOUT",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => b"UNSUPPORTED MEDIA TYPE",
        StatusCode::TOO_MANY_REQUESTS => b"TOO MANY REQUESTS",
        StatusCode::INTERNAL_SERVER_ERROR => b"INTERNAL SERVER ERROR",
        StatusCode::SERVICE_UNAVAILABLE => b"SERVICE UNAVAILABLE",
        _ => return,
    };
    response
        .extensions_mut()
        .insert(hyper::ext::ReasonPhrase::from_static(phrase));
}
