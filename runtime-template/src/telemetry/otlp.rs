//! OTLP export of the gateway's spans (`[tracing] otlp_endpoint`): one server span per sampled
//! request, with the ids the gateway already uses for W3C trace context
//! ([`crate::telemetry::trace_context`]), described by [`crate::telemetry::span`].
//!
//! The span is made when the request's access record is (the end of the response body, so the
//! span and the log line agree on the duration) and handed to the OpenTelemetry SDK's batch
//! span processor: a bounded queue (`otlp_queue`) drained by the SDK's own thread, which posts
//! batches of up to 512 spans as OTLP/HTTP protobuf every `otlp_interval_ms` (or as soon as a
//! batch is full). A span that finds the queue full is dropped: the SDK counts it, warns at the
//! first drop and logs the total when the gateway stops. The request path never waits for the
//! collector.
//!
//! The HTTP client is hyper's (rustls on ring, the upstreams' trust store), driven by the
//! gateway's tokio runtime: the SDK's thread hands each export to it and waits for its answer,
//! bounded by `otlp_timeout_ms`. A failing collector is reported once (a warning), and again
//! when it answers after that.
//!
//! Only in gateways built with the runtime's `otlp` feature; in the others [`SpanExport`] cannot
//! be made and [`start`] refuses a configuration that asks for it.

use crate::config::TracingConfig;
use crate::model::GatewayModel;

#[cfg(feature = "otlp")]
pub use enabled::{start, Shutdown, SpanExport};

#[cfg(not(feature = "otlp"))]
pub use disabled::{start, Shutdown, SpanExport};

/// The URL spans are posted to: `otlp_endpoint` as the collector's base URL with the OTLP/HTTP
/// traces path (`/v1/traces`) added, or as it is when it already ends with that path.
///
/// # Errors
/// A message naming the setting when the URL is not an `http://` or `https://` URL with a host.
pub fn traces_url(endpoint: &str) -> Result<String, String> {
    let url = if endpoint.trim_end_matches('/').ends_with("/v1/traces") {
        endpoint.to_string()
    } else {
        format!("{}/v1/traces", endpoint.trim_end_matches('/'))
    };
    let uri: http::Uri = url
        .parse()
        .map_err(|e| format!("[tracing] otlp_endpoint = {endpoint:?} is not a URL: {e}"))?;
    let scheme_ok = matches!(uri.scheme_str(), Some("http" | "https"));
    if !scheme_ok || uri.host().is_none_or(str::is_empty) {
        return Err(format!(
            "[tracing] otlp_endpoint = {endpoint:?} is not an http:// or https:// URL with a host: use for example \"http://otel-collector:4318\""
        ));
    }
    Ok(url)
}

/// `otlp_headers` with `${VAR}`s substituted from `env`, checked as HTTP headers.
///
/// # Errors
/// A message naming the header at fault (a missing variable, a bad name or value).
pub fn export_headers(
    config: &TracingConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<http::HeaderMap, String> {
    let mut headers = http::HeaderMap::new();
    for (name, value) in &config.otlp_headers {
        let value = crate::env_template::expand(value, env)
            .map_err(|e| format!("[tracing] otlp_headers.{name}: {e}"))?;
        let header = http::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("[tracing] otlp_headers: {name:?} is not an HTTP header name"))?;
        let value = http::HeaderValue::from_str(&value).map_err(|_| {
            format!(
                "[tracing] otlp_headers.{name}: the value is not a valid HTTP header value (control characters?)"
            )
        })?;
        headers.insert(header, value);
    }
    Ok(headers)
}

/// The resource's `service.name`: `service_name`, else the project's name.
pub fn service_name(config: &TracingConfig, model: &GatewayModel) -> String {
    if config.service_name.is_empty() {
        model.project.clone()
    } else {
        config.service_name.clone()
    }
}

#[cfg(not(feature = "otlp"))]
mod disabled {
    use super::{GatewayModel, TracingConfig};
    use crate::access_log::AccessRecord;

    /// Never made: this gateway was built without the `otlp` feature.
    #[derive(Debug)]
    pub enum SpanExport {}

    impl SpanExport {
        /// Unreachable (no value exists).
        pub fn end(&self, _record: &AccessRecord) {
            match *self {}
        }

        /// Unreachable (no value exists).
        pub fn shutdown_handle(&self) -> Shutdown {
            match *self {}
        }
    }

