//! The built-in policies, one module each: its configuration (the spec held in the model,
//! always compiled, so the toolkit can build and check it) and, with the `server` feature, its
//! factory and per-request behaviour.
//!
//! A new policy touches its module, [`crate::model::PolicySpec`] and the toolkit's translation.

#[cfg(feature = "server")]
pub mod apikey;
#[cfg(feature = "server")]
pub mod authenticate;
pub mod basic_auth;
#[cfg(feature = "server")]
pub mod consumer_auth;
pub mod cors;
pub mod health;
pub mod introspect;
pub mod jwt;
pub mod key_auth;
pub mod log;
pub mod metrics;
pub mod proxy;
pub mod rate_limit;
pub mod scopes;
pub mod terminate;
pub mod throttling;
pub mod transformer;
pub mod unsupported;
pub mod validate;
