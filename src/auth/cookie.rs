//! The session cookie on the wire: the `Set-Cookie` that starts or ends a session in the
//! browser, made by the service for a login and returned by handlers with their response.

use axum::response::{IntoResponseParts, ResponseParts};
use cookie::{Cookie, SameSite};
use http::{HeaderValue, header};

use super::Auth;

/// A `Set-Cookie` header that starts or ends a session in the browser: the configured name,
/// path and `Secure` flag, always `HttpOnly` and `SameSite=Lax`.
///
/// Return it as part of an axum response (it is [`IntoResponseParts`]), or append
/// [`header_value`](Self::header_value) as `Set-Cookie` in any other tower service. Its
/// `Debug` output never shows the value: it carries a session token.
///
/// ```
/// use tower_auth::{AuthContext, AuthRejection, SessionCookie};
///
/// // A login handler of your own, taking JSON instead of the seed's form. The context
/// // brings the client's address and presented session, so per-account and per-client
/// // throttling and session-fixation defence apply as in the crate's router.
/// #[derive(serde::Deserialize)]
/// struct Credentials {
///     email: String,
///     password: String,
/// }
///
/// async fn log_in(
///     auth: AuthContext,
///     axum::Json(form): axum::Json<Credentials>,
/// ) -> Result<(SessionCookie, &'static str), AuthRejection> {
///     let logged_in = auth.log_in(&form.email, &form.password).await?;
///     Ok((logged_in.cookie, "welcome"))
/// }
/// # let _: axum::Router = axum::Router::new().route("/login", axum::routing::post(log_in));
/// ```
#[derive(Clone)]
pub struct SessionCookie {
    value: HeaderValue,
    /// Cookies set with it: after a login, the trusted-device cookie.
    more: Vec<HeaderValue>,
}

impl SessionCookie {
    /// The session's `Set-Cookie` header value (a secret when it starts a session: do not
    /// log it).
    pub fn header_value(&self) -> &HeaderValue {
        &self.value
    }

    /// Every `Set-Cookie` header value to send: the session's, then any set with it (after
    /// a login, the trusted-device cookie). Outside axum, append each as `Set-Cookie`.
    pub fn header_values(&self) -> impl Iterator<Item = &HeaderValue> {
        std::iter::once(&self.value).chain(&self.more)
    }

    /// A `Set-Cookie` for `cookie` as it stands; `None` when it cannot be a header.
    pub(crate) fn from_cookie(cookie: &Cookie<'_>) -> Option<Self> {
        HeaderValue::try_from(cookie.encoded().to_string())
            .ok()
            .map(|value| Self {
                value,
                more: Vec::new(),
            })
    }

    /// This cookie and `other`'s, sent together.
    pub(crate) fn with(mut self, other: Option<Self>) -> Self {
        if let Some(other) = other {
            self.more.push(other.value);
            self.more.extend(other.more);
        }
        self
    }
}

impl std::fmt::Debug for SessionCookie {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionCookie(..)")
    }
}

impl IntoResponseParts for SessionCookie {
    type Error = std::convert::Infallible;

    fn into_response_parts(self, mut res: ResponseParts) -> Result<ResponseParts, Self::Error> {
        res.headers_mut().append(header::SET_COOKIE, self.value);
        for value in self.more {
            res.headers_mut().append(header::SET_COOKIE, value);
        }
        Ok(res)
    }
}

impl Auth {
    /// The `Set-Cookie` that hands `session_id` (from [`Auth::log_in`] or
    /// [`Auth::create_session`]) to the browser, for the browser session only (no
    /// `Max-Age`: the browser forgets it when it closes).
    pub fn session_cookie(&self, session_id: &str) -> SessionCookie {
        self.build_session_cookie(Cookie::new(self.config().cookie.name.clone(), session_id))
    }

    /// The `Set-Cookie` for a remembered session ("remember me"): like
    /// [`session_cookie`](Self::session_cookie), but with `Max-Age` set to
    /// [`remembered_session_lifetime`](crate::AuthConfig::remembered_session_lifetime), so
    /// it outlives the browser session.
    pub fn persistent_session_cookie(&self, session_id: &str) -> SessionCookie {
        let mut cookie = Cookie::new(self.config().cookie.name.clone(), session_id);
        let seconds = self.config().remembered_session_lifetime.as_secs();
        cookie.set_max_age(cookie::time::Duration::seconds(
            i64::try_from(seconds).unwrap_or(i64::MAX),
        ));
        self.build_session_cookie(cookie)
    }

    /// A `Set-Cookie` for a cookie of the crate's beside the session's (a trusted device,
    /// a login waiting for its second factor): HttpOnly, `SameSite=Lax`, for every path,
    /// `Secure` as the session cookie is; kept for `lifetime` (`None`: forgotten at once).
    pub(super) fn side_cookie(
        &self,
        name: &str,
        value: String,
        lifetime: Option<std::time::Duration>,
    ) -> Option<SessionCookie> {
        let mut cookie = Cookie::new(name.to_owned(), value);
        cookie.set_path("/");
        cookie.set_http_only(true);
        cookie.set_same_site(SameSite::Lax);
        cookie.set_secure(self.config().cookie.secure);
        let seconds = lifetime.map_or(0, |l| i64::try_from(l.as_secs()).unwrap_or(i64::MAX));
        cookie.set_max_age(cookie::time::Duration::seconds(seconds));
        SessionCookie::from_cookie(&cookie)
    }

    /// The `Set-Cookie` that makes the browser forget a cookie of the crate's beside the
    /// session's (see `side_cookie`).
    pub fn forget_cookie(&self, name: &str) -> Option<SessionCookie> {
        self.side_cookie(name, String::new(), None)
    }

    /// The `Set-Cookie` that makes the browser forget its session cookie (an empty value
    /// that expires at once): for a logout handler, after [`Auth::log_out`].
    pub fn expired_session_cookie(&self) -> SessionCookie {
        let mut cookie = Cookie::new(self.config().cookie.name.clone(), "");
        cookie.set_max_age(cookie::time::Duration::ZERO);
        self.build_session_cookie(cookie)
    }

    fn build_session_cookie(&self, mut cookie: Cookie<'_>) -> SessionCookie {
        let config = &self.config().cookie;
        cookie.set_path(config.path.clone());
        cookie.set_http_only(true);
        cookie.set_same_site(SameSite::Lax);
        cookie.set_secure(config.secure);
        let value = HeaderValue::try_from(cookie.encoded().to_string()).unwrap_or_else(|_| {
            // The name and value are percent-encoded, so only the configured path can be at
            // fault: a cookie without it still logs the user in.
            tracing::error!(
                target: "tower_auth",
                "cookie.path is not a valid header value; the session cookie goes without a Path"
            );
            cookie.unset_path();
            HeaderValue::try_from(cookie.encoded().to_string())
                .unwrap_or_else(|_| HeaderValue::from_static(""))
        });
        SessionCookie {
            value,
            more: Vec::new(),
        }
    }
}
