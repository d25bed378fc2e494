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
//!   800-63B-4); [`AuthConfig::spec()`] reproduces the seed service exactly. A configuration
//!   that cannot work is refused when `Auth` is built ([`ConfigError`]).
//! - [`Store`]: where accounts, sessions, emailed tokens and counters live: [`MemoryStore`],
//!   [`SqliteStore`] (the embedded default) and [`PgStore`] (several instances on one
//!   database), in tables of their own (`auth_*`) beside your app's. Pick one by URL with
//!   [`Auth::connect`].
//! - [`AuthLayer`] (from [`Auth::layer`]) and the extractors [`CurrentUser`], [`MaybeUser`]
//!   and [`AuthContext`]: the current user in your own handlers, loaded lazily, at most once
//!   per request, and never for routes that do not ask; and the protected login flow for
//!   handlers of your own.
//! - [`Auth::router`]: the seed's endpoints as a mountable axum `Router`.
//! - [`SameOriginLayer`] and [`NoStoreLayer`]: the router's CSRF check and `Cache-Control:
//!   no-store`, for your own routes.
//!
//! # Add accounts to an axum app
//!
//! ```no_run
//! use std::net::SocketAddr;
//!
//! use axum::{Router, routing::get};
//! use tower_auth::{Auth, AuthConfig, CurrentUser, MaybeUser};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let auth = Auth::connect("sqlite://app.db?mode=rwc", AuthConfig::default()).await?;
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
//! let auth = Auth::new(MemoryStore::new(), AuthConfig::default())?;
//! let app: Router = Router::new()
//!     .route("/login", post(log_in))
//!     .route("/logout", post(log_out))
//!     .layer(auth.same_origin_layer()) // refuse cross-site form posts
//!     .layer(auth.layer());
//! # let _ = app; Ok(()) }
//! ```
//!
//! # Test your handlers without a database
//!
//! ```
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use axum::{Router, body::Body, routing::get};
//! use http::{Request, StatusCode};
//! use tower::ServiceExt as _;
//! use tower_auth::{Auth, AuthConfig, CurrentUser, MemoryStore};
//!
//! let auth = Auth::new(MemoryStore::new(), AuthConfig::default())?;
//! let app = Router::new()
//!     .route("/me", get(|CurrentUser(u): CurrentUser| async move { u.email }))
//!     .layer(auth.layer());
//! let response = app.oneshot(Request::get("/me").body(Body::empty())?).await?;
//! assert_eq!(response.status(), StatusCode::FORBIDDEN); // no session cookie
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
//!
//! [tower]: https://docs.rs/tower
//! [axum]: https://docs.rs/axum
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

mod auth;
pub mod clock;
mod common_passwords;
mod config;
mod error;
mod extract;
mod layer;
mod no_store;
pub mod password;
pub mod reset;
mod routes;
mod same_origin;
mod session_cookie;
mod slashes;
pub mod store;
mod token;
mod user;

pub use auth::{
    Auth, AuthBuilder, AuthError, ConfigError, LoggedIn, LoginAttempt, ResetRequested,
    connect_store,
};
pub use config::{AuthConfig, CookieConfig, ResetDelivery, WireStyle};
pub use extract::{AuthRejection, CurrentUser, MaybeUser};
pub use layer::{AuthContext, AuthLayer, AuthService};
pub use no_store::{NoStore, NoStoreFuture, NoStoreLayer};
pub use same_origin::{SameOrigin, SameOriginFuture, SameOriginLayer};
pub use session_cookie::SessionCookie;
pub use slashes::{MergeSlashes, MergeSlashesLayer};
#[cfg(feature = "sqlite")]
pub use store::SqliteStore;
pub use store::{
    Counter, EmailToken, MemoryStore, Session, Store, StoreError, Swept, TokenPurpose,
};
#[cfg(feature = "postgres")]
pub use store::{PgStore, PgStoreOptions};
pub use token::{TokenFormat, TokenHash};
pub use user::{NewUser, User, UserId, UserLookup, UserRecord, UserUpdate};
