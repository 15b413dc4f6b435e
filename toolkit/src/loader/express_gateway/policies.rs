//! Pipeline steps of `gateway.config.yml`: conditions and policy actions translated into
//! [`Step`]s with the defaults Express Gateway 1.16's schemas fill in (`lib/policies/*/index.js`,
//! `lib/conditions/json-schemas`).

use mgw_runtime::model::policy::PolicySpec;
use mgw_runtime::model::{Condition, Dialect, Pipeline, Step};
use mgw_runtime::policies::basic_auth::BasicAuthSpec;
use mgw_runtime::policies::cors::{CorsOrigin, CorsSpec, OriginPattern};
use mgw_runtime::policies::introspect::IntrospectSpec;
use mgw_runtime::policies::jwt::{JwtExtractor, JwtSpec};
use mgw_runtime::policies::key_auth::KeyAuthSpec;
use mgw_runtime::policies::log::LogSpec;
use mgw_runtime::policies::metrics::MetricsSpec;
use mgw_runtime::policies::proxy::{EndpointChoice, PathRewrite, ProxySpec};
use mgw_runtime::policies::rate_limit::{RateAlgorithm, RateLimitSpec};
use mgw_runtime::policies::scopes::ScopesSpec;
use mgw_runtime::policies::terminate::TerminateSpec;
use mgw_runtime::policies::transformer::{HeadersSpec, Operations, TransformerSpec};
use mgw_runtime::policies::unsupported::{UnsupportedBehaviour, UnsupportedSpec};
use serde_json::{Map, Value};

use super::super::document::child;
use super::{kind, Ctx, Options, Services, UnsupportedStep};

/// The npm `cors` package's default `methods`.
pub const CORS_DEFAULT_METHODS: [&str; 6] = ["GET", "HEAD", "PUT", "PATCH", "POST", "DELETE"];

/// What a JavaScript text is, for [`check_expression`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpressionKind {
    /// A JavaScript expression (transformer and `headers` values).
    Expression,
    /// The body of a template string (`log` messages): text with `${expression}` parts.
    Template,
}

/// THE single call site where the build checks a JavaScript expression or template of the
/// configuration. `Err` carries the reason, reported as a build error naming the file, the
/// pipeline and the expression.
///
/// The runtime parses the same text with the same parser when it starts
/// ([`mgw_runtime::expression`]), so what passes here runs there.
pub fn check_expression(kind: ExpressionKind, text: &str) -> Result<(), String> {
    let parsed = match kind {
        ExpressionKind::Expression => mgw_runtime::expression::Expression::parse(text),
        ExpressionKind::Template => mgw_runtime::expression::Expression::parse_template(text),
    };
    parsed.map(|_| ()).map_err(|e| e.to_string())
}

/// Policies whose steps are kept as [`PolicySpec::Unsupported`] (with `--allow-unsupported`).
fn unsupported_behaviour(
    policy: &str,
    action: &Map<String, Value>,
) -> (UnsupportedBehaviour, String) {
    match policy {
        "oauth2" => {
            let pass_through = action
                .get("passThrough")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let told = if pass_through {
                "accept no credential; with passThrough the request continues anonymous".to_string()
            } else {
                "accept no credential and answer 401 Unauthorized".to_string()
            };
            (
                UnsupportedBehaviour::NoCredentialAccepted { pass_through },
                told,
            )
        }
        _ => (
            UnsupportedBehaviour::Refuse,
            "answer 401 Unauthorized (an unknown policy fails closed)".to_string(),
        ),
    }
}

