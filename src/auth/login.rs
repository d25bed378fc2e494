//! Logging in and out: the protected flow behind `POST /sessions` and `DELETE /sessions`,
//! also reachable from a host app's own handlers through [`AuthContext`](crate::AuthContext).

use std::net::IpAddr;

use super::cookie::SessionCookie;
use super::fair_share::HashTicket;
use super::session::SessionStart;
use super::throttle::LoginClaim;
use super::{Auth, AuthError, MAX_TOKEN_BYTES, event, normalize_email};
use crate::store::UserLookup;
use crate::token::{self, TokenFormat, TokenHash};
use crate::user::User;

/// A login attempt: the credentials, and what the request tells about its client.
///
/// Build one with [`LoginAttempt::new`] and the setters; inside a handler behind the auth
/// layer, [`AuthContext::log_in`](crate::AuthContext::log_in) fills in the client address
/// and presented session from the request itself.
#[derive(Clone, Copy)]
#[non_exhaustive]
pub struct LoginAttempt<'a> {
    /// The email as typed.
    pub email: &'a str,
    /// The password as typed.
    pub password: &'a str,
    /// The client's address, for per-client throttling, when known.
    pub client_ip: Option<IpAddr>,
    /// The session token the client presented, if any (ended first when the config says so).
    pub current_session: Option<&'a str>,
    /// "Remember me": a persistent cookie and the longer
    /// [`remembered_session_lifetime`](crate::AuthConfig::remembered_session_lifetime).
    pub remember_me: bool,
    /// The client's `User-Agent` header, described in the user's list of sessions.
    pub user_agent: Option<&'a str>,
    /// The trusted-device cookie the client presented, if any (see
    /// [`trusted_device_cookie`](crate::AuthConfig::trusted_device_cookie)).
    pub trusted_device: Option<&'a str>,
}

impl<'a> LoginAttempt<'a> {
    /// An attempt with these credentials, from an unknown client with no session.
    pub fn new(email: &'a str, password: &'a str) -> Self {
        Self {
            email,
            password,
            client_ip: None,
            current_session: None,
            remember_me: false,
            user_agent: None,
            trusted_device: None,
        }
    }

    /// The trusted-device cookie's value, when the client sent one.
    pub fn trusted_device(mut self, token: Option<&'a str>) -> Self {
        self.trusted_device = token;
        self
    }

    /// Asks for a remembered session (persistent cookie, longer lifetime).
    pub fn remember_me(mut self, remember: bool) -> Self {
        self.remember_me = remember;
        self
    }

    /// The client's `User-Agent` header (the list of sessions shows a short description).
    pub fn user_agent(mut self, user_agent: Option<&'a str>) -> Self {
        self.user_agent = user_agent;
        self
    }

    /// The client's address (per-client throttling needs it).
    pub fn client_ip(mut self, ip: Option<IpAddr>) -> Self {
        self.client_ip = ip;
        self
    }

    /// The session token the client presented (session-fixation defence needs it).
    pub fn current_session(mut self, token: Option<&'a str>) -> Self {
        self.current_session = token;
        self
    }
}

impl std::fmt::Debug for LoginAttempt<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginAttempt")
            .field("email", &self.email)
            .field("client_ip", &self.client_ip)
            .field("remember_me", &self.remember_me)
            .finish_non_exhaustive()
    }
}

/// A successful login: the user, the new session token, and the cookie that carries it.
#[non_exhaustive]
pub struct LoggedIn {
    /// Who logged in.
    pub user: User,
    /// The new session token (secret: goes only into the `Set-Cookie` header).
    pub session_id: String,
    /// The `Set-Cookie` that hands the session to the browser: return it with the
    /// response.
    pub cookie: SessionCookie,
}

impl std::fmt::Debug for LoggedIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoggedIn")
            .field("user", &self.user)
            .field("session_id", &"[redacted]")
            .finish_non_exhaustive()
    }
}

impl Auth {
    /// Logs in with every protection: throttling per account and per client, one password
    /// verification whatever the email, session-fixation defence, a new session.
    ///
    /// Behind the auth layer, prefer [`AuthContext::log_in`](crate::AuthContext::log_in),
    /// which takes the client address and presented session from the request.
    ///
    /// # Errors
    /// [`AuthError::Throttled`], [`AuthError::InvalidCredentials`], [`AuthError::Overloaded`],
    /// [`AuthError::ClientBusy`] or a store failure.
    pub async fn log_in(&self, attempt: LoginAttempt<'_>) -> Result<LoggedIn, AuthError> {
        let trusted = self
            .trusted_device_key(attempt.trusted_device, attempt.email)
            .await?;
        let (claim, ticket) = self.claim_and_reserve(&attempt, trusted).await?;
        let Some(user) = self
            .check_credentials(attempt.email, attempt.password, ticket)
            .await?
        else {
            return Err(AuthError::InvalidCredentials);
        };
        let was_trusted = claim.is_trusted();
        self.settle_successful_login(claim).await?;
        if self.inner.config.require_confirmed_email && !user.email_confirmed() {
            // The password was right (so the failure count is cleared), but no session
            // until the owner proves the address reaches them.
            event("login_unconfirmed", Some(user.id));
            return Err(AuthError::EmailNotConfirmed);
        }
        if self.inner.config.end_presented_session_on_login {
            if let Some(old) = attempt
                .current_session
                .filter(|t| t.len() <= MAX_TOKEN_BYTES)
            {
                self.store().delete_session(&TokenHash::of(old)).await?;
            }
        }
        let start = SessionStart {
            remembered: attempt.remember_me,
            user_agent: attempt.user_agent,
            client_ip: attempt.client_ip,
        };
        let session_id = self.start_session(user.id, start).await?;
        event("logged_in", Some(user.id));
        let cookie = if attempt.remember_me {
            self.persistent_session_cookie(&session_id)
        } else {
            self.session_cookie(&session_id)
        };
        let device = if was_trusted {
            None
        } else {
            self.trust_device(&user).await?
        };
        let cookie = cookie.with(device);
        Ok(LoggedIn {
            cookie,
            user,
            session_id,
        })
    }

