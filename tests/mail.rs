//! Email over a real SMTP server (aiosmtpd on loopback, its own process): every flow end to
//! end with its MIME structure and its link's token working once; an SMTP outage with an
//! application restart in between, after which every message arrives exactly once; two
//! instances on one PostgreSQL sharing the outbox without duplicates; bad tokens and bad
//! input answered 4xx; the development outbox, custom templates and STARTTLS/SMTPS.

#[path = "support/http.rs"]
mod http_support;
#[path = "support/mail.rs"]
mod mail;
#[path = "support/pg.rs"]
mod pg;
#[path = "support/process.rs"]
mod process;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use http_support::{Answer, TestServer, client, form, serve_auth};
use mail::{Capture, Received, SmtpServer, smtp_available};
use reqwest::StatusCode;
use serde_json::json;
use sqlx::Connection as _;
use tower_auth::clock::Clock as _;
use tower_auth::clock::ManualClock;
use tower_auth::mail::{MailError, MailTransport, SmtpTransport};
use tower_auth::store::{MailRequest, OutgoingMail};
use tower_auth::store::{NewUser, TokenPurpose, UserUpdate};
use tower_auth::{Auth, AuthConfig, MailTemplates, Mailer, MemoryStore, Store};

const PW: &str = "correct horse battery staple";
const PW2: &str = "tr0ub4dor and three more words";
const ALICE: &str = "alice@example.com";
const BOB: &str = "bob@example.com";
const PUBLIC_URL: &str = "https://app.example.com/account";

/// The hardened preset, as shipped, mailing through `mailer`; bcrypt cost 4 and a quick
/// retry for the tests.
fn hardened(mailer: Mailer) -> AuthConfig {
    let mut config = AuthConfig::hardened_with(
        mailer
            .retry(Duration::from_millis(100), Duration::from_millis(400))
            .poll_interval(Duration::from_millis(50)),
    );
    config.bcrypt_cost = 4;
    config
}

fn smtp_mailer(server: &SmtpServer) -> Mailer {
    Mailer::smtp(&server.url(), "Example <no-reply@example.com>", PUBLIC_URL).expect("mailer")
}

/// A client of one server, sending the hardened `__Host-` cookie by hand (a jar would not
/// send a `Secure` cookie over plain HTTP).
struct Site {
    server: TestServer,
    http: reqwest::Client,
}

impl Site {
    async fn start(auth: &Auth) -> Self {
        Self {
            server: serve_auth(auth).await,
            http: client(),
        }
    }

    async fn post(&self, path: &str, fields: &[(&str, &str)], cookie: Option<&str>) -> Answer {
        let mut request = self
            .http
            .post(self.server.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(fields));
        if let Some(cookie) = cookie {
            request = request.header("cookie", format!("__Host-session_id={cookie}"));
        }
        Answer::read(request.send().await.expect("request")).await
    }

    async fn get(&self, path: &str, cookie: &str) -> Answer {
        let request = self
            .http
            .get(self.server.url(path))
            .header("cookie", format!("__Host-session_id={cookie}"));
        Answer::read(request.send().await.expect("request")).await
    }

    async fn put(&self, path: &str, fields: &[(&str, &str)]) -> Answer {
        let request = self
            .http
            .put(self.server.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(fields));
        Answer::read(request.send().await.expect("request")).await
    }
}

/// The session token a response set.
fn session_of(answer: &Answer) -> String {
    answer
        .set_cookies
        .iter()
        .find_map(|c| c.split(';').next()?.strip_prefix("__Host-session_id="))
        .expect("a session cookie")
        .to_owned()
}

/// The new messages since `seen` (waiting for `count` of them), and moves `seen` on.
async fn next_messages(server: &SmtpServer, seen: &mut usize, count: usize) -> Vec<Received> {
    let all = server.wait_for(*seen + count).await;
    let new = all[*seen..].to_vec();
    *seen = all.len();
    new
}

/// A message is real MIME mail: `multipart/alternative` with a text and an HTML part,
/// the headers a mail client needs, the subject as given, sent to `to`.
fn assert_mime(message: &Received, to: &str, subject: &str) {
    let parsed = message.parsed();
    assert_eq!(message.to, to, "envelope recipient");
    assert_eq!(parsed.content_type, "multipart/alternative");
    assert_eq!(parsed.subject, subject);
    assert_eq!(parsed.from, "Example <no-reply@example.com>");
    assert_eq!(parsed.to, to);
    assert!(
        parsed.message_id.is_some() && parsed.date.is_some(),
        "{parsed:?}"
    );
    assert!(parsed.text.contains(to), "{}", parsed.text);
    assert!(
        parsed.html.contains("<html>") && parsed.html.contains(to),
        "{}",
        parsed.html
    );
}

