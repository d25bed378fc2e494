//! The seed's `Auth` tasks (0-5, 8-10, 12, 13, 16, 18) against the [`Auth`] service with
//! the spec preset, plus what the seed leaves implicit: hashes and tokens at rest, Debug
//! redaction, email normalization and expiry.
//!
//! Every scenario is written once, generic over the store, and run on [`MemoryStore`] and
//! on [`SqliteStore`](tower_auth::SqliteStore) (a temporary file) by the
//! `on_every_store!` macro at the end of the file. The test a PostgreSQL backend would add
//! is one more module in that macro.

use std::path::PathBuf;
use std::time::Duration;

use tempfile::TempDir;
use tower_auth::clock::ManualClock;
use tower_auth::store::{TokenHash, TokenPurpose, UserLookup, UserRecord};
use tower_auth::{Auth, AuthConfig, AuthError, LoginAttempt, MemoryStore, ResetRequested, Store};

/// Start of the manual clock: 2023-11-14.
const T0: i64 = 1_700_000_000_000;
const MS: Duration = Duration::from_millis(1);

/// The spec preset, with the cheapest bcrypt cost so the tests stay fast.
fn config() -> AuthConfig {
    let mut config = AuthConfig::spec();
    config.bcrypt_cost = 4;
    config
}

/// A store under test, a clone of which is handed to [`Auth`] so the test can inspect
/// what `Auth` wrote.
struct Fixture<S> {
    store: S,
    /// For SQLite: the database file, to read it behind the store's back.
    db_file: Option<PathBuf>,
    _dir: Option<TempDir>,
}

fn memory() -> Fixture<MemoryStore> {
    Fixture {
        store: MemoryStore::new(),
        db_file: None,
        _dir: None,
    }
}

#[cfg(feature = "sqlite")]
async fn sqlite() -> Fixture<tower_auth::SqliteStore> {
    let dir = TempDir::new().expect("temp dir");
    let file = dir.path().join("auth.db");
    let store = tower_auth::SqliteStore::connect(&format!("sqlite://{}?mode=rwc", file.display()))
        .await
        .expect("open SQLite store");
    Fixture {
        store,
        db_file: Some(file),
        _dir: Some(dir),
    }
}

impl<S: Store + Clone> Fixture<S> {
    fn auth(&self) -> Auth {
        Auth::new(self.store.clone(), config()).expect("valid config")
    }

    fn auth_with_clock(&self, clock: &ManualClock) -> Auth {
        Auth::builder(self.store.clone(), config())
            .clock(clock.clone())
            .build()
            .expect("valid config")
    }

    /// The account stored under exactly this (normalized) email.
    async fn stored_user(&self, email: &str) -> Option<UserRecord> {
        self.store
            .find_user_by(UserLookup::Email(email))
            .await
            .expect("find_user_by")
    }

