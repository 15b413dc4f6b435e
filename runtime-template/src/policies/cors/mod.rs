//! `cors`: cross-origin resource sharing for both families. Express Gateway passes its action
//! to the npm `cors` 2.8 package; WSO2 APIs declare `x-wso2-cors` (or inherit the global
//! default in `conf/micro-gw.toml`). One policy, each family's defaults.

use serde::{Deserialize, Serialize};

/// Which request origins are allowed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "kebab-case")]
pub enum CorsOrigin {
    /// `*` (the `cors` default): `Access-Control-Allow-Origin: *`.
    Any,
    /// `true`: the request's `Origin` is reflected.
    Reflect,
    /// `false`: CORS is not applied (no CORS headers at all).
    Disabled,
    /// A list of exact origins and regular expressions (a single string is a one-item list in
    /// the npm package's `origin: 'https://a'` form, answered as that fixed string).
    List(Vec<OriginPattern>),
    /// One fixed origin string, always sent (npm `cors` with `origin: "<string>"`).
    Fixed(String),
}

/// One allowed origin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "kebab-case")]
pub enum OriginPattern {
    /// Compared exactly.
    Exact(String),
    /// A regular expression searched in the origin (JavaScript `RegExp.test`).
    Regex(String),
}

/// A CORS step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorsSpec {
    /// Allowed origins.
    pub origin: CorsOrigin,
    /// `Access-Control-Allow-Methods` of a preflight.
    pub methods: Vec<String>,
    /// `Access-Control-Allow-Headers` of a preflight; `None` reflects
    /// `Access-Control-Request-Headers`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_headers: Option<Vec<String>>,
    /// `Access-Control-Expose-Headers` on responses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exposed_headers: Vec<String>,
    /// `Access-Control-Allow-Credentials: true` (never together with a wildcard origin).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub credentials: bool,
    /// `Access-Control-Max-Age` of a preflight, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<u64>,
    /// Status of a preflight answer (npm `cors` `optionsSuccessStatus`, default 204).
    pub preflight_status: u16,
    /// npm `cors` `preflightContinue`: pass preflights on to later steps instead of answering.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub preflight_continue: bool,
}
