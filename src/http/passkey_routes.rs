//! The passkey routes of the router (form in, JSON out): ceremonies answer their options
//! with the ceremony's cookie; the browser's answer comes back as the `credential` (or, at
//! the second step, `passkey`) field, the JSON of its `PublicKeyCredential`.

use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::json;

use super::{Form, logged_in_answer, ok_json, ok_message, reject};
use crate::auth::{Auth, AuthError, PasskeyChallenge};
use crate::http::extract::AuthRejection;
use crate::http::layer::AuthContext;

/// `{"publicKey": ...}` and the ceremony cookie.
fn challenge_answer(auth: &Auth, challenge: PasskeyChallenge) -> Response {
    (
        challenge.cookie,
        ok_json(auth, StatusCode::OK, &challenge.options),
    )
        .into_response()
}

/// A passkey id from the path (an unknown one is simply not the user's).
fn passkey_id(id: &str) -> Result<i64, AuthError> {
    id.parse().map_err(|_| AuthError::NoSecondFactor)
}

/// `GET /passkeys`: `{"passkeys": [{"id", "name", "created_at_ms", "last_used_ms"}]}`.
pub(super) async fn list(
    State(auth): State<Auth>,
    context: AuthContext,
) -> Result<Response, AuthRejection> {
    let keys = auth
        .passkeys(&context.client())
        .await
        .map_err(|e| reject(&auth, e))?;
    Ok(ok_json(&auth, StatusCode::OK, &json!({ "passkeys": keys })))
}

/// `POST /passkeys/register/start` `password`: creation options.
pub(super) async fn start_registration(
    State(auth): State<Auth>,
    context: AuthContext,
    req: Request,
) -> Result<Response, AuthRejection> {
    let form = Form::read(&auth, req).await?;
    let challenge = auth
        .start_passkey_registration(&context.client(), form.optional("password"))
        .await
        .map_err(|e| reject(&auth, e))?;
    Ok(challenge_answer(&auth, challenge))
}

/// `POST /passkeys/register` (sudo): `credential`, optional `name`; `201 {"passkey",
/// "recovery_codes"}` (codes only when the account had none).
pub(super) async fn finish_registration(
    State(auth): State<Auth>,
    context: AuthContext,
    req: Request,
) -> Result<Response, AuthRejection> {
    let form = Form::read(&auth, req).await?;
    let ceremony = context.passkey_ceremony().unwrap_or_default();
    let added = auth
        .finish_passkey_registration(
            &context.client(),
            &ceremony,
            form.required(&auth, "credential")?,
            form.optional("name").unwrap_or_default(),
        )
        .await
        .map_err(|e| reject(&auth, e))?;
    Ok(ok_json(
        &auth,
        StatusCode::CREATED,
        &json!({ "passkey": added.passkey, "recovery_codes": added.recovery_codes }),
    ))
}

/// `PUT /passkeys/{id}`: `name`.
pub(super) async fn rename(
    State(auth): State<Auth>,
    context: AuthContext,
    Path(id): Path<String>,
    req: Request,
) -> Result<Response, AuthRejection> {
    let form = Form::read(&auth, req).await?;
    let id = passkey_id(&id).map_err(|e| reject(&auth, e))?;
    auth.rename_passkey(&context.client(), id, form.required(&auth, "name")?)
        .await
        .map_err(|e| reject(&auth, e))?;
    Ok(ok_message(&auth, "passkey renamed"))
}

/// `DELETE /passkeys/{id}` `password`.
pub(super) async fn remove(
    State(auth): State<Auth>,
    context: AuthContext,
    Path(id): Path<String>,
    req: Request,
) -> Result<Response, AuthRejection> {
    let form = Form::read(&auth, req).await?;
    let id = passkey_id(&id).map_err(|e| reject(&auth, e))?;
    auth.delete_passkey(&context.client(), id, form.optional("password"))
        .await
        .map_err(|e| reject(&auth, e))?;
    Ok(ok_message(&auth, "passkey removed"))
}

/// `POST /sessions/passkey/start`: request options for a login with a passkey alone.
pub(super) async fn start_login(State(auth): State<Auth>) -> Result<Response, AuthRejection> {
    let challenge = auth.start_passkey_login().map_err(|e| reject(&auth, e))?;
    Ok(challenge_answer(&auth, challenge))
}

/// `POST /sessions/passkey`: `credential`, optional `remember_me`; answers as
/// `POST /sessions`.
pub(super) async fn finish_login(
    State(auth): State<Auth>,
    context: AuthContext,
    req: Request,
) -> Result<Response, AuthRejection> {
    let form = Form::read(&auth, req).await?;
    let ceremony = context.passkey_ceremony().unwrap_or_default();
    let logged_in = auth
        .finish_passkey_login(
            &context.client(),
            &ceremony,
            form.required(&auth, "credential")?,
            form.flag("remember_me"),
        )
        .await
        .map_err(|e| reject(&auth, e))?;
    Ok(logged_in_answer(&auth, logged_in))
}

/// `POST /sessions/second_factor/passkey/start`: request options for the pending login's
/// passkeys; finish with `POST /sessions/second_factor` and `passkey`.
pub(super) async fn start_second_factor(
    State(auth): State<Auth>,
    context: AuthContext,
) -> Result<Response, AuthRejection> {
    let pending = context.pending_login().unwrap_or_default();
    let challenge = auth
        .start_passkey_second_factor(&pending)
        .await
        .map_err(|e| reject(&auth, e))?;
    Ok(challenge_answer(&auth, challenge))
}
