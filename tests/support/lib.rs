//! Test support for micro-gw's end-to-end tests: a real backend, a harness that drives the
//! real toolkit and gateway processes, and a small HTTP client. Also builds
//! `mgw-echo-backend`, used by the quickstart and the benchmarks. Without the default feature
//! `harness` only [`backend`] is built: all that the echo backend needs.

pub mod backend;
#[cfg(feature = "harness")]
pub mod client;
#[cfg(feature = "harness")]
pub mod fake_apim;
#[cfg(feature = "harness")]
pub mod h2raw;
#[cfg(feature = "harness")]
pub mod harness;
#[cfg(feature = "harness")]
pub mod otlp;
#[cfg(feature = "harness")]
pub mod raw;
#[cfg(feature = "harness")]
pub mod raw_backend;
#[cfg(feature = "harness")]
pub mod sni;
#[cfg(feature = "harness")]
pub mod terminal;
#[cfg(feature = "harness")]
pub mod tokens;
