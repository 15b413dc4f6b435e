//! Express Gateway routing: which API endpoint (`apiEndpoints` of `gateway.config.yml`) a
//! request belongs to, exactly as Express Gateway 1.16 on Express 4 decides it, and the
//! `stripPath` arithmetic of its proxy policy.
//!
//! # How Express Gateway routes (EG `lib/gateway/pipelines.js`)
//!
//! Endpoints are grouped by host (`hostRegex`, else `host`, else `*`), groups in order of first
//! appearance; each group is one Express router, mounted for every host (`*` or empty) or behind
//! the `vhost` package. Inside a group each path of each endpoint is one Express *route*
//! (`router.all(path)`, or one route per listed method), in declaration order. The first route
//! whose host, path and method match gets the request.
//!
//! # Paths (Express 4.22, path-to-regexp 0.1.13)
//!
//! A route path is compiled by path-to-regexp 0.1.x with `strict: false`, `end: true`,
//! case-insensitive: `*` is `(.*)`, `:name` is one segment `([^/]+?)` (with `?`, `*`, a custom
//! `(re)` and `.:format` variants), one trailing `/` is optional, the rest of the path is a
//! regular expression (`+`, `?`, `(...)` keep their regex meaning, as in Express 4). The
//! expression is anchored (exact route, not a prefix) and never sees the query string.
//! [`ExpressPath::compile`] reproduces that expression; the common shapes (literals, whole-segment
//! `:params`, a final `*`) run on a small matcher without a regex, the rest on [`JsRegex`].
//!
//! Express matches the *raw* pathname (`parseurl(req).pathname`, `Layer.match`), then
//! URL-decodes every captured group (`decode_param`); a group that does not decode (a bad
//! escape, invalid UTF-8) fails the request with 400. This router does the same on the path it
//! is given ([`Lookup::MalformedParam`]). The gateway gives it the *normalised* path
//! ([`crate::path::normalise`]): dot segments resolved, `//` merged, escapes of unreserved
//! characters decoded — a deliberate difference from Express (which would route
//! `/wms/../k2/x` to `/wms*`), so that no spelling of a path reaches a pipeline its canonical
//! form would not. `docs/express-gateway-routing.md` lists the differences.
//!
//! # Hosts (vhost 3.0.2)
//!
//! A `host` pattern is a `vhost` string: each `*` is one whole DNS label (`[^.]+`), the match is
//! anchored and case-insensitive, the port is ignored (the host name is the `Host` header up to
//! its first `:` after an IPv6 `[...]`). `hostRegex` is `new RegExp(source)` run by `vhost`: it
//! is anchored with `^`/`$` unless already anchored, and case-insensitive. A request without a
//! `Host` header matches only the `*` group.
//!
//! # Use
//!
//! ```
//! use mgw_runtime::model::express::{ExpressRoute, HostPattern, PathPattern};
//! use mgw_runtime::router::express::{
//!     join_upstream, stripped_target, ExpressRouter, Lookup, RouteInput,
//! };
//!
//! let routes = vec![ExpressRoute {
//!     api_endpoint: "wms".into(),
//!     host: HostPattern::Any,
//!     path: PathPattern::Express("/wms*".into()),
//!     methods: vec![],
//!     scopes: vec![],
//!     pipeline: Some(0),
//! }];
//! // At start-up, with `${VAR}` settings in host patterns already substituted:
//! let router = ExpressRouter::build(routes.iter().map(RouteInput::from)).unwrap();
//! // Per request: method, Host header, normalised path (no query).
//! let Lookup::Route(m) = router.resolve("GET", Some("api.example.com"), "/wms/foo") else {
//!     panic!()
//! };
//! assert_eq!(m.route, 0);
//! // The proxy step with `stripPath: true`, service endpoint http://mapserver/cgi-bin/mapserv:
//! let target = stripped_target("/wms/foo?SERVICE=WMS", m.strip.unwrap());
//! assert_eq!(join_upstream("/cgi-bin/mapserv", &target), "/cgi-bin/mapserv/foo?SERVICE=WMS");
//! ```

use std::borrow::Cow;
use std::fmt::Write as _;

use super::jsregex::{JsRegex, JsRegexError};
use crate::model::express::{ExpressRoute, HostPattern, PathPattern};

/// Why a route cannot be built. `route` is the index in the list given to
/// [`ExpressRouter::build`] (the model's `routes`), for the toolkit to name the file and line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpressRouteError {
    /// A path that cannot be run with Express's meaning.
    #[error("route path '{path}': {error}")]
    Path {
        /// Index of the route.
        route: usize,
        /// The path as written.
        path: String,
        /// Why.
        #[source]
        error: PathError,
    },
    /// A `host` pattern that cannot be used.
    #[error("host pattern '{host}': {error}")]
    Host {
        /// Index of the route.
        route: usize,
        /// The pattern as written (after `${VAR}` substitution).
        host: String,
        /// Why.
        #[source]
        error: VhostError,
    },
    /// A `pathRegex` or `hostRegex` that cannot be used.
    #[error("{0}")]
    Regex(#[source] RegexAt),
}

