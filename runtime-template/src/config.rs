//! Runtime settings: where a gateway runs (`conf/micro-gw.toml`), never what its APIs are.
//!
//! Loading is in two stages: the file is read into a TOML table, overrides from the environment
//! (`MGW_<SECTION>_<KEY>`) and arguments (`--<section>.<key>=<value>`) are applied to known keys,
//! then the table is deserialized with unknown keys refused, so a typo is an error, not a default.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Name of the runtime settings file inside a project's `conf/`.
pub const CONFIG_FILE_NAME: &str = "micro-gw.toml";
/// Environment variable naming a directory that holds `micro-gw.toml`.
pub const CONF_DIR_ENV: &str = "MGW_CONF_DIR";
/// Prefix of environment variables that override settings.
pub const ENV_PREFIX: &str = "MGW_";

/// All runtime settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeConfig {
    /// Listeners.
    pub listener: ListenerConfig,
    /// The HTTPS listener's certificate.
    pub tls: TlsConfig,
    /// Connections to upstream endpoints.
    pub upstream: UpstreamConfig,
    /// Size and count limits on what clients send.
    pub limits: LimitsConfig,
    /// Deadlines for slow and idle clients.
    pub timeouts: TimeoutsConfig,
    /// HTTP/2 abuse limits.
    pub http2: Http2Config,
    /// Which peers may speak for the client in `X-Forwarded-*`.
    pub forwarding: ForwardingConfig,
    /// Credential validation.
    pub security: SecurityConfig,
    /// Logging.
    pub log: LogConfig,
    /// CORS for WSO2 APIs without `x-wso2-cors`: read by `micro-gw build` (a change needs a
    /// rebuild); the running gateway does not use it.
    pub cors: CorsConfig,
    /// Request and response validation of WSO2 APIs: read by `micro-gw build` (it decides what
    /// is compiled in); the running gateway does not use it.
    pub validation: ValidationConfig,
    /// Port overrides for the project's Express Gateway listeners.
    pub express_gateway: ExpressGatewayConfig,
    /// Where consumers (users, applications, credentials, scopes) are kept.
    pub store: StoreConfig,
    /// The admin API of Express Gateway configurations.
    pub admin: AdminConfig,
    /// Where rate-limit counters are kept and what happens when Redis does not answer.
    pub rate_limit: RateLimitConfig,
    /// The Prometheus metrics listener.
    pub metrics: MetricsConfig,
    /// W3C trace context: taking part in callers' traces, starting new ones.
    pub tracing: TracingConfig,
}

/// `[metrics]`: the listener that serves Prometheus metrics at `/metrics` (OpenMetrics text;
/// series in docs/operations.md). On by default on loopback, so a local Prometheus or a
/// sidecar can scrape it and nothing else can reach it; WSO2 API Microgateway has its metrics
/// off by default on the same port, 9797. The series carry no secrets (labels are API names
/// and route templates), so a non-loopback host (`0.0.0.0` in a container) is allowed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Serve metrics (and record them: `false` skips the recording on the request path too).
    pub enabled: bool,
    /// Address the metrics listener binds.
    pub host: String,
    /// Its port; 0 picks a free port (the start-up log names it).
    pub port: u16,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            host: "127.0.0.1".into(),
            port: 9797,
        }
    }
}

/// `[tracing]`: W3C Trace Context (`traceparent`, `tracestate`) on proxied requests
/// (`telemetry::trace_context`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TracingConfig {
    /// Take part in trace context (default true): continue the client's trace or start one,
    /// send `traceparent` upstream, show the trace id in the access log. Off: the client's
    /// trace headers pass through untouched.
    pub propagate: bool,
    /// Share of the traces the gateway starts that are marked sampled (flag `01`), from 0.0
    /// to 1.0 (default 1.0). A client's own decision is always kept.
    pub sample_ratio: f64,
    /// The OTLP/HTTP receiver sampled requests' spans are exported to (`telemetry::otlp`):
    /// its base URL, `http://collector:4318` (spans go to `<base>/v1/traces`), or a full URL
    /// ending in `/v1/traces`. Empty (the default): no export. `${VAR}` substituted at start-up.
    /// Read by `micro-gw build` too: a project that sets it is built with the `otlp` feature.
    pub otlp_endpoint: String,
    /// Extra headers of every export request (a vendor's API key), `${VAR}` substituted at
    /// start-up so secrets stay out of the file.
    pub otlp_headers: std::collections::BTreeMap<String, String>,
    /// The bound of one export request (connect, send, answer), in milliseconds.
    pub otlp_timeout_ms: u64,
    /// Spans waiting for export at most; a span that finds the queue full is dropped (and
    /// counted by the SDK, which warns at the first drop and gives the total at shutdown).
    pub otlp_queue: usize,
    /// Longest wait between two exports, in milliseconds (a full batch of 512 goes at once).
    pub otlp_interval_ms: u64,
    /// The resource's `service.name`. Empty (the default): the project's name.
    pub service_name: String,
}

impl Default for TracingConfig {
    fn default() -> Self {
        Self {
            propagate: true,
            sample_ratio: 1.0,
            otlp_endpoint: String::new(),
            otlp_headers: std::collections::BTreeMap::new(),
            otlp_timeout_ms: 10_000,
            otlp_queue: 2048,
            otlp_interval_ms: 5_000,
            service_name: String::new(),
        }
    }
}

/// `[rate_limit]`: the counters of `rate-limit` steps.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    /// `auto` (Redis when a URL is known, here or in `[store] redis`), `memory` (each replica
    /// counts on its own) or `redis` (a URL is required).
    pub backend: CountersBackend,
    /// The Redis of the counters; empty: `[store] redis` (with its `redis_namespace` and
    /// `redis_ca`).
    pub redis: String,
    /// The bound of one Redis call, in milliseconds; a request never waits longer for it.
    pub timeout_ms: u64,
    /// When Redis does not answer: `open` (decide in this replica, with `max / replicas`) or
    /// `closed` (503 with `Retry-After: 1`).
    pub on_redis_error: RedisFailure,
    /// How many replicas share the counters: while Redis does not answer, each admits
    /// `max / replicas` (rounded up) per window on its own.
    pub replicas: u64,
    /// At most one warning about an unavailable Redis per this many seconds.
    pub warn_interval_seconds: u64,
}

impl std::fmt::Debug for RateLimitConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimitConfig")
            .field("backend", &self.backend)
            .field("redis", &redact_url(&self.redis))
            .field("timeout_ms", &self.timeout_ms)
            .field("on_redis_error", &self.on_redis_error)
            .field("replicas", &self.replicas)
            .field("warn_interval_seconds", &self.warn_interval_seconds)
            .finish()
    }
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            backend: CountersBackend::Auto,
            redis: String::new(),
            timeout_ms: 50,
            on_redis_error: RedisFailure::Open,
            replicas: 1,
            warn_interval_seconds: 60,
        }
    }
}

