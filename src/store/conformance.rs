//! The conformance suite every [`Store`] backend must pass: one set of assertions, run
//! unchanged against [`MemoryStore`](crate::MemoryStore), `SqliteStore`, `PgStore` and any
//! store you write yourself.
//!
//! [`run`] exercises every method of the [`Store`] trait, including its concurrency
//! guarantees (one winner among concurrent registrations of one email, one winner among
//! concurrent redemptions of one emailed token, no lost counter increments), and panics with
//! a message naming the broken rule at the first violation. Call it from a test:
//!
//! ```
//! # tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap().block_on(async {
//! tower_auth::store::conformance::run(tower_auth::MemoryStore::new()).await;
//! # });
//! ```
//!
//! # Running against a database that holds other data
//!
//! The suite only talks to the store through the [`Store`] trait, so it is safe to point
//! at a database that already has users and sessions:
//!
//! - every email, token and counter key it creates carries a random per-run suffix;
//! - the sessions, tokens and counters it creates live either in 1970 or in the 2090s of a
//!   fake clock, and the only global operation, [`Store::delete_expired`], is called with
//!   1970 timestamps, so it removes nothing a real deployment wrote;
//! - it deletes the sessions and counters it created; the users mostly stay, under emails
//!   ending in `@conformance.invalid`.
//!
//! Two runs of the suite must not overlap in time on one database: both would sweep the
//! same 1970 records, and the counts [`Store::delete_expired`] returns would not match.
//! Runs one after another on one database are fine.
//!
//! The suite spawns tasks with [`tokio::spawn`], so it must run inside a tokio runtime; use
//! a multi-threaded one (`#[tokio::test(flavor = "multi_thread")]`) so the concurrency
//! checks really race.

use std::sync::Arc;

use tokio::sync::Barrier;
use tokio::task::JoinSet;

use super::{Change, ChangeFeed, Store, StoreError};
use super::{
    Counter, EmailToken, ExpiryCutoffs, FirstLink, MailRequest, OutboxEntry, OutgoingMail, Session,
    Swept, TokenPurpose,
};
use super::{EndSessions, NewUser, UserLookup, UserRecord, UserUpdate};
use super::{FactorKind, FactorUpdate, NewFactor, NewIdentity};
use crate::auth_methods::{AuthMethod, AuthMethods};
use crate::token::TokenHash;
use crate::user::{User, UserId};

/// How many tasks race to register one email.
const REGISTRATION_RACERS: usize = 50;
/// How many tasks race to redeem one reset token.
const RESET_RACERS: usize = 10;
/// How many tasks race to increment one counter.
const COUNTER_RACERS: usize = 50;
/// Sessions looked up at once, each many times, by the concurrent-lookup check.
const SESSION_LOOKERS: usize = 40;

/// A fixed "now" (1970-01-12) for the expiry sweep: far before any real session, so the
/// sweep never touches data a real deployment wrote.
const SWEEP_NOW_MS: i64 = 1_000_000_000;
/// The idle cutoff used with [`SWEEP_NOW_MS`].
const SWEEP_IDLE_CUTOFF_MS: i64 = 900_000_000;
/// A fake "now" (2096) for sessions that must survive any sweep the suite makes.
const LIVE_MS: i64 = 4_000_000_000_000;
/// One day in milliseconds.
const DAY_MS: i64 = 86_400_000;
/// An id no backend hands out in practice.
const UNKNOWN_ID: UserId = UserId(i64::MAX);

/// Runs the whole suite against `store`, panicking at the first violation of the
/// [`Store`] contract.
///
/// The store is moved behind an `Arc` and shared with the spawned tasks of the
/// concurrency checks; pass a clone if the test needs the store afterwards (every
/// backend's clones share their data).
///
/// # Panics
/// On any broken rule, with a message saying which; also when called outside a tokio
/// runtime.
pub async fn run<S: Store>(store: S) {
    run_shared(Arc::new(store)).await;
}

/// Like [`run`], for a store already behind an `Arc<dyn Store>` (for example the one
/// [`store::connect`](crate::store::connect) returns).
///
/// # Panics
/// As [`run`].
pub async fn run_shared(store: Arc<dyn Store>) {
    let suite = Suite {
        store,
        run_id: uuid::Uuid::new_v4().simple().to_string(),
    };
    suite.users_get_distinct_ids_and_unique_emails().await;
    suite.every_lookup_finds_and_misses().await;
    suite.update_user_changes_only_what_it_names().await;
    suite
        .password_hash_is_replaced_only_while_it_is_current()
        .await;
    suite.delete_user_takes_sessions_and_tokens_with_it().await;
    suite.tokens_round_trip_and_expire_at_the_boundary().await;
    suite.new_tokens_replace_only_the_same_purpose().await;
    suite.tokens_die_when_the_account_email_changes().await;
    suite
        .redeeming_consumes_the_token_and_applies_the_update()
        .await;
    suite.sessions_round_trip().await;
    suite.sessions_are_deleted_one_by_one_and_per_user().await;
    suite.replace_others_ends_only_that_users_sessions().await;
    suite
        .session_creation_refuses_collisions_and_unknown_users()
        .await;
    suite.sessions_are_listed_per_user().await;
    suite.delete_user_sessions_can_keep_one().await;
    suite
        .reauthentication_sets_only_the_authentication_time()
        .await;
    suite.updates_end_sessions_in_the_same_transaction().await;
    suite.updates_end_tokens_in_the_same_transaction().await;
    suite.new_tokens_keep_only_the_newest_others().await;
    suite.expired_sessions_are_swept_at_the_boundary().await;
    suite.sweeps_go_past_one_batch().await;
    suite.remembered_sessions_have_their_own_idle_cutoff().await;
    suite.expired_tokens_and_counters_are_swept().await;
    suite.counters_count_in_fixed_windows().await;
    suite
        .counter_release_takes_back_one_event_of_its_window()
        .await;
    suite
        .concurrent_registrations_of_one_email_have_one_winner()
        .await;
    suite.concurrent_token_redemptions_have_one_winner().await;
    suite
        .concurrent_session_lookups_each_get_their_own_row()
        .await;
    suite.concurrent_increments_are_not_lost().await;
    suite.same_user_collision_is_not_an_overwrite().await;
    suite.unknown_id_is_not_found_before_any_collision().await;
    suite.email_confirmation_is_stored_and_read_back().await;
    suite.tokens_and_their_mail_commit_together().await;
    suite.new_accounts_commit_with_their_first_link().await;
    suite.concurrent_mail_claims_never_share_a_message().await;
    suite.mail_requests_are_answered_once().await;
    suite.changes_are_announced_as_they_commit().await;
    suite.factors_round_trip_and_replace_per_kind().await;
    suite.factor_updates_are_compare_and_set().await;
    suite.credential_ids_are_unique_across_accounts().await;
    suite.identities_link_one_account_each().await;
    // Last: its sweep removes 1970 records, which earlier checks count exactly.
    suite.the_outbox_claims_each_message_once_per_lease().await;
}

/// One run of the suite: the store and the suffix that keeps this run's data apart.
struct Suite {
    store: Arc<dyn Store>,
    run_id: String,
}

impl Suite {
    /// An email unique to this run.
    fn email(&self, label: &str) -> String {
        format!("{label}-{}@conformance.invalid", self.run_id)
    }

    /// A counter key unique to this run.
    fn key(&self, label: &str) -> String {
        format!("conformance:{label}:{}", self.run_id)
    }

    /// A token hash never used before.
    fn fresh_token(&self, label: &str) -> TokenHash {
        TokenHash::of(&format!(
            "conformance-{label}-{}-{}",
            self.run_id,
            uuid::Uuid::new_v4()
        ))
    }

    /// Registers a user with a unique email and checks the returned record.
    async fn new_user(&self, label: &str) -> User {
        let email = self.email(label);
        let password_hash = format!("hash-of-{label}");
        let user = self
            .store
            .add_user(NewUser {
                email: email.clone(),
                password_hash: password_hash.clone(),
                created_at_ms: LIVE_MS,
                first_link: None,
                email_confirmed_at_ms: None,
            })
            .await
            .unwrap_or_else(|e| panic!("add_user({email}) failed: {e:?}"));
        assert_eq!(
            user.email, email,
            "add_user must return the email it stored"
        );
        assert_eq!(
            user.created_at_ms, LIVE_MS,
            "add_user must return the creation time it stored"
        );
        assert_eq!(
            self.find_id(user.id).await.password_hash,
            password_hash,
            "add_user must store the password hash"
        );
        user
    }

    async fn find(&self, lookup: UserLookup<'_>) -> Option<UserRecord> {
        self.store
            .find_user_by(lookup)
            .await
            .unwrap_or_else(|e| panic!("find_user_by({lookup:?}) failed: {e:?}"))
    }

    async fn find_id(&self, id: UserId) -> UserRecord {
        self.find(UserLookup::Id(id))
            .await
            .unwrap_or_else(|| panic!("user {id} must exist"))
    }

    async fn update(&self, id: UserId, update: UserUpdate) -> Result<(), StoreError> {
        self.store.update_user(id, update).await
    }

    async fn create_session(&self, session: Session, replace_others: bool) {
        let user = session.user_id;
        self.store
            .create_session(session, replace_others)
            .await
            .unwrap_or_else(|e| {
                panic!("create_session for user {user} (replace_others={replace_others}): {e:?}")
            });
    }

    async fn find_session(&self, token: &TokenHash) -> Option<(Session, User)> {
        self.store
            .find_session(token)
            .await
            .unwrap_or_else(|e| panic!("find_session failed: {e:?}"))
    }

    async fn session_exists(&self, token: &TokenHash) -> bool {
        self.find_session(token).await.is_some()
    }

    async fn delete_session(&self, token: &TokenHash) -> bool {
        self.store
            .delete_session(token)
            .await
            .unwrap_or_else(|e| panic!("delete_session failed: {e:?}"))
    }

    async fn delete_user_sessions(&self, user: UserId) -> u64 {
        self.store
            .delete_user_sessions(user, None)
            .await
            .unwrap_or_else(|e| panic!("delete_user_sessions({user}) failed: {e:?}"))
    }

    async fn list_sessions(&self, user: UserId) -> Vec<Session> {
        let mut sessions = self
            .store
            .list_user_sessions(user)
            .await
            .unwrap_or_else(|e| panic!("list_user_sessions({user}) failed: {e:?}"));
        sessions.sort_by_key(|s| *s.token_hash.as_bytes());
        sessions
    }

    /// A sweep in which remembered sessions have the same idle cutoff as the others.
    async fn sweep(&self, now_ms: i64, idle_cutoff_ms: i64) -> Swept {
        self.sweep_with(ExpiryCutoffs {
            now_ms,
            idle_cutoff_ms,
            remembered_idle_cutoff_ms: idle_cutoff_ms,
        })
        .await
    }

    async fn sweep_with(&self, cutoffs: ExpiryCutoffs) -> Swept {
        self.store
            .delete_expired(cutoffs)
            .await
            .unwrap_or_else(|e| panic!("delete_expired({cutoffs:?}) failed: {e:?}"))
    }

    async fn increment(&self, key: &str, now_ms: i64, window_ms: i64) -> Counter {
        self.store
            .increment_counter(key, now_ms, window_ms)
            .await
            .unwrap_or_else(|e| panic!("increment_counter({key}, {now_ms}) failed: {e:?}"))
    }

    async fn counter(&self, key: &str, now_ms: i64) -> Option<Counter> {
        self.store
            .get_counter(key, now_ms)
            .await
            .unwrap_or_else(|e| panic!("get_counter({key}, {now_ms}) failed: {e:?}"))
    }

    async fn release_counter(&self, key: &str, window_ends_ms: i64) {
        self.store
            .release_counter(key, window_ends_ms)
            .await
            .unwrap_or_else(|e| panic!("release_counter({key}, {window_ends_ms}) failed: {e:?}"));
    }

    async fn reset_counter(&self, key: &str) {
        self.store
            .reset_counter(key)
            .await
            .unwrap_or_else(|e| panic!("reset_counter({key}) failed: {e:?}"));
    }

