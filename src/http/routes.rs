//! The mountable router: the seed's seven endpoints, talking only to [`Auth`].

use axum::Router;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde_json::json;

use crate::auth::{Auth, AuthError, LoginAttempt, ResetRequested, SessionInfo};
use crate::config::{ResetDelivery, WireStyle};
use crate::http::error::{Answer, HttpError, json_response, werkzeug_reason_phrase};
use crate::http::extract::{AuthRejection, CurrentUser};
use crate::http::layer::AuthContext;
use crate::http::link_pages;
#[cfg(feature = "oidc")]
#[path = "oidc_routes.rs"]
mod oidc;
#[cfg(feature = "passkeys")]
#[path = "passkey_routes.rs"]
mod passkeys;
use crate::http::no_store::NoStoreLayer;

/// Werkzeug's redirect page, as the seed's server sends with its 302.
const WERKZEUG_REDIRECT: &str = "<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 3.2 Final//EN\">\n\
<title>Redirecting...</title>\n\
<h1>Redirecting...</h1>\n";

impl Auth {
    /// The seed's endpoints, and the self-service ones, as an axum [`Router`] with its own
    /// [`AuthLayer`](crate::AuthLayer):
    ///
    /// | route | success |
    /// |---|---|
    /// | `GET /` | 200 `{"message": "Bienvenue"}` |
    /// | `POST /users` (email, password) | 200 `{"email", "message": "user created"}` |
    /// | `POST /sessions` (email, password, optional `remember_me=true`) | 200 `{"email", "message": "logged in"}` + session cookie (persistent with `remember_me`) |
    /// | `DELETE /sessions` | 302 to `logout_redirect`, cookie cleared |
    /// | `GET /profile` | 200 `{"email"}` |
    /// | `POST /reset_password` (email) | 200 `{"email", "reset_token"}` (spec) or 202 (hardened) |
    /// | `PUT /reset_password` (email, reset_token, new_password) | 200 `{"email", "message": "Password updated"}` |
    ///
    /// With [`self_service_routes`](crate::AuthConfig::self_service_routes) (hardened
    /// preset), also these, each needing a session (without one: the configured
    /// [`no_session_status`](crate::AuthConfig::no_session_status), 401 in the hardened
    /// preset). "Sudo" rows need a session that authenticated within
    /// [`sudo_window`](crate::AuthConfig::sudo_window), else
    /// `403 {"message": "reauthentication required"}`:
    ///
    /// | route | success | notable failures |
    /// |---|---|---|
    /// | `POST /sessions/reauth` (password) | 200 `{"message": "reauthenticated"}` | 401 wrong password |
    /// | `GET /sessions` | 200 `{"sessions": [{"id", "created_at", "last_seen_at", "authenticated_at", "expires_at", "user_agent", "client_ip", "remembered", "current"}]}`; `id` is a public handle, never the token; times RFC 3339 | |
    /// | `DELETE /sessions/{id}` | 204 (cookie cleared if it was this session) | 404 not one of mine |
    /// | `DELETE /sessions/others` | 200 `{"ended": N}` | |
    /// | `DELETE /sessions/all` (sudo) | 200 `{"ended": N}`, cookie cleared | 403 sudo |
    /// | `PUT /password` (current_password, new_password) | 200 `{"message": "Password updated"}`; every other session ends | 401 wrong password, 400 weak |
    /// | `DELETE /users/me` (password, or none with sudo) | 200 `{"message": "account deleted"}`, cookie cleared | 401 wrong password, 403 sudo |
    ///
    /// With a [`mailer`](crate::AuthConfig::mailer), also the email routes. Every link a
    /// message carries is `<public_url><route>?token=...`; a `GET` of it is a small page
    /// (HTML, `Referrer-Policy: no-referrer`, not frameable) whose form posts the token, and
    /// what the flow needs, to the same path, so links work when clicked wherever the
    /// router is mounted, and opening one spends nothing. The routes take the token as a
    /// form field:
    ///
    /// | route | success | notable failures |
    /// |---|---|---|
    /// | `GET /confirmation`, `/sessions/magic`, `/email/confirm`, `/reset_password` (`?token=`; the reset page `&email=` too) | 200, the page; `/reset_password` only when resets are mailed | 400 without a token |
    /// | `POST /confirmation` (token, optional password) | 200 `{"email", "message", "password_kept"}`; an account confirmed for the first time keeps its password only when the password (or a session of the account) proves it | 400 invalid, expired or used token; 401 wrong password |
    /// | `POST /confirmation/resend` (email) | 202 `{"message": "check your email"}` for every email | 429 |
    /// | `POST /magic_link` (email) | 202 `{"message": "check your email"}` for every email | 429 |
    /// | `POST /sessions/magic` (token) | 200 `{"email", "message": "logged in"}` + session cookie; confirms the email | 400 |
    /// | `POST /email` (new_email; session, sudo) | 202 `{"message": "check your email"}`: a link to the new address, a notice to the old | 400 invalid email, 403 sudo |
    /// | `POST /email/confirm` (token) | 200 `{"email", "message": "email changed"}` (the new email) | 400 invalid token, or the address was taken meanwhile |
    /// | `POST /reset_password` (email, reset_token, new_password) | as `PUT /reset_password`, for the reset page's form (an HTML form cannot `PUT`); only when resets are mailed | 403 |
    ///
    /// With [`conceal_registered_emails`](crate::AuthConfig::conceal_registered_emails)
    /// (hardened), `POST /users` answers `202 {"message": "check your email"}` for new and
    /// registered emails alike. With
    /// [`require_confirmed_email`](crate::AuthConfig::require_confirmed_email) (hardened),
    /// `POST /sessions` answers `403 {"message": "email not confirmed"}` to the right
    /// password of an unconfirmed account.
    ///
    /// It carries its own [`AuthLayer`](crate::AuthLayer) (a no-op when your app already
    /// applies one), [`SameOriginLayer`](crate::SameOriginLayer) and [`NoStoreLayer`].
    /// Merge it at the root or nest it under a prefix. Nested, point
    /// [`logout_redirect`](crate::AuthConfig::logout_redirect) at the prefix itself (`"/auth"`):
    /// axum 0.8 serves the nested `GET /` at `/auth`, and `/auth/` is a 404.
    ///
    /// ```
    /// use tower_auth::{Auth, AuthConfig, MemoryStore};
    /// # fn main() -> Result<(), tower_auth::ConfigError> {
    /// # let mailer = tower_auth::Mailer::dev_outbox("target/outbox", "app@localhost", "http://localhost:3000")?;
    /// let auth = Auth::new(MemoryStore::new(), AuthConfig::hardened_with(mailer))?;
    /// let app: axum::Router = axum::Router::new().nest("/auth", auth.router());
    /// # let _ = app; Ok(()) }
    /// ```
    ///
    /// Bodies are `application/x-www-form-urlencoded`. A missing, empty or malformed field
    /// is a 400, a body over `max_body_bytes` a 413, another content type a 415, each with
    /// `{"message": ...}`; a store failure is a 500 with a generic body.
    pub fn router(&self) -> Router {
        let self_service = self.config().self_service_routes;
        let sessions = post(log_in).delete(log_out);
        let mut router = Router::new()
            .route("/", get(index))
            .route("/users", post(register))
            .route(
                "/sessions",
                if self_service {
                    sessions.get(list_sessions)
                } else {
                    sessions
                },
            )
            .route("/profile", get(profile));
        let reset = post(request_reset).put(reset_password);
        router = router.route(
            "/reset_password",
            if self.config().reset_delivery == ResetDelivery::Mail {
                reset.get(link_pages::reset)
            } else {
                reset
            },
        );
        if self.config().mailer.is_some() {
            router = router
                .route(
                    "/confirmation",
                    get(link_pages::confirmation).post(confirm_email),
                )
                .route("/confirmation/resend", post(resend_confirmation))
                .route("/magic_link", post(request_magic_link))
                .route(
                    "/sessions/magic",
                    get(link_pages::magic_link).post(log_in_with_magic_link),
                )
                .route("/email", post(request_email_change))
                .route(
                    "/email/confirm",
                    get(link_pages::email_change).post(confirm_email_change),
                );
        }
        if self_service {
            router = router
                .route("/sessions/reauth", post(reauthenticate))
                .route("/sessions/others", delete(end_other_sessions))
                .route("/sessions/all", delete(end_all_sessions))
                .route("/sessions/{id}", delete(end_session))
                .route("/password", put(change_password))
                .route("/users/me", delete(delete_account));
            if self.config().second_factors.is_some() {
                router = router
                    .route("/sessions/second_factor", post(finish_second_factor))
                    .route("/second_factors", get(second_factor_status))
                    .route(
                        "/second_factors/totp",
                        post(start_totp).put(confirm_totp).delete(disable_totp),
                    )
                    .route(
                        "/second_factors/recovery_codes",
                        post(regenerate_recovery_codes),
                    );
                #[cfg(feature = "passkeys")]
                if self.config().public_origin.is_some() {
                    router = router
                        .route("/passkeys", get(passkeys::list))
                        .route(
                            "/passkeys/register/start",
                            post(passkeys::start_registration),
                        )
                        .route("/passkeys/register", post(passkeys::finish_registration))
                        .route(
                            "/passkeys/{id}",
                            put(passkeys::rename).delete(passkeys::remove),
                        )
                        .route("/sessions/passkey/start", post(passkeys::start_login))
                        .route("/sessions/passkey", post(passkeys::finish_login))
                        .route(
                            "/sessions/second_factor/passkey/start",
                            post(passkeys::start_second_factor),
                        );
                }
            }
        }
        #[cfg(feature = "oidc")]
        if self.config().providers.is_some() {
            router = router
                .route("/oidc/providers", get(oidc::list_providers))
                .route("/oidc/{provider}/start", get(oidc::start))
                .route("/oidc/{provider}/link", post(oidc::link))
                .route("/oidc/{provider}/callback", get(oidc::callback))
                .route("/identities", get(oidc::list))
                .route("/identities/{id}", delete(oidc::unlink));
        }
        router
            .layer(self.same_origin_layer())
            .layer(NoStoreLayer)
            .layer(middleware::from_fn_with_state(self.clone(), wire_style))
            .layer(self.layer())
            .with_state(self.clone())
    }
}

