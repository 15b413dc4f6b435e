//! Header rewriting between client and upstream: hop-by-hop headers never cross the proxy,
//! and the upstream learns who the client was through `X-Forwarded-*` (written by
//! [`super::fields`]).

use std::net::IpAddr;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// Headers that describe one connection, never the message (RFC 9110 §7.6.1), plus the
/// proxy-specific ones a gateway must not pass on.
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::PROXY_AUTHORIZATION,
    header::PROXY_AUTHENTICATE,
    HeaderName::from_static("keep-alive"),
];

const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");
/// `X-Forwarded-For`
pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
/// `X-Forwarded-Proto`
pub const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
/// `X-Forwarded-Host`
pub const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Whether `name` is one of [`HOP_BY_HOP`] or `Proxy-Connection`: one comparison of its text
/// by length and bytes, where comparing it with each of the nine names costs about 50
/// instructions a field (the scan below runs over every field of the request and the answer).
fn is_hop_by_hop(name: &HeaderName) -> bool {
    among_hop_by_hop(name.as_str().as_bytes(), |name, known| name == known)
}

/// Whether `same` says `name` is one of the hop-by-hop names (lower case) of its length
/// (`same(name, known)`): [`is_hop_by_hop`], and in any case for a name as received
/// (`proxy::field_lines`).
pub(crate) fn among_hop_by_hop(name: &[u8], same: impl Fn(&[u8], &[u8]) -> bool) -> bool {
    let is = |known: &str| same(name, known.as_bytes());
    match name.len() {
        2 => is("te"),
        7 => is("trailer") || is("upgrade"),
        10 => is("connection") || is("keep-alive"),
        16 => is("proxy-connection"),
        17 => is("transfer-encoding"),
        18 => is("proxy-authenticate"),
        19 => is("proxy-authorization"),
        _ => false,
    }
}

