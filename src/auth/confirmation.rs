//! Email confirmation: the link a new account is mailed, redeeming it, asking for another,
//! and what registering an address that already has an account mails instead.

use super::outbox::Link;
use super::{Auth, AuthError, Client, event};
use crate::clock::duration_ms;
use crate::mail::MailKind;
use crate::store::{EndSessions, UserUpdate};
use crate::store::{FirstLink, TokenPurpose};
use crate::token::{self, TokenFormat, TokenHash};
use crate::user::User;

/// A redeemed confirmation link.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Confirmed {
    /// The account, its email now confirmed.
    pub user: User,
    /// False when the account's password was cleared because the confirmation did not
    /// prove it: its owner sets one with a reset link (or signs in by magic link).
    pub password_kept: bool,
}

/// `update` at the first proof that the mailbox is the owner's, when nothing proved the
/// password: anyone may have registered the address with a password of their own, so it
/// goes, with every session, link and trusted device issued before.
pub(super) fn clear_unproven_password(update: UserUpdate) -> UserUpdate {
    update
        .password_hash(crate::password::NO_PASSWORD)
        .end_sessions(EndSessions::All)
        .end_tokens()
}

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
            || self.over_recipient_limit(&user.email).await?
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
    /// email confirmed.
    ///
    /// Anyone can register an address they do not own, with a password of their choosing,
    /// and wait for its owner to confirm it. So the link proves the mailbox, never the
    /// password: an account that was never confirmed keeps its password only when the
    /// confirmation proves it too, by the password itself (verified like a login, failures
    /// counted) or by a live session of the account presented with the link. Otherwise the
    /// password is cleared, every session, link and trusted device of the account ends in
    /// the same transaction, and its owner chooses a password through a reset link or
    /// signs in by magic link ([`Confirmed::password_kept`] is false).
    ///
    /// # Errors
    /// [`AuthError::InvalidToken`] when the token is unknown, expired, used, or was mailed
    /// to an address the account no longer has; [`AuthError::WrongPassword`] (the token is
    /// kept), [`AuthError::Throttled`] or [`AuthError::Overloaded`] when a password was
    /// given; a store failure.
    pub async fn confirm_email(
        &self,
        client: &Client,
        token: &str,
        password: Option<&str>,
    ) -> Result<Confirmed, AuthError> {
        let (_, owner) = self
            .peek_token(token, TokenPurpose::ConfirmEmail)
            .await?
            .ok_or(AuthError::InvalidToken)?;
        let mut update = UserUpdate::new().confirm_email(self.now_ms());
        let proven =
            owner.email_confirmed() || self.password_proven(&owner, client, password).await?;
        if !proven {
            update = clear_unproven_password(update);
        }
        let (_, user) = self
            .redeem_token(token, TokenPurpose::ConfirmEmail, update)
            .await?
            .filter(|(_, user)| user.id == owner.id)
            .ok_or(AuthError::InvalidToken)?;
        event("email_confirmed", Some(user.id));
        if !proven {
            event("unproven_password_cleared", Some(user.id));
        }
        Ok(Confirmed {
            user,
            password_kept: proven,
        })
    }

    /// Whether the confirmer shows that they know `owner`'s password: a live session of the
    /// account presented by `client`, or the password itself (a wrong one is an error,
    /// counted as a failed login).
    async fn password_proven(
        &self,
        owner: &User,
        client: &Client,
        password: Option<&str>,
    ) -> Result<bool, AuthError> {
        if let Some(session) = client.session_id()
            && let Some(user) = self.get_user_from_session_id(Some(session)).await?
            && user.id == owner.id
        {
            return Ok(true);
        }
        let Some(password) = password else {
            return Ok(false);
        };
        self.verify_password_of(owner, password, client.ip, None)
            .await?;
        Ok(true)
    }

    /// `POST /confirmation/resend`: mails a new confirmation link if `email` has an
    /// unconfirmed account, with the same answer (and the same work on the request path)
    /// for every email, counted against the client's
    /// [`max_reset_requests_per_ip`](crate::AuthConfig::max_reset_requests_per_ip).
    ///
    /// # Errors
    /// [`AuthError::RateLimited`] for a client over its hourly limit; a store failure.
    pub async fn resend_confirmation(&self, client: &Client, email: &str) -> Result<(), AuthError> {
        self.mailer()?;
        let limit = self.inner.config.max_mails_per_hour;
        self.accept_mail_request(TokenPurpose::ConfirmEmail, email, client, limit)
            .await
    }
}