/// Around every endpoint: Werkzeug's reason phrases in that wire style.
async fn wire_style(State(auth): State<Auth>, req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    if auth.config().wire_style == WireStyle::Werkzeug {
        werkzeug_reason_phrase(&mut response);
    }
    response
}

fn reject(auth: &Auth, error: impl Into<HttpError>) -> AuthRejection {
    AuthRejection::new(error.into(), Answer::of(auth.config()))
}

fn ok_json(auth: &Auth, status: StatusCode, value: &serde_json::Value) -> Response {
    json_response(status, value, auth.config().wire_style)
}

/// A 200 with `{"message": message}`.
fn ok_message(auth: &Auth, message: &str) -> Response {
    ok_json(auth, StatusCode::OK, &json!({ "message": message }))
}

async fn index(State(auth): State<Auth>) -> Response {
    ok_json(&auth, StatusCode::OK, &json!({ "message": "Bienvenue" }))
}

async fn register(
    State(auth): State<Auth>,
    context: AuthContext,
    req: Request,
) -> Result<Response, AuthRejection> {
    let form = Form::read(&auth, req).await?;
    let (email, password) = (
        form.required(&auth, "email")?,
        form.required(&auth, "password")?,
    );
    let registered = context.register(email, password).await;
    if auth.config().conceal_registered_emails {
        // New or registered, the answer is the same; the mail says which.
        return match registered {
            Ok(_) | Err(AuthError::UserExists(_)) => Ok(check_your_email(&auth)),
            Err(e) => Err(reject(&auth, e)),
        };
    }
    let user = registered.map_err(|e| reject(&auth, e))?;
    Ok(ok_json(
        &auth,
        StatusCode::OK,
        &json!({ "email": user.email, "message": "user created" }),
    ))
}

