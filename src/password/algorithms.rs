//! The hashing algorithms: bcrypt (the seed's) and argon2id (OWASP's first choice), and
//! [`ConfiguredHasher`], which hashes with the configured one and verifies both.

use std::sync::{Arc, Mutex, PoisonError};

use argon2::password_hash::{Output, PasswordHash, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Block, Version};

use super::{Bcrypt, HashError, MAX_PASSWORD_BYTES, PasswordHasher};

/// The algorithm new password hashes use. Verification accepts every supported format
/// whatever this says, so a deployment can move from one to the other without a reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HashAlgorithm {
    /// bcrypt at [`AuthConfig::bcrypt_cost`](crate::AuthConfig::bcrypt_cost); hashes look
    /// like `$2b$12$...`.
    Bcrypt,
    /// argon2id with [`AuthConfig::argon2`](crate::AuthConfig::argon2); hashes are PHC
    /// strings, `$argon2id$v=19$m=...,t=...,p=...$...`.
    Argon2id,
}

/// argon2id's cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Argon2Params {
    /// Memory per hash, in KiB (`m`).
    pub memory_kib: u32,
    /// Passes over that memory (`t`).
    pub iterations: u32,
    /// Lanes (`p`).
    pub parallelism: u32,
}

impl Argon2Params {
    /// OWASP's minimum for argon2id (Password Storage Cheat Sheet): 19 MiB, 2 passes, 1 lane.
    pub const OWASP_MINIMUM: Self = Self {
        memory_kib: 19 * 1024,
        iterations: 2,
        parallelism: 1,
    };

    /// Parameters with these costs.
    pub fn new(memory_kib: u32, iterations: u32, parallelism: u32) -> Self {
        Self {
            memory_kib,
            iterations,
            parallelism,
        }
    }

    /// Memory one hash takes, in bytes.
    pub fn memory_bytes(&self) -> u64 {
        u64::from(self.memory_kib) * 1024
    }

    /// The argon2 library's form of these parameters, if it accepts them.
    fn library_params(&self) -> Result<argon2::Params, HashError> {
        argon2::Params::new(self.memory_kib, self.iterations, self.parallelism, None)
            .map_err(|e| HashError::Argon2(e.to_string()))
    }

    /// Whether the library accepts these parameters.
    pub(crate) fn is_valid(&self) -> bool {
        self.library_params().is_ok()
    }
}

impl Default for Argon2Params {
    /// [`Argon2Params::OWASP_MINIMUM`].
    fn default() -> Self {
        Self::OWASP_MINIMUM
    }
}

/// argon2id with fixed parameters (RustCrypto's `argon2`).
///
/// Each hash needs `m` KiB of working memory. It is kept and reused rather than allocated
/// and freed per hash: the allocator would otherwise keep freed blocks in per-thread arenas
/// of the blocking pool's many threads, and the process's memory would grow far past
/// `permits x m` (measured: 543 MiB peak for three 19 MiB hashes at a time, 67 MiB with reuse).
/// At most as many buffers are kept as hashes ever ran at once.
#[derive(Debug, Clone)]
pub struct Argon2id {
    params: Argon2Params,
    buffers: Arc<Mutex<Vec<Vec<Block>>>>,
}

impl Argon2id {
    /// argon2id with `params`.
    pub fn new(params: Argon2Params) -> Self {
        Self {
            params,
            buffers: Arc::default(),
        }
    }

    /// The configured parameters.
    pub fn params(&self) -> Argon2Params {
        self.params
    }

    /// Runs `job` with working memory of `blocks` blocks: a kept buffer of that size, or a
    /// new one that is kept afterwards.
    fn with_memory<T>(&self, blocks: usize, job: impl FnOnce(&mut [Block]) -> T) -> T {
        let taken = {
            let mut free = self.buffers.lock().unwrap_or_else(PoisonError::into_inner);
            free.iter()
                .position(|b| b.len() == blocks)
                .map(|i| free.swap_remove(i))
        };
        let mut buffer = taken.unwrap_or_else(|| vec![Block::default(); blocks]);
        let result = job(&mut buffer);
        self.buffers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(buffer);
        result
    }

    /// The raw argon2id output for `password` and `salt` with `params`, `len` bytes.
    fn raw(
        &self,
        params: argon2::Params,
        version: Version,
        password: &str,
        salt: &[u8],
        len: usize,
    ) -> Result<Vec<u8>, HashError> {
        let blocks = params.block_count();
        let argon2 = argon2::Argon2::new(Algorithm::Argon2id, version, params);
        let mut out = vec![0u8; len];
        self.with_memory(blocks, |memory| {
            argon2.hash_password_into_with_memory(password.as_bytes(), salt, &mut out, memory)
        })
        .map_err(|e| HashError::Argon2(e.to_string()))?;
        Ok(out)
    }

