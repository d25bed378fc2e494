//! The records a [`Store`](super::Store) keeps besides users: sessions, emailed tokens and
//! throttling counters.

use std::fmt;

use sha2::{Digest, Sha256};

use crate::auth_methods::{AuthMethod, AuthMethods};
use crate::token::TokenHash;
use crate::user::UserId;

/// A session row: which user a (hashed) session token belongs to, its lifetimes, and what
/// its owner sees of it in a list of their sessions.
///
/// Sessions keep a table of their own rather than being one more [`EmailToken`] purpose:
/// every authenticated request looks one up by primary key and joins its user, they are
/// touched (last seen) while in use and expire when idle, and they are never mailed, so
/// the "still sent to the account's address" rule of emailed tokens does not apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// SHA-256 of the session token sent in the cookie.
    pub token_hash: TokenHash,
    /// The user the session belongs to.
    pub user_id: UserId,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_at_ms: i64,
    /// Last time the session was seen in use (updated at most about once a minute).
    pub last_seen_ms: i64,
    /// Absolute expiry, milliseconds since the Unix epoch.
    pub expires_at_ms: i64,
    /// When its user last proved who they are in it (the login itself, or a
    /// reauthentication): sensitive actions need this to be recent ("sudo mode").
    pub authenticated_at_ms: i64,
    /// Started with "remember me": a persistent cookie and the longer lifetime.
    pub remembered: bool,
    /// A short description of the client's user agent ("Firefox 133 on Linux"), if known.
    pub user_agent: Option<String>,
    /// The client's address at login, when the configuration records it.
    pub client_ip: Option<String>,
    /// How its user proved who they are, at login and since.
    pub methods: AuthMethods,
}

impl Session {
    /// A session for `user_id` started at `now_ms`, expiring at `expires_at_ms`: seen and
    /// authenticated (by password) now, not remembered, no client details.
    pub fn new(token_hash: TokenHash, user_id: UserId, now_ms: i64, expires_at_ms: i64) -> Self {
        Self {
            token_hash,
            user_id,
            created_at_ms: now_ms,
            last_seen_ms: now_ms,
            expires_at_ms,
            authenticated_at_ms: now_ms,
            remembered: false,
            user_agent: None,
            client_ip: None,
            methods: AuthMethod::Password.into(),
        }
    }

    /// The session's public handle: what a list of sessions shows and `DELETE
    /// /sessions/{id}` takes. 32 hex digits derived from the token hash by one more
    /// SHA-256, so it names the session without granting it (neither the token nor its
    /// stored hash can be recovered from it), and needs no column of its own.
    pub fn handle(&self) -> String {
        let digest = Sha256::new()
            .chain_update(b"tower-auth session handle\0")
            .chain_update(self.token_hash.as_bytes())
            .finalize();
        digest[..16].iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// What an [`EmailToken`] lets its holder do. Stored as [`as_str`](Self::as_str).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenPurpose {
    /// Choose a new password (`PUT /reset_password`).
    ResetPassword,
    /// Confirm that the account's email address reaches its owner.
    ConfirmEmail,
    /// Log in without a password (a magic link).
    MagicLink,
    /// Move the account to the address the token was sent to.
    ChangeEmail,
    /// Recognise a client that logged in to the account before (a trusted-device cookie),
    /// so that others' failed logins do not lock it out. Never mailed.
    TrustedDevice,
    /// A login waiting for its second factor: the password (or link) was right, the
    /// browser holding this token may finish it with a code or passkey. Never mailed.
    SecondFactorPending,
    /// A browser whose owner asked not to be asked for a second factor on it for a while.
    /// Never mailed.
    SecondFactorDevice,
}

impl TokenPurpose {
    /// The name stored in the `purpose` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ResetPassword => "reset_password",
            Self::ConfirmEmail => "confirm_email",
            Self::MagicLink => "magic_link",
            Self::ChangeEmail => "change_email",
            Self::TrustedDevice => "trusted_device",
            Self::SecondFactorPending => "second_factor_pending",
            Self::SecondFactorDevice => "second_factor_device",
        }
    }

    /// The purpose a stored name stands for; `None` for a name this version does not know.
    pub fn parse(name: &str) -> Option<Self> {
        [
            Self::ResetPassword,
            Self::ConfirmEmail,
            Self::MagicLink,
            Self::ChangeEmail,
            Self::TrustedDevice,
            Self::SecondFactorPending,
            Self::SecondFactorDevice,
        ]
        .into_iter()
        .find(|p| p.as_str() == name)
    }
}

