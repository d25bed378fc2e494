//! Account integrity over real HTTP, in the hardened preset, as an attacker would try it:
//! a pending email change or any link or device issued before a remedy dies with it; an
//! address registered by a stranger first cannot be taken over; mail cannot be aimed at a
//! third party (bare addresses only, a cap per recipient); a stranger cannot spend an
//! owner's allowance; device records stay bounded; recent authentication guards "log out
//! my other devices"; stored hashes are never weakened; unknown emails cost what stored
//! hashes cost; registrations from many addresses leave room for logins.

#[path = "support/http.rs"]
mod http_support;
#[path = "support/mail.rs"]
mod mail;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_support::{Answer, TestServer, form, serve_auth};
use mail::Capture;
use reqwest::{Method, StatusCode};
use serde_json::json;
use tower_auth::clock::ManualClock;
use tower_auth::password::{ConfiguredHasher, HashError, PasswordHasher};
use tower_auth::store::{TokenHash, TokenPurpose, UserLookup};
use tower_auth::{Auth, AuthConfig, Mailer, MemoryStore, Store};

const PW: &str = "correct horse battery staple";
const NEW_PW: &str = "a brand new passphrase, long enough";
const EVIL_PW: &str = "the intruder's own passphrase";
const ALICE: &str = "alice@example.com";
const EVIL: &str = "attacker@evil.example";
const SESSION: &str = "__Host-session_id";
const DEVICE: &str = "__Host-trusted_device";

/// One `Auth` served over HTTP, mailing into a [`Capture`], with a manual clock.
struct App {
    auth: Auth,
    store: Arc<dyn Store>,
    clock: ManualClock,
    mail: Capture,
    server: TestServer,
}

/// A client: its own loopback address, and the cookies it holds.
#[derive(Clone)]
struct Browser {
    http: reqwest::Client,
    session: Option<String>,
    device: Option<String>,
}

impl Browser {
    /// A client connecting from `127.0.0.<n>`.
    fn from(n: u8) -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, n)))
            .build()
            .expect("client");
        Self {
            http,
            session: None,
            device: None,
        }
    }

    /// Keeps the cookies an answer sets.
    fn keep(&mut self, answer: &Answer) {
        for cookie in &answer.set_cookies {
            let pair = cookie.split(';').next().unwrap_or_default();
            if let Some(value) = pair.strip_prefix(&format!("{SESSION}=")) {
                self.session = (!value.is_empty()).then(|| value.to_owned());
            }
            if let Some(value) = pair.strip_prefix(&format!("{DEVICE}=")) {
                self.device = (!value.is_empty()).then(|| value.to_owned());
            }
        }
    }
}

fn config(mailer: Mailer) -> AuthConfig {
    let mut config = AuthConfig::hardened_with(mailer);
    config.bcrypt_cost = 4;
    config
}

impl App {
    async fn start(tweak: impl FnOnce(&mut AuthConfig)) -> Self {
        Self::start_on(Arc::new(MemoryStore::new()), tweak).await
    }

    async fn start_on(store: Arc<dyn Store>, tweak: impl FnOnce(&mut AuthConfig)) -> Self {
        let mail = Capture::default();
        let mailer =
            Mailer::new(mail.clone(), "app@example.com", "http://localhost").expect("mailer");
        let mut config = config(mailer);
        tweak(&mut config);
        let clock = ManualClock::new(1_800_000_000_000);
        let auth = Auth::builder_shared(Arc::clone(&store), config)
            .clock(clock.clone())
            .build()
            .expect("valid config");
        let server = serve_auth(&auth).await;
        Self {
            auth,
            store,
            clock,
            mail,
            server,
        }
    }

