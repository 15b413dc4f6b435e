//! The transformers and the `headers` policy at run time: pure functions over headers and body
//! bytes that the pipeline engine calls (it buffers bodies under its size limit).
//!
//! Semantics follow Express Gateway 1.16: `lib/policies/request-transformer/transform-object.js`
//! (every `add` is evaluated and assigned, replacing a header of that name, then every `remove`
//! deleted), `request-transformer/index.js` (the body is read with Express's `json()` then
//! `urlencoded()` parsers and written back as JSON or form data, with `Content-Length` and
//! `Content-Type` set), `response-transformer/index.js` (the response body is parsed as JSON
//! whatever its type and left as it is when that fails) and `lib/policies/headers/headers.js`.

use std::borrow::Cow;

use http::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

use super::form::{Form, TooManyParameters};
use super::json::{self, Json};
use super::{parse_header_name, parse_value, HeadersSpec, SpecError, TransformerSpec};
use crate::expression::{EvalError, Expression, RequestScope, Value};

/// A ready `request-transformer` or `response-transformer` step.
///
/// ```ignore
/// let policy = TransformerPolicy::new(&spec)?;                  // at start-up
/// let changes = policy.header_changes(&scope)?;                 // per request (scope borrows parts)
/// changes.apply(&mut parts.headers);                            // once the scope is dropped
/// ```
#[derive(Debug, Clone)]
pub struct TransformerPolicy {
    headers: HeaderOps,
    body: Option<BodyOps>,
}

#[derive(Debug, Clone, Default)]
struct HeaderOps {
    add: Vec<(HeaderName, Expression)>,
    remove: Vec<HeaderName>,
}

#[derive(Debug, Clone, Default)]
struct BodyOps {
    add: Vec<(String, Expression)>,
    remove: Vec<String>,
}

/// Header changes evaluated for one message: apply them once the [`RequestScope`] (which borrows
/// the request) is gone.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HeaderChanges {
    /// Headers to set, replacing every value of that name (`headers[name] = value` in EG).
    pub set: Vec<(HeaderName, HeaderValue)>,
    /// Headers to delete, after the sets.
    pub remove: Vec<HeaderName>,
}

impl HeaderChanges {
    /// Nothing to change.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.remove.is_empty()
    }

    /// Sets, then removes.
    pub fn apply(self, headers: &mut HeaderMap) {
        for (name, value) in self.set {
            headers.insert(name, value);
        }
        for name in &self.remove {
            headers.remove(name);
        }
    }
}

/// A request body written back by the transformer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransformedBody {
    /// The new body.
    pub bytes: Vec<u8>,
    /// Its type: `application/json` or `application/x-www-form-urlencoded`.
    pub content_type: &'static str,
}

impl TransformedBody {
    /// Sets `Content-Type` and `Content-Length` for the new body, as EG does, and drops
    /// `Transfer-Encoding` and `Content-Encoding` (the body is now plain and of known length).
    pub fn apply_headers(&self, headers: &mut HeaderMap) {
        headers.remove(TRANSFER_ENCODING);
        headers.remove(CONTENT_ENCODING);
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(self.content_type));
        headers.insert(CONTENT_LENGTH, HeaderValue::from(self.bytes.len()));
    }
}

/// Why a request body could not be transformed: Express's body parsers' errors (`http-errors`
/// statuses of body-parser 1.20), or an expression that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// A JSON body that `JSON.parse` refuses, or that is not an object or array (400).
    #[error("the JSON body is malformed: {0}")]
    Malformed(String),
    /// A `charset` the parser does not read (415): JSON needs `utf-*`, form data `utf-8`.
    #[error("unsupported charset \"{0}\"")]
    Charset(String),
    /// A compressed body (415).
    #[error("unsupported content encoding \"{0}\"")]
    Encoding(String),
    /// More than 1000 form parameters (413).
    #[error("too many parameters")]
    TooManyParameters,
    /// An expression raised a JavaScript error (500, Express's error handler in EG).
    #[error("{0}")]
    Eval(#[from] EvalError),
}

