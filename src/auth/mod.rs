//! [`Auth`]: the service. Handlers talk to this, never to a [`Store`].
//!
//! One file per concern:
//!
//! - `client.rs`: [`Client`], who asks, taken by every flow;
//! - `login.rs`: logging in and out, the flows a login form or handler uses;
//! - `dummy_hash.rs`: what an unknown email is verified against;
//! - `rehash.rs`: upgrading a stored hash to the configured algorithm after a login;
//! - `throttle.rs`: per-account and per-client login throttling;
//! - `trusted_device.rs`: clients that logged in before, whom strangers cannot lock out;
//! - `fair_share.rs`: each client's bounded share of the hashing pool;
//! - `session.rs`: starting and finding sessions;
//! - `session_cache.rs`: session lookups kept in memory, coherent with the store;
//! - `session_list.rs`: a user's sessions as they see them, and ending them;
//! - `sweep.rs`: deleting expired records, as a task of its own;
//! - `second_factor.rs`: logins that wait for a second factor, and finishing them;
//! - `totp.rs`: authenticator apps (enrolment, codes, removal);
//! - `passkeys.rs`: passkeys (WebAuthn): registration, login, second factor;
//! - `recovery_codes.rs`: single-use codes for a lost authenticator;
//! - `sudo.rs`: reauthentication, and the recent authentication sensitive actions need;
//! - `tokens.rs`: secrets sent to a person (one model for every emailed flow);
//! - `reset.rs`: password reset on top of those tokens;
//! - `oidc.rs`: signing in with OpenID Connect providers, and linking identities;
//! - `outbox.rs`: mail, from a flow to the durable outbox, and the worker that delivers it;
//! - `confirmation.rs`: email confirmation, and registration's mail;
//! - `magic_link.rs`: logging in with a mailed link;
//! - `email_change.rs`: moving an account to a new address;
//! - `breaker.rs`: answering 503 at once while the database cannot be reached;
//! - `background.rs`: work done after the response, and waiting for it;
//! - `account.rs`: registration, password change, account deletion;
//! - `seed.rs`: the seed's own method names, kept for its contract and tests;
//! - `email.rs`: email normalization;
//! - `error.rs`: [`AuthError`].

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use crate::clock::{Clock, SystemClock};
use crate::config::AuthConfig;
use crate::password::{ConfiguredHasher, HashPool, PasswordHasher};
use crate::store::{Store, StoreError};
use crate::user::UserId;

mod account;
mod background;
mod breaker;
mod client;
mod confirmation;
mod cookie;
mod dummy_hash;
mod email;
mod email_change;
mod error;
mod fair_share;
mod login;
mod magic_link;
#[cfg(feature = "oidc")]
mod oidc;
mod outbox;
#[cfg(feature = "passkeys")]
mod passkeys;
mod recovery_codes;
mod rehash;
mod reset;
mod sealing;
mod second_factor;
mod seed;
mod session;
mod session_cache;
mod session_list;
mod sudo;
mod sweep;
mod throttle;
mod tokens;
mod totp;
mod trusted_device;

use crate::config::ConfigError;
pub use client::Client;
pub use confirmation::Confirmed;
pub use cookie::SessionCookie;
pub(crate) use email::{normalize_email, normalize_new_email};
pub use error::AuthError;
pub use login::{LoggedIn, LoginAttempt, Verified};
#[cfg(feature = "oidc")]
pub use oidc::{IdentityInfo, ProviderCallback, ProviderRedirect, ProviderSignIn};
#[cfg(feature = "passkeys")]
pub use passkeys::{PasskeyAdded, PasskeyChallenge, PasskeyInfo};
pub use recovery_codes::RecoveryCodes;
pub use reset::ResetRequested;
pub use second_factor::{SecondFactorPending, SecondFactorProof};
pub use session_cache::SessionCacheStats;
pub use session_list::SessionInfo;
pub use totp::TotpEnrolment;

/// Longest session or emailed token looked up; anything longer cannot be one of ours.
const MAX_TOKEN_BYTES: usize = 128;

