//! Password hashing on a bounded blocking pool, and the password policy.
//!
//! bcrypt is the only expensive thing this crate does. It never runs on the async executor:
//! [`HashPool`] runs it on tokio's blocking threads, at most `permits` at once, and sheds
//! work (with [`Overloaded`]) once more than `max_waiting` jobs are queued, so a login storm
//! costs the storm, not the logged-in users.

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};

use tokio::sync::{AcquireError, OwnedSemaphorePermit, Semaphore};

mod algorithms;

pub(crate) use algorithms::params_key;
pub use algorithms::{Argon2Params, Argon2id, ConfiguredHasher, HashAlgorithm};

/// bcrypt reads at most this many bytes of a password; longer ones are refused, never cut.
pub const MAX_PASSWORD_BYTES: usize = 72;

/// What an account without a usable password stores in place of a hash: no password
/// verifies against it (a login with it costs what a wrong password does), and no hasher
/// produces it. Set when a password nobody proved is cleared.
pub(crate) const NO_PASSWORD: &str = "!";

/// The lowest cost bcrypt accepts.
pub(crate) const MIN_COST: u32 = 4;
/// The highest cost bcrypt accepts.
pub(crate) const MAX_COST: u32 = 31;

/// Why a hasher could not hash or verify.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HashError {
    /// The password is longer than [`MAX_PASSWORD_BYTES`].
    #[error("password is longer than {MAX_PASSWORD_BYTES} bytes")]
    TooLong,
    /// bcrypt failed (bad cost, malformed stored hash, no randomness).
    #[error("bcrypt failed")]
    Bcrypt(#[from] bcrypt::BcryptError),
    /// The blocking thread running the job was lost (it panicked, or the runtime is
    /// shutting down).
    #[error("the hashing thread was lost")]
    Join(#[source] tokio::task::JoinError),
    /// The pool was closed.
    #[error("the hashing pool is closed")]
    Closed,
    /// argon2 failed (bad parameters, malformed stored hash).
    #[error("argon2 failed: {0}")]
    Argon2(String),
    /// The stored hash is of no format this crate knows.
    #[error("unknown password hash format")]
    UnknownFormat,
    /// Another hasher's failure.
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
    /// [`HashError::TooLong`] past [`MAX_PASSWORD_BYTES`]; another [`HashError`] otherwise.
    fn hash(&self, password: &str) -> Result<String, HashError>;

    /// Checks `password` against a stored hash.
    ///
    /// # Errors
    /// A [`HashError`] when the stored hash is malformed.
    fn verify(&self, password: &str, hash: &str) -> Result<bool, HashError>;

    /// True when `hash` (which just verified) was made with another algorithm or other
    /// parameters than [`hash`](Self::hash) uses now: the login that verified it then
    /// replaces it. Default: never.
    fn needs_rehash(&self, hash: &str) -> bool {
        let _ = hash;
        false
    }
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
    fn needs_rehash(&self, hash: &str) -> bool {
        hash.get(4..7) != Some(format!("{:02}$", self.cost).as_str())
    }

    fn hash(&self, password: &str) -> Result<String, HashError> {
        // bcrypt uses all 72 key bytes. `bcrypt::non_truncating_hash` counts the C string
        // terminator too and so refuses a password of exactly 72 bytes, though nothing of it
        // would be lost; checking the bound here keeps 72 usable and still never truncates.
        if password.len() > MAX_PASSWORD_BYTES {
            return Err(HashError::TooLong);
        }
        Ok(bcrypt::hash(password, self.cost)?)
    }

    fn verify(&self, password: &str, hash: &str) -> Result<bool, HashError> {
        if password.len() > MAX_PASSWORD_BYTES {
            return Ok(false);
        }
        Ok(bcrypt::verify(password, hash)?)
    }
}

/// The hashing pool is full: the request should be retried later (HTTP 503 + `Retry-After`).
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("too many password hashes are queued")]
pub struct Overloaded;