/// `200 {"email", "message": "logged in"}` with the new session's cookie.
fn logged_in_answer(auth: &Auth, logged_in: crate::auth::LoggedIn) -> Response {
    let mut body = json!({ "email": logged_in.user.email, "message": "logged in" });
    // With second factors on, how the user proved who they are (the seed's answer, and
    // the hardened one without them, stay as they were).
    if auth.config().second_factors.is_some() {
        body["methods"] = json!(logged_in.methods);
    }
    (logged_in.cookie, ok_json(auth, StatusCode::OK, &body)).into_response()
}

/// `202 {"message": "check your email"}`: the answer of every request that mails a link,
/// the same whether or not a message was sent.
fn check_your_email(auth: &Auth) -> Response {
    ok_json(
        auth,
        StatusCode::ACCEPTED,
        &json!({ "message": "check your email" }),
    )
}

/// `POST /confirmation`: `token`, and optionally `password` to keep it (see
/// [`Auth::confirm_email`]); `200 {"email", "message", "password_kept"}`.
async fn confirm_email(
    State(auth): State<Auth>,
    context: AuthContext,
    req: Request,
) -> Result<Response, AuthRejection> {
    let form = Form::read(&auth, req).await?;
    let confirmed = context
        .confirm_email(form.required(&auth, "token")?, form.optional("password"))
        .await
        .map_err(|e| reject(&auth, e))?;
    let message = if confirmed.password_kept {
        "email confirmed"
    } else {
        "email confirmed; choose a password with a reset link or sign in with a magic link"
    };
    Ok(ok_json(
        &auth,
        StatusCode::OK,
        &json!({
            "email": confirmed.user.email,
            "message": message,
            "password_kept": confirmed.password_kept,
        }),
    ))
}