    async fn send(
        &self,
        browser: &mut Browser,
        method: Method,
        path: &str,
        fields: &[(&str, &str)],
    ) -> Answer {
        let mut request = browser.http.request(method, self.server.url(path));
        let cookies: Vec<String> = [(SESSION, &browser.session), (DEVICE, &browser.device)]
            .into_iter()
            .filter_map(|(name, value)| value.as_ref().map(|v| format!("{name}={v}")))
            .collect();
        if !cookies.is_empty() {
            request = request.header("cookie", cookies.join("; "));
        }
        if !fields.is_empty() {
            request = request
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form(fields));
        }
        let answer = Answer::read(request.send().await.expect("request")).await;
        browser.keep(&answer);
        answer
    }

    async fn post(&self, browser: &mut Browser, path: &str, fields: &[(&str, &str)]) -> Answer {
        self.send(browser, Method::POST, path, fields).await
    }

    /// Every message delivered to `to` so far, once the outbox is empty.
    async fn mail_to(&self, to: &str) -> Vec<mail::Received> {
        self.auth.flush_mail().await;
        self.mail.sent_to(to)
    }

    /// The token of the newest message to `to`.
    async fn newest_token(&self, to: &str) -> String {
        self.mail_to(to)
            .await
            .last()
            .unwrap_or_else(|| panic!("no mail to {to}"))
            .token()
    }

    /// Registers `email` (202, whether or not it is taken).
    async fn register(&self, browser: &mut Browser, email: &str, password: &str) {
        self.post(
            browser,
            "/users",
            &[("email", email), ("password", password)],
        )
        .await
        .expect(StatusCode::ACCEPTED);
    }

    /// Registers `email` and confirms it with the password, as its owner.
    async fn confirmed_account(&self, browser: &mut Browser, email: &str, password: &str) {
        self.register(browser, email, password).await;
        let token = self.newest_token(email).await;
        let confirmed = self
            .post(
                browser,
                "/confirmation",
                &[("token", &token), ("password", password)],
            )
            .await;
        confirmed.expect(StatusCode::OK);
        assert_eq!(confirmed.body["password_kept"], json!(true));
    }

    /// `PUT /reset_password` with a reset link's token.
    async fn reset(
        &self,
        browser: &mut Browser,
        email: &str,
        token: &str,
        new_password: &str,
    ) -> Answer {
        let fields = [
            ("email", email),
            ("reset_token", token),
            ("new_password", new_password),
        ];
        self.send(browser, Method::PUT, "/reset_password", &fields)
            .await
    }

    /// Asks for a reset link and uses it; returns its token.
    async fn reset_by_mail(
        &self,
        browser: &mut Browser,
        email: &str,
        new_password: &str,
    ) -> String {
        self.post(browser, "/reset_password", &[("email", email)])
            .await
            .expect(StatusCode::ACCEPTED);
        let token = self.newest_token(email).await;
        self.reset(browser, email, &token, new_password)
            .await
            .expect(StatusCode::OK);
        token
    }

    /// A browser from `127.0.0.<from>` that logged in.
    async fn logged_in(&self, from: u8, email: &str, password: &str) -> Browser {
        let mut browser = Browser::from(from);
        self.log_in(&mut browser, email, password)
            .await
            .expect(StatusCode::OK);
        browser
    }

    async fn log_in(&self, browser: &mut Browser, email: &str, password: &str) -> Answer {
        self.post(
            browser,
            "/sessions",
            &[("email", email), ("password", password)],
        )
        .await
    }

    async fn stored_hash(&self, email: &str) -> String {
        self.store
            .find_user_by(UserLookup::Email(email))
            .await
            .expect("store")
            .expect("the account")
            .password_hash
    }

    async fn device_is_live(&self, device: &str) -> bool {
        self.store
            .find_token(
                &TokenHash::of(device),
                TokenPurpose::TrustedDevice,
                self.clock_now(),
            )
            .await
            .expect("store")
            .is_some()
    }

    fn clock_now(&self) -> i64 {
        use tower_auth::clock::Clock as _;
        self.clock.now_ms()
    }
}

/// Which remedy the owner uses after a session was stolen.
#[derive(Debug, Clone, Copy)]
enum Remedy {
    ChangePassword,
    ResetPassword,
    EndOtherSessions,
    EndAllSessions,
    DeleteAccount,
}

