//! [`LoginRequiredLayer`]: a group of routes for logged-in users only. A browser is sent to
//! the login page and back ([`safe_next`] keeps the way back on this site); an API client
//! gets the configured no-session status.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use tower::{Layer, Service};

use crate::auth::AuthError;
use crate::http::layer::AuthContext;

/// Longest `next` accepted; longer ones fall back to `/`.
const MAX_NEXT_BYTES: usize = 2048;

/// Where to go after logging in: `next` when it is a path on this site (`/path?query`),
/// else `/`. Refused, so that a link cannot send a user who logs in to another site (an
/// open redirect): anything not starting with a single `/` (`https://evil.example`,
/// `//evil.example`, `evil.example`), backslashes anywhere (browsers read `/\evil.example`
/// as `//evil.example`), encoded slashes or backslashes in the path (`/%2F%2Fevil.example`),
/// control characters and whitespace (raw or encoded), and anything over 2 KiB or not a
/// valid request target.
///
/// ```
/// use tower_auth::safe_next;
/// assert_eq!(safe_next(Some("/settings?tab=email")), "/settings?tab=email");
/// assert_eq!(safe_next(Some("//evil.example")), "/");
/// assert_eq!(safe_next(Some("https://evil.example/")), "/");
/// assert_eq!(safe_next(None), "/");
/// ```
pub fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(next) if is_local_path(next) => next,
        _ => "/",
    }
}

fn is_local_path(next: &str) -> bool {
    let bytes = next.as_bytes();
    if next.len() > MAX_NEXT_BYTES
        || bytes.first() != Some(&b'/')
        || matches!(bytes.get(1), Some(b'/' | b'\\'))
        || bytes
            .iter()
            .any(|&b| b == b'\\' || b.is_ascii_control() || b.is_ascii_whitespace())
    {
        return false;
    }
    // Encoded separators in the path: some servers and browsers decode them before
    // resolving the path, which turns `/%2F%2Fevil.example` into `//evil.example`.
    let path = next
        .split(['?', '#'])
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    if path.contains("%2f") || path.contains("%5c") {
        return false;
    }
    let decoded_control =
        percent_encoding::percent_decode_str(next).any(|b| b.is_ascii_control() || b == b'\\');
    !decoded_control && next.is_ascii() && next.parse::<http::uri::PathAndQuery>().is_ok()
}

/// A tower [`Layer`] for routes that need a logged-in user, inside
/// [`AuthLayer`](crate::AuthLayer):
///
/// - with a valid session, the request goes through;
/// - without one, a browser navigating (`Sec-Fetch-Mode: navigate`, or an `Accept` that
///   asks for HTML) gets `303 See Other` to the login page, with `next=<path?query>` for a
///   `GET` so the login can send it back ([`safe_next`] checks it there);
/// - any other client (an API call, a `fetch`) gets the configured
///   [`no_session_status`](crate::AuthConfig::no_session_status) (401 in the hardened
///   preset) with a JSON body.
///
/// Add it with axum's `route_layer`, not `layer`: `layer` wraps the router's fallback too,
/// so once the group is merged, every unknown URL would answer "log in first" (or 401)
/// instead of 404, and tell a stranger nothing exists there only after logging in.
///
/// ```
/// use axum::{Router, routing::get};
/// use tower_auth::{Auth, AuthConfig, CurrentUser, LoginRequiredLayer, MemoryStore};
///
/// # fn main() -> Result<(), tower_auth::ConfigError> {
/// # let mailer = tower_auth::Mailer::dev_outbox("target/outbox", "app@localhost", "http://localhost:3000")?;
/// let auth = Auth::new(MemoryStore::new(), AuthConfig::hardened_with(mailer))?;
/// let private = Router::new()
///     .route("/settings", get(|CurrentUser(u): CurrentUser| async move { u.email }))
///     .route_layer(LoginRequiredLayer::new("/login"));
/// let app: Router = Router::new()
///     .route("/login", get(|| async { "the login form" }))
///     .merge(private)
///     .layer(auth.layer());
/// # let _ = app; Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct LoginRequiredLayer {
    login_path: &'static str,
}

impl LoginRequiredLayer {
    /// Sends browsers without a session to `login_path` (a path on this site, such as
    /// `/login`).
    ///
    /// # Panics
    /// When `login_path` is not a local path (see [`safe_next`]): a programming error.
    pub fn new(login_path: &'static str) -> Self {
        assert!(
            is_local_path(login_path) && !login_path.contains('?'),
            "LoginRequiredLayer::new: {login_path:?} is not a path on this site"
        );
        Self { login_path }
    }
}

