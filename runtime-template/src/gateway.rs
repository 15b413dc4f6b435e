//! The fixed frame of the request path: framing checks, path normalisation, routing (WSO2
//! resources, gateway routes, Express Gateway endpoints), then the route's pipeline
//! ([`crate::pipeline`]) and the log phase. One instance serves every connection; everything it
//! needs was resolved at start-up.

use std::borrow::Cow;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use http::{header, HeaderValue, Method, Request, Response, StatusCode};

use crate::access_log::{AccessRecord, LoggedBody, RecordSinks, RequestTarget, RouteRef};
use crate::auth::split_pair;
use crate::fault::{self, Fault};
use crate::model::{AuthScheme, Dialect, GatewayModel, PolicySpec};
use crate::pipeline::{Context, Matched, ReadyPipeline, Services};
use crate::policies::terminate::express;
use crate::proxy::body::{ClientBody, GatewayBody};
use crate::router::express::{ExpressRouter, Lookup};
use crate::router::{Match, Router};
use crate::telemetry::metrics::{Metrics, Outcome, RouteKey};
use crate::telemetry::trace_context::TraceContext;

/// The response type of every listener.
pub type GatewayResponse = Response<LoggedBody<GatewayBody>>;

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

/// What one listener serves.
#[derive(Debug, Clone)]
pub struct Site {
    /// `http` or `https`.
    pub proto: &'static str,
    /// WSO2 APIs, `/health` and (HTTPS) `/apikey`.
    pub wso2: bool,
    /// An Express Gateway configuration's routes (index into the model's `express`), tried
    /// after the WSO2 routes.
    pub express: Option<usize>,
    /// Who answers an unmatched request: Express's `Cannot GET` 404 or WSO2's 900906 fault.
    pub dialect: Dialect,
    /// The admin API, on an Express Gateway `admin` listener (it serves nothing else).
    pub admin: Option<Arc<crate::admin::AdminApi>>,
    /// The listener's port: the configured one, then its socket's once bound (port 0 in the
    /// settings asks the system for one). Spans carry it as `server.port`.
    pub port: u16,
}

/// Routes, pipelines and shared services, for all connections.
pub struct Gateway {
    model: GatewayModel,
    router: Router,
    express: Vec<ExpressRouter>,
    pipelines: Vec<ReadyPipeline>,
    health: ReadyPipeline,
    apikey: Option<ReadyPipeline>,
    services: Services,
    /// Where finished requests' records go: the access log, the OTLP span exporter.
    sinks: Arc<RecordSinks>,
    secret_query_params: Vec<String>,
    /// Set by a stop signal: `/health` (and Kargo's healthcheck route) answer 503 from then on.
    draining: std::sync::atomic::AtomicBool,
}

/// What the log phase knows of a request from its arrival.
struct Arrival {
    client: SocketAddr,
    /// The listener's port.
    server_port: u16,
    /// The listener serves HTTPS.
    https: bool,
    method: Method,
    started: Instant,
    /// The request's W3C trace (`[tracing]`), for the access log and the span.
    trace: Option<TraceContext>,
    /// Its span is exported (sampled, OTLP on).
    export_span: bool,
}

/// What a request was routed to.
enum Routed<'g> {
    /// Run this pipeline (the key names the route's metrics slot).
    Pipeline(&'g ReadyPipeline, Matched<'g>, String, RouteKey),
    /// Answer this directly (no route).
    Answer(Response<GatewayBody>),
}

