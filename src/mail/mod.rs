//! Mail: how messages leave ([`MailTransport`]: SMTP or a development directory), what
//! they say ([`MailTemplates`]), and the [`Mailer`] that ties both to the app's address.
//!
//! Flows never send directly: a request records its message in the store's durable outbox
//! (in the same transaction as the token the message carries), and a background worker
//! of [`Auth`](crate::Auth) hands it to the transport, retrying with backoff while the mail
//! server is away. So a slow or failing mail server neither slows nor fails a request, and
//! a message survives a restart.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use lettre::message::{Mailbox, MultiPart};

use crate::config_error::ConfigError;
use crate::store::OutgoingMail;

mod dir;
#[cfg(feature = "smtp")]
mod smtp;
mod templates;

pub use dir::MailDir;
#[cfg(feature = "smtp")]
#[cfg_attr(docsrs, doc(cfg(feature = "smtp")))]
pub use smtp::SmtpTransport;
pub use templates::{MailKind, MailTemplates, TemplateError};

/// Delivers one formatted message (SMTP, a directory, a provider's API).
///
/// The message may carry a secret link: an implementation must not log it.
#[async_trait]
pub trait MailTransport: Send + Sync + 'static {
    /// Delivers `message` (RFC 5322, headers and body) from `from` to `to` (the envelope).
    ///
    /// # Errors
    /// [`MailError::Transient`] when a later attempt may succeed (the server is down,
    /// busy, or answered 4xx): the message is kept and retried. [`MailError::Permanent`]
    /// when it never will (the server answered 5xx for this recipient): the message is
    /// dropped and the failure logged.
    async fn send(&self, from: &str, to: &str, message: &[u8]) -> Result<(), MailError>;
}

