//! Express Gateway routing compiled from a project's `gateway.config.yml`: listeners and the
//! ordered API-endpoint routes that lead to pipelines.
//!
//! Strings documented as *settings* may hold `${VAR}` / `${VAR:-default}` references (and `$${`
//! escapes), which the gateway substitutes from its environment when it starts
//! ([`crate::env_template`]), as Express Gateway does when it loads its configuration; secrets
//! therefore never enter the binary.

use serde::{Deserialize, Serialize};

/// One Express Gateway configuration (`express-gateway/gateway.config.yml` in the project).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpressGateway {
    /// The file it came from, relative to the project.
    pub source: String,
    /// `http`: plain HTTP listener (absent: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<Listen>,
    /// `https`: TLS listener with certificates chosen by SNI (absent: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub https: Option<HttpsListen>,
    /// `admin`: the admin API listener (served by a later version; kept for it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin: Option<Listen>,
    /// Kargo's `healthcheck` plugin (system.config.yml `plugins.healthcheck`): the path of its
    /// gateway route, `GET` answered `200 OK` (text/plain) on this configuration's listeners.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<String>,
    /// Kargo's `metrics` plugin: the path of its admin route serving the `eg` counter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_path: Option<String>,
    /// Kargo's `storage` plugin: the S3 proxy route on the admin listener.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<Storage>,
    /// Routes in the order Express Gateway tries them: host groups in order of first
    /// appearance, and inside a group the endpoints and their paths in declaration order.
    pub routes: Vec<ExpressRoute>,
}

/// Where a listener binds. Both fields are settings (`${VAR}` allowed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listen {
    /// The port, as written (`8080`, `${EG_HTTP_PORT:-8080}`).
    pub port: String,
    /// `hostname` (or `host` for `admin`): the address to bind; `None` binds every address
    /// (admin: `localhost`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

/// The `https` listener.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpsListen {
    /// Port and address.
    pub listen: Listen,
    /// `https.tls`: certificates by SNI pattern, in declaration order.
    pub certificates: Vec<SniCertificate>,
}

/// One entry of `https.tls`: a minimatch glob on the SNI server name, or `default`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SniCertificate {
    /// The glob, or `default` for the certificate used when no glob matches.
    pub pattern: String,
    /// Private key file (setting; relative paths from the gateway's working directory, as EG).
    pub key: String,
    /// Certificate chain file (setting).
    pub cert: String,
    /// Extra CA files (settings).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ca: Vec<String>,
}

/// One path of one API endpoint (`apiEndpoints.<name>`), leading to a pipeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpressRoute {
    /// The API endpoint's name (`egContext.apiEndpoint.apiEndpointName`).
    pub api_endpoint: String,
    /// Which `Host` values it serves.
    pub host: HostPattern,
    /// Which paths it serves.
    pub path: PathPattern,
    /// Upper-case methods it serves; empty means every method.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<String>,
    /// The endpoint's `scopes`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// Index into [`super::GatewayModel::pipelines`]; `None` when no pipeline names the
    /// endpoint (Express Gateway then answers `404 Not Found`, text/plain).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<usize>,
}

/// `host` / `hostRegex` of an API endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "pattern", rename_all = "kebab-case")]
pub enum HostPattern {
    /// `host: '*'` or absent: every host.
    Any,
    /// A `vhost` pattern: each `*` is one whole DNS label; case-insensitive; port ignored.
    /// A setting (`${VAR}` allowed).
    Vhost(String),
    /// `hostRegex`: a regular expression tested on the host name.
    Regex(String),
}

/// `paths` / `pathRegex` of an API endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "pattern", rename_all = "kebab-case")]
pub enum PathPattern {
    /// An Express 4 route path (`/wms*`, `/k2/*`, `/p/:id`): case-insensitive, one optional
    /// trailing slash, exact route (not a prefix), query string ignored.
    Express(String),
    /// `pathRegex`: a regular expression tested on the path.
    Regex(String),
}

impl PathPattern {
    /// The pattern as written: the route's template in the access log and the metrics.
    pub fn text(&self) -> &str {
        match self {
            PathPattern::Express(path) | PathPattern::Regex(path) => path,
        }
    }
}

/// Kargo's `storage` plugin (system.config.yml `plugins.storage`): `<path>/[<provider>/]<bucket>/<key…>`
/// on the admin listener, proxied to S3-compatible providers with AWS Signature V4.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Storage {
    /// `endpointName`: the route's prefix (`/s3`).
    pub path: String,
    /// `providers`, in declaration order.
    pub providers: Vec<StorageProvider>,
}

/// One entry of the storage plugin's `providers`. Every string is a setting (`${VAR}`
/// allowed, expanded at start-up); `secret_access_key` must be one (secrets never enter the
/// binary).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageProvider {
    /// The provider's name, the optional first path segment (`aws`, `ovh`).
    pub name: String,
    /// `default: true`: serves paths whose first segment is not a provider name.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub default: bool,
    /// `endpoint`: the S3 service URL (`https://s3.gra.io.cloud.ovh.net`; no scheme means
    /// https); absent: AWS (`https://s3.<region>.amazonaws.com`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// `region`: the signing region; absent: `AWS_REGION`, else `us-east-1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// `accessKeyId`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    /// `secretAccessKey`: text with a `${VAR}` reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_access_key: Option<String>,
    /// `s3ForcePathStyle: true`: `<endpoint>/<bucket>/<key>` even for DNS-compatible bucket
    /// names (always so for an IP address or `localhost` endpoint).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub force_path_style: bool,
    /// `httpOptions.timeout` (aws-sdk v2): milliseconds the provider may take to start its
    /// answer; absent: the SDK's default, 120,000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// `buckets` (a micro-gw addition): when not empty, the only buckets served; others are
    /// 404 without asking the provider.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub buckets: Vec<String>,
}
