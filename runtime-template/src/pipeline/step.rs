//! The closed set of ready policies and their dispatch.

use http::request::Parts;
use http::Response;
use hyper::body::Incoming;

use super::context::Context;
use super::Services;
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
            other => {
                return Err(format!(
                    "the policy '{}' is not available in this runtime",
                    other.name()
                ))
            }
        })
    }

    /// Whether [`ReadyPolicy::response`] does anything for this policy.
    pub fn has_response_phase(&self) -> bool {
        match self {
            ReadyPolicy::Unsupported(step) => step.has_response_phase(),
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
        }
    }

    /// The response phase (only for policies where [`Self::has_response_phase`]).
    pub fn response(
        &self,
        context: &mut Context<'_>,
        parts: &Parts,
        response: &mut Response<GatewayBody>,
    ) {
        let _ = (context, parts);
        if let ReadyPolicy::Unsupported(step) = self {
            step.response(response)
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