/// The authentication service: register, log in, sessions, password reset.
///
/// Cheap to clone (one `Arc`). Build one per application and share it:
///
/// ```
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use tower_auth::{Auth, AuthConfig, LoginAttempt, Mailer, MemoryStore};
/// let mailer = Mailer::dev_outbox("target/outbox", "app@localhost", "http://localhost:3000")?;
/// let mut config = AuthConfig::hardened_with(mailer);
/// config.bcrypt_cost = 4; // tests only: the presets use 12
/// config.require_confirmed_email = false; // this example skips the confirmation mail
/// let auth = Auth::new(MemoryStore::new(), config)?;
/// auth.register_user("bob@example.com", "correct horse battery staple").await?;
/// let client = tower_auth::Client::new(None);
/// let logged_in = auth
///     .log_in(&client, LoginAttempt::new("bob@example.com", "correct horse battery staple"))
///     .await?;
/// let user = auth.get_user_from_session_id(Some(&logged_in.session_id)).await?;
/// assert_eq!(user.map(|u| u.email).as_deref(), Some("bob@example.com"));
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
    /// Dummy hashes of the parameters stored hashes usually have.
    dummies: dummy_hash::DummyHashes,
    /// The parameters of the hashes the configured hasher makes (`None` for a hasher of
    /// the application's own, until its dummy hash is made).
    configured_params: Option<String>,
    /// Set once the "client address unknown" warning has been logged.
    warned_no_client_ip: AtomicBool,
    /// Set once the "browsers drop this Secure cookie" warning has been logged.
    warned_insecure_cookie: AtomicBool,
    /// Users whose password hash is being upgraded right now (one upgrade at a time each).
    rehashing: std::sync::Mutex<std::collections::HashSet<UserId>>,
    /// Places each client holds in the hashing pool.
    hash_shares: crate::per_ip::PerIp,
    /// Registrations each client is hashing.
    registration_shares: crate::per_ip::PerIp,
    /// Places for registrations in the hashing pool, all clients together.
    registration_places: Arc<tokio::sync::Semaphore>,
    /// Work done after the response.
    background: Arc<background::Background>,
    /// Set once the mail delivery worker runs.
    mail_worker_started: AtomicBool,
    /// Wakes the mail delivery worker when a message is queued.
    mail_wake: Arc<tokio::sync::Notify>,
    /// Held while this instance delivers a batch, so a flush waits for the worker's.
    delivering: tokio::sync::Mutex<()>,
    /// Sign-in providers' metadata, discovered once each.
    #[cfg(feature = "oidc")]
    discovered: oidc::Discovered,
    /// The passkey relying party (`None` when passkeys are off).
    #[cfg(feature = "passkeys")]
    webauthn: Option<Arc<webauthn_rs::Webauthn>>,
    /// Session lookups kept in memory (`None` when the config turns the cache off).
    session_cache: Option<Arc<session_cache::SessionCache>>,
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
    /// Replaces the clock (default: [`SystemClock`]); tests use a
    /// [`ManualClock`](crate::clock::ManualClock).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Replaces the password hasher (default: [`ConfiguredHasher`], from the config's
    /// `hash_algorithm`, `bcrypt_cost` and `argon2`).
    pub fn password_hasher(mut self, hasher: impl PasswordHasher) -> Self {
        self.hasher = Some(Arc::new(hasher));
        self
    }

    /// Checks the configuration ([`AuthConfig::validate`]) and builds the service.
    ///
    /// # Errors
    /// The first [`ConfigError`] found: a configuration that would fail later, on a
    /// user's request, is refused here instead.
    pub fn build(self) -> Result<Auth, ConfigError> {
        self.config.validate()?;
        let configured = ConfiguredHasher::from_config(&self.config);
        let configured_params = self.hasher.is_none().then(|| configured.params_key());
        let hasher = self.hasher.unwrap_or_else(|| Arc::new(configured));
        let pool = HashPool::new(
            hasher,
            self.config.effective_hash_permits(),
            self.config.hash_queue,
        );
        #[cfg(feature = "passkeys")]
        let webauthn = passkeys::relying_party(&self.config)?;
        let auth = Auth {
            inner: Arc::new(Inner {
                #[cfg(feature = "passkeys")]
                webauthn,
                #[cfg(feature = "oidc")]
                discovered: oidc::Discovered::default(),
                store: Arc::new(breaker::Breaker::new(self.store)),
                hasher: pool,
                clock: self.clock,
                dummy_hash: tokio::sync::OnceCell::new(),
                dummies: dummy_hash::DummyHashes::default(),
                configured_params,
                warned_no_client_ip: AtomicBool::new(false),
                warned_insecure_cookie: AtomicBool::new(false),
                rehashing: std::sync::Mutex::default(),
                hash_shares: crate::per_ip::PerIp::default(),
                registration_shares: crate::per_ip::PerIp::default(),
                registration_places: fair_share::registration_places(self.config.hash_queue),
                background: Arc::default(),
                mail_worker_started: AtomicBool::new(false),
                mail_wake: Arc::default(),
                delivering: tokio::sync::Mutex::new(()),
                session_cache: (self.config.session_cache_capacity > 0).then(|| {
                    session_cache::SessionCache::new(
                        self.config.session_cache_capacity,
                        self.config.session_cache_max_age,
                    )
                }),
                config: self.config,
            }),
        };
        // Mail left in the outbox (by an earlier run, or another instance) goes out now.
        auth.start_mail_worker();
        auth.start_sweeper();
        Ok(auth)
    }
}

