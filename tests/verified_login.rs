//! The protected login for users an application verified by means of its own (an invite
//! link, a PIN, single sign-on), over real HTTP through a host app's handler: the
//! presented session ends, the new one records the client and the method, unconfirmed
//! emails wait when the config says so, failures count toward the account's throttle, and
//! an enrolled second factor is still asked for.

#[path = "support/http.rs"]
mod http_support;
#[path = "support/totp.rs"]
mod totp;

use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use http_support::{Answer, TestServer, serve};
use reqwest::StatusCode;
use serde_json::json;
use totp::totp_now;
use tower_auth::second_factor::{SecondFactorConfig, SecondFactorKey};
use tower_auth::{
    Auth, AuthContext, AuthError, AuthMethod, Client, LoginAttempt, MemoryStore, UserId, Verified,
};

const PW: &str = "correct horse battery staple";
const SESSION: &str = "__Host-session_id";

/// A host app: `POST /invite/{user}/{pin}` logs the user in when the PIN is 4242 (its own
/// check), and counts a wrong one.
fn app(auth: &Auth) -> Router {
    async fn invite(context: AuthContext, Path((user, pin)): Path<(i64, String)>) -> Response {
        if pin != "4242" {
            return match context.note_failed_verification(UserId(user)).await {
                Ok(()) => StatusCode::UNAUTHORIZED.into_response(),
                Err(e) => context.auth().rejection(e).into_response(),
            };
        }
        match context
            .log_in_verified(UserId(user), Verified::by(AuthMethod::App))
            .await
        {
            Ok(logged_in) => (
                logged_in.cookie,
                Json(json!({ "methods": logged_in.methods })),
            )
                .into_response(),
            Err(e) => context.auth().rejection(e).into_response(),
        }
    }
    Router::new()
        .route("/invite/{user}/{pin}", post(invite))
        .layer(auth.layer())
        .merge(auth.router())
}

async fn start(tweak: impl FnOnce(&mut tower_auth::AuthConfig)) -> (Auth, TestServer) {
    let mut config = http_support::hardened_config();
    tweak(&mut config);
    let auth = Auth::new(MemoryStore::new(), config).expect("valid config");
    let server = serve(app(&auth)).await;
    (auth, server)
}

async fn invite(server: &TestServer, user: UserId, pin: &str, session: Option<&str>) -> Answer {
    let mut request = http_support::client()
        .post(server.url(&format!("/invite/{}/{pin}", user.0)))
        .header(
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
        );
    if let Some(session) = session {
        request = request.header("cookie", format!("{SESSION}={session}"));
    }
    Answer::read(request.send().await.expect("request")).await
}

fn session_of(answer: &Answer) -> String {
    answer
        .set_cookies
        .iter()
        .find_map(|c| c.split(';').next()?.strip_prefix(&format!("{SESSION}=")))
        .expect("a session cookie")
        .to_owned()
}

#[tokio::test]
async fn a_verified_login_rotates_the_session_and_records_the_client_and_method() {
    let (auth, server) = start(|_| {}).await;
    let user = auth
        .register_user("ivy@example.com", PW)
        .await
        .expect("register");
    let first = invite(&server, user.id, "4242", None).await;
    first.expect(StatusCode::OK);
    assert_eq!(first.body["methods"], json!(["app"]));
    let old = session_of(&first);
    let second = invite(&server, user.id, "4242", Some(&old)).await;
    second.expect(StatusCode::OK);
    let new = session_of(&second);
    assert_ne!(old, new);
    assert!(
        auth.get_user_from_session_id(Some(&old))
            .await
            .unwrap()
            .is_none(),
        "the presented session ends (fixation)"
    );
    let sessions = auth
        .list_my_sessions(&Client::new(None).session(Some(&new)))
        .await
        .expect("sessions");
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].client_ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(
        sessions[0].user_agent.as_deref(),
        Some("Firefox 133 on Linux")
    );
    assert!(sessions[0].methods.contains(AuthMethod::App));
    // Authenticated just now: sudo mode holds.
    auth.require_recent_authentication(&Client::new(None).session(Some(&new)))
        .await
        .expect("recent");
    // An unknown user is a 404, not a session.
    invite(&server, UserId(999_999), "4242", None)
        .await
        .expect(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn failures_throttle_and_unconfirmed_emails_wait() {
    let (auth, server) = start(|config| config.require_confirmed_email = true).await;
    let user = auth
        .register_user("ivy@example.com", PW)
        .await
        .expect("register");
    invite(&server, user.id, "4242", None)
        .await
        .expect(StatusCode::FORBIDDEN);
    for _ in 0..10 {
        invite(&server, user.id, "0000", None)
            .await
            .expect(StatusCode::UNAUTHORIZED);
    }
    let throttled = invite(&server, user.id, "4242", None).await;
    throttled.expect(StatusCode::TOO_MANY_REQUESTS);
    assert!(throttled.retry_after.is_some());
    // The password login of the same account is throttled by the same failures.
    let by_password = auth
        .log_in(&Client::default(), LoginAttempt::new("ivy@example.com", PW))
        .await;
    assert!(
        matches!(by_password, Err(AuthError::Throttled { .. })),
        "{by_password:?}"
    );
}

#[tokio::test]
async fn an_enrolled_second_factor_is_still_asked_for() {
    let (auth, server) = start(|config| {
        config.second_factors = Some(SecondFactorConfig::new(
            SecondFactorKey::from_bytes([5; 32]),
            "Example",
        ));
    })
    .await;
    let user = auth
        .register_user("ivy@example.com", PW)
        .await
        .expect("register");
    let logged_in = auth
        .log_in(&Client::default(), LoginAttempt::new("ivy@example.com", PW))
        .await
        .expect("login");
    let client = Client::new(None).session(Some(&logged_in.session_id));
    let enrolment = auth
        .start_totp_enrolment(&client, Some(PW))
        .await
        .expect("enrol");
    let code = totp_now(&enrolment.secret);
    auth.confirm_totp(&client, &code).await.expect("confirm");

    let answer = invite(&server, user.id, "4242", None).await;
    answer.expect(StatusCode::UNAUTHORIZED);
    assert_eq!(answer.body["message"], json!("second factor required"));
    assert!(
        answer.set_cookies.iter().all(|c| !c.starts_with(SESSION)),
        "no session before the second factor"
    );
    assert!(
        answer
            .set_cookies
            .iter()
            .any(|c| c.starts_with("__Host-second_factor="))
    );
}
