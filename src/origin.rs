//! Web origins (scheme, host, port), as configuration names them (`public_origin`,
//! `allowed_origins`) and as browsers send them (`Origin`): parsed and compared here, for
//! the configuration's checks and the same-origin layer alike.

/// A web origin: scheme, host and port, lower-cased, the port explicit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Origin {
    pub(crate) scheme: String,
    pub(crate) host: String,
    pub(crate) port: Option<u16>,
}

impl Origin {
    /// An origin as configured (`public_origin`, `allowed_origins`): as [`parse`](Self::parse), and a
    /// URL's trailing `/` is accepted, the way a [`Mailer`](crate::Mailer)'s public URL
    /// is written.
    pub(crate) fn parse_configured(text: &str) -> Option<Self> {
        Self::parse(text.strip_suffix('/').unwrap_or(text))
    }

    /// `scheme://host[:port]` (IPv6 hosts in brackets), nothing after; `None` otherwise.
    pub(crate) fn parse(text: &str) -> Option<Self> {
        let (scheme, rest) = text.split_once("://")?;
        let scheme_ok = !scheme.is_empty()
            && scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
        if !scheme_ok || rest.is_empty() {
            return None;
        }
        let (host, port) = split_host_port(rest)?;
        let host_ok = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._[]:".contains(&b));
        if !host_ok {
            return None;
        }
        let scheme = scheme.to_ascii_lowercase();
        let port = port.or(default_port(&scheme));
        Some(Self {
            scheme,
            host: host.to_ascii_lowercase(),
            port,
        })
    }

    /// An origin no request has.
    pub(crate) fn none() -> Self {
        Self {
            scheme: String::new(),
            host: String::new(),
            port: None,
        }
    }
}

/// The port a URL of this scheme means when it writes none.
pub(crate) fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

/// `host[:port]`, with an IPv6 host in brackets; `None` for a port that is not a number.
pub(crate) fn split_host_port(rest: &str) -> Option<(&str, Option<u16>)> {
    let port_at = if rest.starts_with('[') {
        rest.find(']').map(|end| end + 1)?
    } else {
        rest.find(':').unwrap_or(rest.len())
    };
    let (host, port) = rest.split_at(port_at);
    match port.strip_prefix(':') {
        None if port.is_empty() => Some((host, None)),
        None => None,
        Some(port) => Some((host, Some(port.parse().ok()?))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_compare_scheme_host_and_port() {
        let parse = |s| Origin::parse(s).expect(s);
        assert_eq!(
            parse("HTTPS://App.Example.com"),
            parse("https://app.example.com:443")
        );
        assert_eq!(parse("http://[::1]:8080").port, Some(8080));
        assert_ne!(
            parse("http://app.example.com"),
            parse("https://app.example.com")
        );
        assert_ne!(
            parse("https://app.example.com:8443"),
            parse("https://app.example.com")
        );
        for bad in [
            "null",
            "app.example.com",
            "https://",
            "https://a.b:port",
            "https://a b",
            "https://a/b",
        ] {
            assert_eq!(Origin::parse(bad), None, "{bad}");
        }
        for (configured, plain) in [
            ("https://app.example/", "https://app.example"),
            ("http://localhost:3000/", "http://localhost:3000"),
        ] {
            assert_eq!(Origin::parse_configured(configured), Origin::parse(plain));
        }
    }
}
