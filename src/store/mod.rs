//! Where users, sessions, emailed tokens and throttling counters live: the [`Store`] trait and its backends.
//!
//! [`Auth`](crate::Auth) is the only caller: handlers never talk to a store directly.
//! Every backend passes the same [`conformance`] suite.

use async_trait::async_trait;

use crate::auth_methods::AuthMethods;
use crate::user::{User, UserId};

mod changes;
#[cfg(any(test, feature = "test-util"))]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub mod conformance;
mod factors;
mod inputs;
mod memory;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod migrate;
#[cfg(feature = "postgres")]
mod pg_lookups;
#[cfg(feature = "postgres")]
mod postgres;
mod records;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;
#[cfg(feature = "sqlite")]
mod sqlite;

pub use crate::token::TokenHash;
pub use changes::{Change, ChangeFeed, ChangeHub, ChangeListener};
pub use factors::{Factor, FactorKind, FactorUpdate, Identity, NewFactor, NewIdentity};
pub use inputs::{EndSessions, NewUser, UserLookup, UserRecord, UserUpdate};
pub use memory::MemoryStore;
#[cfg(feature = "postgres")]
pub use postgres::{PgStore, PgStoreOptions};
pub use records::{
    Counter, EmailToken, ExpiryCutoffs, FirstLink, MailRequest, OutboxEntry, OutgoingMail,
    QueuedMail, Session, Swept, TokenPurpose,
};
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;

/// What can go wrong in a store. Every backend maps its own errors into this. `Debug` is
/// the message followed by its causes, on one line.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A unique constraint refused the write: an email already registered, or a token
    /// that collides with an existing one.
    #[error("a record with this key already exists")]
    Duplicate,
    /// The user (or row) the operation names does not exist.
    #[error("no such record")]
    NotFound,
    /// The backend cannot be reached right now: connection refused or lost, no pooled
    /// connection within the acquire timeout, the database shutting down or starting, a
    /// SQLite database locked past its busy timeout. Worth retrying shortly (HTTP 503 with
    /// `Retry-After`). The source is for operators' logs.
    #[error("store unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The backend failed (corrupt data, a full disk, a refused statement). The source is
    /// for operators' logs; it is never shown to HTTP clients.
    #[error("store backend failed")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl std::fmt::Debug for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        crate::error_chain::write_chain(self, f)
    }
}

impl StoreError {
    /// Wraps any backend error.
    pub fn backend(err: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Backend(Box::new(err))
    }
}

