//! Email normalization: one spelling per address, so one account per address.

use super::AuthError;

/// Longest email accepted (RFC 5321 path limit).
const MAX_EMAIL_BYTES: usize = 254;

/// Trims and lower-cases an email, and checks it has the shape `local@domain`.
pub(crate) fn normalize_email(raw: &str) -> Result<String, AuthError> {
    let trimmed = raw.trim();
    // Checked before lower-casing, so an oversized input costs no allocation.
    if trimmed.len() > MAX_EMAIL_BYTES {
        return Err(AuthError::InvalidEmail("email is too long"));
    }
    let email = trimmed.to_lowercase();
    if email.is_empty() {
        return Err(AuthError::InvalidEmail("email must not be empty"));
    }
    if email.len() > MAX_EMAIL_BYTES {
        return Err(AuthError::InvalidEmail("email is too long"));
    }
    if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(AuthError::InvalidEmail(
            "email must not contain spaces or control characters",
        ));
    }
    match email.rsplit_once('@') {
        Some((local, domain)) if !local.is_empty() && !domain.is_empty() => Ok(email),
        _ => Err(AuthError::InvalidEmail("email must look like name@domain")),
    }
}
