//! Email confirmation: the link a new account is mailed, redeeming it, asking for another,
//! and what registering an address that already has an account mails instead.

use std::net::IpAddr;

use super::outbox::Link;
use super::{Auth, AuthError, event};
use crate::clock::duration_ms;
use crate::mail::MailKind;
use crate::store::{FirstLink, TokenPurpose};
use crate::token::{self, TokenFormat, TokenHash};
use crate::user::{User, UserUpdate};

impl Auth {
    /// Queues a confirmation link to the user's address (the earlier one stops working).
    pub(super) async fn mail_confirmation(&self, user: &User) -> Result<(), AuthError> {
        self.mail_link(user, self.confirmation_link(&user.email))
            .await
    }

    fn confirmation_link<'a>(&self, to: &'a str) -> Link<'a> {
        Link {
            kind: MailKind::ConfirmEmail,
            purpose: TokenPurpose::ConfirmEmail,
            to,
            ttl: self.inner.config.confirm_email_ttl,
            notify_old_address: false,
            answers: None,
        }
    }

    /// The confirmation link for an account about to be created with `email` at `now`,
    /// for the store to keep with the account (see [`FirstLink`]); `None` without a
    /// mailer.
    pub(super) fn first_confirmation_link(
        &self,
        email: &str,
        now: i64,
    ) -> Result<Option<FirstLink>, AuthError> {
        if self.inner.config.mailer.is_none() {
            return Ok(None);
        }
        let link = self.confirmation_link(email);
        let token = token::generate(TokenFormat::Random256).map_err(AuthError::Random)?;
        Ok(Some(FirstLink {
            hash: TokenHash::of(&token),
            purpose: link.purpose,
            expires_at_ms: now.saturating_add(duration_ms(link.ttl)),
            mail: self.compose_link(email, &link, &token, now)?,
        }))
    }

    /// Someone registered an address that has an account: its owner is mailed a new
    /// confirmation link if the account is unconfirmed (they probably lost the first), "you
    /// already have an account" otherwise; at most
    /// [`max_mails_per_hour`](crate::AuthConfig::max_mails_per_hour) of these an hour.
    pub(super) async fn tell_registered_owner(&self, user: &User) -> Result<(), AuthError> {
        let limit = self.inner.config.max_mails_per_hour;
        if self
            .over_mail_limit("registered", &user.email, limit)
            .await?
        {
            event("mail_request_throttled", Some(user.id));
            return Ok(());
        }
        if user.email_confirmed() {
            self.mail_notice(MailKind::AlreadyRegistered, &user.email)
                .await
        } else {
            self.mail_confirmation(user).await
        }
    }

    /// `POST /confirmation`: redeems a confirmation link's token and marks the account's
    /// email confirmed; returns the user.
    ///
    /// # Errors
    /// [`AuthError::InvalidToken`] when the token is unknown, expired, used, or was mailed
    /// to an address the account no longer has; a store failure.
    pub async fn confirm_email(&self, token: &str) -> Result<User, AuthError> {
        let update = UserUpdate::new().confirm_email(self.now_ms());
        let (_, user) = self
            .redeem_token(token, TokenPurpose::ConfirmEmail, update)
            .await?
            .ok_or(AuthError::InvalidToken)?;
        event("email_confirmed", Some(user.id));
        Ok(user)
    }

    /// `POST /confirmation/resend`: mails a new confirmation link if `email` has an
    /// unconfirmed account, with the same answer (and the same work on the request path)
    /// for every email. Behind the auth layer, prefer
    /// [`AuthContext::resend_confirmation`](crate::AuthContext::resend_confirmation), which
    /// counts requests per client address.
    ///
    /// # Errors
    /// [`AuthError::RateLimited`] for a client over its hourly limit; a store failure.
    pub async fn resend_confirmation(&self, email: &str) -> Result<(), AuthError> {
        self.resend_confirmation_from(email, None).await
    }

    pub(crate) async fn resend_confirmation_from(
        &self,
        email: &str,
        client_ip: Option<IpAddr>,
    ) -> Result<(), AuthError> {
        self.mailer()?;
        let limit = self.inner.config.max_mails_per_hour;
        self.accept_mail_request(TokenPurpose::ConfirmEmail, email, client_ip, limit)
            .await
    }
}