/// Why an Express route path cannot be compiled ([`ExpressPath::compile`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// A non-ASCII character: Express compares route paths with the raw request path, where
    /// such a character only appears percent-encoded, so the route could never match.
    #[error("the character '{character}' is not ASCII; requests carry it percent-encoded, so write it that way ('{encoded}')")]
    NonAscii {
        /// The character.
        character: char,
        /// Its percent-encoded UTF-8.
        encoded: String,
    },
    /// Express's expression for the path needs a construct `regex-lite` lacks (a parameter
    /// right after a literal of several characters in one segment, such as `/a-x-:b`, makes a
    /// lookahead).
    #[error("Express turns it into the regular expression '{expression}', which uses {what}; this form is not supported: use whole-segment parameters ('/a/:b') or 'pathRegex'")]
    Unsupported {
        /// path-to-regexp's expression.
        expression: String,
        /// The construct.
        what: &'static str,
    },
    /// Express's expression is not a valid JavaScript regular expression: Express Gateway
    /// would fail to start.
    #[error("Express turns it into the invalid regular expression '{expression}' ({what}) and would refuse to start; escape regex characters such as '(' with '\\\\'")]
    Invalid {
        /// path-to-regexp's expression.
        expression: String,
        /// What is wrong.
        what: &'static str,
    },
    /// The expression exceeds the engine's size limits.
    #[error("its regular expression '{expression}' is too large: {message}")]
    TooLarge {
        /// path-to-regexp's expression.
        expression: String,
        /// The engine's message.
        message: String,
    },
}

/// A regular expression of a route that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} of route {route}: {error}")]
pub struct RegexAt {
    /// Index of the route.
    pub route: usize,
    /// `pathRegex` or `hostRegex`.
    pub field: &'static str,
    /// Why.
    pub error: JsRegexError,
}

impl ExpressRouteError {
    /// Index of the route at fault.
    pub fn route(&self) -> usize {
        match self {
            ExpressRouteError::Path { route, .. } | ExpressRouteError::Host { route, .. } => *route,
            ExpressRouteError::Regex(r) => r.route,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Paths
// ---------------------------------------------------------------------------------------------

/// One piece of a route path on the regex-free matcher.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    /// ASCII text, compared case-insensitively.
    Lit(Box<str>),
    /// `/:name`: a `/` and one or more characters other than `/`, up to the next `/` or the
    /// end (the next piece, if any, starts with `/`).
    Param,
    /// `*` as the last piece: anything.
    Rest,
}

#[derive(Debug, Clone)]
enum PathMatcher {
    /// Literals, whole-segment parameters and a final `*`, then an optional `/`.
    Pieces(Box<[Piece]>),
    /// Any other form (path-to-regexp's expression) or a `pathRegex`.
    Regex(JsRegex),
}

/// A compiled route path: an Express 4 path or a `pathRegex`.
#[derive(Debug, Clone)]
pub struct ExpressPath {
    matcher: PathMatcher,
}

/// What a path test found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathMatch {
    /// No match.
    No,
    /// A match, every captured group decodes.
    Yes,
    /// A match with a captured group that `decodeURIComponent` refuses: Express answers 400.
    Malformed,
}

impl ExpressPath {
    /// Compiles an Express 4 route path exactly as path-to-regexp 0.1.13 does (`strict: false`,
    /// `end: true`, case-insensitive).
    ///
    /// Errors: a non-ASCII character (Express compares it with the raw, percent-encoded path,
    /// where it can never appear: write it percent-encoded), a path whose expression is not a
    /// valid JavaScript regular expression (Express would fail to start), or one that needs a
    /// construct [`JsRegex`] refuses (a `:param` right after a literal of more than one
    /// character, such as `/a-x:b`, makes a lookahead).
    pub fn compile(path: &str) -> Result<Self, PathError> {
        if let Some(c) = path.chars().find(|c| !c.is_ascii()) {
            return Err(PathError::NonAscii {
                character: c,
                encoded: utf8_escapes(c),
            });
        }
        if let Some(pieces) = fast_pieces(path) {
            return Ok(Self {
                matcher: PathMatcher::Pieces(pieces.into_boxed_slice()),
            });
        }
        let regex = JsRegex::with_flags(&path_to_regexp_for(path, true), true).map_err(|e| {
            let expression = path_to_regexp(path);
            match e {
                JsRegexError::Unsupported { what, .. } => {
                    PathError::Unsupported { expression, what }
                }
                JsRegexError::Syntax { what, .. } => PathError::Invalid { expression, what },
                JsRegexError::Engine { message, .. } => PathError::TooLarge {
                    expression,
                    message,
                },
            }
        })?;
        Ok(Self {
            matcher: PathMatcher::Regex(regex),
        })
    }

    /// Compiles a `pathRegex`: `new RegExp(source)`, no flags, *not* anchored (Express runs
    /// `regexp.exec(pathname)`, so `/api` matches `/v1/api/x`), case-sensitive.
    pub fn regex(source: &str) -> Result<Self, JsRegexError> {
        Ok(Self {
            matcher: PathMatcher::Regex(JsRegex::new(source)?),
        })
    }

    /// Compiles a model path pattern.
    pub fn from_pattern(pattern: &PathPattern, route: usize) -> Result<Self, ExpressRouteError> {
        match pattern {
            PathPattern::Express(p) => Self::compile(p).map_err(|error| ExpressRouteError::Path {
                route,
                path: p.clone(),
                error,
            }),
            PathPattern::Regex(r) => Self::regex(r).map_err(|error| {
                ExpressRouteError::Regex(RegexAt {
                    route,
                    field: "pathRegex",
                    error,
                })
            }),
        }
    }