/// Every flow, through the router, over real SMTP, on `store`.
async fn every_flow_end_to_end(store: Arc<dyn Store>, smtp: &SmtpServer) {
    let auth = Auth::builder_shared(store, hardened(smtp_mailer(smtp)))
        .build()
        .expect("config");
    let site = Site::start(&auth).await;
    let mut seen = smtp.received().len();

    // Registration: the same answer for a new and a registered email. The account is
    // unconfirmed, so registering again mails a fresh confirmation link (the first dies).
    let first = site
        .post("/users", &[("email", ALICE), ("password", PW)], None)
        .await;
    first.expect(StatusCode::ACCEPTED);
    assert_eq!(first.body, json!({"message": "check your email"}));
    let again = site
        .post("/users", &[("email", ALICE), ("password", PW)], None)
        .await;
    assert_eq!((again.status, &again.body), (first.status, &first.body));
    let links = next_messages(smtp, &mut seen, 2).await;
    for message in &links {
        assert_mime(message, ALICE, "Confirm your email address");
        let text = message.parsed().text;
        assert!(
            text.contains(&format!("{PUBLIC_URL}/confirmation?token=")),
            "{text}"
        );
        // The HTML part links the same URL (escaped for HTML: `/` as `&#x2f;`).
        let html = message.parsed().html;
        assert!(
            html.contains(
                "<a href=\"https:&#x2f;&#x2f;app.example.com&#x2f;account&#x2f;confirmation?token="
            ),
            "{html}"
        );
        assert!(html.contains(&message.token()), "{html}");
    }

    // Unconfirmed: the right password is refused with its reason, a wrong one as usual.
    let refused = site
        .post("/sessions", &[("email", ALICE), ("password", PW)], None)
        .await;
    refused.expect(StatusCode::FORBIDDEN);
    assert_eq!(refused.body, json!({"message": "email not confirmed"}));
    assert!(
        refused
            .set_cookies
            .iter()
            .all(|c| !c.contains("session_id="))
    );
    site.post("/sessions", &[("email", ALICE), ("password", PW2)], None)
        .await
        .expect(StatusCode::UNAUTHORIZED);

    let stale = links[0].token();
    let token = links[1].token();
    site.post("/confirmation", &[("token", &stale)], None)
        .await
        .expect(StatusCode::BAD_REQUEST);
    let confirmed = site
        .post(
            "/confirmation",
            &[("token", &token), ("password", PW)],
            None,
        )
        .await;
    confirmed.expect(StatusCode::OK);
    assert_eq!(
        confirmed.body,
        json!({"email": ALICE, "message": "email confirmed", "password_kept": true})
    );
    let reused = site.post("/confirmation", &[("token", &token)], None).await;
    reused.expect(StatusCode::BAD_REQUEST);
    assert_eq!(reused.body, json!({"message": "invalid or expired token"}));
    site.post("/sessions", &[("email", ALICE), ("password", PW)], None)
        .await
        .expect(StatusCode::OK);

    // Registering a confirmed address again: same answer, and its owner hears of it.
    let third = site
        .post("/users", &[("email", ALICE), ("password", PW2)], None)
        .await;
    assert_eq!((third.status, &third.body), (first.status, &first.body));
    let notice = &next_messages(smtp, &mut seen, 1).await[0];
    assert_mime(notice, ALICE, "You already have an account");
    assert!(
        mail::token_in(&notice.parsed().text).is_none(),
        "a notice carries no token"
    );
    site.post("/sessions", &[("email", ALICE), ("password", PW2)], None)
        .await
        .expect(StatusCode::UNAUTHORIZED);

    // Magic link: the same answer for every email; only the account gets a link.
    let asked = site.post("/magic_link", &[("email", ALICE)], None).await;
    asked.expect(StatusCode::ACCEPTED);
    for other in ["nobody@example.com", "not an email"] {
        let answer = site.post("/magic_link", &[("email", other)], None).await;
        assert_eq!((answer.status, &answer.body), (asked.status, &asked.body));
    }
    let magic = &next_messages(smtp, &mut seen, 1).await[0];
    assert_mime(magic, ALICE, "Your sign-in link");
    assert!(magic.parsed().text.contains("15 minutes"));
    let magic_token = magic.token();
    let logged_in = site
        .post("/sessions/magic", &[("token", &magic_token)], None)
        .await;
    logged_in.expect(StatusCode::OK);
    assert_eq!(
        logged_in.body,
        json!({"email": ALICE, "message": "logged in"})
    );
    let session = session_of(&logged_in);
    site.get("/profile", &session).await.expect(StatusCode::OK);
    site.post("/sessions/magic", &[("token", &magic_token)], None)
        .await
        .expect(StatusCode::BAD_REQUEST);

    // Email change from that fresh session: a link to the new address, a notice to the
    // old, nothing changed until the link is used.
    let new = "alice.new@example.com";
    site.post("/email", &[("new_email", new)], Some(&session))
        .await
        .expect(StatusCode::ACCEPTED);
    let pair = next_messages(smtp, &mut seen, 2).await;
    let to_new = pair
        .iter()
        .find(|m| m.to == new)
        .expect("a link to the new address");
    let to_old = pair
        .iter()
        .find(|m| m.to == ALICE)
        .expect("a notice to the old address");
    assert_mime(to_new, new, "Confirm your new email address");
    assert_mime(to_old, ALICE, "Your email address is being changed");
    assert!(to_old.parsed().text.contains(new));
    assert!(mail::token_in(&to_old.parsed().text).is_none());
    assert_eq!(
        site.get("/profile", &session).await.body,
        json!({"email": ALICE})
    );
    let changed = site
        .post("/email/confirm", &[("token", &to_new.token())], None)
        .await;
    changed.expect(StatusCode::OK);
    assert_eq!(
        changed.body,
        json!({"email": new, "message": "email changed"})
    );
    assert_eq!(
        site.get("/profile", &session).await.body,
        json!({"email": new})
    );
    site.post("/sessions", &[("email", ALICE), ("password", PW)], None)
        .await
        .expect(StatusCode::UNAUTHORIZED);

    // Reset, on the same machinery: a link with the token and the email.
    let reset = site.post("/reset_password", &[("email", new)], None).await;
    reset.expect(StatusCode::ACCEPTED);
    let link = &next_messages(smtp, &mut seen, 1).await[0];
    assert_mime(link, new, "Reset your password");
    assert!(link.parsed().text.contains("email=alice.new%40example.com"));
    let fields = [
        ("email", new),
        ("reset_token", &link.token()),
        ("new_password", PW2),
    ];
    site.put("/reset_password", &fields)
        .await
        .expect(StatusCode::OK);
    site.put("/reset_password", &fields)
        .await
        .expect(StatusCode::FORBIDDEN);
    site.post("/sessions", &[("email", new), ("password", PW2)], None)
        .await
        .expect(StatusCode::OK);

    // Nothing else was sent, and the outbox keeps nothing once delivered.
    auth.flush_mail().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        smtp.received().len(),
        seen,
        "no message beyond the ones read"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_flow_over_smtp_on_memory() {
    if !smtp_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let smtp = SmtpServer::start(dir.path(), &[]).await;
    every_flow_end_to_end(Arc::new(MemoryStore::new()), &smtp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_flow_over_smtp_on_sqlite() {
    if !smtp_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let smtp = SmtpServer::start(&dir.path().join("mail"), &[]).await;
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("a.db").display());
    let store = tower_auth::store::connect(&url, false)
        .await
        .expect("sqlite");
    every_flow_end_to_end(store, &smtp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_flow_over_smtp_on_postgres() {
    if !smtp_available() {
        return;
    }
    let Some(db) = pg::test_database().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let smtp = SmtpServer::start(dir.path(), &[]).await;
    let store = tower_auth::store::connect(db.url(), false)
        .await
        .expect("pg");
    every_flow_end_to_end(store, &smtp).await;
}

/// The spec server as a process of its own, hardened, on a SQLite file, mailing through
/// a real SMTP server and retrying within a second: started, killed and started again.
struct MailingServer {
    binary: std::path::PathBuf,
    db: String,
    smtp_url: String,
}

impl MailingServer {
    fn new(dir: &std::path::Path, smtp: &SmtpServer) -> Self {
        Self {
            binary: process::spec_server_binary(),
            db: format!("sqlite://{}?mode=rwc", dir.join("a.db").display()),
            smtp_url: smtp.url(),
        }
    }

    async fn start(&self) -> process::SpecServer {
        let flags = [
            "--preset",
            "hardened",
            "--cookie-secure",
            "false",
            "--smtp-url",
            &self.smtp_url,
            "--public-url",
            "http://localhost:5000",
            "--mail-retry-max",
            "1",
        ];
        process::SpecServer::start(&self.binary, &self.db, &flags).await
    }
}

/// Makes the token table of a spec server's SQLite database refuse every insert (`hold`),
/// or accept them again: a store that fails exactly where a link is issued.
async fn hold_tokens(sql: &mut sqlx::SqliteConnection, hold: bool) {
    let statement = if hold {
        "CREATE TRIGGER test_hold_tokens BEFORE INSERT ON auth_tokens \
         BEGIN SELECT RAISE(ABORT, 'tokens held by the test'); END"
    } else {
        "DROP TRIGGER test_hold_tokens"
    };
    sqlx::query(statement)
        .execute(sql)
        .await
        .expect("token trigger");
}

/// Posts a form to a server process.
async fn post_form(base: &str, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
    client()
        .post(format!("{base}{path}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(fields))
        .send()
        .await
        .expect("request")
}

/// `PUT /reset_password` with a mailed token on a server process; its status.
async fn reset_over(base: &str, email: &str, token: &str) -> StatusCode {
    client()
        .put(format!("{base}/reset_password"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("email", email),
            ("reset_token", token),
            ("new_password", PW2),
        ]))
        .send()
        .await
        .expect("request")
        .status()
}

/// The SMTP server is down while users register and ask for resets; the application is
/// killed (`kill -9`) and started again; then the server comes back. Every message arrives,
/// exactly once, and its link works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_smtp_outage_and_a_restart_lose_and_repeat_nothing() {
    if !smtp_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut smtp = SmtpServer::start(&dir.path().join("mail"), &[]).await;
    smtp.stop();
    let mailing = MailingServer::new(dir.path(), &smtp);
    let app = mailing.start().await;
    let users: Vec<String> = (0..4).map(|i| format!("user{i}@example.com")).collect();
    for user in &users {
        let answer = post_form(&app.base, "/users", &[("email", user), ("password", PW)]).await;
        assert_eq!(
            answer.status(),
            StatusCode::ACCEPTED,
            "registration acknowledged"
        );
    }
    for user in &users[..2] {
        let answer = post_form(&app.base, "/reset_password", &[("email", user)]).await;
        assert_eq!(answer.status(), StatusCode::ACCEPTED);
    }
    // Give the background jobs and a few failed attempts time to happen.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    app.kill();
    let app = mailing.start().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(smtp.received().is_empty(), "nothing could be delivered yet");
    smtp.restart().await;

    let expected = users.len() + 2;
    smtp.wait_for(expected).await;
    // Long enough for any duplicate to show: several poll and retry periods.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let received = smtp.received();
    assert_eq!(received.len(), expected, "every message exactly once");
    let ids: HashSet<String> = received
        .iter()
        .map(|m| m.parsed().message_id.expect("Message-ID"))
        .collect();
    assert_eq!(ids.len(), expected, "no message sent twice");
    for user in &users {
        let subjects: Vec<String> = received
            .iter()
            .filter(|m| &m.to == user)
            .map(|m| m.parsed().subject)
            .collect();
        assert!(
            subjects.contains(&"Confirm your email address".to_owned()),
            "{user}: {subjects:?}"
        );
    }
    // The links still work after the restart.
    let confirmation = received
        .iter()
        .find(|m| m.to == users[3])
        .expect("user3's mail");
    let answer = post_form(
        &app.base,
        "/confirmation",
        &[("token", &confirmation.token())],
    )
    .await;
    assert_eq!(answer.status(), StatusCode::OK);
    let reset = received
        .iter()
        .find(|m| m.to == users[0] && m.parsed().subject == "Reset your password")
        .expect("a reset link");
    assert_eq!(
        reset_over(&app.base, &users[0], &reset.token()).await,
        StatusCode::OK
    );
}

/// A "mail me a link" request is durable once acknowledged: with the token table refusing
/// writes (so no link can be issued), magic-link and reset requests still get their 202;
/// the application is killed (`kill -9`); the requests are found waiting in the outbox,
/// and once tokens can be written again the restarted application answers each exactly
/// once, with links that work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acknowledged_request_survives_a_store_failure_and_a_crash() {
    if !smtp_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let smtp = SmtpServer::start(&dir.path().join("mail"), &[]).await;
    let mailing = MailingServer::new(dir.path(), &smtp);
    let app = mailing.start().await;
    let answer = post_form(&app.base, "/users", &[("email", ALICE), ("password", PW)]).await;
    assert_eq!(answer.status(), StatusCode::ACCEPTED);
    let confirmation = smtp.wait_for(1).await[0].token();
    // Confirmed first: a magic link into an unconfirmed account would end every other
    // link (the reset link below among them), as the first proof of the mailbox does.
    let answer = post_form(
        &app.base,
        "/confirmation",
        &[("token", &confirmation), ("password", PW)],
    )
    .await;
    assert_eq!(answer.status(), StatusCode::OK);

    let mut sql = sqlx::SqliteConnection::connect(&mailing.db)
        .await
        .expect("sqlite");
    hold_tokens(&mut sql, true).await;
    for path in ["/magic_link", "/reset_password"] {
        let answer = post_form(&app.base, path, &[("email", ALICE)]).await;
        assert_eq!(answer.status(), StatusCode::ACCEPTED, "{path} acknowledged");
    }
    // Long enough for the worker to try (and fail) to answer, more than once.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    app.kill();
    let waiting: Vec<String> =
        sqlx::query_scalar("SELECT request FROM auth_outbox WHERE request IS NOT NULL ORDER BY id")
            .fetch_all(&mut sql)
            .await
            .expect("outbox");
    assert_eq!(
        waiting,
        ["magic_link", "reset_password"],
        "both acknowledged requests wait in the outbox"
    );
    hold_tokens(&mut sql, false).await;
    sql.close().await.expect("close");

    let app = mailing.start().await;
    smtp.wait_for(3).await;
    // Long enough for any duplicate to show: several poll and retry periods.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let received = smtp.received();
    let subjects: Vec<String> = received.iter().map(|m| m.parsed().subject).collect();
    assert_eq!(
        subjects.len(),
        3,
        "the confirmation, then each request answered once: {subjects:?}"
    );
    let magic = received
        .iter()
        .find(|m| m.parsed().subject == "Your sign-in link")
        .expect("the magic link");
    let answer = post_form(&app.base, "/sessions/magic", &[("token", &magic.token())]).await;
    assert_eq!(answer.status(), StatusCode::OK, "the magic link works");
    let reset = received
        .iter()
        .find(|m| m.parsed().subject == "Reset your password")
        .expect("the reset link");
    assert_eq!(
        reset_over(&app.base, ALICE, &reset.token()).await,
        StatusCode::OK,
        "the reset link works"
    );
}

/// A registration whose confirmation link cannot be stored fails as a whole: the client
/// gets a 5xx, no account is left behind without its link, and registering again creates
/// the account and mails its confirmation link (not "you already have an account").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_registration_leaves_no_account_behind() {
    if !smtp_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let smtp = SmtpServer::start(&dir.path().join("mail"), &[]).await;
    let mailing = MailingServer::new(dir.path(), &smtp);
    let app = mailing.start().await;
    let mut sql = sqlx::SqliteConnection::connect(&mailing.db)
        .await
        .expect("sqlite");
    hold_tokens(&mut sql, true).await;
    let answer = post_form(&app.base, "/users", &[("email", ALICE), ("password", PW)]).await;
    assert_eq!(answer.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body = answer.text().await.expect("body");
    assert!(
        !body.contains("held by the test") && !body.contains("auth_tokens"),
        "the 500 tells nothing of the store: {body}"
    );
    let accounts: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM auth_users")
        .fetch_one(&mut sql)
        .await
        .expect("count");
    assert_eq!(accounts, 0, "no account without its confirmation link");
    hold_tokens(&mut sql, false).await;
    sql.close().await.expect("close");

    let answer = post_form(&app.base, "/users", &[("email", ALICE), ("password", PW)]).await;
    assert_eq!(answer.status(), StatusCode::ACCEPTED);
    smtp.wait_for(1).await;
    // Long enough for a second message, were one queued, to arrive.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let received = smtp.received();
    let subjects: Vec<String> = received.iter().map(|m| m.parsed().subject).collect();
    assert_eq!(subjects, ["Confirm your email address"]);
    let answer = post_form(
        &app.base,
        "/confirmation",
        &[("token", &received[0].token()), ("password", PW)],
    )
    .await;
    assert_eq!(
        answer.status(),
        StatusCode::OK,
        "the link confirms the account"
    );
    let answer = post_form(
        &app.base,
        "/sessions",
        &[("email", ALICE), ("password", PW)],
    )
    .await;
    assert_eq!(answer.status(), StatusCode::OK, "and the account logs in");
}

/// The spec server's `--require-confirmed-email` / `--no-require-confirmed-email` decide
/// whether an unconfirmed account may log in (the hardened preset requires confirmation;
/// the last flag given wins).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spec_server_flags_decide_whether_unconfirmed_accounts_log_in() {
    let dir = tempfile::tempdir().unwrap();
    let binary = process::spec_server_binary();
    let mail_dir = dir.path().join("outbox");
    let mail_dir = mail_dir.to_str().expect("utf-8 path");
    for (n, (flags, status)) in [
        (&[][..], StatusCode::FORBIDDEN),
        (&["--no-require-confirmed-email"][..], StatusCode::OK),
        (
            &["--no-require-confirmed-email", "--require-confirmed-email"][..],
            StatusCode::FORBIDDEN,
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let db = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join(format!("{n}.db")).display()
        );
        let mut args = vec![
            "--preset",
            "hardened",
            "--cookie-secure",
            "false",
            "--mail-dir",
            mail_dir,
        ];
        args.extend_from_slice(flags);
        let app = process::SpecServer::start(&binary, &db, &args).await;
        let answer = post_form(&app.base, "/users", &[("email", ALICE), ("password", PW)]).await;
        assert_eq!(answer.status(), StatusCode::ACCEPTED);
        let answer = post_form(
            &app.base,
            "/sessions",
            &[("email", ALICE), ("password", PW)],
        )
        .await;
        assert_eq!(answer.status(), status, "{flags:?}");
    }
}

/// A request of a kind this version does not know (written by a newer instance during a
/// rolling upgrade) stays in the outbox for an instance that knows it, and holds up
/// nothing: a message and a request claimed in the same batch go out at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_request_in_the_outbox_holds_up_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("a.db").display());
    let store = tower_auth::store::connect(&url, false)
        .await
        .expect("store");
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_millis(),
    )
    .expect("ms");
    // Queued before any worker runs, so its first claim takes all three at once.
    let mut sql = sqlx::SqliteConnection::connect(&url).await.expect("sqlite");
    sqlx::query(
        "INSERT INTO auth_outbox (sender, recipient, message, created_at_ms, next_attempt_ms, \
           attempts, expires_at_ms, request) \
         VALUES ('', $1, x'', $2, $2, 0, $3, 'a_later_kind')",
    )
    .bind(ALICE)
    .bind(now - 1_000)
    .bind(now + 3_600_000)
    .execute(&mut sql)
    .await
    .expect("insert");
    store
        .queue_mail(&[OutgoingMail {
            from: "no-reply@example.com".into(),
            to: BOB.into(),
            message:
                b"From: no-reply@example.com\r\nTo: bob@example.com\r\nSubject: Hello\r\n\r\nhi\r\n"
                    .to_vec(),
            created_at_ms: now,
            expires_at_ms: now + 3_600_000,
        }])
        .await
        .expect("queue_mail");
    store
        .add_user(NewUser {
            email: ALICE.into(),
            password_hash: "not a real hash".into(),
            created_at_ms: now,
            first_link: None,
            email_confirmed_at_ms: None,
        })
        .await
        .expect("add_user");
    store
        .queue_mail_request(&MailRequest {
            purpose: TokenPurpose::MagicLink,
            email: ALICE.into(),
            created_at_ms: now,
            expires_at_ms: now + 900_000,
        })
        .await
        .expect("queue_mail_request");

    let capture = Capture::default();
    let _auth = Auth::builder_shared(
        store,
        hardened(Mailer::new(capture.clone(), "no-reply@example.com", PUBLIC_URL).expect("mailer")),
    )
    .build()
    .expect("config");
    let mut subjects: Vec<String> = capture
        .wait_for(2)
        .await
        .iter()
        .map(|m| m.parsed().subject)
        .collect();
    subjects.sort();
    assert_eq!(subjects, ["Hello", "Your sign-in link"]);
    let left: Vec<String> = sqlx::query_scalar("SELECT request FROM auth_outbox")
        .fetch_all(&mut sql)
        .await
        .expect("outbox");
    assert_eq!(
        left,
        ["a_later_kind"],
        "the unknown request is left as it was"
    );
}

