//! User accounts and cookie sessions for [tower] and [axum] applications: register, log in,
//! log out, profile and password reset, secure by default.
//!
//! tower-auth rebuilds the classic Flask + SQLAlchemy + bcrypt "user authentication service"
//! as a library: the same endpoints and answers, plus server-side session expiry, hashed
//! tokens at rest, login throttling, CSRF checks and a bounded bcrypt pool.
//!
//! # The pieces
//!
//! - [`Auth`]: the service. Its flows carry every protection: [`Auth::log_in`],
//!   [`Auth::log_out`], [`Auth::register_user`], [`Auth::request_password_reset`],
//!   [`Auth::reset_password`].
//! - [`AuthConfig`]: policy. [`AuthConfig::default()`] is hardened (OWASP ASVS 5.0, NIST SP
//!   800-63B-4) and mails, so it starts from [`AuthConfig::hardened_with`] a [`Mailer`];
//!   [`AuthConfig::spec()`] reproduces the seed service exactly. A configuration that
//!   cannot work is refused when `Auth` is built ([`ConfigError`]).
//! - [`Store`]: where accounts, sessions, emailed tokens and counters live: [`MemoryStore`],
//!   [`SqliteStore`] (the embedded default) and [`PgStore`] (several instances on one
//!   database), in tables of their own (`auth_*`) beside your app's. Pick one by URL with
//!   [`Auth::connect`]. Session lookups are kept in memory and stay coherent: each store
//!   announces every change that could make one wrong ([`store::ChangeFeed`]; on PostgreSQL
//!   by `LISTEN/NOTIFY` from triggers, across instances), and while it cannot, nothing is
//!   cached ([`Auth::session_cache_stats`]).
//! - [`AuthLayer`] (from [`Auth::layer`]) and the extractors [`CurrentUser`], [`MaybeUser`]
//!   and [`AuthContext`]: the current user in your own handlers, loaded lazily, at most once
//!   per request, and never for routes that do not ask; and the protected login flow for
//!   handlers of your own.
//! - [`Auth::router`]: the seed's endpoints, and (hardened preset) the self-service ones, as
//!   a mountable axum `Router`.
//! - Self-service: the list of a user's sessions ([`Auth::list_my_sessions`], ending one,
//!   the others, or all), password change, account deletion, and sudo mode
//!   ([`Auth::reauthenticate`], [`Auth::require_recent_authentication`]) for sensitive
//!   actions; the same on [`AuthContext`] for your own handlers.
//! - Email ([`Mailer`], [`mail`]): confirmation, magic links, email change and reset links,
//!   from a durable outbox in the store, through SMTP or a development outbox.
//! - [`SameOriginLayer`] and [`NoStoreLayer`]: the router's CSRF check and `Cache-Control:
//!   no-store`, for your own routes; [`LoginRequiredLayer`]: pages for logged-in users,
//!   sending a browser to the login page and back ([`safe_next`]) and an API client a 401.
//!
//! # Add accounts to an axum app
//!
//! ```no_run
//! use std::net::SocketAddr;
//!
//! use axum::{Router, routing::get};
//! use tower_auth::{Auth, AuthConfig, CurrentUser, Mailer, MaybeUser};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // The hardened preset mails links (confirmation, reset): here into ./outbox as .eml files.
//! let mailer = Mailer::dev_outbox("outbox", "app@localhost", "http://localhost:3000/auth")?;
//! let auth = Auth::connect("sqlite://app.db?mode=rwc", AuthConfig::hardened_with(mailer)).await?;
//! let app = Router::new()
//!     .route("/", get(|MaybeUser(user): MaybeUser| async move {
//!         format!("hello, {}", user.map_or("stranger".into(), |u| u.email))
//!     }))
//!     .route("/me", get(|CurrentUser(user): CurrentUser| async move { user.email }))
//!     .nest("/auth", auth.router()) // POST /auth/users, POST /auth/sessions, ...
//!     .layer(auth.layer());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! // With the client's address, so that login throttling counts per client too.
//! axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await?;
//! # Ok(()) }
//! ```
//!
//! # Log in from a handler of your own
//!
//! [`AuthContext`] is the request's view of the session. Its [`log_in`](AuthContext::log_in)
//! is the crate's `POST /sessions` flow with every protection (per-account and per-client
//! throttling, session-fixation defence, a new session), taking the client's address and
//! the presented cookie from the request itself:
//!
//! ```
//! use axum::{Form, Router, routing::post};
//! use tower_auth::{Auth, AuthConfig, AuthContext, AuthRejection, MemoryStore, SameOriginLayer};
//!
//! #[derive(serde::Deserialize)]
//! struct Credentials {
//!     email: String,
//!     password: String,
//! }
//!
//! async fn log_in(
//!     auth: AuthContext,
//!     Form(form): Form<Credentials>,
//! ) -> Result<(tower_auth::SessionCookie, &'static str), AuthRejection> {
//!     let logged_in = auth.log_in(&form.email, &form.password).await?;
//!     Ok((logged_in.cookie, "welcome back"))
//! }
//!
//! async fn log_out(auth: AuthContext) -> Result<(tower_auth::SessionCookie, &'static str), AuthRejection> {
//!     auth.log_out().await?;
//!     Ok((auth.auth().expired_session_cookie(), "goodbye"))
//! }
//!
//! # fn main() -> Result<(), tower_auth::ConfigError> {
//! # let mailer = tower_auth::Mailer::dev_outbox("target/outbox", "app@localhost", "http://localhost:3000")?;
//! let auth = Auth::new(MemoryStore::new(), AuthConfig::hardened_with(mailer))?;
//! let app: Router = Router::new()
//!     .route("/login", post(log_in))
//!     .route("/logout", post(log_out))
//!     .layer(auth.same_origin_layer()) // refuse cross-site form posts
//!     .layer(auth.layer());
//! # let _ = app; Ok(()) }
//! ```
//!
//! # Accounts: sessions, sudo mode, password change, deletion
//!
//! Every self-service route of the router is also a method, for pages of your own. Every
//! flow takes the [`Client`] that asks (its address, user agent, session and device
//! cookies), so per-client limits and session rotation cannot be skipped by forgetting an
//! argument; behind the layer, [`AuthContext::client`] takes it from the request (and the
//! context's own methods do it for you).
//!
//! ```
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use tower_auth::{Auth, AuthConfig, AuthError, Client, LoginAttempt, Mailer, MemoryStore};
//!
//! let mailer = Mailer::dev_outbox("target/outbox", "app@localhost", "http://localhost:3000")?;
//! let mut config = AuthConfig::hardened_with(mailer);
//! config.bcrypt_cost = 4; // tests only: the presets use 12
//! config.require_confirmed_email = false; // see "Email" below for the confirmation
//! let auth = Auth::new(MemoryStore::new(), config)?;
//! let pw = "correct horse battery staple";
//! auth.register_user("me@example.com", pw).await?;
//! let browser = Client::new(Some([192, 0, 2, 1].into())).user_agent(Some("Firefox/133.0"));
//! let laptop = auth
//!     .log_in(&browser, LoginAttempt::new("me@example.com", pw))
//!     .await?;
//! let phone = auth
//!     .log_in(&Client::new(None), LoginAttempt::new("me@example.com", pw).remember_me(true))
//!     .await?;
//! // The laptop's later requests present its session cookie.
//! let laptop = browser.session(Some(&laptop.session_id));
//!
//! let sessions = auth.list_my_sessions(&laptop).await?;
//! assert_eq!(sessions.len(), 2);
//! assert_eq!(sessions.iter().filter(|s| s.current).count(), 1);
//!
//! // A new password ends every other session; this one stays.
//! auth.change_password(&laptop, pw, "a new and longer passphrase").await?;
//! assert!(auth.get_user_from_session_id(Some(&phone.session_id)).await?.is_none());
//! assert_eq!(auth.list_my_sessions(&laptop).await?.len(), 1);
//!
//! assert!(matches!(
//!     auth.delete_account(&laptop, Some("not my password")).await,
//!     Err(AuthError::WrongPassword)
//! ));
//! // Logged in a moment ago: recent enough to delete without the password.
//! auth.require_recent_authentication(&laptop).await?;
//! auth.delete_account(&laptop, None).await?;
//! assert!(auth.get_user_from_session_id(laptop.session.as_deref()).await?.is_none());
//! # Ok(()) }
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(demo()).unwrap();
//! ```
//!
//! # Email: confirmation, magic links, email change, resets
//!
//! The hardened preset mails links, so it needs a [`Mailer`]: SMTP by URL
//! ([`Mailer::smtp`]), the development outbox ([`Mailer::dev_outbox`], one `.eml` file per
//! message), or any [`MailTransport`] of yours. A flow never sends during the request: it
//! records the message in the store's outbox, in the same transaction as the token its link
//! carries, and a background worker delivers it, retrying while the mail server is away
//! (also after a restart; several instances on one PostgreSQL never send one twice).
//! New accounts must confirm their address before they log in; a magic link logs in and
//! confirms; an email change mails the new address and warns the old one. Messages are
//! MIME (text and HTML) from [`MailTemplates`] you can replace.
//!
//! ```
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::{Arc, Mutex};
//! use tower_auth::mail::{MailError, MailTransport};
//! use tower_auth::{
//!     Auth, AuthConfig, AuthError, Client, LoginAttempt, Mailer, MemoryStore,
//! };
//!
//! /// Keeps every message (a real app uses SMTP).
//! #[derive(Clone, Default)]
//! struct Inbox(Arc<Mutex<Vec<Vec<u8>>>>);
//!
//! #[async_trait::async_trait]
//! impl MailTransport for Inbox {
//!     async fn send(&self, _from: &str, _to: &str, message: &[u8]) -> Result<(), MailError> {
//!         self.0.lock().unwrap().push(message.to_vec());
//!         Ok(())
//!     }
//! }
//!
//! let inbox = Inbox::default();
//! let mailer = Mailer::new(inbox.clone(), "app@example.com", "https://app.example.com")?;
//! let mut config = AuthConfig::hardened_with(mailer);
//! config.bcrypt_cost = 4; // tests only: the presets use 12
//! let auth = Auth::new(MemoryStore::new(), config)?;
//! let pw = "correct horse battery staple";
//!
//! auth.register_user("me@example.com", pw).await?;
//! let client = Client::new(None);
//! assert!(matches!(
//!     auth.log_in(&client, LoginAttempt::new("me@example.com", pw)).await,
//!     Err(AuthError::EmailNotConfirmed)
//! ));
//! auth.flush_mail().await; // the worker would send it anyway; a test wants it now
//! let message = inbox.0.lock().unwrap().pop().expect("a confirmation mail");
//! let text = mailparse::parse_mail(&message)?.subparts[0].get_body()?;
//! // ... Confirm: https://app.example.com/confirmation?token=...
//! let token = text.split("token=").nth(1).and_then(|t| t.split_whitespace().next()).unwrap();
//! // The link proves the mailbox; the password proves who registered (without it, a
//! // password nobody proved is cleared: anyone can register someone else's address).
//! assert!(auth.confirm_email(&client, token, Some(pw)).await?.password_kept);
//! auth.log_in(&client, LoginAttempt::new("me@example.com", pw)).await?;
//! # Ok(()) }
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(demo()).unwrap();
//! ```
//!
//! # Test your handlers without a database
//!
//! ```
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use axum::{Router, body::Body, routing::get};
//! use http::{Request, StatusCode};
//! use tower::ServiceExt as _;
//! use tower_auth::{Auth, AuthConfig, CurrentUser, Mailer, MemoryStore};
//!
//! let mailer = Mailer::dev_outbox("target/outbox", "app@localhost", "http://localhost:3000")?;
//! let auth = Auth::new(MemoryStore::new(), AuthConfig::hardened_with(mailer))?;
//! let app = Router::new()
//!     .route("/me", get(|CurrentUser(u): CurrentUser| async move { u.email }))
//!     .layer(auth.layer());
//! let response = app.oneshot(Request::get("/me").body(Body::empty())?).await?;
//! assert_eq!(response.status(), StatusCode::UNAUTHORIZED); // no session cookie
//! # Ok(()) }
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(demo()).unwrap();
//! ```
//!
//! # The seed's API
//!
//! The seed's own method names keep working, for its contract and its tests. Each one that
//! skips a protection says so in its first doc line: [`Auth::valid_login`] (no
//! throttling), [`Auth::create_session`] (no password), [`Auth::destroy_session`],
//! [`Auth::get_reset_password_token`] (returns the token instead of sending it) and
//! [`Auth::update_password`] (no email check). New code uses the flows above.
//!
//! ```
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use tower_auth::{Auth, AuthConfig, AuthError, MemoryStore};
//!
//! let mut config = AuthConfig::spec();
//! config.bcrypt_cost = 4; // tests only: the presets use 12
//! let auth = Auth::new(MemoryStore::new(), config)?;
//!
//! auth.register_user("me@me.com", "mySecuredPwd").await?;
//! let again = auth.register_user("me@me.com", "mySecuredPwd").await;
//! assert_eq!(again.unwrap_err().to_string(), "User me@me.com already exists");
//!
//! assert!(auth.valid_login("me@me.com", "mySecuredPwd").await?);
//! assert!(!auth.valid_login("me@me.com", "WrongPwd").await?);
//!
//! let session_id = auth.create_session("me@me.com").await?.expect("registered");
//! let me = auth.get_user_from_session_id(Some(&session_id)).await?.expect("valid session");
//! auth.destroy_session(me.id).await?;
//! assert!(auth.get_user_from_session_id(Some(&session_id)).await?.is_none());
//!
//! let token = auth.get_reset_password_token("me@me.com").await?;
//! auth.update_password(&token, "t4rt1fl3tt3").await?;
//! assert!(matches!(
//!     auth.update_password(&token, "again").await,
//!     Err(AuthError::InvalidResetToken) // tokens die on use
//! ));
//! # Ok(()) }
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(demo()).unwrap();
//! ```
//!
//! # Cargo features
//!
//! - `sqlite` (default): [`SqliteStore`].
//! - `postgres` (default): [`PgStore`].
//! - `server` (default): the bounded serving loop, `serve` (hyper's server, hyper-util).
//! - `smtp` (default): mail delivery over SMTP, [`Mailer::smtp`] (lettre's SMTP client
//!   and TLS); without it, mail goes to the development outbox or a [`MailTransport`] of
//!   the application's own.
//! - `passkeys` (default): passkeys (WebAuthn, `webauthn-rs`).
//! - `oidc` (default): signing in with OpenID Connect and OAuth2 providers
//!   (`openidconnect`, `oauth2`).
//! - `test-util`: [`store::conformance`], the suite a store of your own should pass.
//!
//! An application that needs one store turns the other off (`default-features = false,
//! features = ["postgres", "server", "smtp"]`), which spares it that database's driver; with
//! neither, [`MemoryStore`] and stores of its own remain. sqlx is built without its macros
//! and migrator (queries are checked at run time; migrations are the crate's own).
//!
//! [tower]: https://docs.rs/tower
//! [axum]: https://docs.rs/axum
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs, unreachable_pub)]

