//! Which WSO2 resources validate, and the schemas their `validate` step checks (see
//! `mgw_runtime::policies::validate`).
//!
//! On or off: `[validation] request / response` of `conf/micro-gw.toml` (WSO2's
//! `enableRequestValidation` / `enableResponseValidation`), overridden per API and per operation
//! by `x-mgw-validation: {request: true|false, response: true|false}`. For a resource that
//! validates, the loader extracts its parameters (path, query, header; the operation's override
//! the path item's), its JSON request body (OpenAPI 3 `requestBody` with an `application/json`
//! or `+json` media type; Swagger 2.0's `in: body` parameter) and its JSON responses by status,
//! each bundled into self-contained JSON Schema ([`super::schemas`]) and checked for shape here
//! ([`check_spec`]); the gateway compiles them when it starts.

use serde_json::Value;

use mgw_runtime::policies::validate::{
    BodySchema, ParameterLocation, ParameterSchema, RequestSchemas, ResponseSchema, ValidateSpec,
    ValueType,
};

use super::diagnostics::Diagnostics;
use super::document::{child, Document};
use super::openapi::{LoadedApi, SpecVersion};
use super::refs;
use super::schemas::{bundle, Dialect, Direction};

/// The extension that turns validation on or off for an API or an operation.
pub const EXTENSION: &str = "x-mgw-validation";

/// What `conf/micro-gw.toml` `[validation]` asks for, before the extensions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ValidationDefault {
    /// Validate requests.
    pub request: bool,
    /// Validate responses.
    pub response: bool,
}

/// The `validate` step of each resource of `api` (same order as its resources), `None` where
/// nothing is checked.
pub fn api_validation(
    doc: &Document,
    api: &LoadedApi,
    defaults: ValidationDefault,
    diags: &mut Diagnostics,
) -> Vec<Option<ValidateSpec>> {
    let dialect = match api.version {
        SpecVersion::Swagger2 => Dialect::Swagger2,
        _ if doc
            .get("/openapi")
            .and_then(Value::as_str)
            .is_some_and(|v| v.starts_with("3.0"))
            || doc.get("/openapi").is_some_and(Value::is_number) =>
        {
            Dialect::OpenApi30
        }
        _ => Dialect::JsonSchema,
    };
    let (api_request, api_response) = switches(doc, "", diags);
    let mut specs = Vec::with_capacity(api.api.resources.len());
    for (index, (item, op)) in api.pointers.iter().enumerate() {
        let (op_request, op_response) = switches(doc, op, diags);
        let request = op_request.or(api_request).unwrap_or(defaults.request);
        let response = op_response.or(api_response).unwrap_or(defaults.response);
        if !request && !response {
            specs.push(None);
            continue;
        }
        let resource = &api.api.resources[index];
        let line = api.lines.get(index).copied().flatten();
        let mut fail = |pointer: &str, message: String| {
            diags.error(
                &doc.file,
                doc.line(pointer).or(line),
                format!(
                    "{} {}: {message} (at {pointer}); fix the schema, or turn validation off for this operation with {EXTENSION}",
                    resource.method, resource.path
                ),
            )
        };
        let extracted = (|| -> Result<ValidateSpec, (String, String)> {
            let request = if request {
                let schemas = request_schemas(doc, dialect, item, op)?;
                (!schemas.parameters.is_empty() || schemas.body.is_some()).then_some(schemas)
            } else {
                None
            };
            let response = if response {
                let list = responses(doc, dialect, op)?;
                list.iter().any(|r| r.schema.is_some()).then_some(list)
            } else {
                None
            };
            Ok(ValidateSpec { request, response })
        })();
        let spec = match extracted {
            Ok(spec) => spec,
            Err((pointer, message)) => {
                fail(&pointer, message);
                specs.push(None);
                continue;
            }
        };
        if spec.request.is_none() && spec.response.is_none() {
            specs.push(None);
            continue;
        }
        if let Err((pointer, message)) = check_spec(&spec) {
            fail(op, format!("schema at {pointer}: {message}"));
            specs.push(None);
            continue;
        }
        specs.push(Some(spec));
    }
    specs
}