/// A mail server that takes two minutes (on the shared clock) to accept each message and,
/// during its third, lets another instance's worker look for due mail.
struct SlowServer {
    clock: ManualClock,
    accepted: Capture,
    sends: std::sync::atomic::AtomicUsize,
    other: Arc<std::sync::OnceLock<Auth>>,
    other_looked: Arc<std::sync::atomic::AtomicBool>,
}

#[async_trait::async_trait]
impl MailTransport for SlowServer {
    async fn send(&self, from: &str, to: &str, message: &[u8]) -> Result<(), MailError> {
        self.clock.advance(Duration::from_secs(120));
        let sends = 1 + self.sends.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if sends == 3 {
            let other = self.other.get().expect("the other instance");
            other.flush_mail().await;
            self.other_looked
                .store(true, std::sync::atomic::Ordering::SeqCst);
        }
        self.accepted.send(from, to, message).await
    }
}

/// A slow mail server cannot get a message twice: a worker starts a claimed message only
/// while a whole attempt (the mailer's send timeout, 60 s) still fits in its 5-minute
/// lease, and gives the rest back, so another instance looking for due mail in the
/// meantime never finds a message that is still being worked on. (Before, with 2 minutes
/// per message, the third and later messages of a batch went out twice.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_mail_server_never_gets_a_message_twice() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let clock = ManualClock::new(1_700_000_000_000);
    let other = Arc::new(std::sync::OnceLock::new());
    let other_looked = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let slow = SlowServer {
        clock: clock.clone(),
        accepted: Capture::default(),
        sends: Default::default(),
        other: Arc::clone(&other),
        other_looked: Arc::clone(&other_looked),
    };
    let slow_accepted = slow.accepted.clone();
    let other_accepted = Capture::default();
    let instance = |mailer: Mailer| {
        Auth::builder_shared(Arc::clone(&store), hardened(mailer))
            .clock(clock.clone())
            .build()
            .expect("config")
    };
    // Built outside the runtime, the instances start no delivery worker of their own: mail
    // goes out only when the test flushes it, so the order of events is the test's.
    let (a, b) = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let a = instance(
                    Mailer::new(slow, "no-reply@example.com", PUBLIC_URL).expect("mailer"),
                );
                let b = instance(
                    Mailer::new(other_accepted.clone(), "no-reply@example.com", PUBLIC_URL)
                        .expect("mailer"),
                );
                (a, b)
            })
            .join()
            .expect("build")
    });
    assert!(
        other.set(b.clone()).is_ok(),
        "the other instance is set once"
    );
    let now = clock.now_ms();
    let recipients: Vec<String> = (0..5).map(|i| format!("r{i}@example.com")).collect();
    let messages: Vec<OutgoingMail> = recipients
        .iter()
        .map(|to| OutgoingMail {
            from: "no-reply@example.com".into(),
            to: to.clone(),
            message: format!("Subject: for {to}\r\n\r\nhello\r\n").into_bytes(),
            created_at_ms: now,
            expires_at_ms: now + 86_400_000,
        })
        .collect();
    store.queue_mail(&messages).await.expect("queue");
    a.flush_mail().await;
    b.flush_mail().await;
    a.flush_mail().await;
    assert!(
        other_looked.load(std::sync::atomic::Ordering::SeqCst),
        "the other instance looked for mail while the slow server was busy"
    );
    let mut delivered: Vec<String> = slow_accepted
        .sent()
        .into_iter()
        .chain(other_accepted.sent())
        .map(|m| m.to)
        .collect();
    delivered.sort();
    assert_eq!(delivered, recipients, "every message exactly once");
}