/// Compiles one pipeline (`pipelines.<name>`) into its steps.
#[allow(clippy::too_many_arguments)]
pub(super) fn pipeline(
    ctx: &mut Ctx<'_>,
    name: &str,
    pointer: &str,
    map: &Map<String, Value>,
    declared: &[String],
    services: &Services,
    options: &Options,
    unsupported: &mut Vec<UnsupportedStep>,
) -> Pipeline {
    let key = if map.contains_key("policies") {
        "policies"
    } else {
        "policy"
    };
    let list_pointer = child(pointer, key);
    let items: Vec<(String, &Value)> = match map.get(key) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("{list_pointer}/{i}"), v))
            .collect(),
        Some(other) => vec![(list_pointer.clone(), other)],
    };
    let mut steps = Vec::new();
    for (item_pointer, item) in items {
        let Some(item_map) = item.as_object() else {
            ctx.error(
                &item_pointer,
                format!(
                    "pipeline '{name}': each item of {key} is one policy, `- proxy: ...`, not {}",
                    kind(item)
                ),
            );
            continue;
        };
        if item_map.len() != 1 {
            let keys: Vec<&str> = item_map.keys().map(String::as_str).collect();
            ctx.error(
                &item_pointer,
                format!(
                    "pipeline '{name}': each item of {key} names one policy, this one has {} keys ({}); write one `- <policy>:` item per policy",
                    keys.len(),
                    keys.join(", ")
                ),
            );
            continue;
        }
        let Some((policy, actions)) = item_map.iter().next() else {
            continue;
        };
        let policy_pointer = child(&item_pointer, policy);
        if !declared.contains(policy) {
            ctx.error(
                &policy_pointer,
                format!(
                    "pipeline '{name}' uses the policy '{policy}', which the `policies` list does not declare (Express Gateway refuses to start: POLICY_NOT_DECLARED); add `- {policy}` to policies"
                ),
            );
            continue;
        }
        // null -> one step with no condition and an empty action; one mapping -> one step.
        let raw_steps: Vec<(String, Option<&Value>)> = match actions {
            Value::Null => vec![(policy_pointer.clone(), None)],
            Value::Array(list) if list.is_empty() => vec![(policy_pointer.clone(), None)],
            Value::Array(list) => list
                .iter()
                .enumerate()
                .map(|(i, v)| (format!("{policy_pointer}/{i}"), Some(v)))
                .collect(),
            other => vec![(policy_pointer.clone(), Some(other))],
        };
        for (step_pointer, raw) in raw_steps {
            let empty = Map::new();
            let step_map = match raw {
                None => &empty,
                Some(Value::Object(m)) => m,
                Some(Value::Null) => &empty,
                Some(other) => {
                    ctx.error(
                        &step_pointer,
                        format!("pipeline '{name}', policy '{policy}': a step is a mapping with `condition` and `action`, not {}", kind(other)),
                    );
                    continue;
                }
            };
            ctx.unknown_keys(
                &step_pointer,
                step_map,
                &["condition", "action"],
                &format!("a step of pipeline '{name}'"),
            );
            if let Some(c) = step_map.get("condition") {
                let what = format!("the condition of a {policy} step of pipeline '{name}'");
                if !ctx.refuse_variables(&child(&step_pointer, "condition"), c, &what, &[]) {
                    continue;
                }
            }
            let condition = match step_map.get("condition") {
                None | Some(Value::Null) => None,
                Some(c) => match condition(
                    ctx,
                    name,
                    Some(policy.as_str()),
                    &child(&step_pointer, "condition"),
                    c,
                ) {
                    Some(c) => Some(c),
                    None => continue,
                },
            };
            let action_pointer = child(&step_pointer, "action");
            let action = match step_map.get("action") {
                None | Some(Value::Null) => &empty,
                Some(Value::Object(a)) => a,
                Some(other) => {
                    ctx.error(&action_pointer, format!("pipeline '{name}', policy '{policy}': action must be a mapping, not {}", kind(other)));
                    continue;
                }
            };
            // Nothing in a supported policy's action or a condition is a setting: `${VAR}` there
            // would reach the gateway as text. Unsupported policies keep no parameters yet.
            let supported = matches!(
                policy.as_str(),
                "proxy"
                    | "cors"
                    | "key-auth"
                    | "basic-auth"
                    | "jwt"
                    | "oauth2-introspect"
                    | "scopes"
                    | "metrics"
                    | "terminate"
                    | "log"
                    | "headers"
                    | "request-transformer"
                    | "response-transformer"
                    | "rate-limit"
            );
            let what = format!("the {policy} step of pipeline '{name}'");
            if supported
                && !ctx.refuse_variables(
                    &action_pointer,
                    &Value::Object(action.clone()),
                    &what,
                    // Settings: substituted by the gateway when it starts.
                    match policy.as_str() {
                        "jwt" => &[
                            "secretOrPublicKey",
                            "secretOrPublicKeyFile",
                            "audience",
                            "issuer",
                        ],
                        "oauth2-introspect" => &["endpoint", "authorization_value"],
                        _ => &[],
                    },
                )
            {
                continue;
            }
            let at = (name, &action_pointer, &step_pointer);
            let spec = match policy.as_str() {
                "proxy" => proxy(ctx, at, action, services),
                "cors" => cors(ctx, at, action),
                "key-auth" => key_auth(ctx, at, action),
                "basic-auth" => basic_auth(ctx, at, action),
                "jwt" => jwt(ctx, at, action),
                "oauth2-introspect" => introspect(ctx, at, action),
                "scopes" => {
                    known_action_keys(ctx, at, "scopes", action, &[]);
                    Some(PolicySpec::Scopes(ScopesSpec::default()))
                }
                "metrics" => {
                    known_action_keys(ctx, at, "metrics", action, &[]);
                    Some(PolicySpec::Metrics(MetricsSpec::default()))
                }
                "terminate" => terminate(ctx, at, action),
                "rate-limit" => rate_limit(ctx, at, action),
                "log" => log(ctx, at, action),
                "headers" => headers(ctx, at, action),
                "request-transformer" => transformer(ctx, at, action, true),
                "response-transformer" => transformer(ctx, at, action, false),
                "expression" => {
                    let code = action.get("jscode").and_then(Value::as_str).unwrap_or("");
                    ctx.error(
                        &step_pointer,
                        format!(
                            "pipeline '{name}': the expression policy runs arbitrary JavaScript ({code:?}), which micro-gw does not run; remove the step, or express it with conditions, headers or transformers"
                        ),
                    );
                    None
                }
                other => {
                    let (behaviour, told) = unsupported_behaviour(other, action);
                    unsupported.push(UnsupportedStep {
                        at: ctx.at(&step_pointer),
                        pipeline: name.to_string(),
                        policy: other.to_string(),
                        behaviour: told,
                    });
                    let _ = options;
                    Some(PolicySpec::Unsupported(UnsupportedSpec {
                        policy: other.to_string(),
                        behaviour,
                    }))
                }
            };
            if let Some(policy) = spec {
                steps.push(Step { condition, policy });
            }
        }
    }
    Pipeline {
        name: name.to_string(),
        source: ctx.file().to_string(),
        dialect: Dialect::ExpressGateway,
        steps,
    }
}

/// Where a step is: the pipeline's name, the action's pointer and the step's pointer.
type At<'a> = (&'a str, &'a String, &'a String);

fn known_action_keys(
    ctx: &mut Ctx<'_>,
    at: At<'_>,
    policy: &str,
    action: &Map<String, Value>,
    known: &[&str],
) {
    let (name, action_pointer, _) = at;
    ctx.unknown_keys(
        action_pointer,
        action,
        known,
        &format!("the {policy} action of pipeline '{name}'"),
    );
}