    /// A valid token of `purpose` for `user`, sent to the user's own address.
    fn token_for(&self, label: &str, user: &User, purpose: TokenPurpose) -> EmailToken {
        EmailToken {
            hash: self.fresh_token(label),
            user_id: user.id,
            purpose,
            sent_to: user.email.clone(),
            account_email: user.email.clone(),
            created_at_ms: LIVE_MS,
            expires_at_ms: LIVE_MS + DAY_MS,
        }
    }

    async fn create_token(&self, token: EmailToken, replace_others: bool) {
        let purpose = token.purpose;
        self.store
            .create_token(token, replace_others.then_some(0), &[], None)
            .await
            .unwrap_or_else(|e| panic!("create_token({purpose}, {replace_others}) failed: {e:?}"));
    }

    async fn find_token(
        &self,
        hash: &TokenHash,
        purpose: TokenPurpose,
        now_ms: i64,
    ) -> Option<(EmailToken, User)> {
        self.store
            .find_token(hash, purpose, now_ms)
            .await
            .unwrap_or_else(|e| panic!("find_token({purpose}, {now_ms}) failed: {e:?}"))
    }

    async fn redeem(
        &self,
        hash: &TokenHash,
        purpose: TokenPurpose,
        now_ms: i64,
        update: UserUpdate,
    ) -> Result<Option<(EmailToken, User)>, StoreError> {
        self.store.redeem_token(hash, purpose, now_ms, update).await
    }

    // ----- users --------------------------------------------------------------------------

    async fn users_get_distinct_ids_and_unique_emails(&self) {
        let a = self.new_user("distinct-a").await;
        let b = self.new_user("distinct-b").await;
        assert_ne!(a.id, b.id, "two users must get two distinct ids");
        let before = self.find_id(a.id).await;

        let duplicate = self
            .store
            .add_user(NewUser {
                email: a.email.clone(),
                password_hash: "another-hash".into(),
                created_at_ms: LIVE_MS + 1,
                first_link: None,
                email_confirmed_at_ms: None,
            })
            .await;
        assert!(
            matches!(duplicate, Err(StoreError::Duplicate)),
            "add_user with a registered email must fail with StoreError::Duplicate, got {duplicate:?}"
        );
        assert_eq!(
            self.find_id(a.id).await,
            before,
            "a refused duplicate registration must leave the first account untouched"
        );
        assert_eq!(
            self.find(UserLookup::Email(&a.email))
                .await
                .map(|r| r.user.id),
            Some(a.id),
            "after a refused duplicate, the email must still lead to the first account"
        );
    }

    async fn every_lookup_finds_and_misses(&self) {
        let user = self.new_user("lookup").await;
        let expected = UserRecord::new(user.clone(), "hash-of-lookup");
        assert_eq!(
            self.find(UserLookup::Id(user.id)).await,
            Some(expected.clone()),
            "UserLookup::Id must find the user and its hash as stored"
        );
        assert_eq!(
            self.find(UserLookup::Email(&user.email)).await,
            Some(expected),
            "UserLookup::Email must find the user and its hash as stored"
        );
        assert_eq!(
            self.find(UserLookup::Id(UNKNOWN_ID)).await,
            None,
            "UserLookup::Id of an unknown id must find nothing"
        );
        assert_eq!(
            self.find(UserLookup::Email(&self.email("nobody"))).await,
            None,
            "UserLookup::Email of an unregistered email must find nothing"
        );
    }

    async fn update_user_changes_only_what_it_names(&self) {
        let user = self.new_user("update").await;
        let other = self.new_user("update-bystander").await;
        let other_before = self.find_id(other.id).await;

        self.update(user.id, UserUpdate::new().password_hash("new-hash"))
            .await
            .expect("updating the password hash of an existing user");
        assert_eq!(
            self.find_id(user.id).await,
            UserRecord::new(user.clone(), "new-hash"),
            "a password update must set the hash and change nothing else"
        );

        let moved = self.email("update-moved");
        self.update(user.id, UserUpdate::new().email(moved.clone()))
            .await
            .expect("changing the email of an existing user");
        let after = self.find_id(user.id).await;
        assert_eq!(
            after.user.email, moved,
            "update_user must set the new email"
        );
        assert_eq!(
            after.password_hash, "new-hash",
            "an email update must not touch the password hash"
        );
        assert_eq!(
            self.find(UserLookup::Email(&moved))
                .await
                .map(|r| r.user.id),
            Some(user.id),
            "the new email must lead to the account"
        );
        assert_eq!(
            self.find(UserLookup::Email(&user.email)).await,
            None,
            "the old email must lead nowhere after a change"
        );

        let taken = self
            .update(
                user.id,
                UserUpdate::new()
                    .email(other.email.clone())
                    .password_hash("never-set"),
            )
            .await;
        assert!(
            matches!(taken, Err(StoreError::Duplicate)),
            "update_user to another user's email must fail with StoreError::Duplicate, \
             got {taken:?}"
        );
        assert_eq!(
            self.find_id(user.id).await,
            after,
            "a refused update must change nothing, not even the fields it could set"
        );

        self.update(user.id, UserUpdate::new())
            .await
            .expect("an empty update of an existing user");
        assert_eq!(
            self.find_id(user.id).await,
            after,
            "an empty update must change nothing"
        );
        let unknown = self
            .update(UNKNOWN_ID, UserUpdate::new().password_hash("x"))
            .await;
        assert!(
            matches!(unknown, Err(StoreError::NotFound)),
            "update_user of an unknown id must fail with StoreError::NotFound, got {unknown:?}"
        );
        assert_eq!(
            self.find_id(other.id).await,
            other_before,
            "updates must not touch other users"
        );
    }

    async fn password_hash_is_replaced_only_while_it_is_current(&self) {
        let user = self.new_user("cas").await;
        let replaced = |current: &'static str, new: &'static str| {
            let store = Arc::clone(&self.store);
            async move {
                store
                    .replace_password_hash(user.id, current, new)
                    .await
                    .unwrap_or_else(|e| panic!("replace_password_hash failed: {e:?}"))
            }
        };
        assert!(
            replaced("hash-of-cas", "upgraded").await,
            "replace_password_hash must replace the current hash"
        );
        assert_eq!(self.find_id(user.id).await.password_hash, "upgraded");
        assert!(
            !replaced("hash-of-cas", "stale").await,
            "replace_password_hash must refuse when the hash changed in between"
        );
        assert_eq!(
            self.find_id(user.id).await.password_hash,
            "upgraded",
            "a refused replacement must change nothing"
        );
        let unknown = self
            .store
            .replace_password_hash(UNKNOWN_ID, "upgraded", "x")
            .await
            .expect("replace_password_hash of an unknown user");
        assert!(!unknown, "an unknown user has nothing to replace");
    }

    async fn delete_user_takes_sessions_and_tokens_with_it(&self) {
        let user = self.new_user("delete-user").await;
        let other = self.new_user("delete-user-other").await;
        let session = self.live_session("delete-user", user.id);
        self.create_session(session.clone(), false).await;
        let token = self.token_for("delete-user", &user, TokenPurpose::ResetPassword);
        self.create_token(token.clone(), false).await;
        let kept = self.live_session("delete-user-other", other.id);
        self.create_session(kept.clone(), false).await;

        assert!(
            self.store
                .delete_user(user.id)
                .await
                .expect("delete_user of an existing user"),
            "delete_user must say the user existed"
        );
        assert_eq!(
            self.find(UserLookup::Id(user.id)).await,
            None,
            "a deleted user must not be found by id"
        );
        assert_eq!(
            self.find(UserLookup::Email(&user.email)).await,
            None,
            "a deleted user must not be found by email"
        );
        assert!(
            !self.session_exists(&session.token_hash).await,
            "delete_user must delete the user's sessions"
        );
        assert_eq!(
            self.find_token(&token.hash, token.purpose, LIVE_MS).await,
            None,
            "delete_user must delete the user's tokens"
        );
        assert!(
            !self
                .store
                .delete_user(user.id)
                .await
                .expect("delete_user of a deleted user"),
            "delete_user of an unknown id must say false"
        );
        assert!(
            self.session_exists(&kept.token_hash).await,
            "delete_user must not touch other users' sessions"
        );
        self.new_user("delete-user").await;
        self.delete_user_sessions(other.id).await;
    }

    // ----- emailed tokens -----------------------------------------------------------------

    async fn tokens_round_trip_and_expire_at_the_boundary(&self) {
        let user = self.new_user("token").await;
        let token = self.token_for("token", &user, TokenPurpose::ConfirmEmail);
        self.create_token(token.clone(), false).await;

        assert_eq!(
            self.find_token(&token.hash, TokenPurpose::ConfirmEmail, LIVE_MS)
                .await,
            Some((token.clone(), user.clone())),
            "find_token must return the token with every field as stored, and its user"
        );
        assert_eq!(
            self.find_token(&token.hash, TokenPurpose::ResetPassword, LIVE_MS)
                .await,
            None,
            "find_token must not find a token under another purpose"
        );
        assert_eq!(
            self.find_token(&self.fresh_token("token-unknown"), token.purpose, LIVE_MS)
                .await,
            None,
            "find_token of an unknown hash must find nothing"
        );
        assert!(
            self.find_token(&token.hash, token.purpose, token.expires_at_ms - 1)
                .await
                .is_some(),
            "a token must be valid until just before its expiry"
        );
        assert_eq!(
            self.find_token(&token.hash, token.purpose, token.expires_at_ms)
                .await,
            None,
            "a token must be invalid from its expiry on (expires_at_ms > now_ms)"
        );
        assert_eq!(
            self.redeem(
                &token.hash,
                token.purpose,
                token.expires_at_ms,
                UserUpdate::new()
            )
            .await
            .expect("redeem_token of an expired token"),
            None,
            "redeem_token must refuse an expired token"
        );

        let collision = EmailToken {
            user_id: user.id,
            ..self.token_for("token-collision", &user, TokenPurpose::MagicLink)
        };
        let collision = EmailToken {
            hash: token.hash,
            ..collision
        };
        let refused = self.store.create_token(collision, Some(0), &[], None).await;
        assert!(
            matches!(refused, Err(StoreError::Duplicate)),
            "create_token with a stored hash must fail with StoreError::Duplicate (even with \
             replace_others), got {refused:?}"
        );
        assert_eq!(
            self.find_token(&token.hash, TokenPurpose::ConfirmEmail, LIVE_MS)
                .await,
            Some((token.clone(), user.clone())),
            "a refused collision must leave the stored token as it was"
        );
        let orphan = EmailToken {
            user_id: UNKNOWN_ID,
            ..self.token_for("token-orphan", &user, TokenPurpose::MagicLink)
        };
        let refused = self.store.create_token(orphan, None, &[], None).await;
        assert!(
            matches!(refused, Err(StoreError::NotFound)),
            "create_token for an unknown user must fail with StoreError::NotFound, got {refused:?}"
        );
    }

    async fn new_tokens_replace_only_the_same_purpose(&self) {
        let user = self.new_user("replace-token").await;
        let other = self.new_user("replace-token-other").await;
        let first = self.token_for("replace-1", &user, TokenPurpose::ResetPassword);
        let confirm = self.token_for("replace-confirm", &user, TokenPurpose::ConfirmEmail);
        let others = self.token_for("replace-other", &other, TokenPurpose::ResetPassword);
        for token in [&first, &confirm, &others] {
            self.create_token(token.clone(), false).await;
        }
        let second = self.token_for("replace-2", &user, TokenPurpose::ResetPassword);
        self.create_token(second.clone(), false).await;
        assert!(
            self.find_token(&first.hash, first.purpose, LIVE_MS)
                .await
                .is_some(),
            "create_token without replace_others must keep the user's other tokens"
        );
        let third = self.token_for("replace-3", &user, TokenPurpose::ResetPassword);
        self.create_token(third.clone(), true).await;
        for (what, token, alive) in [
            ("the user's earlier token of that purpose", &first, false),
            (
                "the user's other earlier token of that purpose",
                &second,
                false,
            ),
            ("the new token", &third, true),
            ("the user's token of another purpose", &confirm, true),
            ("another user's token of that purpose", &others, true),
        ] {
            assert_eq!(
                self.find_token(&token.hash, token.purpose, LIVE_MS)
                    .await
                    .is_some(),
                alive,
                "after create_token with replace_others, {what} must {}",
                if alive { "stay" } else { "be gone" }
            );
        }
    }

