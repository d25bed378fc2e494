//! The seed's user authentication service, served by tower-auth.
//!
//! ```sh
//! cargo run --example spec_server                     # 0.0.0.0:5000, SQLite a.db, bcrypt cost 12
//! cargo run --example spec_server -- --help           # every flag (each has an env fallback)
//! cargo run --example spec_server -- --database-url postgres://user:pw@localhost/db
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use clap::{Parser, ValueEnum};
use tower::Layer as _;
use tower_auth::mail::SmtpTransport;
use tower_auth::password::{Argon2Params, HashAlgorithm};
use tower_auth::seed::MergeSlashesLayer;
use tower_auth::serve::{ConnectionLimits, serve};
use tower_auth::{Auth, AuthConfig, Mailer, ResetDelivery};

/// Which preset to start from; the flags below override single fields.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Preset {
    /// The seed's behaviour (AuthConfig::spec()).
    Spec,
    /// Hardened defaults (AuthConfig::default()).
    Hardened,
}

/// The seed's auth server: register, log in, log out, profile, password reset.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "AUTH_BIND", default_value = "0.0.0.0:5000")]
    bind: SocketAddr,
    /// Database: sqlite://FILE?mode=rwc, postgres://USER:PASS@HOST/DB, or memory:
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://a.db?mode=rwc")]
    database_url: String,
    /// bcrypt cost for new password hashes.
    #[arg(long, env = "AUTH_BCRYPT_COST", default_value_t = 12)]
    bcrypt_cost: u32,
    /// Algorithm for new password hashes (stored hashes of either verify, and are upgraded
    /// at the next login).
    #[arg(long, env = "AUTH_HASH_ALGORITHM", value_enum, default_value_t = Algorithm::Bcrypt)]
    hash_algorithm: Algorithm,
    /// argon2id memory per hash, in KiB (default: OWASP's minimum, 19456).
    #[arg(long, env = "AUTH_ARGON2_MEMORY_KIB")]
    argon2_memory_kib: Option<u32>,
    /// argon2id passes (default 2).
    #[arg(long, env = "AUTH_ARGON2_PASSES")]
    argon2_passes: Option<u32>,
    /// Most memory argon2id hashing may hold at once, in MiB (default 256).
    #[arg(long, env = "AUTH_HASH_MEMORY_BUDGET_MIB")]
    hash_memory_budget_mib: Option<u64>,
    /// Drop and recreate the tables at start, as the seed's DB() does.
    #[arg(long, env = "AUTH_FRESH")]
    fresh: bool,
    /// Behaviour preset.
    #[arg(long, env = "AUTH_PRESET", value_enum, default_value_t = Preset::Spec)]
    preset: Preset,
    /// Mail through the SMTP server at URL (`smtp://host:25`, `smtp://user:pass@host:587?tls=required`
    /// for STARTTLS, `smtps://host:465`): reset links, confirmations, magic links, email
    /// changes. Also turns on the email routes.
    #[arg(long, env = "AUTH_SMTP_URL", conflicts_with = "mail_dir")]
    smtp_url: Option<String>,
    /// With --smtp-url: also trust this PEM certificate (a private CA, a test server's).
    #[arg(long, env = "AUTH_SMTP_CA_FILE", requires = "smtp_url")]
    smtp_ca_file: Option<PathBuf>,
    /// Write each mail as an owner-only .eml file in DIR (the development outbox) instead
    /// of sending it. Also turns on the email routes.
    #[arg(long, env = "AUTH_MAIL_DIR")]
    mail_dir: Option<PathBuf>,
    /// The sender of every mail.
    #[arg(
        long,
        env = "AUTH_MAIL_FROM",
        default_value = "tower-auth <no-reply@localhost>"
    )]
    mail_from: String,
    /// Where the links in mail point: the app's public URL.
    #[arg(long, env = "AUTH_PUBLIC_URL", default_value = "http://localhost:5000")]
    public_url: String,
    /// Refuse logins until the email is confirmed (hardened default; needs mail).
    #[arg(long, overrides_with = "no_require_confirmed_email")]
    require_confirmed_email: bool,
    /// Let unconfirmed accounts log in (spec default).
    #[arg(long, overrides_with = "require_confirmed_email")]
    no_require_confirmed_email: bool,
    /// Longest wait between two delivery attempts of one mail, in seconds (default 600).
    #[arg(long, env = "AUTH_MAIL_RETRY_MAX")]
    mail_retry_max: Option<u64>,
    /// Seconds of inactivity after which a session ends.
    #[arg(long, env = "AUTH_SESSION_IDLE_TIMEOUT")]
    session_idle_timeout: Option<u64>,
    /// Seconds after which a session ends, used or not.
    #[arg(long, env = "AUTH_SESSION_LIFETIME")]
    session_lifetime: Option<u64>,
    /// Seconds a reset token stays valid.
    #[arg(long, env = "AUTH_RESET_TOKEN_TTL")]
    reset_token_ttl: Option<u64>,
    /// Failed logins per account (per window) before 429 (at least 1).
    #[arg(long, env = "AUTH_MAX_LOGIN_FAILURES")]
    max_login_failures: Option<u32>,
    /// Failed logins per client IP (per window) before 429 (at least 1).
    #[arg(long, env = "AUTH_MAX_LOGIN_FAILURES_PER_IP")]
    max_login_failures_per_ip: Option<u32>,
    /// Seconds of the login-failure window.
    #[arg(long, env = "AUTH_LOGIN_FAILURE_WINDOW")]
    login_failure_window: Option<u64>,
    /// Most reset tokens sent per account per hour (with mail).
    #[arg(long, env = "AUTH_MAX_RESET_REQUESTS_PER_HOUR")]
    max_reset_requests_per_hour: Option<u32>,
    /// Most registrations per client address per hour (hardened default: 20).
    #[arg(long, env = "AUTH_MAX_REGISTRATIONS_PER_IP")]
    max_registrations_per_ip: Option<u32>,
    /// Most reset requests per client address per hour (hardened default: 20).
    #[arg(long, env = "AUTH_MAX_RESET_REQUESTS_PER_IP")]
    max_reset_requests_per_ip: Option<u32>,
    /// Concurrent password hashes (default: the number of cores).
    #[arg(long, env = "AUTH_HASH_PERMITS")]
    hash_permits: Option<usize>,
    /// Hash jobs allowed to wait before requests get 503.
    #[arg(long, env = "AUTH_HASH_QUEUE")]
    hash_queue: Option<usize>,
    /// Most session lookups kept in memory (default 10000; 0 turns the cache off).
    #[arg(long, env = "AUTH_SESSION_CACHE_CAPACITY")]
    session_cache_capacity: Option<usize>,
    /// Send the session cookie with `Secure` (true in the hardened preset); set false to try
    /// the hardened preset over plain HTTP.
    #[arg(long, env = "AUTH_COOKIE_SECURE")]
    cookie_secure: Option<bool>,
    /// How many reverse proxies in front of the server append to X-Forwarded-For (0: the
    /// header is ignored and the TCP peer is the client).
    #[arg(long, env = "AUTH_TRUSTED_PROXIES", default_value_t = 0)]
    trusted_proxies: usize,
    /// The app's public origin (scheme://host[:port]); writes must come from it.
    #[arg(long, env = "AUTH_PUBLIC_ORIGIN")]
    public_origin: Option<String>,
    /// Most connections open at once (0: no limit).
    #[arg(long, env = "AUTH_MAX_CONNECTIONS", default_value_t = 1024)]
    max_connections: usize,
    /// Most connections open at once from one client address (0: no limit).
    #[arg(long, env = "AUTH_MAX_CONNECTIONS_PER_IP", default_value_t = 64)]
    max_connections_per_ip: usize,
    /// Seconds a connection has to send a request head (also how long an idle keep-alive
    /// connection stays open).
    #[arg(long, env = "AUTH_HEADER_READ_TIMEOUT", default_value_t = 10)]
    header_read_timeout: u64,
    /// Seconds a request body has to arrive whole (else 408).
    #[arg(long, env = "AUTH_BODY_READ_TIMEOUT")]
    body_read_timeout: Option<u64>,
    /// An origin allowed to send state-changing requests (repeatable).
    #[arg(
        long = "allowed-origin",
        env = "AUTH_ALLOWED_ORIGINS",
        value_delimiter = ','
    )]
    allowed_origins: Vec<String>,
}

