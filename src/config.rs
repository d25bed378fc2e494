//! [`AuthConfig`]: every policy knob, and the two presets.
//!
//! [`AuthConfig::default()`] is the hardened preset (OWASP ASVS 5.0 V3/V6/V7, NIST SP
//! 800-63B-4). [`AuthConfig::spec()`] reproduces the seed service's observable behaviour.
//! Each field documents its value in both presets.

use std::time::Duration;

pub use crate::config_error::ConfigError;
use crate::mail::Mailer;
use crate::password::{Argon2Params, HashAlgorithm, PasswordPolicy};
use crate::token::TokenFormat;

/// Everything [`Auth`](crate::Auth) and its router can be told.
///
/// Start from a preset and change fields:
///
/// ```
/// use std::time::Duration;
/// let mut config = tower_auth::AuthConfig::default();
/// config.bcrypt_cost = 11;
/// config.session_idle_timeout = Duration::from_secs(15 * 60);
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct AuthConfig {
    /// The algorithm new password hashes use. Both presets: [`HashAlgorithm::Bcrypt`] (the
    /// seed's). Stored hashes of either algorithm verify whatever this says, and a
    /// successful login replaces a hash of another algorithm or other parameters.
    pub hash_algorithm: HashAlgorithm,
    /// bcrypt cost for new hashes. Both presets: 12 (the seed's). Lower only in tests.
    pub bcrypt_cost: u32,
    /// Lets a login rehash a stored password *down* to lower configured parameters (a
    /// lower `bcrypt_cost`, less argon2 work). Off by default: restarting with a lower
    /// cost by mistake then weakens no stored hash; hashes of less work, or of another
    /// algorithm, are upgraded either way.
    pub allow_hash_downgrade: bool,
    /// argon2id parameters for new hashes (with [`HashAlgorithm::Argon2id`]). Both presets:
    /// OWASP's minimum, 19 MiB, 2 passes, 1 lane.
    pub argon2: Argon2Params,
    /// Most memory argon2id hashing may hold at once, in bytes: with argon2id, at most
    /// `hash_memory_budget / argon2.memory_kib` hashes run at once (and never more than
    /// `hash_permits`); the rest queue, then are shed with 503. Both presets: 256 MiB.
    pub hash_memory_budget: u64,
    /// Password hashes run at once on the blocking pool. Both presets: the number of cores.
    pub hash_permits: usize,
    /// Hash jobs allowed to wait for a permit; past this, login/register/reset answer 503
    /// with `Retry-After`. Both presets: 512.
    pub hash_queue: usize,
    /// What a new password must satisfy. Spec: non-empty, at most 72 bytes, no NUL.
    /// Hardened: also at least 15 characters and not on the common-password list.
    pub password_policy: PasswordPolicy,
    /// Session token shape. Spec: UUID v4 (the seed's). Hardened: 256 random bits, base64url.
    pub session_token_format: TokenFormat,
    /// The session cookie's name and attributes.
    pub cookie: CookieConfig,
    /// One session per user: a login ends the user's other sessions. Spec: true (the seed
    /// keeps one `session_id` per user). Hardened: false (one session per device).
    pub single_session: bool,
    /// A login that presents a session cookie ends that session first (session fixation
    /// defence, ASVS 5.0 V7). Spec: false. Hardened: true. A new token is issued either way.
    pub end_presented_session_on_login: bool,
    /// A session unused this long is refused and removed. Spec: 7 days. Hardened: 30 min.
    /// Use is recorded at most once a minute, so the timeout is precise to a minute.
    pub session_idle_timeout: Duration,
    /// A session older than this is refused and removed, used or not. Spec: 30 days.
    /// Hardened: 12 h.
    pub session_lifetime: Duration,
    /// Lifetime of a session started with "remember me" (`remember_me=true` at login),
    /// whose cookie then persists across browser restarts (`Max-Age`). Spec: 30 days.
    /// Hardened: 30 days. Without it, the cookie ends with the browser session.
    pub remembered_session_lifetime: Duration,
    /// Idle timeout of a remembered session. Spec: 7 days. Hardened: 30 min, as for other
    /// sessions (a remembered session survives a browser restart, not weeks of disuse);
    /// raise it to keep remembered users logged in between visits.
    pub remembered_session_idle_timeout: Duration,
    /// How recently a session must have proved its user's identity (the login itself, a
    /// magic link, or `POST /sessions/reauth`) for sensitive actions: deleting the account
    /// without a password, ending every session, changing the email, and (see
    /// [`sudo_for_password_change`](Self::sudo_for_password_change)) changing the password.
    /// Older sessions get `403 {"message": "reauthentication required"}`. Both presets:
    /// 15 min.
    pub sudo_window: Duration,
    /// A password change needs a recent authentication too (it always needs the current
    /// password). Both presets: false.
    pub sudo_for_password_change: bool,
    /// Record each session's client address, for the user's list of their sessions.
    /// Both presets: true.
    pub record_client_ip: bool,
    /// Most session lookups (a session and its user) kept in memory, so an authenticated
    /// request rarely waits for the store; 0 turns the cache off. About 500 bytes each.
    /// Both presets: 10,000. The cache is coherent: it hears every change to users and
    /// sessions from the store (this process's at once; other instances' on PostgreSQL
    /// through `LISTEN/NOTIFY`, and not at all while that is lost), and a store whose
    /// changes it cannot hear is never cached. Expiry and the last-seen time work as
    /// without it.
    pub session_cache_capacity: usize,
    /// Longest a cached lookup is used before it is read from the store again, whatever
    /// the cache heard: the bound on how stale anything missed could be (a SQLite file
    /// written by a second process, a connection to PostgreSQL that died without a word).
    /// Both presets: 10 s.
    pub session_cache_max_age: Duration,
    /// The status of a request that needs a session and has none (no cookie, or an unknown,
    /// ended or expired one). Spec: [`NoSessionStatus::Forbidden`] (the seed's 403).
    /// Hardened: [`NoSessionStatus::Unauthorized`] (401).
    pub no_session_status: NoSessionStatus,
    /// Serve the self-service routes of [`Auth::router`](crate::Auth::router): the list of
    /// my sessions, ending them, reauthentication, password change, account deletion.
    /// Spec: false (the seed has none, and its 404s and 405s stay exact). Hardened: true.
    pub self_service_routes: bool,
    /// How long a reset token stays valid. Both presets: 1 h.
    pub reset_token_ttl: Duration,
    /// Where reset tokens go. Spec: [`ResetDelivery::InResponse`] (the seed's JSON body).
    /// Hardened: [`ResetDelivery::Mail`], a link mailed through [`mailer`](Self::mailer).
    pub reset_delivery: ResetDelivery,
    /// How mail leaves: the transport (SMTP, or the development outbox), the sender, the
    /// public URL links point to, the templates. Both presets: `None`. The hardened preset
    /// mails (resets, confirmations), so building it without a mailer is a
    /// [`ConfigError::NoMailer`] that says how to choose one. With a mailer,
    /// [`Auth::router`](crate::Auth::router) also serves the email routes (confirmation,
    /// magic link, email change).
    pub mailer: Option<Mailer>,
    /// Refuse logins (`403 {"message": "email not confirmed"}`, after a right password)
    /// until the account's email is confirmed; a magic link still logs in, and confirms.
    /// New accounts are mailed a confirmation link whenever a mailer is set. Spec: false.
    /// Hardened: true.
    pub require_confirmed_email: bool,
    /// Registration answers the same for new and registered emails (`202 {"message":
    /// "check your email"}`), and the owner of a registered one is mailed "you already have
    /// an account" instead, so registration does not reveal who has an account. Spec:
    /// false (the seed's `400 email already registered`). Hardened: true.
    pub conceal_registered_emails: bool,
    /// How long an email-confirmation link works. Both presets: 24 h.
    pub confirm_email_ttl: Duration,
    /// How long a magic (login) link works. Both presets: 15 min.
    pub magic_link_ttl: Duration,
    /// How long an email-change link works. Both presets: 24 h.
    pub change_email_ttl: Duration,
    /// Most mails of one kind (confirmation resend, magic link, "you already have an
    /// account", email change) sent to one account per hour; further requests still answer
    /// the same and send nothing. A link asked for by email (resend, magic link) counts
    /// per account *and client address*, so a stranger spends only their own allowance.
    /// Both presets: 3.
    pub max_mails_per_hour: Option<u32>,
    /// Most reset tokens sent per account and client address per hour (a stranger's
    /// requests do not spend the owner's); further requests still answer 202 but send
    /// nothing. Spec: no limit. Hardened: 3.
    pub max_reset_requests_per_hour: Option<u32>,
    /// Messages an hour to one address, from every account and flow together
    /// (confirmation, magic and reset links, email-change links to a new address, "you
    /// already have an account"); `None`: no cap. Keeps the service from being aimed at a
    /// third party's mailbox from many accounts or clients. A trusted device of the account
    /// asking for its own links is not held back by it.
    pub max_mails_per_recipient_per_hour: Option<u32>,
    /// A completed password reset ends every session of the user (ASVS 7.4.3). Spec: false
    /// (the seed's clients log out with a session opened before the reset). Hardened: true.
    pub end_sessions_on_password_reset: bool,
    /// Failed logins per account within [`login_failure_window`](Self::login_failure_window)
    /// before further attempts get 429. Both presets: 10. Attempts still being verified
    /// count too, so concurrent guesses cannot exceed it; a successful login clears it.
    pub max_login_failures: u32,
    /// Failed logins per client IP within the window before 429. Both presets: 100.
    /// Attempts still being verified count too, so concurrent guesses cannot exceed it; a
    /// successful login takes back its own attempt (the client's earlier failures stay).
    pub max_login_failures_per_ip: u32,
    /// Recognise clients that logged in successfully before ("trusted devices", OWASP's
    /// device-cookie scheme), by a cookie of this name set at each login: a trusted device
    /// is throttled by failures of its own (`max_login_failures` per window), never by the
    /// account's or the address's, so a stranger's wrong passwords cannot lock the owner
    /// out. Untrusted clients keep both limits. Spec: `None` (the seed sets one cookie).
    /// Hardened: `Some("__Host-trusted_device")`.
    pub trusted_device_cookie: Option<String>,
    /// How long a trusted-device cookie (and its record) lasts. Both presets: 180 days.
    pub trusted_device_lifetime: Duration,
    /// Most places in the hashing pool one client address holds at once; its further
    /// logins, registrations and resets get 429 with `Retry-After` until earlier ones are
    /// answered, so one client cannot push others into 503. Both presets: 64 (an eighth of
    /// `hash_queue`).
    pub max_hash_jobs_per_client: usize,
    /// Most registrations per client address per hour (429 with `Retry-After` after).
    /// Spec: no limit. Hardened: 20.
    pub max_registrations_per_ip: Option<u32>,
    /// Most requests of one kind that mail a link (reset, magic link, confirmation resend)
    /// per client address per hour, whatever the emails (429 with `Retry-After` after);
    /// each kind counts apart. Spec: no limit. Hardened: 20.
    pub max_reset_requests_per_ip: Option<u32>,
    /// The fixed window for both failure counters. Both presets: 15 min.
    pub login_failure_window: Duration,
    /// How many reverse proxies in front of the app append to `X-Forwarded-For`: the
    /// client's address is then that many entries from the right (an entry there that is
    /// not an address makes the client unknown, and the TCP peer stands in). Both presets:
    /// 0, the header is ignored and the TCP peer is the client; set it to the number of
    /// proxies you run, never more (entries further left are whatever the client sent).
    pub trusted_proxies: usize,
    /// Origins (`scheme://host[:port]`) allowed to send state-changing requests besides the
    /// app's own. Both presets: empty.
    pub allowed_origins: Vec<String>,
    /// The app's public origin (`https://app.example.com`, `scheme://host[:port]`): the
    /// same-origin check then compares a request's `Origin` with it (scheme, host and
    /// port) instead of with the `Host` header, which a proxy may rewrite and which carries
    /// no scheme. Both presets: `None` (the `Host` header; host and port compared).
    pub public_origin: Option<String>,
    /// How responses look on the wire. Spec: [`WireStyle::Werkzeug`]. Hardened:
    /// [`WireStyle::Json`].
    pub wire_style: WireStyle,
    /// Where logout redirects to. Both presets: `/`.
    pub logout_redirect: String,
    /// Largest accepted form body, in bytes; larger ones get 413. Both presets: 16 KiB.
    pub max_body_bytes: usize,
    /// How often the service deletes expired sessions, tokens, counters and outbox entries,
    /// in a task of its own (the first sweep one interval after start); `None` leaves it to the
    /// application ([`Auth::delete_expired`](crate::Auth::delete_expired)). Expired records
    /// are refused either way. Default: 10 minutes.
    pub sweep_interval: Option<Duration>,
    /// A form body must arrive whole within this time, or the request gets 408 and its
    /// connection is freed: a body that trickles a byte at a time cannot hold a connection
    /// (or a place in line) for long. Both presets: 10 s.
    pub body_read_timeout: Duration,
    /// Second factors (authenticator apps and recovery codes): `None` turns them off, and
    /// the router then has no routes for them. Both presets: `None`; set it with
    /// [`SecondFactorConfig::new`] and a key of your own.
    pub second_factors: Option<SecondFactorConfig>,
    /// Sign-in providers (OpenID Connect): `None` turns them off, and the router then has
    /// no routes for them. Both presets: `None`.
    pub providers: Option<crate::provider_config::ProvidersConfig>,
}

