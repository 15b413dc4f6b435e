//! The log phase's telemetry: what a request leaves behind for operators besides its
//! response (trace context today; metrics and the access log's structured form belong here
//! too).

pub mod trace_context;
