//! User accounts and cookie sessions for [tower] and [axum] applications: register, log in,
//! log out, profile and password reset, secure by default.
//!
//! tower-auth rebuilds the classic Flask + SQLAlchemy + bcrypt "user authentication service"
//! as a library: the same endpoints and answers, plus server-side session expiry, hashed
//! tokens at rest, login throttling, CSRF checks and a bounded bcrypt pool.
//!
//! # The pieces
//!
//! - [`Auth`]: the service (`register_user`, `valid_login`, `create_session`,
//!   `get_user_from_session_id`, `destroy_session`, `get_reset_password_token`,
//!   `update_password`, and the HTTP flows `log_in`, `log_out`, `request_password_reset`,
//!   `reset_password`).
//! - [`AuthConfig`]: policy. [`AuthConfig::default()`] is hardened (OWASP ASVS 5.0, NIST SP
//!   800-63B-4); [`AuthConfig::spec()`] reproduces the seed service exactly.
//! - [`Store`]: where accounts and sessions live: [`MemoryStore`], [`SqliteStore`] (the
//!   embedded default) and [`PgStore`] (several instances on one database). Pick one by URL
//!   with [`Auth::connect`].
//! - [`AuthLayer`] (from [`Auth::layer`]) and the extractors [`CurrentUser`] and
//!   [`MaybeUser`]: the current user in your own handlers, loaded lazily, at most once per
//!   request, and never for routes that do not ask.
//! - [`Auth::router`]: the seed's endpoints as a mountable axum `Router`; or handlers of
//!   your own that call [`Auth::log_in`] and return [`Auth::session_cookie`] (a
//!   [`SessionCookie`]) with their response.
//!
//! # Add accounts to an axum app
//!
//! ```no_run
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
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```
//!
//! # Use the service directly
//!
//! ```
//! # async fn demo() -> Result<(), tower_auth::AuthError> {
//! use tower_auth::{Auth, AuthConfig, AuthError, MemoryStore};
//!
//! let mut config = AuthConfig::spec();
//! config.bcrypt_cost = 4; // tests only: the presets use 12
//! let auth = Auth::new(MemoryStore::new(), config);
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
//! # Test your handlers without a database
//!
//! ```
//! # async fn demo() {
//! use axum::{Router, body::Body, routing::get};
//! use http::{Request, StatusCode};
//! use tower::ServiceExt as _;
//! use tower_auth::{Auth, AuthConfig, CurrentUser, MemoryStore};
//!
//! let auth = Auth::new(MemoryStore::new(), AuthConfig::default());
//! let app = Router::new()
//!     .route("/me", get(|CurrentUser(u): CurrentUser| async move { u.email }))
//!     .layer(auth.layer());
//! let response = app
//!     .oneshot(Request::get("/me").body(Body::empty()).unwrap())
//!     .await
//!     .unwrap();
//! assert_eq!(response.status(), StatusCode::FORBIDDEN); // no session cookie
//! # }
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(demo());
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
pub mod password;
pub mod reset;
mod routes;
mod session_cookie;
mod slashes;
pub mod store;
mod token;
mod user;

pub use auth::{
    Auth, AuthBuilder, AuthError, LoggedIn, LoginAttempt, ResetRequested, connect_store,
};
pub use config::{AuthConfig, CookieConfig, ResetDelivery, WireStyle};
pub use extract::{AuthRejection, CurrentUser, MaybeUser};
pub use layer::{AuthContext, AuthLayer, AuthService};
pub use session_cookie::SessionCookie;
pub use slashes::{MergeSlashes, MergeSlashesLayer};
#[cfg(feature = "sqlite")]
pub use store::SqliteStore;
pub use store::{MemoryStore, Store, StoreError};
#[cfg(feature = "postgres")]
pub use store::{PgStore, PgStoreOptions};
pub use token::{TokenFormat, TokenHash};
pub use user::{Counter, NewUser, ResetToken, Session, User, UserId, UserLookup, UserUpdate};