    /// True when the regex-free matcher runs this path (for tests and benchmarks).
    pub fn is_fast(&self) -> bool {
        matches!(self.matcher, PathMatcher::Pieces(_))
    }

    /// Tests a request path (without the query string; anything from a `?` on is ignored).
    pub fn test(&self, path: &str) -> PathMatch {
        self.test_path(path.split_once('?').map_or(path, |(p, _)| p))
    }

    /// [`ExpressPath::test`] on a path known to have no query.
    fn test_path(&self, path: &str) -> PathMatch {
        match &self.matcher {
            PathMatcher::Pieces(pieces) => match_pieces(pieces, path),
            PathMatcher::Regex(re) => match re.match_groups(path, decodes) {
                None => PathMatch::No,
                Some(true) => PathMatch::Yes,
                Some(false) => PathMatch::Malformed,
            },
        }
    }

    /// True when the path matches (whatever its groups decode to).
    pub fn is_match(&self, path: &str) -> bool {
        self.test(path) != PathMatch::No
    }
}

fn utf8_escapes(c: char) -> String {
    let mut buf = [0u8; 4];
    let mut s = String::new();
    for b in c.encode_utf8(&mut buf).bytes() {
        let _ = write!(s, "%{b:02X}");
    }
    s
}

/// Characters that keep a regex meaning when path-to-regexp copies them into its expression.
fn is_regex_meta(b: u8) -> bool {
    matches!(
        b,
        b'\\' | b'^' | b'$' | b'|' | b'?' | b'+' | b'(' | b')' | b'[' | b']' | b'{' | b'}'
    )
}

/// The pieces of a path in the regex-free shape, or `None` when it needs the regex.
fn fast_pieces(path: &str) -> Option<Vec<Piece>> {
    let b = path.as_bytes();
    let mut pieces = Vec::new();
    let mut lit = String::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if is_regex_meta(c) {
            return None;
        }
        if c == b'*' {
            if i + 1 != b.len() {
                return None;
            }
            if !lit.is_empty() {
                pieces.push(Piece::Lit(std::mem::take(&mut lit).into()));
            }
            pieces.push(Piece::Rest);
            return Some(pieces);
        }
        if c == b':' && b.get(i + 1).is_some_and(|&n| is_word(n)) {
            // Only `/:name` closing a segment: '/' before, '/' or the end after.
            if !lit.ends_with('/') {
                return None;
            }
            lit.pop();
            let mut j = i + 1;
            while j < b.len() && is_word(b[j]) {
                j += 1;
            }
            if j < b.len() && b[j] != b'/' {
                return None;
            }
            if !lit.is_empty() {
                pieces.push(Piece::Lit(std::mem::take(&mut lit).into()));
            }
            pieces.push(Piece::Param);
            i = j;
            continue;
        }
        lit.push(char::from(c));
        i += 1;
    }
    // The last '/' is optional and '/?' follows anyway: `/a/` and `/a` compile alike.
    if lit.ends_with('/') {
        lit.pop();
    }
    if !lit.is_empty() {
        pieces.push(Piece::Lit(lit.into()));
    }
    Some(pieces)
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn match_pieces(pieces: &[Piece], path: &str) -> PathMatch {
    let mut rest = path;
    // Express decodes every group after the whole expression matched.
    let mut malformed = false;
    for piece in pieces {
        match piece {
            Piece::Lit(text) => {
                let Some(head) = rest.get(..text.len()) else {
                    return PathMatch::No;
                };
                if !head.eq_ignore_ascii_case(text) {
                    return PathMatch::No;
                }
                rest = rest.get(text.len()..).unwrap_or("");
            }
            Piece::Param => {
                let Some(after) = rest.strip_prefix('/') else {
                    return PathMatch::No;
                };
                let end = after.find('/').unwrap_or(after.len());
                if end == 0 {
                    return PathMatch::No;
                }
                let (value, tail) = after.split_at(end);
                malformed |= !decodes(value);
                rest = tail;
            }
            Piece::Rest => {
                malformed |= !decodes(rest);
                rest = "";
                break;
            }
        }
    }
    if !(rest.is_empty() || rest == "/") {
        PathMatch::No
    } else if malformed {
        PathMatch::Malformed
    } else {
        PathMatch::Yes
    }
}

/// The regular expression path-to-regexp 0.1.13 makes of an Express route path with
/// `strict: false`, `end: true` (its flags are `i`). A re-implementation of its documented
/// transformation, character by character, including its `backtrack` rule for a parameter
/// that follows a literal in the same segment.
pub fn path_to_regexp(path: &str) -> String {
    path_to_regexp_for(path, false)
}

/// [`path_to_regexp`], optionally (`runnable`) writing the lookahead `(?:(?!/|X).)+?` of a
/// one-character backtrack `X` as the equivalent class `[^/X\n\r\u2028\u2029]+?`, which
/// [`JsRegex`] can run.
fn path_to_regexp_for(path: &str, runnable: bool) -> String {
    let b = path.as_bytes();
    let mut out = String::with_capacity(path.len() + 16);
    let mut backtrack = String::new();
    // `pos` is path-to-regexp's own cursor, advanced as it does (not always to the match end).
    let mut pos: usize = 0;
    let mut i = 0;
    let slice = |from: usize, to: usize| -> &str {
        if from >= to {
            ""
        } else {
            path.get(from..to).unwrap_or("")
        }
    };
    while i < b.len() {
        let c = b[i];
        // `\\.`: an escape, kept as it is.
        if c == b'\\' && i + 1 < b.len() {
            let m = slice(i, i + 2);
            backtrack.push_str(m);
            out.push_str(m);
            pos += 2;
            i += 2;
            continue;
        }
        // `(\/)?(\.)?:(\w+)(\(.*?\))?(\*)?(\?)?`
        if let Some(param) = parse_param(b, i) {
            let offset = i;
            if param.slash || param.format {
                backtrack.clear();
            } else {
                backtrack.push_str(slice(pos, offset));
            }
            pos = offset + param.len;
            let format = if param.format { "\\." } else { "" };
            let capture = match param.capture {
                Some((s, e)) => replace_first_escape_or_star(slice(s, e)),
                None if !backtrack.is_empty() => {
                    match backtrack_class(&backtrack).filter(|_| runnable) {
                        Some(extra) => format!("([^/{extra}\\n\\r\\u2028\\u2029]+?)"),
                        None => format!("((?:(?!/|{backtrack}).)+?)"),
                    }
                }
                None => format!("([^/{format}]+?)"),
            };
            let _ = write!(
                out,
                "(?:{format}{slash}{capture}{star}){optional}",
                slash = if param.slash { "/" } else { "" },
                star = if param.star {
                    format!("((?:[/{format}].+?)?)")
                } else {
                    String::new()
                },
                optional = if param.optional { "?" } else { "" },
            );
            backtrack.clear();
            i += param.len;
            continue;
        }
        match c {
            b'.' => {
                backtrack.push_str("\\.");
                out.push_str("\\.");
                pos += 1;
                i += 1;
            }
            b'*' => {
                backtrack.push_str(slice(pos, i));
                pos = i + 1;
                backtrack.clear();
                out.push_str("(.*)");
                i += 1;
            }
            b'/' if b.get(i + 1) == Some(&b'(') => {
                backtrack.push_str(slice(pos, i));
                pos = i + 2;
                backtrack.push('/');
                out.push_str("/(?:");
                i += 2;
            }
            _ => {
                // Copied as it is (path is ASCII: checked by the caller).
                out.push(char::from(c));
                i += 1;
            }
        }
    }
    if out.ends_with('/') {
        out.push('?');
    } else {
        out.push_str("/?");
    }
    format!("^{out}$")
}

struct Param {
    slash: bool,
    format: bool,
    capture: Option<(usize, usize)>,
    star: bool,
    optional: bool,
    len: usize,
}

fn parse_param(b: &[u8], at: usize) -> Option<Param> {
    // Try with the slash (if any), then without: the regex backtracks the optional groups.
    let try_from = |start: usize, slash: bool| -> Option<Param> {
        let mut k = start;
        let mut format = false;
        if slash {
            if b.get(k) != Some(&b'/') {
                return None;
            }
            k += 1;
        }
        if b.get(k) == Some(&b'.') && b.get(k + 1) == Some(&b':') {
            format = true;
            k += 1;
        }
        if b.get(k) != Some(&b':') {
            return None;
        }
        k += 1;
        let name_start = k;
        while b.get(k).is_some_and(|&c| is_word(c)) {
            k += 1;
        }
        if k == name_start {
            return None;
        }
        let mut capture = None;
        if b.get(k) == Some(&b'(') {
            if let Some(close) = b[k + 1..].iter().position(|&c| c == b')') {
                capture = Some((k, k + 1 + close + 1));
                k = k + 1 + close + 1;
            }
        }
        let star = b.get(k) == Some(&b'*');
        if star {
            k += 1;
        }
        let optional = b.get(k) == Some(&b'?');
        if optional {
            k += 1;
        }
        Some(Param {
            slash,
            format,
            capture,
            star,
            optional,
            len: k - at,
        })
    };
    if b.get(at) == Some(&b'/') {
        try_from(at, true)
    } else {
        try_from(at, false)
    }
}

/// What `(?:(?!/|X).)` excludes besides `/`, as class members, when a class can say it: a
/// backtrack `X` of one literal character `c` excludes `c`; one that starts with a literal `/`
/// (and has no `|`) excludes nothing more, since `/` already is. `None`: it needs the lookahead.
fn backtrack_class(backtrack: &str) -> Option<String> {
    if backtrack.starts_with('/') && !backtrack.contains('|') {
        return Some(String::new());
    }
    let mut it = backtrack.chars();
    let c = match (it.next(), it.next(), it.next()) {
        (Some(c), None, None) if !is_regex_meta(c as u8) && c != '.' && c != '*' => c,
        (Some('\\'), Some(c), None) if c.is_ascii_punctuation() => c,
        _ => return None,
    };
    Some(if c.is_ascii_alphanumeric() {
        c.to_string()
    } else {
        format!("\\{c}")
    })
}

/// `capture.replace(/\\.|\*/, m => m === '*' ? '(.*)' : m)`: only the first escape-or-star.
fn replace_first_escape_or_star(capture: &str) -> String {
    let b = capture.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            return capture.to_owned();
        }
        if b[i] == b'*' {
            return format!("{}(.*){}", &capture[..i], &capture[i + 1..]);
        }
        i += 1;
    }
    capture.to_owned()
}

