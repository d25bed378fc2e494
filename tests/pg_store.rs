//! `PgStore` against a real PostgreSQL server: the shared conformance suite, plus what only a
//! networked store has to get right (migrations on an existing database, several instances
//! on one database, pool settings, URL-based backend choice).
//!
//! Needs `TOWER_AUTH_TEST_PG_URL` (see `tests/support/pg.rs`); each test creates and drops
//! a database of its own. Without the variable the tests skip and say so, unless
//! `AUTH_REQUIRE_POSTGRES=1`, which makes them fail.
#![cfg(feature = "postgres")]

#[path = "support/pg.rs"]
mod pg;

use std::sync::Arc;
use std::time::Duration;

use tower_auth::store::{
    EmailToken, ExpiryCutoffs, NewUser, Session, TokenHash, TokenPurpose, UserLookup, UserUpdate,
};
use tower_auth::{Auth, AuthConfig, AuthError, PgStore, PgStoreOptions, Store, StoreError, UserId};

/// A generous guard so a broken pool setting fails the test instead of hanging CI. It is
/// not a performance assertion: the operations it guards finish in well under a second.
const HANG_GUARD: Duration = Duration::from_secs(120);

fn new_user(email: &str) -> NewUser {
    NewUser {
        email: email.to_owned(),
        password_hash: "hash-1".to_owned(),
        created_at_ms: 1_000,
        first_link: None,
        email_confirmed_at_ms: None,
    }
}

fn session(token: &str, user_id: UserId) -> Session {
    Session::new(TokenHash::of(token), user_id, 1_000, 1_000_000)
}

/// A sweep at `now_ms` with one idle cutoff for every session.
fn cutoffs(now_ms: i64, idle_cutoff_ms: i64) -> ExpiryCutoffs {
    ExpiryCutoffs {
        now_ms,
        idle_cutoff_ms,
        remembered_idle_cutoff_ms: idle_cutoff_ms,
    }
}

fn spec_config() -> AuthConfig {
    let mut config = AuthConfig::spec();
    config.bcrypt_cost = 4;
    config
}

/// Two stores on one database with separate pools: two app instances.
async fn two_instances(url: &str) -> (PgStore, PgStore) {
    let a = PgStore::connect(url).await.expect("instance A connects");
    let b = PgStore::connect(url).await.expect("instance B connects");
    (a, b)
}

// ----- the shared suite -----------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_suite_passes_on_postgres() {
    let Some(db) = pg::test_database().await else {
        return;
    };
    let store = PgStore::connect(db.url()).await.expect("connect");
    tower_auth::store::conformance::run(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_suite_passes_on_a_database_holding_other_data() {
    // A second run, through another instance and the URL-based entry point, on a database
    // the first run left rows in; then again after `connect_fresh` wiped it.
    let Some(db) = pg::test_database().await else {
        return;
    };
    tower_auth::store::conformance::run(PgStore::connect(db.url()).await.unwrap()).await;
    let shared = tower_auth::store::connect(db.url(), false).await.unwrap();
    tower_auth::store::conformance::run_shared(shared).await;
    let fresh = tower_auth::store::connect(db.url(), true).await.unwrap();
    tower_auth::store::conformance::run_shared(fresh).await;
}

// ----- schema and connection ------------------------------------------------------------------

#[tokio::test]
async fn migrations_are_idempotent() {
    let Some(db) = pg::test_database().await else {
        return;
    };
    let first = PgStore::connect(db.url()).await.expect("first connect");
    let user = first.add_user(new_user("a@example.com")).await.unwrap();

    // Connecting again (a restart, or a second instance) re-runs the migrator on a
    // database that is already up to date: no error, no data lost.
    let second = PgStore::connect(db.url()).await.expect("second connect");
    let third = PgStore::from_pool(second.pool().clone())
        .await
        .expect("from_pool on a migrated database");
    let found = third
        .find_user_by(UserLookup::Email("a@example.com"))
        .await
        .unwrap()
        .expect("user survives reconnects");
    assert_eq!(found.user.id, user.id);

    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM auth_schema_migrations")
        .fetch_one(third.pool())
        .await
        .unwrap();
    let unique_versions: i64 =
        sqlx::query_scalar("SELECT count(DISTINCT version) FROM auth_schema_migrations")
            .fetch_one(third.pool())
            .await
            .unwrap();
    assert_eq!(applied, unique_versions, "each migration recorded once");
    let sqlx_bookkeeping: Option<String> =
        sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations')::text")
            .fetch_one(third.pool())
            .await
            .unwrap();
    assert_eq!(
        sqlx_bookkeeping, None,
        "sqlx's own bookkeeping table is left to the host app"
    );
}

#[tokio::test]
async fn migrations_run_concurrently_from_several_instances() {
    // Instances of an app started at the same moment all migrate the same empty database.
    let Some(db) = pg::test_database().await else {
        return;
    };
    let url = db.url().to_owned();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { PgStore::connect(&url).await })
        })
        .collect();
    let mut stores = Vec::new();
    for handle in handles {
        stores.push(handle.await.unwrap().expect("concurrent connect + migrate"));
    }
    stores[0].add_user(new_user("m@example.com")).await.unwrap();
    for store in &stores {
        assert!(
            store
                .find_user_by(UserLookup::Email("m@example.com"))
                .await
                .unwrap()
                .is_some()
        );
    }
}