#[tokio::test]
async fn every_remedy_ends_pending_email_changes_links_and_devices() {
    for remedy in [
        Remedy::ChangePassword,
        Remedy::ResetPassword,
        Remedy::EndOtherSessions,
        Remedy::EndAllSessions,
        Remedy::DeleteAccount,
    ] {
        let app = App::start(|_| {}).await;
        let mut owner = Browser::from(1);
        app.confirmed_account(&mut owner, ALICE, PW).await;
        app.log_in(&mut owner, ALICE, PW)
            .await
            .expect(StatusCode::OK);

        // A stolen session (here: the password, from another machine) asks to move the
        // account to the attacker's address, and holds a trusted-device cookie.
        let mut intruder = app.logged_in(2, ALICE, PW).await;
        let intruder_device = intruder.device.clone().expect("a device cookie");
        app.post(&mut intruder, "/email", &[("new_email", EVIL)])
            .await
            .expect(StatusCode::ACCEPTED);
        let change = app.newest_token(EVIL).await;
        // A reset link asked for before the remedy, too (it reached the owner's mailbox,
        // which the intruder may read as well).
        app.post(
            &mut Browser::from(2),
            "/reset_password",
            &[("email", ALICE)],
        )
        .await
        .expect(StatusCode::ACCEPTED);
        let old_reset = app.newest_token(ALICE).await;

        match remedy {
            Remedy::ChangePassword => {
                app.send(
                    &mut owner,
                    Method::PUT,
                    "/password",
                    &[("current_password", PW), ("new_password", NEW_PW)],
                )
                .await
                .expect(StatusCode::OK);
            }
            Remedy::ResetPassword => {
                let token = app.reset_by_mail(&mut owner, ALICE, NEW_PW).await;
                assert_ne!(token, old_reset);
            }
            Remedy::EndOtherSessions => {
                app.send(&mut owner, Method::DELETE, "/sessions/others", &[])
                    .await
                    .expect(StatusCode::OK);
            }
            Remedy::EndAllSessions => {
                app.send(&mut owner, Method::DELETE, "/sessions/all", &[])
                    .await
                    .expect(StatusCode::OK);
            }
            Remedy::DeleteAccount => {
                app.send(&mut owner, Method::DELETE, "/users/me", &[("password", PW)])
                    .await
                    .expect(StatusCode::OK);
            }
        }

        let taken = app
            .post(&mut intruder, "/email/confirm", &[("token", &change)])
            .await;
        assert_eq!(
            taken.status,
            StatusCode::BAD_REQUEST,
            "after {remedy:?}, the intruder's pending email change must be dead: {taken:?}"
        );
        assert!(
            app.store
                .find_user_by(UserLookup::Email(EVIL))
                .await
                .expect("store")
                .is_none(),
            "after {remedy:?}, no account may have the intruder's address"
        );
        assert!(
            !app.device_is_live(&intruder_device).await,
            "after {remedy:?}, the intruder's trusted device must be gone"
        );
        if !matches!(remedy, Remedy::ResetPassword) {
            let reset = app.reset(&mut intruder, ALICE, &old_reset, EVIL_PW).await;
            assert_eq!(
                reset.status,
                StatusCode::FORBIDDEN,
                "after {remedy:?}, a reset link issued before must be dead: {reset:?}"
            );
        }
    }
}

