//! The gateway model: what an API *is*, validated by the toolkit and executed by the runtime.
//!
//! This is the one definition both sides share. The toolkit builds it from API definitions,
//! serializes it to JSON next to the generated crate, and the generated `main` hands those bytes
//! to [`crate::launch`]. Nothing here is Rust source generated from untrusted names or paths.

pub mod condition;
pub mod express;
pub mod pipeline;
pub mod policy;

use serde::{Deserialize, Serialize};

pub use condition::Condition;
pub use express::ExpressGateway;
pub use pipeline::{Dialect, Pipeline, Step};
pub use policy::PolicySpec;

/// Version of the serialized model layout; bumped when a field changes meaning.
/// 2: pipelines, Express Gateway configurations.
pub const MODEL_FORMAT: u32 = 2;

/// Default upstream response timeout (WSO2's `advanceEndpointConfig.timeoutInMillis` default).
pub const DEFAULT_ENDPOINT_TIMEOUT_MS: u64 = 60_000;

/// Everything compiled into one gateway binary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayModel {
    /// Layout version, see [`MODEL_FORMAT`].
    pub format: u32,
    /// The project name (also the binary's name).
    pub project: String,
    /// The APIs, in a stable order (by base path).
    pub apis: Vec<Api>,
    /// Every endpoint that a resource or a proxy step refers to, by index (WSO2 endpoints and
    /// Express Gateway service endpoints).
    pub endpoints: Vec<Endpoint>,
    /// Every pipeline a route leads to, by index (shared by routes with equal pipelines).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pipelines: Vec<Pipeline>,
    /// Express Gateway configurations of the project, with their listeners and routes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub express: Vec<ExpressGateway>,
}

/// One API: a base path and the resources under it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Api {
    /// WSO2's API id: `api_` + hex SHA-256 of `name:version`.
    pub id: String,
    /// `info.title` of the definition.
    pub name: String,
    /// `info.version` of the definition.
    pub version: String,
    /// Normalised base path: starts with `/`, no trailing `/` unless it is `/` itself.
    pub base_path: String,
    /// The definition file this API came from, relative to the project (for messages).
    pub source: String,
    /// One entry per operation (method + path template).
    pub resources: Vec<Resource>,
    /// Accept `%2F` (kept encoded) in request paths (`x-mgw-allow-encoded-slash`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_encoded_slash: bool,
}

/// One operation of an API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resource {
    /// Upper-case HTTP method.
    pub method: String,
    /// Path template relative to the base path, OpenAPI syntax (`/pet/{petId}`, `/*`).
    pub path: String,
    /// `operationId`, when the definition has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_id: Option<String>,
    /// Index into [`GatewayModel::endpoints`] for production traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub production: Option<usize>,
    /// Index into [`GatewayModel::endpoints`] for sandbox traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<usize>,
    /// Who may call this resource; `None` means anyone (security disabled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security: Option<Security>,
    /// Index into [`GatewayModel::pipelines`]: the steps that serve it, compiled by the toolkit
    /// from the fields above (and the API's CORS settings). The fields above stay the API's
    /// contract for build checks, the API key issuer and log redaction; the pipeline is what runs.
    pub pipeline: usize,
}

/// The credentials a resource accepts, decided at build time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Security {
    /// Any one of these authenticates a request.
    pub schemes: Vec<AuthScheme>,
    /// Requests without credentials pass (WSO2 `optional: true`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub optional: bool,
    /// Scopes the credential must carry (all of them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// Header carrying bearer and basic credentials.
    pub auth_header: String,
}

/// One way to authenticate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum AuthScheme {
    /// OAuth2 access tokens: signed JWTs validated offline, opaque tokens by introspection.
    Oauth2,
    /// HTTP basic authentication.
    Basic,
    /// A WSO2 API key in a header, query parameter or cookie.
    ApiKey {
        /// Where the key is.
        location: ApiKeyLocation,
        /// The header, parameter or cookie name.
        name: String,
    },
}