/// One condition at `pointer`; `policy` names the step's policy for a step's own condition,
/// `None` inside `allOf`, `oneOf` or `not`.
fn condition(
    ctx: &mut Ctx<'_>,
    pipeline: &str,
    policy: Option<&str>,
    pointer: &str,
    value: &Value,
) -> Option<Condition> {
    let Some(map) = value.as_object() else {
        ctx.error(
            pointer,
            format!(
                "pipeline '{pipeline}': a condition is a mapping with a name, not {}",
                kind(value)
            ),
        );
        return None;
    };
    let Some(name) = map.get("name").and_then(Value::as_str) else {
        ctx.error(pointer, format!("pipeline '{pipeline}': the condition has no name: add `name: always` (or pathExact, pathMatch, method, hostMatch, allOf, oneOf, not, authenticated, anonymous, json-schema, never)"));
        return None;
    };
    let string = |ctx: &mut Ctx<'_>, key: &str| -> Option<String> {
        match map.get(key) {
            Some(v) => ctx.literal(
                &child(pointer, key),
                &format!("the {key} of condition {name}"),
                v,
            ),
            None => {
                ctx.error(
                    pointer,
                    format!("pipeline '{pipeline}': condition {name} needs `{key}`"),
                );
                None
            }
        }
    };
    let list = |ctx: &mut Ctx<'_>, key: &str| -> Option<Vec<Condition>> {
        let Some(Value::Array(items)) = map.get(key) else {
            ctx.error(
                pointer,
                format!(
                    "pipeline '{pipeline}': condition {name} needs `{key}`, a list of conditions"
                ),
            );
            return None;
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            out.push(condition(
                ctx,
                pipeline,
                None,
                &format!("{}/{i}", child(pointer, key)),
                item,
            )?);
        }
        Some(out)
    };
    let known: &[&str] = match name {
        "allOf" | "oneOf" => &["name", "conditions"],
        "not" => &["name", "condition"],
        "pathExact" => &["name", "path"],
        "pathMatch" | "hostMatch" => &["name", "pattern"],
        "method" => &["name", "methods"],
        "json-schema" => &["name", "schema", "logErrors"],
        _ => &["name"],
    };
    Some(match name {
        "always" => Condition::Always,
        "never" => Condition::Never,
        "authenticated" => Condition::Authenticated,
        "anonymous" => Condition::Anonymous,
        "allOf" => Condition::AllOf { conditions: list(ctx, "conditions")? },
        "oneOf" => Condition::OneOf { conditions: list(ctx, "conditions")? },
        "not" => {
            let Some(inner) = map.get("condition") else {
                ctx.error(pointer, format!("pipeline '{pipeline}': condition not needs `condition`"));
                return None;
            };
            Condition::Not { condition: Box::new(condition(ctx, pipeline, None, &child(pointer, "condition"), inner)?) }
        }
        "pathExact" => Condition::PathExact { path: string(ctx, "path")? },
        "pathMatch" => Condition::PathMatch { pattern: string(ctx, "pattern")? },
        "hostMatch" => Condition::HostMatch { pattern: string(ctx, "pattern")? },
        "method" => {
            let methods = match map.get("methods") {
                Some(Value::String(s)) => vec![s.clone()],
                Some(Value::Array(items)) if items.iter().all(Value::is_string) && !items.is_empty() => {
                    items.iter().filter_map(Value::as_str).map(str::to_string).collect()
                }
                _ => {
                    ctx.error(pointer, format!("pipeline '{pipeline}': condition method needs `methods`, a method or a list of them"));
                    return None;
                }
            };
            const ALLOWED: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];
            if let Some(bad) = methods.iter().find(|m| !ALLOWED.contains(&m.as_str())) {
                ctx.error(
                    &child(pointer, "methods"),
                    format!("pipeline '{pipeline}': condition method: {bad:?} is not one of {} (compared exactly, as Express Gateway's schema requires)", ALLOWED.join(", ")),
                );
                return None;
            }
            Condition::Method { methods }
        }
        "json-schema" => json_schema(ctx, pipeline, policy, pointer, map)?,
        "expression" | "tlsClientAuthenticated" => {
            ctx.error(
                pointer,
                format!("pipeline '{pipeline}': the condition {name} is not supported by micro-gw (it needs {}); remove it or use always, never, allOf, oneOf, not, pathExact, pathMatch, method, hostMatch, authenticated, anonymous or json-schema",
                    match name {
                        "expression" => "a JavaScript engine",
                        _ => "client certificates on the HTTPS listener",
                    }),
            );
            return None;
        }
        other => {
            ctx.error(pointer, format!("pipeline '{pipeline}': there is no condition named {other:?} (Express Gateway refuses to start); use always, never, allOf, oneOf, not, pathExact, pathMatch, method, hostMatch, authenticated, anonymous or json-schema"));
            return None;
        }
    })
    .inspect(|_| ctx.unknown_keys(pointer, map, known, &format!("condition {name}")))
}

/// EG's `json-schema` condition (`lib/conditions/json-schema.js`): `schema` (a mapping with
/// an `$id`: Express Gateway validates by that id and fails every request without one) and
/// `logErrors` (default false). The schema is checked here for what Express Gateway's Ajv 6
/// refuses at start-up (its shape, an unknown `format`, a `$schema` other than draft-04/06/07)
/// and for `$ref`s outside it (Express Gateway downloads them; micro-gw does not); the gateway
/// compiles it when it starts. Only as a step's own condition: inside `allOf`, `oneOf` or `not`
/// Express Gateway never parses the body (and its condition is a promise there, which fails
/// every request).
fn json_schema(
    ctx: &mut Ctx<'_>,
    pipeline: &str,
    policy: Option<&str>,
    pointer: &str,
    map: &Map<String, Value>,
) -> Option<Condition> {
    use super::super::validation::{check_schema, Rules};
    let Some(policy) = policy else {
        ctx.error(pointer, format!("pipeline '{pipeline}': the condition json-schema can only be a step's own condition, not inside allOf, oneOf or not (Express Gateway parses the body only for a step's own condition); split the step in two"));
        return None;
    };
    let at = format!("pipeline '{pipeline}', policy '{policy}', condition json-schema");
    let schema_pointer = child(pointer, "schema");
    let schema = match map.get("schema") {
        Some(Value::Object(schema)) => schema,
        Some(other) => {
            ctx.error(
                &schema_pointer,
                format!(
                    "{at}: schema must be a mapping (a JSON Schema), not {}",
                    kind(other)
                ),
            );
            return None;
        }
        None => {
            ctx.error(
                pointer,
                format!("{at}: needs `schema`, the JSON Schema the body must match"),
            );
            return None;
        }
    };
    let log_errors = match map.get("logErrors") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            ctx.error(
                &child(pointer, "logErrors"),
                format!("{at}: logErrors must be true or false, not {}", kind(other)),
            );
            return None;
        }
    };
    if !schema.get("$id").is_some_and(Value::is_string) {
        ctx.error(&schema_pointer, format!("{at}: the schema needs an `$id` (a name, such as `$id: {pipeline}-body`): Express Gateway 1.x looks the schema up by it and fails every request without one"));
        return None;
    }
    let schema = Value::Object(schema.clone());
    if let Err(reason) = mgw_runtime::policies::validate::ajv_draft(&schema) {
        ctx.error(
            &child(&schema_pointer, "$schema"),
            format!("{at}: {reason}"),
        );
        return None;
    }
    if let Err((inner, reason)) = check_schema(&schema, "#", Rules::Ajv) {
        let deep = format!("{schema_pointer}{}", inner.trim_start_matches('#'));
        let place = if ctx.line(&deep).is_some() {
            deep
        } else {
            schema_pointer
        };
        ctx.error(&place, format!("{at}: the schema at {inner}: {reason}"));
        return None;
    }
    Some(Condition::JsonSchema { schema, log_errors })
}

