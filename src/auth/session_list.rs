//! A user's sessions as they see them: listed with a public handle (never the token),
//! ended one by one, all but this one, or all. The same operations by user id serve a
//! host app's administrators.

use super::{Auth, AuthError, Client, event};
use crate::store::UserUpdate;
use crate::store::{Session, StoreError};
use crate::token::TokenHash;
use crate::user::UserId;

/// One of a user's live sessions, as a list of "where I am logged in" shows it.
///
/// `id` is the session's public [handle](Session::handle): it names the session (to end
/// it) without granting it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionInfo {
    /// The public handle (32 hex digits), what `DELETE /sessions/{id}` takes.
    pub id: String,
    /// When the session started (UTC; format it with `time`'s formats, or take
    /// `unix_timestamp()`).
    pub created_at: time::OffsetDateTime,
    /// When it was last used (recorded at most once a minute).
    pub last_seen_at: time::OffsetDateTime,
    /// When its user last proved who they are in it (login or reauthentication).
    pub authenticated_at: time::OffsetDateTime,
    /// When it expires at the latest, used or not.
    pub expires_at: time::OffsetDateTime,
    /// Started with "remember me".
    pub remembered: bool,
    /// A short description of the client ("Firefox 133 on Linux"), if known.
    pub user_agent: Option<String>,
    /// The client's address at login, when recorded.
    pub client_ip: Option<String>,
    /// How its user proved who they are in it (password, code, passkey...).
    pub methods: crate::AuthMethods,
    /// This is the session the request came with.
    pub current: bool,
}

impl SessionInfo {
    fn of(session: Session, current: Option<&TokenHash>) -> Self {
        Self {
            id: session.handle(),
            current: current == Some(&session.token_hash),
            created_at: utc(session.created_at_ms),
            last_seen_at: utc(session.last_seen_ms),
            authenticated_at: utc(session.authenticated_at_ms),
            expires_at: utc(session.expires_at_ms),
            remembered: session.remembered,
            user_agent: session.user_agent,
            client_ip: session.client_ip,
            methods: session.methods,
        }
    }
}

/// Milliseconds since the Unix epoch as a UTC time; a stored value outside the years a
/// time can hold reads as the nearest one.
fn utc(ms: i64) -> time::OffsetDateTime {
    let nanos = i128::from(ms) * 1_000_000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap_or(if ms < 0 {
        time::PrimitiveDateTime::MIN.assume_utc()
    } else {
        time::PrimitiveDateTime::MAX.assume_utc()
    })
}

impl Auth {
    /// The live sessions of the user whose session `session_id` is, most recently used
    /// first, the presented one marked `current`.
    ///
    /// # Errors
    /// [`AuthError::NoSession`] without a live session; a store failure.
    pub async fn list_my_sessions(&self, client: &Client) -> Result<Vec<SessionInfo>, AuthError> {
        let (current, user) = self.require_session(client.session_id()).await?;
        self.sessions_of(user.id, Some(&current.token_hash)).await
    }

    /// Ends one session of the user whose session `session_id` is, by its handle (which
    /// may be the presented session itself), and returns it as it was.
    ///
    /// # Errors
    /// [`AuthError::SessionNotFound`] when no live session of *this* user has that handle
    /// (another user's session is not found either); [`AuthError::NoSession`]; a store
    /// failure.
    pub async fn end_my_session(
        &self,
        client: &Client,
        handle: &str,
    ) -> Result<SessionInfo, AuthError> {
        let (current, user) = self.require_session(client.session_id()).await?;
        self.end_session_by_handle(user.id, handle, Some(&current.token_hash))
            .await
    }

    /// "Log out everywhere else": ends every session of the user but the presented one,
    /// with every pending emailed link (an email change, a reset, a magic link) and every
    /// trusted device, and returns how many sessions ended. A sensitive action: the
    /// session must have authenticated within [`sudo_window`](crate::AuthConfig::sudo_window),
    /// or a stolen session could lock its owner's other devices out.
    ///
    /// # Errors
    /// [`AuthError::ReauthenticationRequired`]; [`AuthError::NoSession`]; a store failure.
    pub async fn end_other_sessions(&self, client: &Client) -> Result<u64, AuthError> {
        let (current, user) = self.require_session(client.session_id()).await?;
        self.check_sudo(&current)?;
        let ended = self
            .store()
            .delete_user_sessions(user.id, Some(&current.token_hash))
            .await?;
        self.end_tokens(user.id).await?;
        event("sessions_ended", Some(user.id));
        Ok(ended)
    }

