//! The request path: health check, route lookup, then the proxy. One instance serves every
//! connection; everything it needs was resolved at start-up.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;

use crate::access_log::{AccessRecord, LoggedBody};
use crate::auth::cache::KeyType;
use crate::auth::{query_param, split_pair, uses_auth_header, Authenticator, Rejection};
use crate::config::ForwardingConfig;
use crate::fault::{self, Fault};
use crate::model::{ApiKeyLocation, AuthScheme, GatewayModel, Security};
use crate::proxy::body::{BodyLimits, GatewayBody};
use crate::proxy::upstream::Upstream;
use crate::proxy::{self, headers, UpstreamClient};
use crate::router::{Match, Router};

/// The response type of every listener.
pub type GatewayResponse = Response<LoggedBody<GatewayBody>>;

const HEALTH_PATH: &str = "/health";
const HEALTH_BODY: &str = r#"{"status":"healthy"}"#;
/// WSO2's API key service, on the HTTPS listener.
const APIKEY_PATH: &str = "/apikey";

/// Per-request limits from `[limits]` and `[timeouts]`.
#[derive(Debug, Clone, Copy)]
pub struct RequestLimits {
    /// Longest request target.
    pub max_uri_bytes: usize,
    /// Largest body (0: none).
    pub max_body_bytes: u64,
    /// Longest pause in a body.
    pub body_idle: std::time::Duration,
    /// Time a whole body may take (`None`: no deadline).
    pub body_deadline: Option<crate::proxy::body::BodyDeadline>,
}

/// Routes, upstreams and the client, shared by all connections.
pub struct Gateway {
    model: GatewayModel,
    router: Router,
    upstreams: Vec<Upstream>,
    client: UpstreamClient,
    limits: RequestLimits,
    forwarding: ForwardingConfig,
    auth: Authenticator,
    remove_credential_header: bool,
    access_log: bool,
    secret_query_params: Vec<String>,
}

/// What the gateway needs besides routes and upstreams.
pub struct GatewayOptions {
    /// Per-request limits.
    pub limits: RequestLimits,
    /// Trusted proxies.
    pub forwarding: ForwardingConfig,
    /// Credential validation.
    pub auth: Authenticator,
    /// Strip the credential header before forwarding.
    pub remove_credential_header: bool,
    /// One log line per request.
    pub access_log: bool,
}

impl Gateway {
    /// Assembles a gateway from parts resolved at start-up.
    pub fn new(
        model: GatewayModel,
        router: Router,
        upstreams: Vec<Upstream>,
        client: UpstreamClient,
        options: GatewayOptions,
    ) -> Self {
        Self {
            secret_query_params: credential_query_params(&model),
            model,
            router,
            upstreams,
            client,
            limits: options.limits,
            forwarding: options.forwarding,
            auth: options.auth,
            remove_credential_header: options.remove_credential_header,
            access_log: options.access_log,
        }
    }

    /// The compiled-in model.
    pub fn model(&self) -> &GatewayModel {
        &self.model
    }