#[tokio::test]
async fn a_pre_registered_address_cannot_be_taken_over() {
    // The intruder registers the victim's address with a password of his own. Every way
    // its owner can come to use the account leaves that password useless.
    #[derive(Debug, Clone, Copy)]
    enum Owner {
        SignsInByMagicLink,
        RegistersAgainAndConfirms,
        ResendsAndConfirms,
        ConfirmsTheFirstLink,
        ResetsThePassword,
    }
    for path in [
        Owner::SignsInByMagicLink,
        Owner::RegistersAgainAndConfirms,
        Owner::ResendsAndConfirms,
        Owner::ConfirmsTheFirstLink,
        Owner::ResetsThePassword,
    ] {
        let app = App::start(|_| {}).await;
        let mut intruder = Browser::from(2);
        app.register(&mut intruder, ALICE, EVIL_PW).await;
        let first_link = app.newest_token(ALICE).await;

        let mut owner = Browser::from(1);
        match path {
            Owner::SignsInByMagicLink => {
                app.post(&mut owner, "/magic_link", &[("email", ALICE)])
                    .await
                    .expect(StatusCode::ACCEPTED);
                let token = app.newest_token(ALICE).await;
                app.post(&mut owner, "/sessions/magic", &[("token", &token)])
                    .await
                    .expect(StatusCode::OK);
            }
            Owner::RegistersAgainAndConfirms => {
                app.register(&mut owner, ALICE, PW).await;
                let token = app.newest_token(ALICE).await;
                assert_ne!(token, first_link, "registering again mails a new link");
                // Her own password is not the stored one: it does not confirm...
                app.post(
                    &mut owner,
                    "/confirmation",
                    &[("token", &token), ("password", PW)],
                )
                .await
                .expect(StatusCode::UNAUTHORIZED);
                // ...and confirming without it clears the one nobody proved.
                let confirmed = app
                    .post(&mut owner, "/confirmation", &[("token", &token)])
                    .await;
                confirmed.expect(StatusCode::OK);
                assert_eq!(confirmed.body["password_kept"], json!(false));
            }
            Owner::ResendsAndConfirms => {
                app.post(&mut owner, "/confirmation/resend", &[("email", ALICE)])
                    .await
                    .expect(StatusCode::ACCEPTED);
                let token = app.newest_token(ALICE).await;
                assert_ne!(token, first_link);
                app.post(&mut owner, "/confirmation", &[("token", &token)])
                    .await
                    .expect(StatusCode::OK);
            }
            Owner::ConfirmsTheFirstLink => {
                let confirmed = app
                    .post(&mut owner, "/confirmation", &[("token", &first_link)])
                    .await;
                confirmed.expect(StatusCode::OK);
                assert_eq!(
                    confirmed.body,
                    json!({
                        "email": ALICE,
                        "message": "email confirmed; choose a password with a reset link or sign in with a magic link",
                        "password_kept": false,
                    })
                );
            }
            Owner::ResetsThePassword => {
                app.reset_by_mail(&mut owner, ALICE, PW).await;
                // The link reached her mailbox: the address is confirmed, and she logs in.
                app.log_in(&mut owner, ALICE, PW)
                    .await
                    .expect(StatusCode::OK);
            }
        }
        let attempt = app.log_in(&mut intruder, ALICE, EVIL_PW).await;
        assert_eq!(
            attempt.status,
            StatusCode::UNAUTHORIZED,
            "{path:?}: the intruder's password must not log in: {attempt:?}"
        );
        assert!(
            app.auth
                .get_user_from_session_id(intruder.session.as_deref())
                .await
                .expect("store")
                .is_none(),
            "{path:?}: the intruder holds no session"
        );
    }
}