mod auth;
mod auth_methods;
pub mod clock;
mod common_passwords;
mod config;
mod config_error;
mod error_chain;
mod http;
pub mod mail;
mod origin;
pub mod password;
mod per_ip;
mod provider_config;
pub mod store;
mod token;
mod user;
mod user_agent;

pub use auth::{
    Auth, AuthBuilder, AuthError, Client, Confirmed, LoggedIn, LoginAttempt, ResetRequested,
    SessionCacheStats, SessionCookie, SessionInfo, Verified,
};
pub use auth_methods::{AuthMethod, AuthMethods};
pub use config::{AuthConfig, ConfigError, CookieConfig, NoSessionStatus, ResetDelivery};
pub use http::extract::{AuthRejection, CurrentUser, MaybeUser};
pub use http::guard::{LoginRequiredLayer, safe_next};
pub use http::layer::{AuthContext, AuthLayer};
pub use http::no_store::NoStoreLayer;
pub use http::same_origin::SameOriginLayer;
#[cfg(feature = "server")]
#[cfg_attr(docsrs, doc(cfg(feature = "server")))]
pub use http::serve;

/// Second factors: authenticator apps (TOTP) with recovery codes, and passkeys (WebAuthn):
/// their configuration ([`AuthConfig::second_factors`]) and what their flows hand back.
pub mod second_factor {
    #[cfg(feature = "passkeys")]
    #[cfg_attr(docsrs, doc(cfg(feature = "passkeys")))]
    pub use crate::auth::{PasskeyAdded, PasskeyChallenge, PasskeyInfo};
    pub use crate::auth::{RecoveryCodes, SecondFactorPending, SecondFactorProof, TotpEnrolment};
    pub use crate::config::{SecondFactorConfig, SecondFactorKey};
}