/// Where an API key travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApiKeyLocation {
    /// A request header.
    Header,
    /// A query parameter.
    Query,
    /// A cookie of the `Cookie` header (OpenAPI `in: cookie`).
    Cookie,
}

/// The header WSO2 reads bearer and basic credentials from by default.
pub const DEFAULT_AUTH_HEADER: &str = "Authorization";
/// The API key header/parameter name WSO2 uses when none is declared.
pub const DEFAULT_API_KEY_NAME: &str = "apikey";

/// Production or sandbox: which key type an endpoint serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Environment {
    /// `x-wso2-production-endpoints`.
    Production,
    /// `x-wso2-sandbox-endpoints`.
    Sandbox,
}

impl Environment {
    /// The infix WSO2 uses in override names: `<name>_prod_endpoint_0`.
    pub fn override_infix(self) -> &'static str {
        match self {
            Environment::Production => "prod",
            Environment::Sandbox => "sand",
        }
    }
}

/// How requests are spread across an endpoint's URLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndpointKind {
    /// One URL (extra URLs, if any, are only used when the first refuses connections).
    Http,
    /// Round-robin across the URLs.
    LoadBalance,
    /// Always the first URL; the next one only when it refuses connections.
    Failover,
}

/// A named set of upstream URLs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    /// The name runtime overrides use (`--<name>_prod_endpoint_<i>=<url>`).
    pub name: String,
    /// Production or sandbox.
    pub environment: Environment,
    /// Distribution across URLs.
    pub kind: EndpointKind,
    /// Absolute `http`/`https` URLs; a path, if any, is prefixed to the forwarded path.
    pub urls: Vec<String>,
    /// Upstream response timeout in milliseconds.
    pub timeout_ms: u64,
}

impl GatewayModel {
    /// Parses the embedded model, refusing a layout this runtime does not know.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ModelError> {
        let model: GatewayModel = serde_json::from_slice(bytes).map_err(ModelError::Parse)?;
        if model.format != MODEL_FORMAT {
            return Err(ModelError::Format(model.format));
        }
        Ok(model)
    }

    /// Number of resources across all APIs.
    pub fn resource_count(&self) -> usize {
        self.apis.iter().map(|api| api.resources.len()).sum()
    }
}

/// The embedded model could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// Not the JSON this runtime writes.
    #[error("the embedded gateway model is corrupt: {0}")]
    Parse(serde_json::Error),
    /// Written by a toolkit of another model layout.
    #[error("the embedded gateway model has format {0}, this runtime reads format {MODEL_FORMAT}: rebuild the project with the matching micro-gw")]
    Format(u32),
}

/// Joins a base path and a resource path into the full request path template.
pub fn join_path(base_path: &str, resource_path: &str) -> String {
    let base = base_path.trim_end_matches('/');
    let resource = if resource_path.starts_with('/') {
        resource_path.to_string()
    } else {
        format!("/{resource_path}")
    };
    format!("{base}{resource}")
}

/// A WSO2 resource's route template as the access log and the metrics show it: the API's base
/// path and the resource's path template (`/petstore/v1` + `/pet/{petId}`), one `/` between.
pub fn route_template(base_path: &str, path: &str) -> String {
    let base = base_path.trim_end_matches('/');
    if path.is_empty() || path == "/" {
        if base.is_empty() {
            "/".to_string()
        } else {
            format!("{base}/")
        }
    } else if path.starts_with('/') {
        format!("{base}{path}")
    } else {
        format!("{base}/{path}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_path_handles_root_and_slashes() {
        assert_eq!(join_path("/", "/pet"), "/pet");
        assert_eq!(
            join_path("/petstore/v1", "/pet/{id}"),
            "/petstore/v1/pet/{id}"
        );
        assert_eq!(join_path("/petstore/v1/", "pet"), "/petstore/v1/pet");
        assert_eq!(join_path("/a", "/"), "/a/");
    }

    #[test]
    fn rejects_other_format() {
        let json = br#"{"format":99,"project":"p","apis":[],"endpoints":[]}"#;
        assert!(matches!(
            GatewayModel::from_json(json),
            Err(ModelError::Format(99))
        ));
    }
}
