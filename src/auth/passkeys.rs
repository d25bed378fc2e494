//! Passkeys (WebAuthn, `webauthn-rs`): registering one (sudo), listing, renaming and
//! removing them, logging in with a passkey alone (a discoverable credential, offered by
//! the browser's autofill: conditional UI) and using one as a second factor.
//!
//! A ceremony has two requests: the first sends the browser its options and keeps the
//! ceremony's state in a cookie, sealed with the second-factor key (the browser carries it
//! but can neither read nor change it), bound to what the ceremony is for and who, valid
//! 5 minutes, and single use (its id is counted in the store: a second use is refused).
//! Credential ids are unique across accounts; the relying party id is the host of
//! [`public_origin`](crate::AuthConfig::public_origin), and only that origin may answer.

use std::sync::Arc;

use base64::Engine as _;
use sha2::{Digest, Sha256};
use webauthn_rs::prelude::{
    DiscoverableAuthentication, Passkey, PasskeyAuthentication, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, Url, Uuid, Webauthn, WebauthnBuilder,
};

use super::cookie::SessionCookie;
use super::login::{LoggedIn, Login};
use super::recovery_codes::RecoveryCodes;
use super::{Auth, AuthError, Client, event};
use crate::auth_methods::AuthMethod;
use crate::config::{AuthConfig, ConfigError};
use crate::mail::MailKind;
use crate::store::{Factor, FactorKind, FactorUpdate, NewFactor, StoreError, TokenPurpose};
use crate::user::{User, UserId};

/// How long a ceremony may take.
const CEREMONY: std::time::Duration = std::time::Duration::from_secs(5 * 60);
/// Longest passkey name kept.
const MAX_NAME_CHARS: usize = 64;

/// The relying party of this configuration: `None` when passkeys are off (no second
/// factors, or no public origin to take the relying party id from).
pub(super) fn relying_party(config: &AuthConfig) -> Result<Option<Arc<Webauthn>>, ConfigError> {
    let (Some(second), Some(origin)) = (&config.second_factors, &config.public_origin) else {
        return Ok(None);
    };
    let refused = || ConfigError::AllowedOrigin(origin.clone());
    let url = Url::parse(origin).map_err(|_| refused())?;
    let host = url.host_str().ok_or_else(refused)?.to_owned();
    let webauthn = WebauthnBuilder::new(&host, &url)
        .and_then(|builder| builder.rp_name(&second.issuer).build())
        .map_err(|_| refused())?;
    Ok(Some(Arc::new(webauthn)))
}

/// A ceremony's first answer: the options for the browser's `navigator.credentials` call
/// (JSON, as `PublicKeyCredential.parseCreationOptionsFromJSON` and
/// `parseRequestOptionsFromJSON` take them), and the cookie carrying its sealed state.
#[non_exhaustive]
pub struct PasskeyChallenge {
    /// The options, for the browser.
    pub options: serde_json::Value,
    /// The `Set-Cookie` of the ceremony's state: return it with the response.
    pub cookie: SessionCookie,
}

impl std::fmt::Debug for PasskeyChallenge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasskeyChallenge").finish_non_exhaustive()
    }
}

/// One of an account's passkeys, as its owner sees it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct PasskeyInfo {
    /// Its id, for renaming and removing it.
    pub id: i64,
    /// The name its owner gave it.
    pub name: String,
    /// When it was registered, milliseconds since the Unix epoch.
    pub created_at_ms: i64,
    /// When it was last used, milliseconds since the Unix epoch.
    pub last_used_ms: Option<i64>,
}

impl PasskeyInfo {
    fn of(factor: &Factor) -> Self {
        Self {
            id: factor.id,
            name: factor.name.clone(),
            created_at_ms: factor.created_at_ms,
            last_used_ms: factor.last_used_ms,
        }
    }
}

/// A registered passkey, and the account's recovery codes when this was its first second
/// factor (shown once).
#[derive(Debug)]
#[non_exhaustive]
pub struct PasskeyAdded {
    /// The new passkey.
    pub passkey: PasskeyInfo,
    /// New recovery codes, when the account had none.
    pub recovery_codes: Option<RecoveryCodes>,
}

