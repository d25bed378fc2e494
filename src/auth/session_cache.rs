//! Session lookups kept in memory, so an authenticated request rarely waits for the store.
//!
//! Coherence comes from the store's change feed ([`Store::change_feed`]): every change that
//! could make a cached lookup wrong (a session ended or reauthenticated, a user changed or
//! deleted) evicts what it concerns, from this process's writes synchronously
//! ([`ChangeHub`]) and from other instances' through a listener (PostgreSQL's
//! `LISTEN/NOTIFY`). While that listener is lost the cache is not used at all, and it
//! starts empty when the listener is back: nothing heard of during the outage can be
//! missed. A store whose changes cannot be heard is never cached. Every entry is also
//! refreshed from the store once it is older than a bound (the config's
//! `session_cache_max_age`), whatever it heard.
//!
//! A lookup that misses notes the cache's epoch before it reads the store, and its result
//! is kept only if no change was heard meanwhile: a read that raced a change is answered
//! but not remembered.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::Duration;

use tokio::sync::watch;

use crate::store::{Change, ChangeFeed, ChangeHub, Session, Store};
use crate::token::TokenHash;
use crate::user::{User, UserId};

/// First wait before asking for a change feed again after it failed or was lost.
const FEED_RETRY_MIN: Duration = Duration::from_millis(100);
/// Longest wait between attempts to open the change feed.
const FEED_RETRY_MAX: Duration = Duration::from_secs(5);

/// What the session cache holds and did, for metrics and health checks
/// ([`Auth::session_cache_stats`](crate::Auth::session_cache_stats)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionCacheStats {
    /// Session lookups held now.
    pub entries: usize,
    /// Most lookups held at once (`session_cache_capacity`).
    pub capacity: usize,
    /// Lookups answered from memory.
    pub hits: u64,
    /// Lookups that went to the store (every lookup while the cache is not in use).
    pub misses: u64,
    /// Whether the cache is in use: false until the store's change feed is open, while it
    /// is lost, and always for a store whose changes cannot be heard.
    pub in_use: bool,
    /// Changes heard from the store (own and, on PostgreSQL, other instances').
    pub changes_heard: u64,
    /// Times the change feed was lost (each time, the cache was emptied and set aside
    /// until the feed was back).
    pub feed_losses: u64,
}

/// The answer of [`SessionCache::get`].
pub(super) enum Lookup {
    /// The session and user, as cached.
    Hit(Session, User),
    /// Not cached: read the store, and keep the result with [`SessionCache::fill`] under
    /// this epoch (`None`: the cache is not in use, keep nothing).
    Miss(Option<u64>),
}

struct Entry {
    session: Session,
    user: User,
    cached_at_ms: i64,
    /// Insertion order, for evicting the oldest entry first.
    seq: u64,
}

#[derive(Default)]
struct State {
    in_use: bool,
    /// Goes up with every change heard and every loss of the feed.
    epoch: u64,
    entries: HashMap<TokenHash, Entry>,
    by_user: HashMap<UserId, Vec<TokenHash>>,
    /// `(hash, seq)` in insertion order; pairs whose entry has gone or been replaced are
    /// skipped when evicting, and dropped when the queue is rebuilt.
    order: VecDeque<(TokenHash, u64)>,
    next_seq: u64,
}

impl State {
    fn remove(&mut self, hash: &TokenHash) {
        let Some(entry) = self.entries.remove(hash) else {
            return;
        };
        let user = entry.user.id;
        if let Some(hashes) = self.by_user.get_mut(&user) {
            hashes.retain(|h| h != hash);
            if hashes.is_empty() {
                self.by_user.remove(&user);
            }
        }
    }

    fn clear(&mut self) {
        self.entries.clear();
        self.by_user.clear();
        self.order.clear();
        self.epoch += 1;
    }

    /// Removes the oldest entry.
    fn evict_one(&mut self) {
        while let Some((hash, seq)) = self.order.pop_front() {
            if self.entries.get(&hash).is_some_and(|e| e.seq == seq) {
                self.remove(&hash);
                return;
            }
        }
    }
}

