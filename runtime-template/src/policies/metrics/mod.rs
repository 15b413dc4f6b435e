//! Kargo's `metrics` policy (a plugin of Kargo's Express Gateway image,
//! `build/express-gateway/plugins/metrics.js`, on prom-client 10), built in: every response of a
//! pipeline with this step counts once in the counter `eg` with the labels `type` (`SUCCESS`
//! for 2xx, else `FAILED`), `status_code`, `consumer` (the request's `eg-consumer-id` header as
//! the authentication steps set it, else `anonymous`) and `api_endpoint`. The admin listener
//! serves them at `GET /metrics` in Prometheus' text format, named exactly `eg{...}` as Kargo's
//! dashboards read them.

use serde::{Deserialize, Serialize};

/// The action of a `metrics` step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSpec {
    /// The request header naming the consumer (the plugin's `consumerIdHeaderName`,
    /// `eg-consumer-id`).
    pub consumer_header: String,
}

impl Default for MetricsSpec {
    fn default() -> Self {
        Self {
            consumer_header: "eg-consumer-id".into(),
        }
    }
}

#[cfg(feature = "server")]
mod registry;
#[cfg(feature = "server")]
pub use registry::EgCounter;
