//! Email normalization: one spelling per address, so one account per person.
//!
//! An address is trimmed, put in Unicode NFKC form and lower-cased, so compatibility
//! look-alikes fold into the account they imitate: `ＡＬＩＣＥ@example.com` (full-width)
//! and `𝐚lice@example.com` (mathematical bold) are `alice@example.com`. What cannot be
//! folded is refused: invisible and format characters (zero-width spaces and joiners,
//! bidirectional controls, soft hyphens) and anything else Unicode's identifier profile
//! (UTS #39) does not allow outside ASCII; a local part or a domain label that mixes
//! scripts (`pаypal` with a Cyrillic `а`); and a domain with empty labels or a trailing
//! dot (`example.com.` is the same mailbox as `example.com`).

use unicode_normalization::UnicodeNormalization as _;
use unicode_security::{GeneralSecurityProfile as _, MixedScript as _};

use super::AuthError;

/// Longest email accepted (RFC 5321 path limit).
const MAX_EMAIL_BYTES: usize = 254;

/// Normalizes an address that an account is about to take (registration, an email
/// change) and checks that it is a bare `local@domain` (RFC 5322 `addr-spec` in its
/// dot-atom form), since mail will be sent to it: no display name (`Eve <eve@x.io>`),
/// no brackets, comments or quoted local part (each would let the text shown differ from
/// the mailbox written to), no IP-literal domain, a local part of at most 64 octets.
///
/// Lookups (a login, a reset request) use [`normalize_email`] alone: an address stored
/// before this check existed must still find its account.
pub(crate) fn normalize_new_email(raw: &str) -> Result<String, AuthError> {
    let email = normalize_email(raw)?;
    let (local, _) = email.rsplit_once('@').unwrap_or_default();
    if local.starts_with('"') {
        return Err(AuthError::InvalidEmail(
            "email must not have a quoted part before the @",
        ));
    }
    let options = email_address::Options::default()
        .without_display_text()
        .without_domain_literal();
    email_address::EmailAddress::parse_with_options(&email, options)
        .map(|_| email.clone())
        .map_err(|err| AuthError::InvalidEmail(addr_spec_reason(&err)))
}

/// What a refused address must change, in words a form can show.
fn addr_spec_reason(err: &email_address::Error) -> &'static str {
    use email_address::Error;
    match err {
        Error::LocalPartTooLong => {
            "the part of the email before the @ must be at most 64 characters"
        }
        Error::UnsupportedDomainLiteral | Error::InvalidIPAddress => {
            "the email's domain must be a name, not an address in brackets"
        }
        Error::UnsupportedDisplayName | Error::MissingDisplayName | Error::MissingEndBracket => {
            "email must be a bare address (name@domain), without a display name or brackets"
        }
        Error::DomainTooLong | Error::SubDomainTooLong => "the email's domain is too long",
        Error::SubDomainEmpty | Error::DomainEmpty | Error::DomainInvalidSeparator => {
            "the email's domain must not start or end with a dot or have empty labels"
        }
        _ => {
            "email must be a bare address (name@domain): letters, digits and . _ + - ! # $ % & ' * / = ? ^ ` { | } ~ only, no spaces, quotes, brackets, commas, semicolons or parentheses"
        }
    }
}

/// Normalizes an email as the module says, and checks it has the shape `local@domain`.
pub(crate) fn normalize_email(raw: &str) -> Result<String, AuthError> {
    let trimmed = raw.trim();
    // Checked before any allocation, so an oversized input costs nothing.
    if trimmed.len() > MAX_EMAIL_BYTES {
        return Err(AuthError::InvalidEmail("email is too long"));
    }
    if trimmed.is_empty() {
        return Err(AuthError::InvalidEmail("email must not be empty"));
    }
    let email: String = trimmed.nfkc().collect::<String>().to_lowercase();
    if email.len() > MAX_EMAIL_BYTES {
        return Err(AuthError::InvalidEmail("email is too long"));
    }
    if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(AuthError::InvalidEmail(
            "email must not contain spaces or control characters",
        ));
    }
    if !email
        .chars()
        .all(|c| c.is_ascii_graphic() || c.identifier_allowed())
    {
        return Err(AuthError::InvalidEmail(
            "email must not contain invisible, formatting or unusual characters",
        ));
    }
    let Some((local, domain)) = email
        .rsplit_once('@')
        .filter(|(l, d)| !l.is_empty() && !d.is_empty())
    else {
        return Err(AuthError::InvalidEmail("email must look like name@domain"));
    };
    if domain.split('.').any(str::is_empty) {
        return Err(AuthError::InvalidEmail(
            "the email's domain must not start or end with a dot or have empty labels",
        ));
    }
    if !local.is_single_script() || !domain.split('.').all(|label| label.is_single_script()) {
        return Err(AuthError::InvalidEmail(
            "email must not mix scripts (such as Latin and Cyrillic) in one part",
        ));
    }
    Ok(email)
}