impl Gateway {
    /// Assembles a gateway from parts resolved at start-up.
    pub fn new(
        model: GatewayModel,
        router: Router,
        express: Vec<ExpressRouter>,
        pipelines: Vec<ReadyPipeline>,
        services: Services,
        sinks: RecordSinks,
    ) -> Self {
        let health = ReadyPipeline::builtin("health", &PolicySpec::Health, &model);
        let apikey = services
            .auth
            .issues_api_keys()
            .then(|| ReadyPipeline::builtin("apikey", &PolicySpec::IssueApiKey, &model));
        Self {
            secret_query_params: credential_query_params(&model),
            model,
            router,
            express,
            pipelines,
            health,
            apikey,
            services,
            sinks: Arc::new(sinks),
            draining: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// From now on the health routes answer 503 (not ready), so load balancers and
    /// Kubernetes' readiness probe take the gateway out before its listeners close.
    pub fn start_draining(&self) {
        self.draining
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether a stop signal was received.
    pub fn is_draining(&self) -> bool {
        self.draining.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The compiled-in model.
    pub fn model(&self) -> &GatewayModel {
        &self.model
    }

    /// The metrics, when `[metrics]` is enabled.
    pub fn telemetry(&self) -> Option<&Arc<Metrics>> {
        self.services.telemetry.as_ref()
    }

    /// Serves one request from `client` on a listener serving `site`: a future that owns the
    /// gateway and the site (hyper's services want `'static` futures).
    pub fn handle(
        self: Arc<Self>,
        request: Request<ClientBody>,
        client: SocketAddr,
        site: Arc<Site>,
    ) -> impl Future<Output = Result<GatewayResponse, Infallible>> + Send + 'static {
        Self::answer::<_, _, false>(self, request, client, site)
    }

    /// [`Gateway::handle`] for a caller that holds the gateway and the site for as long as
    /// the request takes (the lean HTTP/1.1 server's connection task): the same future
    /// without the two reference counts taken and given back per request (four locking
    /// instructions, `scripts/bench --instructions`). The lean server writes the answer
    /// itself: an upstream's answer that nothing on the way reads or changes keeps its fields
    /// as received ([`crate::proxy::field_lines`]), which only that server writes.
    pub fn handle_borrowed<'a>(
        &'a self,
        request: Request<ClientBody>,
        client: SocketAddr,
        site: &'a Site,
    ) -> impl Future<Output = Result<GatewayResponse, Infallible>> + Send + 'a {
        Self::answer::<_, _, true>(self, request, client, site)
    }

    /// What [`Gateway::handle`] and [`Gateway::handle_borrowed`] serve the request with,
    /// whichever way the gateway and the site are held; `LEAN`: the lean HTTP/1.1 server
    /// writes the answer (a constant: each server's future has only its own code).
    async fn answer<G, S, const LEAN: bool>(
        gateway: G,
        request: Request<ClientBody>,
        client: SocketAddr,
        site: S,
    ) -> Result<GatewayResponse, Infallible>
    where
        G: std::ops::Deref<Target = Gateway>,
        S: std::ops::Deref<Target = Site>,
    {
        let started = crate::server::clock::now().into_std();
        let _in_flight = gateway.telemetry().map(|m| m.in_flight());
        let fields = FieldScan::of(request.headers());
        let announced = fields.length.is_some();
        let trace = gateway
            .services
            .tracing
            .start_with(fields.traceparent, fields.traceparents);
        // Only sampled requests have a span, and only when it is exported.
        let export_span = trace.is_some_and(|t| t.sampled) && gateway.sinks.spans.is_some();
        let access_path =
            (gateway.sinks.log.is_some() || export_span).then(|| gateway.request_target(&request));
        let arrival = Arrival {
            client,
            server_port: site.port,
            https: site.proto == "https",
            method: request.method().clone(),
            started,
            trace,
            export_span,
        };
        // The target moves into the record once, on whichever path answers.
        let log = |response: Response<GatewayBody>,
                   context: Option<&Context<'_>>,
                   path: Option<RequestTarget>| {
            gateway.record_metrics(&response, &arrival.method, started, context);
            gateway.log_phase(response, &arrival, path, context)
        };
        if let Some(fault) = gateway.framing_fault(&request, &fields) {
            let mut response = match site.dialect {
                // Node's HTTP server answers a bare 400 to what it cannot take (Express
                // Gateway users see no JSON fault there).
                Dialect::ExpressGateway if fault.status == StatusCode::BAD_REQUEST => {
                    crate::respond::empty(StatusCode::BAD_REQUEST, http::HeaderMap::new())
                }
                _ => fault.response::<GatewayBody>(),
            };
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            return Ok(log(response, None, access_path));
        }
        if let Some(admin) = &site.admin {
            // The admin API is not API traffic: the access log shows it, the metrics do not.
            let response = admin.handle(request).await;
            return Ok(gateway.log_phase(response, &arrival, access_path, None));
        }
        let routed = match crate::path::normalise(request.uri().path()) {
            Ok(normalised) => {
                gateway.route(&site, &request, &normalised.path, normalised.encoded_slash)
            }
            Err(_) => Routed::Answer(fault::INVALID_PATH.response()),
        };
        let (pipeline, matched, rest, route) = match routed {
            Routed::Pipeline(pipeline, matched, rest, route) => (pipeline, matched, rest, route),
            Routed::Answer(response) => return Ok(log(response, None, access_path)),
        };
        let http1 = request.version() < http::Version::HTTP_2;
        let mut context = Context::new(client, site.proto, started, http1, matched);
        context.rest = rest;
        context.trace = trace;
        context.route = route;
        context.fields_as_received = LEAN;
        // The head is lent to the pipeline (a move copies it into each future on the way).
        let (mut parts, body) = request.into_parts();
        // A body hyper's server read that has ended already is no body (no lock of an HTTP/2
        // stream each time it is asked on the way). The lean server's bodies are its own.
        let body = match body {
            ClientBody::Streaming(body) if !LEAN => ClientBody::from_hyper(body, announced),
            body => body,
        };
        let mut answer = None;
        pipeline
            .run(
                &gateway.services,
                &mut context,
                &mut parts,
                body,
                &mut answer,
            )
            .await;
        // `run` always leaves an answer; the fallback is never taken.
        let mut response = answer.unwrap_or_else(|| fault::INTERNAL_ERROR.response());
        if context.close_connection {
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        Ok(log(response, Some(&context), access_path))
    }

    /// Finds what serves the request: gateway routes and WSO2 resources first, then the
    /// Express Gateway endpoints of the listener, else the site's 404 (or WSO2's 405).
    fn route<'g>(
        &'g self,
        site: &Site,
        request: &Request<ClientBody>,
        path: &str,
        encoded_slash: bool,
    ) -> Routed<'g> {
        let method = request.method();
        let mut method_not_allowed = None;
        if site.wso2 {
            if path == crate::policies::health::PATH
                && (method == Method::GET || method == Method::HEAD)
            {
                if self.is_draining() {
                    return Routed::Answer(crate::policies::health::draining());
                }
                return Routed::Pipeline(
                    &self.health,
                    Matched::Builtin,
                    String::new(),
                    RouteKey::Health,
                );
            }
            if let Some(apikey) = &self.apikey {
                if path == crate::policies::apikey::PATH
                    && site.proto == "https"
                    && method == Method::GET
                {
                    return Routed::Pipeline(
                        apikey,
                        Matched::Builtin,
                        String::new(),
                        RouteKey::ApiKey,
                    );
                }
            }
            match self.router.lookup(method, path) {
                Match::Found(id) => {
                    let route = self.router.route(id);
                    // The router was built from this model, so both exist; still never an
                    // index panic.
                    let found = self.model.apis.get(route.api).and_then(|api| {
                        let resource = api.resources.get(route.resource)?;
                        Some((api, resource, self.pipelines.get(resource.pipeline)?))
                    });
                    let Some((api, resource, pipeline)) = found else {
                        return Routed::Answer(fault::INTERNAL_ERROR.response());
                    };
                    if encoded_slash && !api.allow_encoded_slash {
                        return Routed::Answer(fault::INVALID_PATH.response());
                    }
                    let rest = route.remainder(path).to_string();
                    let key = RouteKey::Wso2(route.api, route.resource);
                    return Routed::Pipeline(pipeline, Matched::Wso2 { api, resource }, rest, key);
                }
                Match::MethodNotAllowed(allow) => {
                    // A CORS preflight to a path without an OPTIONS operation goes to the
                    // pipeline of the method it asks about, whose CORS step answers it.
                    if let Some(routed) = self.preflight_route(request, path) {
                        return routed;
                    }
                    method_not_allowed = Some(allow)
                }
                Match::NotFound => {}
            }
        }
        let healthcheck = site
            .express
            .and_then(|i| self.model.express.get(i))
            .and_then(|config| config.healthcheck.as_deref());
        if let Some(route) = healthcheck {
            // Kargo's healthcheck plugin: a gateway route `GET <path>` answering `sendStatus(200)`.
            if (method == Method::GET || method == Method::HEAD)
                && crate::router::express::same_route_path(route, path)
            {
                let status = if self.is_draining() {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::OK
                };
                return Routed::Answer(crate::respond::express_send_status(status));
            }
        }
        if let Some(routes) = site.express.and_then(|i| self.express.get(i)) {
            let host = request
                .headers()
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .or_else(|| request.uri().authority().map(crate::router::authority_host));
            match routes.resolve(method.as_str(), host, path) {
                Lookup::Route(found) => {
                    let config = site.express.and_then(|i| self.model.express.get(i));
                    let Some(route) = config.and_then(|c| c.routes.get(found.route)) else {
                        return Routed::Answer(crate::respond::internal_error(
                            Dialect::ExpressGateway,
                        ));
                    };
                    let Some(pipeline) = route.pipeline.and_then(|p| self.pipelines.get(p)) else {
                        // An endpoint no pipeline names: Express's `sendStatus(404)`.
                        return Routed::Answer(crate::respond::express_send_status(
                            StatusCode::NOT_FOUND,
                        ));
                    };
                    let matched = Matched::Express {
                        route,
                        strip: found.strip,
                    };
                    let key = site
                        .express
                        .map_or(RouteKey::Unrouted, |i| RouteKey::Express(i, found.route));
                    return Routed::Pipeline(pipeline, matched, path.to_string(), key);
                }
                Lookup::Options(allow) => {
                    // Express's own answer to OPTIONS on routes that do not take it.
                    let mut response = crate::respond::answer(express::express_send(
                        StatusCode::OK,
                        &allow,
                        "text/html; charset=utf-8",
                    ));
                    if let Ok(value) = HeaderValue::from_str(&allow) {
                        response.headers_mut().insert(header::ALLOW, value);
                    }
                    return Routed::Answer(response);
                }
                Lookup::MalformedParam => {
                    return Routed::Answer(crate::respond::answer(express::express_bad_request()));
                }
                Lookup::NotFound => {}
            }
        }
        if let Some(allow) = method_not_allowed {
            let mut response: Response<GatewayBody> = fault::METHOD_NOT_ALLOWED.response();
            response.headers_mut().insert(header::ALLOW, allow);
            return Routed::Answer(response);
        }
        Routed::Answer(match site.dialect {
            Dialect::ExpressGateway => crate::respond::express_not_found(
                method.as_str(),
                request.uri().path_and_query().map_or("/", |pq| pq.as_str()),
            ),
            Dialect::Wso2 => fault::NO_MATCHING_RESOURCE.response(),
        })
    }