#[tokio::test]
async fn connect_fresh_drops_existing_data() {
    let Some(db) = pg::test_database().await else {
        return;
    };
    let store = PgStore::connect(db.url()).await.unwrap();
    let user = store.add_user(new_user("old@example.com")).await.unwrap();
    store
        .create_session(session("old-token", user.id), false)
        .await
        .unwrap();
    store.increment_counter("k", 1_000, 60_000).await.unwrap();

    let fresh = PgStore::connect_fresh(db.url())
        .await
        .expect("connect_fresh");
    assert!(
        fresh
            .find_user_by(UserLookup::Email("old@example.com"))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        fresh
            .find_session(&TokenHash::of("old-token"))
            .await
            .unwrap()
            .is_none()
    );
    assert!(fresh.get_counter("k", 1_000).await.unwrap().is_none());
    // The schema is back and usable, on the old pool too.
    fresh.add_user(new_user("old@example.com")).await.unwrap();
    assert!(
        store
            .find_user_by(UserLookup::Email("old@example.com"))
            .await
            .unwrap()
            .is_some()
    );
    // And the same through the URL-based entry point.
    let again = tower_auth::store::connect(db.url(), true).await.unwrap();
    assert!(
        again
            .find_user_by(UserLookup::Email("old@example.com"))
            .await
            .unwrap()
            .is_none()
    );
}

// ----- several instances on one database ------------------------------------------------------

