//! A circuit breaker in front of the store. When the database cannot be reached, a pool
//! waits out its acquire timeout on every call (its attempts to connect to a server that
//! refuses are retried until then), so every request would take seconds to fail and
//! connections would pile up behind them. Instead, a call that fails as unavailable, or
//! is slow, makes the breaker ask the store to [`probe`](Store::probe) the backend; while
//! the probe fails, every call fails at once (503 with `Retry-After`), calls already
//! waiting included, and a probe runs every [`PROBE_EVERY`] until the backend answers.
//! Only a failed probe opens it: a pool that is merely busy stays closed.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::watch;

use crate::store::{
    ChangeFeed, Counter, EmailToken, ExpiryCutoffs, MailRequest, OutgoingMail, QueuedMail, Session,
    Store, StoreError, Swept, TokenPurpose,
};
use crate::store::{Factor, FactorKind, FactorUpdate, Identity, NewFactor, NewIdentity};
use crate::store::{NewUser, UserLookup, UserRecord, UserUpdate};
use crate::token::TokenHash;
use crate::user::{User, UserId};

/// A call still running after this long makes the breaker probe the backend.
const SUSPECT_AFTER: Duration = Duration::from_millis(250);

/// How often an open breaker probes the backend.
const PROBE_EVERY: Duration = Duration::from_millis(200);

/// After a probe found the backend well, slow calls start no probe for this long: under
/// load many calls are slow, and each probe opens a connection.
const QUIET_AFTER_PROBE: Duration = Duration::from_secs(1);

/// The store, behind the breaker.
pub(super) struct Breaker {
    store: Arc<dyn Store>,
    state: Arc<State>,
}

struct State {
    /// True while the backend is known to be unreachable.
    open: watch::Sender<bool>,
    /// True while a probe (or the loop of probes of an open breaker) runs.
    probing: AtomicBool,
    /// When the last probe found the backend well.
    last_well: std::sync::Mutex<Option<Instant>>,
}

/// The error every call gets while the breaker is open.
#[derive(Debug, thiserror::Error)]
#[error("the database did not answer a probe just now; requests are refused until it does")]
struct Open;

impl Breaker {
    pub(super) fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            state: Arc::new(State {
                open: watch::channel(false).0,
                probing: AtomicBool::new(false),
                last_well: std::sync::Mutex::new(None),
            }),
        }
    }

    /// Runs one store call under the breaker.
    async fn guard<T>(
        &self,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let mut open = self.state.open.subscribe();
        if *open.borrow_and_update() {
            return Err(StoreError::Unavailable(Box::new(Open)));
        }
        tokio::pin!(call);
        let slow = tokio::time::sleep(SUSPECT_AFTER);
        tokio::pin!(slow);
        let mut suspected = false;
        loop {
            tokio::select! {
                result = &mut call => {
                    if matches!(result, Err(StoreError::Unavailable(_))) {
                        self.suspect(true);
                    }
                    return result;
                }
                () = &mut slow, if !suspected => {
                    suspected = true;
                    self.suspect(false);
                }
                changed = open.changed() => {
                    if changed.is_err() || *open.borrow_and_update() {
                        return Err(StoreError::Unavailable(Box::new(Open)));
                    }
                }
            }
        }
    }

    /// Starts a probe unless one runs (or, for a call that is only slow, unless the last
    /// probe found the backend well just now): a failed probe opens the breaker, and
    /// probes continue until one succeeds, which closes it.
    fn suspect(&self, failed: bool) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let recently_well = self
            .state
            .last_well
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_some_and(|at| at.elapsed() < QUIET_AFTER_PROBE);
        if recently_well && !failed {
            return;
        }
        if self.state.probing.swap(true, Ordering::AcqRel) {
            return;
        }
        let store = Arc::clone(&self.store);
        let state = Arc::clone(&self.state);
        runtime.spawn(async move {
            loop {
                match store.probe().await {
                    Ok(()) => {
                        *state
                            .last_well
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner) =
                            Some(Instant::now());
                        if state.open.send_replace(false) {
                            tracing::warn!(target: "tower_auth", "the database answers again; serving requests");
                        }
                        break;
                    }
                    Err(err) => {
                        if !state.open.send_replace(true) {
                            tracing::error!(target: "tower_auth", error = %err, "the database cannot be reached; answering 503 until it can");
                        }
                        tokio::time::sleep(PROBE_EVERY).await;
                    }
                }
            }
            state.probing.store(false, Ordering::Release);
        });
    }
}

