//! Express 4's own answers, byte for byte, as pure functions for the pipeline engine.
//!
//! Sources (the versions Express Gateway 1.16.11 installs): Express 4.22 `res.send` and
//! `res.sendStatus` (`lib/response.js`), `etag` 1.8.1 (the `etag fn` Express uses, weak),
//! `finalhandler` 1.3.2 (`createHtmlDocument`, `send`), `encodeurl` 2.0 and `escape-html`
//! 1.0.3; checked against those packages running on Node 20. EG turns `X-Powered-By` off.

use base64::Engine;
use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, ETAG};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use sha1::{Digest, Sha1};

use super::TerminateSpec;

/// A complete answer: status, headers (in the order Express writes them) and body. For a
/// `HEAD` request the caller sends the same head without the body, as Express does.
pub type Answer = (StatusCode, HeaderMap, Bytes);

/// A `terminate` action that cannot run.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TerminateError {
    /// Not a final HTTP status: Node.js refuses codes outside 100-999 and a 1xx cannot end
    /// a response.
    #[error("statusCode {0} is not a final HTTP status (200-999)")]
    BadStatus(u16),
}

/// A ready `terminate` step: its answer is computed once.
#[derive(Debug, Clone)]
pub struct TerminatePolicy {
    answer: Answer,
}

impl TerminatePolicy {
    /// Checks the status and prepares `res.status(statusCode).send(message)`.
    pub fn new(spec: &TerminateSpec) -> Result<Self, TerminateError> {
        let status = StatusCode::from_u16(spec.status)
            .ok()
            .filter(|s| s.as_u16() >= 200)
            .ok_or(TerminateError::BadStatus(spec.status))?;
        Ok(Self {
            answer: express_send(status, &spec.message, "text/html; charset=utf-8"),
        })
    }

    /// The answer (cheap: the body is shared).
    pub fn answer(&self) -> Answer {
        self.answer.clone()
    }
}

/// `res.status(status).send(body)` for a string body when no `Content-Type` was set before:
/// `Content-Type: <content_type>` (`text/html; charset=utf-8` for `send`), `Content-Length`,
/// a weak `ETag` of the body. 204 and 304 drop the type, length and body (the ETag stays);
/// 205 sends `Content-Length: 0` and no body. (Express would answer 304 to a matching
/// `If-None-Match` on a 2xx GET; this does not.)
pub fn express_send(status: StatusCode, body: &str, content_type: &'static str) -> Answer {
    let mut headers = HeaderMap::new();
    let etag = weak_etag(body.as_bytes());
    let mut body = Bytes::copy_from_slice(body.as_bytes());
    match status.as_u16() {
        204 | 304 => body = Bytes::new(),
        205 => {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
            headers.insert(CONTENT_LENGTH, HeaderValue::from(0u32));
            body = Bytes::new();
        }
        _ => {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
            headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
        }
    }
    headers.insert(ETAG, etag);
    (status, headers, body)
}

/// `res.sendStatus(status)`: the status's reason phrase as `text/plain` (`Not Found`), or the
/// number when it has none. Express answers an API endpoint that no pipeline serves with
/// `sendStatus(404)`.
pub fn express_send_status(status: StatusCode) -> Answer {
    let reason = status
        .canonical_reason()
        .map_or_else(|| status.as_u16().to_string(), |reason| reason.to_string());
    express_send(status, &reason, "text/plain; charset=utf-8")
}

/// The `etag` package's weak tag of a body: `W/"<length in hex>-<first 27 characters of the
/// base64 SHA-1>"`.
pub fn weak_etag(body: &[u8]) -> HeaderValue {
    let digest = Sha1::digest(body);
    let hash = base64::engine::general_purpose::STANDARD.encode(digest);
    let hash = hash.get(..27).unwrap_or(&hash);
    HeaderValue::from_str(&format!("W/\"{:x}-{hash}\"", body.len())).unwrap_or(
        HeaderValue::from_static("W/\"0-2jmj7l5rSw0yVb/vlWAYkK/YBwk\""),
    )
}

/// Express's final handler for a request no route answered (`finalhandler` 1.3): `404`, an
/// HTML document with `<pre>Cannot <METHOD> <path></pre>`, `Content-Security-Policy:
/// default-src 'none'`, `X-Content-Type-Options: nosniff`, `text/html; charset=utf-8` and
/// its length. `target` is the raw request target (origin or absolute form, query included);
/// the path is its pathname, percent-encoded as `encodeurl` does (existing `%XX` kept, a
/// stray `%` made `%25`, characters outside the URL set encoded) and then HTML-escaped.
pub fn express_not_found(method: &str, target: &str) -> Answer {
    let message = format!("Cannot {method} {}", encode_url(pathname(target)));
    final_handler(StatusCode::NOT_FOUND, &message)
}

