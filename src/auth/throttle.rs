//! Login throttling: fixed-window failure counters per account and per client, kept in the
//! store so every instance on one database shares them.
//!
//! Counter keys have a fixed size whatever the input: the account's key is a hash of the
//! normalized email, and input that cannot be an email counts under the client only.
//! Expired counters go with the store's periodic sweep.

use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::{Auth, AuthError, Client, event, normalize_email};
use crate::clock::duration_ms;
use crate::store::Counter;
use crate::store::UserLookup;
use crate::user::{User, UserId};

/// The counters one login attempt claimed (each with the end of the window it counted
/// in), to settle when it succeeds or to give back when it is shed.
pub(super) struct LoginClaim {
    account: Option<(String, i64)>,
    client: Option<(String, i64)>,
    /// A trusted device's (or session's) own counter, used instead of the other two.
    trusted: Option<(String, i64)>,
}

impl LoginClaim {
    /// True when the attempt came from a trusted device or session.
    pub(super) fn is_trusted(&self) -> bool {
        self.trusted.is_some()
    }
}

/// The account's failure counter: `login:account:` and the base64url SHA-256 of the
/// normalized email (57 bytes, whatever was typed).
pub(super) fn account_key(normalized_email: &str) -> String {
    account_counter("login", normalized_email)
}

/// An account's `kind` counter (`login`, `reset`, `magic`...): `<kind>:account:` and the
/// base64url SHA-256 of the normalized email, so that known and unknown emails cost the
/// same and the key's size is bounded whatever was typed.
pub(super) fn account_counter(kind: &str, normalized_email: &str) -> String {
    let digest = Sha256::digest(normalized_email.as_bytes());
    format!(
        "{kind}:account:{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
    )
}

/// The client's failure counter.
fn client_key(ip: IpAddr) -> String {
    format!("login:ip:{ip}")
}

impl Auth {
    /// Claims this attempt against the client's and the account's counters (or, from a
    /// trusted device or session, against `trusted`'s own counter), or refuses it.
    ///
    /// Counters are claimed atomically *before* verifying, so concurrent guesses cannot all
    /// pass a check made before any of them had failed: at most `max_login_failures`
    /// attempts per account (or trusted client) and `max_login_failures_per_ip` per client
    /// reach the hasher in a window. A client over its limit is refused here, before it
    /// takes a place in the hashing pool.
    pub(super) async fn claim_login_attempt(
        &self,
        email: &str,
        client_ip: Option<IpAddr>,
        trusted: Option<String>,
    ) -> Result<LoginClaim, AuthError> {
        let config = &self.inner.config;
        let now = self.now_ms();
        let window = duration_ms(config.login_failure_window);
        if let Some(key) = trusted {
            let counter = self.store().increment_counter(&key, now, window).await?;
            if counter.count > config.max_login_failures {
                return Err(self.throttled(email, counter, now).await?);
            }
            return Ok(LoginClaim {
                account: None,
                client: None,
                trusted: Some((key, counter.window_ends_ms)),
            });
        }
        let client = match client_ip {
            Some(ip) => {
                let key = client_key(ip);
                let counter = self.store().increment_counter(&key, now, window).await?;
                if counter.count > config.max_login_failures_per_ip {
                    return Err(self.throttled(email, counter, now).await?);
                }
                Some((key, counter.window_ends_ms))
            }
            None => {
                self.warn_no_client_ip();
                None
            }
        };
        let account = match normalize_email(email) {
            Ok(normalized) => {
                let key = account_key(&normalized);
                let counter = self.store().increment_counter(&key, now, window).await?;
                if counter.count > config.max_login_failures {
                    return Err(self.throttled(email, counter, now).await?);
                }
                Some((key, counter.window_ends_ms))
            }
            // Not an email: no account can match, the client's counter is enough.
            Err(_) => None,
        };
        Ok(LoginClaim {
            account,
            client,
            trusted: None,
        })
    }

    /// After a successful login: an untrusted client's success forgives the account's
    /// failures and takes back its own claim on the client's counter (which counts
    /// failures only); a trusted client's forgives its own counter only, so a stranger's
    /// failures on the account keep counting against strangers.
    pub(super) async fn settle_successful_login(&self, claim: LoginClaim) -> Result<(), AuthError> {
        if let Some((key, _)) = claim.trusted {
            self.store().reset_counter(&key).await?;
        }
        if let Some((key, _)) = claim.account {
            self.store().reset_counter(&key).await?;
        }
        if let Some((key, window_ends_ms)) = claim.client {
            self.store().release_counter(&key, window_ends_ms).await?;
        }
        Ok(())
    }

