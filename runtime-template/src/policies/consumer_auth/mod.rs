//! What every Express Gateway authentication step does with its result (EG 1.16
//! `lib/gateway/actionParams.js`, `getCommonAuthCallback`): an accepted consumer becomes
//! `req.user` and the request header `eg-consumer-id`; a refusal is `401 Unauthorized` (or
//! `403 Forbidden` for a key without the endpoint's scopes), text/plain, no `WWW-Authenticate`;
//! with `passThrough` the request continues anonymous and the response gets
//! `eg-consumer-id: anonymous`.

use http::header::{HeaderName, HeaderValue};
use http::request::Parts;
use http::{Response, StatusCode};

use crate::pipeline::step::Flow;
use crate::pipeline::Context;
use crate::proxy::body::GatewayBody;
use crate::store::consumers::ConsumerView;

/// `eg-consumer-id`.
pub const EG_CONSUMER_ID: HeaderName = HeaderName::from_static("eg-consumer-id");

/// The outcome of an authentication step.
#[derive(Debug, Clone)]
pub enum Verdict {
    /// This consumer.
    Accepted(ConsumerView),
    /// 401.
    Unauthorized,
    /// 403 (key-auth's scope mismatch).
    Forbidden,
}

/// Applies `verdict` to the request.
pub fn conclude(
    verdict: Verdict,
    pass_through: bool,
    context: &mut Context<'_>,
    parts: &mut Parts,
) -> Flow {
    match verdict {
        Verdict::Accepted(consumer) => {
            // EG: `if (req.egContext.consumer.id)`; a consumer without an id (a JWT payload or
            // an introspection answer without one) sets no header.
            if !consumer.id.is_empty() {
                if let Some(value) = consumer.header {
                    parts.headers.insert(EG_CONSUMER_ID, value);
                }
                context.consumer = Some(consumer.id.clone());
            }
            context.user = Some(consumer.user);
            context.authenticated = true;
            Flow::Continue
        }
        _ if pass_through => {
            context.anonymous_marked = true;
            Flow::Continue
        }
        Verdict::Forbidden => {
            Flow::Respond(crate::respond::express_send_status(StatusCode::FORBIDDEN))
        }
        Verdict::Unauthorized => Flow::Respond(crate::respond::express_send_status(
            StatusCode::UNAUTHORIZED,
        )),
    }
}

/// The response phase of a pass-through step: marks the response when a step let the request
/// go on anonymous.
pub fn mark_anonymous(context: &Context<'_>, response: &mut Response<GatewayBody>) {
    if context.anonymous_marked {
        response
            .headers_mut()
            .insert(EG_CONSUMER_ID, HeaderValue::from_static("anonymous"));
    }
}