/// Express Gateway's `proxy`: action params, then the service endpoint's `proxyOptions`, then
/// the deprecated `action.proxyOptions` (later ones win, as `Object.assign`).
fn proxy(
    ctx: &mut Ctx<'_>,
    at: At<'_>,
    action: &Map<String, Value>,
    services: &Services,
) -> Option<PolicySpec> {
    let (name, action_pointer, _) = at;
    let mut merged = action.clone();
    merged.remove("proxyOptions");
    let endpoint = match action.get("serviceEndpoint") {
        None | Some(Value::Null) => {
            ctx.warn(
                action_pointer,
                format!("pipeline '{name}': the proxy step names no serviceEndpoint, so it answers every request 502, as in Express Gateway; add `serviceEndpoint: <name>`"),
            );
            EndpointChoice::Missing
        }
        Some(Value::String(service)) => match services.get(service) {
            Some((index, options)) => {
                if let Some(options) = options {
                    merged.extend(options.clone());
                }
                EndpointChoice::Service { endpoint: *index }
            }
            None => {
                ctx.error(
                    &child(action_pointer, "serviceEndpoint"),
                    format!("pipeline '{name}': the proxy step names the service endpoint '{service}', which serviceEndpoints does not declare; add it there or fix the name"),
                );
                return None;
            }
        },
        Some(other) => {
            ctx.error(
                action_pointer,
                format!(
                    "pipeline '{name}': serviceEndpoint must be a name, not {}",
                    kind(other)
                ),
            );
            return None;
        }
    };
    if let Some(deprecated) = action.get("proxyOptions") {
        ctx.warn(
            &child(action_pointer, "proxyOptions"),
            format!("pipeline '{name}': action.proxyOptions is deprecated in Express Gateway; put these options on the action itself (they are applied last, as Express Gateway does)"),
        );
        if let Value::Object(o) = deprecated {
            merged.extend(o.clone());
        }
    }
    let flag = |ctx: &mut Ctx<'_>, key: &str, default: bool| -> bool {
        match merged.get(key) {
            None | Some(Value::Null) => default,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                ctx.error(
                    &child(action_pointer, key),
                    format!(
                        "pipeline '{name}': proxy {key} must be true or false, not {}",
                        kind(other)
                    ),
                );
                default
            }
        }
    };
    let change_origin = flag(ctx, "changeOrigin", true);
    let strip = flag(ctx, "stripPath", false);
    let xfwd = flag(ctx, "xfwd", false);
    let mut timeout_ms = None;
    for key in ["timeout", "proxyTimeout"] {
        match merged.get(key) {
            None | Some(Value::Null) => {}
            Some(v) => match v.as_u64() {
                Some(ms) => timeout_ms = Some(ms),
                None => ctx.error(
                    &child(action_pointer, key),
                    format!("pipeline '{name}': proxy {key} must be a number of milliseconds"),
                ),
            },
        }
    }
    let mut headers = Vec::new();
    match merged.get("headers") {
        None | Some(Value::Null) => {}
        Some(Value::Object(h)) => {
            for (header, value) in h {
                match value {
                    Value::String(s) => headers.push((header.clone(), s.clone())),
                    Value::Number(n) => headers.push((header.clone(), n.to_string())),
                    other => ctx.error(
                        &child(action_pointer, "headers"),
                        format!(
                            "pipeline '{name}': proxy header {header} must be a string, not {}",
                            kind(other)
                        ),
                    ),
                }
            }
        }
        Some(other) => ctx.error(
            &child(action_pointer, "headers"),
            format!(
                "pipeline '{name}': proxy headers must be a mapping, not {}",
                kind(other)
            ),
        ),
    }
    // http-proxy options with behaviour micro-gw does not offer: named when not at their
    // default, so nobody relies on them unknowingly.
    let defaults: [(&str, Value); 10] = [
        ("strategy", Value::from("round-robin")),
        ("ignorePath", Value::Bool(false)),
        ("prependPath", Value::Bool(true)),
        ("followRedirects", Value::Bool(false)),
        ("autoRewrite", Value::Bool(false)),
        ("preserveHeaderKeyCase", Value::Bool(false)),
        ("secure", Value::Bool(true)),
        ("toProxy", Value::Bool(false)),
        ("ws", Value::Bool(false)),
        ("xfwd", Value::Bool(false)),
    ];
    let handled = [
        "serviceEndpoint",
        "changeOrigin",
        "stripPath",
        "xfwd",
        "timeout",
        "proxyTimeout",
        "headers",
    ];
    for (key, value) in &merged {
        if handled.contains(&key.as_str()) || value.is_null() {
            continue;
        }
        if defaults.iter().any(|(k, d)| k == key && d == value) {
            continue;
        }
        ctx.warn(
            &child(action_pointer, key),
            format!("pipeline '{name}': the proxy option {key} is not supported by micro-gw and is ignored (see docs/express-gateway-migration.md)"),
        );
    }
    Some(PolicySpec::Proxy(ProxySpec {
        endpoint,
        path: if strip {
            PathRewrite::Strip
        } else {
            PathRewrite::Keep
        },
        change_origin,
        forwarded_headers: xfwd,
        request_id_header: true,
        timeout_ms,
        headers,
    }))
}

/// A string, or a list of strings, as the npm `cors` package takes `methods` and
/// `allowedHeaders` (a string is sent as written).
fn string_or_list(
    ctx: &mut Ctx<'_>,
    pointer: &str,
    what: &str,
    value: &Value,
) -> Option<Vec<String>> {
    match value {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(items) if items.iter().all(Value::is_string) => Some(
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
        ),
        other => {
            ctx.error(
                pointer,
                format!(
                    "{what} must be a string or a list of strings, not {}",
                    kind(other)
                ),
            );
            None
        }
    }
}

