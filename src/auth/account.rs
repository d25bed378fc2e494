//! Accounts: registration, and what a signed-in user changes themselves: their password,
//! and whether the account exists at all.

use super::{Auth, AuthError, Client, event, normalize_new_email};
use crate::store::StoreError;
use crate::store::{EndSessions, NewUser, UserLookup, UserUpdate};
use crate::user::User;

impl Auth {
    /// Registers a user: a valid email, a password the policy accepts, hashed off the
    /// async executor, counted against the client's
    /// [`max_registrations_per_ip`](crate::AuthConfig::max_registrations_per_ip) and its
    /// share of the hashing pool. Behind the auth layer,
    /// [`AuthContext::register`](crate::AuthContext::register) takes the client from the
    /// request.
    ///
    /// With a [`mailer`](crate::AuthConfig::mailer), the new account is mailed a
    /// confirmation link (queued in the store's outbox before this returns). With
    /// [`conceal_registered_emails`](crate::AuthConfig::conceal_registered_emails), a
    /// registered email costs the same hashing as a new one and its owner is mailed instead
    /// ("you already have an account", or a new confirmation link while unconfirmed); the
    /// error is still [`AuthError::UserExists`], which a caller that conceals answers
    /// exactly like a success (the router: `202 {"message": "check your email"}` for both).
    ///
    /// # Errors
    /// [`AuthError::UserExists`] (message `User <email> already exists`), invalid email or
    /// password, [`AuthError::Overloaded`], or a store failure.
    pub async fn register(
        &self,
        client: &Client,
        email: &str,
        password: &str,
    ) -> Result<User, AuthError> {
        let client_ip = client.ip;
        self.limit_per_client(
            "register",
            client_ip,
            self.inner.config.max_registrations_per_ip,
        )
        .await?;
        let email = normalize_new_email(email)?;
        self.check_password(password, &email)?;
        let conceal = self.inner.config.conceal_registered_emails;
        // A cheap read first so a duplicate costs no hashing (the UNIQUE constraint still
        // decides races); when registered emails are concealed, it costs the same hashing
        // as a new account, so the time taken does not tell them apart either.
        let existing = self.store().find_user_by(UserLookup::Email(&email)).await?;
        if existing.is_some() && !conceal {
            return Err(AuthError::UserExists(email));
        }
        let ticket = self.reserve_registration_hash(client_ip)?;
        let password_hash = self.hash_with(ticket, password).await?;
        if let Some(record) = existing {
            return Err(self.registered_again(record.user).await);
        }
        // The account and its confirmation link are stored in one transaction, so a
        // registration that fails leaves no account without its link behind.
        for _ in 0..3 {
            let now = self.now_ms();
            let first_link = self.first_confirmation_link(&email, now)?;
            let mails = first_link.is_some();
            let added = self
                .store()
                .add_user(NewUser {
                    email: email.clone(),
                    password_hash: password_hash.clone(),
                    created_at_ms: now,
                    first_link,
                    email_confirmed_at_ms: None,
                })
                .await;
            match added {
                Ok(user) => {
                    event("registered", Some(user.id));
                    if mails {
                        self.wake_mail_worker();
                    }
                    return Ok(user);
                }
                Err(StoreError::Duplicate) => {
                    let raced = self.store().find_user_by(UserLookup::Email(&email)).await?;
                    match raced {
                        Some(record) if conceal => {
                            return Err(self.registered_again(record.user).await);
                        }
                        // No account has the email: it was the link's token that collided.
                        None if mails => continue,
                        _ => return Err(AuthError::UserExists(email)),
                    }
                }
                Err(other) => return Err(other.into()),
            }
        }
        Err(AuthError::TokenCollision)
    }

    /// The answer to registering `user`'s address again, with concealment on: the owner is
    /// mailed (see `tell_registered_owner`), and the caller still learns
    /// [`AuthError::UserExists`] (the router answers it like a new account).
    async fn registered_again(&self, user: User) -> AuthError {
        match self.tell_registered_owner(&user).await {
            Ok(()) => AuthError::UserExists(user.email),
            Err(err) => err,
        }
    }

    /// Changes the password of the session's user, who must give the current one. On
    /// success every *other* session of the user ends, and so does every pending emailed
    /// link (an email change, a reset, a magic link) and every trusted device, all in the
    /// same transaction as the change; the presented session stays valid, and the new hash
    /// uses the configured algorithm and parameters. With
    /// [`sudo_for_password_change`](crate::AuthConfig::sudo_for_password_change), the
    /// session must also have authenticated recently.
    ///
    /// Wrong current passwords count against the account's and client's login failure
    /// limits, so a stolen session cannot guess faster than a login form.
    ///
    /// # Errors
    /// [`AuthError::WrongPassword`]; a new password the policy refuses;
    /// [`AuthError::ReauthenticationRequired`]; [`AuthError::Throttled`];
    /// [`AuthError::NoSession`]; [`AuthError::Overloaded`]; a store failure.
    pub async fn change_password(
        &self,
        client: &Client,
        current_password: &str,
        new_password: &str,
    ) -> Result<User, AuthError> {
        let client_ip = client.ip;
        let (session, user) = self.require_session(client.session_id()).await?;
        if self.inner.config.sudo_for_password_change {
            self.check_sudo(&session)?;
        }
        self.check_password(new_password, &user.email)?;
        self.verify_own_password(&session, &user, current_password, client_ip)
            .await?;
        let ticket = self.reserve_hash_for(client_ip)?;
        let password_hash = self.hash_with(ticket, new_password).await?;
        let update = UserUpdate::new()
            .password_hash(password_hash)
            .end_sessions(EndSessions::AllExcept(session.token_hash))
            .end_tokens();
        self.store().update_user(user.id, update).await?;
        event("password_changed", Some(user.id));
        Ok(user)
    }

    /// Deletes the session's user: the account, every session and every emailed token go,
    /// and the email can register again. Confirmed by the password, or, without one, by a
    /// recent authentication of the session ([sudo mode](crate::AuthConfig::sudo_window)).
    /// Clear the browser's cookie with
    /// [`expired_session_cookie`](Self::expired_session_cookie). Emits the
    /// `account_deleted` event.
    ///
    /// # Errors
    /// [`AuthError::WrongPassword`]; [`AuthError::ReauthenticationRequired`] without a
    /// password and a recent authentication; [`AuthError::Throttled`];
    /// [`AuthError::NoSession`]; [`AuthError::Overloaded`]; a store failure.
    pub async fn delete_account(
        &self,
        client: &Client,
        password: Option<&str>,
    ) -> Result<User, AuthError> {
        let (session, user) = self.require_session(client.session_id()).await?;
        match password {
            Some(password) => {
                self.verify_own_password(&session, &user, password, client.ip)
                    .await?
            }
            None => self.check_sudo(&session)?,
        }
        self.store().delete_user(user.id).await?;
        event("account_deleted", Some(user.id));
        Ok(user)
    }
}
