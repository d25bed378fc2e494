//! Email confirmation: the link a new account is mailed, redeeming it, asking for another,
//! and what registering an address that already has an account mails instead.

use std::net::IpAddr;

use super::outbox::{Link, Requester};
use super::{Auth, AuthError, event};
use crate::clock::duration_ms;
use crate::mail::MailKind;
use crate::store::{EndSessions, UserUpdate};
use crate::store::{FirstLink, TokenPurpose};
use crate::token::{self, TokenFormat, TokenHash};
use crate::user::User;

/// What a confirmation offers as proof that the confirmer knows the account's password
/// (see [`Auth::confirm_email_with`]); the default offers none.
#[derive(Clone, Copy, Default)]
#[non_exhaustive]
pub struct ConfirmationProof<'a> {
    /// The password, as typed on the confirmation page.
    pub password: Option<&'a str>,
    /// The session token the client presented.
    pub session_id: Option<&'a str>,
    /// The client's address, for the login throttle a password counts against.
    pub client_ip: Option<IpAddr>,
}

impl<'a> ConfirmationProof<'a> {
    /// Offers the password.
    pub fn password(mut self, password: Option<&'a str>) -> Self {
        self.password = password;
        self
    }

    /// Offers the session the client presented.
    pub fn session_id(mut self, session_id: Option<&'a str>) -> Self {
        self.session_id = session_id;
        self
    }

    /// The client's address.
    pub fn client_ip(mut self, client_ip: Option<IpAddr>) -> Self {
        self.client_ip = client_ip;
        self
    }
}

impl std::fmt::Debug for ConfirmationProof<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfirmationProof")
            .field("password", &self.password.map(|_| "[redacted]"))
            .field("session_id", &self.session_id.map(|_| "[redacted]"))
            .field("client_ip", &self.client_ip)
            .finish()
    }
}

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

    /// Redeems a confirmation link's token and marks the account's email confirmed, with
    /// no proof of the password: the password of an account that was never confirmed is
    /// cleared, and its sessions, links and trusted devices end (see
    /// [`confirm_email_with`](Self::confirm_email_with), which keeps a proven password).
    ///
    /// # Errors
    /// As [`confirm_email_with`](Self::confirm_email_with).
    pub async fn confirm_email(&self, token: &str) -> Result<User, AuthError> {
        Ok(self
            .confirm_email_with(token, ConfirmationProof::default())
            .await?
            .user)
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
    pub async fn confirm_email_with(
        &self,
        token: &str,
        proof: ConfirmationProof<'_>,
    ) -> Result<Confirmed, AuthError> {
        let (_, owner) = self
            .peek_token(token, TokenPurpose::ConfirmEmail)
            .await?
            .ok_or(AuthError::InvalidToken)?;
        let mut update = UserUpdate::new().confirm_email(self.now_ms());
        let proven = owner.email_confirmed() || self.password_proven(&owner, &proof).await?;
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

    /// Whether `proof` shows that the confirmer knows `owner`'s password: a live session
    /// of the account, or the password itself (a wrong one is an error, counted as a
    /// failed login).
    async fn password_proven(
        &self,
        owner: &User,
        proof: &ConfirmationProof<'_>,
    ) -> Result<bool, AuthError> {
        if let Some(session) = proof.session_id {
            if let Some(user) = self.get_user_from_session_id(Some(session)).await? {
                if user.id == owner.id {
                    return Ok(true);
                }
            }
        }
        let Some(password) = proof.password else {
            return Ok(false);
        };
        self.verify_password_of(owner, password, proof.client_ip, None)
            .await?;
        Ok(true)
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
        self.resend_confirmation_from(email, Requester::default())
            .await
    }

    pub(crate) async fn resend_confirmation_from(
        &self,
        email: &str,
        requester: Requester<'_>,
    ) -> Result<(), AuthError> {
        self.mailer()?;
        let limit = self.inner.config.max_mails_per_hour;
        self.accept_mail_request(TokenPurpose::ConfirmEmail, email, requester, limit)
            .await
    }
}