/// What a ceremony is for, and what its sealed state holds.
#[derive(serde::Serialize, serde::Deserialize)]
enum Ceremony {
    Register {
        user: i64,
        state: PasskeyRegistration,
    },
    LogIn {
        state: DiscoverableAuthentication,
    },
    SecondFactor {
        user: i64,
        state: PasskeyAuthentication,
    },
}

/// What the ceremony cookie is sealed together with.
const CEREMONY_AAD: &[u8] = b"tower-auth passkey ceremony";

impl Auth {
    fn relying_party(&self) -> Result<&Webauthn, AuthError> {
        self.inner
            .webauthn
            .as_deref()
            .ok_or(AuthError::Config(ConfigError::NoSecondFactors))
    }

    /// The WebAuthn user handle of `user_id`: derived with the key, so it reveals neither
    /// the id nor the email, and needs no column.
    fn user_handle(&self, user_id: UserId) -> Result<Uuid, AuthError> {
        let config = self.second_factor_config()?;
        let digest = Sha256::new()
            .chain_update(b"tower-auth passkey user handle\0")
            .chain_update(config.key.bytes())
            .chain_update(user_id.0.to_be_bytes())
            .finalize();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        Ok(Uuid::from_bytes(bytes))
    }

    /// Seals `ceremony` into a cookie, with the browser's options.
    fn challenge(
        &self,
        ceremony: Ceremony,
        options: serde_json::Value,
    ) -> Result<PasskeyChallenge, AuthError> {
        let config = self.second_factor_config()?;
        let value = self.seal_once(&config.key, CEREMONY_AAD, ceremony, CEREMONY)?;
        let cookie = self
            .side_cookie(&config.ceremony_cookie, value, Some(CEREMONY))
            .ok_or(AuthError::TokenCollision)?;
        Ok(PasskeyChallenge { options, cookie })
    }

    /// The ceremony a cookie carries, once: expired, altered, replayed or unreadable state
    /// is [`AuthError::InvalidToken`].
    async fn take_ceremony(&self, cookie: &str) -> Result<Ceremony, AuthError> {
        let config = self.second_factor_config()?;
        self.open_once(&config.key, CEREMONY_AAD, cookie, CEREMONY)
            .await
    }

    /// The passkeys of `user`, as stored factors and as credentials.
    async fn passkeys_of(&self, user: &User) -> Result<Vec<(Factor, Passkey)>, AuthError> {
        Ok(self
            .store()
            .list_factors(user.id)
            .await?
            .into_iter()
            .filter(|f| f.kind == FactorKind::Passkey)
            .filter_map(|f| {
                let key = serde_json::from_str::<Passkey>(&f.secret).ok()?;
                Some((f, key))
            })
            .collect())
    }

    /// Starts registering a passkey for the client's session's user, confirmed by the
    /// account's `password` (or, for an account without one, a recent authentication). The browser must create a discoverable credential with user
    /// verification; its existing passkeys are excluded.
    ///
    /// # Errors
    /// [`AuthError::PasswordRequired`]; [`AuthError::WrongPassword`];
    /// [`AuthError::ReauthenticationRequired`]; [`AuthError::NoSession`]; passkeys off
    /// ([`AuthError::Config`]); a store failure.
    pub async fn start_passkey_registration(
        &self,
        client: &Client,
        password: Option<&str>,
    ) -> Result<PasskeyChallenge, AuthError> {
        let webauthn = self.relying_party()?;
        let (session, user) = self.require_session(client.session_id()).await?;
        self.confirm_entry_change(client, &session, &user, password)
            .await?;
        let existing = self
            .passkeys_of(&user)
            .await?
            .into_iter()
            .map(|(_, key)| key.cred_id().clone())
            .collect::<Vec<_>>();
        let (options, state) = webauthn
            .start_passkey_registration(
                self.user_handle(user.id)?,
                &user.email,
                &user.email,
                Some(existing),
            )
            .map_err(|_| AuthError::InvalidToken)?;
        let mut options =
            serde_json::to_value(options).map_err(|e| AuthError::Mail(Box::new(e)))?;
        // A passkey is a discoverable credential: it must log in without an email typed.
        if let Some(selection) = options
            .pointer_mut("/publicKey/authenticatorSelection")
            .and_then(serde_json::Value::as_object_mut)
        {
            selection.insert("residentKey".into(), "required".into());
            selection.insert("requireResidentKey".into(), true.into());
        }
        let ceremony = Ceremony::Register {
            user: user.id.0,
            state,
        };
        self.challenge(ceremony, options)
    }

