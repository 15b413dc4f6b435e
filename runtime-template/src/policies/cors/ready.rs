//! The CORS policy made ready: patterns compiled and header values checked once, at start-up
//! (and by the toolkit at build time), then pure per-request functions the pipeline calls.
//!
//! - request phase: [`CorsPolicy::preflight`] answers a preflight (or not);
//! - response phase: [`CorsPolicy::apply`] adds the CORS headers to whatever answered the
//!   request (a later step's 401 or 429, `terminate`, the upstream's response).

use http::header::{
    HeaderName, ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS,
    ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS,
    ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD,
    CONTENT_LENGTH, ORIGIN, VARY,
};
use http::{HeaderMap, HeaderValue, Method, StatusCode};

use super::{CorsOrigin, CorsSpec, OriginPattern};
use crate::model::Dialect;

/// A CORS spec that cannot be made ready.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CorsError {
    /// An origin regular expression does not compile.
    #[error("the origin pattern /{pattern}/ is not a valid regular expression: {reason}")]
    BadPattern {
        /// The pattern.
        pattern: String,
        /// The compiler's message.
        reason: String,
    },
    /// A configured value cannot be sent in an HTTP header (a control character, a line break,
    /// a non-ASCII character).
    #[error("{what} {value:?} cannot be an HTTP header value: use visible ASCII only (an international domain in its xn-- form)")]
    BadHeaderValue {
        /// Which setting.
        what: &'static str,
        /// The value.
        value: String,
    },
    /// The preflight status is not a final HTTP status (200 to 999).
    #[error("the preflight status {0} is not a final HTTP status (200-999)")]
    BadStatus(u16),
}

/// The answer to a preflight request: status and headers (with `Content-Length: 0`), no body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preflight {
    /// npm `optionsSuccessStatus` (204), WSO2 200.
    pub status: StatusCode,
    /// The CORS headers in the order the peer writes them, then `Content-Length: 0`.
    pub headers: HeaderMap,
    /// WSO2: the preflight passed every check and carries CORS headers. When false, WSO2
    /// (Ballerina) still answers 200 and adds the path's `Allow` header ([`wso2_allow`]).
    /// Always true in the Express Gateway dialect.
    pub granted: bool,
}

#[derive(Debug)]
enum Origins {
    Any,
    Reflect,
    Disabled,
    Fixed(HeaderValue),
    List(Vec<Pattern>),
}

#[derive(Debug)]
enum Pattern {
    Exact(String),
    Regex(regex_lite::Regex),
}

impl Pattern {
    fn matches(&self, origin: &str) -> bool {
        match self {
            Pattern::Exact(exact) => exact == origin,
            Pattern::Regex(regex) => regex.is_match(origin),
        }
    }
}

/// A ready CORS step. Build it with [`CorsPolicy::new`]; it is immutable and shared by all
/// requests.
#[derive(Debug)]
pub struct CorsPolicy {
    dialect: Dialect,
    origins: Origins,
    /// npm: the joined `Access-Control-Allow-Methods` (None when empty). WSO2: unused.
    methods_value: Option<HeaderValue>,
    /// WSO2: allowed methods (`None`: any).
    methods: Option<Vec<String>>,
    /// npm: the joined `Access-Control-Allow-Headers` (`None`: reflect; `Some(None)`: an
    /// empty list, no header).
    allowed_headers_value: Option<Option<HeaderValue>>,
    /// WSO2: allowed request headers, lower-cased (`None`: any).
    allowed_headers: Option<Vec<String>>,
    exposed: Option<HeaderValue>,
    credentials: bool,
    max_age: Option<HeaderValue>,
    preflight_status: StatusCode,
    preflight_continue: bool,
}

const TRUE: HeaderValue = HeaderValue::from_static("true");
const STAR: HeaderValue = HeaderValue::from_static("*");
const ZERO: HeaderValue = HeaderValue::from_static("0");

/// A configured value as a header value: visible ASCII only (`http` would also take obs-text
/// bytes, which no browser sends in these headers).
fn header_value(what: &'static str, value: &str) -> Result<HeaderValue, CorsError> {
    Some(value)
        .filter(|v| v.is_ascii())
        .and_then(|v| HeaderValue::from_str(v).ok())
        .ok_or_else(|| CorsError::BadHeaderValue {
            what,
            value: value.to_string(),
        })
}