impl fmt::Display for TokenPurpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A secret sent to a person (password reset, email confirmation, magic link, email
/// change): one kind of record for every such flow, after Phoenix's `users_tokens`.
///
/// Only the token's SHA-256 is stored. A token is valid while it has not expired, has not
/// been redeemed, and the account's email is still `account_email`, the address the
/// account had when the token was issued: changing the email voids every token mailed to
/// the old one. `sent_to` is where the token went (the same address, except for
/// [`TokenPurpose::ChangeEmail`], whose token goes to the new address).
#[derive(Clone, PartialEq, Eq)]
pub struct EmailToken {
    /// SHA-256 of the token.
    pub hash: TokenHash,
    /// The account it acts on.
    pub user_id: UserId,
    /// What it allows.
    pub purpose: TokenPurpose,
    /// The address the token was sent to.
    pub sent_to: String,
    /// The account's email when the token was issued; the token dies when it changes.
    pub account_email: String,
    /// Issue time, milliseconds since the Unix epoch.
    pub created_at_ms: i64,
    /// The token is refused from this time on (milliseconds since the Unix epoch).
    pub expires_at_ms: i64,
}

impl fmt::Debug for EmailToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmailToken")
            .field("user_id", &self.user_id)
            .field("purpose", &self.purpose)
            .field("sent_to", &self.sent_to)
            .field("account_email", &self.account_email)
            .field("created_at_ms", &self.created_at_ms)
            .field("expires_at_ms", &self.expires_at_ms)
            .finish_non_exhaustive()
    }
}

/// A fixed-window counter, used for login and reset-request throttling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Counter {
    /// Events counted in the current window.
    pub count: u32,
    /// When the current window ends, milliseconds since the Unix epoch.
    pub window_ends_ms: i64,
}

impl Counter {
    /// A counter as a store reads it back.
    pub fn new(count: u32, window_ends_ms: i64) -> Self {
        Self {
            count,
            window_ends_ms,
        }
    }
}

/// The times before which [`Store::delete_expired`](super::Store::delete_expired) removes
/// records, all in milliseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpiryCutoffs {
    /// Now: sessions and tokens expiring at or before it go, and counters whose window
    /// ends at or before it.
    pub now_ms: i64,
    /// A session not seen since this time (inclusive) has been idle too long.
    pub idle_cutoff_ms: i64,
    /// The same for remembered sessions, whose idle timeout may be longer.
    pub remembered_idle_cutoff_ms: i64,
}

impl ExpiryCutoffs {
    /// True when `session` has expired by these cutoffs.
    pub fn session_expired(&self, session: &Session) -> bool {
        let idle_cutoff = if session.remembered {
            self.remembered_idle_cutoff_ms
        } else {
            self.idle_cutoff_ms
        };
        session.expires_at_ms <= self.now_ms || session.last_seen_ms <= idle_cutoff
    }
}

/// How many expired records one [`Store::delete_expired`](super::Store::delete_expired)
/// removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Swept {
    /// Sessions past their absolute expiry or idle too long.
    pub sessions: u64,
    /// Emailed tokens past their expiry.
    pub tokens: u64,
    /// Counters whose window has ended.
    pub counters: u64,
    /// Queued mail past its expiry, never delivered.
    pub mail: u64,
}

impl Swept {
    /// A sweep's counts, as a store reports them.
    pub fn new(sessions: u64, tokens: u64, counters: u64, mail: u64) -> Self {
        Self {
            sessions,
            tokens,
            counters,
            mail,
        }
    }
}