/// The JSON Schema types (draft 2020-12, §6.1.1).
const TYPES: [&str; 7] = [
    "string", "number", "integer", "boolean", "object", "array", "null",
];

/// The build's check of every schema of `spec`: the keywords a mistyped definition gets wrong
/// (`type`, `required`, `pattern`, `enum`, the schema-valued keywords) have the shape JSON
/// Schema gives them. The toolkit does not link the gateway's JSON Schema compiler (it would
/// bring a regex engine into every `cargo install`); the gateway compiles the same schemas when
/// it starts and refuses to start, naming the API and resource, on anything else.
///
/// Errors: the schema's own JSON pointer (`#/properties/n/type`) and what is wrong.
fn check_spec(spec: &ValidateSpec) -> Result<(), (String, String)> {
    let request = spec.request.iter().flat_map(|r| {
        r.parameters
            .iter()
            .map(|p| &p.schema)
            .chain(r.body.iter().map(|b| &b.schema))
    });
    let responses = spec
        .response
        .iter()
        .flatten()
        .filter_map(|r| r.schema.as_ref());
    for schema in request.chain(responses) {
        check_schema(schema, "#", Rules::OpenApi)?;
    }
    Ok(())
}

/// Which extra rules [`check_schema`] applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rules {
    /// The schemas extracted from OpenAPI (bundled, JSON Schema 2020-12).
    OpenApi,
    /// Express Gateway's `json-schema` condition (Ajv 6): `format`s Ajv knows, local `$ref`s
    /// only (Express Gateway fetches the others when it starts; micro-gw does not).
    Ajv,
}

/// [`check_spec`] for one schema and what it contains (`at`: its JSON pointer, `#` for the
/// root). Errors: the pointer of the offending keyword and what is wrong.
pub(crate) fn check_schema(schema: &Value, at: &str, rules: Rules) -> Result<(), (String, String)> {
    let object = match schema {
        Value::Bool(_) => return Ok(()),
        Value::Object(object) => object,
        other => {
            return Err((
                at.to_string(),
                format!("a schema must be an object, not {other}"),
            ))
        }
    };
    let here = |key: &str| child(at, key);
    if let Some(kind) = object.get("type") {
        let names: Vec<&Value> = match kind {
            Value::Array(items) => items.iter().collect(),
            one => vec![one],
        };
        for name in names {
            if !name.as_str().is_some_and(|n| TYPES.contains(&n)) {
                return Err((
                    here("type"),
                    format!("{name} is not a JSON Schema type ({})", TYPES.join(", ")),
                ));
            }
        }
    }
    if let Some(required) = object.get("required") {
        if !required
            .as_array()
            .is_some_and(|r| r.iter().all(Value::is_string))
        {
            return Err((
                here("required"),
                "required must be a list of property names".into(),
            ));
        }
    }
    if let Some(pattern) = object.get("pattern") {
        if !pattern.is_string() {
            return Err((here("pattern"), "pattern must be a string".into()));
        }
    }
    if let Some(values) = object.get("enum") {
        if !values.is_array() {
            return Err((here("enum"), "enum must be a list".into()));
        }
    }
    if rules == Rules::Ajv {
        use mgw_runtime::policies::validate::AJV_FORMATS;
        if let Some(format) = object.get("format") {
            if !format.as_str().is_some_and(|f| AJV_FORMATS.contains(&f)) {
                return Err((
                    here("format"),
                    format!(
                        "unknown format {format} (Express Gateway's Ajv refuses to start with it); use one of {}, or remove it",
                        AJV_FORMATS.join(", ")
                    ),
                ));
            }
        }
        if let Some(reference) = object.get("$ref") {
            if !reference.as_str().is_some_and(|r| r.starts_with('#')) {
                return Err((
                    here("$ref"),
                    format!("{reference} is not inside this schema: Express Gateway downloads it when it starts, micro-gw does not; copy it under `definitions` and refer to it as \"#/definitions/<name>\""),
                ));
            }
        }
    }
    for key in [
        "items",
        "not",
        "additionalProperties",
        "if",
        "then",
        "else",
        "contains",
        "propertyNames",
        "additionalItems",
    ] {
        if let Some(sub) = object.get(key) {
            if !sub.is_array() {
                check_schema(sub, &here(key), rules)?;
            }
        }
    }
    if let Some(Value::Array(tuple)) = object.get("items") {
        for (i, sub) in tuple.iter().enumerate() {
            check_schema(sub, &child(&here("items"), &i.to_string()), rules)?;
        }
    }
    for key in ["allOf", "anyOf", "oneOf", "prefixItems"] {
        if let Some(list) = object.get(key) {
            let Some(list) = list.as_array() else {
                return Err((here(key), format!("{key} must be a list of schemas")));
            };
            for (i, sub) in list.iter().enumerate() {
                check_schema(sub, &child(&here(key), &i.to_string()), rules)?;
            }
        }
    }
    for key in [
        "properties",
        "$defs",
        "definitions",
        "patternProperties",
        "dependentSchemas",
    ] {
        if let Some(map) = object.get(key) {
            let Some(map) = map.as_object() else {
                return Err((here(key), format!("{key} must be a mapping of schemas")));
            };
            for (name, sub) in map {
                check_schema(sub, &child(&here(key), name), rules)?;
            }
        }
    }
    Ok(())
}

