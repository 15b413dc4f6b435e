//! JSON Schemas as Express Gateway 1.x checks them (`lib/schemas/index.js`: Ajv 6 with
//! `useDefaults: true, coerceTypes: true`), for its `json-schema` condition.
//!
//! - Draft-07 by default (Ajv 6's), draft-06 or draft-04 when `$schema` names them.
//! - `format` is asserted for the formats Ajv 6 knows (`date`, `time`, `date-time`, `uri`,
//!   `uri-reference`, `uri-template`, `url`, `email`, `hostname`, `ipv4`, `ipv6`, `regex`,
//!   `uuid`, `json-pointer`, `json-pointer-uri-fragment`, `relative-json-pointer`); any other is
//!   refused when the schema is compiled, as Ajv's `unknownFormats: true` does.
//! - Before validation the instance is [`normalise`]d as Ajv changes `req.body` while it
//!   validates: a scalar whose JSON type the schema's `type` does not allow is coerced to the
//!   first allowed type it converts to (`"30"` → `30`, `"true"` → `true`, `1` → `"1"`, ...), and
//!   a property missing from an object gets its `default`. Followed through `properties`,
//!   `additionalProperties`, `items`, `allOf` and local `$ref`s; not inside `anyOf`/`oneOf`/
//!   `not`/`if` (Ajv coerces there too, branch by branch: there, a value of the wrong type stays
//!   wrong here).

use serde_json::Value;

use super::compile::{Problems, Schema, SchemaError};
use super::{ajv_draft, AjvDraft};

/// A schema compiled with Ajv 6's rules, with what [`normalise`] needs.
#[derive(Debug)]
pub struct AjvSchema {
    source: Value,
    compiled: Schema,
}

impl AjvSchema {
    /// Compiles `schema` (`place` names it in the error).
    pub fn compile(schema: &Value, place: &str) -> Result<Self, SchemaError> {
        let fail = |message: String| SchemaError {
            place: place.to_string(),
            pointer: "#".into(),
            message,
        };
        let draft = match ajv_draft(schema).map_err(fail)? {
            AjvDraft::Draft4 => jsonschema::Draft::Draft4,
            AjvDraft::Draft6 => jsonschema::Draft::Draft6,
            AjvDraft::Draft7 => jsonschema::Draft::Draft7,
        };
        let options = jsonschema::options()
            .with_draft(draft)
            .should_validate_formats(true)
            .should_ignore_unknown_formats(false)
            .with_format("url", is_url)
            .with_format("uuid", is_uuid)
            .with_format("json-pointer-uri-fragment", is_pointer_fragment);
        let compiled = Schema::compile_with(options, schema, place)?;
        Ok(Self {
            source: schema.clone(),
            compiled,
        })
    }

    /// Whether `instance`, normalised as Ajv would change it, satisfies the schema.
    pub fn holds(&self, instance: &Value) -> bool {
        let mut instance = instance.clone();
        normalise(&self.source, &self.source, &mut instance, 0);
        self.compiled.is_valid(&instance)
    }

    /// What is wrong with `instance` (normalised), for the log.
    pub fn problems(&self, instance: &Value) -> String {
        let mut instance = instance.clone();
        normalise(&self.source, &self.source, &mut instance, 0);
        let mut problems = Problems::default();
        self.compiled.report(&instance, "body", &mut problems);
        problems.into_description()
    }
}

/// How many local `$ref`s [`normalise`] follows without going deeper into the instance (a
/// schema that refers to itself).
const MAX_REF_HOPS: usize = 32;

