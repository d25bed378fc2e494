//! Uncached session lookups on PostgreSQL, answered in batches.
//!
//! A lookup is one indexed read, so its cost is mostly the statement around it: a round
//! trip, and a backend process woken on the server. Here at most
//! [`PgStoreOptions::session_lookup_statements`](super::PgStoreOptions) lookup statements are
//! in flight per store; a lookup that arrives while they all are waits, and the next
//! statement answers every waiting lookup at once. An idle server answers a lookup with one
//! statement as before, in the caller's own task; a busy one answers many per round trip,
//! and the database serves a crowd of instances with a few statements each.
//!
//! A batch is read in one of two shapes, by the table's size as PostgreSQL estimates it: a
//! large table with one scan of its index for all the tokens (`token_hash = ANY($1)`); a
//! small one with an index probe per token. PostgreSQL's planner reads a table of a few
//! thousand sessions in full for an `ANY` of a dozen tokens (it prices each index page as a
//! read from disk), which costs several times the probes; on a large table the one scan is
//! the cheaper of the two.
//!
//! No task is spawned: each statement runs in the task of the lookup that leads it. When a
//! leader finishes, or its caller gives up and drops it, its place passes to the oldest
//! waiting lookup, which leads the next statement; a lookup whose leader went away without
//! answering simply asks again. A statement is given a deadline, so a hung connection
//! fails its batch promptly (a 503) instead of holding every lookup behind it.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sqlx::postgres::{PgPool, PgRow};
use tokio::sync::oneshot;

use super::sql::{session_columns, session_join, user_columns};
use super::{Session, SharedError, StoreError, map_sqlx};
use crate::token::TokenHash;
use crate::user::User;

/// Most lookups one statement answers.
const MAX_BATCH: usize = 64;

/// From this many sessions (PostgreSQL's estimate), a batch is one `ANY` scan of the index;
/// below, a probe per token. The two cost about the same from ten thousand sessions to a
/// hundred thousand; below, `ANY` may be planned as a full read of the table, and at a
/// million the one scan is the cheaper.
const ONE_SCAN_FROM: f32 = 50_000.0;

/// How often a batch's leader reads the table's estimated size again.
const SIZE_CHECK_EVERY: Duration = Duration::from_secs(300);

/// A batch as one scan of the session index: the cheaper on a large table.
const BATCH_BY_ONE_SCAN: &str = concat!(session_join!(), " = ANY($1)");

/// A batch as one index probe per token, whatever the planner thinks of the table's size:
/// `LIMIT 1` keeps the subquery a lookup of one token.
const BATCH_BY_PROBES: &str = concat!(
    "SELECT x.* FROM unnest($1::bytea[]) AS k(h) CROSS JOIN LATERAL (",
    session_join!(),
    " = k.h LIMIT 1) x"
);

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
    /// Whether the session table was large at the last size check: see [`ONE_SCAN_FROM`].
    large_table: AtomicBool,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Lookups waiting for a statement, oldest first.
    waiting: VecDeque<(TokenHash, oneshot::Sender<Turn>)>,
    /// Statements in flight (each led by one lookup).
    in_flight: usize,
    /// When the table's size is next read; `None` before the first batch.
    next_size_check: Option<Instant>,
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
            large_table: AtomicBool::new(false),
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
    /// an idle server runs, else in the batch shape that suits the table's size.
    async fn select(&self, tokens: &[&[u8]]) -> Result<Vec<(Session, User)>, StoreError> {
        let rows = if let [token] = tokens {
            sqlx::query(concat!(session_join!(), " = $1"))
                .bind(*token)
                .fetch_all(&self.pool)
                .await
        } else {
            self.check_size_if_due().await;
            let statement = if self.large_table.load(Ordering::Relaxed) {
                BATCH_BY_ONE_SCAN
            } else {
                BATCH_BY_PROBES
            };
            sqlx::query(statement)
                .bind(tokens)
                .fetch_all(&self.pool)
                .await
        }
        .map_err(map_sqlx)?;
        rows.iter().map(self.read_row).collect()
    }

    /// Reads PostgreSQL's estimate of the session table's size, when a check is due (one
    /// leader at a time does it). If the read fails, the shape stays as it was.
    async fn check_size_if_due(&self) {
        let now = Instant::now();
        {
            let mut state = self.state();
            if state.next_size_check.is_some_and(|at| at > now) {
                return;
            }
            state.next_size_check = Some(now + SIZE_CHECK_EVERY);
        }
        let estimate: Result<f32, _> = sqlx::query_scalar(
            "SELECT reltuples FROM pg_class WHERE oid = 'auth_sessions'::regclass",
        )
        .fetch_one(&self.pool)
        .await;
        match estimate {
            Ok(estimate) => self
                .large_table
                .store(one_scan_suits(estimate), Ordering::Relaxed),
            Err(err) => {
                tracing::debug!(target: "tower_auth", error = %err, "could not read the session table's estimated size");
            }
        }
    }
}

/// Whether a batch on a table of `estimate` sessions is better read with one `ANY` scan.
/// PostgreSQL says -1 for a table it has not yet measured: taken as small.
fn one_scan_suits(estimate: f32) -> bool {
    estimate >= ONE_SCAN_FROM
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_tables_are_read_with_one_scan_and_small_ones_by_probes() {
        assert!(!one_scan_suits(-1.0), "never measured");
        assert!(!one_scan_suits(0.0));
        assert!(!one_scan_suits(1_000.0));
        assert!(!one_scan_suits(ONE_SCAN_FROM - 1.0));
        assert!(one_scan_suits(ONE_SCAN_FROM));
        assert!(one_scan_suits(1_000_000.0));
        assert!(!one_scan_suits(f32::NAN));
    }
}