/// The `x-mgw-validation` at `pointer` (`""`: the API): its `request` and `response`.
fn switches(
    doc: &Document,
    pointer: &str,
    diags: &mut Diagnostics,
) -> (Option<bool>, Option<bool>) {
    let at = child(pointer, EXTENSION);
    let Some(value) = doc.get(&at) else {
        return (None, None);
    };
    let fix = "write it as {request: true|false, response: true|false}";
    let Some(map) = value.as_object() else {
        diags.error(
            &doc.file,
            doc.line(&at),
            format!("{EXTENSION} must be a mapping: {fix}"),
        );
        return (None, None);
    };
    let mut found = (None, None);
    for (key, v) in map {
        let slot = match key.as_str() {
            "request" => &mut found.0,
            "response" => &mut found.1,
            other => {
                diags.error(
                    &doc.file,
                    doc.line(&child(&at, key)),
                    format!("{EXTENSION} has no key {other:?}: {fix}"),
                );
                continue;
            }
        };
        match v.as_bool() {
            Some(flag) => *slot = Some(flag),
            None => diags.error(
                &doc.file,
                doc.line(&child(&at, key)),
                format!("{EXTENSION}.{key} must be true or false, not {v}"),
            ),
        }
    }
    found
}

type Extracted<T> = Result<T, (String, String)>;

fn resolved<'d>(doc: &'d Document, pointer: &str) -> Extracted<(&'d Value, String)> {
    refs::resolve(doc, pointer).map_err(|e| (pointer.to_string(), e.to_string()))
}

fn schema_of(
    doc: &Document,
    pointer: &str,
    inline: Option<&Value>,
    dialect: Dialect,
    direction: Direction,
) -> Extracted<Value> {
    bundle(doc, pointer, inline, dialect, direction).map_err(|e| (e.pointer, e.message))
}

/// `application/json`, `application/problem+json`, with or without parameters.
fn is_json(media_type: &str) -> bool {
    let essence = media_type.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("application/json")
        || (essence.len() > 5 && essence.to_ascii_lowercase().ends_with("+json"))
}

