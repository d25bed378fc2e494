//! An in-process store for tests, examples and quick starts. Data dies with the process.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;

use super::{
    Change, ChangeFeed, ChangeHub, Counter, EmailToken, ExpiryCutoffs, MailRequest, OutboxEntry,
    OutgoingMail, QueuedMail, Session, Store, StoreError, Swept, TokenPurpose,
};
use super::{EndSessions, NewUser, UserLookup, UserRecord, UserUpdate};
use super::{Factor, FactorKind, FactorUpdate, Identity, NewFactor, NewIdentity};
use crate::auth_methods::AuthMethods;
use crate::token::TokenHash;
use crate::user::{User, UserId};

/// A [`Store`] kept in memory behind one mutex. Clones share the same data.
///
/// Each operation holds the lock for a few hash-map operations and never across an
/// `.await`, so it is atomic in the same way a database transaction is.
#[derive(Clone, Default)]
pub struct MemoryStore {
    inner: Arc<Mutex<Tables>>,
    /// Every change to a user or session, for the session caches over this store.
    changes: ChangeHub,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore").finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Tables {
    next_id: i64,
    users: HashMap<UserId, UserRecord>,
    by_email: HashMap<String, UserId>,
    sessions: HashMap<TokenHash, Session>,
    tokens: HashMap<TokenHash, EmailToken>,
    counters: HashMap<String, Counter>,
    /// The outbox, by id (ids only grow, so iteration order is queue order).
    outbox: std::collections::BTreeMap<i64, QueuedMail>,
    /// When each outbox row is next due.
    outbox_due: HashMap<i64, i64>,
    next_mail_id: i64,
    /// Second factors, by id (ids only grow, so iteration order is creation order).
    factors: std::collections::BTreeMap<i64, Factor>,
    next_factor_id: i64,
    /// Provider identities, by id.
    identities: std::collections::BTreeMap<i64, Identity>,
    next_identity_id: i64,
}

impl Tables {
    /// The token and its user when the token is valid at `now_ms`.
    fn valid_token(
        &self,
        hash: &TokenHash,
        purpose: TokenPurpose,
        now_ms: i64,
    ) -> Option<(EmailToken, User)> {
        let token = self.tokens.get(hash)?;
        let record = self.users.get(&token.user_id)?;
        (token.purpose == purpose
            && token.expires_at_ms > now_ms
            && token.account_email == record.user.email)
            .then(|| (token.clone(), record.user.clone()))
    }

    /// Applies `update` to the user `id`, or changes nothing and fails.
    fn update_user(&mut self, id: UserId, update: UserUpdate) -> Result<User, StoreError> {
        let current = self.users.get(&id).ok_or(StoreError::NotFound)?;
        if let Some(email) = &update.email
            && self.by_email.get(email).is_some_and(|owner| *owner != id)
        {
            return Err(StoreError::Duplicate);
        }
        let old_email = current.user.email.clone();
        let record = self.users.get_mut(&id).ok_or(StoreError::NotFound)?;
        if let Some(hash) = update.password_hash {
            record.password_hash = hash;
        }
        if let Some(at) = update.email_confirmed_at_ms {
            record.user.email_confirmed_at_ms = Some(at);
        }
        if let Some(email) = update.email {
            record.user.email = email.clone();
            self.by_email.remove(&old_email);
            self.by_email.insert(email, id);
        }
        let user = record.user.clone();
        if let Some(which) = update.end_sessions {
            self.end_sessions(id, which);
        }
        if update.end_tokens {
            self.tokens.retain(|_, token| token.user_id != id);
        }
        Ok(user)
    }

    /// Removes the user's sessions that `which` names; returns how many.
    fn end_sessions(&mut self, user_id: UserId, which: EndSessions) -> u64 {
        let keep = match which {
            EndSessions::All => None,
            EndSessions::AllExcept(token) => Some(token),
        };
        let before = self.sessions.len();
        self.sessions
            .retain(|hash, s| s.user_id != user_id || Some(*hash) == keep);
        (before - self.sessions.len()) as u64
    }
}

