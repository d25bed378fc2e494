//! Accounts as handlers see them: [`User`] and its [`UserId`]. What a store keeps and takes
//! to create, find and change one is in [`store`](crate::store).

use std::fmt;

/// A user's primary key: the integer id the store assigned at registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(pub i64);

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A registered account as handlers see it: who, never how they authenticate.
///
/// It carries no password hash and no token, so passing it to a template, a log line or a
/// JSON body cannot leak one. [`UserRecord`](crate::store::UserRecord) is the stored form with the hash.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct User {
    /// The store-assigned primary key.
    pub id: UserId,
    /// The normalized (trimmed, lower-case) email the account is registered with.
    pub email: String,
    /// When the account was created, in milliseconds since the Unix epoch.
    pub created_at_ms: i64,
    /// When its owner proved the email reaches them (a confirmation link, a magic link or
    /// an email change), in milliseconds since the Unix epoch; `None` while unconfirmed.
    pub email_confirmed_at_ms: Option<i64>,
}

impl User {
    /// A user as a [`Store`](crate::Store) reads it back, its email not confirmed.
    pub fn new(id: UserId, email: impl Into<String>, created_at_ms: i64) -> Self {
        Self {
            id,
            email: email.into(),
            created_at_ms,
            email_confirmed_at_ms: None,
        }
    }

    /// The same user with its email confirmed at `confirmed_at_ms` (or not, for `None`).
    pub fn email_confirmed_at(mut self, confirmed_at_ms: Option<i64>) -> Self {
        self.email_confirmed_at_ms = confirmed_at_ms;
        self
    }

    /// True once the owner has proved the email reaches them.
    pub fn email_confirmed(&self) -> bool {
        self.email_confirmed_at_ms.is_some()
    }
}