/// `[rate_limit] backend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CountersBackend {
    /// Redis when a URL is known, else memory.
    Auto,
    /// Each replica counts on its own.
    Memory,
    /// Redis (a URL is required).
    Redis,
}

/// `[rate_limit] on_redis_error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RedisFailure {
    /// Decide in this replica with its share of the quota.
    Open,
    /// Refuse with 503.
    Closed,
}

/// `[store]`: the consumer store of Express Gateway configurations. Its `Debug` hides the
/// password of `redis`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// The embedded database file, relative to this file's folder (default
    /// `../data/consumers.db`: `<project>/data/consumers.db`). Created when missing.
    pub path: String,
    /// bcrypt cost of new passwords and oauth2 secrets (Express Gateway's
    /// `crypto.saltRounds`, 10; 4 to 31).
    pub bcrypt_cost: u32,
    /// Redis holding the consumers instead of the file, shared by replicas:
    /// `redis://[[user]:password@]host[:port][/db]`, or `rediss://…` for TLS. Empty: the file.
    /// `${VAR}` and `${VAR:-default}` in it are substituted when the gateway starts (Express
    /// Gateway's rules, `crate::env_template`).
    pub redis: String,
    /// The name of an environment variable holding the Redis password, put (URL-encoded) into
    /// `redis` when the gateway starts, so the password is never written in this file. Empty:
    /// the password of `redis`, if any.
    pub redis_password_env: String,
    /// The prefix of every key in Redis (`<ns>:doc:…`, `<ns>:changes`), so several
    /// deployments can share one Redis (`${VAR}` substituted as in `redis`).
    pub redis_namespace: String,
    /// For `rediss://`: a PEM bundle (relative to this file's folder) trusted instead of the
    /// system's roots. Empty: the system's roots.
    pub redis_ca: String,
}

impl std::fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreConfig")
            .field("path", &self.path)
            .field("bcrypt_cost", &self.bcrypt_cost)
            .field("redis", &redact_url(&self.redis))
            .field("redis_password_env", &self.redis_password_env)
            .field("redis_namespace", &self.redis_namespace)
            .field("redis_ca", &self.redis_ca)
            .finish()
    }
}

impl StoreConfig {
    /// `redis` as the gateway connects to it: `${VAR}` substituted from `env`, the password of
    /// `redis_password_env` put in (URL-encoded). The error names the key at fault.
    pub fn redis_url(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
        let url = crate::env_template::expand(&self.redis, env)
            .map_err(|e| format!("[store] redis: {e}"))?;
        if self.redis_password_env.is_empty() || url.is_empty() {
            return Ok(url);
        }
        let password = env(&self.redis_password_env).ok_or_else(|| {
            format!(
                "[store] redis_password_env: the environment variable {} is not set",
                self.redis_password_env
            )
        })?;
        // Each URL of a Redis Cluster's comma-separated seeds gets the password.
        let encoded = percent_encode(&password);
        url.split(',')
            .map(|one| {
                let one = one.trim();
                let Some((scheme, rest)) = one.split_once("://") else {
                    return Err("[store] redis is not a redis:// or rediss:// URL".to_string());
                };
                let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
                let (authority, tail) = rest.split_at(authority_end);
                let (user, host) = match authority.rsplit_once('@') {
                    Some((userinfo, host)) => {
                        (userinfo.split_once(':').map_or(userinfo, |(u, _)| u), host)
                    }
                    None => ("", authority),
                };
                Ok(format!("{scheme}://{user}:{encoded}@{host}{tail}"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|urls| urls.join(","))
    }

    /// `redis_namespace` with `${VAR}` substituted from `env`.
    pub fn namespace(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
        crate::env_template::expand(&self.redis_namespace, env)
            .map_err(|e| format!("[store] redis_namespace: {e}"))
    }
}

/// Percent-encoding of every byte but RFC 3986's unreserved characters (a URL's userinfo).
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `redis://user:secret@host/` → `redis://user:***@host/`: the URL as messages show it.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or("", |(u, _)| u);
            format!("{scheme}://{user}:***@{host}{tail}")
        }
        None => url.to_string(),
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            path: "../data/consumers.db".into(),
            bcrypt_cost: 10,
            redis: String::new(),
            redis_password_env: String::new(),
            redis_namespace: "mgw".into(),
            redis_ca: String::new(),
        }
    }
}

/// `[admin]`: access to the admin API (Express Gateway's `admin` listener). Requests carry
/// `Authorization: Bearer <token>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// The token (also `MGW_ADMIN_TOKEN`). Empty: on a loopback address the gateway makes one
    /// at start-up and writes it to `admin.token` beside the store, for the local CLI; on any
    /// other address it refuses to start.
    pub token: String,
    /// `false` lets requests in without a token, on a loopback address only (as Express
    /// Gateway's admin API, which has no authentication).
    pub require_token: bool,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            token: String::new(),
            require_token: true,
        }
    }
}

/// `[express_gateway]`: overrides of the ports written in `express-gateway/gateway.config.yml`
/// (after `${VAR}` substitution), for tests and operators. Absent keys keep the file's ports;
/// `0` picks a free port. Also `MGW_EXPRESS_GATEWAY_HTTP_PORT=…` and
/// `--express_gateway.http_port=…`, like every other setting.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExpressGatewayConfig {
    /// Replaces `http.port`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_port: Option<u16>,
    /// Replaces `https.port`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub https_port: Option<u16>,
    /// Replaces `admin.port`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_port: Option<u16>,
}

/// The keys of `[express_gateway]`, which have no default value to serialize but can be
/// overridden like the others (as integers).
const EXPRESS_GATEWAY_KEYS: [&str; 3] = ["http_port", "https_port", "admin_port"];

/// `[limits]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Longest request target (path and query) in bytes; longer gets 414.
    pub max_uri_bytes: usize,
    /// Largest request head (HTTP/1) or header list (HTTP/2) in bytes; larger gets 431.
    pub max_header_bytes: usize,
    /// Most request headers; more gets 431.
    pub max_headers: usize,
    /// Largest request body in bytes (0: no limit); larger gets 413.
    pub max_request_body_bytes: u64,
    /// Largest upstream response head in bytes; larger gets 502.
    pub max_upstream_header_bytes: usize,
    /// Most client connections at once; further ones are closed on accept.
    pub max_connections: usize,
}

/// `[timeouts]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimeoutsConfig {
    /// Seconds a client has to send a whole request head, counted from when the connection
    /// is ready for it (so it is also the keep-alive idle timeout); then the connection closes.
    pub request_header_seconds: u64,
    /// Seconds a request body may go without data; then 408.
    pub request_body_idle_seconds: u64,
    /// Seconds every request body gets to arrive, counted from when the gateway starts
    /// forwarding it; each `request_body_min_rate_bytes` received earn one more second
    /// (Apache mod_reqtimeout's `body=20,MinRate=500`). Later: 408. 0 turns the deadline off.
    pub request_body_seconds: u64,
    /// Bytes per second a request body must average past `request_body_seconds`; 0 makes
    /// `request_body_seconds` a fixed deadline for the whole body.
    pub request_body_min_rate_bytes: u64,
}