/// How second factors work: the key that seals authenticator secrets at rest, the name an
/// authenticator app shows, and the cookies of the second step.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SecondFactorConfig {
    /// Seals authenticator app secrets in the store (XChaCha20-Poly1305): a copy of the
    /// database alone does not give the codes. Keep it out of the database and the code
    /// (an environment variable, a secret store).
    pub key: SecondFactorKey,
    /// The name an authenticator app shows beside the account ("Example App").
    pub issuer: String,
    /// The cookie of a login waiting for its second factor (HttpOnly, short-lived, bound to
    /// the browser that gave the password). Default: `__Host-second_factor`.
    pub pending_cookie: String,
    /// How long a login may wait for its second factor. Default: 5 minutes.
    pub pending_lifetime: Duration,
    /// The cookie of a browser whose owner asked not to be asked for a second factor on it
    /// for [`device_lifetime`](Self::device_lifetime) (opt-in at the second step); `None`
    /// asks every time. Default: `Some("__Host-second_factor_device")`.
    pub device_cookie: Option<String>,
    /// How long such a browser skips the second factor. Default: 30 days.
    pub device_lifetime: Duration,
    /// The cookie that carries a passkey ceremony's state between its two requests
    /// (sealed with [`key`](Self::key), single use, 5 minutes). Passkeys also need
    /// [`AuthConfig::public_origin`]: its host is the relying party id, and only it may
    /// answer a ceremony. Default: `__Host-passkey_ceremony`.
    pub ceremony_cookie: String,
}

