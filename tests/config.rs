//! A configuration that would fail later, on a user's request, is refused when `Auth` is
//! built, with a typed error that says what to change.

use tower_auth::{Auth, AuthConfig, AuthError, ConfigError, Mailer, MemoryStore, ResetDelivery};

fn build(config: AuthConfig) -> Result<Auth, ConfigError> {
    Auth::new(MemoryStore::new(), config)
}

/// The hardened preset with a development outbox (it needs some mailer).
fn hardened() -> AuthConfig {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("config-outbox");
    AuthConfig::hardened_with(
        Mailer::dev_outbox(dir, "app@example.com", "https://app.example.com").expect("mailer"),
    )
}

#[test]
fn both_presets_are_valid() {
    for config in [hardened(), AuthConfig::spec()] {
        build(config).expect("a preset is valid");
    }
}

/// No silent default: the hardened preset mails, so without a mailer it does not start,
/// and the error says how to choose one. Each mail flow alone asks for one; the spec
/// preset needs none.
#[test]
fn the_hardened_preset_without_a_mailer_is_refused_with_advice() {
    let err = build(AuthConfig::default()).unwrap_err();
    assert_eq!(err, ConfigError::NoMailer);
    let advice = err.to_string();
    for hint in ["Mailer::smtp(", "Mailer::dev_outbox(", "smtp://"] {
        assert!(advice.contains(hint), "{advice}");
    }
    let mut quiet = AuthConfig::default();
    quiet.reset_delivery = ResetDelivery::InResponse;
    quiet.require_confirmed_email = false;
    quiet.conceal_registered_emails = false;
    build(quiet.clone()).expect("no mail flow, no mailer needed");
    for flow in 0..3 {
        let mut config = quiet.clone();
        match flow {
            0 => config.reset_delivery = ResetDelivery::Mail,
            1 => config.require_confirmed_email = true,
            _ => config.conceal_registered_emails = true,
        }
        assert_eq!(
            build(config).unwrap_err(),
            ConfigError::NoMailer,
            "flow {flow}"
        );
    }
}

/// A mailer's sender, public URL, link paths and SMTP URL are checked when it is made.
#[test]
fn mailer_settings_are_checked() {
    let dir = "target/unused";
    assert!(matches!(
        Mailer::dev_outbox(dir, "not an address", "https://a.example"),
        Err(ConfigError::MailFrom(_))
    ));
    for url in [
        "a.example",
        "ftp://a.example",
        "https://a.example/?x=1",
        "https://u:p@a.example",
    ] {
        assert!(
            matches!(
                Mailer::dev_outbox(dir, "a@a.example", url),
                Err(ConfigError::PublicUrl(_))
            ),
            "{url}"
        );
    }
    let mailer = Mailer::dev_outbox(dir, "App <a@a.example>", "https://a.example/").expect("ok");
    assert_eq!(mailer.public_url(), "https://a.example");
    assert_eq!(mailer.from(), "a@a.example");
    assert!(
        mailer
            .link_path(tower_auth::MailKind::MagicLink, "no-slash")
            .is_err()
    );
    let err = Mailer::smtp("smtp://user:hunter2@", "a@a.example", "https://a.example").unwrap_err();
    assert!(matches!(err, ConfigError::SmtpUrl(_)), "{err:?}");
    assert!(
        !err.to_string().contains("hunter2"),
        "the URL's password is not repeated"
    );
    assert!(Mailer::smtp("gopher://h", "a@a.example", "https://a.example").is_err());
    for url in [
        "smtp://127.0.0.1:2525",
        "smtp://u:p@h:587?tls=required",
        "smtps://h:465",
    ] {
        Mailer::smtp(url, "a@a.example", "https://a.example").expect(url);
    }
}

