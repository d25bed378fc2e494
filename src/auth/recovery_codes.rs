//! Recovery codes: 10 single-use codes made with an authenticator app's enrolment, for
//! when the app is lost. Shown once, stored as SHA-256 (each has 50 random bits: a slow
//! hash adds nothing), regenerable in sudo mode; each use is mailed to the account.

use sha2::{Digest, Sha256};

use super::{Auth, AuthError, Client, event};
use crate::store::{FactorKind, NewFactor};
use crate::user::User;

/// Codes made at once.
const CODES: usize = 10;
/// The alphabet of a code: lower-case letters and digits a person cannot confuse.
const ALPHABET: &[u8; 32] = b"abcdefghjkmnpqrstuvwxyz23456789z";

/// New recovery codes, to show the user once (`xxxxx-xxxxx`). `Debug` never shows them.
#[derive(Clone, serde::Serialize)]
pub struct RecoveryCodes(pub Vec<String>);

impl std::fmt::Debug for RecoveryCodes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RecoveryCodes([{} redacted])", self.0.len())
    }
}

impl Auth {
    /// New recovery codes for the client's session's user (confirmed by the account's
    /// `password`, or without one a recent authentication; an enrolled second factor); the
    /// earlier ones stop working.
    ///
    /// # Errors
    /// [`AuthError::NoSecondFactor`]; [`AuthError::PasswordRequired`];
    /// [`AuthError::WrongPassword`]; [`AuthError::ReauthenticationRequired`];
    /// [`AuthError::NoSession`]; a store failure.
    pub async fn regenerate_recovery_codes(
        &self,
        client: &Client,
        password: Option<&str>,
    ) -> Result<RecoveryCodes, AuthError> {
        let (session, user) = self.require_session(client.session_id()).await?;
        self.confirm_entry_change(client, &session, &user, password)
            .await?;
        let enrolled = self
            .store()
            .list_factors(user.id)
            .await?
            .iter()
            .any(crate::store::Factor::signs_in);
        if !enrolled {
            return Err(AuthError::NoSecondFactor);
        }
        let codes = self.replace_recovery_codes(&user).await?;
        event("recovery_codes_regenerated", Some(user.id));
        Ok(codes)
    }

    /// How many unused recovery codes the client's session's user has.
    ///
    /// # Errors
    /// [`AuthError::NoSession`]; a store failure.
    pub async fn recovery_codes_left(&self, client: &Client) -> Result<usize, AuthError> {
        let (_, user) = self.require_session(client.session_id()).await?;
        Ok(self
            .store()
            .list_factors(user.id)
            .await?
            .iter()
            .filter(|f| f.kind == FactorKind::RecoveryCode && f.counter == 0)
            .count())
    }

    /// Makes `user`'s recovery codes anew, in one store transaction.
    pub(super) async fn replace_recovery_codes(
        &self,
        user: &User,
    ) -> Result<RecoveryCodes, AuthError> {
        let now = self.now_ms();
        let mut codes = Vec::with_capacity(CODES);
        let mut factors = Vec::with_capacity(CODES);
        for _ in 0..CODES {
            let code = new_code()?;
            factors.push(NewFactor::new(
                user.id,
                FactorKind::RecoveryCode,
                digest(&code),
                now,
            ));
            codes.push(code);
        }
        self.store()
            .add_factors(factors, Some((user.id, FactorKind::RecoveryCode)))
            .await?;
        Ok(RecoveryCodes(codes))
    }

    /// Uses one of `user`'s recovery codes: refused when it is not one, or was used.
    pub(super) async fn use_recovery_code(&self, user: &User, code: &str) -> Result<(), AuthError> {
        let wanted = digest(code);
        let found = self
            .store()
            .list_factors(user.id)
            .await?
            .into_iter()
            .find(|f| f.kind == FactorKind::RecoveryCode && f.secret == wanted);
        let Some(factor) = found else {
            event("second_factor_failed", Some(user.id));
            return Err(AuthError::InvalidCode);
        };
        // Unused codes count 0, a used one 1.
        self.spend_factor(user, factor.id, 1, false).await
    }
}

/// A new code: 10 characters of [`ALPHABET`] in two groups.
fn new_code() -> Result<String, AuthError> {
    let mut random = [0u8; 10];
    getrandom::fill(&mut random).map_err(AuthError::Random)?;
    let chars: String = random
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(b & 31)]))
        .collect();
    Ok(format!("{}-{}", &chars[..5], &chars[5..]))
}

/// The stored form of a code as typed: case, spaces and dashes do not matter.
fn digest(code: &str) -> String {
    let normalized: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    Sha256::digest(normalized.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