impl<S> Layer<S> for LoginRequiredLayer {
    type Service = LoginRequired<S>;

    fn layer(&self, inner: S) -> Self::Service {
        LoginRequired {
            inner,
            login_path: self.login_path,
        }
    }
}

/// The service [`LoginRequiredLayer`] makes.
#[derive(Debug, Clone)]
pub struct LoginRequired<S> {
    inner: S,
    login_path: &'static str,
}

impl<S, B> Service<Request<B>> for LoginRequired<S>
where
    S: Service<Request<B>, Response = Response> + Clone + Send + 'static,
    S::Future: Send,
    B: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        // The clone that was polled ready serves this request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let login_path = self.login_path;
        Box::pin(async move {
            let Some(context) = req.extensions().get::<AuthContext>().cloned() else {
                return Ok(crate::http::error::HttpError::LayerMissing
                    .into_response_with(crate::http::error::Answer::HARDENED));
            };
            match context.user().await {
                Ok(Some(_)) => inner.call(req).await,
                Ok(None) if is_navigation(req.headers()) => {
                    Ok(to_login(login_path, req.method(), req.uri()))
                }
                Ok(None) => Ok(context
                    .auth()
                    .rejection(AuthError::NoSession)
                    .into_response()),
                Err(e) => Ok(context.auth().rejection(e).into_response()),
            }
        })
    }
}

/// A browser loading a page, as opposed to a script's request.
fn is_navigation(headers: &HeaderMap) -> bool {
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    header("sec-fetch-mode") == Some("navigate")
        || header(header::ACCEPT.as_str()).is_some_and(|accept| accept.contains("text/html"))
}

/// `303 See Other` to the login page, with the way back for a `GET`.
fn to_login(login_path: &str, method: &Method, uri: &http::Uri) -> Response {
    let back = uri.path_and_query().map_or("/", |pq| pq.as_str());
    let location = if matches!(*method, Method::GET | Method::HEAD) && is_local_path(back) {
        let next = percent_encoding::utf8_percent_encode(back, percent_encoding::NON_ALPHANUMERIC);
        format!("{login_path}?next={next}")
    } else {
        login_path.to_owned()
    };
    match HeaderValue::try_from(location) {
        Ok(location) => (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response(),
        Err(_) => (
            StatusCode::SEE_OTHER,
            [(header::LOCATION, HeaderValue::from_static("/"))],
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed() {
        for good in [
            "/",
            "/settings",
            "/a/b?c=d&e=%2F",
            "/search?q=a+b",
            "/caf%C3%A9",
            "/x#frag",
        ] {
            assert_eq!(safe_next(Some(good)), good, "{good}");
        }
        for bad in [
            "",
            "//evil.example",
            "///evil.example",
            "https://evil.example",
            "http:/evil.example",
            "evil.example",
            "javascript:alert(1)",
            "/\\evil.example",
            "\\\\evil.example",
            "/a\\b",
            "/%2F%2Fevil.example",
            "/%2f/evil.example",
            "/%5Cevil.example",
            "/%5c%5cevil.example",
            "/\t/evil.example",
            "/ /evil.example",
            "/a\r\nLocation: https://evil.example",
            "/a%0d%0aSet-Cookie:x=1",
            "/a%00",
            "/a\u{0}",
            "/\u{7f}",
            " /a",
            "/\u{3000}/evil.example",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(safe_next(Some(&format!("/{}", "a".repeat(3000)))), "/");
        assert_eq!(safe_next(None), "/");
    }

    proptest::proptest! {
        /// Whatever the input, the result starts with exactly one `/` and a browser
        /// resolves it on this site.
        #[test]
        fn any_next_stays_on_this_site(next in "\\PC{0,40}") {
            let safe = safe_next(Some(&next));
            proptest::prop_assert!(safe.starts_with('/'));
            proptest::prop_assert!(!safe.starts_with("//") && !safe.contains('\\'));
            let base: http::Uri = "https://app.example/".parse().unwrap();
            let joined = format!("https://app.example{safe}").parse::<http::Uri>();
            proptest::prop_assert!(joined.is_ok_and(|u| u.host() == base.host()));
        }
    }
}
