//! Answers the gateway writes itself, in each family's dialect (DESIGN.md, "Conventions"):
//! WSO2 fault bodies ([`crate::fault`]) and Express's own answers, byte for byte as Express 4
//! writes them (`res.send`, `res.sendStatus`, the final handler's 404).

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Response, StatusCode};

use crate::model::Dialect;
use crate::proxy::body::GatewayBody;

/// Express's `Content-Type` for `res.send(<string>)`.
pub const HTML_UTF8: HeaderValue = HeaderValue::from_static("text/html; charset=utf-8");
/// Express's `Content-Type` for `res.sendStatus(code)`.
pub const TEXT_UTF8: HeaderValue = HeaderValue::from_static("text/plain; charset=utf-8");

/// `res.status(status).send(body)` for a string body: `text/html; charset=utf-8`.
pub fn express_send(status: StatusCode, body: impl Into<Bytes>) -> Response<GatewayBody> {
    let mut response = Response::new(GatewayBody::from(body.into()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HTML_UTF8);
    response
}

/// `res.sendStatus(status)`: the reason phrase as `text/plain; charset=utf-8`.
pub fn express_send_status(status: StatusCode) -> Response<GatewayBody> {
    let reason = status.canonical_reason().unwrap_or("");
    let mut response = Response::new(GatewayBody::from(Bytes::from_static(reason.as_bytes())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, TEXT_UTF8);
    response
}

/// Express's final handler for an unmatched request (finalhandler 1.x): 404, an HTML document
/// with `Cannot <METHOD> <path>`, `Content-Security-Policy: default-src 'none'` and
/// `X-Content-Type-Options: nosniff`. `target` is the raw request target; the query is not
/// shown and the path is HTML-escaped.
pub fn express_not_found(method: &str, target: &str) -> Response<GatewayBody> {
    let path = target.split('?').next().unwrap_or("/");
    let body = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Error</title>\n</head>\n<body>\n<pre>Cannot {} {}</pre>\n</body>\n</html>\n",
        escape_html(method),
        escape_html(path)
    );
    let mut response = express_send(StatusCode::NOT_FOUND, body);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// The proxy's answer when the upstream fails (EG 1.16 `lib/policies/proxy`): 502
/// `Bad gateway.`, text/html.
pub fn express_bad_gateway() -> Response<GatewayBody> {
    express_send(StatusCode::BAD_GATEWAY, Bytes::from_static(b"Bad gateway."))
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

/// `escape-html`: `& < > " '` as entities.
fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