/// Runs a [`PasswordHasher`] on tokio's blocking pool, `permits` at a time, with at most
/// `max_waiting` jobs queued behind them. Clones share the same limits.
///
/// With two permits or more, the last one is a spare that a job takes only while the async
/// executor is (nearly) idle: once its workers have lately been busy more than a tenth of a
/// core on average (from tokio's `worker_total_busy_duration`), hashing keeps to
/// `permits - 1` threads and leaves a core to the requests that need no hashing. A login
/// storm alone still gets every core; a login storm beside logged-in traffic gets all but
/// one, so the operating system's scheduler does not share every core between hashes and
/// requests. Measured on 2 cores with `GET /profile` at 6,000 requests/s, hashing on both
/// cores raised its p99 about 5 times, on one core not measurably.
#[derive(Clone)]
pub struct HashPool {
    hasher: Arc<dyn PasswordHasher>,
    /// Every permit but the spare (at least one).
    permits: Arc<Semaphore>,
    /// The spare permit (with two permits or more).
    spare: Option<Arc<Semaphore>>,
    executor: Arc<ExecutorLoad>,
    in_flight: Arc<AtomicUsize>,
    limit: usize,
    permits_total: usize,
}

impl std::fmt::Debug for HashPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashPool")
            .field("in_flight", &self.in_flight.load(Ordering::Relaxed))
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

/// Whether the async executor is busy, from tokio's runtime metrics: a moving average of
/// the cores' worth of time its workers spent running tasks, sampled at most once per
/// [`WINDOW`](Self::WINDOW) (when a hash job asks).
#[derive(Default)]
struct ExecutorLoad {
    last: Mutex<Option<LoadSample>>,
    /// Unit tests set the answer instead of measuring it.
    #[cfg(test)]
    forced: Option<bool>,
}

struct LoadSample {
    at: Instant,
    busy_total: Duration,
    /// Moving average of the busy workers, in cores.
    cores: f64,
}

impl ExecutorLoad {
    /// The shortest time between two samples.
    const WINDOW: Duration = Duration::from_millis(25);
    /// A previous sample older than this says nothing about the load now.
    const STALE: Duration = Duration::from_secs(1);
    /// Weight of the newest sample in the moving average.
    const WEIGHT: f64 = 0.3;
    /// Busy above this many cores' worth. Measured on 2 cores: a login storm alone keeps the
    /// workers busy 0.02 core (0.07 at the 90th percentile of 25 ms samples); `GET /profile`
    /// at 6,000 requests/s, 0.2 core.
    const THRESHOLD: f64 = 0.1;

    /// True when the runtime's workers were busy more than [`THRESHOLD`](Self::THRESHOLD)
    /// cores on average lately (false outside a tokio runtime, and after a second without
    /// samples).
    fn busy(&self) -> bool {
        #[cfg(test)]
        if let Some(forced) = self.forced {
            return forced;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return false;
        };
        let now = Instant::now();
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(sample) = &*last
            && now.duration_since(sample.at) < Self::WINDOW
        {
            return sample.cores > Self::THRESHOLD;
        }
        let metrics = runtime.metrics();
        let busy_total: Duration = (0..metrics.num_workers())
            .map(|worker| metrics.worker_total_busy_duration(worker))
            .sum();
        let cores = match &*last {
            // A sample long ago says nothing about now: start over from this one, as idle.
            // (Another runtime than last time can also have a smaller total: idle too.)
            Some(sample) if now.duration_since(sample.at) <= Self::STALE => {
                let elapsed = now.duration_since(sample.at).as_secs_f64();
                let busy = busy_total.saturating_sub(sample.busy_total).as_secs_f64();
                sample.cores * (1.0 - Self::WEIGHT) + busy / elapsed * Self::WEIGHT
            }
            _ => 0.0,
        };
        *last = Some(LoadSample {
            at: now,
            busy_total,
            cores,
        });
        cores > Self::THRESHOLD
    }
}

/// Releases a pool slot when the job finishes or the caller gives up waiting.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A place in a [`HashPool`], from [`HashPool::reserve`]; given back when dropped.
#[must_use = "dropping a reservation gives its place back at once"]
pub struct Reservation(Slot);

impl std::fmt::Debug for Reservation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Reservation")
    }
}

