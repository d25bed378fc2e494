//! [`Auth`]: the service. The seed's `Auth` class in Rust, plus the policies around it
//! (expiry, throttling, presets). Handlers talk to this, never to a [`Store`].

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use crate::clock::{Clock, SystemClock, duration_ms};
use crate::config::{AuthConfig, ResetDelivery};
use crate::password::{Bcrypt, HashPool, PasswordHasher, PoolError, Reservation};
use crate::store::{Store, StoreError};
use crate::token::{self, TokenFormat, TokenHash};
use crate::user::{Counter, NewUser, ResetToken, Session, User, UserId, UserLookup, UserUpdate};

/// Why an [`Auth`] operation failed. How each becomes an HTTP response is decided in one
/// place, the crate's `error` module.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// Registration with an email that already has an account (the seed's `ValueError`).
    #[error("User {0} already exists")]
    UserExists(String),
    /// The email is empty, too long or not of the form `local@domain`.
    #[error("invalid email: {0}")]
    InvalidEmail(&'static str),
    /// The new password breaks the [`PasswordPolicy`](crate::password::PasswordPolicy).
    #[error("{0}")]
    WeakPassword(String),
    /// Wrong email or password (which of the two is never said).
    #[error("invalid credentials")]
    InvalidCredentials,
    /// No session, or one that is unknown, ended or expired.
    #[error("no valid session")]
    NoSession,
    /// A reset was requested for an email with no account (spec preset only; the hardened
    /// preset answers the same for every email).
    #[error("no account with this email")]
    UnknownEmail,
    /// The reset token is unknown, expired, already used, or belongs to another email.
    #[error("invalid or expired reset token")]
    InvalidResetToken,
    /// Too many failed logins for this account or client; retry after the given time.
    #[error("too many failed attempts")]
    Throttled {
        /// How long until the failure window ends.
        retry_after: Duration,
    },
    /// The password hashing pool is full; retry shortly.
    #[error("password hashing is overloaded")]
    Overloaded,
    /// The store failed. Its detail is for logs only.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Anything else internal (hashing library, randomness, reset delivery).
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<PoolError> for AuthError {
    fn from(err: PoolError) -> Self {
        match err {
            PoolError::Overloaded(_) => Self::Overloaded,
            PoolError::Hash(crate::password::HashError::TooLong) => Self::WeakPassword(format!(
                "password must be at most {} bytes",
                crate::password::MAX_PASSWORD_BYTES
            )),
            PoolError::Hash(e) => Self::Internal(e.to_string()),
        }
    }
}

/// A login attempt as the HTTP layer sees it.
#[derive(Clone, Copy)]
pub struct LoginAttempt<'a> {
    /// The email as typed.
    pub email: &'a str,
    /// The password as typed.
    pub password: &'a str,
    /// The client's address, for per-IP throttling, when known.
    pub client_ip: Option<IpAddr>,
    /// The session token the client presented, if any (ended first when the config says so).
    pub current_session: Option<&'a str>,
}

impl std::fmt::Debug for LoginAttempt<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginAttempt")
            .field("email", &self.email)
            .field("client_ip", &self.client_ip)
            .finish_non_exhaustive()
    }
}

/// A successful login: the user and the new session token to put in the cookie.
pub struct LoggedIn {
    /// Who logged in.
    pub user: User,
    /// The new session token (secret: goes only into the `Set-Cookie` header).
    pub session_id: String,
}

impl std::fmt::Debug for LoggedIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoggedIn")
            .field("user", &self.user)
            .field("session_id", &"[redacted]")
            .finish()
    }
}

/// What a password-reset request produced.
#[non_exhaustive]
pub enum ResetRequested {
    /// The token, for the response body ([`ResetDelivery::InResponse`]).
    Token {
        /// The account's normalized email.
        email: String,
        /// The reset token (secret).
        token: String,
    },
    /// Accepted: a token was sent if the account exists and is under its hourly limit. The
    /// same answer for every email, so it reveals nothing.
    Accepted,
}

