//! [`Client`]: who asks, as every flow needs to know it.

use std::net::IpAddr;

/// What a request tells about its client: its address, its `User-Agent`, the session and
/// trusted-device cookies it presented. Every flow of [`Auth`](crate::Auth) takes one, so
/// that per-client limits, session-fixation defence and trusted devices cannot be skipped
/// by forgetting an argument.
///
/// Behind the [`AuthLayer`](crate::AuthLayer), take it from the request with
/// [`AuthContext::client`](crate::AuthContext::client) (the context's own methods do).
/// Elsewhere (a job, a test, a CLI), build it: a client with no address is counted against
/// per-account limits only, and the service says once in its log that per-client limits
/// are off.
///
/// ```
/// use tower_auth::Client;
/// let client = Client::new(Some([203, 0, 113, 7].into())).user_agent(Some("curl/8.5"));
/// assert_eq!(client.ip, Some([203, 0, 113, 7].into()));
/// // Debug never shows the cookies' secrets.
/// let client = client.session(Some("secret-token"));
/// assert!(!format!("{client:?}").contains("secret-token"));
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Client {
    /// The client's address (per-client limits, and the session's record of it).
    pub ip: Option<IpAddr>,
    /// The client's `User-Agent` header (described in the user's list of sessions).
    pub user_agent: Option<String>,
    /// The session token the client presented (a secret).
    pub session: Option<String>,
    /// The trusted-device cookie the client presented (a secret; see
    /// [`trusted_device_cookie`](crate::AuthConfig::trusted_device_cookie)).
    pub device: Option<String>,
    /// The cookie of a browser whose owner asked not to be asked for a second factor on it
    /// for a while (a secret; see
    /// [`SecondFactorConfig::device_cookie`](crate::second_factor::SecondFactorConfig::device_cookie)).
    pub second_factor_device: Option<String>,
}

impl Client {
    /// A client at `ip` (`None` when the address is unknown) that presented no cookie.
    pub fn new(ip: Option<IpAddr>) -> Self {
        Self {
            ip,
            ..Self::default()
        }
    }

    /// The client's `User-Agent` header.
    #[must_use]
    pub fn user_agent(mut self, user_agent: Option<&str>) -> Self {
        self.user_agent = user_agent.map(str::to_owned);
        self
    }

    /// The session token the client presented.
    #[must_use]
    pub fn session(mut self, token: Option<&str>) -> Self {
        self.session = token.map(str::to_owned);
        self
    }

    /// The trusted-device cookie the client presented.
    #[must_use]
    pub fn device(mut self, token: Option<&str>) -> Self {
        self.device = token.map(str::to_owned);
        self
    }

    pub(crate) fn session_id(&self) -> Option<&str> {
        self.session.as_deref()
    }

    pub(crate) fn device_token(&self) -> Option<&str> {
        self.device.as_deref()
    }

    pub(crate) fn user_agent_str(&self) -> Option<&str> {
        self.user_agent.as_deref()
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("ip", &self.ip)
            .field("user_agent", &self.user_agent)
            .field("session", &self.session.as_ref().map(|_| "[redacted]"))
            .field("device", &self.device.as_ref().map(|_| "[redacted]"))
            .field(
                "second_factor_device",
                &self.second_factor_device.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}