impl BodyError {
    /// The status Express Gateway answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            BodyError::Malformed(_) => StatusCode::BAD_REQUEST,
            BodyError::Charset(_) | BodyError::Encoding(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            BodyError::TooManyParameters => StatusCode::PAYLOAD_TOO_LARGE,
            BodyError::Eval(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl TransformerPolicy {
    /// Parses every expression and added header name.
    pub fn new(spec: &TransformerSpec) -> Result<Self, SpecError> {
        let mut headers = HeaderOps::default();
        if let Some(ops) = &spec.headers {
            for (name, source) in &ops.add {
                let field = format!("headers.add.{name}");
                let header = parse_header_name(&field, name)?;
                headers.add.push((header, parse_value(field, source)?));
            }
            // A name no header can have matches nothing (a no-op in EG too).
            headers.remove = ops
                .remove
                .iter()
                .filter_map(|n| HeaderName::from_bytes(n.as_bytes()).ok())
                .collect();
        }
        let body = match &spec.body {
            None => None,
            Some(ops) => Some(BodyOps {
                add: ops
                    .add
                    .iter()
                    .map(|(name, source)| {
                        Ok((
                            name.clone(),
                            parse_value(format!("body.add.{name}"), source)?,
                        ))
                    })
                    .collect::<Result<_, SpecError>>()?,
                remove: ops.remove.clone(),
            }),
        };
        Ok(Self { headers, body })
    }

    /// The step changes headers.
    pub fn changes_headers(&self) -> bool {
        !self.headers.add.is_empty() || !self.headers.remove.is_empty()
    }

    /// The step changes the body (the engine must buffer it).
    pub fn changes_body(&self) -> bool {
        self.body.is_some()
    }

    /// Whether [`Self::transform_request_body`] reads the body of a request with these
    /// headers: JSON and urlencoded bodies (the media types Express's parsers read); any other
    /// is replaced without being read.
    pub fn parses_request_body(&self, headers: &HeaderMap) -> bool {
        matches!(
            media_type(headers).0.as_deref(),
            Some("application/json" | "application/x-www-form-urlencoded")
        )
    }

    /// Evaluates the header changes against `scope` (request headers in the request phase,
    /// response headers in the response phase). Values are evaluated against the message as it
    /// was before the step. A value that cannot be a header (`undefined`, characters beyond
    /// Latin-1, control characters) is skipped with a warning.
    pub fn header_changes(&self, scope: &RequestScope<'_>) -> Result<HeaderChanges, EvalError> {
        let mut set = Vec::with_capacity(self.headers.add.len());
        for (name, expression) in &self.headers.add {
            if let Some(value) = header_value(name, &expression.eval(scope)?) {
                set.push((name.clone(), value));
            }
        }
        Ok(HeaderChanges {
            set,
            remove: self.headers.remove.clone(),
        })
    }

    /// Rewrites a request body as Express Gateway does: with `Content-Type: application/json`,
    /// the JSON object (or array, left as it is) gets its fields added and removed; with
    /// `application/x-www-form-urlencoded` and at least one field, the form does; any other
    /// body (none, empty, another type) is replaced by a JSON object of the added fields.
    /// `headers` are the request's (type, charset, encoding). `None` when the step has no body
    /// changes (the body is not read).
    pub fn transform_request_body(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        scope: &RequestScope<'_>,
    ) -> Result<Option<TransformedBody>, BodyError> {
        const JSON_TYPE: &str = "application/json";
        const FORM_TYPE: &str = "application/x-www-form-urlencoded";
        let Some(ops) = &self.body else {
            return Ok(None);
        };
        let (media, charset) = media_type(headers);
        let encoding = || -> Result<(), BodyError> {
            match headers
                .get(CONTENT_ENCODING)
                .map(|v| v.to_str().unwrap_or("?"))
            {
                None => Ok(()),
                Some(e) if e.trim().eq_ignore_ascii_case("identity") => Ok(()),
                Some(e) => Err(BodyError::Encoding(e.trim().to_ascii_lowercase())),
            }
        };
        match media.as_deref() {
            Some(JSON_TYPE) => {
                let charset = charset.unwrap_or_else(|| "utf-8".into());
                if !charset.starts_with("utf-") {
                    return Err(BodyError::Charset(charset.to_ascii_uppercase()));
                }
                encoding()?;
                let text = json_body_text(body, &charset)?;
                let value = if body.is_empty() {
                    Json::Object(json::Object::default())
                } else {
                    json::parse(&text).map_err(|e| {
                        BodyError::Malformed(format!("{} at byte {}", e.message, e.offset))
                    })?
                };
                let value = match value {
                    Json::Object(object) => Json::Object(apply_json(ops, object, scope)?),
                    other => other,
                };
                Ok(Some(TransformedBody {
                    bytes: json::stringify(&value).into_bytes(),
                    content_type: JSON_TYPE,
                }))
            }
            Some(FORM_TYPE) => {
                let charset = charset.unwrap_or_else(|| "utf-8".into());
                if charset != "utf-8" {
                    return Err(BodyError::Charset(charset.to_ascii_uppercase()));
                }
                encoding()?;
                let mut form = Form::parse(&String::from_utf8_lossy(body))
                    .map_err(|TooManyParameters| BodyError::TooManyParameters)?;
                if form.is_empty() {
                    return json_from_nothing(ops, scope).map(Some);
                }
                for (name, expression) in &ops.add {
                    let value = expression.eval(scope)?;
                    let text = match value {
                        Value::Undefined => None,
                        other => Some(other.to_js_string().into_owned()),
                    };
                    form.set(name, text);
                }
                for name in &ops.remove {
                    form.remove(name);
                }
                Ok(Some(TransformedBody {
                    bytes: form.encode().into_bytes(),
                    content_type: FORM_TYPE,
                }))
            }
            _ => json_from_nothing(ops, scope).map(Some),
        }
    }

    /// Rewrites a response body as Express Gateway does (`JSON.stringify(transformObject(...,
    /// JSON.parse(data)))`): a JSON object gets its fields added and removed; another JSON value
    /// but `null` (an array, a string, a number, a boolean: JavaScript ignores fields set on
    /// them) is written again as `JSON.stringify` writes it, without the spaces between
    /// tokens; `null`, a body that is not JSON and an expression that fails (EG catches the
    /// error and writes the original) give `None`, meaning the body goes out unchanged. The
    /// caller sets `Content-Length` for a new body.
    pub fn transform_response_body(
        &self,
        body: &[u8],
        scope: &RequestScope<'_>,
    ) -> Option<Vec<u8>> {
        let ops = self.body.as_ref()?;
        let text = String::from_utf8_lossy(body);
        let value = match json::parse(&text).ok()? {
            Json::Object(object) => Json::Object(apply_json(ops, object, scope).ok()?),
            // `null[name] = ...` throws a TypeError.
            Json::Null => return None,
            other => {
                // The values are still evaluated (and may throw) before the assignment that
                // JavaScript then ignores on a primitive or an array's named property.
                for (_, expression) in &ops.add {
                    expression.eval(scope).ok()?;
                }
                other
            }
        };
        Some(json::stringify(&value).into_bytes())
    }
}

/// The text of a JSON body as Express's `json()` parser (strict mode) reads it, once its
/// `charset` is known to be `utf-*`: decoded (a charset it cannot decode is
/// [`BodyError::Charset`]), without a leading byte-order mark, and, unless the body is empty,
/// starting (after JSON whitespace) with `{` or `[` ([`BodyError::Malformed`] otherwise).
/// Shared by the body transformers and the `json-schema` condition.
pub(crate) fn json_body_text<'a>(body: &'a [u8], charset: &str) -> Result<Cow<'a, str>, BodyError> {
    let text = match decode_unicode(body, charset)
        .ok_or_else(|| BodyError::Charset(charset.to_ascii_uppercase()))?
    {
        Cow::Borrowed(text) => Cow::Borrowed(text.strip_prefix('\u{feff}').unwrap_or(text)),
        Cow::Owned(text) => match text.strip_prefix('\u{feff}') {
            Some(rest) => Cow::Owned(rest.to_owned()),
            None => Cow::Owned(text),
        },
    };
    let starts_as_container = matches!(
        text.trim_start_matches([' ', '\t', '\n', '\r'])
            .chars()
            .next(),
        Some('{' | '[')
    );
    if !body.is_empty() && !starts_as_container {
        return Err(BodyError::Malformed(
            "the body is not a JSON object or array".into(),
        ));
    }
    Ok(text)
}

/// A JSON body's text in `charset` (lower case, starting with `utf-`), as body-parser decodes
/// it with iconv-lite: UTF-8 (invalid sequences replaced), UTF-16 and UTF-32 (`utf-16` and
/// `utf-32` by their byte-order mark, else by where the zero bytes of ASCII text are, else
/// little-endian), UTF-7 read as UTF-8 (the same for the ASCII of JSON text but `+`). `None`
/// for a `utf-` charset iconv-lite does not know (body-parser's 415).
pub(crate) fn decode_unicode<'a>(body: &'a [u8], charset: &str) -> Option<Cow<'a, str>> {
    let utf16 = |big: bool| -> String {
        let mut pairs = body.chunks_exact(2);
        let units = pairs.by_ref().map(|c| match c {
            [a, b] if big => u16::from_be_bytes([*a, *b]),
            [a, b] => u16::from_le_bytes([*a, *b]),
            _ => 0xfffd,
        });
        let mut out: String = char::decode_utf16(units)
            .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
            .collect();
        if !pairs.remainder().is_empty() {
            out.push(char::REPLACEMENT_CHARACTER);
        }
        out
    };
    let utf32 = |big: bool| -> String {
        let mut quads = body.chunks_exact(4);
        let mut out: String = quads
            .by_ref()
            .map(|c| {
                let bytes = [
                    c.first().copied().unwrap_or(0),
                    c.get(1).copied().unwrap_or(0),
                    c.get(2).copied().unwrap_or(0),
                    c.get(3).copied().unwrap_or(0),
                ];
                let unit = if big {
                    u32::from_be_bytes(bytes)
                } else {
                    u32::from_le_bytes(bytes)
                };
                char::from_u32(unit).unwrap_or(char::REPLACEMENT_CHARACTER)
            })
            .collect();
        if !quads.remainder().is_empty() {
            out.push(char::REPLACEMENT_CHARACTER);
        }
        out
    };
    // iconv-lite's guess without a BOM: ASCII text has its zero byte first in big-endian units.
    let big_endian_guess = |width: usize| -> bool {
        let (mut big, mut little) = (0usize, 0usize);
        for unit in body.chunks_exact(width).take(100) {
            let first_zero = unit.first() == Some(&0);
            let last_zero = unit.last() == Some(&0);
            if first_zero && !last_zero {
                big += 1;
            } else if last_zero && !first_zero {
                little += 1;
            }
        }
        big > little
    };
    let text = match charset {
        "utf-8" | "utf-7" | "utf-7-imap" => String::from_utf8_lossy(body),
        "utf-16le" => Cow::Owned(utf16(false)),
        "utf-16be" => Cow::Owned(utf16(true)),
        "utf-16" => Cow::Owned(match body {
            [0xff, 0xfe, ..] => utf16(false),
            [0xfe, 0xff, ..] => utf16(true),
            _ => utf16(big_endian_guess(2)),
        }),
        "utf-32le" => Cow::Owned(utf32(false)),
        "utf-32be" => Cow::Owned(utf32(true)),
        "utf-32" => Cow::Owned(match body {
            [0xff, 0xfe, 0, 0, ..] => utf32(false),
            [0, 0, 0xfe, 0xff, ..] => utf32(true),
            _ => utf32(big_endian_guess(4)),
        }),
        _ => return None,
    };
    Some(text)
}

