//! `request-transformer`, `response-transformer` and the deprecated `headers` policy
//! (Express Gateway 1.16 `lib/policies/{request,response}-transformer`, `lib/policies/headers`).
//! Values are JavaScript expressions, evaluated per request by [`crate::expression`].

use serde::{Deserialize, Serialize};

/// `add` / `remove` for one part of a message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Operations {
    /// `add`: name → JavaScript expression, in declaration order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub add: Vec<(String, String)>,
    /// `remove`: names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove: Vec<String>,
}

/// A request or response transformer's action (at least one part is present).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransformerSpec {
    /// Header changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<Operations>,
    /// JSON (and, for requests, urlencoded) body field changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Operations>,
}

/// The deprecated `headers` policy's action.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeadersSpec {
    /// `headersPrefix` (default empty), put before every name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub prefix: String,
    /// `forwardHeaders`: name → JavaScript expression.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub forward: Vec<(String, String)>,
}

#[cfg(feature = "server")]
mod form;
#[cfg(feature = "server")]
mod json;
#[cfg(feature = "server")]
mod runtime;
#[cfg(feature = "server")]
pub use runtime::{BodyError, HeaderChanges, HeadersPolicy, TransformedBody, TransformerPolicy};
// Express's body parsers, also read by the `json-schema` condition (`pipeline::express_body`).
#[cfg(feature = "server")]
pub(crate) use form::{Form, TooManyParameters};
#[cfg(feature = "server")]
pub(crate) use runtime::{json_body_text, media_type};

use crate::expression::{Expression, ExpressionError};

/// An expression or a name in a transformer or `headers` action that cannot be run. The caller
/// adds the file and the pipeline.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// A value is not a supported expression.
    #[error("{field}: the expression {expression:?} cannot be run: {error}")]
    Expression {
        /// Where in the action: `headers.add.r-test`, `forwardHeaders.x-user`, `message`.
        field: String,
        /// The expression's text.
        expression: String,
        /// What is wrong with it.
        #[source]
        error: ExpressionError,
    },
    /// A header to add has a name no header can have (Express Gateway would fail every request
    /// with a 500).
    #[error("{field}: {name:?} is not a valid header name")]
    HeaderName {
        /// Where in the action.
        field: String,
        /// The name.
        name: String,
    },
}

pub(crate) fn parse_value(field: String, source: &str) -> Result<Expression, SpecError> {
    Expression::parse(source).map_err(|error| SpecError::Expression {
        field,
        expression: source.to_string(),
        error,
    })
}

pub(crate) fn parse_header_name(field: &str, name: &str) -> Result<http::HeaderName, SpecError> {
    http::HeaderName::from_bytes(name.as_bytes()).map_err(|_| SpecError::HeaderName {
        field: field.to_string(),
        name: name.to_string(),
    })
}

impl TransformerSpec {
    /// Checks every expression and added header name, as the toolkit does when it builds a
    /// project (the gateway checks again when it starts, by building the policy).
    pub fn check(&self) -> Result<(), SpecError> {
        for (part, ops) in [("headers", &self.headers), ("body", &self.body)] {
            for (name, source) in ops.iter().flat_map(|o| &o.add) {
                let field = format!("{part}.add.{name}");
                if part == "headers" {
                    parse_header_name(&field, name)?;
                }
                parse_value(field, source)?;
            }
        }
        Ok(())
    }
}

impl HeadersSpec {
    /// Checks every expression and header name (prefix included).
    pub fn check(&self) -> Result<(), SpecError> {
        for (name, source) in &self.forward {
            let field = format!("forwardHeaders.{name}");
            parse_header_name(&field, &format!("{}{name}", self.prefix))?;
            parse_value(field, source)?;
        }
        Ok(())
    }
}
