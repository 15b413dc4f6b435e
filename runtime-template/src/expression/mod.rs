//! JavaScript expressions as Express Gateway configurations write them.
//!
//! Express Gateway (EG 1.16, `lib/gateway/context.js`) runs the values of `request-transformer`
//! and `response-transformer` entries and of the `headers` policy with `vm.runInNewContext`, the
//! per-request context object being the global; `log` messages and `rateLimitBy` are run the same
//! way wrapped in backticks (`evaluateAsTemplateString`). Real configurations use a small part of
//! JavaScript (Kargo: `"'Basic'"`), which this module parses and evaluates itself:
//!
//! - literals: `'…'` and `"…"` strings with JavaScript escapes, numbers (decimal, exponent,
//!   `0x`/`0o`/`0b`), `true`, `false`, `null`, `undefined`, `NaN`, `Infinity`, and template
//!   literals with `${…}` substitutions;
//! - operators: `+` (string concatenation when either side is a string, else numeric addition),
//!   `||`, `&&`, `??`, `a ? b : c`, `===`, `!==`, `==`, `!=`, unary `!`, `-`, `+`, parentheses;
//! - lookups on the globals `req`, `res`, `egContext`, `consumer`, `requestID` and `apiEndpoint`,
//!   with `.name`, `['name']` and optional chaining `?.`: `req.headers.<name>`,
//!   `req.query.<name>`, `req.user.<field>` (= `consumer.<field>`), `req.ip`, `req.hostname`
//!   (`req.host`), `req.method`, `req.url`, `req.originalUrl`, `req.path`, `req.protocol`,
//!   `req.secure`, `res.statusCode`, `requestID`, `apiEndpoint.apiEndpointName` and
//!   `apiEndpoint.scopes`, each also under `egContext.` (and `req.egContext.`).
//!
//! Everything else — function calls, assignments, other globals or properties, other operators,
//! statements, the `expression` policy's code — is refused by [`Expression::parse`] with an
//! [`ExpressionError`] giving the column and what is not supported. The toolkit parses every
//! expression when it builds a project, so a gateway never starts with one it cannot run; the
//! gateway parses them again from their source text when it starts.
//!
//! Header lookups are case-insensitive (Node lower-cases `req.headers` keys, so EG only finds
//! lower-case names; an upper-case name there read `undefined` in EG and reads the header here).

mod parser;
mod scope;
mod value;

use std::borrow::Cow;

use http::HeaderName;

#[cfg(feature = "store")]
pub(crate) use scope::form_decode;
pub use scope::{Consumer, ConsumerInfo, RequestScope};
pub use value::{number_to_string, string_to_number, Value};

/// An expression that cannot be run: not JavaScript, or JavaScript beyond the supported forms.
///
/// The caller adds the file, the pipeline and the expression's text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {column}: {message}")]
pub struct ExpressionError {
    /// Byte offset of the problem in the source text.
    pub offset: usize,
    /// 1-based column (in characters) of the problem in the source text.
    pub column: usize,
    /// What is wrong, and what is supported instead.
    pub message: String,
}

/// A JavaScript error raised while evaluating (reading a field of an absent consumer:
/// `req.user.id` on an anonymous request). Express Gateway lets it reach Express's error handler
/// (a 500) in transformers and logs `failed to build log message: <message>` in `log`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct EvalError {
    /// The message V8 gives, e.g. `Cannot read properties of undefined (reading 'id')`.
    pub message: String,
}

/// A parsed expression, ready to evaluate against any number of requests.
#[derive(Debug, Clone, PartialEq)]
pub struct Expression {
    source: Box<str>,
    root: Node,
}

impl Expression {
    /// Parses `source` as a JavaScript expression (a transformer value, a `headers` value).
    pub fn parse(source: &str) -> Result<Self, ExpressionError> {
        let root = parser::Parser::new(source, 0).parse_all()?;
        Ok(Self {
            source: source.into(),
            root,
        })
    }

    /// Parses `text` as the body of a template literal, as Express Gateway's
    /// `evaluateAsTemplateString` does by wrapping it in backticks (a `log` message,
    /// `rateLimitBy`). Columns in errors count in `text`.
    pub fn parse_template(text: &str) -> Result<Self, ExpressionError> {
        let wrapped = format!("`{text}`");
        let root = parser::Parser::new(&wrapped, 1).parse_all()?;
        Ok(Self {
            source: text.into(),
            root,
        })
    }