/// `[http2]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Http2Config {
    /// Streams a client may have open at once on one connection.
    pub max_concurrent_streams: u32,
    /// Streams reset by the client before the gateway saw them, kept at once (rapid reset).
    pub max_pending_accept_reset_streams: usize,
    /// Streams the gateway itself may reset per connection before closing it (MadeYouReset).
    pub max_local_error_reset_streams: usize,
}

/// `[security]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityConfig {
    /// Seconds of clock skew allowed on `exp` and `nbf`.
    pub leeway_seconds: u64,
    /// Remove the credential header before the request goes upstream.
    pub remove_credential_header: bool,
    /// Verified tokens remembered (until they expire) so signatures are not checked again.
    pub token_cache_entries: usize,
    /// Longest credential accepted, in bytes; longer ones are refused unread.
    pub max_token_bytes: usize,
    /// Issuers of signed JWT access tokens (`[[security.jwt_issuers]]`).
    pub jwt_issuers: Vec<JwtIssuerConfig>,
    /// How JWKS documents of issuers with a `jwks_url` are fetched and kept.
    pub jwks: JwksConfig,
    /// RFC 7662 introspection of opaque access tokens (absent: opaque tokens are refused).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_manager: Option<KeyManagerConfig>,
    /// Validation of WSO2 API keys (absent: API keys are refused).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_keys: Option<ApiKeyConfig>,
    /// The `GET /apikey` token service on the HTTPS listener (absent: not served).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub apikey_issuer: Option<ApiKeyIssuerConfig>,
    /// Basic-auth users (`[[security.users]]`), also the callers of `GET /apikey`.
    pub users: Vec<UserConfig>,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        Self {
            leeway_seconds: 60,
            remove_credential_header: true,
            token_cache_entries: 10_000,
            max_token_bytes: 16_384,
            jwt_issuers: Vec::new(),
            jwks: JwksConfig::default(),
            key_manager: None,
            api_keys: None,
            apikey_issuer: None,
            users: Vec::new(),
        }
    }
}

/// One `[[security.jwt_issuers]]` entry: who signs tokens and with which key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtIssuerConfig {
    /// The `iss` claim tokens of this issuer carry.
    pub issuer: String,
    /// When set, the `aud` claim must contain it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// PEM certificate or public key that verifies RS*, PS*, ES* or EdDSA signatures
    /// (relative paths: to the config file's directory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<PathBuf>,
    /// Name of an environment variable holding the HMAC secret for HS* tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hmac_secret_env: Option<String>,
    /// A file holding the HMAC secret for HS* tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hmac_secret_file: Option<PathBuf>,
    /// Accepted algorithms, all of the key's family (the token's `alg` is never trusted).
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<String>,
    /// When set, the token's `kid` header must equal it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// Claim holding the scopes (space-separated string or list); `scp` is also read.
    #[serde(default = "default_scope_claim")]
    pub scope_claim: String,
    /// A JWKS URL serving this issuer's public keys (instead of `certificate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_url: Option<String>,
    /// Claim naming the application (consumer key); reported in the access log.
    #[serde(default = "default_consumer_key_claim")]
    pub consumer_key_claim: String,
    /// Require the API (name and version) in the token's `subscribedAPIs` claim.
    #[serde(default)]
    pub validate_subscription: bool,
}

/// `[security.jwks]`: applies to every issuer with a `jwks_url`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JwksConfig {
    /// Longest time keys are used before they are fetched again, whatever the server's
    /// `Cache-Control: max-age` says (a shorter max-age is honoured, down to 60 s).
    pub max_age_seconds: u64,
    /// After a failed fetch, keys fetched last keep verifying tokens this long.
    pub max_stale_seconds: u64,
    /// A token with an unknown `kid` triggers at most one fetch per this many seconds.
    pub refetch_cooldown_seconds: u64,
    /// Deadline of one fetch, connection included.
    pub timeout_ms: u64,
    /// Largest JWKS document accepted.
    pub max_bytes: usize,
}

impl Default for JwksConfig {
    fn default() -> Self {
        Self {
            max_age_seconds: 600,
            max_stale_seconds: 86_400,
            refetch_cooldown_seconds: 30,
            timeout_ms: 5_000,
            max_bytes: 512 * 1024,
        }
    }
}

/// `[security.key_manager]`: where opaque tokens are introspected (RFC 7662).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyManagerConfig {
    /// The introspection endpoint, e.g. `https://localhost:9443/oauth2/introspect`.
    pub introspection_url: String,
    /// Basic-auth user (or OAuth2 client id) the gateway calls the endpoint as.
    pub username: String,
    /// Environment variable holding the password (or client secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
    /// File holding the password (or client secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    /// When set, the gateway first gets a token here with the client-credentials grant
    /// (`username`/password as client id/secret) and calls introspection with it as a bearer
    /// token; otherwise it calls introspection with basic auth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_url: Option<String>,
    /// Deadline of one call to the key manager.
    #[serde(default = "default_key_manager_timeout_ms")]
    pub timeout_ms: u64,
    /// Longest time an active token's answer is reused (never past its `exp`).
    #[serde(default = "default_introspection_cache_seconds")]
    pub cache_seconds: u64,
    /// How long an inactive token's answer is reused.
    #[serde(default = "default_introspection_negative_cache_seconds")]
    pub negative_cache_seconds: u64,
}

fn default_key_manager_timeout_ms() -> u64 {
    5_000
}

fn default_introspection_cache_seconds() -> u64 {
    300
}

fn default_introspection_negative_cache_seconds() -> u64 {
    30
}

/// `[security.api_keys]`: the issuer whose signed API keys (JWTs with `allowedAPIs`) are accepted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyConfig {
    /// The `iss` of accepted keys.
    pub issuer: String,
    /// PEM certificate or public key that verifies them.
    pub certificate: PathBuf,
    /// Accepted algorithms, all of the key's family.
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<String>,
    /// When set, the `aud` claim must contain it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// Require the API (name and version) in the key's `allowedAPIs` claim.
    #[serde(default)]
    pub validate_allowed_apis: bool,
}

/// `[security.apikey_issuer]`: `GET /apikey` signs API keys for basic-auth users.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyIssuerConfig {
    /// The `iss` written into keys.
    pub issuer: String,
    /// PEM private key (PKCS#8) that signs keys.
    pub private_key: PathBuf,
    /// Signing algorithm, of the private key's family.
    #[serde(default = "default_signing_algorithm")]
    pub algorithm: String,
    /// `kid` header of issued keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// `aud` written into keys, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// Seconds a key is valid; -1 issues keys without `exp` (WSO2's default, weaker).
    #[serde(default = "default_apikey_validity")]
    pub validity_seconds: i64,
    /// APIs written into `allowedAPIs`; empty means every API of this gateway.
    #[serde(default)]
    pub apis: Vec<AllowedApiConfig>,
}

fn default_signing_algorithm() -> String {
    "ES256".to_string()
}

fn default_apikey_validity() -> i64 {
    86_400
}

