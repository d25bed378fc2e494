//! Logging in with a mailed, single-use link.

use super::confirmation::clear_unproven_password;
use super::login::{LoggedIn, Login};
use super::throttle::account_key;
use super::{Auth, AuthError, Client, event};
use crate::auth_methods::AuthMethod;
use crate::store::TokenPurpose;
use crate::store::UserUpdate;

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
    pub async fn request_magic_link(&self, client: &Client, email: &str) -> Result<(), AuthError> {
        self.mailer()?;
        let limit = self.inner.config.max_mails_per_hour;
        self.accept_mail_request(TokenPurpose::MagicLink, email, client, limit)
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
        client: &Client,
        token: &str,
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
        self.store()
            .reset_counter(&account_key(&user.email))
            .await?;
        event("magic_link_redeemed", Some(user.id));
        let login = Login {
            methods: AuthMethod::MagicLink.into(),
            remember_me: false,
            trust_device: false,
        };
        self.finish_login(client, user, login).await
    }
}
