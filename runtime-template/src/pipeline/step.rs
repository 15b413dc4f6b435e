//! The closed set of ready policies and their dispatch.

use bytes::Bytes;
use http::request::Parts;
use http::Response;
use http_body::Body as _;

use super::context::{Context, Matched};
use super::Services;
use crate::auth::outbound::OutboundClient;
use crate::expression::RequestScope;
use crate::model::{Dialect, GatewayModel, PolicySpec};
use crate::policies;
use crate::proxy::body::{ClientBody, GatewayBody};

/// What a step decided in the request phase.
// The response travels by value on every request; boxing it would allocate per request.
#[allow(clippy::large_enum_variant)]
pub enum Flow {
    /// Go on with the next step.
    Continue,
    /// Answer with this response; later steps do not run.
    Respond(Response<GatewayBody>),
}

/// What [`ReadyPolicy::request`] decided (an answer is in the caller's slot).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decided {
    /// Go on with the next step.
    Continue,
    /// The step answered; later steps do not run.
    Answered,
}

/// A policy made ready at start-up.
pub enum ReadyPolicy {
    /// WSO2 `GET /health`.
    Health,
    /// WSO2 `GET /apikey`.
    IssueApiKey,
    /// WSO2 authentication.
    Authenticate(policies::authenticate::AuthenticateStep),
    /// Forward upstream.
    Proxy(policies::proxy::ProxyStep),
    /// A policy kept in place of one this version cannot run.
    Unsupported(policies::unsupported::UnsupportedStep),
    /// CORS.
    Cors(policies::cors::CorsPolicy),
    /// A fixed answer.
    Terminate(policies::terminate::TerminatePolicy),
    /// A log line from a template.
    Log(policies::log::LogPolicy),
    /// Request headers from expressions.
    Headers(policies::transformer::HeadersPolicy),
    /// Request header changes.
    RequestTransformer(policies::transformer::TransformerPolicy),
    /// Response header changes.
    ResponseTransformer(policies::transformer::TransformerPolicy),
    /// Express Gateway `key-auth`.
    KeyAuth(policies::key_auth::KeyAuthStep),
    /// Express Gateway `basic-auth`.
    BasicAuth(policies::basic_auth::BasicAuthStep),
    /// Express Gateway `jwt`.
    Jwt(policies::jwt::JwtStep),
    /// Express Gateway `oauth2-introspect`.
    Introspect(Box<policies::introspect::IntrospectStep>),
    /// Kargo's `scopes`.
    Scopes,
    /// Kargo's `metrics`: the request header naming the consumer.
    Metrics(http::HeaderName),
    /// Express Gateway `rate-limit`.
    RateLimit(policies::rate_limit::step::RateLimitStep),
    /// WSO2 throttling tiers.
    Throttle(policies::throttling::step::ThrottleStep),
    /// Request and response validation (the `validation` feature).
    #[cfg(feature = "validation")]
    Validate(Box<policies::validate::step::ValidateStep>),
}