/// Whether `path` matches the plain Express route path `route` (no parameters or wildcards):
/// equal ignoring ASCII case, with one optional trailing slash (Express 4's defaults).
pub fn same_route_path(route: &str, path: &str) -> bool {
    let route = route
        .strip_suffix('/')
        .filter(|r| !r.is_empty())
        .unwrap_or(route);
    let path = path
        .strip_suffix('/')
        .filter(|p| !p.is_empty())
        .unwrap_or(path);
    route.eq_ignore_ascii_case(path)
}

/// `decodeURIComponent` succeeds: every `%` starts `%XX`, and the decoded bytes are UTF-8.
pub fn decodes(s: &str) -> bool {
    let b = s.as_bytes();
    if !b.contains(&b'%') {
        return true;
    }
    let mut i = 0;
    // Expected continuation bytes and the allowed range of the next one.
    let mut need = 0u8;
    let mut lo = 0x80u8;
    let mut hi = 0xBFu8;
    while i < b.len() {
        let byte = if b[i] == b'%' {
            let (Some(h), Some(l)) = (
                b.get(i + 1).and_then(|&c| char::from(c).to_digit(16)),
                b.get(i + 2).and_then(|&c| char::from(c).to_digit(16)),
            ) else {
                return false;
            };
            i += 3;
            (h * 16 + l) as u8
        } else {
            let c = b[i];
            i += 1;
            if need > 0 {
                return false;
            }
            if c >= 0x80 {
                // Raw UTF-8 of the &str: skip the whole character.
                while i < b.len() && (b[i] & 0xC0) == 0x80 {
                    i += 1;
                }
            }
            continue;
        };
        if need > 0 {
            if byte < lo || byte > hi {
                return false;
            }
            need -= 1;
            lo = 0x80;
            hi = 0xBF;
            continue;
        }
        match byte {
            0x00..=0x7F => {}
            0xC2..=0xDF => need = 1,
            0xE0 => (need, lo) = (2, 0xA0),
            0xE1..=0xEC | 0xEE..=0xEF => need = 2,
            0xED => (need, hi) = (2, 0x9F),
            0xF0 => (need, lo) = (3, 0x90),
            0xF1..=0xF3 => need = 3,
            0xF4 => (need, hi) = (3, 0x8F),
            _ => return false,
        }
    }
    need == 0
}