    async fn tokens_die_when_the_account_email_changes(&self) {
        let user = self.new_user("email-bound").await;
        let token = self.token_for("email-bound", &user, TokenPurpose::MagicLink);
        self.create_token(token.clone(), false).await;
        // An email-change token goes to the new address but is bound to the current one.
        let change = EmailToken {
            sent_to: self.email("email-bound-new"),
            ..self.token_for("email-bound-change", &user, TokenPurpose::ChangeEmail)
        };
        self.create_token(change.clone(), false).await;
        assert_eq!(
            self.find_token(&change.hash, TokenPurpose::ChangeEmail, LIVE_MS)
                .await
                .map(|(t, _)| t.sent_to),
            Some(change.sent_to.clone()),
            "a token sent elsewhere is valid while the account has its account_email"
        );

        self.update(
            user.id,
            UserUpdate::new().email(self.email("email-bound-moved")),
        )
        .await
        .expect("changing the email");
        for held in [&token, &change] {
            assert_eq!(
                self.find_token(&held.hash, held.purpose, LIVE_MS).await,
                None,
                "a token issued to the old address must be invalid once the email changed"
            );
            assert_eq!(
                self.redeem(&held.hash, held.purpose, LIVE_MS, UserUpdate::new())
                    .await
                    .expect("redeem_token after an email change"),
                None,
                "redeem_token must refuse a token issued to the old address"
            );
        }
    }

    async fn redeeming_consumes_the_token_and_applies_the_update(&self) {
        let user = self.new_user("redeem").await;
        let token = self.token_for("redeem", &user, TokenPurpose::ResetPassword);
        self.create_token(token.clone(), false).await;
        let (redeemed, after) = self
            .redeem(
                &token.hash,
                token.purpose,
                LIVE_MS,
                UserUpdate::new().password_hash("redeemed-hash"),
            )
            .await
            .expect("redeem_token of a valid token")
            .expect("a valid token must be redeemed");
        assert_eq!(
            redeemed, token,
            "redeem_token must return the token as stored"
        );
        assert_eq!(after, user, "redeem_token must return the user as updated");
        assert_eq!(
            self.find_id(user.id).await.password_hash,
            "redeemed-hash",
            "redeem_token must apply the update to the token's user"
        );
        assert_eq!(
            self.redeem(&token.hash, token.purpose, LIVE_MS, UserUpdate::new())
                .await
                .expect("redeem_token of a used token"),
            None,
            "a token must die on use"
        );

        // An update that cannot be applied leaves the token alive.
        let other = self.new_user("redeem-other").await;
        let change = EmailToken {
            sent_to: other.email.clone(),
            ..self.token_for("redeem-change", &user, TokenPurpose::ChangeEmail)
        };
        self.create_token(change.clone(), false).await;
        let taken = self
            .redeem(
                &change.hash,
                change.purpose,
                LIVE_MS,
                UserUpdate::new().email(other.email.clone()),
            )
            .await;
        assert!(
            matches!(taken, Err(StoreError::Duplicate)),
            "redeem_token whose update takes another user's email must fail with \
             StoreError::Duplicate, got {taken:?}"
        );
        assert!(
            self.find_token(&change.hash, change.purpose, LIVE_MS)
                .await
                .is_some(),
            "a redemption whose update failed must leave the token valid"
        );
        let moved = self.email("redeem-moved");
        let (_, after) = self
            .redeem(
                &change.hash,
                change.purpose,
                LIVE_MS,
                UserUpdate::new().email(moved.clone()),
            )
            .await
            .expect("redeem_token with an email update")
            .expect("the change token is still valid");
        assert_eq!(
            after.email, moved,
            "redeem_token must return the user with the updated email"
        );
    }

    async fn expired_tokens_and_counters_are_swept(&self) {
        let now = SWEEP_NOW_MS;
        self.sweep(now, SWEEP_IDLE_CUTOFF_MS).await;
        let user = self.new_user("sweep-tokens").await;
        let make = |label: &str, expires_at_ms: i64| EmailToken {
            created_at_ms: 1,
            expires_at_ms,
            ..self.token_for(label, &user, TokenPurpose::ResetPassword)
        };
        let at_now = make("sweep-token-now", now);
        let later = make("sweep-token-later", now + 1);
        self.create_token(at_now.clone(), false).await;
        self.create_token(later.clone(), false).await;
        let (ended, running) = (self.key("sweep-ended"), self.key("sweep-running"));
        self.increment(&ended, now - 10, 10).await;
        self.increment(&running, now - 10, 11).await;

        let swept = self.sweep(now, 0).await;
        assert_eq!(
            (swept.tokens, swept.counters),
            (1, 1),
            "delete_expired must delete exactly the tokens with expires_at_ms <= now_ms and \
             the counters with window_ends_ms <= now_ms"
        );
        assert!(
            self.find_token(&later.hash, later.purpose, now)
                .await
                .is_some(),
            "a token expiring after now_ms must survive the sweep"
        );
        assert_eq!(
            self.counter(&running, now).await.map(|c| c.count),
            Some(1),
            "a counter whose window runs on must survive the sweep"
        );
        assert_eq!(
            self.increment(&ended, now, 10).await.count,
            1,
            "a swept counter starts over"
        );
        for key in [&ended, &running] {
            self.reset_counter(key).await;
        }
    }

    // ----- sessions -----------------------------------------------------------------------

    /// A session in the 2090s, with every optional detail set, so round trips check them.
    fn live_session(&self, label: &str, user: UserId) -> Session {
        Session {
            last_seen_ms: LIVE_MS + 1,
            authenticated_at_ms: LIVE_MS + 2,
            user_agent: Some(format!("Firefox 133 on Linux ({label})")),
            client_ip: Some("2001:db8::7".into()),
            ..Session::new(self.fresh_token(label), user, LIVE_MS, LIVE_MS + DAY_MS)
        }
    }

    async fn sessions_round_trip(&self) {
        let user = self.new_user("session").await;
        let session = self.live_session("session", user.id);
        self.create_session(session.clone(), false).await;

        let (found, owner) = self
            .find_session(&session.token_hash)
            .await
            .expect("find_session must find a session just created");
        assert_eq!(
            found, session,
            "find_session must return every field as stored"
        );
        assert_eq!(
            owner,
            self.find_id(user.id).await.user,
            "find_session must return the session's user with every field"
        );
        assert_eq!(
            self.find_session(&self.fresh_token("session-unknown"))
                .await,
            None,
            "find_session of an unknown token must find nothing"
        );

        self.store
            .touch_session(&session.token_hash, LIVE_MS + 5_000)
            .await
            .expect("touch_session of an existing session");
        let (touched, _) = self
            .find_session(&session.token_hash)
            .await
            .expect("a touched session still exists");
        assert_eq!(
            touched,
            Session {
                last_seen_ms: LIVE_MS + 5_000,
                ..session.clone()
            },
            "touch_session must set last_seen_ms and nothing else"
        );

        let missing = self.fresh_token("session-touch-unknown");
        self.store
            .touch_session(&missing, LIVE_MS)
            .await
            .expect("touch_session of an unknown token is not an error");
        assert!(
            !self.session_exists(&missing).await,
            "touch_session must not create a session"
        );

        // Expired sessions are still returned: the caller decides what expiry means.
        let expired = Session {
            remembered: true,
            ..Session::new(
                self.fresh_token("session-expired"),
                user.id,
                LIVE_MS - 2 * DAY_MS,
                LIVE_MS - DAY_MS,
            )
        };
        self.create_session(expired.clone(), false).await;
        assert_eq!(
            self.find_session(&expired.token_hash).await.map(|(s, _)| s),
            Some(expired),
            "find_session must return an expired session too"
        );
        assert!(
            self.session_exists(&session.token_hash).await,
            "create_session without replace_others must keep the user's other sessions"
        );

        assert_eq!(
            self.delete_user_sessions(user.id).await,
            2,
            "delete_user_sessions must return how many sessions it deleted (cleanup)"
        );
    }

    async fn sessions_are_deleted_one_by_one_and_per_user(&self) {
        let user = self.new_user("delete").await;
        let other = self.new_user("delete-other").await;
        let one = self.live_session("delete-one", user.id);
        self.create_session(one.clone(), false).await;

        assert!(
            self.delete_session(&one.token_hash).await,
            "delete_session of an existing session must return true"
        );
        assert!(
            !self.session_exists(&one.token_hash).await,
            "a deleted session must no longer be found"
        );
        assert!(
            !self.delete_session(&one.token_hash).await,
            "delete_session of an already deleted session must return false"
        );

        let mine: Vec<Session> = (0..3)
            .map(|i| self.live_session(&format!("delete-mine-{i}"), user.id))
            .collect();
        for session in &mine {
            self.create_session(session.clone(), false).await;
        }
        let theirs = self.live_session("delete-theirs", other.id);
        self.create_session(theirs.clone(), false).await;

        assert_eq!(
            self.delete_user_sessions(user.id).await,
            3,
            "delete_user_sessions must return how many sessions the user had"
        );
        for session in &mine {
            assert!(
                !self.session_exists(&session.token_hash).await,
                "delete_user_sessions must delete every session of the user"
            );
        }
        assert!(
            self.session_exists(&theirs.token_hash).await,
            "delete_user_sessions must not delete other users' sessions"
        );
        assert_eq!(
            self.delete_user_sessions(user.id).await,
            0,
            "delete_user_sessions of a user without sessions must return 0"
        );
        assert_eq!(
            self.delete_user_sessions(UNKNOWN_ID).await,
            0,
            "delete_user_sessions of an unknown user must return 0"
        );
        assert!(
            self.delete_session(&theirs.token_hash).await,
            "delete_session of an existing session must return true (cleanup)"
        );
    }

    async fn replace_others_ends_only_that_users_sessions(&self) {
        let user = self.new_user("replace").await;
        let other = self.new_user("replace-other").await;
        let old_a = self.live_session("replace-old-a", user.id);
        let old_b = self.live_session("replace-old-b", user.id);
        let theirs = self.live_session("replace-theirs", other.id);
        for session in [&old_a, &old_b, &theirs] {
            self.create_session(session.clone(), false).await;
        }

        let new = self.live_session("replace-new", user.id);
        self.create_session(new.clone(), true).await;
        assert!(
            !self.session_exists(&old_a.token_hash).await
                && !self.session_exists(&old_b.token_hash).await,
            "create_session with replace_others must delete the user's other sessions"
        );
        assert_eq!(
            self.find_session(&new.token_hash).await.map(|(s, _)| s),
            Some(new.clone()),
            "create_session with replace_others must store the new session"
        );
        assert!(
            self.session_exists(&theirs.token_hash).await,
            "create_session with replace_others must not delete other users' sessions"
        );

        assert_eq!(
            self.delete_user_sessions(user.id).await,
            1,
            "delete_user_sessions must return how many sessions it deleted (cleanup)"
        );
        assert_eq!(
            self.delete_user_sessions(other.id).await,
            1,
            "delete_user_sessions must return how many sessions it deleted (cleanup)"
        );
    }