/// Why a transport did not deliver a message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MailError {
    /// Worth retrying later.
    #[error("mail delivery failed for now")]
    Transient(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Never worth retrying.
    #[error("mail delivery refused")]
    Permanent(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Everything the email flows need: a transport, the sender, where links point, the
/// templates, and how delivery retries. Put it in
/// [`AuthConfig::mailer`](crate::AuthConfig::mailer).
///
/// ```
/// # fn main() -> Result<(), tower_auth::ConfigError> {
/// use tower_auth::Mailer;
/// // Production: any SMTP server, by URL.
/// let smtp = Mailer::smtp(
///     "smtp://apikey:secret@smtp.example.com:587?tls=required",
///     "Example <no-reply@example.com>",
///     "https://app.example.com",
/// )?;
/// // Development: one `.eml` file per message in a directory.
/// let dev = Mailer::dev_outbox("target/outbox", "dev@localhost", "http://localhost:3000")?;
/// # let _ = (smtp, dev); Ok(()) }
/// ```
#[derive(Clone)]
pub struct Mailer {
    transport: Arc<dyn MailTransport>,
    transport_name: &'static str,
    from: Mailbox,
    public_url: String,
    templates: Arc<MailTemplates>,
    link_paths: [(MailKind, String); 4],
    retry_initial: Duration,
    retry_max: Duration,
    poll_interval: Duration,
    send_timeout: Duration,
    answer_delay: (Duration, Duration),
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("transport", &self.transport_name)
            .field("from", &self.from.to_string())
            .field("public_url", &self.public_url)
            .field("retry_initial", &self.retry_initial)
            .field("retry_max", &self.retry_max)
            .field("poll_interval", &self.poll_interval)
            .field("send_timeout", &self.send_timeout)
            .finish_non_exhaustive()
    }
}

impl Mailer {
    /// A mailer over any transport. `from` is the sender (`no-reply@example.com` or
    /// `Example <no-reply@example.com>`); `public_url` is where the app is reached
    /// (`https://app.example.com`, optionally with a path prefix): every link a message
    /// carries points there, with the token as a `token=` query parameter.
    ///
    /// # Errors
    /// [`ConfigError::MailFrom`] or [`ConfigError::PublicUrl`] when either is malformed.
    pub fn new(
        transport: impl MailTransport,
        from: &str,
        public_url: &str,
    ) -> Result<Self, ConfigError> {
        Self::with_transport(Arc::new(transport), "custom", from, public_url)
    }

    /// A mailer sending through the SMTP server at `url` (see [`SmtpTransport::from_url`]).
    ///
    /// # Errors
    /// As [`Mailer::new`], and [`ConfigError::SmtpUrl`] for a URL lettre cannot use.
    #[cfg(feature = "smtp")]
    #[cfg_attr(docsrs, doc(cfg(feature = "smtp")))]
    pub fn smtp(url: &str, from: &str, public_url: &str) -> Result<Self, ConfigError> {
        Self::with_transport(
            Arc::new(SmtpTransport::from_url(url)?),
            "smtp",
            from,
            public_url,
        )
    }

    /// A mailer writing each message as an owner-only `.eml` file into `dir`: for
    /// development and tests, where a person (or a script) reads the links.
    ///
    /// # Errors
    /// As [`Mailer::new`].
    pub fn dev_outbox(
        dir: impl Into<std::path::PathBuf>,
        from: &str,
        public_url: &str,
    ) -> Result<Self, ConfigError> {
        Self::with_transport(
            Arc::new(MailDir::new(dir)),
            "development outbox",
            from,
            public_url,
        )
    }

    fn with_transport(
        transport: Arc<dyn MailTransport>,
        transport_name: &'static str,
        from: &str,
        public_url: &str,
    ) -> Result<Self, ConfigError> {
        let from: Mailbox = from
            .parse()
            .map_err(|_| ConfigError::MailFrom(from.to_owned()))?;
        Ok(Self {
            transport,
            transport_name,
            from,
            public_url: check_public_url(public_url)?,
            templates: Arc::new(MailTemplates::default()),
            link_paths: [
                (MailKind::ConfirmEmail, "/confirmation".into()),
                (MailKind::MagicLink, "/sessions/magic".into()),
                (MailKind::ChangeEmail, "/email/confirm".into()),
                (MailKind::ResetPassword, "/reset_password".into()),
            ],
            retry_initial: Duration::from_secs(5),
            retry_max: Duration::from_secs(10 * 60),
            poll_interval: Duration::from_secs(2),
            send_timeout: Duration::from_secs(60),
            answer_delay: (Duration::from_millis(250), Duration::from_millis(1250)),
        })
    }

    /// Replaces the templates (start from [`MailTemplates::default`] and replace the ones
    /// you want).
    #[must_use]
    pub fn templates(mut self, templates: MailTemplates) -> Self {
        self.templates = Arc::new(templates);
        self
    }

    /// The path (under `public_url`) that links of `kind` open: by default the API route
    /// that redeems them (`/confirmation`, `/sessions/magic`, `/email/confirm`,
    /// `/reset_password`), whose `GET` is a page that posts the token. Point it at your own
    /// page that posts the token. The path is appended to `public_url`: a `public_url` that
    /// ends in the router's prefix (`https://app.example/auth`) puts every link under it;
    /// for a page elsewhere, give the site's root and write the prefix into each path.
    /// Kinds without a token (notices) ignore it.
    ///
    /// # Errors
    /// [`ConfigError::PublicUrl`] when `path` does not start with `/` or has a query.
    pub fn link_path(mut self, kind: MailKind, path: &str) -> Result<Self, ConfigError> {
        if !path.starts_with('/') || path.contains(['?', '#']) || path.contains(char::is_whitespace)
        {
            return Err(ConfigError::PublicUrl(path.to_owned()));
        }
        for (k, p) in &mut self.link_paths {
            if *k == kind {
                *p = path.to_owned();
            }
        }
        Ok(self)
    }

    /// How a failed delivery is retried: first after `initial`, then twice as long each
    /// time, never longer than `max`. Default: 5 s, up to 10 min. A message is dropped when
    /// its link expires.
    #[must_use]
    pub fn retry(mut self, initial: Duration, max: Duration) -> Self {
        self.retry_initial = initial.max(Duration::from_millis(10));
        self.retry_max = max.max(self.retry_initial);
        self
    }

    /// How often the worker looks for due messages it was not told about (queued by
    /// another instance, or due for a retry). Default: 2 s.
    #[must_use]
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval.max(Duration::from_millis(10));
        self
    }

    /// The longest one delivery attempt may take, whatever the transport does (a server
    /// that accepts a connection and then says nothing); past it the attempt counts as a
    /// transient failure. Default: 60 s; at most 240 s, under the outbox's 5-minute lease (a
    /// worker starts a claimed message only while a whole attempt still fits in its lease).
    #[must_use]
    pub fn send_timeout(mut self, timeout: Duration) -> Self {
        self.send_timeout = timeout.clamp(Duration::from_millis(10), Duration::from_secs(240));
        self
    }

    /// How long after a "mail me a link" request (reset, magic link, confirmation resend)
    /// the worker answers it: a random time between `min` and `max`. The work of answering
    /// (finding the account, issuing and mailing the link) happens only when the address
    /// has an account; done at once, it would slow the requests that come right after, and
    /// a client timing its next request would learn which addresses are registered.
    /// Default: 250 ms to 1.25 s. `Duration::ZERO` for both answers at once.
    #[must_use]
    pub fn answer_delay(mut self, min: Duration, max: Duration) -> Self {
        self.answer_delay = (min, max.max(min));
        self
    }

    /// A delay drawn from [`answer_delay`](Self::answer_delay).
    pub(crate) fn answer_jitter(&self) -> Duration {
        let (min, max) = self.answer_delay;
        let span = u64::try_from((max - min).as_micros()).unwrap_or(u64::MAX);
        if span == 0 {
            return min;
        }
        let mut bytes = [0u8; 8];
        // Without randomness the delay is its longest: never shorter than asked.
        if getrandom::fill(&mut bytes).is_err() {
            return max;
        }
        min + Duration::from_micros(u64::from_le_bytes(bytes) % (span + 1))
    }

    /// The sender's address.
    pub fn from(&self) -> &str {
        self.from.email.as_ref()
    }

    /// Where links point.
    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// The longest one delivery attempt may take (see [`send_timeout`](Self::send_timeout)).
    pub(crate) fn attempt_limit(&self) -> Duration {
        self.send_timeout
    }

    /// Hands one message to the transport, within [`send_timeout`](Self::send_timeout).
    pub(crate) async fn deliver(
        &self,
        from: &str,
        to: &str,
        message: &[u8],
    ) -> Result<(), MailError> {
        tokio::time::timeout(self.send_timeout, self.transport.send(from, to, message))
            .await
            .unwrap_or_else(|_| Err(MailError::Transient("the mail transport timed out".into())))
    }

    pub(crate) fn poll_every(&self) -> Duration {
        self.poll_interval
    }

    /// The wait before attempt `attempts + 1`, after `attempts` failed ones.
    pub(crate) fn backoff(&self, attempts: u32) -> Duration {
        let doublings = attempts.saturating_sub(1).min(20);
        self.retry_initial
            .saturating_mul(1 << doublings)
            .min(self.retry_max)
    }

    /// The link a message of `kind` carries: `public_url` + the kind's path + the query.
    pub(crate) fn link(&self, kind: MailKind, query: &[(&str, &str)]) -> String {
        let path = self
            .link_paths
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or("/", |(_, p)| p.as_str());
        let query: Vec<String> = query
            .iter()
            .map(|(name, value)| {
                format!(
                    "{name}={}",
                    percent_encoding::utf8_percent_encode(value, QUERY_VALUE)
                )
            })
            .collect();
        let mut link = format!("{}{path}", self.public_url);
        if !query.is_empty() {
            link.push('?');
            link.push_str(&query.join("&"));
        }
        link
    }

    /// The app's own address, for notices without a token ("log in here").
    pub(crate) fn home(&self) -> String {
        format!("{}/", self.public_url)
    }

    /// Renders a message of `kind` to `to` and formats it as MIME mail: plain text and
    /// HTML alternatives, UTF-8 headers, a `Message-ID` and a `Date`.
    pub(crate) fn compose(
        &self,
        kind: MailKind,
        to: &str,
        context: &templates::MailContext<'_>,
        now_ms: i64,
        expires_at_ms: i64,
    ) -> Result<OutgoingMail, ComposeError> {
        let rendered = self.templates.render(kind, context)?;
        let recipient: Mailbox = to.parse().map_err(|_| ComposeError::Recipient)?;
        let message = lettre::Message::builder()
            .from(self.from.clone())
            .to(recipient.clone())
            .subject(rendered.subject)
            .message_id(None)
            .multipart(MultiPart::alternative_plain_html(
                rendered.text,
                rendered.html,
            ))
            .map_err(|_| ComposeError::Recipient)?;
        Ok(OutgoingMail {
            from: self.from.email.to_string(),
            to: recipient.email.to_string(),
            message: message.formatted(),
            created_at_ms: now_ms,
            expires_at_ms,
        })
    }
}

