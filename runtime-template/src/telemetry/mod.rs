//! What the gateway tells operators about itself, written in the log phase of the request path
//! (DESIGN.md, "The request path: pipelines"): Prometheus metrics ([`metrics`]) served on their
//! own listener ([`exposition`]).

pub mod exposition;
pub mod metrics;
