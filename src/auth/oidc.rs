//! Signing in with OpenID Connect providers (authorization code with PKCE, state and
//! nonce, discovery, ID-token verification) and plain OAuth2 ones (PKCE and state, then
//! the userinfo endpoint, read by the configured hook); the HTTP client follows no
//! redirects.
//!
//! The state of a sign-in in progress rides in a cookie, sealed with the configured key
//! (the browser carries it to the provider and back but can neither read nor change it),
//! valid 10 minutes and single use. At the callback:
//!
//! - an identity already linked logs its account in, through the protected login
//!   (throttle, confirmed email, second factor when enrolled, session rotation);
//! - a sign-in started from a session, in sudo mode, links the identity to that account;
//! - otherwise, an email the provider *verified* that matches an account whose email is
//!   confirmed links to it (the account is mailed); one that matches an unconfirmed
//!   account is refused, since whoever registered that address first may not own it;
//! - a verified email with no account makes a new, confirmed account without a password;
//! - an email the provider did not verify never links and never makes an account.

use std::time::Duration;

use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RequestTokenError, Scope, TokenResponse,
};

use super::cookie::SessionCookie;
use super::login::{LoggedIn, Login};
use super::{Auth, AuthError, Client, event, normalize_email};
use crate::auth_methods::AuthMethod;
use crate::mail::MailKind;
use crate::provider_config::{OAuth2Endpoints, Protocol, Provider, ProviderUser, ProvidersConfig};
use crate::store::{NewIdentity, NewUser, StoreError, UserLookup};
use crate::user::User;

/// How long a sign-in may take at the provider.
const SIGN_IN: Duration = Duration::from_secs(10 * 60);
/// The largest userinfo answer read: a person's claims are a few hundred bytes.
const MAX_USERINFO_BYTES: usize = 64 * 1024;

/// What the state cookie is sealed together with.
const STATE_AAD: &[u8] = b"tower-auth provider sign-in";

/// How long discovered metadata (with the provider's signing keys) is used before it is
/// fetched again: keys a provider rotates in are picked up within this time.
const METADATA_TTL: Duration = Duration::from_secs(3600);
/// How long a provider whose discovery failed is answered 503 at once, before it is tried
/// again: requests do not queue behind a provider that is down.
const FAILED_DISCOVERY_PAUSE: Duration = Duration::from_secs(5);

/// Provider metadata found by discovery, per provider: found (when), or failed (when).
#[derive(Default)]
pub(super) struct Discovered(
    std::sync::Mutex<
        std::collections::HashMap<String, (std::time::Instant, Option<CoreProviderMetadata>)>,
    >,
);

/// Where to send the browser to sign in at a provider, and the cookie that carries the
/// sign-in's sealed state (return both: `303 See Other` with `Location`).
#[non_exhaustive]
pub struct ProviderRedirect {
    /// The provider's authorization URL.
    pub location: String,
    /// The `Set-Cookie` of the sign-in's state.
    pub cookie: SessionCookie,
}

impl std::fmt::Debug for ProviderRedirect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderRedirect").finish_non_exhaustive()
    }
}

/// What a provider's callback carries (its query string's fields).
#[derive(Clone, Copy, Default)]
#[non_exhaustive]
pub struct ProviderCallback<'a> {
    /// The authorization code.
    pub code: Option<&'a str>,
    /// The state sent with the sign-in.
    pub state: Option<&'a str>,
    /// The provider's error (`access_denied`...), when it refused.
    pub error: Option<&'a str>,
}

impl std::fmt::Debug for ProviderCallback<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderCallback")
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

/// How a sign-in at a provider ended.
#[derive(Debug)]
#[non_exhaustive]
pub enum ProviderSignIn {
    /// The account is logged in: return [`LoggedIn::cookie`].
    LoggedIn {
        /// The login.
        logged_in: LoggedIn,
        /// Where the sign-in asked to go next (a path on this site).
        next: String,
    },
    /// The identity was linked to the session's account.
    Linked {
        /// Where the sign-in asked to go next.
        next: String,
    },
}

