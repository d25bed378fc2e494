//! The scale-out store: PostgreSQL through sqlx, for several app instances on one database.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};

use super::pg_lookups::SessionLookups;
use super::sql::{
    factor_columns, identity_columns, impl_sql_store, outbox_columns, session_columns,
    token_columns, token_returning, user_columns, valid_token,
};
use super::{Change, ChangeFeed, ChangeHub, ChangeListener, Session, StoreError, migrate};
use crate::token::TokenHash;
use crate::user::{User, UserId};

/// The channel the triggers of migration 4 notify with the id of each user whose account
/// or sessions changed.
const CHANGES_CHANNEL: &str = "tower_auth_changes";

/// Sweeps of expired sessions set this for their transaction: every instance refuses an
/// expired session on its own, so their removal is not announced.
const QUIET_SWEEP: Option<&str> = Some("SELECT set_config('tower_auth.quiet', 'on', true)");

/// A pooled connection idle at least this long is pinged before it is used.
const PING_WHEN_IDLE_FOR: Duration = Duration::from_secs(1);

/// Pool settings for [`PgStore::connect_with`].
#[derive(Debug, Clone)]
#[non_exhaustive]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub struct PgStoreOptions {
    /// Most connections the pool opens (default 10).
    pub max_connections: u32,
    /// Connections kept open while idle (default 1).
    pub min_connections: u32,
    /// How long a request waits for a free connection before failing (default 5 s).
    pub acquire_timeout: Duration,
    /// How long an idle connection is kept (default 10 min).
    pub idle_timeout: Option<Duration>,
    /// Most statements looking sessions up at once (default 2). Lookups that arrive while
    /// this many are in flight wait for the next statement, which answers all of them:
    /// fewer statements make bigger batches and less work for
    /// the database; more let one slow statement hold up fewer lookups (0 counts as 1).
    /// Only lookups the session cache does not answer reach the database.
    pub session_lookup_statements: usize,
}

impl Default for PgStoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
            min_connections: 1,
            acquire_timeout: Duration::from_secs(5),
            idle_timeout: Some(Duration::from_secs(600)),
            session_lookup_statements: 2,
        }
    }
}

/// A [`Store`](crate::Store) on PostgreSQL (`postgres://user:pass@host/db`).
///
/// Connecting brings tower-auth's own tables (`auth_*`) and migration record
/// (`auth_schema_migrations`) up to date, beside whatever else the database holds; a
/// database made by tower-auth 0.1 is upgraded in place. Every rule that must
/// hold across instances (unique emails, single-use reset tokens, throttling counters) is
/// enforced by the database in one statement or transaction.
#[derive(Clone)]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub struct PgStore {
    pool: PgPool,
    /// This process's own changes, published as they commit; other processes' arrive
    /// through [`CHANGES_CHANNEL`].
    changes: ChangeHub,
    /// Uncached session lookups, in batches.
    lookups: Arc<SessionLookups>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").finish_non_exhaustive()
    }
}

impl PgStore {
    /// The `application_name` of the connection each instance keeps open to hear other
    /// instances' changes (`LISTEN tower_auth_changes`), as `pg_stat_activity` shows it.
    pub const CHANGE_LISTENER_NAME: &'static str = "tower-auth change listener";

    /// Connects with default pool settings and brings the schema up to date.
    ///
    /// # Errors
    /// A malformed URL, an unreachable server, or a failed migration.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, PgStoreOptions::default()).await
    }

    /// Connects with the given pool settings and brings the schema up to date.
    ///
    /// # Errors
    /// As [`connect`](Self::connect).
    pub async fn connect_with(url: &str, options: PgStoreOptions) -> Result<Self, StoreError> {
        let pool = Self::pool_for(url, &options).await?;
        Self::with_lookup_statements(pool, options.session_lookup_statements).await
    }

    /// Like [`connect`](Self::connect), but first drops every table this crate owns: all
    /// users and sessions are lost.
    ///
    /// # Errors
    /// As [`connect`](Self::connect).
    pub async fn connect_fresh(url: &str) -> Result<Self, StoreError> {
        let pool = Self::pool_for(url, &PgStoreOptions::default()).await?;
        // Upgrade first, so that the tables of a 0.1 database go too.
        migrate::postgres::run(&pool).await?;
        migrate::postgres::drop_all(&pool).await?;
        Self::from_pool(pool).await
    }

    /// Wraps an existing pool, running migrations.
    ///
    /// # Errors
    /// A failed migration.
    pub async fn from_pool(pool: PgPool) -> Result<Self, StoreError> {
        Self::with_lookup_statements(pool, PgStoreOptions::default().session_lookup_statements)
            .await
    }

    async fn with_lookup_statements(pool: PgPool, statements: usize) -> Result<Self, StoreError> {
        migrate::postgres::run(&pool).await?;
        Ok(Self {
            lookups: Arc::new(SessionLookups::new(pool.clone(), session_row, statements)),
            pool,
            changes: ChangeHub::default(),
        })
    }

    /// The underlying pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn pool_for(url: &str, options: &PgStoreOptions) -> Result<PgPool, StoreError> {
        let connect = PgConnectOptions::from_str(url).map_err(StoreError::backend)?;
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .min_connections(options.min_connections)
            .acquire_timeout(options.acquire_timeout)
            .idle_timeout(options.idle_timeout)
            // A connection is checked with a round trip before use only when it has been
            // idle a while (the server may have closed it meanwhile). Checking every one
            // would double the round trips of a busy server: an uncached session lookup is
            // one statement. A connection that died while in use fails its statement and is
            // dropped by the pool.
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= PING_WHEN_IDLE_FOR {
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            })
            .connect_with(connect.clone())
            .await;
        match pool {
            Ok(pool) => Ok(pool),
            Err(pooled) => Err(connect_failed(&connect, pooled).await),
        }
    }
}