#[tokio::test]
async fn sessions_opened_with_an_unproven_password_end_at_the_first_proof() {
    // Where unconfirmed accounts may log in, the intruder holds a session before the
    // owner ever shows up; a magic link or an unproven confirmation ends it.
    for magic in [true, false] {
        let app = App::start(|c| c.require_confirmed_email = false).await;
        let mut intruder = Browser::from(2);
        app.register(&mut intruder, ALICE, EVIL_PW).await;
        let first_link = app.newest_token(ALICE).await;
        app.log_in(&mut intruder, ALICE, EVIL_PW)
            .await
            .expect(StatusCode::OK);
        let mut owner = Browser::from(1);
        if magic {
            app.post(&mut owner, "/magic_link", &[("email", ALICE)])
                .await
                .expect(StatusCode::ACCEPTED);
            let token = app.newest_token(ALICE).await;
            app.post(&mut owner, "/sessions/magic", &[("token", &token)])
                .await
                .expect(StatusCode::OK);
            app.send(&mut owner, Method::GET, "/profile", &[])
                .await
                .expect(StatusCode::OK);
        } else {
            app.post(&mut owner, "/confirmation", &[("token", &first_link)])
                .await
                .expect(StatusCode::OK);
        }
        app.send(&mut intruder, Method::GET, "/profile", &[])
            .await
            .expect(StatusCode::UNAUTHORIZED);
        app.log_in(&mut intruder, ALICE, EVIL_PW)
            .await
            .expect(StatusCode::UNAUTHORIZED);
    }
    // The owner's own confirmation from her logged-in session keeps her password.
    let app = App::start(|c| c.require_confirmed_email = false).await;
    let mut owner = Browser::from(1);
    app.register(&mut owner, ALICE, PW).await;
    let link = app.newest_token(ALICE).await;
    app.log_in(&mut owner, ALICE, PW)
        .await
        .expect(StatusCode::OK);
    let confirmed = app
        .post(&mut owner, "/confirmation", &[("token", &link)])
        .await;
    confirmed.expect(StatusCode::OK);
    assert_eq!(confirmed.body["password_kept"], json!(true));
    app.send(&mut owner, Method::GET, "/profile", &[])
        .await
        .expect(StatusCode::OK);
}

#[tokio::test]
async fn account_addresses_are_bare_addr_specs() {
    let app = App::start(|c| c.require_confirmed_email = false).await;
    let mut owner = Browser::from(1);
    app.confirmed_account(&mut owner, ALICE, PW).await;
    app.log_in(&mut owner, ALICE, PW)
        .await
        .expect(StatusCode::OK);
    let long_local = format!("{}@x.io", "a".repeat(65));
    for address in [
        "n1<victim@x.io>",
        "\"ceo@corp.example\"<attacker@evil.io>",
        "CEO <victim@x.io>",
        "a;b@x.io",
        "a,b@x.io",
        "a(b)@x.io",
        long_local.as_str(),
        "a@[127.0.0.1]",
        "\"a b\"@x.io",
    ] {
        let registered = app
            .post(
                &mut Browser::from(3),
                "/users",
                &[("email", address), ("password", PW)],
            )
            .await;
        registered.expect(StatusCode::BAD_REQUEST);
        let reason = registered.body["message"].as_str().unwrap_or_default();
        assert!(
            reason.contains("email"),
            "{address:?}: a reason that names the email: {reason:?}"
        );
        app.post(&mut owner, "/email", &[("new_email", address)])
            .await
            .expect(StatusCode::BAD_REQUEST);
    }
    app.auth.flush_mail().await;
    let strays: Vec<String> = app
        .mail
        .sent()
        .into_iter()
        .map(|m| m.to)
        .filter(|to| to != ALICE)
        .collect();
    assert!(strays.is_empty(), "nothing was mailed: {strays:?}");
}

#[tokio::test]
async fn one_address_gets_at_most_its_hourly_cap_from_all_accounts() {
    let victim = "victim@example.org";
    let app = App::start(|c| {
        c.require_confirmed_email = false;
        c.max_registrations_per_ip = None;
    })
    .await;
    for n in 0..15 {
        let email = format!("sender{n}@evil.example");
        let mut browser = Browser::from(2);
        app.post(
            &mut browser,
            "/users",
            &[("email", &email), ("password", PW)],
        )
        .await
        .expect(StatusCode::ACCEPTED);
        app.log_in(&mut browser, &email, PW)
            .await
            .expect(StatusCode::OK);
        app.post(&mut browser, "/email", &[("new_email", victim)])
            .await
            .expect(StatusCode::ACCEPTED);
    }
    let received = app.mail_to(victim).await.len();
    assert_eq!(
        received, 10,
        "max_mails_per_recipient_per_hour (10) caps what one address gets"
    );
    // A new hour, a new allowance.
    app.clock.advance(Duration::from_secs(3601));
    let mut browser = Browser::from(2);
    app.log_in(&mut browser, "sender0@evil.example", PW)
        .await
        .expect(StatusCode::OK);
    app.post(&mut browser, "/email", &[("new_email", victim)])
        .await
        .expect(StatusCode::ACCEPTED);
    assert_eq!(app.mail_to(victim).await.len(), 11);
}

