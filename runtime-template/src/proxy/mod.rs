//! Forwarding to upstream endpoints over pooled keep-alive connections.

pub mod body;
pub mod headers;
pub mod upstream;

use std::time::{Duration, Instant};

use http::request::Parts;
use http::{Request, Response, Version};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::config::{LimitsConfig, UpstreamConfig};
use crate::fault::{self, Fault};
use body::{BodyLimitError, BodyLimits, BodySlot, ReclaimableBody};
use upstream::Upstream;

/// The pooled upstream client.
pub type UpstreamClient = Client<HttpsConnector<HttpConnector>, ReclaimableBody>;

/// Builds the client: HTTP and HTTPS (rustls, trust from conf), keep-alive pooling.
pub fn client(
    config: &UpstreamConfig,
    limits: &LimitsConfig,
    tls: rustls::ClientConfig,
) -> UpstreamClient {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(Duration::from_millis(config.connect_timeout_ms)));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(config.pool_idle_timeout_seconds))
        .pool_max_idle_per_host(config.pool_max_idle_per_host)
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .http1_max_buf_size(limits.max_upstream_header_bytes)
        .build(https)
}

/// A forwarded response and what the access log needs to know about it.
pub struct Forwarded {
    /// The upstream's response (hop-by-hop headers already removed).
    pub response: Response<Incoming>,
    /// The URL that answered.
    pub target: String,
    /// Time to the upstream's response headers.
    pub latency: Duration,
}

/// A failed forward: the fault to answer with and the last URL tried.
pub struct ForwardError {
    /// The client-facing fault.
    pub fault: Fault,
    /// The URL tried last.
    pub target: Option<String>,
}

/// Sends the request to `upstream`. `rest` is the raw path after the base path; the query is
/// taken from the request.
/// When a URL refuses the connection before any of the body was sent, the next URL is tried
/// (failover, and load balancing past a dead node); everything shares one deadline.
pub async fn forward(
    client: &UpstreamClient,
    upstream: &Upstream,
    mut parts: Parts,
    body: Incoming,
    body_limits: BodyLimits,
    rest: &str,
) -> Result<Forwarded, ForwardError> {
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + upstream.timeout;
    parts.version = Version::HTTP_11;
    let count = upstream.targets.len();
    let first = upstream.first();
    let query = parts.uri.query().map(str::to_string);
    let slot = BodySlot::new(body, body_limits);
    // The URL tried last, cloned only when an error needs it.
    let mut last: Option<&upstream::Target> = None;
    for attempt in 0..count {
        let target = &upstream.targets[(first + attempt) % count];
        last = Some(target);
        let uri = target
            .uri_for(rest, query.as_deref())
            .map_err(|_| ForwardError {
                fault: fault::UPSTREAM_UNREACHABLE,
                target: last.map(|t| t.display.clone()),
            })?;
        let more = attempt + 1 < count;
        let mut request = Request::from_parts(
            if more {
                clone_parts(&parts)
            } else {
                std::mem::replace(&mut parts, empty_parts())
            },
            slot.attempt(),
        );
        *request.uri_mut() = uri;
        match tokio::time::timeout_at(deadline, client.request(request)).await {
            Err(_elapsed) => {
                return Err(ForwardError {
                    fault: fault::UPSTREAM_TIMEOUT,
                    target: last.map(|t| t.display.clone()),
                })
            }
            Ok(Ok(mut response)) => {
                headers::strip_hop_by_hop(response.headers_mut());
                return Ok(Forwarded {
                    response,
                    target: target.display.clone(),
                    latency: started.elapsed(),
                });
            }
            Ok(Err(err)) => {
                if let Some(limit) = cause::<BodyLimitError>(&err) {
                    return Err(ForwardError {
                        fault: match limit {
                            BodyLimitError::TooLarge => fault::PAYLOAD_TOO_LARGE,
                            BodyLimitError::Idle => fault::REQUEST_TIMEOUT,
                        },
                        target: last.map(|t| t.display.clone()),
                    });
                }
                let retry = err.is_connect() && more && slot.is_untouched();
                tracing::warn!(
                    endpoint = %upstream.name,
                    url = %target.display,
                    "upstream request failed: {}{}",
                    error_chain(&err),
                    if retry { "; trying the next URL" } else { "" }
                );
                if !retry {
                    break;
                }
            }
        }
    }
    Err(ForwardError {
        fault: fault::UPSTREAM_UNREACHABLE,
        target: last.map(|t| t.display.clone()),
    })
}

fn empty_parts() -> Parts {
    Request::new(()).into_parts().0
}

fn clone_parts(parts: &Parts) -> Parts {
    let mut request = Request::new(());
    *request.method_mut() = parts.method.clone();
    *request.uri_mut() = parts.uri.clone();
    *request.version_mut() = parts.version;
    *request.headers_mut() = parts.headers.clone();
    request.into_parts().0
}

/// The first error of type `E` in the chain of causes.
fn cause<E: std::error::Error + Copy + 'static>(
    err: &(dyn std::error::Error + 'static),
) -> Option<E> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = current {
        if let Some(found) = e.downcast_ref::<E>() {
            return Some(*found);
        }
        current = e.source();
    }
    None
}

/// An error and its sources, joined with `: ` (for log lines).
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
