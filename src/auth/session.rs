//! Sessions: started after a login, found on every authenticated request (expired ones
//! are swept by `sweep.rs`). Their rows live in a table of their own (see
//! [`Session`](crate::store::Session) for why).

use std::net::IpAddr;

use super::session_cache::Lookup;
use super::{Auth, AuthError, MAX_TOKEN_BYTES};
use crate::auth_methods::AuthMethods;
use crate::clock::duration_ms;
use crate::store::{Change, ExpiryCutoffs, Session, StoreError};
use crate::token::{self, TokenHash};
use crate::user::{User, UserId};

/// How often a session's last-seen time is written: at most once per this interval, so an
/// authenticated request is a single read almost always.
const TOUCH_INTERVAL_MS: i64 = 60_000;

/// What a new session records besides its user.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct SessionStart<'a> {
    /// "Remember me": the longer lifetime and a persistent cookie.
    pub(super) remembered: bool,
    /// The client's `User-Agent` header, described (never kept whole) in the session.
    pub(super) user_agent: Option<&'a str>,
    /// The client's address, kept when the configuration records it.
    pub(super) client_ip: Option<IpAddr>,
    /// How the user proved who they are.
    pub(super) methods: AuthMethods,
}

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
        Ok(self.live_session(session_id).await?.map(|(_, user)| user))
    }

    /// The session a token names and its user, when it is live; as
    /// [`get_user_from_session_id`](Self::get_user_from_session_id).
    pub(super) async fn live_session(
        &self,
        session_id: Option<&str>,
    ) -> Result<Option<(Session, User)>, AuthError> {
        let Some(token) = session_id.filter(|t| !t.is_empty() && t.len() <= MAX_TOKEN_BYTES) else {
            return Ok(None);
        };
        let hash = TokenHash::of(token);
        let now = self.now_ms();
        let Some((mut session, mut user, cached)) = self.lookup_session(&hash, now).await? else {
            return Ok(None);
        };
        let cutoffs = self.expiry_cutoffs(now);
        if cached && cutoffs.session_expired(&session) {
            // The cached last-seen time may be older than the stored one (another
            // instance's requests): the store decides.
            if let Some(cache) = &self.inner.session_cache {
                cache.forget(Change::Session(hash));
            }
            let Some(found) = self.store().find_session(&hash).await? else {
                return Ok(None);
            };
            (session, user) = found;
        }
        // Both writes below are housekeeping: a store that cannot write right now (a full
        // disk, a read-only replica) must not turn a read into an error. An expired session
        // is refused whether or not it could be deleted (the sweep retries); a missed
        // last-seen update is made by a later request.
        if cutoffs.session_expired(&session) {
            if let Err(err) = self.store().delete_session(&hash).await {
                tracing::warn!(target: "tower_auth", error = %err, "could not delete an expired session");
            }
            return Ok(None);
        }
        if now - session.last_seen_ms >= TOUCH_INTERVAL_MS {
            match self.store().touch_session(&hash, now).await {
                Ok(()) => {
                    session.last_seen_ms = now;
                    if let Some(cache) = &self.inner.session_cache {
                        cache.note_touch(&hash, now);
                    }
                }
                Err(err) => {
                    tracing::warn!(target: "tower_auth", error = %err, "could not record a session's use");
                }
            }
        }
        Ok(Some((session, user)))
    }

    /// A session and its user, from the session cache when it has them (`true`) or else
    /// from the store (`false`), expired or not.
    async fn lookup_session(
        &self,
        hash: &TokenHash,
        now: i64,
    ) -> Result<Option<(Session, User, bool)>, AuthError> {
        let epoch = match &self.inner.session_cache {
            None => None,
            Some(cache) => match cache.get(&self.inner.store, hash, now) {
                Lookup::Hit(session, user) => return Ok(Some((session, user, true))),
                Lookup::Miss(epoch) => epoch,
            },
        };
        let found = self.store().find_session(hash).await?;
        if let (Some(cache), Some(epoch), Some((session, user))) =
            (&self.inner.session_cache, epoch, &found)
        {
            cache.fill(epoch, session, user, now);
        }
        Ok(found.map(|(session, user)| (session, user, false)))
    }

    /// As [`live_session`](Self::live_session), but a missing session is
    /// [`AuthError::NoSession`].
    pub(super) async fn require_session(
        &self,
        session_id: Option<&str>,
    ) -> Result<(Session, User), AuthError> {
        self.live_session(session_id)
            .await?
            .ok_or(AuthError::NoSession)
    }

    /// Starts a session for `user_id` and returns its token.
    pub(super) async fn start_session(
        &self,
        user_id: UserId,
        start: SessionStart<'_>,
    ) -> Result<String, AuthError> {
        let config = &self.inner.config;
        let now = self.now_ms();
        let lifetime = if start.remembered {
            config.remembered_session_lifetime
        } else {
            config.session_lifetime
        };
        let user_agent = start.user_agent.and_then(crate::user_agent::describe);
        let client_ip = start
            .client_ip
            .filter(|_| config.record_client_ip)
            .map(|ip| ip.to_string());
        // A collision of 122+ random bits is not expected; retrying keeps `create` from
        // ever being an overwrite all the same.
        for _ in 0..3 {
            let token = token::generate(config.session_token_format).map_err(AuthError::Random)?;
            let session = Session {
                remembered: start.remembered,
                user_agent: user_agent.clone(),
                client_ip: client_ip.clone(),
                methods: start.methods,
                ..Session::new(
                    TokenHash::of(&token),
                    user_id,
                    now,
                    now.saturating_add(duration_ms(lifetime)),
                )
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

    /// The cutoffs by which sessions (and tokens and counters) have expired at `now`.
    pub(super) fn expiry_cutoffs(&self, now: i64) -> ExpiryCutoffs {
        let config = &self.inner.config;
        ExpiryCutoffs {
            now_ms: now,
            idle_cutoff_ms: now.saturating_sub(duration_ms(config.session_idle_timeout)),
            remembered_idle_cutoff_ms: now
                .saturating_sub(duration_ms(config.remembered_session_idle_timeout)),
        }
    }
}