impl ReadyPolicy {
    /// The policy's factory: checks and compiles its spec; the error says why it cannot run.
    /// `client` makes the outbound calls of policies that make some (introspection); without
    /// one, such a policy cannot be made ready.
    pub fn new(
        spec: &PolicySpec,
        dialect: Dialect,
        model: &GatewayModel,
        env: &dyn Fn(&str) -> Option<String>,
        client: Option<&OutboundClient>,
    ) -> Result<Self, String> {
        Ok(match spec {
            PolicySpec::Health => ReadyPolicy::Health,
            PolicySpec::IssueApiKey => ReadyPolicy::IssueApiKey,
            PolicySpec::Authenticate(spec) => {
                ReadyPolicy::Authenticate(policies::authenticate::AuthenticateStep::new(spec))
            }
            PolicySpec::Proxy(spec) => {
                ReadyPolicy::Proxy(policies::proxy::ProxyStep::new(spec, dialect, model)?)
            }
            PolicySpec::Unsupported(spec) => {
                ReadyPolicy::Unsupported(policies::unsupported::UnsupportedStep::new(spec))
            }
            PolicySpec::Cors(spec) => {
                ReadyPolicy::Cors(policies::cors::CorsPolicy::new(spec).map_err(|e| e.to_string())?)
            }
            PolicySpec::Terminate(spec) => ReadyPolicy::Terminate(
                policies::terminate::TerminatePolicy::new(spec).map_err(|e| e.to_string())?,
            ),
            PolicySpec::Log(spec) => {
                ReadyPolicy::Log(policies::log::LogPolicy::new(spec).map_err(|e| e.to_string())?)
            }
            PolicySpec::Headers(spec) => ReadyPolicy::Headers(
                policies::transformer::HeadersPolicy::new(spec).map_err(|e| e.to_string())?,
            ),
            PolicySpec::RequestTransformer(spec) => {
                ReadyPolicy::RequestTransformer(transformer(spec)?)
            }
            PolicySpec::ResponseTransformer(spec) => {
                ReadyPolicy::ResponseTransformer(transformer(spec)?)
            }
            PolicySpec::KeyAuth(spec) => {
                ReadyPolicy::KeyAuth(policies::key_auth::KeyAuthStep::new(spec)?)
            }
            PolicySpec::BasicAuth(spec) => ReadyPolicy::BasicAuth(
                policies::basic_auth::BasicAuthStep::new(spec, BASIC_CACHE_ENTRIES),
            ),
            PolicySpec::Jwt(spec) => ReadyPolicy::Jwt(policies::jwt::JwtStep::new(spec, env)?),
            PolicySpec::Introspect(spec) => {
                let client = client.ok_or("no outbound client for the introspection endpoint")?;
                ReadyPolicy::Introspect(Box::new(policies::introspect::IntrospectStep::new(
                    spec, env, client,
                )?))
            }
            PolicySpec::Scopes(_) => ReadyPolicy::Scopes,
            PolicySpec::RateLimit(spec) => {
                ReadyPolicy::RateLimit(policies::rate_limit::step::RateLimitStep::new(spec)?)
            }
            PolicySpec::Throttle(spec) => {
                ReadyPolicy::Throttle(policies::throttling::step::ThrottleStep::new(spec)?)
            }
            #[cfg(feature = "validation")]
            PolicySpec::Validate(spec) => ReadyPolicy::Validate(Box::new(
                policies::validate::step::ValidateStep::new(spec)?,
            )),
            #[cfg(not(feature = "validation"))]
            PolicySpec::Validate(_) => return Err(
                "this gateway was built without request validation (the runtime's `validation` feature): run `micro-gw build` again".into(),
            ),
            PolicySpec::Metrics(spec) => ReadyPolicy::Metrics(
                http::HeaderName::from_bytes(spec.consumer_header.to_ascii_lowercase().as_bytes())
                    .map_err(|_| {
                        format!(
                            "consumerIdHeaderName {:?} is not a header name",
                            spec.consumer_header
                        )
                    })?,
            ),
        })
    }

    /// Whether [`ReadyPolicy::response`] does anything for this policy.
    pub fn has_response_phase(&self) -> bool {
        match self {
            ReadyPolicy::Unsupported(step) => step.has_response_phase(),
            ReadyPolicy::KeyAuth(step) => step.has_response_phase(),
            ReadyPolicy::BasicAuth(step) => step.has_response_phase(),
            ReadyPolicy::Jwt(step) => step.has_response_phase(),
            ReadyPolicy::RateLimit(step) => step.has_response_phase(),
            ReadyPolicy::Introspect(step) => step.has_response_phase(),
            #[cfg(feature = "validation")]
            ReadyPolicy::Validate(step) => step.has_response_phase(),
            ReadyPolicy::Cors(_)
            | ReadyPolicy::Throttle(_)
            | ReadyPolicy::ResponseTransformer(_)
            | ReadyPolicy::Metrics(_) => true,
            _ => false,
        }
    }

    /// Whether this policy leaves an upstream answer's fields to be passed on as received
    /// ([`crate::proxy::field_lines`]): its response phase, if it has one, reads no field of
    /// the answer and only sets fields of the gateway's own
    /// ([`crate::proxy::field_lines::GATEWAY_FIELDS`], which an answer kept so never has):
    /// WSO2's `throttle` (`RateLimit`, `RateLimit-Policy`), Express Gateway's `metrics` (it
    /// counts the status), and the authentication steps that mark an anonymous consumer
    /// (`eg-consumer-id`). Every other response phase reads or changes the answer's fields.
    pub fn keeps_answer_fields(&self) -> bool {
        if !self.has_response_phase() {
            return true;
        }
        matches!(
            self,
            ReadyPolicy::Throttle(_)
                | ReadyPolicy::Metrics(_)
                | ReadyPolicy::KeyAuth(_)
                | ReadyPolicy::BasicAuth(_)
                | ReadyPolicy::Jwt(_)
                | ReadyPolicy::Introspect(_)
        )
    }