impl SecondFactorConfig {
    /// Second factors sealed with `key`, shown in authenticator apps as `issuer`, with the
    /// defaults above.
    pub fn new(key: SecondFactorKey, issuer: impl Into<String>) -> Self {
        Self {
            key,
            issuer: issuer.into(),
            pending_cookie: "__Host-second_factor".into(),
            pending_lifetime: Duration::from_secs(5 * 60),
            device_cookie: Some("__Host-second_factor_device".into()),
            device_lifetime: Duration::from_secs(30 * 24 * 3600),
            ceremony_cookie: "__Host-passkey_ceremony".into(),
        }
    }
}

/// The 32-byte key that seals authenticator secrets. `Debug` never shows it.
///
/// ```
/// use tower_auth::second_factor::SecondFactorKey;
/// // 32 random bytes, base64: `openssl rand -base64 32`
/// let key = SecondFactorKey::from_base64("q2bqhz0p3Rr8m0o8yJ0cQb6yHjv9lRrJx3p3cV1e0gY=").unwrap();
/// assert_eq!(format!("{key:?}"), "SecondFactorKey([redacted])");
/// assert!(SecondFactorKey::from_base64("too short").is_err());
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct SecondFactorKey([u8; 32]);

impl SecondFactorKey {
    /// The key of these 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The key whose standard base64 (with or without padding) is `text`.
    ///
    /// # Errors
    /// [`ConfigError::SecondFactorKey`] unless `text` is base64 of exactly 32 bytes.
    pub fn from_base64(text: &str) -> Result<Self, ConfigError> {
        use base64::Engine as _;
        let text = text.trim().trim_end_matches('=');
        let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(text)
            .map_err(|_| ConfigError::SecondFactorKey)?;
        <[u8; 32]>::try_from(bytes.as_slice())
            .map(Self)
            .map_err(|_| ConfigError::SecondFactorKey)
    }

    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for SecondFactorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecondFactorKey([redacted])")
    }
}