impl std::fmt::Debug for ResetRequested {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Token { email, .. } => f
                .debug_struct("Token")
                .field("email", email)
                .field("token", &"[redacted]")
                .finish(),
            Self::Accepted => f.write_str("Accepted"),
        }
    }
}

/// How often a session's last-seen time is written: at most once per this interval, so an
/// authenticated request is a single read almost always.
const TOUCH_INTERVAL_MS: i64 = 60_000;
/// How often expired sessions are swept from the store (on session creation).
const SWEEP_INTERVAL_MS: i64 = 10 * 60_000;
/// Longest email accepted (RFC 5321 path limit).
const MAX_EMAIL_BYTES: usize = 254;
/// Longest session or reset token looked up; anything longer cannot be one of ours.
const MAX_TOKEN_BYTES: usize = 128;

/// The authentication service: register, log in, sessions, password reset.
///
/// Cheap to clone (one `Arc`). Build one per application and share it:
///
/// ```
/// # async fn demo() -> Result<(), tower_auth::AuthError> {
/// use tower_auth::{Auth, AuthConfig, MemoryStore};
/// let mut config = AuthConfig::spec();
/// config.bcrypt_cost = 4;
/// let auth = Auth::new(MemoryStore::new(), config);
/// auth.register_user("bob@bob.com", "MyPwdOfBob").await?;
/// assert!(auth.valid_login("bob@bob.com", "MyPwdOfBob").await?);
/// let session_id = auth.create_session("bob@bob.com").await?.expect("known user");
/// let user = auth.get_user_from_session_id(Some(&session_id)).await?;
/// assert_eq!(user.map(|u| u.email).as_deref(), Some("bob@bob.com"));
/// # Ok(()) }
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(demo()).unwrap();
/// ```
#[derive(Clone)]
pub struct Auth {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    config: AuthConfig,
    hasher: HashPool,
    clock: Arc<dyn Clock>,
    dummy_hash: tokio::sync::OnceCell<String>,
    next_sweep_ms: AtomicI64,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// Builds an [`Auth`] with a custom clock or password hasher.
#[must_use]
pub struct AuthBuilder {
    store: Arc<dyn Store>,
    config: AuthConfig,
    clock: Arc<dyn Clock>,
    hasher: Option<Arc<dyn PasswordHasher>>,
}

impl std::fmt::Debug for AuthBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthBuilder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl AuthBuilder {
    /// Replaces the configuration (default: [`AuthConfig::default()`], hardened).
    pub fn config(mut self, config: AuthConfig) -> Self {
        self.config = config;
        self
    }

    /// Replaces the clock (default: [`SystemClock`]); tests use a
    /// [`ManualClock`](crate::clock::ManualClock).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Replaces the password hasher (default: [`Bcrypt`] at `config.bcrypt_cost`).
    pub fn password_hasher(mut self, hasher: impl PasswordHasher) -> Self {
        self.hasher = Some(Arc::new(hasher));
        self
    }

    /// Builds the service.
    pub fn build(self) -> Auth {
        let hasher = self
            .hasher
            .unwrap_or_else(|| Arc::new(Bcrypt::new(self.config.bcrypt_cost)));
        let pool = HashPool::new(hasher, self.config.hash_permits, self.config.hash_queue);
        Auth {
            inner: Arc::new(Inner {
                store: self.store,
                hasher: pool,
                clock: self.clock,
                dummy_hash: tokio::sync::OnceCell::new(),
                next_sweep_ms: AtomicI64::new(i64::MIN),
                config: self.config,
            }),
        }
    }
}

impl Auth {
    /// An `Auth` over `store` with `config`.
    pub fn new(store: impl Store, config: AuthConfig) -> Self {
        Self::builder(store).config(config).build()
    }

    /// A builder, for a custom clock or hasher.
    pub fn builder(store: impl Store) -> AuthBuilder {
        Self::builder_shared(Arc::new(store))
    }

