//! Request path normalisation: one canonical form, used for routing, for every policy that
//! looks at the path, and for the path sent upstream, so no spelling of a path can reach a
//! route (or skip its security) that its canonical form would not.
//!
//! The canonical form:
//! - percent-encoded unreserved characters (`A-Z a-z 0-9 - . _ ~`) are decoded, and every
//!   other escape is kept, with upper-case hex digits;
//! - dot segments (`.`, `..`, including encoded ones such as `%2e%2E`) are removed;
//! - runs of `/` are merged;
//! - raw bytes that RFC 3986 does not allow in a path (non-ASCII UTF-8, space, `"`, `<`, `>`,
//!   `^`, `` ` ``, `{`, `|`, `}`, controls) are percent-encoded, so `/städte` and `/st%C3%A4dte`
//!   are one path (RFC 3987 §3.1 maps an IRI's non-ASCII characters to their encoded UTF-8);
//! - a raw `\`, and the escapes `%5C`, `%00` and double-encoded `%252e`/`%252f`/`%255c`/`%2500`
//!   are rejected; `%2F` (an encoded `/`) is kept encoded and reported, so the caller can
//!   refuse it unless the API opts in.
//!
//! Matching stays case-sensitive (`/Pets` is not `/pets`), as in nginx and HAProxy.

use std::borrow::Cow;

/// A path the gateway refuses (answered with 400).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// Not an origin-form path starting with `/`.
    #[error("the request target must be a path starting with '/'")]
    NotOriginForm,
    /// A raw backslash.
    #[error("a backslash is not allowed in a path")]
    Backslash,
    /// `%5C`
    #[error("an encoded backslash (%5C) is not allowed in a path")]
    EncodedBackslash,
    /// `%00`
    #[error("an encoded NUL (%00) is not allowed in a path")]
    EncodedNul,
    /// A raw NUL byte (HTTP parsers refuse it; other callers may not). Refused like `%00`,
    /// because its canonical form would be `%00`.
    #[error("a NUL byte is not allowed in a path")]
    Nul,
    /// `%25` followed by the escape of `.`, `/`, `\` or NUL.
    #[error("a double-encoded '.', '/', '\\' or NUL is not allowed in a path")]
    DoubleEncoded,
    /// `%` not followed by two hex digits.
    #[error("a '%' in a path must start a %XX escape")]
    BadEscape,
}

/// A normalised path and whether it keeps an encoded `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Normalised<'a> {
    /// The canonical path.
    pub path: Cow<'a, str>,
    /// True when the path contains `%2F`.
    pub encoded_slash: bool,
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

const fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// True for a byte that may stand in a path as it is: unreserved, sub-delims, `:`, `@`, `/`
/// (RFC 3986 §3.3 `pchar`) and `%` (checked separately as the start of an escape).
const fn allowed_raw(b: u8) -> bool {
    is_unreserved(b)
        || matches!(
            b,
            b'!' | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'@'
                | b'/'
                | b'%'
        )
}

const HEX_DIGITS: &[u8; 16] = b"0123456789ABCDEF";

/// Appends `%XX` (upper-case hex) for `b`.
fn push_escape(out: &mut Vec<u8>, b: u8) {
    out.extend_from_slice(&[
        b'%',
        HEX_DIGITS[usize::from(b >> 4)],
        HEX_DIGITS[usize::from(b & 15)],
    ]);
}

/// The canonical form of a literal piece of a path template (the text between parameters):
/// the same form [`normalise`] gives a request path, so a template and the requests it names
/// compare byte for byte. Non-ASCII characters become their percent-encoded UTF-8
/// (RFC 3987 §3.1), escapes of unreserved characters are decoded, other escapes get upper-case
/// hex, and a `%` that starts no escape is itself encoded (`%25`).
pub fn canonical_literal(literal: &str) -> String {
    let bytes = literal.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            if let (Some(h), Some(l)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            ) {
                let value = h * 16 + l;
                if is_unreserved(value) {
                    out.push(value);
                } else {
                    push_escape(&mut out, value);
                }
                i += 3;
                continue;
            }
            push_escape(&mut out, b);
        } else if allowed_raw(b) {
            out.push(b);
        } else {
            push_escape(&mut out, b);
        }
        i += 1;
    }
    // Only ASCII is ever pushed.
    String::from_utf8(out).unwrap_or_default()
}

/// Bytes a clean path holds as they are: what [`allowed_raw`] allows, except `%` (an escape
/// always needs work). One table lookup per byte on the request path.
const CLEAN: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = b != b'%' as usize && allowed_raw(b as u8);
        b += 1;
    }
    table
};

