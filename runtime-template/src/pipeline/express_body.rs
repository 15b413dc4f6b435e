//! The request body as Express Gateway's `json-schema` condition sees it: `req.body` after
//! Express's `json()` then `urlencoded({extended: true})` parsers (body-parser 1.20 with its
//! defaults, `qs` 6), which the condition's middleware runs before the condition
//! (`lib/conditions/json-schema.js`).
//!
//! - `Content-Type: application/json`: the body must be a JSON object or array (body-parser's
//!   `strict`), else 400; a `charset` other than `utf-*` is 415; an empty body is `{}`.
//! - `application/x-www-form-urlencoded`: decoded into nested objects and arrays as `qs` does
//!   (`a=1&a=2` → `{"a": ["1", "2"]}`, `a[b]=1` → `{"a": {"b": "1"}}`, `a[]=1` → `{"a": ["1"]}`),
//!   every value a string; a `charset` other than `utf-8` is 415; more than 1000 parameters is
//!   413.
//! - Any other type, or no body: `{}`, and the body is not read.
//!
//! Both are read under body-parser's 100 kB limit (413 past it). A compressed body is 415
//! (body-parser inflates gzip and deflate; micro-gw does not). Differences from `qs`: array
//! indices (`a[1]=x&a[0]=y`) are taken in the order they appear, not sorted.

use http::request::Parts;
use http::{HeaderMap, Response};
use serde_json::{Map, Value};

use super::context::Context;
use super::step::read_request_body;
use super::Services;
use crate::model::Dialect;
use crate::policies::transformer::{json_body_text, media_type, BodyError, Form};
use crate::proxy::body::{ClientBody, GatewayBody};

const JSON_TYPE: &str = "application/json";
const FORM_TYPE: &str = "application/x-www-form-urlencoded";

/// How deep `qs` nests brackets before it keeps the rest of a name as one key (body-parser's
/// `depth`).
const MAX_DEPTH: usize = 32;

/// Whether the parsers read a body with these headers (a JSON or urlencoded media type).
pub fn parses(headers: &HeaderMap) -> bool {
    matches!(
        media_type(headers).0.as_deref(),
        Some(JSON_TYPE | FORM_TYPE)
    )
}

/// Reads the body (when [`parses`]) under the limits and parses it; the body is put back,
/// buffered, for the steps after. `Err` is the answer: 413/408/400 for a body that cannot be
/// read, 400/413/415 for one the parsers refuse, in the pipeline's dialect.
pub async fn read(
    services: &Services,
    dialect: Dialect,
    context: &mut Context<'_>,
    parts: &Parts,
    body: &mut Option<ClientBody>,
) -> Result<Value, Response<GatewayBody>> {
    if !parses(&parts.headers) {
        return Ok(Value::Object(Map::new()));
    }
    let bytes = read_request_body(services, dialect, context, parts, body, "json-schema").await?;
    let parsed = parse(&parts.headers, &bytes);
    *body = Some(ClientBody::Buffered(Some(bytes)));
    parsed.map_err(|err| {
        tracing::debug!("json-schema: the request body was refused: {err}");
        match dialect {
            Dialect::ExpressGateway => crate::respond::express_http_error(err.status()),
            Dialect::Wso2 => crate::fault::response_with(
                err.status(),
                err.status().canonical_reason().unwrap_or("Bad Request"),
                &err.to_string(),
            ),
        }
    })
}

/// `req.body` for a body read whole, with these request headers.
pub fn parse(headers: &HeaderMap, body: &[u8]) -> Result<Value, BodyError> {
    let (media, charset) = media_type(headers);
    let media = match media.as_deref() {
        Some(m @ (JSON_TYPE | FORM_TYPE)) => m,
        _ => return Ok(Value::Object(Map::new())),
    };
    let encoding = headers
        .get(http::header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?").trim());
    if let Some(e) = encoding.filter(|e| !e.eq_ignore_ascii_case("identity")) {
        return Err(BodyError::Encoding(e.to_ascii_lowercase()));
    }
    if media == JSON_TYPE {
        let charset = charset.unwrap_or_else(|| "utf-8".into());
        if !charset.starts_with("utf-") {
            return Err(BodyError::Charset(charset.to_ascii_uppercase()));
        }
        if body.is_empty() {
            return Ok(Value::Object(Map::new()));
        }
        let text = json_body_text(body, &charset)?;
        serde_json::from_str(&text).map_err(|e| BodyError::Malformed(e.to_string()))
    } else {
        let charset = charset.unwrap_or_else(|| "utf-8".into());
        if charset != "utf-8" {
            return Err(BodyError::Charset(charset.to_ascii_uppercase()));
        }
        let form = Form::parse(&String::from_utf8_lossy(body)).map_err(
            |crate::policies::transformer::TooManyParameters| BodyError::TooManyParameters,
        )?;
        Ok(Value::Object(qs_object(form.pairs())))
    }
}

/// One step of a bracketed name.
#[derive(Debug, PartialEq)]
enum Segment<'a> {
    /// `name` or `[name]`.
    Key(&'a str),
    /// `[]`.
    Push,
    /// `[3]` (at most 100, as `qs`'s `arrayLimit`).
    Index(usize),
}

/// `a[b][]` → `a`, `b`, push. Past [`MAX_DEPTH`] brackets, or after an unclosed `[`, the rest
/// is one key, as `qs` keeps it.
fn segments(name: &str) -> Vec<Segment<'_>> {
    let (first, mut rest) = match name.find('[') {
        Some(at) if at > 0 && name[at..].contains(']') => (&name[..at], &name[at..]),
        _ => return vec![Segment::Key(name)],
    };
    let mut out = vec![Segment::Key(first)];
    while let Some(inner) = rest.strip_prefix('[') {
        let Some(close) = inner.find(']') else {
            break;
        };
        if out.len() > MAX_DEPTH {
            break;
        }
        let key = &inner[..close];
        let index = key
            .parse::<usize>()
            .ok()
            .filter(|i| *i <= 100 && i.to_string() == key);
        out.push(match index {
            _ if key.is_empty() => Segment::Push,
            Some(i) => Segment::Index(i),
            None => Segment::Key(key),
        });
        rest = &inner[close + 1..];
    }
    if !rest.is_empty() {
        out.push(Segment::Key(rest));
    }
    out
}

