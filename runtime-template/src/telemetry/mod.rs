//! What the gateway tells operators about itself, written in the log phase of the request path
//! (DESIGN.md, "The request path: pipelines"): Prometheus metrics ([`metrics`]) served on their
//! own listener ([`exposition`]), W3C trace context ([`trace_context`]), and the requests'
//! server spans ([`span`]) exported over OTLP ([`otlp`], with the `otlp` feature).

pub mod exposition;
pub mod metrics;
pub mod otlp;
pub mod span;
pub mod trace_context;
