//! The embedded default store: one SQLite file, through sqlx.

use std::str::FromStr;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::ConnectOptions as _;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use tokio::sync::oneshot;

use super::migrate;
use super::sql::{
    factor_columns, identity_columns, impl_sql_store, outbox_columns, session_columns,
    session_join, token_columns, token_returning, user_columns, valid_token,
};
use super::{
    ChangeFeed, ChangeHub, Counter, EmailToken, ExpiryCutoffs, MailRequest, OutgoingMail,
    QueuedMail, Session, SharedError, Store, StoreError, Swept, TokenPurpose, map_sqlx,
};
use super::{NewUser, UserLookup, UserRecord, UserUpdate};
use crate::token::TokenHash;
use crate::user::{User, UserId};

/// Connections of the pool: writes (SQLite has one writer at a time), logins, and every
/// read but the session lookup.
const POOL_CONNECTIONS: u32 = 4;

/// Connections for the session lookup, the read every authenticated request makes: one per
/// four cores. Each answers a batch of lookups per statement ([`SessionReaders`]), and
/// fewer connections make bigger batches: on 2 cores, `GET /profile` served about 47k
/// requests/s with one, 42k with two, 32k with eight.
fn session_readers() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    cores.div_ceil(4)
}

/// A [`Store`](crate::Store) on a SQLite database file (for example `sqlite://a.db?mode=rwc`).
///
/// Connecting brings tower-auth's tables up to date (`migrations/sqlite`), and every connection uses
/// WAL journaling (readers never wait for the writer), `synchronous = FULL` (an
/// acknowledged write survives a power cut), foreign keys and a busy timeout.
///
/// Performance: sqlx runs each SQLite connection on a thread of its own, so every statement
/// is a round trip between threads (and its pool adds a liveness ping each time a connection
/// goes back to it). The session lookup, the one read every authenticated request makes,
/// therefore runs on connections of its own, and concurrent lookups share one statement
/// (`WHERE token_hash IN (...)`, one primary-key lookup each): an idle server answers a
/// lookup with one statement, a busy one answers up to 32 per round trip. Everything else
/// uses the pool.
#[derive(Clone)]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub struct SqliteStore {
    sql: Sql,
    /// `None` for an in-memory database (every connection to one is a database of its own)
    /// and for [`from_pool`](Self::from_pool).
    session_readers: Option<Arc<SessionReaders>>,
}

/// The shared SQL (`impl_sql_store!`) over the pool.
#[derive(Clone)]
struct Sql {
    pool: SqlitePool,
    /// This process's changes, for the session caches over this database: a SQLite file
    /// belongs to one process, so they are all the changes there are.
    changes: ChangeHub,
}

/// Nothing to quiet: SQLite announces changes in-process only, from the shared SQL.
const QUIET_SWEEP: Option<&str> = None;

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating with `?mode=rwc`) the database at `url` and brings its schema up to
    /// date: tower-auth's own tables (`auth_*`) and migration record
    /// (`auth_schema_migrations`), beside whatever else the file holds. A database made by
    /// tower-auth 0.1 is upgraded in place.
    ///
    /// # Errors
    /// A malformed URL, an unreachable file, or a failed migration.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::open(url, false).await
    }

    /// Like [`connect`](Self::connect), but first drops every table this crate owns, as the
    /// seed's `DB()` does at start: all users and sessions are lost.
    ///
    /// # Errors
    /// As [`connect`](Self::connect).
    pub async fn connect_fresh(url: &str) -> Result<Self, StoreError> {
        Self::open(url, true).await
    }

    /// Wraps an existing pool (for example one the application shares), running
    /// tower-auth's migrations.
    ///
    /// # Errors
    /// A failed migration.
    pub async fn from_pool(pool: SqlitePool) -> Result<Self, StoreError> {
        migrate::sqlite::run(&pool).await?;
        let changes = hub_for(pool.connect_options().get_filename());
        Ok(Self {
            sql: Sql { pool, changes },
            session_readers: None,
        })
    }

    /// The underlying pool.
    pub fn pool(&self) -> &SqlitePool {
        &self.sql.pool
    }

    async fn open(url: &str, fresh: bool) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(StoreError::backend)?
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        // Every connection to an in-memory database is a database of its own: keep exactly one.
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        if !in_memory && url.contains("mode=rwc") {
            create_owner_only(options.get_filename())?;
        }
        let max = if in_memory { 1 } else { POOL_CONNECTIONS };
        let pool = SqlitePoolOptions::new()
            .max_connections(max)
            .min_connections(u32::from(in_memory))
            .idle_timeout((!in_memory).then_some(Duration::from_secs(600)))
            .max_lifetime(None)
            // A local file does not drop connections: skip the ping before each use.
            .test_before_acquire(false)
            .connect_with(options.clone())
            .await
            .map_err(StoreError::backend)?;
        if fresh {
            // Upgrade first, so that the tables of a 0.1 database go too.
            migrate::sqlite::run(&pool).await?;
            migrate::sqlite::drop_all(&pool).await?;
        }
        let mut store = Self::from_pool(pool).await?;
        if !in_memory {
            let readers = SessionReaders::new(options, session_readers());
            store.session_readers = Some(Arc::new(readers));
        }
        Ok(store)
    }
}

