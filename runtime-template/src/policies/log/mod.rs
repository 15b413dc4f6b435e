//! `log`: write a message built from a JavaScript template string (Express Gateway 1.16
//! `lib/policies/log`, logged at info level under `[EG:log-policy]`); never fails a request.

use serde::{Deserialize, Serialize};

/// Express Gateway's `log` action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSpec {
    /// `message`: a template string (`${req.method} ${req.originalUrl}`), checked by the toolkit
    /// with [`crate::expression`].
    pub message: String,
}