/// One `[[security.apikey_issuer.apis]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllowedApiConfig {
    /// API name (`info.title`).
    pub name: String,
    /// Versions, e.g. `["1.0.0", "v1"]`, or `["*"]` for all.
    #[serde(default = "default_all_versions")]
    pub versions: Vec<String>,
}

fn default_all_versions() -> Vec<String> {
    vec!["*".to_string()]
}

/// One `[[security.users]]` entry: a basic-auth user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// The user name.
    pub username: String,
    /// `micro-gw hash` output (argon2id or bcrypt); WSO2's SHA-1 hex and `@sha256:`/`@sha512:`
    /// forms are accepted for migration but are fast to brute-force.
    pub password_hash: String,
    /// Scopes the user holds.
    #[serde(default)]
    pub scopes: Vec<String>,
}

fn default_algorithms() -> Vec<String> {
    vec!["RS256".to_string()]
}

fn default_scope_claim() -> String {
    "scope".to_string()
}

fn default_consumer_key_claim() -> String {
    "aud".to_string()
}

/// `[forwarding]`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ForwardingConfig {
    /// Addresses or CIDR blocks of proxies in front of the gateway. Their `X-Forwarded-For`
    /// is appended to and their `X-Forwarded-Proto`/`-Host` kept; from anyone else those
    /// headers are replaced with what the gateway itself sees.
    #[serde(deserialize_with = "networks")]
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

/// Reads `"10.0.0.0/8"` as a block and a bare `"127.0.0.1"` as that one address.
fn networks<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<ipnet::IpNet>, D::Error> {
    let texts = Vec::<String>::deserialize(deserializer)?;
    texts
        .iter()
        .map(|text| {
            let text = text.trim();
            text.parse::<ipnet::IpNet>()
                .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    serde::de::Error::custom(format!(
                        "{text:?} is not an IP address or CIDR block (like \"10.0.0.0/8\")"
                    ))
                })
        })
        .collect()
}

impl ForwardingConfig {
    /// True when `peer` is one of the trusted proxies.
    pub fn trusts(&self, peer: std::net::IpAddr) -> bool {
        self.trusted_proxies.iter().any(|net| net.contains(&peer))
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_uri_bytes: 8192,
            max_header_bytes: 16384,
            max_headers: 100,
            max_request_body_bytes: 100 * 1024 * 1024,
            max_upstream_header_bytes: 16384,
            max_connections: 10_000,
        }
    }
}

impl Default for TimeoutsConfig {
    fn default() -> Self {
        Self {
            request_header_seconds: 30,
            request_body_idle_seconds: 30,
            request_body_seconds: 20,
            request_body_min_rate_bytes: 500,
        }
    }
}

impl Default for Http2Config {
    fn default() -> Self {
        Self {
            max_concurrent_streams: 100,
            max_pending_accept_reset_streams: 20,
            max_local_error_reset_streams: 1024,
        }
    }
}

/// `[listener]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ListenerConfig {
    /// Address both listeners bind.
    pub host: String,
    /// Plain HTTP port (HTTP/1.1 and h2c with prior knowledge); 0 picks a free port.
    pub http_port: u16,
    /// HTTPS port (ALPN h2 and http/1.1); 0 picks a free port.
    pub https_port: u16,
    /// Serve plain HTTP.
    pub http_enabled: bool,
    /// Serve HTTPS.
    pub https_enabled: bool,
    /// Worker threads; 0 means one per CPU core.
    pub worker_threads: usize,
    /// How the worker threads share the work: [`ServerRuntime`].
    pub runtime: ServerRuntime,
    /// Thread-per-core only: pin worker `i` to the `i`-th CPU this process may run on
    /// (`sched_setaffinity`); start-up fails when there are fewer such CPUs than workers.
    pub pin_workers: bool,
    /// Seconds in-flight requests get to finish after SIGINT/SIGTERM.
    pub shutdown_timeout_seconds: u64,
    /// Seconds the gateway keeps accepting and serving after SIGINT/SIGTERM while `/health`
    /// answers 503, so that load balancers (a Kubernetes Service's endpoints) stop sending
    /// requests before the listeners close; then the `shutdown_timeout_seconds` drain. 0: close
    /// at once. A second signal ends the delay early.
    pub drain_delay_seconds: u64,
    /// Seconds a TLS handshake may take.
    pub tls_handshake_timeout_seconds: u64,
}

/// `listener.runtime`: how the `worker_threads` serve the API listeners.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServerRuntime {
    /// One tokio multi-thread runtime: every listener accepted on one task, connections spread
    /// over the workers, which steal tasks from each other; one shared set of upstream pools.
    #[default]
    WorkStealing,
    /// One OS thread per worker, each with its own single-threaded tokio runtime, its own
    /// `SO_REUSEPORT` socket on every API listener (the kernel spreads the connections) and its
    /// own idle upstream connections: a request never leaves the thread that accepted it
    /// (docs/benchmarks.md, "Issue 16"). Linux and other Unix systems only.
    ThreadPerCore,
}

/// `[tls]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM certificate chain; relative paths are relative to the config file's directory.
    pub certificate: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub private_key: PathBuf,
}

/// `[upstream]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpstreamConfig {
    /// Roots trusted for HTTPS endpoints: `"system"` or a PEM bundle path.
    pub truststore: String,
    /// Milliseconds to establish a TCP connection to an endpoint.
    pub connect_timeout_ms: u64,
    /// Seconds an idle pooled connection is kept (keep it below the upstream's keep-alive).
    pub pool_idle_timeout_seconds: u64,
    /// Idle pooled connections kept per upstream host.
    pub pool_max_idle_per_host: usize,
}

/// `[log]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `error`, `warn`, `info`, `debug` or `trace`, or a list of `target=level` directives with an
    /// optional bare default level (`info,access=off`), as `tracing_subscriber::filter::Targets`
    /// parses it.
    pub level: String,
    /// One line per request on the `access` target.
    pub access_log: bool,
    /// How access-log lines are written: `text` (the `tracing` line of earlier releases) or
    /// `json` (one object per line, [`crate::access_log`]).
    pub access_log_format: AccessLogFormat,
    /// Access-log lines waiting for the writer thread; when the queue is full a line is
    /// dropped (counted and reported), never waited for.
    pub access_log_queue: usize,
}

/// `log.access_log_format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccessLogFormat {
    /// `<time>  INFO access: <client> <method> <path> <status> ...`, as before.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// `[validation]`: whether WSO2 resources check requests (parameters and JSON bodies) and
/// responses against their OpenAPI schemas, as WSO2 API Microgateway 3.x's `[validationConfig]`
/// (whose key names are accepted as aliases). Both off by default. `x-mgw-validation` on an API
/// or an operation overrides them. Read by `micro-gw build`: a change takes a rebuild.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ValidationConfig {
    /// Check requests: 400 `Bad Request` listing the problems.
    #[serde(alias = "enableRequestValidation")]
    pub request: bool,
    /// Check upstream responses: 500 `Bad Response` listing the problems.
    #[serde(alias = "enableResponseValidation")]
    pub response: bool,
}