impl Auth {
    /// An `Auth` over `store` with `config`.
    ///
    /// # Errors
    /// A [`ConfigError`] when `config` is refused (see [`AuthConfig::validate`]).
    pub fn new(store: impl Store, config: AuthConfig) -> Result<Self, ConfigError> {
        Self::builder(store, config).build()
    }

    /// A builder over `store` with `config`, for a custom clock or hasher. (There is no
    /// default configuration to fall back on: the hardened preset needs a
    /// [`Mailer`](crate::Mailer), see [`AuthConfig::hardened_with`].)
    pub fn builder(store: impl Store, config: AuthConfig) -> AuthBuilder {
        Self::builder_shared(Arc::new(store), config)
    }

    /// A builder over a store already behind an `Arc`.
    pub fn builder_shared(store: Arc<dyn Store>, config: AuthConfig) -> AuthBuilder {
        AuthBuilder {
            store,
            config,
            clock: Arc::new(SystemClock),
            hasher: None,
        }
    }

    /// Connects to the database named by `url` and returns an `Auth` over it: SQLite for
    /// `sqlite:` URLs, PostgreSQL for `postgres:`/`postgresql:` URLs, and an in-memory
    /// store for `memory:`.
    ///
    /// # Errors
    /// [`AuthError::Config`] for a refused configuration or an unsupported scheme (or one
    /// whose cargo feature is off); [`AuthError::Store`] when the store cannot connect.
    pub async fn connect(url: &str, config: AuthConfig) -> Result<Self, AuthError> {
        config.validate()?;
        let store = crate::store::connect(url, false)
            .await
            .map_err(|err| match err {
                // An unsupported scheme is the caller's configuration, not the store's.
                StoreError::Backend(source) => match source.downcast::<ConfigError>() {
                    Ok(config) => AuthError::Config(*config),
                    Err(source) => AuthError::Store(StoreError::Backend(source)),
                },
                other => AuthError::Store(other),
            })?;
        Ok(Self::builder_shared(store, config).build()?)
    }

    /// The configuration in force.
    pub fn config(&self) -> &AuthConfig {
        &self.inner.config
    }

    /// The hashing pool (its current load is useful in metrics).
    pub fn hash_pool(&self) -> &HashPool {
        &self.inner.hasher
    }

    /// What the session cache holds and did; `None` when the config turns it off
    /// ([`AuthConfig::session_cache_capacity`] 0).
    pub fn session_cache_stats(&self) -> Option<SessionCacheStats> {
        self.inner.session_cache.as_ref().map(|cache| cache.stats())
    }

    /// The flag of the once-only warning that a `Secure` cookie is served over plain HTTP.
    pub(crate) fn insecure_cookie_warned(&self) -> &AtomicBool {
        &self.inner.warned_insecure_cookie
    }

    fn store(&self) -> &dyn Store {
        &*self.inner.store
    }

    /// The user with id `user_id`, or [`AuthError::UnknownUser`].
    async fn user_by_id(&self, user_id: UserId) -> Result<crate::user::User, AuthError> {
        Ok(self
            .store()
            .find_user_by(crate::store::UserLookup::Id(user_id))
            .await?
            .ok_or(AuthError::UnknownUser)?
            .user)
    }

    fn now_ms(&self) -> i64 {
        self.inner.clock.now_ms()
    }
}

/// Emits an auth event. Only the event name and user id: never a password, hash or token.
fn event(name: &'static str, user_id: Option<UserId>) {
    tracing::info!(target: "tower_auth::event", event = name, user_id = user_id.map(|id| id.0));
}
