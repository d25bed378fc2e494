//! Uncached session lookups on PostgreSQL, answered in batches.
//!
//! A lookup is one indexed read, so its cost is mostly the statement around it: a round
//! trip, and a backend process woken on the server. Here at most
//! [`PgStoreOptions::session_lookup_statements`](super::PgStoreOptions) lookup statements are
//! in flight per store; a lookup that arrives while they all are waits, and the next
//! statement answers every waiting lookup at once (`token_hash = ANY($1)`). An idle server
//! answers a lookup with one statement as before, in the caller's own task; a busy one
//! answers many per round trip, and the database serves a crowd of instances with a few
//! statements each.
//!
//! No task is spawned: each statement runs in the task of the lookup that leads it. When a
//! leader finishes, or its caller gives up and drops it, its place passes to the oldest
//! waiting lookup, which leads the next statement; a lookup whose leader went away without
//! answering simply asks again. A statement is given a deadline, so a hung connection
//! fails its batch promptly (a 503) instead of holding every lookup behind it.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use sqlx::postgres::{PgPool, PgRow};
use tokio::sync::oneshot;

use super::sql::{session_columns, session_join, user_columns};
use super::{Session, SharedError, StoreError, map_sqlx};
use crate::token::TokenHash;
use crate::user::User;

/// Most lookups one statement answers.
const MAX_BATCH: usize = 64;

type Found = Option<(Session, User)>;

/// Reads a session joined with its user from a row of [`session_join!`].
pub(super) type RowReader = fn(&PgRow) -> Result<(Session, User), StoreError>;

/// What a waiting lookup is told.
enum Turn {
    /// Its answer, from a statement another lookup led.
    Answer(Result<Found, StoreError>),
    /// A place is free: it leads the next statement.
    Lead,
}

/// The lookups of one store: see the module documentation.
pub(super) struct SessionLookups {
    pool: PgPool,
    read_row: RowReader,
    /// Most statements in flight.
    max_statements: usize,
    /// How long one statement may take, waiting for a connection included.
    deadline: Duration,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Lookups waiting for a statement, oldest first.
    waiting: VecDeque<(TokenHash, oneshot::Sender<Turn>)>,
    /// Statements in flight (each led by one lookup).
    in_flight: usize,
}

impl SessionLookups {
    pub(super) fn new(pool: PgPool, read_row: RowReader, max_statements: usize) -> Self {
        // Past the pool's own wait for a connection, a statement this small has no reason
        // to take more than a few seconds.
        let deadline = pool.options().get_acquire_timeout() + Duration::from_secs(5);
        Self {
            pool,
            read_row,
            max_statements: max_statements.max(1),
            deadline,
            state: Mutex::default(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // Only pushes, removals and counter updates happen under the lock, none of which
        // can panic half-way: a poisoned lock is still consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The session with this token hash and its user, or `None`.
    pub(super) async fn find(&self, token: &TokenHash) -> Result<Found, StoreError> {
        loop {
            let waiting = {
                let mut state = self.state();
                if state.in_flight < self.max_statements {
                    state.in_flight += 1;
                    None
                } else {
                    let (turn, waiting) = oneshot::channel();
                    state.waiting.push_back((*token, turn));
                    Some(waiting)
                }
            };
            let Some(turn) = waiting else {
                return self.lead(token).await;
            };
            let mut waiting = Waiting {
                lookups: self,
                turn,
                told: false,
            };
            let told = (&mut waiting.turn).await;
            waiting.told = true;
            match told {
                Ok(Turn::Answer(found)) => return found,
                Ok(Turn::Lead) => return self.lead(token).await,
                // Its leader was dropped before answering: ask again.
                Err(_) => {}
            }
        }
    }

    /// Runs one statement for `own` and the lookups waiting now, in a place already counted
    /// in `in_flight`, and answers them all.
    async fn lead(&self, own: &TokenHash) -> Result<Found, StoreError> {
        let _place = Place(self);
        let batch: Vec<(TokenHash, oneshot::Sender<Turn>)> = {
            let mut state = self.state();
            let n = state.waiting.len().min(MAX_BATCH - 1);
            state.waiting.drain(..n).collect()
        };
        let mut tokens: Vec<&[u8]> = Vec::with_capacity(batch.len() + 1);
        tokens.push(own.as_bytes());
        for (token, _) in &batch {
            if !tokens.contains(&&token.as_bytes()[..]) {
                tokens.push(token.as_bytes());
            }
        }
        let found = match tokio::time::timeout(self.deadline, self.select(&tokens)).await {
            Ok(found) => found,
            Err(_) => Err(StoreError::Unavailable(
                "a session lookup took longer than its deadline".into(),
            )),
        };
        let row_of = |rows: &[(Session, User)], token: &TokenHash| {
            rows.iter()
                .find(|(session, _)| session.token_hash == *token)
                .cloned()
        };
        match found {
            Ok(rows) => {
                for (token, waiter) in batch {
                    // The waiter may have gone away; nothing to do then.
                    let _ = waiter.send(Turn::Answer(Ok(row_of(&rows, &token))));
                }
                Ok(row_of(&rows, own))
            }
            Err(err) => {
                let err = SharedError::new(err);
                for (_, waiter) in batch {
                    let _ = waiter.send(Turn::Answer(Err(err.copy())));
                }
                Err(err.copy())
            }
        }
    }

    /// The sessions (with their users) among `tokens`: by equality for one, the statement
    /// an idle server runs, else with `ANY`.
    async fn select(&self, tokens: &[&[u8]]) -> Result<Vec<(Session, User)>, StoreError> {
        let rows = if let [token] = tokens {
            sqlx::query(concat!(session_join!(), " = $1"))
                .bind(*token)
                .fetch_all(&self.pool)
                .await
        } else {
            sqlx::query(concat!(session_join!(), " = ANY($1)"))
                .bind(tokens)
                .fetch_all(&self.pool)
                .await
        }
        .map_err(map_sqlx)?;
        rows.iter().map(self.read_row).collect()
    }
}

/// A statement's place in `in_flight`, held by its leader: when the leader finishes or is
/// dropped, the place passes to the oldest lookup still waiting, or is given back.
struct Place<'a>(&'a SessionLookups);

impl Drop for Place<'_> {
    fn drop(&mut self) {
        let mut state = self.0.state();
        while let Some((_, waiter)) = state.waiting.pop_front() {
            if waiter.send(Turn::Lead).is_ok() {
                return;
            }
        }
        state.in_flight -= 1;
    }
}

/// A lookup waiting for its turn. If its caller gives up (drops it) just as a place was
/// passed to it, the place is passed on, so none is lost.
struct Waiting<'a> {
    lookups: &'a SessionLookups,
    turn: oneshot::Receiver<Turn>,
    told: bool,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if self.told {
            return;
        }
        // Closed first, so no place can be passed to it after the check.
        self.turn.close();
        if let Ok(Turn::Lead) = self.turn.try_recv() {
            drop(Place(self.lookups));
        }
    }
}
