//! SMTP delivery through lettre, configured by URL.

use std::time::Duration;

use async_trait::async_trait;
use lettre::address::{Address, Envelope};
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::{MailError, MailTransport};
use crate::config_error::ConfigError;

/// How long one SMTP exchange may take before the attempt counts as failed (and is
/// retried later).
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// A [`MailTransport`] that speaks SMTP to one server (lettre's async transport; one
/// connection per message, which suits the few messages an auth service sends).
#[derive(Clone)]
pub struct SmtpTransport {
    inner: AsyncSmtpTransport<Tokio1Executor>,
}

impl std::fmt::Debug for SmtpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold credentials: never shown.
        f.debug_struct("SmtpTransport").finish_non_exhaustive()
    }
}

/// How a URL asks for TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TlsMode {
    None,
    StartTlsRequired,
    StartTlsOpportunistic,
    Wrapper,
}

impl SmtpTransport {
    /// A transport for the server at `url`:
    ///
    /// - `smtp://host:25`: plain SMTP (loopback or a trusted network only);
    /// - `smtp://host:587?tls=required`: STARTTLS, refused if the server does not offer it
    ///   (`?tls=opportunistic`: used when offered);
    /// - `smtps://host:465`: TLS from the first byte;
    /// - credentials as `smtp://user:password@host...` (percent-encode special characters);
    ///   a path names the client in `EHLO` (`smtp://host/client.example.com`).
    ///
    /// Certificates are checked against the Mozilla root store (webpki-roots); each
    /// exchange times out after 30 s.
    ///
    /// # Errors
    /// [`ConfigError::SmtpUrl`] when lettre cannot use the URL (the error never repeats the
    /// URL, which may hold a password).
    pub fn from_url(url: &str) -> Result<Self, ConfigError> {
        let builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| ConfigError::SmtpUrl(e.to_string()))?;
        Ok(Self {
            inner: builder.timeout(Some(SMTP_TIMEOUT)).build(),
        })
    }

    /// [`from_url`](Self::from_url), also trusting the PEM certificate `root_pem` (a
    /// private certificate authority, or a test server's self-signed certificate).
    ///
    /// # Errors
    /// As [`from_url`](Self::from_url), and [`ConfigError::SmtpUrl`] for a URL without TLS
    /// or a certificate that does not parse.
    pub fn from_url_trusting(url: &str, root_pem: &[u8]) -> Result<Self, ConfigError> {
        let invalid = |reason: &str| ConfigError::SmtpUrl(reason.to_owned());
        let uri: http::Uri = url.parse().map_err(|_| invalid("not a URL"))?;
        let host = uri.host().ok_or_else(|| invalid("no host"))?.to_owned();
        let tls = match (uri.scheme_str(), query_tls(&uri)) {
            (Some("smtps"), _) => TlsMode::Wrapper,
            (_, Some("required")) => TlsMode::StartTlsRequired,
            (_, Some("opportunistic")) => TlsMode::StartTlsOpportunistic,
            _ => TlsMode::None,
        };
        let certificate =
            Certificate::from_pem(root_pem).map_err(|_| invalid("the certificate is not PEM"))?;
        let parameters = TlsParameters::builder(host)
            .add_root_certificate(certificate)
            .build_rustls()
            .map_err(|e| ConfigError::SmtpUrl(e.to_string()))?;
        let tls = match tls {
            TlsMode::Wrapper => Tls::Wrapper(parameters),
            TlsMode::StartTlsRequired => Tls::Required(parameters),
            TlsMode::StartTlsOpportunistic => Tls::Opportunistic(parameters),
            TlsMode::None => return Err(invalid("a certificate needs smtps:// or ?tls=")),
        };
        let builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| ConfigError::SmtpUrl(e.to_string()))?;
        Ok(Self {
            inner: builder.tls(tls).timeout(Some(SMTP_TIMEOUT)).build(),
        })
    }
}

/// The URL's `tls=` query value.
fn query_tls(uri: &http::Uri) -> Option<&str> {
    uri.query()?
        .split('&')
        .find_map(|pair| pair.strip_prefix("tls="))
}

#[async_trait]
impl MailTransport for SmtpTransport {
    async fn send(&self, from: &str, to: &str, message: &[u8]) -> Result<(), MailError> {
        let address = |a: &str| {
            a.parse::<Address>()
                .map_err(|e| MailError::Permanent(Box::new(e)))
        };
        let envelope = Envelope::new(Some(address(from)?), vec![address(to)?])
            .map_err(|e| MailError::Permanent(Box::new(e)))?;
        match self.inner.send_raw(&envelope, message).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(MailError::Permanent(Box::new(e))),
            Err(e) => Err(MailError::Transient(Box::new(e))),
        }
    }
}
