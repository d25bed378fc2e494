//! The user model shared by [`Auth`](crate::Auth) and every [`Store`](crate::Store).

use std::fmt;

use crate::token::TokenHash;

/// A user's primary key: the integer id the store assigned at registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(pub i64);

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A registered account, as a [`Store`](crate::Store) returns it.
///
/// `Debug` prints the id and email only: the password hash and the reset token never
/// appear in logs, even through `{:?}`.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    /// The store-assigned primary key.
    pub id: UserId,
    /// The normalized (trimmed, lower-case) email the account was registered with.
    pub email: String,
    /// The bcrypt hash (`$2b$...`) of the user's password.
    pub hashed_password: String,
    /// The pending password-reset token, stored hashed, if one was issued and not yet used.
    pub reset_token: Option<ResetToken>,
    /// When the account was created, in milliseconds since the Unix epoch.
    pub created_at_ms: i64,
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("hashed_password", &"[redacted]")
            .field(
                "reset_token",
                &self.reset_token.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

/// A password-reset token at rest: its SHA-256 hash and when it stops being accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResetToken {
    /// SHA-256 of the token that was handed out; the token itself is never stored.
    pub hash: TokenHash,
    /// Milliseconds since the Unix epoch after which the token is refused.
    pub expires_at_ms: i64,
}

/// What [`Store::add_user`](crate::Store::add_user) needs to create an account.
#[derive(Clone)]
pub struct NewUser {
    /// The normalized email; unique across the store.
    pub email: String,
    /// The bcrypt hash of the password.
    pub hashed_password: String,
    /// Creation time in milliseconds since the Unix epoch.
    pub created_at_ms: i64,
}

impl fmt::Debug for NewUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewUser")
            .field("email", &self.email)
            .field("hashed_password", &"[redacted]")
            .finish()
    }
}

/// How to find one user: the typed form of the seed's `find_user_by(**kwargs)`.
///
/// An unknown attribute is a compile error rather than a runtime `InvalidRequestError`.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum UserLookup<'a> {
    /// By primary key.
    Id(UserId),
    /// By normalized email.
    Email(&'a str),
    /// By the hash of a pending reset token (expired or not: the caller checks expiry).
    ResetToken(&'a TokenHash),
}

/// A change to one user: the typed form of the seed's `update_user(user_id, **kwargs)`.
///
/// Fields left `None` are not touched.
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct UserUpdate {
    /// A new password hash.
    pub hashed_password: Option<String>,
    /// `Some(Some(t))` sets a reset token, `Some(None)` clears it.
    pub reset_token: Option<Option<ResetToken>>,
}

impl UserUpdate {
    /// An update that changes nothing; chain the setters below.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets a new password hash.
    pub fn hashed_password(mut self, hash: impl Into<String>) -> Self {
        self.hashed_password = Some(hash.into());
        self
    }

    /// Sets (`Some`) or clears (`None`) the pending reset token.
    pub fn reset_token(mut self, token: Option<ResetToken>) -> Self {
        self.reset_token = Some(token);
        self
    }

    /// True when the update would change nothing.
    pub fn is_empty(&self) -> bool {
        self.hashed_password.is_none() && self.reset_token.is_none()
    }
}

impl fmt::Debug for UserUpdate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserUpdate")
            .field(
                "hashed_password",
                &self.hashed_password.as_ref().map(|_| "[redacted]"),
            )
            .field(
                "reset_token",
                &self
                    .reset_token
                    .as_ref()
                    .map(|t| t.as_ref().map(|_| "[redacted]")),
            )
            .finish()
    }
}

/// A session row: which user a (hashed) session token belongs to, and its lifetimes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// SHA-256 of the session token sent in the cookie.
    pub token_hash: TokenHash,
    /// The user the session belongs to.
    pub user_id: UserId,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_at_ms: i64,
    /// Last time the session was seen in use (updated at most about once a minute).
    pub last_seen_ms: i64,
    /// Absolute expiry, milliseconds since the Unix epoch.
    pub expires_at_ms: i64,
}

/// A fixed-window counter, used for login and reset-request throttling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counter {
    /// Events counted in the current window.
    pub count: u32,
    /// When the current window ends, milliseconds since the Unix epoch.
    pub window_ends_ms: i64,
}