/// The session cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CookieConfig {
    /// Cookie name. Spec: `session_id`. Hardened: `__Host-session_id` (the browser then
    /// insists on `Secure`, `Path=/` and no `Domain`).
    pub name: String,
    /// Cookie `Path`. Both presets: `/`, so every route of the host app sees the session.
    pub path: String,
    /// Send the `Secure` attribute (HTTPS only). Spec: false (the seed serves plain HTTP).
    /// Hardened: true. Turning it off outside local development exposes sessions to anyone
    /// on the network path.
    pub secure: bool,
}

/// Where a reset token goes when a user asks for one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResetDelivery {
    /// In the `POST /reset_password` response body, as the seed does. Anyone who knows an
    /// email can then reset its password: for the seed's contract and tests only.
    InResponse,
    /// A link mailed through [`AuthConfig::mailer`] (from the durable outbox); the response
    /// is the same `202` for every email and never contains the token.
    Mail,
}

/// The answer to a request that needs a session and has none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NoSessionStatus {
    /// `403 Forbidden`, as the seed's `GET /profile` and `DELETE /sessions` answer.
    Forbidden,
    /// `401 Unauthorized`: the client is not authenticated (RFC 9110), so a client can
    /// tell "log in first" from "not allowed".
    Unauthorized,
}