impl_sql_store!(Sql, sqlx::Sqlite, sqlx::sqlite::SqliteRow, "", {});

impl Sql {
    async fn lookup_session(&self, token: &TokenHash) -> Result<Found, StoreError> {
        let row = sqlx::query(concat!(session_join!(), " = $1"))
            .bind(&token.as_bytes()[..])
            .fetch_optional(&self.pool)
            .await
            .map_err(map_sqlx)?;
        match row {
            None => Ok(None),
            Some(row) => Ok(Some((
                session_from_row(&row, super::sql::USER_COLUMNS)?,
                user_from_row(&row)?,
            ))),
        }
    }
}

/// The change hub of the database file at `path`: one per file in this process, so stores
/// opened separately on one file (two `Auth::connect` calls, say) hear each other's
/// changes as clones of one store do. An in-memory database (no file) gets a hub of its
/// own.
fn hub_for(path: &std::path::Path) -> ChangeHub {
    static HUBS: LazyLock<Mutex<std::collections::HashMap<std::path::PathBuf, ChangeHub>>> =
        LazyLock::new(Mutex::default);
    let Ok(path) = std::fs::canonicalize(path) else {
        return ChangeHub::default();
    };
    let mut hubs = HUBS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    hubs.retain(|_, hub| !hub.is_unused());
    hubs.entry(path).or_default().clone()
}

/// Creates the database file readable and writable by its owner only (0600), when it does
/// not exist yet: it holds password hashes. SQLite gives its `-wal` and `-shm` files the
/// database file's permissions. An existing file is left as it is.
fn create_owner_only(path: &std::path::Path) -> Result<(), StoreError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(StoreError::backend(e)),
    }
}

/// Most session lookups one statement answers.
const MAX_BATCH: usize = 32;

/// `FIND_SESSIONS[n - 1]`: the session-and-user join of the shared SQL, for `n` token hashes
/// at once (`WHERE s.token_hash IN ($1, ..., $n)`: one primary-key lookup per hash).
static FIND_SESSIONS: LazyLock<Vec<String>> = LazyLock::new(|| {
    (1..=MAX_BATCH)
        .map(|n| {
            let params: Vec<String> = (1..=n).map(|i| format!("${i}")).collect();
            format!(concat!(session_join!(), " IN ({})"), params.join(", "))
        })
        .collect()
});

type Found = Option<(Session, User)>;
type Reply = oneshot::Sender<Result<Found, StoreError>>;