    /// Verifies against a PHC argon2id string, with the parameters it records.
    fn verify_phc(&self, password: &str, parsed: &PasswordHash<'_>) -> Result<bool, HashError> {
        let argon2_err = |e: argon2::password_hash::Error| HashError::Argon2(e.to_string());
        let params = argon2::Params::try_from(parsed).map_err(argon2_err)?;
        let version = Version::try_from(parsed.version.unwrap_or(0x13))
            .map_err(|e| HashError::Argon2(e.to_string()))?;
        let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
            return Err(HashError::Argon2("the hash has no salt or output".into()));
        };
        let mut salt_buf = [0u8; 64];
        let salt = salt.decode_b64(&mut salt_buf).map_err(argon2_err)?;
        let raw = self.raw(params, version, password, salt, expected.len())?;
        // `Output`'s equality is constant-time.
        Ok(Output::new(&raw).map_err(argon2_err)? == expected)
    }
}

impl PasswordHasher for Argon2id {
    fn hash(&self, password: &str) -> Result<String, HashError> {
        let argon2_err = |e: argon2::password_hash::Error| HashError::Argon2(e.to_string());
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt).map_err(|e| HashError::Argon2(e.to_string()))?;
        let raw = self.raw(
            self.params.library_params()?,
            Version::V0x13,
            password,
            &salt,
            argon2::Params::DEFAULT_OUTPUT_LEN,
        )?;
        let salt = SaltString::encode_b64(&salt).map_err(argon2_err)?;
        let output = Output::new(&raw).map_err(argon2_err)?;
        let Argon2Params {
            memory_kib,
            iterations,
            parallelism,
        } = self.params;
        Ok(format!(
            "$argon2id$v=19$m={memory_kib},t={iterations},p={parallelism}${}${output}",
            salt.as_str()
        ))
    }

    fn verify(&self, password: &str, hash: &str) -> Result<bool, HashError> {
        let parsed = PasswordHash::new(hash).map_err(|e| HashError::Argon2(e.to_string()))?;
        if parsed.algorithm == Algorithm::Argon2id.ident() {
            self.verify_phc(password, &parsed)
        } else {
            verify_other_argon2(password, &parsed)
        }
    }

    fn needs_rehash(&self, hash: &str) -> bool {
        argon2_params(hash) != Some(self.params)
    }
}

/// Verifies argon2i and argon2d hashes (not made here, but valid PHC strings).
fn verify_other_argon2(password: &str, parsed: &PasswordHash<'_>) -> Result<bool, HashError> {
    match argon2::Argon2::default().verify_password(password.as_bytes(), parsed) {
        Ok(()) => Ok(true),
        Err(argon2::password_hash::Error::Password) => Ok(false),
        Err(e) => Err(HashError::Argon2(e.to_string())),
    }
}

/// The argon2id parameters a PHC string records; `None` for anything else.
fn argon2_params(hash: &str) -> Option<Argon2Params> {
    let parsed = PasswordHash::new(hash).ok()?;
    if parsed.algorithm != Algorithm::Argon2id.ident() {
        return None;
    }
    let params = argon2::Params::try_from(&parsed).ok()?;
    Some(Argon2Params::new(
        params.m_cost(),
        params.t_cost(),
        params.p_cost(),
    ))
}

/// A name for the algorithm and parameters a stored hash was made with (what its
/// verification costs): `$2b$12` for bcrypt at cost 12 (`$2a$`/`$2y$` alike),
/// `$argon2id$v=19$m=19456,t=2,p=1` for argon2; `None` for anything else.
pub(crate) fn params_key(hash: &str) -> Option<String> {
    if let Some(cost) = bcrypt_cost(hash) {
        return Some(format!("$2b${cost:02}"));
    }
    if !hash.starts_with("$argon2") {
        return None;
    }
    let fields: Vec<&str> = hash.split('$').collect();
    // "", algorithm, [version,] parameters, salt, hash.
    (fields.len() >= 5).then(|| fields[..fields.len() - 2].join("$"))
}

/// Hashes `password` with the algorithm and parameters a [`params_key`] names.
pub(crate) fn hash_like(password: &str, key: &str) -> Result<String, HashError> {
    if let Some(cost) = bcrypt_cost(&format!("{key}$")) {
        return Bcrypt::new(cost).hash(password);
    }
    let params = argon2_params(&format!("{key}$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA"))
        .ok_or(HashError::UnknownFormat)?;
    Argon2id::new(params).hash(password)
}

/// The bcrypt cost a `$2?$NN$` hash records.
fn bcrypt_cost(hash: &str) -> Option<u32> {
    let rest = hash
        .strip_prefix("$2b$")
        .or_else(|| hash.strip_prefix("$2a$"))
        .or_else(|| hash.strip_prefix("$2y$"))?;
    rest.get(..2)?.parse().ok()
}