    /// Finishes a registration with the browser's answer (`credential`, the JSON of the
    /// `PublicKeyCredential`), naming the passkey `name`. The account is mailed; when it had
    /// no recovery codes, 10 are made and returned (shown once).
    ///
    /// # Errors
    /// [`AuthError::InvalidToken`] for a ceremony that is not this session's user's, or
    /// expired, replayed or altered; [`AuthError::InvalidCode`] for an answer that does
    /// not verify; [`AuthError::SecondFactorExists`] when the credential is registered
    /// already (to any account); [`AuthError::ReauthenticationRequired`];
    /// [`AuthError::NoSession`]; a store failure.
    pub async fn finish_passkey_registration(
        &self,
        client: &Client,
        ceremony: &str,
        credential: &str,
        name: &str,
    ) -> Result<PasskeyAdded, AuthError> {
        let webauthn = self.relying_party()?;
        let (session, user) = self.require_session(client.session_id()).await?;
        self.check_sudo(&session)?;
        let Ceremony::Register { user: owner, state } = self.take_ceremony(ceremony).await? else {
            return Err(AuthError::InvalidToken);
        };
        if owner != user.id.0 {
            return Err(AuthError::InvalidToken);
        }
        let answer: RegisterPublicKeyCredential =
            serde_json::from_str(credential).map_err(|_| AuthError::InvalidCode)?;
        let passkey = webauthn
            .finish_passkey_registration(&answer, &state)
            .map_err(|_| AuthError::InvalidCode)?;
        let name = passkey_name(name);
        let mut factor = NewFactor::new(
            user.id,
            FactorKind::Passkey,
            serde_json::to_string(&passkey).map_err(|e| AuthError::Mail(Box::new(e)))?,
            self.now_ms(),
        );
        factor.credential_id = Some(credential_key(passkey.cred_id()));
        factor.name = name.clone();
        let id = match self.store().add_factors(vec![factor], None).await {
            Ok(ids) => ids.first().copied().unwrap_or_default(),
            Err(StoreError::Duplicate) => return Err(AuthError::SecondFactorExists),
            Err(err) => return Err(err.into()),
        };
        let has_codes = self
            .store()
            .list_factors(user.id)
            .await?
            .iter()
            .any(|f| f.kind == FactorKind::RecoveryCode && f.counter == 0);
        let recovery_codes = if has_codes {
            None
        } else {
            Some(self.replace_recovery_codes(&user).await?)
        };
        self.notify(MailKind::SecondFactorAdded, &user).await?;
        event("passkey_registered", Some(user.id));
        Ok(PasskeyAdded {
            passkey: PasskeyInfo {
                id,
                name,
                created_at_ms: self.now_ms(),
                last_used_ms: None,
            },
            recovery_codes,
        })
    }

    /// The client's session's user's passkeys, oldest first.
    ///
    /// # Errors
    /// [`AuthError::NoSession`]; a store failure.
    pub async fn passkeys(&self, client: &Client) -> Result<Vec<PasskeyInfo>, AuthError> {
        let (_, user) = self.require_session(client.session_id()).await?;
        Ok(self
            .passkeys_of(&user)
            .await?
            .iter()
            .map(|(factor, _)| PasskeyInfo::of(factor))
            .collect())
    }

    /// Renames one of the client's session's user's passkeys.
    ///
    /// # Errors
    /// [`AuthError::NoSecondFactor`] when the user has no passkey `id`;
    /// [`AuthError::NoSession`]; a store failure.
    pub async fn rename_passkey(
        &self,
        client: &Client,
        id: i64,
        name: &str,
    ) -> Result<(), AuthError> {
        let (_, user) = self.require_session(client.session_id()).await?;
        self.own_passkey(&user, id).await?;
        let update = FactorUpdate {
            name: Some(passkey_name(name)),
            ..FactorUpdate::default()
        };
        if !self.store().update_factor(user.id, id, update).await? {
            return Err(AuthError::NoSecondFactor);
        }
        Ok(())
    }