/// Express Gateway's `cors`: the action goes to the npm `cors` 2.8 package, whose defaults
/// apply. In YAML `origin` can only be a string, a boolean or a list of strings (EG's schema
/// wants real `RegExp` objects for patterns, which YAML cannot write), so every origin is
/// compared exactly.
fn cors(ctx: &mut Ctx<'_>, at: At<'_>, action: &Map<String, Value>) -> Option<PolicySpec> {
    let (name, action_pointer, _) = at;
    known_action_keys(
        ctx,
        at,
        "cors",
        action,
        &[
            "origin",
            "methods",
            "allowedHeaders",
            "exposedHeaders",
            "credentials",
            "maxAge",
            "optionsSuccessStatus",
            "preflightContinue",
        ],
    );
    let p = |key: &str| child(action_pointer, key);
    let what = |key: &str| format!("pipeline '{name}': cors {key}");
    let origin = match action.get("origin") {
        None | Some(Value::Null) => CorsOrigin::Any,
        Some(Value::Bool(true)) => CorsOrigin::Reflect,
        Some(Value::Bool(false)) => CorsOrigin::Disabled,
        Some(Value::String(s)) if s == "*" => CorsOrigin::Any,
        // npm cors: an empty origin is falsy, so the policy passes the request on untouched.
        Some(Value::String(s)) if s.is_empty() => CorsOrigin::Disabled,
        Some(Value::String(s)) => {
            ctx.no_variables(&p("origin"), &what("origin"), s);
            CorsOrigin::Fixed(s.clone())
        }
        Some(Value::Array(items)) => {
            let mut list = Vec::new();
            for (i, item) in items.iter().enumerate() {
                match item {
                    Value::String(s) => list.push(OriginPattern::Exact(s.clone())),
                    other => ctx.error(
                        &format!("{}/{i}", p("origin")),
                        format!(
                            "{}: an origin is a string (compared exactly), not {}",
                            what("origin"),
                            kind(other)
                        ),
                    ),
                }
            }
            CorsOrigin::List(list)
        }
        Some(other) => {
            ctx.error(
                &p("origin"),
                format!(
                    "{} must be '*', an origin, true, false or a list of origins, not {}",
                    what("origin"),
                    kind(other)
                ),
            );
            return None;
        }
    };
    let methods = match action.get("methods") {
        None | Some(Value::Null) => CORS_DEFAULT_METHODS.iter().map(|m| m.to_string()).collect(),
        Some(v) => string_or_list(ctx, &p("methods"), &what("methods"), v)?,
    };
    let allowed_headers = match action.get("allowedHeaders") {
        None | Some(Value::Null) => None,
        Some(v) => Some(string_or_list(
            ctx,
            &p("allowedHeaders"),
            &what("allowedHeaders"),
            v,
        )?),
    };
    let exposed_headers = match action.get("exposedHeaders") {
        None | Some(Value::Null) => Vec::new(),
        Some(v) => string_or_list(ctx, &p("exposedHeaders"), &what("exposedHeaders"), v)?,
    };
    let boolean = |ctx: &mut Ctx<'_>, key: &str| match action.get(key) {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            ctx.error(
                &p(key),
                format!("{} must be true or false, not {}", what(key), kind(other)),
            );
            false
        }
    };
    let credentials = boolean(ctx, "credentials");
    let preflight_continue = boolean(ctx, "preflightContinue");
    let max_age = match action.get("maxAge") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64() {
            Some(n) => Some(n),
            None => {
                ctx.error(
                    &p("maxAge"),
                    format!("{} must be a whole number of seconds", what("maxAge")),
                );
                None
            }
        },
    };
    let preflight_status = match action.get("optionsSuccessStatus") {
        None | Some(Value::Null) => 204,
        Some(v) => match v
            .as_u64()
            .and_then(|n| u16::try_from(n).ok())
            .filter(|n| (200..=599).contains(n))
        {
            Some(n) => n,
            None => {
                ctx.error(
                    &p("optionsSuccessStatus"),
                    format!(
                        "{} must be an HTTP status such as 200 or 204",
                        what("optionsSuccessStatus")
                    ),
                );
                204
            }
        },
    };
    Some(PolicySpec::Cors(CorsSpec {
        origin,
        methods,
        allowed_headers,
        exposed_headers,
        credentials,
        max_age,
        preflight_status,
        preflight_continue,
        dialect: mgw_runtime::model::Dialect::ExpressGateway,
    }))
}

/// A boolean of an action (EG's schema type `boolean`).
fn action_flag(
    ctx: &mut Ctx<'_>,
    at: At<'_>,
    policy: &str,
    action: &Map<String, Value>,
    key: &str,
    default: bool,
) -> bool {
    let (name, action_pointer, _) = at;
    match action.get(key) {
        None | Some(Value::Null) => default,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            ctx.error(
                &child(action_pointer, key),
                format!(
                    "pipeline '{name}': {policy} {key} must be true or false, not {}",
                    kind(other)
                ),
            );
            default
        }
    }
}

/// An optional string of an action (EG's schema type `string`); `Err` after an error naming
/// the key when it is something else.
fn action_text(
    ctx: &mut Ctx<'_>,
    at: At<'_>,
    policy: &str,
    action: &Map<String, Value>,
    key: &str,
) -> Result<Option<String>, ()> {
    let (name, action_pointer, _) = at;
    match action.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => {
            ctx.error(
                &child(action_pointer, key),
                format!(
                    "pipeline '{name}': {policy} {key} must be a string, not {}",
                    kind(other)
                ),
            );
            Err(())
        }
    }
}

/// `key-auth` (EG `lib/policies/key-auth/index.js` schema and defaults).
fn key_auth(ctx: &mut Ctx<'_>, at: At<'_>, action: &Map<String, Value>) -> Option<PolicySpec> {
    let (name, action_pointer, _) = at;
    known_action_keys(
        ctx,
        at,
        "key-auth",
        action,
        &[
            "apiKeyHeader",
            "apiKeyHeaderScheme",
            "apiKeyField",
            "disableHeaders",
            "disableHeadersScheme",
            "disableQueryParam",
            "passThrough",
        ],
    );
    let defaults = KeyAuthSpec::default();
    let text = |ctx: &mut Ctx<'_>, key: &str, default: String| -> Option<String> {
        match action.get(key) {
            None | Some(Value::Null) => Some(default),
            Some(v) => ctx.literal(
                &child(action_pointer, key),
                &format!("pipeline '{name}': key-auth {key}"),
                v,
            ),
        }
    };
    let header = text(ctx, "apiKeyHeader", defaults.header)?;
    let scheme = text(ctx, "apiKeyHeaderScheme", defaults.scheme)?;
    let query_field = text(ctx, "apiKeyField", defaults.query_field)?;
    // RFC 9110 §5.1: a field name is a token.
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if header.is_empty() || !header.bytes().all(token) {
        ctx.error(
            &child(action_pointer, "apiKeyHeader"),
            format!("pipeline '{name}': key-auth apiKeyHeader {header:?} is not a header name"),
        );
        return None;
    }
    Some(PolicySpec::KeyAuth(KeyAuthSpec {
        header,
        scheme,
        query_field,
        disable_headers: action_flag(ctx, at, "key-auth", action, "disableHeaders", false),
        disable_headers_scheme: action_flag(
            ctx,
            at,
            "key-auth",
            action,
            "disableHeadersScheme",
            false,
        ),
        disable_query_param: action_flag(ctx, at, "key-auth", action, "disableQueryParam", false),
        pass_through: action_flag(ctx, at, "key-auth", action, "passThrough", false),
    }))
}

