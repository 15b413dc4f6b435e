//! API keys carried in a cookie (OpenAPI `apiKey` with `in: cookie`): finding the key in the
//! request's `Cookie` headers and removing it before the request goes upstream.
//!
//! The `Cookie` header is a list of `name=value` pairs separated by `;` (RFC 6265 §4.2.1).
//! Real clients vary the spacing (`a=1;b=2`, `a=1 ;  b=2`), leave empty pairs (`a=1;;`) and
//! quote values (`a="1"`, RFC 6265 §4.1.1), and an HTTP/2 client sends each cookie as its own
//! header field (RFC 9113 §8.2.3), so every `Cookie` header of the request is read. Names are
//! compared exactly (case-sensitive, as browsers do). Nothing here indexes into request bytes:
//! any input yields an answer, never a panic.

use std::borrow::Cow;

use http::header::COOKIE;
use http::{HeaderMap, HeaderValue};

/// What the request's cookies say about one cookie name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup<'a> {
    /// No cookie of that name with a non-empty value.
    Absent,
    /// One value (a repeated cookie with the same value counts once), quotes removed.
    Found(Cow<'a, str>),
    /// Two different values under the name: which one the upstream would read is anyone's
    /// guess, so the request is refused rather than one of them winning silently.
    Conflict,
}

/// The `(name, value)` pairs of one `Cookie` header value, each trimmed of spaces and tabs;
/// empty pairs are skipped and a pair without `=` has an empty value.
pub fn pairs(value: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    value
        .split(|b| *b == b';')
        .map(<[u8]>::trim_ascii)
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.iter().position(|b| *b == b'=') {
            Some(at) => {
                let (name, value) = pair.split_at(at);
                // `value` starts with the `=`.
                (
                    name.trim_ascii(),
                    value.get(1..).unwrap_or_default().trim_ascii(),
                )
            }
            None => (pair, &b""[..]),
        })
}

/// A cookie value without its optional surrounding double quotes.
fn unquote(value: &[u8]) -> &[u8] {
    match value {
        [b'"', inner @ .., b'"'] => inner,
        other => other,
    }
}

/// The value of cookie `name` across all of `headers`' `Cookie` fields.
pub fn find<'a>(headers: &'a HeaderMap, name: &str) -> Lookup<'a> {
    let mut found: Option<&'a [u8]> = None;
    for header in headers.get_all(COOKIE) {
        for (key, value) in pairs(header.as_bytes()) {
            let value = unquote(value);
            if key != name.as_bytes() || value.is_empty() {
                continue;
            }
            match found {
                Some(seen) if seen != value => return Lookup::Conflict,
                _ => found = Some(value),
            }
        }
    }
    match found {
        // Header values are visible ASCII (plus obs-text): a value that is not UTF-8 is no key.
        Some(value) => match std::str::from_utf8(value) {
            Ok(text) => Lookup::Found(Cow::Borrowed(text)),
            Err(_) => Lookup::Found(String::from_utf8_lossy(value)),
        },
        None => Lookup::Absent,
    }
}

