//! Every store backend runs the one conformance suite, `tower_auth::store::conformance`.
//!
//! To add a backend, add one `#[tokio::test]` that opens the store and hands it to
//! `conformance::run`, as `memory_store_conforms` and `sqlite_store_conforms` do. A
//! PostgreSQL test follows the same pattern (see the note at the end of this file).

use tower_auth::store::conformance;
use tower_auth::{MemoryStore, Store};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_conforms() {
    conformance::run(MemoryStore::new()).await;
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use std::path::Path;

    use tempfile::TempDir;
    use tower_auth::store::conformance;
    use tower_auth::store::{
        Counter, EmailToken, NewUser, Session, TokenHash, TokenPurpose, UserLookup, UserRecord,
        UserUpdate,
    };
    use tower_auth::{SqliteStore, Store};

    /// A SQLite URL for a new file in `dir`, created on first connect.
    fn url(dir: &Path) -> String {
        format!("sqlite://{}?mode=rwc", dir.join("auth.db").display())
    }

    async fn open(url: &str) -> SqliteStore {
        SqliteStore::connect(url)
            .await
            .unwrap_or_else(|e| panic!("opening {url}: {e}"))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_store_conforms() {
        let dir = TempDir::new().expect("temp dir");
        conformance::run(open(&url(dir.path())).await).await;
    }

    /// The suite is meant to run against databases holding other data (a staging
    /// PostgreSQL, say): a second run on the file the first run filled must pass too.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_store_conforms_on_a_database_holding_other_data() {
        let dir = TempDir::new().expect("temp dir");
        let url = url(dir.path());
        let store = open(&url).await;
        let fixture = Fixture::write(&store, "other-data").await;
        conformance::run(store.clone()).await;
        conformance::run(store.clone()).await;
        fixture.assert_intact(&store).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_connect_fresh_drops_existing_data_then_conforms() {
        let dir = TempDir::new().expect("temp dir");
        let url = url(dir.path());
        let store = open(&url).await;
        let fixture = Fixture::write(&store, "fresh").await;
        fixture.assert_intact(&store).await;
        store.pool().close().await;

        let fresh = SqliteStore::connect_fresh(&url)
            .await
            .expect("connect_fresh on an existing file");
        fixture.assert_gone(&fresh).await;
        assert_eq!(
            fresh
                .find_user_by(UserLookup::Id(fixture.user.user.id))
                .await
                .expect("find_user_by"),
            None,
            "connect_fresh must drop every user"
        );
        conformance::run(fresh.clone()).await;
        fixture.assert_gone(&fresh).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_data_survives_reopening() {
        let dir = TempDir::new().expect("temp dir");
        let url = url(dir.path());
        let store = open(&url).await;
        let fixture = Fixture::write(&store, "durable").await;

        // Many acknowledged concurrent writes, to make sure none is lost on close.
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..40 {
            let store = store.clone();
            tasks.spawn(async move {
                store
                    .add_user(NewUser {
                        email: format!("bulk-{i}@example.com"),
                        password_hash: format!("bulk-hash-{i}"),
                        created_at_ms: 1_700_000_000_000 + i,
                        first_link: None,
                        email_confirmed_at_ms: None,
                    })
                    .await
                    .expect("concurrent add_user")
            });
        }
        let mut bulk = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            bulk.push(joined.expect("add_user task"));
        }
        store.pool().close().await;
        drop(store);

        let reopened = open(&url).await;
        fixture.assert_intact(&reopened).await;
        for user in &bulk {
            assert_eq!(
                reopened
                    .find_user_by(UserLookup::Email(&user.email))
                    .await
                    .expect("find_user_by after reopening")
                    .map(|r| r.user)
                    .as_ref(),
                Some(user),
                "an acknowledged add_user must survive closing and reopening the file"
            );
        }

        // Ids keep growing after a reopen: a new account never reuses an old id.
        let newcomer = reopened
            .add_user(NewUser {
                email: "newcomer@example.com".into(),
                password_hash: "h".into(),
                created_at_ms: 1_700_000_000_000,
                first_link: None,
                email_confirmed_at_ms: None,
            })
            .await
            .expect("add_user after reopening");
        let highest = bulk
            .iter()
            .map(|u| u.id)
            .chain([fixture.user.user.id])
            .max();
        assert!(
            Some(newcomer.id) > highest,
            "ids after reopening must not reuse old ones: {:?} vs {highest:?}",
            newcomer.id
        );
    }

    /// One of each kind of record, written through the `Store` trait.
    struct Fixture {
        user: UserRecord,
        token: EmailToken,
        session: Session,
        counter_key: String,
        counter: Counter,
    }

    /// Far-future times, so no expiry applies to the fixture.
    const T: i64 = 4_000_000_000_000;

    impl Fixture {
        async fn write(store: &SqliteStore, label: &str) -> Self {
            let user = store
                .add_user(NewUser {
                    email: format!("{label}@example.com"),
                    password_hash: "first-hash".into(),
                    created_at_ms: T,
                    first_link: None,
                    email_confirmed_at_ms: None,
                })
                .await
                .expect("add_user");
            store
                .update_user(user.id, UserUpdate::new().password_hash("second-hash"))
                .await
                .expect("update_user");
            let token = EmailToken {
                hash: TokenHash::of(&format!("{label}-reset")),
                user_id: user.id,
                purpose: TokenPurpose::ResetPassword,
                sent_to: user.email.clone(),
                account_email: user.email.clone(),
                created_at_ms: T,
                expires_at_ms: T + 1_000,
            };
            store
                .create_token(token.clone(), Some(0), &[], None)
                .await
                .expect("create_token");
            let session = Session {
                last_seen_ms: T + 1,
                remembered: true,
                user_agent: Some("Firefox 133 on Linux".into()),
                client_ip: Some("192.0.2.7".into()),
                ..Session::new(
                    TokenHash::of(&format!("{label}-session")),
                    user.id,
                    T,
                    T + 2,
                )
            };
            store
                .create_session(session.clone(), false)
                .await
                .expect("create_session");
            let counter_key = format!("{label}-counter");
            store
                .increment_counter(&counter_key, T, 10_000)
                .await
                .expect("increment_counter");
            let counter = store
                .increment_counter(&counter_key, T, 10_000)
                .await
                .expect("increment_counter");
            assert_eq!(counter.count, 2);
            Self {
                user: UserRecord::new(user, "second-hash"),
                token,
                session,
                counter_key,
                counter,
            }
        }

        async fn assert_intact(&self, store: &SqliteStore) {
            assert_eq!(
                store
                    .find_user_by(UserLookup::Id(self.user.user.id))
                    .await
                    .expect("find_user_by")
                    .as_ref(),
                Some(&self.user),
                "the user (with its updated hash) must be kept"
            );
            assert_eq!(
                store
                    .find_token(&self.token.hash, self.token.purpose, T)
                    .await
                    .expect("find_token"),
                Some((self.token.clone(), self.user.user.clone())),
                "the reset token must be kept"
            );
            assert_eq!(
                store
                    .find_session(&self.session.token_hash)
                    .await
                    .expect("find_session"),
                Some((self.session.clone(), self.user.user.clone())),
                "the session must be kept"
            );
            assert_eq!(
                store
                    .get_counter(&self.counter_key, T)
                    .await
                    .expect("get_counter"),
                Some(self.counter),
                "the counter must be kept"
            );
        }

        /// After `connect_fresh`: no trace of the fixture. (Ids are not checked: a fresh
        /// table may hand out the fixture user's id again.)
        async fn assert_gone(&self, store: &SqliteStore) {
            assert_eq!(
                store
                    .find_user_by(UserLookup::Email(&self.user.user.email))
                    .await
                    .expect("find_user_by"),
                None,
                "connect_fresh must drop every user"
            );
            assert_eq!(
                store
                    .find_session(&self.session.token_hash)
                    .await
                    .expect("find_session"),
                None,
                "connect_fresh must drop every session"
            );
            assert_eq!(
                store
                    .get_counter(&self.counter_key, T)
                    .await
                    .expect("get_counter"),
                None,
                "connect_fresh must drop every counter"
            );
        }
    }
}

// PostgreSQL: copy `sqlite_store_conforms` into a `#[cfg(feature = "postgres")] mod postgres`,
// opening the store with `tower_auth::PgStore::connect(&url)` where `url` comes from the
// environment (for example `TOWER_AUTH_TEST_POSTGRES_URL`), and pass it to
// `conformance::run`. The suite is safe on a database holding other data; only make sure
// two runs do not overlap in time on one database (see the `conformance` module docs).

/// The suite also accepts a store behind `Arc<dyn Store>`, as `store::connect` returns it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_store_from_a_url_conforms() {
    let store: std::sync::Arc<dyn Store> = tower_auth::store::connect("memory:", false)
        .await
        .expect("memory store");
    conformance::run_shared(store).await;
}