/// `basic-auth` (EG `lib/policies/basic-auth/index.js`: `passThrough` only).
fn basic_auth(ctx: &mut Ctx<'_>, at: At<'_>, action: &Map<String, Value>) -> Option<PolicySpec> {
    known_action_keys(ctx, at, "basic-auth", action, &["passThrough"]);
    Some(PolicySpec::BasicAuth(BasicAuthSpec {
        pass_through: action_flag(ctx, at, "basic-auth", action, "passThrough", false),
    }))
}

/// `oauth2-introspect` (EG `lib/policies/oauth2-introspect/index.js` schema and defaults:
/// `endpoint` required, `timeout` 10000 ms, `ttl` 60 s). `endpoint` and `authorization_value`
/// are settings: `${VAR}` in them is kept for the gateway to substitute when it starts; an
/// `authorization_value` written in clear is compiled in, which the build warns about.
fn introspect(ctx: &mut Ctx<'_>, at: At<'_>, action: &Map<String, Value>) -> Option<PolicySpec> {
    let (name, action_pointer, step_pointer) = at;
    known_action_keys(
        ctx,
        at,
        "oauth2-introspect",
        action,
        &[
            "endpoint",
            "authorization_value",
            "timeout",
            "ttl",
            "passThrough",
        ],
    );
    let text =
        |ctx: &mut Ctx<'_>, key: &str| action_text(ctx, at, "oauth2-introspect", action, key);
    let endpoint = text(ctx, "endpoint").ok()?;
    let authorization_value = text(ctx, "authorization_value").ok()?;
    let Some(endpoint) = endpoint else {
        ctx.error(
            step_pointer,
            format!("pipeline '{name}': oauth2-introspect needs endpoint, the introspection URL (Express Gateway refuses to start otherwise)"),
        );
        return None;
    };
    if !endpoint.contains("${") {
        let host = endpoint
            .strip_prefix("http://")
            .or_else(|| endpoint.strip_prefix("https://"))
            .and_then(|rest| rest.split(['/', '?', '#']).next());
        if host.is_none_or(|h| h.is_empty() || h.chars().any(char::is_whitespace)) {
            ctx.error(
                &child(action_pointer, "endpoint"),
                format!("pipeline '{name}': oauth2-introspect endpoint {endpoint:?} is not an http(s) URL"),
            );
            return None;
        }
    }
    if let Some(value) = &authorization_value {
        if !value.contains("${") && !value.is_empty() {
            ctx.warn(
                &child(action_pointer, "authorization_value"),
                format!("pipeline '{name}': oauth2-introspect authorization_value is written in clear and is compiled into the gateway; write `${{VAR}}` (for example `Basic ${{INTROSPECT_CREDENTIALS}}`) to take it from the environment when the gateway starts"),
            );
        }
    }
    let number = |ctx: &mut Ctx<'_>, key: &str, default: u64| -> Option<u64> {
        match action.get(key) {
            None | Some(Value::Null) => Some(default),
            Some(Value::Number(n)) if n.as_u64().is_some() => n.as_u64(),
            Some(other) => {
                ctx.error(
                    &child(action_pointer, key),
                    format!(
                        "pipeline '{name}': oauth2-introspect {key} must be a whole number, not {other}"
                    ),
                );
                None
            }
        }
    };
    let timeout_ms = number(ctx, "timeout", IntrospectSpec::DEFAULT_TIMEOUT_MS)?;
    let ttl_seconds = number(ctx, "ttl", IntrospectSpec::DEFAULT_TTL_SECONDS)?;
    Some(PolicySpec::Introspect(IntrospectSpec {
        endpoint,
        authorization_value,
        timeout_ms,
        ttl_seconds,
        pass_through: action_flag(ctx, at, "oauth2-introspect", action, "passThrough", false),
    }))
}

/// `jwt` (EG `lib/policies/jwt/index.js` schema and defaults). The key, audience and issuer
/// are settings: `${VAR}` in them is kept for the gateway to substitute when it starts.
fn jwt(ctx: &mut Ctx<'_>, at: At<'_>, action: &Map<String, Value>) -> Option<PolicySpec> {
    let (name, action_pointer, step_pointer) = at;
    known_action_keys(
        ctx,
        at,
        "jwt",
        action,
        &[
            "secretOrPublicKey",
            "secretOrPublicKeyFile",
            "jwtExtractor",
            "jwtExtractorField",
            "audience",
            "issuer",
            "algorithms",
            "checkCredentialExistence",
            "passThrough",
        ],
    );
    let text = |ctx: &mut Ctx<'_>, key: &str| action_text(ctx, at, "jwt", action, key);
    let key = text(ctx, "secretOrPublicKey").ok()?;
    let key_file = text(ctx, "secretOrPublicKeyFile").ok()?;
    let extractor_name = text(ctx, "jwtExtractor").ok()?;
    let field = text(ctx, "jwtExtractorField").ok()?;
    let audience = text(ctx, "audience").ok()?;
    let issuer = text(ctx, "issuer").ok()?;
    if key.is_some() == key_file.is_some() {
        ctx.error(
            step_pointer,
            format!("pipeline '{name}': jwt needs exactly one of secretOrPublicKey and secretOrPublicKeyFile (Express Gateway refuses to start otherwise)"),
        );
        return None;
    }
    let needs_field = |ctx: &mut Ctx<'_>, what: &str| -> Option<String> {
        match &field {
            Some(f) if !f.is_empty() => Some(f.clone()),
            _ => {
                ctx.error(
                    &child(action_pointer, "jwtExtractorField"),
                    format!("pipeline '{name}': jwt jwtExtractor {what} needs jwtExtractorField"),
                );
                None
            }
        }
    };
    let extractor = match extractor_name.as_deref().unwrap_or("authBearer") {
        "authBearer" => JwtExtractor::AuthBearer,
        "authScheme" => JwtExtractor::AuthScheme(needs_field(ctx, "authScheme")?),
        "header" => JwtExtractor::Header(needs_field(ctx, "header")?),
        "query" => JwtExtractor::Query(needs_field(ctx, "query")?),
        other => {
            ctx.error(
                &child(action_pointer, "jwtExtractor"),
                format!("pipeline '{name}': jwt jwtExtractor {other:?} is not one of header, query, authScheme, authBearer"),
            );
            return None;
        }
    };
    let algorithms = match action.get("algorithms") {
        None | Some(Value::Null) => Vec::new(),
        Some(v) => string_or_list(
            ctx,
            &child(action_pointer, "algorithms"),
            &format!("pipeline '{name}': jwt algorithms"),
            v,
        )?,
    };
    const ALLOWED: [&str; 6] = ["HS256", "HS384", "HS512", "RS256", "RS384", "RS512"];
    if let Some(bad) = algorithms.iter().find(|a| !ALLOWED.contains(&a.as_str())) {
        ctx.error(
            &child(action_pointer, "algorithms"),
            format!(
                "pipeline '{name}': jwt algorithm {bad:?} is not one Express Gateway accepts ({})",
                ALLOWED.join(", ")
            ),
        );
        return None;
    }
    Some(PolicySpec::Jwt(JwtSpec {
        secret_or_public_key: key,
        secret_or_public_key_file: key_file,
        extractor,
        audience,
        issuer,
        algorithms,
        check_credential_existence: action_flag(
            ctx,
            at,
            "jwt",
            action,
            "checkCredentialExistence",
            true,
        ),
        pass_through: action_flag(ctx, at, "jwt", action, "passThrough", false),
    }))
}