/// What EG sends when the body was not JSON or form data: `JSON.stringify` of an empty
/// object with the fields added.
fn json_from_nothing(
    ops: &BodyOps,
    scope: &RequestScope<'_>,
) -> Result<TransformedBody, BodyError> {
    let object = apply_json(ops, json::Object::default(), scope)?;
    Ok(TransformedBody {
        bytes: json::stringify(&Json::Object(object)).into_bytes(),
        content_type: "application/json",
    })
}

fn apply_json(
    ops: &BodyOps,
    mut object: json::Object,
    scope: &RequestScope<'_>,
) -> Result<json::Object, EvalError> {
    for (name, expression) in &ops.add {
        match json::from_value(&expression.eval(scope)?) {
            Some(value) => object.set(name, value),
            // `obj[name] = undefined`: JSON.stringify leaves the key out.
            None => object.remove(name),
        }
    }
    for name in &ops.remove {
        object.remove(name);
    }
    Ok(object)
}

/// The media type (lower case, without parameters) and `charset` parameter (lower case) of
/// `Content-Type`.
pub(crate) fn media_type(headers: &HeaderMap) -> (Option<String>, Option<String>) {
    let Some(value) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return (None, None);
    };
    let mut parts = value.split(';');
    let media = parts
        .next()
        .map(|m| m.trim().to_ascii_lowercase())
        .filter(|m| !m.is_empty());
    let charset = parts.find_map(|p| {
        let (key, value) = p.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| value.trim().trim_matches('"').to_ascii_lowercase())
    });
    (media, charset)
}

