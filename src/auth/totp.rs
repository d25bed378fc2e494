//! Authenticator apps (TOTP, RFC 6238: SHA-1, 6 digits, 30-second steps, one step of
//! skew): enrolment, which completes only with a valid code, the code check at login, and
//! removal. Each accepted time step is recorded, so a code cannot be used twice. The
//! shared secret is sealed at rest with the configured key, bound to its account.

use totp_rs::{Algorithm, TOTP};

use super::recovery_codes::RecoveryCodes;
use super::sealing::{seal, unseal};
use super::{Auth, AuthError, Client, event};
use crate::auth_methods::AuthMethod;
use crate::mail::MailKind;
use crate::store::{Factor, FactorKind, NewFactor};
use crate::user::{User, UserId};

/// Seconds per code.
const STEP: u64 = 30;
/// Bytes of a new shared secret (160 bits, RFC 4226's recommendation).
const SECRET_BYTES: usize = 20;

/// An authenticator app enrolment under way: what the user scans or types into the app.
/// Enrolment completes with [`Auth::confirm_totp`]. `Debug` never shows the secret.
#[non_exhaustive]
pub struct TotpEnrolment {
    /// The shared secret in base32, for typing in by hand.
    pub secret: String,
    /// The `otpauth://totp/...` URI an app takes (the QR code encodes it).
    pub uri: String,
    /// The URI as a QR code, an SVG document.
    pub qr_svg: String,
}

impl std::fmt::Debug for TotpEnrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpEnrolment([redacted])")
    }
}

impl Auth {
    /// Starts enrolling an authenticator app for the client's session's user, confirmed by
    /// the account's `password` (or, for an account without one, a recent authentication;
    /// see `confirm_entry_change`): a new secret, shown once as a URI, a QR code and base32.
    /// An earlier unfinished enrolment is replaced; nothing is asked at login until
    /// [`confirm_totp`](Self::confirm_totp) succeeds.
    ///
    /// # Errors
    /// [`AuthError::SecondFactorExists`] when an app is already enrolled;
    /// [`AuthError::PasswordRequired`]; [`AuthError::WrongPassword`];
    /// [`AuthError::ReauthenticationRequired`]; [`AuthError::NoSession`]; second factors
    /// off ([`AuthError::Config`]); a store failure.
    pub async fn start_totp_enrolment(
        &self,
        client: &Client,
        password: Option<&str>,
    ) -> Result<TotpEnrolment, AuthError> {
        let config = self.second_factor_config()?;
        let (session, user) = self.require_session(client.session_id()).await?;
        self.confirm_entry_change(client, &session, &user, password)
            .await?;
        let factors = self.store().list_factors(user.id).await?;
        if factors
            .iter()
            .any(|f| f.kind == FactorKind::Totp && f.confirmed)
        {
            return Err(AuthError::SecondFactorExists);
        }
        let mut secret = [0u8; SECRET_BYTES];
        getrandom::fill(&mut secret).map_err(AuthError::Random)?;
        let sealed = seal(&config.key, &account_aad(user.id), &secret)?;
        let mut factor = NewFactor::new(user.id, FactorKind::Totp, sealed, self.now_ms());
        factor.confirmed = false;
        factor.name = "authenticator app".into();
        self.store()
            .add_factors(vec![factor], Some((user.id, FactorKind::Totp)))
            .await?;
        let totp = totp_of(&secret, &config.issuer, &user.email)?;
        let uri = totp.get_url();
        let qr_svg = qrcode::QrCode::new(uri.as_bytes())
            .map_err(|e| AuthError::Mail(Box::new(e)))?
            .render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(200, 200)
            .build();
        event("totp_enrolment_started", Some(user.id));
        Ok(TotpEnrolment {
            secret: totp.get_secret_base32(),
            uri,
            qr_svg,
        })
    }

    /// Completes the enrolment with a code from the app: from now on a login of the account
    /// asks for a code. Returns the account's 10 recovery codes, shown once (earlier ones
    /// stop working); the account is mailed that a second factor was added, and the
    /// session counts as having used the app.
    ///
    /// # Errors
    /// [`AuthError::InvalidCode`]; [`AuthError::NoSecondFactor`] with no enrolment under
    /// way; [`AuthError::Throttled`]; [`AuthError::ReauthenticationRequired`];
    /// [`AuthError::NoSession`]; a store failure.
    pub async fn confirm_totp(
        &self,
        client: &Client,
        code: &str,
    ) -> Result<RecoveryCodes, AuthError> {
        let (session, user) = self.require_session(client.session_id()).await?;
        self.check_sudo(&session)?;
        let factor = self
            .store()
            .list_factors(user.id)
            .await?
            .into_iter()
            .find(|f| f.kind == FactorKind::Totp && !f.confirmed)
            .ok_or(AuthError::NoSecondFactor)?;
        let key = self.second_factor_counter(&user, client).await?;
        self.claim_second_factor_attempt(&key, &user).await?;
        self.check_code_of(&user, &factor, code, true).await?;
        self.store().reset_counter(&key).await?;
        let codes = self.replace_recovery_codes(&user).await?;
        self.store()
            .reauthenticate_session(&session.token_hash, self.now_ms(), AuthMethod::Totp.into())
            .await?;
        self.notify(MailKind::SecondFactorAdded, &user).await?;
        event("totp_enrolled", Some(user.id));
        Ok(codes)
    }