/// Persistence for accounts, sessions, emailed tokens and throttling counters.
///
/// The typed counterpart of the seed's `DB` class (`add_user`, `find_user_by`,
/// `update_user`), plus a few general operations on sessions, tokens and counters that
/// every flow shares: a new email flow is a new [`TokenPurpose`], not a new method.
/// Implementations must be safe to share between tasks and, for networked backends,
/// between processes: uniqueness is enforced by the backend itself (a `UNIQUE`
/// constraint), never by check-then-insert, and each method is atomic.
///
/// Times are milliseconds since the Unix epoch, supplied by the caller's clock.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Creates a user, and with [`NewUser::first_link`] stores that token (for the new
    /// account, sent to its email) and queues its messages in the same transaction.
    ///
    /// # Errors
    /// [`StoreError::Duplicate`] when the email is already registered (or, in theory, the
    /// first link's token hash collides); nothing is stored then.
    async fn add_user(&self, user: NewUser) -> Result<User, StoreError>;

    /// Finds one user and its password hash, or `None`.
    async fn find_user_by(&self, lookup: UserLookup<'_>) -> Result<Option<UserRecord>, StoreError>;

    /// Applies `update` to the user `id`, in one transaction (with the sessions it ends).
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when there is no such user; [`StoreError::Duplicate`] when a
    /// new email belongs to another user (nothing is changed then).
    async fn update_user(&self, id: UserId, update: UserUpdate) -> Result<(), StoreError>;

    /// Sets the user's password hash to `new` only if it is still `current`: true when it
    /// was replaced. An upgrade of a hash to new parameters uses it, so it can never undo a
    /// password change that came in between.
    async fn replace_password_hash(
        &self,
        id: UserId,
        current: &str,
        new: &str,
    ) -> Result<bool, StoreError>;

    /// Deletes a user with every session and token of theirs; true when the user existed.
    async fn delete_user(&self, id: UserId) -> Result<bool, StoreError>;

    /// Stores a new session. With `replace_others`, the user's other sessions are removed
    /// in the same transaction (one session per user).
    ///
    /// # Errors
    /// [`StoreError::Duplicate`] on a token-hash collision (never overwrites);
    /// [`StoreError::NotFound`] when the user does not exist.
    async fn create_session(
        &self,
        session: Session,
        replace_others: bool,
    ) -> Result<(), StoreError>;

    /// Finds a session and its user in one lookup, expired or not: the caller decides.
    async fn find_session(&self, token: &TokenHash) -> Result<Option<(Session, User)>, StoreError>;

    /// Records that the session was used at `now_ms`.
    async fn touch_session(&self, token: &TokenHash, now_ms: i64) -> Result<(), StoreError>;

    /// Deletes one session; true when it existed.
    async fn delete_session(&self, token: &TokenHash) -> Result<bool, StoreError>;

    /// Deletes every session of a user, or every one but `except`; returns how many went.
    async fn delete_user_sessions(
        &self,
        user_id: UserId,
        except: Option<&TokenHash>,
    ) -> Result<u64, StoreError>;

    /// Every session of a user, expired or not (the caller decides), in no particular order.
    async fn list_user_sessions(&self, user_id: UserId) -> Result<Vec<Session>, StoreError>;

    /// Records that the session's user proved who they are at `now_ms` with `methods`
    /// (sets `authenticated_at_ms`, adds `methods` to the session's); true when the session
    /// exists.
    async fn reauthenticate_session(
        &self,
        token: &TokenHash,
        now_ms: i64,
        methods: AuthMethods,
    ) -> Result<bool, StoreError>;

    /// Stores an emailed token and queues the `mail` that carries it, in one transaction:
    /// a token is never stored without its message, nor a message queued for a token that
    /// was not. With `keep_others` `Some(n)`, the user's other tokens of the same purpose
    /// are removed in the same transaction but for the newest `n` (`Some(0)`: a new reset
    /// link voids the last one; a small `n` bounds trusted devices); `None` keeps them. With
    /// `answers`, the outbox id of the [`MailRequest`] the link answers, that request is
    /// removed in the same transaction, and nothing is stored if it is no longer there
    /// (another worker answered it first).
    ///
    /// # Errors
    /// [`StoreError::Duplicate`] on a token-hash collision (never overwrites);
    /// [`StoreError::NotFound`] when the user does not exist or the request `answers`
    /// names is gone; nothing is stored then.
    async fn create_token(
        &self,
        token: EmailToken,
        keep_others: Option<u32>,
        mail: &[OutgoingMail],
        answers: Option<i64>,
    ) -> Result<(), StoreError>;

    /// The token with this hash and purpose and its user, if it is valid at `now_ms`: not
    /// expired (`expires_at_ms > now_ms`) and its `account_email` still the user's email.
    /// Reads only; [`redeem_token`](Self::redeem_token) is what consumes a token.
    async fn find_token(
        &self,
        hash: &TokenHash,
        purpose: TokenPurpose,
        now_ms: i64,
    ) -> Result<Option<(EmailToken, User)>, StoreError>;

    /// Atomically redeems a token: if it is valid as [`find_token`](Self::find_token)
    /// says, deletes it, applies `update` to its user in the same transaction, and returns
    /// the token and the user as updated. Of two concurrent redemptions of one token,
    /// exactly one gets `Some`.
    ///
    /// # Errors
    /// [`StoreError::Duplicate`] when `update` sets an email another user has; the token
    /// is then left as it was.
    async fn redeem_token(
        &self,
        hash: &TokenHash,
        purpose: TokenPurpose,
        now_ms: i64,
        update: UserUpdate,
    ) -> Result<Option<(EmailToken, User)>, StoreError>;

    /// Queues messages in the durable outbox, due now, in one transaction.
    async fn queue_mail(&self, mail: &[OutgoingMail]) -> Result<(), StoreError>;

    /// Records a "mail me a link" request in the outbox, due now, for a delivery worker to
    /// answer; [`claim_mail`](Self::claim_mail) hands it out like a message.
    async fn queue_mail_request(&self, request: &MailRequest) -> Result<(), StoreError>;

    /// Claims up to `limit` outbox entries (messages and requests) due at `now_ms` (not
    /// expired, not claimed by anyone else), oldest first: each one's attempt count goes
    /// up by one and it is not due again until `lease_until_ms`, so no other worker (of
    /// this or another instance) sends it meanwhile. Atomic; on PostgreSQL, concurrent claims skip each other's rows
    /// (`FOR UPDATE SKIP LOCKED`) rather than wait.
    async fn claim_mail(
        &self,
        now_ms: i64,
        lease_until_ms: i64,
        limit: u32,
    ) -> Result<Vec<QueuedMail>, StoreError>;

    /// Removes a delivered (or undeliverable) message, or a request that needs no answer;
    /// true when it was there.
    async fn finish_mail(&self, id: i64) -> Result<bool, StoreError>;

    /// Makes a claimed entry due again at `next_attempt_ms` (a failed attempt).
    async fn retry_mail(&self, id: i64, next_attempt_ms: i64) -> Result<(), StoreError>;

    /// Adds one event to the fixed-window counter `key` and returns it. A window that ended
    /// at or before `now_ms` starts over at 1 and ends at `now_ms + window_ms`. Atomic, so
    /// instances sharing a database share the count.
    async fn increment_counter(
        &self,
        key: &str,
        now_ms: i64,
        window_ms: i64,
    ) -> Result<Counter, StoreError>;

    /// Reads a counter; `None` when absent or its window ended at or before `now_ms`.
    async fn get_counter(&self, key: &str, now_ms: i64) -> Result<Option<Counter>, StoreError>;

    /// Takes back one event that [`increment_counter`](Self::increment_counter) counted in
    /// the window ending at `window_ends_ms` (an attempt claimed up front that turned out
    /// not to count). Does nothing when that window has ended and another begun, or the
    /// count is already 0, so it can never take back another window's event. Atomic.
    async fn release_counter(&self, key: &str, window_ends_ms: i64) -> Result<(), StoreError>;

    /// Removes a counter.
    async fn reset_counter(&self, key: &str) -> Result<(), StoreError>;

    /// Deletes what has expired at `cutoffs.now_ms`: sessions past their absolute expiry
    /// (`expires_at_ms <= now_ms`) or idle (`last_seen_ms <= idle_cutoff_ms`, or
    /// `<= remembered_idle_cutoff_ms` for remembered ones), tokens past theirs
    /// (`expires_at_ms <= now_ms`), counters whose window has ended
    /// (`window_ends_ms <= now_ms`) and outbox entries past their expiry. Returns how many of
    /// each.
    async fn delete_expired(&self, cutoffs: ExpiryCutoffs) -> Result<Swept, StoreError>;

    /// Adds second factors to an account and returns their ids, in one transaction. With
    /// `replace`, the account's factors of that kind are removed first, in the same
    /// transaction (new recovery codes void the old; a new authenticator app enrolment
    /// replaces an unfinished one).
    ///
    /// # Errors
    /// [`StoreError::Duplicate`] when a credential id is another factor's (of any account);
    /// [`StoreError::NotFound`] when the user does not exist; nothing is stored then.
    async fn add_factors(
        &self,
        factors: Vec<NewFactor>,
        replace: Option<(UserId, FactorKind)>,
    ) -> Result<Vec<i64>, StoreError>;

    /// The second factors of an account, oldest first.
    async fn list_factors(&self, user_id: UserId) -> Result<Vec<Factor>, StoreError>;

    /// The factor with this credential id (a passkey), and its user.
    async fn find_factor_by_credential(
        &self,
        credential_id: &str,
    ) -> Result<Option<(Factor, User)>, StoreError>;

    /// Applies `update` to factor `id` of `user_id`; false when there is no such factor or
    /// its counter is not below [`FactorUpdate::counter_below`].
    async fn update_factor(
        &self,
        user_id: UserId,
        id: i64,
        update: FactorUpdate,
    ) -> Result<bool, StoreError>;

    /// Deletes the factors of `user_id` of `kind` (every kind: `None`), or only factor `id`
    /// when given; returns how many went.
    async fn delete_factors(
        &self,
        user_id: UserId,
        kind: Option<FactorKind>,
        id: Option<i64>,
    ) -> Result<u64, StoreError>;

    /// Links a provider identity to an account; returns its id.
    ///
    /// # Errors
    /// [`StoreError::Duplicate`] when (provider, subject) is linked already (to any
    /// account); [`StoreError::NotFound`] when the user does not exist.
    async fn add_identity(&self, identity: NewIdentity) -> Result<i64, StoreError>;

    /// The identity (provider, subject) and the account it is linked to.
    async fn find_identity(
        &self,
        provider: &str,
        subject: &str,
    ) -> Result<Option<(Identity, User)>, StoreError>;

    /// The identities linked to an account, oldest first.
    async fn list_identities(&self, user_id: UserId) -> Result<Vec<Identity>, StoreError>;

    /// Unlinks identity `id` of `user_id`; false when there is no such identity.
    async fn delete_identity(&self, user_id: UserId, id: i64) -> Result<bool, StoreError>;

    /// How this process hears of changes to users and sessions, which decides whether
    /// [`Auth`](crate::Auth) may keep session lookups in memory (see
    /// [`AuthConfig::session_cache_capacity`](crate::AuthConfig::session_cache_capacity)).
    /// Asked once when the cache starts, and again whenever its [`ChangeListener`] is lost.
    ///
    /// The default, [`ChangeFeed::Unheard`], never caches: right for any store that other
    /// processes may write without this one hearing of it. A store that only its own
    /// process writes answers [`ChangeFeed::InProcess`] and publishes each committed change
    /// on a [`ChangeHub`].
    ///
    /// # Errors
    /// The feed cannot be opened right now. It is asked for again, with backoff; sessions
    /// are looked up in the store meanwhile.
    async fn change_feed(&self) -> Result<ChangeFeed, StoreError> {
        Ok(ChangeFeed::Unheard)
    }

    /// Checks quickly (within about a second) whether the backend can be reached now,
    /// without waiting for anything a pool would wait for: [`Auth`](crate::Auth) asks when
    /// a call failed as [`StoreError::Unavailable`] or is slow, and while the answer is an
    /// error it answers every request 503 at once instead of letting each wait out its
    /// timeouts. The default, for stores with nothing to reach, is always `Ok`.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the backend cannot be reached.
    async fn probe(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Opens the store a database URL names: SQLite for `sqlite:` URLs, PostgreSQL for
/// `postgres:`/`postgresql:` URLs, an in-memory store for `memory:` (what
/// [`Auth::connect`](crate::Auth::connect) does with its URL). With `fresh`, drops the
/// crate's tables first: every account and session is lost (the seed's server starts so).
///
/// # Errors
/// The store's connect error; [`StoreError::Backend`] with a
/// [`ConfigError::UnsupportedScheme`](crate::ConfigError::UnsupportedScheme) source for a
/// scheme no store handles (or whose cargo feature is off).
pub async fn connect(url: &str, fresh: bool) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    use std::sync::Arc;
    let scheme = url.split(':').next().unwrap_or_default();
    // A memory store starts empty anyway: only the database stores have tables to drop.
    #[cfg(not(any(feature = "sqlite", feature = "postgres")))]
    let _ = fresh;
    match scheme {
        "memory" => Ok(Arc::new(MemoryStore::new())),
        #[cfg(feature = "sqlite")]
        "sqlite" => Ok(Arc::new(if fresh {
            SqliteStore::connect_fresh(url).await?
        } else {
            SqliteStore::connect(url).await?
        })),
        #[cfg(feature = "postgres")]
        "postgres" | "postgresql" => Ok(Arc::new(if fresh {
            PgStore::connect_fresh(url).await?
        } else {
            PgStore::connect(url).await?
        })),
        _ => Err(StoreError::Backend(Box::new(
            crate::config::ConfigError::UnsupportedScheme(scheme.to_owned()),
        ))),
    }
}

/// Maps a sqlx error to a [`StoreError`]: unique violations are `Duplicate`, foreign-key
/// violations `NotFound`, and what a retry may cure (see [`StoreError::Unavailable`])
/// `Unavailable`.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn map_sqlx(err: sqlx::Error) -> StoreError {
    match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Duplicate,
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::NotFound,
        sqlx::Error::Database(db) if db.code().is_some_and(|c| is_transient_code(&c)) => {
            StoreError::Unavailable(Box::new(err))
        }
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => StoreError::Unavailable(Box::new(err)),
        _ => StoreError::backend(err),
    }
}