/// The session lookup, on connections of its own, in batches.
///
/// sqlx runs each SQLite connection on a thread of its own, so a statement costs two thread
/// switches, which on a small machine cost far more than the lookup itself. Here a lookup
/// is queued; a connection that is free (or that finishes its statement) takes everything
/// queued, up to [`MAX_BATCH`], and answers it with one statement. An idle server answers a
/// lookup with one statement as before; a busy one answers many per round trip. Each
/// connection is driven by a spawned task, so a request that gives up waiting never leaves
/// a statement half-read. The connections also skip the pool's ping on release.
struct SessionReaders {
    options: SqliteConnectOptions,
    /// Most connections.
    max: usize,
    state: Mutex<ReaderState>,
}

#[derive(Default)]
struct ReaderState {
    /// Lookups waiting for a statement, oldest first.
    queue: Vec<(TokenHash, Reply)>,
    /// Connections with nothing to do.
    idle: Vec<SqliteConnection>,
    /// Connections open or being opened, idle or not; at most `max`.
    open: usize,
}

impl SessionReaders {
    fn new(options: SqliteConnectOptions, max: usize) -> Self {
        Self {
            options,
            max: max.max(1),
            state: Mutex::default(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, ReaderState> {
        // Only pushes, pops and counter updates happen under the lock, none of which can
        // panic half-way: a poisoned lock is still consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn find_session(self: &Arc<Self>, token: &TokenHash) -> Result<Found, StoreError> {
        let (reply, answer) = oneshot::channel();
        let worker = {
            let mut state = self.state();
            state.queue.push((*token, reply));
            if let Some(conn) = state.idle.pop() {
                Some(Some(conn))
            } else if state.open < self.max {
                state.open += 1;
                Some(None)
            } else {
                // Every connection is busy; the first to finish takes this lookup.
                None
            }
        };
        if let Some(conn) = worker {
            tokio::spawn(Arc::clone(self).serve(conn));
        }
        answer
            .await
            .unwrap_or_else(|_| Err(StoreError::Backend("session lookup failed".into())))
    }

    /// Answers queued lookups with `conn` (opening one when `None`) until the queue is
    /// empty, then leaves the connection idle. Only returns with an empty queue, checked
    /// under the lock every lookup is queued under, so no lookup is left without a worker.
    async fn serve(self: Arc<Self>, mut conn: Option<SqliteConnection>) {
        let slot = OpenSlot(&self);
        loop {
            let batch: Vec<(TokenHash, Reply)> = {
                let mut state = self.state();
                if state.queue.is_empty() {
                    match conn {
                        Some(conn) => {
                            state.idle.push(conn);
                            std::mem::forget(slot);
                        }
                        None => {
                            state.open -= 1;
                            std::mem::forget(slot);
                        }
                    }
                    return;
                }
                let n = state.queue.len().min(MAX_BATCH);
                state.queue.drain(..n).collect()
            };
            let result = match conn.as_mut() {
                Some(conn) => lookup(conn, &batch).await,
                None => match self.options.connect().await {
                    Ok(opened) => lookup(conn.insert(opened), &batch).await,
                    Err(e) => Err(map_sqlx(e)),
                },
            };
            match result {
                Ok(found) => answer(batch, &found),
                Err(err) => {
                    // The next batch gets a fresh connection.
                    conn = None;
                    let err = SharedError::new(err);
                    for (_, reply) in batch {
                        let _ = reply.send(Err(err.copy()));
                    }
                }
            }
        }
    }
}

/// Gives a connection's place back if its worker ends without returning it (a panic, or
/// the runtime shutting down), and after a panic starts another worker for what is queued.
struct OpenSlot<'a>(&'a Arc<SessionReaders>);

impl Drop for OpenSlot<'_> {
    fn drop(&mut self) {
        let restart = {
            let mut state = self.0.state();
            state.open -= 1;
            if std::thread::panicking() && !state.queue.is_empty() {
                state.open += 1;
                true
            } else {
                false
            }
        };
        if restart {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(Arc::clone(self.0).serve(None));
            } else {
                self.0.state().open -= 1;
            }
        }
    }
}