/// Why connecting failed, with where to (never the password) and what to check.
#[derive(Debug, thiserror::Error)]
#[error(
    "could not connect to PostgreSQL at {host}:{port} (database {database:?}, user {user:?}): \
     {cause}; check that the server runs and that DATABASE_URL names it"
)]
struct ConnectFailed {
    host: String,
    port: u16,
    database: String,
    user: String,
    cause: String,
}

/// The pool reports a server that refuses connections only as a timeout (it retries until
/// its acquire timeout): one direct attempt finds the cause to report.
async fn connect_failed(options: &PgConnectOptions, pooled: sqlx::Error) -> StoreError {
    let cause = if matches!(pooled, sqlx::Error::PoolTimedOut) {
        match connect_directly(options, Duration::from_secs(2)).await {
            Ok(()) => "no free connection within the acquire timeout".to_owned(),
            Err(Some(err)) => err.to_string(),
            Err(None) => "no answer within the acquire timeout".to_owned(),
        }
    } else {
        pooled.to_string()
    };
    let failed = ConnectFailed {
        host: options.get_host().to_owned(),
        port: options.get_port(),
        database: options.get_database().unwrap_or("postgres").to_owned(),
        user: options.get_username().to_owned(),
        cause,
    };
    match super::map_sqlx(pooled) {
        StoreError::Unavailable(_) => StoreError::Unavailable(Box::new(failed)),
        _ => StoreError::Backend(Box::new(failed)),
    }
}

/// Opens one connection outside the pool (whose attempts to connect to a server that
/// refuses are retried until its acquire timeout) and closes it: the server's own answer,
/// or `None` when there was none `within`.
async fn connect_directly(
    options: &PgConnectOptions,
    within: Duration,
) -> Result<(), Option<sqlx::Error>> {
    use sqlx::Connection as _;
    match tokio::time::timeout(within, sqlx::PgConnection::connect_with(options)).await {
        Ok(Ok(connection)) => {
            let _ = connection.close().await;
            Ok(())
        }
        Ok(Err(err)) => Err(Some(err)),
        Err(_) => Err(None),
    }
}

/// An instance that has heard nothing on the channel for this long notifies it with a ping
/// of its own, so that a listener always has something to hear. Only after a silence: with
/// N instances, one ping a second or so serves them all, not N (each heard by N).
const PING_INTERVAL: Duration = Duration::from_secs(1);
/// Changes heard but not yet handed to the session cache. A cache that falls this far
/// behind is set aside (the listener counts as lost) rather than let the queue grow.
const BACKLOG: usize = 4096;
/// A listener that hears nothing for this long (not even the pings) counts as lost, even
/// if its connection looks open (a half-open TCP connection, a pooler that does not pass
/// `LISTEN` through): the cache is set aside rather than trusted on silence.
const SILENCE_LIMIT: Duration = Duration::from_secs(3);
/// The payload of the pings; anything that is not a user id is ignored as a change.
const PING: &str = "ping";

/// Every instance's changes, as the triggers on `auth_users` and `auth_sessions` announce
/// them (`NOTIFY`, in the transaction that made the change). A task reads the `LISTEN`
/// connection and hands each payload over; another pings the channel through the pool.
struct PgChangeListener {
    payloads: tokio::sync::mpsc::Receiver<Result<String, StoreError>>,
    last_heard: tokio::time::Instant,
    tasks: [tokio::task::JoinHandle<()>; 2],
}

