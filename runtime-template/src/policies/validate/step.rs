//! The `validate` step: checks a request's parameters and JSON body before it goes upstream,
//! and (when on) the upstream's JSON response before it goes to the client.
//!
//! The request body is read only here, on the resources that validate, under the request body
//! limit (413 past it), then forwarded as read. A JSON body is expected when the operation
//! declares one: `Content-Type` `application/json` or `…+json` (or none); another type is 415
//! unless the operation also declares non-JSON media types (then it passes unchecked). A
//! response body is read up to [`RESPONSE_LIMIT`] bytes; a longer, compressed or non-JSON one
//! goes out unchecked.

use bytes::Bytes;
use http::request::Parts;
use http::{Response, StatusCode};
use serde_json::Value;

use super::compile::{compile, parameter_place, Compiled, Problems};
use super::params::{path_values, query_values, read_value};
use super::{response_for, ParameterLocation, ValidateSpec};
use crate::model::Dialect;
use crate::pipeline::context::{Context, Matched};
use crate::pipeline::step::{read_request_body, Flow};
use crate::pipeline::Services;
use crate::proxy::body::{ClientBody, GatewayBody};

/// The longest upstream response body that is validated, in bytes (1 MiB).
pub const RESPONSE_LIMIT: usize = 1024 * 1024;

/// How long reading an upstream body to validate it may take before the answer is a 502.
const RESPONSE_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// A `validate` step with its schemas compiled.
#[derive(Debug)]
pub struct ValidateStep {
    spec: ValidateSpec,
    compiled: Compiled,
}

impl ValidateStep {
    /// Compiles the step's schemas (the toolkit already compiled them once: an error here means
    /// a model the toolkit did not write).
    pub fn new(spec: &ValidateSpec) -> Result<Self, String> {
        Ok(Self {
            compiled: compile(spec).map_err(|e| e.to_string())?,
            spec: spec.clone(),
        })
    }

    /// Whether responses are checked.
    pub fn has_response_phase(&self) -> bool {
        self.spec.response.is_some()
    }

    /// The request phase: 400 with every problem found, 413/408 for a body that cannot be
    /// read, 415 for a body of a type the operation does not take.
    pub async fn request(
        &self,
        services: &Services,
        dialect: Dialect,
        context: &mut Context<'_>,
        parts: &Parts,
        body: &mut Option<ClientBody>,
    ) -> Flow {
        let Some(request) = &self.spec.request else {
            return Flow::Continue;
        };
        let mut problems = Problems::default();
        let template = match context.matched {
            Matched::Wso2 { resource, .. } => resource.path.as_str(),
            _ => "",
        };
        let mut texts: Vec<String> = Vec::new();
        for (parameter, schema) in request.parameters.iter().zip(&self.compiled.parameters) {
            texts.clear();
            match parameter.location {
                ParameterLocation::Path => texts.extend(
                    path_values(template, &context.rest)
                        .into_iter()
                        .filter(|(name, _)| *name == parameter.name)
                        .map(|(_, value)| value),
                ),
                ParameterLocation::Query => {
                    if let Some(query) = parts.uri.query() {
                        texts.extend(query_values(query, &parameter.name));
                    }
                }
                ParameterLocation::Header => texts.extend(
                    parts
                        .headers
                        .get_all(parameter.name.as_str())
                        .iter()
                        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
                ),
            }
            let place = || parameter_place(parameter.location, &parameter.name);
            if texts.is_empty() {
                if parameter.required {
                    problems.push(format_args!("{}: required but missing", place()));
                }
                continue;
            }
            let value = read_value(&texts, &parameter.value);
            if !schema.is_valid(&value) {
                schema.report(&value, &place(), &mut problems);
            }
        }
        if let (Some(declared), Some(schema)) = (&request.body, &self.compiled.body) {
            let content_type = parts
                .headers
                .get(http::header::CONTENT_TYPE)
                .map(|v| v.as_bytes());
            if content_type.is_some_and(|t| !is_json(t)) {
                if !declared.other_types {
                    unread_body(context, body);
                    return Flow::Respond(crate::fault::response_with(
                        StatusCode::UNSUPPORTED_MEDIA_TYPE,
                        "Unsupported Media Type",
                        "the request body must be JSON: send it with Content-Type: application/json",
                    ));
                }
            } else {
                let read =
                    match read_request_body(services, dialect, context, parts, body, "validate")
                        .await
                    {
                        Ok(bytes) => bytes,
                        Err(response) => return Flow::Respond(response),
                    };
                if read.is_empty() {
                    if declared.required {
                        problems.push(format_args!("request body: required but empty"));
                    }
                } else {
                    match serde_json::from_slice::<Value>(&read) {
                        Ok(json) => {
                            if !schema.is_valid(&json) {
                                schema.report(&json, "body", &mut problems);
                            }
                        }
                        Err(err) => {
                            problems.push(format_args!("request body: not valid JSON: {err}"))
                        }
                    }
                }
                *body = Some(ClientBody::Buffered(Some(read)));
            }
        }
        if problems.is_empty() {
            Flow::Continue
        } else {
            unread_body(context, body);
            Flow::Respond(crate::fault::response_with(
                StatusCode::BAD_REQUEST,
                "Bad Request",
                &problems.into_description(),
            ))
        }
    }