/// Response details that differ between the seed's Flask/Werkzeug server and a plain JSON API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WireStyle {
    /// As the seed's server: Werkzeug's HTML pages for 401/403, upper-case reason phrases
    /// (`401 UNAUTHORIZED`) and an absolute logout `Location` (`http://<host>/`).
    Werkzeug,
    /// JSON `{"message": ...}` bodies on every error, standard reason phrases, and the
    /// logout `Location` exactly as configured.
    Json,
}

impl Default for AuthConfig {
    /// The hardened preset.
    fn default() -> Self {
        Self {
            hash_algorithm: HashAlgorithm::Bcrypt,
            bcrypt_cost: 12,
            allow_hash_downgrade: false,
            argon2: Argon2Params::OWASP_MINIMUM,
            hash_memory_budget: 256 * 1024 * 1024,
            hash_permits: std::thread::available_parallelism().map_or(1, |n| n.get()),
            hash_queue: 512,
            password_policy: PasswordPolicy::hardened(),
            session_token_format: TokenFormat::Random256,
            cookie: CookieConfig {
                name: "__Host-session_id".into(),
                path: "/".into(),
                secure: true,
            },
            single_session: false,
            end_presented_session_on_login: true,
            session_idle_timeout: Duration::from_secs(30 * 60),
            session_lifetime: Duration::from_secs(12 * 3600),
            remembered_session_lifetime: Duration::from_secs(30 * 24 * 3600),
            remembered_session_idle_timeout: Duration::from_secs(30 * 60),
            sudo_window: Duration::from_secs(15 * 60),
            sudo_for_password_change: false,
            record_client_ip: true,
            session_cache_capacity: 10_000,
            session_cache_max_age: Duration::from_secs(10),
            no_session_status: NoSessionStatus::Unauthorized,
            self_service_routes: true,
            reset_token_ttl: Duration::from_secs(3600),
            reset_delivery: ResetDelivery::Mail,
            mailer: None,
            require_confirmed_email: true,
            conceal_registered_emails: true,
            confirm_email_ttl: Duration::from_secs(24 * 3600),
            magic_link_ttl: Duration::from_secs(15 * 60),
            change_email_ttl: Duration::from_secs(24 * 3600),
            max_mails_per_hour: Some(3),
            max_reset_requests_per_hour: Some(3),
            max_mails_per_recipient_per_hour: Some(10),
            end_sessions_on_password_reset: true,
            max_login_failures: 10,
            max_login_failures_per_ip: 100,
            login_failure_window: Duration::from_secs(15 * 60),
            trusted_device_cookie: Some("__Host-trusted_device".into()),
            trusted_device_lifetime: Duration::from_secs(180 * 24 * 3600),
            max_hash_jobs_per_client: 64,
            max_registrations_per_ip: Some(20),
            max_reset_requests_per_ip: Some(20),
            trusted_proxies: 0,
            allowed_origins: Vec::new(),
            public_origin: None,
            wire_style: WireStyle::Json,
            logout_redirect: "/".into(),
            max_body_bytes: 16 * 1024,
            sweep_interval: Some(Duration::from_secs(10 * 60)),
            body_read_timeout: Duration::from_secs(10),
            second_factors: None,
            providers: None,
        }
    }
}

