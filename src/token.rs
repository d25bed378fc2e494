//! Session and reset tokens: generation from the OS CSPRNG and hashing for storage at rest.

use std::fmt;

use base64::Engine as _;
use sha2::{Digest, Sha256};

/// The shape of newly issued tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenFormat {
    /// A UUID v4 string (122 random bits), as the seed issues.
    Uuid,
    /// 32 random bytes in unpadded base64url: 43 characters, 256 bits.
    Random256,
}

/// Makes a new token in the given format from the operating system's random source.
pub(crate) fn generate(format: TokenFormat) -> Result<String, getrandom::Error> {
    match format {
        TokenFormat::Uuid => {
            let mut bytes = [0u8; 16];
            getrandom::fill(&mut bytes)?;
            Ok(uuid::Builder::from_random_bytes(bytes)
                .into_uuid()
                .hyphenated()
                .to_string())
        }
        TokenFormat::Random256 => {
            let mut bytes = [0u8; 32];
            getrandom::fill(&mut bytes)?;
            Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
        }
    }
}

/// SHA-256 of a token: what stores keep instead of the token, so a copied database grants
/// no session and redeems no reset.
///
/// `Debug` never shows the bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash(pub [u8; 32]);

impl TokenHash {
    /// Hashes a token as received from a client or as just generated.
    pub fn of(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
    }

    /// The raw digest bytes, for storing.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Rebuilds a hash read back from storage; `None` when the length is not 32.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(bytes).ok().map(Self)
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenHash([redacted])")
    }
}

#[cfg(test)]
mod tests {
    proptest::proptest! {
        /// Any stored bytes: a hash exactly when there are 32 of them, never a panic.
        #[test]
        fn stored_hashes_parse_only_at_their_length(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let parsed = super::TokenHash::from_slice(&bytes);
            proptest::prop_assert_eq!(parsed.is_some(), bytes.len() == 32);
            if let Some(hash) = parsed {
                proptest::prop_assert_eq!(&hash.as_bytes()[..], &bytes[..]);
            }
        }
    }

    use super::*;

    #[test]
    fn uuid_tokens_are_v4_and_distinct() {
        let a = generate(TokenFormat::Uuid).unwrap();
        let b = generate(TokenFormat::Uuid).unwrap();
        assert_ne!(a, b);
        let parsed = uuid::Uuid::parse_str(&a).unwrap();
        assert_eq!(parsed.get_version_num(), 4);
        assert_eq!(a.len(), 36);
    }

    #[test]
    fn random_tokens_are_43_base64url_chars() {
        let t = generate(TokenFormat::Random256).unwrap();
        assert_eq!(t.len(), 43);
        assert!(
            t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
    }

    #[test]
    fn hash_is_stable_and_hidden_from_debug() {
        assert_eq!(TokenHash::of("x"), TokenHash::of("x"));
        assert_ne!(TokenHash::of("x"), TokenHash::of("y"));
        assert_eq!(format!("{:?}", TokenHash::of("x")), "TokenHash([redacted])");
    }
}
