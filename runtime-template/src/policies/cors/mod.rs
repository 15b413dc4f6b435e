//! `cors`: cross-origin resource sharing for both families. Express Gateway passes its action
//! to the npm `cors` 2.8 package; WSO2 APIs declare `x-wso2-cors` (or inherit the global
//! default `[cors]` of `conf/micro-gw.toml`, read at build time). One policy, each family's
//! semantics, chosen by [`CorsSpec::dialect`]:
//!
//! - [`Dialect::ExpressGateway`]: npm `cors` 2.8.6 (`lib/index.js`) exactly: every `OPTIONS`
//!   is a preflight, answered `optionsSuccessStatus` (204) with the headers in the package's
//!   order; other requests get `Access-Control-Allow-Origin`, `-Allow-Credentials`,
//!   `-Expose-Headers` and `Vary` on whatever answers them.
//! - [`Dialect::Wso2`]: WSO2 API Microgateway 3.x, whose generated service hands `x-wso2-cors`
//!   to Ballerina 1.2's HTTP CORS filter (`CorsHeaderGenerator`, `HttpService`): the origin is
//!   always reflected (never `*`), a disallowed origin gets no CORS header at all, a preflight
//!   is answered `200` with the requested method and headers echoed.
//!
//! The runtime half is [`CorsPolicy`] (module `ready`).

mod ready;

use serde::{Deserialize, Serialize};

pub use crate::model::Dialect;
pub use ready::{vary_append, wso2_allow, CorsError, CorsPolicy, Preflight};

/// Which request origins are allowed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "kebab-case")]
pub enum CorsOrigin {
    /// `*` (the `cors` default): `Access-Control-Allow-Origin: *`. In the WSO2 dialect
    /// (`accessControlAllowOrigins: ["*"]` or none) any origin is allowed and reflected.
    Any,
    /// `true`: the request's `Origin` is reflected.
    Reflect,
    /// `false`: CORS is not applied (no CORS headers at all, preflights pass on).
    Disabled,
    /// A list of exact origins and regular expressions: the request's `Origin` is reflected
    /// when one matches, else `Access-Control-Allow-Origin` is left out.
    List(Vec<OriginPattern>),
    /// One fixed origin string, always sent (npm `cors` with `origin: "<string>"`).
    Fixed(String),
}

/// One allowed origin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "kebab-case")]
pub enum OriginPattern {
    /// Compared exactly (case-sensitive, as npm `cors` and Ballerina do).
    Exact(String),
    /// A regular expression searched in the origin (JavaScript `RegExp.test`: unanchored),
    /// in the syntax of the `regex-lite` crate.
    Regex(String),
}

fn express_gateway() -> Dialect {
    Dialect::ExpressGateway
}

/// A CORS step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorsSpec {
    /// Whose semantics apply (default: Express Gateway's npm `cors`).
    #[serde(default = "express_gateway")]
    pub dialect: Dialect,
    /// Allowed origins.
    pub origin: CorsOrigin,
    /// `Access-Control-Allow-Methods` of a preflight (npm: joined with `,`). WSO2: the methods a
    /// preflight may ask for (`["*"]` or empty: any); the answer echoes the requested one.
    pub methods: Vec<String>,
    /// `Access-Control-Allow-Headers` of a preflight; `None` reflects
    /// `Access-Control-Request-Headers` (npm, with `Vary: Access-Control-Request-Headers`).
    /// WSO2: the headers a preflight may ask for (case-insensitive; `None`: any); the answer
    /// echoes the requested ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_headers: Option<Vec<String>>,
    /// `Access-Control-Expose-Headers` on responses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exposed_headers: Vec<String>,
    /// `Access-Control-Allow-Credentials: true`. Never sent together with
    /// `Access-Control-Allow-Origin: *` (see [`CorsPolicy`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub credentials: bool,
    /// `Access-Control-Max-Age` of a preflight, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<u64>,
    /// Status of a preflight answer (npm `cors` `optionsSuccessStatus`, default 204; WSO2 200).
    pub preflight_status: u16,
    /// npm `cors` `preflightContinue`: pass preflights on to later steps instead of answering.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub preflight_continue: bool,
}

/// npm `cors` 2.8.6's defaults (`origin: '*'`, `methods: 'GET,HEAD,PUT,PATCH,POST,DELETE'`,
/// reflected headers, `optionsSuccessStatus: 204`), the Express Gateway dialect.
impl Default for CorsSpec {
    fn default() -> Self {
        Self {
            dialect: Dialect::ExpressGateway,
            origin: CorsOrigin::Any,
            methods: ["GET", "HEAD", "PUT", "PATCH", "POST", "DELETE"]
                .map(String::from)
                .to_vec(),
            allowed_headers: None,
            exposed_headers: Vec::new(),
            credentials: false,
            max_age: None,
            preflight_status: 204,
            preflight_continue: false,
        }
    }
}

impl CorsSpec {
    /// WSO2 API Microgateway 3.x's built-in CORS configuration (toolkit `CliConstants`,
    /// `getDefaultCorsConfig`): origins `*`, methods `GET, PUT, POST, DELETE, PATCH, OPTIONS`,
    /// headers `authorization, Access-Control-Allow-Origin, Content-Type, SOAPAction`, exposed
    /// `Access-Control-Expose-Headers, Content-Type`, no credentials; preflights answered 200.
    pub fn wso2_default() -> Self {
        Self {
            dialect: Dialect::Wso2,
            origin: CorsOrigin::Any,
            methods: ["GET", "PUT", "POST", "DELETE", "PATCH", "OPTIONS"]
                .map(String::from)
                .to_vec(),
            allowed_headers: Some(
                [
                    "authorization",
                    "Access-Control-Allow-Origin",
                    "Content-Type",
                    "SOAPAction",
                ]
                .map(String::from)
                .to_vec(),
            ),
            exposed_headers: ["Access-Control-Expose-Headers", "Content-Type"]
                .map(String::from)
                .to_vec(),
            credentials: false,
            max_age: None,
            preflight_status: 200,
            preflight_continue: false,
        }
    }

    /// A WSO2 CORS step from `x-wso2-cors` (or `[cors]`) lists, as Ballerina 1.2 reads its
    /// `cors` annotation (`CorsHeaders`, `HttpService.setCorsHeaders`): values trimmed; no
    /// origins, or exactly `*`, allow any origin (reflected); no methods allow any; no
    /// headers allow any (the requested ones are echoed).
    pub fn wso2(
        origins: &[String],
        methods: &[String],
        headers: &[String],
        exposed: &[String],
        credentials: bool,
    ) -> Self {
        let trimmed = |list: &[String]| -> Vec<String> {
            list.iter().map(|s| s.trim().to_string()).collect()
        };
        let origins = trimmed(origins);
        let origin = if origins.is_empty() || origins == ["*"] {
            CorsOrigin::Any
        } else {
            CorsOrigin::List(origins.into_iter().map(OriginPattern::Exact).collect())
        };
        let headers = trimmed(headers);
        Self {
            dialect: Dialect::Wso2,
            origin,
            methods: trimmed(methods),
            allowed_headers: (!headers.is_empty()).then_some(headers),
            exposed_headers: trimmed(exposed),
            credentials,
            max_age: None,
            preflight_status: 200,
            preflight_continue: false,
        }
    }
}
