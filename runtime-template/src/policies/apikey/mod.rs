//! WSO2's API key service: `GET /apikey` on the HTTPS listener with basic credentials of a
//! `[[security.users]]` user answers a signed API key (`[security.apikey_issuer]`).

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::request::Parts;
use http::Response;

use crate::pipeline::step::Flow;
use crate::pipeline::Services;
use crate::proxy::body::GatewayBody;

/// The path it answers.
pub const PATH: &str = "/apikey";

/// Issues a key for the basic-authenticated user, or refuses.
pub async fn issue(services: &Services, parts: &Parts) -> Flow {
    match services.auth.issue_api_key(&parts.headers).await {
        Some(Ok(key)) => {
            let mut response = Response::new(GatewayBody::from(Bytes::from(key)));
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            Flow::Respond(response)
        }
        Some(Err(rejection)) => {
            Flow::Respond(crate::policies::authenticate::rejection_response(rejection))
        }
        // Without an issuer the path is not ours: the router decides.
        None => Flow::Continue,
    }
}