/// Two instances on one PostgreSQL database share the outbox: both queue, both deliver at
/// once, and each message reaches the SMTP server once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_postgres_send_each_message_once() {
    if !smtp_available() {
        return;
    }
    let Some(db) = pg::test_database().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut smtp = SmtpServer::start(dir.path(), &[]).await;
    // Down while the messages are queued, so both instances find all of them waiting.
    smtp.stop();
    let instance = |store| {
        let mut config = hardened(smtp_mailer(&smtp));
        config.max_mails_per_hour = None;
        Auth::builder_shared(store, config).build().expect("config")
    };
    let a = instance(
        tower_auth::store::connect(db.url(), false)
            .await
            .expect("pg"),
    );
    let b = instance(
        tower_auth::store::connect(db.url(), false)
            .await
            .expect("pg"),
    );
    let users: Vec<String> = (0..24).map(|i| format!("u{i}@example.com")).collect();
    for (i, user) in users.iter().enumerate() {
        let auth = if i % 2 == 0 { &a } else { &b };
        auth.register_user(user, PW).await.expect("register");
        auth.request_magic_link(&tower_auth::Client::default(), user)
            .await
            .expect("magic link");
    }
    a.background_idle().await;
    b.background_idle().await;
    smtp.restart().await;
    // Both deliver at once (their workers, and a flush each).
    tokio::join!(a.flush_mail(), b.flush_mail());
    let expected = users.len() * 2;
    smtp.wait_for(expected).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let received = smtp.received();
    assert_eq!(received.len(), expected, "each message exactly once");
    for user in &users {
        let mut subjects: Vec<String> = received
            .iter()
            .filter(|m| &m.to == user)
            .map(|m| m.parsed().subject)
            .collect();
        subjects.sort();
        assert_eq!(
            subjects,
            ["Confirm your email address", "Your sign-in link"],
            "{user}"
        );
    }
}

