//! Rejections in the WSO2 fault shape: `{"fault":{"code":..,"message":..,"description":..}}`.
//!
//! Existing WSO2 clients parse this body, so every gateway-made error of a WSO2-style API uses it.

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};

/// A gateway-made error response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    /// HTTP status.
    pub status: StatusCode,
    /// WSO2 error code (9009xx, 9008xx, 1025xx).
    pub code: u32,
    /// Short message.
    pub message: &'static str,
    /// What happened, for a person.
    pub description: &'static str,
}

/// No API or resource matches the path.
pub const NO_MATCHING_RESOURCE: Fault = Fault {
    status: StatusCode::NOT_FOUND,
    code: 900906,
    message: "No matching resource found in the API for the given request",
    description: "No matching resource found for given API Request",
};

/// The path matches but the method does not.
pub const METHOD_NOT_ALLOWED: Fault = Fault {
    status: StatusCode::METHOD_NOT_ALLOWED,
    code: 900906,
    message: "Method not allowed",
    description: "Method not allowed for given API resource",
};

/// The request path is not acceptable (see [`crate::path`]).
pub const INVALID_PATH: Fault = Fault {
    status: StatusCode::BAD_REQUEST,
    code: 900906,
    message: "Invalid request path",
    description: "The path has a backslash, an encoded backslash, NUL or slash the API does not allow, a double encoding, or a bad %-escape",
};

/// A request framing the gateway will not forward.
pub const BAD_FRAMING: Fault = Fault {
    status: StatusCode::BAD_REQUEST,
    code: 900900,
    message: "Bad request",
    description: "Transfer-Encoding other than a single 'chunked' is not accepted",
};

/// An HTTP/1.1 request without a `Host` header (RFC 9112 §3.2: the server must answer 400).
pub const MISSING_HOST: Fault = Fault {
    status: StatusCode::BAD_REQUEST,
    code: 900900,
    message: "Bad request",
    description: "An HTTP/1.1 request must carry a Host header",
};

/// The request target is longer than `limits.max_uri_bytes`.
pub const URI_TOO_LONG: Fault = Fault {
    status: StatusCode::URI_TOO_LONG,
    code: 900900,
    message: "URI too long",
    description: "The request target is longer than the gateway accepts",
};

/// The request body is larger than `limits.max_request_body_bytes`.
pub const PAYLOAD_TOO_LARGE: Fault = Fault {
    status: StatusCode::PAYLOAD_TOO_LARGE,
    code: 900900,
    message: "Payload too large",
    description: "The request body is larger than the gateway accepts",
};

/// The client stopped sending its body.
pub const REQUEST_TIMEOUT: Fault = Fault {
    status: StatusCode::REQUEST_TIMEOUT,
    code: 900900,
    message: "Request timeout",
    description: "The client sent no request body data within the idle timeout",
};

/// The client's request body broke off or had invalid chunked framing (the client's error:
/// the upstream request is aborted).
pub const MALFORMED_BODY: Fault = Fault {
    status: StatusCode::BAD_REQUEST,
    code: 900900,
    message: "Bad request",
    description: "The request body is malformed (invalid chunked encoding) or ended early",
};

/// The client sent its body slower than `timeouts.request_body_min_rate_bytes` allows.
pub const REQUEST_BODY_TOO_SLOW: Fault = Fault {
    status: StatusCode::REQUEST_TIMEOUT,
    code: 900900,
    message: "Request timeout",
    description: "The client sent the request body too slowly",
};

/// No credential where the resource requires one.
pub const MISSING_CREDENTIALS: Fault = Fault {
    status: StatusCode::UNAUTHORIZED,
    code: 900902,
    message: "Missing Credentials",
    description: "Invalid Credentials. Make sure your API invocation call has a header: 'Authorization : Bearer ACCESS_TOKEN'",
};

/// A credential that does not validate.
pub const INVALID_CREDENTIALS: Fault = Fault {
    status: StatusCode::UNAUTHORIZED,
    code: 900901,
    message: "Invalid Credentials",
    description:
        "Invalid Credentials. Make sure you have provided the correct security credentials",
};

/// A token past its `exp`.
pub const TOKEN_EXPIRED: Fault = Fault {
    status: StatusCode::UNAUTHORIZED,
    code: 900903,
    message: "Access Token Expired",
    description: "Access token expired. Renew it and try again",
};

/// The token lacks a scope the resource requires.
pub const INVALID_SCOPE: Fault = Fault {
    status: StatusCode::FORBIDDEN,
    code: 900910,
    message: "The access token does not allow you to access the requested resource",
    description: "User is NOT authorized to access the Resource: a required scope is missing",
};

/// An opaque (non-JWT) token while no key manager is configured to introspect it.
pub const OPAQUE_TOKEN_UNSUPPORTED: Fault = Fault {
    status: StatusCode::UNAUTHORIZED,
    code: 900901,
    message: "Invalid Credentials",
    description: "Opaque access tokens are not accepted by this gateway: use a signed JWT",
};

/// The key manager could not be asked about an opaque token (down, slow, or answering
/// something else than RFC 7662): the token is neither accepted nor called invalid.
pub const KEY_MANAGER_UNAVAILABLE: Fault = Fault {
    status: StatusCode::SERVICE_UNAVAILABLE,
    code: 900900,
    message: "Key manager unavailable",
    description: "The access token could not be validated because the key manager is unreachable. Try again later",
};

/// Basic credentials that are not `base64(user:password)`.
pub const BASIC_AUTH_FORMAT: Fault = Fault {
    status: StatusCode::UNAUTHORIZED,
    code: 900912,
    message: "Invalid Credentials",
    description: "Invalid authorization header format for basic authentication: use 'Basic base64(username:password)'",
};

