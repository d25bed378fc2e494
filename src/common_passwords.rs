//! The blocklist of commonly used passwords (NIST SP 800-63B-4 §3.1.1.2).
//!
//! `common_passwords.txt` is the list Django ships (`django/contrib/auth/common-passwords.txt`,
//! BSD-3-Clause): about 20,000 passwords seen most often in public breach corpora, lower-cased.

use std::collections::HashSet;
use std::sync::LazyLock;

static LIST: &str = include_str!("common_passwords.txt");

static SET: LazyLock<HashSet<&'static str>> = LazyLock::new(|| LIST.lines().collect());

/// True when `password`, trimmed and lower-cased, is on the list.
pub(crate) fn contains(password: &str) -> bool {
    SET.contains(password.trim().to_lowercase().as_str())
}

#[cfg(test)]
mod tests {
    #[test]
    fn knows_common_and_not_uncommon_passwords() {
        assert!(super::contains("password"));
        assert!(super::contains("Qwerty"));
        assert!(!super::contains("correct horse battery staple 7"));
    }
}