fn terminate(ctx: &mut Ctx<'_>, at: At<'_>, action: &Map<String, Value>) -> Option<PolicySpec> {
    let (name, action_pointer, _) = at;
    known_action_keys(ctx, at, "terminate", action, &["statusCode", "message"]);
    let mut spec = TerminateSpec::default();
    if let Some(v) = action.get("statusCode").filter(|v| !v.is_null()) {
        match v
            .as_u64()
            .and_then(|n| u16::try_from(n).ok())
            .filter(|n| (100..=599).contains(n))
        {
            Some(n) => spec.status = n,
            None => {
                ctx.error(&child(action_pointer, "statusCode"), format!("pipeline '{name}': terminate statusCode must be an HTTP status from 100 to 599"));
                return None;
            }
        }
    }
    if let Some(v) = action.get("message").filter(|v| !v.is_null()) {
        spec.message = match v {
            Value::Number(n) => n.to_string(),
            _ => ctx.literal(
                &child(action_pointer, "message"),
                &format!("the terminate message of pipeline '{name}'"),
                v,
            )?,
        };
    }
    Some(PolicySpec::Terminate(spec))
}

/// `rate-limit` (EG 1.16's schema and express-rate-limit 2.14's defaults).
fn rate_limit(ctx: &mut Ctx<'_>, at: At<'_>, action: &Map<String, Value>) -> Option<PolicySpec> {
    let (name, action_pointer, step_pointer) = at;
    known_action_keys(
        ctx,
        at,
        "rate-limit",
        action,
        &[
            "max",
            "windowMs",
            "rateLimitBy",
            "message",
            "statusCode",
            "headers",
            "skipFailedRequests",
            "skipSuccessfulRequests",
            "delayAfter",
            "delayMs",
            "algorithm",
            "burst",
        ],
    );
    let mut spec = RateLimitSpec {
        scope: step_pointer
            .strip_prefix("/pipelines/")
            .unwrap_or(step_pointer)
            .to_string(),
        ..RateLimitSpec::default()
    };
    let mut ok = true;
    let mut integer = |ctx: &mut Ctx<'_>, key: &str, target: &mut u64| {
        if let Some(v) = action.get(key).filter(|v| !v.is_null()) {
            match v.as_u64() {
                Some(n) => *target = n,
                None => {
                    ctx.error(
                        &child(action_pointer, key),
                        format!("pipeline '{name}': rate-limit {key} must be a whole number ≥ 0, not {v}"),
                    );
                    ok = false;
                }
            }
        }
    };
    integer(ctx, "max", &mut spec.max);
    integer(ctx, "windowMs", &mut spec.window_ms);
    integer(ctx, "delayAfter", &mut spec.delay_after);
    integer(ctx, "delayMs", &mut spec.delay_ms);
    integer(ctx, "burst", &mut spec.burst);
    let mut status = u64::from(spec.status);
    integer(ctx, "statusCode", &mut status);
    if !ok {
        return None;
    }
    if spec.window_ms == 0 {
        ctx.error(
            &child(action_pointer, "windowMs"),
            format!("pipeline '{name}': rate-limit windowMs must be at least 1"),
        );
        return None;
    }
    match u16::try_from(status)
        .ok()
        .filter(|s| (200..=599).contains(s))
    {
        Some(s) => spec.status = s,
        None => {
            ctx.error(
                &child(action_pointer, "statusCode"),
                format!("pipeline '{name}': rate-limit statusCode must be an HTTP status from 200 to 599"),
            );
            return None;
        }
    }
    spec.headers = action_flag(ctx, at, "rate-limit", action, "headers", spec.headers);
    spec.skip_failed = action_flag(
        ctx,
        at,
        "rate-limit",
        action,
        "skipFailedRequests",
        spec.skip_failed,
    );
    spec.skip_successful = action_flag(
        ctx,
        at,
        "rate-limit",
        action,
        "skipSuccessfulRequests",
        spec.skip_successful,
    );
    if let Some(v) = action.get("message").filter(|v| !v.is_null()) {
        spec.message = match v {
            Value::Number(n) => n.to_string(),
            _ => ctx.literal(
                &child(action_pointer, "message"),
                &format!("the rate-limit message of pipeline '{name}'"),
                v,
            )?,
        };
    }
    if let Some(v) = action.get("rateLimitBy").filter(|v| !v.is_null()) {
        let pointer = child(action_pointer, "rateLimitBy");
        let template = ctx.literal(
            &pointer,
            &format!("the rateLimitBy of pipeline '{name}'"),
            v,
        )?;
        match mgw_runtime::policies::rate_limit::parse_key(&template) {
            Ok(parts) => spec.key = parts,
            Err(e) => {
                ctx.error(&pointer, format!("pipeline '{name}': {e}"));
                return None;
            }
        }
    }
    if let Some(v) = action.get("algorithm").filter(|v| !v.is_null()) {
        spec.algorithm = match v.as_str() {
            Some("fixed-window") => RateAlgorithm::FixedWindow,
            Some("gcra") => RateAlgorithm::Gcra,
            _ => {
                ctx.error(
                    &child(action_pointer, "algorithm"),
                    format!("pipeline '{name}': rate-limit algorithm must be fixed-window (Express Gateway's) or gcra, not {v}"),
                );
                return None;
            }
        };
    }
    if spec.delay_after > 0 && spec.delay_ms > 0 {
        let explicit = action.contains_key("delayMs");
        ctx.warn(
            step_pointer,
            format!(
                "pipeline '{name}': rate-limit delays every request after the {} of a window by {} ms per extra request{} (Express Gateway's behaviour, kept); set `delayMs: 0` to answer without delay",
                ordinal(spec.delay_after),
                spec.delay_ms,
                if explicit { "" } else { " (the default delayAfter: 1, delayMs: 1000: the second request waits 1 s, the third 2 s)" }
            ),
        );
    }
    Some(PolicySpec::RateLimit(spec))
}