/// Why a message could not be made.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ComposeError {
    #[error("a mail template failed")]
    Template(#[from] TemplateError),
    #[error("the recipient address cannot be mailed")]
    Recipient,
}

/// Characters escaped in a link's query values: everything but unreserved ones.
const QUERY_VALUE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `http(s)://host[:port][/prefix]`, without a trailing slash, query or fragment.
fn check_public_url(url: &str) -> Result<String, ConfigError> {
    let refuse = || ConfigError::PublicUrl(url.to_owned());
    let uri: http::Uri = url.parse().map_err(|_| refuse())?;
    let scheme_ok = matches!(uri.scheme_str(), Some("http" | "https"));
    let authority_ok = uri
        .authority()
        .is_some_and(|a| !a.host().is_empty() && !a.as_str().contains('@'));
    if !scheme_ok || !authority_ok || uri.query().is_some() || url.contains('#') {
        return Err(refuse());
    }
    Ok(url.trim_end_matches('/').to_owned())
}

pub(crate) use templates::{MailContext, human_duration};

#[cfg(test)]
mod tests {
    use super::*;

    fn mailer() -> Mailer {
        Mailer::dev_outbox(
            "/nonexistent",
            "App <no-reply@example.com>",
            "https://app.example.com/base/",
        )
        .unwrap()
    }