    async fn session_creation_refuses_collisions_and_unknown_users(&self) {
        let user = self.new_user("collide").await;
        let other = self.new_user("collide-other").await;
        let original = self.live_session("collide", user.id);
        self.create_session(original.clone(), false).await;
        let own_other = self.live_session("collide-own", other.id);
        self.create_session(own_other.clone(), false).await;

        for replace_others in [false, true] {
            let intruder = Session {
                last_seen_ms: LIVE_MS + 8,
                ..Session::new(
                    original.token_hash,
                    other.id,
                    LIVE_MS + 7,
                    LIVE_MS + 2 * DAY_MS,
                )
            };
            let result = self.store.create_session(intruder, replace_others).await;
            assert!(
                matches!(result, Err(StoreError::Duplicate)),
                "create_session with a token hash already in use (another user's, \
                 replace_others={replace_others}) must fail with StoreError::Duplicate, \
                 got {result:?}"
            );
            assert_eq!(
                self.find_session(&original.token_hash)
                    .await
                    .map(|(s, u)| (s, u.id)),
                Some((original.clone(), user.id)),
                "a refused colliding session must leave the original untouched"
            );
            assert!(
                self.session_exists(&own_other.token_hash).await,
                "a refused create_session (replace_others={replace_others}) must not delete \
                 the user's other sessions"
            );
        }

        let orphan = self.live_session("orphan", UNKNOWN_ID);
        let result = self.store.create_session(orphan.clone(), false).await;
        assert!(
            matches!(result, Err(StoreError::NotFound)),
            "create_session for an unknown user must fail with StoreError::NotFound, got {result:?}"
        );
        assert!(
            !self.session_exists(&orphan.token_hash).await,
            "a refused session for an unknown user must not be stored"
        );

        assert_eq!(
            self.delete_user_sessions(user.id).await,
            1,
            "delete_user_sessions must return how many sessions it deleted (cleanup)"
        );
        assert_eq!(
            self.delete_user_sessions(other.id).await,
            1,
            "delete_user_sessions must return how many sessions it deleted (cleanup)"
        );
    }

    /// Kept apart (and run last) because it pins down a subtle rule: a collision with one of
    /// the same user's sessions is still a collision. With `replace_others`, deleting the
    /// user's sessions first and then inserting would silently swap the old session for the
    /// new one under the same token hash.
    async fn same_user_collision_is_not_an_overwrite(&self) {
        let user = self.new_user("collide-same").await;
        let original = self.live_session("collide-same", user.id);
        self.create_session(original.clone(), false).await;
        for replace_others in [false, true] {
            let same_user = Session::new(
                original.token_hash,
                user.id,
                LIVE_MS + 9,
                LIVE_MS + 3 * DAY_MS,
            );
            let result = self.store.create_session(same_user, replace_others).await;
            assert!(
                matches!(result, Err(StoreError::Duplicate)),
                "create_session (replace_others={replace_others}) with the token hash of one \
                 of the same user's sessions must fail with StoreError::Duplicate, never \
                 overwrite; got {result:?}"
            );
            assert_eq!(
                self.find_session(&original.token_hash)
                    .await
                    .map(|(s, _)| s),
                Some(original.clone()),
                "a refused same-user collision (replace_others={replace_others}) must leave \
                 the original session untouched"
            );
        }
        assert_eq!(
            self.delete_user_sessions(user.id).await,
            1,
            "delete_user_sessions must return how many sessions it deleted (cleanup)"
        );
    }

    /// Kept apart (and run last): an update of an unknown user is `NotFound` even when its
    /// new email is another user's, because there is no row to update (a SQL
    /// `UPDATE ... WHERE id = ?` never reaches the unique constraint).
    async fn unknown_id_is_not_found_before_any_collision(&self) {
        let holder = self.new_user("collide-unknown").await;
        let before = self.find_id(holder.id).await;
        let result = self
            .update(UNKNOWN_ID, UserUpdate::new().email(holder.email.clone()))
            .await;
        assert!(
            matches!(result, Err(StoreError::NotFound)),
            "update_user of an unknown user id must fail with StoreError::NotFound, even \
             with an email another user has; got {result:?}"
        );
        assert_eq!(
            self.find_id(holder.id).await,
            before,
            "a refused update must leave the holder untouched"
        );
    }

    async fn sessions_are_listed_per_user(&self) {
        let user = self.new_user("list").await;
        let other = self.new_user("list-other").await;
        assert!(
            self.list_sessions(user.id).await.is_empty(),
            "list_user_sessions of a user without sessions must be empty"
        );
        let mut mine = vec![
            self.live_session("list-a", user.id),
            Session {
                remembered: true,
                user_agent: None,
                client_ip: None,
                ..self.live_session("list-b", user.id)
            },
        ];
        let theirs = self.live_session("list-theirs", other.id);
        for session in mine.iter().chain([&theirs]) {
            self.create_session(session.clone(), false).await;
        }
        mine.sort_by_key(|s| *s.token_hash.as_bytes());
        assert_eq!(
            self.list_sessions(user.id).await,
            mine,
            "list_user_sessions must return exactly the user's sessions, every field as stored"
        );
        assert_eq!(
            self.list_sessions(other.id).await,
            vec![theirs],
            "list_user_sessions must not mix users"
        );
        assert!(
            self.list_sessions(UNKNOWN_ID).await.is_empty(),
            "list_user_sessions of an unknown user must be empty"
        );
        self.delete_user_sessions(user.id).await;
        self.delete_user_sessions(other.id).await;
    }

    async fn delete_user_sessions_can_keep_one(&self) {
        let user = self.new_user("keep").await;
        let other = self.new_user("keep-other").await;
        let keep = self.live_session("keep-this", user.id);
        let drop_a = self.live_session("keep-drop-a", user.id);
        let drop_b = self.live_session("keep-drop-b", user.id);
        let theirs = self.live_session("keep-theirs", other.id);
        for session in [&keep, &drop_a, &drop_b, &theirs] {
            self.create_session(session.clone(), false).await;
        }
        let ended = self
            .store
            .delete_user_sessions(user.id, Some(&keep.token_hash))
            .await
            .unwrap_or_else(|e| panic!("delete_user_sessions with except failed: {e:?}"));
        assert_eq!(
            ended, 2,
            "delete_user_sessions(user, Some(keep)) must return how many it deleted"
        );
        assert_eq!(
            self.list_sessions(user.id).await,
            vec![keep.clone()],
            "delete_user_sessions(user, Some(keep)) must keep exactly that session"
        );
        let ended = self
            .store
            .delete_user_sessions(other.id, Some(&keep.token_hash))
            .await
            .unwrap_or_else(|e| panic!("delete_user_sessions with except failed: {e:?}"));
        assert_eq!(
            ended, 1,
            "keeping another user's session must not protect any of this user's"
        );
        assert!(
            self.session_exists(&keep.token_hash).await,
            "delete_user_sessions must never delete another user's session"
        );
        self.delete_user_sessions(user.id).await;
    }

    /// Every write that could make a cached session lookup wrong is published on the
    /// store's [`ChangeHub`](super::ChangeHub) before it returns; reads, new sessions and
    /// the last-seen time are not. Skipped for a store whose changes cannot be heard
    /// ([`ChangeFeed::Unheard`]), which is never cached.
    async fn changes_are_announced_as_they_commit(&self) {
        let hub = match self.store.change_feed().await {
            Ok(ChangeFeed::InProcess(hub) | ChangeFeed::Shared { hub, .. }) => hub,
            Ok(ChangeFeed::Unheard) => return,
            Err(e) => panic!("change_feed failed: {e:?}"),
        };
        let heard = Arc::new(std::sync::Mutex::new(Vec::new()));
        let recorder: Arc<dyn Fn(Change) + Send + Sync> = {
            let heard = Arc::clone(&heard);
            Arc::new(move |change| {
                heard
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(change);
            })
        };
        hub.subscribe(&recorder);
        let take = || {
            std::mem::take(
                &mut *heard
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
            )
        };
        // A change names the user, or the very session.
        let covers = |changes: &[Change], user: UserId, session: &TokenHash| {
            changes
                .iter()
                .any(|c| *c == Change::User(user) || *c == Change::Session(*session))
        };

        let user = self.new_user("announce").await;
        let first = self.live_session("announce-1", user.id);
        self.create_session(first.clone(), false).await;
        let _ = self.find_session(&first.token_hash).await;
        self.store
            .touch_session(&first.token_hash, LIVE_MS + 10)
            .await
            .unwrap_or_else(|e| panic!("touch_session failed: {e:?}"));
        assert_eq!(
            take(),
            [],
            "registering, starting a session, reading it and recording its use are not              changes to announce"
        );

        let reauthenticated = self
            .store
            .reauthenticate_session(&first.token_hash, LIVE_MS + 20, AuthMethods::default())
            .await
            .unwrap_or_else(|e| panic!("reauthenticate_session failed: {e:?}"));
        assert!(reauthenticated);
        assert!(
            covers(&take(), user.id, &first.token_hash),
            "reauthenticate_session must announce the session (or its user)"
        );

        let second = self.live_session("announce-2", user.id);
        self.create_session(second.clone(), true).await;
        assert!(
            covers(&take(), user.id, &first.token_hash),
            "create_session with replace_others must announce the sessions it ended"
        );

        assert!(self.delete_session(&second.token_hash).await);
        assert!(
            covers(&take(), user.id, &second.token_hash),
            "delete_session must announce the session"
        );

        let third = self.live_session("announce-3", user.id);
        self.create_session(third.clone(), false).await;
        take();
        assert_eq!(self.delete_user_sessions(user.id).await, 1);
        assert!(
            covers(&take(), user.id, &third.token_hash),
            "delete_user_sessions must announce the sessions it ended"
        );

        self.update(
            user.id,
            UserUpdate::new().email(self.email("announce-moved")),
        )
        .await
        .unwrap_or_else(|e| panic!("update_user failed: {e:?}"));
        assert!(
            take().contains(&Change::User(user.id)),
            "update_user must announce the user"
        );

        let token = self.token_for(
            "announce",
            &self.find_id(user.id).await.user,
            TokenPurpose::ConfirmEmail,
        );
        self.create_token(token.clone(), false).await;
        take();
        self.redeem(
            &token.hash,
            token.purpose,
            LIVE_MS,
            UserUpdate::new().confirm_email(LIVE_MS),
        )
        .await
        .expect("redeem_token")
        .expect("a valid token is redeemed");
        assert!(
            take().contains(&Change::User(user.id)),
            "redeem_token must announce the user it updated"
        );

        let deleted = self
            .store
            .delete_user(user.id)
            .await
            .unwrap_or_else(|e| panic!("delete_user failed: {e:?}"));
        assert!(deleted);
        assert!(
            take().contains(&Change::User(user.id)),
            "delete_user must announce the user"
        );
    }

    async fn add_factors(
        &self,
        factors: Vec<NewFactor>,
        replace: Option<(UserId, FactorKind)>,
    ) -> Vec<i64> {
        self.store
            .add_factors(factors, replace)
            .await
            .unwrap_or_else(|e| panic!("add_factors failed: {e:?}"))
    }

    async fn factors_of(&self, user: UserId) -> Vec<super::Factor> {
        self.store
            .list_factors(user)
            .await
            .unwrap_or_else(|e| panic!("list_factors failed: {e:?}"))
    }