    /// The route of a WSO2 CORS preflight (`OPTIONS` with `Access-Control-Request-Method`):
    /// the resource of the requested method (HEAD: GET), when its pipeline starts with CORS.
    fn preflight_route<'g>(
        &'g self,
        request: &Request<ClientBody>,
        path: &str,
    ) -> Option<Routed<'g>> {
        if request.method() != Method::OPTIONS {
            return None;
        }
        let asked = request
            .headers()
            .get(header::ACCESS_CONTROL_REQUEST_METHOD)?
            .to_str()
            .ok()?;
        let mut asked = Method::from_bytes(asked.trim().as_bytes()).ok()?;
        if asked == Method::HEAD {
            asked = Method::GET;
        }
        let Match::Found(id) = self.router.lookup(&asked, path) else {
            return None;
        };
        let route = self.router.route(id);
        let api = self.model.apis.get(route.api)?;
        let resource = api.resources.get(route.resource)?;
        let pipeline = self.pipelines.get(resource.pipeline)?;
        pipeline.answers_preflights().then(|| {
            Routed::Pipeline(
                pipeline,
                Matched::Wso2 { api, resource },
                route.remainder(path).to_string(),
                RouteKey::Wso2(route.api, route.resource),
            )
        })
    }

    /// The log phase's metrics: the request counted in its route's series (at the response
    /// head; [`crate::telemetry::metrics`]).
    fn record_metrics(
        &self,
        response: &Response<GatewayBody>,
        method: &Method,
        started: Instant,
        context: Option<&Context<'_>>,
    ) {
        if let Some(metrics) = self.telemetry() {
            metrics.record(Outcome {
                route: context.map_or(RouteKey::Unrouted, |c| c.route),
                method,
                status: response.status(),
                elapsed: crate::server::clock::since(started),
                upstream_latency: context.and_then(|c| c.upstream_latency),
                upstream_failure: context.and_then(|c| c.upstream_failure),
            });
        }
    }

    /// The log phase: the access-log record (and the span), written when the response body ends.
    fn log_phase(
        &self,
        response: Response<GatewayBody>,
        arrival: &Arrival,
        path: Option<RequestTarget>,
        context: Option<&Context<'_>>,
    ) -> GatewayResponse {
        let status = response.status();
        // Made where the body keeps it (no move of a finished record but into the log).
        response.map(|body| {
            let record = path.map(|path| {
                let mut record = AccessRecord::new(
                    arrival.client.ip(),
                    arrival.method.clone(),
                    path,
                    status,
                    arrival.started,
                );
                record.server_port = arrival.server_port;
                record.https = arrival.https;
                record.trace = arrival.trace;
                record.export_span = arrival.export_span;
                if let Some(context) = context {
                    record.route = RouteRef::of(context.route);
                    record.upstream = context.upstream.clone();
                    record.upstream_latency = context.upstream_latency;
                    record.upstream_failure = context.upstream_failure;
                    record.consumer = context.consumer.clone();
                }
                record
            });
            LoggedBody::new(body, record, &self.sinks)
        })
    }

    /// The request target as the access log shows it (no allocation when short and nothing
    /// is redacted).
    fn request_target(&self, request: &Request<ClientBody>) -> RequestTarget {
        let target = request.uri().path_and_query().map_or("/", |pq| pq.as_str());
        if self.secret_query_params.is_empty() {
            // Nothing to redact (the common case): no call.
            return RequestTarget::new(target);
        }
        RequestTarget::new(&redacted_target(target, &self.secret_query_params))
    }

    /// Rejections decided by the request head alone, before routing: an over-long target,
    /// no `Host` in HTTP/1.1, a Transfer-Encoding other than one plain `chunked`, a declared
    /// body over the limit (`fields`: what the head's fields say).
    fn framing_fault(
        &self,
        request: &Request<ClientBody>,
        fields: &FieldScan<'_>,
    ) -> Option<Fault> {
        let limits = &self.services.limits;
        let target_len = request
            .uri()
            .path_and_query()
            .map_or(0, |pq| pq.as_str().len());
        if target_len > limits.max_uri_bytes {
            return Some(fault::URI_TOO_LONG);
        }
        // RFC 9112 §3.2 (Node, and so Express Gateway, answers 400 too). HTTP/2 carries
        // `:authority` instead, and HTTP/1.0 has no such rule.
        if request.version() == http::Version::HTTP_11 && !fields.host {
            return Some(fault::MISSING_HOST);
        }
        if fields.codings > 0 && !(fields.codings == 1 && fields.first_coding_chunked) {
            return Some(fault::BAD_FRAMING);
        }
        if limits.max_body_bytes > 0 {
            let declared = fields
                .length
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            if declared.is_some_and(|len| len > limits.max_body_bytes) {
                return Some(fault::PAYLOAD_TOO_LARGE);
            }
        }
        None
    }
}

