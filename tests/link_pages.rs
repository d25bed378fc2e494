//! Mailed links work when clicked, with the router nested under a prefix as the quick start
//! mounts it: each link opens a page (a `GET`, which spends nothing) whose form posts the
//! token, and what the flow needs, to the route at the same path.

#[path = "support/http.rs"]
mod http_support;
#[path = "support/mail.rs"]
mod mail;

use std::net::SocketAddr;

use axum::Router;
use mail::Capture;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tower_auth::{Auth, AuthConfig, Mailer, MemoryStore};

const PW: &str = "correct horse battery staple";
const NEW_PW: &str = "a brand new passphrase, long enough";
const ALICE: &str = "alice@example.com";

struct Site {
    auth: Auth,
    mail: Capture,
    base: String,
    http: reqwest::Client,
    session: Option<String>,
}

impl Site {
    /// The router nested under `/auth`, links pointing there, as the quick start has it.
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let mail = Capture::default();
        let mailer =
            Mailer::new(mail.clone(), "app@example.com", &format!("{base}/auth")).expect("mailer");
        let mut config = AuthConfig::hardened_with(mailer);
        config.bcrypt_cost = 4;
        config.cookie.secure = false;
        config.cookie.name = "session_id".into();
        config.trusted_device_cookie = None;
        let auth = Auth::new(MemoryStore::new(), config).expect("config");
        let app = Router::new()
            .nest("/auth", auth.router())
            .layer(auth.layer());
        tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .expect("serve");
        });
        Self {
            auth,
            mail,
            base,
            http: http_support::client(),
            session: None,
        }
    }

    async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> (StatusCode, Value) {
        self.post_to(&format!("{}{path}", self.base), fields).await
    }

    async fn post_to(&mut self, url: &str, fields: &[(&str, &str)]) -> (StatusCode, Value) {
        let mut request = self
            .http
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("origin", &self.base)
            .body(http_support::form(fields));
        if let Some(session) = &self.session {
            request = request.header("cookie", format!("session_id={session}"));
        }
        let response = request.send().await.expect("post");
        if let Some(session) =
            http_support::session_cookie_value(&http_support::set_cookies(&response))
        {
            self.session = Some(session);
        }
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// The link in the newest message to `to`, once delivered.
    async fn link_to(&self, to: &str) -> String {
        self.auth.flush_mail().await;
        let message = self.mail.sent_to(to).pop().expect("a message");
        let text = message.parsed().text;
        let start = text.find("http").expect("a link");
        text[start..]
            .split_whitespace()
            .next()
            .expect("a link")
            .to_owned()
    }

    /// Opens `link` as a browser does, and submits the page's form with `typed` filled in:
    /// the form's hidden fields are read from the page, and it posts to the page's own URL.
    async fn click(&mut self, link: &str, typed: &[(&str, &str)]) -> (StatusCode, Value) {
        let page = self.http.get(link).send().await.expect("open the link");
        assert_eq!(page.status(), StatusCode::OK, "{link}");
        let headers = page.headers().clone();
        assert_eq!(headers["content-type"], "text/html; charset=utf-8");
        assert_eq!(
            headers["referrer-policy"], "no-referrer",
            "the URL holds the token"
        );
        assert!(
            headers["content-security-policy"]
                .to_str()
                .expect("ASCII")
                .contains("frame-ancestors 'none'")
        );
        let html = page.text().await.expect("page");
        assert!(
            html.contains("<form method=\"post\">"),
            "posts to its own URL: {html}"
        );
        let mut fields: Vec<(String, String)> = Vec::new();
        for input in html.split("<input type=\"hidden\" ").skip(1) {
            let attr = |name: &str| {
                let start = input.find(&format!("{name}=\"")).expect("attribute") + name.len() + 2;
                input[start..].split('"').next().expect("value").to_owned()
            };
            fields.push((attr("name"), attr("value")));
        }
        for (name, value) in typed {
            assert!(
                html.contains(&format!("name=\"{name}\"")),
                "{name} on {html}"
            );
            fields.push(((*name).to_owned(), (*value).to_owned()));
        }
        let borrowed: Vec<(&str, &str)> = fields
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        self.post_to(link, &borrowed).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mailed_link_works_when_clicked_under_a_prefix() {
    let mut site = Site::start().await;
    let (status, _) = site
        .post("/auth/users", &[("email", ALICE), ("password", PW)])
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);

    let link = site.link_to(ALICE).await;
    assert!(link.starts_with(&format!("{}/auth/confirmation?token=", site.base)));
    let (status, body) = site.click(&link, &[("password", PW)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"email": ALICE, "message": "email confirmed", "password_kept": true})
    );

    let (status, _) = site.post("/auth/magic_link", &[("email", ALICE)]).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let link = site.link_to(ALICE).await;
    assert!(link.contains("/auth/sessions/magic?token="), "{link}");
    let (status, body) = site.click(&link, &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        site.session.is_some(),
        "the magic link logged this browser in"
    );

    let (status, _) = site
        .post("/auth/email", &[("new_email", "alice@example.org")])
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let link = site.link_to("alice@example.org").await;
    assert!(link.contains("/auth/email/confirm?token="), "{link}");
    let (status, body) = site.click(&link, &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["email"], "alice@example.org");

    let (status, _) = site
        .post("/auth/reset_password", &[("email", "alice@example.org")])
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let link = site.link_to("alice@example.org").await;
    assert!(link.contains("/auth/reset_password?token="), "{link}");
    let (status, body) = site.click(&link, &[("new_password", NEW_PW)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["message"], "Password updated");
    site.session = None;
    let (status, _) = site
        .post(
            "/auth/sessions",
            &[("email", "alice@example.org"), ("password", NEW_PW)],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_page_escapes_what_it_shows_and_spends_nothing() {
    let site = Site::start().await;
    let page = site
        .http
        .get(format!(
            "{}/auth/confirmation?token=%22%3E%3Cscript%3Ealert(1)%3C/script%3E",
            site.base
        ))
        .send()
        .await
        .expect("page");
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.expect("page");
    assert!(!html.contains("<script>"), "{html}");
    assert!(html.contains("&lt;script&gt;"), "{html}");
    for path in [
        "/auth/confirmation",
        "/auth/sessions/magic?token=",
        "/auth/reset_password",
    ] {
        let incomplete = site
            .http
            .get(format!("{}{path}", site.base))
            .send()
            .await
            .expect("page");
        assert_eq!(incomplete.status(), StatusCode::BAD_REQUEST, "{path}");
    }
}