fn ordinal(n: u64) -> String {
    let suffix = match (n % 10, n % 100) {
        (1, 11) | (2, 12) | (3, 13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

fn log(ctx: &mut Ctx<'_>, at: At<'_>, action: &Map<String, Value>) -> Option<PolicySpec> {
    let (name, action_pointer, step_pointer) = at;
    known_action_keys(ctx, at, "log", action, &["message"]);
    let Some(message) = action.get("message") else {
        ctx.error(
            step_pointer,
            format!(
                "pipeline '{name}': the log step needs `message` (Express Gateway requires it)"
            ),
        );
        return None;
    };
    let pointer = child(action_pointer, "message");
    let message = ctx.literal(
        &pointer,
        &format!("the log message of pipeline '{name}'"),
        message,
    )?;
    expression(ctx, &pointer, name, ExpressionKind::Template, &message)?;
    Some(PolicySpec::Log(LogSpec { message }))
}

/// Runs [`check_expression`] and reports a failure naming the file, line, pipeline and text.
fn expression(
    ctx: &mut Ctx<'_>,
    pointer: &str,
    pipeline: &str,
    kind: ExpressionKind,
    text: &str,
) -> Option<()> {
    if !ctx.no_variables(
        pointer,
        &format!("an expression of pipeline '{pipeline}'"),
        text,
    ) {
        return None;
    }
    match check_expression(kind, text) {
        Ok(()) => Some(()),
        Err(reason) => {
            ctx.error(
                pointer,
                format!("pipeline '{pipeline}': the expression {text:?} cannot be run by micro-gw: {reason}; use a quoted string ('\"text\"'), req.* or egContext.* lookups, and + between them"),
            );
            None
        }
    }
}

/// `name: expression` pairs, each expression checked.
fn expressions(
    ctx: &mut Ctx<'_>,
    pointer: &str,
    pipeline: &str,
    value: &Value,
) -> Option<Vec<(String, String)>> {
    let Value::Object(map) = value else {
        ctx.error(
            pointer,
            format!(
                "pipeline '{pipeline}': expected a mapping of names to expressions, not {}",
                kind(value)
            ),
        );
        return None;
    };
    let mut out = Vec::new();
    for (key, v) in map {
        let p = child(pointer, key);
        let text = match v {
            Value::String(s) => s.clone(),
            // A bare YAML number or boolean is a JavaScript literal too.
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            other => {
                ctx.error(&p, format!("pipeline '{pipeline}': {key} must be a JavaScript expression (a string), not {}", kind(other)));
                return None;
            }
        };
        expression(ctx, &p, pipeline, ExpressionKind::Expression, &text)?;
        out.push((key.clone(), text));
    }
    Some(out)
}

fn headers(ctx: &mut Ctx<'_>, at: At<'_>, action: &Map<String, Value>) -> Option<PolicySpec> {
    let (name, action_pointer, step_pointer) = at;
    known_action_keys(
        ctx,
        at,
        "headers",
        action,
        &["headersPrefix", "forwardHeaders"],
    );
    ctx.warn(step_pointer, format!("pipeline '{name}': the headers policy is deprecated in Express Gateway; request-transformer does the same"));
    let prefix = match action.get("headersPrefix") {
        None | Some(Value::Null) => String::new(),
        Some(v) => ctx.literal(&child(action_pointer, "headersPrefix"), "headersPrefix", v)?,
    };
    let forward = match action.get("forwardHeaders") {
        None | Some(Value::Null) => {
            ctx.error(step_pointer, format!("pipeline '{name}': the headers step needs `forwardHeaders` (Express Gateway requires it)"));
            return None;
        }
        Some(v) => expressions(ctx, &child(action_pointer, "forwardHeaders"), name, v)?,
    };
    Some(PolicySpec::Headers(HeadersSpec { prefix, forward }))
}

fn transformer(
    ctx: &mut Ctx<'_>,
    at: At<'_>,
    action: &Map<String, Value>,
    request: bool,
) -> Option<PolicySpec> {
    let (name, action_pointer, step_pointer) = at;
    let policy = if request {
        "request-transformer"
    } else {
        "response-transformer"
    };
    known_action_keys(ctx, at, policy, action, &["headers", "body"]);
    let part = |ctx: &mut Ctx<'_>, key: &str| -> Result<Option<Operations>, ()> {
        let pointer = child(action_pointer, key);
        let map = match action.get(key) {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::Object(m)) => m,
            Some(other) => {
                ctx.error(&pointer, format!("pipeline '{name}': {policy} {key} must be a mapping with add and remove, not {}", kind(other)));
                return Err(());
            }
        };
        ctx.unknown_keys(
            &pointer,
            map,
            &["add", "remove"],
            &format!("{policy} {key}"),
        );
        let add = match map.get("add") {
            None | Some(Value::Null) => Vec::new(),
            Some(v) => expressions(ctx, &child(&pointer, "add"), name, v).ok_or(())?,
        };
        let remove = match map.get("remove") {
            None | Some(Value::Null) => Vec::new(),
            Some(v) => string_or_list(
                ctx,
                &child(&pointer, "remove"),
                &format!("pipeline '{name}': {policy} {key}.remove"),
                v,
            )
            .ok_or(())?,
        };
        Ok(Some(Operations { add, remove }))
    };
    let headers = part(ctx, "headers").ok()?;
    let body = part(ctx, "body").ok()?;
    if headers.is_none() && body.is_none() {
        ctx.error(step_pointer, format!("pipeline '{name}': {policy} needs `headers` or `body` (Express Gateway requires at least one)"));
        return None;
    }
    let spec = TransformerSpec { headers, body };
    Some(if request {
        PolicySpec::RequestTransformer(spec)
    } else {
        PolicySpec::ResponseTransformer(spec)
    })
}
