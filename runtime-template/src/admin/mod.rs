//! The admin API of Express Gateway configurations: users, applications, credentials and
//! scopes with Express Gateway 1.16's paths, bodies and statuses (`lib/rest/routes/*.js`),
//! on its own listener and never through the API pipelines (DESIGN.md, "State").
//!
//! Differences from EG, on purpose: requests need `Authorization: Bearer <token>` unless conf
//! turns that off on loopback; key-auth secrets are shown only when created; see
//! `docs/express-gateway-differences.md`.

pub mod routes;
#[cfg(feature = "storage")]
pub mod storage;

#[cfg(feature = "server")]
use std::sync::Arc;

#[cfg(feature = "server")]
use bytes::Bytes;
#[cfg(feature = "server")]
use http::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::StatusCode;
#[cfg(feature = "server")]
use http::{HeaderValue, Request, Response};
#[cfg(feature = "server")]
use http_body_util::{BodyExt, Limited};
use serde_json::Value;
#[cfg(feature = "server")]
use subtle::ConstantTimeEq;

#[cfg(feature = "server")]
use crate::policies::metrics::EgCounter;
#[cfg(feature = "server")]
use crate::policies::terminate::express;
#[cfg(feature = "server")]
use crate::proxy::body::{ClientBody, GatewayBody};
use crate::store::ConsumerError;
#[cfg(feature = "server")]
use crate::store::Consumers;

#[cfg(feature = "server")]
/// The admin API's body limit: Express's `json()` default, 100 kB.
const MAX_BODY_BYTES: usize = 100 * 1024;

#[cfg(feature = "server")]
/// Who may call the admin API.
#[derive(Debug, Clone)]
pub enum Access {
    /// Requests must carry `Authorization: Bearer <token>`.
    Token(String),
    /// Anyone who can connect (loopback listeners with `admin.require_token = false`).
    Open,
}

#[cfg(feature = "server")]
/// The admin API, shared by its connections.
#[derive(Debug)]
pub struct AdminApi {
    consumers: Arc<Consumers>,
    access: Access,
    metrics: Option<(String, Arc<EgCounter>)>,
    #[cfg(feature = "storage")]
    storage: Option<Arc<storage::StorageRoute>>,
}

#[cfg(feature = "server")]
impl AdminApi {
    /// The API over `consumers`; with `metrics`, `GET <path>` serves the `eg` counter
    /// (Kargo's `metrics` plugin route).
    pub fn new(
        consumers: Arc<Consumers>,
        access: Access,
        metrics: Option<(String, Arc<EgCounter>)>,
    ) -> Self {
        Self {
            consumers,
            access,
            metrics,
            #[cfg(feature = "storage")]
            storage: None,
        }
    }

    #[cfg(feature = "storage")]
    /// Serves Kargo's storage route too (behind the same token rules).
    pub fn with_storage(mut self, route: Arc<storage::StorageRoute>) -> Self {
        self.storage = Some(route);
        self
    }

    /// Answers one request.
    pub async fn handle(&self, request: Request<ClientBody>) -> Response<GatewayBody> {
        if let Access::Token(token) = &self.access {
            let given = request
                .headers()
                .get(AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| {
                    let (scheme, rest) = v.split_once(' ')?;
                    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
                })
                .unwrap_or("");
            if !bool::from(given.as_bytes().ct_eq(token.as_bytes())) {
                let mut response = crate::respond::express_send_status(StatusCode::UNAUTHORIZED);
                response
                    .headers_mut()
                    .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                return response;
            }
        }
        if let Some((path, counter)) = &self.metrics {
            if (request.method() == http::Method::GET || request.method() == http::Method::HEAD)
                && crate::router::express::same_route_path(path, request.uri().path())
            {
                let mut response = Response::new(GatewayBody::from(Bytes::from(counter.render())));
                response.headers_mut().insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
                );
                return response;
            }
        }
        #[cfg(feature = "storage")]
        if let Some(route) = &self.storage {
            if route.matches(&request) {
                return route.forward(request).await;
            }
        }
        let (parts, body) = request.into_parts();
        let path = parts.uri.path().to_string();
        let query = parts.uri.query().unwrap_or("").to_string();
        let json_body = is_json(&parts.headers);
        let body = match Limited::new(body, MAX_BODY_BYTES).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(_) => {
                return text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "request entity too large",
                )
            }
        };
        let body = match parse_body(json_body, &body) {
            Ok(body) => body,
            Err(message) => return text(StatusCode::INTERNAL_SERVER_ERROR, &message),
        };
        let consumers = self.consumers.clone();
        let method = parts.method.clone();
        // Writes wait for the disk: off the async threads.
        let answer = tokio::task::spawn_blocking(move || {
            routes::dispatch(&consumers, &method, &path, &query, body)
        })
        .await;
        match answer {
            Ok(Some(answer)) => answer.into_response(),
            Ok(None) => crate::respond::express_not_found(
                parts.method.as_str(),
                parts.uri.path_and_query().map_or("/", |pq| pq.as_str()),
            ),
            Err(_) => text(StatusCode::INTERNAL_SERVER_ERROR, "admin API error"),
        }
    }
}

#[cfg(feature = "server")]
fn is_json(headers: &http::HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
}

#[cfg(feature = "server")]
/// Express's `json()`: a JSON body (object or array, as its strict mode) when the type is
/// JSON, else an empty object.
fn parse_body(json: bool, body: &Bytes) -> Result<Value, String> {
    if !json || body.is_empty() {
        return Ok(Value::Object(serde_json::Map::new()));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(value @ (Value::Object(_) | Value::Array(_))) => Ok(value),
        Ok(_) => Err("the JSON body must be an object or an array".into()),
        Err(e) => Err(format!("the JSON body is not valid: {e}")),
    }
}

/// What a route answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// `res.json(value)` with a status.
    Json(StatusCode, Value),
    /// `res.status(s).send(text)`: text/html.
    Text(StatusCode, String),
    /// No body (201, 204).
    Empty(StatusCode),
}

#[cfg(feature = "server")]
impl Answer {
    fn into_response(self) -> Response<GatewayBody> {
        match self {
            Answer::Json(status, value) => crate::respond::answer(express::express_send(
                status,
                &value.to_string(),
                "application/json; charset=utf-8",
            )),
            Answer::Text(status, message) => text(status, &message),
            Answer::Empty(status) => crate::respond::empty(status, http::HeaderMap::new()),
        }
    }
}

impl From<ConsumerError> for Answer {
    /// EG's statuses: 404, 409 and 422 as the routes send them; every other refusal goes
    /// through its error handler as a 500 with the message.
    fn from(e: ConsumerError) -> Self {
        let status = match &e {
            ConsumerError::NotFound(_) => StatusCode::NOT_FOUND,
            ConsumerError::Conflict(_) => StatusCode::CONFLICT,
            ConsumerError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ConsumerError::Invalid(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ConsumerError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        if let ConsumerError::Unavailable(message) = &e {
            tracing::error!("admin API: {message}");
        }
        Answer::Text(status, e.to_string())
    }
}

#[cfg(feature = "server")]
fn text(status: StatusCode, message: &str) -> Response<GatewayBody> {
    crate::respond::answer(express::express_send(
        status,
        message,
        "text/html; charset=utf-8",
    ))
}

#[cfg(test)]
mod tests;
