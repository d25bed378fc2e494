//! Transparent hash upgrades: after a successful login, a stored hash of another algorithm
//! or other parameters than the configuration's is replaced, in the background of that
//! login, so a deployment moves from bcrypt 10 to 12, or from bcrypt to argon2id, without
//! a password reset.

use std::sync::PoisonError;

use super::{Auth, AuthError, event};
use crate::user::UserId;

/// Takes the user out of the in-flight set when the upgrade ends, however it ends.
struct InFlight(Auth, UserId);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0
            .inner
            .rehashing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.1);
    }
}

impl Auth {
    /// After `password` verified against `current`: if the hasher would make another hash
    /// now, makes it in the background and stores it, unless an upgrade for this user is
    /// already under way here or the hash changed meanwhile (a password reset wins).
    pub(super) fn upgrade_hash(&self, user_id: UserId, password: &str, current: String) {
        if !self.inner.hasher.needs_rehash(&current) {
            return;
        }
        let claimed = self
            .inner
            .rehashing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(user_id);
        if !claimed {
            return;
        }
        let in_flight = InFlight(self.clone(), user_id);
        let password = password.to_owned();
        // Outside a runtime nothing runs: the job and its in-flight mark are dropped.
        self.in_background(async move {
            let auth = &in_flight.0;
            let upgraded = async {
                // A full pool sheds the upgrade (503-style): the next login tries again.
                let new = auth.inner.hasher.hash(password).await?;
                Ok::<_, AuthError>(
                    auth.store()
                        .replace_password_hash(user_id, &current, &new)
                        .await?,
                )
            }
            .await;
            match upgraded {
                Ok(true) => event("password_rehashed", Some(user_id)),
                Ok(false) => {}
                Err(err) => tracing::warn!(
                    target: "tower_auth",
                    user_id = user_id.0,
                    error = %err,
                    "could not upgrade a password hash; the next login tries again"
                ),
            }
        });
    }
}