    /// Serves one request from `client` on a listener speaking `proto` (`http` or `https`).
    pub async fn handle(
        self: Arc<Self>,
        request: Request<Incoming>,
        client: SocketAddr,
        proto: &'static str,
    ) -> Result<GatewayResponse, Infallible> {
        let started = Instant::now();
        let method = request.method().clone();
        let record = |status: StatusCode, upstream: Option<String>, latency| {
            self.access_log.then(|| {
                Box::new(AccessRecord {
                    client,
                    method: method.clone(),
                    path: self.request_target(&request),
                    status,
                    upstream,
                    started,
                    upstream_latency: latency,
                    consumer: None,
                })
            })
        };
        if let Some(fault) = self.framing_fault(&request) {
            let record = record(fault.status, None, None);
            let mut response = fault_response(&fault, record);
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            return Ok(response);
        }
        let normalised = match crate::path::normalise(request.uri().path()) {
            Ok(normalised) => normalised,
            Err(_) => {
                let record = record(fault::INVALID_PATH.status, None, None);
                return Ok(fault_response(&fault::INVALID_PATH, record));
            }
        };
        let path: &str = &normalised.path;
        if path == HEALTH_PATH && (method == Method::GET || method == Method::HEAD) {
            let mut response = Response::new(GatewayBody::from(Bytes::from_static(
                HEALTH_BODY.as_bytes(),
            )));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            let record = record(StatusCode::OK, None, None);
            return Ok(response.map(|b| LoggedBody::new(b, record)));
        }
        if path == APIKEY_PATH && proto == "https" && method == Method::GET {
            if let Some(issued) = self.auth.issue_api_key(request.headers()).await {
                return Ok(match issued {
                    Ok(key) => {
                        let mut response = Response::new(GatewayBody::from(Bytes::from(key)));
                        response
                            .headers_mut()
                            .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
                        response
                            .headers_mut()
                            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                        let record = record(StatusCode::OK, None, None);
                        response.map(|b| LoggedBody::new(b, record))
                    }
                    Err(rejection) => rejection_response(rejection, record),
                });
            }
        }
        let route = match self.router.lookup(&method, path) {
            Match::Found(route) => self.router.route(route),
            Match::MethodNotAllowed(allow) => {
                let mut response: Response<GatewayBody> = fault::METHOD_NOT_ALLOWED.response();
                response.headers_mut().insert(header::ALLOW, allow);
                let record = record(StatusCode::METHOD_NOT_ALLOWED, None, None);
                return Ok(response.map(|b| LoggedBody::new(b, record)));
            }
            Match::NotFound => {
                let record = record(StatusCode::NOT_FOUND, None, None);
                return Ok(fault_response(&fault::NO_MATCHING_RESOURCE, record));
            }
        };
        // The router was built from this model, so both exist; still never an index panic.
        let Some((api, resource)) = self
            .model
            .apis
            .get(route.api)
            .and_then(|api| Some((api, api.resources.get(route.resource)?)))
        else {
            let record = record(fault::INTERNAL_ERROR.status, None, None);
            return Ok(fault_response(&fault::INTERNAL_ERROR, record));
        };
        if normalised.encoded_slash && !api.allow_encoded_slash {
            let record = record(fault::INVALID_PATH.status, None, None);
            return Ok(fault_response(&fault::INVALID_PATH, record));
        }
        let mut grant = None;
        if let Some(security) = &resource.security {
            match self
                .auth
                .authenticate(security, api, request.headers(), request.uri().query())
                .await
            {
                Ok(granted) => grant = granted,
                Err(rejection) => return Ok(rejection_response(rejection, record)),
            }
        }
        let sandbox = grant
            .as_ref()
            .is_some_and(|g| g.key_type == KeyType::Sandbox);
        let endpoint = if sandbox {
            resource.sandbox.ok_or(fault::NO_SANDBOX_ENDPOINT)
        } else {
            resource.production.ok_or(fault::NO_PRODUCTION_ENDPOINT)
        };
        let upstream =
            match endpoint.and_then(|i| self.upstreams.get(i).ok_or(fault::INTERNAL_ERROR)) {
                Ok(upstream) => upstream,
                Err(fault) => {
                    let record = record(fault.status, None, None);
                    return Ok(fault_response(&fault, record));
                }
            };
        let consumer = grant.and_then(|g| g.consumer);

        let rest = route.remainder(path).to_string();
        drop(normalised);
        let access_path = self.access_log.then(|| self.request_target(&request));
        let version = request.version();
        let (mut parts, body) = request.into_parts();
        let host = parts.headers.remove(header::HOST).or_else(|| {
            parts
                .uri
                .authority()
                .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        });
        headers::strip_hop_by_hop(&mut parts.headers);
        if let Some(security) = resource
            .security
            .as_ref()
            .filter(|_| self.remove_credential_header)
        {
            remove_credentials(security, &mut parts);
        }
        let trusted = self.forwarding.trusts(client.ip());
        headers::add_forwarded(&mut parts.headers, client.ip(), trusted, proto, host);

        let record = |status, target, latency| {
            access_path.map(|path| {
                Box::new(AccessRecord {
                    client,
                    method: method.clone(),
                    path,
                    status,
                    upstream: target,
                    started,
                    upstream_latency: latency,
                    consumer: consumer.clone(),
                })
            })
        };
        let body_limits = BodyLimits {
            max_bytes: self.limits.max_body_bytes,
            idle: self.limits.body_idle,
            deadline: self.limits.body_deadline,
        };
        let http1 = version < http::Version::HTTP_2;
        match proxy::forward(&self.client, upstream, parts, body, body_limits, &rest).await {
            Ok(forwarded) => {
                let record = record(
                    forwarded.response.status(),
                    Some(forwarded.target),
                    Some(forwarded.latency),
                );
                Ok(forwarded
                    .response
                    .map(|body| LoggedBody::new(GatewayBody::upstream(body), record)))
            }
            Err(err) => {
                let record = record(err.fault.status, err.target, None);
                let mut response = fault_response(&err.fault, record);
                if err.blame == proxy::Blame::Client && http1 {
                    // The rest of the body is unread: the connection cannot carry another
                    // request.
                    response
                        .headers_mut()
                        .insert(header::CONNECTION, HeaderValue::from_static("close"));
                }
                Ok(response)
            }
        }
    }
}

impl Gateway {
    /// The request target as the access log shows it.
    fn request_target(&self, request: &Request<Incoming>) -> String {
        let target = request.uri().path_and_query().map_or("/", |pq| pq.as_str());
        redacted_target(target, &self.secret_query_params)
    }

