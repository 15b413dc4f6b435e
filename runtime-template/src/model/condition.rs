//! Express Gateway conditions (`lib/conditions/predefined.js` in EG 1.16): a step whose
//! condition is false is skipped and the pipeline carries on.

use serde::{Deserialize, Serialize};

/// A predicate on the request and the context, evaluated before a step runs.
///
/// Patterns (`pathMatch`, `hostMatch`) are compiled when the gateway starts; the toolkit has
/// already checked that they compile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "camelCase", deny_unknown_fields)]
pub enum Condition {
    /// Always true.
    Always,
    /// Always false.
    Never,
    /// True when every one of `conditions` is (and for an empty list).
    AllOf {
        /// The operands.
        conditions: Vec<Condition>,
    },
    /// True when at least one of `conditions` is.
    OneOf {
        /// The operands.
        conditions: Vec<Condition>,
    },
    /// The negation of `condition`.
    Not {
        /// The operand.
        condition: Box<Condition>,
    },
    /// `req.url === path`: the request target *with* its query string, compared exactly.
    PathExact {
        /// The target to compare with.
        path: String,
    },
    /// A JavaScript-compatible regular expression searched (not anchored) in the request
    /// target, query string included.
    PathMatch {
        /// The regular expression source.
        pattern: String,
    },
    /// The request method is one of `methods` (exact, case-sensitive, as EG).
    Method {
        /// Upper-case method names.
        methods: Vec<String>,
    },
    /// A minimatch glob on the `Host` header, port included when present; false without one.
    HostMatch {
        /// The glob.
        pattern: String,
    },
    /// An earlier step authenticated a consumer.
    Authenticated,
    /// No earlier step authenticated a consumer.
    Anonymous,
    /// EG's `json-schema` (`lib/conditions/json-schema.js`): the request body, parsed as
    /// Express's `json()` and `urlencoded({extended: true})` parsers read it (an empty object
    /// when there is none or it is of another type), satisfies `schema` under Ajv 6's rules
    /// (draft-07 unless `$schema` names draft-04 or -06; `coerceTypes` and `useDefaults`). The
    /// body is read under the 100 kB body-parser limit and forwarded as received. Needs the
    /// runtime's `validation` feature; the toolkit allows it only as a step's own condition
    /// (Express Gateway cannot evaluate it inside `allOf`, `oneOf` or `not`).
    #[serde(rename = "json-schema")]
    JsonSchema {
        /// The JSON Schema, as written in `gateway.config.yml` (its `$id` included).
        schema: serde_json::Value,
        /// `logErrors`: a body that does not match is logged (warning) with what is wrong.
        #[serde(default, rename = "logErrors")]
        log_errors: bool,
    },
}

impl Condition {
    /// Whether evaluating the condition needs the request body (a `json-schema` in it).
    pub fn reads_body(&self) -> bool {
        match self {
            Condition::JsonSchema { .. } => true,
            Condition::AllOf { conditions } | Condition::OneOf { conditions } => {
                conditions.iter().any(Condition::reads_body)
            }
            Condition::Not { condition } => condition.reads_body(),
            _ => false,
        }
    }
}
