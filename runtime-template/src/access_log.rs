//! One access-log line per request, written when the response body ends (or is dropped),
//! so streamed responses are logged with their real size and duration.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::{Method, StatusCode};
use http_body::{Body, Frame, SizeHint};

/// What is known about a request when its response starts.
#[derive(Debug)]
pub struct AccessRecord {
    /// Client address.
    pub client: std::net::SocketAddr,
    /// Request method.
    pub method: Method,
    /// Raw request path and query.
    pub path: String,
    /// Response status.
    pub status: StatusCode,
    /// Upstream URL used, if any.
    pub upstream: Option<std::sync::Arc<str>>,
    /// When the request arrived.
    pub started: Instant,
    /// Time until the upstream's response headers, if proxied.
    pub upstream_latency: Option<std::time::Duration>,
    /// The application or user a verified credential names.
    pub consumer: Option<std::sync::Arc<str>>,
    /// The W3C trace the request belongs to (`None` with `[tracing] propagate = false`).
    pub trace_id: Option<crate::telemetry::trace_context::TraceId>,
}

pin_project_lite::pin_project! {
    /// A response body that logs the request once it is finished.
    pub struct LoggedBody<B> {
        #[pin]
        inner: B,
        bytes: u64,
        // An empty body may be dropped without ever being polled; that is still complete.
        empty: bool,
        record: Option<Box<AccessRecord>>,
    }

    impl<B> PinnedDrop for LoggedBody<B> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let Some(record) = this.record.take() {
                emit(&record, *this.bytes, *this.empty);
            }
        }
    }
}

impl<B: Body> LoggedBody<B> {
    /// Wraps `inner`; `record` is `None` when access logging is off.
    pub fn new(inner: B, record: Option<Box<AccessRecord>>) -> Self {
        Self {
            empty: inner.is_end_stream(),
            inner,
            bytes: 0,
            record,
        }
    }
}

fn emit(record: &AccessRecord, bytes: u64, complete: bool) {
    let total_ms = record.started.elapsed().as_secs_f64() * 1000.0;
    let upstream_ms = record
        .upstream_latency
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(0.0);
    tracing::info!(
        target: "access",
        "{} {} {} {} {} bytes_out={} upstream={} upstream_ms={:.2} total_ms={:.2} consumer={} trace={}",
        record.client.ip(),
        record.method,
        record.path,
        record.status.as_u16(),
        if complete { "complete" } else { "aborted" },
        bytes,
        record.upstream.as_deref().unwrap_or("-"),
        upstream_ms,
        total_ms,
        record
            .consumer
            .as_deref()
            .map_or_else(|| "-".to_string(), |c| c.escape_debug().to_string()),
        TraceField(record.trace_id),
    );
}

/// The `trace=` field: 32 hex digits, or `-`.
struct TraceField(Option<crate::telemetry::trace_context::TraceId>);

impl std::fmt::Display for TraceField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(id) => id.fmt(f),
            None => f.write_str("-"),
        }
    }
}

impl<B> Body for LoggedBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let mut this = self.project();
        let polled = this.inner.as_mut().poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    *this.bytes += data.len() as u64;
                }
                // hyper stops polling a body that reports its end, so log it now.
                if this.inner.is_end_stream() {
                    if let Some(record) = this.record.take() {
                        emit(&record, *this.bytes, true);
                    }
                }
            }
            Poll::Ready(None) => {
                if let Some(record) = this.record.take() {
                    emit(&record, *this.bytes, true);
                }
            }
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
