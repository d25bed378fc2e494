//! The pages a mailed link opens. A link is a `GET` with its token in the query; the routes
//! that spend a token are `POST`s (so that a mail scanner opening links spends nothing). Each
//! page is a small form that posts the token, and what the flow needs besides (the password
//! that keeps a confirmed account's password, a new password), to the route at the same
//! path, so the links work wherever the router is mounted. Applications with pages of
//! their own point [`Mailer::link_path`](crate::Mailer::link_path) at them instead.

use std::sync::LazyLock;

use axum::extract::Query;
use axum::response::{Html, IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use minijinja::{Environment, context};
use serde::Deserialize;

/// The one template, autoescaped (its name ends in `.html`).
static PAGES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    // A template of ours that does not parse is a bug caught by the tests.
    let _ = env.add_template("link.html", include_str!("link_page.html"));
    env
});

/// What a link carries.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct LinkQuery {
    token: String,
    email: String,
}

/// A password field of a page.
#[derive(serde::Serialize)]
struct Field {
    name: &'static str,
    label: &'static str,
    autocomplete: &'static str,
    required: bool,
}

/// What one page says and asks for.
struct Page {
    heading: &'static str,
    explanation: &'static str,
    button: &'static str,
    fields: Vec<Field>,
    /// Hidden fields besides the token: the reset form's email.
    with_email: bool,
    /// The name the route takes the token by.
    token_field: &'static str,
}

fn render(page: &Page, link: &LinkQuery) -> Response {
    if link.token.is_empty() {
        return (
            StatusCode::BAD_REQUEST,
            "this link is incomplete: open the whole link from the message",
        )
            .into_response();
    }
    let mut hidden = vec![(page.token_field, link.token.as_str())];
    if page.with_email {
        hidden.push(("email", link.email.as_str()));
    }
    let html = PAGES.get_template("link.html").and_then(|t| {
        t.render(context! {
            heading => page.heading,
            explanation => page.explanation,
            button => page.button,
            fields => &page.fields,
            hidden => hidden,
        })
    });
    let Ok(html) = html else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let mut response = Html(html).into_response();
    let headers = response.headers_mut();
    // The page's URL holds the token: no other site is told it, and none may frame it.
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; \
             frame-ancestors 'none'",
        ),
    );
    response
}

/// `GET /confirmation?token=`: confirms the address; the password keeps it.
pub(super) async fn confirmation(Query(link): Query<LinkQuery>) -> Response {
    render(
        &Page {
            heading: "Confirm your email address",
            explanation: "Enter the password you registered with to keep it. If you did not \
                          register, leave it empty: the address is confirmed and a password \
                          set by someone else is removed; choose one with a reset link.",
            button: "Confirm",
            fields: vec![Field {
                name: "password",
                label: "Password",
                autocomplete: "current-password",
                required: false,
            }],
            with_email: false,
            token_field: "token",
        },
        &link,
    )
}

/// `GET /sessions/magic?token=`: logs in.
pub(super) async fn magic_link(Query(link): Query<LinkQuery>) -> Response {
    render(
        &Page {
            heading: "Sign in",
            explanation: "This link signs you in once, on this browser.",
            button: "Sign me in",
            fields: Vec::new(),
            with_email: false,
            token_field: "token",
        },
        &link,
    )
}

/// `GET /email/confirm?token=`: moves the account to the new address.
pub(super) async fn email_change(Query(link): Query<LinkQuery>) -> Response {
    render(
        &Page {
            heading: "Confirm your new email address",
            explanation: "Your account will use this address from now on.",
            button: "Use this address",
            fields: Vec::new(),
            with_email: false,
            token_field: "token",
        },
        &link,
    )
}

/// `GET /reset_password?token=&email=`: a new password.
pub(super) async fn reset(Query(link): Query<LinkQuery>) -> Response {
    render(
        &Page {
            heading: "Choose a new password",
            explanation: "Every session, link and remembered device of the account ends.",
            button: "Set the password",
            fields: vec![Field {
                name: "new_password",
                label: "New password",
                autocomplete: "new-password",
                required: true,
            }],
            with_email: true,
            token_field: "reset_token",
        },
        &link,
    )
}