/// A link that confirms an address: the `token` field handed to `redeem`, then
/// `200 {"email", "message"}` with the account's (now confirmed) email.
async fn redeem_email_link<F, Fut>(
    auth: &Auth,
    req: Request,
    message: &str,
    redeem: F,
) -> Result<Response, AuthRejection>
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = Result<crate::User, AuthError>>,
{
    let form = Form::read(auth, req).await?;
    let token = form.required(auth, "token")?.to_owned();
    let user = redeem(token).await.map_err(|e| reject(auth, e))?;
    Ok(ok_json(
        auth,
        StatusCode::OK,
        &json!({ "email": user.email, "message": message }),
    ))
}

async fn resend_confirmation(
    State(auth): State<Auth>,
    context: AuthContext,
    req: Request,
) -> Result<Response, AuthRejection> {
    mail_me(&auth, req, |email| async move {
        context.resend_confirmation(&email).await
    })
    .await
}

async fn request_magic_link(
    State(auth): State<Auth>,
    context: AuthContext,
    req: Request,
) -> Result<Response, AuthRejection> {
    mail_me(&auth, req, |email| async move {
        context.request_magic_link(&email).await
    })
    .await
}

/// A "mail me a link" request: the `email` field handed to `request`, then the same
/// `202 {"message": "check your email"}` whatever it found.
async fn mail_me<F, Fut>(auth: &Auth, req: Request, request: F) -> Result<Response, AuthRejection>
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = Result<(), AuthError>>,
{
    let form = Form::read(auth, req).await?;
    let email = form.required(auth, "email")?.to_owned();
    request(email).await.map_err(|e| reject(auth, e))?;
    Ok(check_your_email(auth))
}

async fn log_in_with_magic_link(
    State(auth): State<Auth>,
    context: AuthContext,
    req: Request,
) -> Result<Response, AuthRejection> {
    let form = Form::read(&auth, req).await?;
    let logged_in = context
        .log_in_with_magic_link(form.required(&auth, "token")?)
        .await
        .map_err(|e| reject(&auth, e))?;
    Ok(logged_in_answer(&auth, logged_in))
}

async fn request_email_change(
    State(auth): State<Auth>,
    context: AuthContext,
    req: Request,
) -> Result<Response, AuthRejection> {
    let form = Form::read(&auth, req).await?;
    context
        .request_email_change(form.required(&auth, "new_email")?)
        .await
        .map_err(|e| reject(&auth, e))?;
    Ok(check_your_email(&auth))
}

async fn confirm_email_change(
    State(auth): State<Auth>,
    req: Request,
) -> Result<Response, AuthRejection> {
    let redeemer = auth.clone();
    redeem_email_link(&auth, req, "email changed", |token| async move {
        redeemer.confirm_email_change(&token).await
    })
    .await
}

async fn log_in(
    State(auth): State<Auth>,
    context: AuthContext,
    req: Request,
) -> Result<Response, AuthRejection> {
    let form = Form::read(&auth, req).await?;
    let attempt = LoginAttempt::new(
        form.required(&auth, "email")?,
        form.required(&auth, "password")?,
    )
    .remember_me(form.flag("remember_me"));
    let logged_in = context
        .log_in_with(attempt)
        .await
        .map_err(|e| reject(&auth, e))?;
    Ok(logged_in_answer(&auth, logged_in))
}

