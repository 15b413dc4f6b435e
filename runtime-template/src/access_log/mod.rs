//! The access log: one record per request, made when the response body ends (or is dropped),
//! so streamed responses are logged with their real size and duration, then handed to a
//! bounded queue ([`queue`]) whose own thread renders it ([`format`]) and writes it to
//! standard output. The request path only moves the record, by value (its target inline,
//! [`target`]): it never allocates for it, formats, writes, waits, or wakes the writer with a
//! system call while the writer is busy. Field reference: docs/logging.md.

pub mod format;
pub mod queue;
pub mod target;

use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, StatusCode};
use http_body::{Body, Frame, SizeHint};
use serde::Serialize;

use crate::model::GatewayModel;
use crate::telemetry::metrics::{RouteKey, UpstreamFailure};
use crate::telemetry::otlp::SpanExport;
use crate::telemetry::trace_context::TraceContext;

pub use queue::{AccessLog, AccessLogWriter};
pub use target::RequestTarget;

/// Which route of the model a request matched, by index (its template is looked up on the
/// writer thread, [`RouteTable`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteRef {
    /// `model.apis[api].resources[resource]`.
    Wso2 {
        /// Index of the API.
        api: u32,
        /// Index of the resource in the API.
        resource: u32,
    },
    /// `model.express[config].routes[route]`.
    Express {
        /// Index of the Express Gateway configuration.
        config: u32,
        /// Index of the route in it.
        route: u32,
    },
}

impl RouteRef {
    /// The model route the router picked (`None` for the gateway's own routes and for requests
    /// without a route): the same key the metrics count by, narrowed for the record.
    pub fn of(key: RouteKey) -> Option<Self> {
        match key {
            RouteKey::Wso2(api, resource) => Some(Self::Wso2 {
                api: u32::try_from(api).ok()?,
                resource: u32::try_from(resource).ok()?,
            }),
            RouteKey::Express(config, route) => Some(Self::Express {
                config: u32::try_from(config).ok()?,
                route: u32::try_from(route).ok()?,
            }),
            RouteKey::Unrouted | RouteKey::Health | RouteKey::ApiKey => None,
        }
    }
}

/// One value per route of a model, indexed as [`RouteRef`] indexes the model: made once at
/// start-up, so the access log's writer and the span exporter look a route's names up without
/// touching the model.
#[derive(Debug, Clone, Default)]
pub struct RouteTable<T> {
    /// Per API, per resource.
    wso2: Vec<Vec<T>>,
    /// Per Express Gateway configuration, per route.
    express: Vec<Vec<T>>,
}

impl<T> RouteTable<T> {
    /// `value(api, template)` for every route of `model`: the API's name (WSO2) or the
    /// `apiEndpoint` (Express Gateway), and the route's template as the metrics show it
    /// (`/petstore/v1/pet/{petId}`, the `paths` entry or `pathRegex`).
    pub fn new(model: &GatewayModel, mut value: impl FnMut(&str, String) -> T) -> Self {
        let wso2 = model
            .apis
            .iter()
            .map(|api| {
                api.resources
                    .iter()
                    .map(|r| {
                        value(
                            &api.name,
                            crate::model::route_template(&api.base_path, &r.path),
                        )
                    })
                    .collect()
            })
            .collect();
        let express = model
            .express
            .iter()
            .map(|config| {
                config
                    .routes
                    .iter()
                    .map(|route| value(&route.api_endpoint, route.path.text().to_string()))
                    .collect()
            })
            .collect();
        Self { wso2, express }
    }

    /// The value of `route`, if the model has it.
    pub fn get(&self, route: RouteRef) -> Option<&T> {
        let (table, outer, inner) = match route {
            RouteRef::Wso2 { api, resource } => (&self.wso2, api, resource),
            RouteRef::Express { config, route } => (&self.express, config, route),
        };
        table.get(outer as usize)?.get(inner as usize)
    }

    /// The table of `value(v)` for every value `v` of this one, route for route.
    pub fn map<U>(&self, mut value: impl FnMut(&T) -> U) -> RouteTable<U> {
        let mut map = |table: &Vec<Vec<T>>| -> Vec<Vec<U>> {
            table
                .iter()
                .map(|routes| routes.iter().map(&mut value).collect())
                .collect()
        };
        RouteTable {
            wso2: map(&self.wso2),
            express: map(&self.express),
        }
    }

    /// A table of the given values (tests).
    #[cfg(test)]
    pub fn from_parts(wso2: Vec<Vec<T>>, express: Vec<Vec<T>>) -> Self {
        Self { wso2, express }
    }
}

