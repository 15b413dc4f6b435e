//! `proxy`: the terminal step that forwards to an upstream endpoint ([`crate::proxy`] does the
//! forwarding). WSO2 resources choose the production or sandbox endpoint by the key type of
//! the grant; Express Gateway pipelines name one service endpoint (http-proxy options of EG 1.16
//! `lib/policies/proxy`).

use serde::{Deserialize, Serialize};

/// Which endpoint a proxy step forwards to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum EndpointChoice {
    /// WSO2: the sandbox endpoint for sandbox keys, else the production one (indices into
    /// [`crate::model::GatewayModel::endpoints`]); a missing one answers WSO2's 900901-family
    /// "no endpoint" fault.
    ByKeyType {
        /// `x-wso2-production-endpoints`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        production: Option<usize>,
        /// `x-wso2-sandbox-endpoints`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sandbox: Option<usize>,
    },
    /// Express Gateway `serviceEndpoint`: one endpoint (its `urls` round-robin).
    Service {
        /// Index into the model's endpoints.
        endpoint: usize,
    },
    /// No `serviceEndpoint` in the action: Express Gateway answers every request 502.
    Missing,
}

/// How the upstream request path is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PathRewrite {
    /// WSO2: the endpoint path followed by the request path after the API's base path.
    Remainder,
    /// Express Gateway `stripPath: false`: the endpoint path followed by the whole raw request
    /// target (`//` collapsed where they join, as http-proxy).
    Keep,
    /// Express Gateway `stripPath: true`: the raw target cut at the position of the first `*`
    /// or `:` of the matched route path (no such character: `/` and the query; at 0: unchanged).
    Strip,
}

/// A proxy step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxySpec {
    /// Where to.
    pub endpoint: EndpointChoice,
    /// How the upstream path is made.
    pub path: PathRewrite,
    /// `changeOrigin` (EG default true): the upstream `Host` is the endpoint's authority instead
    /// of the client's. WSO2 steps: true (the client's host goes in `X-Forwarded-Host`).
    pub change_origin: bool,
    /// Add `X-Forwarded-For/-Proto/-Host` and `Forwarded` (WSO2 always; EG `xfwd`, default
    /// false).
    pub forwarded_headers: bool,
    /// Add the `eg-request-id` request header (Express Gateway).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub request_id_header: bool,
    /// `timeout` / `proxyTimeout` in milliseconds, overriding the endpoint's timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// `proxyOptions.headers`: extra request headers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<(String, String)>,
}

#[cfg(feature = "server")]
mod step;
#[cfg(feature = "server")]
pub use step::ProxyStep;
