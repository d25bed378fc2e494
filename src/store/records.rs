//! The records a [`Store`](super::Store) keeps besides users: sessions, emailed tokens and
//! throttling counters.

use std::fmt;

use crate::token::TokenHash;
use crate::user::UserId;

/// A session row: which user a (hashed) session token belongs to, and its lifetimes.
///
/// Sessions keep a table of their own rather than being one more [`EmailToken`] purpose:
/// every authenticated request looks one up by primary key and joins its user, they are
/// touched (last seen) while in use and expire when idle, and they are never mailed, so
/// the "still sent to the account's address" rule of emailed tokens does not apply.
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

/// What an [`EmailToken`] lets its holder do. Stored as [`as_str`](Self::as_str).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenPurpose {
    /// Choose a new password (`PUT /reset_password`).
    ResetPassword,
    /// Confirm that the account's email address reaches its owner.
    ConfirmEmail,
    /// Log in without a password (a magic link).
    MagicLink,
    /// Move the account to the address the token was sent to.
    ChangeEmail,
}

impl TokenPurpose {
    /// The name stored in the `purpose` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ResetPassword => "reset_password",
            Self::ConfirmEmail => "confirm_email",
            Self::MagicLink => "magic_link",
            Self::ChangeEmail => "change_email",
        }
    }

    /// The purpose a stored name stands for; `None` for a name this version does not know.
    pub fn parse(name: &str) -> Option<Self> {
        [
            Self::ResetPassword,
            Self::ConfirmEmail,
            Self::MagicLink,
            Self::ChangeEmail,
        ]
        .into_iter()
        .find(|p| p.as_str() == name)
    }
}

impl fmt::Display for TokenPurpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A secret sent to a person (password reset, email confirmation, magic link, email
/// change): one kind of record for every such flow, after Phoenix's `users_tokens`.
///
/// Only the token's SHA-256 is stored. A token is valid while it has not expired, has not
/// been redeemed, and the account's email is still `account_email`, the address the
/// account had when the token was issued: changing the email voids every token mailed to
/// the old one. `sent_to` is where the token went (the same address, except for
/// [`TokenPurpose::ChangeEmail`], whose token goes to the new address).
#[derive(Clone, PartialEq, Eq)]
pub struct EmailToken {
    /// SHA-256 of the token.
    pub hash: TokenHash,
    /// The account it acts on.
    pub user_id: UserId,
    /// What it allows.
    pub purpose: TokenPurpose,
    /// The address the token was sent to.
    pub sent_to: String,
    /// The account's email when the token was issued; the token dies when it changes.
    pub account_email: String,
    /// Issue time, milliseconds since the Unix epoch.
    pub created_at_ms: i64,
    /// The token is refused from this time on (milliseconds since the Unix epoch).
    pub expires_at_ms: i64,
}

impl fmt::Debug for EmailToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmailToken")
            .field("user_id", &self.user_id)
            .field("purpose", &self.purpose)
            .field("sent_to", &self.sent_to)
            .field("account_email", &self.account_email)
            .field("created_at_ms", &self.created_at_ms)
            .field("expires_at_ms", &self.expires_at_ms)
            .finish_non_exhaustive()
    }
}

/// A fixed-window counter, used for login and reset-request throttling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Counter {
    /// Events counted in the current window.
    pub count: u32,
    /// When the current window ends, milliseconds since the Unix epoch.
    pub window_ends_ms: i64,
}

impl Counter {
    /// A counter as a store reads it back.
    pub fn new(count: u32, window_ends_ms: i64) -> Self {
        Self {
            count,
            window_ends_ms,
        }
    }
}

/// How many expired records one [`Store::delete_expired`](super::Store::delete_expired)
/// removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Swept {
    /// Sessions past their absolute expiry or idle too long.
    pub sessions: u64,
    /// Emailed tokens past their expiry.
    pub tokens: u64,
    /// Counters whose window has ended.
    pub counters: u64,
}

impl Swept {
    /// A sweep's counts, as a store reports them.
    pub fn new(sessions: u64, tokens: u64, counters: u64) -> Self {
        Self {
            sessions,
            tokens,
            counters,
        }
    }
}