/// The cache of one [`Auth`](crate::Auth).
pub(super) struct SessionCache {
    state: Mutex<State>,
    capacity: usize,
    max_age_ms: i64,
    hits: AtomicU64,
    misses: AtomicU64,
    changes_heard: AtomicU64,
    feed_losses: AtomicU64,
    follower_started: AtomicBool,
    /// This cache's subscription to the store's [`ChangeHub`], kept alive with it.
    subscription: OnceLock<Arc<dyn Fn(Change) + Send + Sync>>,
    /// Dropped with the cache, which ends the task following the change feed.
    closed: watch::Sender<()>,
}

impl SessionCache {
    pub(super) fn new(capacity: usize, max_age: Duration) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::default(),
            capacity,
            max_age_ms: i64::try_from(max_age.as_millis()).unwrap_or(i64::MAX),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            changes_heard: AtomicU64::new(0),
            feed_losses: AtomicU64::new(0),
            follower_started: AtomicBool::new(false),
            subscription: OnceLock::new(),
            closed: watch::channel(()).0,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update leaves the maps consistent before anything that could panic.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The cached lookup of `hash`, if in use, present and young enough at `now_ms`.
    /// Starts following the store's changes on first use.
    pub(super) fn get(
        self: &Arc<Self>,
        store: &Arc<dyn Store>,
        hash: &TokenHash,
        now_ms: i64,
    ) -> Lookup {
        if !self.follower_started.load(Ordering::Relaxed) {
            self.start_following(store);
        }
        let state = self.lock();
        if !state.in_use {
            drop(state);
            self.misses.fetch_add(1, Ordering::Relaxed);
            return Lookup::Miss(None);
        }
        match state.entries.get(hash) {
            Some(entry) if now_ms.saturating_sub(entry.cached_at_ms) < self.max_age_ms => {
                let hit = Lookup::Hit(entry.session.clone(), entry.user.clone());
                drop(state);
                self.hits.fetch_add(1, Ordering::Relaxed);
                hit
            }
            _ => {
                let epoch = state.epoch;
                drop(state);
                self.misses.fetch_add(1, Ordering::Relaxed);
                Lookup::Miss(Some(epoch))
            }
        }
    }

    /// Keeps a lookup read from the store, unless a change was heard since `epoch`.
    pub(super) fn fill(&self, epoch: u64, session: &Session, user: &User, now_ms: i64) {
        let mut state = self.lock();
        if !state.in_use || state.epoch != epoch || self.capacity == 0 {
            return;
        }
        let hash = session.token_hash;
        state.remove(&hash);
        while state.entries.len() >= self.capacity {
            state.evict_one();
        }
        let seq = state.next_seq;
        state.next_seq += 1;
        state.entries.insert(
            hash,
            Entry {
                session: session.clone(),
                user: user.clone(),
                cached_at_ms: now_ms,
                seq,
            },
        );
        state.by_user.entry(user.id).or_default().push(hash);
        state.order.push_back((hash, seq));
        // Replaced and removed entries leave pairs behind in `order`: rebuild it before
        // it grows past twice what it tracks.
        if state.order.len() > 2 * self.capacity + 64 {
            let mut live: Vec<(TokenHash, u64)> =
                state.entries.iter().map(|(h, e)| (*h, e.seq)).collect();
            live.sort_unstable_by_key(|(_, seq)| *seq);
            state.order = live.into();
        }
    }

    /// Records in the cached copy that the session's use at `now_ms` was written to the
    /// store, so the next write is a minute away again.
    pub(super) fn note_touch(&self, hash: &TokenHash, now_ms: i64) {
        if let Some(entry) = self.lock().entries.get_mut(hash) {
            entry.session.last_seen_ms = now_ms;
        }
    }

    /// Evicts what `change` concerns.
    pub(super) fn forget(&self, change: Change) {
        let mut state = self.lock();
        state.epoch += 1;
        match change {
            Change::Session(hash) => state.remove(&hash),
            Change::User(user) => {
                for hash in state.by_user.remove(&user).unwrap_or_default() {
                    state.entries.remove(&hash);
                }
            }
        }
    }

    pub(super) fn stats(&self) -> SessionCacheStats {
        let state = self.lock();
        SessionCacheStats {
            entries: state.entries.len(),
            capacity: self.capacity,
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            in_use: state.in_use,
            changes_heard: self.changes_heard.load(Ordering::Relaxed),
            feed_losses: self.feed_losses.load(Ordering::Relaxed),
        }
    }