/// Changes `instance` as Ajv 6's `coerceTypes: true` and `useDefaults: true` do while it
/// validates against `schema` (`root` resolves local `$ref`s).
pub fn normalise(root: &Value, schema: &Value, instance: &mut Value, hops: usize) {
    let Value::Object(schema) = schema else {
        return;
    };
    if let Some(Value::String(reference)) = schema.get("$ref") {
        // Draft-07: the keywords beside `$ref` are ignored.
        if hops < MAX_REF_HOPS {
            if let Some(target) = local_ref(root, reference) {
                normalise(root, target, instance, hops + 1);
            }
        }
        return;
    }
    if let Some(types) = schema.get("type") {
        coerce(types, instance);
    }
    for sub in schema
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        normalise(root, sub, instance, hops);
    }
    match instance {
        Value::Object(object) => {
            let properties = schema.get("properties").and_then(Value::as_object);
            if let Some(properties) = properties {
                for (name, sub) in properties {
                    if !object.contains_key(name) {
                        if let Some(default) = sub.get("default") {
                            object.insert(name.clone(), default.clone());
                        }
                    }
                }
            }
            let additional = schema.get("additionalProperties");
            for (name, value) in object.iter_mut() {
                match properties.and_then(|p| p.get(name)) {
                    Some(sub) => normalise(root, sub, value, 0),
                    None => {
                        if let Some(sub) = additional {
                            normalise(root, sub, value, 0);
                        }
                    }
                }
            }
        }
        Value::Array(items) => match schema.get("items") {
            Some(Value::Array(tuple)) => {
                for (item, sub) in items.iter_mut().zip(tuple) {
                    normalise(root, sub, item, 0);
                }
            }
            Some(sub) => {
                for item in items.iter_mut() {
                    normalise(root, sub, item, 0);
                }
            }
            None => {}
        },
        _ => {}
    }
}

/// `#` or `#/json/pointer` inside `root`.
fn local_ref<'a>(root: &'a Value, reference: &str) -> Option<&'a Value> {
    let pointer = reference.strip_prefix('#')?;
    let decoded = super::params::percent_decode(pointer, false);
    root.pointer(&decoded)
}

/// Ajv 6's `coerceTypes: true` (`lib/compile/_rules` `coerce.def`): when the value's type is
/// not among `types`, the first of them it converts to.
fn coerce(types: &Value, instance: &mut Value) {
    let names: Vec<&str> = match types {
        Value::String(one) => vec![one.as_str()],
        Value::Array(list) => list.iter().filter_map(Value::as_str).collect(),
        _ => return,
    };
    if names.iter().any(|t| has_type(instance, t)) {
        return;
    }
    for name in names {
        if let Some(value) = coerced(instance, name) {
            *instance = value;
            return;
        }
    }
}