#[tokio::test]
async fn strangers_cannot_spend_the_owners_allowance_of_links() {
    let app = App::start(|_| {}).await;
    let mut owner = Browser::from(1);
    app.confirmed_account(&mut owner, ALICE, PW).await;
    let confirmation_mails = app.mail_to(ALICE).await.len();

    // A stranger asks for more reset links than the account's hourly allowance (3).
    let mut stranger = Browser::from(2);
    for _ in 0..5 {
        app.post(&mut stranger, "/reset_password", &[("email", ALICE)])
            .await
            .expect(StatusCode::ACCEPTED);
    }
    assert_eq!(app.mail_to(ALICE).await.len(), confirmation_mails + 3);
    // The owner's own request still sends her a link.
    app.post(&mut owner, "/reset_password", &[("email", ALICE)])
        .await
        .expect(StatusCode::ACCEPTED);
    assert_eq!(
        app.mail_to(ALICE).await.len(),
        confirmation_mails + 4,
        "the owner's request is hers, whatever strangers asked for"
    );

    // Strangers from many addresses can spend the address's cap (10 an hour)...
    for n in 3..6 {
        for _ in 0..3 {
            app.post(&mut Browser::from(n), "/magic_link", &[("email", ALICE)])
                .await
                .expect(StatusCode::ACCEPTED);
        }
    }
    let capped = app.mail_to(ALICE).await.len();
    assert_eq!(
        capped,
        confirmation_mails + 10,
        "the address's hourly cap (the first confirmation link is the registration's)"
    );
    app.post(&mut Browser::from(7), "/magic_link", &[("email", ALICE)])
        .await
        .expect(StatusCode::ACCEPTED);
    assert_eq!(app.mail_to(ALICE).await.len(), capped);
    // ...but not keep her own browser, which she logged in with before, from its links.
    app.log_in(&mut owner, ALICE, PW)
        .await
        .expect(StatusCode::OK);
    assert!(owner.device.is_some(), "a trusted-device cookie");
    app.post(&mut owner, "/magic_link", &[("email", ALICE)])
        .await
        .expect(StatusCode::ACCEPTED);
    assert_eq!(app.mail_to(ALICE).await.len(), capped + 1);
}

#[tokio::test]
async fn a_mail_request_is_answered_after_the_requests_that_follow_it() {
    // Answering a request (finding the account, issuing and mailing its link) is work
    // done only for registered addresses: it waits a random delay, so that the answer to
    // a request sent right after a probe does not tell whether the probed address exists.
    let app = App::start(|c| {
        c.mailer = c
            .mailer
            .take()
            .map(|m| m.answer_delay(Duration::from_secs(3), Duration::from_secs(4)));
    })
    .await;
    let mut owner = Browser::from(1);
    app.confirmed_account(&mut owner, ALICE, PW).await;
    let before = app.mail.sent_to(ALICE).len();
    let mut prober = Browser::from(2);
    app.post(&mut prober, "/magic_link", &[("email", ALICE)])
        .await
        .expect(StatusCode::ACCEPTED);
    app.post(
        &mut prober,
        "/magic_link",
        &[("email", "nobody@example.com")],
    )
    .await
    .expect(StatusCode::ACCEPTED);
    // Both requests are answered 202 and no link exists yet: the account was not even
    // looked up while the next request was served.
    assert_eq!(app.mail.sent_to(ALICE).len(), before);
    let answered =
        mail::wait_until(|| (app.mail.sent_to(ALICE).len() > before).then_some(())).await;
    assert!(answered.is_some(), "the link is mailed after the delay");
}

