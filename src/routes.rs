//! The mountable router: the seed's seven endpoints, talking only to [`Auth`].

use std::net::{IpAddr, SocketAddr};

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use serde_json::json;

use crate::auth::{Auth, AuthError, LoginAttempt, ResetRequested};
use crate::config::{AuthConfig, WireStyle};
use crate::error::{HttpError, json_response, werkzeug_reason_phrase};
use crate::extract::{AuthRejection, CurrentUser};
use crate::layer::AuthContext;

/// Werkzeug's redirect page, as the seed's server sends with its 302.
const WERKZEUG_REDIRECT: &str = "<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 3.2 Final//EN\">\n\
<title>Redirecting...</title>\n\
<h1>Redirecting...</h1>\n";

impl Auth {
    /// The seed's endpoints as an axum [`Router`], with its own [`AuthLayer`](crate::AuthLayer):
    ///
    /// | route | success |
    /// |---|---|
    /// | `GET /` | 200 `{"message": "Bienvenue"}` |
    /// | `POST /users` (email, password) | 200 `{"email", "message": "user created"}` |
    /// | `POST /sessions` (email, password) | 200 `{"email", "message": "logged in"}` + session cookie |
    /// | `DELETE /sessions` | 302 to `logout_redirect`, cookie cleared |
    /// | `GET /profile` | 200 `{"email"}` |
    /// | `POST /reset_password` (email) | 200 `{"email", "reset_token"}` (spec) or 202 (hardened) |
    /// | `PUT /reset_password` (email, reset_token, new_password) | 200 `{"email", "message": "Password updated"}` |
    ///
    /// Merge it at the root or nest it under a prefix. Nested, point
    /// [`logout_redirect`](AuthConfig::logout_redirect) at the prefix itself (`"/auth"`):
    /// axum 0.8 serves the nested `GET /` at `/auth`, and `/auth/` is a 404.
    ///
    /// ```
    /// use tower_auth::{Auth, AuthConfig, MemoryStore};
    /// let auth = Auth::new(MemoryStore::new(), AuthConfig::default());
    /// let app: axum::Router = axum::Router::new().nest("/auth", auth.router());
    /// # let _ = app;
    /// ```
    ///
    /// Bodies are `application/x-www-form-urlencoded`. A missing, empty or malformed field
    /// is a 400, a body over `max_body_bytes` a 413, another content type a 415, each with
    /// `{"message": ...}`; a store failure is a 500 with a generic body.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/", get(index))
            .route("/users", post(register))
            .route("/sessions", post(log_in).delete(log_out))
            .route("/profile", get(profile))
            .route("/reset_password", post(request_reset).put(reset_password))
            .layer(middleware::from_fn_with_state(self.clone(), guard))
            .layer(self.layer())
            .with_state(self.clone())
    }
}

/// Around every endpoint: refuses cross-site writes, marks responses uncacheable, and sets
/// Werkzeug's reason phrases in that wire style.
async fn guard(State(auth): State<Auth>, req: Request, next: Next) -> Response {
    let config = auth.config();
    let mut response = if is_cross_site_write(req.method(), req.headers(), config) {
        HttpError::CrossSite.into_response_with(config.wire_style)
    } else {
        next.run(req).await
    };
    // Responses here carry sessions, tokens or account data: never cache them.
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if config.wire_style == WireStyle::Werkzeug {
        werkzeug_reason_phrase(&mut response);
    }
    response
}

/// A state-changing request that the browser marks as cross-site, or whose `Origin` is
/// neither the request's own host nor an allowed origin. Clients sending neither header
/// (curl, scripts) are not browsers and carry no ambient cookies by accident.
fn is_cross_site_write(method: &Method, headers: &HeaderMap, config: &AuthConfig) -> bool {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return false;
    }
    let fetch_site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    if fetch_site.is_some_and(|site| site.eq_ignore_ascii_case("cross-site")) {
        return true;
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return false;
    };
    let Ok(origin) = origin.to_str() else {
        return true;
    };
    if config
        .allowed_origins
        .iter()
        .any(|o| o.eq_ignore_ascii_case(origin))
    {
        return false;
    }
    let origin_host = origin.split_once("://").map(|(_, host)| host);
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    !matches!((origin_host, host), (Some(o), Some(h)) if o.eq_ignore_ascii_case(h))
}

fn reject(auth: &Auth, error: impl Into<HttpError>) -> AuthRejection {
    AuthRejection::new(error.into(), auth.config().wire_style)
}

fn ok_json(auth: &Auth, status: StatusCode, value: &serde_json::Value) -> Response {
    json_response(status, value, auth.config().wire_style)
}

async fn index(State(auth): State<Auth>) -> Response {
    ok_json(&auth, StatusCode::OK, &json!({ "message": "Bienvenue" }))
}