    /// [`AuthError::Throttled`] while `user`'s account is over its failure limit: a login
    /// verified by other means waits out the window as a password login would.
    pub(super) async fn check_account_not_throttled(&self, user: &User) -> Result<(), AuthError> {
        let now = self.now_ms();
        if let Some(counter) = self
            .store()
            .get_counter(&account_key(&user.email), now)
            .await?
            && counter.count >= self.inner.config.max_login_failures
        {
            event("login_throttled", Some(user.id));
            return Err(AuthError::Throttled {
                retry_after: Duration::from_millis(
                    u64::try_from(counter.window_ends_ms - now).unwrap_or(0),
                ),
            });
        }
        Ok(())
    }

    /// Counts a failed verification of the application's own (a wrong PIN, a refused
    /// invite) against the account's and the client's login failure limits, as a wrong
    /// password would be: past them, [`log_in`](Self::log_in) and
    /// [`log_in_verified`](Self::log_in_verified) answer [`AuthError::Throttled`].
    ///
    /// # Errors
    /// [`AuthError::UnknownUser`]; a store failure.
    pub async fn note_failed_verification(
        &self,
        client: &Client,
        user_id: UserId,
    ) -> Result<(), AuthError> {
        let user = self.user_by_id(user_id).await?;
        let now = self.now_ms();
        let window = duration_ms(self.inner.config.login_failure_window);
        self.store()
            .increment_counter(&account_key(&user.email), now, window)
            .await?;
        if let Some(ip) = client.ip {
            self.store()
                .increment_counter(&client_key(ip), now, window)
                .await?;
        }
        event("login_failed", Some(user.id));
        Ok(())
    }

    /// Gives back every claim of an attempt that was shed before it was verified (a full
    /// hashing pool, or the client's full share): it must not count against anyone.
    pub(super) async fn release_claim(&self, claim: LoginClaim) -> Result<(), AuthError> {
        for (key, window_ends_ms) in [claim.trusted, claim.account, claim.client]
            .into_iter()
            .flatten()
        {
            self.store().release_counter(&key, window_ends_ms).await?;
        }
        Ok(())
    }

    /// Counts one `kind` request (`register`, `reset`) from `client` in an hourly window,
    /// and refuses it past `limit` with [`AuthError::RateLimited`]. Nothing to count
    /// without a client address or a limit.
    pub(super) async fn limit_per_client(
        &self,
        kind: &str,
        client: Option<IpAddr>,
        limit: Option<u32>,
    ) -> Result<(), AuthError> {
        let (Some(ip), Some(limit)) = (client, limit) else {
            return Ok(());
        };
        let now = self.now_ms();
        let counter = self
            .store()
            .increment_counter(&format!("{kind}:ip:{ip}"), now, 3_600_000)
            .await?;
        if counter.count > limit {
            event("rate_limited", None);
            return Err(AuthError::RateLimited {
                retry_after: Duration::from_millis(
                    u64::try_from(counter.window_ends_ms - now).unwrap_or(0),
                ),
            });
        }
        Ok(())
    }

    /// The answer to a throttled login, after emitting its event (with the user id when
    /// the account exists: the lookup is made for known and unknown emails alike).
    async fn throttled(
        &self,
        email: &str,
        counter: Counter,
        now: i64,
    ) -> Result<AuthError, AuthError> {
        let user_id = match normalize_email(email) {
            Ok(email) => self
                .store()
                .find_user_by(UserLookup::Email(&email))
                .await?
                .map(|r| r.user.id),
            Err(_) => None,
        };
        event("login_throttled", user_id);
        Ok(AuthError::Throttled {
            retry_after: Duration::from_millis(
                u64::try_from(counter.window_ends_ms - now).unwrap_or(0),
            ),
        })
    }

    /// Per-client throttling needs the client's address; say once, loudly, when a login
    /// arrives without one, rather than letting the protection lapse in silence.
    fn warn_no_client_ip(&self) {
        if !self.inner.warned_no_client_ip.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                target: "tower_auth",
                "per-client login throttling is off: a login arrived without the client's \
                 address. Serve the app with \
                 `into_make_service_with_connect_info::<SocketAddr>()`, or set \
                 `trusted_proxies` behind proxies that set X-Forwarded-For"
            );
        }
    }
}