/// A message for the durable outbox: who it is from and to (the SMTP envelope) and the
/// whole RFC 5322 message, ready to send.
///
/// The message may carry a token (a link), so `Debug` never shows it, and the store keeps
/// it only until it is delivered or expires.
#[derive(Clone, PartialEq, Eq)]
pub struct OutgoingMail {
    /// The envelope sender address.
    pub from: String,
    /// The envelope recipient address.
    pub to: String,
    /// The formatted message (headers and body).
    pub message: Vec<u8>,
    /// When it was queued, milliseconds since the Unix epoch.
    pub created_at_ms: i64,
    /// After this time it is no longer worth sending (its link has expired) and is swept.
    pub expires_at_ms: i64,
}

impl fmt::Debug for OutgoingMail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutgoingMail")
            .field("from", &self.from)
            .field("to", &self.to)
            .field("message", &format_args!("[{} bytes]", self.message.len()))
            .field("created_at_ms", &self.created_at_ms)
            .field("expires_at_ms", &self.expires_at_ms)
            .finish()
    }
}

/// The link a new account's first message carries (its confirmation link), stored by
/// [`Store::add_user`](super::Store::add_user) with the account in one transaction: an
/// account is never created without the message its owner needs, so a failed registration
/// leaves nothing behind and can simply be tried again.
///
/// The token is the account's: it is sent to, and bound to, the new account's email, and
/// issued at its creation time.
#[derive(Clone, PartialEq, Eq)]
pub struct FirstLink {
    /// SHA-256 of the token the message carries.
    pub hash: TokenHash,
    /// What the token allows.
    pub purpose: TokenPurpose,
    /// The token is refused from this time on (milliseconds since the Unix epoch).
    pub expires_at_ms: i64,
    /// The messages to queue with it (the one carrying the link).
    pub mail: Vec<OutgoingMail>,
}

impl fmt::Debug for FirstLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FirstLink")
            .field("purpose", &self.purpose)
            .field("expires_at_ms", &self.expires_at_ms)
            .field("mail", &self.mail)
            .finish_non_exhaustive()
    }
}

/// A "mail me a link" request (a password reset, a magic link, another confirmation
/// link), kept in the outbox from before it is acknowledged until the delivery worker
/// answers it: the worker looks the address up and, if an account has it, queues the link
/// ([`Store::create_token`](super::Store::create_token) removes the request in the same
/// transaction), so nothing acknowledged is lost to a crash or a store failure after the
/// answer, and nothing is answered twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailRequest {
    /// The link asked for (what it is for).
    pub purpose: TokenPurpose,
    /// The normalized address it was asked for; it may have no account.
    pub email: String,
    /// When it was asked for, milliseconds since the Unix epoch.
    pub created_at_ms: i64,
    /// After this time it is no longer worth answering (the link would have expired by
    /// now) and is swept.
    pub expires_at_ms: i64,
}

/// What an outbox row holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboxEntry {
    /// A message to deliver.
    Mail(OutgoingMail),
    /// A request to answer.
    Request(MailRequest),
}

impl OutboxEntry {
    /// After this time the entry is swept unsent.
    pub fn expires_at_ms(&self) -> i64 {
        match self {
            Self::Mail(mail) => mail.expires_at_ms,
            Self::Request(request) => request.expires_at_ms,
        }
    }

    /// When it was queued.
    pub fn created_at_ms(&self) -> i64 {
        match self {
            Self::Mail(mail) => mail.created_at_ms,
            Self::Request(request) => request.created_at_ms,
        }
    }
}

/// An outbox entry claimed by a delivery worker
/// ([`Store::claim_mail`](super::Store::claim_mail)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedMail {
    /// The outbox row's id, for [`finish_mail`](super::Store::finish_mail),
    /// [`retry_mail`](super::Store::retry_mail) and, for a request,
    /// [`create_token`](super::Store::create_token).
    pub id: i64,
    /// Attempts so far, this one included.
    pub attempts: u32,
    /// The message or request.
    pub entry: OutboxEntry,
}