/// Every new endpoint with missing, malformed, unknown, expired, reused and foreign tokens
/// or bad fields: a clear 4xx, never a 5xx, and nothing changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_and_fields_get_a_clear_4xx() {
    let capture = Capture::default();
    let clock = ManualClock::new(1_700_000_000_000);
    let auth = Auth::builder(
        MemoryStore::new(),
        hardened(Mailer::new(capture.clone(), "no-reply@example.com", PUBLIC_URL).expect("mailer")),
    )
    .clock(clock.clone())
    .build()
    .expect("config");
    let site = Site::start(&auth).await;
    site.post("/users", &[("email", ALICE), ("password", PW)], None)
        .await
        .expect(StatusCode::ACCEPTED);
    let confirmation = capture.wait_for(1).await[0].token();

    // A magic link and a session for the email-change checks.
    site.post("/magic_link", &[("email", ALICE)], None).await;
    auth.background_idle().await;
    let magic = capture.wait_for(2).await[1].token();

    for path in ["/confirmation", "/sessions/magic", "/email/confirm"] {
        let missing = site.post(path, &[], None).await;
        missing.expect(StatusCode::BAD_REQUEST);
        assert_eq!(
            missing.body,
            json!({"message": "missing field: token"}),
            "{path}"
        );
        site.post(path, &[("token", "")], None)
            .await
            .expect(StatusCode::BAD_REQUEST);
        for bad in [
            "x",
            "%00",
            "\u{1F600}\u{0}",
            &"A".repeat(500),
            &"a".repeat(43),
        ] {
            let answer = site.post(path, &[("token", bad)], None).await;
            answer.expect(StatusCode::BAD_REQUEST);
            assert_eq!(
                answer.body,
                json!({"message": "invalid or expired token"}),
                "{path}"
            );
        }
    }
    // Foreign: each token only works for its own purpose.
    site.post("/sessions/magic", &[("token", &confirmation)], None)
        .await
        .expect(StatusCode::BAD_REQUEST);
    site.post("/email/confirm", &[("token", &magic)], None)
        .await
        .expect(StatusCode::BAD_REQUEST);
    site.post("/confirmation", &[("token", &magic)], None)
        .await
        .expect(StatusCode::BAD_REQUEST);
    let put = site
        .put(
            "/reset_password",
            &[
                ("email", ALICE),
                ("reset_token", &magic),
                ("new_password", PW2),
            ],
        )
        .await;
    put.expect(StatusCode::FORBIDDEN);

    // Expired: the magic link after 15 minutes, the confirmation after 24 hours.
    clock.advance(Duration::from_secs(15 * 60));
    site.post("/sessions/magic", &[("token", &magic)], None)
        .await
        .expect(StatusCode::BAD_REQUEST);
    clock.advance(Duration::from_secs(24 * 3600));
    site.post("/confirmation", &[("token", &confirmation)], None)
        .await
        .expect(StatusCode::BAD_REQUEST);

    // The "mail me" endpoints: a missing email is a 400; a malformed one is accepted (the
    // answer reveals nothing) and sends nothing.
    let before = capture.sent().len();
    for path in ["/magic_link", "/confirmation/resend", "/reset_password"] {
        site.post(path, &[], None)
            .await
            .expect(StatusCode::BAD_REQUEST);
        site.post(path, &[("email", "not an email")], None)
            .await
            .expect(StatusCode::ACCEPTED);
    }
    auth.background_idle().await;
    auth.flush_mail().await;
    assert_eq!(capture.sent().len(), before);

    // Email change: a session is needed (401), the field too (400), a valid new address
    // (400), not the current one (400).
    site.post("/email", &[("new_email", "b@example.com")], None)
        .await
        .expect(StatusCode::UNAUTHORIZED);
    site.post("/email", &[("new_email", "b@example.com")], Some("made-up"))
        .await
        .expect(StatusCode::UNAUTHORIZED);
    site.post("/confirmation/resend", &[("email", ALICE)], None)
        .await
        .expect(StatusCode::ACCEPTED);
    auth.background_idle().await;
    let fresh = capture.wait_for(before + 1).await[before].token();
    site.post(
        "/confirmation",
        &[("token", &fresh), ("password", PW)],
        None,
    )
    .await
    .expect(StatusCode::OK);
    let login = site
        .post("/sessions", &[("email", ALICE), ("password", PW)], None)
        .await;
    login.expect(StatusCode::OK);
    let session = session_of(&login);
    site.post("/email", &[], Some(&session))
        .await
        .expect(StatusCode::BAD_REQUEST);
    for bad in ["not an email", ALICE, " ALICE@example.com "] {
        site.post("/email", &[("new_email", bad)], Some(&session))
            .await
            .expect(StatusCode::BAD_REQUEST);
    }
    // Sudo: a session older than the window must reauthenticate first (403).
    clock.advance(Duration::from_secs(16 * 60));
    site.get("/profile", &session).await.expect(StatusCode::OK);
    let stale = site
        .post("/email", &[("new_email", "b@example.com")], Some(&session))
        .await;
    stale.expect(StatusCode::FORBIDDEN);
    assert_eq!(stale.body, json!({"message": "reauthentication required"}));
}

