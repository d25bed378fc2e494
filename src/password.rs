//! Password hashing on a bounded blocking pool, and the password policy.
//!
//! bcrypt is the only expensive thing this crate does. It never runs on the async executor:
//! [`HashPool`] runs it on tokio's blocking threads, at most `permits` at once, and sheds
//! work (with [`Overloaded`]) once more than `max_waiting` jobs are queued, so a login storm
//! costs the storm, not the logged-in users.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

/// bcrypt reads at most this many bytes of a password; longer ones are refused, never cut.
pub const MAX_PASSWORD_BYTES: usize = 72;

/// The lowest cost bcrypt accepts.
const MIN_COST: u32 = 4;

/// Why a hasher could not hash or verify.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HashError {
    /// The password is longer than [`MAX_PASSWORD_BYTES`].
    #[error("password is longer than {MAX_PASSWORD_BYTES} bytes")]
    TooLong,
    /// The hashing library failed (bad cost, malformed stored hash, no randomness).
    #[error("password hashing failed: {0}")]
    Internal(String),
}

/// A password hashing scheme. [`Bcrypt`] is the one this crate ships; tests and benchmarks
/// plug in others (counting or blocking hashers).
///
/// Both methods are called on a blocking thread and may take as long as they need.
pub trait PasswordHasher: Send + Sync + 'static {
    /// Hashes `password` with a fresh salt.
    ///
    /// # Errors
    /// [`HashError::TooLong`] past [`MAX_PASSWORD_BYTES`]; [`HashError::Internal`] otherwise.
    fn hash(&self, password: &str) -> Result<String, HashError>;

    /// Checks `password` against a stored hash.
    ///
    /// # Errors
    /// [`HashError::Internal`] when the stored hash is malformed.
    fn verify(&self, password: &str, hash: &str) -> Result<bool, HashError>;
}

/// bcrypt at a fixed cost (the seed uses 12).
#[derive(Debug, Clone, Copy)]
pub struct Bcrypt {
    cost: u32,
}

impl Bcrypt {
    /// bcrypt with `cost` (4 to 31; each step doubles the work).
    pub fn new(cost: u32) -> Self {
        Self { cost }
    }

    /// The configured cost.
    pub fn cost(&self) -> u32 {
        self.cost
    }
}

impl PasswordHasher for Bcrypt {
    fn hash(&self, password: &str) -> Result<String, HashError> {
        // bcrypt uses all 72 key bytes. `bcrypt::non_truncating_hash` counts the C string
        // terminator too and so refuses a password of exactly 72 bytes, though nothing of it
        // would be lost; checking the bound here keeps 72 usable and still never truncates.
        if password.len() > MAX_PASSWORD_BYTES {
            return Err(HashError::TooLong);
        }
        bcrypt::hash(password, self.cost).map_err(|e| HashError::Internal(e.to_string()))
    }

    fn verify(&self, password: &str, hash: &str) -> Result<bool, HashError> {
        if password.len() > MAX_PASSWORD_BYTES {
            return Ok(false);
        }
        bcrypt::verify(password, hash).map_err(|e| HashError::Internal(e.to_string()))
    }
}

/// The hashing pool is full: the request should be retried later (HTTP 503 + `Retry-After`).
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("too many password hashes are queued")]
pub struct Overloaded;

/// Runs a [`PasswordHasher`] on tokio's blocking pool, `permits` at a time, with at most
/// `max_waiting` jobs queued behind them. Clones share the same limits.
#[derive(Clone)]
pub struct HashPool {
    hasher: Arc<dyn PasswordHasher>,
    permits: Arc<Semaphore>,
    in_flight: Arc<AtomicUsize>,
    limit: usize,
}

impl std::fmt::Debug for HashPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashPool")
            .field("in_flight", &self.in_flight.load(Ordering::Relaxed))
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

