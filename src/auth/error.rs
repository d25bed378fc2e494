//! What can go wrong in [`Auth`](super::Auth) operations: [`AuthError`]. (A configuration
//! refused when the service is built is a [`ConfigError`], in `config`.)

use std::time::Duration;

use crate::config::ConfigError;
use crate::password::{HashError, PasswordRejection, PoolError};
use crate::store::StoreError;

use super::SecondFactorPending;

/// Why an [`Auth`](super::Auth) operation failed. How each becomes an HTTP response is
/// decided in one place, the crate's `error` module.
///
/// `Debug` is the message followed by its causes (what `main` prints for an error it
/// returns with `?`): `store failed: store unavailable: could not connect to PostgreSQL at
/// ...: connection refused ...`, never the variant names alone.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// Registration with an email that already has an account (the seed's `ValueError`).
    #[error("User {0} already exists")]
    UserExists(String),
    /// The email is empty, too long or not of the form `local@domain`.
    #[error("invalid email: {0}")]
    InvalidEmail(&'static str),
    /// The new password breaks the [`PasswordPolicy`](crate::password::PasswordPolicy).
    #[error(transparent)]
    WeakPassword(#[from] PasswordRejection),
    /// Wrong email or password (which of the two is never said).
    #[error("invalid credentials")]
    InvalidCredentials,
    /// No session, or one that is unknown, ended or expired.
    #[error("no valid session")]
    NoSession,
    /// The password given to confirm an action (reauthentication, password change,
    /// account deletion) is not the account's.
    #[error("wrong password")]
    WrongPassword,
    /// The action is sensitive and the session did not authenticate within
    /// [`sudo_window`](crate::AuthConfig::sudo_window): reauthenticate first.
    #[error("reauthentication required")]
    ReauthenticationRequired,
    /// The change needs the account's password, and none was given.
    #[error("password required")]
    PasswordRequired,
    /// No session with this handle belongs to the user.
    #[error("no such session")]
    SessionNotFound,
    /// A reset was requested for an email with no account (spec preset only; the hardened
    /// preset answers the same for every email).
    #[error("no account with this email")]
    UnknownEmail,
    /// The reset token is unknown, expired, already used, or belongs to another email.
    #[error("invalid or expired reset token")]
    InvalidResetToken,
    /// A mailed token (confirmation, magic link, email change) is unknown, expired,
    /// already used, or was sent to an address the account no longer has.
    #[error("invalid or expired token")]
    InvalidToken,
    /// The password was right, but the account's email is not confirmed and the
    /// configuration ([`require_confirmed_email`](crate::AuthConfig::require_confirmed_email))
    /// asks for it. No session was started.
    #[error("email not confirmed")]
    EmailNotConfirmed,
    /// No user has this id.
    #[error("no such user")]
    UnknownUser,
    /// The first factor was right and the account has a second one enrolled: no session
    /// yet. The pending login is bound to the browser by its cookie (return
    /// [`SecondFactorPending::cookie`] with the response); finish it with
    /// [`Auth::finish_second_factor`](super::Auth::finish_second_factor).
    #[error("second factor required")]
    SecondFactorRequired(Box<SecondFactorPending>),
    /// The authenticator code or recovery code is wrong, already used, or the pending
    /// login it was given for is unknown or expired.
    #[error("invalid code")]
    InvalidCode,
    /// An authenticator app is already enrolled: remove it before enrolling another.
    #[error("a second factor of this kind is already enrolled")]
    SecondFactorExists,
    /// The action needs an enrolled second factor, and the account has none (or no
    /// enrolment is under way).
    #[error("no second factor enrolled")]
    NoSecondFactor,
    /// No sign-in provider has this id.
    #[error("no such provider")]
    UnknownProvider,
    /// The sign-in provider cannot be reached (discovery or token request failed or timed
    /// out); retry shortly.
    #[error("the sign-in provider cannot be reached")]
    ProviderUnavailable,
    /// The provider refused the sign-in, or its answer did not verify (the reason, short
    /// and safe to show).
    #[error("the sign-in provider refused: {0}")]
    ProviderRefused(String),
    /// The identity cannot be linked or unlinked, for the reason given.
    #[error("{0}")]
    LinkRefused(&'static str),
    /// Too many failed logins for this account or client; retry after the given time.
    #[error("too many failed attempts")]
    Throttled {
        /// How long until the failure window ends.
        retry_after: Duration,
    },
    /// The password hashing pool is full; retry shortly.
    #[error("password hashing is overloaded")]
    Overloaded,
    /// This client already has its share of password hashing in progress
    /// ([`max_hash_jobs_per_client`](crate::AuthConfig::max_hash_jobs_per_client)); retry
    /// once its earlier requests are answered.
    #[error("too many requests from this client in progress")]
    ClientBusy,
    /// Too many registrations or reset requests from this client within the hour; retry
    /// after the given time.
    #[error("too many requests from this client")]
    RateLimited {
        /// How long until the window ends.
        retry_after: Duration,
    },
    /// The store failed. Its detail is for logs only.
    #[error("store failed")]
    Store(#[from] StoreError),
    /// The password hasher failed (not a wrong password: a malformed stored hash, a
    /// refused cost, a lost blocking thread).
    #[error("password hashing failed")]
    Hash(#[source] HashError),
    /// The operating system's random source failed.
    #[error("no randomness for a new token")]
    Random(#[source] getrandom::Error),
    /// Three freshly generated tokens all collided with stored ones (never expected).
    #[error("could not allocate a unique token")]
    TokenCollision,
    /// A message could not be made (a template failed to render, or the address cannot
    /// be mailed). Nothing was queued.
    #[error("mail could not be composed")]
    Mail(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The configuration was refused (see [`ConfigError`]).
    #[error(transparent)]
    Config(#[from] ConfigError),
}

impl From<PoolError> for AuthError {
    fn from(err: PoolError) -> Self {
        match err {
            PoolError::Overloaded(_) => Self::Overloaded,
            PoolError::Hash(HashError::TooLong) => Self::WeakPassword(PasswordRejection::TooLong {
                max_bytes: crate::password::MAX_PASSWORD_BYTES,
            }),
            PoolError::Hash(e) => Self::Hash(e),
        }
    }
}

impl std::fmt::Debug for AuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        crate::error_chain::write_chain(self, f)
    }
}