    /// Removes the authenticator app of the client's session's user, confirmed by the
    /// account's `password` (as [`start_totp_enrolment`](Self::start_totp_enrolment)), and the recovery codes when no passkey is left; the account is
    /// mailed. Returns whether an app was enrolled.
    ///
    /// # Errors
    /// [`AuthError::PasswordRequired`]; [`AuthError::WrongPassword`];
    /// [`AuthError::ReauthenticationRequired`]; [`AuthError::NoSession`]; a store failure.
    pub async fn disable_totp(
        &self,
        client: &Client,
        password: Option<&str>,
    ) -> Result<bool, AuthError> {
        let (session, user) = self.require_session(client.session_id()).await?;
        self.confirm_entry_change(client, &session, &user, password)
            .await?;
        let removed = self
            .store()
            .delete_factors(user.id, Some(FactorKind::Totp), None)
            .await?;
        self.end_recovery_codes_without_factor(&user).await?;
        if removed > 0 {
            self.notify(MailKind::SecondFactorRemoved, &user).await?;
            event("totp_removed", Some(user.id));
        }
        Ok(removed > 0)
    }

    /// Whether the client's session's user has an authenticator app enrolled.
    ///
    /// # Errors
    /// [`AuthError::NoSession`]; a store failure.
    pub async fn totp_enrolled(&self, client: &Client) -> Result<bool, AuthError> {
        let (_, user) = self.require_session(client.session_id()).await?;
        Ok(self
            .store()
            .list_factors(user.id)
            .await?
            .iter()
            .any(|f| f.kind == FactorKind::Totp && f.confirmed))
    }

    /// Checks an authenticator code of `user`'s enrolled app at login.
    pub(super) async fn check_totp(&self, user: &User, code: &str) -> Result<(), AuthError> {
        let factor = self
            .store()
            .list_factors(user.id)
            .await?
            .into_iter()
            .find(|f| f.kind == FactorKind::Totp && f.confirmed)
            .ok_or(AuthError::InvalidCode)?;
        self.check_code_of(user, &factor, code, false).await
    }

    /// Checks `code` against `factor` at the current step and one on either side, and
    /// records the step it matched, refusing it if that step (or a later one) was used
    /// already; with `confirm`, marks the factor confirmed in the same write.
    async fn check_code_of(
        &self,
        user: &User,
        factor: &Factor,
        code: &str,
        confirm: bool,
    ) -> Result<(), AuthError> {
        let config = self.second_factor_config()?;
        let code = code.trim();
        if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
            event("second_factor_failed", Some(user.id));
            return Err(AuthError::InvalidCode);
        }
        let secret = unseal(&config.key, &account_aad(user.id), &factor.secret)?;
        let totp = totp_of(&secret, &config.issuer, &user.email)?;
        let now_ms = self.now_ms();
        let now = u64::try_from(now_ms / 1000).unwrap_or(0);
        let matched = [now.saturating_sub(STEP), now, now + STEP]
            .into_iter()
            .find(|t| totp.check(code, *t))
            .map(|t| i64::try_from(t / STEP).unwrap_or(i64::MAX));
        let Some(step) = matched else {
            event("second_factor_failed", Some(user.id));
            return Err(AuthError::InvalidCode);
        };
        // Refused when this step, or a later one, was accepted before.
        self.spend_factor(user, factor.id, step, confirm).await
    }
}

/// What an authenticator secret is sealed together with: its account, so a sealed secret
/// copied to another account does not open.
fn account_aad(user_id: UserId) -> Vec<u8> {
    let mut aad = b"tower-auth totp secret\0".to_vec();
    aad.extend(user_id.0.to_be_bytes());
    aad
}

/// The RFC 6238 generator of `secret` for `account` (skew 0: the caller tries each step).
fn totp_of(secret: &[u8], issuer: &str, account: &str) -> Result<TOTP, AuthError> {
    TOTP::new(
        Algorithm::SHA1,
        6,
        0,
        STEP,
        secret.to_vec(),
        Some(issuer.to_owned()),
        account.to_owned(),
    )
    .map_err(|e| AuthError::Mail(Box::new(std::io::Error::other(e.to_string()))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SecondFactorKey;

    #[test]
    fn sealed_secrets_open_only_with_their_key_and_account() {
        let key = SecondFactorKey::from_bytes([7; 32]);
        let sealed = seal(&key, &account_aad(UserId(1)), b"12345678901234567890").unwrap();
        assert!(!sealed.contains("12345678901234567890"));
        let opened = unseal(&key, &account_aad(UserId(1)), &sealed).unwrap();
        assert_eq!(opened, b"12345678901234567890");
        assert!(unseal(&key, &account_aad(UserId(2)), &sealed).is_err());
        let other = SecondFactorKey::from_bytes([8; 32]);
        assert!(unseal(&other, &account_aad(UserId(1)), &sealed).is_err());
    }

    #[test]
    fn codes_follow_rfc_6238() {
        // RFC 6238, appendix B: SHA-1 at T = 59 s is 94287082 (8 digits), 287082 in 6.
        let totp = totp_of(b"12345678901234567890", "Example", "a@b.io").unwrap();
        assert!(totp.check("287082", 59));
        assert!(!totp.check("287083", 59));
        // 1111111109 s: 07081804 -> 081804.
        assert!(totp.check("081804", 1_111_111_109));
    }
}
