//! A small OTLP/HTTP trace receiver for tests: `POST /v1/traces` with an
//! `application/x-protobuf` `ExportTraceServiceRequest` (OTLP 1.x, binary protobuf encoding),
//! decoded with the OpenTelemetry protocol's generated types, answered `200` with an empty
//! `ExportTraceServiceResponse`, as an OpenTelemetry Collector does. Anything else is `404`
//! or `415`. Bound to a free loopback port; stops when dropped.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
pub use opentelemetry_proto::tonic::common::v1::any_value::Value;
pub use opentelemetry_proto::tonic::common::v1::KeyValue;
pub use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// One span received, with the attributes of the resource that sent it.
#[derive(Debug, Clone)]
pub struct Received {
    /// The resource's attributes (`service.name`, ...).
    pub resource: Vec<KeyValue>,
    /// The span.
    pub span: Span,
}

impl Received {
    /// The trace id as 32 hex digits.
    pub fn trace_id(&self) -> String {
        hex(&self.span.trace_id)
    }

    /// The span id as 16 hex digits.
    pub fn span_id(&self) -> String {
        hex(&self.span.span_id)
    }

    /// The parent span id as hex (empty for a root span).
    pub fn parent_span_id(&self) -> String {
        hex(&self.span.parent_span_id)
    }

    /// A span attribute's value.
    pub fn attribute(&self, key: &str) -> Option<&Value> {
        find(&self.span.attributes, key)
    }

    /// A resource attribute's value.
    pub fn resource_attribute(&self, key: &str) -> Option<&Value> {
        find(&self.resource, key)
    }
}

fn find<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a Value> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref()?.value.as_ref())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A running receiver; stops when dropped.
pub struct Collector {
    /// Where it listens.
    pub addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    stop: Option<oneshot::Sender<()>>,
}

impl Collector {
    /// Its base URL, as `[tracing] otlp_endpoint` takes it.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<Received> {
        self.received.lock().expect("collector lock").clone()
    }

    /// Waits (at most `timeout`) for a span of trace `trace_id` (32 hex digits).
    pub async fn wait_for_trace(&self, trace_id: &str, timeout: Duration) -> Option<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(found) = self.spans().into_iter().find(|s| s.trace_id() == trace_id) {
                return Some(found);
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Starts a receiver on a free loopback port.
pub async fn spawn() -> std::io::Result<Collector> {
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let addr = listener.local_addr()?;
    let received = Arc::new(Mutex::new(Vec::new()));
    let (stop, mut stopped) = oneshot::channel();
    let store = received.clone();
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                _ = &mut stopped => break,
            };
            let Ok((stream, _)) = accepted else { continue };
            let store = store.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request| receive(request, store.clone()));
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(Collector {
        addr,
        received,
        stop: Some(stop),
    })
}

async fn receive(
    request: Request<Incoming>,
    store: Arc<Mutex<Vec<Received>>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let answer = |status: StatusCode, body: Vec<u8>| {
        Response::builder()
            .status(status)
            .header("content-type", "application/x-protobuf")
            .body(Full::new(Bytes::from(body)))
            .expect("a valid response")
    };
    if request.method() != Method::POST || request.uri().path() != "/v1/traces" {
        return Ok(answer(StatusCode::NOT_FOUND, Vec::new()));
    }
    let protobuf = request
        .headers()
        .get("content-type")
        .is_some_and(|v| v.as_bytes() == b"application/x-protobuf");
    if !protobuf {
        return Ok(answer(StatusCode::UNSUPPORTED_MEDIA_TYPE, Vec::new()));
    }
    let Ok(body) = request.into_body().collect().await else {
        return Ok(answer(StatusCode::BAD_REQUEST, Vec::new()));
    };
    let Ok(export) = ExportTraceServiceRequest::decode(body.to_bytes()) else {
        return Ok(answer(StatusCode::BAD_REQUEST, Vec::new()));
    };
    {
        let mut store = store.lock().expect("collector lock");
        for resource_spans in export.resource_spans {
            let resource = resource_spans
                .resource
                .map(|r| r.attributes)
                .unwrap_or_default();
            for scope in resource_spans.scope_spans {
                for span in scope.spans {
                    store.push(Received {
                        resource: resource.clone(),
                        span,
                    });
                }
            }
        }
    }
    Ok(answer(
        StatusCode::OK,
        ExportTraceServiceResponse::default().encode_to_vec(),
    ))
}