#[tokio::test]
async fn device_records_stay_one_per_device_and_end_with_the_password() {
    let app = App::start(|_| {}).await;
    let mut owner = Browser::from(1);
    app.confirmed_account(&mut owner, ALICE, PW).await;
    // A script logging in without cookies gets a new device each time; only the newest
    // ten are kept.
    let mut devices = Vec::new();
    for _ in 0..15 {
        app.clock.advance(Duration::from_secs(1));
        let script = app.logged_in(2, ALICE, PW).await;
        devices.push(script.device.expect("a device cookie"));
    }
    let mut live = 0;
    for device in &devices {
        live += usize::from(app.device_is_live(device).await);
    }
    assert_eq!(live, 10, "only the newest ten devices are kept");
    assert!(app.device_is_live(devices.last().expect("one")).await);
    assert!(!app.device_is_live(&devices[0]).await, "the oldest went");
    // A browser that presents its cookie is the same device: no new record.
    let mut browser = app.logged_in(3, ALICE, PW).await;
    let device = browser.device.clone().expect("a device cookie");
    app.log_in(&mut browser, ALICE, PW)
        .await
        .expect(StatusCode::OK);
    assert_eq!(browser.device.as_deref(), Some(device.as_str()));
    // A password change ends every device, the changing browser's included.
    app.send(
        &mut browser,
        Method::PUT,
        "/password",
        &[("current_password", PW), ("new_password", NEW_PW)],
    )
    .await
    .expect(StatusCode::OK);
    assert!(!app.device_is_live(&device).await);
    assert!(!app.device_is_live(devices.last().expect("one")).await);
}