#[test]
fn cookies_the_browser_would_drop_are_refused() {
    let mut config = hardened();
    config.cookie.secure = false;
    assert_eq!(
        build(config).unwrap_err(),
        ConfigError::PrefixNeedsSecure("__Host-session_id".into())
    );

    let mut config = hardened();
    config.cookie.path = "/app".into();
    assert_eq!(
        build(config).unwrap_err(),
        ConfigError::HostCookiePath {
            name: "__Host-session_id".into(),
            path: "/app".into()
        }
    );

    let mut config = AuthConfig::spec();
    config.cookie.name = "__Secure-sid".into();
    assert_eq!(
        build(config).unwrap_err(),
        ConfigError::PrefixNeedsSecure("__Secure-sid".into())
    );

    // Without a prefix, a path and no `Secure` are the app's choice.
    let mut config = AuthConfig::spec();
    config.cookie.path = "/app".into();
    build(config).expect("a plain cookie may have any path");
}

#[test]
fn malformed_cookie_names_and_paths_are_refused() {
    for name in ["", "session id", "sid;x", "s=id", "séance"] {
        let mut config = AuthConfig::spec();
        config.cookie.name = name.into();
        assert_eq!(
            build(config).unwrap_err(),
            ConfigError::CookieName(name.into())
        );
    }
    for path in ["", "app", "/a;b", "/a b"] {
        let mut config = AuthConfig::spec();
        config.cookie.path = path.into();
        assert_eq!(
            build(config).unwrap_err(),
            ConfigError::CookiePath(path.into())
        );
    }
}

#[test]
fn hashing_settings_that_cannot_work_are_refused() {
    for cost in [0, 3, 32, 100] {
        let mut config = hardened();
        config.bcrypt_cost = cost;
        assert_eq!(build(config).unwrap_err(), ConfigError::BcryptCost(cost));
    }
    for cost in [4, 31] {
        let mut config = hardened();
        config.bcrypt_cost = cost;
        build(config).expect("bcrypt's own bounds are accepted");
    }
    let mut config = hardened();
    config.hash_permits = 0;
    assert_eq!(build(config).unwrap_err(), ConfigError::ZeroHashPermits);
    let mut config = hardened();
    config.max_hash_jobs_per_client = 0;
    assert_eq!(build(config).unwrap_err(), ConfigError::ZeroClientShare);
}

#[test]
fn the_trusted_device_cookie_is_checked_like_the_session_cookie() {
    // A plain session cookie with the hardened device cookie: the device cookie would be
    // dropped by browsers without `Secure`.
    let mut config = hardened();
    config.cookie.name = "sid".into();
    config.cookie.secure = false;
    assert_eq!(
        build(config).unwrap_err(),
        ConfigError::PrefixNeedsSecure("__Host-trusted_device".into())
    );
    for name in ["", "device id", "__Host-session_id"] {
        let mut config = hardened();
        config.trusted_device_cookie = Some(name.into());
        assert_eq!(
            build(config).unwrap_err(),
            ConfigError::CookieName(name.into()),
            "{name:?} (the last one is the session cookie's name)"
        );
    }
    let mut config = hardened();
    config.trusted_device_cookie = None;
    build(config).expect("trusted devices may be off");
}

#[test]
fn redirects_and_origins_are_checked() {
    let mut config = hardened();
    config.logout_redirect = "/bye\n".into();
    assert_eq!(
        build(config).unwrap_err(),
        ConfigError::LogoutRedirect("/bye\n".into())
    );
    for origin in ["example.com", "https://", "https://exa mple.com", "://x"] {
        let mut config = hardened();
        config.allowed_origins = vec![origin.into()];
        assert_eq!(
            build(config).unwrap_err(),
            ConfigError::AllowedOrigin(origin.into())
        );
    }
    let mut config = hardened();
    config.allowed_origins = vec!["https://app.example.com:8443".into()];
    build(config).expect("a scheme://host:port origin is accepted");
    for origin in [
        "app.example.com",
        "https://app.example.com/x",
        "https://a.b:x",
    ] {
        let mut config = hardened();
        config.public_origin = Some(origin.into());
        assert_eq!(
            build(config).unwrap_err(),
            ConfigError::AllowedOrigin(origin.into())
        );
    }
    let mut config = hardened();
    config.public_origin = Some("https://[2001:db8::1]:8443".into());
    build(config).expect("an IPv6 origin with a port is accepted");
}

