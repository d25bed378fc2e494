//! Sign-in providers (OpenID Connect): what [`AuthConfig::providers`](crate::AuthConfig::providers)
//! holds.

use std::time::Duration;

use crate::config::SecondFactorKey;

/// Signing in with OpenID Connect providers ("Sign in with Google"), on the same accounts
/// and sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProvidersConfig {
    /// Seals the state of a sign-in in progress (the cookie the browser carries to the
    /// provider and back). The same key as second factors' serves.
    pub key: SecondFactorKey,
    /// The providers, each with an id of its own (`/oidc/{id}/start`).
    pub providers: Vec<Provider>,
    /// The cookie that carries a sign-in's sealed state (single use, 10 minutes). Default:
    /// `__Host-oidc_state`.
    pub state_cookie: String,
    /// How long a request to a provider may take before the sign-in answers 503.
    /// Default: 10 s.
    pub timeout: Duration,
}

impl ProvidersConfig {
    /// These providers, sign-ins sealed with `key`, with the defaults above.
    pub fn new(key: SecondFactorKey, providers: Vec<Provider>) -> Self {
        Self {
            key,
            providers,
            state_cookie: "__Host-oidc_state".into(),
            timeout: Duration::from_secs(10),
        }
    }
}

/// One OpenID Connect provider.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Provider {
    /// Its id in routes and in linked identities (`google`): letters, digits, `-`, `_`.
    pub id: String,
    /// What a "Sign in with ..." button says.
    pub display_name: String,
    /// The issuer URL (its discovery document is `<issuer>/.well-known/openid-configuration`).
    pub issuer_url: String,
    /// The client id the provider gave this app.
    pub client_id: String,
    /// The client secret, if the provider gave one (never logged; `Debug` hides it).
    pub client_secret: Option<String>,
    /// Scopes besides `openid` (default: `email`, `profile`).
    pub scopes: Vec<String>,
    /// The callback URL registered with the provider: where the router's
    /// `GET /oidc/{id}/callback` is reached (`https://app.example.com/auth/oidc/google/callback`
    /// under a `/auth` prefix).
    pub redirect_url: String,
}

impl Provider {
    /// A provider `id` at `issuer_url`, for `client_id`, called back at `redirect_url`;
    /// shown as `display_name`, asking for `email` and `profile`.
    pub fn new(
        id: impl Into<String>,
        display_name: impl Into<String>,
        issuer_url: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: Option<String>,
        redirect_url: impl Into<String>,
    ) -> Self {
        Self {
            id: id.into(),
            display_name: display_name.into(),
            issuer_url: issuer_url.into(),
            client_id: client_id.into(),
            client_secret,
            scopes: vec!["email".into(), "profile".into()],
            redirect_url: redirect_url.into(),
        }
    }
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("id", &self.id)
            .field("display_name", &self.display_name)
            .field("issuer_url", &self.issuer_url)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "[redacted]"),
            )
            .field("scopes", &self.scopes)
            .field("redirect_url", &self.redirect_url)
            .finish()
    }
}