/// `[cors]`: the CORS configuration compiled into every WSO2 API that has no `x-wso2-cors` of
/// its own, as WSO2 API Microgateway 3.x's toolkit `[corsConfiguration]` does. Read by
/// `micro-gw build`, not by the gateway: CORS is part of what an API is, so a change takes a
/// rebuild. The keys of WSO2's section (`corsConfigurationEnabled`,
/// `accessControlAllowOrigins`, ...) are accepted as aliases.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CorsConfig {
    /// Apply this configuration (WSO2's shipped `toolkit-config.toml` has it off; so do we).
    #[serde(alias = "corsConfigurationEnabled")]
    pub enabled: bool,
    /// Allowed origins, exact; `["*"]` allows any origin (reflected, never `*`).
    #[serde(alias = "accessControlAllowOrigins")]
    pub allow_origins: Vec<String>,
    /// Methods a preflight may ask for; `["*"]` or empty: any.
    #[serde(alias = "accessControlAllowMethods")]
    pub allow_methods: Vec<String>,
    /// Request headers a preflight may ask for (case-insensitive); empty: any.
    #[serde(alias = "accessControlAllowHeaders")]
    pub allow_headers: Vec<String>,
    /// `Access-Control-Expose-Headers` on responses.
    #[serde(alias = "accessControlExposeHeaders")]
    pub expose_headers: Vec<String>,
    /// `Access-Control-Allow-Credentials: true`.
    #[serde(alias = "accessControlAllowCredentials")]
    pub allow_credentials: bool,
}

/// WSO2 API Microgateway 3.x's CORS defaults (`CliConstants`), switched off.
impl Default for CorsConfig {
    fn default() -> Self {
        let spec = crate::policies::cors::CorsSpec::wso2_default();
        Self {
            enabled: false,
            allow_origins: vec!["*".into()],
            allow_methods: spec.methods,
            allow_headers: spec.allowed_headers.unwrap_or_default(),
            expose_headers: spec.exposed_headers,
            allow_credentials: false,
        }
    }
}

impl CorsConfig {
    /// The CORS step this section gives APIs without `x-wso2-cors`, if enabled.
    pub fn spec(&self) -> Option<crate::policies::cors::CorsSpec> {
        self.enabled.then(|| {
            crate::policies::cors::CorsSpec::wso2(
                &self.allow_origins,
                &self.allow_methods,
                &self.allow_headers,
                &self.expose_headers,
                self.allow_credentials,
            )
        })
    }
}

impl Default for ListenerConfig {
    fn default() -> Self {
        Self {
            host: "0.0.0.0".into(),
            http_port: 9090,
            https_port: 9095,
            http_enabled: true,
            https_enabled: true,
            worker_threads: 0,
            runtime: ServerRuntime::default(),
            pin_workers: false,
            shutdown_timeout_seconds: 30,
            drain_delay_seconds: 0,
            tls_handshake_timeout_seconds: 10,
        }
    }
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            certificate: PathBuf::from("tls/cert.pem"),
            private_key: PathBuf::from("tls/key.pem"),
        }
    }
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        Self {
            truststore: "system".into(),
            connect_timeout_ms: 10_000,
            pool_idle_timeout_seconds: 30,
            pool_max_idle_per_host: 128,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".into(),
            access_log: true,
            access_log_format: AccessLogFormat::Text,
            access_log_queue: 8192,
        }
    }
}

/// A settings file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// No file where one was looked for.
    #[error("config file {path} does not exist{hint}")]
    Missing {
        /// Where it was looked for.
        path: PathBuf,
        /// How it was chosen, and what to do.
        hint: String,
    },
    /// The file exists but cannot be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Syntax error, unknown key or wrong type.
    #[error("{path}{line}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// `:<line>` when known.
        line: String,
        /// What is wrong.
        message: String,
    },
    /// An override from the environment or an argument is not usable.
    #[error("{0}")]
    Override(String),
}

/// Where the settings file comes from, in order of precedence:
/// an explicit `--config`, then `$MGW_CONF_DIR/micro-gw.toml`, then the project's
/// `conf/micro-gw.toml` found from the binary at `<project>/target/<name>`.
pub fn locate(
    explicit: Option<&Path>,
    conf_dir_env: Option<&str>,
    binary: &Path,
) -> Result<PathBuf, ConfigError> {
    if let Some(path) = explicit {
        return existing(path.to_path_buf(), " (given with --config)");
    }
    if let Some(dir) = conf_dir_env.filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        if !dir.is_dir() {
            return Err(ConfigError::Missing {
                path: dir,
                hint: format!(
                    " (the directory named by {CONF_DIR_ENV}): create it or unset the variable"
                ),
            });
        }
        return existing(
            dir.join(CONFIG_FILE_NAME),
            &format!(" (from {CONF_DIR_ENV})"),
        );
    }
    let project_conf = binary
        .parent()
        .and_then(Path::parent)
        .map(|project| project.join("conf").join(CONFIG_FILE_NAME))
        .unwrap_or_else(|| PathBuf::from("conf").join(CONFIG_FILE_NAME));
    existing(
        project_conf,
        &format!(
            ": a gateway binary reads <project>/conf/{CONFIG_FILE_NAME} when it sits in <project>/target/; pass --config <file> or set {CONF_DIR_ENV}"
        ),
    )
}

fn existing(path: PathBuf, hint: &str) -> Result<PathBuf, ConfigError> {
    if path.is_file() {
        Ok(path)
    } else {
        Err(ConfigError::Missing {
            path,
            hint: hint.to_string(),
        })
    }
}

/// A loaded configuration and the directory its relative paths are relative to.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    /// The settings.
    pub config: RuntimeConfig,
    /// The file they came from.
    pub path: PathBuf,
}

impl LoadedConfig {
    /// Resolves a path from the settings against the config file's directory.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.path
                .parent()
                .unwrap_or_else(|| Path::new("."))
                .join(path)
        }
    }
}

/// Reads the file at `path` and applies overrides: `env` is the process environment (injected,
/// so tests need not mutate it) and `args` holds `section.key=value` pairs from the command line.
pub fn load(
    path: &Path,
    env: &[(String, String)],
    args: &[(String, String)],
) -> Result<LoadedConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let config = parse(&text, path, env, args)?;
    Ok(LoadedConfig {
        config,
        path: path.to_path_buf(),
    })
}

/// Parses settings text (see [`load`]).
pub fn parse(
    text: &str,
    path: &Path,
    env: &[(String, String)],
    args: &[(String, String)],
) -> Result<RuntimeConfig, ConfigError> {
    let invalid = |err: toml::de::Error| ConfigError::Invalid {
        path: path.to_path_buf(),
        line: err
            .span()
            .map(|span| format!(":{}", line_of(text, span.start)))
            .unwrap_or_default(),
        message: err.message().trim().to_string(),
    };
    // Validate the file on its own first, so an error points at the file's own line.
    let _: RuntimeConfig = toml::from_str(text).map_err(invalid)?;
    let mut table: toml::Table = toml::from_str(text).map_err(invalid)?;
    apply_overrides(&mut table, env, args)?;
    let config = RuntimeConfig::deserialize(toml::Value::Table(table)).map_err(|err| {
        ConfigError::Override(format!("an override is invalid: {}", err.message().trim()))
    })?;
    config.validate(path)?;
    Ok(config)
}

