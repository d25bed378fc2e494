//! Sealing with the second-factor key (XChaCha20-Poly1305, random nonces): authenticator
//! secrets at rest, and ceremony state that a browser carries but must not read or change.

use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

use super::AuthError;
use crate::config::SecondFactorKey;

/// The prefix of a sealed value's text (the sealing's version).
const SEALED_PREFIX: &str = "v1:";
/// Bytes of an XChaCha20 nonce.
const NONCE_BYTES: usize = 24;

/// `plain` sealed with `key` together with `aad` (what it is bound to: it opens only with
/// the same `aad`), as URL-safe text.
pub(super) fn seal(key: &SecondFactorKey, aad: &[u8], plain: &[u8]) -> Result<String, AuthError> {
    let cipher = XChaCha20Poly1305::new(key.bytes().into());
    let mut nonce = [0u8; NONCE_BYTES];
    getrandom::fill(&mut nonce).map_err(AuthError::Random)?;
    let sealed = cipher
        .encrypt(XNonce::from_slice(&nonce), Payload { msg: plain, aad })
        .map_err(|_| sealing_failed())?;
    let mut stored = nonce.to_vec();
    stored.extend(sealed);
    Ok(format!(
        "{SEALED_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(stored)
    ))
}

/// What `sealed` holds, when `key` opens it with `aad`.
pub(super) fn unseal(
    key: &SecondFactorKey,
    aad: &[u8],
    sealed: &str,
) -> Result<Vec<u8>, AuthError> {
    let bytes = sealed
        .strip_prefix(SEALED_PREFIX)
        .and_then(|text| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(text)
                .ok()
        })
        .filter(|bytes| bytes.len() > NONCE_BYTES)
        .ok_or_else(sealing_failed)?;
    let (nonce, sealed) = bytes.split_at(NONCE_BYTES);
    let cipher = XChaCha20Poly1305::new(key.bytes().into());
    cipher
        .decrypt(XNonce::from_slice(nonce), Payload { msg: sealed, aad })
        .map_err(|_| sealing_failed())
}

/// A value sealed to be opened once, until it expires (a ceremony's or sign-in's state).
#[cfg(any(feature = "passkeys", feature = "oidc"))]
#[derive(serde::Serialize, serde::Deserialize)]
struct Once<T> {
    /// Random: what makes it single use.
    id: String,
    expires_at_ms: i64,
    body: T,
}

#[cfg(any(feature = "passkeys", feature = "oidc"))]
impl super::Auth {
    /// `body` sealed with `key` and `aad`, to open once within `lifetime`.
    pub(super) fn seal_once<T: serde::Serialize>(
        &self,
        key: &SecondFactorKey,
        aad: &[u8],
        body: T,
        lifetime: std::time::Duration,
    ) -> Result<String, AuthError> {
        let once = Once {
            id: crate::token::generate(crate::token::TokenFormat::Random256)
                .map_err(AuthError::Random)?,
            expires_at_ms: self
                .now_ms()
                .saturating_add(crate::clock::duration_ms(lifetime)),
            body,
        };
        let plain = serde_json::to_vec(&once).map_err(|e| AuthError::Mail(Box::new(e)))?;
        seal(key, aad, &plain)
    }

    /// What [`seal_once`](Self::seal_once) sealed, the first time only (its id is counted
    /// in the store for `lifetime`): an altered, expired or reopened value is
    /// [`AuthError::InvalidToken`].
    pub(super) async fn open_once<T: serde::de::DeserializeOwned>(
        &self,
        key: &SecondFactorKey,
        aad: &[u8],
        sealed: &str,
        lifetime: std::time::Duration,
    ) -> Result<T, AuthError> {
        let plain = unseal(key, aad, sealed).map_err(|_| AuthError::InvalidToken)?;
        let once: Once<T> = serde_json::from_slice(&plain).map_err(|_| AuthError::InvalidToken)?;
        let now = self.now_ms();
        if now >= once.expires_at_ms {
            return Err(AuthError::InvalidToken);
        }
        let counter = format!(
            "sealed_once:{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(crate::token::TokenHash::of(&once.id).as_bytes())
        );
        let uses = self
            .store()
            .increment_counter(&counter, now, crate::clock::duration_ms(lifetime))
            .await?;
        if uses.count > 1 {
            return Err(AuthError::InvalidToken);
        }
        Ok(once.body)
    }
}

/// A sealed value that does not open (another key, a damaged row): for stored secrets the
/// operator's problem, a 500 with a generic body. Callers that unseal what a client sent
/// map it to the client's error instead.
fn sealing_failed() -> AuthError {
    AuthError::Store(crate::store::StoreError::Backend(
        "a sealed value does not open with the configured second-factor key".into(),
    ))
}
