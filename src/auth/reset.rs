//! Password reset, on the emailed-token model: request a token, redeem it with a new
//! password.

use super::throttle::account_key;
use super::{Auth, AuthError, Client, event, normalize_email};
use crate::config::ResetDelivery;
use crate::store::TokenPurpose;
use crate::store::{EndSessions, UserUpdate};
use crate::user::User;

/// What a password-reset request produced.
#[non_exhaustive]
pub enum ResetRequested {
    /// The token, for the response body ([`ResetDelivery::InResponse`]).
    Token {
        /// The account's normalized email.
        email: String,
        /// The reset token (secret).
        token: String,
    },
    /// Accepted: a token was sent if the account exists and is under its hourly limit. The
    /// same answer for every email, so it reveals nothing.
    Accepted,
}

impl std::fmt::Debug for ResetRequested {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Token { email, .. } => f
                .debug_struct("Token")
                .field("email", email)
                .field("token", &"[redacted]")
                .finish(),
            Self::Accepted => f.write_str("Accepted"),
        }
    }
}

impl Auth {
    /// `POST /reset_password`: issues a token and delivers it as the config says, counted
    /// against the client's
    /// [`max_reset_requests_per_ip`](crate::AuthConfig::max_reset_requests_per_ip).
    ///
    /// With [`ResetDelivery::InResponse`] the token is returned (unknown email:
    /// [`AuthError::UnknownEmail`]). With a sender, the answer is always
    /// [`ResetRequested::Accepted`], whether or not the account exists or is over its limit.
    ///
    /// # Errors
    /// As described, or a store failure.
    ///
    /// With [`ResetDelivery::Mail`], the request path does the same work for every email
    /// and records the request in the outbox, under the account's
    /// [`max_reset_requests_per_hour`](crate::AuthConfig::max_reset_requests_per_hour)
    /// (see `accept_mail_request`); the delivery worker issues the token and queues the
    /// link mail in one store transaction if the account exists.
    pub async fn request_password_reset(
        &self,
        client: &Client,
        email: &str,
    ) -> Result<ResetRequested, AuthError> {
        let config = &self.inner.config;
        if config.reset_delivery == ResetDelivery::InResponse {
            self.limit_per_client("reset", client.ip, config.max_reset_requests_per_ip)
                .await?;
            let token = self.get_reset_password_token(email).await?;
            let email = normalize_email(email)?;
            return Ok(ResetRequested::Token { email, token });
        }
        self.accept_mail_request(
            TokenPurpose::ResetPassword,
            email,
            client,
            config.max_reset_requests_per_hour,
        )
        .await?;
        Ok(ResetRequested::Accepted)
    }

    /// `PUT /reset_password`: sets a new password when `reset_token` is valid and was
    /// issued to `email`; returns the user. The token dies on use; hashing counts against
    /// the client's share of the pool. It logs no one in: an enrolled second factor is
    /// still asked for at the next login.
    ///
    /// # Errors
    /// [`AuthError::InvalidResetToken`] (nothing changed), a weak password,
    /// [`AuthError::Overloaded`] or a store failure.
    pub async fn reset_password(
        &self,
        client: &Client,
        email: &str,
        reset_token: &str,
        new_password: &str,
    ) -> Result<User, AuthError> {
        self.redeem_reset_token(Some(email), reset_token, new_password, client.ip)
            .await
    }

    pub(super) async fn issue_reset_token(&self, user: &User) -> Result<String, AuthError> {
        let token = self
            .issue_token(
                user,
                TokenPurpose::ResetPassword,
                &user.email,
                self.inner.config.reset_token_ttl,
            )
            .await?;
        event("reset_requested", Some(user.id));
        Ok(token)
    }

    pub(super) async fn redeem_reset_token(
        &self,
        email: Option<&str>,
        reset_token: &str,
        new_password: &str,
        client_ip: Option<std::net::IpAddr>,
    ) -> Result<User, AuthError> {
        // A cheap read first, so a wrong token or email costs no hashing and consumes
        // nothing; the redemption below decides races.
        let (_, owner) = self
            .peek_token(reset_token, TokenPurpose::ResetPassword)
            .await?
            .filter(|(_, user)| {
                email.is_none_or(|e| normalize_email(e).is_ok_and(|e| e == user.email))
            })
            .ok_or(AuthError::InvalidResetToken)?;
        self.check_password(new_password, &owner.email)?;
        let ticket = self.reserve_hash_for(client_ip)?;
        let hashed = self.hash_with(ticket, new_password).await?;
        // Whoever asked for links or held a device cookie before the reset is shut out: the
        // pending email change, other links and trusted devices die with the old password.
        let mut update = UserUpdate::new().password_hash(hashed).end_tokens();
        let first_proof =
            self.inner.config.reset_delivery == ResetDelivery::Mail && !owner.email_confirmed();
        if self.inner.config.end_sessions_on_password_reset || first_proof {
            // An unconfirmed account's sessions were opened with a password nobody proved.
            update = update.end_sessions(EndSessions::All);
        }
        if first_proof {
            // The link reached the mailbox: that confirms the address.
            update = update.confirm_email(self.now_ms());
        }
        let (_, user) = self
            .redeem_token(reset_token, TokenPurpose::ResetPassword, update)
            .await?
            .filter(|(_, user)| user.id == owner.id)
            .ok_or(AuthError::InvalidResetToken)?;
        self.store()
            .reset_counter(&account_key(&user.email))
            .await?;
        event("password_reset", Some(user.id));
        Ok(user)
    }

    /// Checks a new password of the account `email` against the policy.
    pub(super) fn check_password(&self, password: &str, email: &str) -> Result<(), AuthError> {
        Ok(self
            .inner
            .config
            .password_policy
            .check_for(password, Some(email))?)
    }
}
