//! What the gateway tells operators about itself, written in the log phase of the request path
//! (DESIGN.md, "The request path: pipelines"): Prometheus metrics ([`metrics`]) served on their
//! own listener ([`exposition`]), and W3C trace context ([`trace_context`]).

pub mod exposition;
pub mod metrics;
pub mod trace_context;
