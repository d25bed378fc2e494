//! placeholder guide
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

mod auth;
pub mod clock;
mod common_passwords;
mod config;
pub mod password;
pub mod reset;
pub mod store;
mod token;
mod user;

pub use auth::{
    Auth, AuthBuilder, AuthError, LoggedIn, LoginAttempt, ResetRequested, connect_store,
};
pub use config::{AuthConfig, CookieConfig, ResetDelivery, WireStyle};
#[cfg(feature = "sqlite")]
pub use store::SqliteStore;
pub use store::{MemoryStore, Store, StoreError};
#[cfg(feature = "postgres")]
pub use store::{PgStore, PgStoreOptions};
pub use token::{TokenFormat, TokenHash};
pub use user::{Counter, NewUser, ResetToken, Session, User, UserId, UserLookup, UserUpdate};
