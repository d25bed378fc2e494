//! A small server-rendered site on tower-auth: register, confirm the email, log in (with
//! "remember me"), magic links, a profile, password and email change, the list of my
//! sessions, account deletion, forgotten passwords, log out; an authenticator app with
//! recovery codes, and passkeys (log in with one alone, or as the second step). Plain HTML
//! forms (JavaScript only for the passkey ceremonies, which call the crate's router nested
//! under `/auth`), MiniJinja templates (examples/web_app_templates), the hardened preset,
//! SQLite, and mail in a development outbox directory.
//!
//! ```sh
//! cargo run --example web_app        # then open http://localhost:3000
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use clap::Parser;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use minijinja::{Environment, Value, context};
use serde::Deserialize;
use tower_auth::oidc::{Provider, ProviderCallback, ProviderSignIn, ProvidersConfig};
use tower_auth::second_factor::{SecondFactorConfig, SecondFactorKey, SecondFactorProof};
use tower_auth::{
    Auth, AuthConfig, AuthContext, AuthError, CurrentUser, LoginAttempt, LoginRequiredLayer,
    MailKind, Mailer, MaybeUser, NoStoreLayer, safe_next,
};

#[derive(Parser, Debug)]
#[command(about = "A server-rendered site on tower-auth")]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "WEB_APP_BIND", default_value = "127.0.0.1:3000")]
    bind: SocketAddr,
    /// Where accounts and sessions live.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://web_app.db?mode=rwc"
    )]
    database_url: String,
    /// The development outbox: every mail is written here as an .eml file.
    #[arg(long, env = "WEB_APP_OUTBOX", default_value = "web_app_outbox")]
    outbox: PathBuf,
    /// Where the site is reached, for the links in mail.
    #[arg(
        long,
        env = "WEB_APP_PUBLIC_URL",
        default_value = "http://localhost:3000"
    )]
    public_url: String,
    /// bcrypt cost (12 in production; lower only to test).
    #[arg(long, default_value_t = 12)]
    bcrypt_cost: u32,
    /// The key that seals authenticator secrets and passkey ceremonies: 32 bytes in base64
    /// (`openssl rand -base64 32`). Without it a random one is made at start, and
    /// authenticator apps set up before a restart stop working.
    #[arg(long, env = "WEB_APP_SECOND_FACTOR_KEY")]
    second_factor_key: Option<String>,
    /// An OpenID Connect provider to offer "Sign in with" for: its issuer URL.
    #[arg(long, env = "WEB_APP_OIDC_ISSUER")]
    oidc_issuer: Option<String>,
    /// The client id the provider gave this site.
    #[arg(
        long,
        env = "WEB_APP_OIDC_CLIENT_ID",
        default_value = "tower-auth-web-app"
    )]
    oidc_client_id: String,
    /// The client secret, if the provider gave one.
    #[arg(long, env = "WEB_APP_OIDC_CLIENT_SECRET")]
    oidc_client_secret: Option<String>,
    /// What the "Sign in with" button says.
    #[arg(long, default_value = "your provider")]
    oidc_name: String,
}

/// The site: the auth service and the page templates.
#[derive(Clone)]
struct Site {
    auth: Auth,
    pages: Arc<Environment<'static>>,
}

/// The page templates, compiled in.
fn pages() -> Environment<'static> {
    let mut env = Environment::new();
    for (name, source) in [
        ("base.html", include_str!("web_app_templates/base.html")),
        ("home.html", include_str!("web_app_templates/home.html")),
        (
            "register.html",
            include_str!("web_app_templates/register.html"),
        ),
        ("login.html", include_str!("web_app_templates/login.html")),
        (
            "email_form.html",
            include_str!("web_app_templates/email_form.html"),
        ),
        (
            "use_link.html",
            include_str!("web_app_templates/use_link.html"),
        ),
        ("reset.html", include_str!("web_app_templates/reset.html")),
        (
            "profile.html",
            include_str!("web_app_templates/profile.html"),
        ),
        (
            "sessions.html",
            include_str!("web_app_templates/sessions.html"),
        ),
        (
            "passkey.js.html",
            include_str!("web_app_templates/passkey.js.html"),
        ),
        (
            "second_factor.html",
            include_str!("web_app_templates/second_factor.html"),
        ),
        (
            "security.html",
            include_str!("web_app_templates/security.html"),
        ),
        (
            "totp_enrol.html",
            include_str!("web_app_templates/totp_enrol.html"),
        ),
        (
            "recovery_codes.html",
            include_str!("web_app_templates/recovery_codes.html"),
        ),
    ] {
        env.add_template(name, source)
            .unwrap_or_else(|e| panic!("template {name}: {e}"));
    }
    env
}

