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

/// A sealed value that does not open (another key, a damaged row): for stored secrets the
/// operator's problem, a 500 with a generic body. Callers that unseal what a client sent
/// map it to the client's error instead.
fn sealing_failed() -> AuthError {
    AuthError::Store(crate::store::StoreError::Backend(
        "a sealed value does not open with the configured second-factor key".into(),
    ))
}