#[async_trait]
impl Store for Breaker {
    async fn add_user(&self, user: NewUser) -> Result<User, StoreError> {
        self.guard(self.store.add_user(user)).await
    }

    async fn find_user_by(&self, lookup: UserLookup<'_>) -> Result<Option<UserRecord>, StoreError> {
        self.guard(self.store.find_user_by(lookup)).await
    }

    async fn update_user(&self, id: UserId, update: UserUpdate) -> Result<(), StoreError> {
        self.guard(self.store.update_user(id, update)).await
    }

    async fn replace_password_hash(
        &self,
        id: UserId,
        current: &str,
        new: &str,
    ) -> Result<bool, StoreError> {
        self.guard(self.store.replace_password_hash(id, current, new))
            .await
    }

    async fn delete_user(&self, id: UserId) -> Result<bool, StoreError> {
        self.guard(self.store.delete_user(id)).await
    }

    async fn create_session(
        &self,
        session: Session,
        replace_others: bool,
    ) -> Result<(), StoreError> {
        self.guard(self.store.create_session(session, replace_others))
            .await
    }

    async fn find_session(&self, token: &TokenHash) -> Result<Option<(Session, User)>, StoreError> {
        self.guard(self.store.find_session(token)).await
    }

    async fn touch_session(&self, token: &TokenHash, now_ms: i64) -> Result<(), StoreError> {
        self.guard(self.store.touch_session(token, now_ms)).await
    }

    async fn delete_session(&self, token: &TokenHash) -> Result<bool, StoreError> {
        self.guard(self.store.delete_session(token)).await
    }

    async fn delete_user_sessions(
        &self,
        user_id: UserId,
        except: Option<&TokenHash>,
    ) -> Result<u64, StoreError> {
        self.guard(self.store.delete_user_sessions(user_id, except))
            .await
    }

    async fn list_user_sessions(&self, user_id: UserId) -> Result<Vec<Session>, StoreError> {
        self.guard(self.store.list_user_sessions(user_id)).await
    }

    async fn reauthenticate_session(
        &self,
        token: &TokenHash,
        now_ms: i64,
        methods: crate::AuthMethods,
    ) -> Result<bool, StoreError> {
        self.guard(self.store.reauthenticate_session(token, now_ms, methods))
            .await
    }

    async fn create_token(
        &self,
        token: EmailToken,
        keep_others: Option<u32>,
        mail: &[OutgoingMail],
        answers: Option<i64>,
    ) -> Result<(), StoreError> {
        self.guard(self.store.create_token(token, keep_others, mail, answers))
            .await
    }

    async fn find_token(
        &self,
        hash: &TokenHash,
        purpose: TokenPurpose,
        now_ms: i64,
    ) -> Result<Option<(EmailToken, User)>, StoreError> {
        self.guard(self.store.find_token(hash, purpose, now_ms))
            .await
    }

    async fn redeem_token(
        &self,
        hash: &TokenHash,
        purpose: TokenPurpose,
        now_ms: i64,
        update: UserUpdate,
    ) -> Result<Option<(EmailToken, User)>, StoreError> {
        self.guard(self.store.redeem_token(hash, purpose, now_ms, update))
            .await
    }

    async fn queue_mail(&self, mail: &[OutgoingMail]) -> Result<(), StoreError> {
        self.guard(self.store.queue_mail(mail)).await
    }