    /// Revokes every emailed token and trusted device of `user_id`: ending sessions is a
    /// remedy only if nothing issued before it lets the intruder back in.
    async fn end_tokens(&self, user_id: UserId) -> Result<(), AuthError> {
        match self
            .store()
            .update_user(user_id, UserUpdate::new().end_tokens())
            .await
        {
            Ok(()) | Err(StoreError::NotFound) => Ok(()),
            Err(err) => Err(err.into()),
        }
    }

    /// "Log out everywhere": ends every session of the user, the presented one included
    /// (clear its cookie with [`expired_session_cookie`](Self::expired_session_cookie)).
    /// A sensitive action: the session must have authenticated within
    /// [`sudo_window`](crate::AuthConfig::sudo_window).
    ///
    /// # Errors
    /// [`AuthError::ReauthenticationRequired`]; [`AuthError::NoSession`]; a store failure.
    pub async fn end_all_my_sessions(&self, client: &Client) -> Result<u64, AuthError> {
        let user = self.require_recent_authentication(client).await?;
        self.end_sessions(user.id).await
    }

    /// Administration: the live sessions of user `user_id`, most recently used first
    /// (none is `current`).
    ///
    /// # Errors
    /// A store failure.
    pub async fn list_sessions(&self, user_id: UserId) -> Result<Vec<SessionInfo>, AuthError> {
        self.sessions_of(user_id, None).await
    }

    /// Administration: ends the session of user `user_id` with this handle.
    ///
    /// # Errors
    /// [`AuthError::SessionNotFound`] when that user has no live session with it; a store
    /// failure.
    pub async fn end_session(
        &self,
        user_id: UserId,
        handle: &str,
    ) -> Result<SessionInfo, AuthError> {
        self.end_session_by_handle(user_id, handle, None).await
    }

    /// Administration: ends every session of user `user_id`, with every pending emailed
    /// link and trusted device; returns how many sessions ended.
    ///
    /// # Errors
    /// A store failure.
    pub async fn end_sessions(&self, user_id: UserId) -> Result<u64, AuthError> {
        let ended = self.store().delete_user_sessions(user_id, None).await?;
        self.end_tokens(user_id).await?;
        event("sessions_ended", Some(user_id));
        Ok(ended)
    }

    async fn sessions_of(
        &self,
        user_id: UserId,
        current: Option<&TokenHash>,
    ) -> Result<Vec<SessionInfo>, AuthError> {
        let cutoffs = self.expiry_cutoffs(self.now_ms());
        let mut sessions: Vec<SessionInfo> = self
            .store()
            .list_user_sessions(user_id)
            .await?
            .into_iter()
            .filter(|session| !cutoffs.session_expired(session))
            .map(|session| SessionInfo::of(session, current))
            .collect();
        sessions.sort_by_key(|s| std::cmp::Reverse((s.last_seen_at, s.created_at)));
        Ok(sessions)
    }

    /// Ends the live session of `user_id` whose handle is `handle`. The handle is found
    /// among this user's sessions only, so another user's handle is simply not found.
    async fn end_session_by_handle(
        &self,
        user_id: UserId,
        handle: &str,
        current: Option<&TokenHash>,
    ) -> Result<SessionInfo, AuthError> {
        let cutoffs = self.expiry_cutoffs(self.now_ms());
        let session = self
            .store()
            .list_user_sessions(user_id)
            .await?
            .into_iter()
            .find(|session| !cutoffs.session_expired(session) && session.handle() == handle)
            .ok_or(AuthError::SessionNotFound)?;
        if !self.store().delete_session(&session.token_hash).await? {
            // Ended by someone else in the meantime: it is gone all the same, but not by us.
            return Err(AuthError::SessionNotFound);
        }
        event("session_ended", Some(user_id));
        Ok(SessionInfo::of(session, current))
    }
}
