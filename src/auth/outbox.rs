//! Mail, from the flows to the durable outbox and out: queueing a link with its token in
//! one transaction, the uniform "mail me a link" request, and the worker that delivers.

use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::throttle::account_counter;
use super::{Auth, AuthError, ConfigError, event, normalize_email};
use crate::clock::duration_ms;
use crate::mail::{MailContext, MailError, MailKind, Mailer};
use crate::store::{OutgoingMail, QueuedMail, TokenPurpose};
use crate::token::TokenFormat;
use crate::user::{User, UserLookup};

/// How long a claimed message is left to its worker before another may take it: longer
/// than any SMTP exchange (30 s), so a message is never sent twice for being slow.
const LEASE: Duration = Duration::from_secs(5 * 60);

/// Messages claimed at once.
const BATCH: u32 = 16;

/// How long a notice without a link ("you already have an account") is worth sending.
const NOTICE_TTL: Duration = Duration::from_secs(24 * 3600);

/// A counter window of one hour, in milliseconds.
const HOUR_MS: i64 = 3_600_000;

/// The link a message carries and who it is about, for [`Auth::mail_link`].
pub(super) struct Link<'a> {
    pub(super) kind: MailKind,
    pub(super) purpose: TokenPurpose,
    /// The address the link goes to (the account's, or the new one for an email change).
    pub(super) to: &'a str,
    pub(super) ttl: Duration,
    /// For an email change: the notice to the old address, queued with the link.
    pub(super) notify_old_address: bool,
}

impl Auth {
    /// The configured mailer.
    pub(super) fn mailer(&self) -> Result<&Mailer, AuthError> {
        self.inner
            .config
            .mailer
            .as_ref()
            .ok_or(AuthError::Config(ConfigError::NoMailer))
    }

    /// Issues a token for `user` and queues the message carrying its link (and, for an
    /// email change, the notice to the old address) in the same store transaction; the
    /// user's earlier links of the purpose stop working.
    pub(super) async fn mail_link(&self, user: &User, link: Link<'_>) -> Result<(), AuthError> {
        let mailer = self.mailer()?;
        let now = self.now_ms();
        let expires = now.saturating_add(duration_ms(link.ttl));
        let valid_for = crate::mail::human_duration(link.ttl);
        self.issue_token_shaped(
            user,
            link.purpose,
            link.to,
            link.ttl,
            TokenFormat::Random256,
            true,
            |token| {
                let mut query = vec![("token", token)];
                if link.kind == MailKind::ResetPassword {
                    query.push(("email", &user.email));
                }
                let url = mailer.link(link.kind, &query);
                let change = link.kind == MailKind::ChangeEmail;
                let context = MailContext {
                    email: link.to,
                    link: &url,
                    valid_for: valid_for.clone(),
                    old_email: change.then_some(user.email.as_str()),
                    new_email: None,
                };
                let mut messages = vec![
                    mailer
                        .compose(link.kind, link.to, &context, now, expires)
                        .map_err(|e| AuthError::Mail(Box::new(e)))?,
                ];
                if link.notify_old_address {
                    messages.push(self.compose_notice(
                        MailKind::EmailChangeRequested,
                        &user.email,
                        Some(link.to),
                        now,
                    )?);
                }
                Ok(messages)
            },
        )
        .await?;
        self.wake_mail_worker();
        Ok(())
    }

    /// Queues a notice without a token to `to`.
    pub(super) async fn mail_notice(&self, kind: MailKind, to: &str) -> Result<(), AuthError> {
        let message = self.compose_notice(kind, to, None, self.now_ms())?;
        self.store().queue_mail(&[message]).await?;
        self.wake_mail_worker();
        Ok(())
    }

    fn compose_notice(
        &self,
        kind: MailKind,
        to: &str,
        new_email: Option<&str>,
        now: i64,
    ) -> Result<OutgoingMail, AuthError> {
        let mailer = self.mailer()?;
        let home = mailer.home();
        let context = MailContext {
            email: to,
            link: &home,
            valid_for: String::new(),
            old_email: None,
            new_email,
        };
        mailer
            .compose(
                kind,
                to,
                &context,
                now,
                now.saturating_add(duration_ms(NOTICE_TTL)),
            )
            .map_err(|e| AuthError::Mail(Box::new(e)))
    }

    /// Counts one `kind` request for the account `email` in an hourly window: true when it
    /// is over [`max_mails_per_hour`](crate::AuthConfig::max_mails_per_hour) (or `limit`).
    pub(super) async fn over_mail_limit(
        &self,
        kind: &str,
        email: &str,
        limit: Option<u32>,
    ) -> Result<bool, AuthError> {
        let requests = self
            .store()
            .increment_counter(&account_counter(kind, email), self.now_ms(), HOUR_MS)
            .await?;
        Ok(limit.is_some_and(|max| requests.count > max))
    }