    /// The request phase. A step that answers writes its response to `answer` and returns
    /// [`Decided::Answered`]; one that lets the request go on returns [`Decided::Continue`].
    ///
    /// The response goes to the caller's slot rather than out as a returned [`Flow`]: a
    /// future's output is copied on its way out (into the `Poll`, then to the caller), and a
    /// `Flow` is the size of a response, 224 bytes, even for `Continue`. Written to a slot, a
    /// step that goes on returns one byte (callgrind, bench JWT route, 2026-12-04: two
    /// `memcpy` calls fewer a step).
    #[allow(clippy::too_many_arguments)]
    pub async fn request(
        &self,
        services: &Services,
        dialect: Dialect,
        context: &mut Context<'_>,
        parts: &mut Parts,
        body: &mut Option<ClientBody>,
        keep_request: bool,
        answer: &mut Option<Response<GatewayBody>>,
    ) -> Decided {
        let flow = match self {
            ReadyPolicy::Health => Flow::Respond(policies::health::answer()),
            ReadyPolicy::IssueApiKey => policies::apikey::issue(services, parts).await,
            ReadyPolicy::Authenticate(step) => {
                match step.request_cached(services, context, parts) {
                    Some(flow) => flow,
                    None => step.request(services, context, parts).await,
                }
            }
            ReadyPolicy::Proxy(step) => match body.take() {
                // The response phase may read the request (CORS reads `Origin`): then the
                // proxy works on a copy of the head, else on the head itself (lent, not moved:
                // a move copies its 224 bytes at each of the calls it goes through).
                Some(body) if keep_request => {
                    let mut head = clone_parts(parts);
                    step.forward(services, context, &mut head, body, answer)
                        .await;
                    return Decided::Answered;
                }
                Some(body) => {
                    step.forward(services, context, parts, body, answer).await;
                    return Decided::Answered;
                }
                None => Flow::Respond(crate::respond::internal_error(dialect)),
            },
            ReadyPolicy::Unsupported(step) => step.request(dialect, context),
            ReadyPolicy::Cors(policy) => match policy.preflight(&parts.method, &parts.headers) {
                Some(preflight) => {
                    Flow::Respond(crate::respond::empty(preflight.status, preflight.headers))
                }
                None => Flow::Continue,
            },
            ReadyPolicy::Terminate(policy) => {
                Flow::Respond(crate::respond::answer(policy.answer()))
            }
            ReadyPolicy::Log(policy) => {
                let request_id = context.request_id();
                policy.write(&scope(parts, context, &request_id, None));
                Flow::Continue
            }
            ReadyPolicy::Headers(policy) => {
                let request_id = context.request_id();
                let changes = policy.header_changes(&scope(parts, context, &request_id, None));
                apply_request_changes(changes, parts, dialect)
            }
            ReadyPolicy::RequestTransformer(policy) => {
                let request_id = context.request_id();
                let changes = policy.header_changes(&scope(parts, context, &request_id, None));
                match apply_request_changes(changes, parts, dialect) {
                    Flow::Continue if policy.changes_body() => {
                        transform_request_body(policy, services, dialect, context, parts, body)
                            .await
                    }
                    flow => flow,
                }
            }
            ReadyPolicy::ResponseTransformer(_) => Flow::Continue,
            ReadyPolicy::KeyAuth(step) => step.request(services, context, parts),
            ReadyPolicy::BasicAuth(step) => step.request(services, context, parts).await,
            ReadyPolicy::Jwt(step) => step.request(services, context, parts),
            ReadyPolicy::Introspect(step) => step.request(context, parts).await,
            ReadyPolicy::Metrics(_) => Flow::Continue,
            ReadyPolicy::RateLimit(step) => step.request(services, context, parts).await,
            ReadyPolicy::Throttle(step) => step.request(services, context).await,
            #[cfg(feature = "validation")]
            ReadyPolicy::Validate(step) => {
                step.request(services, dialect, context, parts, body).await
            }
            ReadyPolicy::Scopes => {
                use policies::scopes::{check, ScopesVerdict};
                let endpoint: &[String] = match context.matched {
                    Matched::Express { route, .. } => &route.scopes,
                    _ => &[],
                };
                let held = context.user.as_ref().and_then(|user| user.get("scopes"));
                match check(endpoint, held) {
                    ScopesVerdict::Allowed => Flow::Continue,
                    ScopesVerdict::Missing => Flow::Respond(crate::respond::express_send_status(
                        http::StatusCode::UNAUTHORIZED,
                    )),
                    ScopesVerdict::NoScopes => Flow::Respond(crate::respond::answer(
                        policies::terminate::express::express_internal_error(),
                    )),
                }
            }
        };
        match flow {
            Flow::Continue => Decided::Continue,
            Flow::Respond(response) => {
                *answer = Some(response);
                Decided::Answered
            }
        }
    }