    async fn factors_round_trip_and_replace_per_kind(&self) {
        let user = self.new_user("factors");
        let user = user.await;
        let other = self.new_user("factors-other").await;
        let mut app = NewFactor::new(user.id, FactorKind::Totp, "sealed".into(), LIVE_MS);
        app.confirmed = false;
        app.name = "phone".into();
        let ids = self.add_factors(vec![app], None).await;
        assert_eq!(ids.len(), 1, "add_factors must return one id per factor");
        let codes: Vec<NewFactor> = (0..3)
            .map(|n| {
                NewFactor::new(
                    user.id,
                    FactorKind::RecoveryCode,
                    format!("code{n}"),
                    LIVE_MS,
                )
            })
            .collect();
        self.add_factors(codes, None).await;
        self.add_factors(
            vec![NewFactor::new(
                other.id,
                FactorKind::RecoveryCode,
                "theirs".into(),
                LIVE_MS,
            )],
            None,
        )
        .await;
        let stored = self.factors_of(user.id).await;
        assert_eq!(
            stored.len(),
            4,
            "list_factors must return the user's factors only"
        );
        let totp = &stored[0];
        assert_eq!(
            (
                totp.id,
                totp.kind,
                totp.name.as_str(),
                totp.secret.as_str(),
                totp.confirmed,
                totp.counter,
                totp.last_used_ms
            ),
            (ids[0], FactorKind::Totp, "phone", "sealed", false, 0, None),
            "a factor must read back as it was added, oldest first"
        );
        let fresh: Vec<NewFactor> = (0..2)
            .map(|n| {
                NewFactor::new(
                    user.id,
                    FactorKind::RecoveryCode,
                    format!("new{n}"),
                    LIVE_MS,
                )
            })
            .collect();
        self.add_factors(fresh, Some((user.id, FactorKind::RecoveryCode)))
            .await;
        let stored = self.factors_of(user.id).await;
        let secrets: Vec<&str> = stored
            .iter()
            .filter(|f| f.kind == FactorKind::RecoveryCode)
            .map(|f| f.secret.as_str())
            .collect();
        assert_eq!(
            secrets,
            ["new0", "new1"],
            "replace must remove the kind's earlier factors"
        );
        assert_eq!(stored.len(), 3, "replace must leave other kinds alone");
        assert_eq!(
            self.factors_of(other.id).await.len(),
            1,
            "replace must leave other users alone"
        );
        let missing = self
            .store
            .add_factors(
                vec![NewFactor::new(
                    UNKNOWN_ID,
                    FactorKind::Totp,
                    "x".into(),
                    LIVE_MS,
                )],
                None,
            )
            .await;
        assert!(
            matches!(missing, Err(StoreError::NotFound)),
            "a factor of an unknown user must be NotFound, got {missing:?}"
        );
        let deleted = self
            .store
            .delete_factors(user.id, Some(FactorKind::RecoveryCode), None)
            .await
            .unwrap_or_else(|e| panic!("delete_factors failed: {e:?}"));
        assert_eq!(deleted, 2);
        self.store
            .delete_user(user.id)
            .await
            .unwrap_or_else(|e| panic!("delete_user failed: {e:?}"));
        assert!(
            self.factors_of(user.id).await.is_empty(),
            "deleting a user must delete its factors"
        );
    }

    async fn factor_updates_are_compare_and_set(&self) {
        let user = self.new_user("factor-cas").await;
        let mut app = NewFactor::new(user.id, FactorKind::Totp, "sealed".into(), LIVE_MS);
        app.confirmed = false;
        let id = self.add_factors(vec![app], None).await[0];
        let step = |counter: i64, confirm: bool| FactorUpdate {
            counter_below: Some(counter),
            counter: Some(counter),
            confirm,
            last_used_ms: Some(LIVE_MS + counter),
            ..FactorUpdate::default()
        };
        let update = |u: FactorUpdate| self.store.update_factor(user.id, id, u);
        assert!(
            update(step(100, true)).await.unwrap_or(false),
            "a first use must apply"
        );
        assert!(
            !update(step(100, false)).await.unwrap_or(true),
            "the same step again must not apply"
        );
        assert!(
            !update(step(99, false)).await.unwrap_or(true),
            "an earlier step must not apply"
        );
        let other = self.new_user("factor-cas-other").await;
        let theirs = self
            .store
            .update_factor(other.id, id, step(200, false))
            .await;
        assert!(!theirs.unwrap_or(true), "another user's id must not apply");
        let stored = &self.factors_of(user.id).await[0];
        assert_eq!(
            (stored.counter, stored.confirmed, stored.last_used_ms),
            (100, true, Some(LIVE_MS + 100))
        );
        let mut concurrent = JoinSet::new();
        for _ in 0..8 {
            let store = Arc::clone(&self.store);
            let user_id = user.id;
            concurrent.spawn(async move {
                store
                    .update_factor(
                        user_id,
                        id,
                        FactorUpdate {
                            counter_below: Some(101),
                            counter: Some(101),
                            ..FactorUpdate::default()
                        },
                    )
                    .await
            });
        }
        let mut applied = 0;
        while let Some(result) = concurrent.join_next().await {
            if result
                .unwrap_or_else(|e| panic!("task failed: {e}"))
                .unwrap_or_else(|e| panic!("update_factor failed: {e:?}"))
            {
                applied += 1;
            }
        }
        assert_eq!(
            applied, 1,
            "of concurrent uses of one step, exactly one must apply"
        );
    }

    async fn credential_ids_are_unique_across_accounts(&self) {
        let first = self.new_user("credential-a").await;
        let second = self.new_user("credential-b").await;
        let credential = format!("cred-{}", self.run_id);
        let mut key = NewFactor::new(first.id, FactorKind::Passkey, "{}".into(), LIVE_MS);
        key.credential_id = Some(credential.clone());
        self.add_factors(vec![key.clone()], None).await;
        let found = self
            .store
            .find_factor_by_credential(&credential)
            .await
            .unwrap_or_else(|e| panic!("find_factor_by_credential failed: {e:?}"));
        assert_eq!(
            found.map(|(f, u)| (f.user_id, u.id)),
            Some((first.id, first.id))
        );
        let mut theirs = key.clone();
        theirs.user_id = second.id;
        let taken = self.store.add_factors(vec![theirs], None).await;
        assert!(
            matches!(taken, Err(StoreError::Duplicate)),
            "a credential id of another account must be Duplicate, got {taken:?}"
        );
        assert!(
            self.factors_of(second.id).await.is_empty(),
            "a refused add must store nothing"
        );
        let none = self
            .store
            .find_factor_by_credential("no-such-credential")
            .await;
        assert!(matches!(none, Ok(None)));
    }

    async fn identities_link_one_account_each(&self) {
        let first = self.new_user("identity-a").await;
        let second = self.new_user("identity-b").await;
        let subject = format!("sub-{}", self.run_id);
        let link = |user: UserId, provider: &str| {
            NewIdentity::new(
                user,
                provider,
                subject.clone(),
                Some("a@idp.invalid".into()),
                LIVE_MS,
            )
        };
        let id = self
            .store
            .add_identity(link(first.id, "idp"))
            .await
            .unwrap_or_else(|e| panic!("add_identity failed: {e:?}"));
        let found = self
            .store
            .find_identity("idp", &subject)
            .await
            .unwrap_or_else(|e| panic!("find_identity failed: {e:?}"));
        let (identity, user) = found.expect("the linked identity");
        assert_eq!(
            (
                identity.id,
                identity.user_id,
                identity.email.as_deref(),
                user.id
            ),
            (id, first.id, Some("a@idp.invalid"), first.id)
        );
        let taken = self.store.add_identity(link(second.id, "idp")).await;
        assert!(
            matches!(taken, Err(StoreError::Duplicate)),
            "one (provider, subject) links one account, got {taken:?}"
        );
        // A refused link leaves the store writable at once (on SQLite, the refused
        // transaction's lock is let go before the next write gives up waiting).
        for n in 0..20 {
            let refused = self.store.add_identity(link(second.id, "idp")).await;
            assert!(matches!(refused, Err(StoreError::Duplicate)), "{refused:?}");
            self.store
                .add_identity(link(second.id, &format!("idp-{n}")))
                .await
                .unwrap_or_else(|e| panic!("add_identity right after a refusal failed: {e:?}"));
        }
        // The same subject at another provider is another identity.
        self.store
            .add_identity(link(second.id, "other-idp"))
            .await
            .unwrap_or_else(|e| panic!("add_identity failed: {e:?}"));
        let missing = self.store.add_identity(link(UNKNOWN_ID, "third-idp")).await;
        assert!(matches!(missing, Err(StoreError::NotFound)), "{missing:?}");
        let listed = self
            .store
            .list_identities(first.id)
            .await
            .unwrap_or_else(|e| panic!("list_identities failed: {e:?}"));
        assert_eq!(listed.len(), 1);
        assert!(
            !self
                .store
                .delete_identity(second.id, id)
                .await
                .unwrap_or(true),
            "another account cannot unlink it"
        );
        assert!(
            self.store
                .delete_identity(first.id, id)
                .await
                .unwrap_or(false)
        );
        assert!(matches!(
            self.store.find_identity("idp", &subject).await,
            Ok(None)
        ));
        self.store
            .delete_user(second.id)
            .await
            .unwrap_or_else(|e| panic!("delete_user failed: {e:?}"));
        assert!(
            matches!(
                self.store.find_identity("other-idp", &subject).await,
                Ok(None)
            ),
            "deleting a user unlinks its identities"
        );
    }

    async fn reauthentication_sets_only_the_authentication_time(&self) {
        let user = self.new_user("reauth").await;
        let session = self.live_session("reauth", user.id);
        self.create_session(session.clone(), false).await;
        let reauthenticated = self
            .store
            .reauthenticate_session(
                &session.token_hash,
                LIVE_MS + 60_000,
                AuthMethod::Totp.into(),
            )
            .await
            .unwrap_or_else(|e| panic!("reauthenticate_session failed: {e:?}"));
        assert!(
            reauthenticated,
            "reauthenticate_session of an existing session must return true"
        );
        assert_eq!(
            self.find_session(&session.token_hash).await.map(|(s, _)| s),
            Some(Session {
                authenticated_at_ms: LIVE_MS + 60_000,
                methods: session.methods.with(AuthMethod::Totp),
                ..session.clone()
            }),
            "reauthenticate_session must set authenticated_at_ms, add the methods, and change nothing else"
        );
        let missing = self.fresh_token("reauth-unknown");
        let result = self
            .store
            .reauthenticate_session(&missing, LIVE_MS, AuthMethods::default())
            .await
            .unwrap_or_else(|e| panic!("reauthenticate_session failed: {e:?}"));
        assert!(
            !result && !self.session_exists(&missing).await,
            "reauthenticate_session of an unknown token must return false and create nothing"
        );
        self.delete_user_sessions(user.id).await;
    }

    async fn updates_end_sessions_in_the_same_transaction(&self) {
        let user = self.new_user("end").await;
        let holder = self.new_user("end-holder").await;
        let keep = self.live_session("end-keep", user.id);
        let other_device = self.live_session("end-other", user.id);
        let theirs = self.live_session("end-theirs", holder.id);
        for session in [&keep, &other_device, &theirs] {
            self.create_session(session.clone(), false).await;
        }

        // A refused update ends nothing: the sessions go only with the change.
        let refused = self
            .update(
                user.id,
                UserUpdate::new()
                    .email(holder.email.clone())
                    .end_sessions(EndSessions::All),
            )
            .await;
        assert!(
            matches!(refused, Err(StoreError::Duplicate)),
            "update_user to another user's email must fail with Duplicate, got {refused:?}"
        );
        assert_eq!(
            self.list_sessions(user.id).await.len(),
            2,
            "a refused update_user must not end any session"
        );

        self.update(
            user.id,
            UserUpdate::new()
                .password_hash("$2b$04$changed")
                .end_sessions(EndSessions::AllExcept(keep.token_hash)),
        )
        .await
        .unwrap_or_else(|e| panic!("update_user with end_sessions failed: {e:?}"));
        assert_eq!(
            self.find_id(user.id).await.password_hash,
            "$2b$04$changed",
            "update_user with end_sessions must still apply the change"
        );
        assert_eq!(
            self.list_sessions(user.id).await,
            vec![keep.clone()],
            "end_sessions(AllExcept(keep)) must end every other session of the user"
        );
        assert!(
            self.session_exists(&theirs.token_hash).await,
            "end_sessions must never end another user's session"
        );

        // Redemption applies the same update, sessions included.
        let token = self.token_for("end", &user, TokenPurpose::ResetPassword);
        let hash = token.hash;
        self.create_token(token, false).await;
        let redeemed = self
            .store
            .redeem_token(
                &hash,
                TokenPurpose::ResetPassword,
                LIVE_MS,
                UserUpdate::new()
                    .password_hash("$2b$04$reset")
                    .end_sessions(EndSessions::All),
            )
            .await
            .unwrap_or_else(|e| panic!("redeem_token with end_sessions failed: {e:?}"));
        assert!(redeemed.is_some(), "a valid token must be redeemed");
        assert!(
            self.list_sessions(user.id).await.is_empty(),
            "redeem_token with end_sessions(All) must end every session of the user"
        );
        assert!(
            self.session_exists(&theirs.token_hash).await,
            "redeem_token with end_sessions must never end another user's session"
        );
        self.delete_user_sessions(holder.id).await;
    }