    /// The source text it was parsed from (for templates, without the backticks).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The expression is a constant: no lookup, the same value for every request
    /// (`"'Basic'"`).
    pub fn constant(&self) -> Option<Value<'_>> {
        fn constant(node: &Node) -> bool {
            match node {
                Node::Path(_) => false,
                Node::Template(parts) => parts.iter().all(|p| match p {
                    TemplatePart::Text(_) => true,
                    TemplatePart::Expr(e) => constant(e),
                }),
                Node::Not(a) | Node::Negate(a) | Node::ToNumber(a) => constant(a),
                Node::Add(a, b)
                | Node::And(a, b)
                | Node::Or(a, b)
                | Node::Nullish(a, b)
                | Node::Equals {
                    left: a, right: b, ..
                } => constant(a) && constant(b),
                Node::Conditional(a, b, c) => constant(a) && constant(b) && constant(c),
                _ => true,
            }
        }
        if !constant(&self.root) {
            return None;
        }
        let parts = http::Request::new(()).into_parts().0;
        let scope = RequestScope::new(&parts, std::net::Ipv4Addr::UNSPECIFIED.into());
        // A constant borrows nothing from the scope; converting keeps only the expression's
        // borrows.
        eval(&self.root, &scope).ok().map(|v| match v {
            Value::Str(Cow::Borrowed(s)) => Value::Str(Cow::Owned(s.to_string())),
            Value::Str(Cow::Owned(s)) => Value::Str(Cow::Owned(s)),
            Value::Undefined => Value::Undefined,
            Value::Null => Value::Null,
            Value::Bool(b) => Value::Bool(b),
            Value::Number(n) => Value::Number(n),
            Value::Object => Value::Object,
        })
    }

    /// Evaluates against a request.
    pub fn eval<'a>(&'a self, scope: &RequestScope<'a>) -> Result<Value<'a>, EvalError> {
        eval(&self.root, scope)
    }

    /// Evaluates and converts with JavaScript ToString (`undefined` → `"undefined"`).
    pub fn eval_string<'a>(&'a self, scope: &RequestScope<'a>) -> Result<Cow<'a, str>, EvalError> {
        Ok(match self.eval(scope)? {
            Value::Str(s) => s,
            other => Cow::Owned(other.to_js_string().into_owned()),
        })
    }
}

/// The syntax tree: lookups are already resolved to what they read.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    Undefined,
    Null,
    Bool(bool),
    Number(f64),
    Str(Box<str>),
    Template(Vec<TemplatePart>),
    Path(Path),
    Not(Box<Node>),
    Negate(Box<Node>),
    ToNumber(Box<Node>),
    Add(Box<Node>, Box<Node>),
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    Nullish(Box<Node>, Box<Node>),
    Equals {
        strict: bool,
        negate: bool,
        left: Box<Node>,
        right: Box<Node>,
    },
    Conditional(Box<Node>, Box<Node>, Box<Node>),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TemplatePart {
    Text(Box<str>),
    Expr(Node),
}

/// One property read after a global.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Segment {
    pub(crate) name: Box<str>,
    /// Read with `?.`.
    pub(crate) optional: bool,
    /// Byte offset in the source (for errors).
    pub(crate) offset: usize,
}

/// What a lookup reads.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Path {
    /// `req`, `req.headers`, `egContext`, ...: an object, read whole.
    Object,
    /// `req.headers.<name>`; `None` for a name no header can have.
    Header(Option<HeaderName>),
    Query(Box<str>),
    /// `req.user` / `consumer` and the fields read from it.
    Consumer(Vec<Segment>),
    Ip,
    Hostname,
    Method,
    Url,
    OriginalUrl,
    Pathname,
    Protocol,
    Secure,
    RequestId,
    EndpointName,
    Scopes,
    StatusCode,
}