    /// A builder over a store already behind an `Arc`.
    pub fn builder_shared(store: Arc<dyn Store>) -> AuthBuilder {
        AuthBuilder {
            store,
            config: AuthConfig::default(),
            clock: Arc::new(SystemClock),
            hasher: None,
        }
    }

    /// Connects to the database named by `url` and returns an `Auth` over it: SQLite for
    /// `sqlite:` URLs, PostgreSQL for `postgres:`/`postgresql:` URLs, and an in-memory
    /// store for `memory:`.
    ///
    /// # Errors
    /// An unsupported scheme (or one whose cargo feature is off), or the store's connect error.
    pub async fn connect(url: &str, config: AuthConfig) -> Result<Self, AuthError> {
        Ok(Self::builder_shared(connect_store(url, false).await?)
            .config(config)
            .build())
    }

    /// The configuration in force.
    pub fn config(&self) -> &AuthConfig {
        &self.inner.config
    }

    /// The hashing pool (its current load is useful in metrics).
    pub fn hash_pool(&self) -> &HashPool {
        &self.inner.hasher
    }

    fn store(&self) -> &dyn Store {
        &*self.inner.store
    }

    fn now_ms(&self) -> i64 {
        self.inner.clock.now_ms()
    }

    // ----- the seed's methods -------------------------------------------------------------

    /// Registers a user (seed task 5).
    ///
    /// # Errors
    /// [`AuthError::UserExists`] (message `User <email> already exists`), invalid email or
    /// password, [`AuthError::Overloaded`], or a store failure.
    pub async fn register_user(&self, email: &str, password: &str) -> Result<User, AuthError> {
        let email = normalize_email(email)?;
        self.check_password(password)?;
        // A cheap read first so a duplicate costs no bcrypt work; the UNIQUE constraint
        // still decides races.
        if self
            .store()
            .find_user_by(UserLookup::Email(&email))
            .await?
            .is_some()
        {
            return Err(AuthError::UserExists(email));
        }
        let hashed_password = self.inner.hasher.hash(password.to_owned()).await?;
        let user = self
            .store()
            .add_user(NewUser {
                email: email.clone(),
                hashed_password,
                created_at_ms: self.now_ms(),
            })
            .await
            .map_err(|e| match e {
                StoreError::Duplicate => AuthError::UserExists(email),
                other => other.into(),
            })?;
        event("registered", Some(user.id));
        Ok(user)
    }

    /// True when `password` is the password of the account `email` (seed task 8).
    ///
    /// Costs one bcrypt verification whether or not the account exists, so response time
    /// does not reveal which emails are registered.
    ///
    /// # Errors
    /// [`AuthError::Overloaded`] or a store failure.
    pub async fn valid_login(&self, email: &str, password: &str) -> Result<bool, AuthError> {
        let reservation = self.reserve_hash()?;
        Ok(self
            .check_credentials(email, password, reservation)
            .await?
            .is_some())
    }

    /// Starts a session for `email` and returns its id, or `None` for an unknown email
    /// (seed task 10). Does not check a password: call [`valid_login`](Self::valid_login)
    /// first, or use [`log_in`](Self::log_in).
    ///
    /// # Errors
    /// A store failure.
    pub async fn create_session(&self, email: &str) -> Result<Option<String>, AuthError> {
        let Ok(email) = normalize_email(email) else {
            return Ok(None);
        };
        match self.store().find_user_by(UserLookup::Email(&email)).await? {
            Some(user) => Ok(Some(self.start_session(user.id).await?)),
            None => Ok(None),
        }
    }