impl RuntimeConfig {
    fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let bad = |message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            line: String::new(),
            message,
        };
        if self.listener.host.parse::<std::net::IpAddr>().is_err() {
            return Err(bad(format!(
                "listener.host = {:?} is not an IP address: use for example \"0.0.0.0\", \"127.0.0.1\" or \"::\"",
                self.listener.host
            )));
        }
        if !self.listener.http_enabled && !self.listener.https_enabled {
            return Err(bad(
                "both listeners are disabled: set listener.http_enabled or listener.https_enabled to true".into(),
            ));
        }
        if self.listener.pin_workers && self.listener.runtime != ServerRuntime::ThreadPerCore {
            return Err(bad(
                "listener.pin_workers = true needs listener.runtime = \"thread-per-core\" (the work-stealing runtime moves tasks between its threads): set runtime = \"thread-per-core\", or remove pin_workers".into(),
            ));
        }
        if self.limits.max_header_bytes < 8192 {
            return Err(bad("limits.max_header_bytes must be at least 8192".into()));
        }
        if self.limits.max_upstream_header_bytes < 8192 {
            return Err(bad(
                "limits.max_upstream_header_bytes must be at least 8192".into(),
            ));
        }
        if self.limits.max_uri_bytes == 0
            || self.limits.max_headers == 0
            || self.limits.max_connections == 0
        {
            return Err(bad(
                "limits.max_uri_bytes, max_headers and max_connections must be above 0".into(),
            ));
        }
        if self.timeouts.request_header_seconds == 0 || self.timeouts.request_body_idle_seconds == 0
        {
            return Err(bad("timeouts must be at least 1 second".into()));
        }
        if self.http2.max_concurrent_streams == 0 {
            return Err(bad("http2.max_concurrent_streams must be above 0".into()));
        }
        let jwks = &self.security.jwks;
        if jwks.timeout_ms == 0 || jwks.max_bytes == 0 {
            return Err(bad(
                "security.jwks.timeout_ms and max_bytes must be above 0".into(),
            ));
        }
        if self
            .security
            .key_manager
            .as_ref()
            .is_some_and(|km| km.timeout_ms == 0)
        {
            return Err(bad("security.key_manager.timeout_ms must be above 0".into()));
        }
        let mut names = std::collections::HashSet::new();
        for user in &self.security.users {
            if !names.insert(user.username.as_str()) {
                return Err(bad(format!(
                    "security.users: user {:?} is listed twice: keep one entry",
                    user.username
                )));
            }
        }
        let mut issuers = std::collections::HashSet::new();
        for issuer in &self.security.jwt_issuers {
            if !issuers.insert(issuer.issuer.as_str()) {
                return Err(bad(format!(
                    "security.jwt_issuers: issuer {:?} is listed twice: merge the entries (one key source per issuer)",
                    issuer.issuer
                )));
            }
        }
        let ratio = self.tracing.sample_ratio;
        if !(0.0..=1.0).contains(&ratio) {
            return Err(bad(format!(
                "tracing.sample_ratio = {ratio} is not between 0.0 and 1.0: use for example 0.1 to sample one new trace in ten"
            )));
        }
        let tracing = &self.tracing;
        if !tracing.otlp_endpoint.is_empty() {
            if !tracing.propagate {
                return Err(bad(
                    "tracing.otlp_endpoint is set but tracing.propagate = false: spans need trace context; set propagate = true or remove otlp_endpoint".into(),
                ));
            }
            if tracing.otlp_timeout_ms == 0
                || tracing.otlp_queue == 0
                || tracing.otlp_interval_ms == 0
            {
                return Err(bad(
                    "tracing.otlp_timeout_ms, otlp_queue and otlp_interval_ms must be above 0"
                        .into(),
                ));
            }
        }
        if self.upstream.connect_timeout_ms == 0 {
            return Err(bad("upstream.connect_timeout_ms must be above 0".into()));
        }
        if self
            .log
            .level
            .parse::<tracing_subscriber::filter::Targets>()
            .is_err()
        {
            return Err(bad(format!(
                "log.level = {:?} is not a level: use error, warn, info, debug or trace",
                self.log.level
            )));
        }
        if self.log.access_log_queue == 0 {
            return Err(bad(
                "log.access_log_queue must be above 0 (8192 is the default; use log.access_log = false to turn the access log off)".into(),
            ));
        }
        Ok(())
    }
}

/// Applies `MGW_<SECTION>_<KEY>` variables and `section.key=value` arguments to keys that exist.
fn apply_overrides(
    table: &mut toml::Table,
    env: &[(String, String)],
    args: &[(String, String)],
) -> Result<(), ConfigError> {
    let mut defaults = toml::Table::try_from(RuntimeConfig::default()).expect("defaults serialize");
    // Optional keys are absent from the serialized defaults; list them with a value of their type.
    let express = defaults
        .entry("express_gateway")
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    if let Some(express) = express.as_table_mut() {
        for key in EXPRESS_GATEWAY_KEYS {
            express.insert(key.to_string(), toml::Value::Integer(8080));
        }
    }
    for (section, keys) in &defaults {
        let Some(keys) = keys.as_table() else {
            continue;
        };
        for (key, default) in keys {
            let env_name = format!(
                "{ENV_PREFIX}{}_{}",
                section.to_uppercase(),
                key.to_uppercase()
            );
            let dotted = format!("{section}.{key}");
            let value = args
                .iter()
                .rev()
                .find(|(name, _)| *name == dotted)
                .map(|(_, v)| (dotted.clone(), v))
                .or_else(|| {
                    env.iter()
                        .find(|(name, _)| *name == env_name)
                        .map(|(_, v)| (env_name.clone(), v))
                });
            if let Some((source, raw)) = value {
                let parsed = typed_value(raw, default).ok_or_else(|| {
                    ConfigError::Override(format!(
                        "{source}={raw:?} is not a valid {}: expected a value like {default}",
                        default.type_str()
                    ))
                })?;
                table
                    .entry(section.clone())
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                    .as_table_mut()
                    .ok_or_else(|| ConfigError::Override(format!("[{section}] must be a table")))?
                    .insert(key.clone(), parsed);
            }
        }
    }
    for (name, _) in args {
        let known = name
            .split_once('.')
            .and_then(|(s, k)| defaults.get(s)?.as_table()?.get(k))
            .is_some();
        if !known {
            return Err(ConfigError::Override(format!(
                "--{name}: there is no setting {name}; see conf/{CONFIG_FILE_NAME} for the keys"
            )));
        }
    }
    Ok(())
}

