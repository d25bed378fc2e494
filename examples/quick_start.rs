use std::net::SocketAddr;

use axum::{Router, routing::get};
use tower_auth::{Auth, AuthConfig, CurrentUser, Mailer, MaybeUser};

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
    let app = Router::new()
        .route(
            "/",
            get(|MaybeUser(user): MaybeUser| async move {
                format!("hello, {}\n", user.map_or("stranger".into(), |u| u.email))
            }),
        )
        .route(
            "/me",
            get(|CurrentUser(user): CurrentUser| async move { user.email }),
        )
        .nest("/auth", auth.router()) // POST /auth/users, POST /auth/sessions, ...
        .layer(auth.layer());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    // With the client's address, so that login throttling counts per client too.
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await?;
    Ok(())
}