impl RouteTable<Option<Method>> {
    /// Each route's one method: a WSO2 resource's (`None` if it is not a valid method); `None`
    /// for every Express Gateway route, which may take several.
    pub fn methods(model: &GatewayModel) -> Self {
        Self {
            wso2: model
                .apis
                .iter()
                .map(|api| {
                    api.resources
                        .iter()
                        .map(|r| Method::from_bytes(r.method.as_bytes()).ok())
                        .collect()
                })
                .collect(),
            express: model
                .express
                .iter()
                .map(|config| vec![None; config.routes.len()])
                .collect(),
        }
    }
}

/// Who failed, for an answer of status 400 or above (DESIGN.md "Errors know who failed").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ErrorSide {
    /// The request itself: 400, 404, 405, 408, 413, 414, 431 and every other 4xx not below.
    Client,
    /// A policy refused it: 401, 403, 407, 429.
    Policy,
    /// The upstream: 502, 503, 504, and any 5xx the upstream itself answered.
    Upstream,
    /// The gateway: any other 5xx it made (500).
    Gateway,
}

impl ErrorSide {
    /// The side of a `status`; `upstream_answered` when the status is the upstream's own.
    pub fn of(status: StatusCode, upstream_answered: bool) -> Option<Self> {
        Some(match status.as_u16() {
            0..=399 => return None,
            401 | 403 | 407 | 429 => Self::Policy,
            400..=499 => Self::Client,
            502..=504 => Self::Upstream,
            _ if upstream_answered => Self::Upstream,
            _ => Self::Gateway,
        })
    }

    /// The side's name in the JSON line's `error` (as serialized).
    pub fn name(self) -> &'static str {
        match self {
            Self::Client => "client",
            Self::Policy => "policy",
            Self::Upstream => "upstream",
            Self::Gateway => "gateway",
        }
    }
}

/// What is known about a request when its response starts; the body wrapper adds how it ended.
/// Moved by value from the request to the writer (272 bytes), so it holds each fact once and
/// nothing the writer can work out itself: the wall-clock time of the end is derived from
/// `finished` on the writer thread ([`format::WallClock`]), the duration from `started`.
#[derive(Debug)]
pub struct AccessRecord {
    /// Client address.
    pub client: IpAddr,
    /// The port of the listener that took the request (0: unknown).
    pub server_port: u16,
    /// The request came over TLS (the span's `url.scheme` is `https`).
    pub https: bool,
    /// Request method.
    pub method: Method,
    /// Raw request path and query, credentials redacted.
    pub path: RequestTarget,
    /// The route it matched, if any.
    pub route: Option<RouteRef>,
    /// Response status.
    pub status: StatusCode,
    /// Upstream URL used, if any.
    pub upstream: Option<Arc<str>>,
    /// When the request arrived.
    pub started: Instant,
    /// Time until the upstream's response headers, if proxied (the status is then the
    /// upstream's).
    pub upstream_latency: Option<Duration>,
    /// The application or user a verified credential names.
    pub consumer: Option<Arc<str>>,
    /// The request's W3C trace context, when tracing knows one (JSON `trace_id`).
    pub trace: Option<TraceContext>,
    /// The request's span is exported over OTLP (`trace` sampled, and `[tracing]
    /// otlp_endpoint` set).
    pub export_span: bool,
    /// Why the upstream exchange failed, when it did (the span's `error.type`).
    pub upstream_failure: Option<UpstreamFailure>,
    /// The body was sent to its end (`false`: the client went away or the upstream failed).
    pub complete: bool,
    /// Response body bytes sent (set when the body ends).
    pub bytes_out: u64,
    /// When the response ended (set when the body ends; `started` before).
    pub finished: Instant,
}

impl AccessRecord {
    /// A record of what the request line and the status say; the rest starts empty.
    pub fn new(
        client: IpAddr,
        method: Method,
        path: RequestTarget,
        status: StatusCode,
        started: Instant,
    ) -> Self {
        Self {
            client,
            server_port: 0,
            https: false,
            method,
            path,
            route: None,
            status,
            upstream: None,
            started,
            upstream_latency: None,
            consumer: None,
            trace: None,
            export_span: false,
            upstream_failure: None,
            complete: false,
            bytes_out: 0,
            finished: started,
        }
    }

    /// Arrival to the end of the response body.
    pub fn total(&self) -> Duration {
        self.finished.saturating_duration_since(self.started)
    }

    /// The W3C trace id, when tracing knows one.
    pub fn trace_id(&self) -> Option<[u8; 16]> {
        self.trace.map(|t| t.trace_id.0.to_be_bytes())
    }

    /// Who failed, if the status is an error.
    pub fn error_side(&self) -> Option<ErrorSide> {
        ErrorSide::of(self.status, self.upstream_latency.is_some())
    }
}

