//! Mail, from the flows to the durable outbox and out: queueing a link with its token in
//! one transaction, the uniform "mail me a link" request, and the worker that delivers.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::Client;
use super::throttle::account_counter;
use super::tokens::IssueOptions;
use super::{Auth, AuthError, ConfigError, event, normalize_email};
use crate::clock::duration_ms;
use crate::mail::{MailContext, MailError, MailKind, Mailer};
use crate::store::UserLookup;
use crate::store::{MailRequest, OutboxEntry, OutgoingMail, QueuedMail, StoreError, TokenPurpose};
use crate::token::TokenFormat;
use crate::user::User;

/// How long a claimed message is left to its worker before another may take it: longer
/// than the longest delivery attempt (`Mailer::send_timeout`, at most 240 s). A worker
/// starts a message only while a whole attempt still fits in the lease, so a message is
/// never sent twice for being slow, however slow the server is with the ones before it.
const LEASE: Duration = Duration::from_secs(5 * 60);

/// How long a claimed request is left to its worker past its answer delay.
const REQUEST_LEASE: Duration = Duration::from_secs(5);

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
    /// The outbox id of the request this link answers, removed with the link queued.
    pub(super) answers: Option<i64>,
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
        let now = self.now_ms();
        self.issue_token_shaped(
            user,
            link.purpose,
            link.to,
            link.ttl,
            IssueOptions {
                format: TokenFormat::Random256,
                keep_others: Some(0),
                answers: link.answers,
            },
            |token| self.compose_link(&user.email, &link, token, now),
        )
        .await?;
        self.wake_mail_worker();
        Ok(())
    }

    /// The messages that carry `token` for `link` about the account whose email is
    /// `account_email`, composed at `now`: the link, and for an email change the notice to
    /// the old address.
    pub(super) fn compose_link(
        &self,
        account_email: &str,
        link: &Link<'_>,
        token: &str,
        now: i64,
    ) -> Result<Vec<OutgoingMail>, AuthError> {
        let mailer = self.mailer()?;
        let expires = now.saturating_add(duration_ms(link.ttl));
        let mut query = vec![("token", token)];
        if link.kind == MailKind::ResetPassword {
            query.push(("email", account_email));
        }
        let url = mailer.link(link.kind, &query);
        let change = link.kind == MailKind::ChangeEmail;
        let context = MailContext {
            email: link.to,
            link: &url,
            valid_for: crate::mail::human_duration(link.ttl),
            old_email: change.then_some(account_email),
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
                account_email,
                Some(link.to),
                now,
            )?);
        }
        Ok(messages)
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

    /// Counts one message to `address` in an hourly window, whichever account or flow it
    /// comes from: true when it is over
    /// [`max_mails_per_recipient_per_hour`](crate::AuthConfig::max_mails_per_recipient_per_hour),
    /// and the message must not be sent. The key is the address's hash.
    pub(super) async fn over_recipient_limit(&self, address: &str) -> Result<bool, AuthError> {
        let Some(limit) = self.inner.config.max_mails_per_recipient_per_hour else {
            return Ok(false);
        };
        let mails = self
            .store()
            .increment_counter(&account_counter("mail_to", address), self.now_ms(), HOUR_MS)
            .await?;
        Ok(mails.count > limit)
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
    /// the account's hourly limit `per_hour` counted per account *and client* (so that a
    /// stranger's requests spend the stranger's allowance, not the owner's), the
    /// recipient's hourly limit (skipped for a trusted device of the account, so that
    /// strangers who spend it cannot keep the owner's own browser from its links) and,
    /// under all three, the request recorded in the outbox. Once this returns, the
    /// request is durable: the delivery worker answers it (see `answer_request`) even
    /// after a crash or a store failure. A malformed email is accepted and does nothing.
    pub(super) async fn accept_mail_request(
        &self,
        purpose: TokenPurpose,
        email: &str,
        client: &Client,
        per_hour: Option<u32>,
    ) -> Result<(), AuthError> {
        let kind = request_kind(purpose);
        self.limit_per_client(kind, client.ip, self.inner.config.max_reset_requests_per_ip)
            .await?;
        let Ok(email) = normalize_email(email) else {
            return Ok(());
        };
        let per_client = match client.ip {
            Some(ip) => format!("{email}\0{ip}"),
            None => email.clone(),
        };
        if self.over_mail_limit(kind, &per_client, per_hour).await? {
            event("mail_request_throttled", None);
            return Ok(());
        }
        let trusted = self
            .trusted_device_key(client.device_token(), &email)
            .await?
            .is_some();
        if !trusted && self.over_recipient_limit(&email).await? {
            event("mail_request_throttled", None);
            return Ok(());
        }
        let Some((_, ttl)) = self.link_asked_for(purpose) else {
            return Ok(());
        };
        let now = self.now_ms();
        let request = MailRequest {
            purpose,
            email,
            created_at_ms: now,
            expires_at_ms: now.saturating_add(duration_ms(ttl)),
        };
        self.store().queue_mail_request(&request).await?;
        self.wake_mail_worker();
        Ok(())
    }

    /// The kind of mail and the lifetime of the link a request for `purpose` asks for.
    fn link_asked_for(&self, purpose: TokenPurpose) -> Option<(MailKind, Duration)> {
        let config = &self.inner.config;
        match purpose {
            TokenPurpose::ResetPassword => Some((MailKind::ResetPassword, config.reset_token_ttl)),
            TokenPurpose::MagicLink => Some((MailKind::MagicLink, config.magic_link_ttl)),
            TokenPurpose::ConfirmEmail => Some((MailKind::ConfirmEmail, config.confirm_email_ttl)),
            TokenPurpose::ChangeEmail
            | TokenPurpose::TrustedDevice
            | TokenPurpose::SecondFactorPending
            | TokenPurpose::SecondFactorDevice => None,
        }
    }

    /// Answers a request from the outbox: if an account has the address (and, for a
    /// confirmation link, has not confirmed it yet), its link is queued and the request
    /// removed in one transaction (true); otherwise the request is removed (false). An
    /// error leaves the request in the outbox, to be tried again.
    async fn answer_request(&self, id: i64, request: &MailRequest) -> Result<bool, AuthError> {
        let found = self
            .store()
            .find_user_by(UserLookup::Email(&request.email))
            .await?;
        let wanted = found.map(|record| record.user).and_then(|user| {
            let wanted = request.purpose != TokenPurpose::ConfirmEmail || !user.email_confirmed();
            let (kind, ttl) = self.link_asked_for(request.purpose)?;
            wanted.then_some((user, kind, ttl))
        });
        let Some((user, kind, ttl)) = wanted else {
            event("mail_request_unanswered", None);
            self.store().finish_mail(id).await?;
            return Ok(false);
        };
        let link = Link {
            kind,
            purpose: request.purpose,
            to: &user.email,
            ttl,
            notify_old_address: false,
            answers: Some(id),
        };
        match self.mail_link(&user, link).await {
            Ok(()) => {
                event(request_event(request.purpose), Some(user.id));
                Ok(true)
            }
            // Answered by another worker, or the account was deleted meanwhile.
            Err(AuthError::Store(StoreError::NotFound)) => {
                self.store().finish_mail(id).await?;
                Ok(false)
            }
            Err(err) => Err(err),
        }
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
        loop {
            let more = self.deliver_due_mail().await;
            // Requests are answered after a delay, in the background (by this call or by
            // the worker, whose batch it waited for); their links are then due.
            let answering = self.background_pending();
            self.background_idle().await;
            if !more && !answering {
                return;
            }
        }
    }

    pub(super) fn wake_mail_worker(&self) {
        self.start_mail_worker();
        self.inner.mail_wake.notify_one();
    }

    /// Answers the requests and delivers the messages of one batch of due outbox entries;
    /// true when more may be due (the batch was full, or answers queued new messages).
    ///
    /// A delivered message is deleted; a refused one (the server answered 5xx) is logged
    /// and deleted; on a transient failure (server down or busy) it and the rest of the
    /// batch's messages are rescheduled with backoff, so an outage costs one attempt per
    /// batch, not one per message. A request that could not be answered (a store failure)
    /// is rescheduled with the same backoff.
    async fn deliver_due_mail(&self) -> bool {
        let Ok(mailer) = self.mailer() else {
            return false;
        };
        let _delivering = self.inner.delivering.lock().await;
        let now = self.now_ms();
        let lease_ends = now.saturating_add(duration_ms(LEASE));
        let claimed = match self.store().claim_mail(now, lease_ends, BATCH).await {
            Ok(claimed) => claimed,
            Err(err) => {
                tracing::warn!(target: "tower_auth", error = %err, "could not read the mail outbox");
                return false;
            }
        };
        let mut more = claimed.len() == BATCH as usize;
        let mut messages = Vec::with_capacity(claimed.len());
        let mut requests = Vec::new();
        for queued in &claimed {
            match &queued.entry {
                OutboxEntry::Mail(mail) => messages.push((queued, mail)),
                OutboxEntry::Request(_) => requests.push(queued.clone()),
            }
        }
        if !requests.is_empty() {
            // Answered later, off this worker's loop (see `Mailer::answer_delay`); claimed
            // now, so no other worker answers them meanwhile, but only for a short lease:
            // an instance that stops before answering leaves them to another soon, and
            // answering removes a request in the transaction that queues its link, so a
            // request answered late by two workers still gets one link.
            more = true;
            let auth = self.clone();
            let delay = mailer.answer_jitter();
            for queued in &requests {
                self.retry_later(queued, delay + REQUEST_LEASE).await;
            }
            self.in_background(async move { auth.answer_requests(requests, delay).await });
        }
        let last_start = lease_ends.saturating_sub(duration_ms(mailer.attempt_limit()));
        let mut rest = messages.iter();
        while let Some(&(queued, mail)) = rest.next() {
            if self.now_ms() >= last_start {
                // The lease would run out during this attempt and another worker could
                // send the message too: give this one and the rest back, due now.
                for &(waiting, _) in std::iter::once(&(queued, mail)).chain(rest) {
                    self.retry_later(waiting, Duration::ZERO).await;
                }
                return true;
            }
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
                    let backoff = mailer.backoff(queued.attempts);
                    for &(waiting, _) in std::iter::once(&(queued, mail)).chain(rest) {
                        self.retry_later(waiting, backoff).await;
                    }
                    return false;
                }
            }
        }
        more
    }

    /// Answers claimed requests after `delay`; one that cannot be answered now (a store
    /// failure) is tried again with backoff.
    async fn answer_requests(&self, requests: Vec<QueuedMail>, delay: Duration) {
        tokio::time::sleep(delay).await;
        let Ok(mailer) = self.mailer() else { return };
        for queued in &requests {
            let OutboxEntry::Request(request) = &queued.entry else {
                continue;
            };
            if let Err(err) = self.answer_request(queued.id, request).await {
                tracing::warn!(target: "tower_auth", mail_id = queued.id, attempts = queued.attempts, error = %err, "mail request not answered; will retry");
                self.retry_later(queued, mailer.backoff(queued.attempts))
                    .await;
            }
        }
    }

    /// Makes a claimed entry due again after `backoff`. If even that fails, its lease runs
    /// out and it is tried then.
    async fn retry_later(&self, queued: &QueuedMail, backoff: Duration) {
        let later = self.now_ms().saturating_add(duration_ms(backoff));
        if let Err(err) = self.store().retry_mail(queued.id, later).await {
            tracing::warn!(target: "tower_auth", error = %err, "could not reschedule mail");
        }
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

/// The name a request's counters go by (per client and per account).
fn request_kind(purpose: TokenPurpose) -> &'static str {
    match purpose {
        TokenPurpose::ResetPassword => "reset",
        TokenPurpose::MagicLink => "magic",
        _ => "confirm",
    }
}

/// The event logged when a request's link is queued.
fn request_event(purpose: TokenPurpose) -> &'static str {
    match purpose {
        TokenPurpose::ResetPassword => "reset_requested",
        TokenPurpose::MagicLink => "magic_link_requested",
        _ => "confirmation_resent",
    }
}