impl HashPool {
    /// A pool running `hasher` with `permits` concurrent jobs and `max_waiting` queued ones.
    pub fn new(hasher: Arc<dyn PasswordHasher>, permits: usize, max_waiting: usize) -> Self {
        let permits = permits.max(1);
        Self {
            hasher,
            permits: Arc::new(Semaphore::new(permits.saturating_sub(1).max(1))),
            spare: (permits >= 2).then(|| Arc::new(Semaphore::new(1))),
            executor: Arc::default(),
            in_flight: Arc::new(AtomicUsize::new(0)),
            limit: permits.saturating_add(max_waiting),
            permits_total: permits,
        }
    }

    /// How many jobs may hash at once (the regular permits and the spare).
    pub fn permits(&self) -> usize {
        self.permits_total
    }

    /// True when the hasher would replace `hash` (see [`PasswordHasher::needs_rehash`]).
    pub fn needs_rehash(&self, hash: &str) -> bool {
        self.hasher.needs_rehash(hash)
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

    /// [`hash`](Self::hash) in a place taken earlier with [`reserve`](Self::reserve).
    ///
    /// # Errors
    /// The hasher's error.
    pub async fn hash_reserved(
        &self,
        reservation: Reservation,
        password: String,
    ) -> Result<String, PoolError> {
        self.run_reserved(reservation, move |h| h.hash(&password))
            .await?
            .map_err(PoolError::Hash)
    }

    /// Hashes a password with the algorithm and parameters `key` names (a
    /// `params_key` of a stored hash), whatever the hasher: the dummy hash an unknown
    /// email is verified against when stored hashes usually have other parameters.
    pub(crate) async fn hash_like(
        &self,
        password: String,
        key: String,
    ) -> Result<String, PoolError> {
        self.run(move |_| algorithms::hash_like(&password, &key))
            .await?
            .map_err(PoolError::Hash)
    }

    /// Verifies a password against a stored hash.
    ///
    /// # Errors
    /// [`PoolError::Overloaded`] when the queue is full, or the hasher's error.
    pub async fn verify(&self, password: String, hash: String) -> Result<bool, PoolError> {
        let reservation = self.reserve().map_err(PoolError::Overloaded)?;
        self.verify_reserved(reservation, password, hash).await
    }

    /// Takes a place in the pool now, for a [`verify_reserved`](Self::verify_reserved) that
    /// comes after other work, so that the request is shed (or not) before that work is done:
    /// a login claims its attempt against the account only once it is sure to be hashed.
    /// Dropping the reservation gives the place back.
    ///
    /// # Errors
    /// [`Overloaded`] when the pool is full.
    pub fn reserve(&self) -> Result<Reservation, Overloaded> {
        if self.in_flight.fetch_add(1, Ordering::AcqRel) >= self.limit {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            return Err(Overloaded);
        }
        Ok(Reservation(Slot(self.in_flight.clone())))
    }

    /// [`verify`](Self::verify) in a place taken earlier with [`reserve`](Self::reserve).
    ///
    /// # Errors
    /// The hasher's error.
    pub async fn verify_reserved(
        &self,
        reservation: Reservation,
        password: String,
        hash: String,
    ) -> Result<bool, PoolError> {
        self.run_reserved(reservation, move |h| h.verify(&password, &hash))
            .await?
            .map_err(PoolError::Hash)
    }

    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce(&dyn PasswordHasher) -> T + Send + 'static,
    ) -> Result<T, PoolError> {
        let reservation = self.reserve().map_err(PoolError::Overloaded)?;
        self.run_reserved(reservation, job).await
    }

    async fn run_reserved<T: Send + 'static>(
        &self,
        Reservation(slot): Reservation,
        job: impl FnOnce(&dyn PasswordHasher) -> T + Send + 'static,
    ) -> Result<T, PoolError> {
        let permit = self
            .acquire()
            .await
            .map_err(|_| PoolError::Hash(HashError::Closed))?;
        let hasher = self.hasher.clone();
        // The job owns its permit and slot: if the caller goes away, the thread finishes the
        // hash and only then frees the capacity it really used.
        tokio::task::spawn_blocking(move || {
            let _held = (permit, slot);
            job(&*hasher)
        })
        .await
        .map_err(|e| PoolError::Hash(HashError::Join(e)))
    }
}