/// An identity linked to an account, as its owner sees it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct IdentityInfo {
    /// Its id, for unlinking it.
    pub id: i64,
    /// The provider's id.
    pub provider: String,
    /// The email the provider gave when it was linked.
    pub email: Option<String>,
    /// When it was linked, milliseconds since the Unix epoch.
    pub created_at_ms: i64,
}

/// A sign-in's state, as its cookie carries it (sealed, single use).
#[derive(serde::Serialize, serde::Deserialize)]
struct SignIn {
    provider: String,
    csrf: String,
    nonce: String,
    pkce: String,
    next: String,
    /// The account to link to, when started from a session.
    link_user: Option<i64>,
}

impl Auth {
    fn providers_config(&self) -> Result<&ProvidersConfig, AuthError> {
        self.inner
            .config
            .providers
            .as_ref()
            .ok_or(AuthError::UnknownProvider)
    }

    fn provider(&self, id: &str) -> Result<&Provider, AuthError> {
        self.providers_config()?
            .providers
            .iter()
            .find(|p| p.id == id)
            .ok_or(AuthError::UnknownProvider)
    }

    /// The HTTP client for providers: no redirects (a provider's answer is never a
    /// redirect to follow: following one opens the door to request forgery), a timeout.
    fn provider_http(&self) -> Result<openidconnect::reqwest::Client, AuthError> {
        let timeout = self.providers_config()?.timeout;
        openidconnect::reqwest::Client::builder()
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|_| AuthError::ProviderUnavailable)
    }

    /// The provider's metadata: discovered, then kept for [`METADATA_TTL`]; after a failed
    /// discovery, [`AuthError::ProviderUnavailable`] at once for [`FAILED_DISCOVERY_PAUSE`].
    /// The network is never awaited under the lock.
    async fn metadata(
        &self,
        provider: &Provider,
        issuer_url: &str,
        http: &openidconnect::reqwest::Client,
    ) -> Result<CoreProviderMetadata, AuthError> {
        let now = std::time::Instant::now();
        let cached = self
            .inner
            .discovered
            .0
            .lock()
            .ok()
            .and_then(|cache| cache.get(&provider.id).cloned());
        match cached {
            Some((at, Some(found))) if now.duration_since(at) < METADATA_TTL => return Ok(found),
            Some((at, None)) if now.duration_since(at) < FAILED_DISCOVERY_PAUSE => {
                return Err(AuthError::ProviderUnavailable);
            }
            _ => {}
        }
        let issuer =
            IssuerUrl::new(issuer_url.to_owned()).map_err(|_| AuthError::ProviderUnavailable)?;
        let found = CoreProviderMetadata::discover_async(issuer, http)
            .await
            .map_err(|err| {
                tracing::warn!(target: "tower_auth", provider = %provider.id, error = %err, "provider discovery failed");
            })
            .ok();
        if let Ok(mut cache) = self.inner.discovered.0.lock() {
            cache.insert(
                provider.id.clone(),
                (std::time::Instant::now(), found.clone()),
            );
        }
        found.ok_or(AuthError::ProviderUnavailable)
    }

    /// Starts a sign-in at provider `id`; afterwards the browser goes to `next` (a path on
    /// this site; anything else becomes `/`).
    ///
    /// # Errors
    /// [`AuthError::UnknownProvider`]; [`AuthError::ProviderUnavailable`] when its
    /// discovery document cannot be fetched.
    pub async fn start_provider_sign_in(
        &self,
        id: &str,
        next: Option<&str>,
    ) -> Result<ProviderRedirect, AuthError> {
        self.begin_sign_in(id, next, None).await
    }

    /// Starts linking an identity at provider `id` to the client's session's account,
    /// confirmed by the account's `password` (or, for an account without one, a recent
    /// authentication): a stolen session alone cannot add a way in.
    ///
    /// # Errors
    /// As [`start_provider_sign_in`](Self::start_provider_sign_in), and
    /// [`AuthError::PasswordRequired`], [`AuthError::WrongPassword`],
    /// [`AuthError::ReauthenticationRequired`], [`AuthError::NoSession`].
    pub async fn start_provider_link(
        &self,
        client: &Client,
        id: &str,
        next: Option<&str>,
        password: Option<&str>,
    ) -> Result<ProviderRedirect, AuthError> {
        let (session, user) = self.require_session(client.session_id()).await?;
        self.confirm_entry_change(client, &session, &user, password)
            .await?;
        self.begin_sign_in(id, next, Some(user.id.0)).await
    }

    async fn begin_sign_in(
        &self,
        id: &str,
        next: Option<&str>,
        link_user: Option<i64>,
    ) -> Result<ProviderRedirect, AuthError> {
        let provider = self.provider(id)?;
        let config = self.providers_config()?;
        let http = self.provider_http()?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let scopes = provider
            .scopes
            .iter()
            .map(|scope| Scope::new(scope.clone()));
        let (url, csrf, nonce) = match &provider.protocol {
            Protocol::OpenIdConnect { issuer_url } => {
                let metadata = self.metadata(provider, issuer_url, &http).await?;
                oidc_client(provider, metadata)?
                    .authorize_url(
                        CoreAuthenticationFlow::AuthorizationCode,
                        CsrfToken::new_random,
                        Nonce::new_random,
                    )
                    .add_scopes(scopes)
                    .set_pkce_challenge(challenge)
                    .url()
            }
            Protocol::OAuth2 { endpoints, .. } => {
                let (url, csrf) = oauth2_client(provider, endpoints)?
                    .authorize_url(CsrfToken::new_random)
                    .add_scopes(scopes)
                    .set_pkce_challenge(challenge)
                    .url();
                (url, csrf, Nonce::new(String::new()))
            }
        };
        let state = SignIn {
            provider: provider.id.clone(),
            csrf: csrf.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce: verifier.secret().clone(),
            next: crate::safe_next(next).to_owned(),
            link_user,
        };
        let sealed = self.seal_once(&config.key, STATE_AAD, state, SIGN_IN)?;
        let cookie = self
            .side_cookie(&config.state_cookie, sealed, Some(SIGN_IN))
            .ok_or(AuthError::TokenCollision)?;
        Ok(ProviderRedirect {
            location: url.to_string(),
            cookie,
        })
    }

    /// Finishes a sign-in at provider `id` with its callback and the state cookie's value:
    /// verifies the state (single use, unexpired, this provider's), exchanges the code with
    /// the PKCE verifier, verifies the ID token (signature, issuer, audience, expiry, nonce)
    /// and links or logs in as the module's rules say.
    ///
    /// # Errors
    /// [`AuthError::InvalidToken`] for a missing, altered, expired, replayed or mismatched
    /// state; [`AuthError::ProviderRefused`] for a provider error or a token that does not
    /// verify; [`AuthError::LinkRefused`]; [`AuthError::ProviderUnavailable`]; a login's
    /// errors ([`AuthError::SecondFactorRequired`], [`AuthError::Throttled`]...).
    pub async fn finish_provider_sign_in(
        &self,
        client: &Client,
        id: &str,
        state_cookie: &str,
        callback: ProviderCallback<'_>,
    ) -> Result<ProviderSignIn, AuthError> {
        let provider = self.provider(id)?;
        let state = self.take_sign_in(state_cookie).await?;
        let matches = callback.state.is_some_and(|s| {
            crate::token::TokenHash::of(s) == crate::token::TokenHash::of(&state.csrf)
        });
        if state.provider != provider.id || !matches {
            return Err(AuthError::InvalidToken);
        }
        if let Some(error) = callback.error {
            return Err(AuthError::ProviderRefused(error.chars().take(64).collect()));
        }
        let code = AuthorizationCode::new(callback.code.ok_or(AuthError::InvalidToken)?.to_owned());
        let verifier = PkceCodeVerifier::new(state.pkce.clone());
        let http = self.provider_http()?;
        let user = match &provider.protocol {
            Protocol::OpenIdConnect { issuer_url } => {
                let metadata = self.metadata(provider, issuer_url, &http).await?;
                let oidc = oidc_client(provider, metadata)?;
                let exchange = oidc
                    .exchange_code(code)
                    .map_err(|_| AuthError::ProviderUnavailable)?
                    .set_pkce_verifier(verifier)
                    .request_async(&http)
                    .await;
                let tokens = token_answer(provider, exchange)?;
                verified_claims(&oidc, &tokens, &state.nonce)?
            }
            Protocol::OAuth2 {
                endpoints,
                userinfo,
            } => {
                let exchange = oauth2_client(provider, endpoints)?
                    .exchange_code(code)
                    .set_pkce_verifier(verifier)
                    .request_async(&http)
                    .await;
                let tokens = token_answer(provider, exchange)?;
                let info = read_userinfo(provider, endpoints, &http, tokens.access_token()).await?;
                userinfo
                    .read(&info)
                    .ok_or_else(|| AuthError::ProviderRefused("unreadable userinfo".into()))?
            }
        };
        let person = Person {
            provider: &provider.id,
            subject: &user.subject,
            email: user.email.as_deref(),
            verified: user.email_verified,
        };
        self.settle_sign_in(client, person, state).await
    }

    async fn take_sign_in(&self, cookie: &str) -> Result<SignIn, AuthError> {
        let config = self.providers_config()?;
        self.open_once(&config.key, STATE_AAD, cookie, SIGN_IN)
            .await
    }

    /// Links or logs in the person a provider vouched for (see the module's rules).
    async fn settle_sign_in(
        &self,
        client: &Client,
        person: Person<'_>,
        state: SignIn,
    ) -> Result<ProviderSignIn, AuthError> {
        let linked = self
            .store()
            .find_identity(person.provider, person.subject)
            .await?;
        if let Some(owner) = state.link_user {
            let (session, user) = self.require_session(client.session_id()).await?;
            if user.id.0 != owner {
                return Err(AuthError::InvalidToken);
            }
            self.check_sudo(&session)?;
            match linked {
                Some((_, already)) if already.id == user.id => {}
                Some(_) => {
                    return Err(AuthError::LinkRefused(
                        "this identity is linked to another account",
                    ));
                }
                None => self.link(&user, &person).await?,
            }
            return Ok(ProviderSignIn::Linked { next: state.next });
        }
        let user = match linked {
            Some((_, user)) => user,
            None => self.account_for(&person).await?,
        };
        self.check_account_not_throttled(&user).await?;
        let login = Login {
            methods: AuthMethod::Provider.into(),
            remember_me: false,
            trust_device: false,
        };
        let logged_in = self.finish_login(client, user, login).await?;
        Ok(ProviderSignIn::LoggedIn {
            logged_in,
            next: state.next,
        })
    }

    /// The account a new identity signs in to: the confirmed account of its verified
    /// email (linked now, and mailed), or a new confirmed account; never an unconfirmed
    /// one, never for an unverified email.
    async fn account_for(&self, person: &Person<'_>) -> Result<User, AuthError> {
        let email = person
            .email
            .filter(|_| person.verified)
            .and_then(|email| normalize_email(email).ok())
            .ok_or(AuthError::LinkRefused(
                "the provider did not verify an email address for this identity",
            ))?;
        if let Some(record) = self.store().find_user_by(UserLookup::Email(&email)).await? {
            if !record.user.email_confirmed() {
                return Err(AuthError::LinkRefused(
                    "an account with this email waits for its confirmation: confirm it and \
                     log in, then link the provider",
                ));
            }
            self.link(&record.user, person).await?;
            return Ok(record.user);
        }
        let now = self.now_ms();
        let added = self
            .store()
            .add_user(NewUser {
                email: email.clone(),
                password_hash: crate::password::NO_PASSWORD.to_owned(),
                created_at_ms: now,
                first_link: None,
                // The provider verified it: the account is born confirmed, in the same write.
                email_confirmed_at_ms: Some(now),
            })
            .await;
        let user = match added {
            Ok(user) => user,
            // Registered meanwhile: decided as an existing account, next time.
            Err(StoreError::Duplicate) => {
                return Err(AuthError::LinkRefused(
                    "retry: the account changed meanwhile",
                ));
            }
            Err(err) => return Err(err.into()),
        };
        let identity = NewIdentity::new(
            user.id,
            person.provider,
            person.subject,
            person.email.map(str::to_owned),
            now,
        );
        self.store().add_identity(identity).await?;
        event("registered_with_provider", Some(user.id));
        Ok(user)
    }

    /// Links `person`'s identity to `user`, and tells the account.
    async fn link(&self, user: &User, person: &Person<'_>) -> Result<(), AuthError> {
        let identity = NewIdentity::new(
            user.id,
            person.provider,
            person.subject,
            person.email.map(str::to_owned),
            self.now_ms(),
        );
        match self.store().add_identity(identity).await {
            Ok(_) => {}
            Err(StoreError::Duplicate) => {
                return Err(AuthError::LinkRefused(
                    "this identity is linked to another account",
                ));
            }
            Err(err) => return Err(err.into()),
        }
        self.notify(MailKind::ProviderLinked, user).await?;
        event("provider_linked", Some(user.id));
        Ok(())
    }

    /// The identities linked to the client's session's account.
    ///
    /// # Errors
    /// [`AuthError::NoSession`]; a store failure.
    pub async fn identities(&self, client: &Client) -> Result<Vec<IdentityInfo>, AuthError> {
        let (_, user) = self.require_session(client.session_id()).await?;
        Ok(self
            .store()
            .list_identities(user.id)
            .await?
            .into_iter()
            .map(|i| IdentityInfo {
                id: i.id,
                provider: i.provider,
                email: i.email,
                created_at_ms: i.created_at_ms,
            })
            .collect())
    }

    /// Unlinks identity `id` from the client's session's account (needs a recent
    /// authentication), unless it is the account's last way in (no password, passkey or
    /// other identity left).
    ///
    /// # Errors
    /// [`AuthError::LinkRefused`] for the last way in; [`AuthError::NoSecondFactor`] when
    /// the account has no identity `id`; [`AuthError::ReauthenticationRequired`];
    /// [`AuthError::NoSession`]; a store failure.
    pub async fn unlink_identity(&self, client: &Client, id: i64) -> Result<(), AuthError> {
        let (session, user) = self.require_session(client.session_id()).await?;
        self.check_sudo(&session)?;
        let identities = self.store().list_identities(user.id).await?;
        if !identities.iter().any(|i| i.id == id) {
            return Err(AuthError::NoSecondFactor);
        }
        let record = self
            .store()
            .find_user_by(UserLookup::Id(user.id))
            .await?
            .ok_or(AuthError::NoSession)?;
        let has_password = record.password_hash != crate::password::NO_PASSWORD;
        let has_passkey = self
            .store()
            .list_factors(user.id)
            .await?
            .iter()
            .any(|f| f.kind == crate::store::FactorKind::Passkey);
        if !has_password && !has_passkey && identities.len() < 2 {
            return Err(AuthError::LinkRefused(
                "this is the account's last way in: set a password or add a passkey first",
            ));
        }
        self.store().delete_identity(user.id, id).await?;
        event("provider_unlinked", Some(user.id));
        Ok(())
    }
}

