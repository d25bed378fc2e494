//! [`ConfigError`]: a configuration refused before the service starts. Its own module, so
//! that the configuration and the parts it configures (the mailer) both use it.

/// A configuration that [`Auth`](crate::Auth) refuses to start with: each would otherwise
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
    /// `sweep_interval` is zero: the sweep would run without pause.
    #[error("sweep_interval must be longer than zero (or None, to sweep on your own schedule)")]
    ZeroSweepInterval,
    /// A second-factor key that is not base64 of 32 bytes.
    #[error("the second-factor key must be 32 random bytes in base64 (`openssl rand -base64 32`)")]
    SecondFactorKey,
    /// An authenticator issuer name that is empty or has a `:` (which the `otpauth://` URI
    /// reserves).
    #[error("second-factor issuer {0:?} must be a non-empty name without `:`")]
    SecondFactorIssuer(String),
    /// A provider id that is empty, repeated, or has characters other than letters,
    /// digits, `-` and `_`.
    #[error("provider id {0:?} must be unique, of letters, digits, `-` and `_`")]
    ProviderId(String),
    /// Second factors are asked for but not configured (`AuthConfig::second_factors`).
    #[error("second factors are off: set AuthConfig::second_factors")]
    NoSecondFactors,
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

impl std::fmt::Debug for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        crate::error_chain::write_chain(self, f)
    }
}