/// The algorithm for new password hashes.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Algorithm {
    /// bcrypt at --bcrypt-cost (the seed's).
    Bcrypt,
    /// argon2id with --argon2-memory-kib and --argon2-passes.
    Argon2id,
}

impl Args {
    fn config(&self) -> Result<AuthConfig, Box<dyn std::error::Error>> {
        let mut config = match self.preset {
            Preset::Spec => AuthConfig::spec(),
            Preset::Hardened => AuthConfig::default(),
        };
        config.bcrypt_cost = self.bcrypt_cost;
        config.hash_algorithm = match self.hash_algorithm {
            Algorithm::Bcrypt => HashAlgorithm::Bcrypt,
            Algorithm::Argon2id => HashAlgorithm::Argon2id,
        };
        config.argon2 = Argon2Params::new(
            self.argon2_memory_kib.unwrap_or(config.argon2.memory_kib),
            self.argon2_passes.unwrap_or(config.argon2.iterations),
            1,
        );
        if let Some(mib) = self.hash_memory_budget_mib {
            config.hash_memory_budget = mib * 1024 * 1024;
        }
        let secs = Duration::from_secs;
        config.mailer = self.mailer()?;
        if config.mailer.is_some() {
            config.reset_delivery = ResetDelivery::Mail;
        }
        if self.require_confirmed_email {
            config.require_confirmed_email = true;
        }
        if self.no_require_confirmed_email {
            config.require_confirmed_email = false;
        }
        if let Some(s) = self.session_idle_timeout {
            config.session_idle_timeout = secs(s);
        }
        if let Some(s) = self.session_lifetime {
            config.session_lifetime = secs(s);
        }
        if let Some(s) = self.reset_token_ttl {
            config.reset_token_ttl = secs(s);
        }
        if let Some(n) = self.max_login_failures {
            config.max_login_failures = n;
        }
        if let Some(n) = self.max_login_failures_per_ip {
            config.max_login_failures_per_ip = n;
        }
        if let Some(s) = self.login_failure_window {
            config.login_failure_window = secs(s);
        }
        if let Some(n) = self.max_reset_requests_per_hour {
            config.max_reset_requests_per_hour = Some(n);
        }
        if let Some(n) = self.max_registrations_per_ip {
            config.max_registrations_per_ip = Some(n);
        }
        if let Some(n) = self.max_reset_requests_per_ip {
            config.max_reset_requests_per_ip = Some(n);
        }
        if let Some(n) = self.hash_permits {
            config.hash_permits = n;
        }
        if let Some(n) = self.session_cache_capacity {
            config.session_cache_capacity = n;
        }
        if let Some(n) = self.hash_queue {
            config.hash_queue = n;
        }
        if let Some(secure) = self.cookie_secure {
            config.cookie.secure = secure;
            if !secure && config.cookie.name.starts_with("__Host-") {
                // Browsers drop `__Host-` cookies that are not `Secure`.
                config.cookie.name = "session_id".into();
            }
            if !secure && config.trusted_device_cookie.is_some() {
                config.trusted_device_cookie = Some("trusted_device".into());
            }
        }
        config.trusted_proxies = self.trusted_proxies;
        if let Some(s) = self.body_read_timeout {
            config.body_read_timeout = secs(s);
        }
        config.public_origin.clone_from(&self.public_origin);
        config
            .allowed_origins
            .extend(self.allowed_origins.iter().cloned());
        Ok(config)
    }