// ----- flash messages: one message carried across a redirect in a short-lived cookie -----

const FLASH: &str = "flash";

/// `303 See Other` to `to`, carrying `message` to the next page.
fn redirect_with(to: &str, message: &str) -> Response {
    let flash = cookie::Cookie::build((FLASH, message.to_owned()))
        .path("/")
        .http_only(true)
        .same_site(cookie::SameSite::Lax)
        .build();
    let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_owned())]).into_response();
    if let Ok(value) = HeaderValue::try_from(flash.encoded().to_string()) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// The flash message the request carries, if any.
fn flash_of(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse_encoded)
        .filter_map(Result::ok)
        .find(|c| c.name() == FLASH)
        .map(|c| c.value().to_owned())
}

impl Site {
    /// Renders `name` for `user`, with the request's flash message (then cleared) and an
    /// error to show on the form.
    fn page(
        &self,
        status: StatusCode,
        name: &str,
        headers: &HeaderMap,
        user: Option<&str>,
        error: Option<String>,
        values: Value,
    ) -> Response {
        let flash = flash_of(headers);
        let rendered = self.pages.get_template(name).and_then(|t| {
            t.render(context! { user => user, flash => flash, error => error, ..values })
        });
        let mut response = match rendered {
            Ok(html) => (status, Html(html)).into_response(),
            Err(e) => {
                tracing::error!(template = name, error = %e, "page did not render");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    Html("<p>Something went wrong.</p>"),
                )
                    .into_response()
            }
        };
        if flash.is_some() {
            let clear = cookie::Cookie::build((FLASH, ""))
                .path("/")
                .max_age(cookie::time::Duration::ZERO);
            if let Ok(value) = HeaderValue::try_from(clear.to_string()) {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
        }
        response
    }

    /// `done` with what `result` holds, or the form `name` again, saying what went wrong.
    fn or_show<T>(
        &self,
        result: Result<T, AuthError>,
        name: &str,
        headers: &HeaderMap,
        user: Option<&str>,
        values: Value,
        done: impl FnOnce(T) -> Response,
    ) -> Response {
        match result {
            Ok(value) => done(value),
            Err(e) => self.form_error(name, headers, user, &e, values),
        }
    }

    /// A form page again, with what went wrong.
    fn form_error(
        &self,
        name: &str,
        headers: &HeaderMap,
        user: Option<&str>,
        error: &AuthError,
        values: Value,
    ) -> Response {
        let (status, message) = explain(error);
        self.page(status, name, headers, user, Some(message), values)
    }
}

/// What a person is told about an error, and the page's status. Internals stay in the log.
fn explain(error: &AuthError) -> (StatusCode, String) {
    use AuthError as E;
    let say = |status, text: &str| (status, text.to_owned());
    match error {
        E::InvalidCredentials => say(StatusCode::UNAUTHORIZED, "Wrong email or password."),
        E::WrongPassword => say(
            StatusCode::UNAUTHORIZED,
            "That is not your current password.",
        ),
        E::EmailNotConfirmed => say(
            StatusCode::FORBIDDEN,
            "Confirm your email address first: the link is in your mailbox.",
        ),
        E::PasswordRequired => say(
            StatusCode::FORBIDDEN,
            "Type your password to confirm this change.",
        ),
        E::ReauthenticationRequired => say(
            StatusCode::FORBIDDEN,
            "For your security, log out and in again before doing this.",
        ),
        E::UserExists(_) => say(
            StatusCode::BAD_REQUEST,
            "This email already has an account.",
        ),
        E::InvalidEmail(reason) => (StatusCode::BAD_REQUEST, format!("Invalid email: {reason}.")),
        E::WeakPassword(reason) => (
            StatusCode::BAD_REQUEST,
            format!("Choose another password: {reason}."),
        ),
        E::InvalidToken | E::InvalidResetToken => say(
            StatusCode::BAD_REQUEST,
            "This link is invalid, expired or already used.",
        ),
        E::Throttled { .. } | E::RateLimited { .. } | E::ClientBusy => say(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many attempts. Wait a little and try again.",
        ),
        E::NoSession => say(StatusCode::UNAUTHORIZED, "Log in first."),
        E::SessionNotFound => say(StatusCode::NOT_FOUND, "That session has already ended."),
        E::InvalidCode => say(
            StatusCode::UNAUTHORIZED,
            "That code is wrong or was already used. Try the next one.",
        ),
        E::SecondFactorExists => say(
            StatusCode::CONFLICT,
            "That is already set up on your account.",
        ),
        E::NoSecondFactor => say(StatusCode::NOT_FOUND, "Nothing like that is set up."),
        E::LinkRefused(reason) => (StatusCode::CONFLICT, format!("Not signed in: {reason}.")),
        E::ProviderRefused(_) => say(
            StatusCode::UNAUTHORIZED,
            "The provider did not sign you in. Try again.",
        ),
        E::ProviderUnavailable => say(
            StatusCode::SERVICE_UNAVAILABLE,
            "The provider cannot be reached right now. Try again in a moment.",
        ),
        E::UnknownProvider => say(StatusCode::NOT_FOUND, "No such provider."),
        other => {
            tracing::error!(error = %other, "request failed");
            say(
                StatusCode::SERVICE_UNAVAILABLE,
                "The service is having trouble. Try again in a moment.",
            )
        }
    }
}

