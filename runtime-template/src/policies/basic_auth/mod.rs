//! Express Gateway's `basic-auth` policy (EG 1.16 `lib/policies/basic-auth`, passport-http
//! 0.3): `Authorization: Basic base64(id:password)`, the id being a username, a user's id or an
//! application's id; the password checked with bcrypt against the consumer's basic-auth
//! credential; 401 for anything wrong, a missing endpoint scope included.

use serde::{Deserialize, Serialize};

/// The action of a `basic-auth` step.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BasicAuthSpec {
    /// `passThrough`: a request without valid credentials continues anonymous.
    pub pass_through: bool,
}

#[cfg(feature = "server")]
mod step;
#[cfg(feature = "server")]
pub use step::BasicAuthStep;
