//! `PolicySpec`: the closed set of built-in policies a step can run, as plain data.
//!
//! Each variant's configuration type lives with its policy in `crate::policies::<name>`; the
//! runtime turns a spec into a ready policy at start-up (keys loaded, patterns compiled) and
//! dispatches with a `match`, so no step costs a boxed future on the hot path.

use serde::{Deserialize, Serialize};

use super::Security;
use crate::policies::basic_auth::BasicAuthSpec;
use crate::policies::cors::CorsSpec;
use crate::policies::introspect::IntrospectSpec;
use crate::policies::jwt::JwtSpec;
use crate::policies::key_auth::KeyAuthSpec;
use crate::policies::log::LogSpec;
use crate::policies::metrics::MetricsSpec;
use crate::policies::proxy::ProxySpec;
use crate::policies::rate_limit::RateLimitSpec;
use crate::policies::scopes::ScopesSpec;
use crate::policies::terminate::TerminateSpec;
use crate::policies::throttling::ThrottleSpec;
use crate::policies::transformer::{HeadersSpec, TransformerSpec};
use crate::policies::unsupported::UnsupportedSpec;
use crate::policies::validate::ValidateSpec;

/// One policy action with its parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum PolicySpec {
    /// WSO2's `GET /health` answer (`{"status":"healthy"}`), on the WSO2 listeners.
    Health,
    /// WSO2's API key service (`GET /apikey` with basic credentials, HTTPS listener).
    IssueApiKey,
    /// Cross-origin resource sharing: preflights answered, CORS headers on responses
    /// (Express Gateway `cors`, WSO2 `x-wso2-cors`).
    Cors(CorsSpec),
    /// WSO2 authentication of a resource: OAuth2 tokens, basic, API keys, as its security says.
    Authenticate(Authenticate),
    /// Forward to an upstream endpoint (terminal).
    Proxy(ProxySpec),
    /// Answer with a fixed status and message (Express Gateway `terminate`, terminal).
    Terminate(TerminateSpec),
    /// Write a message built from a template to the log (Express Gateway `log`).
    Log(LogSpec),
    /// Set request headers from expressions (Express Gateway's deprecated `headers`).
    Headers(HeadersSpec),
    /// Add and remove request headers and JSON/urlencoded body fields.
    RequestTransformer(TransformerSpec),
    /// Add and remove response headers and JSON body fields.
    ResponseTransformer(TransformerSpec),
    /// Express Gateway `key-auth`: API keys of the consumer store.
    KeyAuth(KeyAuthSpec),
    /// Express Gateway `basic-auth`: passwords of the consumer store.
    BasicAuth(BasicAuthSpec),
    /// Express Gateway `jwt`: signed tokens, optionally tied to `jwt` credentials.
    Jwt(JwtSpec),
    /// Express Gateway `oauth2-introspect`: opaque bearer tokens checked at an RFC 7662
    /// endpoint.
    Introspect(IntrospectSpec),
    /// Kargo's `scopes` plugin policy: the consumer's scopes against the endpoint's.
    Scopes(ScopesSpec),
    /// Kargo's `metrics` plugin policy: the `eg` response counter.
    Metrics(MetricsSpec),
    /// Express Gateway `rate-limit`: `max` hits per window per key.
    RateLimit(RateLimitSpec),
    /// WSO2 throttling tiers (`policies.yaml`): resource or API, subscription, application.
    Throttle(ThrottleSpec),
    /// Request (and response) validation against the OpenAPI schemas of a WSO2 resource
    /// (`[validation]`, `x-mgw-validation`).
    Validate(ValidateSpec),
    /// A policy this version cannot run yet, kept in place with the behaviour the build
    /// announced (`micro-gw build --allow-unsupported`).
    Unsupported(UnsupportedSpec),
}

impl PolicySpec {
    /// The policy's name as Express Gateway spells it (WSO2-only policies have names of ours).
    pub fn name(&self) -> &str {
        match self {
            PolicySpec::Health => "health",
            PolicySpec::IssueApiKey => "apikey",
            PolicySpec::Cors(_) => "cors",
            PolicySpec::Authenticate(_) => "authenticate",
            PolicySpec::Proxy(_) => "proxy",
            PolicySpec::Terminate(_) => "terminate",
            PolicySpec::Log(_) => "log",
            PolicySpec::Headers(_) => "headers",
            PolicySpec::RequestTransformer(_) => "request-transformer",
            PolicySpec::ResponseTransformer(_) => "response-transformer",
            PolicySpec::KeyAuth(_) => "key-auth",
            PolicySpec::BasicAuth(_) => "basic-auth",
            PolicySpec::Jwt(_) => "jwt",
            PolicySpec::Introspect(_) => "oauth2-introspect",
            PolicySpec::Scopes(_) => "scopes",
            PolicySpec::Metrics(_) => "metrics",
            PolicySpec::RateLimit(_) => "rate-limit",
            PolicySpec::Throttle(_) => "throttle",
            PolicySpec::Validate(_) => "validate",
            PolicySpec::Unsupported(spec) => &spec.policy,
        }
    }
}

/// The WSO2 `authenticate` step: who may call the resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Authenticate {
    /// Accepted schemes, scopes and the credential header.
    pub security: Security,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policies::unsupported::UnsupportedBehaviour;

    /// Every variant survives the embedded model's JSON round trip (the tag must not clash with
    /// a field of a spec, as `policy` did with `UnsupportedSpec::policy`).
    #[test]
    fn specs_round_trip_through_json() {
        let specs = vec![
            PolicySpec::Health,
            PolicySpec::Unsupported(UnsupportedSpec {
                policy: "jwt".into(),
                behaviour: UnsupportedBehaviour::NoCredentialAccepted { pass_through: true },
            }),
            PolicySpec::Terminate(TerminateSpec::default()),
            PolicySpec::Log(LogSpec {
                message: "${req.method}".into(),
            }),
            PolicySpec::ResponseTransformer(TransformerSpec::default()),
            PolicySpec::Cors(CorsSpec::default()),
            PolicySpec::KeyAuth(KeyAuthSpec::default()),
            PolicySpec::BasicAuth(BasicAuthSpec { pass_through: true }),
            PolicySpec::RateLimit(RateLimitSpec::default()),
            PolicySpec::Validate(ValidateSpec {
                request: Some(Default::default()),
                response: Some(vec![]),
            }),
            PolicySpec::Introspect(IntrospectSpec {
                endpoint: "${AS_URL}/introspect".into(),
                authorization_value: Some("Basic ${AS_CREDENTIALS}".into()),
                timeout_ms: IntrospectSpec::DEFAULT_TIMEOUT_MS,
                ttl_seconds: IntrospectSpec::DEFAULT_TTL_SECONDS,
                pass_through: false,
            }),
        ];
        for spec in specs {
            let json = serde_json::to_string(&spec).unwrap();
            let back: PolicySpec =
                serde_json::from_str(&json).unwrap_or_else(|e| panic!("{json}: {e}"));
            assert_eq!(back, spec, "{json}");
        }
    }
}
