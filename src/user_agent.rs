//! A short description of a client's `User-Agent` ("Firefox 133 on Linux"), for the list
//! of a user's sessions: enough to recognise a device, without keeping the whole header.

/// Longest description kept.
const MAX_CHARS: usize = 64;

/// Describes a `User-Agent` header value; `None` when there is nothing printable in it.
///
/// Browsers and operating systems are recognised by `woothee`'s shared dataset; anything
/// else (an HTTP library, a script) is kept as its first printable characters.
pub(crate) fn describe(header: &str) -> Option<String> {
    let parsed = woothee::parser::Parser::new().parse(header);
    let known = |value: &str| !value.is_empty() && value != woothee::woothee::VALUE_UNKNOWN;
    if let Some(ua) = parsed.filter(|ua| known(ua.name)) {
        let major = ua.version.split('.').next().filter(|v| known(v));
        let browser = match major {
            Some(major) => format!("{} {major}", ua.name),
            None => ua.name.to_owned(),
        };
        return Some(if known(ua.os) {
            format!("{browser} on {}", ua.os)
        } else {
            browser
        });
    }
    let printable: String = header
        .chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(MAX_CHARS)
        .collect();
    let printable = printable.trim();
    (!printable.is_empty()).then(|| printable.to_owned())
}

#[cfg(test)]
mod tests {
    use super::{MAX_CHARS, describe};

    #[test]
    fn names_browser_version_and_os() {
        assert_eq!(
            describe("Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0")
                .as_deref(),
            Some("Firefox 133 on Linux")
        );
        assert_eq!(
            describe(
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like \
                 Gecko) Chrome/131.0.0.0 Safari/537.36"
            )
            .as_deref(),
            Some("Chrome 131 on Windows 10")
        );
    }

    #[test]
    fn keeps_a_bounded_printable_prefix_of_anything_else() {
        assert_eq!(describe("my-script/1.0").as_deref(), Some("my-script/1.0"));
        let long = format!("x{}\u{7}", "y".repeat(200));
        assert_eq!(describe(&long).map(|d| d.len()), Some(MAX_CHARS));
        assert_eq!(describe(""), None);
        assert_eq!(describe("\u{1}\u{2}"), None);
    }
}