    /// Starts using the cache, empty (anything kept before may have missed changes).
    fn trust(&self) {
        let mut state = self.lock();
        state.clear();
        state.in_use = true;
    }

    /// Stops using the cache and empties it.
    fn distrust(&self) {
        let mut state = self.lock();
        state.in_use = false;
        state.clear();
    }

    /// Hears this process's changes from `hub` from now on (once: a store has one hub).
    fn subscribe(self: &Arc<Self>, hub: &ChangeHub) {
        let cache = Arc::downgrade(self);
        let callback: Arc<dyn Fn(Change) + Send + Sync> = Arc::new(move |change| {
            if let Some(cache) = cache.upgrade() {
                cache.heard(change);
            }
        });
        if self.subscription.set(Arc::clone(&callback)).is_ok() {
            hub.subscribe(&callback);
        }
    }

    fn heard(&self, change: Change) {
        self.changes_heard.fetch_add(1, Ordering::Relaxed);
        self.forget(change);
    }

    /// Spawns the task that opens the store's change feed and follows it (outside a Tokio
    /// runtime, nothing: the cache stays unused).
    fn start_following(self: &Arc<Self>, store: &Arc<dyn Store>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.follower_started.swap(true, Ordering::AcqRel) {
            return;
        }
        runtime.spawn(follow(
            Arc::clone(store),
            Arc::downgrade(self),
            self.closed.subscribe(),
        ));
    }
}

/// While armed, sets the cache aside if the task following a listener ends any other way
/// than by the cache being dropped (its runtime shut down, a panic): nothing would hear
/// other instances' changes any more. The next lookup then starts a new task.
struct FollowerGuard {
    cache: Weak<SessionCache>,
    armed: bool,
}

impl Drop for FollowerGuard {
    fn drop(&mut self) {
        if let (true, Some(cache)) = (self.armed, self.cache.upgrade()) {
            cache.distrust();
            cache.follower_started.store(false, Ordering::Release);
        }
    }
}

/// Opens `store`'s change feed and applies it to the cache, reopening it (with backoff)
/// whenever it fails or is lost, until the cache is dropped.
async fn follow(store: Arc<dyn Store>, cache: Weak<SessionCache>, mut closed: watch::Receiver<()>) {
    let mut guard = FollowerGuard {
        cache: cache.clone(),
        armed: true,
    };
    let mut backoff = FEED_RETRY_MIN;
    let mut warned = false;
    loop {
        let feed = tokio::select! {
            feed = store.change_feed() => feed,
            _ = closed.changed() => return,
        };
        let Some(this) = cache.upgrade() else { return };
        match feed {
            Ok(ChangeFeed::Unheard) => {
                guard.armed = false;
                return;
            }
            Ok(ChangeFeed::InProcess(hub)) => {
                // Every change reaches the cache through the hub, task or no task.
                this.subscribe(&hub);
                this.trust();
                guard.armed = false;
                return;
            }
            Ok(ChangeFeed::Shared { hub, mut listener }) => {
                this.subscribe(&hub);
                this.trust();
                if warned {
                    tracing::info!(target: "tower_auth", "change feed back: session cache in use again");
                }
                backoff = FEED_RETRY_MIN;
                drop(this);
                loop {
                    let change = tokio::select! {
                        change = listener.next_change() => change,
                        _ = closed.changed() => return,
                    };
                    let Some(this) = cache.upgrade() else { return };
                    match change {
                        Ok(change) => this.heard(change),
                        Err(err) => {
                            this.distrust();
                            this.feed_losses.fetch_add(1, Ordering::Relaxed);
                            tracing::warn!(
                                target: "tower_auth",
                                error = %err,
                                "change feed lost: sessions are looked up in the store until it is back"
                            );
                            warned = true;
                            break;
                        }
                    }
                }
            }
            Err(err) => {
                if !warned {
                    tracing::warn!(
                        target: "tower_auth",
                        error = %err,
                        "cannot open the change feed: sessions are looked up in the store until it opens"
                    );
                    warned = true;
                }
            }
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            _ = closed.changed() => return,
        }
        backoff = (backoff * 2).min(FEED_RETRY_MAX);
    }
}