    /// Checks that a token handed out by `Auth` is nowhere in the database in clear, while
    /// its SHA-256 is (so the scan demonstrably reads the rows `Auth` wrote). A no-op for
    /// stores without a file: their types hold only [`TokenHash`]es.
    async fn assert_only_hash_stored(&self, token: &str) {
        #[cfg(feature = "sqlite")]
        if let Some(file) = &self.db_file {
            let uuid = uuid::Uuid::parse_str(token).expect("tokens of the spec preset are UUIDs");
            let forms: [(&str, Vec<u8>); 4] = [
                ("hyphenated", token.as_bytes().to_vec()),
                ("upper-case", token.to_uppercase().into_bytes()),
                ("simple", uuid.simple().to_string().into_bytes()),
                ("raw 16 bytes", uuid.as_bytes().to_vec()),
            ];
            let cells = sqlite_cells(file).await;
            let hash = TokenHash::of(token);
            assert!(
                cells.iter().any(|(_, _, v)| v == hash.as_bytes()),
                "the token's SHA-256 must be stored (is the scan reading the right database?)"
            );
            for (table, column, value) in &cells {
                for (form, needle) in &forms {
                    assert!(
                        !contains(value, needle),
                        "{table}.{column} holds the clear token ({form})"
                    );
                }
            }
            // Nor on disk at all: database, WAL and anything else in the directory.
            let dir = file.parent().expect("file in a directory");
            for entry in std::fs::read_dir(dir).expect("read temp dir") {
                let path = entry.expect("dir entry").path();
                let bytes = std::fs::read(&path).expect("read database file");
                assert!(
                    !contains(&bytes, token.as_bytes()),
                    "{} contains the clear token",
                    path.display()
                );
            }
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every cell of every table of the SQLite file, as bytes: `(table, column, value)`.
#[cfg(feature = "sqlite")]
async fn sqlite_cells(file: &std::path::Path) -> Vec<(String, String, Vec<u8>)> {
    let url = format!("sqlite://{}?mode=ro", file.display());
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .expect("open the database file read-only");
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'")
            .fetch_all(&pool)
            .await
            .expect("list tables");
    assert!(
        tables.iter().any(|t| t == "auth_sessions") && tables.iter().any(|t| t == "auth_users"),
        "expected the crate's tables, found {tables:?}"
    );
    let mut cells = Vec::new();
    for table in tables {
        let columns: Vec<String> =
            sqlx::query_scalar(&format!("SELECT name FROM pragma_table_info('{table}')"))
                .fetch_all(&pool)
                .await
                .expect("list columns");
        for column in columns {
            let values: Vec<Option<Vec<u8>>> = sqlx::query_scalar(&format!(
                "SELECT CAST(\"{column}\" AS BLOB) FROM \"{table}\""
            ))
            .fetch_all(&pool)
            .await
            .expect("read a column");
            cells.extend(
                values
                    .into_iter()
                    .flatten()
                    .map(|v| (table.clone(), column.clone(), v)),
            );
        }
    }
    pool.close().await;
    cells
}

fn assert_uuid_v4(token: &str) {
    let parsed = uuid::Uuid::parse_str(token)
        .unwrap_or_else(|e| panic!("{token:?} must be a UUID string: {e}"));
    assert_eq!(parsed.get_version_num(), 4, "{token} must be a UUID v4");
    assert_eq!(
        token,
        parsed.hyphenated().to_string(),
        "the token must be the canonical hyphenated lower-case form"
    );
}

// ----- seed tasks 0-2: users get ids, are found, emails are unique ------------------------

async fn users_get_distinct_ids_and_are_found<S: Store + Clone>(fx: Fixture<S>) {
    let auth = fx.auth();
    let one = auth
        .register_user("test@test.com", "SuperPwd")
        .await
        .expect("register test@test.com");
    let two = auth
        .register_user("test1@test.com", "SuperPwd1")
        .await
        .expect("register test1@test.com");
    assert_ne!(one.id, two.id, "two users must get two ids");
    for user in [&one, &two] {
        assert_eq!(
            fx.store
                .find_user_by(UserLookup::Id(user.id))
                .await
                .expect("find_user_by id")
                .map(|r| r.user)
                .as_ref(),
            Some(user),
            "register_user must return the user as stored"
        );
        assert_eq!(
            fx.stored_user(&user.email).await.map(|r| r.user).as_ref(),
            Some(user)
        );
    }
    assert_eq!(fx.stored_user("test2@test.com").await, None);
}

// ----- seed task 4: the password is stored as a salted bcrypt hash --------------------------

async fn password_is_stored_as_a_salted_bcrypt_hash<S: Store + Clone>(fx: Fixture<S>) {
    let auth = fx.auth();
    let password = "Hello Holberton";
    auth.register_user("a@a.com", password)
        .await
        .expect("register a");
    auth.register_user("b@b.com", password)
        .await
        .expect("register b");
    let a = fx.stored_user("a@a.com").await.expect("a stored");
    let b = fx.stored_user("b@b.com").await.expect("b stored");
    for hash in [&a.password_hash, &b.password_hash] {
        assert!(
            hash.starts_with("$2b$04$"),
            "expected a bcrypt $2b$ hash at cost 4, got {hash:?}"
        );
        assert_eq!(hash.len(), 60, "a bcrypt hash is 60 characters");
        assert!(
            !hash.contains(password),
            "the hash must not contain the password"
        );
        assert!(
            bcrypt::verify(password, hash).expect("a valid bcrypt hash"),
            "the stored hash must verify the password with plain bcrypt"
        );
    }
    assert_ne!(
        a.password_hash, b.password_hash,
        "equal passwords must hash differently (salt)"
    );
}

// ----- seed task 5: register_user refuses a second account ----------------------------------

async fn register_twice_is_refused_with_the_seed_message<S: Store + Clone>(fx: Fixture<S>) {
    let auth = fx.auth();
    let user = auth
        .register_user("me@me.com", "mySecuredPwd")
        .await
        .expect("successfully created a new user!");
    assert_eq!(user.email, "me@me.com");
    for password in ["mySecuredPwd", "anotherPwd"] {
        let err = auth
            .register_user("me@me.com", password)
            .await
            .expect_err("a second registration must fail");
        assert_eq!(err.to_string(), "User me@me.com already exists");
        assert!(
            matches!(&err, AuthError::UserExists(email) if email == "me@me.com"),
            "expected AuthError::UserExists, got {err:?}"
        );
    }
    assert_eq!(
        fx.stored_user("me@me.com").await.map(|r| r.user),
        Some(user),
        "the first account must be untouched"
    );
    assert!(auth.valid_login("me@me.com", "mySecuredPwd").await.unwrap());
    assert!(!auth.valid_login("me@me.com", "anotherPwd").await.unwrap());
}

// ----- seed task 8: valid_login -------------------------------------------------------------

async fn valid_login_checks_email_and_password<S: Store + Clone>(fx: Fixture<S>) {
    let auth = fx.auth();
    auth.register_user("bob@bob.com", "MyPwdOfBob")
        .await
        .expect("register");
    assert!(auth.valid_login("bob@bob.com", "MyPwdOfBob").await.unwrap());
    assert!(!auth.valid_login("bob@bob.com", "WrongPwd").await.unwrap());
    assert!(!auth.valid_login("bob@bob.com", "mypwdofbob").await.unwrap());
    assert!(!auth.valid_login("bob@bob.com", "").await.unwrap());
    assert!(
        !auth
            .valid_login("unknown@email", "MyPwdOfBob")
            .await
            .unwrap()
    );
    assert!(
        !auth
            .valid_login("not an email", "MyPwdOfBob")
            .await
            .unwrap()
    );
}

// ----- seed tasks 9-10: create_session ------------------------------------------------------

async fn create_session_returns_a_uuid_for_known_emails_only<S: Store + Clone>(fx: Fixture<S>) {
    let auth = fx.auth();
    let user = auth
        .register_user("bob@bob.com", "MyPwdOfBob")
        .await
        .expect("register");
    assert_eq!(
        auth.create_session("unknown@email.com").await.unwrap(),
        None
    );
    let first = auth
        .create_session("bob@bob.com")
        .await
        .unwrap()
        .expect("a session for a known email");
    assert_uuid_v4(&first);
    let (session, owner) = fx
        .store
        .find_session(&TokenHash::of(&first))
        .await
        .expect("find_session")
        .expect("the session must be stored");
    assert_eq!((session.user_id, owner.id), (user.id, user.id));

    let second = auth
        .create_session("bob@bob.com")
        .await
        .unwrap()
        .expect("a second session");
    assert_uuid_v4(&second);
    assert_ne!(first, second, "every session id must be new");
    // The spec preset keeps one session per user, as the seed's session_id column does.
    assert_eq!(
        auth.get_user_from_session_id(Some(&first)).await.unwrap(),
        None,
        "a new session must replace the user's previous one in the spec preset"
    );
    assert_eq!(
        auth.get_user_from_session_id(Some(&second))
            .await
            .unwrap()
            .map(|u| u.id),
        Some(user.id)
    );
}

async fn session_token_is_stored_only_hashed<S: Store + Clone>(fx: Fixture<S>) {
    let clock = ManualClock::new(T0);
    let auth = fx.auth_with_clock(&clock);
    let user = auth
        .register_user("bob@bob.com", "MyPwdOfBob")
        .await
        .expect("register");
    let token = auth
        .create_session("bob@bob.com")
        .await
        .unwrap()
        .expect("session");
    let (session, owner) = fx
        .store
        .find_session(&TokenHash::of(&token))
        .await
        .expect("find_session")
        .expect("the store must know the session by the token's hash");
    assert_eq!(session.token_hash, TokenHash::of(&token));
    assert_eq!(session.user_id, user.id);
    assert_eq!(owner.id, user.id);
    assert_eq!(session.created_at_ms, T0);
    assert_eq!(session.last_seen_ms, T0);
    assert_eq!(
        session.expires_at_ms,
        T0 + i64::try_from(config().session_lifetime.as_millis()).unwrap(),
        "a session must expire session_lifetime after its creation"
    );
    fx.assert_only_hash_stored(&token).await;
}

// ----- seed task 12: get_user_from_session_id ----------------------------------------------

async fn get_user_from_session_id_finds_only_live_sessions<S: Store + Clone>(fx: Fixture<S>) {
    let auth = fx.auth();
    auth.register_user("bob@bob.com", "MyPwdOfBob")
        .await
        .expect("register");
    let token = auth
        .create_session("bob@bob.com")
        .await
        .unwrap()
        .expect("session");
    assert_eq!(auth.get_user_from_session_id(None).await.unwrap(), None);
    let unknown = uuid::Uuid::new_v4().to_string();
    let long = "x".repeat(10_000);
    for bad in ["", "nope", unknown.as_str(), long.as_str(), &token[..35]] {
        assert_eq!(
            auth.get_user_from_session_id(Some(bad)).await.unwrap(),
            None,
            "session id {bad:.40?} must find no user"
        );
    }
    let found = auth
        .get_user_from_session_id(Some(&token))
        .await
        .unwrap()
        .expect("the session's user");
    assert_eq!(
        Some(found),
        fx.stored_user("bob@bob.com").await.map(|r| r.user)
    );
}

// ----- seed task 13: destroy_session --------------------------------------------------------

async fn destroy_session_ends_the_users_session<S: Store + Clone>(fx: Fixture<S>) {
    let auth = fx.auth();
    let bob = auth
        .register_user("bob@bob.com", "MyPwdOfBob")
        .await
        .expect("register bob");
    auth.register_user("amy@amy.com", "MyPwdOfAmy")
        .await
        .expect("register amy");
    let bobs = auth.create_session("bob@bob.com").await.unwrap().unwrap();
    let amys = auth.create_session("amy@amy.com").await.unwrap().unwrap();

    auth.destroy_session(bob.id).await.expect("destroy_session");
    assert_eq!(
        auth.get_user_from_session_id(Some(&bobs)).await.unwrap(),
        None
    );
    assert_eq!(
        fx.store
            .find_session(&TokenHash::of(&bobs))
            .await
            .expect("find_session"),
        None,
        "a destroyed session must be removed from the store"
    );
    assert_eq!(
        auth.get_user_from_session_id(Some(&amys))
            .await
            .unwrap()
            .map(|u| u.email),
        Some("amy@amy.com".to_owned()),
        "destroying one user's session must not end another's"
    );
    auth.destroy_session(bob.id)
        .await
        .expect("destroying an already destroyed session is not an error");
}

// ----- seed task 16: get_reset_password_token -----------------------------------------------

async fn reset_token_is_issued_for_known_emails_and_stored_hashed<S: Store + Clone>(
    fx: Fixture<S>,
) {
    let clock = ManualClock::new(T0);
    let auth = fx.auth_with_clock(&clock);
    let err = auth
        .get_reset_password_token("nobody@bob.com")
        .await
        .expect_err("an unknown email must get no token");
    assert!(
        matches!(err, AuthError::UnknownEmail),
        "expected UnknownEmail, got {err:?}"
    );
    let user = auth
        .register_user("bob@bob.com", "MyPwdOfBob")
        .await
        .expect("register");
    let token = auth
        .get_reset_password_token("bob@bob.com")
        .await
        .expect("a token for a known email");
    assert_uuid_v4(&token);

    let (reset, owner) = fx
        .store
        .find_token(&TokenHash::of(&token), TokenPurpose::ResetPassword, T0)
        .await
        .expect("find_token")
        .expect("the token must be stored as its SHA-256");
    assert_eq!(owner, user, "the token belongs to the account");
    assert_eq!(
        (reset.sent_to.as_str(), reset.account_email.as_str()),
        ("bob@bob.com", "bob@bob.com"),
        "a reset token is sent to, and bound to, the account's email"
    );
    assert_eq!(
        reset.expires_at_ms,
        T0 + i64::try_from(config().reset_token_ttl.as_millis()).unwrap(),
        "a reset token must expire reset_token_ttl after it was issued"
    );
    fx.assert_only_hash_stored(&token).await;

    let newer = auth
        .get_reset_password_token("bob@bob.com")
        .await
        .expect("a second token");
    assert_ne!(token, newer);
    let err = auth
        .update_password(&token, "NewPwd")
        .await
        .expect_err("a replaced token must be refused");
    assert!(matches!(err, AuthError::InvalidResetToken), "{err:?}");
    auth.update_password(&newer, "NewPwd")
        .await
        .expect("the newest token works");
}

// ----- seed task 18: update_password --------------------------------------------------------

async fn update_password_uses_a_valid_token_once<S: Store + Clone>(fx: Fixture<S>) {
    let auth = fx.auth();
    auth.register_user("bob@bob.com", "MyPwdOfBob")
        .await
        .expect("register");
    let session = auth.create_session("bob@bob.com").await.unwrap().unwrap();
    let token = auth
        .get_reset_password_token("bob@bob.com")
        .await
        .expect("token");

    let unknown = uuid::Uuid::new_v4().to_string();
    for bad in ["", "nope", unknown.as_str(), &token[..35]] {
        let err = auth
            .update_password(bad, "NewPwd")
            .await
            .expect_err("a bad token must be refused");
        assert!(
            matches!(err, AuthError::InvalidResetToken),
            "token {bad:?}: expected InvalidResetToken, got {err:?}"
        );
    }
    assert!(
        auth.valid_login("bob@bob.com", "MyPwdOfBob").await.unwrap(),
        "refused updates must not change the password"
    );

    auth.update_password(&token, "NewPwd")
        .await
        .expect("a valid token updates the password");
    assert!(!auth.valid_login("bob@bob.com", "MyPwdOfBob").await.unwrap());
    assert!(auth.valid_login("bob@bob.com", "NewPwd").await.unwrap());
    assert_eq!(
        fx.store
            .find_token(&TokenHash::of(&token), TokenPurpose::ResetPassword, T0)
            .await
            .expect("find_token"),
        None,
        "the used token must be gone"
    );

    let err = auth
        .update_password(&token, "ThirdPwd")
        .await
        .expect_err("a token must work only once");
    assert!(matches!(err, AuthError::InvalidResetToken), "{err:?}");
    assert!(auth.valid_login("bob@bob.com", "NewPwd").await.unwrap());
    assert!(!auth.valid_login("bob@bob.com", "ThirdPwd").await.unwrap());

    // The spec preset keeps sessions across a reset (the seed's clients log out afterwards).
    assert!(
        auth.get_user_from_session_id(Some(&session))
            .await
            .unwrap()
            .is_some(),
        "in the spec preset a password reset must not end existing sessions"
    );
}

// ----- beyond the seed ----------------------------------------------------------------------

async fn passwords_over_72_bytes_are_refused_never_truncated<S: Store + Clone>(fx: Fixture<S>) {
    let auth = fx.auth();
    let too_long = "a".repeat(73);
    let err = auth
        .register_user("long@x.io", &too_long)
        .await
        .expect_err("a 73-byte password must be refused");
    assert!(
        matches!(err, AuthError::WeakPassword(_)),
        "expected WeakPassword, got {err:?}"
    );
    assert_eq!(fx.stored_user("long@x.io").await, None, "nothing is stored");
    // 73 bytes of multi-byte characters: the limit is bytes, not characters.
    let wide = "é".repeat(37);
    assert_eq!(wide.len(), 74);
    let err = auth
        .register_user("wide@x.io", &wide)
        .await
        .expect_err("74 bytes");
    assert!(matches!(err, AuthError::WeakPassword(_)), "{err:?}");
    assert_eq!(fx.stored_user("wide@x.io").await, None);

    let longest = "a".repeat(72);
    auth.register_user("long@x.io", &longest)
        .await
        .expect("a 72-byte password is accepted");
    assert!(auth.valid_login("long@x.io", &longest).await.unwrap());
    assert!(
        !auth
            .valid_login("long@x.io", &format!("{longest}b"))
            .await
            .unwrap(),
        "bcrypt's 72-byte truncation must not let a longer password in"
    );

    let token = auth.get_reset_password_token("long@x.io").await.unwrap();
    let err = auth
        .update_password(&token, &too_long)
        .await
        .expect_err("a too-long new password must be refused");
    assert!(matches!(err, AuthError::WeakPassword(_)), "{err:?}");
    assert!(auth.valid_login("long@x.io", &longest).await.unwrap());
    auth.update_password(&token, "short")
        .await
        .expect("a refused new password must not consume the token");
    assert!(auth.valid_login("long@x.io", "short").await.unwrap());
}

async fn debug_output_hides_hashes_and_tokens<S: Store + Clone>(fx: Fixture<S>) {
    let auth = fx.auth();
    auth.register_user("bob@bob.com", "MyPwdOfBob")
        .await
        .expect("register");
    let reset_token = auth.get_reset_password_token("bob@bob.com").await.unwrap();
    let user = fx.stored_user("bob@bob.com").await.expect("stored user");
    let (token, _) = fx
        .store
        .find_token(
            &TokenHash::of(&reset_token),
            TokenPurpose::ResetPassword,
            T0,
        )
        .await
        .expect("find_token")
        .expect("stored token");
    let debug = format!("{user:?} {token:?}");
    assert!(
        debug.contains("bob@bob.com"),
        "Debug should still say whose record it is: {debug}"
    );
    assert!(!debug.contains(&user.password_hash), "{debug}");
    assert!(!debug.contains("$2b$"), "{debug}");
    assert!(!debug.contains(&reset_token), "{debug}");
    let pretty = format!("{user:#?} {token:#?}");
    assert!(
        !pretty.contains("$2b$") && !pretty.contains(&reset_token),
        "{pretty}"
    );

    let logged_in = auth
        .log_in(
            &tower_auth::Client::default(),
            LoginAttempt::new("bob@bob.com", "MyPwdOfBob"),
        )
        .await
        .expect("log_in");
    let debug = format!("{logged_in:?}");
    assert!(!debug.contains(&logged_in.session_id), "{debug}");
    assert!(!debug.contains("$2b$"), "{debug}");
    assert!(
        auth.get_user_from_session_id(Some(&logged_in.session_id))
            .await
            .unwrap()
            .is_some(),
        "the session id redacted from Debug is a real one"
    );

    let requested = auth
        .request_password_reset(&tower_auth::Client::default(), "bob@bob.com")
        .await
        .expect("request_password_reset");
    let ResetRequested::Token { token, .. } = &requested else {
        panic!("the spec preset returns the token in the response, got {requested:?}");
    };
    let debug = format!("{requested:?}");
    assert!(!debug.contains(token.as_str()), "{debug}");
    assert!(debug.contains("bob@bob.com"), "{debug}");

    // What a flow is handed about its client: a presented session is a live secret.
    let client = tower_auth::Client::new(None)
        .session(Some(&logged_in.session_id))
        .device(Some("device-secret-token"));
    let debug = format!("{client:?}");
    assert!(
        !debug.contains(&logged_in.session_id) && !debug.contains("device-secret-token"),
        "{debug}"
    );
}

async fn emails_are_normalized_to_one_account<S: Store + Clone>(fx: Fixture<S>) {
    let auth = fx.auth();
    let user = auth
        .register_user("Bob@X.io ", "MyPwdOfBob")
        .await
        .expect("register");
    assert_eq!(user.email, "bob@x.io");
    let err = auth
        .register_user("bob@x.io", "OtherPwd")
        .await
        .expect_err("the same address in another case is the same account");
    assert_eq!(err.to_string(), "User bob@x.io already exists");
    assert_eq!(
        fx.stored_user("bob@x.io").await.map(|r| r.user),
        Some(user.clone())
    );
    assert_eq!(fx.stored_user("Bob@X.io ").await, None, "stored normalized");

    assert!(auth.valid_login(" BOB@x.IO", "MyPwdOfBob").await.unwrap());
    let session = auth
        .create_session("bob@X.io")
        .await
        .unwrap()
        .expect("a session for the normalized email");
    assert_eq!(
        auth.get_user_from_session_id(Some(&session))
            .await
            .unwrap()
            .map(|u| u.id),
        Some(user.id)
    );
    let token = auth
        .get_reset_password_token("BOB@X.IO")
        .await
        .expect("a reset token for the normalized email");
    auth.update_password(&token, "NewPwd")
        .await
        .expect("update");
    assert!(auth.valid_login("bob@x.io", "NewPwd").await.unwrap());
}

async fn idle_sessions_are_refused_and_removed<S: Store + Clone>(fx: Fixture<S>) {
    let clock = ManualClock::new(T0);
    let auth = fx.auth_with_clock(&clock);
    let idle = config().session_idle_timeout;
    assert!(
        3 * idle < config().session_lifetime,
        "idle must end it first"
    );
    auth.register_user("bob@bob.com", "MyPwdOfBob")
        .await
        .expect("register");
    let token = auth.create_session("bob@bob.com").await.unwrap().unwrap();
    let hash = TokenHash::of(&token);

    // Each use just before the timeout keeps the session alive and records the use.
    for _ in 0..2 {
        clock.advance(idle - MS);
        assert!(
            auth.get_user_from_session_id(Some(&token))
                .await
                .unwrap()
                .is_some(),
            "a session used within the idle timeout must be accepted"
        );
        let (session, _) = fx.store.find_session(&hash).await.unwrap().unwrap();
        assert_eq!(
            session.last_seen_ms,
            tower_auth::clock::Clock::now_ms(&clock),
            "a use must be recorded"
        );
    }

    clock.advance(idle);
    assert_eq!(
        auth.get_user_from_session_id(Some(&token)).await.unwrap(),
        None,
        "a session unused for session_idle_timeout must be refused"
    );
    assert_eq!(
        fx.store.find_session(&hash).await.unwrap(),
        None,
        "a refused idle session must be removed from the store"
    );
}

async fn sessions_past_their_lifetime_are_refused_and_removed<S: Store + Clone>(fx: Fixture<S>) {
    let clock = ManualClock::new(T0);
    let auth = fx.auth_with_clock(&clock);
    let lifetime = config().session_lifetime;
    let step = Duration::from_secs(6 * 24 * 3600);
    assert!(step < config().session_idle_timeout);
    auth.register_user("bob@bob.com", "MyPwdOfBob")
        .await
        .expect("register");
    let token = auth.create_session("bob@bob.com").await.unwrap().unwrap();
    let hash = TokenHash::of(&token);

    // Used regularly, so never idle...
    let mut elapsed = Duration::ZERO;
    while elapsed + step < lifetime {
        clock.advance(step);
        elapsed += step;
        assert!(
            auth.get_user_from_session_id(Some(&token))
                .await
                .unwrap()
                .is_some(),
            "a session in use must be accepted before its lifetime ends ({elapsed:?})"
        );
    }
    clock.advance(lifetime - elapsed - MS);
    assert!(
        auth.get_user_from_session_id(Some(&token))
            .await
            .unwrap()
            .is_some(),
        "a session must be accepted until its last millisecond"
    );
    // ...but refused once session_lifetime has passed since its creation.
    clock.advance(MS);
    assert_eq!(
        auth.get_user_from_session_id(Some(&token)).await.unwrap(),
        None,
        "a session older than session_lifetime must be refused, even in use"
    );
    assert_eq!(
        fx.store.find_session(&hash).await.unwrap(),
        None,
        "a refused expired session must be removed from the store"
    );
}

async fn reset_tokens_expire<S: Store + Clone>(fx: Fixture<S>) {
    let clock = ManualClock::new(T0);
    let auth = fx.auth_with_clock(&clock);
    let ttl = config().reset_token_ttl;
    auth.register_user("late@x.io", "OldPwd").await.unwrap();
    auth.register_user("just@x.io", "OldPwd").await.unwrap();
    let late = auth.get_reset_password_token("late@x.io").await.unwrap();
    let just = auth.get_reset_password_token("just@x.io").await.unwrap();

    clock.advance(ttl - MS);
    auth.update_password(&just, "NewPwd")
        .await
        .expect("a reset token is valid until its last millisecond");
    assert!(auth.valid_login("just@x.io", "NewPwd").await.unwrap());

    clock.advance(MS);
    let err = auth
        .update_password(&late, "NewPwd")
        .await
        .expect_err("a reset token past reset_token_ttl must be refused");
    assert!(matches!(err, AuthError::InvalidResetToken), "{err:?}");
    assert!(auth.valid_login("late@x.io", "OldPwd").await.unwrap());
    assert!(!auth.valid_login("late@x.io", "NewPwd").await.unwrap());
}

// ----- every scenario on every store --------------------------------------------------------

macro_rules! on_every_store {
    ($($scenario:ident),+ $(,)?) => {
        mod memory_store {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario(super::memory()).await;
                }
            )+
        }

        #[cfg(feature = "sqlite")]
        mod sqlite_store {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario(super::sqlite().await).await;
                }
            )+
        }
    };
}

on_every_store!(
    users_get_distinct_ids_and_are_found,
    password_is_stored_as_a_salted_bcrypt_hash,
    register_twice_is_refused_with_the_seed_message,
    valid_login_checks_email_and_password,
    create_session_returns_a_uuid_for_known_emails_only,
    session_token_is_stored_only_hashed,
    get_user_from_session_id_finds_only_live_sessions,
    destroy_session_ends_the_users_session,
    reset_token_is_issued_for_known_emails_and_stored_hashed,
    update_password_uses_a_valid_token_once,
    passwords_over_72_bytes_are_refused_never_truncated,
    debug_output_hides_hashes_and_tokens,
    emails_are_normalized_to_one_account,
    idle_sessions_are_refused_and_removed,
    sessions_past_their_lifetime_are_refused_and_removed,
    reset_tokens_expire,
);
