//! OpenAPI schemas into self-contained JSON Schema 2020-12, for the `validate` step.
//!
//! - **Bundling.** Every local `$ref` the schema reaches is copied (converted) under the
//!   result's `$defs` and the reference rewritten to it, so the gateway never resolves anything
//!   outside the schema. Recursive schemas stay recursive through their `$defs` entry.
//! - **OpenAPI 3.0 and Swagger 2.0 dialect.** `nullable: true` (Swagger's `x-nullable`) adds
//!   `"null"` to `type` (and to `enum`); boolean `exclusiveMinimum`/`exclusiveMaximum` become
//!   the numeric keywords; siblings of a `$ref` are ignored (as those versions say); Swagger's
//!   `type: file` is dropped. OpenAPI 3.1 schemas are JSON Schema 2020-12 already and are only
//!   bundled.
//! - **Annotations dropped** in every version: `x-…` keys, `example`, `xml`, `externalDocs`,
//!   `discriminator` (the schema's `oneOf`/`anyOf` still decides).
//! - **Direction.** A `readOnly` property is not required in a request, a `writeOnly` one not
//!   in a response (OpenAPI 3.0's rule).

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::document::{child, Document};
use super::refs;

/// The schema dialect of a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// Swagger 2.0's schema object.
    Swagger2,
    /// OpenAPI 3.0's schema object.
    OpenApi30,
    /// OpenAPI 3.1 and 3.2: JSON Schema 2020-12.
    JsonSchema,
}

/// Which message a schema checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// A request (parameters, body).
    Request,
    /// A response body.
    Response,
}

/// A schema that cannot be bundled: the document pointer and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleError {
    /// Where in the document.
    pub pointer: String,
    /// What is wrong.
    pub message: String,
}

/// Converts the schema at `pointer` of `doc` (or `inline`, a schema built by the loader whose
/// `$ref`s point into `doc`) into a self-contained JSON Schema 2020-12 document.
pub fn bundle(
    doc: &Document,
    pointer: &str,
    inline: Option<&Value>,
    dialect: Dialect,
    direction: Direction,
) -> Result<Value, BundleError> {
    let mut bundler = Bundler {
        doc,
        dialect,
        direction,
        names: HashMap::new(),
        queue: Vec::new(),
        defs: Map::new(),
    };
    let root = match inline {
        Some(value) => bundler.convert(value, pointer)?,
        None => {
            let value = doc.get(pointer).ok_or_else(|| BundleError {
                pointer: pointer.to_string(),
                message: "no schema here".into(),
            })?;
            bundler.convert(value, pointer)?
        }
    };
    while let Some((target, name)) = bundler.queue.pop() {
        let value = doc.get(&target).ok_or_else(|| BundleError {
            pointer: target.clone(),
            message: format!("$ref \"#{target}\" does not resolve"),
        })?;
        let converted = bundler.convert(value, &target)?;
        bundler.defs.insert(name, converted);
    }
    Ok(match root {
        Value::Object(mut map) if !bundler.defs.is_empty() => {
            map.insert("$defs".into(), Value::Object(bundler.defs));
            Value::Object(map)
        }
        // A bare boolean schema with definitions cannot hold them: wrap it.
        other if !bundler.defs.is_empty() => {
            let mut map = Map::new();
            map.insert("allOf".into(), Value::Array(vec![other]));
            map.insert("$defs".into(), Value::Object(bundler.defs));
            Value::Object(map)
        }
        other => other,
    })
}

struct Bundler<'d> {
    doc: &'d Document,
    dialect: Dialect,
    direction: Direction,
    /// Document pointer → its name under `$defs`.
    names: HashMap<String, String>,
    /// Referenced schemas still to convert.
    queue: Vec<(String, String)>,
    defs: Map<String, Value>,
}

/// Keywords whose value is one schema.
const ONE_SCHEMA: [&str; 12] = [
    "additionalProperties",
    "not",
    "additionalItems",
    "contains",
    "propertyNames",
    "if",
    "then",
    "else",
    "unevaluatedItems",
    "unevaluatedProperties",
    "contentSchema",
    "items",
];
/// Keywords whose value is a list of schemas.
const SCHEMA_LISTS: [&str; 4] = ["allOf", "anyOf", "oneOf", "prefixItems"];
/// Keywords whose value maps names to schemas.
const SCHEMA_MAPS: [&str; 5] = [
    "properties",
    "patternProperties",
    "$defs",
    "definitions",
    "dependentSchemas",
];
/// Annotations of OpenAPI that JSON Schema does not need.
const DROPPED: [&str; 4] = ["example", "xml", "externalDocs", "discriminator"];

