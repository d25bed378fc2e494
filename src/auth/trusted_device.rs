//! Trusted devices, after OWASP's "device cookies": a client that logged in to an account
//! successfully gets a cookie naming a device record of that account. Its later logins to
//! that account are throttled by failures of their own, never by the account's or the
//! address's counters, so a stranger who exhausts an account's failure limit (from one
//! address or many) locks out other strangers, not the owner's own browsers. A guesser
//! gains nothing from it: a device cookie is only issued after the right password.
//!
//! The record is an emailed-token row of purpose `trusted_device` (stored hashed, expiring,
//! dead when the account's email changes), so it needs no table of its own.

use base64::Engine as _;

use super::cookie::SessionCookie;
use super::tokens::IssueOptions;
use super::{Auth, AuthError, MAX_TOKEN_BYTES, normalize_email};
use crate::store::TokenPurpose;
use crate::token::{TokenFormat, TokenHash};
use crate::user::User;

/// Trusted devices kept per account: enough for a person's browsers, few enough that a
/// script logging in without cookies does not grow the table without bound.
pub(crate) const MAX_TRUSTED_DEVICES: u32 = 10;

impl Auth {
    /// The failure counter of the trusted device `token` presents, when it is a live device
    /// of the account `email` names; `None` otherwise (the client is untrusted).
    pub(super) async fn trusted_device_key(
        &self,
        token: Option<&str>,
        email: &str,
    ) -> Result<Option<String>, AuthError> {
        let Some(token) = token.filter(|t| !t.is_empty() && t.len() <= MAX_TOKEN_BYTES) else {
            return Ok(None);
        };
        if self.inner.config.trusted_device_cookie.is_none() {
            return Ok(None);
        }
        let Ok(email) = normalize_email(email) else {
            return Ok(None);
        };
        let hash = TokenHash::of(token);
        let device = self
            .store()
            .find_token(&hash, TokenPurpose::TrustedDevice, self.now_ms())
            .await?;
        Ok(device
            .filter(|(_, user)| user.email == email)
            .map(|_| device_key(&hash)))
    }

    /// After a successful login from an untrusted client: a new device record for `user`
    /// and the cookie that names it (`None` when trusted devices are off).
    pub(super) async fn trust_device(
        &self,
        user: &User,
    ) -> Result<Option<SessionCookie>, AuthError> {
        let config = &self.inner.config;
        let Some(name) = &config.trusted_device_cookie else {
            return Ok(None);
        };
        let token = self
            .issue_token_shaped(
                user,
                TokenPurpose::TrustedDevice,
                &user.email,
                config.trusted_device_lifetime,
                IssueOptions {
                    format: TokenFormat::Random256,
                    // One record per device, not per login: a client that logs in again
                    // without its cookie gets a new one, and only the newest few stay.
                    keep_others: Some(MAX_TRUSTED_DEVICES - 1),
                    answers: None,
                },
                |_| Ok(Vec::new()),
            )
            .await?;
        Ok(self.side_cookie(name, token, Some(config.trusted_device_lifetime)))
    }
}

/// The failure counter of one trusted device.
fn device_key(hash: &TokenHash) -> String {
    format!(
        "login:device:{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(hash.as_bytes())
    )
}