/// True when the path may need work: a byte outside [`CLEAN`], an empty segment (`//`), or a
/// `.` or `..` segment (followed by `/` or at the end). One pass over the bytes: the common
/// case, a clean path, is the request path's.
fn needs_work(path: &str) -> bool {
    // Bytes since the last `/`; `usize::MAX` before the first one.
    let mut segment_start = usize::MAX;
    let bytes = path.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'/' {
            if segment_start != usize::MAX && is_dot_or_empty(bytes.get(segment_start..i)) {
                return true;
            }
            segment_start = i + 1;
        } else if !CLEAN[usize::from(b)] {
            return true;
        }
    }
    // The last segment: `.` or `..` (an empty one is a trailing `/`, which is kept).
    segment_start != usize::MAX && matches!(bytes.get(segment_start..), Some(b".") | Some(b".."))
}

/// An empty, `.` or `..` segment between two slashes.
fn is_dot_or_empty(segment: Option<&[u8]>) -> bool {
    matches!(segment, Some(b"") | Some(b".") | Some(b".."))
}

/// Normalises a raw request path (without the query).
pub fn normalise(raw: &str) -> Result<Normalised<'_>, PathError> {
    if !raw.starts_with('/') {
        return Err(PathError::NotOriginForm);
    }
    if !needs_work(raw) {
        return Ok(Normalised {
            path: Cow::Borrowed(raw),
            encoded_slash: false,
        });
    }
    // First pass: decode unreserved escapes, canonicalise the rest, reject the dangerous.
    let bytes = raw.as_bytes();
    // Bytes, not chars: raw UTF-8 is encoded byte by byte, and only ASCII is ever decoded or
    // inserted, so the result is ASCII.
    let mut decoded: Vec<u8> = Vec::with_capacity(raw.len());
    let mut encoded_slash = false;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'\\' => return Err(PathError::Backslash),
            0 => return Err(PathError::Nul),
            b'%' => {
                let (Some(h), Some(l)) = (
                    bytes.get(i + 1).copied().and_then(hex),
                    bytes.get(i + 2).copied().and_then(hex),
                ) else {
                    return Err(PathError::BadEscape);
                };
                let value = h * 16 + l;
                match value {
                    0x00 => return Err(PathError::EncodedNul),
                    b'\\' => return Err(PathError::EncodedBackslash),
                    b'/' => {
                        encoded_slash = true;
                        decoded.extend_from_slice(b"%2F");
                    }
                    b'%' => decoded.extend_from_slice(b"%25"),
                    v if is_unreserved(v) => decoded.push(v),
                    v => push_escape(&mut decoded, v),
                }
                i += 3;
                continue;
            }
            _ if allowed_raw(b) => decoded.push(b),
            _ => push_escape(&mut decoded, b),
        }
        i += 1;
    }
    // `%25` followed by an escape of '.', '/', '\' or NUL decodes, a second time, into
    // something this normalisation exists to catch. Checked on the decoded bytes, so spellings
    // like `%25%32e` (which decode to `%252e`) are caught too.
    if decoded.windows(5).any(|w| {
        w.starts_with(b"%25")
            && matches!((hex(w[3]), hex(w[4])), (Some(h), Some(l)) if matches!(h * 16 + l, b'.' | b'/' | b'\\' | 0))
    }) {
        return Err(PathError::DoubleEncoded);
    }
    let decoded = String::from_utf8(decoded).map_err(|_| PathError::BadEscape)?;
    // Second pass: merge slashes and remove dot segments.
    let trailing_slash =
        decoded.ends_with('/') || decoded.ends_with("/.") || decoded.ends_with("/..");
    let mut segments: Vec<&str> = Vec::new();
    for segment in decoded.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut path = String::with_capacity(decoded.len());
    for segment in &segments {
        path.push('/');
        path.push_str(segment);
    }
    if path.is_empty() || trailing_slash {
        path.push('/');
    }
    Ok(Normalised {
        path: Cow::Owned(path),
        encoded_slash,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The one-pass check agrees with its definition (a byte to escape or decode, `//`,
    /// `/./`, `/../`, a final `/.` or `/..`) on every path of up to five bytes from an
    /// alphabet of the bytes that matter, and on random longer ones.
    #[test]
    fn the_one_pass_check_finds_what_its_definition_finds() {
        fn by_definition(path: &str) -> bool {
            path.bytes().any(|b| b == b'%' || !allowed_raw(b))
                || path.contains("//")
                || path.contains("/./")
                || path.contains("/../")
                || path.ends_with("/.")
                || path.ends_with("/..")
        }
        let alphabet = ["/", ".", "a", "%", " ", "\\", "~"];
        let mut paths = vec![String::new()];
        for _ in 0..5 {
            let longer: Vec<String> = paths
                .iter()
                .flat_map(|p| alphabet.iter().map(move |c| format!("{p}{c}")))
                .collect();
            paths.extend(longer);
        }
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(16);
        for _ in 0..20_000 {
            let len = rng.gen_range(0..24);
            paths.push(
                (0..len)
                    .map(|_| alphabet[rng.gen_range(0..alphabet.len())])
                    .collect(),
            );
        }
        for path in paths {
            let path = format!("/{path}");
            assert_eq!(needs_work(&path), by_definition(&path), "{path:?}");
        }
    }

    fn norm(p: &str) -> String {
        normalise(p).unwrap().path.into_owned()
    }

    #[test]
    fn clean_paths_are_borrowed_unchanged() {
        for p in ["/", "/petstore/v1/pet/1", "/a/b/", "/a.b/c..d/.e"] {
            assert!(
                matches!(normalise(p).unwrap().path, Cow::Borrowed(_)),
                "{p}"
            );
            assert_eq!(norm(p), p);
        }
    }

    #[test]
    fn dot_segments_slashes_and_unreserved_escapes() {
        assert_eq!(norm("/api/./admin"), "/api/admin");
        assert_eq!(norm("/api//admin"), "/api/admin");
        assert_eq!(norm("/api/x/../admin"), "/api/admin");
        assert_eq!(norm("/api/x/%2e%2E/admin"), "/api/admin");
        assert_eq!(norm("/api/x/.%2E/admin"), "/api/admin");
        assert_eq!(norm("/%61dmin"), "/admin");
        assert_eq!(norm("/../../etc"), "/etc");
        assert_eq!(norm("/a/b/.."), "/a/");
        assert_eq!(norm("/a/b/."), "/a/b/");
        assert_eq!(norm("//"), "/");
        assert_eq!(norm("/a%20b/%7e"), "/a%20b/~");
        assert_eq!(norm("/a%3a"), "/a%3A");
        assert_eq!(norm("/a;x/b"), "/a;x/b");
    }

    #[test]
    fn dangerous_escapes_are_rejected_and_encoded_slashes_reported() {
        assert_eq!(normalise("/a\\b"), Err(PathError::Backslash));
        assert_eq!(normalise("/a%5cb"), Err(PathError::EncodedBackslash));
        assert_eq!(normalise("/a%00"), Err(PathError::EncodedNul));
        // Found by the path_router fuzz target: a raw NUL used to become `%00`, a canonical
        // form that normalising again refuses.
        assert_eq!(normalise("//2\0\0\0"), Err(PathError::Nul));
        assert_eq!(
            normalise("/a%252e%252e/admin"),
            Err(PathError::DoubleEncoded)
        );
        assert_eq!(normalise("/a%252F"), Err(PathError::DoubleEncoded));
        assert_eq!(normalise("/a%zz"), Err(PathError::BadEscape));
        assert_eq!(normalise("/a%2"), Err(PathError::BadEscape));
        assert_eq!(normalise("*"), Err(PathError::NotOriginForm));
        let n = normalise("/x%2f..%2fadmin").unwrap();
        assert!(n.encoded_slash);
        assert_eq!(
            n.path, "/x%2F..%2Fadmin",
            "an encoded slash never splits a segment"
        );
        assert_eq!(
            norm("/a%2541"),
            "/a%2541",
            "other %25 escapes stay as they are"
        );
    }

    #[test]
    fn utf8_paths_survive_normalisation() {
        // Found by fuzzing: non-ASCII bytes were turned into one char each.
        assert_eq!(norm("//caf\u{e9}/./x"), "/caf%C3%A9/x");
        assert_eq!(norm("/%2F\u{318}"), "/%2F%CC%98");
        let once = norm("/%2F\u{318}");
        assert_eq!(norm(&once), once);
    }

    /// Issue 10 item 3: raw UTF-8 and its percent-encoded form are one path, and a template
    /// literal takes the same form.
    #[test]
    fn raw_non_ascii_and_other_unsafe_bytes_are_encoded() {
        assert_eq!(
            norm("/geo/st\u{e4}dte/k\u{f6}ln"),
            "/geo/st%C3%A4dte/k%C3%B6ln"
        );
        assert_eq!(norm("/geo/st%c3%a4dte"), "/geo/st%C3%A4dte");
        assert_eq!(norm("/a\"b{c}|d^e`f g"), "/a%22b%7Bc%7D%7Cd%5Ee%60f%20g");
        assert_eq!(
            canonical_literal("st\u{e4}dte"),
            norm("/st\u{e4}dte").trim_start_matches('/')
        );
        assert_eq!(canonical_literal("a%7eb%2fc"), "a~b%2Fc");
        assert_eq!(canonical_literal("100%"), "100%25");
        assert_eq!(canonical_literal("(alg="), "(alg=");
        assert!(matches!(
            normalise("/a;b=c").unwrap().path,
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn normalising_is_idempotent() {
        let samples = [
            "/a/./b/../c//d/%2e/%2E%2e/e%41%7E%20/",
            "/x/%2F/../y",
            "/../a/..//b/./",
            "/%7euser/%2525",
            "/a/b/c/../../../../..",
        ];
        for raw in samples {
            let once = normalise(raw).unwrap().path.into_owned();
            let twice = normalise(&once).unwrap().path.into_owned();
            assert_eq!(once, twice, "{raw}");
        }
    }
}
