//! What an expression can read: the request and the per-request context the pipeline engine
//! supplies, borrowed (building a scope copies nothing).
//!
//! Property semantics follow Express 4 (`lib/request.js`, trust proxy off, as Express Gateway
//! configures it) and Node's `IncomingMessage.headers`.

use std::borrow::Cow;
use std::net::IpAddr;

use http::request::Parts;
use http::HeaderName;

use super::Value;

/// The request and context an expression is evaluated against.
///
/// Build it with [`RequestScope::new`] and set the context fields the engine knows; every field
/// is borrowed.
#[derive(Clone, Copy)]
pub struct RequestScope<'a> {
    /// The request line and headers.
    pub parts: &'a Parts,
    /// `req.ip`: the peer address of the connection (Express with trust proxy off).
    pub client_ip: IpAddr,
    /// The connection is TLS: `req.protocol` is `https`, `req.secure` is true.
    pub secure: bool,
    /// `req.url` and `req.originalUrl`: the request target as received (path and query, raw
    /// percent-encoding). `None` uses the path and query of `parts.uri`.
    pub original_url: Option<&'a str>,
    /// `egContext.requestID`.
    pub request_id: &'a str,
    /// `egContext.apiEndpoint.apiEndpointName`: the matched endpoint's name.
    pub api_endpoint: &'a str,
    /// `egContext.apiEndpoint.scopes` (read as a string, the elements joined with `,` as
    /// JavaScript prints an array).
    pub scopes: &'a [String],
    /// `req.user` / `egContext.consumer`: the authenticated consumer, `None` when anonymous.
    pub consumer: Option<&'a dyn Consumer>,
    /// `res.statusCode`: `None` in the request phase, where Express's default 200 is read.
    pub status: Option<u16>,
}

impl std::fmt::Debug for RequestScope<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestScope")
            .field("method", &self.parts.method)
            .field("uri", &self.parts.uri)
            .field("client_ip", &self.client_ip)
            .field("request_id", &self.request_id)
            .field("api_endpoint", &self.api_endpoint)
            .field("consumer", &self.consumer.is_some())
            .finish_non_exhaustive()
    }
}

/// The authenticated consumer's fields, as `req.user.<field>` reads them.
///
/// Express Gateway's consumer is a user (`id`, `username`, `firstname`, ..., `type: "user"`) or an
/// application (`id`, `name`, `userId`, `scopes`, ..., `type: "application"`), or the JWT payload
/// when a `jwt` step does not look credentials up.
pub trait Consumer {
    /// The value at `path` (non-empty: `["id"]` for `req.user.id`). Returns `Err(i)` when
    /// `path[i]` would be read from `undefined` or `null` (a JavaScript TypeError); a property of
    /// a string, number or boolean is `undefined`.
    fn lookup(&self, path: &[&str]) -> Result<Value<'_>, usize>;
}

/// A consumer known by a few string fields (`id`, `username`, `name`, `type`, and any others).
#[derive(Debug, Clone, Copy, Default)]
pub struct ConsumerInfo<'a> {
    /// `id`.
    pub id: &'a str,
    /// `type`: `"user"` or `"application"`.
    pub kind: Option<&'a str>,
    /// `username` (users).
    pub username: Option<&'a str>,
    /// `name` (applications).
    pub name: Option<&'a str>,
    /// Any other string fields, by name.
    pub fields: &'a [(&'a str, &'a str)],
}

impl Consumer for ConsumerInfo<'_> {
    fn lookup(&self, path: &[&str]) -> Result<Value<'_>, usize> {
        let Some((first, rest)) = path.split_first() else {
            return Ok(Value::Object);
        };
        let field = match *first {
            "id" => Some(self.id),
            "type" => self.kind,
            "username" => self.username,
            "name" => self.name,
            other => self
                .fields
                .iter()
                .find(|(k, _)| *k == other)
                .map(|(_, v)| *v),
        };
        match (field, rest.is_empty()) {
            (Some(v), true) => Ok(Value::Str(Cow::Borrowed(v))),
            (Some(_), false) => Ok(Value::Undefined),
            (None, true) => Ok(Value::Undefined),
            (None, false) => Err(1),
        }
    }
}

/// A JWT payload (or any JSON object) as the consumer: `req.user.sub`, `req.user.realm.roles`.
impl Consumer for serde_json::Map<String, serde_json::Value> {
    fn lookup(&self, path: &[&str]) -> Result<Value<'_>, usize> {
        let mut current: Option<&serde_json::Value> = None;
        for (i, name) in path.iter().enumerate() {
            let next = match current {
                None => self.get(*name),
                Some(serde_json::Value::Object(map)) => map.get(*name),
                Some(serde_json::Value::Array(items)) => {
                    name.parse::<usize>().ok().and_then(|n| items.get(n))
                }
                Some(serde_json::Value::Null) => return Err(i),
                Some(_) => return Ok(Value::Undefined),
            };
            match next {
                Some(v) => current = Some(v),
                None if i + 1 == path.len() => return Ok(Value::Undefined),
                None => return Err(i + 1),
            }
        }
        Ok(match current {
            None | Some(serde_json::Value::Object(_)) => Value::Object,
            Some(serde_json::Value::Null) => Value::Null,
            Some(serde_json::Value::Bool(b)) => Value::Bool(*b),
            Some(serde_json::Value::Number(n)) => Value::Number(n.as_f64().unwrap_or(f64::NAN)),
            Some(serde_json::Value::String(s)) => Value::Str(Cow::Borrowed(s)),
            Some(serde_json::Value::Array(items)) => {
                // JavaScript prints an array as its elements joined with commas.
                let texts: Vec<String> = items
                    .iter()
                    .map(|v| match v {
                        serde_json::Value::String(s) => s.clone(),
                        serde_json::Value::Null => String::new(),
                        serde_json::Value::Object(_) => "[object Object]".into(),
                        other => other.to_string(),
                    })
                    .collect();
                Value::Str(Cow::Owned(texts.join(",")))
            }
        })
    }
}

