//! The one hand-written [`Store`] wrapper of the tests: it delegates to another store,
//! counts each call of each method, and fails every call on demand (with an error whose
//! text must never reach a client).
//!
//! Include it from a test file with
//!
//! ```ignore
//! #[path = "support/store.rs"]
//! mod store_support;
//! ```
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tower_auth::store::{
    Counter, EmailToken, ExpiryCutoffs, NewUser, Session, Swept, TokenHash, TokenPurpose,
    UserLookup, UserRecord, UserUpdate,
};
use tower_auth::store::{Factor, FactorKind, FactorUpdate, Identity, NewFactor, NewIdentity};
use tower_auth::store::{MailRequest, OutgoingMail, QueuedMail};
use tower_auth::{MemoryStore, Store, StoreError, User, UserId};

/// What a failing store says: internals that must stay in the logs.
pub const BACKEND_SECRET: &str = "disk on fire at /var/lib/secret-db (password=hunter2)";

/// How many times each `Store` method was called. Clones share the counts.
#[derive(Clone, Default)]
pub struct Calls(Arc<Mutex<BTreeMap<&'static str, usize>>>);

impl Calls {
    fn hit(&self, method: &'static str) {
        *self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(method)
            .or_default() += 1;
    }

    /// Every method's count so far.
    pub fn snapshot(&self) -> BTreeMap<&'static str, usize> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The calls made since `before` (a [`snapshot`](Self::snapshot)), by method.
    pub fn since(&self, before: &BTreeMap<&'static str, usize>) -> BTreeMap<&'static str, usize> {
        self.snapshot()
            .into_iter()
            .filter_map(|(method, n)| {
                let delta = n - before.get(method).copied().unwrap_or(0);
                (delta > 0).then_some((method, delta))
            })
            .collect()
    }

    /// [`since`](Self::since) without the mail outbox's methods: the delivery worker runs
    /// on its own schedule, not as part of the request being counted.
    pub fn requests_since(
        &self,
        before: &BTreeMap<&'static str, usize>,
    ) -> BTreeMap<&'static str, usize> {
        let mut calls = self.since(before);
        calls.retain(|method, _| !MAIL_WORKER_METHODS.contains(method));
        calls
    }
}

/// What the mail delivery worker calls.
const MAIL_WORKER_METHODS: [&str; 3] = ["claim_mail", "finish_mail", "retry_mail"];

/// A [`Store`] that delegates to `inner`, counting calls, and fails every call while
/// [`failing`](Self::set_failing) is on.
#[derive(Clone)]
pub struct InstrumentedStore {
    inner: Arc<dyn Store>,
    calls: Calls,
    failing: Arc<AtomicBool>,
}

impl InstrumentedStore {
    /// Around a fresh [`MemoryStore`].
    pub fn memory() -> Self {
        Self::around(Arc::new(MemoryStore::new()))
    }

    /// A store whose every call fails with [`BACKEND_SECRET`].
    pub fn failing() -> Self {
        let store = Self::memory();
        store.set_failing(true);
        store
    }

    /// Around any store.
    pub fn around(inner: Arc<dyn Store>) -> Self {
        Self {
            inner,
            calls: Calls::default(),
            failing: Arc::default(),
        }
    }

    /// The call counts (shared with clones).
    pub fn calls(&self) -> Calls {
        self.calls.clone()
    }

    /// Turns failing on or off.
    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    fn enter(&self, method: &'static str) -> Result<&dyn Store, StoreError> {
        self.calls.hit(method);
        if self.failing.load(Ordering::SeqCst) {
            Err(StoreError::Backend(BACKEND_SECRET.into()))
        } else {
            Ok(&*self.inner)
        }
    }
}

#[async_trait]
impl Store for InstrumentedStore {
    async fn add_user(&self, user: NewUser) -> Result<User, StoreError> {
        self.enter("add_user")?.add_user(user).await
    }

    async fn find_user_by(&self, lookup: UserLookup<'_>) -> Result<Option<UserRecord>, StoreError> {
        self.enter("find_user_by")?.find_user_by(lookup).await
    }

    async fn update_user(&self, id: UserId, update: UserUpdate) -> Result<(), StoreError> {
        self.enter("update_user")?.update_user(id, update).await
    }

    async fn replace_password_hash(
        &self,
        id: UserId,
        current: &str,
        new: &str,
    ) -> Result<bool, StoreError> {
        self.enter("replace_password_hash")?
            .replace_password_hash(id, current, new)
            .await
    }

    async fn delete_user(&self, id: UserId) -> Result<bool, StoreError> {
        self.enter("delete_user")?.delete_user(id).await
    }

    async fn create_session(
        &self,
        session: Session,
        replace_others: bool,
    ) -> Result<(), StoreError> {
        self.enter("create_session")?
            .create_session(session, replace_others)
            .await
    }

    async fn find_session(&self, token: &TokenHash) -> Result<Option<(Session, User)>, StoreError> {
        self.enter("find_session")?.find_session(token).await
    }

    async fn touch_session(&self, token: &TokenHash, now_ms: i64) -> Result<(), StoreError> {
        self.enter("touch_session")?
            .touch_session(token, now_ms)
            .await
    }

    async fn delete_session(&self, token: &TokenHash) -> Result<bool, StoreError> {
        self.enter("delete_session")?.delete_session(token).await
    }

    async fn delete_user_sessions(
        &self,
        user_id: UserId,
        except: Option<&TokenHash>,
    ) -> Result<u64, StoreError> {
        self.enter("delete_user_sessions")?
            .delete_user_sessions(user_id, except)
            .await
    }

    async fn list_user_sessions(&self, user_id: UserId) -> Result<Vec<Session>, StoreError> {
        self.enter("list_user_sessions")?
            .list_user_sessions(user_id)
            .await
    }

    async fn reauthenticate_session(
        &self,
        token: &TokenHash,
        now_ms: i64,
        methods: tower_auth::AuthMethods,
    ) -> Result<bool, StoreError> {
        self.enter("reauthenticate_session")?
            .reauthenticate_session(token, now_ms, methods)
            .await
    }

    async fn create_token(
        &self,
        token: EmailToken,
        keep_others: Option<u32>,
        mail: &[OutgoingMail],
        answers: Option<i64>,
    ) -> Result<(), StoreError> {
        self.enter("create_token")?
            .create_token(token, keep_others, mail, answers)
            .await
    }

    async fn queue_mail(&self, mail: &[OutgoingMail]) -> Result<(), StoreError> {
        self.enter("queue_mail")?.queue_mail(mail).await
    }

    async fn queue_mail_request(&self, request: &MailRequest) -> Result<(), StoreError> {
        self.enter("queue_mail_request")?
            .queue_mail_request(request)
            .await
    }

    async fn claim_mail(
        &self,
        now_ms: i64,
        lease_until_ms: i64,
        limit: u32,
    ) -> Result<Vec<QueuedMail>, StoreError> {
        self.enter("claim_mail")?
            .claim_mail(now_ms, lease_until_ms, limit)
            .await
    }

    async fn finish_mail(&self, id: i64) -> Result<bool, StoreError> {
        self.enter("finish_mail")?.finish_mail(id).await
    }

    async fn retry_mail(&self, id: i64, next_attempt_ms: i64) -> Result<(), StoreError> {
        self.enter("retry_mail")?
            .retry_mail(id, next_attempt_ms)
            .await
    }

    async fn find_token(
        &self,
        hash: &TokenHash,
        purpose: TokenPurpose,
        now_ms: i64,
    ) -> Result<Option<(EmailToken, User)>, StoreError> {
        self.enter("find_token")?
            .find_token(hash, purpose, now_ms)
            .await
    }

    async fn redeem_token(
        &self,
        hash: &TokenHash,
        purpose: TokenPurpose,
        now_ms: i64,
        update: UserUpdate,
    ) -> Result<Option<(EmailToken, User)>, StoreError> {
        self.enter("redeem_token")?
            .redeem_token(hash, purpose, now_ms, update)
            .await
    }

    async fn increment_counter(
        &self,
        key: &str,
        now_ms: i64,
        window_ms: i64,
    ) -> Result<Counter, StoreError> {
        self.enter("increment_counter")?
            .increment_counter(key, now_ms, window_ms)
            .await
    }

    async fn get_counter(&self, key: &str, now_ms: i64) -> Result<Option<Counter>, StoreError> {
        self.enter("get_counter")?.get_counter(key, now_ms).await
    }

    async fn release_counter(&self, key: &str, window_ends_ms: i64) -> Result<(), StoreError> {
        self.enter("release_counter")?
            .release_counter(key, window_ends_ms)
            .await
    }

    async fn reset_counter(&self, key: &str) -> Result<(), StoreError> {
        self.enter("reset_counter")?.reset_counter(key).await
    }

    async fn delete_expired(&self, cutoffs: ExpiryCutoffs) -> Result<Swept, StoreError> {
        self.enter("delete_expired")?.delete_expired(cutoffs).await
    }

    async fn add_factors(
        &self,
        factors: Vec<NewFactor>,
        replace: Option<(UserId, FactorKind)>,
    ) -> Result<Vec<i64>, StoreError> {
        self.enter("add_factors")?
            .add_factors(factors, replace)
            .await
    }

    async fn list_factors(&self, user_id: UserId) -> Result<Vec<Factor>, StoreError> {
        self.enter("list_factors")?.list_factors(user_id).await
    }

    async fn find_factor_by_credential(
        &self,
        credential_id: &str,
    ) -> Result<Option<(Factor, User)>, StoreError> {
        self.enter("find_factor_by_credential")?
            .find_factor_by_credential(credential_id)
            .await
    }

    async fn update_factor(
        &self,
        user_id: UserId,
        id: i64,
        update: FactorUpdate,
    ) -> Result<bool, StoreError> {
        self.enter("update_factor")?
            .update_factor(user_id, id, update)
            .await
    }

    async fn delete_factors(
        &self,
        user_id: UserId,
        kind: Option<FactorKind>,
        id: Option<i64>,
    ) -> Result<u64, StoreError> {
        self.enter("delete_factors")?
            .delete_factors(user_id, kind, id)
            .await
    }

    async fn add_identity(&self, identity: NewIdentity) -> Result<i64, StoreError> {
        self.enter("add_identity")?.add_identity(identity).await
    }

    async fn find_identity(
        &self,
        provider: &str,
        subject: &str,
    ) -> Result<Option<(Identity, User)>, StoreError> {
        self.enter("find_identity")?
            .find_identity(provider, subject)
            .await
    }

    async fn list_identities(&self, user_id: UserId) -> Result<Vec<Identity>, StoreError> {
        self.enter("list_identities")?
            .list_identities(user_id)
            .await
    }

    async fn delete_identity(&self, user_id: UserId, id: i64) -> Result<bool, StoreError> {
        self.enter("delete_identity")?
            .delete_identity(user_id, id)
            .await
    }
}