/// A JavaScript value as Node writes it into a header (`setHeader`): ToString, each character
/// one Latin-1 byte. `None`, with a warning, for `undefined` and for what Node refuses.
fn header_value(name: &HeaderName, value: &Value<'_>) -> Option<HeaderValue> {
    if matches!(value, Value::Undefined) {
        tracing::warn!(header = %name, "the value evaluated to undefined: header not set");
        return None;
    }
    let text: Cow<'_, str> = value.to_js_string();
    let bytes: Option<Vec<u8>> = text
        .chars()
        .map(|c| u8::try_from(u32::from(c)).ok())
        .collect();
    let Some(bytes) = bytes else {
        tracing::warn!(header = %name, "the value has characters beyond Latin-1: header not set");
        return None;
    };
    match HeaderValue::from_bytes(&bytes) {
        Ok(value) => Some(value),
        Err(_) => {
            tracing::warn!(header = %name, "the value has control characters: header not set");
            None
        }
    }
}

/// A ready `headers` step (Express Gateway's deprecated policy): sets `<prefix><name>` on the
/// request to each value.
#[derive(Debug, Clone)]
pub struct HeadersPolicy {
    forward: Vec<(HeaderName, Expression)>,
}

impl HeadersPolicy {
    /// Parses every expression and header name.
    pub fn new(spec: &HeadersSpec) -> Result<Self, SpecError> {
        let forward = spec
            .forward
            .iter()
            .map(|(name, source)| {
                let field = format!("forwardHeaders.{name}");
                let header = parse_header_name(&field, &format!("{}{name}", spec.prefix))?;
                Ok((header, parse_value(field, source)?))
            })
            .collect::<Result<_, SpecError>>()?;
        Ok(Self { forward })
    }

    /// Evaluates the headers to set on the request.
    pub fn header_changes(&self, scope: &RequestScope<'_>) -> Result<HeaderChanges, EvalError> {
        let mut set = Vec::with_capacity(self.forward.len());
        for (name, expression) in &self.forward {
            if let Some(value) = header_value(name, &expression.eval(scope)?) {
                set.push((name.clone(), value));
            }
        }
        Ok(HeaderChanges {
            set,
            remove: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests;