impl Bundler<'_> {
    /// The `$defs` name of the schema at `target`, queued for conversion on first use.
    fn name_for(&mut self, target: &str) -> String {
        if let Some(name) = self.names.get(target) {
            return name.clone();
        }
        let last = target
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .replace("~1", "/")
            .replace("~0", "~");
        let mut base: String = last
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        if base.is_empty() {
            base = "schema".into();
        }
        let mut name = base.clone();
        let mut n = 1;
        while self.names.values().any(|taken| *taken == name) {
            n += 1;
            name = format!("{base}_{n}");
        }
        self.names.insert(target.to_string(), name.clone());
        self.queue.push((target.to_string(), name.clone()));
        name
    }

    fn convert(&mut self, value: &Value, pointer: &str) -> Result<Value, BundleError> {
        let Value::Object(map) = value else {
            return Ok(value.clone());
        };
        let mut out = Map::new();
        if let Some(reference) = refs::ref_of(value) {
            let target = reference
                .strip_prefix('#')
                .filter(|p| p.is_empty() || p.starts_with('/'))
                .ok_or_else(|| BundleError {
                    pointer: child(pointer, "$ref"),
                    message: format!("$ref {reference:?} points outside this file"),
                })?;
            let name = self.name_for(target);
            out.insert("$ref".into(), Value::String(format!("#/$defs/{name}")));
            if self.dialect != Dialect::JsonSchema {
                return Ok(Value::Object(out));
            }
        }
        let openapi = self.dialect != Dialect::JsonSchema;
        for (key, v) in map {
            let at = child(pointer, key);
            if key == "$ref" || key.starts_with("x-") || DROPPED.contains(&key.as_str()) {
                continue;
            }
            let converted = if ONE_SCHEMA.contains(&key.as_str()) {
                match v {
                    // Draft 4's tuple `items` (Swagger 2.0 has none, but be lenient).
                    Value::Array(list) if key == "items" => {
                        out.insert("prefixItems".into(), self.list(list, &at)?);
                        continue;
                    }
                    _ => self.convert(v, &at)?,
                }
            } else if SCHEMA_LISTS.contains(&key.as_str()) {
                match v {
                    Value::Array(list) => self.list(list, &at)?,
                    other => other.clone(),
                }
            } else if SCHEMA_MAPS.contains(&key.as_str()) {
                match v {
                    Value::Object(entries) => {
                        let mut converted = Map::new();
                        for (name, schema) in entries {
                            converted
                                .insert(name.clone(), self.convert(schema, &child(&at, name))?);
                        }
                        Value::Object(converted)
                    }
                    other => other.clone(),
                }
            } else if openapi
                && ((key == "type" && v.as_str() == Some("file")) || key == "nullable")
            {
                continue;
            } else {
                v.clone()
            };
            out.insert(key.clone(), converted);
        }
        if openapi {
            for (exclusive, inclusive) in [
                ("exclusiveMinimum", "minimum"),
                ("exclusiveMaximum", "maximum"),
            ] {
                if let Some(Value::Bool(flag)) = out.get(exclusive).cloned() {
                    out.remove(exclusive);
                    if flag {
                        if let Some(limit) = out.remove(inclusive) {
                            out.insert(exclusive.into(), limit);
                        }
                    }
                }
            }
            let nullable = map.get("nullable").and_then(Value::as_bool) == Some(true)
                || (self.dialect == Dialect::Swagger2
                    && map.get("x-nullable").and_then(Value::as_bool) == Some(true));
            if nullable {
                match out.get_mut("type") {
                    Some(Value::String(t)) => {
                        let t = std::mem::take(t);
                        out.insert("type".into(), serde_json::json!([t, "null"]));
                    }
                    Some(Value::Array(types)) if !types.contains(&Value::from("null")) => {
                        types.push(Value::from("null"))
                    }
                    _ => {}
                }
                if let Some(Value::Array(values)) = out.get_mut("enum") {
                    if !values.contains(&Value::Null) {
                        values.push(Value::Null);
                    }
                }
            }
        }
        self.drop_one_sided_required(map, pointer, &mut out);
        Ok(Value::Object(out))
    }

    fn list(&mut self, list: &[Value], at: &str) -> Result<Value, BundleError> {
        list.iter()
            .enumerate()
            .map(|(i, s)| self.convert(s, &child(at, &i.to_string())))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array)
    }

    /// Removes from `required` the properties this direction never carries: `readOnly` ones
    /// in a request, `writeOnly` ones in a response.
    fn drop_one_sided_required(
        &self,
        original: &Map<String, Value>,
        pointer: &str,
        out: &mut Map<String, Value>,
    ) {
        let flag = match self.direction {
            Direction::Request => "readOnly",
            Direction::Response => "writeOnly",
        };
        let Some(Value::Object(properties)) = original.get("properties") else {
            return;
        };
        let one_sided = |name: &str| {
            let at = child(&child(pointer, "properties"), name);
            let resolved = if properties.get(name).and_then(refs::ref_of).is_some() {
                refs::resolve(self.doc, &at).ok().map(|(v, _)| v)
            } else {
                properties.get(name)
            };
            resolved.and_then(|s| s.get(flag)).and_then(Value::as_bool) == Some(true)
        };
        if let Some(Value::Array(required)) = out.get_mut("required") {
            required.retain(|name| !name.as_str().is_some_and(one_sided));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(text: &str) -> Document {
        Document::parse("api.yaml", text).unwrap()
    }

    #[test]
    fn openapi_30_nullable_and_boolean_exclusive_bounds_become_json_schema() {
        let d = doc("openapi: 3.0.0\ncomponents:\n  schemas:\n    N:\n      type: integer\n      nullable: true\n      minimum: 0\n      exclusiveMinimum: true\n      maximum: 9\n      exclusiveMaximum: false\n      example: 3\n      x-internal: yes\n    E:\n      type: string\n      nullable: true\n      enum: [a, b]\n");
        let n = bundle(
            &d,
            "/components/schemas/N",
            None,
            Dialect::OpenApi30,
            Direction::Request,
        )
        .unwrap();
        assert_eq!(
            n,
            json!({"type": ["integer", "null"], "exclusiveMinimum": 0, "maximum": 9})
        );
        let e = bundle(
            &d,
            "/components/schemas/E",
            None,
            Dialect::OpenApi30,
            Direction::Request,
        )
        .unwrap();
        assert_eq!(
            e,
            json!({"type": ["string", "null"], "enum": ["a", "b", null]})
        );
    }

    #[test]
    fn refs_are_bundled_under_defs_including_recursive_ones() {
        let d = doc("openapi: 3.0.0\ncomponents:\n  schemas:\n    Node:\n      type: object\n      properties:\n        children:\n          type: array\n          items:\n            $ref: '#/components/schemas/Node'\n        tag:\n          $ref: '#/components/schemas/Tag'\n    Tag:\n      type: string\n");
        let b = bundle(
            &d,
            "/components/schemas/Node",
            None,
            Dialect::OpenApi30,
            Direction::Request,
        )
        .unwrap();
        assert_eq!(
            b["properties"]["children"]["items"],
            json!({"$ref": "#/$defs/Node"})
        );
        assert_eq!(b["properties"]["tag"], json!({"$ref": "#/$defs/Tag"}));
        assert_eq!(b["$defs"]["Tag"], json!({"type": "string"}));
        assert_eq!(
            b["$defs"]["Node"]["properties"]["children"]["items"],
            json!({"$ref": "#/$defs/Node"})
        );
        // The bundle compiles and validates recursively.
        let schema = mgw_runtime::policies::validate::compile::Schema::compile(&b, "body").unwrap();
        assert!(schema.is_valid(&json!({"children": [{"children": [], "tag": "x"}]})));
        assert!(!schema.is_valid(&json!({"children": [{"tag": 1}]})));
    }

    #[test]
    fn read_only_properties_are_not_required_in_requests() {
        let d = doc("openapi: 3.0.0\ncomponents:\n  schemas:\n    Pet:\n      required: [id, name, secret]\n      properties:\n        id:\n          type: integer\n          readOnly: true\n        name:\n          type: string\n        secret:\n          $ref: '#/components/schemas/Secret'\n    Secret:\n      type: string\n      writeOnly: true\n");
        let request = bundle(
            &d,
            "/components/schemas/Pet",
            None,
            Dialect::OpenApi30,
            Direction::Request,
        )
        .unwrap();
        assert_eq!(request["required"], json!(["name", "secret"]));
        let response = bundle(
            &d,
            "/components/schemas/Pet",
            None,
            Dialect::OpenApi30,
            Direction::Response,
        )
        .unwrap();
        assert_eq!(response["required"], json!(["id", "name"]));
    }

    #[test]
    fn openapi_31_schemas_keep_their_keywords_and_ref_siblings() {
        let d = doc("openapi: 3.1.0\ncomponents:\n  schemas:\n    A:\n      $ref: '#/components/schemas/B'\n      description: d\n      type: [string, 'null']\n      exclusiveMinimum: 3\n    B:\n      type: string\n");
        let a = bundle(
            &d,
            "/components/schemas/A",
            None,
            Dialect::JsonSchema,
            Direction::Request,
        )
        .unwrap();
        assert_eq!(a["$ref"], json!("#/$defs/B"));
        assert_eq!(a["type"], json!(["string", "null"]));
        assert_eq!(a["exclusiveMinimum"], json!(3));
    }

    #[test]
    fn swagger_x_nullable_and_file_type() {
        let d = doc("swagger: '2.0'\ndefinitions:\n  A:\n    type: string\n    x-nullable: true\n  F:\n    type: file\n");
        let a = bundle(
            &d,
            "/definitions/A",
            None,
            Dialect::Swagger2,
            Direction::Request,
        )
        .unwrap();
        assert_eq!(a, json!({"type": ["string", "null"]}));
        let f = bundle(
            &d,
            "/definitions/F",
            None,
            Dialect::Swagger2,
            Direction::Request,
        )
        .unwrap();
        assert_eq!(f, json!({}));
    }
}