/// A cookie name a browser keeps: token characters only, and `Secure` for the `__Host-`
/// and `__Secure-` prefixes.
fn check_cookie_name(name: &str, secure: bool) -> Result<(), ConfigError> {
    let is_token_char = |b: u8| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b);
    if name.is_empty() || !name.bytes().all(is_token_char) {
        return Err(ConfigError::CookieName(name.to_owned()));
    }
    if (name.starts_with("__Host-") || name.starts_with("__Secure-")) && !secure {
        return Err(ConfigError::PrefixNeedsSecure(name.to_owned()));
    }
    Ok(())
}

impl AuthConfig {
    /// Checks everything that would otherwise fail later, on a user's request.
    /// [`Auth`](crate::Auth) calls it when it is built and refuses to start on an error.
    ///
    /// ```
    /// use tower_auth::{AuthConfig, ConfigError};
    /// let mut config = AuthConfig::default();
    /// config.cookie.secure = false; // a `__Host-` cookie must be Secure
    /// assert!(matches!(config.validate(), Err(ConfigError::PrefixNeedsSecure(_))));
    /// ```
    ///
    /// # Errors
    /// The first [`ConfigError`] found.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let cookie = &self.cookie;
        check_cookie_name(&cookie.name, cookie.secure)?;
        if !cookie.path.starts_with('/')
            || cookie
                .path
                .bytes()
                .any(|b| b == b';' || !b.is_ascii_graphic())
        {
            return Err(ConfigError::CookiePath(cookie.path.clone()));
        }
        if cookie.name.starts_with("__Host-") && cookie.path != "/" {
            return Err(ConfigError::HostCookiePath {
                name: cookie.name.clone(),
                path: cookie.path.clone(),
            });
        }
        if let Some(name) = &self.trusted_device_cookie {
            check_cookie_name(name, cookie.secure)?;
            if *name == cookie.name {
                return Err(ConfigError::CookieName(name.clone()));
            }
        }
        if let Some(second) = &self.second_factors {
            let names = [&second.pending_cookie, &second.ceremony_cookie]
                .into_iter()
                .chain(&second.device_cookie);
            for name in names {
                check_cookie_name(name, cookie.secure)?;
                if *name == cookie.name || Some(name) == self.trusted_device_cookie.as_ref() {
                    return Err(ConfigError::CookieName(name.clone()));
                }
            }
            if second.issuer.is_empty() || second.issuer.contains(':') {
                return Err(ConfigError::SecondFactorIssuer(second.issuer.clone()));
            }
        }
        if let Some(providers) = &self.providers {
            check_cookie_name(&providers.state_cookie, cookie.secure)?;
            let mut seen = std::collections::HashSet::new();
            for provider in &providers.providers {
                let valid_id = !provider.id.is_empty()
                    && provider
                        .id
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
                if !valid_id || !seen.insert(provider.id.as_str()) {
                    return Err(ConfigError::ProviderId(provider.id.clone()));
                }
            }
        }
        if self.max_login_failures == 0 {
            return Err(ConfigError::ZeroLoginFailures("max_login_failures"));
        }
        if self.max_login_failures_per_ip == 0 {
            return Err(ConfigError::ZeroLoginFailures("max_login_failures_per_ip"));
        }
        if self.sweep_interval == Some(Duration::ZERO) {
            return Err(ConfigError::ZeroSweepInterval);
        }
        if self.max_hash_jobs_per_client == 0 {
            return Err(ConfigError::ZeroClientShare);
        }
        if !(crate::password::MIN_COST..=crate::password::MAX_COST).contains(&self.bcrypt_cost) {
            return Err(ConfigError::BcryptCost(self.bcrypt_cost));
        }
        if self.hash_permits == 0 {
            return Err(ConfigError::ZeroHashPermits);
        }
        if !self.argon2.is_valid() {
            return Err(ConfigError::Argon2Params(self.argon2));
        }
        if self.hash_algorithm == HashAlgorithm::Argon2id
            && self.hash_memory_budget < self.argon2.memory_bytes()
        {
            return Err(ConfigError::HashMemoryBudget {
                budget: self.hash_memory_budget,
                per_hash: self.argon2.memory_bytes(),
            });
        }
        if self.logout_redirect.is_empty()
            || http::HeaderValue::from_str(&self.logout_redirect).is_err()
        {
            return Err(ConfigError::LogoutRedirect(self.logout_redirect.clone()));
        }
        let mails = self.reset_delivery == ResetDelivery::Mail
            || self.require_confirmed_email
            || self.conceal_registered_emails;
        if mails && self.mailer.is_none() {
            return Err(ConfigError::NoMailer);
        }
        for origin in self.allowed_origins.iter().chain(&self.public_origin) {
            if crate::origin::Origin::parse_configured(origin).is_none() {
                return Err(ConfigError::AllowedOrigin(origin.clone()));
            }
        }
        Ok(())
    }

    /// How many hashes may run at once: `hash_permits`, and with argon2id no more than the
    /// memory budget holds (at least one).
    pub fn effective_hash_permits(&self) -> usize {
        match self.hash_algorithm {
            HashAlgorithm::Argon2id => {
                let fit = self.hash_memory_budget / self.argon2.memory_bytes().max(1);
                self.hash_permits
                    .min(usize::try_from(fit).unwrap_or(usize::MAX))
                    .max(1)
            }
            _ => self.hash_permits,
        }
    }

    /// The hardened preset (same as `default()`).
    pub fn hardened() -> Self {
        Self::default()
    }

    /// The hardened preset mailing through `mailer`: the usual start.
    ///
    /// ```
    /// # fn main() -> Result<(), tower_auth::ConfigError> {
    /// use tower_auth::{AuthConfig, Mailer};
    /// let mailer = Mailer::dev_outbox("target/outbox", "dev@localhost", "http://localhost:3000")?;
    /// let config = AuthConfig::hardened_with(mailer);
    /// config.validate()?;
    /// # Ok(()) }
    /// ```
    pub fn hardened_with(mailer: Mailer) -> Self {
        Self {
            mailer: Some(mailer),
            ..Self::default()
        }
    }

    /// The seed's observable behaviour: UUID session ids in a `session_id` cookie, one
    /// session per user, reset tokens in the response, Werkzeug wire details.
    pub fn spec() -> Self {
        Self {
            password_policy: PasswordPolicy::spec(),
            session_token_format: TokenFormat::Uuid,
            cookie: CookieConfig {
                name: "session_id".into(),
                path: "/".into(),
                secure: false,
            },
            single_session: true,
            end_presented_session_on_login: false,
            session_idle_timeout: Duration::from_secs(7 * 24 * 3600),
            session_lifetime: Duration::from_secs(30 * 24 * 3600),
            remembered_session_idle_timeout: Duration::from_secs(7 * 24 * 3600),
            no_session_status: NoSessionStatus::Forbidden,
            self_service_routes: false,
            reset_delivery: ResetDelivery::InResponse,
            require_confirmed_email: false,
            conceal_registered_emails: false,
            max_reset_requests_per_hour: None,
            trusted_device_cookie: None,
            max_registrations_per_ip: None,
            max_reset_requests_per_ip: None,
            end_sessions_on_password_reset: false,
            wire_style: WireStyle::Werkzeug,
            ..Self::default()
        }
    }
}
