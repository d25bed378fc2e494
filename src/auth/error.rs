//! What can go wrong in [`Auth`](super::Auth): [`AuthError`] for operations,
//! [`ConfigError`] for a configuration refused when the service is built.

use std::time::Duration;

use crate::password::{HashError, PasswordRejection, PoolError};
use crate::store::StoreError;

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

/// A configuration that [`Auth`](super::Auth) refuses to start with: each would otherwise
/// fail later, on a user's request (a cookie the browser drops, a 500 on the first hash).
/// `Debug` is the message, which says what to change.
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A `__Host-` or `__Secure-` cookie without `Secure`: browsers drop it.
    #[error(
        "cookie {0:?} needs `cookie.secure = true` (browsers drop it otherwise); for \
         development over plain http, keep `cookie.secure = false` and rename the cookie \
         to a name without the prefix (`cookie.name = \"session_id\"`, and the same for \
         `trusted_device_cookie`)"
    )]
    PrefixNeedsSecure(String),
    /// A `__Host-` cookie with a path other than `/`: browsers drop it.
    #[error("cookie {name:?} needs `cookie.path = \"/\"`, not {path:?}")]
    HostCookiePath {
        /// The cookie's name.
        name: String,
        /// The configured path.
        path: String,
    },
    /// The cookie name is empty or has characters a cookie name cannot have.
    #[error("{0:?} is not a valid cookie name")]
    CookieName(String),
    /// The cookie path is not a plain absolute path.
    #[error("{0:?} is not a valid cookie path (an absolute path without `;` or controls)")]
    CookiePath(String),
    /// A bcrypt cost the hashing library refuses.
    #[error("bcrypt cost {0} is outside 4..=31")]
    BcryptCost(u32),
    /// argon2 parameters the library refuses.
    #[error("argon2 parameters {0:?} are refused by the argon2 library")]
    Argon2Params(crate::password::Argon2Params),
    /// With argon2id, the memory budget does not hold even one hash.
    #[error(
        "hash_memory_budget ({budget} bytes) is less than one argon2id hash ({per_hash} bytes)"
    )]
    HashMemoryBudget {
        /// The configured budget, in bytes.
        budget: u64,
        /// What one hash needs, in bytes.
        per_hash: u64,
    },
    /// `hash_permits` is 0: no password could ever be hashed.
    #[error("hash_permits must be at least 1")]
    ZeroHashPermits,
    /// `max_hash_jobs_per_client` is 0: no client could ever log in.
    #[error("max_hash_jobs_per_client must be at least 1")]
    ZeroClientShare,
    /// `max_login_failures` or `max_login_failures_per_ip` is 0: every login, the first
    /// included, would be refused.
    #[error("{0} must be at least 1 (0 would refuse every login)")]
    ZeroLoginFailures(&'static str),
    /// `logout_redirect` cannot be sent as a `Location` header.
    #[error("logout_redirect {0:?} is not a valid Location")]
    LogoutRedirect(String),
    /// An entry of `allowed_origins`, or `public_origin`, is not `scheme://host[:port]`.
    #[error("origin {0:?} is not of the form scheme://host[:port]")]
    AllowedOrigin(String),
    /// A database URL whose scheme no store handles.
    #[error("unsupported database URL scheme {0:?} (expected sqlite:, postgres: or memory:)")]
    UnsupportedScheme(String),
    /// The configuration mails links (reset by mail, email confirmation, concealed
    /// registration) but has no [`Mailer`](crate::Mailer) to send them.
    #[error(
        "this configuration sends mail but AuthConfig::mailer is None: set it to \
         Mailer::smtp(\"smtp://user:password@host:587?tls=required\", from, public_url) \
         for real delivery, or Mailer::dev_outbox(\"target/outbox\", from, public_url) to \
         write each message as a file while developing; or turn the mail flows off \
         (reset_delivery = InResponse, require_confirmed_email = false, \
         conceal_registered_emails = false)"
    )]
    NoMailer,
    /// The mail sender is not an address (`no-reply@example.com` or
    /// `Name <no-reply@example.com>`).
    #[error("mail sender {0:?} is not an email address")]
    MailFrom(String),
    /// The public URL links point to is not `http(s)://host[:port][/path]`, or a link path
    /// does not start with `/`.
    #[error("public URL {0:?} is not of the form http(s)://host[:port][/path]")]
    PublicUrl(String),
    /// An SMTP URL lettre cannot use (the URL itself is not repeated: it may hold a password).
    #[error("unusable SMTP URL: {0}")]
    SmtpUrl(String),
}

/// Writes `err` and each of its causes, `: `-separated, on one line.
pub(crate) fn write_chain(
    err: &dyn std::error::Error,
    f: &mut std::fmt::Formatter<'_>,
) -> std::fmt::Result {
    write!(f, "{err}")?;
    let mut source = err.source();
    while let Some(cause) = source {
        write!(f, ": {cause}")?;
        source = cause.source();
    }
    Ok(())
}

impl std::fmt::Debug for AuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write_chain(self, f)
    }
}

impl std::fmt::Debug for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write_chain(self, f)
    }
}