/// An unknown user or a wrong password.
pub const BASIC_AUTH_INVALID: Fault = Fault {
    status: StatusCode::UNAUTHORIZED,
    code: 900911,
    message: "Invalid Credentials",
    description: "Invalid username or password",
};

/// A token whose `subscribedAPIs` does not include this API.
pub const RESOURCE_FORBIDDEN: Fault = Fault {
    status: StatusCode::FORBIDDEN,
    code: 900908,
    message: "Resource forbidden",
    description:
        "User is NOT authorized to access the Resource. API Subscription validation failed.",
};

/// The gateway failed on its own side (e.g. signing an API key).
pub const INTERNAL_ERROR: Fault = Fault {
    status: StatusCode::INTERNAL_SERVER_ERROR,
    code: 900808,
    message: "Internal error",
    description: "The gateway could not complete the request",
};

/// Over the API's throttling tier (WSO2 `API_THROTTLE_OUT_ERROR_CODE`).
pub const API_THROTTLED: Fault = Fault {
    status: StatusCode::TOO_MANY_REQUESTS,
    code: 900800,
    message: "Message throttled out",
    description: "You have exceeded your quota",
};

/// Over the resource's throttling tier.
pub const RESOURCE_THROTTLED: Fault = Fault {
    status: StatusCode::TOO_MANY_REQUESTS,
    code: 900802,
    message: "Message throttled out",
    description: "You have exceeded your quota",
};

/// Over the application's throttling tier.
pub const APPLICATION_THROTTLED: Fault = Fault {
    status: StatusCode::TOO_MANY_REQUESTS,
    code: 900803,
    message: "Message throttled out",
    description: "You have exceeded your quota",
};

/// Over the subscription's throttling tier.
pub const SUBSCRIPTION_THROTTLED: Fault = Fault {
    status: StatusCode::TOO_MANY_REQUESTS,
    code: 900804,
    message: "Message throttled out",
    description: "You have exceeded your quota",
};

/// The credential names a tier `policies.yaml` does not define (WSO2's 900809, spelling kept).
pub const POLICY_NOT_FOUND: Fault = Fault {
    status: StatusCode::INTERNAL_SERVER_ERROR,
    code: 900809,
    message: "Internal server error occured",
    description: "POLICY ENFORCEMENT ERROR",
};

/// The shared throttling counters did not answer and the configuration says to fail closed.
pub const THROTTLING_UNAVAILABLE: Fault = Fault {
    status: StatusCode::SERVICE_UNAVAILABLE,
    code: 900808,
    message: "Internal error",
    description: "The throttling counters are unavailable",
};

/// The upstream refused or dropped the connection.
pub const UPSTREAM_UNREACHABLE: Fault = Fault {
    status: StatusCode::BAD_GATEWAY,
    code: 102503,
    message: "Error connecting to the back end",
    description: "The upstream endpoint could not be reached or closed the connection",
};

/// The upstream did not answer within the endpoint's timeout.
pub const UPSTREAM_TIMEOUT: Fault = Fault {
    status: StatusCode::GATEWAY_TIMEOUT,
    code: 102504,
    message: "Gateway Timeout",
    description: "The upstream endpoint did not respond within the endpoint timeout",
};

/// The resource has no endpoint for the key type in use.
pub const NO_PRODUCTION_ENDPOINT: Fault = Fault {
    status: StatusCode::FORBIDDEN,
    code: 900901,
    message: "Invalid Credentials",
    description: "Production key offered to an API with no production endpoint",
};

/// A sandbox key on a resource without sandbox endpoints.
pub const NO_SANDBOX_ENDPOINT: Fault = Fault {
    status: StatusCode::FORBIDDEN,
    code: 900901,
    message: "Invalid Credentials",
    description: "Sandbox key offered to an API with no sandbox endpoint",
};

impl Fault {
    /// The JSON body.
    pub fn body(&self) -> Bytes {
        body(self.code, self.message, self.description)
    }

    /// A complete response with `Content-Type: application/json`.
    pub fn response<B: From<Bytes>>(&self) -> Response<B> {
        let mut response = Response::new(B::from(self.body()));
        *response.status_mut() = self.status;
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    }
}

/// A fault body whose description is made per request (a validation step's list of problems).
pub fn body(code: u32, message: &str, description: &str) -> Bytes {
    // A struct, not a map, keeps WSO2's field order: code, message, description.
    #[derive(serde::Serialize)]
    struct Body<'a> {
        code: u32,
        message: &'a str,
        description: &'a str,
    }
    #[derive(serde::Serialize)]
    struct Envelope<'a> {
        fault: Body<'a>,
    }
    let envelope = Envelope {
        fault: Body {
            code,
            message,
            description,
        },
    };
    Bytes::from(serde_json::to_vec(&envelope).expect("a fault serializes"))
}

/// A complete fault response with `Content-Type: application/json` and a description made per
/// request; `code` is the status itself, as WSO2's validation faults have it.
pub fn response_with<B: From<Bytes>>(
    status: StatusCode,
    message: &str,
    description: &str,
) -> Response<B> {
    let mut response = Response::new(B::from(body(
        u32::from(status.as_u16()),
        message,
        description,
    )));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_is_the_wso2_shape() {
        let body: serde_json::Value = serde_json::from_slice(&NO_MATCHING_RESOURCE.body()).unwrap();
        assert_eq!(body["fault"]["code"], 900906);
        assert!(body["fault"]["message"].is_string());
        assert!(body["fault"]["description"].is_string());
    }
}
