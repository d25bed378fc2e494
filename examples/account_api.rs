use std::net::SocketAddr;

use axum::routing::{get, put};
use axum::{Json, Router};
use serde::Deserialize;
use tower_auth::{Auth, AuthConfig, AuthContext, AuthRejection, Mailer};

/// A JSON "account settings" API of the host app's own, on the crate's flows.
pub fn app(auth: &Auth) -> Router {
    Router::new()
        .route("/account/devices", get(devices))
        .route("/account/password", put(change_password))
        .layer(auth.same_origin_layer())
        .nest("/auth", auth.router())
        .layer(auth.layer())
}

/// Where am I logged in? Each session's public handle, device and last use.
async fn devices(context: AuthContext) -> Result<Json<serde_json::Value>, AuthRejection> {
    let auth = context.auth();
    let sessions = context.sessions().await.map_err(|e| auth.rejection(e))?;
    let devices: Vec<_> = sessions
        .iter()
        .map(|s| {
            serde_json::json!({
                "id": s.id,
                "device": s.user_agent,
                "this_device": s.current,
                "last_seen": s.last_seen_at.unix_timestamp(),
            })
        })
        .collect();
    Ok(Json(serde_json::json!({ "devices": devices })))
}

#[derive(Deserialize)]
struct PasswordChange {
    current_password: String,
    new_password: String,
}

/// Checks the current password (throttled like a login), stores the new hash, and ends
/// every other session of the user; this one stays logged in.
async fn change_password(
    context: AuthContext,
    Json(change): Json<PasswordChange>,
) -> Result<Json<serde_json::Value>, AuthRejection> {
    let user = context
        .change_password(&change.current_password, &change.new_password)
        .await
        .map_err(|e| context.auth().rejection(e))?;
    Ok(Json(
        serde_json::json!({ "email": user.email, "signed_out_elsewhere": true }),
    ))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Mail (confirmation links, resets) goes to ./outbox as .eml files while developing;
    // `Mailer::smtp("smtp://...", from, public_url)` sends it for real.
    let mailer = Mailer::dev_outbox("outbox", "app@localhost", "http://localhost:3000/auth")?;
    let auth = Auth::connect(
        "sqlite://app.db?mode=rwc",
        AuthConfig::hardened_with(mailer),
    )
    .await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    axum::serve(
        listener,
        app(&auth).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await?;
    Ok(())
}
