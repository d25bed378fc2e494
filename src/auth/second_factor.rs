//! Logging in with a second factor: after the first factor (password, magic link,
//! provider), an account with an authenticator app or passkey enrolled gets a pending
//! login instead of a session. It is a short-lived, single-use token in an HttpOnly cookie
//! of the browser that gave the first factor (an emailed-token row of purpose
//! `second_factor_pending`: never a session, dead when the account's email or password
//! changes), finished by a code. Failures count against the account's second-factor
//! counter, or against the browser's own when it is a trusted device of the account, so
//! strangers who know the password cannot lock the owner out.

use super::cookie::SessionCookie;
use super::login::{LoggedIn, Login};
use super::throttle::account_counter;
use super::tokens::IssueOptions;
use super::{Auth, AuthError, Client, MAX_TOKEN_BYTES, event};
use crate::auth_methods::{AuthMethod, AuthMethods};
use crate::clock::duration_ms;
use crate::config::SecondFactorConfig;
use crate::mail::MailKind;
use crate::store::{Factor, FactorKind, FactorUpdate, TokenPurpose, UserUpdate};
use crate::token::{TokenFormat, TokenHash};
use crate::user::{User, UserId};

/// A login waiting for its second factor (see [`AuthError::SecondFactorRequired`]).
/// `Debug` never shows its token.
#[non_exhaustive]
pub struct SecondFactorPending {
    /// Who is logging in.
    pub user_id: UserId,
    /// What the account can finish the login with: `totp`, `recovery_code`, `passkey`.
    pub factors: Vec<&'static str>,
    /// The `Set-Cookie` that binds the pending login to this browser: return it with the
    /// response.
    pub cookie: SessionCookie,
    token: String,
}

impl SecondFactorPending {
    /// The pending login's token (a secret, also in [`cookie`](Self::cookie)), for callers
    /// outside HTTP: give it to [`Auth::finish_second_factor`].
    pub fn token(&self) -> &str {
        &self.token
    }
}

impl std::fmt::Debug for SecondFactorPending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecondFactorPending")
            .field("user_id", &self.user_id)
            .field("factors", &self.factors)
            .finish_non_exhaustive()
    }
}

/// What finishes a pending login.
#[derive(Clone, Copy)]
#[non_exhaustive]
pub enum SecondFactorProof<'a> {
    /// A code from the enrolled authenticator app.
    Totp(&'a str),
    /// One of the account's recovery codes (each works once).
    RecoveryCode(&'a str),
    /// A passkey of the account: the browser's answer (the `PublicKeyCredential` as JSON)
    /// to the ceremony [`Auth::start_passkey_second_factor`] began, and that ceremony's
    /// cookie.
    #[cfg(feature = "passkeys")]
    Passkey {
        /// The browser's answer.
        credential: &'a str,
        /// The ceremony cookie's value.
        ceremony: &'a str,
    },
}

impl std::fmt::Debug for SecondFactorProof<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Totp(_) => "Totp([redacted])",
            Self::RecoveryCode(_) => "RecoveryCode([redacted])",
            #[cfg(feature = "passkeys")]
            Self::Passkey { .. } => "Passkey(..)",
        })
    }
}

impl Auth {
    /// The second-factor configuration, or the error that says it is off.
    pub(super) fn second_factor_config(&self) -> Result<&SecondFactorConfig, AuthError> {
        self.inner
            .config
            .second_factors
            .as_ref()
            .ok_or(AuthError::Config(crate::ConfigError::NoSecondFactors))
    }