/// An email change completes only while the account still has the address it had when the
/// change was asked for, and never onto an address registered meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_changes_respect_the_current_and_the_taken_address() {
    let capture = Capture::default();
    let store = MemoryStore::new();
    let mut config =
        hardened(Mailer::new(capture.clone(), "no-reply@example.com", PUBLIC_URL).expect("mailer"));
    config.max_mails_per_hour = None;
    let auth = Auth::new(store.clone(), config).expect("config");
    let site = Site::start(&auth).await;
    let confirmed_session = |email: &'static str| {
        let (site, capture, auth) = (&site, &capture, &auth);
        async move {
            auth.register_user(email, PW).await.expect("register");
            auth.flush_mail().await;
            let link = capture.sent_to(email).last().expect("confirmation").token();
            auth.confirm_email(&tower_auth::Client::default(), &link, Some(PW))
                .await
                .expect("confirm");
            let login = site
                .post("/sessions", &[("email", email), ("password", PW)], None)
                .await;
            login.expect(StatusCode::OK);
            session_of(&login)
        }
    };
    let alice = confirmed_session(ALICE).await;

    // A newer request voids the older link.
    for new in ["zero@example.com", "one@example.com"] {
        site.post("/email", &[("new_email", new)], Some(&alice))
            .await
            .expect(StatusCode::ACCEPTED);
    }
    auth.flush_mail().await;
    let zero = capture.sent_to("zero@example.com")[0].token();
    site.post("/email/confirm", &[("token", &zero)], None)
        .await
        .expect(StatusCode::BAD_REQUEST);
    // A link issued while the account had one address dies when the address changes
    // another way (here an administrator's `update_user`).
    let one = capture.sent_to("one@example.com")[0].token();
    let id = auth
        .get_user_from_session_id(Some(&alice))
        .await
        .unwrap()
        .unwrap()
        .id;
    store
        .update_user(id, UserUpdate::new().email("admin-set@example.com"))
        .await
        .unwrap();
    site.post("/email/confirm", &[("token", &one)], None)
        .await
        .expect(StatusCode::BAD_REQUEST);
    site.post("/email", &[("new_email", "one@example.com")], Some(&alice))
        .await
        .expect(StatusCode::ACCEPTED);
    auth.flush_mail().await;
    let one = capture.sent_to("one@example.com")[1].token();
    site.post("/email/confirm", &[("token", &one)], None)
        .await
        .expect(StatusCode::OK);

    // A change onto an address someone registers before the link is used: refused, and
    // the account keeps its address.
    site.post(
        "/email",
        &[("new_email", "taken@example.com")],
        Some(&alice),
    )
    .await
    .expect(StatusCode::ACCEPTED);
    auth.flush_mail().await;
    let taken = capture.sent_to("taken@example.com")[0].token();
    confirmed_session("taken@example.com").await;
    let refused = site
        .post("/email/confirm", &[("token", &taken)], None)
        .await;
    refused.expect(StatusCode::BAD_REQUEST);
    assert_eq!(refused.body, json!({"message": "email already registered"}));
    assert_eq!(
        site.get("/profile", &alice).await.body,
        json!({"email": "one@example.com"})
    );
}