/// The hasher [`AuthConfig`](crate::AuthConfig) describes, and the one [`Auth`](crate::Auth)
/// uses unless told otherwise: new hashes with the configured algorithm and parameters;
/// verification of bcrypt (`$2a$`, `$2b$`, `$2y$`) and argon2 PHC hashes alike; and
/// [`needs_rehash`](PasswordHasher::needs_rehash) for a stored hash of another algorithm or
/// of less work than the configured parameters, so a successful login upgrades it. A stored
/// hash of *more* work than configured is kept (a lower cost set by mistake, or for a
/// test, must not weaken every password it meets) unless
/// [`allow_downgrade`](Self::allow_downgrade) says otherwise.
#[derive(Debug, Clone)]
pub struct ConfiguredHasher {
    algorithm: HashAlgorithm,
    bcrypt: Bcrypt,
    argon2: Argon2id,
    downgrade: bool,
}

impl ConfiguredHasher {
    /// New hashes with `algorithm`, at `bcrypt_cost` or with `argon2`.
    pub fn new(algorithm: HashAlgorithm, bcrypt_cost: u32, argon2: Argon2Params) -> Self {
        Self {
            algorithm,
            bcrypt: Bcrypt::new(bcrypt_cost),
            argon2: Argon2id::new(argon2),
            downgrade: false,
        }
    }

    /// With `true`, a stored hash of the configured algorithm but more work than the
    /// configured parameters is rehashed down to them at its next login (for a deliberate
    /// lowering, such as a cost calibrated on a faster machine).
    pub fn allow_downgrade(mut self, allow: bool) -> Self {
        self.downgrade = allow;
        self
    }

    /// The [`params_key`] of the hashes it makes.
    pub(crate) fn params_key(&self) -> String {
        match self.algorithm {
            HashAlgorithm::Bcrypt => format!("$2b${:02}", self.bcrypt.cost()),
            HashAlgorithm::Argon2id => {
                let p = self.argon2.params();
                format!(
                    "$argon2id$v=19$m={},t={},p={}",
                    p.memory_kib, p.iterations, p.parallelism
                )
            }
        }
    }

    /// The hasher a configuration describes.
    pub fn from_config(config: &crate::AuthConfig) -> Self {
        Self::new(config.hash_algorithm, config.bcrypt_cost, config.argon2)
            .allow_downgrade(config.allow_hash_downgrade)
    }
}

impl PasswordHasher for ConfiguredHasher {
    fn hash(&self, password: &str) -> Result<String, HashError> {
        match self.algorithm {
            HashAlgorithm::Bcrypt => self.bcrypt.hash(password),
            HashAlgorithm::Argon2id => {
                // The same bound for both algorithms: a password accepted once is accepted
                // after a change of algorithm.
                if password.len() > MAX_PASSWORD_BYTES {
                    return Err(HashError::TooLong);
                }
                self.argon2.hash(password)
            }
        }
    }

    fn verify(&self, password: &str, hash: &str) -> Result<bool, HashError> {
        if bcrypt_cost(hash).is_some() {
            self.bcrypt.verify(password, hash)
        } else if hash.starts_with("$argon2") {
            if password.len() > MAX_PASSWORD_BYTES {
                return Ok(false);
            }
            self.argon2.verify(password, hash)
        } else {
            Err(HashError::UnknownFormat)
        }
    }