    /// The response phase (only for policies where [`Self::has_response_phase`]).
    pub async fn response(
        &self,
        services: &Services,
        context: &mut Context<'_>,
        parts: &Parts,
        response: &mut Response<GatewayBody>,
    ) {
        match self {
            ReadyPolicy::Metrics(header) => {
                // The plugin counts on `res.finish`, reading the request's consumer header as
                // the authentication steps left it.
                let consumer = parts
                    .headers
                    .get(header)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("anonymous");
                let endpoint = match context.matched {
                    Matched::Express { route, .. } => route.api_endpoint.as_str(),
                    _ => "",
                };
                services
                    .metrics
                    .count(response.status().as_u16(), consumer, endpoint);
            }
            ReadyPolicy::Unsupported(step) => step.response(response),
            #[cfg(feature = "validation")]
            ReadyPolicy::Validate(step) => step.response(parts, response).await,
            ReadyPolicy::RateLimit(step) => step.response(services, context, response),
            ReadyPolicy::Throttle(_) => {
                policies::throttling::step::ThrottleStep::response(context, response)
            }
            ReadyPolicy::KeyAuth(_)
            | ReadyPolicy::BasicAuth(_)
            | ReadyPolicy::Jwt(_)
            | ReadyPolicy::Introspect(_) => {
                policies::consumer_auth::mark_anonymous(context, response)
            }
            ReadyPolicy::Cors(policy) => {
                policy.apply(&parts.method, &parts.headers, response.headers_mut())
            }
            ReadyPolicy::ResponseTransformer(policy) => {
                if policy.changes_body() {
                    transform_response_body(policy, context, parts, response).await;
                }
                let request_id = context.request_id();
                let status = Some(response.status().as_u16());
                let changes = policy.header_changes(&scope(parts, context, &request_id, status));
                match changes {
                    Ok(changes) => changes.apply(response.headers_mut()),
                    // EG would fail the response; the upstream's answer is kept as it is.
                    Err(err) => tracing::warn!("response-transformer: {err}"),
                }
            }
            _ => {}
        }
    }
}

/// Verified basic-auth passwords remembered per step.
const BASIC_CACHE_ENTRIES: usize = 10_000;

fn transformer(
    spec: &crate::policies::transformer::TransformerSpec,
) -> Result<policies::transformer::TransformerPolicy, String> {
    policies::transformer::TransformerPolicy::new(spec).map_err(|e| e.to_string())
}

/// Express's `json()` and `urlencoded()` parsers read at most 100 kB (body-parser 1.20's
/// default `limit: '100kb'`, 102,400 bytes; Express Gateway does not change it): a longer body
/// is their 413.
pub const EXPRESS_BODY_LIMIT: u64 = 100 * 1024;

/// A response body a `response-transformer` rewrites is read whole up to this many bytes; a
/// longer one goes out unchanged (Express Gateway parses each written chunk on its own, so a
/// long body, written in several chunks, is never transformed there either).
pub const RESPONSE_TRANSFORM_LIMIT: usize = 1024 * 1024;