/// finalhandler's answer to a route parameter that does not URL-decode: 400, the same
/// document and headers as [`express_not_found`] with `Bad Request` (express 4.22.3,
/// `NODE_ENV=production`).
pub fn express_bad_request() -> Answer {
    final_handler(StatusCode::BAD_REQUEST, "Bad Request")
}

/// finalhandler's answer to an error a policy threw: 500 `Internal Server Error` in the same
/// document as [`express_not_found`] (e.g. EG's `stripPath` on a `pathRegex` route).
pub fn express_internal_error() -> Answer {
    final_handler(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
}

/// finalhandler's answer to an error with a status (`http-errors`, as body-parser raises them):
/// the same document as [`express_not_found`] with the status's reason phrase
/// (`Payload Too Large`, `Unsupported Media Type`), as with `NODE_ENV=production`.
pub fn express_http_error(status: StatusCode) -> Answer {
    final_handler(status, status.canonical_reason().unwrap_or("Error"))
}

/// finalhandler's HTML error document for `message`, with its two security headers.
fn final_handler(status: StatusCode, message: &str) -> Answer {
    let body = html_document(message);
    let mut headers = HeaderMap::new();
    headers.insert(
        HeaderName::from_static("content-security-policy"),
        HeaderValue::from_static("default-src 'none'"),
    );
    headers.insert(
        HeaderName::from_static("x-content-type-options"),
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
    (status, headers, Bytes::from(body))
}

/// `parseurl.original(req).pathname`: the path of an origin-form target up to `?` or `#`;
/// the path of an absolute-form target (`/` when it has none); `*` as is.
fn pathname(target: &str) -> &str {
    let cut = |s: &'_ str| -> usize { s.find(['?', '#']).unwrap_or(s.len()) };
    if target.starts_with('/') || target == "*" {
        let end = cut(target);
        return target.get(..end).unwrap_or(target);
    }
    // Absolute form: scheme://authority/path?query
    let Some(after_scheme) = target.find("://").and_then(|i| target.get(i + 3..)) else {
        return target.get(..cut(target)).unwrap_or(target);
    };
    let after_scheme = after_scheme
        .get(..cut(after_scheme))
        .unwrap_or(after_scheme);
    match after_scheme.find('/') {
        Some(slash) => after_scheme.get(slash..).unwrap_or("/"),
        None => "/",
    }
}

/// `encodeurl` 2.0: characters outside `! #-; = ?-_ a-z | ~` are percent-encoded (UTF-8,
/// upper-case hex) and a `%` not starting a `%XX` escape becomes `%25`.
fn encode_url(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    for (i, c) in path.char_indices() {
        let allowed = matches!(c,
            '!' | '#'..=';' | '=' | '?'..='_' | 'a'..='z' | '|' | '~');
        if c == '%' {
            let escape = bytes
                .get(i + 1..i + 3)
                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit));
            out.push_str(if escape { "%" } else { "%25" });
        } else if allowed {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

/// `finalhandler`'s `createHtmlDocument`: the message HTML-escaped (`escape-html`), line
/// breaks as `<br>`, double spaces as ` &nbsp;`, in a minimal document.
fn html_document(message: &str) -> String {
    let mut escaped = String::with_capacity(message.len());
    for c in message.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            '\n' => escaped.push_str("<br>"),
            c => escaped.push(c),
        }
    }
    let escaped = escaped.replace("  ", " &nbsp;");
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Error</title>\n</head>\n<body>\n<pre>{escaped}</pre>\n</body>\n</html>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(h: &HeaderMap) -> Vec<String> {
        h.iter()
            .map(|(k, v)| format!("{}: {}", k, v.to_str().unwrap()))
            .collect()
    }

    /// Observed: `res.status(401).send('Unauthorized')` under Express 4.22.3.
    #[test]
    fn send_of_a_string_is_html_with_length_and_weak_etag() {
        let (status, headers, body) = express_send(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "text/html; charset=utf-8",
        );
        assert_eq!(status, 401);
        assert_eq!(
            lines(&headers),
            [
                "content-type: text/html; charset=utf-8",
                "content-length: 12",
                "etag: W/\"c-dAuDFQrdjS3hezqxDTNgW7AOlYk\"",
            ]
        );
        assert_eq!(&body[..], b"Unauthorized");
    }

    #[test]
    fn terminate_defaults_and_special_statuses() {
        let (status, headers, body) = TerminatePolicy::new(&TerminateSpec {
            status: 200,
            message: "Terminated".into(),
        })
        .unwrap()
        .answer();
        assert_eq!(status, 200);
        assert_eq!(headers["etag"], "W/\"a-oYSPQux4rud7dI7IgvblUbGN1uU\"");
        assert_eq!(&body[..], b"Terminated");
        let default = TerminatePolicy::new(&TerminateSpec::default())
            .unwrap()
            .answer();
        assert_eq!(default.0, 400);
        // 204: type, length and body dropped, the ETag of the message kept.
        let (_, headers, body) =
            express_send(StatusCode::NO_CONTENT, "gone", "text/html; charset=utf-8");
        assert_eq!(
            lines(&headers),
            ["etag: W/\"4-pt/eqjpEpMUtRChIR9cWCJK0AX4\""]
        );
        assert!(body.is_empty());
        // 205: Content-Length 0, no body.
        let (_, headers, body) = express_send(
            StatusCode::RESET_CONTENT,
            "gone",
            "text/html; charset=utf-8",
        );
        assert_eq!(
            lines(&headers),
            [
                "content-type: text/html; charset=utf-8",
                "content-length: 0",
                "etag: W/\"4-pt/eqjpEpMUtRChIR9cWCJK0AX4\"",
            ]
        );
        assert!(body.is_empty());
        // An empty message and a long one.
        let (_, headers, _) = express_send(StatusCode::BAD_REQUEST, "", "text/html; charset=utf-8");
        assert_eq!(headers["etag"], "W/\"0-2jmj7l5rSw0yVb/vlWAYkK/YBwk\"");
        assert_eq!(headers["content-length"], "0");
        let long = "x".repeat(1200);
        let (_, headers, _) =
            express_send(StatusCode::BAD_REQUEST, &long, "text/html; charset=utf-8");
        assert_eq!(headers["etag"], "W/\"4b0-QSMHiHADaKkg+0QNlPxj8r/5AWU\"");
        for bad in [0, 99, 100, 199, 1000] {
            assert_eq!(
                TerminatePolicy::new(&TerminateSpec {
                    status: bad,
                    message: String::new()
                })
                .unwrap_err(),
                TerminateError::BadStatus(bad)
            );
        }
    }

    #[test]
    fn send_status_404_is_plain_not_found() {
        let (status, headers, body) = express_send_status(StatusCode::NOT_FOUND);
        assert_eq!(status, 404);
        assert_eq!(
            lines(&headers),
            [
                "content-type: text/plain; charset=utf-8",
                "content-length: 9",
                "etag: W/\"9-0gXL1ngzMqISxa6S1zx3F4wtLyg\"",
            ]
        );
        assert_eq!(&body[..], b"Not Found");
    }

    #[test]
    fn final_handler_404_document_and_headers() {
        let (status, headers, body) = express_not_found("GET", "/fixed");
        assert_eq!(status, 404);
        assert_eq!(
            lines(&headers),
            [
                "content-security-policy: default-src 'none'",
                "x-content-type-options: nosniff",
                "content-type: text/html; charset=utf-8",
                "content-length: 144",
            ]
        );
        assert_eq!(
            std::str::from_utf8(&body).unwrap(),
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Error</title>\n</head>\n<body>\n<pre>Cannot GET /fixed</pre>\n</body>\n</html>\n"
        );
    }

    /// Each pair observed on Express 4.22.3 / finalhandler 1.3.2 (raw request lines).
    #[test]
    fn final_handler_path_encoding_and_escaping() {
        let pre = |method: &str, target: &str| {
            let (_, headers, body) = express_not_found(method, target);
            let text = String::from_utf8(body.to_vec()).unwrap();
            assert_eq!(headers["content-length"], text.len().to_string().as_str());
            let start = text.find("<pre>").unwrap() + 5;
            let end = text.find("</pre>").unwrap();
            text[start..end].to_string()
        };
        for (target, expected) in [
            ("/nothing/here?x=1&y=<", "Cannot GET /nothing/here"),
            ("/a%zz%4", "Cannot GET /a%25zz%254"),
            ("/a{b}", "Cannot GET /a%7Bb%7D"),
            ("/a'b&c", "Cannot GET /a&#39;b&amp;c"),
            ("/a|b^c", "Cannot GET /a|b^c"),
            ("/a`b", "Cannot GET /a%60b"),
            ("/a\\b", "Cannot GET /a\\b"),
            ("/a\"b", "Cannot GET /a%22b"),
            ("/a<b>", "Cannot GET /a%3Cb%3E"),
            ("/a%", "Cannot GET /a%25"),
            ("/a%%41", "Cannot GET /a%25%41"),
            (
                "/a%2Fb;c=d@e:f$g,h+i!j*k(l)m",
                "Cannot GET /a%2Fb;c=d@e:f$g,h+i!j*k(l)m",
            ),
            ("/x?<b>", "Cannot GET /x"),
            ("http://h.com/abs/p?q=1", "Cannot GET /abs/p"),
            ("http://h.com", "Cannot GET /"),
            ("/caf\u{e9}", "Cannot GET /caf%C3%A9"),
        ] {
            assert_eq!(pre("GET", target), expected, "{target}");
        }
        assert_eq!(pre("OPTIONS", "*"), "Cannot OPTIONS *");
        assert_eq!(pre("DELETE", "/k2"), "Cannot DELETE /k2");
    }
}
