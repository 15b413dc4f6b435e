//! Conditions ready to evaluate: Express Gateway's predefined conditions
//! (`lib/conditions/predefined.js`, EG 1.16) with their patterns compiled at start-up.

use http::request::Parts;

use super::context::Context;
use crate::model::Condition;

/// A condition that cannot be made ready (its pattern does not compile).
#[derive(Debug, thiserror::Error)]
#[error("condition {name}: {reason}")]
pub struct ConditionError {
    /// The condition's name.
    pub name: &'static str,
    /// Why.
    pub reason: String,
}

/// A compiled [`Condition`].
#[derive(Debug)]
pub enum ReadyCondition {
    /// Constant.
    Constant(bool),
    /// Every operand holds.
    AllOf(Vec<ReadyCondition>),
    /// Some operand holds.
    OneOf(Vec<ReadyCondition>),
    /// The operand does not hold.
    Not(Box<ReadyCondition>),
    /// `req.url === path` (query string included).
    PathExact(String),
    /// A regular expression searched in `req.url`.
    PathMatch(crate::router::jsregex::JsRegex),
    /// One of these methods (exact, case-sensitive).
    Method(Vec<String>),
    /// A glob on the `Host` header (port included).
    HostMatch(crate::router::glob::Glob),
    /// A consumer was authenticated.
    Authenticated,
    /// No consumer was authenticated.
    Anonymous,
}

impl ReadyCondition {
    /// Compiles `condition`.
    pub fn new(condition: &Condition) -> Result<Self, ConditionError> {
        Ok(match condition {
            Condition::Always => ReadyCondition::Constant(true),
            Condition::Never => ReadyCondition::Constant(false),
            Condition::AllOf { conditions } => ReadyCondition::AllOf(
                conditions
                    .iter()
                    .map(ReadyCondition::new)
                    .collect::<Result<_, _>>()?,
            ),
            Condition::OneOf { conditions } => ReadyCondition::OneOf(
                conditions
                    .iter()
                    .map(ReadyCondition::new)
                    .collect::<Result<_, _>>()?,
            ),
            Condition::Not { condition } => {
                ReadyCondition::Not(Box::new(ReadyCondition::new(condition)?))
            }
            Condition::PathExact { path } => ReadyCondition::PathExact(path.clone()),
            Condition::PathMatch { pattern } => ReadyCondition::PathMatch(
                crate::router::jsregex::JsRegex::new(pattern).map_err(|e| ConditionError {
                    name: "pathMatch",
                    reason: e.to_string(),
                })?,
            ),
            Condition::Method { methods } => ReadyCondition::Method(methods.clone()),
            Condition::HostMatch { pattern } => {
                ReadyCondition::HostMatch(crate::router::glob::Glob::new(pattern).map_err(|e| {
                    ConditionError {
                        name: "hostMatch",
                        reason: e.to_string(),
                    }
                })?)
            }
            Condition::Authenticated => ReadyCondition::Authenticated,
            Condition::Anonymous => ReadyCondition::Anonymous,
        })
    }

    /// Whether the condition holds for this request now.
    pub fn holds(&self, parts: &Parts, context: &Context<'_>) -> bool {
        match self {
            ReadyCondition::Constant(value) => *value,
            ReadyCondition::AllOf(all) => all.iter().all(|c| c.holds(parts, context)),
            ReadyCondition::OneOf(any) => any.iter().any(|c| c.holds(parts, context)),
            ReadyCondition::Not(inner) => !inner.holds(parts, context),
            ReadyCondition::PathExact(path) => request_url(parts) == path,
            ReadyCondition::PathMatch(regex) => regex.is_match(request_url(parts)),
            ReadyCondition::Method(methods) => {
                methods.iter().any(|m| m.as_str() == parts.method.as_str())
            }
            ReadyCondition::HostMatch(glob) => parts
                .headers
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .or_else(|| parts.uri.authority().map(|a| a.as_str()))
                .is_some_and(|host| glob.matches(host)),
            ReadyCondition::Authenticated => context.authenticated,
            ReadyCondition::Anonymous => !context.authenticated,
        }
    }
}

/// Express's `req.url`: the path and query as received (after any earlier rewrite).
fn request_url(parts: &Parts) -> &str {
    parts.uri.path_and_query().map_or("/", |pq| pq.as_str())
}
