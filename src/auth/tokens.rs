//! Secrets sent to a person: issued and redeemed the same way for every purpose (reset,
//! confirmation, magic link, email change), on the store's one token model.

use std::time::Duration;

use super::{Auth, AuthError, MAX_TOKEN_BYTES};
use crate::clock::duration_ms;
use crate::store::UserUpdate;
use crate::store::{EmailToken, OutgoingMail, StoreError, TokenPurpose};
use crate::token::{self, TokenFormat, TokenHash};
use crate::user::User;

/// How [`Auth::issue_token_shaped`] issues a token.
pub(super) struct IssueOptions {
    /// How the token looks.
    pub(super) format: TokenFormat,
    /// How many of the user's earlier tokens of its purpose stay (newest first); `None`:
    /// all, `Some(0)`: none.
    pub(super) keep_others: Option<u32>,
    /// The outbox id of the mail request it answers (see [`crate::store::MailRequest`]).
    pub(super) answers: Option<i64>,
}

impl Auth {
    /// Issues a token for `purpose` to `user`, sent to `sent_to`, valid for `ttl` while the
    /// account keeps its current email. Replaces the user's earlier tokens of that purpose.
    pub(super) async fn issue_token(
        &self,
        user: &User,
        purpose: TokenPurpose,
        sent_to: &str,
        ttl: Duration,
    ) -> Result<String, AuthError> {
        let options = IssueOptions {
            format: TokenFormat::Uuid,
            keep_others: Some(0),
            answers: None,
        };
        self.issue_token_shaped(user, purpose, sent_to, ttl, options, |_| Ok(Vec::new()))
            .await
    }

    /// [`issue_token`](Self::issue_token) with [`IssueOptions`], and the messages
    /// `mail(token)` makes queued in the same store transaction as the token.
    pub(super) async fn issue_token_shaped(
        &self,
        user: &User,
        purpose: TokenPurpose,
        sent_to: &str,
        ttl: Duration,
        options: IssueOptions,
        mail: impl Fn(&str) -> Result<Vec<OutgoingMail>, AuthError>,
    ) -> Result<String, AuthError> {
        let now = self.now_ms();
        for _ in 0..3 {
            let token = token::generate(options.format).map_err(AuthError::Random)?;
            let record = EmailToken {
                hash: TokenHash::of(&token),
                user_id: user.id,
                purpose,
                sent_to: sent_to.to_owned(),
                account_email: user.email.clone(),
                created_at_ms: now,
                expires_at_ms: now.saturating_add(duration_ms(ttl)),
            };
            let messages = mail(&token)?;
            match self
                .store()
                .create_token(record, options.keep_others, &messages, options.answers)
                .await
            {
                Ok(()) => return Ok(token),
                Err(StoreError::Duplicate) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(AuthError::TokenCollision)
    }

    /// The valid token `token` of `purpose` and its user, without consuming it: a cheap
    /// check before expensive work (hashing a new password).
    pub(super) async fn peek_token(
        &self,
        token: &str,
        purpose: TokenPurpose,
    ) -> Result<Option<(EmailToken, User)>, AuthError> {
        if token.is_empty() || token.len() > MAX_TOKEN_BYTES {
            return Ok(None);
        }
        Ok(self
            .store()
            .find_token(&TokenHash::of(token), purpose, self.now_ms())
            .await?)
    }

    /// Consumes `token` of `purpose` and applies `update` to its user, atomically: of two
    /// concurrent redemptions, one gets the user and the other `None`.
    pub(super) async fn redeem_token(
        &self,
        token: &str,
        purpose: TokenPurpose,
        update: UserUpdate,
    ) -> Result<Option<(EmailToken, User)>, AuthError> {
        if token.is_empty() || token.len() > MAX_TOKEN_BYTES {
            return Ok(None);
        }
        Ok(self
            .store()
            .redeem_token(&TokenHash::of(token), purpose, self.now_ms(), update)
            .await?)
    }
}
