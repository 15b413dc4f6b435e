//! Compiling the schemas of a [`ValidateSpec`] into validators, and writing what a validator
//! found as the bounded problem list of a fault description.
//!
//! One compiler serves the toolkit (a schema that does not compile is a build error) and the
//! gateway (validators built at start-up), so both accept exactly the same schemas.

use serde_json::Value;

use super::{ParameterLocation, ValidateSpec};

/// A schema `jsonschema` refuses (not valid JSON Schema 2020-12, or a `$ref` that does not
/// resolve inside it).
#[derive(Debug, thiserror::Error)]
#[error("{place}: the schema is not valid JSON Schema: {message} (at {pointer})")]
pub struct SchemaError {
    /// Which schema: `request body`, `query parameter 'limit'`, `response 200`.
    pub place: String,
    /// The JSON pointer inside the schema of the offending keyword (`#/properties/id/type`).
    pub pointer: String,
    /// What is wrong, as `jsonschema` says it.
    pub message: String,
}

/// One compiled JSON Schema.
pub struct Schema {
    validator: jsonschema::Validator,
}

impl std::fmt::Debug for Schema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Schema")
    }
}

impl Schema {
    /// Compiles `schema` as JSON Schema 2020-12, checking it against the meta-schema first.
    /// `format` is asserted (`date-time`, `email`, `uuid`, ...); formats JSON Schema does not
    /// define (OpenAPI's `int32`, `binary`, ...) are ignored. `place` names the schema in the
    /// error.
    pub fn compile(schema: &Value, place: &str) -> Result<Self, SchemaError> {
        Self::compile_with(
            jsonschema::options()
                .with_draft(jsonschema::Draft::Draft202012)
                .should_validate_formats(true),
            schema,
            place,
        )
    }

    /// Compiles `schema` with `options` (another draft, other formats).
    pub fn compile_with(
        options: jsonschema::ValidationOptions<'_>,
        schema: &Value,
        place: &str,
    ) -> Result<Self, SchemaError> {
        options
            .build(schema)
            .map(|validator| Schema { validator })
            .map_err(|err| SchemaError {
                place: place.to_string(),
                // Checked against the meta-schema, the schema is the instance.
                pointer: format!("#{}", err.instance_path().as_str()),
                message: err.to_string(),
            })
    }

    /// True when `instance` satisfies the schema (the fast path: no error is built).
    pub fn is_valid(&self, instance: &Value) -> bool {
        self.validator.is_valid(instance)
    }

    /// Adds what is wrong with `instance` to `problems`, each named `place` plus the JSON
    /// pointer inside the instance.
    pub fn report(&self, instance: &Value, place: &str, problems: &mut Problems) {
        for error in self.validator.iter_errors(instance) {
            if problems.full() {
                problems.count_more();
                continue;
            }
            let pointer = error.instance_path().as_str();
            let message = match error.kind() {
                jsonschema::error::ValidationErrorKind::Required { property } => {
                    format!("required property {property} is missing")
                }
                // Scalars are short and worth echoing; an object or array is named, not shown.
                _ if matches!(
                    error.instance().as_ref(),
                    Value::Object(_) | Value::Array(_)
                ) =>
                {
                    error.masked_with("the value").to_string()
                }
                _ => error.to_string(),
            };
            problems.push(format_args!("{place}#{pointer}: {message}"));
        }
    }
}

/// The compiled schemas of one resource's `validate` step.
#[derive(Debug)]
pub struct Compiled {
    /// Each parameter's schema, in the order of the spec's parameters.
    pub parameters: Vec<Schema>,
    /// The request body's.
    pub body: Option<Schema>,
    /// Each response's, in the order of the spec's responses (`None`: no JSON body declared).
    pub responses: Vec<Option<Schema>>,
}

/// Compiles every schema of `spec`; the first that does not compile is the error.
pub fn compile(spec: &ValidateSpec) -> Result<Compiled, SchemaError> {
    let mut compiled = Compiled {
        parameters: Vec::new(),
        body: None,
        responses: Vec::new(),
    };
    if let Some(request) = &spec.request {
        for parameter in &request.parameters {
            compiled.parameters.push(Schema::compile(
                &parameter.schema,
                &parameter_place(parameter.location, &parameter.name),
            )?);
        }
        if let Some(body) = &request.body {
            compiled.body = Some(Schema::compile(&body.schema, "request body")?);
        }
    }
    for response in spec.response.iter().flatten() {
        compiled.responses.push(match &response.schema {
            Some(schema) => Some(Schema::compile(
                schema,
                &format!("response {}", response.status),
            )?),
            None => None,
        });
    }
    Ok(compiled)
}