    /// The user a session id belongs to, or `None` when it is absent, unknown or expired
    /// (seed task 12). An expired session is deleted on sight.
    ///
    /// # Errors
    /// A store failure.
    pub async fn get_user_from_session_id(
        &self,
        session_id: Option<&str>,
    ) -> Result<Option<User>, AuthError> {
        let Some(token) = session_id.filter(|t| !t.is_empty() && t.len() <= MAX_TOKEN_BYTES) else {
            return Ok(None);
        };
        let hash = TokenHash::of(token);
        let Some((session, user)) = self.store().find_session(&hash).await? else {
            return Ok(None);
        };
        let now = self.now_ms();
        let idle_cutoff = now.saturating_sub(duration_ms(self.inner.config.session_idle_timeout));
        if session.expires_at_ms <= now || session.last_seen_ms <= idle_cutoff {
            self.store().delete_session(&hash).await?;
            return Ok(None);
        }
        if now - session.last_seen_ms >= TOUCH_INTERVAL_MS {
            self.store().touch_session(&hash, now).await?;
        }
        Ok(Some(user))
    }

    /// Ends every session of a user (seed task 13).
    ///
    /// # Errors
    /// A store failure.
    pub async fn destroy_session(&self, user_id: UserId) -> Result<(), AuthError> {
        self.store().delete_user_sessions(user_id).await?;
        event("logged_out", Some(user_id));
        Ok(())
    }

    /// Issues a reset token for `email`, replacing any earlier one (seed task 16). It
    /// expires after [`reset_token_ttl`](AuthConfig::reset_token_ttl) and dies on use.
    ///
    /// # Errors
    /// [`AuthError::UnknownEmail`] when there is no such account, or a store failure.
    pub async fn get_reset_password_token(&self, email: &str) -> Result<String, AuthError> {
        let email = normalize_email(email).map_err(|_| AuthError::UnknownEmail)?;
        let user = self
            .store()
            .find_user_by(UserLookup::Email(&email))
            .await?
            .ok_or(AuthError::UnknownEmail)?;
        self.issue_reset_token(&user).await
    }

    /// Sets a new password from a reset token and clears the token (seed task 18).
    ///
    /// # Errors
    /// [`AuthError::InvalidResetToken`] when the token is unknown, expired or used; a weak
    /// password; [`AuthError::Overloaded`]; or a store failure.
    pub async fn update_password(
        &self,
        reset_token: &str,
        password: &str,
    ) -> Result<(), AuthError> {
        self.redeem_reset_token(None, reset_token, password)
            .await
            .map(|_| ())
    }

    // ----- the flows behind the HTTP endpoints ----------------------------------------------

    /// `POST /sessions`: throttling, credentials, then a new session.
    ///
    /// # Errors
    /// [`AuthError::Throttled`], [`AuthError::InvalidCredentials`], [`AuthError::Overloaded`]
    /// or a store failure.
    pub async fn log_in(&self, attempt: LoginAttempt<'_>) -> Result<LoggedIn, AuthError> {
        let config = &self.inner.config;
        let now = self.now_ms();
        let window = duration_ms(config.login_failure_window);
        let account_key = format!("login:account:{}", attempt.email.trim().to_lowercase());
        let ip_key = attempt.client_ip.map(|ip| format!("login:ip:{ip}"));
        // A place in the hashing pool comes first: a login shed for load (503) must not
        // count against the account or the client, or a login storm would lock users out.
        let reservation = self.reserve_hash()?;
        // Both counters are claimed atomically *before* verifying, so concurrent guesses
        // cannot all pass a check made before any of them had failed: at most
        // `max_login_failures` attempts per account and `max_login_failures_per_ip` per
        // client reach the hasher in a window. A success clears the account's counter and
        // takes back its claim on the client's, which counts failures only.
        let ip_claim = match &ip_key {
            Some(key) => {
                let counter = self.store().increment_counter(key, now, window).await?;
                if counter.count > config.max_login_failures_per_ip {
                    return Err(self.throttled(attempt.email, counter, now).await?);
                }
                Some((key, counter.window_ends_ms))
            }
            None => None,
        };
        let counter = self
            .store()
            .increment_counter(&account_key, now, window)
            .await?;
        if counter.count > config.max_login_failures {
            return Err(self.throttled(attempt.email, counter, now).await?);
        }
        let Some(user) = self
            .check_credentials(attempt.email, attempt.password, reservation)
            .await?
        else {
            return Err(AuthError::InvalidCredentials);
        };
        self.store().reset_counter(&account_key).await?;
        if let Some((key, window_ends_ms)) = ip_claim {
            self.store().release_counter(key, window_ends_ms).await?;
        }
        if config.end_presented_session_on_login {
            if let Some(old) = attempt
                .current_session
                .filter(|t| t.len() <= MAX_TOKEN_BYTES)
            {
                self.store().delete_session(&TokenHash::of(old)).await?;
            }
        }
        let session_id = self.start_session(user.id).await?;
        event("logged_in", Some(user.id));
        Ok(LoggedIn { user, session_id })
    }