/// A list joined with `separator`, as a header value (`None` when the result is empty, as
/// npm `cors` skips empty values).
fn joined(
    what: &'static str,
    items: &[String],
    separator: &str,
) -> Result<Option<HeaderValue>, CorsError> {
    let value = items.join(separator);
    if value.is_empty() {
        Ok(None)
    } else {
        header_value(what, &value).map(Some)
    }
}

impl CorsPolicy {
    /// Checks and compiles `spec`: origin patterns compiled, every configured value checked as
    /// a header value, the preflight status checked.
    pub fn new(spec: &CorsSpec) -> Result<Self, CorsError> {
        let origins = match &spec.origin {
            CorsOrigin::Any => Origins::Any,
            CorsOrigin::Reflect => Origins::Reflect,
            CorsOrigin::Disabled => Origins::Disabled,
            // npm `cors`: an empty string is falsy, so the middleware does nothing.
            CorsOrigin::Fixed(origin) if origin.is_empty() => Origins::Disabled,
            CorsOrigin::Fixed(origin) if origin == "*" => Origins::Any,
            CorsOrigin::Fixed(origin) => Origins::Fixed(header_value("the origin", origin)?),
            CorsOrigin::List(patterns) => Origins::List(
                patterns
                    .iter()
                    .map(|p| match p {
                        // Browsers send `Origin` in ASCII (a punycode host): an origin that
                        // cannot be a header value would never match.
                        OriginPattern::Exact(exact) => {
                            header_value("the origin", exact).map(|_| Pattern::Exact(exact.clone()))
                        }
                        OriginPattern::Regex(source) => regex_lite::Regex::new(source)
                            .map(Pattern::Regex)
                            .map_err(|e| CorsError::BadPattern {
                                pattern: source.clone(),
                                reason: e.to_string(),
                            }),
                    })
                    .collect::<Result<_, _>>()?,
            ),
        };
        let preflight_status = StatusCode::from_u16(spec.preflight_status)
            .ok()
            .filter(|s| s.as_u16() >= 200)
            .ok_or(CorsError::BadStatus(spec.preflight_status))?;
        let wso2 = spec.dialect == Dialect::Wso2;
        let exposed = joined(
            "an exposed header",
            &spec.exposed_headers,
            if wso2 { ", " } else { "," },
        )?;
        let max_age = spec
            .max_age
            .map(|age| header_value("the max age", &age.to_string()))
            .transpose()?;
        let (methods_value, methods) = if wso2 {
            for m in &spec.methods {
                header_value("a method", m)?;
            }
            let any = spec.methods.is_empty() || spec.methods == ["*"];
            (None, (!any).then(|| spec.methods.clone()))
        } else {
            (joined("the methods", &spec.methods, ",")?, None)
        };
        let (allowed_headers_value, allowed_headers) = match &spec.allowed_headers {
            None => (None, None),
            Some(list) if wso2 => {
                for h in list {
                    header_value("an allowed header", h)?;
                }
                (
                    None,
                    (!list.is_empty())
                        .then(|| list.iter().map(|h| h.trim().to_ascii_lowercase()).collect()),
                )
            }
            Some(list) => (Some(joined("the allowed headers", list, ",")?), None),
        };
        Ok(Self {
            dialect: spec.dialect,
            origins,
            methods_value,
            methods,
            allowed_headers_value,
            allowed_headers,
            exposed,
            credentials: spec.credentials,
            max_age,
            preflight_status,
            preflight_continue: spec.preflight_continue,
        })
    }

    /// Whether the step does anything at all (npm `origin: false` turns the middleware off).
    pub fn is_active(&self) -> bool {
        !matches!(self.origins, Origins::Disabled)
    }