/// One failure of a batched statement, reported to every caller the statement answered
/// for: each gets a [`StoreError`] of the same kind (so a database that is down is still a
/// 503 for all of them) whose source is the one failure.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
#[derive(Debug, Clone)]
pub(crate) struct SharedError(std::sync::Arc<StoreError>);

#[cfg(any(feature = "sqlite", feature = "postgres"))]
impl SharedError {
    pub(crate) fn new(err: StoreError) -> Self {
        Self(std::sync::Arc::new(err))
    }

    /// The failure as one caller's error, of the kind the statement's was.
    pub(crate) fn copy(&self) -> StoreError {
        let source = Box::new(self.clone());
        match *self.0 {
            StoreError::Duplicate => StoreError::Duplicate,
            StoreError::NotFound => StoreError::NotFound,
            StoreError::Unavailable(_) => StoreError::Unavailable(source),
            StoreError::Backend(_) => StoreError::Backend(source),
        }
    }
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
impl std::fmt::Display for SharedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "batched statement failed: {}", self.0)
    }
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
impl std::error::Error for SharedError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

/// Database error codes that mean "not now" rather than "never": PostgreSQL's (five
/// characters) connection exceptions (class 08), too many connections (53300) and shutdown
/// or start-up (57P01-57P03); SQLite's (numbers below 10,000) busy and locked (5, 6 and
/// their extended codes).
#[cfg(any(feature = "sqlite", feature = "postgres"))]
fn is_transient_code(code: &str) -> bool {
    if code.len() == 5 {
        return code.starts_with("08") || matches!(code, "53300" | "57P01" | "57P02" | "57P03");
    }
    code.parse::<i32>()
        .is_ok_and(|c| c < 10_000 && matches!(c & 0xff, 5 | 6))
}

/// Converts a stored count back to `u32`, treating impossible values as corrupt data.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn count_from_db(count: i64) -> Result<u32, StoreError> {
    u32::try_from(count).map_err(|_| StoreError::Backend("counter out of range".into()))
}