    /// Removes one of the client's session's user's passkeys, confirmed by the account's
    /// `password` (or, without one, a recent authentication); the account is mailed. With no second factor left, the recovery
    /// codes go too.
    ///
    /// # Errors
    /// [`AuthError::NoSecondFactor`] when the user has no passkey `id`;
    /// [`AuthError::ReauthenticationRequired`]; [`AuthError::NoSession`]; a store failure.
    pub async fn delete_passkey(
        &self,
        client: &Client,
        id: i64,
        password: Option<&str>,
    ) -> Result<(), AuthError> {
        let (session, user) = self.require_session(client.session_id()).await?;
        self.confirm_entry_change(client, &session, &user, password)
            .await?;
        let removed = self
            .store()
            .delete_factors(user.id, Some(FactorKind::Passkey), Some(id))
            .await?;
        if removed == 0 {
            return Err(AuthError::NoSecondFactor);
        }
        self.end_recovery_codes_without_factor(&user).await?;
        self.notify(MailKind::SecondFactorRemoved, &user).await?;
        event("passkey_removed", Some(user.id));
        Ok(())
    }

    async fn own_passkey(&self, user: &User, id: i64) -> Result<(), AuthError> {
        let owned = self
            .store()
            .list_factors(user.id)
            .await?
            .iter()
            .any(|f| f.id == id && f.kind == FactorKind::Passkey);
        if owned {
            Ok(())
        } else {
            Err(AuthError::NoSecondFactor)
        }
    }

    /// Starts a login with a passkey alone: options for the browser's autofill
    /// (conditional UI) or a "sign in with a passkey" button; no email needed.
    ///
    /// # Errors
    /// Passkeys off ([`AuthError::Config`]).
    pub fn start_passkey_login(&self) -> Result<PasskeyChallenge, AuthError> {
        let webauthn = self.relying_party()?;
        let (options, state) = webauthn
            .start_discoverable_authentication()
            .map_err(|_| AuthError::InvalidToken)?;
        let options = serde_json::to_value(options).map_err(|e| AuthError::Mail(Box::new(e)))?;
        self.challenge(Ceremony::LogIn { state }, options)
    }

    /// Finishes a login with a passkey alone: the passkey is found by its credential id,
    /// verified (with user verification, so it counts as two factors), its signature
    /// counter recorded, and the session starts as any login's does (the account's
    /// throttle, confirmed email, the presented session ended, methods recorded).
    ///
    /// # Errors
    /// [`AuthError::InvalidToken`] for a bad ceremony; [`AuthError::InvalidCode`] for an
    /// unknown passkey or an answer that does not verify; [`AuthError::Throttled`];
    /// [`AuthError::EmailNotConfirmed`]; a store failure.
    pub async fn finish_passkey_login(
        &self,
        client: &Client,
        ceremony: &str,
        credential: &str,
        remember_me: bool,
    ) -> Result<LoggedIn, AuthError> {
        let webauthn = self.relying_party()?;
        let Ceremony::LogIn { state } = self.take_ceremony(ceremony).await? else {
            return Err(AuthError::InvalidToken);
        };
        let answer: PublicKeyCredential =
            serde_json::from_str(credential).map_err(|_| AuthError::InvalidCode)?;
        let (handle, credential_id) = webauthn
            .identify_discoverable_authentication(&answer)
            .map_err(|_| AuthError::InvalidCode)?;
        let (factor, user) = self
            .store()
            .find_factor_by_credential(&credential_key(&credential_id.to_vec()))
            .await?
            .ok_or(AuthError::InvalidCode)?;
        if factor.kind != FactorKind::Passkey || self.user_handle(user.id)? != handle {
            return Err(AuthError::InvalidCode);
        }
        self.check_account_not_throttled(&user).await?;
        let mut passkey: Passkey =
            serde_json::from_str(&factor.secret).map_err(|_| AuthError::InvalidCode)?;
        let result = webauthn
            .finish_discoverable_authentication_v2(&answer, state, &passkey)
            .map_err(|_| AuthError::InvalidCode)?;
        self.record_passkey_use(&user, &factor, &mut passkey, &result)
            .await?;
        let login = Login {
            methods: AuthMethod::Passkey.into(),
            remember_me,
            trust_device: true,
        };
        self.finish_login(client, user, login).await
    }