/// Who a provider vouched for.
struct Person<'a> {
    provider: &'a str,
    subject: &'a str,
    email: Option<&'a str>,
    verified: bool,
}

/// An OpenID Connect client from discovered metadata.
type OidcClient = CoreClient<
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
>;

/// The OpenID Connect client of `provider` with its discovered `metadata`.
fn oidc_client(
    provider: &Provider,
    metadata: CoreProviderMetadata,
) -> Result<OidcClient, AuthError> {
    let redirect = RedirectUrl::new(provider.redirect_url.clone())
        .map_err(|_| AuthError::ProviderUnavailable)?;
    Ok(CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(provider.client_id.clone()),
        provider.client_secret.clone().map(ClientSecret::new),
    )
    .set_redirect_uri(redirect))
}

/// The plain OAuth2 client of `provider` at `endpoints`.
fn oauth2_client(
    provider: &Provider,
    endpoints: &OAuth2Endpoints,
) -> Result<
    oauth2::basic::BasicClient<
        oauth2::EndpointSet,
        oauth2::EndpointNotSet,
        oauth2::EndpointNotSet,
        oauth2::EndpointNotSet,
        oauth2::EndpointSet,
    >,
    AuthError,
> {
    let unusable = |_| AuthError::ProviderUnavailable;
    let mut client = oauth2::basic::BasicClient::new(ClientId::new(provider.client_id.clone()))
        .set_auth_uri(oauth2::AuthUrl::new(endpoints.authorize_url.clone()).map_err(unusable)?)
        .set_token_uri(oauth2::TokenUrl::new(endpoints.token_url.clone()).map_err(unusable)?)
        .set_redirect_uri(RedirectUrl::new(provider.redirect_url.clone()).map_err(unusable)?);
    if let Some(secret) = &provider.client_secret {
        client = client.set_client_secret(ClientSecret::new(secret.clone()));
    }
    Ok(client)
}