    /// Never made.
    #[derive(Debug)]
    pub enum Shutdown {}

    impl Shutdown {
        /// Unreachable (no value exists).
        pub async fn run(self) {
            match self {}
        }
    }

    /// No export; an error when the settings ask for one (a binary built before
    /// `otlp_endpoint` was set, or the endpoint given only at start-up).
    ///
    /// # Errors
    /// The message says which setting and to run `micro-gw build` again.
    pub fn start(
        config: &TracingConfig,
        _model: &GatewayModel,
        _env: &dyn Fn(&str) -> Option<String>,
        _tls: rustls::ClientConfig,
    ) -> Result<Option<SpanExport>, String> {
        if config.otlp_endpoint.is_empty() {
            return Ok(None);
        }
        Err(format!(
            "[tracing] otlp_endpoint = {:?} (conf/micro-gw.toml, MGW_TRACING_OTLP_ENDPOINT or --tracing.otlp_endpoint) asks for OTLP export, but this gateway was built without it (the runtime's `otlp` feature): set otlp_endpoint in conf/micro-gw.toml and run `micro-gw build` again, or remove the setting",
            config.otlp_endpoint
        ))
    }
}

#[cfg(feature = "otlp")]
mod enabled {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, SystemTime};

    use bytes::Bytes;
    use http_body_util::{BodyExt, Full, Limited};
    use hyper_util::client::legacy::connect::HttpConnector;
    use hyper_util::client::legacy::Client;
    use opentelemetry::trace::{SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceState};
    use opentelemetry::{InstrumentationScope, KeyValue, Value};
    use opentelemetry_http::{HttpClient, HttpError};
    use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
    use opentelemetry_sdk::trace::{
        BatchConfigBuilder, BatchSpanProcessor, SpanData, SpanEvents, SpanLinks, SpanProcessor,
    };
    use opentelemetry_sdk::Resource;

    use super::{GatewayModel, TracingConfig};
    use crate::access_log::AccessRecord;
    use crate::telemetry::span::{
        route_names, server_span, AttributeValue, RouteNames, SpanStatus,
    };

    /// The SDK's largest batch (its `OTEL_BSP_MAX_EXPORT_BATCH_SIZE` default).
    const MAX_BATCH: usize = 512;
    /// The most of a collector's answer that is read (its body is not used).
    const MAX_ANSWER_BYTES: usize = 64 * 1024;

    /// Ends requests' spans into the batch span processor.
    #[derive(Debug)]
    pub struct SpanExport {
        processor: Arc<BatchSpanProcessor>,
        routes: RouteNames,
        scope: InstrumentationScope,
        timeout: Duration,
    }

    impl SpanExport {
        /// Queues the span of `record` for export, when it has one (`record.export_span`:
        /// sampled and traced); never blocks (a full queue drops the span). Called when the
        /// response ends: the span's end is the wall clock now, its start the record's
        /// duration before.
        pub fn end(&self, record: &AccessRecord) {
            let Some(trace) = record.trace.filter(|_| record.export_span) else {
                return;
            };
            let described = server_span(record, &self.routes);
            let attributes = described
                .attributes
                .into_iter()
                .map(|(key, value)| {
                    let value = match value {
                        AttributeValue::Str(s) => Value::from(s.to_string()),
                        AttributeValue::Owned(s) => Value::from(s),
                        AttributeValue::Int(i) => Value::I64(i),
                    };
                    KeyValue::new(key, value)
                })
                .collect();
            let end_time = SystemTime::now();
            let start_time = end_time.checked_sub(record.total()).unwrap_or(end_time);
            self.processor.on_end(SpanData {
                span_context: SpanContext::new(
                    opentelemetry::trace::TraceId::from(trace.trace_id.0),
                    SpanId::from(trace.span_id.0),
                    TraceFlags::SAMPLED,
                    false,
                    TraceState::NONE,
                ),
                parent_span_id: trace
                    .parent_id
                    .map_or(SpanId::INVALID, |p| SpanId::from(p.0)),
                parent_span_is_remote: trace.parent_id.is_some(),
                span_kind: SpanKind::Server,
                name: described.name.into(),
                start_time,
                end_time,
                attributes,
                dropped_attributes_count: 0,
                events: SpanEvents::default(),
                links: SpanLinks::default(),
                status: match described.status {
                    SpanStatus::Error => Status::error(""),
                    SpanStatus::Unset => Status::Unset,
                },
                instrumentation_scope: self.scope.clone(),
            });
        }

        /// What flushes the queued spans when the gateway stops.
        pub fn shutdown_handle(&self) -> Shutdown {
            Shutdown {
                processor: self.processor.clone(),
                timeout: self.timeout,
            }
        }
    }

    /// Flushes the queue and stops the SDK's thread, at exit.
    #[derive(Debug)]
    pub struct Shutdown {
        processor: Arc<BatchSpanProcessor>,
        timeout: Duration,
    }

    impl Shutdown {
        /// Exports what is queued and stops, within `otlp_timeout_ms` (plus a little for the
        /// thread to stop); spans still queued after that are lost. Must run on the gateway's
        /// runtime, whose client sends the last batch.
        pub async fn run(self) {
            let timeout = self.timeout;
            let processor = self.processor;
            let stop =
                tokio::task::spawn_blocking(move || processor.shutdown_with_timeout(timeout));
            match tokio::time::timeout(timeout + Duration::from_millis(500), stop).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(err))) => {
                    tracing::warn!("OTLP export: the last spans were not all sent: {err}")
                }
                Ok(Err(_)) | Err(_) => tracing::warn!(
                    "OTLP export: the last spans were not sent within {} ms",
                    timeout.as_millis()
                ),
            }
        }
    }

    /// Starts the exporter when `otlp_endpoint` is set. Runs inside the gateway's runtime
    /// (the exporter's client uses it).
    ///
    /// # Errors
    /// A message naming the setting at fault.
    pub fn start(
        config: &TracingConfig,
        model: &GatewayModel,
        env: &dyn Fn(&str) -> Option<String>,
        tls: rustls::ClientConfig,
    ) -> Result<Option<SpanExport>, String> {
        if config.otlp_endpoint.is_empty() {
            return Ok(None);
        }
        let endpoint = crate::env_template::expand(&config.otlp_endpoint, env)
            .map_err(|e| format!("[tracing] otlp_endpoint: {e}"))?;
        let url = super::traces_url(&endpoint)?;
        let headers = super::export_headers(config, env)?;
        let timeout = Duration::from_millis(config.otlp_timeout_ms);
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(timeout));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = HyperExport {
            client: Client::builder(hyper_util::rt::TokioExecutor::new()).build(https),
            runtime: tokio::runtime::Handle::current(),
            timeout,
            headers,
            url: url.clone(),
            failing: Arc::new(AtomicBool::new(false)),
        };
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_http_client(client)
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(url.clone())
            .with_timeout(timeout)
            .build()
            .map_err(|e| format!("[tracing] otlp_endpoint: cannot make the exporter: {e}"))?;
        let batch = BatchConfigBuilder::default()
            .with_max_queue_size(config.otlp_queue)
            .with_max_export_batch_size(MAX_BATCH.min(config.otlp_queue))
            .with_scheduled_delay(Duration::from_millis(config.otlp_interval_ms))
            .build();
        let mut processor = BatchSpanProcessor::builder(exporter)
            .with_batch_config(batch)
            .build();
        let service = super::service_name(config, model);
        processor.set_resource(
            &Resource::builder_empty()
                .with_service_name(service.clone())
                .with_attributes([KeyValue::new("service.version", crate::VERSION)])
                .build(),
        );
        tracing::info!(
            "OTLP export of sampled requests' spans to {url} as service {service:?} (queue {}, every {} ms)",
            config.otlp_queue,
            config.otlp_interval_ms
        );
        Ok(Some(SpanExport {
            processor: Arc::new(processor),
            routes: route_names(model),
            scope: InstrumentationScope::builder("micro-gw")
                .with_version(crate::VERSION)
                .build(),
            timeout,
        }))
    }

    /// The exporter's HTTP client: hyper on the gateway's runtime.
    struct HyperExport {
        client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
        runtime: tokio::runtime::Handle,
        timeout: Duration,
        /// `otlp_headers`, added to every request.
        headers: http::HeaderMap,
        url: String,
        /// The last export failed (a warning was written).
        failing: Arc<AtomicBool>,
    }

    impl std::fmt::Debug for HyperExport {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            // The headers may hold a vendor's key: never printed.
            f.debug_struct("HyperExport")
                .field("url", &self.url)
                .field("timeout", &self.timeout)
                .finish_non_exhaustive()
        }
    }

    #[async_trait::async_trait]
    impl HttpClient for HyperExport {
        async fn send_bytes(
            &self,
            request: http::Request<Bytes>,
        ) -> Result<http::Response<Bytes>, HttpError> {
            let (mut parts, body) = request.into_parts();
            for (name, value) in &self.headers {
                parts.headers.insert(name.clone(), value.clone());
            }
            let request = http::Request::from_parts(parts, Full::new(body));
            let client = self.client.clone();
            let exchange = async move {
                let response = client.request(request).await?;
                let (parts, body) = response.into_parts();
                let body = Limited::new(body, MAX_ANSWER_BYTES).collect().await?;
                Ok::<_, HttpError>(http::Response::from_parts(parts, body.to_bytes()))
            };
            let timeout = self.timeout;
            // The SDK's thread has no runtime: the exchange runs on the gateway's.
            let task = self
                .runtime
                .spawn(async move { tokio::time::timeout(timeout, exchange).await });
            let result = match task.await {
                Ok(Ok(Ok(response))) if response.status().is_success() => Ok(response),
                Ok(Ok(Ok(response))) => Err(format!("answered {}", response.status())),
                Ok(Ok(Err(err))) => Err(err.to_string()),
                Ok(Err(_)) => Err(format!("no answer within {} ms", timeout.as_millis())),
                Err(err) => Err(format!("the export task failed: {err}")),
            };
            match result {
                Ok(response) => {
                    if self.failing.swap(false, Ordering::Relaxed) {
                        tracing::info!("OTLP export to {} works again", self.url);
                    }
                    Ok(response)
                }
                Err(message) => {
                    if !self.failing.swap(true, Ordering::Relaxed) {
                        tracing::warn!(
                            "OTLP export to {} failed: {message}; the spans of this batch are dropped (requests are not affected); next warning when it works again",
                            self.url
                        );
                    }
                    Err(message.into())
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_traces_path_is_added_to_a_base_url() {
        assert_eq!(
            traces_url("http://collector:4318").unwrap(),
            "http://collector:4318/v1/traces"
        );
        assert_eq!(
            traces_url("https://otlp.example.com/").unwrap(),
            "https://otlp.example.com/v1/traces"
        );
        assert_eq!(
            traces_url("https://vendor.example/otlp/v1/traces").unwrap(),
            "https://vendor.example/otlp/v1/traces"
        );
        for bad in ["collector:4318", "ftp://c/", "http://", "not a url"] {
            let err = traces_url(bad).unwrap_err();
            assert!(err.contains("otlp_endpoint"), "{bad}: {err}");
        }
    }

    #[test]
    fn headers_take_variables_and_are_checked() {
        let mut config = TracingConfig::default();
        config
            .otlp_headers
            .insert("x-api-key".into(), "${VENDOR_KEY}".into());
        let env = |name: &str| (name == "VENDOR_KEY").then(|| "s3cret".to_string());
        let headers = export_headers(&config, &env).unwrap();
        assert_eq!(headers["x-api-key"], "s3cret");
        let err = export_headers(&config, &|_: &str| None).unwrap_err();
        assert!(
            err.contains("otlp_headers.x-api-key") && err.contains("VENDOR_KEY"),
            "{err}"
        );
        config.otlp_headers.insert("bad name".into(), "v".into());
        assert!(export_headers(&config, &env)
            .unwrap_err()
            .contains("\"bad name\""));
    }

    #[cfg(not(feature = "otlp"))]
    #[test]
    fn a_gateway_without_the_feature_refuses_an_endpoint() {
        let model: GatewayModel = serde_json::from_value(serde_json::json!({
            "format": crate::model::MODEL_FORMAT, "project": "p", "apis": [], "endpoints": [],
            "pipelines": []
        }))
        .unwrap();
        let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
        let off = TracingConfig::default();
        assert!(start(&off, &model, &|_: &str| None, tls.clone())
            .unwrap()
            .is_none());
        let on = TracingConfig {
            otlp_endpoint: "http://collector:4318".into(),
            ..TracingConfig::default()
        };
        let err = start(&on, &model, &|_: &str| None, tls).unwrap_err();
        assert!(
            err.contains("otlp_endpoint") && err.contains("run `micro-gw build` again"),
            "{err}"
        );
    }
}