fn has_type(value: &Value, name: &str) -> bool {
    match (name, value) {
        ("string", Value::String(_))
        | ("boolean", Value::Bool(_))
        | ("null", Value::Null)
        | ("object", Value::Object(_))
        | ("array", Value::Array(_))
        | ("number", Value::Number(_)) => true,
        ("integer", Value::Number(n)) => {
            n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        _ => false,
    }
}

fn coerced(value: &Value, to: &str) -> Option<Value> {
    match (to, value) {
        ("string", Value::Number(n)) => Some(Value::String(n.to_string())),
        ("string", Value::Bool(b)) => Some(Value::String(b.to_string())),
        ("string", Value::Null) => Some(Value::String(String::new())),
        ("number" | "integer", Value::Bool(b)) => Some(Value::from(u8::from(*b))),
        ("number" | "integer", Value::Null) => Some(Value::from(0)),
        ("number" | "integer", Value::String(s)) => {
            // JavaScript's `data && data == +data` (and `!(data % 1)` for an integer).
            let text = s.trim();
            if text.is_empty() {
                return None;
            }
            let number: f64 = text.parse().ok().filter(|f: &f64| f.is_finite())?;
            if to == "integer" && number.fract() != 0.0 {
                return None;
            }
            Some(json_number(number))
        }
        ("boolean", Value::String(s)) if s == "true" => Some(Value::Bool(true)),
        ("boolean", Value::String(s)) if s == "false" => Some(Value::Bool(false)),
        ("boolean", Value::Number(n)) if n.as_f64() == Some(1.0) => Some(Value::Bool(true)),
        ("boolean", Value::Number(n)) if n.as_f64() == Some(0.0) => Some(Value::Bool(false)),
        ("boolean", Value::Null) => Some(Value::Bool(false)),
        ("null", Value::String(s)) if s.is_empty() => Some(Value::Null),
        ("null", Value::Number(n)) if n.as_f64() == Some(0.0) => Some(Value::Null),
        ("null", Value::Bool(false)) => Some(Value::Null),
        _ => None,
    }
}

/// A whole number as an integer (`30`, not `30.0`), else the float.
fn json_number(number: f64) -> Value {
    if number.fract() == 0.0 && number.abs() < 9.007_199_254_740_992e15 {
        Value::from(number as i64)
    } else {
        serde_json::Number::from_f64(number).map_or(Value::Null, Value::Number)
    }
}

/// Ajv 6's `url` (fast mode): an http, https or ftp URL.
fn is_url(text: &str) -> bool {
    let lower = text.get(..8).unwrap_or(text).to_ascii_lowercase();
    let rest = ["http://", "https://", "ftp://"]
        .iter()
        .find(|scheme| lower.starts_with(**scheme))
        .map(|scheme| &text[scheme.len()..]);
    rest.is_some_and(|r| !r.is_empty() && !r.chars().any(char::is_whitespace))
}

/// Ajv 6's `uuid`: 8-4-4-4-12 hexadecimal digits, optionally as a `urn:uuid:`.
fn is_uuid(text: &str) -> bool {
    let text = text
        .get(..9)
        .filter(|p| p.eq_ignore_ascii_case("urn:uuid:"))
        .map_or(text, |_| &text[9..]);
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, len)| g.len() == len && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Ajv 6's `json-pointer-uri-fragment`: `#` then `/`-separated tokens.
fn is_pointer_fragment(text: &str) -> bool {
    text.strip_prefix('#')
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn holds(schema: Value, instance: Value) -> bool {
        AjvSchema::compile(&schema, "schema")
            .unwrap()
            .holds(&instance)
    }

    #[test]
    fn strings_are_coerced_to_the_declared_type() {
        let schema = json!({"$id": "person", "type": "object", "required": ["age", "vip"],
            "properties": {"age": {"type": "integer"}, "vip": {"type": "boolean"},
                           "name": {"type": "string"}}});
        assert!(holds(
            schema.clone(),
            json!({"age": "30", "vip": "true", "name": 7})
        ));
        assert!(!holds(
            schema.clone(),
            json!({"age": "30.5", "vip": "true"})
        ));
        assert!(!holds(schema.clone(), json!({"age": "x", "vip": "true"})));
        assert!(!holds(schema, json!({"age": 30, "vip": "yes"})));
    }

    #[test]
    fn defaults_satisfy_required() {
        let schema = json!({"type": "object", "required": ["kind"],
            "properties": {"kind": {"type": "string", "default": "a"}}});
        assert!(holds(schema, json!({})));
    }

    #[test]
    fn local_refs_and_items_are_followed() {
        let schema = json!({"definitions": {"n": {"type": "number"}},
            "type": "array", "items": {"$ref": "#/definitions/n"}});
        assert!(holds(schema.clone(), json!(["1", 2, "3e2"])));
        assert!(!holds(schema, json!(["one"])));
        let recursive = json!({"type": "object", "properties": {"next": {"$ref": "#"}}});
        assert!(holds(recursive, json!({"next": {"next": {}}})));
    }

    #[test]
    fn formats_are_asserted_as_ajv_does() {
        let schema = |format: &str| json!({"type": "string", "format": format});
        assert!(holds(schema("email"), json!("a@example.com")));
        assert!(!holds(schema("email"), json!("nope")));
        assert!(holds(schema("url"), json!("https://example.com/x")));
        assert!(!holds(schema("url"), json!("mailto:a@b")));
        assert!(holds(
            schema("uuid"),
            json!("0f8fad5b-d9cb-469f-a165-70867728950e")
        ));
        assert!(!holds(schema("uuid"), json!("0f8fad5b")));
        assert!(AjvSchema::compile(&schema("int32"), "s").is_err());
    }

    #[test]
    fn drafts_follow_schema() {
        assert_eq!(ajv_draft(&json!({})), Ok(AjvDraft::Draft7));
        assert_eq!(
            ajv_draft(&json!({"$schema": "http://json-schema.org/draft-04/schema#"})),
            Ok(AjvDraft::Draft4)
        );
        let err = ajv_draft(&json!({"$schema": "https://json-schema.org/draft/2020-12/schema"}))
            .unwrap_err();
        assert!(err.contains("draft-07"), "{err}");
        // Draft-07's tuple `items` and `additionalItems`.
        let tuple =
            json!({"type": "array", "items": [{"type": "string"}], "additionalItems": false});
        assert!(holds(tuple.clone(), json!(["a"])));
        assert!(!holds(tuple, json!(["a", "b"])));
    }

    #[test]
    fn relative_ids_compile() {
        let schema = json!({"$id": "schema1", "type": "object",
            "properties": {"a": {"$ref": "#/definitions/a"}}, "definitions": {"a": {"type": "string"}}});
        assert!(holds(schema.clone(), json!({"a": "x"})));
        assert!(!holds(schema, json!({"a": {}})));
    }
}