async fn log_out(
    State(auth): State<Auth>,
    context: AuthContext,
    headers: HeaderMap,
) -> Result<Response, AuthRejection> {
    context.log_out().await.map_err(|e| reject(&auth, e))?;
    let config = auth.config();
    let (location, body) = match config.wire_style {
        WireStyle::Werkzeug => (
            absolute_location(&headers, &config.logout_redirect),
            WERKZEUG_REDIRECT.to_owned()
                + &format!(
                    "<p>You should be redirected automatically to target URL: \
                     <a href=\"{0}\">{0}</a>.  If not click the link.",
                    config.logout_redirect
                ),
        ),
        WireStyle::Json => (config.logout_redirect.clone(), String::new()),
    };
    // Validated when `Auth` was built; a `Host`-derived one that is not a header falls back.
    let location = HeaderValue::try_from(location)
        .or_else(|_| HeaderValue::try_from(config.logout_redirect.as_str()))
        .map_err(|_| {
            reject(
                &auth,
                AuthError::Config(crate::config::ConfigError::LogoutRedirect(
                    config.logout_redirect.clone(),
                )),
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

async fn request_reset(
    State(auth): State<Auth>,
    context: AuthContext,
    req: Request,
) -> Result<Response, AuthRejection> {
    let form = Form::read(&auth, req).await?;
    // The reset link's page posts here (an HTML form cannot PUT) with the token.
    if auth.config().reset_delivery == ResetDelivery::Mail && form.optional("reset_token").is_some()
    {
        return reset_with(&auth, &context, &form).await;
    }
    let email = form.required(&auth, "email")?;
    match context
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

async fn reset_password(
    State(auth): State<Auth>,
    context: AuthContext,
    req: Request,
) -> Result<Response, AuthRejection> {
    let form = Form::read(&auth, req).await?;
    reset_with(&auth, &context, &form).await
}

/// A reset with the form's `email`, `reset_token` and `new_password`.
async fn reset_with(
    auth: &Auth,
    context: &AuthContext,
    form: &Form,
) -> Result<Response, AuthRejection> {
    let user = context
        .reset_password(
            form.required(auth, "email")?,
            form.required(auth, "reset_token")?,
            form.required(auth, "new_password")?,
        )
        .await
        .map_err(|e| reject(auth, e))?;
    Ok(ok_json(
        auth,
        StatusCode::OK,
        &json!({ "email": user.email, "message": "Password updated" }),
    ))
}

/// `POST /sessions/second_factor`: finishes the login the pending-login cookie names with
/// `code` (authenticator app) or `recovery_code`; `remember_device` skips the second
/// factor on this browser for a while. Answers as `POST /sessions`.
async fn finish_second_factor(
    State(auth): State<Auth>,
    context: AuthContext,
    req: Request,
) -> Result<Response, AuthRejection> {
    let form = Form::read(&auth, req).await?;
    #[cfg(feature = "passkeys")]
    let ceremony = context.passkey_ceremony().unwrap_or_default();
    let proof = match (
        form.optional("code"),
        form.optional("recovery_code"),
        form.optional("passkey"),
    ) {
        (Some(code), None, None) => crate::second_factor::SecondFactorProof::Totp(code),
        (None, Some(code), None) => crate::second_factor::SecondFactorProof::RecoveryCode(code),
        #[cfg(feature = "passkeys")]
        (None, None, Some(credential)) => crate::second_factor::SecondFactorProof::Passkey {
            credential,
            ceremony: &ceremony,
        },
        _ => {
            return Err(reject(
                &auth,
                HttpError::BadRequest("give one of code, recovery_code or passkey".into()),
            ));
        }
    };
    let pending = context.pending_login().unwrap_or_default();
    let logged_in = auth
        .finish_second_factor(
            &context.client(),
            &pending,
            proof,
            form.flag("remember_device"),
        )
        .await
        .map_err(|e| reject(&auth, e))?;
    Ok(logged_in_answer(&auth, logged_in))
}

/// `GET /second_factors`: `{"totp": bool, "recovery_codes_left": n}` for the session's user.
async fn second_factor_status(
    State(auth): State<Auth>,
    context: AuthContext,
) -> Result<Response, AuthRejection> {
    let client = context.client();
    let left = auth
        .recovery_codes_left(&client)
        .await
        .map_err(|e| reject(&auth, e))?;
    let totp = auth
        .totp_enrolled(&client)
        .await
        .map_err(|e| reject(&auth, e))?;
    Ok(ok_json(
        &auth,
        StatusCode::OK,
        &json!({ "totp": totp, "recovery_codes_left": left }),
    ))
}

/// `POST /second_factors/totp` `password`: a new authenticator secret, as
/// `{"secret", "uri", "qr_svg"}`; enrolment completes with `PUT`.
async fn start_totp(
    State(auth): State<Auth>,
    context: AuthContext,
    req: Request,
) -> Result<Response, AuthRejection> {
    let form = Form::read(&auth, req).await?;
    let enrolment = auth
        .start_totp_enrolment(&context.client(), form.optional("password"))
        .await
        .map_err(|e| reject(&auth, e))?;
    Ok(ok_json(
        &auth,
        StatusCode::OK,
        &json!({
            "secret": enrolment.secret,
            "uri": enrolment.uri,
            "qr_svg": enrolment.qr_svg,
        }),
    ))
}

/// `PUT /second_factors/totp` (sudo): `code` from the app completes the enrolment;
/// `{"message", "recovery_codes"}` (shown once).
async fn confirm_totp(
    State(auth): State<Auth>,
    context: AuthContext,
    req: Request,
) -> Result<Response, AuthRejection> {
    let form = Form::read(&auth, req).await?;
    let codes = auth
        .confirm_totp(&context.client(), form.required(&auth, "code")?)
        .await
        .map_err(|e| reject(&auth, e))?;
    Ok(ok_json(
        &auth,
        StatusCode::OK,
        &json!({ "message": "authenticator app enrolled", "recovery_codes": codes }),
    ))
}

/// `DELETE /second_factors/totp` `password`: removes the authenticator app.
async fn disable_totp(
    State(auth): State<Auth>,
    context: AuthContext,
    req: Request,
) -> Result<Response, AuthRejection> {
    let form = Form::read(&auth, req).await?;
    if !auth
        .disable_totp(&context.client(), form.optional("password"))
        .await
        .map_err(|e| reject(&auth, e))?
    {
        return Err(reject(&auth, AuthError::NoSecondFactor));
    }
    Ok(ok_message(&auth, "authenticator app removed"))
}

/// `POST /second_factors/recovery_codes` `password`: new recovery codes, the old ones
/// void.
async fn regenerate_recovery_codes(
    State(auth): State<Auth>,
    context: AuthContext,
    req: Request,
) -> Result<Response, AuthRejection> {
    let form = Form::read(&auth, req).await?;
    let codes = auth
        .regenerate_recovery_codes(&context.client(), form.optional("password"))
        .await
        .map_err(|e| reject(&auth, e))?;
    Ok(ok_json(
        &auth,
        StatusCode::OK,
        &json!({ "recovery_codes": codes }),
    ))
}

async fn reauthenticate(
    State(auth): State<Auth>,
    context: AuthContext,
    req: Request,
) -> Result<Response, AuthRejection> {
    let form = Form::read(&auth, req).await?;
    context
        .reauthenticate(form.required(&auth, "password")?)
        .await
        .map_err(|e| reject(&auth, e))?;
    Ok(ok_message(&auth, "reauthenticated"))
}

async fn list_sessions(
    State(auth): State<Auth>,
    context: AuthContext,
) -> Result<Response, AuthRejection> {
    let sessions = context.sessions().await.map_err(|e| reject(&auth, e))?;
    let sessions: Vec<serde_json::Value> = sessions.iter().map(session_json).collect();
    Ok(ok_json(
        &auth,
        StatusCode::OK,
        &json!({ "sessions": sessions }),
    ))
}

/// A session as `GET /sessions` lists it: the public handle, never the token.
fn session_json(session: &SessionInfo) -> serde_json::Value {
    json!({
        "id": session.id,
        "created_at": rfc3339(session.created_at),
        "last_seen_at": rfc3339(session.last_seen_at),
        "authenticated_at": rfc3339(session.authenticated_at),
        "expires_at": rfc3339(session.expires_at),
        "user_agent": session.user_agent,
        "client_ip": session.client_ip,
        "remembered": session.remembered,
        "current": session.current,
    })
}

/// A time as RFC 3339 (UTC); `None` for a year RFC 3339 cannot write.
fn rfc3339(at: time::OffsetDateTime) -> Option<String> {
    at.format(&time::format_description::well_known::Rfc3339)
        .ok()
}

async fn end_session(
    State(auth): State<Auth>,
    context: AuthContext,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, AuthRejection> {
    let Path(id) =
        id.map_err(|_| reject(&auth, HttpError::BadRequest("malformed session id".into())))?;
    let ended = context
        .end_session(&id)
        .await
        .map_err(|e| reject(&auth, e))?;
    Ok(if ended.current {
        (StatusCode::NO_CONTENT, auth.expired_session_cookie(), ()).into_response()
    } else {
        StatusCode::NO_CONTENT.into_response()
    })
}

async fn end_other_sessions(
    State(auth): State<Auth>,
    context: AuthContext,
) -> Result<Response, AuthRejection> {
    let ended = context
        .end_other_sessions()
        .await
        .map_err(|e| reject(&auth, e))?;
    Ok(ok_json(&auth, StatusCode::OK, &json!({ "ended": ended })))
}

async fn end_all_sessions(
    State(auth): State<Auth>,
    context: AuthContext,
) -> Result<Response, AuthRejection> {
    let ended = context
        .end_all_sessions()
        .await
        .map_err(|e| reject(&auth, e))?;
    Ok((
        auth.expired_session_cookie(),
        ok_json(&auth, StatusCode::OK, &json!({ "ended": ended })),
    )
        .into_response())
}

async fn change_password(
    State(auth): State<Auth>,
    context: AuthContext,
    req: Request,
) -> Result<Response, AuthRejection> {
    let form = Form::read(&auth, req).await?;
    context
        .change_password(
            form.required(&auth, "current_password")?,
            form.required(&auth, "new_password")?,
        )
        .await
        .map_err(|e| reject(&auth, e))?;
    Ok(ok_message(&auth, "Password updated"))
}

async fn delete_account(
    State(auth): State<Auth>,
    context: AuthContext,
    req: Request,
) -> Result<Response, AuthRejection> {
    let form = Form::read(&auth, req).await?;
    context
        .delete_account(form.optional("password"))
        .await
        .map_err(|e| reject(&auth, e))?;
    Ok((
        auth.expired_session_cookie(),
        ok_message(&auth, "account deleted"),
    )
        .into_response())
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
        let collected = tokio::time::timeout(
            auth.config().body_read_timeout,
            http_body_util::BodyExt::collect(body),
        )
        .await
        .map_err(|_| {
            // The rest of the body is not worth waiting for: say so and free the connection.
            let mut rejection = reject(auth, HttpError::BodyTimeout);
            rejection.close_connection = true;
            rejection
        })?;
        let bytes = match collected {
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

    /// A field that may be left out: `None` when absent or empty.
    fn optional(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
            .filter(|value| !value.is_empty())
    }

    /// A checkbox-like field: on for `true`, `on` (what an HTML checkbox sends), `1` or
    /// `yes`, in any case; off when absent or anything else.
    fn flag(&self, name: &str) -> bool {
        self.optional(name).is_some_and(|value| {
            ["true", "on", "1", "yes"]
                .iter()
                .any(|on| value.eq_ignore_ascii_case(on))
        })
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

    /// `application/x-www-form-urlencoded` as a browser writes it: every byte but
    /// unreserved ASCII percent-encoded, spaces as `+`.
    fn encode(text: &str) -> String {
        text.bytes()
            .map(|b| match b {
                b' ' => "+".to_owned(),
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                    char::from(b).to_string()
                }
                other => format!("%{other:02X}"),
            })
            .collect()
    }

    proptest::proptest! {
        /// Any bytes at all: an answer (fields or a reason), never a panic.
        #[test]
        fn any_body_parses_or_is_refused(body in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = parse_form(&body);
        }

        /// What a browser encodes comes back exactly, whatever the text.
        #[test]
        fn encoded_fields_round_trip(fields in proptest::collection::vec(("\\PC{0,20}", "\\PC{0,40}"), 0..6)) {
            let body: Vec<String> = fields
                .iter()
                .map(|(name, value)| format!("{}={}", encode(name), encode(value)))
                .collect();
            let parsed = parse_form(body.join("&").as_bytes()).expect("valid UTF-8");
            // Every field is written `name=value`, so none is an empty pair (`&&`, skipped).
            proptest::prop_assert_eq!(parsed, fields);
        }
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