/// `qs.parse` of decoded pairs: nested objects and arrays, repeated names as arrays.
fn qs_object(pairs: &[(String, String)]) -> Map<String, Value> {
    let mut root = Value::Object(Map::new());
    for (name, value) in pairs {
        insert(&mut root, &segments(name), Value::String(value.clone()));
    }
    match root {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn insert(node: &mut Value, path: &[Segment<'_>], value: Value) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    let wants_array = matches!(rest.first(), Some(Segment::Push | Segment::Index(_)));
    let slot = match first {
        Segment::Key(key) => {
            if let Value::Array(items) = node {
                // A name where an array was: the array becomes an object of its indices.
                let map = std::mem::take(items)
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| (i.to_string(), v))
                    .collect();
                *node = Value::Object(map);
            }
            let Value::Object(map) = node else {
                return;
            };
            if rest.is_empty() {
                match map.get_mut(*key) {
                    None => {
                        map.insert((*key).to_string(), value);
                    }
                    Some(Value::Array(items)) => items.push(value),
                    Some(existing @ Value::String(_)) => {
                        let old = std::mem::take(existing);
                        *existing = Value::Array(vec![old, value]);
                    }
                    Some(_) => {}
                }
                return;
            }
            map.entry((*key).to_string()).or_insert_with(|| {
                if wants_array {
                    Value::Array(Vec::new())
                } else {
                    Value::Object(Map::new())
                }
            })
        }
        Segment::Push | Segment::Index(_) => {
            let Value::Array(items) = node else {
                // An index where an object was: a key like any other.
                if let Value::Object(map) = node {
                    let key = match first {
                        Segment::Index(i) => i.to_string(),
                        _ => map.len().to_string(),
                    };
                    let child = if rest.is_empty() {
                        value
                    } else {
                        let mut child = Value::Object(Map::new());
                        insert(&mut child, rest, value);
                        child
                    };
                    map.insert(key, child);
                }
                return;
            };
            if rest.is_empty() {
                items.push(value);
                return;
            }
            items.push(if wants_array {
                Value::Array(Vec::new())
            } else {
                Value::Object(Map::new())
            });
            match items.last_mut() {
                Some(last) => last,
                None => return,
            }
        }
    };
    if rest.is_empty() {
        *slot = value;
    } else {
        insert(slot, rest, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn headers(content_type: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(http::header::CONTENT_TYPE, content_type.parse().unwrap());
        h
    }

    #[test]
    fn json_bodies_are_objects_or_arrays() {
        let h = headers("application/json; charset=utf-8");
        assert_eq!(parse(&h, br#"{"a": 1}"#).unwrap(), json!({"a": 1}));
        assert_eq!(parse(&h, b" [1]").unwrap(), json!([1]));
        assert_eq!(parse(&h, b"").unwrap(), json!({}));
        assert_eq!(parse(&h, b"\"x\"").unwrap_err().status(), 400);
        assert_eq!(parse(&h, b"{nope").unwrap_err().status(), 400);
        let latin = headers("application/json; charset=latin1");
        assert_eq!(parse(&latin, b"{}").unwrap_err().status(), 415);
        let mut gzip = headers("application/json");
        gzip.insert(http::header::CONTENT_ENCODING, "gzip".parse().unwrap());
        assert_eq!(parse(&gzip, b"{}").unwrap_err().status(), 415);
    }

    #[test]
    fn other_types_and_no_type_are_an_empty_object() {
        assert_eq!(
            parse(&headers("text/plain"), b"{\"a\":1}").unwrap(),
            json!({})
        );
        assert_eq!(parse(&HeaderMap::new(), b"a=1").unwrap(), json!({}));
        assert!(!parses(&headers("application/vnd.api+json")));
        assert!(parses(&headers("Application/JSON")));
    }

    #[test]
    fn forms_nest_as_qs_does() {
        let h = headers("application/x-www-form-urlencoded");
        let form = |body: &str| parse(&h, body.as_bytes()).unwrap();
        assert_eq!(
            form("name=Clark+Kent&age=30"),
            json!({"name": "Clark Kent", "age": "30"})
        );
        assert_eq!(form("a=1&a=2&a=3"), json!({"a": ["1", "2", "3"]}));
        assert_eq!(form("a[]=1&a[]=2"), json!({"a": ["1", "2"]}));
        assert_eq!(form("a[0]=x&a[1]=y"), json!({"a": ["x", "y"]}));
        assert_eq!(
            form("user[name]=C&user[tags][]=t&user[addr][city]=M"),
            json!({"user": {"name": "C", "tags": ["t"], "addr": {"city": "M"}}})
        );
        assert_eq!(form("a[b=1&=2"), json!({"a[b": "1"}));
        assert_eq!(form("a[007]=1"), json!({"a": {"007": "1"}}));
        assert_eq!(form("a[]=1&a[k]=2"), json!({"a": {"0": "1", "k": "2"}}));
        assert_eq!(form(""), json!({}));
        let many = "a&".repeat(1000);
        assert_eq!(parse(&h, many.as_bytes()).unwrap_err().status(), 413);
        let deep = format!("a{}=1", "[b]".repeat(100));
        assert!(parse(&h, deep.as_bytes()).is_ok());
    }
}
