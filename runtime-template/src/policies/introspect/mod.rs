//! Express Gateway's `oauth2-introspect` policy (EG 1.16 `lib/policies/oauth2-introspect`,
//! passport-http-bearer 1.0): a bearer token (the `Authorization: Bearer` header or the
//! `access_token` query parameter) sent to an RFC 7662 introspection endpoint; an active answer
//! holding every endpoint scope becomes `req.user`, remembered `ttl` seconds. Everything else,
//! an unreachable endpoint included, is EG's `401 Unauthorized` (or, with `passThrough`, an
//! anonymous request). The verifier is the runtime's own (`crate::auth::introspection`).

use serde::{Deserialize, Serialize};

/// The action of an `oauth2-introspect` step, with EG's schema defaults. `endpoint` and
/// `authorization_value` are *settings*: `${VAR}` in them is substituted when the gateway
/// starts, so a secret kept in the environment never enters the binary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntrospectSpec {
    /// `endpoint`: the introspection URL (setting).
    pub endpoint: String,
    /// `authorization_value`: the `Authorization` header sent to the endpoint, as is (setting).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_value: Option<String>,
    /// `timeout` (10000 ms): how long the endpoint may take to answer.
    pub timeout_ms: u64,
    /// `ttl` (60 s): how long an active answer is remembered (never past its `exp`).
    pub ttl_seconds: u64,
    /// `passThrough`.
    pub pass_through: bool,
}

impl IntrospectSpec {
    /// EG's default `timeout`.
    pub const DEFAULT_TIMEOUT_MS: u64 = 10_000;
    /// EG's default `ttl`.
    pub const DEFAULT_TTL_SECONDS: u64 = 60;
}

#[cfg(feature = "server")]
mod step;
#[cfg(feature = "server")]
pub use step::IntrospectStep;