#[cfg(test)]
mod tests {
    use super::{normalize_email, normalize_new_email};

    #[test]
    fn new_addresses_must_be_bare_addr_specs() {
        for raw in [
            "n1<victim@x.io>",
            "\"ceo@corp.example\"<attacker@evil.io>",
            "Eve <eve@x.io>",
            "a;b@x.io",
            "a,b@x.io",
            "a(b)@x.io",
            "a@[127.0.0.1]",
            "\"quoted\"@x.io",
            "a..b@x.io",
            ".a@x.io",
            "a@-x.io",
            &format!("{}@x.io", "a".repeat(65)),
        ] {
            assert!(normalize_new_email(raw).is_err(), "{raw:?} must be refused");
        }
        for raw in [
            "alice@example.com",
            "a.b+tag_x-y@sub.example.co.uk",
            "o'brien@example.ie",
            &format!("{}@x.io", "a".repeat(64)),
        ] {
            assert_eq!(normalize_new_email(raw).ok().as_deref(), Some(raw));
        }
    }

    fn ok(raw: &str) -> String {
        normalize_email(raw).unwrap_or_else(|e| panic!("{raw:?}: {e}"))
    }

    #[test]
    fn look_alikes_fold_into_one_address() {
        for raw in [
            "alice@example.com",
            "  Alice@Example.COM ",
            "\u{ff21}\u{ff2c}\u{ff29}\u{ff23}\u{ff25}@example.com", // full-width ALICE
            "\u{1d41a}lice@example.com",                            // mathematical bold a
            "alice@\u{ff45}xample.com",                             // full-width e
        ] {
            assert_eq!(ok(raw), "alice@example.com", "{raw:?}");
        }
        // Composed and decomposed accents are one address.
        assert_eq!(ok("jos\u{e9}@example.com"), ok("jose\u{301}@example.com"));
        // Other scripts are fine on their own.
        assert_eq!(
            ok("\u{43f}\u{440}\u{438}\u{432}\u{435}\u{442}@example.com"),
            "привет@example.com"
        );
        assert_eq!(
            ok("a.b+tag_x-y@sub.example.co.uk"),
            "a.b+tag_x-y@sub.example.co.uk"
        );
    }

    proptest::proptest! {
        /// Any text: a normalized email or a reason, never a panic; a normalized email is
        /// its own normal form, has one `@` in a valid place, and fits the length limit.
        #[test]
        fn normalization_is_total_and_idempotent(raw in "\\PC{0,80}|[a-zA-Z0-9.+_-]{1,20}@[a-z0-9.-]{1,20}") {
            if let Ok(email) = normalize_email(&raw) {
                proptest::prop_assert_eq!(normalize_email(&email).ok(), Some(email.clone()));
                proptest::prop_assert!(email.len() <= super::MAX_EMAIL_BYTES);
                let (local, domain) = email.rsplit_once('@').expect("an @");
                proptest::prop_assert!(!local.is_empty() && !domain.is_empty());
                proptest::prop_assert!(!domain.ends_with('.'));
            }
        }
    }

    #[test]
    fn invisible_mixed_and_dotted_variants_are_refused() {
        for raw in [
            "ali\u{200b}ce@example.com", // zero-width space
            "ali\u{200d}ce@example.com", // zero-width joiner
            "alice\u{202e}@example.com", // right-to-left override
            "ali\u{ad}ce@example.com",   // soft hyphen
            "\u{feff}alice@example.com", // byte order mark
            "alice@exam\u{2060}ple.com", // word joiner
            "alice\u{fe0f}@example.com", // variation selector
            "p\u{430}ypal@example.com",  // Cyrillic a among Latin
            "alice@ex\u{430}mple.com",   // the same in the domain
            "alice@example.com.",
            "alice@.example.com",
            "alice@example..com",
            "alice",
            "@example.com",
            "alice@",
            "",
        ] {
            assert!(normalize_email(raw).is_err(), "{raw:?} must be refused");
        }
    }
}