#[tokio::test]
async fn ending_other_sessions_needs_a_recent_authentication() {
    let app = App::start(|c| c.session_idle_timeout = Duration::from_secs(3600)).await;
    let mut owner = Browser::from(1);
    app.confirmed_account(&mut owner, ALICE, PW).await;
    let mut other = app.logged_in(2, ALICE, PW).await;
    let mut stolen = app.logged_in(3, ALICE, PW).await;
    app.clock.advance(Duration::from_secs(16 * 60));
    let refused = app
        .send(&mut stolen, Method::DELETE, "/sessions/others", &[])
        .await;
    refused.expect(StatusCode::FORBIDDEN);
    assert_eq!(
        refused.body,
        json!({"message": "reauthentication required"})
    );
    app.send(&mut other, Method::GET, "/profile", &[])
        .await
        .expect(StatusCode::OK);
    app.post(&mut stolen, "/sessions/reauth", &[("password", PW)])
        .await
        .expect(StatusCode::OK);
    app.send(&mut stolen, Method::DELETE, "/sessions/others", &[])
        .await
        .expect(StatusCode::OK);
    app.send(&mut other, Method::GET, "/profile", &[])
        .await
        .expect(StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_lower_configured_cost_never_weakens_a_stored_hash() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let strong = App::start_on(Arc::clone(&store), |c| {
        c.bcrypt_cost = 6;
        c.require_confirmed_email = false;
    })
    .await;
    let mut owner = Browser::from(1);
    strong
        .post(&mut owner, "/users", &[("email", ALICE), ("password", PW)])
        .await
        .expect(StatusCode::ACCEPTED);
    assert!(strong.stored_hash(ALICE).await.starts_with("$2b$06$"));
    // Restarted with a lower cost: logins verify the stronger hash and keep it.
    let weaker = App::start_on(Arc::clone(&store), |c| c.require_confirmed_email = false).await;
    weaker
        .log_in(&mut owner, ALICE, PW)
        .await
        .expect(StatusCode::OK);
    weaker.auth.background_idle().await;
    assert!(weaker.stored_hash(ALICE).await.starts_with("$2b$06$"));
    // Only an app that opts in lowers it.
    let lowering = App::start_on(Arc::clone(&store), |c| {
        c.require_confirmed_email = false;
        c.allow_hash_downgrade = true;
    })
    .await;
    lowering
        .log_in(&mut owner, ALICE, PW)
        .await
        .expect(StatusCode::OK);
    lowering.auth.background_idle().await;
    assert!(lowering.stored_hash(ALICE).await.starts_with("$2b$04$"));
}

/// The configured hasher, recording what each verification was checked against.
#[derive(Clone)]
struct Recording {
    inner: ConfiguredHasher,
    verified_against: Arc<Mutex<Vec<String>>>,
}

impl PasswordHasher for Recording {
    fn hash(&self, password: &str) -> Result<String, HashError> {
        self.inner.hash(password)
    }

    fn verify(&self, password: &str, hash: &str) -> Result<bool, HashError> {
        self.verified_against
            .lock()
            .expect("lock")
            .push(hash.get(..7).unwrap_or_default().to_owned());
        self.inner.verify(password, hash)
    }

    fn needs_rehash(&self, hash: &str) -> bool {
        self.inner.needs_rehash(hash)
    }
}

#[tokio::test]
async fn unknown_emails_cost_what_the_usual_stored_hash_costs() {
    // Accounts made at bcrypt cost 5; the service restarted with cost 4. Their owners
    // have not logged in since, so a wrong password verifies a cost-5 hash: an unknown
    // email must too, not the cheaper configured cost.
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let old = App::start_on(Arc::clone(&store), |c| {
        c.bcrypt_cost = 5;
        c.require_confirmed_email = false;
    })
    .await;
    for n in 0..3 {
        old.post(
            &mut Browser::from(1),
            "/users",
            &[("email", &format!("user{n}@example.com")), ("password", PW)],
        )
        .await
        .expect(StatusCode::ACCEPTED);
    }
    let mail = Capture::default();
    let mailer = Mailer::new(mail, "app@example.com", "http://localhost").expect("mailer");
    let mut config = config(mailer);
    config.require_confirmed_email = false;
    let recording = Recording {
        inner: ConfiguredHasher::from_config(&config),
        verified_against: Arc::default(),
    };
    let auth = Auth::builder_shared(Arc::clone(&store), config)
        .password_hasher(recording.clone())
        .build()
        .expect("valid config");
    let server = serve_auth(&auth).await;
    let app = App {
        auth,
        store,
        clock: ManualClock::new(1_800_000_000_000),
        mail: Capture::default(),
        server,
    };
    let mut client = Browser::from(2);
    // A hasher of the application's own (this recording one) tells its parameters only
    // through the first dummy it makes; the crate's own hasher knows them from the start.
    app.log_in(&mut client, "first@example.com", "wrong password")
        .await
        .expect(StatusCode::UNAUTHORIZED);
    for n in 0..3 {
        app.log_in(
            &mut client,
            &format!("user{n}@example.com"),
            "wrong password",
        )
        .await
        .expect(StatusCode::UNAUTHORIZED);
    }
    // The dummy of the usual parameters is made in the background, once.
    app.auth.background_idle().await;
    app.log_in(&mut client, "nobody@example.com", "wrong password")
        .await
        .expect(StatusCode::UNAUTHORIZED);
    let seen = recording.verified_against.lock().expect("lock").clone();
    assert_eq!(
        seen,
        ["$2b$04$", "$2b$05$", "$2b$05$", "$2b$05$", "$2b$05$"],
        "once stored hashes were seen, an unknown email is verified against a hash of \
         their cost, not the configured one"
    );
}

#[tokio::test]
async fn a_cleared_password_never_matches() {
    let app = App::start(|_| {}).await;
    let mut intruder = Browser::from(2);
    app.register(&mut intruder, ALICE, EVIL_PW).await;
    let link = app.newest_token(ALICE).await;
    app.post(&mut Browser::from(1), "/confirmation", &[("token", &link)])
        .await
        .expect(StatusCode::OK);
    // Whatever is typed, including the marker stored in place of a hash.
    for password in [EVIL_PW, "!", ""] {
        let answer = app.log_in(&mut intruder, ALICE, password).await;
        assert!(
            answer.status == StatusCode::UNAUTHORIZED || answer.status == StatusCode::BAD_REQUEST,
            "{password:?}: {answer:?}"
        );
    }
}
