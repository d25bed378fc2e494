//! The seed's own method names (`valid_login`, `create_session`, `destroy_session`,
//! `get_reset_password_token`, `update_password`), kept so its contract and tests keep
//! working. Each skips a protection that the flows in `login.rs` and `reset.rs` apply, and
//! says which in its first doc line: prefer those flows in new code.

use super::session::SessionStart;
use super::{Auth, AuthError, Client, event, normalize_email};
use crate::store::UserLookup;
use crate::user::{User, UserId};

impl Auth {
    /// Registers a user (seed task 5) **with no per-client limit**: the seed's name for
    /// [`register`](Self::register) from a client nothing is known about. Use
    /// [`register`](Self::register) (or [`AuthContext::register`](crate::AuthContext::register))
    /// in new code.
    ///
    /// # Errors
    /// As [`register`](Self::register).
    pub async fn register_user(&self, email: &str, password: &str) -> Result<User, AuthError> {
        self.register(&Client::default(), email, password).await
    }

    /// Checks a password **without throttling** (seed task 8): true when `password` is the
    /// password of the account `email`. Use [`log_in`](Self::log_in) to log a user in.
    ///
    /// Costs one password verification whether or not the account exists, so response
    /// time does not reveal which emails are registered.
    ///
    /// # Errors
    /// [`AuthError::Overloaded`] or a store failure.
    pub async fn valid_login(&self, email: &str, password: &str) -> Result<bool, AuthError> {
        let ticket = self.reserve_hash_for(None)?;
        Ok(self
            .check_credentials(email, password, ticket)
            .await?
            .is_some())
    }

    /// Starts a session for `email` **without a password, throttling, second factor or
    /// session rotation** (seed task 10), for the seed's contract only: returns its token,
    /// or `None` for an unknown email. Use [`log_in`](Self::log_in) to log a user in, and
    /// [`log_in_verified`](Self::log_in_verified) for a user the application verified by
    /// means of its own.
    ///
    /// # Errors
    /// A store failure.
    pub async fn create_session(&self, email: &str) -> Result<Option<String>, AuthError> {
        let Ok(email) = normalize_email(email) else {
            return Ok(None);
        };
        match self.store().find_user_by(UserLookup::Email(&email)).await? {
            Some(record) => Ok(Some(
                self.start_session(record.user.id, SessionStart::default())
                    .await?,
            )),
            None => Ok(None),
        }
    }

    /// Ends every session of a user **without checking who asks** (seed task 13). Use
    /// [`log_out`](Self::log_out) to end the presented session.
    ///
    /// # Errors
    /// A store failure.
    pub async fn destroy_session(&self, user_id: UserId) -> Result<(), AuthError> {
        self.store().delete_user_sessions(user_id, None).await?;
        event("logged_out", Some(user_id));
        Ok(())
    }

    /// Issues a reset token and **returns it instead of delivering it**, with no rate limit
    /// (seed task 16). Use [`request_password_reset`](Self::request_password_reset).
    ///
    /// It replaces any earlier reset token of the account, expires after
    /// [`reset_token_ttl`](crate::AuthConfig::reset_token_ttl) and dies on use.
    ///
    /// # Errors
    /// [`AuthError::UnknownEmail`] when there is no such account, or a store failure.
    pub async fn get_reset_password_token(&self, email: &str) -> Result<String, AuthError> {
        let email = normalize_email(email).map_err(|_| AuthError::UnknownEmail)?;
        let record = self
            .store()
            .find_user_by(UserLookup::Email(&email))
            .await?
            .ok_or(AuthError::UnknownEmail)?;
        self.issue_reset_token(&record.user).await
    }

    /// Sets a new password from a reset token **without checking the email it was issued
    /// to** (seed task 18). Use [`reset_password`](Self::reset_password).
    ///
    /// # Errors
    /// [`AuthError::InvalidResetToken`] when the token is unknown, expired or used; a weak
    /// password; [`AuthError::Overloaded`]; or a store failure.
    pub async fn update_password(
        &self,
        reset_token: &str,
        password: &str,
    ) -> Result<(), AuthError> {
        self.redeem_reset_token(None, reset_token, password, None)
            .await
            .map(|_| ())
    }
}
