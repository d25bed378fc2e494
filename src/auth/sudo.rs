//! Sudo mode: sensitive actions need a session that proved its user's identity recently
//! (the login itself, a magic link, or a reauthentication with the password), after
//! Phoenix's `sudo_mode?` and GitHub's. A stolen session cookie alone then cannot delete
//! the account or lock its owner out.

use std::net::IpAddr;

use base64::Engine as _;

use super::{Auth, AuthError, Client, event};
use crate::auth_methods::AuthMethod;
use crate::clock::duration_ms;
use crate::store::Session;
use crate::token::TokenHash;
use crate::user::User;

impl Auth {
    /// Proves again who the session's user is, with their password: the session counts as
    /// recently authenticated for the next [`sudo_window`](crate::AuthConfig::sudo_window).
    /// Throttled and verified like a login (`client_ip` counts against the client's limit).
    ///
    /// # Errors
    /// [`AuthError::WrongPassword`]; [`AuthError::Throttled`]; [`AuthError::NoSession`];
    /// [`AuthError::Overloaded`]; a store failure.
    pub async fn reauthenticate(&self, client: &Client, password: &str) -> Result<User, AuthError> {
        let (session, user) = self.require_session(client.session_id()).await?;
        self.verify_own_password(&session, &user, password, client.ip)
            .await?;
        if !self
            .store()
            .reauthenticate_session(
                &session.token_hash,
                self.now_ms(),
                AuthMethod::Password.into(),
            )
            .await?
        {
            // The session ended while the password was being checked.
            return Err(AuthError::NoSession);
        }
        event("reauthenticated", Some(user.id));
        Ok(user)
    }

    /// The session's user, if the session authenticated within
    /// [`sudo_window`](crate::AuthConfig::sudo_window): guard a sensitive action of your
    /// own with it.
    ///
    /// # Errors
    /// [`AuthError::ReauthenticationRequired`] when it did not (send the user to
    /// reauthenticate); [`AuthError::NoSession`]; a store failure.
    pub async fn require_recent_authentication(&self, client: &Client) -> Result<User, AuthError> {
        let (session, user) = self.require_session(client.session_id()).await?;
        self.check_sudo(&session)?;
        Ok(user)
    }

    /// [`AuthError::ReauthenticationRequired`] unless `session` authenticated within the
    /// sudo window.
    pub(super) fn check_sudo(&self, session: &Session) -> Result<(), AuthError> {
        let window = duration_ms(self.inner.config.sudo_window);
        if self.now_ms() < session.authenticated_at_ms.saturating_add(window) {
            Ok(())
        } else {
            Err(AuthError::ReauthenticationRequired)
        }
    }

    /// What a change to how the account is entered (a second factor added or removed, new
    /// recovery codes, a provider linked) needs: the account's password, verified as
    /// [`verify_own_password`](Self::verify_own_password) does, or, for an account without
    /// one, a recent authentication. A session cookie alone, even a fresh one, is not enough:
    /// whoever stole it could otherwise lock the owner out with a factor of their own. A
    /// right password counts as a reauthentication of the session.
    pub(super) async fn confirm_entry_change(
        &self,
        client: &Client,
        session: &Session,
        user: &User,
        password: Option<&str>,
    ) -> Result<(), AuthError> {
        let record = self
            .store()
            .find_user_by(crate::store::UserLookup::Id(user.id))
            .await?
            .ok_or(AuthError::NoSession)?;
        if record.password_hash == crate::password::NO_PASSWORD {
            return self.check_sudo(session);
        }
        let password = password
            .filter(|p| !p.is_empty())
            .ok_or(AuthError::PasswordRequired)?;
        self.verify_own_password(session, user, password, client.ip)
            .await?;
        // The password is a reauthentication: the change's later steps (the code that
        // completes an enrolment, the passkey's answer, the provider's callback) need a
        // recent one.
        if !self
            .store()
            .reauthenticate_session(
                &session.token_hash,
                self.now_ms(),
                AuthMethod::Password.into(),
            )
            .await?
        {
            return Err(AuthError::NoSession);
        }
        Ok(())
    }

    /// Checks `password` against `user`'s, with a login's protections: a place in the
    /// hashing pool within the client's share, a failure counter (the session's own: a
    /// live session is a client that logged in before, so strangers' failures on the
    /// account do not lock it out, and a stolen session cannot guess faster than a login
    /// could), a transparent hash upgrade.
    pub(super) async fn verify_own_password(
        &self,
        session: &Session,
        user: &User,
        password: &str,
        client_ip: Option<IpAddr>,
    ) -> Result<(), AuthError> {
        let trusted = Some(session_key(&session.token_hash));
        self.verify_password_of(user, password, client_ip, trusted)
            .await
    }

    /// Checks `password` against `user`'s as a login does, counted against `trusted`'s
    /// failure counter when given, else the account's and the client's:
    /// [`AuthError::WrongPassword`] when it is not the account's.
    pub(super) async fn verify_password_of(
        &self,
        user: &User,
        password: &str,
        client_ip: Option<IpAddr>,
        trusted: Option<String>,
    ) -> Result<(), AuthError> {
        let (claim, ticket) = self
            .claim_and_reserve(&user.email, client_ip, trusted)
            .await?;
        match self
            .check_credentials(&user.email, password, ticket)
            .await?
        {
            Some(found) if found.id == user.id => {
                self.settle_successful_login(claim).await?;
                Ok(())
            }
            _ => Err(AuthError::WrongPassword),
        }
    }
}

/// The failure counter of passwords given to confirm actions in one session.
fn session_key(hash: &TokenHash) -> String {
    format!(
        "login:session:{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(hash.as_bytes())
    )
}