    /// Starts a passkey as the second factor of the pending login `pending_token` names.
    ///
    /// # Errors
    /// [`AuthError::InvalidToken`] when the pending login is unknown or expired;
    /// [`AuthError::NoSecondFactor`] when the account has no passkey; a store failure.
    pub async fn start_passkey_second_factor(
        &self,
        pending_token: &str,
    ) -> Result<PasskeyChallenge, AuthError> {
        let webauthn = self.relying_party()?;
        let (_, user) = self
            .peek_token(pending_token, TokenPurpose::SecondFactorPending)
            .await?
            .ok_or(AuthError::InvalidToken)?;
        let keys: Vec<Passkey> = self
            .passkeys_of(&user)
            .await?
            .into_iter()
            .map(|(_, key)| key)
            .collect();
        if keys.is_empty() {
            return Err(AuthError::NoSecondFactor);
        }
        let (options, state) = webauthn
            .start_passkey_authentication(&keys)
            .map_err(|_| AuthError::InvalidToken)?;
        let options = serde_json::to_value(options).map_err(|e| AuthError::Mail(Box::new(e)))?;
        self.challenge(
            Ceremony::SecondFactor {
                user: user.id.0,
                state,
            },
            options,
        )
    }

    /// Verifies a passkey answer as `user`'s second factor.
    pub(super) async fn check_passkey(
        &self,
        user: &User,
        ceremony: &str,
        credential: &str,
    ) -> Result<(), AuthError> {
        let webauthn = self.relying_party()?;
        let Ceremony::SecondFactor { user: owner, state } = self.take_ceremony(ceremony).await?
        else {
            return Err(AuthError::InvalidCode);
        };
        if owner != user.id.0 {
            return Err(AuthError::InvalidCode);
        }
        let answer: PublicKeyCredential =
            serde_json::from_str(credential).map_err(|_| AuthError::InvalidCode)?;
        let result = webauthn
            .finish_passkey_authentication(&answer, &state)
            .map_err(|_| AuthError::InvalidCode)?;
        let used = credential_key(result.cred_id());
        let mut keys = self.passkeys_of(user).await?;
        let (factor, passkey) = keys
            .iter_mut()
            .find(|(factor, _)| factor.credential_id.as_deref() == Some(used.as_str()))
            .ok_or(AuthError::InvalidCode)?;
        let factor = factor.clone();
        self.record_passkey_use(user, &factor, passkey, &result)
            .await
    }

    /// Stores what a use changed in a passkey (its signature counter, backup state) and
    /// when it was used.
    async fn record_passkey_use(
        &self,
        user: &User,
        factor: &Factor,
        passkey: &mut Passkey,
        result: &webauthn_rs::prelude::AuthenticationResult,
    ) -> Result<(), AuthError> {
        let changed = passkey.update_credential(result) == Some(true);
        let update = FactorUpdate {
            secret: if changed {
                Some(serde_json::to_string(&*passkey).map_err(|e| AuthError::Mail(Box::new(e)))?)
            } else {
                None
            },
            counter: Some(i64::from(result.counter())),
            last_used_ms: Some(self.now_ms()),
            ..FactorUpdate::default()
        };
        self.store()
            .update_factor(user.id, factor.id, update)
            .await?;
        Ok(())
    }
}

/// A credential id as the store keeps it (unique across accounts): base64url.
fn credential_key(id: &webauthn_rs::prelude::CredentialID) -> String {
    let bytes: &[u8] = id.as_ref();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A passkey's name as kept: trimmed, at most 64 characters, "passkey" when empty.
fn passkey_name(name: &str) -> String {
    let name: String = name.trim().chars().take(MAX_NAME_CHARS).collect();
    if name.is_empty() {
        "passkey".into()
    } else {
        name
    }
}
