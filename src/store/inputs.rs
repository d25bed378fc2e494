//! What a [`Store`](super::Store) takes and gives for accounts: the stored record with its
//! hash, and the typed inputs to create, find and change one.

use std::fmt;

use super::FirstLink;
use crate::token::TokenHash;
use crate::user::{User, UserId};

/// An account as a [`Store`](crate::Store) keeps it: the [`User`] and its password hash.
/// Only [`Auth`](crate::Auth) reads the hash, to verify a password.
///
/// `Debug` never shows the hash.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UserRecord {
    /// The account.
    pub user: User,
    /// The password hash (`$2b$...`).
    pub password_hash: String,
}

impl UserRecord {
    /// A stored account.
    pub fn new(user: User, password_hash: impl Into<String>) -> Self {
        Self {
            user,
            password_hash: password_hash.into(),
        }
    }
}

impl fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserRecord")
            .field("user", &self.user)
            .field("password_hash", &"[redacted]")
            .finish()
    }
}

/// What [`Store::add_user`](crate::Store::add_user) needs to create an account.
#[derive(Clone)]
pub struct NewUser {
    /// The normalized email; unique across the store.
    pub email: String,
    /// The password hash.
    pub password_hash: String,
    /// Creation time in milliseconds since the Unix epoch.
    pub created_at_ms: i64,
    /// The confirmation link to store and queue with the account, in the same
    /// transaction; `None` when no mail is sent.
    pub first_link: Option<FirstLink>,
    /// When the email was proved to reach its owner, if it already was (an account made
    /// from a provider's verified email); `None` for an unconfirmed account.
    pub email_confirmed_at_ms: Option<i64>,
}

impl fmt::Debug for NewUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewUser")
            .field("email", &self.email)
            .field("password_hash", &"[redacted]")
            .field("created_at_ms", &self.created_at_ms)
            .field("first_link", &self.first_link)
            .finish()
    }
}

/// How to find one user: the typed form of the seed's `find_user_by(**kwargs)`.
///
/// An unknown attribute is a compile error rather than a runtime `InvalidRequestError`.
/// Every store answers every variant, so the enum is exhaustive: a new variant is a
/// breaking change that each store must handle.
#[derive(Debug, Clone, Copy)]
pub enum UserLookup<'a> {
    /// By primary key.
    Id(UserId),
    /// By normalized email.
    Email(&'a str),
}

/// A change to one user: the typed form of the seed's `update_user(user_id, **kwargs)`.
///
/// Fields left `None` are not touched. Every store applies every field, so the struct is
/// exhaustive: a new field is a breaking change that each store must handle.
#[derive(Clone, Default)]
pub struct UserUpdate {
    /// A new password hash.
    pub password_hash: Option<String>,
    /// A new normalized email (unique across the store).
    pub email: Option<String>,
    /// Marks the email confirmed at this time (milliseconds since the Unix epoch).
    pub email_confirmed_at_ms: Option<i64>,
    /// Sessions of the user to end in the same transaction (after a password change, so
    /// no other device stays logged in with the old one even if the process dies between
    /// two writes).
    pub end_sessions: Option<EndSessions>,
    /// Revokes, in the same transaction, every emailed token of the user (pending email
    /// changes, reset, magic and confirmation links) and every trusted-device record: what
    /// a password change, a reset or "log out everywhere" must end, so that someone who
    /// held a session or a link before cannot come back through one.
    pub end_tokens: bool,
}

/// Which of a user's sessions a [`UserUpdate`] ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndSessions {
    /// Every one.
    All,
    /// Every one but this (the session the change was made from).
    AllExcept(TokenHash),
}

impl UserUpdate {
    /// An update that changes nothing; chain the setters below.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets a new password hash.
    pub fn password_hash(mut self, hash: impl Into<String>) -> Self {
        self.password_hash = Some(hash.into());
        self
    }

    /// Sets a new normalized email.
    pub fn email(mut self, email: impl Into<String>) -> Self {
        self.email = Some(email.into());
        self
    }

    /// Marks the email confirmed at `now_ms`.
    pub fn confirm_email(mut self, now_ms: i64) -> Self {
        self.email_confirmed_at_ms = Some(now_ms);
        self
    }

    /// Ends the user's sessions (all, or all but one) in the same transaction.
    pub fn end_sessions(mut self, which: EndSessions) -> Self {
        self.end_sessions = Some(which);
        self
    }

    /// Revokes every emailed token and trusted device of the user in the same transaction.
    pub fn end_tokens(mut self) -> Self {
        self.end_tokens = true;
        self
    }

    /// True when the update would change nothing.
    pub fn is_empty(&self) -> bool {
        self.password_hash.is_none()
            && self.email.is_none()
            && self.email_confirmed_at_ms.is_none()
            && self.end_sessions.is_none()
            && !self.end_tokens
    }
}

impl fmt::Debug for UserUpdate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserUpdate")
            .field(
                "password_hash",
                &self.password_hash.as_ref().map(|_| "[redacted]"),
            )
            .field("email", &self.email)
            .field("email_confirmed_at_ms", &self.email_confirmed_at_ms)
            .field("end_sessions", &self.end_sessions)
            .field("end_tokens", &self.end_tokens)
            .finish()
    }
}