#[tokio::test]
async fn two_instances_see_each_others_users_at_once() {
    let Some(db) = pg::test_database().await else {
        return;
    };
    let (a, b) = two_instances(db.url()).await;

    let user = a.add_user(new_user("bob@bob.com")).await.unwrap();
    let seen = b
        .find_user_by(UserLookup::Email("bob@bob.com"))
        .await
        .unwrap()
        .expect("B sees A's user");
    assert_eq!(seen.user.id, user.id);
    assert_eq!(seen.password_hash, "hash-1");
    assert_eq!(
        b.find_user_by(UserLookup::Id(user.id))
            .await
            .unwrap()
            .map(|r| r.user.email),
        Some("bob@bob.com".to_owned())
    );

    // The unique index is shared: B cannot register the same email.
    assert!(matches!(
        b.add_user(new_user("bob@bob.com")).await,
        Err(StoreError::Duplicate)
    ));

    // A password change on B is what A reads next.
    b.update_user(user.id, UserUpdate::new().password_hash("hash-2"))
        .await
        .unwrap();
    let on_a = a
        .find_user_by(UserLookup::Id(user.id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(on_a.password_hash, "hash-2");

    // Unknown ids are NotFound from either side.
    assert!(matches!(
        a.update_user(
            UserId(user.id.0 + 1_000),
            UserUpdate::new().password_hash("x")
        )
        .await,
        Err(StoreError::NotFound)
    ));
}

#[tokio::test]
async fn two_instances_share_sessions() {
    let Some(db) = pg::test_database().await else {
        return;
    };
    let (a, b) = two_instances(db.url()).await;
    let user = a.add_user(new_user("s@example.com")).await.unwrap();

    // Created on A, honoured on B.
    a.create_session(session("tok-1", user.id), false)
        .await
        .unwrap();
    let (found, owner) = b
        .find_session(&TokenHash::of("tok-1"))
        .await
        .unwrap()
        .expect("B sees A's session");
    assert_eq!(found.user_id, user.id);
    assert_eq!(owner.email, "s@example.com");

    // Touched on B, seen on A.
    b.touch_session(&TokenHash::of("tok-1"), 5_000)
        .await
        .unwrap();
    let (found, _) = a
        .find_session(&TokenHash::of("tok-1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.last_seen_ms, 5_000);

    // A token collision across instances is an error, never an overwrite.
    assert!(matches!(
        b.create_session(session("tok-1", user.id), false).await,
        Err(StoreError::Duplicate)
    ));

    // One session per user, enforced across instances.
    b.create_session(session("tok-2", user.id), true)
        .await
        .unwrap();
    assert!(
        a.find_session(&TokenHash::of("tok-1"))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        a.find_session(&TokenHash::of("tok-2"))
            .await
            .unwrap()
            .is_some()
    );

    // Logout on B is seen by A at once, and A cannot delete it a second time.
    assert!(b.delete_session(&TokenHash::of("tok-2")).await.unwrap());
    assert!(
        a.find_session(&TokenHash::of("tok-2"))
            .await
            .unwrap()
            .is_none()
    );
    assert!(!a.delete_session(&TokenHash::of("tok-2")).await.unwrap());

    // Ending all sessions from A removes the ones created on B.
    b.create_session(session("tok-3", user.id), false)
        .await
        .unwrap();
    b.create_session(session("tok-4", user.id), false)
        .await
        .unwrap();
    assert_eq!(a.delete_user_sessions(user.id, None).await.unwrap(), 2);
    assert!(
        b.find_session(&TokenHash::of("tok-3"))
            .await
            .unwrap()
            .is_none()
    );

    // Expiry sweeping from B removes what A created.
    let mut expired = session("tok-5", user.id);
    expired.expires_at_ms = 2_000;
    a.create_session(expired, false).await.unwrap();
    assert_eq!(
        b.delete_expired(cutoffs(3_000, 0)).await.unwrap().sessions,
        1
    );
    assert!(
        a.find_session(&TokenHash::of("tok-5"))
            .await
            .unwrap()
            .is_none()
    );

    // A session for a user that does not exist is refused by the foreign key.
    assert!(matches!(
        a.create_session(session("tok-6", UserId(user.id.0 + 1_000)), false)
            .await,
        Err(StoreError::NotFound)
    ));
}

#[tokio::test]
async fn two_instances_share_counters() {
    let Some(db) = pg::test_database().await else {
        return;
    };
    let (a, b) = two_instances(db.url()).await;

    let c = a.increment_counter("login:x", 1_000, 60_000).await.unwrap();
    assert_eq!((c.count, c.window_ends_ms), (1, 61_000));
    let c = b.increment_counter("login:x", 2_000, 60_000).await.unwrap();
    assert_eq!((c.count, c.window_ends_ms), (2, 61_000));
    let c = a.get_counter("login:x", 3_000).await.unwrap().unwrap();
    assert_eq!(c.count, 2);

    // Many increments at once, split over both instances, lose none.
    let mut tasks = Vec::new();
    for i in 0..40 {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            store.increment_counter("login:x", 4_000, 60_000).await
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(
        b.get_counter("login:x", 4_000)
            .await
            .unwrap()
            .unwrap()
            .count,
        42
    );

    // A window that ended starts over, whichever instance sees it first.
    let c = b
        .increment_counter("login:x", 61_000, 60_000)
        .await
        .unwrap();
    assert_eq!((c.count, c.window_ends_ms), (1, 121_000));
    assert!(a.get_counter("login:x", 121_000).await.unwrap().is_none());

    // Reset on B, gone on A.
    b.reset_counter("login:x").await.unwrap();
    assert!(a.get_counter("login:x", 61_500).await.unwrap().is_none());
}

fn reset_token(label: &str, user: &tower_auth::User, expires_at_ms: i64) -> EmailToken {
    EmailToken {
        hash: TokenHash::of(label),
        user_id: user.id,
        purpose: TokenPurpose::ResetPassword,
        sent_to: user.email.clone(),
        account_email: user.email.clone(),
        created_at_ms: 1_000,
        expires_at_ms,
    }
}

#[tokio::test]
async fn two_instances_share_reset_tokens() {
    let Some(db) = pg::test_database().await else {
        return;
    };
    let (a, b) = two_instances(db.url()).await;
    let user = a.add_user(new_user("r@example.com")).await.unwrap();
    let other = a.add_user(new_user("o@example.com")).await.unwrap();
    let reset = TokenPurpose::ResetPassword;

    let token = reset_token("reset-1", &user, 10_000);
    a.create_token(token.clone(), Some(0), &[], None)
        .await
        .unwrap();

    // Issued on A, found on B.
    let (found, holder) = b
        .find_token(&TokenHash::of("reset-1"), reset, 5_000)
        .await
        .unwrap()
        .expect("B finds the token A issued");
    assert_eq!(holder.id, user.id);
    assert_eq!(found, token);

    // The same hash for another user is a collision, from either instance.
    assert!(matches!(
        b.create_token(reset_token("reset-1", &other, 10_000), Some(0), &[], None)
            .await,
        Err(StoreError::Duplicate)
    ));

    // An expired token is not redeemed.
    let update = || UserUpdate::new().password_hash("hash-new");
    assert_eq!(
        b.redeem_token(&TokenHash::of("reset-1"), reset, 10_000, update())
            .await
            .unwrap(),
        None
    );
    // Redeemed on B...
    let (_, owner) = b
        .redeem_token(&TokenHash::of("reset-1"), reset, 5_000, update())
        .await
        .unwrap()
        .expect("redeemed on B");
    assert_eq!(owner.id, user.id);
    // ...dead on A.
    assert_eq!(
        a.redeem_token(
            &TokenHash::of("reset-1"),
            reset,
            5_000,
            UserUpdate::new().password_hash("hash-evil")
        )
        .await
        .unwrap(),
        None
    );
    let after = a
        .find_user_by(UserLookup::Id(user.id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.password_hash, "hash-new");

    // A new token issued on A replaces the one issued on B; an email change on B voids it.
    b.create_token(reset_token("reset-2", &user, 10_000), Some(0), &[], None)
        .await
        .unwrap();
    a.create_token(reset_token("reset-3", &user, 10_000), Some(0), &[], None)
        .await
        .unwrap();
    assert!(
        b.find_token(&TokenHash::of("reset-2"), reset, 5_000)
            .await
            .unwrap()
            .is_none()
    );
    b.update_user(user.id, UserUpdate::new().email("moved@example.com"))
        .await
        .unwrap();
    assert!(
        a.find_token(&TokenHash::of("reset-3"), reset, 5_000)
            .await
            .unwrap()
            .is_none()
    );
    // Sweeping from B removes what A issued once it has expired.
    a.create_token(reset_token("reset-4", &other, 2_000), Some(0), &[], None)
        .await
        .unwrap();
    assert_eq!(b.delete_expired(cutoffs(3_000, 0)).await.unwrap().tokens, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_redemption_of_one_token_across_instances_succeeds_once() {
    let Some(db) = pg::test_database().await else {
        return;
    };
    let (a, b) = two_instances(db.url()).await;
    let user = a.add_user(new_user("race@example.com")).await.unwrap();
    a.create_token(reset_token("race-token", &user, 10_000), None, &[], None)
        .await
        .unwrap();
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let store = if i % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move {
                store
                    .redeem_token(
                        &TokenHash::of("race-token"),
                        TokenPurpose::ResetPassword,
                        1_000,
                        UserUpdate::new().password_hash(format!("h{i}")),
                    )
                    .await
            })
        })
        .collect();
    let mut winners = 0;
    for task in tasks {
        if task.await.unwrap().unwrap().is_some() {
            winners += 1;
        }
    }
    assert_eq!(winners, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_single_session_logins_across_instances_leave_one_session() {
    // One session per user (`replace_others`) must hold when two instances log the same
    // user in at the same moment.
    let Some(db) = pg::test_database().await else {
        return;
    };
    let (a, b) = two_instances(db.url()).await;
    let user = a.add_user(new_user("twice@example.com")).await.unwrap();
    for round in 0..5 {
        let tasks: Vec<_> = (0..10)
            .map(|i| {
                let store = if i % 2 == 0 { a.clone() } else { b.clone() };
                let session = session(&format!("login-{round}-{i}"), user.id);
                tokio::spawn(async move { store.create_session(session, true).await })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        assert_eq!(
            a.delete_user_sessions(user.id, None).await.unwrap(),
            1,
            "round {round}: concurrent logins left more than one session"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_registration_race_across_instances_has_one_winner() {
    let Some(db) = pg::test_database().await else {
        return;
    };
    let (a, b) = two_instances(db.url()).await;
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let store = if i % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move { store.add_user(new_user("same@example.com")).await })
        })
        .collect();
    let (mut ok, mut duplicate) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => ok += 1,
            Err(StoreError::Duplicate) => duplicate += 1,
            Err(other) => panic!("unexpected error: {other}"),
        }
    }
    assert_eq!((ok, duplicate), (1, 49));
}

// ----- batched session lookups ----------------------------------------------------------------

/// A store whose session lookups share one statement at a time (the most batching), with
/// `sessions` users and live sessions in it.
async fn lookup_store(
    url: &str,
    sessions: usize,
) -> (Arc<PgStore>, Vec<(Session, tower_auth::User)>) {
    let mut options = PgStoreOptions::default();
    options.session_lookup_statements = 1;
    let store = Arc::new(PgStore::connect_with(url, options).await.expect("connect"));
    let mut made = Vec::new();
    for i in 0..sessions {
        let user = store
            .add_user(new_user(&format!("u{i}@example.com")))
            .await
            .expect("user");
        let session = session(&format!("token {i}"), user.id);
        store
            .create_session(session.clone(), false)
            .await
            .expect("session");
        made.push((session, user));
    }
    (store, made)
}

/// A failed statement answers every lookup of its batch with an error of its kind: with
/// the pool exhausted, each is "unavailable" (503); with the table gone, each is a backend
/// error (500). None hangs, and lookups work again once the database does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_session_lookups_answer_each_caller_with_the_errors_kind() {
    let Some(db) = pg::test_database().await else {
        return;
    };
    let mut options = PgStoreOptions::default();
    options.max_connections = 2;
    options.acquire_timeout = Duration::from_millis(500);
    options.session_lookup_statements = 1;
    let store = Arc::new(
        PgStore::connect_with(db.url(), options)
            .await
            .expect("connect"),
    );
    let token = TokenHash::of("token");
    // Thirty lookups at once, their answers awaited under the hang guard (`hang` says
    // what a timeout means).
    let many = |store: &Arc<PgStore>, hang: &'static str| {
        let mut lookups = tokio::task::JoinSet::new();
        for _ in 0..30 {
            let store = Arc::clone(store);
            lookups.spawn(async move { store.find_session(&token).await });
        }
        let answers = async move {
            let mut answers = Vec::new();
            while let Some(answer) = lookups.join_next().await {
                answers.push(answer.expect("lookup task"));
            }
            answers
        };
        async move { tokio::time::timeout(HANG_GUARD, answers).await.expect(hang) }
    };

    let held = (
        store.pool().acquire().await.expect("connection"),
        store.pool().acquire().await.expect("connection"),
    );
    for answer in many(&store, "no lookup hangs on an exhausted pool").await {
        assert!(
            matches!(answer, Err(StoreError::Unavailable(_))),
            "every lookup of the batch is unavailable, got {answer:?}"
        );
    }
    drop(held);

    sqlx::query("ALTER TABLE auth_sessions RENAME TO sessions_away")
        .execute(store.pool())
        .await
        .expect("rename");
    for answer in many(&store, "no lookup hangs on a failing statement").await {
        assert!(
            matches!(answer, Err(StoreError::Backend(_))),
            "every lookup of the batch fails, got {answer:?}"
        );
    }
    sqlx::query("ALTER TABLE sessions_away RENAME TO auth_sessions")
        .execute(store.pool())
        .await
        .expect("rename back");
    assert_eq!(store.find_session(&token).await.expect("lookup"), None);
}

/// Lookups whose callers give up (a client that disconnects) while waiting for a statement
/// or while leading one leave no other lookup without an answer, and no statement's place
/// is lost: afterwards every lookup is answered as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_given_up_strand_no_other_lookup() {
    let Some(db) = pg::test_database().await else {
        return;
    };
    let (store, sessions) = lookup_store(db.url(), 10).await;
    for round in 0..300u64 {
        let mut lookups = tokio::task::JoinSet::new();
        let mut impatient = Vec::new();
        for (i, (session, user)) in sessions.iter().enumerate().cycle().take(60) {
            let store = Arc::clone(&store);
            let (token, expected) = (session.token_hash, Some((session.clone(), user.clone())));
            // A third are dropped (as a server drops a disconnected client's request)
            // while waiting, told to lead, or with their statement on the wire; the rest
            // wait for their answer.
            if (i as u64 + round).is_multiple_of(3) {
                impatient.push(lookups.spawn(async move {
                    let _ = store.find_session(&token).await;
                }));
            } else {
                lookups.spawn(async move {
                    assert_eq!(store.find_session(&token).await.expect("lookup"), expected);
                });
            }
        }
        tokio::time::sleep(Duration::from_micros(100 + 40 * (round % 10))).await;
        for lookup in impatient {
            lookup.abort();
        }
        let all = async {
            while let Some(done) = lookups.join_next().await {
                if let Err(err) = done {
                    assert!(err.is_cancelled(), "lookup task: {err}");
                }
            }
        };
        tokio::time::timeout(HANG_GUARD, all)
            .await
            .unwrap_or_else(|_| panic!("round {round}: a lookup was stranded"));
    }
    let (session, user) = &sessions[0];
    let after = tokio::time::timeout(HANG_GUARD, store.find_session(&session.token_hash))
        .await
        .expect("no place was lost")
        .expect("lookup");
    assert_eq!(after, Some((session.clone(), user.clone())));
}

/// Batched lookups on a small session table and on a large one: each lookup gets its own
/// row, and neither table is read in full. (PostgreSQL plans `token_hash = ANY(...)` of a
/// dozen tokens over a thousand sessions as a full read of both tables; the store reads a
/// small table with an index probe per token instead.) The scans are PostgreSQL's own
/// counts, `pg_stat_user_tables`, read once the store's connections have closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batched_lookups_read_no_table_in_full_small_or_large() {
    let Some(db) = pg::test_database().await else {
        return;
    };
    let schema = PgStore::connect(db.url()).await.expect("connect");
    let mut seeding = schema.pool().acquire().await.expect("connection");
    let mut seeded = 0;
    for total in [1_000_i64, 60_000] {
        // Users `seeded<N>@example.com`, each with one session whose token is the email.
        sqlx::query(
            "WITH u AS (INSERT INTO auth_users (email, password_hash, created_at_ms) \
               SELECT 'seeded' || n || '@example.com', 'hash', 1000 \
               FROM generate_series($1::bigint, $2::bigint - 1) n RETURNING id, email) \
             INSERT INTO auth_sessions (token_hash, user_id, created_at_ms, last_seen_ms, \
               expires_at_ms) \
             SELECT sha256(convert_to(email, 'UTF8')), id, 1000, 1000, 4000000000000 FROM u",
        )
        .bind(seeded)
        .bind(total)
        .execute(&mut *seeding)
        .await
        .expect("seed");
        sqlx::query("ANALYZE auth_users, auth_sessions")
            .execute(&mut *seeding)
            .await
            .expect("analyze");
        let before = table_scans(&schema, |s| s.inserted >= total).await;
        seeded = total;

        let mut options = PgStoreOptions::default();
        options.session_lookup_statements = 1;
        let store = Arc::new(
            PgStore::connect_with(db.url(), options)
                .await
                .expect("connect"),
        );
        for round in 0..20_i64 {
            let mut lookups = tokio::task::JoinSet::new();
            for i in 0..48_i64 {
                let store = Arc::clone(&store);
                // Spread over the table; every eighth token belongs to no session.
                let n = (round * 7_919 + i * 104_729) % total;
                let email = format!("seeded{n}@example.com");
                let token = if i % 8 == 0 {
                    format!("no session {n}")
                } else {
                    email.clone()
                };
                lookups.spawn(async move {
                    let found = store
                        .find_session(&TokenHash::of(&token))
                        .await
                        .expect("lookup");
                    match found {
                        Some((session, user)) => {
                            assert_eq!(user.email, token, "{total} sessions: another's row");
                            assert_eq!(session.token_hash, TokenHash::of(&email));
                            assert_eq!(session.user_id, user.id);
                        }
                        None => assert_ne!(token, email, "{total} sessions: row not found"),
                    }
                });
            }
            while let Some(done) = lookups.join_next().await {
                done.expect("lookup task");
            }
        }
        store.pool().close().await;
        let after = table_scans(&schema, |s| {
            s.session_index_scans > before.session_index_scans
        })
        .await;
        assert_eq!(
            (after.sessions_read_in_full, after.users_read_in_full),
            (before.sessions_read_in_full, before.users_read_in_full),
            "{total} sessions: a batch read a table in full"
        );
    }
}

/// What `pg_stat_user_tables` says of the two tables a session lookup reads.
#[derive(Debug, Clone, Copy)]
struct TableScans {
    sessions_read_in_full: i64,
    users_read_in_full: i64,
    session_index_scans: i64,
    inserted: i64,
}

/// The scan counts, once `ready` holds for them: a server process reports its counts a
/// moment after its statements (or when it exits), so this waits for the counts it needs.
async fn table_scans(store: &PgStore, ready: impl Fn(&TableScans) -> bool) -> TableScans {
    let read = async {
        loop {
            let mut conn = store.pool().acquire().await.expect("connection");
            let (sessions_read_in_full, session_index_scans, inserted): (i64, i64, i64) =
                sqlx::query_as(
                    "SELECT seq_scan, coalesce(idx_scan, 0), n_tup_ins \
                     FROM pg_stat_user_tables WHERE relname = 'auth_sessions'",
                )
                .fetch_one(&mut *conn)
                .await
                .expect("session table counts");
            let users_read_in_full: i64 = sqlx::query_scalar(
                "SELECT seq_scan FROM pg_stat_user_tables WHERE relname = 'auth_users'",
            )
            .fetch_one(&mut *conn)
            .await
            .expect("user table counts");
            let scans = TableScans {
                sessions_read_in_full,
                users_read_in_full,
                session_index_scans,
                inserted,
            };
            if ready(&scans) {
                return scans;
            }
            drop(conn);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    tokio::time::timeout(HANG_GUARD, read)
        .await
        .expect("PostgreSQL reports its table counts")
}

// ----- pool settings --------------------------------------------------------------------------

#[tokio::test]
async fn pool_options_are_applied() {
    let Some(db) = pg::test_database().await else {
        return;
    };
    let mut options = PgStoreOptions::default();
    options.max_connections = 2;
    options.min_connections = 0;
    options.acquire_timeout = Duration::from_millis(500);
    options.idle_timeout = Some(Duration::from_secs(30));
    let store = PgStore::connect_with(db.url(), options)
        .await
        .expect("connect_with");

    let pool_options = store.pool().options();
    assert_eq!(pool_options.get_max_connections(), 2);
    assert_eq!(pool_options.get_min_connections(), 0);
    assert_eq!(
        pool_options.get_acquire_timeout(),
        Duration::from_millis(500)
    );
    assert_eq!(
        pool_options.get_idle_timeout(),
        Some(Duration::from_secs(30))
    );

    // Hold both connections: the next operation cannot get one and fails after the
    // acquire timeout, instead of opening a third connection or waiting forever.
    let held = (
        store.pool().acquire().await.unwrap(),
        store.pool().acquire().await.unwrap(),
    );
    let starved = tokio::time::timeout(
        HANG_GUARD,
        store.find_user_by(UserLookup::Email("x@example.com")),
    )
    .await
    .expect("the acquire timeout ends the wait");
    assert!(
        matches!(starved, Err(StoreError::Unavailable(_))),
        "an exhausted pool is \"unavailable\" (503, retry shortly), got {starved:?}"
    );
    assert!(store.pool().size() <= 2);

    // Once connections are free again, the store works.
    drop(held);
    store.add_user(new_user("x@example.com")).await.unwrap();
    assert!(store.pool().size() <= 2);
}

#[tokio::test]
async fn unreachable_server_is_an_error_not_a_hang() {
    // Needs no server: a port on which nothing listens.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("postgres://tower_auth:tower_auth@127.0.0.1:{port}/tower_auth");
    let mut options = PgStoreOptions::default();
    options.acquire_timeout = Duration::from_secs(1);
    let result = tokio::time::timeout(HANG_GUARD, PgStore::connect_with(&url, options))
        .await
        .expect("the acquire timeout bounds the connect");
    // Unavailable (worth retrying), and it says where and why, without the password.
    assert!(
        matches!(result, Err(StoreError::Unavailable(_))),
        "got {result:?}"
    );
    let said = format!("{:?}", result.err());
    assert!(
        said.contains(&format!("127.0.0.1:{port}")) && said.contains("refused"),
        "{said}"
    );

    // Through the URL-based entry point the error reaches the caller as a store error.
    let result = tokio::time::timeout(HANG_GUARD, Auth::connect(&url, spec_config()))
        .await
        .expect("the default acquire timeout bounds the connect");
    assert!(
        matches!(result, Err(AuthError::Store(StoreError::Unavailable(_)))),
        "got {:?}",
        result.err()
    );
}

#[tokio::test]
async fn malformed_url_is_an_error() {
    assert!(matches!(
        PgStore::connect("postgres://user@127.0.0.1:notaport/db").await,
        Err(StoreError::Backend(_))
    ));
}

// ----- end to end through Auth ----------------------------------------------------------------

#[tokio::test]
async fn auth_connect_picks_postgres_and_runs_the_seed_flow() {
    let Some(db) = pg::test_database().await else {
        return;
    };
    let auth = Auth::connect(db.url(), spec_config())
        .await
        .expect("Auth::connect with a postgres:// URL");

    let user = auth
        .register_user("bob@bob.com", "MyPwdOfBob")
        .await
        .unwrap();
    assert_eq!(user.email, "bob@bob.com");
    assert!(matches!(
        auth.register_user("bob@bob.com", "MyPwdOfBob").await,
        Err(AuthError::UserExists(_))
    ));
    assert!(auth.valid_login("bob@bob.com", "MyPwdOfBob").await.unwrap());
    assert!(!auth.valid_login("bob@bob.com", "wrong").await.unwrap());
    assert!(
        !auth
            .valid_login("nobody@bob.com", "MyPwdOfBob")
            .await
            .unwrap()
    );

    let session_id = auth
        .create_session("bob@bob.com")
        .await
        .unwrap()
        .expect("known user");
    assert!(
        uuid::Uuid::parse_str(&session_id).is_ok(),
        "spec sessions are UUIDs"
    );
    let me = auth
        .get_user_from_session_id(Some(&session_id))
        .await
        .unwrap()
        .expect("session resolves");
    assert_eq!(me.id, user.id);

    // A second app instance (its own pool) on the same database, via the other scheme.
    let other_url = db.url().replacen("postgres://", "postgresql://", 1);
    let other = Auth::connect(&other_url, spec_config())
        .await
        .expect("Auth::connect with a postgresql:// URL");
    assert_eq!(
        other
            .get_user_from_session_id(Some(&session_id))
            .await
            .unwrap()
            .map(|u| u.email)
            .as_deref(),
        Some("bob@bob.com"),
        "a session from one instance is honoured by another"
    );

    // Reset issued by one instance, redeemed on the other.
    let token = auth.get_reset_password_token("bob@bob.com").await.unwrap();
    other.update_password(&token, "NewPwdOfBob").await.unwrap();
    assert!(
        auth.valid_login("bob@bob.com", "NewPwdOfBob")
            .await
            .unwrap()
    );
    assert!(!auth.valid_login("bob@bob.com", "MyPwdOfBob").await.unwrap());
    assert!(matches!(
        auth.update_password(&token, "Again1234").await,
        Err(AuthError::InvalidResetToken)
    ));

    // Logout on one instance is seen by the other at once.
    other.destroy_session(user.id).await.unwrap();
    assert!(
        auth.get_user_from_session_id(Some(&session_id))
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn auth_connect_shares_state_across_instances_via_arc_store() {
    // `store::connect` gives the trait object the example server uses.
    let Some(db) = pg::test_database().await else {
        return;
    };
    let store: Arc<dyn Store> = tower_auth::store::connect(db.url(), false).await.unwrap();
    let auth = Auth::builder_shared(store.clone(), spec_config())
        .build()
        .expect("valid config");
    auth.register_user("ann@example.com", "AnnsPassword1")
        .await
        .unwrap();
    assert!(
        store
            .find_user_by(UserLookup::Email("ann@example.com"))
            .await
            .unwrap()
            .is_some()
    );
}

// ----- the helper itself ----------------------------------------------------------------------

#[test]
fn with_database_replaces_only_the_path() {
    assert_eq!(
        pg::with_database("postgres://u:p@127.0.0.1:5432/tower_auth", "x"),
        "postgres://u:p@127.0.0.1:5432/x"
    );
    assert_eq!(
        pg::with_database("postgresql://u:p@h/db?sslmode=disable", "x"),
        "postgresql://u:p@h/x?sslmode=disable"
    );
    assert_eq!(pg::with_database("postgres://h:1", "x"), "postgres://h:1/x");
    assert_eq!(
        pg::with_database("postgres://h?a=b", "x"),
        "postgres://h/x?a=b"
    );
}

#[tokio::test]
async fn each_test_database_is_new_and_empty() {
    let Some(first) = pg::test_database().await else {
        return;
    };
    let Some(second) = pg::test_database().await else {
        return;
    };
    assert_ne!(first.name(), second.name());
    let store = PgStore::connect(first.url()).await.unwrap();
    store.add_user(new_user("iso@example.com")).await.unwrap();
    let other = PgStore::connect(second.url()).await.unwrap();
    assert!(
        other
            .find_user_by(UserLookup::Email("iso@example.com"))
            .await
            .unwrap()
            .is_none()
    );
}

/// A session cache that does not keep up with the changes other instances announce never
/// makes the listener queue them without bound: past its backlog the listener counts as
/// lost (the cache is set aside and reopened), after handing over what it queued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_listener_that_falls_behind_is_lost_not_unbounded() {
    let Some(db) = pg::test_database().await else {
        return;
    };
    let store = PgStore::connect(db.url()).await.expect("connect");
    let tower_auth::store::ChangeFeed::Shared { mut listener, .. } =
        store.change_feed().await.expect("a feed")
    else {
        panic!("PostgreSQL shares its changes");
    };
    // 10,000 changes announced while nobody reads them (distinct payloads: PostgreSQL
    // delivers identical ones from one transaction once).
    sqlx::query("SELECT pg_notify('tower_auth_changes', g::text) FROM generate_series(1, 10000) g")
        .execute(store.pool())
        .await
        .expect("notify");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut handed_over = 0;
    let lost = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match listener.next_change().await {
                Ok(_) => handed_over += 1,
                Err(err) => return err,
            }
        }
    })
    .await
    .expect("the listener ends");
    assert!(matches!(lost, StoreError::Unavailable(_)), "{lost:?}");
    assert!(
        (1..10_000).contains(&handed_over),
        "what was queued is handed over, up to the backlog: {handed_over}"
    );
}

/// Each kind of expiry a sweep deletes by can be read through an index (migration 6):
/// with sequential scans priced out, PostgreSQL plans an index scan for every one.
#[tokio::test]
async fn the_sweep_reads_sessions_through_indexes() {
    let Some(db) = pg::test_database().await else {
        return;
    };
    let store = PgStore::connect(db.url()).await.expect("connect");
    let mut conn = store.pool().acquire().await.expect("a connection");
    sqlx::query("SET enable_seqscan = off")
        .execute(&mut *conn)
        .await
        .expect("set");
    for condition in [
        "expires_at_ms <= 1",
        "remembered = FALSE AND last_seen_ms <= 1",
        "remembered = TRUE AND last_seen_ms <= 1",
    ] {
        let plan: Vec<String> = sqlx::query_scalar(&format!(
            "EXPLAIN SELECT token_hash FROM auth_sessions WHERE {condition} LIMIT 1000"
        ))
        .fetch_all(&mut *conn)
        .await
        .expect("explain");
        let plan = plan.join("\n");
        assert!(
            plan.contains("auth_sessions_expires_at") || plan.contains("auth_sessions_idle"),
            "{condition}: {plan}"
        );
    }
}
