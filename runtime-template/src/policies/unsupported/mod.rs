//! Steps of policies this version does not run yet (`basic-auth`, `jwt`, `scopes`,
//! `rate-limit`, `metrics`, ... until their issues land). `micro-gw build` refuses them unless
//! `--allow-unsupported` is given; then each behaves as the build announced, failing closed for
//! credentials.

use serde::{Deserialize, Serialize};

/// What an unsupported step does to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UnsupportedBehaviour {
    /// Nothing: the step is skipped (policies that only observe or shape traffic, such as
    /// `metrics` and `rate-limit`).
    Skip,
    /// As an authentication policy that accepts no credential: `401 Unauthorized`, or, with
    /// `passThrough: true`, the request continues anonymous.
    NoCredentialAccepted {
        /// Express Gateway's `passThrough`.
        pass_through: bool,
    },
    /// As a policy that checks the consumer's scopes and finds none: `401 Unauthorized` (or
    /// `403` in the WSO2 dialect).
    Refuse,
}

/// The step kept in place of an unsupported policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnsupportedSpec {
    /// The policy's name as written in the configuration.
    pub policy: String,
    /// Its behaviour until it is supported.
    pub behaviour: UnsupportedBehaviour,
}

#[cfg(feature = "server")]
mod step;
#[cfg(feature = "server")]
pub use step::UnsupportedStep;
