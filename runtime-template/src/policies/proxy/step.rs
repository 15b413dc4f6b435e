//! The proxy step at run time: choose the endpoint, make the upstream path and head, forward.

use std::borrow::Cow;
use std::time::Duration;

use http::header::{self, HeaderName, HeaderValue};
use http::request::Parts;
use http::Response;

use super::{EndpointChoice, PathRewrite, ProxySpec};
use crate::auth::cache::KeyType;
use crate::fault;
use crate::model::{Dialect, GatewayModel};
use crate::pipeline::{Context, Matched, Services};
use crate::proxy::body::{BodyLimits, ClientBody, GatewayBody};
use crate::proxy::fields::{Field, ProxyFields, Slot};
use crate::proxy::{self, headers, Blame};
use crate::router::express::{join_is_identity, join_upstream, stripped_target};

/// `X-Forwarded-Port` (http-proxy's `xfwd`).
const X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");

/// Express Gateway's request id header.
const EG_REQUEST_ID: HeaderName = HeaderName::from_static("eg-request-id");

/// A ready proxy step.
pub struct ProxyStep {
    endpoint: EndpointChoice,
    path: PathRewrite,
    change_origin: bool,
    forwarded_headers: bool,
    request_id_header: bool,
    timeout: Option<Duration>,
    /// `proxyOptions.headers` the proxy does not set itself: inserted into the head.
    headers: Vec<(HeaderName, HeaderValue)>,
    /// `proxyOptions.headers` naming one of the proxy's own fields: they win over its value.
    field_headers: Vec<(Slot, HeaderValue)>,
    dialect: Dialect,
}

