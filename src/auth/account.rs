//! Accounts: registration.

use super::{Auth, AuthError, event, normalize_email};
use crate::store::StoreError;
use crate::user::{NewUser, User, UserLookup};

impl Auth {
    /// Registers a user (seed task 5): a valid email, a password the policy accepts, hashed
    /// off the async executor.
    ///
    /// # Errors
    /// [`AuthError::UserExists`] (message `User <email> already exists`), invalid email or
    /// password, [`AuthError::Overloaded`], or a store failure.
    pub async fn register_user(&self, email: &str, password: &str) -> Result<User, AuthError> {
        let email = normalize_email(email)?;
        self.check_password(password)?;
        // A cheap read first so a duplicate costs no hashing; the UNIQUE constraint still
        // decides races.
        if self
            .store()
            .find_user_by(UserLookup::Email(&email))
            .await?
            .is_some()
        {
            return Err(AuthError::UserExists(email));
        }
        let password_hash = self.inner.hasher.hash(password.to_owned()).await?;
        let user = self
            .store()
            .add_user(NewUser {
                email: email.clone(),
                password_hash,
                created_at_ms: self.now_ms(),
            })
            .await
            .map_err(|e| match e {
                StoreError::Duplicate => AuthError::UserExists(email),
                other => other.into(),
            })?;
        event("registered", Some(user.id));
        Ok(user)
    }
}