#[tokio::test]
async fn connect_refuses_unknown_schemes_and_bad_configs_before_touching_a_database() {
    for url in ["mysql://localhost/db", "sqlite3://a.db", "a.db", ""] {
        let err = Auth::connect(url, hardened())
            .await
            .expect_err("unsupported scheme");
        assert!(
            matches!(err, AuthError::Config(ConfigError::UnsupportedScheme(_))),
            "{url}: {err:?}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("never.db");
    let mut config = hardened();
    config.bcrypt_cost = 99;
    let err = Auth::connect(&format!("sqlite://{}?mode=rwc", file.display()), config)
        .await
        .expect_err("invalid config");
    assert!(
        matches!(err, AuthError::Config(ConfigError::BcryptCost(99))),
        "{err:?}"
    );
    assert!(!file.exists(), "a refused config creates no database");
}

#[test]
fn errors_keep_their_source_and_policy_refusals_can_be_matched() {
    use std::error::Error as _;
    use tower_auth::password::{PasswordPolicy, PasswordRejection};

    let store_error = tower_auth::StoreError::backend(std::io::Error::other("disk gone"));
    let err = AuthError::from(store_error);
    let source = err.source().expect("the store error is the source");
    assert!(
        source
            .source()
            .is_some_and(|s| s.to_string() == "disk gone"),
        "the backend's own error is kept: {source:?}"
    );

    let policy = PasswordPolicy::hardened();
    assert_eq!(
        policy.check("short"),
        Err(PasswordRejection::TooShort { min_chars: 15 })
    );
    assert_eq!(policy.check(""), Err(PasswordRejection::Empty));
    assert_eq!(
        policy.check(&"a".repeat(73)),
        Err(PasswordRejection::TooLong { max_bytes: 72 })
    );
    assert_eq!(
        policy.check("yfdbufnjh10305070"),
        Err(PasswordRejection::Common),
        "on the shipped list"
    );
    assert_eq!(
        AuthError::from(PasswordRejection::TooShort { min_chars: 15 }).to_string(),
        "password must be at least 15 characters"
    );
}

/// What `main` prints for an error it returns with `?` is the error's `Debug`: it says
/// what to do, as the message does, never only a variant's name.
#[test]
fn debug_says_what_to_do() {
    let err = build(AuthConfig::default()).unwrap_err();
    let debug = format!("{err:?}");
    assert!(debug.contains("Mailer::smtp("), "{debug}");
    let err = AuthError::from(err);
    assert!(
        format!("{err:?}").contains("Mailer::dev_outbox("),
        "{err:?}"
    );

    let mut config = hardened();
    config.cookie.secure = false;
    let debug = format!("{:?}", build(config).unwrap_err());
    assert!(
        debug.contains("rename the cookie") && debug.contains("session_id"),
        "a __Host- cookie without Secure says how to develop over plain http: {debug}"
    );
}

#[tokio::test]
async fn an_unreachable_database_is_named_with_its_cause_and_no_password() {
    // Port 1 on loopback refuses connections.
    let url = "postgres://owner:s3cret-pw@127.0.0.1:1/appdb";
    let err = Auth::connect(url, hardened()).await.unwrap_err();
    let debug = format!("{err:?}");
    for said in ["127.0.0.1:1", "appdb", "owner", "refused"] {
        assert!(debug.contains(said), "{said:?} in {debug}");
    }
    assert!(!debug.contains("s3cret-pw"), "{debug}");
    assert!(!debug.contains("PoolTimedOut"), "{debug}");
}

#[test]
fn a_public_origin_may_be_written_as_a_url() {
    for origin in ["https://app.example.com", "https://app.example.com/"] {
        let mut config = hardened();
        config.public_origin = Some(origin.into());
        build(config).unwrap_or_else(|e| panic!("{origin}: {e}"));
    }
    let mut config = hardened();
    config.public_origin = Some("https://app.example.com/path".into());
    assert!(matches!(build(config), Err(ConfigError::AllowedOrigin(_))));
}
