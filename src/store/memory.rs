//! An in-process store for tests, examples and quick starts. Data dies with the process.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;

use super::{Store, StoreError};
use crate::token::TokenHash;
use crate::user::{Counter, NewUser, Session, User, UserId, UserLookup, UserUpdate};

/// A [`Store`] kept in memory behind one mutex. Clones share the same data.
///
/// Each operation holds the lock for a few hash-map operations and never across an
/// `.await`, so it is atomic in the same way a database transaction is.
#[derive(Clone, Default)]
pub struct MemoryStore {
    inner: Arc<Mutex<Tables>>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore").finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Tables {
    next_id: i64,
    users: HashMap<UserId, User>,
    by_email: HashMap<String, UserId>,
    sessions: HashMap<TokenHash, Session>,
    counters: HashMap<String, Counter>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Tables> {
        // A panic while holding the lock cannot leave the maps half-updated (each update is
        // a handful of infallible insertions), so a poisoned lock is still consistent.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn add_user(&self, user: NewUser) -> Result<User, StoreError> {
        let mut t = self.lock();
        if t.by_email.contains_key(&user.email) {
            return Err(StoreError::Duplicate);
        }
        t.next_id += 1;
        let id = UserId(t.next_id);
        let created = User {
            id,
            email: user.email,
            hashed_password: user.hashed_password,
            reset_token: None,
            created_at_ms: user.created_at_ms,
        };
        t.by_email.insert(created.email.clone(), id);
        t.users.insert(id, created.clone());
        Ok(created)
    }

    async fn find_user_by(&self, lookup: UserLookup<'_>) -> Result<Option<User>, StoreError> {
        let t = self.lock();
        let found = match lookup {
            UserLookup::Id(id) => t.users.get(&id),
            UserLookup::Email(email) => t.by_email.get(email).and_then(|id| t.users.get(id)),
            UserLookup::ResetToken(hash) => t
                .users
                .values()
                .find(|u| u.reset_token.as_ref().is_some_and(|r| &r.hash == hash)),
        };
        Ok(found.cloned())
    }

    async fn update_user(&self, id: UserId, update: UserUpdate) -> Result<(), StoreError> {
        let mut t = self.lock();
        if !t.users.contains_key(&id) {
            return Err(StoreError::NotFound);
        }
        if let Some(Some(token)) = &update.reset_token {
            let taken = t.users.values().any(|u| {
                u.id != id && u.reset_token.as_ref().is_some_and(|r| r.hash == token.hash)
            });
            if taken {
                return Err(StoreError::Duplicate);
            }
        }
        let user = t.users.get_mut(&id).ok_or(StoreError::NotFound)?;
        if let Some(hash) = update.hashed_password {
            user.hashed_password = hash;
        }
        if let Some(token) = update.reset_token {
            user.reset_token = token;
        }
        Ok(())
    }

    async fn complete_password_reset(
        &self,
        token: &TokenHash,
        now_ms: i64,
        hashed_password: &str,
    ) -> Result<Option<UserId>, StoreError> {
        let mut t = self.lock();
        let user = t.users.values_mut().find(|u| {
            u.reset_token
                .as_ref()
                .is_some_and(|r| &r.hash == token && r.expires_at_ms > now_ms)
        });
        Ok(user.map(|u| {
            u.reset_token = None;
            u.hashed_password = hashed_password.to_owned();
            u.id
        }))
    }

    async fn create_session(
        &self,
        session: Session,
        replace_others: bool,
    ) -> Result<(), StoreError> {
        let mut t = self.lock();
        if !t.users.contains_key(&session.user_id) {
            return Err(StoreError::NotFound);
        }
        if t.sessions.contains_key(&session.token_hash) {
            return Err(StoreError::Duplicate);
        }
        if replace_others {
            t.sessions.retain(|_, s| s.user_id != session.user_id);
        }
        t.sessions.insert(session.token_hash, session);
        Ok(())
    }

    async fn find_session(&self, token: &TokenHash) -> Result<Option<(Session, User)>, StoreError> {
        let t = self.lock();
        Ok(t.sessions
            .get(token)
            .and_then(|s| t.users.get(&s.user_id).map(|u| (s.clone(), u.clone()))))
    }

    async fn touch_session(&self, token: &TokenHash, now_ms: i64) -> Result<(), StoreError> {
        if let Some(s) = self.lock().sessions.get_mut(token) {
            s.last_seen_ms = now_ms;
        }
        Ok(())
    }

    async fn delete_session(&self, token: &TokenHash) -> Result<bool, StoreError> {
        Ok(self.lock().sessions.remove(token).is_some())
    }

    async fn delete_user_sessions(&self, user_id: UserId) -> Result<u64, StoreError> {
        let mut t = self.lock();
        let before = t.sessions.len();
        t.sessions.retain(|_, s| s.user_id != user_id);
        Ok((before - t.sessions.len()) as u64)
    }

    async fn delete_expired_sessions(
        &self,
        now_ms: i64,
        idle_cutoff_ms: i64,
    ) -> Result<u64, StoreError> {
        let mut t = self.lock();
        let before = t.sessions.len();
        t.sessions
            .retain(|_, s| s.expires_at_ms > now_ms && s.last_seen_ms > idle_cutoff_ms);
        Ok((before - t.sessions.len()) as u64)
    }

    async fn increment_counter(
        &self,
        key: &str,
        now_ms: i64,
        window_ms: i64,
    ) -> Result<Counter, StoreError> {
        let mut t = self.lock();
        let fresh = Counter {
            count: 1,
            window_ends_ms: now_ms.saturating_add(window_ms),
        };
        let counter = t.counters.entry(key.to_owned()).or_insert(Counter {
            count: 0,
            window_ends_ms: i64::MIN,
        });
        if counter.window_ends_ms <= now_ms {
            *counter = fresh;
        } else {
            counter.count = counter.count.saturating_add(1);
        }
        Ok(*counter)
    }

    async fn get_counter(&self, key: &str, now_ms: i64) -> Result<Option<Counter>, StoreError> {
        Ok(self
            .lock()
            .counters
            .get(key)
            .filter(|c| c.window_ends_ms > now_ms)
            .copied())
    }

    async fn release_counter(&self, key: &str, window_ends_ms: i64) -> Result<(), StoreError> {
        if let Some(counter) = self.lock().counters.get_mut(key) {
            if counter.window_ends_ms == window_ends_ms {
                counter.count = counter.count.saturating_sub(1);
            }
        }
        Ok(())
    }

    async fn reset_counter(&self, key: &str) -> Result<(), StoreError> {
        self.lock().counters.remove(key);
        Ok(())
    }
}
