//! The closed set of ready policies and their dispatch.

use http::request::Parts;
use http::Response;
use hyper::body::Incoming;

use super::context::{Context, Matched};
use super::Services;
use crate::expression::RequestScope;
use crate::model::{Dialect, GatewayModel, PolicySpec};
use crate::policies;
use crate::proxy::body::GatewayBody;

/// What a step decided in the request phase.
pub enum Flow {
    /// Go on with the next step.
    Continue,
    /// Answer with this response; later steps do not run.
    Respond(Response<GatewayBody>),
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
}

impl ReadyPolicy {
    /// The policy's factory: checks and compiles its spec; the error says why it cannot run.
    pub fn new(
        spec: &PolicySpec,
        dialect: Dialect,
        model: &GatewayModel,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, String> {
        let _ = env;
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
        })
    }

    /// Whether [`ReadyPolicy::response`] does anything for this policy.
    pub fn has_response_phase(&self) -> bool {
        match self {
            ReadyPolicy::Unsupported(step) => step.has_response_phase(),
            ReadyPolicy::Cors(_) | ReadyPolicy::ResponseTransformer(_) => true,
            _ => false,
        }
    }

    /// The request phase.
    pub async fn request(
        &self,
        services: &Services,
        dialect: Dialect,
        context: &mut Context<'_>,
        parts: &mut Parts,
        body: &mut Option<Incoming>,
        keep_request: bool,
    ) -> Flow {
        match self {
            ReadyPolicy::Health => Flow::Respond(policies::health::answer()),
            ReadyPolicy::IssueApiKey => policies::apikey::issue(services, parts).await,
            ReadyPolicy::Authenticate(step) => step.request(services, context, parts).await,
            ReadyPolicy::Proxy(step) => match body.take() {
                Some(body) => {
                    // The response phase may read the request (CORS reads `Origin`): then the
                    // proxy gets a copy of the head, else the head itself.
                    let head = if keep_request {
                        clone_parts(parts)
                    } else {
                        std::mem::replace(parts, empty_parts())
                    };
                    Flow::Respond(step.forward(services, context, head, body).await)
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
                apply_request_changes(changes, parts, dialect)
            }
            ReadyPolicy::ResponseTransformer(_) => Flow::Continue,
        }
    }

    /// The response phase (only for policies where [`Self::has_response_phase`]).
    pub fn response(
        &self,
        context: &mut Context<'_>,
        parts: &Parts,
        response: &mut Response<GatewayBody>,
    ) {
        match self {
            ReadyPolicy::Unsupported(step) => step.response(response),
            ReadyPolicy::Cors(policy) => {
                policy.apply(&parts.method, &parts.headers, response.headers_mut())
            }
            ReadyPolicy::ResponseTransformer(policy) => {
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

/// Body rules of the transformers need the body buffered, which this version does not do yet.
const BODY_NOT_YET: &str =
    "body changes of request-/response-transformer are not supported yet (headers are)";

fn transformer(
    spec: &crate::policies::transformer::TransformerSpec,
) -> Result<policies::transformer::TransformerPolicy, String> {
    let policy = policies::transformer::TransformerPolicy::new(spec).map_err(|e| e.to_string())?;
    if policy.changes_body() {
        return Err(BODY_NOT_YET.to_string());
    }
    Ok(policy)
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

fn empty_parts() -> Parts {
    http::Request::new(()).into_parts().0
}

fn clone_parts(parts: &Parts) -> Parts {
    let mut request = http::Request::new(());
    *request.method_mut() = parts.method.clone();
    *request.uri_mut() = parts.uri.clone();
    *request.version_mut() = parts.version;
    *request.headers_mut() = parts.headers.clone();
    request.into_parts().0
}
