//! The sign-in provider routes of the router: starting a sign-in (or a link) redirects to
//! the provider; its callback redirects to where the sign-in asked to go, or answers JSON
//! with what went wrong (4xx, or 503 while the provider cannot be reached).

use axum::extract::{Path, Query, Request, State};
use axum::response::{IntoResponse, Response};
use http::{StatusCode, header};
use serde::Deserialize;
use serde_json::json;

use super::{ok_json, ok_message, reject};
use crate::auth::{Auth, AuthError, ProviderCallback, ProviderRedirect, ProviderSignIn};
use crate::http::extract::AuthRejection;
use crate::http::layer::AuthContext;

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct Next {
    next: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// `303 See Other` to `location`, with `cookie`.
fn see_other(location: &str, cookie: crate::SessionCookie) -> Result<Response, AuthRejection> {
    let location = http::HeaderValue::try_from(location)
        .map_err(|_| AuthRejection::from(AuthError::ProviderUnavailable))?;
    Ok((
        cookie,
        (StatusCode::SEE_OTHER, [(header::LOCATION, location)]),
    )
        .into_response())
}

fn to_provider(redirect: ProviderRedirect) -> Result<Response, AuthRejection> {
    see_other(&redirect.location, redirect.cookie)
}

/// `GET /oidc/providers`: `{"providers": [{"id", "name"}]}`, for "Sign in with" buttons.
pub(super) async fn list_providers(State(auth): State<Auth>) -> Response {
    let providers: Vec<_> = auth
        .config()
        .providers
        .iter()
        .flat_map(|config| &config.providers)
        .map(|p| json!({ "id": p.id, "name": p.display_name }))
        .collect();
    ok_json(&auth, StatusCode::OK, &json!({ "providers": providers }))
}

/// `GET /oidc/{provider}/start?next=/path`: to the provider.
pub(super) async fn start(
    State(auth): State<Auth>,
    Path(provider): Path<String>,
    Query(query): Query<Next>,
) -> Result<Response, AuthRejection> {
    let redirect = auth
        .start_provider_sign_in(&provider, query.next.as_deref())
        .await
        .map_err(|e| reject(&auth, e))?;
    to_provider(redirect)
}

/// `POST /oidc/{provider}/link?next=/path` `password`: to the provider, to link an
/// identity to the session's account.
pub(super) async fn link(
    State(auth): State<Auth>,
    context: AuthContext,
    Path(provider): Path<String>,
    Query(query): Query<Next>,
    req: Request,
) -> Result<Response, AuthRejection> {
    let form = super::Form::read(&auth, req).await?;
    let redirect = auth
        .start_provider_link(
            &context.client(),
            &provider,
            query.next.as_deref(),
            form.optional("password"),
        )
        .await
        .map_err(|e| reject(&auth, e))?;
    to_provider(redirect)
}

/// `GET /oidc/{provider}/callback?code&state` (or `?error&state`).
pub(super) async fn callback(
    State(auth): State<Auth>,
    context: AuthContext,
    Path(provider): Path<String>,
    Query(query): Query<Callback>,
) -> Result<Response, AuthRejection> {
    let state_cookie = auth
        .config()
        .providers
        .as_ref()
        .and_then(|config| context.cookie(&config.state_cookie))
        .unwrap_or_default();
    let callback = ProviderCallback {
        code: query.code.as_deref(),
        state: query.state.as_deref(),
        error: query.error.as_deref(),
    };
    let forget_state = auth
        .config()
        .providers
        .as_ref()
        .and_then(|config| auth.forget_cookie(&config.state_cookie));
    let outcome = auth
        .finish_provider_sign_in(&context.client(), &provider, &state_cookie, callback)
        .await
        .map_err(|e| reject(&auth, e))?;
    match outcome {
        ProviderSignIn::LoggedIn { logged_in, next } => {
            see_other(&next, logged_in.cookie.with(forget_state))
        }
        ProviderSignIn::Linked { next } => match forget_state {
            Some(cookie) => see_other(&next, cookie),
            None => Err(reject(&auth, AuthError::ProviderUnavailable)),
        },
    }
}

/// `GET /identities`: `{"identities": [{"id", "provider", "email", "created_at_ms"}]}`.
pub(super) async fn list(
    State(auth): State<Auth>,
    context: AuthContext,
) -> Result<Response, AuthRejection> {
    let identities = auth
        .identities(&context.client())
        .await
        .map_err(|e| reject(&auth, e))?;
    Ok(ok_json(
        &auth,
        StatusCode::OK,
        &json!({ "identities": identities }),
    ))
}

/// `DELETE /identities/{id}` (sudo; never the account's last way in).
pub(super) async fn unlink(
    State(auth): State<Auth>,
    context: AuthContext,
    Path(id): Path<String>,
    _req: Request,
) -> Result<Response, AuthRejection> {
    let id: i64 = id
        .parse()
        .map_err(|_| reject(&auth, AuthError::NoSecondFactor))?;
    auth.unlink_identity(&context.client(), id)
        .await
        .map_err(|e| reject(&auth, e))?;
    Ok(ok_message(&auth, "identity unlinked"))
}
