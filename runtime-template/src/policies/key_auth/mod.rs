//! Express Gateway's `key-auth` policy (EG 1.16 `lib/policies/key-auth`): an API key
//! `keyId:keySecret` from a header (scheme first) or the query, checked against the consumer
//! store; 401 when it is not a valid active key of an active consumer, 403 when the key lacks
//! one of the API endpoint's scopes.

use serde::{Deserialize, Serialize};

/// The action of a `key-auth` step, with EG's schema defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeyAuthSpec {
    /// `apiKeyHeader` (`Authorization`).
    pub header: String,
    /// `apiKeyHeaderScheme` (`apiKey`), compared case-insensitively.
    pub scheme: String,
    /// `apiKeyField` (`apiKey`): the query parameter.
    pub query_field: String,
    /// `disableHeaders`.
    pub disable_headers: bool,
    /// `disableHeadersScheme`: the whole header value (its last space-separated part) is the key.
    pub disable_headers_scheme: bool,
    /// `disableQueryParam`.
    pub disable_query_param: bool,
    /// `passThrough`: a request without a valid key continues anonymous.
    pub pass_through: bool,
}

impl Default for KeyAuthSpec {
    fn default() -> Self {
        Self {
            header: "Authorization".into(),
            scheme: "apiKey".into(),
            query_field: "apiKey".into(),
            disable_headers: false,
            disable_headers_scheme: false,
            disable_query_param: false,
            pass_through: false,
        }
    }
}

#[cfg(feature = "server")]
mod step;
#[cfg(feature = "server")]
pub use step::KeyAuthStep;