/// How long reading an upstream body for a `response-transformer` may take before the answer
/// is a 502.
const RESPONSE_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// The body half of `request-transformer` (EG `lib/policies/request-transformer/index.js`): a
/// JSON or urlencoded body is read under the body-parser limit and rewritten; a body of any
/// other type is not read and a JSON object of the added fields goes upstream in its place.
async fn transform_request_body(
    policy: &policies::transformer::TransformerPolicy,
    services: &Services,
    dialect: Dialect,
    context: &mut Context<'_>,
    parts: &mut Parts,
    body: &mut Option<ClientBody>,
) -> Flow {
    let read = if policy.parses_request_body(&parts.headers) {
        match read_request_body(
            services,
            dialect,
            context,
            parts,
            body,
            "request-transformer",
        )
        .await
        {
            Ok(bytes) => bytes,
            Err(response) => return Flow::Respond(response),
        }
    } else {
        // Dropped unread: a body that had bytes left means the connection must close.
        if body.take().is_some_and(|b| !b.is_end_stream()) {
            context.close_connection = context.http1;
        }
        Bytes::new()
    };
    let request_id = context.request_id();
    let result = policy.transform_request_body(
        &parts.headers,
        &read,
        &scope(parts, context, &request_id, None),
    );
    match result {
        Ok(Some(new)) => {
            new.apply_headers(&mut parts.headers);
            *body = Some(ClientBody::Buffered(Some(Bytes::from(new.bytes))));
            Flow::Continue
        }
        Ok(None) => {
            *body = Some(ClientBody::Buffered(Some(read)));
            Flow::Continue
        }
        Err(err) => {
            tracing::warn!("request-transformer: {err}");
            Flow::Respond(match dialect {
                Dialect::ExpressGateway => crate::respond::express_http_error(err.status()),
                Dialect::Wso2 => crate::respond::internal_error(dialect),
            })
        }
    }
}

/// Reads the request body whole for a step that needs it (`step` names it in the log), under
/// `[limits] max_request_body_bytes` (and body-parser's 100 kB in Express Gateway pipelines), the
/// idle and total deadlines: a declared length over the limit is refused before anything is
/// read. The error is the answer (413, 408, 400 in the pipeline's dialect), and the connection
/// is then marked to close (the rest of the body is unread).
pub(crate) async fn read_request_body(
    services: &Services,
    dialect: Dialect,
    context: &mut Context<'_>,
    parts: &Parts,
    body: &mut Option<ClientBody>,
    step: &str,
) -> Result<Bytes, Response<GatewayBody>> {
    let mut limits = crate::proxy::body::BodyLimits {
        max_bytes: services.limits.max_body_bytes,
        idle: services.limits.body_idle,
        deadline: services.limits.body_deadline,
    };
    if dialect == Dialect::ExpressGateway
        && (limits.max_bytes == 0 || limits.max_bytes > EXPRESS_BODY_LIMIT)
    {
        limits.max_bytes = EXPRESS_BODY_LIMIT;
    }
    // body-parser refuses a declared length over its limit before reading anything.
    let declared = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if limits.max_bytes > 0 && declared.is_some_and(|len| len > limits.max_bytes) {
        context.close_connection = context.http1;
        return Err(client_body_error(
            &crate::proxy::body::ClientBodyError::TooLarge,
            dialect,
        ));
    }
    match body.take() {
        Some(stream) => match crate::proxy::body::collect(stream, limits).await {
            Ok(bytes) => Ok(bytes),
            Err(err) => {
                tracing::debug!("{step}: the request body was not read: {err}");
                context.close_connection = context.http1;
                Err(client_body_error(&err, dialect))
            }
        },
        None => Ok(Bytes::new()),
    }
}

/// A request body that could not be read whole: Express's error page in EG pipelines (413 over
/// the limit, 408 too slow, 400 cut off), the WSO2 fault otherwise.
fn client_body_error(
    err: &crate::proxy::body::ClientBodyError,
    dialect: Dialect,
) -> Response<GatewayBody> {
    use crate::proxy::body::ClientBodyError;
    match dialect {
        Dialect::ExpressGateway => crate::respond::express_http_error(match err {
            ClientBodyError::TooLarge => http::StatusCode::PAYLOAD_TOO_LARGE,
            ClientBodyError::Idle | ClientBodyError::TooSlow => http::StatusCode::REQUEST_TIMEOUT,
            ClientBodyError::Broken(_) => http::StatusCode::BAD_REQUEST,
        }),
        Dialect::Wso2 => match err {
            ClientBodyError::TooLarge => crate::fault::PAYLOAD_TOO_LARGE,
            ClientBodyError::Idle => crate::fault::REQUEST_TIMEOUT,
            ClientBodyError::TooSlow => crate::fault::REQUEST_BODY_TOO_SLOW,
            ClientBodyError::Broken(_) => crate::fault::MALFORMED_BODY,
        }
        .response(),
    }
}