    #[test]
    fn public_urls_are_checked() {
        for bad in [
            "",
            "app.example.com",
            "ftp://x",
            "https://x/?a=1",
            "https://x/#f",
            "https://u@x/",
        ] {
            assert!(check_public_url(bad).is_err(), "{bad}");
        }
        assert_eq!(
            check_public_url("http://localhost:5000/").unwrap(),
            "http://localhost:5000"
        );
    }

    #[test]
    fn links_carry_the_token_as_a_query_parameter() {
        let m = mailer();
        assert_eq!(
            m.link(MailKind::MagicLink, &[("token", "a/b+c")]),
            "https://app.example.com/base/sessions/magic?token=a%2Fb%2Bc"
        );
        let m = m.link_path(MailKind::MagicLink, "/magic").unwrap();
        assert_eq!(
            m.link(MailKind::MagicLink, &[("token", "t"), ("email", "a@b.c")]),
            "https://app.example.com/base/magic?token=t&email=a%40b.c"
        );
        assert!(mailer().link_path(MailKind::MagicLink, "magic").is_err());
    }

    #[test]
    fn backoff_doubles_up_to_its_bound() {
        let m = mailer().retry(Duration::from_secs(1), Duration::from_secs(5));
        let waits: Vec<u64> = (1..=5).map(|a| m.backoff(a).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 5, 5]);
    }
}
