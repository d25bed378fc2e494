//! Cookies as a request brings them: its `Cookie` headers, read by exact name. (The
//! `Set-Cookie` the service answers with is [`SessionCookie`](crate::SessionCookie).)

use cookie::Cookie;
use http::{HeaderMap, HeaderValue, header};

/// A request's `Cookie` header values (one in HTTP/1.1; HTTP/2 may send several), kept
/// as they came and parsed only when someone asks. Cloning one is a reference count.
#[derive(Clone)]
pub(crate) enum CookieHeaders {
    None,
    One(HeaderValue),
    Many(Vec<HeaderValue>),
}

impl CookieHeaders {
    pub(crate) fn of(headers: &HeaderMap) -> Self {
        let mut values = headers.get_all(header::COOKIE).iter();
        match (values.next(), values.next()) {
            (None, _) => Self::None,
            (Some(one), None) => Self::One(one.clone()),
            (Some(first), Some(second)) => {
                let mut all = vec![first.clone(), second.clone()];
                all.extend(values.cloned());
                Self::Many(all)
            }
        }
    }

    /// The value of the cookie called exactly `name`, percent-decoded. Names are compared
    /// as sent, never decoded: `__Host%2Dsession_id` is another cookie than
    /// `__Host-session_id` (a browser would let any site on the network path set the
    /// former, so decoding it would void the `__Host-` prefix's guarantee). When a name
    /// comes more than once, the first wins (as in Werkzeug, the seed's framework);
    /// malformed pairs, values that do not decode as UTF-8 and headers that are not UTF-8
    /// are skipped.
    pub(crate) fn get(&self, name: &str) -> Option<String> {
        let values = match self {
            Self::None => &[][..],
            Self::One(one) => std::slice::from_ref(one),
            Self::Many(all) => all,
        };
        values
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(Cookie::split_parse)
            .filter_map(Result::ok)
            .filter(|cookie| cookie.name() == name)
            .find_map(|cookie| {
                percent_encoding::percent_decode_str(cookie.value())
                    .decode_utf8()
                    .ok()
                    .map(|value| value.into_owned())
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cookie::Cookie;

    fn headers(lines: &[&[u8]]) -> CookieHeaders {
        let mut map = HeaderMap::new();
        for line in lines {
            map.append(header::COOKIE, HeaderValue::from_bytes(line).unwrap());
        }
        CookieHeaders::of(&map)
    }

    #[test]
    fn finds_a_cookie_among_others_and_decodes_it() {
        let jar = headers(&[b"a=1; session_id=abc%20def; b=2"]);
        assert_eq!(jar.get("session_id").as_deref(), Some("abc def"));
        assert_eq!(jar.get("b").as_deref(), Some("2"));
        assert_eq!(jar.get("missing"), None);
        assert_eq!(headers(&[]).get("session_id"), None);
    }

    #[test]
    fn the_first_of_duplicates_wins_across_headers() {
        let jar = headers(&[b"session_id=first; x=1", b"session_id=second", b"y=2"]);
        assert_eq!(jar.get("session_id").as_deref(), Some("first"));
        assert_eq!(jar.get("y").as_deref(), Some("2"));
    }

    proptest::proptest! {
        /// Any header bytes: a value or none, never a panic.
        #[test]
        fn any_cookie_header_reads_or_is_skipped(
            lines in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..200), 0..4),
            name in "[!#-'*+.0-9A-Z^-z|~-]{1,20}",
        ) {
            let mut map = HeaderMap::new();
            for line in &lines {
                if let Ok(value) = HeaderValue::from_bytes(line) {
                    map.append(header::COOKIE, value);
                }
            }
            let _ = CookieHeaders::of(&map).get(&name);
        }

        /// A cookie set among others is read back as set, whatever its value.
        #[test]
        fn a_set_cookie_is_found_among_others(value in "\\PC{0,64}", other in "[a-z]{1,8}") {
            let cookie = Cookie::new("session_id", value.clone());
            let line = format!("{other}=1; {}; z=2", cookie.encoded());
            let jar = headers(&[line.as_bytes()]);
            proptest::prop_assert_eq!(jar.get("session_id"), Some(value));
        }
    }

    #[test]
    fn malformed_pairs_and_non_utf8_headers_are_skipped() {
        let jar = headers(&[
            b"\xff\xfe=1; session_id=bad",
            b"=novalue; ;; noequals; session_id=ok",
        ]);
        assert_eq!(jar.get("session_id").as_deref(), Some("ok"));
    }
}