impl HashPool {
    /// A permit to hash: one of the regular ones, or the spare while the executor is not
    /// busy (whichever comes first; both queues are first come, first served).
    async fn acquire(&self) -> Result<OwnedSemaphorePermit, AcquireError> {
        let regular = self.permits.clone().acquire_owned();
        let Some(spare) = &self.spare else {
            return regular.await;
        };
        if let Ok(permit) = self.permits.clone().try_acquire_owned() {
            return Ok(permit);
        }
        let mut regular = pin!(regular);
        let mut spare = (!self.executor.busy()).then(|| Box::pin(spare.clone().acquire_owned()));
        poll_fn(|cx| {
            if let Poll::Ready(permit) = regular.as_mut().poll(cx) {
                return Poll::Ready(permit);
            }
            if let Some(waiting) = &mut spare
                && let Poll::Ready(permit) = waiting.as_mut().poll(cx)
            {
                if permit.is_err() || !self.executor.busy() {
                    return Poll::Ready(permit);
                }
                // Busy again since this job queued: pass the spare on, wait for a
                // regular permit.
                spare = None;
            }
            Poll::Pending
        })
        .await
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
    /// Lowest strength accepted, as `zxcvbn` scores it (0 to 4: 3 means "safely
    /// unguessable", under 10^10 guesses for an attacker who knows the patterns people
    /// use), or `None` to skip the estimate. The estimator knows repeated words,
    /// sequences, keyboard walks, dates, common names and words, and the context words
    /// below; its warning goes in the 400 body.
    pub min_strength: Option<u8>,
    /// Words an attacker would try first for this service (its name, its domain, its
    /// product names). The account's own email and its parts are always added.
    pub context_words: Vec<String>,
}

impl PasswordPolicy {
    /// The seed's policy: any non-empty password bcrypt can take whole.
    pub fn spec() -> Self {
        Self {
            min_chars: 1,
            reject_common: false,
            min_strength: None,
            context_words: Vec::new(),
        }
    }

    /// NIST SP 800-63B-4 for single-factor passwords: at least 15 characters, no
    /// composition rules, not a commonly used password; and (ASVS 5.0 V6, OWASP) not a
    /// predictable one: a `zxcvbn` score of at least 3.
    pub fn hardened() -> Self {
        Self {
            min_chars: 15,
            reject_common: true,
            min_strength: Some(3),
            context_words: Vec::new(),
        }
    }

    /// Checks a candidate password, with no account context.
    ///
    /// # Errors
    /// Why the password is refused: a [`PasswordRejection`] a caller can match on, whose
    /// `Display` is fit for a 400 body.
    pub fn check(&self, password: &str) -> Result<(), PasswordRejection> {
        self.check_for(password, None)
    }

    /// Checks a candidate password for the account `email` (whose address, name and
    /// domain then count as guessable words, with [`context_words`](Self::context_words)).
    ///
    /// # Errors
    /// As [`check`](Self::check).
    pub fn check_for(&self, password: &str, email: Option<&str>) -> Result<(), PasswordRejection> {
        if password.is_empty() {
            return Err(PasswordRejection::Empty);
        }
        if password.len() > MAX_PASSWORD_BYTES {
            return Err(PasswordRejection::TooLong {
                max_bytes: MAX_PASSWORD_BYTES,
            });
        }
        if password.contains('\0') {
            return Err(PasswordRejection::ContainsNul);
        }
        if password.chars().count() < self.min_chars {
            return Err(PasswordRejection::TooShort {
                min_chars: self.min_chars,
            });
        }
        if self.reject_common && crate::common_passwords::contains(password) {
            return Err(PasswordRejection::Common);
        }
        if let Some(min) = self.min_strength {
            let inputs = self.guessable_words(email);
            let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
            let estimate = zxcvbn::zxcvbn(password, &inputs);
            if u8::from(estimate.score()) < min {
                let feedback = estimate.feedback();
                return Err(PasswordRejection::Predictable {
                    warning: feedback.and_then(|f| f.warning()).map(|w| w.to_string()),
                    suggestion: feedback
                        .and_then(|f| f.suggestions().first())
                        .map(|s| s.to_string()),
                });
            }
        }
        Ok(())
    }

