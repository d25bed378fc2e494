//! How a user proved who they are: [`AuthMethod`], and the set a session records.

use std::fmt;

/// One way a user proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthMethod {
    /// The account's password.
    Password,
    /// A link mailed to the account's address.
    MagicLink,
    /// A code from an authenticator app (TOTP).
    Totp,
    /// One of the account's single-use recovery codes.
    RecoveryCode,
    /// A passkey (WebAuthn credential) of the account.
    Passkey,
    /// An identity provider (OpenID Connect, OAuth2).
    Provider,
    /// A check of the application's own (an invite link, a PIN, single sign-on).
    App,
}

const ALL: [AuthMethod; 7] = [
    AuthMethod::Password,
    AuthMethod::MagicLink,
    AuthMethod::Totp,
    AuthMethod::RecoveryCode,
    AuthMethod::Passkey,
    AuthMethod::Provider,
    AuthMethod::App,
];

impl AuthMethod {
    /// The method's name, as JSON answers and logs give it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::MagicLink => "magic_link",
            Self::Totp => "totp",
            Self::RecoveryCode => "recovery_code",
            Self::Passkey => "passkey",
            Self::Provider => "provider",
            Self::App => "app",
        }
    }

    /// True for what proves possession of something enrolled beyond the account's address
    /// and password: a login that used one needs no second factor.
    pub fn is_second_factor(self) -> bool {
        matches!(self, Self::Totp | Self::RecoveryCode | Self::Passkey)
    }

    fn bit(self) -> u32 {
        match self {
            Self::Password => 1,
            Self::MagicLink => 1 << 1,
            Self::Totp => 1 << 2,
            Self::RecoveryCode => 1 << 3,
            Self::Passkey => 1 << 4,
            Self::Provider => 1 << 5,
            Self::App => 1 << 6,
        }
    }
}

impl fmt::Display for AuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The methods a session's user proved themselves with, at login and since (a set).
///
/// ```
/// use tower_auth::{AuthMethod, AuthMethods};
/// let methods = AuthMethods::from(AuthMethod::Password).with(AuthMethod::Totp);
/// assert!(methods.contains(AuthMethod::Totp));
/// assert!(methods.has_second_factor());
/// assert_eq!(methods.to_string(), "password+totp");
/// ```
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct AuthMethods(u32);

impl AuthMethods {
    /// The set with `method` added.
    #[must_use]
    pub fn with(self, method: AuthMethod) -> Self {
        Self(self.0 | method.bit())
    }

    /// The union of two sets.
    #[must_use]
    pub fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// Whether `method` is in the set.
    pub fn contains(self, method: AuthMethod) -> bool {
        self.0 & method.bit() != 0
    }

    /// Whether one of the methods is a second factor ([`AuthMethod::is_second_factor`]).
    pub fn has_second_factor(self) -> bool {
        self.iter().any(AuthMethod::is_second_factor)
    }

    /// The methods, in a fixed order.
    pub fn iter(self) -> impl Iterator<Item = AuthMethod> {
        ALL.into_iter().filter(move |m| self.contains(*m))
    }

    /// The stored form (a bit set; unknown bits are kept).
    pub fn bits(self) -> i64 {
        i64::from(self.0)
    }

    /// The set a stored form stands for.
    pub fn from_bits(bits: i64) -> Self {
        Self(u32::try_from(bits).unwrap_or(0))
    }
}

impl From<AuthMethod> for AuthMethods {
    fn from(method: AuthMethod) -> Self {
        Self::default().with(method)
    }
}

impl fmt::Display for AuthMethods {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, method) in self.iter().enumerate() {
            if i > 0 {
                f.write_str("+")?;
            }
            f.write_str(method.as_str())?;
        }
        Ok(())
    }
}

impl fmt::Debug for AuthMethods {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl serde::Serialize for AuthMethods {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter().map(AuthMethod::as_str))
    }
}