/// Releases a pool slot when the job finishes or the caller gives up waiting.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl HashPool {
    /// A pool running `hasher` with `permits` concurrent jobs and `max_waiting` queued ones.
    pub fn new(hasher: Arc<dyn PasswordHasher>, permits: usize, max_waiting: usize) -> Self {
        let permits = permits.max(1);
        Self {
            hasher,
            permits: Arc::new(Semaphore::new(permits)),
            in_flight: Arc::new(AtomicUsize::new(0)),
            limit: permits.saturating_add(max_waiting),
        }
    }

    /// Jobs running or queued right now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Hashes a password.
    ///
    /// # Errors
    /// [`PoolError::Overloaded`] when the queue is full, or the hasher's error.
    pub async fn hash(&self, password: String) -> Result<String, PoolError> {
        self.run(move |h| h.hash(&password))
            .await?
            .map_err(PoolError::Hash)
    }

    /// Verifies a password against a stored hash.
    ///
    /// # Errors
    /// [`PoolError::Overloaded`] when the queue is full, or the hasher's error.
    pub async fn verify(&self, password: String, hash: String) -> Result<bool, PoolError> {
        self.run(move |h| h.verify(&password, &hash))
            .await?
            .map_err(PoolError::Hash)
    }

    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce(&dyn PasswordHasher) -> T + Send + 'static,
    ) -> Result<T, PoolError> {
        if self.in_flight.fetch_add(1, Ordering::AcqRel) >= self.limit {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            return Err(PoolError::Overloaded(Overloaded));
        }
        let slot = Slot(self.in_flight.clone());
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| PoolError::Hash(HashError::Internal("hash pool closed".into())))?;
        let hasher = self.hasher.clone();
        // The job owns its permit and slot: if the caller goes away, the thread finishes the
        // hash and only then frees the capacity it really used.
        tokio::task::spawn_blocking(move || {
            let _held = (permit, slot);
            job(&*hasher)
        })
        .await
        .map_err(|e| PoolError::Hash(HashError::Internal(e.to_string())))
    }
}

/// Why a [`HashPool`] job did not produce a result.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PoolError {
    /// Shed: too many jobs queued.
    #[error(transparent)]
    Overloaded(Overloaded),
    /// The hasher failed.
    #[error(transparent)]
    Hash(HashError),
}

/// What a new password must satisfy. Checked before any hashing.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PasswordPolicy {
    /// Fewest characters (Unicode scalar values, not bytes) accepted.
    pub min_chars: usize,
    /// Refuse passwords found on the shipped list of commonly used passwords.
    pub reject_common: bool,
}

impl PasswordPolicy {
    /// The seed's policy: any non-empty password bcrypt can take whole.
    pub fn spec() -> Self {
        Self {
            min_chars: 1,
            reject_common: false,
        }
    }

    /// NIST SP 800-63B-4 for single-factor passwords: at least 15 characters, no
    /// composition rules, not a commonly used password.
    pub fn hardened() -> Self {
        Self {
            min_chars: 15,
            reject_common: true,
        }
    }

    /// Checks a candidate password, returning a reason a user can act on.
    ///
    /// # Errors
    /// The reason the password is refused, fit for a 400 body.
    pub fn check(&self, password: &str) -> Result<(), String> {
        if password.is_empty() {
            return Err("password must not be empty".into());
        }
        if password.len() > MAX_PASSWORD_BYTES {
            return Err(format!(
                "password must be at most {MAX_PASSWORD_BYTES} bytes"
            ));
        }
        if password.contains('\0') {
            return Err("password must not contain NUL characters".into());
        }
        if password.chars().count() < self.min_chars {
            return Err(format!(
                "password must be at least {} characters",
                self.min_chars
            ));
        }
        if self.reject_common && crate::common_passwords::contains(password) {
            return Err("password is too common; choose another".into());
        }
        Ok(())
    }
}

/// Time to hash one password at `cost` on this machine (one measurement).
///
/// # Errors
/// When bcrypt refuses the cost.
pub fn time_hash(cost: u32) -> Result<Duration, HashError> {
    let start = Instant::now();
    Bcrypt::new(cost).hash("calibration password")?;
    Ok(start.elapsed())
}

/// The highest bcrypt cost (from 4 up) whose single hash takes at most `target` on this
/// machine. Stops at the first cost over the target, so it costs at most about twice the
/// target in total. Never returns less than 4.
///
/// # Errors
/// When bcrypt refuses a cost (not expected below 31).
pub fn calibrate(target: Duration) -> Result<u32, HashError> {
    let mut best = MIN_COST;
    for cost in MIN_COST..=31 {
        if time_hash(cost)? > target {
            break;
        }
        best = cost;
    }
    Ok(best)
}
