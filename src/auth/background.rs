//! Work done after the response: password-hash upgrades and the sweep of expired records.
//! Tracked, so a graceful shutdown (or a test) can wait for it with
//! [`Auth::background_idle`]. (Mail is not background work of this kind: it goes through
//! the durable outbox, which survives a shutdown.)

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Notify;

use super::Auth;

/// The background jobs of one service and its clones.
#[derive(Default)]
pub(super) struct Background {
    pending: AtomicUsize,
    idle: Notify,
}

/// Counts one job as pending until dropped (when the job ends, panics or is cancelled).
struct Pending(Arc<Background>);

impl Drop for Pending {
    fn drop(&mut self) {
        if self.0.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl Auth {
    /// Runs `job` on the current tokio runtime after the request; outside one, nothing
    /// runs (the job is dropped, and logged).
    pub(super) fn in_background(&self, job: impl Future<Output = ()> + Send + 'static) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::error!(target: "tower_auth", "no tokio runtime: background job dropped");
            return;
        };
        let background = Arc::clone(&self.inner.background);
        background.pending.fetch_add(1, Ordering::AcqRel);
        let pending = Pending(background);
        runtime.spawn(async move {
            let _pending = pending;
            job.await;
        });
    }

    /// True while a background job of this service is pending.
    pub(super) fn background_pending(&self) -> bool {
        self.inner.background.pending.load(Ordering::Acquire) > 0
    }

    /// Waits until no background job (a password-hash upgrade after a login, a sweep of
    /// expired records) of this service is pending: before shutting down, so none is cut
    /// short, and in tests.
    /// Mail waits in the outbox instead; [`flush_mail`](Self::flush_mail) delivers it.
    pub async fn background_idle(&self) {
        let background = &self.inner.background;
        loop {
            let idle = background.idle.notified();
            tokio::pin!(idle);
            // Registered before the check, so a job ending in between still wakes us.
            idle.as_mut().enable();
            if background.pending.load(Ordering::Acquire) == 0 {
                return;
            }
            idle.await;
        }
    }
}