    /// The response phase: an upstream JSON body that does not match the schema of its
    /// status becomes 500 `Bad Response` listing the problems.
    pub async fn response(&self, parts: &Parts, response: &mut Response<GatewayBody>) {
        use crate::proxy::body::{read_upstream, UpstreamRead};
        let Some(responses) = &self.spec.response else {
            return;
        };
        let status = response.status();
        let Some(declared) = response_for(responses, status.as_u16()) else {
            return;
        };
        let Some(schema) = responses
            .iter()
            .position(|r| std::ptr::eq(r, declared))
            .and_then(|i| self.compiled.responses.get(i))
            .and_then(Option::as_ref)
        else {
            return;
        };
        let headers = response.headers();
        let compressed = headers
            .get(http::header::CONTENT_ENCODING)
            .is_some_and(|v| !v.as_bytes().eq_ignore_ascii_case(b"identity"));
        let json = headers
            .get(http::header::CONTENT_TYPE)
            .is_some_and(|v| is_json(v.as_bytes()));
        if parts.method == http::Method::HEAD
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED
            || compressed
            || !json
            || !matches!(response.body(), GatewayBody::Upstream { .. })
        {
            return;
        }
        let body = std::mem::replace(response.body_mut(), GatewayBody::from(Bytes::new()));
        let GatewayBody::Upstream { body } = body else {
            *response.body_mut() = body;
            return;
        };
        let whole =
            match tokio::time::timeout(RESPONSE_READ_TIMEOUT, read_upstream(body, RESPONSE_LIMIT))
                .await
            {
                Ok(Ok(UpstreamRead::Whole(bytes))) => bytes,
                Ok(Ok(UpstreamRead::TooLong(body))) => {
                    tracing::debug!(
                        "validate: a response body over {RESPONSE_LIMIT} bytes goes out unchecked"
                    );
                    *response.body_mut() = body;
                    return;
                }
                Ok(Err(err)) => {
                    tracing::warn!("validate: the upstream body failed: {err}");
                    *response = crate::fault::UPSTREAM_UNREACHABLE.response();
                    return;
                }
                Err(_elapsed) => {
                    tracing::warn!("validate: the upstream body took too long");
                    *response = crate::fault::UPSTREAM_TIMEOUT.response();
                    return;
                }
            };
        let mut problems = Problems::default();
        match serde_json::from_slice::<Value>(&whole) {
            Ok(json) => {
                if !schema.is_valid(&json) {
                    schema.report(&json, "body", &mut problems);
                }
            }
            Err(err) => problems.push(format_args!("response body: not valid JSON: {err}")),
        }
        if problems.is_empty() {
            *response.body_mut() = GatewayBody::from(whole);
        } else {
            let description = problems.into_description();
            tracing::warn!("validate: the upstream's {status} response does not match its schema: {description}");
            *response = crate::fault::response_with(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Bad Response",
                &description,
            );
        }
    }
}

/// A request answered without reading its body: a body with bytes left means the HTTP/1
/// connection cannot carry another request.
fn unread_body(context: &mut Context<'_>, body: &Option<ClientBody>) {
    use http_body::Body as _;
    if body.as_ref().is_some_and(|b| !b.is_end_stream()) {
        context.close_connection = context.http1;
    }
}

/// `application/json`, `application/problem+json`, with or without parameters.
fn is_json(content_type: &[u8]) -> bool {
    let essence = content_type
        .split(|b| *b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    essence.eq_ignore_ascii_case(b"application/json")
        || (essence.len() > 5
            && essence
                .get(essence.len() - 5..)
                .is_some_and(|tail| tail.eq_ignore_ascii_case(b"+json")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_media_types_are_recognised() {
        assert!(is_json(b"application/json"));
        assert!(is_json(b"Application/JSON; charset=utf-8"));
        assert!(is_json(b"application/merge-patch+json"));
        assert!(!is_json(b"text/plain"));
        assert!(!is_json(b"+json"));
        assert!(!is_json(b""));
    }
}