async fn register(State(auth): State<Auth>, req: Request) -> Result<Response, AuthRejection> {
    let form = Form::read(&auth, req).await?;
    let (email, password) = (
        form.required(&auth, "email")?,
        form.required(&auth, "password")?,
    );
    let user = auth
        .register_user(email, password)
        .await
        .map_err(|e| reject(&auth, e))?;
    Ok(ok_json(
        &auth,
        StatusCode::OK,
        &json!({ "email": user.email, "message": "user created" }),
    ))
}

async fn log_in(State(auth): State<Auth>, req: Request) -> Result<Response, AuthRejection> {
    let current_session = presented_session(&auth, &req)?;
    let client_ip = client_ip(auth.config(), &req);
    let form = Form::read(&auth, req).await?;
    let logged_in = auth
        .log_in(LoginAttempt {
            email: form.required(&auth, "email")?,
            password: form.required(&auth, "password")?,
            client_ip,
            current_session: current_session.as_deref(),
        })
        .await
        .map_err(|e| reject(&auth, e))?;
    let body = json!({ "email": logged_in.user.email, "message": "logged in" });
    Ok((
        auth.session_cookie(&logged_in.session_id),
        ok_json(&auth, StatusCode::OK, &body),
    )
        .into_response())
}

async fn log_out(State(auth): State<Auth>, req: Request) -> Result<Response, AuthRejection> {
    auth.log_out(presented_session(&auth, &req)?.as_deref())
        .await
        .map_err(|e| reject(&auth, e))?;
    let config = auth.config();
    let (location, body) = match config.wire_style {
        WireStyle::Werkzeug => (
            absolute_location(req.headers(), &config.logout_redirect),
            WERKZEUG_REDIRECT.to_owned()
                + &format!(
                    "<p>You should be redirected automatically to target URL: \
                     <a href=\"{0}\">{0}</a>.  If not click the link.",
                    config.logout_redirect
                ),
        ),
        WireStyle::Json => (config.logout_redirect.clone(), String::new()),
    };
    let location = HeaderValue::try_from(location).map_err(|_| {
        reject(
            &auth,
            AuthError::Internal("logout_redirect is not a valid header".into()),
        )
    })?;
    let mut response = (
        StatusCode::FOUND,
        auth.expired_session_cookie(),
        [(header::LOCATION, location)],
        Body::from(body),
    )
        .into_response();
    if config.wire_style == WireStyle::Werkzeug {
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
    }
    Ok(response)
}

async fn profile(State(auth): State<Auth>, CurrentUser(user): CurrentUser) -> Response {
    ok_json(&auth, StatusCode::OK, &json!({ "email": user.email }))
}

async fn request_reset(State(auth): State<Auth>, req: Request) -> Result<Response, AuthRejection> {
    let form = Form::read(&auth, req).await?;
    let email = form.required(&auth, "email")?;
    match auth
        .request_password_reset(email)
        .await
        .map_err(|e| reject(&auth, e))?
    {
        ResetRequested::Token { email, token } => Ok(ok_json(
            &auth,
            StatusCode::OK,
            &json!({ "email": email, "reset_token": token }),
        )),
        ResetRequested::Accepted => Ok(ok_json(
            &auth,
            StatusCode::ACCEPTED,
            &json!({ "message": "if this email has an account, a reset token is on its way" }),
        )),
    }
}

async fn reset_password(State(auth): State<Auth>, req: Request) -> Result<Response, AuthRejection> {
    let form = Form::read(&auth, req).await?;
    let user = auth
        .reset_password(
            form.required(&auth, "email")?,
            form.required(&auth, "reset_token")?,
            form.required(&auth, "new_password")?,
        )
        .await
        .map_err(|e| reject(&auth, e))?;
    Ok(ok_json(
        &auth,
        StatusCode::OK,
        &json!({ "email": user.email, "message": "Password updated" }),
    ))
}

/// The session token the request presents (the router's own [`AuthLayer`](crate::AuthLayer)
/// put the context there).
fn presented_session(auth: &Auth, req: &Request) -> Result<Option<String>, AuthRejection> {
    req.extensions()
        .get::<AuthContext>()
        .map(AuthContext::session_id)
        .ok_or_else(|| reject(auth, AuthError::Internal("AuthLayer missing".into())))
}

/// The client's IP: the last `X-Forwarded-For` hop when the proxy is trusted, else the TCP
/// peer (when the server was started with connect info).
fn client_ip(config: &AuthConfig, req: &Request) -> Option<IpAddr> {
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

/// `http://<Host><path>`, as Werkzeug 1.0 makes redirect targets absolute; the path alone
/// when the `Host` header is missing or not a plain host[:port].
fn absolute_location(headers: &HeaderMap, path: &str) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-.:[]_".contains(&b))
        });
    match host {
        Some(host) if path.starts_with('/') => format!("http://{host}{path}"),
        _ => path.to_owned(),
    }
}

