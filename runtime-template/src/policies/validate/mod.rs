//! Request and response validation against an API's OpenAPI schemas (WSO2 API Microgateway
//! 3.x's `[validationConfig] enableRequestValidation / enableResponseValidation`).
//!
//! The toolkit extracts, for each resource that validates, the JSON Schemas of its path, query
//! and header parameters, of its JSON request body and of its JSON responses by status, each
//! converted to JSON Schema 2020-12 and self-contained (every `$ref` bundled under `$defs`). The
//! spec types here are plain data and always compiled; with the `validation` feature,
//! [`compile`] turns them into validators (the toolkit runs it at build time, so a schema the
//! gateway could not compile is a build error) and, with `server` too, [`step`] runs them.
//!
//! Rejections follow WSO2's `ValidationTestCase`: 400 `{"fault":{"code":400,"message":"Bad
//! Request","description":"<problems>"}}` for a request, 500 `... "Bad Response" ...` for a
//! response, with our own wording: each problem names where it is (`body`, `query parameter
//! 'limit'`, ...) and the JSON pointer inside it.

#[cfg(feature = "validation")]
pub mod ajv;
#[cfg(feature = "validation")]
pub mod compile;
#[cfg(feature = "validation")]
pub mod params;
#[cfg(all(feature = "validation", feature = "server"))]
pub mod step;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The JSON Schema drafts Express Gateway's `json-schema` condition validates with (Ajv 6:
/// draft-07 by default, draft-06 and draft-04 by `$schema`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AjvDraft {
    /// Draft-04.
    Draft4,
    /// Draft-06.
    Draft6,
    /// Draft-07 (no `$schema`, or `http://json-schema.org/draft-07/schema#`).
    Draft7,
}

/// The draft `schema`'s `$schema` names; `Err` says why Express Gateway's Ajv 6 would not
/// validate with it.
pub fn ajv_draft(schema: &Value) -> Result<AjvDraft, String> {
    match schema.get("$schema") {
        None => Ok(AjvDraft::Draft7),
        Some(Value::String(uri)) => match uri
            .trim_end_matches('#')
            .trim_start_matches("https://")
            .trim_start_matches("http://")
        {
            "json-schema.org/draft-07/schema" => Ok(AjvDraft::Draft7),
            "json-schema.org/draft-06/schema" => Ok(AjvDraft::Draft6),
            "json-schema.org/draft-04/schema" => Ok(AjvDraft::Draft4),
            _ => Err(format!(
                "$schema {uri:?} is not a draft Express Gateway's Ajv 6 validates with: use draft-07 (or leave $schema out)"
            )),
        },
        Some(other) => Err(format!("$schema must be a string, not {other}")),
    }
}

/// The `format`s Ajv 6 knows (`lib/compile/formats.js`); it refuses a schema with any other.
pub const AJV_FORMATS: [&str; 16] = [
    "date",
    "time",
    "date-time",
    "uri",
    "uri-reference",
    "uri-template",
    "url",
    "email",
    "hostname",
    "ipv4",
    "ipv6",
    "regex",
    "uuid",
    "json-pointer",
    "json-pointer-uri-fragment",
    "relative-json-pointer",
];

/// What the `validate` step of one resource checks. The toolkit omits the step when neither
/// half is on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidateSpec {
    /// Request validation (`None`: requests are not checked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<RequestSchemas>,
    /// Response validation (`None`: responses are not checked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<Vec<ResponseSchema>>,
}

/// The request side of an operation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestSchemas {
    /// Path, query and header parameters, in declaration order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<ParameterSchema>,
    /// The JSON request body, when the operation declares one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<BodySchema>,
}

/// Where a parameter is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ParameterLocation {
    /// A `{name}` segment of the resource's path template.
    Path,
    /// A query string field.
    Query,
    /// A request header (its name case-insensitive).
    Header,
}

impl ParameterLocation {
    /// `path`, `query` or `header`, for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            ParameterLocation::Path => "path",
            ParameterLocation::Query => "query",
            ParameterLocation::Header => "header",
        }
    }
}

/// The JSON type a parameter's text is read as before it is validated (the schema's `type`,
/// resolved by the toolkit). Text that does not read as the type is validated as a string, so
/// the schema's own `type` check reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ValueType {
    /// Kept as text.
    String,
    /// A whole number (`-12`).
    Integer,
    /// Any JSON number (`1.5e3`).
    Number,
    /// `true` or `false`.
    Boolean,
    /// Several values: from repeated query fields (`explode`) or split at `separator`.
    Array {
        /// The type of each item.
        items: Box<ValueType>,
        /// The separator of a non-exploded array (`,` for `form`/`simple`, ` ` for
        /// `spaceDelimited`, `|` for `pipeDelimited`; Swagger 2.0's `collectionFormat`), `None`
        /// for repeated query fields (`explode: true`, `collectionFormat: multi`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        separator: Option<char>,
    },
    /// No single type (a union, an object, or none given): kept as text.
    Any,
}

/// One parameter of an operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParameterSchema {
    /// The parameter's name as declared.
    pub name: String,
    /// Where it is read from.
    #[serde(rename = "in")]
    pub location: ParameterLocation,
    /// A request without it is rejected (path parameters always are).
    #[serde(default)]
    pub required: bool,
    /// How its text is read.
    pub value: ValueType,
    /// Its JSON Schema (2020-12, self-contained).
    pub schema: Value,
}

/// The JSON request body of an operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BodySchema {
    /// An empty body is rejected (`requestBody.required`, a `required` Swagger 2.0 body
    /// parameter).
    #[serde(default)]
    pub required: bool,
    /// The operation also accepts media types that are not JSON: a request of such a type
    /// passes unchecked instead of getting 415.
    #[serde(default)]
    pub other_types: bool,
    /// The body's JSON Schema (2020-12, self-contained).
    pub schema: Value,
}

/// The JSON body of one declared response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResponseSchema {
    /// The status key as declared: `200`, `2XX` or `default`.
    pub status: String,
    /// The body's JSON Schema (2020-12, self-contained); `None` when the response declares no
    /// JSON body (its body is not checked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<Value>,
}

/// The declared response that applies to `status`: the exact code, else its class (`2XX`),
/// else `default` (OpenAPI's "Responses Object" precedence).
pub fn response_for(responses: &[ResponseSchema], status: u16) -> Option<&ResponseSchema> {
    let exact = status.to_string();
    let class = format!("{}XX", status / 100);
    responses
        .iter()
        .find(|r| r.status == exact)
        .or_else(|| {
            responses
                .iter()
                .find(|r| r.status.eq_ignore_ascii_case(&class))
        })
        .or_else(|| responses.iter().find(|r| r.status == "default"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_match_exact_then_class_then_default() {
        let r = |s: &str| ResponseSchema {
            status: s.into(),
            schema: None,
        };
        let all = [r("default"), r("2XX"), r("201")];
        assert_eq!(response_for(&all, 201).unwrap().status, "201");
        assert_eq!(response_for(&all, 200).unwrap().status, "2XX");
        assert_eq!(response_for(&all, 404).unwrap().status, "default");
        assert!(response_for(&[r("200")], 404).is_none());
    }
}