    /// The request phase: the answer to a preflight, or `None` to go on with the next step.
    ///
    /// - Express Gateway: every `OPTIONS` request is a preflight (npm `cors` does not look for
    ///   `Access-Control-Request-Method`), answered with `preflight_status` unless
    ///   `preflight_continue` (then [`CorsPolicy::apply`] adds the preflight headers to the
    ///   response later steps write). Headers in npm's order: `Access-Control-Allow-Origin`
    ///   (and `Vary: Origin` unless `*`), `-Allow-Credentials`, `-Allow-Methods`,
    ///   `-Allow-Headers` (configured, or the request's `Access-Control-Request-Headers`
    ///   reflected with `Vary: Access-Control-Request-Headers`), `-Max-Age`,
    ///   `-Expose-Headers`, then `Content-Length: 0`.
    /// - WSO2: an `OPTIONS` request with `Origin` and `Access-Control-Request-Method` (a CORS
    ///   preflight, Fetch §3.2.2) is answered 200. It carries CORS headers (`[granted]`) only
    ///   when the origin is one value and allowed, the method is allowed and every requested
    ///   header is allowed (Ballerina `CorsHeaderGenerator.processPreflightRequest`): then
    ///   `Access-Control-Allow-Credentials` (if set), the origin reflected, `Vary: Origin`,
    ///   the requested method and headers echoed, `-Max-Age` (if set). The caller adds the
    ///   path's `Allow` header to a preflight that is not granted. Anything else: `None`.
    ///
    /// [`granted`]: Preflight::granted
    pub fn preflight(&self, method: &Method, headers: &HeaderMap) -> Option<Preflight> {
        if method != Method::OPTIONS || !self.is_active() {
            return None;
        }
        match self.dialect {
            Dialect::ExpressGateway => {
                if self.preflight_continue {
                    return None;
                }
                let mut out = HeaderMap::new();
                self.npm_preflight_headers(headers, &mut out);
                out.insert(CONTENT_LENGTH, ZERO);
                Some(Preflight {
                    status: self.preflight_status,
                    headers: out,
                    granted: true,
                })
            }
            Dialect::Wso2 => {
                headers.get(ORIGIN)?;
                headers.get(ACCESS_CONTROL_REQUEST_METHOD)?;
                let mut out = self.wso2_preflight_headers(headers).unwrap_or_default();
                let granted = !out.is_empty();
                out.insert(CONTENT_LENGTH, ZERO);
                Some(Preflight {
                    status: self.preflight_status,
                    headers: out,
                    granted,
                })
            }
        }
    }

