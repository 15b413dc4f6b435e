//! `terminate`: answer with a fixed status and message (Express Gateway 1.16
//! `lib/policies/terminate`: `res.status(statusCode).send(message)`, so `text/html`).

use serde::{Deserialize, Serialize};

/// Express Gateway's `terminate` action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TerminateSpec {
    /// `statusCode` (EG default 400).
    pub status: u16,
    /// `message` (EG default `Terminated`), sent as the body.
    pub message: String,
}

impl Default for TerminateSpec {
    fn default() -> Self {
        Self {
            status: 400,
            message: "Terminated".into(),
        }
    }
}