// ---------------------------------------------------------------------------------------------
// Hosts
// ---------------------------------------------------------------------------------------------

/// The host name `vhost` 3.0.2 tests: the `Host` header up to its first `:` (after the `]` of
/// an IPv6 literal).
pub fn host_name(host_header: &str) -> &str {
    let from = if host_header.starts_with('[') {
        host_header.find(']').map_or(0, |p| p + 1)
    } else {
        0
    };
    match host_header.get(from..).and_then(|t| t.find(':')) {
        Some(p) => &host_header[..from + p],
        None => host_header,
    }
}

/// Why a `host` (vhost) pattern cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VhostError {
    /// Non-ASCII: `Host` carries internationalised names in their punycode form, so the
    /// pattern could never match.
    #[error("host names reach the gateway in their ASCII (punycode, 'xn--') form: write the pattern that way")]
    NonAscii,
}

/// A compiled `host` / `hostRegex`.
#[derive(Debug, Clone)]
pub enum HostMatcher {
    /// Every request, with or without `Host`.
    Any,
    /// A vhost string: labels of literal text and `*` (one or more characters other than `.`),
    /// compared case-insensitively.
    Vhost(Box<[Box<str>]>),
    /// `hostRegex`, anchored, case-insensitive.
    Regex(JsRegex),
}

impl HostMatcher {
    /// Compiles a `vhost` pattern (after `${VAR}` substitution). `*` and the empty string
    /// mean every host, as in EG.
    ///
    /// Errors: a non-ASCII pattern (`Host` carries the punycode `xn--` form of an
    /// internationalised name: write that).
    pub fn vhost(pattern: &str) -> Result<Self, VhostError> {
        if pattern.is_empty() || pattern == "*" {
            return Ok(HostMatcher::Any);
        }
        if !pattern.is_ascii() {
            return Err(VhostError::NonAscii);
        }
        Ok(HostMatcher::Vhost(
            pattern.split('.').map(Box::from).collect(),
        ))
    }

    /// Compiles a `hostRegex` as `vhost` does: `^` added unless the source starts with one,
    /// `$` added unless it ends with an unescaped one, case-insensitive. An empty source means
    /// every host (EG falls back to `host`, default `*`).
    pub fn regex(source: &str) -> Result<Self, JsRegexError> {
        if source.is_empty() {
            return Ok(HostMatcher::Any);
        }
        let mut s = String::with_capacity(source.len() + 2);
        if !source.starts_with('^') {
            s.push('^');
        }
        s.push_str(source);
        if !ends_with_unescaped_dollar(source) {
            s.push('$');
        }
        Ok(HostMatcher::Regex(JsRegex::with_flags(&s, true)?))
    }

