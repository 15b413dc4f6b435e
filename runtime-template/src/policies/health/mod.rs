//! WSO2's health check: `GET`/`HEAD /health` answers `{"status":"healthy"}` on the WSO2
//! listeners, before any routing.

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::Response;

use crate::proxy::body::GatewayBody;

/// The path it answers.
pub const PATH: &str = "/health";
const BODY: &str = r#"{"status":"healthy"}"#;

/// The health answer.
pub fn answer() -> Response<GatewayBody> {
    let mut response = Response::new(GatewayBody::from(Bytes::from_static(BODY.as_bytes())));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