    /// The response phase: adds the CORS headers of an actual (non-preflight) request to
    /// `response`, whatever wrote it (a later step's rejection, `terminate`, the upstream).
    ///
    /// - Express Gateway: npm `cors` sets `Access-Control-Allow-Origin` (+ `Vary: Origin`),
    ///   `-Allow-Credentials` and `-Expose-Headers` on the response before later steps run, so
    ///   a header the upstream sends itself wins (http-proxy sets upstream headers over them):
    ///   here a header already in `response` is kept. `Vary` is merged as the `vary` package
    ///   does (field names appended once, `*` absorbs all), so an upstream `Vary` keeps
    ///   `Origin` (EG would replace it: a deliberate difference, safer for caches). With
    ///   `preflight_continue`, an `OPTIONS` request gets the preflight headers instead.
    /// - WSO2: when the request has an allowed `Origin` (every space-separated origin with
    ///   `://` allowed), `Access-Control-Allow-Credentials` (if set), the origin(s) reflected
    ///   and `Access-Control-Expose-Headers` replace any upstream value (Ballerina sets them on
    ///   the outbound response), plus `Vary: Origin` merged (ours: WSO2 sends none although
    ///   it reflects). A disallowed origin gets nothing. Preflight requests are skipped (their
    ///   answer came from [`CorsPolicy::preflight`]).
    ///
    /// Calling it again on the same response changes nothing.
    pub fn apply(&self, method: &Method, request: &HeaderMap, response: &mut HeaderMap) {
        if !self.is_active() {
            return;
        }
        match self.dialect {
            Dialect::ExpressGateway => {
                let mut ours = HeaderMap::new();
                if method == Method::OPTIONS && self.preflight_continue {
                    self.npm_preflight_headers(request, &mut ours);
                } else {
                    self.npm_origin(request, &mut ours);
                    if self.credentials && self.acao_is_not_star(&ours) {
                        ours.insert(ACCESS_CONTROL_ALLOW_CREDENTIALS, TRUE);
                    }
                    if let Some(exposed) = &self.exposed {
                        ours.insert(ACCESS_CONTROL_EXPOSE_HEADERS, exposed.clone());
                    }
                }
                for (name, value) in ours.iter() {
                    if name == VARY {
                        merge_vary(response, value);
                    } else if !response.contains_key(name) {
                        response.insert(name.clone(), value.clone());
                    }
                }
            }
            Dialect::Wso2 => {
                if method == Method::OPTIONS
                    && request.contains_key(ORIGIN)
                    && request.contains_key(ACCESS_CONTROL_REQUEST_METHOD)
                {
                    return;
                }
                let Some(origins) = self.wso2_allowed_origins(request) else {
                    return;
                };
                if self.credentials {
                    response.insert(ACCESS_CONTROL_ALLOW_CREDENTIALS, TRUE);
                }
                response.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origins);
                merge_vary(response, &HeaderValue::from_static("Origin"));
                if let Some(exposed) = &self.exposed {
                    response.insert(ACCESS_CONTROL_EXPOSE_HEADERS, exposed.clone());
                }
            }
        }
    }

    /// npm `configureOrigin`: `Access-Control-Allow-Origin` and `Vary: Origin`.
    fn npm_origin(&self, request: &HeaderMap, out: &mut HeaderMap) {
        let vary_origin = HeaderValue::from_static("Origin");
        match &self.origins {
            Origins::Any | Origins::Disabled => {
                out.insert(ACCESS_CONTROL_ALLOW_ORIGIN, STAR);
            }
            Origins::Fixed(origin) => {
                out.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
                merge_vary(out, &vary_origin);
            }
            Origins::Reflect | Origins::List(_) => {
                if let Some(origin) = request.get(ORIGIN) {
                    let allowed = match &self.origins {
                        Origins::List(patterns) => origin
                            .to_str()
                            .is_ok_and(|o| patterns.iter().any(|p| p.matches(o))),
                        _ => true,
                    };
                    if allowed && !origin.is_empty() {
                        out.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
                    }
                }
                merge_vary(out, &vary_origin);
            }
        }
    }

    /// `Access-Control-Allow-Credentials` goes only with a specific origin: npm `cors` would
    /// send it beside `*` too, which browsers refuse for credentialed requests anyway; we
    /// leave it out (same outcome in a browser, and never the pair the issue forbids).
    fn acao_is_not_star(&self, ours: &HeaderMap) -> bool {
        ours.get(ACCESS_CONTROL_ALLOW_ORIGIN)
            .is_none_or(|v| v.as_bytes() != b"*")
    }

    /// npm `cors` preflight headers, in its order (without `Content-Length`).
    fn npm_preflight_headers(&self, request: &HeaderMap, out: &mut HeaderMap) {
        self.npm_origin(request, out);
        if self.credentials && self.acao_is_not_star(out) {
            out.insert(ACCESS_CONTROL_ALLOW_CREDENTIALS, TRUE);
        }
        if let Some(methods) = &self.methods_value {
            out.insert(ACCESS_CONTROL_ALLOW_METHODS, methods.clone());
        }
        match &self.allowed_headers_value {
            Some(Some(configured)) => {
                out.insert(ACCESS_CONTROL_ALLOW_HEADERS, configured.clone());
            }
            Some(None) => {}
            None => {
                merge_vary(
                    out,
                    &HeaderValue::from_static("Access-Control-Request-Headers"),
                );
                if let Some(requested) =
                    joined_request_header(request, &ACCESS_CONTROL_REQUEST_HEADERS)
                {
                    out.insert(ACCESS_CONTROL_ALLOW_HEADERS, requested);
                }
            }
        }
        if let Some(age) = &self.max_age {
            out.insert(ACCESS_CONTROL_MAX_AGE, age.clone());
        }
        if let Some(exposed) = &self.exposed {
            out.insert(ACCESS_CONTROL_EXPOSE_HEADERS, exposed.clone());
        }
    }

    /// Ballerina's origin check for an actual request: the `Origin` value split on spaces,
    /// entries with `://` kept; all must be allowed. The value to reflect.
    fn wso2_allowed_origins(&self, request: &HeaderMap) -> Option<HeaderValue> {
        let origin = request.get(ORIGIN)?.to_str().ok()?;
        let origins: Vec<&str> = origin.split(' ').filter(|o| o.contains("://")).collect();
        if origins.is_empty() || !origins.iter().all(|o| self.wso2_origin_allowed(o)) {
            return None;
        }
        HeaderValue::from_str(&origins.join(" ")).ok()
    }

    fn wso2_origin_allowed(&self, origin: &str) -> bool {
        match &self.origins {
            Origins::Any | Origins::Reflect => true,
            Origins::Disabled => false,
            Origins::Fixed(fixed) => fixed.as_bytes() == origin.as_bytes(),
            Origins::List(patterns) => patterns.iter().any(|p| p.matches(origin)),
        }
    }

    /// Ballerina `processPreflightRequest`: `None` when a check fails.
    fn wso2_preflight_headers(&self, request: &HeaderMap) -> Option<HeaderMap> {
        let origin = request.get(ORIGIN)?.to_str().ok()?;
        let origins: Vec<&str> = origin.split(' ').filter(|o| o.contains("://")).collect();
        let [origin] = origins.as_slice() else {
            return None;
        };
        let requested = request.get(ACCESS_CONTROL_REQUEST_METHOD)?;
        let requested_str = requested.to_str().ok()?;
        if requested_str.contains(',') {
            return None;
        }
        if let Some(methods) = &self.methods {
            if !methods.iter().any(|m| m == requested_str) {
                return None;
            }
        }
        if !self.wso2_origin_allowed(origin) {
            return None;
        }
        let requested_headers = joined_request_header(request, &ACCESS_CONTROL_REQUEST_HEADERS);
        let mut echoed = None;
        if let Some(value) = &requested_headers {
            let text = value.to_str().ok()?;
            let names: Vec<&str> = text.split(',').map(str::trim).collect();
            if let Some(allowed) = &self.allowed_headers {
                if !names
                    .iter()
                    .all(|n| allowed.iter().any(|a| a.eq_ignore_ascii_case(n)))
                {
                    return None;
                }
            }
            echoed = HeaderValue::from_str(&names.join(", ")).ok();
        }
        let mut out = HeaderMap::new();
        if self.credentials {
            out.insert(ACCESS_CONTROL_ALLOW_CREDENTIALS, TRUE);
        }
        out.insert(
            ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_str(origin).ok()?,
        );
        merge_vary(&mut out, &HeaderValue::from_static("Origin"));
        out.insert(ACCESS_CONTROL_ALLOW_METHODS, requested.clone());
        if let Some(echoed) = echoed {
            out.insert(ACCESS_CONTROL_ALLOW_HEADERS, echoed);
        }
        if let Some(age) = &self.max_age {
            out.insert(ACCESS_CONTROL_MAX_AGE, age.clone());
        }
        Some(out)
    }
}

