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

use crate::expression::{Expression, ExpressionError};

impl LogSpec {
    /// Checks the message template, as the toolkit does when it builds a project; the error's
    /// column counts in the message text.
    pub fn check(&self) -> Result<(), ExpressionError> {
        Expression::parse_template(&self.message).map(drop)
    }
}

#[cfg(feature = "server")]
pub use runtime::{LogPolicy, TARGET};

#[cfg(feature = "server")]
mod runtime {
    use super::LogSpec;
    use crate::expression::{EvalError, Expression, ExpressionError, RequestScope};

    /// The `tracing` target log messages are written under.
    pub const TARGET: &str = "log_policy";

    /// A ready `log` step.
    ///
    /// ```ignore
    /// let policy = LogPolicy::new(&spec)?;   // at start-up
    /// policy.write(&scope);                  // per request; never fails the request
    /// ```
    #[derive(Debug, Clone)]
    pub struct LogPolicy {
        message: Expression,
    }

    impl LogPolicy {
        /// Parses the message template (EG `evaluateAsTemplateString`: the text in backticks).
        pub fn new(spec: &LogSpec) -> Result<Self, ExpressionError> {
            Ok(Self {
                message: Expression::parse_template(&spec.message)?,
            })
        }

        /// The message for one request (`${req.method} ${req.originalUrl}` → `GET /x?y=1`).
        pub fn render(&self, scope: &RequestScope<'_>) -> Result<String, EvalError> {
            Ok(self.message.eval_string(scope)?.into_owned())
        }

        /// Writes the message at info level under [`TARGET`], or, when the template fails
        /// (`req.user.id` on an anonymous request), `failed to build log message: <error>` at
        /// error level, as EG does.
        pub fn write(&self, scope: &RequestScope<'_>) {
            match self.render(scope) {
                Ok(message) => tracing::info!(target: TARGET, "{message}"),
                Err(e) => tracing::error!(target: TARGET, "failed to build log message: {e}"),
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use std::net::{IpAddr, Ipv4Addr};

        use super::*;

        fn render(message: &str) -> Result<String, EvalError> {
            // EG test/policies/log: req.url '/test', method GET.
            let parts = http::Request::get("/test").body(()).unwrap().into_parts().0;
            let mut scope = RequestScope::new(&parts, IpAddr::V4(Ipv4Addr::LOCALHOST));
            scope.request_id = "4pL2gD0sYk1m8r3Qx9zT0a";
            LogPolicy::new(&LogSpec {
                message: message.into(),
            })
            .unwrap()
            .render(&scope)
        }

        #[test]
        fn eg_log_policy_examples() {
            assert_eq!(
                render("${req.url} ${egContext.req.method}").unwrap(),
                "/test GET"
            );
            assert!(render("${requestID}").unwrap().len() > 10);
            assert!(render("${egContext.requestID}").unwrap().len() > 10);
            assert_eq!(
                render("This is a log message").unwrap(),
                "This is a log message"
            );
            assert_eq!(
                render("${req.user.id}").unwrap_err().to_string(),
                "Cannot read properties of undefined (reading 'id')"
            );
        }

        #[test]
        fn eg_log_policy_global_context_is_refused_when_building() {
            // EG's "should fail to access global context": `${process.exit(1)}` fails at run
            // time there; here it never gets into a gateway.
            let spec = LogSpec {
                message: "${process.exit(1)}".into(),
            };
            let e = spec.check().unwrap_err();
            assert_eq!(e.column, 3);
            assert!(
                e.message.contains("unknown name `process`"),
                "{}",
                e.message
            );
            assert!(LogPolicy::new(&spec).is_err());
            // `${res.test}` (the mock property of EG's test) is not something a real response has.
            assert!(LogSpec {
                message: "${res.test}".into()
            }
            .check()
            .is_err());
        }
    }
}