    /// The context words, with the email, its local part, its domain and the pieces of
    /// each (split at `.`, `_`, `-`, `+` and `@`).
    fn guessable_words(&self, email: Option<&str>) -> Vec<String> {
        let mut words: Vec<String> = self.context_words.clone();
        if let Some(email) = email {
            words.push(email.to_owned());
            words.extend(email.split('@').map(str::to_owned));
            words.extend(
                email
                    .split(['.', '_', '-', '+', '@'])
                    .filter(|w| w.chars().count() >= 3)
                    .map(str::to_owned),
            );
        }
        words
    }
}

/// Why a [`PasswordPolicy`] refused a password. Its `Display` is a sentence for the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PasswordRejection {
    /// No password at all.
    #[error("password must not be empty")]
    Empty,
    /// Longer than bcrypt can take whole.
    #[error("password must be at most {max_bytes} bytes")]
    TooLong {
        /// The most bytes accepted.
        max_bytes: usize,
    },
    /// Contains a NUL character, which bcrypt implementations treat as the end.
    #[error("password must not contain NUL characters")]
    ContainsNul,
    /// Fewer characters than the policy's minimum.
    #[error("password must be at least {min_chars} characters")]
    TooShort {
        /// The fewest characters accepted.
        min_chars: usize,
    },
    /// On the list of commonly used passwords.
    #[error("password is too common; choose another")]
    Common,
    /// The strength estimator finds it predictable (a repeated word, a sequence, a
    /// keyboard walk, the email or the service's name...).
    #[error("{}", predictable_message(warning.as_deref(), suggestion.as_deref()))]
    Predictable {
        /// What makes it predictable, when the estimator can say.
        warning: Option<String>,
        /// How to choose a better one, when the estimator can say.
        suggestion: Option<String>,
    },
}

/// The sentence for [`PasswordRejection::Predictable`].
fn predictable_message(warning: Option<&str>, suggestion: Option<&str>) -> String {
    let mut message = "password is too easy to guess".to_owned();
    for part in [warning, suggestion].into_iter().flatten() {
        message.push_str(": ");
        message.push_str(part.trim_end_matches('.'));
    }
    message
}

/// Time to hash one password with bcrypt at `cost` on this machine (one measurement).
///
/// # Errors
/// When bcrypt refuses the cost.
pub fn time_hash(cost: u32) -> Result<Duration, HashError> {
    let start = Instant::now();
    Bcrypt::new(cost).hash("calibration password")?;
    Ok(start.elapsed())
}

/// The median of `samples` (at least 1) measurements of [`time_hash`]: one measurement can
/// be slowed down by anything else the machine runs, the median of three rarely is.
///
/// # Errors
/// When bcrypt refuses the cost.
pub fn time_hash_median(cost: u32, samples: usize) -> Result<Duration, HashError> {
    median_of(samples, || time_hash(cost))
}

/// The median of `samples` (at least 1) runs of `measure`.
fn median_of(
    samples: usize,
    mut measure: impl FnMut() -> Result<Duration, HashError>,
) -> Result<Duration, HashError> {
    let mut times = (0..samples.max(1))
        .map(|_| measure())
        .collect::<Result<Vec<_>, _>>()?;
    times.sort_unstable();
    Ok(times[times.len() / 2])
}

/// The highest bcrypt cost (from 4 up) whose hash takes at most `target` on this machine.
///
/// Costs are tried from 4 upwards and the search stops at the first one over the target.
/// Each cost is hashed once; a cost whose hash takes more than half the target is near the
/// boundary, so it is hashed twice more and judged by the median of the three, which keeps
/// one hiccup of a busy machine from deciding the answer. In all it takes about ten times
/// the target at most (2.5 s for 250 ms). Never returns less than 4.
///
/// Run it on the machine (and under the load) the service will have: the answer is only as
/// good as the measurement. Each step up doubles the time, so the hash time at the returned
/// cost is usually between half the target and the target.
///
/// # Errors
/// When bcrypt refuses a cost (not expected below 31).
pub fn calibrate(target: Duration) -> Result<u32, HashError> {
    let mut best = MIN_COST;
    for cost in MIN_COST..=MAX_COST {
        let mut time = time_hash(cost)?;
        if time > target / 2 {
            let mut times = [time, time_hash(cost)?, time_hash(cost)?];
            times.sort_unstable();
            time = times[1];
        }
        if time > target {
            break;
        }
        best = cost;
    }
    Ok(best)
}