impl<'a> RequestScope<'a> {
    /// A scope for `parts` from `client_ip`, without context: no request id, endpoint, scopes or
    /// consumer, plain HTTP, in the request phase.
    pub fn new(parts: &'a Parts, client_ip: IpAddr) -> Self {
        Self {
            parts,
            client_ip,
            secure: false,
            original_url: None,
            request_id: "",
            api_endpoint: "",
            scopes: &[],
            consumer: None,
            status: None,
        }
    }

    /// `req.url`: the target as received.
    pub fn url(&self) -> &'a str {
        match self.original_url {
            Some(url) => url,
            None => self
                .parts
                .uri
                .path_and_query()
                .map_or("/", |pq| pq.as_str()),
        }
    }

    /// `req.path`: the path of `req.url`, without its query.
    pub fn url_path(&self) -> &'a str {
        let url = self.url();
        url.split_once('?').map_or(url, |(path, _)| path)
    }

    /// `req.headers[name]` as Node joins repeated headers: the first value only for the headers
    /// Node keeps single, `; ` for `cookie`, `, ` otherwise. Bytes are read as Latin-1, as Node
    /// does. `undefined` without the header.
    pub fn header(&self, name: &HeaderName) -> Value<'a> {
        let mut values = self.parts.headers.get_all(name).iter();
        let Some(first) = values.next() else {
            // HTTP/2 carries the host in the URI authority, which Node exposes as `host`.
            if name == http::header::HOST {
                if let Some(authority) = self.parts.uri.authority() {
                    return Value::Str(Cow::Borrowed(crate::router::authority_host(authority)));
                }
            }
            return Value::Undefined;
        };
        let mut text = latin1(first.as_bytes());
        if !NODE_SINGLE_HEADERS.contains(&name.as_str()) {
            let separator = if name == http::header::COOKIE {
                "; "
            } else {
                ", "
            };
            for value in values {
                let joined = text.to_mut();
                joined.push_str(separator);
                joined.push_str(&latin1(value.as_bytes()));
            }
        }
        Value::Str(text)
    }

    /// `req.hostname`: the `Host` header without its port (Express 4: `[v6]:port` keeps the
    /// brackets). `undefined` without a host.
    pub fn hostname(&self) -> Value<'a> {
        let Value::Str(host) = self.header(&http::header::HOST) else {
            return Value::Undefined;
        };
        let cut = |h: &str| -> usize {
            let offset = if h.starts_with('[') {
                h.find(']').map_or(0, |i| i + 1)
            } else {
                0
            };
            h[offset..].find(':').map_or(h.len(), |i| i + offset)
        };
        match host {
            Cow::Borrowed(h) => Value::Str(Cow::Borrowed(&h[..cut(h)])),
            Cow::Owned(h) => {
                let end = cut(&h);
                Value::Str(Cow::Owned(h[..end].to_string()))
            }
        }
    }

    /// `req.query[name]` as Express's default (`qs`) parser reads it: `+` and percent-escapes
    /// decoded; a repeated name (or `name[]`) gives an array, read here joined with `,` as
    /// JavaScript prints it. Bracketed nested keys (`a[b]=1`) are not expanded.
    pub fn query(&self, name: &str) -> Value<'a> {
        let Some((_, query)) = self.url().split_once('?') else {
            return Value::Undefined;
        };
        let mut found: Option<Cow<'a, str>> = None;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let key = form_decode(key);
            let key = key.strip_suffix("[]").unwrap_or(&key);
            if key != name {
                continue;
            }
            let value = form_decode(value);
            match &mut found {
                None => found = Some(value),
                Some(joined) => {
                    let joined = joined.to_mut();
                    joined.push(',');
                    joined.push_str(&value);
                }
            }
        }
        found.map_or(Value::Undefined, Value::Str)
    }
}

/// Headers whose repeats Node drops, keeping the first (`IncomingMessage._addHeaderLine`).
const NODE_SINGLE_HEADERS: &[&str] = &[
    "age",
    "authorization",
    "content-length",
    "content-type",
    "etag",
    "expires",
    "from",
    "host",
    "if-modified-since",
    "if-unmodified-since",
    "last-modified",
    "location",
    "max-forwards",
    "proxy-authorization",
    "referer",
    "retry-after",
    "server",
    "user-agent",
];

/// Latin-1 decoding, as Node reads header bytes.
pub(crate) fn latin1(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(s) if s.is_ascii() => Cow::Borrowed(s),
        _ => Cow::Owned(bytes.iter().map(|&b| char::from(b)).collect()),
    }
}

/// `application/x-www-form-urlencoded` decoding of one name or value: `+` is a space, `%XX`
/// escapes are UTF-8 bytes; with a malformed escape the text is kept undecoded (as `qs` does).
pub(crate) fn form_decode(text: &str) -> Cow<'_, str> {
    if !text.contains(['+', '%']) {
        return Cow::Borrowed(text);
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3).and_then(|h| {
                    std::str::from_utf8(h)
                        .ok()
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                });
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    // `decodeURIComponent` throws and `qs` keeps the whole text undecoded.
                    None => return Cow::Owned(text.replace('+', " ")),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    match String::from_utf8(out) {
        Ok(s) => Cow::Owned(s),
        // `qs` falls back to the undecoded text when the escapes are not UTF-8.
        Err(_) => Cow::Owned(text.replace('+', " ")),
    }
}