fn typed_value(raw: &str, like: &toml::Value) -> Option<toml::Value> {
    Some(match like {
        toml::Value::String(_) => toml::Value::String(raw.to_string()),
        toml::Value::Integer(_) => toml::Value::Integer(raw.trim().parse().ok()?),
        toml::Value::Boolean(_) => toml::Value::Boolean(raw.trim().parse().ok()?),
        toml::Value::Float(_) => toml::Value::Float(raw.trim().parse().ok()?),
        // A TOML array (`["a", "b"]`) or a comma-separated list (`a,b`).
        toml::Value::Array(_) => match toml::from_str::<toml::Table>(&format!("v = {raw}")) {
            Ok(mut table) if table.get("v").is_some_and(toml::Value::is_array) => {
                table.remove("v")?
            }
            _ => toml::Value::Array(
                raw.split(',')
                    .map(str::trim)
                    .filter(|item| !item.is_empty())
                    .map(|item| toml::Value::String(item.to_string()))
                    .collect(),
            ),
        },
        _ => return None,
    })
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(text: &str) -> RuntimeConfig {
        parse(text, Path::new("micro-gw.toml"), &[], &[]).unwrap()
    }

    #[test]
    fn redis_urls_take_variables_and_the_password_from_the_environment() {
        let env = |name: &str| match name {
            "REDIS_HOST" => Some("redis.internal".to_string()),
            "REDIS_PASSWORD" => Some("p@ss:w/rd".to_string()),
            _ => None,
        };
        let store = StoreConfig {
            redis: "redis://${REDIS_HOST}:${REDIS_PORT:-6379}/2".into(),
            redis_namespace: "${NS:-EG}".into(),
            ..StoreConfig::default()
        };
        assert_eq!(
            store.redis_url(&env).unwrap(),
            "redis://redis.internal:6379/2"
        );
        assert_eq!(store.namespace(&env).unwrap(), "EG");
        let with_password = StoreConfig {
            redis_password_env: "REDIS_PASSWORD".into(),
            ..store.clone()
        };
        assert_eq!(
            with_password.redis_url(&env).unwrap(),
            "redis://:p%40ss%3Aw%2Frd@redis.internal:6379/2"
        );
        let replaced = StoreConfig {
            redis: "rediss://me:old@h:1".into(),
            ..with_password.clone()
        };
        assert_eq!(
            replaced.redis_url(&env).unwrap(),
            "rediss://me:p%40ss%3Aw%2Frd@h:1"
        );
        let unset = StoreConfig {
            redis_password_env: "NOPE".into(),
            ..store.clone()
        };
        assert!(unset.redis_url(&env).unwrap_err().contains("NOPE"));
        let cluster = StoreConfig {
            redis: "redis://a:7000, redis://b:7001".into(),
            ..with_password.clone()
        };
        assert_eq!(
            cluster.redis_url(&env).unwrap(),
            "redis://:p%40ss%3Aw%2Frd@a:7000,redis://:p%40ss%3Aw%2Frd@b:7001"
        );
        let missing = StoreConfig {
            redis: "redis://${MISSING}/".into(),
            ..StoreConfig::default()
        };
        assert!(missing.redis_url(&env).unwrap_err().contains("MISSING"));
    }

    #[test]
    fn validation_section_is_off_by_default_and_takes_wso2_key_names() {
        assert_eq!(parse_ok("").validation, ValidationConfig::default());
        let cfg = parse_ok("[validation]\nenableRequestValidation = true\nresponse = true\n");
        assert!(cfg.validation.request && cfg.validation.response);
        assert!(parse("[validation]\nenabled = true\n", Path::new("c"), &[], &[]).is_err());
    }

    #[test]
    fn cors_section_is_off_by_default_and_takes_wso2_key_names() {
        assert_eq!(parse_ok("").cors.spec(), None);
        let cfg = parse_ok(
            "[cors]\ncorsConfigurationEnabled = true\naccessControlAllowOrigins = [\"https://a.example\"]\naccessControlAllowCredentials = true\n",
        );
        let spec = cfg.cors.spec().unwrap();
        assert_eq!(spec.dialect, crate::model::Dialect::Wso2);
        assert!(spec.credentials);
        assert_eq!(
            spec.origin,
            crate::policies::cors::CorsOrigin::List(vec![
                crate::policies::cors::OriginPattern::Exact("https://a.example".into())
            ])
        );
        // WSO2's default methods and headers stay when not given.
        assert_eq!(spec.methods.len(), 6);
        let err = parse("[cors]\nenable = true\n", Path::new("c"), &[], &[]).unwrap_err();
        assert!(err.to_string().contains("enable"), "{err}");
    }

    #[test]
    fn empty_file_is_all_defaults() {
        assert_eq!(parse_ok(""), RuntimeConfig::default());
    }

    #[test]
    fn unknown_key_is_named_with_file_and_line() {
        let err = parse(
            "[listener]\nhttp_port = 1\nhtp_port = 2\n",
            Path::new("c.toml"),
            &[],
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("c.toml:3:"), "{err}");
        assert!(err.contains("htp_port"), "{err}");
    }

    #[test]
    fn bad_type_is_an_error() {
        let err = parse(
            "[listener]\nhttp_port = \"x\"\n",
            Path::new("c.toml"),
            &[],
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("c.toml:2"), "{err}");
    }

    #[test]
    fn access_log_format_and_queue_are_read_and_checked() {
        let cfg = parse_ok("");
        assert_eq!(cfg.log.access_log_format, AccessLogFormat::Text);
        assert_eq!(cfg.log.access_log_queue, 8192);
        let cfg = parse_ok("[log]\naccess_log_format = \"json\"\naccess_log_queue = 16\n");
        assert_eq!(cfg.log.access_log_format, AccessLogFormat::Json);
        assert_eq!(cfg.log.access_log_queue, 16);
        let env = vec![("MGW_LOG_ACCESS_LOG_FORMAT".to_string(), "json".to_string())];
        let cfg = parse("", Path::new("c"), &env, &[]).unwrap();
        assert_eq!(cfg.log.access_log_format, AccessLogFormat::Json);
        let err = parse(
            "[log]\naccess_log_format = \"xml\"\n",
            Path::new("c"),
            &[],
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("c:2") && err.contains("xml"), "{err}");
        let err = parse("[log]\naccess_log_queue = 0\n", Path::new("c"), &[], &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("log.access_log_queue must be above 0"),
            "{err}"
        );
    }

    /// `listener.pin_workers` is for the thread-per-core runtime only: with work-stealing it is
    /// refused, naming the file and the fix.
    #[test]
    fn pinned_workers_need_the_thread_per_core_runtime() {
        let err = parse("[listener]\npin_workers = true\n", Path::new("c"), &[], &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(
                "c: listener.pin_workers = true needs listener.runtime = \"thread-per-core\""
            ),
            "{err}"
        );
        let cfg = parse(
            "[listener]\npin_workers = true\nruntime = \"thread-per-core\"\n",
            Path::new("c"),
            &[],
            &[],
        )
        .unwrap();
        assert!(cfg.listener.pin_workers);
        assert!(
            !parse("", Path::new("c"), &[], &[])
                .unwrap()
                .listener
                .pin_workers
        );
    }

    #[test]
    fn log_levels_and_target_directives_are_checked_without_env_filter() {
        for level in [
            "debug",
            "WARN",
            "info,access=off",
            "off",
            "warn,mgw_runtime=debug",
        ] {
            let text = format!("[log]\nlevel = {level:?}\n");
            assert_eq!(parse_ok(&text).log.level, level);
        }
        for level in ["info,access=loud", "a=b=c"] {
            let text = format!("[log]\nlevel = {level:?}\n");
            let err = parse(&text, Path::new("c.toml"), &[], &[])
                .unwrap_err()
                .to_string();
            assert!(err.contains("log.level"), "{level}: {err}");
        }
    }

    #[test]
    fn env_and_args_override_known_keys() {
        let env = vec![("MGW_LISTENER_HTTP_PORT".to_string(), "0".to_string())];
        let args = vec![("log.level".to_string(), "debug".to_string())];
        let cfg = parse("[listener]\nhttp_port = 1\n", Path::new("c"), &env, &args).unwrap();
        assert_eq!(cfg.listener.http_port, 0);
        assert_eq!(cfg.log.level, "debug");
    }

    /// Issue 12: the Express Gateway listeners' ports can be overridden from the file, the
    /// environment and arguments; absent, the configuration's own ports apply.
    #[test]
    fn express_gateway_ports_are_overridable() {
        let cfg = parse("", Path::new("c"), &[], &[]).unwrap();
        assert_eq!(cfg.express_gateway, ExpressGatewayConfig::default());
        let env = vec![("MGW_EXPRESS_GATEWAY_HTTP_PORT".to_string(), "0".to_string())];
        let args = vec![("express_gateway.admin_port".to_string(), "7".to_string())];
        let cfg = parse(
            "[express_gateway]\nhttps_port = 8443\n",
            Path::new("c"),
            &env,
            &args,
        )
        .unwrap();
        assert_eq!(cfg.express_gateway.http_port, Some(0));
        assert_eq!(cfg.express_gateway.https_port, Some(8443));
        assert_eq!(cfg.express_gateway.admin_port, Some(7));
        let err = parse(
            "[express_gateway]\nhttp_prt = 1\n",
            Path::new("c"),
            &[],
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("http_prt"), "{err}");
    }

    #[test]
    fn list_settings_take_toml_arrays_or_comma_lists() {
        let env = vec![(
            "MGW_FORWARDING_TRUSTED_PROXIES".to_string(),
            "10.0.0.0/8, 127.0.0.1".to_string(),
        )];
        let cfg = parse("", Path::new("c"), &env, &[]).unwrap();
        assert!(cfg.forwarding.trusts("10.1.2.3".parse().unwrap()));
        assert!(cfg.forwarding.trusts("127.0.0.1".parse().unwrap()));
        assert!(!cfg.forwarding.trusts("192.0.2.1".parse().unwrap()));
        let args = vec![(
            "forwarding.trusted_proxies".to_string(),
            "[\"::1/128\"]".to_string(),
        )];
        let cfg = parse("", Path::new("c"), &[], &args).unwrap();
        assert!(cfg.forwarding.trusts("::1".parse().unwrap()));
        let args = vec![(
            "forwarding.trusted_proxies".to_string(),
            "not-an-ip".to_string(),
        )];
        assert!(parse("", Path::new("c"), &[], &args).is_err());
    }

    #[test]
    fn bad_override_value_and_unknown_argument_are_errors() {
        let env = vec![("MGW_LISTENER_HTTP_PORT".to_string(), "many".to_string())];
        assert!(parse("", Path::new("c"), &env, &[]).is_err());
        let args = vec![("listener.nope".to_string(), "1".to_string())];
        assert!(parse("", Path::new("c"), &[], &args).is_err());
    }

    #[test]
    fn invalid_host_and_level_are_rejected() {
        assert!(parse("[listener]\nhost = \"example\"\n", Path::new("c"), &[], &[]).is_err());
        assert!(parse("[log]\nlevel = \"loud=[\"\n", Path::new("c"), &[], &[]).is_err());
    }

    #[test]
    fn tracing_samples_every_new_trace_by_default_and_checks_the_ratio() {
        let defaults = parse_ok("");
        assert!(defaults.tracing.propagate);
        assert_eq!(defaults.tracing.sample_ratio, 1.0);
        assert_eq!(
            parse_ok("[tracing]\nsample_ratio = 0\n")
                .tracing
                .sample_ratio,
            0.0
        );
        let err = parse("[tracing]\nsample_ratio = 1.5\n", Path::new("c"), &[], &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("tracing.sample_ratio") && err.contains("between 0.0 and 1.0"));
        let env = [("MGW_TRACING_SAMPLE_RATIO".to_string(), "0.25".to_string())];
        let config = parse(
            "",
            Path::new("c"),
            &env,
            &[("tracing.propagate".into(), "false".into())],
        )
        .unwrap();
        assert_eq!(config.tracing.sample_ratio, 0.25);
        assert!(!config.tracing.propagate);
    }

    #[test]
    fn locate_prefers_explicit_then_env_then_project() {
        let temp = crate::temp_dir("locate");
        let dir = temp.path();
        let conf = dir.join("conf");
        std::fs::create_dir_all(&conf).unwrap();
        std::fs::create_dir_all(dir.join("target")).unwrap();
        std::fs::write(conf.join(CONFIG_FILE_NAME), "").unwrap();
        let binary = dir.join("target").join("p");
        assert_eq!(
            locate(None, None, &binary).unwrap(),
            conf.join(CONFIG_FILE_NAME)
        );
        assert_eq!(
            locate(None, Some(conf.to_str().unwrap()), Path::new("/nowhere/x")).unwrap(),
            conf.join(CONFIG_FILE_NAME)
        );
        assert!(locate(Some(&dir.join("missing.toml")), None, &binary).is_err());
        assert!(locate(None, Some("/definitely/not/here"), &binary).is_err());
    }

    #[test]
    fn security_settings_that_cannot_work_are_refused() {
        let path = Path::new("micro-gw.toml");
        for (text, needle) in [
            ("[security.jwks]\ntimeout_ms = 0\n", "security.jwks.timeout_ms"),
            (
                "[[security.users]]\nusername = \"a\"\npassword_hash = \"x\"\n[[security.users]]\nusername = \"a\"\npassword_hash = \"y\"\n",
                "listed twice",
            ),
            (
                "[[security.jwt_issuers]]\nissuer = \"i\"\n[[security.jwt_issuers]]\nissuer = \"i\"\n",
                "listed twice",
            ),
            (
                "[security.key_manager]\nintrospection_url = \"http://km\"\nusername = \"u\"\ntimeout_ms = 0\n",
                "key_manager.timeout_ms",
            ),
        ] {
            let err = parse(text, path, &[], &[]).unwrap_err().to_string();
            assert!(err.contains(needle), "{text}: {err}");
        }
    }
}
