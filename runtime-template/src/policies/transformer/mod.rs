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