    /// Tests a request's `Host` header (`None` when absent).
    pub fn matches(&self, host_header: Option<&str>) -> bool {
        match self {
            HostMatcher::Any => true,
            HostMatcher::Vhost(labels) => {
                let Some(h) = host_header else { return false };
                let name = host_name(h);
                if name.is_empty() {
                    return false;
                }
                let mut parts = name.split('.');
                for label in labels.iter() {
                    match parts.next() {
                        Some(part) if label_matches(label.as_bytes(), part.as_bytes()) => {}
                        _ => return false,
                    }
                }
                parts.next().is_none()
            }
            HostMatcher::Regex(re) => match host_header {
                Some(h) => {
                    let name = host_name(h);
                    !name.is_empty() && re.is_match(name)
                }
                None => false,
            },
        }
    }
}

fn ends_with_unescaped_dollar(s: &str) -> bool {
    let Some(body) = s.strip_suffix('$') else {
        return false;
    };
    body.bytes().rev().take_while(|&b| b == b'\\').count() % 2 == 0
}

/// One label of a vhost pattern against one label of a host: `*` is one or more characters,
/// the rest is compared ASCII case-insensitively. Linear-time wildcard matching (the classic
/// greedy algorithm with one backtrack point), with each `*` first taking one character.
fn label_matches(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            // `*` needs one character: take it now, then remember where more may go.
            t += 1;
            p += 1;
            star = Some((p, t));
            continue;
        }
        if p < pattern.len() && pattern[p].eq_ignore_ascii_case(&text[t]) {
            p += 1;
            t += 1;
            continue;
        }
        match star {
            Some((sp, st)) => {
                p = sp;
                t = st + 1;
                star = Some((sp, st + 1));
            }
            None => return false,
        }
    }
    // A `*` left over needs a character it cannot have.
    p == pattern.len()
}

// ---------------------------------------------------------------------------------------------
// The router
// ---------------------------------------------------------------------------------------------

/// How a host is given to [`ExpressRouter::build`]: the model's [`HostPattern`] with settings
/// already substituted.
#[derive(Debug, Clone, Copy)]
pub enum HostInput<'a> {
    /// Every host.
    Any,
    /// A `host` (vhost) pattern.
    Vhost(&'a str),
    /// A `hostRegex`.
    Regex(&'a str),
}

impl<'a> From<&'a HostPattern> for HostInput<'a> {
    fn from(h: &'a HostPattern) -> Self {
        match h {
            HostPattern::Any => HostInput::Any,
            HostPattern::Vhost(p) => HostInput::Vhost(p),
            HostPattern::Regex(r) => HostInput::Regex(r),
        }
    }
}

/// One route as given to [`ExpressRouter::build`].
#[derive(Debug, Clone, Copy)]
pub struct RouteInput<'a> {
    /// Host, settings substituted.
    pub host: HostInput<'a>,
    /// Path.
    pub path: &'a PathPattern,
    /// Methods (empty: all).
    pub methods: &'a [String],
}

impl<'a> From<&'a ExpressRoute> for RouteInput<'a> {
    fn from(r: &'a ExpressRoute) -> Self {
        RouteInput {
            host: (&r.host).into(),
            path: &r.path,
            methods: &r.methods,
        }
    }
}

/// Where the proxy's `stripPath` cuts the request target (EG `lib/policies/proxy/proxy.js`,
/// since PR #965): at the position of the first `*` or `:` of the route path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StripAt {
    /// The route path has no `*` or `:`: the target becomes `/` and the query string.
    None,
    /// Cut at this position, counted in UTF-16 code units as JavaScript's `substring` (0: the
    /// target is unchanged).
    At(usize),
}

impl StripAt {
    /// `route.path.search(/[:*]/)` for an Express route path.
    pub fn of_path(route_path: &str) -> StripAt {
        let mut units = 0;
        for c in route_path.chars() {
            if c == '*' || c == ':' {
                return StripAt::At(units);
            }
            units += c.len_utf16();
        }
        StripAt::None
    }

    /// For a model path: `None` for a `pathRegex` route, where EG's `stripPath` throws (its
    /// route path is a RegExp, which has no `search` method) and answers 500.
    pub fn of_pattern(pattern: &PathPattern) -> Option<StripAt> {
        match pattern {
            PathPattern::Express(p) => Some(StripAt::of_path(p)),
            PathPattern::Regex(_) => None,
        }
    }
}

/// The request target after `stripPath`: `target` is the path and query the route matched
/// (the normalised path, then `?` and the raw query when there is one).
///
/// - [`StripAt::None`]: `/` followed by the query (`?` included) if any;
/// - `At(0)`: unchanged;
/// - `At(n)`: `/` followed by the target from UTF-16 position `n` (JavaScript
///   `'/' + originalUrl.substring(n)`); a position past the end gives `/`, and one inside a
///   character moves to the next character boundary.
pub fn stripped_target(target: &str, strip: StripAt) -> Cow<'_, str> {
    match strip {
        StripAt::At(0) => Cow::Borrowed(target),
        StripAt::None => match target.find('?') {
            Some(q) => Cow::Owned(format!("/{}", &target[q..])),
            None => Cow::Borrowed("/"),
        },
        StripAt::At(n) => {
            let mut units = 0;
            let mut cut = target.len();
            for (i, c) in target.char_indices() {
                if units >= n {
                    cut = i;
                    break;
                }
                units += c.len_utf16();
            }
            Cow::Owned(format!("/{}", &target[cut..]))
        }
    }
}

