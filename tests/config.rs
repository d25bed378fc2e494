//! A configuration that would fail later, on a user's request, is refused when `Auth` is
//! built, with a typed error that says what to change.

use tower_auth::{Auth, AuthConfig, AuthError, ConfigError, MemoryStore};

fn build(config: AuthConfig) -> Result<Auth, ConfigError> {
    Auth::new(MemoryStore::new(), config)
}

#[test]
fn both_presets_are_valid() {
    for config in [AuthConfig::default(), AuthConfig::spec()] {
        build(config).expect("a preset is valid");
    }
}

#[test]
fn cookies_the_browser_would_drop_are_refused() {
    let mut config = AuthConfig::default();
    config.cookie.secure = false;
    assert_eq!(
        build(config).unwrap_err(),
        ConfigError::PrefixNeedsSecure("__Host-session_id".into())
    );

    let mut config = AuthConfig::default();
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
        let mut config = AuthConfig::default();
        config.bcrypt_cost = cost;
        assert_eq!(build(config).unwrap_err(), ConfigError::BcryptCost(cost));
    }
    for cost in [4, 31] {
        let mut config = AuthConfig::default();
        config.bcrypt_cost = cost;
        build(config).expect("bcrypt's own bounds are accepted");
    }
    let mut config = AuthConfig::default();
    config.hash_permits = 0;
    assert_eq!(build(config).unwrap_err(), ConfigError::ZeroHashPermits);
    let mut config = AuthConfig::default();
    config.max_hash_jobs_per_client = 0;
    assert_eq!(build(config).unwrap_err(), ConfigError::ZeroClientShare);
}

#[test]
fn the_trusted_device_cookie_is_checked_like_the_session_cookie() {
    // A plain session cookie with the hardened device cookie: the device cookie would be
    // dropped by browsers without `Secure`.
    let mut config = AuthConfig::default();
    config.cookie.name = "sid".into();
    config.cookie.secure = false;
    assert_eq!(
        build(config).unwrap_err(),
        ConfigError::PrefixNeedsSecure("__Host-trusted_device".into())
    );
    for name in ["", "device id", "__Host-session_id"] {
        let mut config = AuthConfig::default();
        config.trusted_device_cookie = Some(name.into());
        assert_eq!(
            build(config).unwrap_err(),
            ConfigError::CookieName(name.into()),
            "{name:?} (the last one is the session cookie's name)"
        );
    }
    let mut config = AuthConfig::default();
    config.trusted_device_cookie = None;
    build(config).expect("trusted devices may be off");
}

#[test]
fn redirects_and_origins_are_checked() {
    let mut config = AuthConfig::default();
    config.logout_redirect = "/bye\n".into();
    assert_eq!(
        build(config).unwrap_err(),
        ConfigError::LogoutRedirect("/bye\n".into())
    );
    for origin in ["example.com", "https://", "https://exa mple.com", "://x"] {
        let mut config = AuthConfig::default();
        config.allowed_origins = vec![origin.into()];
        assert_eq!(
            build(config).unwrap_err(),
            ConfigError::AllowedOrigin(origin.into())
        );
    }
    let mut config = AuthConfig::default();
    config.allowed_origins = vec!["https://app.example.com:8443".into()];
    build(config).expect("a scheme://host:port origin is accepted");
    for origin in [
        "app.example.com",
        "https://app.example.com/",
        "https://a.b:x",
    ] {
        let mut config = AuthConfig::default();
        config.public_origin = Some(origin.into());
        assert_eq!(
            build(config).unwrap_err(),
            ConfigError::AllowedOrigin(origin.into())
        );
    }
    let mut config = AuthConfig::default();
    config.public_origin = Some("https://[2001:db8::1]:8443".into());
    build(config).expect("an IPv6 origin with a port is accepted");
}

#[tokio::test]
async fn connect_refuses_unknown_schemes_and_bad_configs_before_touching_a_database() {
    for url in ["mysql://localhost/db", "sqlite3://a.db", "a.db", ""] {
        let err = Auth::connect(url, AuthConfig::default())
            .await
            .expect_err("unsupported scheme");
        assert!(
            matches!(err, AuthError::Config(ConfigError::UnsupportedScheme(_))),
            "{url}: {err:?}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("never.db");
    let mut config = AuthConfig::default();
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
