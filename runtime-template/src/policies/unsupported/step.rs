//! An unsupported step at run time: what the build announced.

use http::header::{HeaderName, HeaderValue};
use http::Response;

use super::{UnsupportedBehaviour, UnsupportedSpec};
use crate::model::Dialect;
use crate::pipeline::step::Flow;
use crate::pipeline::Context;
use crate::proxy::body::GatewayBody;

/// The response header Express Gateway sets when a pass-through authentication fails.
const EG_CONSUMER_ID: HeaderName = HeaderName::from_static("eg-consumer-id");

/// A ready unsupported step.
pub struct UnsupportedStep {
    behaviour: UnsupportedBehaviour,
}

impl UnsupportedStep {
    /// The step for `spec`.
    pub fn new(spec: &UnsupportedSpec) -> Self {
        Self {
            behaviour: spec.behaviour,
        }
    }

    /// A pass-through authentication that accepted nothing marks the response, as EG does.
    pub fn has_response_phase(&self) -> bool {
        matches!(
            self.behaviour,
            UnsupportedBehaviour::NoCredentialAccepted { pass_through: true }
        )
    }

    /// Skips, lets the request go on anonymous, or refuses it.
    pub fn request(&self, dialect: Dialect, context: &Context<'_>) -> Flow {
        match self.behaviour {
            UnsupportedBehaviour::Skip => Flow::Continue,
            UnsupportedBehaviour::NoCredentialAccepted { pass_through: true } => Flow::Continue,
            UnsupportedBehaviour::NoCredentialAccepted {
                pass_through: false,
            } => Flow::Respond(crate::respond::unauthorized(dialect)),
            UnsupportedBehaviour::Refuse => {
                let _ = context;
                Flow::Respond(crate::respond::unauthorized(dialect))
            }
        }
    }

    /// Adds `eg-consumer-id: anonymous` (EG `getCommonAuthCallback` with `passThrough`).
    pub fn response(&self, response: &mut Response<GatewayBody>) {
        if !self.has_response_phase() {
            return;
        }
        response
            .headers_mut()
            .insert(EG_CONSUMER_ID, HeaderValue::from_static("anonymous"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only a pass-through authentication marks the response; a skipped `metrics` step that ran
    /// before a CORS preflight must not (found with scripts/eg-diff on Kargo's pipelines).
    #[test]
    fn only_pass_through_marks_the_response() {
        let mark = |behaviour| {
            let step = UnsupportedStep { behaviour };
            let mut response = Response::new(GatewayBody::from(bytes::Bytes::new()));
            step.response(&mut response);
            response.headers().contains_key("eg-consumer-id")
        };
        assert!(mark(UnsupportedBehaviour::NoCredentialAccepted {
            pass_through: true
        }));
        assert!(!mark(UnsupportedBehaviour::NoCredentialAccepted {
            pass_through: false
        }));
        assert!(!mark(UnsupportedBehaviour::Skip));
        assert!(!mark(UnsupportedBehaviour::Refuse));
    }
}