    /// `DELETE /sessions`: ends the presented session and returns its user.
    ///
    /// # Errors
    /// [`AuthError::NoSession`] when the token is absent, unknown or expired; a store failure.
    pub async fn log_out(&self, session_id: Option<&str>) -> Result<User, AuthError> {
        let user = self
            .get_user_from_session_id(session_id)
            .await?
            .ok_or(AuthError::NoSession)?;
        if self.inner.config.single_session {
            // The user's one session is the presented one: end it, and any a race left.
            self.store().delete_user_sessions(user.id).await?;
        } else if let Some(token) = session_id {
            self.store().delete_session(&TokenHash::of(token)).await?;
        }
        event("logged_out", Some(user.id));
        Ok(user)
    }

    /// `POST /reset_password`: issues a token and delivers it as the config says.
    ///
    /// With [`ResetDelivery::InResponse`] the token is returned (unknown email:
    /// [`AuthError::UnknownEmail`]). With a sender, the answer is always
    /// [`ResetRequested::Accepted`], whether or not the account exists or is over its limit.
    ///
    /// # Errors
    /// As described, or a store or delivery failure.
    pub async fn request_password_reset(&self, email: &str) -> Result<ResetRequested, AuthError> {
        let sender = match &self.inner.config.reset_delivery {
            ResetDelivery::InResponse => {
                let token = self.get_reset_password_token(email).await?;
                let email = normalize_email(email)?;
                return Ok(ResetRequested::Token { email, token });
            }
            ResetDelivery::Sender(sender) => sender.clone(),
        };
        let Ok(email) = normalize_email(email) else {
            return Ok(ResetRequested::Accepted);
        };
        let Some(user) = self.store().find_user_by(UserLookup::Email(&email)).await? else {
            event("reset_requested_unknown", None);
            return Ok(ResetRequested::Accepted);
        };
        if let Some(max) = self.inner.config.max_reset_requests_per_hour {
            let key = format!("reset:{}", user.id);
            let counter = self
                .store()
                .increment_counter(&key, self.now_ms(), 3_600_000)
                .await?;
            if counter.count > max {
                event("reset_throttled", Some(user.id));
                return Ok(ResetRequested::Accepted);
            }
        }
        let token = self.issue_reset_token(&user).await?;
        sender
            .send(&user.email, &token)
            .await
            .map_err(|e| AuthError::Internal(format!("reset token delivery failed: {e}")))?;
        Ok(ResetRequested::Accepted)
    }

    /// `PUT /reset_password`: sets a new password when `reset_token` is valid and belongs
    /// to `email`; returns the user.
    ///
    /// # Errors
    /// [`AuthError::InvalidResetToken`] (nothing changed), a weak password,
    /// [`AuthError::Overloaded`] or a store failure.
    pub async fn reset_password(
        &self,
        email: &str,
        reset_token: &str,
        new_password: &str,
    ) -> Result<User, AuthError> {
        self.redeem_reset_token(Some(email), reset_token, new_password)
            .await
    }

    // ----- internals ------------------------------------------------------------------------

    /// The answer to a throttled login, after emitting its event (with the user id when
    /// the account exists: the lookup is made for known and unknown emails alike).
    async fn throttled(
        &self,
        email: &str,
        counter: Counter,
        now: i64,
    ) -> Result<AuthError, AuthError> {
        let user_id = match normalize_email(email) {
            Ok(email) => self
                .store()
                .find_user_by(UserLookup::Email(&email))
                .await?
                .map(|u| u.id),
            Err(_) => None,
        };
        event("login_throttled", user_id);
        Ok(AuthError::Throttled {
            retry_after: Duration::from_millis(
                u64::try_from(counter.window_ends_ms - now).unwrap_or(0),
            ),
        })
    }

