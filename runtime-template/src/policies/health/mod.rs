//! WSO2's health check: `GET`/`HEAD /health` answers `{"status":"healthy"}` on the WSO2
//! listeners, before any routing. After a stop signal it answers 503 `{"status":"draining"}`
//! (the readiness probe of a Kubernetes Deployment turns the pod "not ready" first).

#[cfg(feature = "server")]
use bytes::Bytes;
#[cfg(feature = "server")]
use http::header::{self, HeaderValue};
#[cfg(feature = "server")]
use http::Response;

#[cfg(feature = "server")]
use crate::proxy::body::GatewayBody;

/// The path it answers (also the toolkit's Kubernetes probes' path, hence outside `server`).
pub const PATH: &str = "/health";
#[cfg(feature = "server")]
const BODY: &str = r#"{"status":"healthy"}"#;
#[cfg(feature = "server")]
const DRAINING: &str = r#"{"status":"draining"}"#;

/// The health answer.
#[cfg(feature = "server")]
pub fn answer() -> Response<GatewayBody> {
    let mut response = Response::new(GatewayBody::from(Bytes::from_static(BODY.as_bytes())));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// The answer once the gateway is stopping: 503, so readiness probes and load balancers stop
/// sending requests while the listeners still serve.
#[cfg(feature = "server")]
pub fn draining() -> Response<GatewayBody> {
    let mut response = Response::new(GatewayBody::from(Bytes::from_static(DRAINING.as_bytes())));
    *response.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