/// `query parameter 'limit'`.
pub fn parameter_place(location: ParameterLocation, name: &str) -> String {
    format!("{} parameter '{name}'", location.as_str())
}

/// The problems found in one message, written as one bounded description: at most
/// [`Problems::MAX_PROBLEMS`] problems of at most [`Problems::MAX_PROBLEM_CHARS`] characters
/// each, separated by `; `.
#[derive(Debug, Default)]
pub struct Problems {
    text: String,
    count: usize,
}

impl Problems {
    /// The most problems listed; later ones are counted as `(and N more)`.
    pub const MAX_PROBLEMS: usize = 10;
    /// The longest a single problem is written (longer ones end with `…`).
    pub const MAX_PROBLEM_CHARS: usize = 200;

    /// Adds one problem.
    pub fn push(&mut self, problem: std::fmt::Arguments<'_>) {
        self.count += 1;
        if self.count > Self::MAX_PROBLEMS {
            return;
        }
        let problem = problem.to_string();
        if !self.text.is_empty() {
            self.text.push_str("; ");
        }
        match problem.char_indices().nth(Self::MAX_PROBLEM_CHARS) {
            Some((end, _)) => {
                self.text.push_str(&problem[..end]);
                self.text.push('…');
            }
            None => self.text.push_str(&problem),
        }
    }

    /// Counts a problem past the listed ones without writing it.
    pub fn count_more(&mut self) {
        self.count += 1;
    }

    /// No more problems will be listed (the rest are only counted).
    pub fn full(&self) -> bool {
        self.count >= Self::MAX_PROBLEMS
    }

    /// Nothing was found.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The description.
    pub fn into_description(mut self) -> String {
        if self.count > Self::MAX_PROBLEMS {
            use std::fmt::Write as _;
            let _ = write!(self.text, " (and {} more)", self.count - Self::MAX_PROBLEMS);
        }
        self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn problems(schema: Value, instance: Value) -> String {
        let schema = Schema::compile(&schema, "body").unwrap();
        let mut problems = Problems::default();
        schema.report(&instance, "body", &mut problems);
        problems.into_description()
    }

    #[test]
    fn each_missing_property_is_listed_with_its_pointer() {
        let schema = json!({"type": "object", "required": ["name", "photoUrls"],
            "properties": {"tags": {"type": "array", "items": {"type": "string"}}}});
        let text = problems(schema, json!({"tags": ["a", 3]}));
        assert!(
            text.contains("body#: required property \"name\" is missing"),
            "{text}"
        );
        assert!(
            text.contains("body#: required property \"photoUrls\" is missing"),
            "{text}"
        );
        assert!(
            text.contains("body#/tags/1: 3 is not of type \"string\""),
            "{text}"
        );
    }

    #[test]
    fn enum_values_are_named_and_objects_are_not_echoed() {
        let schema = json!({"properties": {"status": {"enum": ["available", "sold"]},
            "owner": {"type": "string"}}});
        let text = problems(schema, json!({"status": "hello", "owner": {"secret": 1}}));
        assert!(
            text.contains("body#/status: \"hello\" is not one of"),
            "{text}"
        );
        assert!(
            text.contains("body#/owner: the value is not of type \"string\""),
            "{text}"
        );
        assert!(!text.contains("secret"), "{text}");
    }

    #[test]
    fn the_description_is_bounded() {
        let schema = json!({"type": "array", "items": {"type": "string", "maxLength": 1}});
        let long = "x".repeat(5000);
        let items: Vec<Value> = (0..50).map(|_| Value::String(long.clone())).collect();
        let text = problems(schema, Value::Array(items));
        assert!(text.len() < 3000, "{} bytes", text.len());
        assert!(text.ends_with("more)"), "{text}");
    }

    #[test]
    fn an_invalid_schema_names_its_place_and_pointer() {
        let err = Schema::compile(
            &json!({"properties": {"id": {"type": "int"}}}),
            "request body",
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("request body: the schema is not valid"),
            "{text}"
        );
        assert_eq!(err.pointer, "#/properties/id/type", "{text}");
    }
}