    fn check_password(&self, password: &str) -> Result<(), AuthError> {
        self.inner
            .config
            .password_policy
            .check(password)
            .map_err(AuthError::WeakPassword)
    }

    /// A place in the hashing pool, or [`AuthError::Overloaded`].
    fn reserve_hash(&self) -> Result<Reservation, AuthError> {
        self.inner
            .hasher
            .reserve()
            .map_err(|shed| PoolError::Overloaded(shed).into())
    }

    /// The user when the credentials are right. One bcrypt verification either way, in the
    /// place `reservation` holds.
    async fn check_credentials(
        &self,
        email: &str,
        password: &str,
        reservation: Reservation,
    ) -> Result<Option<User>, AuthError> {
        let user = match normalize_email(email) {
            Ok(email) => self.store().find_user_by(UserLookup::Email(&email)).await?,
            Err(_) => None,
        };
        let hash = match &user {
            Some(user) => user.hashed_password.clone(),
            None => self.dummy_hash().await?,
        };
        let matches = self
            .inner
            .hasher
            .verify_reserved(reservation, password.to_owned(), hash)
            .await?;
        match user {
            Some(user) if matches => Ok(Some(user)),
            found => {
                event("login_failed", found.map(|u| u.id));
                Ok(None)
            }
        }
    }

    /// A hash of a random password at the configured cost, made once, to verify against
    /// when the email is unknown.
    async fn dummy_hash(&self) -> Result<String, AuthError> {
        self.inner
            .dummy_hash
            .get_or_try_init(|| async {
                let random = token::generate(TokenFormat::Random256)
                    .map_err(|e| AuthError::Internal(e.to_string()))?;
                Ok::<_, AuthError>(self.inner.hasher.hash(random[..32].to_owned()).await?)
            })
            .await
            .cloned()
    }

