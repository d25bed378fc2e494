//! Moving an account to a new address: a link to the new address, a notice to the old,
//! and the change when the link is used (only if the account still has the old address).

use super::outbox::Link;
use super::{Auth, AuthError, Client, event, normalize_new_email};
use crate::mail::MailKind;
use crate::store::UserUpdate;
use crate::store::{StoreError, TokenPurpose};
use crate::user::User;

impl Auth {
    /// `POST /email`: asks to move the session's account to `new_email`. Needs a recent
    /// authentication ([`sudo_window`](crate::AuthConfig::sudo_window)). Mails a link to
    /// the new address and a notice to the current one, both queued in the same store
    /// transaction as the link's token; nothing changes until the link is used. At most
    /// [`max_mails_per_hour`](crate::AuthConfig::max_mails_per_hour) requests an hour per
    /// account, and
    /// [`max_mails_per_recipient_per_hour`](crate::AuthConfig::max_mails_per_recipient_per_hour)
    /// messages to the new address from all accounts together, are mailed; the rest are
    /// accepted and send nothing.
    ///
    /// # Errors
    /// [`AuthError::NoSession`], [`AuthError::ReauthenticationRequired`],
    /// [`AuthError::InvalidEmail`] (malformed, or the account's current address), a store
    /// failure.
    pub async fn request_email_change(
        &self,
        client: &Client,
        new_email: &str,
    ) -> Result<(), AuthError> {
        self.mailer()?;
        let (session, user) = self.require_session(client.session_id()).await?;
        self.check_sudo(&session)?;
        let new_email = normalize_new_email(new_email)?;
        if new_email == user.email {
            return Err(AuthError::InvalidEmail(
                "the new email is the account's current one",
            ));
        }
        let limit = self.inner.config.max_mails_per_hour;
        if self
            .over_mail_limit("change_email", &user.email, limit)
            .await?
            || self.over_recipient_limit(&new_email).await?
        {
            event("mail_request_throttled", Some(user.id));
            return Ok(());
        }
        let link = Link {
            kind: MailKind::ChangeEmail,
            purpose: TokenPurpose::ChangeEmail,
            to: &new_email,
            ttl: self.inner.config.change_email_ttl,
            notify_old_address: true,
            answers: None,
        };
        self.mail_link(&user, link).await?;
        event("email_change_requested", Some(user.id));
        Ok(())
    }

    /// `POST /email/confirm`: redeems an email-change link's token and moves the account to
    /// the address it was sent to (now confirmed); returns the user as changed. Links mailed
    /// to the old address stop working.
    ///
    /// # Errors
    /// [`AuthError::InvalidToken`] when the token is unknown, expired, used, or the account
    /// no longer has the address it had when the change was asked for;
    /// [`AuthError::UserExists`] when the new address has meanwhile been registered (the
    /// token is then kept); a store failure.
    pub async fn confirm_email_change(&self, token: &str) -> Result<User, AuthError> {
        let (record, _) = self
            .peek_token(token, TokenPurpose::ChangeEmail)
            .await?
            .ok_or(AuthError::InvalidToken)?;
        let update = UserUpdate::new()
            .email(record.sent_to.clone())
            .confirm_email(self.now_ms());
        let redeemed = self
            .redeem_token(token, TokenPurpose::ChangeEmail, update)
            .await;
        let (_, user) = match redeemed {
            Err(AuthError::Store(StoreError::Duplicate)) => {
                return Err(AuthError::UserExists(record.sent_to));
            }
            other => other?.ok_or(AuthError::InvalidToken)?,
        };
        event("email_changed", Some(user.id));
        Ok(user)
    }
}