/// Removes hop-by-hop headers, including every header the `Connection` header names. True
/// when the head had any (something may have been removed), false when it was left untouched.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) -> bool {
    // Most heads carry none of them: one pass over the names they have is much cheaper than a
    // removal (a hash and a probe) per name listed (about 1,500 instructions per request, twice:
    // request and response; scripts/bench --instructions). The headers `Connection` names only
    // count when there is a `Connection` header, which the pass finds.
    if !headers.keys().any(is_hop_by_hop) {
        return false;
    }
    // Every Connection header counts, and a value that is not plain ASCII is still read.
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .flat_map(|value| value.as_bytes().split(|b| *b == b','))
        .filter_map(|name| HeaderName::from_bytes(name.trim_ascii()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
    headers.remove(PROXY_CONNECTION);
    true
}

/// The client's `Host` for the upstream request, and whether the head has it as a field. The
/// field is not taken out, also when `changeOrigin` replaces its value: the proxy writes the
/// upstream's value in its place (as http-proxy sets `host` in its copy of Node's header
/// object), so no removal (about 230 instructions a request: the map moves its last field
/// into the hole and fixes its index) and no insertion at the end. It stays where the client
/// put it unless hop-by-hop fields are removed (the same move: a field after them may take
/// their place). Several `Host` fields become the first (as Node keeps the first). Without a
/// `Host` field (HTTP/2, HTTP/1.0) the value is made from `authority` (its host and port, not
/// its userinfo), and the head has none.
/// Hop-by-hop fields are removed too ([`strip_hop_by_hop`]), except a `Host` that
/// `Connection` names (put back, at the end).
pub fn client_host(
    headers: &mut HeaderMap,
    authority: Option<&http::uri::Authority>,
) -> (Option<HeaderValue>, bool) {
    let found = {
        let mut values = headers.get_all(header::HOST).iter();
        values
            .next()
            .cloned()
            .map(|first| (first, values.next().is_some()))
    };
    let (host, in_head) = match found {
        Some((first, several)) => {
            if several {
                headers.insert(header::HOST, first.clone());
            }
            (Some(first), true)
        }
        // The authority's host and port: a userinfo never becomes a `Host`.
        None => (
            authority.and_then(|a| HeaderValue::from_str(crate::router::authority_host(a)).ok()),
            false,
        ),
    };
    if strip_hop_by_hop(headers) && in_head && !headers.contains_key(header::HOST) {
        // `Connection: host` named it: it is not a hop-by-hop field, it goes back.
        if let Some(host) = &host {
            headers.insert(header::HOST, host.clone());
        }
    }
    (host, in_head)
}

/// `ip` as its `Display` writes it, into `buf` (an IPv6 address takes at most 45 bytes): IPv4
/// digit by digit, since `core::fmt` costs about 1,300 instructions per address.
pub(crate) fn format_ip(ip: IpAddr, buf: &mut [u8; 48]) -> &[u8] {
    let mut len = 0;
    match ip {
        IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    buf[len] = b'.';
                    len += 1;
                }
                if octet >= 100 {
                    buf[len] = b'0' + octet / 100;
                    len += 1;
                }
                if octet >= 10 {
                    buf[len] = b'0' + octet / 10 % 10;
                    len += 1;
                }
                buf[len] = b'0' + octet % 10;
                len += 1;
            }
        }
        IpAddr::V6(_) => {
            use std::io::Write;
            let mut cursor = std::io::Cursor::new(&mut buf[..]);
            if write!(cursor, "{ip}").is_ok() {
                len = usize::try_from(cursor.position()).unwrap_or(0);
            }
        }
    }
    buf.get(..len).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_written_as_display_writes_them() {
        let mut buf = [0u8; 48];
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "10.20.255.9",
            "255.255.255.255",
            "1.100.99.10",
            "::1",
            "::ffff:10.0.0.1",
            "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255",
            "2001:db8::8a2e:370:7334",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(format_ip(ip, &mut buf), ip.to_string().as_bytes());
        }
    }

    #[test]
    fn the_clients_host_stays_in_place() {
        let names = |h: &HeaderMap| h.keys().map(|n| n.as_str().to_owned()).collect::<Vec<_>>();
        let head = || {
            let mut h = HeaderMap::new();
            h.insert(header::HOST, HeaderValue::from_static("a.example"));
            h.insert("x-one", HeaderValue::from_static("1"));
            h
        };
        // Where the client put it, first.
        let mut h = head();
        let (host, in_head) = client_host(&mut h, None);
        assert_eq!(
            (host.unwrap(), in_head),
            (HeaderValue::from_static("a.example"), true)
        );
        assert_eq!(names(&h), ["host", "x-one"]);
        // Several: the first, once.
        let mut h = head();
        h.append(header::HOST, HeaderValue::from_static("b.example"));
        let (host, _) = client_host(&mut h, None);
        assert_eq!(host.unwrap(), "a.example");
        let kept: Vec<_> = h.get_all(header::HOST).iter().collect();
        assert_eq!(kept, ["a.example"]);
        // `Connection: host` cannot take it away; the other hop-by-hop fields go.
        let mut h = head();
        h.insert(header::CONNECTION, HeaderValue::from_static("host, x-one"));
        h.insert(header::TE, HeaderValue::from_static("trailers"));
        let (host, in_head) = client_host(&mut h, None);
        assert_eq!(
            (host.unwrap(), in_head),
            (HeaderValue::from_static("a.example"), true)
        );
        assert_eq!(names(&h), ["host"]);
        // None (HTTP/2): from the authority, for the caller to add.
        let mut h = HeaderMap::new();
        let authority = http::uri::Authority::from_static("c.example:8080");
        let (host, in_head) = client_host(&mut h, Some(&authority));
        assert_eq!(
            (host.unwrap(), in_head),
            (HeaderValue::from_static("c.example:8080"), false)
        );
        assert!(h.is_empty());
        // An absolute-form target's userinfo (HTTP/1.0 without `Host`) is not part of it.
        for (authority, host) in [
            ("user:secret@c.example:8080", "c.example:8080"),
            ("u@[::1]:81", "[::1]:81"),
            ("@c.example", "c.example"),
        ] {
            let authority = http::uri::Authority::try_from(authority).unwrap();
            let (found, _) = client_host(&mut HeaderMap::new(), Some(&authority));
            assert_eq!(found.unwrap(), host);
        }
    }

    #[test]
    fn hop_by_hop_names_are_the_listed_ones() {
        let as_received = |name: &[u8]| among_hop_by_hop(name, <[u8]>::eq_ignore_ascii_case);
        for name in HOP_BY_HOP.iter().chain([&PROXY_CONNECTION]) {
            assert!(is_hop_by_hop(name), "{name}");
            // As received, in any case.
            assert!(as_received(name.as_str().as_bytes()), "{name}");
            let upper = name.as_str().to_ascii_uppercase();
            assert!(as_received(upper.as_bytes()), "{upper}");
        }
        for name in [
            header::HOST,
            header::CONTENT_LENGTH,
            header::ACCEPT,
            HeaderName::from_static("x-te"),
            HeaderName::from_static("t"),
            HeaderName::from_static("connections"),
            HeaderName::from_static("proxy-auth"),
            HeaderName::from_static("upgrades"),
            HeaderName::from_static("trailers"),
            HeaderName::from_static("keep-alive2"),
        ] {
            assert!(!is_hop_by_hop(&name), "{name}");
            assert!(!as_received(name.as_str().as_bytes()), "{name}");
        }
    }

    #[test]
    fn strips_hop_by_hop_and_connection_named_headers() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, X-Secret"),
        );
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        h.insert(
            header::PROXY_AUTHORIZATION,
            HeaderValue::from_static("Basic x"),
        );
        h.insert("proxy-connection", HeaderValue::from_static("keep-alive"));
        h.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        assert!(strip_hop_by_hop(&mut h));
        assert_eq!(h.len(), 1);
        assert!(h.contains_key(header::ACCEPT));
    }

    #[test]
    fn each_hop_by_hop_header_alone_is_stripped_and_others_kept() {
        let mut plain = HeaderMap::new();
        plain.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        plain.insert("x-secret", HeaderValue::from_static("1"));
        let before = plain.clone();
        assert!(!strip_hop_by_hop(&mut plain));
        assert_eq!(plain, before);
        for name in HOP_BY_HOP.iter().chain([&PROXY_CONNECTION]) {
            let mut h = before.clone();
            h.insert(name.clone(), HeaderValue::from_static("x"));
            strip_hop_by_hop(&mut h);
            assert_eq!(h, before, "{name}");
        }
    }

    #[test]
    fn every_connection_header_is_honoured() {
        let mut h = HeaderMap::new();
        h.append(header::CONNECTION, HeaderValue::from_static("keep-alive"));
        h.append(header::CONNECTION, HeaderValue::from_static("x-second"));
        h.append(
            header::CONNECTION,
            HeaderValue::from_bytes(b"x-third, \xe9t\xe9").unwrap(),
        );
        h.insert("x-second", HeaderValue::from_static("1"));
        h.insert("x-third", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h);
        assert!(h.is_empty(), "{h:?}");
    }
}
