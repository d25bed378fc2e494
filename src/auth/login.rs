//! Logging in and out: the protected flow behind `POST /sessions` and `DELETE /sessions`,
//! also reachable from a host app's own handlers through [`AuthContext`](crate::AuthContext).

use std::net::IpAddr;

use super::Client;
use super::cookie::SessionCookie;
use super::fair_share::HashTicket;
use super::session::SessionStart;
use super::throttle::LoginClaim;
use super::{Auth, AuthError, MAX_TOKEN_BYTES, event, normalize_email};
use crate::auth_methods::{AuthMethod, AuthMethods};
use crate::store::UserLookup;
use crate::token::{self, TokenFormat, TokenHash};
use crate::user::{User, UserId};

/// A login whose user is known, on its way to a session (see [`Auth::finish_login`]).
#[derive(Debug, Clone, Copy)]
pub(super) struct Login {
    /// How the user proved who they are so far.
    pub(super) methods: AuthMethods,
    /// "Remember me".
    pub(super) remember_me: bool,
    /// Issue a trusted-device cookie (a password login from a client without one).
    pub(super) trust_device: bool,
}

/// A login attempt: the credentials as typed, and whether to remember the session.
/// Who attempts it is the [`Client`] the login takes.
#[derive(Clone, Copy)]
#[non_exhaustive]
pub struct LoginAttempt<'a> {
    /// The email as typed.
    pub email: &'a str,
    /// The password as typed.
    pub password: &'a str,
    /// "Remember me": a persistent cookie and the longer
    /// [`remembered_session_lifetime`](crate::AuthConfig::remembered_session_lifetime).
    pub remember_me: bool,
}

impl<'a> LoginAttempt<'a> {
    /// An attempt with these credentials, not remembered.
    pub fn new(email: &'a str, password: &'a str) -> Self {
        Self {
            email,
            password,
            remember_me: false,
        }
    }

    /// Asks for a remembered session (persistent cookie, longer lifetime).
    pub fn remember_me(mut self, remember: bool) -> Self {
        self.remember_me = remember;
        self
    }
}

impl std::fmt::Debug for LoginAttempt<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginAttempt")
            .field("email", &self.email)
            .field("remember_me", &self.remember_me)
            .finish_non_exhaustive()
    }
}

/// How a user was verified by means of the application's own, for
/// [`Auth::log_in_verified`]: which method, and whether to remember the session.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Verified {
    /// The method that proved who the user is.
    pub method: AuthMethod,
    /// "Remember me": a persistent cookie and the longer lifetime.
    pub remember_me: bool,
}

impl Verified {
    /// Verified by `method`, not remembered.
    pub fn by(method: AuthMethod) -> Self {
        Self {
            method,
            remember_me: false,
        }
    }

    /// Asks for a remembered session.
    pub fn remember_me(mut self, remember: bool) -> Self {
        self.remember_me = remember;
        self
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
    /// How the user proved who they are.
    pub methods: AuthMethods,
}

impl std::fmt::Debug for LoggedIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoggedIn")
            .field("user", &self.user)
            .field("session_id", &"[redacted]")
            .field("methods", &self.methods)
            .finish_non_exhaustive()
    }
}

impl Auth {
    /// Logs in with every protection: throttling per account and per client, one password
    /// verification whatever the email, then what every login does (see
    /// [`log_in_verified`](Self::log_in_verified)).
    ///
    /// Behind the auth layer, [`AuthContext::log_in`](crate::AuthContext::log_in) takes the
    /// client from the request.
    ///
    /// # Errors
    /// [`AuthError::Throttled`], [`AuthError::InvalidCredentials`], [`AuthError::Overloaded`],
    /// [`AuthError::ClientBusy`], [`AuthError::EmailNotConfirmed`],
    /// [`AuthError::SecondFactorRequired`] or a store failure.
    pub async fn log_in(
        &self,
        client: &Client,
        attempt: LoginAttempt<'_>,
    ) -> Result<LoggedIn, AuthError> {
        let trusted = self
            .trusted_device_key(client.device_token(), attempt.email)
            .await?;
        let (claim, ticket) = self
            .claim_and_reserve(attempt.email, client.ip, trusted)
            .await?;
        let Some(user) = self
            .check_credentials(attempt.email, attempt.password, ticket)
            .await?
        else {
            return Err(AuthError::InvalidCredentials);
        };
        let was_trusted = claim.is_trusted();
        self.settle_successful_login(claim).await?;
        let login = Login {
            methods: AuthMethod::Password.into(),
            remember_me: attempt.remember_me,
            trust_device: !was_trusted,
        };
        self.finish_login(client, user, login).await
    }