    /// The mailer the mail flags ask for, if any.
    fn mailer(&self) -> Result<Option<Mailer>, Box<dyn std::error::Error>> {
        let mailer = match (&self.smtp_url, &self.mail_dir) {
            (Some(url), _) => {
                let transport = match &self.smtp_ca_file {
                    Some(pem) => SmtpTransport::from_url_trusting(url, &std::fs::read(pem)?)?,
                    None => SmtpTransport::from_url(url)?,
                };
                Mailer::new(transport, &self.mail_from, &self.public_url)?
            }
            (None, Some(dir)) => {
                tracing::info!(dir = %dir.display(), "mail goes to the development outbox");
                Mailer::dev_outbox(dir, &self.mail_from, &self.public_url)?
            }
            (None, None) => return Ok(None),
        };
        Ok(Some(match self.mail_retry_max {
            Some(max) => mailer.retry(
                Duration::from_secs(1).min(Duration::from_secs(max)),
                Duration::from_secs(max),
            ),
            None => mailer,
        }))
    }
}

/// One line per request: method, path, status, latency. Never cookies or form values.
async fn log_request(req: Request, next: Next) -> Response {
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    let start = Instant::now();
    let response = next.run(req).await;
    tracing::info!(
        %method,
        path,
        status = response.status().as_u16(),
        latency_us = start.elapsed().as_micros() as u64,
        "request"
    );
    response
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            // Display, not Debug: configuration errors say how to fix them.
            eprintln!("error: {err}");
            std::process::ExitCode::from(2)
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
    let args = Args::parse();
    let store = tower_auth::store::connect(&args.database_url, args.fresh).await?;
    let auth = Auth::builder_shared(store, args.config()?)
        .build()
        .map_err(|e| match e {
            tower_auth::ConfigError::NoMailer => format!(
                "{e}\nHere: pass --smtp-url URL, or --mail-dir DIR for the development outbox"
            ),
            other => other.to_string(),
        })?;

    let app = auth.router().layer(middleware::from_fn(log_request));
    // Merge `//users` into `/users` before routing, as the seed's Werkzeug server does.
    let app = MergeSlashesLayer.layer(app);

    let listener = tokio::net::TcpListener::bind(args.bind).await?;
    tracing::info!(address = %listener.local_addr()?, preset = ?args.preset, "serving");
    let mut limits = ConnectionLimits::default();
    limits.max_connections = args.max_connections;
    limits.max_connections_per_ip = args.max_connections_per_ip;
    limits.header_read_timeout = Duration::from_secs(args.header_read_timeout);
    serve(listener, app, limits, shutdown_signal()).await;
    // Password-hash upgrades started by the last logins finish before the process ends.
    if tokio::time::timeout(Duration::from_secs(10), auth.background_idle())
        .await
        .is_err()
    {
        tracing::warn!("shutdown: some password-hash upgrades did not finish");
    }
    // Mail already due goes out now if the server answers quickly; what does not stays in
    // the outbox for the next start.
    let _ = tokio::time::timeout(Duration::from_secs(10), auth.flush_mail()).await;
    Ok(())
}