fn request_schemas(
    doc: &Document,
    dialect: Dialect,
    item: &str,
    op: &str,
) -> Extracted<RequestSchemas> {
    // The operation's parameters override the path item's of the same name and location.
    let mut declared: Vec<(String, String, String)> = Vec::new();
    for owner in [item, op] {
        let list = child(owner, "parameters");
        let count = doc.get(&list).and_then(Value::as_array).map_or(0, Vec::len);
        for i in 0..count {
            let (param, at) = resolved(doc, &child(&list, &i.to_string()))?;
            let name = param
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let location = param.get("in").and_then(Value::as_str).unwrap_or_default();
            declared.retain(|(n, l, _)| !(n == name && l == location));
            declared.push((name.to_string(), location.to_string(), at));
        }
    }
    let mut schemas = RequestSchemas::default();
    for (name, location, at) in declared {
        let Some(param) = doc.get(&at) else { continue };
        let required = param.get("required").and_then(Value::as_bool) == Some(true);
        let location = match location.as_str() {
            "path" => ParameterLocation::Path,
            "query" => ParameterLocation::Query,
            "header" => ParameterLocation::Header,
            "body" if dialect == Dialect::Swagger2 => {
                let consumes = doc
                    .get(&child(op, "consumes"))
                    .or_else(|| doc.get("/consumes"))
                    .and_then(Value::as_array);
                let types: Vec<&str> = consumes
                    .map(|c| c.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                if !types.is_empty() && !types.iter().any(|t| is_json(t)) {
                    continue;
                }
                schemas.body = Some(BodySchema {
                    required,
                    other_types: types.iter().any(|t| !is_json(t)),
                    schema: schema_of(
                        doc,
                        &child(&at, "schema"),
                        None,
                        dialect,
                        Direction::Request,
                    )?,
                });
                continue;
            }
            // Cookies and Swagger 2.0's formData are not checked.
            _ => continue,
        };
        let (schema, value) = if dialect == Dialect::Swagger2 {
            // The parameter object is its own schema (type, items, enum, bounds, pattern).
            let mut inline = serde_json::Map::new();
            if let Some(map) = param.as_object() {
                for (key, v) in map {
                    if !matches!(
                        key.as_str(),
                        "name"
                            | "in"
                            | "required"
                            | "description"
                            | "collectionFormat"
                            | "allowEmptyValue"
                    ) {
                        inline.insert(key.clone(), v.clone());
                    }
                }
            }
            let inline = Value::Object(inline);
            let separator = match param.get("collectionFormat").and_then(Value::as_str) {
                Some("multi") if location == ParameterLocation::Query => None,
                Some("ssv") => Some(' '),
                Some("tsv") => Some('\t'),
                Some("pipes") => Some('|'),
                _ => Some(','),
            };
            let value = value_type(doc, &inline, separator);
            (
                schema_of(doc, &at, Some(&inline), dialect, Direction::Request)?,
                value,
            )
        } else {
            let schema_at = child(&at, "schema");
            let Some(raw) = doc.get(&schema_at) else {
                // `content` parameters (a JSON-encoded value) are not checked.
                continue;
            };
            let style = param.get("style").and_then(Value::as_str);
            let explode = param.get("explode").and_then(Value::as_bool).unwrap_or(
                matches!(style, None | Some("form")) && location == ParameterLocation::Query,
            );
            let separator = match (location, style) {
                (ParameterLocation::Query, Some("spaceDelimited")) => Some(' '),
                (ParameterLocation::Query, Some("pipeDelimited")) => Some('|'),
                (ParameterLocation::Query, _) if explode => None,
                _ => Some(','),
            };
            let raw = refs::resolve(doc, &schema_at)
                .map(|(v, _)| v)
                .unwrap_or(raw);
            (
                schema_of(doc, &schema_at, None, dialect, Direction::Request)?,
                value_type(doc, raw, separator),
            )
        };
        schemas.parameters.push(ParameterSchema {
            name,
            location,
            required: required || location == ParameterLocation::Path,
            value,
            schema,
        });
    }
    if dialect != Dialect::Swagger2 && doc.get(&child(op, "requestBody")).is_some() {
        let (body, at) = resolved(doc, &child(op, "requestBody"))?;
        let content = child(&at, "content");
        if let Some(media) = body.get("content").and_then(Value::as_object) {
            let json = media
                .iter()
                .find(|(t, m)| is_json(t) && m.get("schema").is_some());
            if let Some((media_type, _)) = json {
                schemas.body = Some(BodySchema {
                    required: body.get("required").and_then(Value::as_bool) == Some(true),
                    other_types: media.keys().any(|t| !is_json(t)),
                    schema: schema_of(
                        doc,
                        &child(&child(&content, media_type), "schema"),
                        None,
                        dialect,
                        Direction::Request,
                    )?,
                });
            }
        }
    }
    Ok(schemas)
}

/// How a parameter's text is read, from its schema's `type` (following `$ref`s).
fn value_type(doc: &Document, schema: &Value, separator: Option<char>) -> ValueType {
    let schema = match refs::ref_of(schema).and_then(|r| r.strip_prefix('#')) {
        Some(target) => refs::resolve(doc, target).map(|(v, _)| v).unwrap_or(schema),
        None => schema,
    };
    let kind = match schema.get("type") {
        Some(Value::String(t)) => Some(t.as_str()),
        // `[integer, "null"]`: the one non-null type.
        Some(Value::Array(types)) => {
            let mut named = types
                .iter()
                .filter_map(Value::as_str)
                .filter(|t| *t != "null");
            match (named.next(), named.next()) {
                (Some(t), None) => Some(t),
                _ => None,
            }
        }
        _ => None,
    };
    match kind {
        Some("string") => ValueType::String,
        Some("integer") => ValueType::Integer,
        Some("number") => ValueType::Number,
        Some("boolean") => ValueType::Boolean,
        Some("array") => ValueType::Array {
            items: Box::new(
                schema
                    .get("items")
                    .map_or(ValueType::Any, |items| value_type(doc, items, None)),
            ),
            separator,
        },
        _ => ValueType::Any,
    }
}

fn responses(doc: &Document, dialect: Dialect, op: &str) -> Extracted<Vec<ResponseSchema>> {
    let list = child(op, "responses");
    let Some(map) = doc.get(&list).and_then(Value::as_object) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for status in map.keys().filter(|k| !k.starts_with("x-")) {
        let (response, at) = resolved(doc, &child(&list, status))?;
        let schema = if dialect == Dialect::Swagger2 {
            match response.get("schema") {
                Some(_) => Some(schema_of(
                    doc,
                    &child(&at, "schema"),
                    None,
                    dialect,
                    Direction::Response,
                )?),
                None => None,
            }
        } else {
            let content = child(&at, "content");
            match response
                .get("content")
                .and_then(Value::as_object)
                .and_then(|m| {
                    m.iter()
                        .find(|(t, m)| is_json(t) && m.get("schema").is_some())
                }) {
                Some((media_type, _)) => Some(schema_of(
                    doc,
                    &child(&child(&content, media_type), "schema"),
                    None,
                    dialect,
                    Direction::Response,
                )?),
                None => None,
            }
        };
        out.push(ResponseSchema {
            status: status.clone(),
            schema,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loader::{load_project, LoadOptions, SourceFile};
    use mgw_runtime::model::PolicySpec;

    fn load(text: &str, defaults: ValidationDefault) -> Result<crate::loader::Loaded, String> {
        let files = [SourceFile {
            name: "api.yaml".into(),
            text: text.into(),
        }];
        let options = LoadOptions {
            validation: defaults,
            ..Default::default()
        };
        load_project("p", &files, None, &options).map_err(|f| f.error.to_string())
    }

    fn validate_steps(loaded: &crate::loader::Loaded) -> Vec<&ValidateSpec> {
        loaded
            .model
            .pipelines
            .iter()
            .flat_map(|p| &p.steps)
            .filter_map(|s| match &s.policy {
                PolicySpec::Validate(spec) => Some(spec),
                _ => None,
            })
            .collect()
    }

    const HEAD: &str = "openapi: 3.0.0\ninfo: {title: A, version: '1'}\nx-wso2-basePath: /a\nx-wso2-disable-security: true\nx-wso2-production-endpoints: {urls: ['http://127.0.0.1:1']}\n";

    #[test]
    fn conf_turns_validation_on_and_operations_turn_it_off() {
        let text = format!("{HEAD}paths:\n  /p/{{id}}:\n    parameters:\n      - {{name: id, in: path, required: true, schema: {{type: integer}}}}\n    get:\n      parameters:\n        - {{name: tags, in: query, style: form, explode: false, schema: {{type: array, items: {{type: integer}}}}}}\n        - {{name: X-Id, in: header, schema: {{type: string}}}}\n    put:\n      x-mgw-validation: {{request: false}}\n      parameters:\n        - {{name: q, in: query, schema: {{type: string}}}}\n");
        let off = load(&text, ValidationDefault::default()).unwrap();
        assert!(validate_steps(&off).is_empty());
        let on = load(
            &text,
            ValidationDefault {
                request: true,
                response: false,
            },
        )
        .unwrap();
        let steps = validate_steps(&on);
        assert_eq!(steps.len(), 1, "PUT turned it off");
        let params = &steps[0].request.as_ref().unwrap().parameters;
        let names: Vec<(&str, ParameterLocation, bool)> = params
            .iter()
            .map(|p| (p.name.as_str(), p.location, p.required))
            .collect();
        assert_eq!(
            names,
            [
                ("id", ParameterLocation::Path, true),
                ("tags", ParameterLocation::Query, false),
                ("X-Id", ParameterLocation::Header, false)
            ]
        );
        assert_eq!(
            params[1].value,
            ValueType::Array {
                items: Box::new(ValueType::Integer),
                separator: Some(',')
            }
        );
    }

    #[test]
    fn swagger_2_body_parameters_and_collection_formats_are_read() {
        let text = "swagger: '2.0'\ninfo: {title: S, version: '1'}\nx-wso2-basePath: /s\nx-wso2-disable-security: true\nx-mgw-validation: {request: true, response: true}\nx-wso2-production-endpoints: {urls: ['http://127.0.0.1:1']}\nconsumes: [application/json]\npaths:\n  /pets:\n    post:\n      parameters:\n        - {name: body, in: body, required: true, schema: {$ref: '#/definitions/Pet'}}\n        - {name: ids, in: query, type: array, collectionFormat: pipes, items: {type: integer, minimum: 1}}\n      responses:\n        '201': {description: ok, schema: {$ref: '#/definitions/Pet'}}\n        default: {description: err}\ndefinitions:\n  Pet:\n    type: object\n    required: [name]\n    properties:\n      name: {type: string, x-nullable: true}\n";
        let loaded = load(text, ValidationDefault::default()).unwrap();
        let steps = validate_steps(&loaded);
        let request = steps[0].request.as_ref().unwrap();
        let body = request.body.as_ref().unwrap();
        assert!(body.required && !body.other_types);
        assert_eq!(body.schema["$ref"], "#/$defs/Pet");
        assert_eq!(
            body.schema["$defs"]["Pet"]["properties"]["name"]["type"],
            serde_json::json!(["string", "null"])
        );
        assert_eq!(
            request.parameters[0].value,
            ValueType::Array {
                items: Box::new(ValueType::Integer),
                separator: Some('|')
            }
        );
        let responses = steps[0].response.as_ref().unwrap();
        assert_eq!(responses.len(), 2);
        assert!(responses
            .iter()
            .any(|r| r.status == "201" && r.schema.is_some()));
    }

    #[test]
    fn an_invalid_schema_is_a_build_error_naming_file_line_and_pointer() {
        let text = format!("{HEAD}x-mgw-validation: {{request: true}}\npaths:\n  /p:\n    post:\n      requestBody:\n        content:\n          application/json:\n            schema:\n              type: object\n              properties:\n                n: {{type: int}}\n");
        let err = load(&text, ValidationDefault::default()).unwrap_err();
        assert!(err.contains("api.yaml"), "{err}");
        assert!(err.contains("POST /p"), "{err}");
        assert!(err.contains("#/properties/n/type"), "{err}");
        assert!(err.contains("x-mgw-validation"), "{err}");
    }

    #[test]
    fn a_malformed_extension_is_an_error_and_no_unknown_extension_warning_fires() {
        let bad = format!("{HEAD}x-mgw-validation: yes\npaths:\n  /p: {{get: {{}}}}\n");
        let err = load(&bad, ValidationDefault::default()).unwrap_err();
        assert!(err.contains("x-mgw-validation must be a mapping"), "{err}");
        let good = format!("{HEAD}x-mgw-validation: {{request: true}}\npaths:\n  /p: {{get: {{x-mgw-validation: {{response: true}}}}}}\n");
        let loaded = load(&good, ValidationDefault::default()).unwrap();
        assert!(
            loaded
                .warnings
                .iter()
                .all(|w| !w.to_string().contains("x-mgw-validation")),
            "{:?}",
            loaded.warnings
        );
    }
}