    /// Rejections decided by the request head alone, before routing: an over-long target,
    /// a Transfer-Encoding other than one plain `chunked`, a declared body over the limit.
    fn framing_fault(&self, request: &Request<Incoming>) -> Option<Fault> {
        let target_len = request
            .uri()
            .path_and_query()
            .map_or(0, |pq| pq.as_str().len());
        if target_len > self.limits.max_uri_bytes {
            return Some(fault::URI_TOO_LONG);
        }
        let mut codings = request.headers().get_all(header::TRANSFER_ENCODING).iter();
        if let Some(first) = codings.next() {
            let plain_chunked = first
                .as_bytes()
                .trim_ascii()
                .eq_ignore_ascii_case(b"chunked");
            if !plain_chunked || codings.next().is_some() {
                return Some(fault::BAD_FRAMING);
            }
        }
        if self.limits.max_body_bytes > 0 {
            let declared = request
                .headers()
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            if declared.is_some_and(|len| len > self.limits.max_body_bytes) {
                return Some(fault::PAYLOAD_TOO_LARGE);
            }
        }
        None
    }
}

/// Names of API keys anywhere in the model: their values in a query string are never written
/// to the access log (header-scheme names too, since clients do put keys in the wrong place).
fn credential_query_params(model: &GatewayModel) -> Vec<String> {
    let mut names: Vec<String> = model
        .apis
        .iter()
        .flat_map(|api| &api.resources)
        .filter_map(|r| r.security.as_ref())
        .flat_map(|s| &s.schemes)
        .filter_map(|scheme| match scheme {
            AuthScheme::ApiKey { name, .. } => Some(name.clone()),
            _ => None,
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The request target for the access log, with API-key query values replaced by `***`.
pub(crate) fn redacted_target(target: &str, secret_params: &[String]) -> String {
    let secret = |pair: &&str| secret_params.iter().any(|p| p == split_pair(pair).0);
    let Some((path, query)) = target.split_once('?') else {
        return target.to_string();
    };
    // Most requests carry no key: no rebuilding for them.
    if !query.split('&').any(|pair| secret(&pair)) {
        return target.to_string();
    }
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| {
            if secret(&pair) {
                format!("{}=***", split_pair(pair).0)
            } else {
                pair.to_string()
            }
        })
        .collect();
    format!("{path}?{}", pairs.join("&"))
}

fn rejection_response(
    rejection: Rejection,
    record: impl FnOnce(
        StatusCode,
        Option<String>,
        Option<std::time::Duration>,
    ) -> Option<Box<AccessRecord>>,
) -> GatewayResponse {
    let record = record(rejection.fault.status, None, None);
    let mut response = fault_response(&rejection.fault, record);
    if let Some(challenge) = rejection.challenge {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(challenge),
        );
    }
    response
}

/// Removes every credential the resource accepts — its auth header (when it takes OAuth2 or
/// basic), API-key headers, query parameters and cookies — so the upstream never sees them.
pub(crate) fn remove_credentials(security: &Security, parts: &mut http::request::Parts) {
    if uses_auth_header(security) {
        parts.headers.remove(security.auth_header.as_str());
    }
    for scheme in &security.schemes {
        let AuthScheme::ApiKey { location, name } = scheme else {
            continue;
        };
        match location {
            ApiKeyLocation::Header => {
                parts.headers.remove(name.as_str());
            }
            ApiKeyLocation::Cookie => {
                crate::auth::cookie::remove(&mut parts.headers, name);
            }
            ApiKeyLocation::Query => {
                let Some(query) = parts.uri.query() else {
                    continue;
                };
                if query_param(query, name).is_none() {
                    continue;
                }
                let kept: Vec<&str> = query
                    .split('&')
                    .filter(|pair| split_pair(pair).0 != name)
                    .collect();
                let path = parts.uri.path();
                let target = if kept.is_empty() {
                    path.to_string()
                } else {
                    format!("{path}?{}", kept.join("&"))
                };
                let mut uri = http::uri::Builder::new();
                if let Some(scheme) = parts.uri.scheme() {
                    uri = uri.scheme(scheme.clone());
                }
                if let Some(authority) = parts.uri.authority() {
                    uri = uri.authority(authority.clone());
                }
                if let Ok(rebuilt) = uri.path_and_query(target).build() {
                    parts.uri = rebuilt;
                }
            }
        }
    }
}

fn fault_response(fault: &Fault, record: Option<Box<AccessRecord>>) -> GatewayResponse {
    fault
        .response::<GatewayBody>()
        .map(|body| LoggedBody::new(body, record))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_key_query_values_are_redacted_for_the_log() {
        let secret = vec!["api_key".to_string()];
        assert_eq!(
            redacted_target("/p?a=1&api_key=SECRET&b", &secret),
            "/p?a=1&api_key=***&b"
        );
        assert_eq!(redacted_target("/p?api_keyx=1", &secret), "/p?api_keyx=1");
        assert_eq!(redacted_target("/p", &secret), "/p");
    }
}