impl ProxyStep {
    /// Checks the spec against the model: endpoints exist, extra headers are valid.
    pub fn new(spec: &ProxySpec, dialect: Dialect, model: &GatewayModel) -> Result<Self, String> {
        let exists = |i: usize| {
            if i < model.endpoints.len() {
                Ok(())
            } else {
                Err(format!("endpoint #{i} is not in the model"))
            }
        };
        match spec.endpoint {
            EndpointChoice::ByKeyType {
                production,
                sandbox,
            } => {
                production.map(exists).transpose()?;
                sandbox.map(exists).transpose()?;
            }
            EndpointChoice::Service { endpoint } => exists(endpoint)?,
            EndpointChoice::Missing => {}
        }
        let all: Vec<(HeaderName, HeaderValue)> = spec
            .headers
            .iter()
            .map(|(name, value)| {
                let name = HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| format!("proxyOptions.headers: {name:?} is not a header name"))?;
                let value = HeaderValue::from_str(value).map_err(|_| {
                    format!("proxyOptions.headers: the value of {name} is not a header value")
                })?;
                Ok((name, value))
            })
            .collect::<Result<_, String>>()?;
        let (mut headers, mut field_headers) = (Vec::new(), Vec::new());
        for (name, value) in all {
            match Slot::of(&name) {
                Some(slot) => field_headers.push((slot, value)),
                None => headers.push((name, value)),
            }
        }
        Ok(Self {
            endpoint: spec.endpoint,
            path: spec.path,
            change_origin: spec.change_origin,
            forwarded_headers: spec.forwarded_headers,
            request_id_header: spec.request_id_header,
            timeout: spec.timeout_ms.map(Duration::from_millis),
            headers,
            field_headers,
            dialect,
        })
    }

    /// Forwards the request and answers with the upstream's response or the fault.
    pub async fn forward(
        &self,
        services: &Services,
        context: &mut Context<'_>,
        parts: &mut Parts,
        body: ClientBody,
        answer: &mut Option<Response<GatewayBody>>,
    ) {
        let chosen = match self.endpoint {
            EndpointChoice::ByKeyType {
                production,
                sandbox,
            } => {
                let sandbox_key = context
                    .grant
                    .as_ref()
                    .is_some_and(|g| g.key_type == KeyType::Sandbox);
                if sandbox_key {
                    sandbox.ok_or(fault::NO_SANDBOX_ENDPOINT)
                } else {
                    production.ok_or(fault::NO_PRODUCTION_ENDPOINT)
                }
            }
            EndpointChoice::Service { endpoint } => Ok(endpoint),
            EndpointChoice::Missing => {
                // EG's proxy policy without a service endpoint: `res.sendStatus(502)`
                // (observed: tests/fixtures/eg-observed/policies).
                *answer = Some(crate::respond::express_send_status(
                    http::StatusCode::BAD_GATEWAY,
                ));
                return;
            }
        };
        let upstream =
            match chosen.and_then(|i| services.upstreams.get(i).ok_or(fault::INTERNAL_ERROR)) {
                Ok(upstream) => upstream,
                Err(fault) => {
                    *answer = Some(fault.response());
                    return;
                }
            };
        let (rest, query) = match self.path {
            PathRewrite::Remainder => (
                Cow::Owned(std::mem::take(&mut context.rest)),
                parts.uri.query().map(str::to_string),
            ),
            PathRewrite::Keep | PathRewrite::Strip => {
                // The canonical path the route matched, then the raw query.
                let mut target = std::mem::take(&mut context.rest);
                if let Some(query) = parts.uri.query() {
                    target.push('?');
                    target.push_str(query);
                }
                let target = if self.path == PathRewrite::Strip {
                    match context.matched {
                        Matched::Express {
                            strip: Some(strip), ..
                        } => stripped_target(&target, strip).into_owned(),
                        // EG's stripPath on a `pathRegex` route throws: Express's 500 page.
                        _ => {
                            *answer = Some(crate::respond::answer(
                                crate::policies::terminate::express::express_internal_error(),
                            ));
                            return;
                        }
                    }
                } else {
                    target
                };
                // http-proxy's join, with the endpoint's own path added by the proxy (mostly
                // the target as it is: no copy then).
                let mut joined = if join_is_identity("", &target) {
                    target
                } else {
                    join_upstream("", &target)
                };
                match joined.find('?') {
                    Some(at) => {
                        let query = joined.get(at + 1..).map(str::to_string);
                        joined.truncate(at);
                        (Cow::Owned(joined), query)
                    }
                    None => (Cow::Owned(joined), None),
                }
            }
        };
        let authority = parts.uri.authority();
        let (host, host_in_head) = headers::client_host(&mut parts.headers, authority);
        // `X-Forwarded-*` and the trace context are written with the head, not inserted here.
        let mut fields = ProxyFields::new();
        if self.forwarded_headers {
            let trusted = services.forwarding.trusts(context.client.ip());
            if self.dialect == Dialect::ExpressGateway {
                // http-proxy's `xfwd` also sends X-Forwarded-Port: the Host header's port, else
                // the scheme's (appended to a client's value, as its other X-Forwarded-*).
                let port = host
                    .as_ref()
                    .and_then(|h| h.to_str().ok())
                    .and_then(|h| h.rsplit_once(':'))
                    .map(|(_, p)| p)
                    .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
                    .unwrap_or(if context.proto == "https" {
                        "443"
                    } else {
                        "80"
                    });
                let value = match parts
                    .headers
                    .get(X_FORWARDED_PORT)
                    .and_then(|v| v.to_str().ok())
                {
                    Some(existing) => format!("{existing},{port}"),
                    None => port.to_string(),
                };
                if let Ok(value) = HeaderValue::from_str(&value) {
                    parts.headers.insert(X_FORWARDED_PORT, value);
                }
            }
            fields.forwarded(
                &parts.headers,
                context.client.ip(),
                trusted,
                context.proto,
                host.clone(),
            );
        }
        if !self.change_origin && !host_in_head {
            if let Some(host) = host {
                parts.headers.insert(header::HOST, host);
            }
        }
        if self.request_id_header {
            if let Ok(id) = HeaderValue::from_str(&context.request_id()) {
                parts.headers.insert(EG_REQUEST_ID, id);
            }
        }
        if let Some(trace) = &context.trace {
            fields.trace(trace, &parts.headers);
        }
        for (name, value) in &self.headers {
            parts.headers.insert(name.clone(), value.clone());
        }
        for (slot, value) in &self.field_headers {
            fields.set(*slot, Field::Value(value.clone()));
        }
        let limits = BodyLimits {
            max_bytes: services.limits.max_body_bytes,
            idle: services.limits.body_idle,
            deadline: services.limits.body_deadline,
        };
        let destination = proxy::Destination {
            upstream,
            rest: &rest,
            query: query.as_deref(),
            timeout: self.timeout.unwrap_or(upstream.timeout),
            change_origin: self.change_origin,
            fields,
            fields_as_received: context.fields_as_received,
        };
        // The answer is written into the caller's slot (a returned response is moved through
        // each future on the way).
        *answer = Some(
            match proxy::forward(&services.client, destination, parts, body, limits).await {
                Ok(forwarded) => {
                    context.upstream = Some(forwarded.target);
                    context.upstream_latency = Some(forwarded.latency);
                    forwarded.response.map(GatewayBody::upstream)
                }
                Err(err) => {
                    context.upstream = err.target;
                    if err.blame == Blame::Upstream {
                        context.upstream_failure = Some(err.failure);
                    }
                    if err.blame == Blame::Client {
                        // The rest of the body is unread: the connection cannot carry another
                        // request.
                        context.close_connection = context.http1;
                        err.fault.response()
                    } else {
                        match self.dialect {
                            Dialect::ExpressGateway => crate::respond::express_bad_gateway(),
                            Dialect::Wso2 => err.fault.response(),
                        }
                    }
                }
            },
        );
    }
}
