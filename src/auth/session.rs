//! Sessions: started after a login, found on every authenticated request, swept when
//! expired. Their rows live in a table of their own (see
//! [`Session`](crate::store::Session) for why).

use std::sync::atomic::Ordering;

use super::{Auth, AuthError, MAX_TOKEN_BYTES};
use crate::clock::duration_ms;
use crate::store::{Session, StoreError};
use crate::token::{self, TokenHash};
use crate::user::{User, UserId};

/// How often a session's last-seen time is written: at most once per this interval, so an
/// authenticated request is a single read almost always.
const TOUCH_INTERVAL_MS: i64 = 60_000;
/// How often expired sessions, tokens and counters are swept from the store.
const SWEEP_INTERVAL_MS: i64 = 10 * 60_000;

impl Auth {
    /// The user a session token belongs to, or `None` when it is absent, unknown or expired
    /// (seed task 12). An expired session is deleted on sight; a live one has its last-seen
    /// time recorded (at most once a minute).
    ///
    /// # Errors
    /// A store failure.
    pub async fn get_user_from_session_id(
        &self,
        session_id: Option<&str>,
    ) -> Result<Option<User>, AuthError> {
        let Some(token) = session_id.filter(|t| !t.is_empty() && t.len() <= MAX_TOKEN_BYTES) else {
            return Ok(None);
        };
        let hash = TokenHash::of(token);
        let Some((session, user)) = self.store().find_session(&hash).await? else {
            return Ok(None);
        };
        let now = self.now_ms();
        let idle_cutoff = now.saturating_sub(duration_ms(self.inner.config.session_idle_timeout));
        if session.expires_at_ms <= now || session.last_seen_ms <= idle_cutoff {
            self.store().delete_session(&hash).await?;
            return Ok(None);
        }
        if now - session.last_seen_ms >= TOUCH_INTERVAL_MS {
            self.store().touch_session(&hash, now).await?;
        }
        Ok(Some(user))
    }

    /// Starts a session for `user_id` and returns its token.
    pub(super) async fn start_session(&self, user_id: UserId) -> Result<String, AuthError> {
        let config = &self.inner.config;
        let now = self.now_ms();
        self.sweep_expired(now).await?;
        // A collision of 122+ random bits is not expected; retrying keeps `create` from
        // ever being an overwrite all the same.
        for _ in 0..3 {
            let token = token::generate(config.session_token_format).map_err(AuthError::Random)?;
            let session = Session {
                token_hash: TokenHash::of(&token),
                user_id,
                created_at_ms: now,
                last_seen_ms: now,
                expires_at_ms: now.saturating_add(duration_ms(config.session_lifetime)),
            };
            match self
                .store()
                .create_session(session, config.single_session)
                .await
            {
                Ok(()) => return Ok(token),
                Err(StoreError::Duplicate) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(AuthError::TokenCollision)
    }

    /// Removes expired sessions, tokens and counters, at most once per
    /// [`SWEEP_INTERVAL_MS`] across this service's clones.
    pub(super) async fn sweep_expired(&self, now: i64) -> Result<(), AuthError> {
        let due = self.inner.next_sweep_ms.load(Ordering::Relaxed);
        if now < due
            || self
                .inner
                .next_sweep_ms
                .compare_exchange(
                    due,
                    now + SWEEP_INTERVAL_MS,
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                )
                .is_err()
        {
            return Ok(());
        }
        let idle_cutoff = now.saturating_sub(duration_ms(self.inner.config.session_idle_timeout));
        let swept = self.store().delete_expired(now, idle_cutoff).await?;
        tracing::debug!(
            target: "tower_auth",
            sessions = swept.sessions,
            tokens = swept.tokens,
            counters = swept.counters,
            "swept expired records"
        );
        Ok(())
    }
}
