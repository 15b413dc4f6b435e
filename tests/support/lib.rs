//! Test support for micro-gw's end-to-end tests: a real backend, process guards and a
//! project harness. Also builds `mgw-echo-backend`, used by the quickstart and benchmarks.

pub mod backend;
