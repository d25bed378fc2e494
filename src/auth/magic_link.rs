//! Logging in with a mailed, single-use link.

use std::net::IpAddr;

use super::confirmation::clear_unproven_password;
use super::login::LoggedIn;
use super::outbox::Requester;
use super::session::SessionStart;
use super::throttle::account_key;
use super::{Auth, AuthError, MAX_TOKEN_BYTES, event};
use crate::store::TokenPurpose;
use crate::store::UserUpdate;
use crate::token::TokenHash;

/// Who redeems a magic link: what a login records about its client. `Debug` never shows
/// the presented session's token.
#[derive(Clone, Copy, Default)]
#[non_exhaustive]
pub struct MagicLinkLogin<'a> {
    /// The client's address.
    pub client_ip: Option<IpAddr>,
    /// The session token the client presented, if any (ended first, as at a login).
    pub current_session: Option<&'a str>,
    /// The client's `User-Agent` header.
    pub user_agent: Option<&'a str>,
}

impl std::fmt::Debug for MagicLinkLogin<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MagicLinkLogin")
            .field("client_ip", &self.client_ip)
            .field(
                "current_session",
                &self.current_session.map(|_| "[redacted]"),
            )
            .field("user_agent", &self.user_agent)
            .finish()
    }
}

impl Auth {
    /// `POST /magic_link`: mails a login link (valid
    /// [`magic_link_ttl`](crate::AuthConfig::magic_link_ttl), single use) if `email` has an
    /// account, with the same answer and the same work on the request path for every
    /// email; at most [`max_mails_per_hour`](crate::AuthConfig::max_mails_per_hour) links
    /// an hour per account. Behind the auth layer, prefer
    /// [`AuthContext::request_magic_link`](crate::AuthContext::request_magic_link).
    ///
    /// # Errors
    /// [`AuthError::RateLimited`] for a client over its hourly limit; a store failure.
    pub async fn request_magic_link(&self, email: &str) -> Result<(), AuthError> {
        self.request_magic_link_from(email, Requester::default())
            .await
    }

    pub(crate) async fn request_magic_link_from(
        &self,
        email: &str,
        requester: Requester<'_>,
    ) -> Result<(), AuthError> {
        self.mailer()?;
        let limit = self.inner.config.max_mails_per_hour;
        self.accept_mail_request(TokenPurpose::MagicLink, email, requester, limit)
            .await
    }

    /// `POST /sessions/magic`: redeems a magic link's token and starts a session, as a
    /// login does (the presented session ends first, the account's failed-login count is
    /// cleared); the link also confirms the email, since it reached its owner. The
    /// session counts as freshly authenticated (sudo). When the account was never
    /// confirmed, its password (unproven: anyone may have registered the address) is
    /// cleared and every other session, link and trusted device ends.
    ///
    /// # Errors
    /// [`AuthError::InvalidToken`] when the token is unknown, expired, used, or was mailed
    /// to an address the account no longer has; a store failure.
    pub async fn log_in_with_magic_link(
        &self,
        token: &str,
        login: MagicLinkLogin<'_>,
    ) -> Result<LoggedIn, AuthError> {
        let (_, owner) = self
            .peek_token(token, TokenPurpose::MagicLink)
            .await?
            .ok_or(AuthError::InvalidToken)?;
        let mut update = UserUpdate::new();
        if !owner.email_confirmed() {
            // The link proves the mailbox, not the password the account was registered with.
            update = clear_unproven_password(update.confirm_email(self.now_ms()));
        }
        let (_, user) = self
            .redeem_token(token, TokenPurpose::MagicLink, update)
            .await?
            .ok_or(AuthError::InvalidToken)?;
        if self.inner.config.end_presented_session_on_login {
            if let Some(old) = login.current_session.filter(|t| t.len() <= MAX_TOKEN_BYTES) {
                self.store().delete_session(&TokenHash::of(old)).await?;
            }
        }
        self.store()
            .reset_counter(&account_key(&user.email))
            .await?;
        let start = SessionStart {
            remembered: false,
            user_agent: login.user_agent,
            client_ip: login.client_ip,
        };
        let session_id = self.start_session(user.id, start).await?;
        event("logged_in_magic_link", Some(user.id));
        Ok(LoggedIn {
            cookie: self.session_cookie(&session_id),
            user,
            session_id,
        })
    }
}