    async fn start_session(&self, user_id: UserId) -> Result<String, AuthError> {
        let config = &self.inner.config;
        let now = self.now_ms();
        self.sweep_expired_sessions(now).await?;
        // A collision of 122+ random bits is not expected; retrying keeps `create` from
        // ever being an overwrite all the same.
        for _ in 0..3 {
            let token = token::generate(config.session_token_format)
                .map_err(|e| AuthError::Internal(e.to_string()))?;
            let session = Session {
                token_hash: TokenHash::of(&token),
                user_id,
                created_at_ms: now,
                last_seen_ms: now,
                expires_at_ms: now.saturating_add(duration_ms(config.session_lifetime)),
            };
            match self
                .store()
                .create_session(session, config.single_session)
                .await
            {
                Ok(()) => return Ok(token),
                Err(StoreError::Duplicate) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(AuthError::Internal(
            "could not allocate a unique session token".into(),
        ))
    }

    async fn sweep_expired_sessions(&self, now: i64) -> Result<(), AuthError> {
        let due = self.inner.next_sweep_ms.load(Ordering::Relaxed);
        if now < due
            || self
                .inner
                .next_sweep_ms
                .compare_exchange(
                    due,
                    now + SWEEP_INTERVAL_MS,
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                )
                .is_err()
        {
            return Ok(());
        }
        let idle_cutoff = now.saturating_sub(duration_ms(self.inner.config.session_idle_timeout));
        let removed = self
            .store()
            .delete_expired_sessions(now, idle_cutoff)
            .await?;
        tracing::debug!(target: "tower_auth", removed, "swept expired sessions");
        Ok(())
    }

    async fn issue_reset_token(&self, user: &User) -> Result<String, AuthError> {
        let token =
            token::generate(TokenFormat::Uuid).map_err(|e| AuthError::Internal(e.to_string()))?;
        let reset = ResetToken {
            hash: TokenHash::of(&token),
            expires_at_ms: self
                .now_ms()
                .saturating_add(duration_ms(self.inner.config.reset_token_ttl)),
        };
        self.store()
            .update_user(user.id, UserUpdate::new().reset_token(Some(reset)))
            .await?;
        event("reset_requested", Some(user.id));
        Ok(token)
    }

    async fn redeem_reset_token(
        &self,
        email: Option<&str>,
        reset_token: &str,
        new_password: &str,
    ) -> Result<User, AuthError> {
        if reset_token.is_empty() || reset_token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::InvalidResetToken);
        }
        let hash = TokenHash::of(reset_token);
        let user = self
            .store()
            .find_user_by(UserLookup::ResetToken(&hash))
            .await?
            .filter(|u| {
                u.reset_token
                    .as_ref()
                    .is_some_and(|r| r.expires_at_ms > self.now_ms())
            })
            .filter(|u| email.is_none_or(|e| normalize_email(e).is_ok_and(|e| e == u.email)))
            .ok_or(AuthError::InvalidResetToken)?;
        self.check_password(new_password)?;
        let hashed = self.inner.hasher.hash(new_password.to_owned()).await?;
        // The read above was only a cheap early answer: the token is consumed atomically
        // here, so two concurrent redemptions cannot both succeed.
        let redeemed = self
            .store()
            .complete_password_reset(&hash, self.now_ms(), &hashed)
            .await?;
        if redeemed != Some(user.id) {
            return Err(AuthError::InvalidResetToken);
        }
        self.store()
            .reset_counter(&format!("login:account:{}", user.email))
            .await?;
        if self.inner.config.end_sessions_on_password_reset {
            self.store().delete_user_sessions(user.id).await?;
        }
        event("password_reset", Some(user.id));
        Ok(User {
            hashed_password: hashed,
            reset_token: None,
            ..user
        })
    }
}

/// Opens the store a database URL names (see [`Auth::connect`]); with `fresh`, drops its
/// tables first.
///
/// # Errors
/// An unsupported scheme, or the store's connect error.
pub async fn connect_store(url: &str, fresh: bool) -> Result<Arc<dyn Store>, AuthError> {
    let scheme = url.split(':').next().unwrap_or_default();
    match scheme {
        "memory" => Ok(Arc::new(crate::store::MemoryStore::new())),
        #[cfg(feature = "sqlite")]
        "sqlite" => Ok(Arc::new(if fresh {
            crate::store::SqliteStore::connect_fresh(url).await?
        } else {
            crate::store::SqliteStore::connect(url).await?
        })),
        #[cfg(feature = "postgres")]
        "postgres" | "postgresql" => Ok(Arc::new(if fresh {
            crate::store::PgStore::connect_fresh(url).await?
        } else {
            crate::store::PgStore::connect(url).await?
        })),
        _ => Err(AuthError::Internal(format!(
            "unsupported database URL scheme {scheme:?} (expected sqlite:, postgres: or memory:)"
        ))),
    }
}

/// Trims and lower-cases an email, and checks it has the shape `local@domain`.
pub(crate) fn normalize_email(raw: &str) -> Result<String, AuthError> {
    let email = raw.trim().to_lowercase();
    if email.is_empty() {
        return Err(AuthError::InvalidEmail("email must not be empty"));
    }
    if email.len() > MAX_EMAIL_BYTES {
        return Err(AuthError::InvalidEmail("email is too long"));
    }
    if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(AuthError::InvalidEmail(
            "email must not contain spaces or control characters",
        ));
    }
    match email.rsplit_once('@') {
        Some((local, domain)) if !local.is_empty() && !domain.is_empty() => Ok(email),
        _ => Err(AuthError::InvalidEmail("email must look like name@domain")),
    }
}

/// Emits an auth event. Only the event name and user id: never a password, hash or token.
fn event(name: &'static str, user_id: Option<UserId>) {
    tracing::info!(target: "tower_auth::event", event = name, user_id = user_id.map(|id| id.0));
}