/// What the gateway reads from a request's fields before routing, found in one pass over
/// them: a lookup each costs about a hash and a probe (and `traceparent`'s name, not one of
/// `http`'s standard names, is hashed byte by byte), more than comparing the few names a
/// request has.
#[derive(Debug, Default)]
struct FieldScan<'r> {
    /// A `Host` field.
    host: bool,
    /// How many `Transfer-Encoding` fields.
    codings: u32,
    /// The first `Transfer-Encoding` field says `chunked` (only).
    first_coding_chunked: bool,
    /// The first `Content-Length` field.
    length: Option<&'r HeaderValue>,
    /// The first `traceparent` field
    /// ([`crate::telemetry::trace_context::Propagation::start_with`]).
    traceparent: Option<&'r HeaderValue>,
    /// More than one `traceparent` field.
    traceparents: bool,
}

impl<'r> FieldScan<'r> {
    fn of(headers: &'r http::HeaderMap) -> Self {
        let mut scan = Self::default();
        for (name, value) in headers {
            if name == header::HOST {
                scan.host = true;
            } else if name == header::TRANSFER_ENCODING {
                if scan.codings == 0 {
                    scan.first_coding_chunked = value
                        .as_bytes()
                        .trim_ascii()
                        .eq_ignore_ascii_case(b"chunked");
                }
                scan.codings += 1;
            } else if name == header::CONTENT_LENGTH {
                scan.length = scan.length.or(Some(value));
            } else if name == crate::telemetry::trace_context::TRACEPARENT {
                scan.traceparents = scan.traceparent.is_some();
                scan.traceparent = scan.traceparent.or(Some(value));
            }
        }
        scan
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

/// The request target for the access log, with API-key query values replaced by `***`
/// (borrowed as it came when there is nothing to replace).
pub(crate) fn redacted_target<'t>(target: &'t str, secret_params: &[String]) -> Cow<'t, str> {
    if secret_params.is_empty() {
        return Cow::Borrowed(target);
    }
    let secret = |pair: &&str| secret_params.iter().any(|p| p == split_pair(pair).0);
    let Some((path, query)) = target.split_once('?') else {
        return Cow::Borrowed(target);
    };
    // Most requests carry no key: no rebuilding for them.
    if !query.split('&').any(|pair| secret(&pair)) {
        return Cow::Borrowed(target);
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
    Cow::Owned(format!("{path}?{}", pairs.join("&")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_pass_over_the_fields_finds_what_a_lookup_of_each_would() {
        use crate::telemetry::trace_context::TRACEPARENT;
        let mut headers = http::HeaderMap::new();
        headers.append(header::ACCEPT, HeaderValue::from_static("*/*"));
        headers.append(header::CONTENT_LENGTH, HeaderValue::from_static("5"));
        headers.append(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static(" Chunked "),
        );
        headers.append(&TRACEPARENT, HeaderValue::from_static("first"));
        headers.append(header::CONTENT_LENGTH, HeaderValue::from_static("6"));
        let scan = FieldScan::of(&headers);
        assert!(!scan.host);
        assert_eq!(scan.codings, 1);
        assert!(scan.first_coding_chunked);
        assert_eq!(scan.length, headers.get(header::CONTENT_LENGTH));
        assert_eq!(scan.traceparent, headers.get(&TRACEPARENT));
        assert!(!scan.traceparents);

        headers.append(header::HOST, HeaderValue::from_static("a"));
        headers.append(header::TRANSFER_ENCODING, HeaderValue::from_static("gzip"));
        // A second `traceparent`, after other fields: the first stays the first.
        headers.append(&TRACEPARENT, HeaderValue::from_static("second"));
        let scan = FieldScan::of(&headers);
        assert!(scan.host);
        assert_eq!(scan.codings, 2);
        assert!(scan.first_coding_chunked);
        assert_eq!(
            scan.traceparent.map(HeaderValue::as_bytes),
            Some(&b"first"[..])
        );
        assert!(scan.traceparents);
        assert!(FieldScan::of(&http::HeaderMap::new()).traceparent.is_none());
    }

    #[test]
    fn api_key_query_values_are_redacted_for_the_log() {
        let secret = vec!["api_key".to_string()];
        assert_eq!(
            redacted_target("/p?a=1&api_key=SECRET&b", &secret),
            "/p?a=1&api_key=***&b"
        );
        assert_eq!(redacted_target("/p?api_keyx=1", &secret), "/p?api_keyx=1");
        assert_eq!(redacted_target("/p", &secret), "/p");
        // Nothing to hide: the target itself, not a copy.
        for (target, secret) in [("/p?api_keyx=1", &secret), ("/p?api_key=1", &Vec::new())] {
            assert!(matches!(redacted_target(target, secret), Cow::Borrowed(t) if t == target));
        }
    }
}
