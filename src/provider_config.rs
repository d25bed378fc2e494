//! Sign-in providers (OpenID Connect, and plain OAuth2 with a userinfo endpoint): what
//! [`AuthConfig::providers`](crate::AuthConfig::providers) holds.

use std::sync::Arc;
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

/// One sign-in provider.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Provider {
    /// Its id in routes and in linked identities (`google`): letters, digits, `-`, `_`.
    pub id: String,
    /// What a "Sign in with ..." button says.
    pub display_name: String,
    /// How it signs people in.
    pub protocol: Protocol,
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
    /// An OpenID Connect provider `id` at `issuer_url`, for `client_id`, called back at
    /// `redirect_url`; shown as `display_name`, asking for `email` and `profile`.
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
            protocol: Protocol::OpenIdConnect {
                issuer_url: issuer_url.into(),
            },
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
            .field("protocol", &self.protocol)
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

impl Provider {
    /// A plain OAuth2 provider (GitHub and the like, which have no ID token): its
    /// `endpoints`, and `userinfo`, which says who the userinfo endpoint's JSON answer is
    /// about; otherwise as [`new`](Self::new), asking for no scope (set
    /// [`scopes`](Self::scopes) as the provider wants: `read:user`, `user:email`...).
    pub fn oauth2(
        id: impl Into<String>,
        display_name: impl Into<String>,
        endpoints: OAuth2Endpoints,
        userinfo: UserinfoHook,
        client_id: impl Into<String>,
        client_secret: Option<String>,
        redirect_url: impl Into<String>,
    ) -> Self {
        Self {
            scopes: Vec::new(),
            protocol: Protocol::OAuth2 {
                endpoints,
                userinfo,
            },
            ..Self::new(id, display_name, "", client_id, client_secret, redirect_url)
        }
    }
}

/// How a provider signs people in.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Protocol {
    /// OpenID Connect: discovery, and a signed ID token that names the person.
    OpenIdConnect {
        /// The issuer URL (its discovery document is
        /// `<issuer>/.well-known/openid-configuration`).
        issuer_url: String,
    },
    /// Plain OAuth2: the person is whoever the userinfo endpoint says, read by a hook.
    OAuth2 {
        /// The endpoints.
        endpoints: OAuth2Endpoints,
        /// Reads the userinfo answer.
        userinfo: UserinfoHook,
    },
}

/// A plain OAuth2 provider's endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OAuth2Endpoints {
    /// Where the browser goes to sign in.
    pub authorize_url: String,
    /// Where the code is exchanged for an access token.
    pub token_url: String,
    /// What the access token reads: who signed in, as JSON.
    pub userinfo_url: String,
}

impl OAuth2Endpoints {
    /// These three endpoints.
    pub fn new(
        authorize_url: impl Into<String>,
        token_url: impl Into<String>,
        userinfo_url: impl Into<String>,
    ) -> Self {
        Self {
            authorize_url: authorize_url.into(),
            token_url: token_url.into(),
            userinfo_url: userinfo_url.into(),
        }
    }
}

/// Who a provider says signed in.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProviderUser {
    /// The provider's stable id of the person (never their email, which can change).
    pub subject: String,
    /// Their email, if the provider gives one.
    pub email: Option<String>,
    /// Whether the provider verified that email (only then may it link to an account).
    pub email_verified: bool,
}

impl ProviderUser {
    /// `subject`, with `email` (verified or not).
    pub fn new(subject: impl Into<String>, email: Option<String>, email_verified: bool) -> Self {
        Self {
            subject: subject.into(),
            email,
            email_verified,
        }
    }
}

/// Reads a plain OAuth2 provider's userinfo answer: who signed in, or `None` when the
/// answer does not say.
///
/// ```
/// use tower_auth::oidc::{ProviderUser, UserinfoHook};
/// // A provider whose answer is {"id": 42, "email": "...", "verified": true}.
/// let hook = UserinfoHook::new(|info| {
///     let subject = info.get("id")?.to_string();
///     let email = info.get("email").and_then(|e| e.as_str()).map(str::to_owned);
///     let verified = info.get("verified").and_then(|v| v.as_bool()) == Some(true);
///     Some(ProviderUser::new(subject, email, verified))
/// });
/// let user = hook.read(&serde_json::json!({ "id": 42, "email": "a@b.io", "verified": true }));
/// assert_eq!(user.map(|u| u.subject), Some("42".to_owned()));
/// ```
#[derive(Clone)]
pub struct UserinfoHook(Arc<ReadUserinfo>);

/// What a [`UserinfoHook`] runs.
type ReadUserinfo = dyn Fn(&serde_json::Value) -> Option<ProviderUser> + Send + Sync;

impl UserinfoHook {
    /// A hook that reads with `read`.
    pub fn new(
        read: impl Fn(&serde_json::Value) -> Option<ProviderUser> + Send + Sync + 'static,
    ) -> Self {
        Self(Arc::new(read))
    }

    /// Reads a userinfo answer.
    pub fn read(&self, userinfo: &serde_json::Value) -> Option<ProviderUser> {
        (self.0)(userinfo)
    }

    /// The OpenID Connect standard claims (`sub`, `email`, `email_verified`), for a
    /// provider whose userinfo endpoint speaks them.
    pub fn standard_claims() -> Self {
        Self::new(|info| {
            let subject = info.get("sub")?.as_str()?.to_owned();
            let email = info
                .get("email")
                .and_then(|e| e.as_str())
                .map(str::to_owned);
            let verified = info.get("email_verified").and_then(|v| v.as_bool()) == Some(true);
            Some(ProviderUser::new(subject, email, verified))
        })
    }
}

impl PartialEq for UserinfoHook {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for UserinfoHook {}

impl std::fmt::Debug for UserinfoHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UserinfoHook(..)")
    }
}