    fn needs_rehash(&self, hash: &str) -> bool {
        match self.algorithm {
            HashAlgorithm::Bcrypt => match bcrypt_cost(hash) {
                Some(cost) if self.downgrade => cost != self.bcrypt.cost(),
                Some(cost) => cost < self.bcrypt.cost(),
                // Another algorithm: the configuration moved away from it.
                None => true,
            },
            HashAlgorithm::Argon2id => match argon2_params(hash) {
                Some(params) if self.downgrade => params != self.argon2.params(),
                // Work is memory times passes; lanes only spread it.
                Some(params) => {
                    let work = |p: Argon2Params| u64::from(p.memory_kib) * u64::from(p.iterations);
                    work(params) < work(self.argon2.params())
                }
                None => true,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAST: Argon2Params = Argon2Params {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };

    #[test]
    fn every_format_verifies_whatever_the_configured_algorithm() {
        let bcrypt = ConfiguredHasher::new(HashAlgorithm::Bcrypt, 4, FAST);
        let argon2 = ConfiguredHasher::new(HashAlgorithm::Argon2id, 4, FAST);
        let b = bcrypt.hash("pw").unwrap();
        let a = argon2.hash("pw").unwrap();
        assert!(b.starts_with("$2b$04$"), "{b}");
        assert!(a.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{a}");
        for hasher in [bcrypt, argon2] {
            for hash in [&b, &a] {
                assert!(hasher.verify("pw", hash).unwrap());
                assert!(!hasher.verify("other", hash).unwrap());
            }
            // $2a$ and $2y$ spellings of a bcrypt hash.
            for prefix in ["$2a$", "$2y$"] {
                let spelled = format!("{prefix}{}", &b[4..]);
                assert!(hasher.verify("pw", &spelled).unwrap(), "{spelled}");
            }
            assert!(matches!(
                hasher.verify("pw", "plaintext"),
                Err(HashError::UnknownFormat)
            ));
        }
    }

    #[test]
    fn argon2id_strings_interoperate_with_the_argon2_crate() {
        let ours = Argon2id::new(FAST);
        let hash = ours.hash("pw").unwrap();
        let parsed = PasswordHash::new(&hash).unwrap();
        assert!(
            argon2::Argon2::default()
                .verify_password(b"pw", &parsed)
                .is_ok(),
            "the crate's own verifier accepts our PHC string"
        );
        let theirs = argon2::PasswordHasher::hash_password(
            &argon2::Argon2::new(
                Algorithm::Argon2id,
                Version::V0x13,
                FAST.library_params().unwrap(),
            ),
            b"pw",
            &SaltString::encode_b64(b"0123456789abcdef").unwrap(),
        )
        .unwrap()
        .to_string();
        assert!(ours.verify("pw", &theirs).unwrap());
        assert!(!ours.verify("px", &theirs).unwrap());
        let argon2i = argon2::PasswordHasher::hash_password(
            &argon2::Argon2::new(
                Algorithm::Argon2i,
                Version::V0x13,
                argon2::Params::new(64, 1, 1, None).unwrap(),
            ),
            b"pw",
            &SaltString::encode_b64(b"0123456789abcdef").unwrap(),
        )
        .unwrap()
        .to_string();
        assert!(ours.verify("pw", &argon2i).unwrap(), "argon2i verifies too");
    }

    #[test]
    fn a_hash_of_other_parameters_or_algorithm_needs_a_rehash() {
        let bcrypt5 = ConfiguredHasher::new(HashAlgorithm::Bcrypt, 5, FAST);
        let bcrypt4 = ConfiguredHasher::new(HashAlgorithm::Bcrypt, 4, FAST);
        let argon2 = ConfiguredHasher::new(HashAlgorithm::Argon2id, 4, FAST);
        let stronger =
            ConfiguredHasher::new(HashAlgorithm::Argon2id, 4, Argon2Params::new(128, 1, 1));
        let b4 = bcrypt4.hash("pw").unwrap();
        let a = argon2.hash("pw").unwrap();
        assert!(!bcrypt4.needs_rehash(&b4));
        assert!(bcrypt5.needs_rehash(&b4), "cost 4 -> 5");
        assert!(argon2.needs_rehash(&b4), "bcrypt -> argon2id");
        assert!(bcrypt4.needs_rehash(&a), "argon2id -> bcrypt");
        assert!(!argon2.needs_rehash(&a));
        assert!(stronger.needs_rehash(&a), "m=64 -> m=128");
        let b5 = bcrypt5.hash("pw").unwrap();
        let strong = stronger.hash("pw").unwrap();
        assert!(!bcrypt4.needs_rehash(&b5), "cost 5 is never lowered to 4");
        assert!(
            !argon2.needs_rehash(&strong),
            "m=128 is never lowered to 64"
        );
        assert!(bcrypt4.clone().allow_downgrade(true).needs_rehash(&b5));
        assert!(argon2.clone().allow_downgrade(true).needs_rehash(&strong));
    }

    #[test]
    fn dummy_hashes_take_the_parameters_of_a_stored_hash() {
        let b5 = ConfiguredHasher::new(HashAlgorithm::Bcrypt, 5, FAST)
            .hash("pw")
            .unwrap();
        let key = params_key(&b5).unwrap();
        assert_eq!(key, "$2b$05");
        assert_eq!(
            params_key(&hash_like("x", &key).unwrap()).as_deref(),
            Some("$2b$05")
        );
        let a = ConfiguredHasher::new(HashAlgorithm::Argon2id, 4, FAST)
            .hash("pw")
            .unwrap();
        let key = params_key(&a).unwrap();
        assert_eq!(key, "$argon2id$v=19$m=64,t=1,p=1");
        assert_eq!(
            ConfiguredHasher::new(HashAlgorithm::Argon2id, 4, FAST).params_key(),
            key
        );
        assert_eq!(
            ConfiguredHasher::new(HashAlgorithm::Bcrypt, 5, FAST).params_key(),
            "$2b$05"
        );
        assert_eq!(params_key(&hash_like("x", &key).unwrap()), Some(key));
        assert_eq!(params_key("!"), None);
    }
}