    /// Logs in a user whom the application verified by means of its own (single sign-on, a
    /// PIN, an invite link), with everything a password login does after the password:
    /// the account's failure throttle is respected (see
    /// [`note_failed_verification`](Self::note_failed_verification)), an unconfirmed email
    /// is refused when [`require_confirmed_email`](crate::AuthConfig::require_confirmed_email)
    /// says so, an enrolled second factor is asked for unless `how` is one, the presented
    /// session ends (fixation), and the new session records the client's address and user
    /// agent, the method, and the time (for sudo mode).
    ///
    /// Behind the auth layer, use
    /// [`AuthContext::log_in_verified`](crate::AuthContext::log_in_verified). The seed's
    /// `create_session(email)` starts a session with none of this, for its contract only.
    ///
    /// # Errors
    /// [`AuthError::UnknownUser`]; [`AuthError::Throttled`];
    /// [`AuthError::EmailNotConfirmed`]; [`AuthError::SecondFactorRequired`] (finish with
    /// [`finish_second_factor`](Self::finish_second_factor)); a store failure.
    pub async fn log_in_verified(
        &self,
        client: &Client,
        user_id: UserId,
        how: Verified,
    ) -> Result<LoggedIn, AuthError> {
        let user = self.user_by_id(user_id).await?;
        self.check_account_not_throttled(&user).await?;
        let login = Login {
            methods: how.method.into(),
            remember_me: how.remember_me,
            trust_device: false,
        };
        self.finish_login(client, user, login).await
    }

    /// What every login does once its user is known: refuse an unconfirmed email when the
    /// config says so, ask for an enrolled second factor unless one was used, end the
    /// presented session, start a new one recording the methods, and hand out the cookies.
    pub(super) async fn finish_login(
        &self,
        client: &Client,
        user: User,
        login: Login,
    ) -> Result<LoggedIn, AuthError> {
        if self.inner.config.require_confirmed_email && !user.email_confirmed() {
            // The proof was right, but no session until the owner proves the address
            // reaches them.
            event("login_unconfirmed", Some(user.id));
            return Err(AuthError::EmailNotConfirmed);
        }
        let needed = if login.methods.has_second_factor() {
            None
        } else {
            self.second_factor_needed(&user, client).await?
        };
        if let Some(factors) = needed {
            let pending = self.start_second_factor(&user, login, factors).await?;
            event("second_factor_required", Some(user.id));
            return Err(AuthError::SecondFactorRequired(Box::new(pending)));
        }
        self.end_presented_session(client).await?;
        let start = SessionStart {
            remembered: login.remember_me,
            user_agent: client.user_agent_str(),
            client_ip: client.ip,
            methods: login.methods,
        };
        let session_id = self.start_session(user.id, start).await?;
        event("logged_in", Some(user.id));
        let cookie = if login.remember_me {
            self.persistent_session_cookie(&session_id)
        } else {
            self.session_cookie(&session_id)
        };
        let device = if login.trust_device {
            self.trust_device(&user).await?
        } else {
            None
        };
        Ok(LoggedIn {
            cookie: cookie.with(device),
            user,
            session_id,
            methods: login.methods,
        })
    }

    /// Ends the session the client presented, when the config says a login does.
    async fn end_presented_session(&self, client: &Client) -> Result<(), AuthError> {
        if self.inner.config.end_presented_session_on_login
            && let Some(old) = client.session_id().filter(|t| t.len() <= MAX_TOKEN_BYTES)
        {
            self.store().delete_session(&TokenHash::of(old)).await?;
        }
        Ok(())
    }

    /// Ends the session the client presented and returns its user.
    ///
    /// # Errors
    /// [`AuthError::NoSession`] when the token is absent, unknown or expired; a store failure.
    pub async fn log_out(&self, client: &Client) -> Result<User, AuthError> {
        let session_id = client.session_id();
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
        email: &str,
        client_ip: Option<IpAddr>,
        trusted: Option<String>,
    ) -> Result<(LoginClaim, HashTicket), AuthError> {
        let claim = self.claim_login_attempt(email, client_ip, trusted).await?;
        match self.reserve_hash_for(client_ip) {
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