    async fn queue_mail_request(&self, request: &MailRequest) -> Result<(), StoreError> {
        self.guard(self.store.queue_mail_request(request)).await
    }

    async fn claim_mail(
        &self,
        now_ms: i64,
        lease_until_ms: i64,
        limit: u32,
    ) -> Result<Vec<QueuedMail>, StoreError> {
        self.guard(self.store.claim_mail(now_ms, lease_until_ms, limit))
            .await
    }

    async fn finish_mail(&self, id: i64) -> Result<bool, StoreError> {
        self.guard(self.store.finish_mail(id)).await
    }

    async fn retry_mail(&self, id: i64, next_attempt_ms: i64) -> Result<(), StoreError> {
        self.guard(self.store.retry_mail(id, next_attempt_ms)).await
    }

    async fn increment_counter(
        &self,
        key: &str,
        now_ms: i64,
        window_ms: i64,
    ) -> Result<Counter, StoreError> {
        self.guard(self.store.increment_counter(key, now_ms, window_ms))
            .await
    }

    async fn get_counter(&self, key: &str, now_ms: i64) -> Result<Option<Counter>, StoreError> {
        self.guard(self.store.get_counter(key, now_ms)).await
    }

    async fn release_counter(&self, key: &str, window_ends_ms: i64) -> Result<(), StoreError> {
        self.guard(self.store.release_counter(key, window_ends_ms))
            .await
    }

    async fn reset_counter(&self, key: &str) -> Result<(), StoreError> {
        self.guard(self.store.reset_counter(key)).await
    }

    async fn delete_expired(&self, cutoffs: ExpiryCutoffs) -> Result<Swept, StoreError> {
        self.guard(self.store.delete_expired(cutoffs)).await
    }

    async fn add_factors(
        &self,
        factors: Vec<NewFactor>,
        replace: Option<(UserId, FactorKind)>,
    ) -> Result<Vec<i64>, StoreError> {
        self.guard(self.store.add_factors(factors, replace)).await
    }

    async fn list_factors(&self, user_id: UserId) -> Result<Vec<Factor>, StoreError> {
        self.guard(self.store.list_factors(user_id)).await
    }

    async fn find_factor_by_credential(
        &self,
        credential_id: &str,
    ) -> Result<Option<(Factor, User)>, StoreError> {
        self.guard(self.store.find_factor_by_credential(credential_id))
            .await
    }

    async fn update_factor(
        &self,
        user_id: UserId,
        id: i64,
        update: FactorUpdate,
    ) -> Result<bool, StoreError> {
        self.guard(self.store.update_factor(user_id, id, update))
            .await
    }

    async fn delete_factors(
        &self,
        user_id: UserId,
        kind: Option<FactorKind>,
        id: Option<i64>,
    ) -> Result<u64, StoreError> {
        self.guard(self.store.delete_factors(user_id, kind, id))
            .await
    }

    async fn add_identity(&self, identity: NewIdentity) -> Result<i64, StoreError> {
        self.guard(self.store.add_identity(identity)).await
    }

    async fn find_identity(
        &self,
        provider: &str,
        subject: &str,
    ) -> Result<Option<(Identity, User)>, StoreError> {
        self.guard(self.store.find_identity(provider, subject))
            .await
    }

    async fn list_identities(&self, user_id: UserId) -> Result<Vec<Identity>, StoreError> {
        self.guard(self.store.list_identities(user_id)).await
    }

    async fn delete_identity(&self, user_id: UserId, id: i64) -> Result<bool, StoreError> {
        self.guard(self.store.delete_identity(user_id, id)).await
    }

    async fn change_feed(&self) -> Result<ChangeFeed, StoreError> {
        self.store.change_feed().await
    }

    async fn probe(&self) -> Result<(), StoreError> {
        self.store.probe().await
    }
}
