//! How changes to users and sessions reach the session cache of every [`Auth`](crate::Auth)
//! sharing a store: synchronously within a process ([`ChangeHub`]), by a listener across
//! processes ([`ChangeListener`], PostgreSQL's `LISTEN/NOTIFY`).

use std::sync::{Arc, Mutex, Weak};

use async_trait::async_trait;

use super::StoreError;
use crate::token::TokenHash;
use crate::user::UserId;

/// One committed change that may make a cached session lookup wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Change {
    /// Something about this user changed: their account (email, confirmation, deletion)
    /// or any of their sessions.
    User(UserId),
    /// This one session ended or was reauthenticated.
    Session(TokenHash),
}

/// What [`Store::change_feed`](super::Store::change_feed) answers.
#[non_exhaustive]
pub enum ChangeFeed {
    /// Only this process writes to the store ([`MemoryStore`](super::MemoryStore), and
    /// [`SqliteStore`](super::SqliteStore), whose file belongs to one process), and the
    /// store publishes each change on this hub as it commits: caches subscribed to it are
    /// never behind.
    InProcess(ChangeHub),
    /// Other processes write too (several instances on one PostgreSQL database).
    Shared {
        /// This process's own changes, published as each write commits, so an instance
        /// never serves a session it has just ended.
        hub: ChangeHub,
        /// Every process's changes (this one's included), a moment after they commit. The
        /// session cache is trusted only while the listener is open.
        listener: Box<dyn ChangeListener>,
    },
    /// Other processes may write and this one would not hear of it: session lookups always
    /// go to the store.
    Unheard,
}

impl std::fmt::Debug for ChangeFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::InProcess(_) => "InProcess(..)",
            Self::Shared { .. } => "Shared { .. }",
            Self::Unheard => "Unheard",
        })
    }
}

/// Changes made by any process sharing a store, as they commit: on PostgreSQL, a `LISTEN`
/// on the channel that the triggers on tower-auth's tables notify.
#[async_trait]
pub trait ChangeListener: Send {
    /// Waits for the next change.
    ///
    /// # Errors
    /// The listener is lost (its connection closed): changes may have been missed since.
    /// The session cache then stops trusting itself until a new feed is open.
    async fn next_change(&mut self) -> Result<Change, StoreError>;
}

/// A subscriber's callback, as the hub holds it.
type Subscriber = dyn Fn(Change) + Send + Sync;

/// In-process publication of a store's changes: every subscriber is called synchronously,
/// before the write that made the change returns. Clones share their subscribers, so
/// clones of one store (and every [`Auth`](crate::Auth) over them) hear each other.
#[derive(Clone, Default)]
pub struct ChangeHub {
    subscribers: Arc<Mutex<Vec<Weak<Subscriber>>>>,
}

impl std::fmt::Debug for ChangeHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangeHub").finish_non_exhaustive()
    }
}

impl ChangeHub {
    /// Calls every live subscriber with `change`. Stores call this after each write that
    /// ends or changes a session or changes a user, once it has committed.
    pub fn publish(&self, change: Change) {
        let mut subscribers = self
            .subscribers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        subscribers.retain(|subscriber| match subscriber.upgrade() {
            Some(callback) => {
                callback(change);
                true
            }
            None => false,
        });
    }

    /// Whether nothing but this value holds the hub (no store or clone of one uses it).
    #[cfg(feature = "sqlite")]
    pub(crate) fn is_unused(&self) -> bool {
        Arc::strong_count(&self.subscribers) == 1
    }

    /// Calls `callback` with every change from now on, for as long as the caller keeps
    /// the `Arc` alive (the hub holds it weakly).
    pub fn subscribe(&self, callback: &Arc<Subscriber>) {
        self.subscribers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(Arc::downgrade(callback));
    }
}
