//! Answers the gateway writes itself, in each family's dialect (DESIGN.md, "Conventions"):
//! WSO2 fault bodies ([`crate::fault`]) and Express's own answers as Express 4 writes them
//! ([`crate::policies::terminate::express`]: `res.send`, `res.sendStatus`, the final handler).

use bytes::Bytes;
use http::{Response, StatusCode};

use crate::model::Dialect;
use crate::policies::terminate::express::{self, Answer};
use crate::proxy::body::GatewayBody;

/// A response from a `(status, headers, body)` answer.
pub fn answer((status, headers, body): Answer) -> Response<GatewayBody> {
    let mut response = Response::new(GatewayBody::from(body));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

/// `res.sendStatus(status)`: the reason phrase as `text/plain; charset=utf-8`.
pub fn express_send_status(status: StatusCode) -> Response<GatewayBody> {
    answer(express::express_send_status(status))
}

/// Express's final handler for an unmatched request: 404 `Cannot <METHOD> <path>`.
pub fn express_not_found(method: &str, target: &str) -> Response<GatewayBody> {
    answer(express::express_not_found(method, target))
}

/// The proxy's answer when the upstream fails (EG 1.16 `lib/policies/proxy`): 502
/// `Bad gateway.`, text/html (observed: `tests/fixtures/eg-observed/policies`).
pub fn express_bad_gateway() -> Response<GatewayBody> {
    answer(express::express_send(
        StatusCode::BAD_GATEWAY,
        "Bad gateway.",
        "text/html; charset=utf-8",
    ))
}

/// Express's final handler for an error with this status (body-parser's 400, 413, 415).
pub fn express_http_error(status: StatusCode) -> Response<GatewayBody> {
    answer(express::express_http_error(status))
}

/// A refused credential: EG `401 Unauthorized` (text/plain), WSO2 fault 900902.
pub fn unauthorized(dialect: Dialect) -> Response<GatewayBody> {
    match dialect {
        Dialect::ExpressGateway => express_send_status(StatusCode::UNAUTHORIZED),
        Dialect::Wso2 => crate::fault::MISSING_CREDENTIALS.response(),
    }
}

/// An error of the gateway itself (500).
pub fn internal_error(dialect: Dialect) -> Response<GatewayBody> {
    match dialect {
        Dialect::ExpressGateway => express_send_status(StatusCode::INTERNAL_SERVER_ERROR),
        Dialect::Wso2 => crate::fault::INTERNAL_ERROR.response(),
    }
}

/// A bodiless answer with these headers (a CORS preflight).
pub fn empty(status: StatusCode, headers: http::HeaderMap) -> Response<GatewayBody> {
    answer((status, headers, Bytes::new()))
}