/// A token endpoint's answer, or what went wrong: the provider's refusal (4xx), or a
/// provider that cannot be reached (503).
fn token_answer<T, E, F>(
    provider: &Provider,
    exchange: Result<T, RequestTokenError<E, F>>,
) -> Result<T, AuthError>
where
    E: std::error::Error + 'static,
    F: oauth2::ErrorResponse + 'static,
{
    match exchange {
        Ok(tokens) => Ok(tokens),
        Err(RequestTokenError::ServerResponse(answer)) => Err(AuthError::ProviderRefused(
            answer.to_string().chars().take(64).collect(),
        )),
        Err(RequestTokenError::Request(err)) => {
            tracing::warn!(target: "tower_auth", provider = %provider.id, error = %err, "provider token request failed");
            Err(AuthError::ProviderUnavailable)
        }
        Err(_) => Err(AuthError::ProviderRefused("unreadable token answer".into())),
    }
}

/// Who an OpenID Connect token answer names, once its ID token verifies (signature,
/// issuer, audience, expiry, `nonce`) and its access token is the one the ID token
/// vouches for.
fn verified_claims(
    oidc: &OidcClient,
    tokens: &openidconnect::core::CoreTokenResponse,
    nonce: &str,
) -> Result<ProviderUser, AuthError> {
    let id_token = tokens
        .id_token()
        .ok_or_else(|| AuthError::ProviderRefused("no ID token".into()))?;
    let verifier = oidc.id_token_verifier();
    let claims = id_token
        .claims(&verifier, &Nonce::new(nonce.to_owned()))
        .map_err(|err| AuthError::ProviderRefused(verification_failure(&err.to_string())))?;
    if let Some(expected) = claims.access_token_hash() {
        let actual = id_token
            .signing_alg()
            .ok()
            .zip(id_token.signing_key(&verifier).ok())
            .and_then(|(alg, key)| {
                openidconnect::AccessTokenHash::from_token(tokens.access_token(), alg, key).ok()
            });
        if actual.as_ref() != Some(expected) {
            return Err(AuthError::ProviderRefused("access token hash".into()));
        }
    }
    Ok(ProviderUser::new(
        claims.subject().as_str(),
        claims.email().map(|e| e.as_str().to_owned()),
        claims.email_verified() == Some(true),
    ))
}