/// Every value of a request header joined with `, ` (as Node.js joins repeated headers).
fn joined_request_header(request: &HeaderMap, name: &HeaderName) -> Option<HeaderValue> {
    let mut values = request.get_all(name).iter();
    let first = values.next()?;
    let mut joined = first.as_bytes().to_vec();
    for next in values {
        joined.extend_from_slice(b", ");
        joined.extend_from_slice(next.as_bytes());
    }
    HeaderValue::from_bytes(&joined).ok()
}

/// Merges `field` into the `Vary` header(s) of `headers` (all values joined into one).
fn merge_vary(headers: &mut HeaderMap, field: &HeaderValue) {
    let existing: Vec<&str> = headers
        .get_all(VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let existing = existing.join(", ");
    let Ok(field) = field.to_str() else {
        return;
    };
    if let Some(merged) = vary_append(&existing, field) {
        if let Ok(value) = HeaderValue::from_str(&merged) {
            headers.insert(VARY, value);
        }
    }
}

/// The `vary` 1.1.2 package's `append`: `field`'s names added to the `Vary` value `header`
/// when not already there (compared case-insensitively), `*` absorbing everything. `None`
/// when the result is empty.
pub fn vary_append(header: &str, field: &str) -> Option<String> {
    let parse = |s: &str| -> Vec<String> {
        s.split(',')
            .map(|p| p.trim_matches(' ').to_string())
            .filter(|p| !p.is_empty())
            .collect()
    };
    let fields = parse(field);
    if header.trim() == "*" || fields.iter().any(|f| f == "*") {
        return Some("*".into());
    }
    let mut seen: Vec<String> = parse(&header.to_ascii_lowercase());
    let mut value = header.to_string();
    for f in fields {
        let lower = f.to_ascii_lowercase();
        if !seen.contains(&lower) {
            seen.push(lower);
            if value.is_empty() {
                value = f;
            } else {
                value = format!("{value}, {f}");
            }
        }
    }
    (!value.is_empty()).then_some(value)
}

/// Ballerina's `Allow` header for an `OPTIONS` request on a path whose resources (of these
/// `methods`) have no `OPTIONS` operation: the methods, `HEAD` after a `GET`, then
/// `OPTIONS`, each once, joined with `, ` (`DispatcherUtil.validateAllowMethods`).
pub fn wso2_allow<'a>(methods: impl IntoIterator<Item = &'a str>) -> HeaderValue {
    let mut all: Vec<&str> = Vec::new();
    let push = |m: &'a str, all: &mut Vec<&'a str>| {
        if !all.contains(&m) {
            all.push(m);
        }
    };
    for m in methods {
        push(m, &mut all);
    }
    if all.contains(&"GET") {
        push("HEAD", &mut all);
    }
    push("OPTIONS", &mut all);
    HeaderValue::from_str(&all.join(", ")).unwrap_or(HeaderValue::from_static("OPTIONS"))
}

#[cfg(test)]
mod tests;
