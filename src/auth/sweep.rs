//! The sweep of expired records: sessions past their lifetime or idle too long, emailed
//! tokens and throttling counters past their windows, outbox entries no longer worth
//! sending. Expired records are refused whether or not they are swept; the sweep only keeps
//! the tables small. It is a task of its own, never a request's work: started with the
//! service every [`sweep_interval`](crate::AuthConfig::sweep_interval), or run by the
//! application on its own schedule with [`Auth::delete_expired`].

use std::sync::Arc;

use super::{Auth, AuthError};
use crate::store::Swept;

impl Auth {
    /// Deletes what has expired now, in batches through the stores' indexes, and says how
    /// much went. The service runs it every
    /// [`sweep_interval`](crate::AuthConfig::sweep_interval) by itself; with `None` there,
    /// call this from a schedule of your own (one instance of several is enough).
    ///
    /// # Errors
    /// A store failure (nothing is lost: the next sweep deletes what this one did not).
    pub async fn delete_expired(&self) -> Result<Swept, AuthError> {
        let swept = self
            .store()
            .delete_expired(self.expiry_cutoffs(self.now_ms()))
            .await?;
        tracing::debug!(
            target: "tower_auth",
            sessions = swept.sessions,
            tokens = swept.tokens,
            counters = swept.counters,
            mail = swept.mail,
            "swept expired records"
        );
        Ok(swept)
    }

    /// Starts the periodic sweep, when the configuration asks for one and there is a tokio
    /// runtime. It holds the service only while sweeping, so dropping the last `Auth`
    /// ends it.
    pub(super) fn start_sweeper(&self) {
        let Some(interval) = self.inner.config.sweep_interval else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let inner = Arc::downgrade(&self.inner);
        runtime.spawn(async move {
            let first = tokio::time::Instant::now() + interval;
            let mut ticks = tokio::time::interval_at(first, interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let Some(inner) = inner.upgrade() else { return };
                if let Err(err) = (Auth { inner }).delete_expired().await {
                    tracing::warn!(target: "tower_auth", error = %err, "could not sweep expired records; the next sweep tries again");
                }
            }
        });
    }
}