fn eval<'a>(node: &'a Node, scope: &RequestScope<'a>) -> Result<Value<'a>, EvalError> {
    Ok(match node {
        Node::Undefined => Value::Undefined,
        Node::Null => Value::Null,
        Node::Bool(b) => Value::Bool(*b),
        Node::Number(n) => Value::Number(*n),
        Node::Str(s) => Value::Str(Cow::Borrowed(s)),
        Node::Template(parts) => match parts.as_slice() {
            [TemplatePart::Text(t)] => Value::Str(Cow::Borrowed(t)),
            _ => {
                let mut out = String::new();
                for part in parts {
                    match part {
                        TemplatePart::Text(t) => out.push_str(t),
                        TemplatePart::Expr(e) => eval(e, scope)?.write_js_string(&mut out),
                    }
                }
                Value::Str(Cow::Owned(out))
            }
        },
        Node::Path(path) => lookup(path, scope)?,
        Node::Not(a) => Value::Bool(!eval(a, scope)?.truthy()),
        Node::Negate(a) => Value::Number(-eval(a, scope)?.to_number()),
        Node::ToNumber(a) => Value::Number(eval(a, scope)?.to_number()),
        Node::Add(a, b) => {
            let (a, b) = (eval(a, scope)?, eval(b, scope)?);
            // ToPrimitive turns objects into "[object Object]", a string.
            let stringish = |v: &Value<'_>| matches!(v, Value::Str(_) | Value::Object);
            if stringish(&a) || stringish(&b) {
                let mut out = match a {
                    Value::Str(s) => s.into_owned(),
                    other => other.to_js_string().into_owned(),
                };
                b.write_js_string(&mut out);
                Value::Str(Cow::Owned(out))
            } else {
                Value::Number(a.to_number() + b.to_number())
            }
        }
        Node::And(a, b) => {
            let a = eval(a, scope)?;
            if a.truthy() {
                eval(b, scope)?
            } else {
                a
            }
        }
        Node::Or(a, b) => {
            let a = eval(a, scope)?;
            if a.truthy() {
                a
            } else {
                eval(b, scope)?
            }
        }
        Node::Nullish(a, b) => match eval(a, scope)? {
            Value::Undefined | Value::Null => eval(b, scope)?,
            a => a,
        },
        Node::Equals {
            strict,
            negate,
            left,
            right,
        } => {
            let (a, b) = (eval(left, scope)?, eval(right, scope)?);
            let equal = if *strict {
                a.strict_equals(&b)
            } else {
                a.loose_equals(&b)
            };
            Value::Bool(equal != *negate)
        }
        Node::Conditional(test, then, otherwise) => {
            if eval(test, scope)?.truthy() {
                eval(then, scope)?
            } else {
                eval(otherwise, scope)?
            }
        }
    })
}

fn lookup<'a>(path: &'a Path, scope: &RequestScope<'a>) -> Result<Value<'a>, EvalError> {
    let text = |s: &'a str| Value::Str(Cow::Borrowed(s));
    Ok(match path {
        Path::Object => Value::Object,
        Path::Header(Some(name)) => scope.header(name),
        Path::Header(None) => Value::Undefined,
        Path::Query(name) => scope.query(name),
        Path::Consumer(segments) => return consumer(segments, scope),
        Path::Ip => Value::Str(Cow::Owned(scope.client_ip.to_string())),
        Path::Hostname => scope.hostname(),
        Path::Method => text(scope.parts.method.as_str()),
        Path::Url | Path::OriginalUrl => text(scope.url()),
        Path::Pathname => text(scope.url_path()),
        Path::Protocol => text(if scope.secure { "https" } else { "http" }),
        Path::Secure => Value::Bool(scope.secure),
        Path::RequestId => text(scope.request_id),
        Path::EndpointName => text(scope.api_endpoint),
        Path::Scopes => match scope.scopes {
            [] => text(""),
            [one] => text(one),
            many => Value::Str(Cow::Owned(many.join(","))),
        },
        Path::StatusCode => Value::Number(f64::from(scope.status.unwrap_or(200))),
    })
}

fn consumer<'a>(segments: &'a [Segment], scope: &RequestScope<'a>) -> Result<Value<'a>, EvalError> {
    let type_error = |i: usize, base: &str| EvalError {
        message: format!(
            "Cannot read properties of {base} (reading '{}')",
            segments.get(i).map_or("", |s| &s.name)
        ),
    };
    let Some(consumer) = scope.consumer else {
        return match segments.first() {
            None => Ok(Value::Undefined),
            Some(first) if first.optional => Ok(Value::Undefined),
            Some(_) => Err(type_error(0, "undefined")),
        };
    };
    if segments.is_empty() {
        return Ok(Value::Object);
    }
    let names: Vec<&str> = segments.iter().map(|s| &*s.name).collect();
    match consumer.lookup(&names) {
        Ok(value) => Ok(value),
        // Optional chaining short-circuits where the base is nullish.
        Err(i) if segments.get(i).is_some_and(|s| s.optional) => Ok(Value::Undefined),
        Err(i) => Err(type_error(i, "undefined")),
    }
}

#[cfg(test)]
mod tests;
