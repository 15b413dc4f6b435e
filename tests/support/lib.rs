//! Test support for micro-gw's end-to-end tests: a real backend, a harness that drives the
//! real toolkit and gateway processes, and a small HTTP client. Also builds
//! `mgw-echo-backend`, used by the quickstart and the benchmarks.

pub mod backend;
pub mod client;
pub mod fake_apim;
pub mod h2raw;
pub mod harness;
pub mod raw;
pub mod raw_backend;
pub mod terminal;
pub mod tokens;