impl Tables {
    /// Appends `mail` to the outbox, due at its creation time.
    fn queue(&mut self, mail: &[OutgoingMail]) {
        for message in mail {
            self.queue_entry(OutboxEntry::Mail(message.clone()));
        }
    }

    fn queue_entry(&mut self, entry: OutboxEntry) {
        self.next_mail_id += 1;
        let id = self.next_mail_id;
        self.outbox_due.insert(id, entry.created_at_ms());
        self.outbox.insert(
            id,
            QueuedMail {
                id,
                attempts: 0,
                entry,
            },
        );
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Publishes `change` (the lock already released, so subscribers may read the store)
    /// and passes `result` through.
    fn announce<T>(&self, change: Change, result: T) -> T {
        self.changes.publish(change);
        result
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
        if let Some(link) = &user.first_link
            && t.tokens.contains_key(&link.hash)
        {
            return Err(StoreError::Duplicate);
        }
        t.next_id += 1;
        let id = UserId(t.next_id);
        let created = User::new(id, user.email, user.created_at_ms)
            .email_confirmed_at(user.email_confirmed_at_ms);
        t.by_email.insert(created.email.clone(), id);
        t.users
            .insert(id, UserRecord::new(created.clone(), user.password_hash));
        if let Some(link) = user.first_link {
            let token = EmailToken {
                hash: link.hash,
                user_id: id,
                purpose: link.purpose,
                sent_to: created.email.clone(),
                account_email: created.email.clone(),
                created_at_ms: created.created_at_ms,
                expires_at_ms: link.expires_at_ms,
            };
            t.tokens.insert(token.hash, token);
            t.queue(&link.mail);
        }
        Ok(created)
    }

    async fn find_user_by(&self, lookup: UserLookup<'_>) -> Result<Option<UserRecord>, StoreError> {
        let t = self.lock();
        let found = match lookup {
            UserLookup::Id(id) => t.users.get(&id),
            UserLookup::Email(email) => t.by_email.get(email).and_then(|id| t.users.get(id)),
        };
        Ok(found.cloned())
    }

    async fn update_user(&self, id: UserId, update: UserUpdate) -> Result<(), StoreError> {
        let result = self.lock().update_user(id, update).map(|_| ());
        self.announce(Change::User(id), result)
    }

    async fn replace_password_hash(
        &self,
        id: UserId,
        current: &str,
        new: &str,
    ) -> Result<bool, StoreError> {
        let mut t = self.lock();
        match t.users.get_mut(&id) {
            Some(record) if record.password_hash == current => {
                record.password_hash = new.to_owned();
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn delete_user(&self, id: UserId) -> Result<bool, StoreError> {
        let mut t = self.lock();
        let Some(record) = t.users.remove(&id) else {
            return Ok(false);
        };
        t.by_email.remove(&record.user.email);
        t.sessions.retain(|_, s| s.user_id != id);
        t.tokens.retain(|_, token| token.user_id != id);
        t.factors.retain(|_, factor| factor.user_id != id);
        t.identities.retain(|_, identity| identity.user_id != id);
        drop(t);
        self.announce(Change::User(id), Ok(true))
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
        let user_id = session.user_id;
        if replace_others {
            t.sessions.retain(|_, s| s.user_id != user_id);
        }
        t.sessions.insert(session.token_hash, session);
        drop(t);
        if replace_others {
            self.changes.publish(Change::User(user_id));
        }
        Ok(())
    }

    async fn find_session(&self, token: &TokenHash) -> Result<Option<(Session, User)>, StoreError> {
        let t = self.lock();
        Ok(t.sessions.get(token).and_then(|s| {
            t.users
                .get(&s.user_id)
                .map(|record| (s.clone(), record.user.clone()))
        }))
    }

    async fn touch_session(&self, token: &TokenHash, now_ms: i64) -> Result<(), StoreError> {
        if let Some(s) = self.lock().sessions.get_mut(token) {
            s.last_seen_ms = now_ms;
        }
        Ok(())
    }

    async fn delete_session(&self, token: &TokenHash) -> Result<bool, StoreError> {
        let removed = self.lock().sessions.remove(token).is_some();
        self.announce(Change::Session(*token), Ok(removed))
    }

    async fn delete_user_sessions(
        &self,
        user_id: UserId,
        except: Option<&TokenHash>,
    ) -> Result<u64, StoreError> {
        let which = except.map_or(EndSessions::All, |t| EndSessions::AllExcept(*t));
        let ended = self.lock().end_sessions(user_id, which);
        self.announce(Change::User(user_id), Ok(ended))
    }

    async fn list_user_sessions(&self, user_id: UserId) -> Result<Vec<Session>, StoreError> {
        Ok(self
            .lock()
            .sessions
            .values()
            .filter(|s| s.user_id == user_id)
            .cloned()
            .collect())
    }

    async fn reauthenticate_session(
        &self,
        token: &TokenHash,
        now_ms: i64,
        methods: AuthMethods,
    ) -> Result<bool, StoreError> {
        let found = match self.lock().sessions.get_mut(token) {
            Some(session) => {
                session.authenticated_at_ms = now_ms;
                session.methods = session.methods.union(methods);
                true
            }
            None => false,
        };
        self.announce(Change::Session(*token), Ok(found))
    }

    async fn create_token(
        &self,
        token: EmailToken,
        keep_others: Option<u32>,
        mail: &[OutgoingMail],
        answers: Option<i64>,
    ) -> Result<(), StoreError> {
        let mut t = self.lock();
        if !t.users.contains_key(&token.user_id) {
            return Err(StoreError::NotFound);
        }
        let answered = answers.map(|id| t.outbox.get(&id).map(|q| &q.entry));
        if matches!(answered, Some(None | Some(OutboxEntry::Mail(_)))) {
            return Err(StoreError::NotFound);
        }
        if t.tokens.contains_key(&token.hash) {
            return Err(StoreError::Duplicate);
        }
        if let Some(id) = answers {
            t.outbox.remove(&id);
            t.outbox_due.remove(&id);
        }
        if let Some(keep) = keep_others {
            let mut others: Vec<(i64, TokenHash)> = t
                .tokens
                .values()
                .filter(|old| old.user_id == token.user_id && old.purpose == token.purpose)
                .map(|old| (old.created_at_ms, old.hash))
                .collect();
            // Newest first, ties by hash, as the SQL stores order them.
            others.sort_by(|a, b| {
                b.0.cmp(&a.0)
                    .then_with(|| b.1.as_bytes().cmp(a.1.as_bytes()))
            });
            for (_, hash) in others.into_iter().skip(keep as usize) {
                t.tokens.remove(&hash);
            }
        }
        t.tokens.insert(token.hash, token);
        t.queue(mail);
        Ok(())
    }

    async fn queue_mail(&self, mail: &[OutgoingMail]) -> Result<(), StoreError> {
        self.lock().queue(mail);
        Ok(())
    }

    async fn queue_mail_request(&self, request: &MailRequest) -> Result<(), StoreError> {
        self.lock()
            .queue_entry(OutboxEntry::Request(request.clone()));
        Ok(())
    }

    async fn claim_mail(
        &self,
        now_ms: i64,
        lease_until_ms: i64,
        limit: u32,
    ) -> Result<Vec<QueuedMail>, StoreError> {
        let mut t = self.lock();
        let due: Vec<i64> = t
            .outbox
            .values()
            .filter(|m| {
                m.entry.expires_at_ms() > now_ms && t.outbox_due.get(&m.id) <= Some(&now_ms)
            })
            .map(|m| m.id)
            .take(limit as usize)
            .collect();
        let mut claimed = Vec::with_capacity(due.len());
        for id in due {
            t.outbox_due.insert(id, lease_until_ms);
            if let Some(queued) = t.outbox.get_mut(&id) {
                queued.attempts = queued.attempts.saturating_add(1);
                claimed.push(queued.clone());
            }
        }
        Ok(claimed)
    }

    async fn finish_mail(&self, id: i64) -> Result<bool, StoreError> {
        let mut t = self.lock();
        t.outbox_due.remove(&id);
        Ok(t.outbox.remove(&id).is_some())
    }

    async fn retry_mail(&self, id: i64, next_attempt_ms: i64) -> Result<(), StoreError> {
        let mut t = self.lock();
        if t.outbox.contains_key(&id) {
            t.outbox_due.insert(id, next_attempt_ms);
        }
        Ok(())
    }

    async fn find_token(
        &self,
        hash: &TokenHash,
        purpose: TokenPurpose,
        now_ms: i64,
    ) -> Result<Option<(EmailToken, User)>, StoreError> {
        Ok(self.lock().valid_token(hash, purpose, now_ms))
    }

    async fn redeem_token(
        &self,
        hash: &TokenHash,
        purpose: TokenPurpose,
        now_ms: i64,
        update: UserUpdate,
    ) -> Result<Option<(EmailToken, User)>, StoreError> {
        let mut t = self.lock();
        let Some((token, _)) = t.valid_token(hash, purpose, now_ms) else {
            return Ok(None);
        };
        let user = t.update_user(token.user_id, update)?;
        t.tokens.remove(hash);
        drop(t);
        self.announce(Change::User(user.id), Ok(Some((token, user))))
    }

    async fn increment_counter(
        &self,
        key: &str,
        now_ms: i64,
        window_ms: i64,
    ) -> Result<Counter, StoreError> {
        let mut t = self.lock();
        let fresh = Counter::new(1, now_ms.saturating_add(window_ms));
        let counter = t
            .counters
            .entry(key.to_owned())
            .or_insert(Counter::new(0, i64::MIN));
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
        if let Some(counter) = self.lock().counters.get_mut(key)
            && counter.window_ends_ms == window_ends_ms
        {
            counter.count = counter.count.saturating_sub(1);
        }
        Ok(())
    }

    async fn reset_counter(&self, key: &str) -> Result<(), StoreError> {
        self.lock().counters.remove(key);
        Ok(())
    }

    async fn delete_expired(&self, cutoffs: ExpiryCutoffs) -> Result<Swept, StoreError> {
        let now_ms = cutoffs.now_ms;
        let mut t = self.lock();
        let (sessions, tokens, counters, mail) = (
            t.sessions.len(),
            t.tokens.len(),
            t.counters.len(),
            t.outbox.len(),
        );
        t.sessions.retain(|_, s| !cutoffs.session_expired(s));
        t.tokens.retain(|_, token| token.expires_at_ms > now_ms);
        t.counters.retain(|_, c| c.window_ends_ms > now_ms);
        let Tables {
            outbox, outbox_due, ..
        } = &mut *t;
        outbox.retain(|id, m| {
            let keep = m.entry.expires_at_ms() > now_ms;
            if !keep {
                outbox_due.remove(id);
            }
            keep
        });
        Ok(Swept::new(
            (sessions - t.sessions.len()) as u64,
            (tokens - t.tokens.len()) as u64,
            (counters - t.counters.len()) as u64,
            (mail - t.outbox.len()) as u64,
        ))
    }

    async fn change_feed(&self) -> Result<ChangeFeed, StoreError> {
        Ok(ChangeFeed::InProcess(self.changes.clone()))
    }

    async fn add_factors(
        &self,
        factors: Vec<NewFactor>,
        replace: Option<(UserId, FactorKind)>,
    ) -> Result<Vec<i64>, StoreError> {
        let mut t = self.lock();
        // Checked whole before anything changes: all or nothing, as a transaction.
        let mut credentials = std::collections::HashSet::new();
        for factor in &factors {
            if !t.users.contains_key(&factor.user_id) {
                return Err(StoreError::NotFound);
            }
            if let Some(id) = &factor.credential_id {
                let taken = t.factors.values().any(|f| {
                    f.credential_id.as_ref() == Some(id)
                        && replace.is_none_or(|(user, kind)| f.user_id != user || f.kind != kind)
                });
                if taken || !credentials.insert(id.clone()) {
                    return Err(StoreError::Duplicate);
                }
            }
        }
        if let Some((user, kind)) = replace {
            t.factors.retain(|_, f| f.user_id != user || f.kind != kind);
        }
        let mut ids = Vec::with_capacity(factors.len());
        for factor in factors {
            t.next_factor_id += 1;
            let id = t.next_factor_id;
            t.factors.insert(
                id,
                Factor {
                    id,
                    user_id: factor.user_id,
                    kind: factor.kind,
                    credential_id: factor.credential_id,
                    name: factor.name,
                    secret: factor.secret,
                    counter: factor.counter,
                    confirmed: factor.confirmed,
                    created_at_ms: factor.created_at_ms,
                    last_used_ms: None,
                },
            );
            ids.push(id);
        }
        Ok(ids)
    }

    async fn list_factors(&self, user_id: UserId) -> Result<Vec<Factor>, StoreError> {
        Ok(self
            .lock()
            .factors
            .values()
            .filter(|f| f.user_id == user_id)
            .cloned()
            .collect())
    }

    async fn find_factor_by_credential(
        &self,
        credential_id: &str,
    ) -> Result<Option<(Factor, User)>, StoreError> {
        let t = self.lock();
        Ok(t.factors
            .values()
            .find(|f| f.credential_id.as_deref() == Some(credential_id))
            .and_then(|f| {
                let user = t.users.get(&f.user_id)?;
                Some((f.clone(), user.user.clone()))
            }))
    }

    async fn update_factor(
        &self,
        user_id: UserId,
        id: i64,
        update: FactorUpdate,
    ) -> Result<bool, StoreError> {
        let mut t = self.lock();
        let Some(factor) = t.factors.get_mut(&id).filter(|f| f.user_id == user_id) else {
            return Ok(false);
        };
        if update
            .counter_below
            .is_some_and(|below| factor.counter >= below)
        {
            return Ok(false);
        }
        if let Some(counter) = update.counter {
            factor.counter = counter;
        }
        if let Some(secret) = update.secret {
            factor.secret = secret;
        }
        if let Some(name) = update.name {
            factor.name = name;
        }
        factor.confirmed |= update.confirm;
        if update.last_used_ms.is_some() {
            factor.last_used_ms = update.last_used_ms;
        }
        Ok(true)
    }

    async fn delete_factors(
        &self,
        user_id: UserId,
        kind: Option<FactorKind>,
        id: Option<i64>,
    ) -> Result<u64, StoreError> {
        let mut t = self.lock();
        let before = t.factors.len();
        t.factors.retain(|fid, f| {
            !(f.user_id == user_id
                && kind.is_none_or(|k| f.kind == k)
                && id.is_none_or(|i| *fid == i))
        });
        Ok((before - t.factors.len()) as u64)
    }

    async fn add_identity(&self, identity: NewIdentity) -> Result<i64, StoreError> {
        let mut t = self.lock();
        if !t.users.contains_key(&identity.user_id) {
            return Err(StoreError::NotFound);
        }
        if t.identities
            .values()
            .any(|i| i.provider == identity.provider && i.subject == identity.subject)
        {
            return Err(StoreError::Duplicate);
        }
        t.next_identity_id += 1;
        let id = t.next_identity_id;
        t.identities.insert(
            id,
            Identity {
                id,
                user_id: identity.user_id,
                provider: identity.provider,
                subject: identity.subject,
                email: identity.email,
                created_at_ms: identity.created_at_ms,
            },
        );
        Ok(id)
    }

    async fn find_identity(
        &self,
        provider: &str,
        subject: &str,
    ) -> Result<Option<(Identity, User)>, StoreError> {
        let t = self.lock();
        Ok(t.identities
            .values()
            .find(|i| i.provider == provider && i.subject == subject)
            .and_then(|i| {
                let user = t.users.get(&i.user_id)?;
                Some((i.clone(), user.user.clone()))
            }))
    }

    async fn list_identities(&self, user_id: UserId) -> Result<Vec<Identity>, StoreError> {
        Ok(self
            .lock()
            .identities
            .values()
            .filter(|i| i.user_id == user_id)
            .cloned()
            .collect())
    }

    async fn delete_identity(&self, user_id: UserId, id: i64) -> Result<bool, StoreError> {
        let mut t = self.lock();
        let owned = t.identities.get(&id).is_some_and(|i| i.user_id == user_id);
        if owned {
            t.identities.remove(&id);
        }
        Ok(owned)
    }
}
