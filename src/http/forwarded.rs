//! The client's address behind trusted reverse proxies: `X-Forwarded-For`, read from the
//! right by a configured number of hops.
//!
//! Each proxy appends the address it received the request from, so only the entries that
//! trusted proxies appended (the rightmost ones) are facts; anything to their left is
//! whatever the client chose to send. With `hops` trusted proxies in front of the app,
//! the client is the `hops`-th entry from the right. An entry there that is not an address
//! (`unknown`, an obfuscated identifier, garbage) is not skipped for the next one to its
//! left, which the client may have forged: the client is then unknown, and the TCP peer
//! (the nearest proxy) stands in for it.

use std::net::{IpAddr, SocketAddr};

use http::HeaderMap;

/// The client's address: the `hops`-th `X-Forwarded-For` entry from the right (every
/// header line counts, in order), or `peer` when `hops` is 0, the header is absent, or that
/// entry is not an address. With fewer entries than `hops`, the leftmost one is taken: every
/// entry then came from a trusted proxy.
pub(crate) fn client_ip(headers: &HeaderMap, hops: usize, peer: Option<IpAddr>) -> Option<IpAddr> {
    if hops == 0 {
        return peer;
    }
    let mut entries: Vec<&str> = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        let Ok(value) = value.to_str() else {
            // Not text: nothing in it can be trusted, including its position.
            return peer;
        };
        entries.extend(value.split(','));
    }
    let Some(index) = entries.len().checked_sub(1) else {
        return peer;
    };
    let index = index.saturating_sub(hops - 1);
    parse_entry(entries[index]).or(peer)
}

/// One `X-Forwarded-For` entry: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1`,
/// `[2001:db8::1]` or `[2001:db8::1]:443`, with surrounding spaces.
fn parse_entry(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .or_else(|| {
            entry
                .strip_prefix('[')?
                .strip_suffix(']')?
                .parse::<IpAddr>()
                .ok()
        })
        .map(canonical)
}

/// An IPv4-mapped IPv6 address (`::ffff:1.2.3.4`) is the IPv4 address it maps, so one
/// client cannot count as two.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(lines: &[&[u8]]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for line in lines {
            map.append(
                "x-forwarded-for",
                http::HeaderValue::from_bytes(line).expect("header value"),
            );
        }
        map
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().expect("test address"))
    }

    const PEER: &str = "10.0.0.1";

    #[test]
    fn counts_trusted_hops_from_the_right() {
        let h = headers(&[b"203.0.113.9, 198.51.100.7, 192.0.2.1"]);
        assert_eq!(client_ip(&h, 0, ip(PEER)), ip(PEER));
        assert_eq!(client_ip(&h, 1, ip(PEER)), ip("192.0.2.1"));
        assert_eq!(client_ip(&h, 2, ip(PEER)), ip("198.51.100.7"));
        assert_eq!(client_ip(&h, 3, ip(PEER)), ip("203.0.113.9"));
        assert_eq!(client_ip(&h, 9, ip(PEER)), ip("203.0.113.9"));
        // Several header lines are one list, in order.
        let h = headers(&[b"203.0.113.9", b"198.51.100.7, 192.0.2.1"]);
        assert_eq!(client_ip(&h, 2, ip(PEER)), ip("198.51.100.7"));
        assert_eq!(client_ip(&headers(&[]), 1, ip(PEER)), ip(PEER));
    }

    #[test]
    fn parses_ports_brackets_and_ipv6() {
        for (entry, expected) in [
            ("192.0.2.1:5678", "192.0.2.1"),
            (" 2001:db8::1 ", "2001:db8::1"),
            ("[2001:db8::1]", "2001:db8::1"),
            ("[2001:db8::1]:443", "2001:db8::1"),
            ("::ffff:192.0.2.1", "192.0.2.1"),
        ] {
            let h = headers(&[entry.as_bytes()]);
            assert_eq!(client_ip(&h, 1, None), ip(expected), "{entry}");
        }
    }

    proptest::proptest! {
        /// Any header bytes and any hop count: an address or none, never a panic; with
        /// hops, never an address to the left of the trusted entries'.
        #[test]
        fn any_forwarded_header_is_read_safely(
            lines in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..100), 0..3),
            hops in 0usize..5,
        ) {
            let lines: Vec<&[u8]> = lines.iter().map(Vec::as_slice).collect();
            let mut map = HeaderMap::new();
            for line in lines {
                if let Ok(value) = http::HeaderValue::from_bytes(line) {
                    map.append("x-forwarded-for", value);
                }
            }
            let _ = client_ip(&map, hops, ip(PEER));
        }
    }

    #[test]
    fn an_entry_that_is_not_an_address_is_never_skipped() {
        // The client wrote "203.0.113.9"; the proxy wrote "unknown". Skipping "unknown"
        // would hand the client's choice to the throttle.
        for entry in [
            &b"203.0.113.9, unknown"[..],
            b"203.0.113.9, ",
            b"203.0.113.9,_hidden",
        ] {
            assert_eq!(client_ip(&headers(&[entry]), 1, ip(PEER)), ip(PEER));
        }
        assert_eq!(
            client_ip(&headers(&[b"203.0.113.9", b"\xff"]), 1, ip(PEER)),
            ip(PEER)
        );
        assert_eq!(client_ip(&headers(&[b"garbage"]), 1, None), None);
    }
}