/// The userinfo endpoint's JSON answer for `token`.
async fn read_userinfo(
    provider: &Provider,
    endpoints: &OAuth2Endpoints,
    http: &openidconnect::reqwest::Client,
    token: &oauth2::AccessToken,
) -> Result<serde_json::Value, AuthError> {
    let answer = http
        .get(&endpoints.userinfo_url)
        .bearer_auth(token.secret())
        .header(http::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|err| {
            tracing::warn!(target: "tower_auth", provider = %provider.id, error = %err, "provider userinfo request failed");
            AuthError::ProviderUnavailable
        })?;
    if !answer.status().is_success() {
        return Err(AuthError::ProviderRefused(format!(
            "userinfo answered {}",
            answer.status().as_u16()
        )));
    }
    let mut answer = answer;
    let mut body = Vec::new();
    while let Some(chunk) = answer
        .chunk()
        .await
        .map_err(|_| AuthError::ProviderUnavailable)?
    {
        if body.len() + chunk.len() > MAX_USERINFO_BYTES {
            return Err(AuthError::ProviderRefused("userinfo too large".into()));
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body)
        .map_err(|_| AuthError::ProviderRefused("unreadable userinfo".into()))
}

/// What a person is told when an ID token does not verify (the detail goes to the log).
fn verification_failure(detail: &str) -> String {
    tracing::warn!(target: "tower_auth", error = detail, "an ID token did not verify");
    "the ID token did not verify".into()
}