    /// Ends the presented session and returns its user.
    ///
    /// # Errors
    /// [`AuthError::NoSession`] when the token is absent, unknown or expired; a store failure.
    pub async fn log_out(&self, session_id: Option<&str>) -> Result<User, AuthError> {
        let user = self
            .get_user_from_session_id(session_id)
            .await?
            .ok_or(AuthError::NoSession)?;
        if self.inner.config.single_session {
            // The user's one session is the presented one: end it, and any a race left.
            self.store().delete_user_sessions(user.id, None).await?;
        } else if let Some(token) = session_id {
            self.store().delete_session(&TokenHash::of(token)).await?;
        }
        event("logged_out", Some(user.id));
        Ok(user)
    }

    /// Claims the attempt's counters, then a place in the hashing pool. Counters first: a
    /// client over its limit is refused before it takes a place. An attempt then shed for
    /// load (503, or the client's full share) gives its claims back, or a login storm would
    /// lock users out.
    pub(super) async fn claim_and_reserve(
        &self,
        attempt: &LoginAttempt<'_>,
        trusted: Option<String>,
    ) -> Result<(LoginClaim, HashTicket), AuthError> {
        let claim = self.claim_login_attempt(attempt, trusted).await?;
        match self.reserve_hash_for(attempt.client_ip) {
            Ok(ticket) => Ok((claim, ticket)),
            Err(shed) => {
                self.release_claim(claim).await?;
                Err(shed)
            }
        }
    }

    /// The user when the credentials are right. One password verification either way, in
    /// the place `ticket` holds.
    pub(super) async fn check_credentials(
        &self,
        email: &str,
        password: &str,
        ticket: HashTicket,
    ) -> Result<Option<User>, AuthError> {
        let record = match normalize_email(email) {
            Ok(email) => self.store().find_user_by(UserLookup::Email(&email)).await?,
            Err(_) => None,
        };
        // An unknown email, and an account whose password was cleared, cost the same
        // verification as a stored hash of the usual parameters, and never match.
        let usable = record
            .as_ref()
            .filter(|record| self.note_stored_hash(&record.password_hash));
        let hash = match usable {
            Some(record) => record.password_hash.clone(),
            None => self.dummy_hash().await?,
        };
        let matches = self
            .inner
            .hasher
            .verify_reserved(ticket.reservation, password.to_owned(), hash)
            .await?
            && usable.is_some();
        match record {
            Some(record) if matches => {
                self.upgrade_hash(record.user.id, password, record.password_hash);
                Ok(Some(record.user))
            }
            found => {
                event("login_failed", found.map(|r| r.user.id));
                Ok(None)
            }
        }
    }

    /// A hash to verify against when the email is unknown (or its password cleared), so
    /// that it costs what a typical stored hash costs: one of the parameters most often
    /// seen in stored hashes lately (see `DummyHashes`), or until one is made, of the
    /// configured algorithm and parameters.
    async fn dummy_hash(&self) -> Result<String, AuthError> {
        if let Some(usual) = self.usual_dummy() {
            return Ok(usual);
        }
        self.configured_dummy().await
    }

    /// A hash of a random password made by the configured hasher, made once.
    async fn configured_dummy(&self) -> Result<String, AuthError> {
        self.inner
            .dummy_hash
            .get_or_try_init(|| async {
                let random = token::generate(TokenFormat::Random256).map_err(AuthError::Random)?;
                Ok::<_, AuthError>(self.inner.hasher.hash(random[..32].to_owned()).await?)
            })
            .await
            .cloned()
    }

    /// Counts the parameters of a stored hash about to be verified; false when it is no
    /// password at all (cleared), which is then verified as an unknown email is.
    fn note_stored_hash(&self, hash: &str) -> bool {
        if hash == crate::password::NO_PASSWORD {
            return false;
        }
        self.inner.dummies.note(hash);
        // Made ahead of the unknown email that will need it.
        let _ = self.usual_dummy();
        true
    }

    /// The dummy hash of the parameters most often seen, when it differs from the
    /// configured ones; one is made in the background the first time it is wanted.
    fn usual_dummy(&self) -> Option<String> {
        let (key, made) = self.inner.dummies.usual()?;
        // A hasher of the application's own says what it makes only through its dummy.
        let configured = self.inner.configured_params.clone().or_else(|| {
            self.inner
                .dummy_hash
                .get()
                .and_then(|dummy| crate::password::params_key(dummy))
        })?;
        if configured == key {
            return None;
        }
        if made.is_some() {
            return made;
        }
        if self.inner.dummies.start_making(&key) {
            let auth = self.clone();
            self.in_background(async move {
                let made = async {
                    let random =
                        token::generate(TokenFormat::Random256).map_err(AuthError::Random)?;
                    Ok::<_, AuthError>(
                        auth.inner
                            .hasher
                            .hash_like(random[..32].to_owned(), key.clone())
                            .await?,
                    )
                }
                .await;
                auth.inner.dummies.made(&key, made.ok());
            });
        }
        None
    }
}