/// `require_confirmed_email` both ways; a magic link logs an unconfirmed account in and
/// confirms it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmation_is_required_as_configured_and_a_magic_link_confirms() {
    for required in [true, false] {
        let capture = Capture::default();
        let mut config = hardened(
            Mailer::new(capture.clone(), "no-reply@example.com", PUBLIC_URL).expect("mailer"),
        );
        config.require_confirmed_email = required;
        let auth = Auth::new(MemoryStore::new(), config).expect("config");
        let site = Site::start(&auth).await;
        site.post("/users", &[("email", ALICE), ("password", PW)], None)
            .await
            .expect(StatusCode::ACCEPTED);
        let login = site
            .post("/sessions", &[("email", ALICE), ("password", PW)], None)
            .await;
        login.expect(if required {
            StatusCode::FORBIDDEN
        } else {
            StatusCode::OK
        });

        site.post("/magic_link", &[("email", ALICE)], None).await;
        auth.background_idle().await;
        auth.flush_mail().await;
        let link = capture.sent_to(ALICE).last().expect("magic link").token();
        site.post("/sessions/magic", &[("token", &link)], None)
            .await
            .expect(StatusCode::OK);
        // The link was the first proof of the mailbox: the password the account was
        // registered with (which anyone could have chosen) is gone, and a reset sets one.
        site.post("/sessions", &[("email", ALICE), ("password", PW)], None)
            .await
            .expect(StatusCode::UNAUTHORIZED);
        site.post("/reset_password", &[("email", ALICE)], None)
            .await
            .expect(StatusCode::ACCEPTED);
        auth.flush_mail().await;
        let reset = capture.sent_to(ALICE).last().expect("reset link").token();
        site.put(
            "/reset_password",
            &[
                ("email", ALICE),
                ("reset_token", &reset),
                ("new_password", PW2),
            ],
        )
        .await
        .expect(StatusCode::OK);
        site.post("/sessions", &[("email", ALICE), ("password", PW2)], None)
            .await
            .expect(StatusCode::OK);
    }
}

/// Per-account limits: at most `max_mails_per_hour` magic links, confirmation resends and
/// "you already have an account" notices an hour, each answered the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_requests_are_limited_per_account() {
    let capture = Capture::default();
    let auth = Auth::new(
        MemoryStore::new(),
        hardened(Mailer::new(capture.clone(), "no-reply@example.com", PUBLIC_URL).expect("mailer")),
    )
    .expect("config");
    let site = Site::start(&auth).await;
    site.post("/users", &[("email", ALICE), ("password", PW)], None)
        .await
        .expect(StatusCode::ACCEPTED);
    for path in ["/magic_link", "/confirmation/resend"] {
        for _ in 0..5 {
            site.post(path, &[("email", ALICE)], None)
                .await
                .expect(StatusCode::ACCEPTED);
        }
    }
    auth.background_idle().await;
    auth.flush_mail().await;
    let subjects: Vec<String> = capture.sent().iter().map(|m| m.parsed().subject).collect();
    let count = |s: &str| subjects.iter().filter(|x| *x == s).count();
    assert_eq!(count("Your sign-in link"), 3, "{subjects:?}");
    // The registration's own link, then three resends.
    assert_eq!(count("Confirm your email address"), 4, "{subjects:?}");
}

/// The development outbox: one owner-only `.eml` file per message in an owner-only
/// directory, each a complete MIME message whose link works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_development_outbox_writes_owner_only_eml_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("outbox");
    let auth = Auth::new(
        MemoryStore::new(),
        hardened(Mailer::dev_outbox(&dir, "Example <no-reply@example.com>", PUBLIC_URL).unwrap()),
    )
    .expect("config");
    let site = Site::start(&auth).await;
    for email in [ALICE, "bob@example.com"] {
        site.post("/users", &[("email", email), ("password", PW)], None)
            .await
            .expect(StatusCode::ACCEPTED);
    }
    auth.flush_mail().await;
    let files: Vec<std::path::PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 2, "{files:?}");
    let mut tokens = Vec::new();
    for path in &files {
        assert_eq!(path.extension().unwrap(), "eml");
        let message = Received {
            to: String::new(),
            raw: std::fs::read(path).unwrap(),
        };
        let parsed = message.parsed();
        assert_eq!(parsed.content_type, "multipart/alternative");
        assert_eq!(parsed.subject, "Confirm your email address");
        tokens.push(message.token());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "message files are owner-only");
        }
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "the outbox directory is owner-only");
    }
    for token in tokens {
        site.post("/confirmation", &[("token", &token)], None)
            .await
            .expect(StatusCode::OK);
    }
}