/// True when [`join_upstream`] gives `target` back unchanged: no endpoint path, and nothing in
/// the target's path that the join may rewrite (a run of `/`; any `:/`, which covers `http:/`
/// and `https:/`). The common case, which the proxy then uses as it is. One pass over the bytes.
pub fn join_is_identity(endpoint_path: &str, target: &str) -> bool {
    let path = target.split_once('?').map_or(target, |(path, _)| path);
    endpoint_path.is_empty()
        && !path
            .as_bytes()
            .windows(2)
            .any(|pair| pair[1] == b'/' && (pair[0] == b'/' || pair[0] == b':'))
}

/// The upstream request target http-proxy 1.18 sends: `urlJoin(endpoint_path, target)`
/// (`lib/http-proxy/common.js`). `endpoint_path` is the path of the service endpoint's URL
/// (`url.parse(url).path`: `/` when the URL has none), `target` the (possibly stripped) request
/// target.
///
/// The target is split at its first `?`; the endpoint path and the target's path are joined
/// with `/`, leaving out empty ones; then **every** run of `/` in the result becomes one `/`
/// (not only where they meet), the first `http:/` becomes `http://` and the first `https:/`
/// becomes `https://` (http-proxy's guard for URLs in paths); the query, if the target had a
/// `?`, follows unchanged. Percent-encoding is never touched.
pub fn join_upstream(endpoint_path: &str, target: &str) -> String {
    if join_is_identity(endpoint_path, target) {
        return target.to_string();
    }
    let (tpath, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    let mut joined = String::with_capacity(endpoint_path.len() + target.len() + 1);
    for part in [endpoint_path, tpath] {
        if part.is_empty() {
            continue;
        }
        if !joined.is_empty() {
            joined.push('/');
        }
        joined.push_str(part);
    }
    let mut out = String::with_capacity(joined.len() + target.len());
    let mut prev_slash = false;
    for c in joined.chars() {
        if c == '/' {
            if prev_slash {
                continue;
            }
            prev_slash = true;
        } else {
            prev_slash = false;
        }
        out.push(c);
    }
    if let Some(p) = out.find("http:/") {
        out.insert(p + "http:/".len(), '/');
    }
    if let Some(p) = out.find("https:/") {
        out.insert(p + "https:/".len(), '/');
    }
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// A route ready for lookups.
#[derive(Debug, Clone)]
struct Compiled {
    /// Index in the input.
    index: usize,
    path: ExpressPath,
    methods: Box<[Box<str>]>,
    strip: Option<StripAt>,
}

#[derive(Debug, Clone)]
struct Group {
    host: HostMatcher,
    routes: Vec<Compiled>,
}

/// A request that found its route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpressMatch {
    /// Index of the route in the list given to [`ExpressRouter::build`] (the model's
    /// `express[i].routes`).
    pub route: usize,
    /// Where `stripPath` cuts for this route; `None` for a `pathRegex` route (EG answers 500).
    pub strip: Option<StripAt>,
}

/// The outcome of [`ExpressRouter::resolve`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// The route that gets the request.
    Route(ExpressMatch),
    /// An `OPTIONS` request that matched routes only by path, in a host group where no route
    /// takes `OPTIONS`: Express itself answers `200`, `Allow: <this>`, body `<this>`,
    /// `Content-Type: text/html; charset=utf-8` and a weak `ETag` (`router/index.js`,
    /// `sendOptionsResponse`; checked on express 4.22.3), e.g. `GET,HEAD,POST`.
    Options(String),
    /// A route matched but one of its groups does not URL-decode: Express answers 400 with
    /// finalhandler's page (the same HTML document, `Content-Security-Policy: default-src
    /// 'none'` and `X-Content-Type-Options: nosniff` as its 404, with `<pre>Bad Request</pre>`
    /// under `NODE_ENV=production`; checked on express 4.22.3).
    MalformedParam,
    /// Nothing: Express's 404 (`Cannot GET /x`).
    NotFound,
}

/// The Express Gateway route table of one `gateway.config.yml`.
#[derive(Debug, Clone)]
pub struct ExpressRouter {
    groups: Vec<Group>,
}