/// Removes every cookie called `name` from `headers`. The other cookies stay, in order, joined
/// into one `Cookie` header with `; ` (RFC 9113 §8.2.3's rule for passing HTTP/2 cookie fields
/// on to HTTP/1.1); when none is left the header is dropped. Headers that do not carry the
/// cookie are left untouched. Returns true when something was removed.
pub fn remove(headers: &mut HeaderMap, name: &str) -> bool {
    let carries =
        |value: &HeaderValue| pairs(value.as_bytes()).any(|(key, _)| key == name.as_bytes());
    if !headers.get_all(COOKIE).iter().any(carries) {
        return false;
    }
    let mut kept: Vec<u8> = Vec::new();
    for header in headers.get_all(COOKIE) {
        for pair in header
            .as_bytes()
            .split(|b| *b == b';')
            .map(<[u8]>::trim_ascii)
            .filter(|pair| !pair.is_empty())
        {
            if pairs(pair).any(|(key, _)| key == name.as_bytes()) {
                continue;
            }
            if !kept.is_empty() {
                kept.extend_from_slice(b"; ");
            }
            kept.extend_from_slice(pair);
        }
    }
    headers.remove(COOKIE);
    if !kept.is_empty() {
        // Pieces of valid header values joined by "; " are a valid value; should that ever
        // fail, the cookies are dropped rather than the key forwarded.
        if let Ok(value) = HeaderValue::from_bytes(&kept) {
            headers.insert(COOKIE, value);
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&[u8]]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(COOKIE, HeaderValue::from_bytes(value).unwrap());
        }
        headers
    }

    fn cookies(headers: &HeaderMap) -> Vec<&str> {
        headers
            .get_all(COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect()
    }

    #[test]
    fn keys_are_found_whatever_the_spacing_quoting_or_header_split() {
        for (values, expected) in [
            (&[&b"apikey=K"[..]][..], Some("K")),
            (&[b"a=1; apikey=K; b=2"], Some("K")),
            (&[b"a=1;apikey=K;b=2"], Some("K")),
            (&[b"  a=1 ;\tapikey = K ;; "], Some("K")),
            (&[b"apikey=\"K\""], Some("K")),
            (&[b"a=1", b"apikey=K"], Some("K")),
            (&[b"apikey=K", b"apikey=K"], Some("K")),
            (&[b"apikey=a=b"], Some("a=b")),
            (&[b"apikey="], None),
            (&[b"apikey=\"\""], None),
            (&[b"apikey"], None),
            (&[b"APIKEY=K; xapikey=K; apikey_=K"], None),
            (&[b";;;"], None),
            (&[b""], None),
            (&[b"\""], None),
            (&[b"="], None),
        ] {
            let headers = headers(values);
            let found = match find(&headers, "apikey") {
                Lookup::Found(value) => Some(value.into_owned()),
                Lookup::Absent => None,
                Lookup::Conflict => panic!("conflict for {values:?}"),
            };
            assert_eq!(found.as_deref(), expected, "{values:?}");
        }
        assert_eq!(
            find(&headers(&[b"apikey=A; apikey=B"]), "apikey"),
            Lookup::Conflict
        );
        assert_eq!(
            find(&headers(&[b"apikey=A", b"x=1; apikey=B"]), "apikey"),
            Lookup::Conflict
        );
        assert_eq!(
            find(&headers(&[b"apikey=\xff\xfe"]), "apikey"),
            Lookup::Found("\u{fffd}\u{fffd}".into())
        );
    }

    #[test]
    fn removal_keeps_the_other_cookies_and_drops_an_empty_header() {
        let mut h = headers(&[b"a=1; apikey=K; b=2"]);
        assert!(remove(&mut h, "apikey"));
        assert_eq!(cookies(&h), ["a=1; b=2"]);

        let mut h = headers(&[b"apikey=K"]);
        assert!(remove(&mut h, "apikey"));
        assert!(h.get(COOKIE).is_none(), "nothing left: no Cookie header");

        // HTTP/2 style: one field per cookie; odd spacing, empty pairs, repeated keys.
        let mut h = headers(&[
            b"a=1",
            b" apikey = K ",
            b"b=\"2 3\";;apikey=K2 ;c",
            b"apikey",
        ]);
        assert!(remove(&mut h, "apikey"));
        assert_eq!(cookies(&h), ["a=1; b=\"2 3\"; c"]);

        let mut h = headers(&[b"apikey=K", b"apikey=K"]);
        assert!(remove(&mut h, "apikey"));
        assert!(h.get(COOKIE).is_none());

        // No such cookie: the headers are left exactly as they came.
        let mut h = headers(&[b"a=1;b=2", b"xapikey=1"]);
        assert!(!remove(&mut h, "apikey"));
        assert_eq!(cookies(&h), ["a=1;b=2", "xapikey=1"]);

        // Other headers are never touched.
        let mut h = headers(&[b"apikey=K"]);
        h.insert("apikey", HeaderValue::from_static("header"));
        assert!(remove(&mut h, "apikey"));
        assert_eq!(h["apikey"], "header");
    }
}