/// Time to hash one password with argon2id at `params` on this machine (one measurement).
///
/// # Errors
/// When argon2 refuses the parameters.
pub fn time_argon2(params: Argon2Params) -> Result<Duration, HashError> {
    let hasher = Argon2id::new(params);
    let start = Instant::now();
    hasher.hash("calibration password")?;
    Ok(start.elapsed())
}

/// The median of `samples` (at least 1) measurements of [`time_argon2`].
///
/// # Errors
/// When argon2 refuses the parameters.
pub fn time_argon2_median(params: Argon2Params, samples: usize) -> Result<Duration, HashError> {
    median_of(samples, || time_argon2(params))
}

/// The argon2id parameters that fit `target` on this machine, never below OWASP's minimum
/// ([`Argon2Params::OWASP_MINIMUM`], 19 MiB and 2 passes, returned as is when even that
/// takes longer than the target).
///
/// Memory first (it is what makes guessing expensive on GPUs): from 19 MiB, the memory
/// doubles while a hash at 2 passes stays within the target, up to `max_memory_kib`; then
/// passes are added at that memory while they fit. Each step is the median of three hashes.
///
/// # Errors
/// When argon2 refuses parameters (not expected in this range).
pub fn calibrate_argon2(target: Duration, max_memory_kib: u32) -> Result<Argon2Params, HashError> {
    let floor = Argon2Params::OWASP_MINIMUM;
    let mut best = floor;
    let mut memory = floor.memory_kib;
    while let Some(next) = memory.checked_mul(2).filter(|m| *m <= max_memory_kib) {
        let candidate = Argon2Params::new(next, floor.iterations, 1);
        if time_argon2_median(candidate, 3)? > target {
            break;
        }
        best = candidate;
        memory = next;
    }
    loop {
        let candidate = Argon2Params::new(best.memory_kib, best.iterations + 1, 1);
        if time_argon2_median(candidate, 3)? > target {
            return Ok(best);
        }
        best = candidate;
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    use super::*;

    /// Polls a future once, without waiting.
    fn poll_once<F: Future>(future: std::pin::Pin<&mut F>) -> Poll<F::Output> {
        future.poll(&mut Context::from_waker(Waker::noop()))
    }

    fn pool(busy: bool) -> HashPool {
        let mut pool = HashPool::new(Arc::new(Bcrypt::new(4)), 2, 8);
        pool.executor = Arc::new(ExecutorLoad {
            forced: Some(busy),
            ..ExecutorLoad::default()
        });
        pool
    }

    /// With two permits, the second is a spare: taken while the executor is idle (a login
    /// storm alone gets every core), held back while it is busy (logged-in traffic keeps a
    /// core).
    #[test]
    fn the_spare_permit_is_held_back_while_the_executor_is_busy() {
        let busy = pool(true);
        let regular = pool_permit(&busy);
        let mut waiting = pin!(busy.acquire());
        assert!(
            poll_once(waiting.as_mut()).is_pending(),
            "a busy executor keeps the spare: the second job waits"
        );
        assert_eq!(
            busy.spare.as_ref().map(|s| s.available_permits()),
            Some(1),
            "the spare is untouched"
        );
        drop(regular);
        assert!(
            matches!(poll_once(waiting.as_mut()), Poll::Ready(Ok(_))),
            "the waiting job takes the regular permit once it is free"
        );

        let idle = pool(false);
        let _regular = pool_permit(&idle);
        let mut second = pin!(idle.acquire());
        assert!(
            matches!(poll_once(second.as_mut()), Poll::Ready(Ok(_))),
            "an idle executor lends the spare: both jobs hash at once"
        );
    }

    fn pool_permit(pool: &HashPool) -> OwnedSemaphorePermit {
        match poll_once(pin!(pool.acquire())) {
            Poll::Ready(Ok(permit)) => permit,
            other => panic!("the first permit is free, got {other:?}"),
        }
    }
}