    async fn updates_end_tokens_in_the_same_transaction(&self) {
        let user = self.new_user("end-tokens").await;
        let holder = self.new_user("end-tokens-holder").await;
        let purposes = [
            TokenPurpose::ResetPassword,
            TokenPurpose::ConfirmEmail,
            TokenPurpose::MagicLink,
            TokenPurpose::ChangeEmail,
            TokenPurpose::TrustedDevice,
        ];
        let mine: Vec<EmailToken> = purposes
            .iter()
            .map(|p| self.token_for(&format!("end-tokens-{p}"), &user, *p))
            .collect();
        let theirs = self.token_for("end-tokens-theirs", &holder, TokenPurpose::ChangeEmail);
        for token in mine.iter().chain([&theirs]) {
            self.create_token(token.clone(), false).await;
        }
        // A refused update ends nothing.
        let refused = self
            .update(
                user.id,
                UserUpdate::new().email(holder.email.clone()).end_tokens(),
            )
            .await;
        assert!(
            matches!(refused, Err(StoreError::Duplicate)),
            "update_user to another user's email must fail with Duplicate, got {refused:?}"
        );
        for token in &mine {
            assert!(
                self.find_token(&token.hash, token.purpose, LIVE_MS)
                    .await
                    .is_some(),
                "a refused update_user must not end the {} token",
                token.purpose
            );
        }
        // Redeeming one token with end_tokens ends every other token of the user.
        let redeemed = self
            .store
            .redeem_token(
                &mine[0].hash,
                mine[0].purpose,
                LIVE_MS,
                UserUpdate::new().password_hash("$2b$04$reset").end_tokens(),
            )
            .await
            .unwrap_or_else(|e| panic!("redeem_token with end_tokens failed: {e:?}"));
        assert!(redeemed.is_some(), "a valid token must be redeemed");
        for token in &mine {
            assert!(
                self.find_token(&token.hash, token.purpose, LIVE_MS)
                    .await
                    .is_none(),
                "end_tokens must end the user's {} token",
                token.purpose
            );
        }
        assert!(
            self.find_token(&theirs.hash, theirs.purpose, LIVE_MS)
                .await
                .is_some(),
            "end_tokens must never end another user's token"
        );
        // update_user alone ends them too.
        let device = self.token_for("end-tokens-device", &user, TokenPurpose::TrustedDevice);
        self.create_token(device.clone(), false).await;
        self.update(user.id, UserUpdate::new().end_tokens())
            .await
            .unwrap_or_else(|e| panic!("update_user with end_tokens failed: {e:?}"));
        assert!(
            self.find_token(&device.hash, device.purpose, LIVE_MS)
                .await
                .is_none(),
            "update_user with end_tokens must end every token of the user"
        );
    }

    async fn new_tokens_keep_only_the_newest_others(&self) {
        let user = self.new_user("keep-newest").await;
        let other = self.new_user("keep-newest-other").await;
        let theirs = self.token_for("keep-newest-theirs", &other, TokenPurpose::TrustedDevice);
        self.create_token(theirs.clone(), false).await;
        let mut devices = Vec::new();
        for n in 0..5 {
            let mut device = self.token_for(
                &format!("keep-newest-{n}"),
                &user,
                TokenPurpose::TrustedDevice,
            );
            device.created_at_ms = LIVE_MS + n;
            self.store
                .create_token(device.clone(), Some(2), &[], None)
                .await
                .unwrap_or_else(|e| panic!("create_token keeping 2 failed: {e:?}"));
            devices.push(device);
        }
        let mut live = Vec::new();
        for device in &devices {
            live.push(
                self.find_token(&device.hash, device.purpose, LIVE_MS)
                    .await
                    .is_some(),
            );
        }
        assert_eq!(
            live,
            [false, false, true, true, true],
            "create_token keeping 2 others must leave the new token and the 2 newest others"
        );
        assert!(
            self.find_token(&theirs.hash, theirs.purpose, LIVE_MS)
                .await
                .is_some(),
            "keeping the newest others must never touch another user's tokens"
        );
    }

    async fn remembered_sessions_have_their_own_idle_cutoff(&self) {
        let now = SWEEP_NOW_MS;
        let cutoff = SWEEP_IDLE_CUTOFF_MS;
        let remembered_cutoff = cutoff - DAY_MS;
        self.sweep(now, cutoff).await;
        let user = self.new_user("sweep-remembered").await;
        let make = |label: &str, last_seen_ms: i64, remembered: bool| Session {
            last_seen_ms,
            remembered,
            ..Session::new(self.fresh_token(label), user.id, 1, LIVE_MS)
        };
        let plain_idle = make("remembered-plain-idle", cutoff, false);
        let remembered_kept = make("remembered-kept", cutoff, true);
        let remembered_idle = make("remembered-idle", remembered_cutoff, true);
        for session in [&plain_idle, &remembered_kept, &remembered_idle] {
            self.create_session(session.clone(), false).await;
        }
        let swept = self
            .sweep_with(ExpiryCutoffs {
                now_ms: now,
                idle_cutoff_ms: cutoff,
                remembered_idle_cutoff_ms: remembered_cutoff,
            })
            .await;
        assert_eq!(
            swept.sessions, 2,
            "delete_expired must apply idle_cutoff_ms to plain sessions and \
             remembered_idle_cutoff_ms to remembered ones"
        );
        assert_eq!(
            self.list_sessions(user.id).await,
            vec![remembered_kept],
            "a remembered session seen after its own idle cutoff must survive the sweep \
             that ends a plain session seen at the same time"
        );
        self.delete_user_sessions(user.id).await;
    }

    /// A sweep deletes in batches (of 1,000 on the SQL stores) until nothing expired is
    /// left: 2,500 expired sessions and 2,500 expired tokens all go, the live ones stay.
    async fn sweeps_go_past_one_batch(&self) {
        let now = SWEEP_NOW_MS;
        let cutoff = SWEEP_IDLE_CUTOFF_MS;
        self.sweep(now, cutoff).await;
        let user = self.new_user("batches").await;
        for n in 0..2_500 {
            let expired = Session::new(self.fresh_token(&format!("batch-s{n}")), user.id, 1, now);
            self.create_session(expired, false).await;
            let mut token =
                self.token_for(&format!("batch-t{n}"), &user, TokenPurpose::TrustedDevice);
            token.created_at_ms = 1;
            token.expires_at_ms = now;
            self.create_token(token, false).await;
        }
        let live = self.live_session("batch-live", user.id);
        self.create_session(live.clone(), false).await;
        let swept = self.sweep(now, cutoff).await;
        assert_eq!(
            (swept.sessions, swept.tokens),
            (2_500, 2_500),
            "a sweep deletes every expired session and token, past one batch"
        );
        assert_eq!(
            self.list_sessions(user.id).await,
            vec![live],
            "a sweep leaves the live session"
        );
        self.delete_user_sessions(user.id).await;
    }

    async fn expired_sessions_are_swept_at_the_boundary(&self) {
        let now = SWEEP_NOW_MS;
        let cutoff = SWEEP_IDLE_CUTOFF_MS;
        // Leftovers of an interrupted earlier run live in the same 1970 range: clear them
        // so the counts below are exact. Nothing a real deployment wrote is that old.
        self.sweep(now, cutoff).await;

        let user = self.new_user("sweep").await;
        let make = |label: &str, last_seen_ms: i64, expires_at_ms: i64| Session {
            last_seen_ms,
            ..Session::new(self.fresh_token(label), user.id, 1, expires_at_ms)
        };
        let expires_now = make("sweep-expires-now", LIVE_MS, now);
        let expired = make("sweep-expired", LIVE_MS, now - 1);
        let expires_later = make("sweep-expires-later", LIVE_MS, now + 1);
        let idle_at_cutoff = make("sweep-idle-at-cutoff", cutoff, LIVE_MS);
        let idle_before = make("sweep-idle-before", cutoff - 1, LIVE_MS);
        let seen_after = make("sweep-seen-after", cutoff + 1, LIVE_MS);
        for session in [
            &expires_now,
            &expired,
            &expires_later,
            &idle_at_cutoff,
            &idle_before,
            &seen_after,
        ] {
            self.create_session(session.clone(), false).await;
        }

        assert_eq!(
            self.sweep(now, 0).await.sessions,
            2,
            "delete_expired must delete exactly the sessions with expires_at_ms <= now_ms"
        );
        assert!(
            !self.session_exists(&expires_now.token_hash).await,
            "a session whose expiry equals now_ms must be deleted (expires_at_ms <= now_ms)"
        );
        assert!(
            !self.session_exists(&expired.token_hash).await,
            "a session past its expiry must be deleted"
        );
        for (what, session) in [
            ("a session expiring after now_ms", &expires_later),
            (
                "an idle session, when the idle cutoff is before it",
                &idle_at_cutoff,
            ),
        ] {
            assert!(
                self.session_exists(&session.token_hash).await,
                "{what} must be kept"
            );
        }

        assert_eq!(
            self.sweep(0, cutoff).await.sessions,
            2,
            "delete_expired must delete exactly the sessions with \
             last_seen_ms <= idle_cutoff_ms"
        );
        assert!(
            !self.session_exists(&idle_at_cutoff.token_hash).await,
            "a session last seen exactly at the idle cutoff must be deleted \
             (last_seen_ms <= idle_cutoff_ms)"
        );
        assert!(
            !self.session_exists(&idle_before.token_hash).await,
            "a session last seen before the idle cutoff must be deleted"
        );

        assert_eq!(
            self.sweep(now, cutoff).await.sessions,
            0,
            "a sweep with nothing expired must delete nothing"
        );
        for session in [&expires_later, &seen_after] {
            assert!(
                self.session_exists(&session.token_hash).await,
                "a session neither expired nor idle must survive every sweep"
            );
        }
        assert_eq!(
            self.delete_user_sessions(user.id).await,
            2,
            "delete_user_sessions must return how many sessions it deleted (cleanup)"
        );
    }

    // ----- counters -----------------------------------------------------------------------

    async fn counters_count_in_fixed_windows(&self) {
        let key = self.key("window");
        let other = self.key("window-other");
        let t0 = LIVE_MS;
        let window = 60_000;

        assert_eq!(
            self.counter(&key, t0).await,
            None,
            "get_counter of an absent counter must return None"
        );
        let first = Counter {
            count: 1,
            window_ends_ms: t0 + window,
        };
        assert_eq!(
            self.increment(&key, t0, window).await,
            first,
            "the first increment must count 1 in a window ending at now_ms + window_ms"
        );
        assert_eq!(
            self.increment(&key, t0 + 10, window).await,
            Counter { count: 2, ..first },
            "an increment within the window must add one and keep the window's end"
        );
        assert_eq!(
            self.increment(&key, t0 + window - 1, window).await,
            Counter { count: 3, ..first },
            "an increment in the window's last millisecond must still count in it"
        );
        assert_eq!(
            self.counter(&key, t0 + window - 1).await,
            Some(Counter { count: 3, ..first }),
            "get_counter must return the running count within the window"
        );

        assert_eq!(
            self.increment(&other, t0 + 20, 1_000).await,
            Counter {
                count: 1,
                window_ends_ms: t0 + 1_020
            },
            "counters with different keys must be independent"
        );
        assert_eq!(
            self.counter(&key, t0 + 20).await.map(|c| c.count),
            Some(3),
            "incrementing one key must not change another"
        );

        assert_eq!(
            self.counter(&key, t0 + window).await,
            None,
            "get_counter must return None once the window has ended (window end <= now_ms)"
        );
        assert_eq!(
            self.increment(&key, t0 + window, window).await,
            Counter {
                count: 1,
                window_ends_ms: t0 + 2 * window
            },
            "an increment when the window ends exactly now must start a new window at 1"
        );
        assert_eq!(
            self.increment(&key, t0 + 10 * window, window).await,
            Counter {
                count: 1,
                window_ends_ms: t0 + 11 * window
            },
            "an increment long after the window ended must start a new window at 1"
        );

        self.reset_counter(&key).await;
        assert_eq!(
            self.counter(&key, t0 + 10 * window).await,
            None,
            "reset_counter must remove the counter"
        );
        assert_eq!(
            self.increment(&key, t0 + 10 * window + 5, window).await,
            Counter {
                count: 1,
                window_ends_ms: t0 + 11 * window + 5
            },
            "after reset_counter, counting must start over at 1"
        );
        self.reset_counter(&self.key("never-created")).await;

        self.reset_counter(&key).await;
        self.reset_counter(&other).await;
        assert_eq!(
            self.counter(&other, t0 + 20).await,
            None,
            "reset_counter must remove the counter"
        );
    }