/// The fields of a form body, in order; the first of repeated names wins, as in Flask.
struct Form(Vec<(String, String)>);

/// Parses an `application/x-www-form-urlencoded` body.
///
/// As Werkzeug does: `+` is a space, pairs without `=` have an empty value, empty pairs
/// are skipped, and a `%` that does not start a valid escape is kept as is (so
/// `curl -d 'password=100%'` means `100%`). Unlike Werkzeug (and `serde_urlencoded`), bytes
/// that do not decode as UTF-8 are an error, never replaced with U+FFFD: two different
/// passwords must not become the same one.
fn parse_form(body: &[u8]) -> Result<Vec<(String, String)>, String> {
    let decode = |part: &[u8]| -> Option<String> {
        let spaced: Vec<u8> = part
            .iter()
            .map(|&b| if b == b'+' { b' ' } else { b })
            .collect();
        percent_encoding::percent_decode(&spaced)
            .decode_utf8()
            .ok()
            .map(|s| s.into_owned())
    };
    body.split(|&b| b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = match pair.iter().position(|&b| b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &b""[..]),
            };
            let name = decode(name)
                .ok_or_else(|| "malformed form body: a field name is not valid UTF-8".to_owned())?;
            let value = decode(value)
                .ok_or_else(|| format!("malformed form body: {name} is not valid UTF-8"))?;
            Ok((name, value))
        })
        .collect()
}

impl Form {
    async fn read(auth: &Auth, req: Request) -> Result<Self, AuthRejection> {
        let limit = auth.config().max_body_bytes;
        let content_type = req.headers().get(header::CONTENT_TYPE).map(|v| {
            v.to_str()
                .ok()
                .and_then(|s| s.split(';').next())
                .is_some_and(|mime| {
                    mime.trim()
                        .eq_ignore_ascii_case("application/x-www-form-urlencoded")
                })
        });
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit as u64) {
            return Err(reject(auth, HttpError::PayloadTooLarge(limit)));
        }
        let body = http_body_util::Limited::new(req.into_body(), limit);
        let bytes = match http_body_util::BodyExt::collect(body).await {
            Ok(collected) => collected.to_bytes(),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                return Err(reject(auth, HttpError::PayloadTooLarge(limit)));
            }
            Err(_) => {
                return Err(reject(
                    auth,
                    HttpError::BadRequest("could not read the request body".into()),
                ));
            }
        };
        match content_type {
            Some(true) => {}
            // No Content-Type and no body: a form with no fields (the missing ones are named below).
            None if bytes.is_empty() => {}
            _ => return Err(reject(auth, HttpError::UnsupportedMediaType)),
        }
        parse_form(&bytes)
            .map(Self)
            .map_err(|message| reject(auth, HttpError::BadRequest(message)))
    }

    fn required(&self, auth: &Auth, name: &str) -> Result<&str, AuthRejection> {
        match self.0.iter().find(|(key, _)| key == name) {
            None => Err(reject(
                auth,
                HttpError::BadRequest(format!("missing field: {name}")),
            )),
            Some((_, value)) if value.is_empty() => Err(reject(
                auth,
                HttpError::BadRequest(format!("empty field: {name}")),
            )),
            Some((_, value)) => Ok(value),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(body: &[u8]) -> Vec<(String, String)> {
        parse_form(body).unwrap()
    }

    #[test]
    fn parses_forms_as_werkzeug_does() {
        let owned = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        assert_eq!(
            pairs(b"email=a%40b.c&password=x+y%2Bz&&flag&=v&e="),
            [
                owned("email", "a@b.c"),
                owned("password", "x y+z"),
                owned("flag", ""),
                owned("", "v"),
                owned("e", ""),
            ]
        );
        assert_eq!(
            pairs(b"p=100%&q=%zz%4&r=%"),
            [owned("p", "100%"), owned("q", "%zz%4"), owned("r", "%")]
        );
        assert_eq!(pairs(b"p=%E2%82%AC%00"), [owned("p", "\u{20ac}\0")]);
        assert!(pairs(b"").is_empty());
    }

    #[test]
    fn refuses_invalid_utf8_instead_of_replacing_it() {
        assert_eq!(
            parse_form(b"email=x&password=%FF").unwrap_err(),
            "malformed form body: password is not valid UTF-8"
        );
        assert_eq!(
            parse_form(b"password=\xfe").unwrap_err(),
            "malformed form body: password is not valid UTF-8"
        );
        assert_eq!(
            parse_form(b"%C3%28=1").unwrap_err(),
            "malformed form body: a field name is not valid UTF-8"
        );
    }
}