/// A host app's own templates are used, and what they insert into HTML is escaped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_templates_replace_the_defaults() {
    let capture = Capture::default();
    let mut templates = MailTemplates::default();
    templates
        .set(
            "confirm_email.subject.txt",
            "Willkommen bei Beispiel, bitte bestätigen: {{ email }}",
        )
        .unwrap();
    templates
        .set(
            "confirm_email.txt",
            "Bitte bestätigen: {{ link }} ({{ valid_for }})",
        )
        .unwrap();
    templates
        .set(
            "confirm_email.html",
            "<p>Hallo {{ email }}</p><a href=\"{{ link }}\">Bestätigen</a>",
        )
        .unwrap();
    let mailer = Mailer::new(capture.clone(), "no-reply@example.com", PUBLIC_URL)
        .unwrap()
        .templates(templates);
    let auth = Auth::new(MemoryStore::new(), hardened(mailer)).expect("config");
    let email = "o'hara&co@example.com";
    auth.register_user(email, PW).await.expect("register");
    auth.flush_mail().await;
    let message = &capture.wait_for(1).await[0];
    let parsed = message.parsed();
    // A UTF-8 subject, encoded for the header (RFC 2047) and decoded back whole.
    assert_eq!(
        parsed.subject,
        format!("Willkommen bei Beispiel, bitte bestätigen: {email}")
    );
    let raw = String::from_utf8_lossy(&message.raw);
    let subject_line = raw.lines().find(|l| l.starts_with("Subject:")).unwrap();
    assert!(
        subject_line.is_ascii() && subject_line.contains("=?utf-8?"),
        "{subject_line}"
    );
    assert!(
        parsed
            .text
            .starts_with("Bitte bestätigen: https://app.example.com/account/confirmation?token=")
    );
    assert!(
        parsed.text.trim_end().ends_with("(1 day)"),
        "{}",
        parsed.text
    );
    assert!(
        parsed.html.contains("Hallo o&#x27;hara&amp;co@example.com"),
        "{}",
        parsed.html
    );
    auth.confirm_email(&tower_auth::Client::default(), &message.token(), None)
        .await
        .expect("the link works");
}

/// The transport speaks STARTTLS and implicit TLS (certificates checked against a trusted
/// root) and authenticates with the URL's credentials.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_with_starttls_smtps_and_credentials() {
    if !smtp_available() {
        return;
    }
    let openssl = std::process::Command::new("openssl")
        .arg("version")
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !openssl {
        assert!(
            !std::env::var(mail::REQUIRE_SMTP_VAR).is_ok_and(|v| v.trim() == "1"),
            "the TLS test makes its certificates with the openssl command: install it"
        );
        eprintln!("SKIPPED: SMTP TLS test (no openssl command to make certificates)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (ca, cert, key) = test_certificates(tmp.path());
    let ca_pem = std::fs::read(&ca).unwrap();
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
    for mode in ["--starttls", "--smtps"] {
        let dir = tmp.path().join(mode.trim_start_matches('-'));
        let smtp = SmtpServer::start(&dir, &[mode, cert, key, "--auth", "mailer:s3cret"]).await;
        let url = if mode == "--starttls" {
            format!(
                "smtp://mailer:s3cret@127.0.0.1:{}?tls=required",
                smtp.port()
            )
        } else {
            format!("smtps://mailer:s3cret@127.0.0.1:{}", smtp.port())
        };
        let transport = SmtpTransport::from_url_trusting(&url, &ca_pem).expect("transport");
        let auth = Auth::new(
            MemoryStore::new(),
            hardened(Mailer::new(transport, "no-reply@example.com", PUBLIC_URL).unwrap()),
        )
        .expect("config");
        auth.register_user(ALICE, PW).await.expect("register");
        auth.flush_mail().await;
        let received = smtp.wait_for(1).await;
        assert_eq!(
            received[0].parsed().subject,
            "Confirm your email address",
            "{mode}"
        );
        // Without trusting the test CA, the certificate is refused and the mail waits.
        let untrusted = Mailer::smtp(&url, "no-reply@example.com", PUBLIC_URL).unwrap();
        let auth = Auth::new(MemoryStore::new(), hardened(untrusted)).expect("config");
        auth.register_user(ALICE, PW).await.expect("register");
        auth.flush_mail().await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            smtp.received().len(),
            1,
            "{mode}: an untrusted certificate is refused"
        );
    }
    // Wrong credentials: refused, nothing delivered.
    let dir = tmp.path().join("auth");
    let smtp = SmtpServer::start(&dir, &["--auth", "mailer:s3cret"]).await;
    let wrong = format!("smtp://mailer:wrong@127.0.0.1:{}", smtp.port());
    let auth = Auth::new(
        MemoryStore::new(),
        hardened(Mailer::smtp(&wrong, "no-reply@example.com", PUBLIC_URL).unwrap()),
    )
    .expect("config");
    auth.register_user(ALICE, PW).await.expect("register");
    auth.flush_mail().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        smtp.received().is_empty(),
        "wrong credentials deliver nothing"
    );
}

/// A test certificate authority and a certificate for 127.0.0.1 signed by it, made with
/// the `openssl` command.
fn test_certificates(
    dir: &std::path::Path,
) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let path = |name: &str| dir.join(name);
    let run = |args: &[&str]| {
        let status = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .expect("openssl runs");
        assert!(status.success(), "openssl {args:?}");
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=tower-auth test CA",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(
        path("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
    (path("ca.pem"), path("server.pem"), path("server.key"))
}

/// A server that accepts the connection and then says nothing cannot hold delivery: the
/// attempt times out, the message waits, and goes out once a real server answers there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_smtp_server_cannot_hold_delivery() {
    if !smtp_available() {
        return;
    }
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            open.push(socket);
        }
    });
    let url = format!("smtp://127.0.0.1:{port}");
    let mailer = Mailer::smtp(&url, "no-reply@example.com", PUBLIC_URL)
        .unwrap()
        .send_timeout(Duration::from_millis(300));
    let auth = Auth::new(MemoryStore::new(), hardened(mailer)).expect("config");
    auth.register_user(ALICE, PW).await.expect("register");
    // Returns: the attempt gave up after its timeout, and the message was rescheduled.
    tokio::time::timeout(Duration::from_secs(10), auth.flush_mail())
        .await
        .expect("a flush is not held by a silent server");

    held.abort();
    let _ = held.await;
    let dir = tempfile::tempdir().unwrap();
    let smtp = SmtpServer::start_on(port, dir.path(), &[]).await;
    let received = smtp.wait_for(1).await;
    assert_eq!(received[0].parsed().subject, "Confirm your email address");
}