impl ExpressRouter {
    /// Builds the table from the routes in the model's order (`ExpressGateway::routes`), with
    /// host settings already substituted. Routes are regrouped by host text (stable, groups in
    /// order of first appearance), as EG groups them after substitution; a route keeps its
    /// input index in [`ExpressMatch::route`]. Every route is checked; the first error is
    /// returned (use [`ExpressRouter::check`] for all of them).
    pub fn build<'a>(
        routes: impl IntoIterator<Item = RouteInput<'a>>,
    ) -> Result<Self, ExpressRouteError> {
        let mut errors = Vec::new();
        let router = Self::build_all(routes, &mut errors);
        match errors.into_iter().next() {
            Some(e) => Err(e),
            None => Ok(router),
        }
    }

    /// Every error of every route (empty when the table builds).
    pub fn check<'a>(routes: impl IntoIterator<Item = RouteInput<'a>>) -> Vec<ExpressRouteError> {
        let mut errors = Vec::new();
        Self::build_all(routes, &mut errors);
        errors
    }

    /// Builds from model routes whose host patterns need no substitution (tests, the toolkit).
    pub fn from_model(routes: &[ExpressRoute]) -> Result<Self, ExpressRouteError> {
        Self::build(routes.iter().map(RouteInput::from))
    }

    fn build_all<'a>(
        routes: impl IntoIterator<Item = RouteInput<'a>>,
        errors: &mut Vec<ExpressRouteError>,
    ) -> Self {
        let mut keys: Vec<String> = Vec::new();
        let mut groups: Vec<Group> = Vec::new();
        for (index, r) in routes.into_iter().enumerate() {
            let key = match r.host {
                HostInput::Any => "*",
                HostInput::Vhost(h) | HostInput::Regex(h) => {
                    if h.is_empty() {
                        "*"
                    } else {
                        h
                    }
                }
            };
            let g = match keys.iter().position(|k| k == key) {
                Some(g) => g,
                None => {
                    // The group's kind comes from its first route, as EG's `cfg[host]`.
                    let host = match r.host {
                        HostInput::Any => Ok(HostMatcher::Any),
                        HostInput::Vhost(h) => {
                            HostMatcher::vhost(h).map_err(|error| ExpressRouteError::Host {
                                route: index,
                                host: h.to_owned(),
                                error,
                            })
                        }
                        HostInput::Regex(h) => HostMatcher::regex(h).map_err(|error| {
                            ExpressRouteError::Regex(RegexAt {
                                route: index,
                                field: "hostRegex",
                                error,
                            })
                        }),
                    };
                    let host = host.unwrap_or_else(|e| {
                        errors.push(e);
                        HostMatcher::Any
                    });
                    keys.push(key.to_owned());
                    groups.push(Group {
                        host,
                        routes: Vec::new(),
                    });
                    groups.len() - 1
                }
            };
            match ExpressPath::from_pattern(r.path, index) {
                Ok(path) => groups[g].routes.push(Compiled {
                    index,
                    path,
                    methods: r
                        .methods
                        .iter()
                        .filter(|m| m.as_str() != "*")
                        .map(|m| Box::from(m.trim()))
                        .collect(),
                    strip: StripAt::of_pattern(r.path),
                }),
                Err(e) => errors.push(e),
            }
        }
        ExpressRouter { groups }
    }

    /// The route for a request, or `None` (see [`ExpressRouter::resolve`] for Express's
    /// answers to the other cases).
    pub fn lookup(
        &self,
        method: &str,
        host_header: Option<&str>,
        path: &str,
    ) -> Option<ExpressMatch> {
        match self.resolve(method, host_header, path) {
            Lookup::Route(m) => Some(m),
            _ => None,
        }
    }

    /// Finds what Express does with a request: `method` as received, `host_header` the `Host`
    /// header (or HTTP/2 `:authority`) if any, `path` the (normalised) path without the query.
    ///
    /// Host groups are tried in order; inside a group, routes in order; a route takes the
    /// request when its path matches and it serves the method (no list: every method; `HEAD`
    /// is served by `GET`; compared case-insensitively as Express lowercases both). No
    /// allocation unless an `OPTIONS` answer is built or a regex route captures.
    pub fn resolve(&self, method: &str, host_header: Option<&str>, path: &str) -> Lookup {
        let path = path.split_once('?').map_or(path, |(p, _)| p);
        // Express compares `req.method === 'OPTIONS'` exactly here.
        let is_options = method == "OPTIONS";
        for group in &self.groups {
            if !group.host.matches(host_header) {
                continue;
            }
            let mut allow: Option<String> = None;
            for route in &group.routes {
                let found = route.path.test_path(path);
                if found == PathMatch::No {
                    continue;
                }
                if found == PathMatch::Malformed {
                    // Express holds the decoding error: no later route matches, 400.
                    return Lookup::MalformedParam;
                }
                if serves(&route.methods, method) {
                    return Lookup::Route(ExpressMatch {
                        route: route.index,
                        strip: route.strip,
                    });
                }
                if is_options {
                    let allow = allow.get_or_insert_with(String::new);
                    for m in route.methods.iter() {
                        let upper = m.to_ascii_uppercase();
                        push_method(allow, &upper);
                        if upper == "GET" {
                            push_method(allow, "HEAD");
                        }
                    }
                }
            }
            if let Some(allow) = allow {
                return Lookup::Options(allow);
            }
        }
        Lookup::NotFound
    }
}

fn serves(methods: &[Box<str>], method: &str) -> bool {
    methods.is_empty()
        || methods.iter().any(|m| {
            m.eq_ignore_ascii_case(method)
                || (method.eq_ignore_ascii_case("HEAD") && m.eq_ignore_ascii_case("GET"))
        })
}

fn push_method(list: &mut String, m: &str) {
    if list.split(',').any(|x| x == m) {
        return;
    }
    if !list.is_empty() {
        list.push(',');
    }
    list.push_str(m);
}

#[cfg(test)]
mod tests;