    async fn counter_release_takes_back_one_event_of_its_window(&self) {
        let (key, t0, window) = (self.key("release"), LIVE_MS, 60_000);
        self.release_counter(&key, t0 + window).await;
        assert_eq!(
            self.counter(&key, t0).await,
            None,
            "release_counter of an absent counter must not create it"
        );
        let claimed = self.increment(&key, t0, window).await;
        self.increment(&key, t0 + 1, window).await;
        self.release_counter(&key, claimed.window_ends_ms).await;
        assert_eq!(
            self.counter(&key, t0 + 2).await.map(|c| c.count),
            Some(1),
            "release_counter must take back exactly one event of the window"
        );
        self.release_counter(&key, claimed.window_ends_ms).await;
        self.release_counter(&key, claimed.window_ends_ms).await;
        assert_eq!(
            self.increment(&key, t0 + 3, window).await.count,
            1,
            "release_counter must stop at 0, never below"
        );

        // A release for a window that has ended must not touch the next window's count.
        let next = self.increment(&key, t0 + window, window).await;
        assert_eq!(next.count, 1, "a new window starts at 1");
        self.release_counter(&key, claimed.window_ends_ms).await;
        assert_eq!(
            self.counter(&key, t0 + window + 1).await,
            Some(next),
            "release_counter with an ended window's end must change nothing"
        );
        self.reset_counter(&key).await;
    }

    // ----- concurrency --------------------------------------------------------------------

    async fn concurrent_registrations_of_one_email_have_one_winner(&self) {
        let email = self.email("race");
        let barrier = Arc::new(Barrier::new(REGISTRATION_RACERS));
        let mut tasks = JoinSet::new();
        for i in 0..REGISTRATION_RACERS {
            let store = Arc::clone(&self.store);
            let barrier = Arc::clone(&barrier);
            let user = NewUser {
                email: email.clone(),
                password_hash: format!("race-hash-{i}"),
                created_at_ms: LIVE_MS,
                first_link: None,
                email_confirmed_at_ms: None,
            };
            tasks.spawn(async move {
                barrier.wait().await;
                store.add_user(user).await
            });
        }
        let mut winners = Vec::new();
        let mut duplicates = 0;
        while let Some(joined) = tasks.join_next().await {
            match joined.expect("a registration task panicked") {
                Ok(user) => winners.push(user),
                Err(StoreError::Duplicate) => duplicates += 1,
                Err(other) => panic!(
                    "concurrent add_user of one email must succeed or fail with \
                     StoreError::Duplicate, got {other:?}"
                ),
            }
        }
        assert_eq!(
            (winners.len(), duplicates),
            (1, REGISTRATION_RACERS - 1),
            "{REGISTRATION_RACERS} concurrent add_user calls with one email must give \
             exactly one Ok and {} StoreError::Duplicate",
            REGISTRATION_RACERS - 1
        );
        let winner = &winners[0];
        assert_eq!(
            self.find(UserLookup::Email(&email))
                .await
                .map(|r| r.user)
                .as_ref(),
            Some(winner),
            "after the race, the email must lead to the one account that won"
        );
    }

    /// Many lookups at once (distinct, repeated and unknown tokens), which a store may
    /// answer together: each gets its own session and user, or `None`.
    async fn concurrent_session_lookups_each_get_their_own_row(&self) {
        let mut sessions = Vec::new();
        for i in 0..SESSION_LOOKERS {
            let label = format!("looked-up{i}");
            let user = self.new_user(&label).await;
            let session = self.live_session(&label, user.id);
            self.create_session(session.clone(), false).await;
            sessions.push((session, user));
        }
        let mut lookups = JoinSet::new();
        for round in 0..25 {
            for (i, (session, user)) in sessions.iter().enumerate() {
                // Every fourth lookup is for a token that has no session.
                let (token, expected) = if (i + round) % 4 == 0 {
                    (self.fresh_token("never-issued"), None)
                } else {
                    (session.token_hash, Some((session.clone(), user.clone())))
                };
                let store = Arc::clone(&self.store);
                lookups.spawn(async move {
                    let found = store
                        .find_session(&token)
                        .await
                        .unwrap_or_else(|e| panic!("concurrent find_session failed: {e:?}"));
                    assert_eq!(
                        found, expected,
                        "each of many concurrent lookups gets its own session, or nothing"
                    );
                });
            }
        }
        while let Some(done) = lookups.join_next().await {
            done.expect("lookup task");
        }
    }

    async fn concurrent_token_redemptions_have_one_winner(&self) {
        let user = self.new_user("reset-race").await;
        let token = self.token_for("reset-race", &user, TokenPurpose::ResetPassword);
        self.create_token(token.clone(), false).await;

        let barrier = Arc::new(Barrier::new(RESET_RACERS));
        let mut tasks = JoinSet::new();
        for i in 0..RESET_RACERS {
            let store = Arc::clone(&self.store);
            let barrier = Arc::clone(&barrier);
            let hash = token.hash;
            tasks.spawn(async move {
                barrier.wait().await;
                let password_hash = format!("raced-hash-{i}");
                let update = UserUpdate::new().password_hash(password_hash.clone());
                let result = store
                    .redeem_token(&hash, TokenPurpose::ResetPassword, LIVE_MS, update)
                    .await;
                (password_hash, result)
            });
        }
        let mut winners = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            let (password_hash, result) = joined.expect("a redemption task panicked");
            match result {
                Ok(Some((_, owner))) => {
                    assert_eq!(
                        owner.id, user.id,
                        "a redemption must return the token's user"
                    );
                    winners.push(password_hash);
                }
                Ok(None) => {}
                Err(e) => panic!("concurrent redeem_token failed: {e:?}"),
            }
        }
        assert_eq!(
            winners.len(),
            1,
            "{RESET_RACERS} concurrent redemptions of one token must give exactly one \
             Some, got {}",
            winners.len()
        );
        assert_eq!(
            self.find_id(user.id).await.password_hash,
            winners[0],
            "the update must be the one of the single winning redemption"
        );
        assert_eq!(
            self.find_token(&token.hash, token.purpose, LIVE_MS).await,
            None,
            "the raced token must be consumed"
        );
    }

    async fn concurrent_increments_are_not_lost(&self) {
        let key = self.key("counter-race");
        let window = DAY_MS;
        let barrier = Arc::new(Barrier::new(COUNTER_RACERS));
        let mut tasks = JoinSet::new();
        for _ in 0..COUNTER_RACERS {
            let store = Arc::clone(&self.store);
            let barrier = Arc::clone(&barrier);
            let key = key.clone();
            tasks.spawn(async move {
                barrier.wait().await;
                store.increment_counter(&key, LIVE_MS, window).await
            });
        }
        let mut counts = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            let counter = joined
                .expect("an increment task panicked")
                .unwrap_or_else(|e| panic!("concurrent increment_counter failed: {e:?}"));
            assert_eq!(
                counter.window_ends_ms,
                LIVE_MS + window,
                "concurrent increments must share one window"
            );
            counts.push(counter.count);
        }
        counts.sort_unstable();
        let expected: Vec<u32> = (1..=u32::try_from(COUNTER_RACERS).expect("small")).collect();
        assert_eq!(
            counts, expected,
            "{COUNTER_RACERS} concurrent increments must each see a distinct count, 1 to \
             {COUNTER_RACERS} (none lost, none repeated)"
        );
        assert_eq!(
            self.counter(&key, LIVE_MS).await.map(|c| c.count),
            Some(u32::try_from(COUNTER_RACERS).expect("small")),
            "after concurrent increments, get_counter must see all of them"
        );
        self.reset_counter(&key).await;
    }
}

/// The suite's outbox time: 1970, like the sweep's. Its messages expire long before any
/// real "now", so a real worker never claims them and a real sweep removes leftovers.
const MAIL_NOW_MS: i64 = SWEEP_NOW_MS + 5_000;

impl Suite {
    /// A message to an address unique to this run.
    fn mail(&self, label: &str, expires_at_ms: i64) -> OutgoingMail {
        OutgoingMail {
            from: "app@conformance.invalid".into(),
            to: self.email(label),
            message: format!("Subject: {label}\r\n\r\nbody of {label}\r\n").into_bytes(),
            created_at_ms: MAIL_NOW_MS,
            expires_at_ms,
        }
    }

    /// This run's messages among those claimed at `now_ms`, as (label, attempts).
    async fn claim_ours(&self, now_ms: i64, lease_until_ms: i64, limit: u32) -> Vec<(String, u32)> {
        let claimed = self
            .store
            .claim_mail(now_ms, lease_until_ms, limit)
            .await
            .unwrap_or_else(|e| panic!("claim_mail failed: {e:?}"));
        claimed
            .into_iter()
            .filter_map(|m| {
                let OutboxEntry::Mail(mail) = &m.entry else {
                    return None;
                };
                let label = self.label_of(&mail.to)?;
                assert_eq!(
                    *mail,
                    self.mail(&label, mail.expires_at_ms),
                    "claim_mail must return the message exactly as queued"
                );
                Some((label, m.attempts))
            })
            .collect()
    }

    /// The label of an address of this run's; `None` for anyone else's.
    fn label_of(&self, address: &str) -> Option<String> {
        address
            .strip_suffix(&format!("-{}@conformance.invalid", self.run_id))
            .map(str::to_owned)
    }

    /// The address an outbox entry is for.
    fn address_of(entry: &OutboxEntry) -> &str {
        match entry {
            OutboxEntry::Mail(mail) => &mail.to,
            OutboxEntry::Request(request) => &request.email,
        }
    }

    async fn email_confirmation_is_stored_and_read_back(&self) {
        // An account may be born confirmed (a provider verified its email), in one write.
        let email = self.email("born-confirmed");
        let born = self
            .store
            .add_user(NewUser {
                email: email.clone(),
                password_hash: "!".into(),
                created_at_ms: LIVE_MS,
                first_link: None,
                email_confirmed_at_ms: Some(LIVE_MS + 1),
            })
            .await
            .unwrap_or_else(|e| panic!("add_user({email}) failed: {e:?}"));
        assert_eq!(born.email_confirmed_at_ms, Some(LIVE_MS + 1));
        assert_eq!(
            self.find_id(born.id).await.user.email_confirmed_at_ms,
            Some(LIVE_MS + 1),
            "add_user must store the confirmation it is given"
        );
        let user = self.new_user("confirm").await;
        assert_eq!(
            user.email_confirmed_at_ms, None,
            "a new user's email is unconfirmed"
        );
        self.update(user.id, UserUpdate::new().confirm_email(LIVE_MS + 5))
            .await
            .expect("confirming");
        let record = self.find_id(user.id).await;
        assert_eq!(
            record.user.email_confirmed_at_ms,
            Some(LIVE_MS + 5),
            "update_user must store the confirmation time"
        );
        self.update(user.id, UserUpdate::new().password_hash("other"))
            .await
            .expect("updating");
        assert_eq!(
            self.find_id(user.id).await.user.email_confirmed_at_ms,
            Some(LIVE_MS + 5),
            "an update that does not name the confirmation keeps it"
        );
    }

    async fn tokens_and_their_mail_commit_together(&self) {
        let user = self.new_user("mailtoken").await;
        let hash = self.fresh_token("mailtoken");
        let token = EmailToken {
            hash,
            user_id: user.id,
            purpose: TokenPurpose::MagicLink,
            sent_to: user.email.clone(),
            account_email: user.email.clone(),
            created_at_ms: MAIL_NOW_MS,
            expires_at_ms: LIVE_MS,
        };
        self.store
            .create_token(
                token.clone(),
                Some(0),
                &[self.mail("withtoken", MAIL_NOW_MS + DAY_MS)],
                None,
            )
            .await
            .expect("create_token with mail");
        // The same hash again collides: neither the token nor its message is stored twice.
        let refused = self
            .store
            .create_token(
                token,
                None,
                &[self.mail("collided", MAIL_NOW_MS + DAY_MS)],
                None,
            )
            .await;
        assert!(
            matches!(refused, Err(StoreError::Duplicate)),
            "a colliding token must be refused, got {refused:?}"
        );
        let ours = self.claim_ours(MAIL_NOW_MS, MAIL_NOW_MS + 1_000, 100).await;
        assert_eq!(
            ours,
            [("withtoken".to_owned(), 1)],
            "a token's message is queued with it, and a refused token's is not"
        );
        self.finish_ours(MAIL_NOW_MS + 2_000).await;
    }