/// Where finished requests' records go: the access log, the OTLP span exporter, either or both.
/// A gateway with neither makes no record at all.
#[derive(Debug, Default)]
pub struct RecordSinks {
    /// The access log (`None`: off).
    pub log: Option<Arc<AccessLog>>,
    /// The span exporter (`None`: `[tracing] otlp_endpoint` not set; always `None` in a
    /// gateway built without the `otlp` feature).
    pub spans: Option<SpanExport>,
}

pin_project_lite::pin_project! {
    /// A response body that hands the request's record to the access log once it is finished.
    /// The record is completed where it lies (the end's time, the bytes, how it ended), then
    /// taken out of its box and moved into the access log's buffer. It is boxed: the response
    /// is moved about ten times on its way to the connection, each move a copy of its bytes,
    /// and the record (about 290 bytes) would double them, for every request whether a sink
    /// wants the record or not (docs/benchmarks.md, "ninth pass").
    pub struct LoggedBody<B> {
        #[pin]
        inner: B,
        bytes: u64,
        // An empty body may be dropped without ever being polled; that is still complete.
        empty: bool,
        record: Option<Box<AccessRecord>>,
        sinks: Option<Arc<RecordSinks>>,
    }

    impl<B> PinnedDrop for LoggedBody<B> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            finish(this.record, this.sinks, *this.bytes, *this.empty);
        }
    }
}

impl<B: crate::proxy::field_lines::CarriesFields> crate::proxy::field_lines::CarriesFields
    for LoggedBody<B>
{
    fn fields_as_received(&self) -> Option<&crate::proxy::field_lines::FieldLines> {
        self.inner.fields_as_received()
    }
}

impl<B: Body> LoggedBody<B> {
    /// Wraps `inner`; `record` is `None` when no sink wants it (`sinks` is then not used).
    pub fn new(inner: B, record: Option<AccessRecord>, sinks: &Arc<RecordSinks>) -> Self {
        Self {
            empty: inner.is_end_stream(),
            inner,
            bytes: 0,
            sinks: record.is_some().then(|| sinks.clone()),
            record: record.map(Box::new),
        }
    }
}

/// Completes the record in `slot` (if it is still there) and hands it to the sinks, leaving
/// `None`: the span is ended from the record where it lies, and the access log moves it
/// from its box into its buffer.
fn finish(
    slot: &mut Option<Box<AccessRecord>>,
    sinks: &Option<Arc<RecordSinks>>,
    bytes: u64,
    complete: bool,
) {
    let (Some(record), Some(sinks)) = (slot.as_mut(), sinks) else {
        return;
    };
    // The one clock read of the end: the writer derives the wall-clock time from it.
    record.finished = crate::server::clock::now().into_std();
    record.bytes_out = bytes;
    record.complete = complete;
    // The span ends at the same moment as the record (and with the same duration).
    if let Some(spans) = &sinks.spans {
        spans.end(record);
    }
    match &sinks.log {
        Some(log) => log.send_from(&mut slot.take().map(|record| *record)),
        None => *slot = None,
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
                    finish(this.record, this.sinks, *this.bytes, true);
                }
            }
            Poll::Ready(None) => finish(this.record, this.sinks, *this.bytes, true),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_sides_follow_the_status_and_who_answered() {
        let side =
            |status: u16, relayed| ErrorSide::of(StatusCode::from_u16(status).unwrap(), relayed);
        assert_eq!(side(200, false), None);
        assert_eq!(side(304, true), None);
        for client in [400, 404, 405, 408, 413, 414, 431] {
            assert_eq!(side(client, false), Some(ErrorSide::Client), "{client}");
        }
        for policy in [401, 403, 429] {
            assert_eq!(side(policy, false), Some(ErrorSide::Policy), "{policy}");
        }
        for upstream in [502, 503, 504] {
            assert_eq!(
                side(upstream, false),
                Some(ErrorSide::Upstream),
                "{upstream}"
            );
        }
        assert_eq!(side(500, false), Some(ErrorSide::Gateway));
        assert_eq!(side(500, true), Some(ErrorSide::Upstream));
        for side in [
            ErrorSide::Client,
            ErrorSide::Policy,
            ErrorSide::Upstream,
            ErrorSide::Gateway,
        ] {
            assert_eq!(
                serde_json::to_string(&side).unwrap(),
                format!("\"{}\"", side.name())
            );
        }
    }

    #[test]
    fn model_routes_are_named_and_the_gateways_own_are_not() {
        assert_eq!(
            RouteRef::of(RouteKey::Wso2(2, 7)),
            Some(RouteRef::Wso2 {
                api: 2,
                resource: 7
            })
        );
        assert_eq!(
            RouteRef::of(RouteKey::Express(0, 3)),
            Some(RouteRef::Express {
                config: 0,
                route: 3
            })
        );
        for own in [RouteKey::Unrouted, RouteKey::Health, RouteKey::ApiKey] {
            assert_eq!(RouteRef::of(own), None);
        }
    }
}
