//! Ways into an account besides its password, as a [`Store`](super::Store) keeps them:
//! second factors (one record per authenticator app, recovery code or passkey) and
//! identities at sign-in providers.

use std::fmt;

use crate::user::UserId;

/// What kind of second factor a [`Factor`] is. Stored as [`as_str`](Self::as_str).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FactorKind {
    /// An authenticator app's shared secret (TOTP, RFC 6238).
    Totp,
    /// One single-use recovery code.
    RecoveryCode,
    /// A passkey (WebAuthn credential).
    Passkey,
}

impl FactorKind {
    /// The name stored in the `kind` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Totp => "totp",
            Self::RecoveryCode => "recovery_code",
            Self::Passkey => "passkey",
        }
    }

    /// The kind a stored name stands for; `None` for a name this version does not know.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Totp, Self::RecoveryCode, Self::Passkey]
            .into_iter()
            .find(|k| k.as_str() == name)
    }
}

/// A second factor of an account.
///
/// `secret` is what the factor needs to verify a proof, in a form safe to store: a TOTP
/// secret sealed with the configured key, a recovery code's SHA-256, a passkey's public
/// credential. `counter` guards against replay: a TOTP's last accepted time step, 1 once a
/// recovery code is used, a passkey's signature counter.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Factor {
    /// The store-assigned id.
    pub id: i64,
    /// The account it belongs to.
    pub user_id: UserId,
    /// What it is.
    pub kind: FactorKind,
    /// For a passkey, its credential id (unique across accounts); `None` otherwise.
    pub credential_id: Option<String>,
    /// The name its owner gave it ("work laptop").
    pub name: String,
    /// What verifies a proof (see the type's description).
    pub secret: String,
    /// The replay guard (see the type's description).
    pub counter: i64,
    /// False for an authenticator app whose enrolment has not been completed with a code.
    pub confirmed: bool,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_at_ms: i64,
    /// Last successful use, milliseconds since the Unix epoch.
    pub last_used_ms: Option<i64>,
}

impl Factor {
    /// True for an enrolled authenticator app or passkey: what a login can be asked for
    /// (recovery codes only stand in for one).
    pub fn signs_in(&self) -> bool {
        self.confirmed && matches!(self.kind, FactorKind::Totp | FactorKind::Passkey)
    }
}

impl fmt::Debug for Factor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Factor")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("kind", &self.kind)
            .field("name", &self.name)
            .field("confirmed", &self.confirmed)
            .field("created_at_ms", &self.created_at_ms)
            .field("last_used_ms", &self.last_used_ms)
            .finish_non_exhaustive()
    }
}

/// A second factor to add (see [`Factor`] for the fields).
#[derive(Clone)]
#[non_exhaustive]
pub struct NewFactor {
    /// The account it belongs to.
    pub user_id: UserId,
    /// What it is.
    pub kind: FactorKind,
    /// For a passkey, its credential id; `None` otherwise.
    pub credential_id: Option<String>,
    /// The name its owner gave it.
    pub name: String,
    /// What verifies a proof.
    pub secret: String,
    /// The replay guard's first value.
    pub counter: i64,
    /// Whether it is usable at once.
    pub confirmed: bool,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_at_ms: i64,
}

impl NewFactor {
    /// A confirmed factor of `kind` for `user_id` with `secret`, made at `now_ms`, with no
    /// credential id, no name and its counter at 0.
    pub fn new(user_id: UserId, kind: FactorKind, secret: String, now_ms: i64) -> Self {
        Self {
            user_id,
            kind,
            credential_id: None,
            name: String::new(),
            secret,
            counter: 0,
            confirmed: true,
            created_at_ms: now_ms,
        }
    }
}

impl fmt::Debug for NewFactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewFactor")
            .field("user_id", &self.user_id)
            .field("kind", &self.kind)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Changes to one factor, applied only while its counter is below
/// [`counter_below`](Self::counter_below) (when given): of two uses of one TOTP time step or
/// recovery code, one changes the row and the other finds nothing to change.
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct FactorUpdate {
    /// Change nothing unless the stored counter is less than this.
    pub counter_below: Option<i64>,
    /// The new counter.
    pub counter: Option<i64>,
    /// The new secret (a passkey's credential after use).
    pub secret: Option<String>,
    /// The new name.
    pub name: Option<String>,
    /// Mark it confirmed.
    pub confirm: bool,
    /// The time of this use.
    pub last_used_ms: Option<i64>,
}

impl fmt::Debug for FactorUpdate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FactorUpdate")
            .field("counter_below", &self.counter_below)
            .field("counter", &self.counter)
            .field("name", &self.name)
            .field("confirm", &self.confirm)
            .finish_non_exhaustive()
    }
}

/// An identity at a sign-in provider linked to an account: one (provider, subject) links
/// to at most one account.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Identity {
    /// The store-assigned id.
    pub id: i64,
    /// The account it signs in to.
    pub user_id: UserId,
    /// The provider's configured id ("google").
    pub provider: String,
    /// The provider's stable id of the person (`sub`).
    pub subject: String,
    /// The email the provider gave when the link was made, if any.
    pub email: Option<String>,
    /// When it was linked, milliseconds since the Unix epoch.
    pub created_at_ms: i64,
}

/// An identity to link (see [`Identity`] for the fields).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct NewIdentity {
    /// The account it signs in to.
    pub user_id: UserId,
    /// The provider's configured id.
    pub provider: String,
    /// The provider's stable id of the person.
    pub subject: String,
    /// The email the provider gave, if any.
    pub email: Option<String>,
    /// When it is linked, milliseconds since the Unix epoch.
    pub created_at_ms: i64,
}

impl NewIdentity {
    /// `provider`'s `subject`, linked to `user_id` at `now_ms`.
    pub fn new(
        user_id: UserId,
        provider: impl Into<String>,
        subject: impl Into<String>,
        email: Option<String>,
        now_ms: i64,
    ) -> Self {
        Self {
            user_id,
            provider: provider.into(),
            subject: subject.into(),
            email,
            created_at_ms: now_ms,
        }
    }
}