    /// The factors `user` can finish a login with; empty when none is enrolled (recovery
    /// codes alone are not an enrolment: they stand in for one).
    async fn login_factors(&self, user: &User) -> Result<Vec<&'static str>, AuthError> {
        let factors = self.store().list_factors(user.id).await?;
        let has = |kind| factors.iter().any(|f| f.kind == kind && f.confirmed);
        // (Recovery codes are always confirmed; an unfinished app enrolment is not.)
        let mut usable = Vec::new();
        if has(FactorKind::Totp) {
            usable.push("totp");
        }
        if has(FactorKind::Passkey) {
            usable.push("passkey");
        }
        if !usable.is_empty() && has(FactorKind::RecoveryCode) {
            usable.push("recovery_code");
        }
        Ok(usable)
    }

    /// The factors a login of `user` by `client` must finish with, when it must give one:
    /// one is enrolled and the browser is not one its owner asked to skip it on.
    pub(super) async fn second_factor_needed(
        &self,
        user: &User,
        client: &Client,
    ) -> Result<Option<Vec<&'static str>>, AuthError> {
        if self.inner.config.second_factors.is_none() {
            return Ok(None);
        }
        let factors = self.login_factors(user).await?;
        if factors.is_empty() || self.remembered_device_of(user, client).await? {
            return Ok(None);
        }
        Ok(Some(factors))
    }

    /// With no authenticator app or passkey left, `user`'s recovery codes go too: they
    /// stand in for a factor, and without one they would be a password of their own.
    pub(super) async fn end_recovery_codes_without_factor(
        &self,
        user: &User,
    ) -> Result<(), AuthError> {
        let left = self.store().list_factors(user.id).await?;
        if !left.iter().any(Factor::signs_in) {
            self.store()
                .delete_factors(user.id, Some(FactorKind::RecoveryCode), None)
                .await?;
        }
        Ok(())
    }

    /// Whether `client` presents a live "skip the second factor here" cookie of `user`.
    async fn remembered_device_of(&self, user: &User, client: &Client) -> Result<bool, AuthError> {
        let Some(token) = client
            .second_factor_device
            .as_deref()
            .filter(|t| !t.is_empty() && t.len() <= MAX_TOKEN_BYTES)
        else {
            return Ok(false);
        };
        let found = self
            .store()
            .find_token(
                &TokenHash::of(token),
                TokenPurpose::SecondFactorDevice,
                self.now_ms(),
            )
            .await?;
        Ok(found.is_some_and(|(_, owner)| owner.id == user.id))
    }

    /// A pending login of `user` that `login` began, to finish with one of `factors`, and
    /// the cookie that carries it.
    pub(super) async fn start_second_factor(
        &self,
        user: &User,
        login: Login,
        factors: Vec<&'static str>,
    ) -> Result<SecondFactorPending, AuthError> {
        let config = self.second_factor_config()?;
        let state = format!(
            "{};{};{}",
            login.methods.bits(),
            u8::from(login.remember_me),
            u8::from(login.trust_device)
        );
        let token = self
            .issue_token_shaped(
                user,
                TokenPurpose::SecondFactorPending,
                &state,
                config.pending_lifetime,
                IssueOptions {
                    format: TokenFormat::Random256,
                    // A few browsers may be mid-login at once; a script cannot pile them up.
                    keep_others: Some(4),
                    answers: None,
                },
                |_| Ok(Vec::new()),
            )
            .await?;
        let cookie = self
            .side_cookie(
                &config.pending_cookie,
                token.clone(),
                Some(config.pending_lifetime),
            )
            .ok_or(AuthError::TokenCollision)?;
        Ok(SecondFactorPending {
            user_id: user.id,
            factors,
            cookie,
            token,
        })
    }

    /// Finishes the pending login `pending_token` names with `proof`: the session starts as
    /// a login's does, recording both methods. With `remember_device`, the browser gets a
    /// cookie that skips the second factor on it for
    /// [`device_lifetime`](crate::second_factor::SecondFactorConfig::device_lifetime). A used recovery
    /// code is mailed to the account.
    ///
    /// A wrong code counts against the account's second-factor limit
    /// ([`max_login_failures`](crate::AuthConfig::max_login_failures) per window), or the
    /// browser's own when it is a trusted device of the account; the pending login stays
    /// usable until it expires or succeeds.
    ///
    /// # Errors
    /// [`AuthError::InvalidToken`] when the pending login is unknown, expired or used;
    /// [`AuthError::InvalidCode`]; [`AuthError::Throttled`]; a store failure.
    pub async fn finish_second_factor(
        &self,
        client: &Client,
        pending_token: &str,
        proof: SecondFactorProof<'_>,
        remember_device: bool,
    ) -> Result<LoggedIn, AuthError> {
        let config = self.second_factor_config()?;
        let (record, user) = self
            .peek_token(pending_token, TokenPurpose::SecondFactorPending)
            .await?
            .ok_or(AuthError::InvalidToken)?;
        let login = parse_state(&record.sent_to).ok_or(AuthError::InvalidToken)?;
        let key = self.second_factor_counter(&user, client).await?;
        self.claim_second_factor_attempt(&key, &user).await?;
        let method = match proof {
            SecondFactorProof::Totp(code) => {
                self.check_totp(&user, code).await?;
                AuthMethod::Totp
            }
            SecondFactorProof::RecoveryCode(code) => {
                self.use_recovery_code(&user, code).await?;
                AuthMethod::RecoveryCode
            }
            #[cfg(feature = "passkeys")]
            SecondFactorProof::Passkey {
                credential,
                ceremony,
            } => {
                self.check_passkey(&user, ceremony, credential).await?;
                AuthMethod::Passkey
            }
        };
        self.store().reset_counter(&key).await?;
        // Single use: of two finishes racing with good codes, one gets the session.
        let (_, user) = self
            .redeem_token(
                pending_token,
                TokenPurpose::SecondFactorPending,
                UserUpdate::new(),
            )
            .await?
            .filter(|(_, redeemed)| redeemed.id == user.id)
            .ok_or(AuthError::InvalidToken)?;
        if method == AuthMethod::RecoveryCode {
            self.notify(MailKind::RecoveryCodeUsed, &user).await?;
        }
        event("second_factor_passed", Some(user.id));
        let login = Login {
            methods: login.methods.with(method),
            ..login
        };
        let mut logged_in = self.finish_login(client, user, login).await?;
        let forget_pending = self.side_cookie(&config.pending_cookie, String::new(), None);
        let mut cookie = logged_in.cookie.clone().with(forget_pending);
        if remember_device {
            cookie = cookie.with(self.remember_device(&logged_in.user).await?);
        }
        logged_in.cookie = cookie;
        Ok(logged_in)
    }

    /// A "skip the second factor on this browser" record for `user`, and its cookie;
    /// `None` when the configuration has no such cookie.
    async fn remember_device(&self, user: &User) -> Result<Option<SessionCookie>, AuthError> {
        let config = self.second_factor_config()?;
        let Some(name) = &config.device_cookie else {
            return Ok(None);
        };
        let token = self
            .issue_token_shaped(
                user,
                TokenPurpose::SecondFactorDevice,
                &user.email,
                config.device_lifetime,
                IssueOptions {
                    format: TokenFormat::Random256,
                    keep_others: Some(super::trusted_device::MAX_TRUSTED_DEVICES - 1),
                    answers: None,
                },
                |_| Ok(Vec::new()),
            )
            .await?;
        Ok(self.side_cookie(name, token, Some(config.device_lifetime)))
    }

    /// The failure counter a second-factor attempt of `client` on `user` counts against:
    /// the browser's own when it is a trusted device of the account, else the account's.
    pub(super) async fn second_factor_counter(
        &self,
        user: &User,
        client: &Client,
    ) -> Result<String, AuthError> {
        Ok(
            match self
                .trusted_device_key(client.device_token(), &user.email)
                .await?
            {
                Some(device) => format!("second_factor:{device}"),
                None => account_counter("second_factor", &user.email),
            },
        )
    }

    /// Counts one attempt on `key` before it is checked, so concurrent guesses cannot pass
    /// a limit none of them had reached; refuses it past the limit.
    pub(super) async fn claim_second_factor_attempt(
        &self,
        key: &str,
        user: &User,
    ) -> Result<(), AuthError> {
        let config = &self.inner.config;
        let now = self.now_ms();
        let counter = self
            .store()
            .increment_counter(key, now, duration_ms(config.login_failure_window))
            .await?;
        if counter.count > config.max_login_failures {
            event("second_factor_throttled", Some(user.id));
            return Err(AuthError::Throttled {
                retry_after: std::time::Duration::from_millis(
                    u64::try_from(counter.window_ends_ms - now).unwrap_or(0),
                ),
            });
        }
        Ok(())
    }

    /// Records a use of factor `id` of `user` as `counter`, only while its stored counter is
    /// below it (with `confirm`, confirming it in the same write): of two uses of one
    /// time step or recovery code, one passes and the other is [`AuthError::InvalidCode`].
    pub(super) async fn spend_factor(
        &self,
        user: &User,
        id: i64,
        counter: i64,
        confirm: bool,
    ) -> Result<(), AuthError> {
        let update = FactorUpdate {
            counter_below: Some(counter),
            counter: Some(counter),
            confirm,
            last_used_ms: Some(self.now_ms()),
            ..FactorUpdate::default()
        };
        if self.store().update_factor(user.id, id, update).await? {
            Ok(())
        } else {
            event("second_factor_replayed", Some(user.id));
            Err(AuthError::InvalidCode)
        }
    }

    /// Mails `kind` (a notice) to `user` when a mailer is configured.
    pub(super) async fn notify(&self, kind: MailKind, user: &User) -> Result<(), AuthError> {
        if self.inner.config.mailer.is_none() {
            return Ok(());
        }
        self.mail_notice(kind, &user.email).await
    }
}

/// The login a pending record's state stands for (`<methods>;<remember>;<trust device>`).
fn parse_state(state: &str) -> Option<Login> {
    let mut parts = state.split(';');
    let methods = AuthMethods::from_bits(parts.next()?.parse().ok()?);
    let remember_me = parts.next()? == "1";
    let trust_device = parts.next()? == "1";
    Some(Login {
        methods,
        remember_me,
        trust_device,
    })
}