/// The body half of `response-transformer`: an upstream body (not one the gateway wrote, as
/// EG only wraps the writes the proxy makes) of at most [`RESPONSE_TRANSFORM_LIMIT`] bytes,
/// not compressed, is read; when it is a JSON object its fields are changed and
/// `Content-Length` set; anything else goes out unchanged.
async fn transform_response_body(
    policy: &policies::transformer::TransformerPolicy,
    context: &mut Context<'_>,
    parts: &Parts,
    response: &mut Response<GatewayBody>,
) {
    use crate::proxy::body::{read_upstream, UpstreamRead};
    let status = response.status();
    let compressed = response
        .headers()
        .get(http::header::CONTENT_ENCODING)
        .is_some_and(|v| !v.as_bytes().eq_ignore_ascii_case(b"identity"));
    if parts.method == http::Method::HEAD
        || status == http::StatusCode::NO_CONTENT
        || status == http::StatusCode::NOT_MODIFIED
        || compressed
        || !matches!(response.body(), GatewayBody::Upstream { .. })
    {
        return;
    }
    let body = std::mem::replace(response.body_mut(), GatewayBody::from(Bytes::new()));
    let GatewayBody::Upstream { body } = body else {
        *response.body_mut() = body;
        return;
    };
    let read = tokio::time::timeout(
        RESPONSE_READ_TIMEOUT,
        read_upstream(body, RESPONSE_TRANSFORM_LIMIT),
    )
    .await;
    let whole = match read {
        Ok(Ok(UpstreamRead::Whole(bytes))) => bytes,
        Ok(Ok(UpstreamRead::TooLong(body))) => {
            *response.body_mut() = body;
            return;
        }
        Ok(Err(err)) => {
            tracing::warn!("response-transformer: the upstream body failed: {err}");
            *response = crate::respond::express_bad_gateway();
            return;
        }
        Err(_elapsed) => {
            tracing::warn!("response-transformer: the upstream body took too long");
            *response = crate::respond::express_bad_gateway();
            return;
        }
    };
    let request_id = context.request_id();
    let transformed = policy.transform_response_body(
        &whole,
        &scope(parts, context, &request_id, Some(status.as_u16())),
    );
    match transformed {
        Some(new) => {
            response.headers_mut().insert(
                http::header::CONTENT_LENGTH,
                http::HeaderValue::from(new.len()),
            );
            *response.body_mut() = GatewayBody::from(Bytes::from(new));
        }
        None => *response.body_mut() = GatewayBody::from(whole),
    }
}

/// What the expressions of a step see: EG's `req` and `egContext`.
fn scope<'a>(
    parts: &'a Parts,
    context: &'a Context<'_>,
    request_id: &'a str,
    status: Option<u16>,
) -> RequestScope<'a> {
    let mut scope = RequestScope::new(parts, context.client.ip());
    scope.secure = context.proto == "https";
    scope.request_id = request_id;
    scope.status = status;
    scope.consumer = context
        .user
        .as_deref()
        .map(|user| user as &dyn crate::expression::Consumer);
    if let Matched::Express { route, .. } = context.matched {
        scope.api_endpoint = &route.api_endpoint;
        scope.scopes = &route.scopes;
    }
    scope
}

/// Applies header changes evaluated on the request; an expression that fails is EG's 500.
fn apply_request_changes(
    changes: Result<policies::transformer::HeaderChanges, crate::expression::EvalError>,
    parts: &mut Parts,
    dialect: Dialect,
) -> Flow {
    match changes {
        Ok(changes) => {
            changes.apply(&mut parts.headers);
            Flow::Continue
        }
        Err(err) => {
            tracing::warn!("request header expression failed: {err}");
            Flow::Respond(crate::respond::internal_error(dialect))
        }
    }
}

fn clone_parts(parts: &Parts) -> Parts {
    let mut request = http::Request::new(());
    *request.method_mut() = parts.method.clone();
    *request.uri_mut() = parts.uri.clone();
    *request.version_mut() = parts.version;
    *request.headers_mut() = parts.headers.clone();
    request.into_parts().0
}
