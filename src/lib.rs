//! placeholder guide
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
pub use slashes::{MergeSlashes, MergeSlashesLayer};
#[cfg(feature = "sqlite")]
pub use store::SqliteStore;
pub use store::{MemoryStore, Store, StoreError};
#[cfg(feature = "postgres")]
pub use store::{PgStore, PgStoreOptions};
pub use token::{TokenFormat, TokenHash};
pub use user::{Counter, NewUser, ResetToken, Session, User, UserId, UserLookup, UserUpdate};