// ----- pages ------------------------------------------------------------------------------

async fn home(
    State(site): State<Site>,
    MaybeUser(user): MaybeUser,
    headers: HeaderMap,
) -> Response {
    let user = user.map(|u| u.email);
    site.page(
        StatusCode::OK,
        "home.html",
        &headers,
        user.as_deref(),
        None,
        context! {},
    )
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Credentials {
    email: String,
    password: String,
    remember_me: Option<String>,
    next: Option<String>,
}

async fn register_form(State(site): State<Site>, headers: HeaderMap) -> Response {
    site.page(
        StatusCode::OK,
        "register.html",
        &headers,
        None,
        None,
        context! {},
    )
}

async fn register(
    State(site): State<Site>,
    context: AuthContext,
    headers: HeaderMap,
    Form(form): Form<Credentials>,
) -> Response {
    match context.register(&form.email, &form.password).await {
        // New or registered, the same answer: the mail tells the owner which.
        Ok(_) | Err(AuthError::UserExists(_)) => redirect_with(
            "/login",
            "Check your email: the link in it confirms your address. Then log in.",
        ),
        Err(e) => site.form_error(
            "register.html",
            &headers,
            None,
            &e,
            context! { email => form.email },
        ),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct NextQuery {
    next: Option<String>,
}

async fn login_form(
    State(site): State<Site>,
    headers: HeaderMap,
    Query(query): Query<NextQuery>,
) -> Response {
    let next = safe_next(query.next.as_deref()).to_owned();
    site.page(
        StatusCode::OK,
        "login.html",
        &headers,
        None,
        None,
        context! { providers => site.providers(&next), next => next },
    )
}

impl Site {
    /// The sign-in providers, for "Sign in with" buttons: `[{id, name, start}]`, `start`
    /// the crate's route that sends the browser to the provider, then on to `next`.
    fn providers(&self, next: &str) -> Vec<Value> {
        self.auth
            .config()
            .providers
            .iter()
            .flat_map(|config| &config.providers)
            .map(|p| {
                let start = format!(
                    "/auth/oidc/{}/start?{}",
                    p.id,
                    form_urlencoded(&[("next", next)])
                );
                context! { id => p.id, name => p.display_name, start => start }
            })
            .collect()
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// Where a provider sends the browser back: logged in (or on to the second step), linked,
/// or the login page saying what went wrong.
async fn provider_callback(
    State(site): State<Site>,
    context: AuthContext,
    headers: HeaderMap,
    Path(provider): Path<String>,
    Query(query): Query<CallbackQuery>,
) -> Response {
    let state_cookie = site
        .auth
        .config()
        .providers
        .as_ref()
        .and_then(|config| context.cookie(&config.state_cookie))
        .unwrap_or_default();
    let mut callback = ProviderCallback::default();
    callback.code = query.code.as_deref();
    callback.state = query.state.as_deref();
    callback.error = query.error.as_deref();
    let finished = site
        .auth
        .finish_provider_sign_in(&context.client(), &provider, &state_cookie, callback)
        .await;
    match finished {
        Ok(ProviderSignIn::LoggedIn { logged_in, next }) => {
            (logged_in.cookie, redirect_with(&next, "You are logged in.")).into_response()
        }
        Ok(ProviderSignIn::Linked { next }) => redirect_with(&next, "The provider is linked."),
        Ok(_) => redirect_with("/", "Signed in."),
        Err(AuthError::SecondFactorRequired(pending)) => second_step(*pending, "/"),
        Err(e) => site.form_error(
            "login.html",
            &headers,
            None,
            &e,
            context! { next => "/", providers => site.providers("/") },
        ),
    }
}

async fn log_in(
    State(site): State<Site>,
    context: AuthContext,
    headers: HeaderMap,
    Form(form): Form<Credentials>,
) -> Response {
    let attempt =
        LoginAttempt::new(&form.email, &form.password).remember_me(form.remember_me.is_some());
    match context.log_in_with(attempt).await {
        Ok(logged_in) => (
            logged_in.cookie,
            redirect_with(safe_next(form.next.as_deref()), "You are logged in."),
        )
            .into_response(),
        Err(AuthError::SecondFactorRequired(pending)) => {
            second_step(*pending, safe_next(form.next.as_deref()))
        }
        Err(e) => site.form_error(
            "login.html",
            &headers,
            None,
            &e,
            context! {
                email => form.email,
                next => safe_next(form.next.as_deref()),
                providers => site.providers(safe_next(form.next.as_deref())),
            },
        ),
    }
}

async fn log_out(context: AuthContext) -> Response {
    let auth = context.auth().clone();
    if let Err(e) = context.log_out().await {
        tracing::warn!(error = %e, "log out");
    }
    (
        auth.expired_session_cookie(),
        redirect_with("/login", "You are logged out."),
    )
        .into_response()
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct EmailForm {
    email: String,
}

/// The "email me a link" pages.
#[derive(Clone, Copy)]
enum Ask {
    MagicLink,
    PasswordReset,
    Confirmation,
}

impl Ask {
    /// The page's path, heading and explanation.
    fn page(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Self::MagicLink => (
                "/magic",
                "Sign in by email",
                "We will email you a link that logs you in, valid 15 minutes.",
            ),
            Self::PasswordReset => (
                "/forgot",
                "Forgot your password?",
                "We will email you a link to choose a new one.",
            ),
            Self::Confirmation => (
                "/confirm/resend",
                "Resend the confirmation",
                "We will email you a new confirmation link.",
            ),
        }
    }

    fn values(self) -> Value {
        let (action, heading, explanation) = self.page();
        context! { action => action, heading => heading, explanation => explanation }
    }
}

async fn ask_form(site: Site, headers: HeaderMap, ask: Ask) -> Response {
    site.page(
        StatusCode::OK,
        "email_form.html",
        &headers,
        None,
        None,
        ask.values(),
    )
}

async fn ask_for_link(
    site: Site,
    context: AuthContext,
    headers: HeaderMap,
    form: EmailForm,
    ask: Ask,
) -> Response {
    // The same answer for every address: whether it has an account is not said.
    let asked = match ask {
        Ask::MagicLink => context.request_magic_link(&form.email).await,
        Ask::PasswordReset => context
            .request_password_reset(&form.email)
            .await
            .map(|_| ()),
        Ask::Confirmation => context.resend_confirmation(&form.email).await,
    };
    let sent = "If this address has an account, a link is on its way to it.";
    site.or_show(
        asked,
        "email_form.html",
        &headers,
        None,
        ask.values(),
        |()| redirect_with("/login", sent),
    )
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct TokenForm {
    token: String,
    email: String,
    new_password: String,
    password: String,
}

/// The pages a mailed link opens: one button that spends the token, so that a mail
/// scanner opening the link does not.
#[derive(Clone, Copy)]
enum Link {
    Confirmation,
    Magic,
    EmailChange,
}

impl Link {
    fn values(self, token: &str) -> Value {
        let (action, heading, button) = match self {
            Self::Confirmation => ("/confirm", "Confirm your email address", "Confirm"),
            Self::Magic => ("/magic/login", "Sign in", "Log me in"),
            Self::EmailChange => (
                "/email/confirm",
                "Confirm your new email address",
                "Use this address",
            ),
        };
        let ask_password = matches!(self, Self::Confirmation);
        context! {
            action => action, heading => heading, button => button, token => token,
            ask_password => ask_password,
        }
    }
}

async fn link_page(site: Site, headers: HeaderMap, token: TokenForm, link: Link) -> Response {
    let values = link.values(&token.token);
    site.page(
        StatusCode::OK,
        "use_link.html",
        &headers,
        None,
        None,
        values,
    )
}

async fn use_link(
    site: Site,
    context: AuthContext,
    headers: HeaderMap,
    form: TokenForm,
    link: Link,
) -> Response {
    let token = form.token.as_str();
    let again = link.values(token);
    let show = |e: AuthError| site.form_error("use_link.html", &headers, None, &e, again);
    match link {
        Link::Confirmation => {
            let password = (!form.password.is_empty()).then_some(form.password.as_str());
            match context.confirm_email(token, password).await {
                Ok(confirmed) if confirmed.password_kept => {
                    redirect_with("/login", "Your email address is confirmed. You can log in.")
                }
                Ok(_) => redirect_with(
                    "/forgot",
                    "Your email address is confirmed. Choose a password to log in.",
                ),
                Err(e) => show(e),
            }
        }
        Link::Magic => match context.log_in_with_magic_link(token).await {
            Ok(logged_in) => (
                logged_in.cookie,
                redirect_with("/profile", "You are logged in."),
            )
                .into_response(),
            Err(AuthError::SecondFactorRequired(pending)) => second_step(*pending, "/profile"),
            Err(e) => show(e),
        },
        Link::EmailChange => match site.auth.confirm_email_change(token).await {
            Ok(user) => redirect_with(
                "/profile",
                &format!("Your email address is now {}.", user.email),
            ),
            Err(e) => show(e),
        },
    }
}

async fn reset_page(
    State(site): State<Site>,
    headers: HeaderMap,
    Query(q): Query<TokenForm>,
) -> Response {
    site.page(
        StatusCode::OK,
        "reset.html",
        &headers,
        None,
        None,
        context! { token => q.token, email => q.email },
    )
}

async fn reset(
    State(site): State<Site>,
    context: AuthContext,
    headers: HeaderMap,
    Form(form): Form<TokenForm>,
) -> Response {
    match context
        .reset_password(&form.email, &form.token, &form.new_password)
        .await
    {
        Ok(_) => redirect_with(
            "/login",
            "Your password is changed. Log in with the new one.",
        ),
        Err(e) => site.form_error(
            "reset.html",
            &headers,
            None,
            &e,
            context! { token => form.token, email => form.email },
        ),
    }
}

// ----- pages for logged-in users (behind LoginRequiredLayer) ------------------------------

async fn profile(
    State(site): State<Site>,
    CurrentUser(user): CurrentUser,
    headers: HeaderMap,
) -> Response {
    site.page(
        StatusCode::OK,
        "profile.html",
        &headers,
        Some(&user.email),
        None,
        context! {},
    )
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct PasswordForm {
    current_password: String,
    new_password: String,
    password: String,
    new_email: String,
}

async fn change_password(
    State(site): State<Site>,
    CurrentUser(user): CurrentUser,
    context: AuthContext,
    headers: HeaderMap,
    Form(form): Form<PasswordForm>,
) -> Response {
    let changed = context
        .change_password(&form.current_password, &form.new_password)
        .await;
    site.or_show(
        changed,
        "profile.html",
        &headers,
        Some(&user.email),
        context! {},
        |_| {
            redirect_with(
                "/profile",
                "Your password is changed. Your other sessions have ended.",
            )
        },
    )
}

async fn change_email(
    State(site): State<Site>,
    CurrentUser(user): CurrentUser,
    context: AuthContext,
    headers: HeaderMap,
    Form(form): Form<PasswordForm>,
) -> Response {
    let asked = context.request_email_change(&form.new_email).await;
    site.or_show(
        asked,
        "profile.html",
        &headers,
        Some(&user.email),
        context! {},
        |()| {
            redirect_with(
                "/profile",
                "Check the new address: the link we sent there makes the change.",
            )
        },
    )
}

async fn delete_account(
    State(site): State<Site>,
    CurrentUser(user): CurrentUser,
    context: AuthContext,
    headers: HeaderMap,
    Form(form): Form<PasswordForm>,
) -> Response {
    let deleted = context.delete_account(Some(&form.password)).await;
    let cleared = site.auth.expired_session_cookie();
    site.or_show(
        deleted,
        "profile.html",
        &headers,
        Some(&user.email),
        context! {},
        |_| (cleared, redirect_with("/", "Your account is deleted.")).into_response(),
    )
}

/// A session as the sessions page shows it.
#[derive(serde::Serialize)]
struct SessionRow {
    id: String,
    user_agent: Option<String>,
    client_ip: Option<String>,
    last_seen: String,
    remembered: bool,
    current: bool,
}

async fn sessions(
    State(site): State<Site>,
    CurrentUser(user): CurrentUser,
    context: AuthContext,
    headers: HeaderMap,
) -> Response {
    match context.sessions().await {
        Ok(list) => {
            let rows: Vec<SessionRow> = list
                .into_iter()
                .map(|s| SessionRow {
                    last_seen: s
                        .last_seen_at
                        .format(&time::format_description::well_known::Rfc3339)
                        .unwrap_or_default(),
                    id: s.id,
                    user_agent: s.user_agent,
                    client_ip: s.client_ip,
                    remembered: s.remembered,
                    current: s.current,
                })
                .collect();
            site.page(
                StatusCode::OK,
                "sessions.html",
                &headers,
                Some(&user.email),
                None,
                context! { sessions => rows },
            )
        }
        Err(e) => site.form_error(
            "sessions.html",
            &headers,
            Some(&user.email),
            &e,
            context! {},
        ),
    }
}

async fn end_session(
    State(site): State<Site>,
    CurrentUser(user): CurrentUser,
    context: AuthContext,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let ended = context.end_session(&id).await;
    let cleared = site.auth.expired_session_cookie();
    site.or_show(
        ended,
        "sessions.html",
        &headers,
        Some(&user.email),
        context! {},
        |ended| {
            if ended.current {
                (cleared, redirect_with("/login", "You ended this session.")).into_response()
            } else {
                redirect_with("/sessions", "The session has ended.")
            }
        },
    )
}

async fn end_other_sessions(
    State(site): State<Site>,
    CurrentUser(user): CurrentUser,
    context: AuthContext,
    headers: HeaderMap,
) -> Response {
    let ended = context.end_other_sessions().await;
    site.or_show(
        ended,
        "sessions.html",
        &headers,
        Some(&user.email),
        context! {},
        |n| redirect_with("/sessions", &format!("{n} other session(s) ended.")),
    )
}

// ----- second factors ------------------------------------------------------------------------

/// The first factor was right: the browser keeps the pending login's cookie and goes to
/// the second step.
fn second_step(pending: tower_auth::second_factor::SecondFactorPending, next: &str) -> Response {
    let query = form_urlencoded(&[("next", next), ("factors", &pending.factors.join(","))]);
    let to = format!("/login/second-factor?{query}");
    (
        pending.cookie,
        (StatusCode::SEE_OTHER, [(header::LOCATION, to)]),
    )
        .into_response()
}

/// `name=value&...`, each value percent-encoded.
fn form_urlencoded(pairs: &[(&str, &str)]) -> String {
    let encode = |v| percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC);
    pairs
        .iter()
        .map(|(name, value)| format!("{name}={}", encode(value)))
        .collect::<Vec<_>>()
        .join("&")
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SecondStepQuery {
    next: Option<String>,
    factors: String,
}

async fn second_factor_form(
    State(site): State<Site>,
    headers: HeaderMap,
    Query(query): Query<SecondStepQuery>,
) -> Response {
    let factors: Vec<&str> = query.factors.split(',').collect();
    site.page(
        StatusCode::OK,
        "second_factor.html",
        &headers,
        None,
        None,
        context! { next => safe_next(query.next.as_deref()), factors => factors },
    )
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SecondStepForm {
    code: Option<String>,
    recovery_code: Option<String>,
    remember_device: Option<String>,
    next: Option<String>,
}

async fn second_factor(
    State(site): State<Site>,
    context: AuthContext,
    headers: HeaderMap,
    Form(form): Form<SecondStepForm>,
) -> Response {
    let next = safe_next(form.next.as_deref()).to_owned();
    let proof = match (&form.code, &form.recovery_code) {
        (Some(code), _) => SecondFactorProof::Totp(code),
        (None, Some(code)) => SecondFactorProof::RecoveryCode(code),
        (None, None) => SecondFactorProof::Totp(""),
    };
    let pending = context.pending_login().unwrap_or_default();
    let finished = site
        .auth
        .finish_second_factor(
            &context.client(),
            &pending,
            proof,
            form.remember_device.is_some(),
        )
        .await;
    match finished {
        Ok(logged_in) => {
            (logged_in.cookie, redirect_with(&next, "You are logged in.")).into_response()
        }
        Err(e @ (AuthError::InvalidToken | AuthError::Throttled { .. })) => {
            site.form_error("login.html", &headers, None, &e, context! { next => next })
        }
        Err(e) => site.form_error(
            "second_factor.html",
            &headers,
            None,
            &e,
            context! { next => next, factors => ["totp", "passkey", "recovery_code"] },
        ),
    }
}

async fn security(
    State(site): State<Site>,
    CurrentUser(user): CurrentUser,
    context: AuthContext,
    headers: HeaderMap,
) -> Response {
    let client = context.client();
    let status = async {
        let totp = site.auth.totp_enrolled(&client).await?;
        let codes_left = site.auth.recovery_codes_left(&client).await?;
        let passkeys = site.auth.passkeys(&client).await?;
        let identities = site.auth.identities(&client).await?;
        Ok::<_, AuthError>((totp, codes_left, passkeys, identities))
    }
    .await;
    site.or_show(
        status,
        "profile.html",
        &headers,
        Some(&user.email),
        context! {},
        |(totp, codes_left, passkeys, identities)| {
            site.page(
                StatusCode::OK,
                "security.html",
                &headers,
                Some(&user.email),
                None,
                context! {
                    totp, codes_left, passkeys, identities, providers => site.providers("/security")
                },
            )
        },
    )
}

/// A form that confirms a change with the account's password.
#[derive(Deserialize, Default)]
#[serde(default)]
struct PasswordOnly {
    password: String,
}

async fn start_totp(
    State(site): State<Site>,
    CurrentUser(user): CurrentUser,
    context: AuthContext,
    headers: HeaderMap,
    Form(form): Form<PasswordOnly>,
) -> Response {
    let started = site
        .auth
        .start_totp_enrolment(&context.client(), Some(&form.password))
        .await;
    match started {
        Ok(enrolment) => site.page(
            StatusCode::OK,
            "totp_enrol.html",
            &headers,
            Some(&user.email),
            None,
            context! { qr_svg => enrolment.qr_svg, secret => enrolment.secret },
        ),
        Err(e) => security_error(&site, &e),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CodeForm {
    code: String,
    name: String,
}

async fn confirm_totp(
    State(site): State<Site>,
    CurrentUser(user): CurrentUser,
    context: AuthContext,
    headers: HeaderMap,
    Form(form): Form<CodeForm>,
) -> Response {
    match site.auth.confirm_totp(&context.client(), &form.code).await {
        Ok(codes) => site.page(
            StatusCode::OK,
            "recovery_codes.html",
            &headers,
            Some(&user.email),
            None,
            context! { codes => codes.0 },
        ),
        Err(e) => security_error(&site, &e),
    }
}

/// Back to the security page, saying what went wrong.
fn security_error(_site: &Site, error: &AuthError) -> Response {
    let (_, message) = explain(error);
    redirect_with("/security", &message)
}

async fn remove_totp(
    State(site): State<Site>,
    context: AuthContext,
    Form(form): Form<PasswordOnly>,
) -> Response {
    match site
        .auth
        .disable_totp(&context.client(), Some(&form.password))
        .await
    {
        Ok(_) => redirect_with("/security", "The authenticator app is removed."),
        Err(e) => security_error(&site, &e),
    }
}

async fn new_recovery_codes(
    State(site): State<Site>,
    CurrentUser(user): CurrentUser,
    context: AuthContext,
    headers: HeaderMap,
    Form(form): Form<PasswordOnly>,
) -> Response {
    match site
        .auth
        .regenerate_recovery_codes(&context.client(), Some(&form.password))
        .await
    {
        Ok(codes) => site.page(
            StatusCode::OK,
            "recovery_codes.html",
            &headers,
            Some(&user.email),
            None,
            context! { codes => codes.0 },
        ),
        Err(e) => security_error(&site, &e),
    }
}

async fn shown_recovery_codes(
    State(site): State<Site>,
    CurrentUser(user): CurrentUser,
    headers: HeaderMap,
) -> Response {
    let codes: Vec<String> = Vec::new();
    site.page(
        StatusCode::OK,
        "recovery_codes.html",
        &headers,
        Some(&user.email),
        None,
        context! { codes },
    )
}

async fn rename_passkey(
    State(site): State<Site>,
    context: AuthContext,
    Path(id): Path<i64>,
    Form(form): Form<CodeForm>,
) -> Response {
    match site
        .auth
        .rename_passkey(&context.client(), id, &form.name)
        .await
    {
        Ok(()) => redirect_with("/security", "The passkey is renamed."),
        Err(e) => security_error(&site, &e),
    }
}

async fn unlink_identity(
    State(site): State<Site>,
    context: AuthContext,
    Path(id): Path<i64>,
) -> Response {
    match site.auth.unlink_identity(&context.client(), id).await {
        Ok(()) => redirect_with("/security", "The provider is unlinked."),
        Err(e) => security_error(&site, &e),
    }
}

async fn remove_passkey(
    State(site): State<Site>,
    context: AuthContext,
    Path(id): Path<i64>,
    Form(form): Form<PasswordOnly>,
) -> Response {
    match site
        .auth
        .delete_passkey(&context.client(), id, Some(&form.password))
        .await
    {
        Ok(()) => redirect_with("/security", "The passkey is removed."),
        Err(e) => security_error(&site, &e),
    }
}

fn app(site: Site) -> Router {
    let auth = site.auth.clone();
    let private = Router::new()
        .route("/security", get(security))
        .route("/security/totp", post(start_totp))
        .route("/security/totp/confirm", post(confirm_totp))
        .route("/security/totp/remove", post(remove_totp))
        .route(
            "/security/recovery-codes",
            get(shown_recovery_codes).post(new_recovery_codes),
        )
        .route("/security/passkeys/{id}/rename", post(rename_passkey))
        .route("/security/passkeys/{id}/remove", post(remove_passkey))
        .route("/security/identities/{id}/unlink", post(unlink_identity))
        .route("/profile", get(profile))
        .route("/password", post(change_password))
        .route("/email", post(change_email))
        .route("/account/delete", post(delete_account))
        .route("/sessions", get(sessions))
        .route("/sessions/others/end", post(end_other_sessions))
        .route("/sessions/{id}/end", post(end_session))
        // `route_layer`: only these routes; an unknown URL stays a 404.
        .route_layer(LoginRequiredLayer::new("/login"));
    let mut router = Router::new()
        .route("/", get(home))
        .route("/register", get(register_form).post(register))
        .route("/login", get(login_form).post(log_in))
        .route(
            "/login/second-factor",
            get(second_factor_form).post(second_factor),
        )
        .route("/oidc/{provider}/callback", get(provider_callback))
        .route("/logout", post(log_out))
        .route("/reset", get(reset_page).post(reset));
    for ask in [Ask::MagicLink, Ask::PasswordReset, Ask::Confirmation] {
        let (path, ..) = ask.page();
        let form = move |State(site): State<Site>, headers: HeaderMap| ask_form(site, headers, ask);
        let submit = move |State(site): State<Site>,
                           context: AuthContext,
                           headers: HeaderMap,
                           Form(form): Form<EmailForm>| {
            ask_for_link(site, context, headers, form, ask)
        };
        router = router.route(path, get(form).post(submit));
    }
    for (path, link) in [
        ("/confirm", Link::Confirmation),
        ("/magic/login", Link::Magic),
        ("/email/confirm", Link::EmailChange),
    ] {
        let page =
            move |State(site): State<Site>, headers: HeaderMap, Query(q): Query<TokenForm>| {
                link_page(site, headers, q, link)
            };
        let submit = move |State(site): State<Site>,
                           context: AuthContext,
                           headers: HeaderMap,
                           Form(form): Form<TokenForm>| {
            use_link(site, context, headers, form, link)
        };
        router = router.route(path, get(page).post(submit));
    }
    router
        .merge(private)
        .layer(NoStoreLayer)
        .layer(auth.same_origin_layer())
        .layer(auth.layer())
        .with_state(site)
        // The crate's own routes (with their own layers), for the passkey ceremonies'
        // JavaScript.
        .nest("/auth", auth.router())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .init();
    let args = Args::parse();
    // The links in mail open this site's pages, which post the token back.
    let mailer = Mailer::dev_outbox(
        &args.outbox,
        "tower-auth web app <no-reply@localhost>",
        &args.public_url,
    )?
    .link_path(MailKind::ConfirmEmail, "/confirm")?
    .link_path(MailKind::MagicLink, "/magic/login")?
    .link_path(MailKind::ChangeEmail, "/email/confirm")?
    .link_path(MailKind::ResetPassword, "/reset")?;
    let mut config = AuthConfig::hardened_with(mailer);
    config.bcrypt_cost = args.bcrypt_cost;
    let key = match &args.second_factor_key {
        Some(text) => SecondFactorKey::from_base64(text)?,
        None => {
            tracing::warn!(
                "no --second-factor-key: a random one is made; authenticator apps set up now \
                 stop working when the app restarts"
            );
            let mut bytes = [0u8; 32];
            getrandom::fill(&mut bytes)?;
            SecondFactorKey::from_bytes(bytes)
        }
    };
    config.second_factors = Some(SecondFactorConfig::new(key.clone(), "tower-auth web app"));
    // Passkeys are bound to the site's origin (its host is the relying party id).
    let origin = args.public_url.trim_end_matches('/').to_owned();
    config.public_origin = Some(origin.clone());
    if let Some(issuer) = &args.oidc_issuer {
        // The provider sends the browser back to this site's own callback page.
        let provider = Provider::new(
            "idp",
            &args.oidc_name,
            issuer,
            &args.oidc_client_id,
            args.oidc_client_secret.clone(),
            format!("{origin}/oidc/idp/callback"),
        );
        config.providers = Some(ProvidersConfig::new(key.clone(), vec![provider]));
    }
    let auth = Auth::connect(&args.database_url, config).await?;
    let site = Site {
        auth,
        pages: Arc::new(pages()),
    };
    let listener = tokio::net::TcpListener::bind(args.bind).await?;
    let outbox = std::path::absolute(&args.outbox).unwrap_or(args.outbox.clone());
    tracing::info!("web app on http://{}", listener.local_addr()?);
    tracing::info!(
        "mail goes to {} (one .eml file per message)",
        outbox.display()
    );
    println!(
        "web app on {} ; mail goes to {}",
        args.public_url,
        outbox.display()
    );
    // The crate's bounded loop, not `axum::serve`: connections per address are capped and
    // idle or slow ones closed after `header_read_timeout`, so a client cannot hold
    // hundreds of sockets open; Ctrl-C lets open requests finish.
    tower_auth::serve::serve(
        listener,
        app(site),
        tower_auth::serve::ConnectionLimits::default(),
        async {
            let _ = tokio::signal::ctrl_c().await;
        },
    )
    .await;
    Ok(())
}
