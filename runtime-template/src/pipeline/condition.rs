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
    /// EG's `json-schema`: the parsed body ([`Context::body_json`]) satisfies the schema.
    #[cfg(feature = "validation")]
    JsonSchema {
        /// The compiled schema.
        schema: Box<crate::policies::validate::ajv::AjvSchema>,
        /// `logErrors`.
        log_errors: bool,
    },
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
            #[cfg(feature = "validation")]
            Condition::JsonSchema { schema, log_errors } => ReadyCondition::JsonSchema {
                schema: Box::new(
                    crate::policies::validate::ajv::AjvSchema::compile(schema, "schema").map_err(
                        |e| ConditionError {
                            name: "json-schema",
                            reason: e.to_string(),
                        },
                    )?,
                ),
                log_errors: *log_errors,
            },
            #[cfg(not(feature = "validation"))]
            Condition::JsonSchema { .. } => {
                return Err(ConditionError {
                    name: "json-schema",
                    reason: "this gateway was built without the runtime's `validation` feature: run `micro-gw build` again".into(),
                })
            }
        })
    }

    /// Whether evaluating it needs the parsed body in [`Context::body_json`].
    pub fn reads_body(&self) -> bool {
        match self {
            #[cfg(feature = "validation")]
            ReadyCondition::JsonSchema { .. } => true,
            ReadyCondition::AllOf(list) | ReadyCondition::OneOf(list) => {
                list.iter().any(ReadyCondition::reads_body)
            }
            ReadyCondition::Not(inner) => inner.reads_body(),
            _ => false,
        }
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
                .or_else(|| parts.uri.authority().map(crate::router::authority_host))
                .is_some_and(|host| glob.matches(host)),
            ReadyCondition::Authenticated => context.authenticated,
            ReadyCondition::Anonymous => !context.authenticated,
            #[cfg(feature = "validation")]
            ReadyCondition::JsonSchema { schema, log_errors } => {
                let empty = serde_json::Value::Object(serde_json::Map::new());
                let body = context.body_json.as_ref().unwrap_or(&empty);
                let holds = schema.holds(body);
                if !holds && *log_errors {
                    tracing::warn!(
                        "json-schema: the request body does not match: {}",
                        schema.problems(body)
                    );
                }
                holds
            }
        }
    }
}

/// Express's `req.url`: the path and query as received (after any earlier rewrite).
fn request_url(parts: &Parts) -> &str {
    parts.uri.path_and_query().map_or("/", |pq| pq.as_str())
}

#[cfg(all(test, feature = "validation"))]
mod tests {
    use super::*;
    use serde_json::json;

    fn ready(schema: serde_json::Value) -> ReadyCondition {
        ReadyCondition::new(&Condition::JsonSchema {
            schema,
            log_errors: true,
        })
        .unwrap()
    }

    fn holds(condition: &ReadyCondition, content_type: &str, body: &[u8]) -> bool {
        let request = http::Request::builder()
            .method("POST")
            .uri("/p")
            .header(http::header::CONTENT_TYPE, content_type)
            .body(())
            .unwrap();
        let (parts, ()) = request.into_parts();
        let mut context = Context::new(
            "127.0.0.1:1".parse().unwrap(),
            "http",
            std::time::Instant::now(),
            true,
            super::super::context::Matched::Builtin,
        );
        assert!(condition.reads_body());
        context.body_json = Some(super::super::express_body::parse(&parts.headers, body).unwrap());
        condition.holds(&parts, &context)
    }

    #[test]
    fn json_schema_holds_for_matching_json_and_form_bodies() {
        // EG's own test (`test/conditions.test.js`, "with a local schema").
        let person = ready(json!({"$id": "schema1", "type": "object",
            "properties": {"name": {"type": "string"}, "surname": {"type": "string"},
                           "age": {"type": "number"}},
            "required": ["name", "surname", "age"]}));
        let json = "application/json";
        assert!(holds(
            &person,
            json,
            br#"{"name":"Clark","surname":"Kent","age":30}"#
        ));
        assert!(!holds(
            &person,
            json,
            br#"{"name":"Clark","surname":"Kent"}"#
        ));
        assert!(!holds(&person, json, b""));
        // Form fields are strings; Ajv's coerceTypes reads `30` as the number.
        let form = "application/x-www-form-urlencoded";
        assert!(holds(&person, form, b"name=Clark&surname=Kent&age=30"));
        assert!(!holds(&person, form, b"name=Clark&surname=Kent&age=thirty"));
        // Another type is `{}`, which a schema without `required` accepts.
        assert!(!holds(&person, "text/plain", b"name=Clark"));
        let anything = ready(json!({"$id": "any", "type": "object"}));
        assert!(holds(&anything, "text/plain", b"not json"));
    }
}