    /// `add_user` with a first link stores the account, the token (the account's, sent to
    /// its email, issued at its creation) and the message in one transaction; when the
    /// account is refused (its email taken, or the token's hash collides) none of the
    /// three is stored.
    async fn new_accounts_commit_with_their_first_link(&self) {
        let first_link = |hash: TokenHash, label: &str| FirstLink {
            hash,
            purpose: TokenPurpose::ConfirmEmail,
            expires_at_ms: LIVE_MS + DAY_MS,
            mail: vec![self.mail(label, MAIL_NOW_MS + DAY_MS)],
        };
        let new_user = |label: &str, link: FirstLink| NewUser {
            email: self.email(label),
            password_hash: format!("hash-of-{label}"),
            created_at_ms: LIVE_MS,
            first_link: Some(link),
            email_confirmed_at_ms: None,
        };
        let hash = self.fresh_token("firstlink");
        let user = self
            .store
            .add_user(new_user("firstlink", first_link(hash, "firstlink-mail")))
            .await
            .expect("add_user with a first link");
        let (token, owner) = self
            .find_token(&hash, TokenPurpose::ConfirmEmail, LIVE_MS)
            .await
            .expect("the first link's token is stored with the account");
        assert_eq!(
            owner, user,
            "the first link's token belongs to the new account"
        );
        assert_eq!(
            token,
            EmailToken {
                hash,
                user_id: user.id,
                purpose: TokenPurpose::ConfirmEmail,
                sent_to: user.email.clone(),
                account_email: user.email.clone(),
                created_at_ms: LIVE_MS,
                expires_at_ms: LIVE_MS + DAY_MS,
            },
            "the first link's token is sent to and bound to the new account's email"
        );

        let taken_email = self.fresh_token("taken-email");
        let refused = self
            .store
            .add_user(new_user("firstlink", first_link(taken_email, "taken-mail")))
            .await;
        assert!(
            matches!(refused, Err(StoreError::Duplicate)),
            "a taken email must be a Duplicate, got {refused:?}"
        );
        assert!(
            self.find_token(&taken_email, TokenPurpose::ConfirmEmail, LIVE_MS)
                .await
                .is_none(),
            "a refused account's first link is not stored"
        );
        let refused = self
            .store
            .add_user(new_user("collider", first_link(hash, "collider-mail")))
            .await;
        assert!(
            matches!(refused, Err(StoreError::Duplicate)),
            "a first link whose hash is taken must be a Duplicate, got {refused:?}"
        );
        assert!(
            self.find(UserLookup::Email(&self.email("collider")))
                .await
                .is_none(),
            "an account whose first link was refused is not stored"
        );
        let ours = self.claim_ours(MAIL_NOW_MS, MAIL_NOW_MS + 1_000, 100).await;
        assert_eq!(
            ours,
            [("firstlink-mail".to_owned(), 1)],
            "only the stored account's message is queued"
        );
        self.finish_ours(MAIL_NOW_MS + 2_000).await;
    }

    /// Claims and removes whatever of this run's is due at `now_ms`.
    async fn finish_ours(&self, now_ms: i64) {
        let claimed = self
            .store
            .claim_mail(now_ms, now_ms + 1, 1_000)
            .await
            .expect("claim_mail");
        for m in claimed {
            if self.label_of(Self::address_of(&m.entry)).is_some() {
                assert!(
                    self.store.finish_mail(m.id).await.expect("finish_mail"),
                    "finish_mail must report a queued message as removed"
                );
            }
        }
    }

    /// A request waits in the outbox like a message; the token answering it removes it in
    /// the same transaction, so of several answers (concurrent or late) exactly one is
    /// stored with its message, and a message's id is never taken for a request.
    async fn mail_requests_are_answered_once(&self) {
        let user = self.new_user("requester").await;
        let request = MailRequest {
            purpose: TokenPurpose::MagicLink,
            email: user.email.clone(),
            created_at_ms: MAIL_NOW_MS,
            expires_at_ms: MAIL_NOW_MS + DAY_MS,
        };
        self.store
            .queue_mail_request(&request)
            .await
            .expect("queue_mail_request");
        let claimed: Vec<_> = self
            .store
            .claim_mail(MAIL_NOW_MS, MAIL_NOW_MS + 1_000, 1_000)
            .await
            .expect("claim_mail")
            .into_iter()
            .filter(|m| self.label_of(Self::address_of(&m.entry)).is_some())
            .collect();
        assert_eq!(
            claimed
                .iter()
                .map(|m| (&m.entry, m.attempts))
                .collect::<Vec<_>>(),
            [(&OutboxEntry::Request(request), 1)],
            "claim_mail hands out a request exactly as queued"
        );
        let request_id = claimed[0].id;
        let answer = |label: &str| self.token_for(label, &user, TokenPurpose::MagicLink);

        let racers: Vec<EmailToken> = (0..8).map(|i| answer(&format!("answer{i}"))).collect();
        let barrier = Arc::new(Barrier::new(racers.len()));
        let mut tasks = JoinSet::new();
        for (i, token) in racers.iter().cloned().enumerate() {
            let store = Arc::clone(&self.store);
            let barrier = Arc::clone(&barrier);
            let mail = self.mail(&format!("answer{i}"), MAIL_NOW_MS + DAY_MS);
            tasks.spawn(async move {
                barrier.wait().await;
                let outcome = store
                    .create_token(token, Some(0), &[mail], Some(request_id))
                    .await;
                (i, outcome)
            });
        }
        let mut winners = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            let (i, outcome) = joined.expect("answer task");
            match outcome {
                Ok(()) => winners.push(i),
                Err(StoreError::NotFound) => {}
                Err(other) => panic!(
                    "answering a request answered by another must be NotFound, got {other:?}"
                ),
            }
        }
        assert_eq!(
            winners.len(),
            1,
            "exactly one of concurrent answers to a request is stored"
        );
        let winner = winners[0];
        for (i, token) in racers.iter().enumerate() {
            assert_eq!(
                self.find_token(&token.hash, TokenPurpose::MagicLink, LIVE_MS)
                    .await
                    .is_some(),
                i == winner,
                "only the stored answer's token exists (answer {i}, winner {winner})"
            );
        }
        assert!(
            !self
                .store
                .finish_mail(request_id)
                .await
                .expect("finish_mail"),
            "the answer removed the request"
        );
        let queued = self
            .claim_ours(MAIL_NOW_MS + 2_000, MAIL_NOW_MS + 3_000, 1_000)
            .await;
        assert_eq!(
            queued,
            [(format!("answer{winner}"), 1)],
            "only the stored answer's message is queued"
        );
        let message_id = self
            .store
            .claim_mail(MAIL_NOW_MS + 3_000, MAIL_NOW_MS + 4_000, 1_000)
            .await
            .expect("claim_mail")
            .into_iter()
            .find(|m| {
                self.label_of(Self::address_of(&m.entry)).as_deref()
                    == Some(&format!("answer{winner}"))
            })
            .expect("the answer's message, due again")
            .id;
        let refused = self
            .store
            .create_token(answer("not-a-request"), Some(0), &[], Some(message_id))
            .await;
        assert!(
            matches!(refused, Err(StoreError::NotFound)),
            "a message's id answers no request, got {refused:?}"
        );
        assert!(
            self.store
                .finish_mail(message_id)
                .await
                .expect("finish_mail"),
            "a message named as a request is left alone"
        );
    }

    async fn concurrent_mail_claims_never_share_a_message(&self) {
        let labels: Vec<String> = (0..24).map(|i| format!("race{i}")).collect();
        let mail: Vec<OutgoingMail> = labels
            .iter()
            .map(|l| self.mail(l, MAIL_NOW_MS + DAY_MS))
            .collect();
        self.store.queue_mail(&mail).await.expect("queue_mail");
        let barrier = Arc::new(Barrier::new(8));
        let mut tasks = JoinSet::new();
        for _ in 0..8 {
            let store = Arc::clone(&self.store);
            let barrier = Arc::clone(&barrier);
            tasks.spawn(async move {
                barrier.wait().await;
                let mut mine = Vec::new();
                loop {
                    let claimed = store
                        .claim_mail(MAIL_NOW_MS + 10, MAIL_NOW_MS + 100_000, 2)
                        .await
                        .expect("claim_mail");
                    if claimed.is_empty() {
                        return mine;
                    }
                    mine.extend(
                        claimed
                            .into_iter()
                            .map(|m| (m.id, Self::address_of(&m.entry).to_owned())),
                    );
                }
            });
        }
        let mut seen = std::collections::HashSet::new();
        let mut ours = 0;
        while let Some(claimed) = tasks.join_next().await {
            for (id, to) in claimed.expect("claim task") {
                assert!(
                    seen.insert(id),
                    "message {id} was claimed twice by concurrent workers"
                );
                if to.ends_with(&format!("-{}@conformance.invalid", self.run_id)) {
                    ours += 1;
                    self.store.finish_mail(id).await.expect("finish_mail");
                }
            }
        }
        assert_eq!(ours, labels.len(), "every queued message is claimed once");
    }

    async fn the_outbox_claims_each_message_once_per_lease(&self) {
        let s = &self.store;
        let t = MAIL_NOW_MS;
        s.queue_mail(&[
            self.mail("first", t + DAY_MS),
            self.mail("second", t + DAY_MS),
            self.mail("stale", t + 10),
        ])
        .await
        .expect("queue_mail");
        assert_eq!(
            self.claim_ours(t + 20, t + 1_000, 100).await,
            [("first".to_owned(), 1), ("second".to_owned(), 1)],
            "due messages are claimed oldest first, an expired one never"
        );
        assert!(
            self.claim_ours(t + 500, t + 2_000, 100).await.is_empty(),
            "a claimed message is not claimed again before its lease ends"
        );
        let second = s
            .claim_mail(t + 1_000, t + 1_500, 100)
            .await
            .expect("claim_mail")
            .into_iter()
            .filter(|m| {
                let to = Self::address_of(&m.entry);
                to == self.email("second") || to == self.email("first")
            })
            .collect::<Vec<_>>();
        assert_eq!(
            second.iter().map(|m| m.attempts).collect::<Vec<_>>(),
            [2, 2],
            "when the lease ends the message is due again, its attempts counted"
        );
        let (first, second) = (&second[0], &second[1]);
        s.retry_mail(second.id, t + 5_000)
            .await
            .expect("retry_mail");
        assert!(s.finish_mail(first.id).await.expect("finish_mail"));
        assert!(
            !s.finish_mail(first.id).await.expect("finish_mail"),
            "finish_mail reports a message already removed"
        );
        assert!(
            self.claim_ours(t + 4_999, t + 6_000, 100).await.is_empty(),
            "a rescheduled message waits for its time"
        );
        assert_eq!(
            self.claim_ours(t + 5_000, t + 6_000, 1).await,
            [("second".to_owned(), 3)]
        );
        assert!(s.finish_mail(second.id).await.expect("finish_mail"));
        let swept = s
            .delete_expired(ExpiryCutoffs {
                now_ms: t + 20,
                idle_cutoff_ms: i64::MIN,
                remembered_idle_cutoff_ms: i64::MIN,
            })
            .await
            .expect("delete_expired");
        assert!(swept.mail >= 1, "expired mail is swept, got {swept:?}");
        let claimed = s.claim_mail(t, t + 1, 1_000).await.expect("claim_mail");
        assert!(
            claimed
                .iter()
                .all(|m| Self::address_of(&m.entry) != self.email("stale")),
            "swept mail is gone"
        );
    }
}