/// Signing in with OpenID Connect and OAuth2 providers: their configuration
/// ([`AuthConfig::providers`]) and what the sign-in flow takes and hands back.
pub mod oidc {
    #[cfg(feature = "oidc")]
    #[cfg_attr(docsrs, doc(cfg(feature = "oidc")))]
    pub use crate::auth::{IdentityInfo, ProviderCallback, ProviderRedirect, ProviderSignIn};
    pub use crate::provider_config::{
        OAuth2Endpoints, Protocol, Provider, ProviderUser, ProvidersConfig, UserinfoHook,
    };
}

pub use mail::{MailKind, MailTemplates, MailTransport, Mailer};

/// The tower services the crate's layers wrap around yours, and their futures: to name
/// their types (in a struct field, a function's return type); you never build one.
pub mod service {
    pub use crate::http::guard::LoginRequired;
    pub use crate::http::layer::AuthService;
    pub use crate::http::no_store::{NoStore, NoStoreFuture};
    pub use crate::http::same_origin::{SameOrigin, SameOriginFuture};
}

/// What reproducing the seed's Flask server takes beyond the preset
/// ([`AuthConfig::spec`]): its wire details and its merging of repeated slashes. The spec
/// server example uses them; an application of its own needs none.
pub mod seed {
    pub use crate::config::WireStyle;
    pub use crate::http::slashes::{MergeSlashes, MergeSlashesLayer};
}
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use store::SqliteStore;
pub use store::{MemoryStore, Store, StoreError};
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use store::{PgStore, PgStoreOptions};
pub use token::TokenFormat;
pub use user::{User, UserId};