impl Drop for PgChangeListener {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl PgChangeListener {
    fn start(mut listener: PgListener, pool: PgPool) -> Self {
        let (sender, payloads) = tokio::sync::mpsc::channel(BACKLOG);
        let heard = Arc::new(std::sync::Mutex::new(tokio::time::Instant::now()));
        let heard_by_reader = Arc::clone(&heard);
        let reader = tokio::spawn(async move {
            loop {
                // `try_recv`, not `recv`: `recv` reconnects silently, and whatever was
                // notified while it was away would be missed without a word.
                let next = match listener.try_recv().await {
                    Ok(Some(notification)) => Ok(notification.payload().to_owned()),
                    Ok(None) => Err(StoreError::Unavailable(
                        "the change listener's connection was lost".into(),
                    )),
                    Err(err) => Err(super::map_sqlx(err)),
                };
                let lost = next.is_err();
                *heard_by_reader
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) =
                    tokio::time::Instant::now();
                match sender.try_send(next) {
                    Ok(()) if !lost => {}
                    Err(tokio::sync::mpsc::error::TrySendError::Full(_)) => {
                        // What is queued is handed over, then the listener ends: lost.
                        tracing::warn!(target: "tower_auth", backlog = BACKLOG, "the session cache fell behind the change listener; it is set aside and reopened");
                        return;
                    }
                    _ => return,
                }
            }
        });
        let pinger = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(PING_INTERVAL / 4);
            loop {
                ticks.tick().await;
                let since = heard
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .elapsed();
                if since < PING_INTERVAL {
                    continue;
                }
                // A failed ping is a ping not heard: the silence limit decides.
                let _ = sqlx::query("SELECT pg_notify($1, $2)")
                    .bind(CHANGES_CHANNEL)
                    .bind(PING)
                    .execute(&pool)
                    .await;
            }
        });
        Self {
            payloads,
            last_heard: tokio::time::Instant::now(),
            tasks: [reader, pinger],
        }
    }
}

#[async_trait]
impl ChangeListener for PgChangeListener {
    async fn next_change(&mut self) -> Result<Change, StoreError> {
        loop {
            let payload = tokio::select! {
                payload = self.payloads.recv() => payload,
                () = tokio::time::sleep_until(self.last_heard + SILENCE_LIMIT) => {
                    return Err(StoreError::Unavailable(
                        "the change listener heard nothing, not even its own pings".into(),
                    ));
                }
            };
            match payload {
                Some(Ok(payload)) => {
                    self.last_heard = tokio::time::Instant::now();
                    // Pings, and anything else on the channel that is not a user id, only
                    // prove the listener hears.
                    if let Ok(id) = payload.parse::<i64>() {
                        return Ok(Change::User(UserId(id)));
                    }
                }
                Some(Err(err)) => return Err(err),
                None => {
                    return Err(StoreError::Unavailable(
                        "the change listener stopped".into(),
                    ));
                }
            }
        }
    }
}

/// A row of `session_join!`, for the batched lookups.
fn session_row(row: &sqlx::postgres::PgRow) -> Result<(Session, User), StoreError> {
    Ok((
        session_from_row(row, super::sql::USER_COLUMNS)?,
        user_from_row(row)?,
    ))
}

impl PgStore {
    async fn lookup_session(
        &self,
        token: &TokenHash,
    ) -> Result<Option<(Session, User)>, StoreError> {
        self.lookups.find(token).await
    }
}

impl_sql_store!(
    PgStore,
    sqlx::Postgres,
    sqlx::postgres::PgRow,
    " FOR UPDATE SKIP LOCKED",
    {
        /// This process's changes as they commit, and every instance's through `LISTEN` on a
        /// connection of its own (outside the pool, named [`PgStore::CHANGE_LISTENER_NAME`]).
        async fn change_feed(&self) -> Result<ChangeFeed, StoreError> {
            let options = self
                .pool
                .connect_options()
                .as_ref()
                .clone()
                .application_name(Self::CHANGE_LISTENER_NAME);
            let connection = PgPoolOptions::new()
                .max_connections(1)
                .min_connections(0)
                .acquire_timeout(Duration::from_secs(10))
                .connect_lazy_with(options);
            let mut listener = PgListener::connect_with(&connection)
                .await
                .map_err(super::map_sqlx)?;
            // A lost connection is reported at once, not after a reconnection attempt.
            listener.eager_reconnect(false);
            listener
                .listen(CHANGES_CHANNEL)
                .await
                .map_err(super::map_sqlx)?;
            Ok(ChangeFeed::Shared {
                hub: self.changes.clone(),
                listener: Box::new(PgChangeListener::start(listener, self.pool.clone())),
            })
        }

        /// Opens one connection of its own, outside the pool, and closes it.
        async fn probe(&self) -> Result<(), StoreError> {
            let options = self.pool.connect_options();
            connect_directly(&options, Duration::from_secs(1))
                .await
                .map_err(|err| match err {
                    Some(err) => super::map_sqlx(err),
                    None => {
                        StoreError::Unavailable("no connection to PostgreSQL within 1 s".into())
                    }
                })
        }
    }
);
