//! `terminate`: answer with a fixed status and message (Express Gateway 1.16
//! `lib/policies/terminate`: `res.status(statusCode).send(message)`, so `text/html`).
//!
//! With the `server` feature this module also holds Express 4's own answers, as pure
//! functions returning an [`Answer`] (status, headers, body) for the engine: `res.send` of a
//! string ([`express_send`]), `res.sendStatus` ([`express_send_status`]) and the final
//! handler's 404 `Cannot GET /path` ([`express_not_found`]).

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

#[cfg(feature = "server")]
pub mod express;

#[cfg(feature = "server")]
pub use express::{
    express_not_found, express_send, express_send_status, weak_etag, Answer, TerminateError,
    TerminatePolicy,
};