/// One statement for a batch of lookups (a token repeated in the batch is looked up once).
async fn lookup(
    conn: &mut SqliteConnection,
    batch: &[(TokenHash, Reply)],
) -> Result<Vec<(Session, User)>, StoreError> {
    let mut tokens: Vec<&TokenHash> = Vec::with_capacity(batch.len());
    for (token, _) in batch {
        if !tokens.contains(&token) {
            tokens.push(token);
        }
    }
    let mut query = sqlx::query(&FIND_SESSIONS[tokens.len() - 1]);
    for token in &tokens {
        query = query.bind(&token.as_bytes()[..]);
    }
    let rows = query.fetch_all(&mut *conn).await.map_err(map_sqlx)?;
    rows.iter()
        .map(|row| {
            Ok((
                session_from_row(row, super::sql::USER_COLUMNS)?,
                user_from_row(row)?,
            ))
        })
        .collect()
}

/// Sends each lookup of the batch its row, matched by token hash, or `None`.
fn answer(batch: Vec<(TokenHash, Reply)>, found: &[(Session, User)]) {
    for (token, reply) in batch {
        let row = found
            .iter()
            .find(|(session, _)| session.token_hash == token)
            .cloned();
        // The requester may have gone away; nothing to do then.
        let _ = reply.send(Ok(row));
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn add_user(&self, user: NewUser) -> Result<User, StoreError> {
        self.sql.add_user(user).await
    }

    async fn find_user_by(&self, lookup: UserLookup<'_>) -> Result<Option<UserRecord>, StoreError> {
        self.sql.find_user_by(lookup).await
    }

    async fn update_user(&self, id: UserId, update: UserUpdate) -> Result<(), StoreError> {
        self.sql.update_user(id, update).await
    }

    async fn replace_password_hash(
        &self,
        id: UserId,
        current: &str,
        new: &str,
    ) -> Result<bool, StoreError> {
        self.sql.replace_password_hash(id, current, new).await
    }

    async fn delete_user(&self, id: UserId) -> Result<bool, StoreError> {
        self.sql.delete_user(id).await
    }

    async fn create_session(
        &self,
        session: Session,
        replace_others: bool,
    ) -> Result<(), StoreError> {
        self.sql.create_session(session, replace_others).await
    }

    async fn find_session(&self, token: &TokenHash) -> Result<Option<(Session, User)>, StoreError> {
        match &self.session_readers {
            Some(readers) => readers.find_session(token).await,
            None => self.sql.find_session(token).await,
        }
    }

    async fn touch_session(&self, token: &TokenHash, now_ms: i64) -> Result<(), StoreError> {
        self.sql.touch_session(token, now_ms).await
    }

    async fn delete_session(&self, token: &TokenHash) -> Result<bool, StoreError> {
        self.sql.delete_session(token).await
    }

    async fn delete_user_sessions(
        &self,
        user_id: UserId,
        except: Option<&TokenHash>,
    ) -> Result<u64, StoreError> {
        self.sql.delete_user_sessions(user_id, except).await
    }

    async fn list_user_sessions(&self, user_id: UserId) -> Result<Vec<Session>, StoreError> {
        self.sql.list_user_sessions(user_id).await
    }

    async fn reauthenticate_session(
        &self,
        token: &TokenHash,
        now_ms: i64,
        methods: crate::AuthMethods,
    ) -> Result<bool, StoreError> {
        self.sql
            .reauthenticate_session(token, now_ms, methods)
            .await
    }

    async fn add_factors(
        &self,
        factors: Vec<super::NewFactor>,
        replace: Option<(UserId, super::FactorKind)>,
    ) -> Result<Vec<i64>, StoreError> {
        self.sql.add_factors(factors, replace).await
    }

    async fn list_factors(&self, user_id: UserId) -> Result<Vec<super::Factor>, StoreError> {
        self.sql.list_factors(user_id).await
    }

    async fn find_factor_by_credential(
        &self,
        credential_id: &str,
    ) -> Result<Option<(super::Factor, User)>, StoreError> {
        self.sql.find_factor_by_credential(credential_id).await
    }

    async fn update_factor(
        &self,
        user_id: UserId,
        id: i64,
        update: super::FactorUpdate,
    ) -> Result<bool, StoreError> {
        self.sql.update_factor(user_id, id, update).await
    }

    async fn delete_factors(
        &self,
        user_id: UserId,
        kind: Option<super::FactorKind>,
        id: Option<i64>,
    ) -> Result<u64, StoreError> {
        self.sql.delete_factors(user_id, kind, id).await
    }

    async fn add_identity(&self, identity: super::NewIdentity) -> Result<i64, StoreError> {
        self.sql.add_identity(identity).await
    }

    async fn find_identity(
        &self,
        provider: &str,
        subject: &str,
    ) -> Result<Option<(super::Identity, User)>, StoreError> {
        self.sql.find_identity(provider, subject).await
    }

    async fn list_identities(&self, user_id: UserId) -> Result<Vec<super::Identity>, StoreError> {
        self.sql.list_identities(user_id).await
    }

    async fn delete_identity(&self, user_id: UserId, id: i64) -> Result<bool, StoreError> {
        self.sql.delete_identity(user_id, id).await
    }

    async fn create_token(
        &self,
        token: EmailToken,
        keep_others: Option<u32>,
        mail: &[OutgoingMail],
        answers: Option<i64>,
    ) -> Result<(), StoreError> {
        self.sql
            .create_token(token, keep_others, mail, answers)
            .await
    }

    async fn queue_mail(&self, mail: &[OutgoingMail]) -> Result<(), StoreError> {
        self.sql.queue_mail(mail).await
    }

    async fn queue_mail_request(&self, request: &MailRequest) -> Result<(), StoreError> {
        self.sql.queue_mail_request(request).await
    }

    async fn claim_mail(
        &self,
        now_ms: i64,
        lease_until_ms: i64,
        limit: u32,
    ) -> Result<Vec<QueuedMail>, StoreError> {
        self.sql.claim_mail(now_ms, lease_until_ms, limit).await
    }

    async fn finish_mail(&self, id: i64) -> Result<bool, StoreError> {
        self.sql.finish_mail(id).await
    }

    async fn retry_mail(&self, id: i64, next_attempt_ms: i64) -> Result<(), StoreError> {
        self.sql.retry_mail(id, next_attempt_ms).await
    }

    async fn find_token(
        &self,
        hash: &TokenHash,
        purpose: TokenPurpose,
        now_ms: i64,
    ) -> Result<Option<(EmailToken, User)>, StoreError> {
        self.sql.find_token(hash, purpose, now_ms).await
    }

    async fn redeem_token(
        &self,
        hash: &TokenHash,
        purpose: TokenPurpose,
        now_ms: i64,
        update: UserUpdate,
    ) -> Result<Option<(EmailToken, User)>, StoreError> {
        self.sql.redeem_token(hash, purpose, now_ms, update).await
    }

    async fn increment_counter(
        &self,
        key: &str,
        now_ms: i64,
        window_ms: i64,
    ) -> Result<Counter, StoreError> {
        self.sql.increment_counter(key, now_ms, window_ms).await
    }

    async fn get_counter(&self, key: &str, now_ms: i64) -> Result<Option<Counter>, StoreError> {
        self.sql.get_counter(key, now_ms).await
    }

    async fn release_counter(&self, key: &str, window_ends_ms: i64) -> Result<(), StoreError> {
        self.sql.release_counter(key, window_ends_ms).await
    }

    async fn reset_counter(&self, key: &str) -> Result<(), StoreError> {
        self.sql.reset_counter(key).await
    }

    async fn delete_expired(&self, cutoffs: ExpiryCutoffs) -> Result<Swept, StoreError> {
        self.sql.delete_expired(cutoffs).await
    }

    async fn change_feed(&self) -> Result<ChangeFeed, StoreError> {
        Ok(ChangeFeed::InProcess(self.sql.changes.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store(dir: &std::path::Path) -> SqliteStore {
        let url = format!("sqlite://{}?mode=rwc", dir.join("t.db").display());
        SqliteStore::connect(&url).await.expect("connect")
    }

    /// A new database file, and the WAL beside it, are readable by their owner only; an
    /// existing file keeps its permissions.
    #[cfg(unix)]
    #[tokio::test]
    async fn new_database_files_are_owner_only() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().expect("temp dir");
        let store = store(dir.path()).await;
        store
            .add_user(NewUser {
                email: "a@example.com".into(),
                password_hash: "x".into(),
                created_at_ms: 1,
                first_link: None,
                email_confirmed_at_ms: None,
            })
            .await
            .expect("a write, so the WAL exists");
        let mode = |name: &str| {
            std::fs::metadata(dir.path().join(name))
                .map(|m| m.permissions().mode() & 0o777)
                .unwrap_or_else(|e| panic!("{name}: {e}"))
        };
        assert_eq!(mode("t.db"), 0o600);
        assert_eq!(mode("t.db-wal"), 0o600);

        let existing = dir.path().join("mine.db");
        std::fs::write(&existing, b"").expect("create");
        std::fs::set_permissions(&existing, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        let url = format!("sqlite://{}?mode=rwc", existing.display());
        SqliteStore::connect(&url).await.expect("connect");
        assert_eq!(
            mode("mine.db"),
            0o640,
            "an existing file keeps its permissions"
        );
    }

    /// Many concurrent lookups (distinct, repeated and unknown tokens) share statements, and
    /// each gets its own session's user, or `None`.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn batched_lookups_each_get_their_own_row() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Arc::new(store(dir.path()).await);
        let mut sessions = Vec::new();
        for i in 0..40 {
            let user = store
                .add_user(NewUser {
                    email: format!("u{i}@example.com"),
                    password_hash: "x".into(),
                    created_at_ms: 1,
                    first_link: None,
                    email_confirmed_at_ms: None,
                })
                .await
                .expect("user");
            let token_hash = TokenHash::of(&format!("token {i}"));
            let session = Session::new(token_hash, user.id, 1, i64::MAX);
            store
                .create_session(session.clone(), false)
                .await
                .expect("session");
            sessions.push((session, user));
        }
        let mut lookups = tokio::task::JoinSet::new();
        for round in 0..25 {
            for (i, (session, user)) in sessions.iter().enumerate() {
                // Every fourth lookup is for a token that has no session.
                let (token, expected) = if (i + round) % 4 == 0 {
                    (TokenHash::of(&format!("unknown {i} {round}")), None)
                } else {
                    (session.token_hash, Some((session.clone(), user.clone())))
                };
                let store = Arc::clone(&store);
                lookups.spawn(async move {
                    assert_eq!(store.find_session(&token).await.expect("lookup"), expected);
                });
            }
        }
        while let Some(done) = lookups.join_next().await {
            done.expect("lookup task");
        }
        let readers = store
            .session_readers
            .as_ref()
            .expect("file store has readers");
        let state = readers.state();
        assert!(state.queue.is_empty());
        assert_eq!(state.open, state.idle.len());
        assert!(state.open <= readers.max);
    }

    /// A failing statement answers every lookup of its batch with an error (none hangs), and
    /// lookups work again once the database does.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn failed_lookups_answer_errors_and_recover() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Arc::new(store(dir.path()).await);
        let token = TokenHash::of("token");
        assert_eq!(store.find_session(&token).await.expect("lookup"), None);
        sqlx::query("ALTER TABLE auth_sessions RENAME TO sessions_away")
            .execute(store.pool())
            .await
            .expect("rename");
        let mut lookups = tokio::task::JoinSet::new();
        for _ in 0..50 {
            let store = Arc::clone(&store);
            lookups.spawn(async move { store.find_session(&token).await.is_err() });
        }
        while let Some(failed) = lookups.join_next().await {
            assert!(failed.expect("lookup task"));
        }
        sqlx::query("ALTER TABLE sessions_away RENAME TO auth_sessions")
            .execute(store.pool())
            .await
            .expect("rename back");
        assert_eq!(store.find_session(&token).await.expect("lookup"), None);
    }
}