    /// The request half of every "mail me a link" endpoint (reset, confirmation resend,
    /// magic link). The request path does the same work for every email, so neither the
    /// answer nor its time tells a known email from an unknown one: the client's hourly
    /// limit ([`max_reset_requests_per_ip`](crate::AuthConfig::max_reset_requests_per_ip)),
    /// one counter increment keyed by the email's hash, and a background job. The job
    /// looks the account up and, if it exists and is under `per_hour`, runs `send`. A
    /// malformed email is accepted and does nothing.
    pub(super) async fn accept_mail_request<F, Fut>(
        &self,
        kind: &'static str,
        email: &str,
        client_ip: Option<IpAddr>,
        per_hour: Option<u32>,
        send: F,
    ) -> Result<(), AuthError>
    where
        F: FnOnce(Auth, User) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), AuthError>> + Send,
    {
        self.limit_per_client(kind, client_ip, self.inner.config.max_reset_requests_per_ip)
            .await?;
        let Ok(email) = normalize_email(email) else {
            return Ok(());
        };
        let over_limit = self.over_mail_limit(kind, &email, per_hour).await?;
        let auth = self.clone();
        self.in_background(async move {
            let outcome = async {
                let Some(record) = auth.store().find_user_by(UserLookup::Email(&email)).await?
                else {
                    event("mail_request_unknown_email", None);
                    return Ok(());
                };
                if over_limit {
                    event("mail_request_throttled", Some(record.user.id));
                    return Ok(());
                }
                send(auth.clone(), record.user).await
            }
            .await;
            if let Err(err) = outcome {
                tracing::error!(target: "tower_auth", request = kind, error = %err, "mail request failed");
            }
        });
        Ok(())
    }

    /// Starts the delivery worker if there is a mailer and a tokio runtime and it is not
    /// running yet. Called when the service is built, when its layer is made (the router
    /// makes one) and whenever mail is queued, so an `Auth` built before the runtime
    /// started still delivers what an earlier run left in the outbox.
    pub(crate) fn start_mail_worker(&self) {
        let Some(mailer) = &self.inner.config.mailer else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.inner.mail_worker_started.swap(true, Ordering::AcqRel) {
            return;
        }
        let inner = Arc::downgrade(&self.inner);
        let wake = Arc::clone(&self.inner.mail_wake);
        let poll = mailer.poll_every();
        runtime.spawn(async move {
            // Holds the service only while delivering, so dropping the last `Auth` ends it.
            loop {
                let Some(inner) = inner.upgrade() else { return };
                let full_batch = Auth { inner }.deliver_due_mail().await;
                if !full_batch {
                    tokio::select! {
                        () = wake.notified() => {}
                        () = tokio::time::sleep(poll) => {}
                    }
                }
            }
        });
    }

    /// Delivers every message due now, in this task, and returns when none is left (or a
    /// delivery failed and was rescheduled): before a graceful shutdown, or in a test
    /// that reads what was sent. The background worker does the same on its own.
    pub async fn flush_mail(&self) {
        while self.deliver_due_mail().await {}
    }

    fn wake_mail_worker(&self) {
        self.start_mail_worker();
        self.inner.mail_wake.notify_one();
    }

    /// Delivers one batch of due messages; true when the batch was full (more may wait).
    ///
    /// A delivered message is deleted; a refused one (the server answered 5xx) is logged
    /// and deleted; on a transient failure (server down or busy) it and the rest of the
    /// batch are rescheduled with backoff, so an outage costs one attempt per batch, not
    /// one per message.
    async fn deliver_due_mail(&self) -> bool {
        let Ok(mailer) = self.mailer() else {
            return false;
        };
        let _delivering = self.inner.delivering.lock().await;
        let now = self.now_ms();
        let claimed = match self
            .store()
            .claim_mail(now, now.saturating_add(duration_ms(LEASE)), BATCH)
            .await
        {
            Ok(claimed) => claimed,
            Err(err) => {
                tracing::warn!(target: "tower_auth", error = %err, "could not read the mail outbox");
                return false;
            }
        };
        let full = claimed.len() == BATCH as usize;
        let mut rest = claimed.iter();
        while let Some(queued) = rest.next() {
            let mail = &queued.mail;
            match mailer.deliver(&mail.from, &mail.to, &mail.message).await {
                Ok(()) => {
                    self.forget_mail(queued).await;
                    event("mail_sent", None);
                }
                Err(MailError::Permanent(err)) => {
                    tracing::error!(target: "tower_auth", mail_id = queued.id, error = %err, "mail refused by the server; dropped");
                    self.forget_mail(queued).await;
                }
                Err(MailError::Transient(err)) => {
                    tracing::warn!(target: "tower_auth", mail_id = queued.id, attempts = queued.attempts, error = %err, "mail delivery failed; will retry");
                    let later = self
                        .now_ms()
                        .saturating_add(duration_ms(mailer.backoff(queued.attempts)));
                    for waiting in std::iter::once(queued).chain(rest) {
                        if let Err(err) = self.store().retry_mail(waiting.id, later).await {
                            // The lease runs out and the message is retried then.
                            tracing::warn!(target: "tower_auth", error = %err, "could not reschedule mail");
                        }
                    }
                    return false;
                }
            }
        }
        full
    }

    /// Removes a message that needs no more attempts. A few tries: a delivered message left
    /// in the outbox would be sent again when its lease runs out.
    async fn forget_mail(&self, queued: &QueuedMail) {
        for attempt in 0..3u32 {
            match self.store().finish_mail(queued.id).await {
                Ok(_) => return,
                Err(err) if attempt == 2 => {
                    tracing::error!(target: "tower_auth", mail_id = queued.id, error = %err, "delivered mail could not be removed from the outbox; it may be sent again");
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100 << attempt)).await,
            }
        }
    }
}
