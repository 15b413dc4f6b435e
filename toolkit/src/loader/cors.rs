//! `x-wso2-cors`: an API's CORS configuration (WSO2 API Microgateway 3.x, read into
//! `APICorsConfigurationDTO` by the toolkit's `OpenAPICodegenUtils.setAdditionalConfigsDevFirst`
//! and handed to Ballerina's HTTP CORS filter), compiled into the API's pipelines as a WSO2
//! [`CorsSpec`].
//!
//! As in WSO2 3.2: the extension is read at the top level only; its presence enables CORS (the
//! toolkit forces `corsConfigurationEnabled` to true); each key is accepted in the camelCase,
//! `snake_case` and `kebab-case` spellings of the DTO's `@JsonAlias` (`accessControlAllowOrigins`,
//! `access_control_allow_origins`, `access-control-allow-origins`); lists take strings (a number
//! or boolean item is read as its text, as Jackson coerces it); other keys are ignored (here
//! with a warning naming the key and the likely intended one).

use mgw_runtime::policies::cors::{CorsPolicy, CorsSpec};
use serde_json::Value;

use super::diagnostics::Diagnostics;
use super::document::{child, Document};

const POINTER: &str = "/x-wso2-cors";

/// The DTO's properties: the canonical name first, then its aliases.
const ORIGINS: [&str; 3] = [
    "accessControlAllowOrigins",
    "access_control_allow_origins",
    "access-control-allow-origins",
];
const CREDENTIALS: [&str; 3] = [
    "accessControlAllowCredentials",
    "access_control_allow_credentials",
    "access-control-allow-credentials",
];
const HEADERS: [&str; 3] = [
    "accessControlAllowHeaders",
    "access_control_allow_headers",
    "access-control-allow-headers",
];
const METHODS: [&str; 3] = [
    "accessControlAllowMethods",
    "access_control_allow_methods",
    "access-control-allow-methods",
];
const EXPOSE: [&str; 3] = [
    "accessControlExposeHeaders",
    "access_control_expose_headers",
    "access-control-expose-headers",
];
const ENABLED: [&str; 1] = ["corsConfigurationEnabled"];

const ALL: [&[&str]; 6] = [
    &ORIGINS,
    &CREDENTIALS,
    &HEADERS,
    &METHODS,
    &EXPOSE,
    &ENABLED,
];

/// Reads the document's `x-wso2-cors`: `None` when it has none (or `null`), or when it is
/// invalid (the errors are in `diags`, naming the file and line).
pub fn api_cors(doc: &Document, diags: &mut Diagnostics) -> Option<CorsSpec> {
    let value = doc.get(POINTER)?;
    if value.is_null() {
        return None;
    }
    let file = &doc.file;
    let Some(map) = value.as_object() else {
        diags.error(
            file,
            doc.line(POINTER),
            format!(
                "x-wso2-cors must be a mapping such as {{accessControlAllowOrigins: [\"https://app.example\"]}}, not {}",
                kind(value)
            ),
        );
        return None;
    };
    let errors_before = diags.errors.len();
    for key in map.keys() {
        if ALL.iter().any(|names| names.contains(&key.as_str())) {
            continue;
        }
        let hint = ALL
            .iter()
            .find(|names| normalise(names[0]) == normalise(key))
            .map(|names| format!(" (did you mean {}?)", names[0]))
            .unwrap_or_default();
        diags.warn(
            file,
            doc.line(&child(POINTER, key)),
            format!(
                "x-wso2-cors: unknown key '{key}' is ignored, as WSO2 does{hint}; the keys are {}",
                ALL.iter().map(|n| n[0]).collect::<Vec<_>>().join(", ")
            ),
        );
    }
    let list = |names: &[&str], diags: &mut Diagnostics| -> Vec<String> {
        let Some((key, value)) = find(map, names) else {
            return Vec::new();
        };
        let pointer = child(POINTER, key);
        match value {
            Value::Null => Vec::new(),
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    match item {
                        Value::String(s) => out.push(s.clone()),
                        Value::Number(n) => out.push(n.to_string()),
                        Value::Bool(b) => out.push(b.to_string()),
                        other => diags.error(
                            file,
                            doc.line(&format!("{pointer}/{i}")),
                            format!(
                                "x-wso2-cors.{key}: item {} must be a string, not {}",
                                i + 1,
                                kind(other)
                            ),
                        ),
                    }
                }
                out
            }
            other => {
                diags.error(
                    file,
                    doc.line(&pointer),
                    format!(
                        "x-wso2-cors.{key} must be a list such as [\"{}\"], not {}; write it as a YAML list",
                        match names[0] {
                            "accessControlAllowOrigins" => "https://app.example",
                            "accessControlAllowMethods" => "GET",
                            _ => "Authorization",
                        },
                        kind(other)
                    ),
                );
                Vec::new()
            }
        }
    };
    let boolean = |names: &[&str], diags: &mut Diagnostics| -> Option<bool> {
        let (key, value) = find(map, names)?;
        match value {
            Value::Null => None,
            Value::Bool(b) => Some(*b),
            Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
            other => {
                diags.error(
                    file,
                    doc.line(&child(POINTER, key)),
                    format!(
                        "x-wso2-cors.{key} must be true or false, not {}",
                        kind(other)
                    ),
                );
                None
            }
        }
    };
    let origins = list(&ORIGINS, diags);
    let methods = list(&METHODS, diags);
    let headers = list(&HEADERS, diags);
    let exposed = list(&EXPOSE, diags);
    let credentials = boolean(&CREDENTIALS, diags).unwrap_or(false);
    if boolean(&ENABLED, diags) == Some(false) {
        diags.warn(
            file,
            doc.line(&child(POINTER, "corsConfigurationEnabled")),
            "x-wso2-cors: corsConfigurationEnabled: false is ignored, as WSO2 API Microgateway 3.x does (x-wso2-cors in a definition always enables CORS); remove x-wso2-cors to turn CORS off for this API",
        );
    }
    for (names, values) in [
        (&ORIGINS, &origins),
        (&METHODS, &methods),
        (&HEADERS, &headers),
        (&EXPOSE, &exposed),
    ] {
        for (i, v) in values.iter().enumerate() {
            if v.trim().is_empty() || v.bytes().any(|b| b.is_ascii_control()) {
                let key = find(map, names).map_or(names[0], |(k, _)| k.as_str());
                diags.error(
                    file,
                    doc.line(&format!("{}/{i}", child(POINTER, key))),
                    format!(
                        "x-wso2-cors.{key}: item {} ({v:?}) is empty or holds control characters; remove it",
                        i + 1
                    ),
                );
            }
        }
    }
    let origins_trimmed: Vec<&str> = origins.iter().map(|o| o.trim()).collect();
    if credentials && (origins_trimmed.is_empty() || origins_trimmed == ["*"]) {
        diags.warn(
            file,
            doc.line(POINTER),
            "x-wso2-cors allows credentials from any origin: every web site can make credentialed calls to this API in its visitors' browsers (the origin is echoed back, as WSO2 does); list the allowed origins in accessControlAllowOrigins",
        );
    }
    if diags.errors.len() > errors_before {
        return None;
    }
    let spec = CorsSpec::wso2(&origins, &methods, &headers, &exposed, credentials);
    // What the gateway will refuse at start-up is refused here (a value that cannot be sent in
    // a header, such as a non-ASCII origin).
    if let Err(e) = CorsPolicy::new(&spec) {
        diags.error(file, doc.line(POINTER), format!("x-wso2-cors: {e}"));
        return None;
    }
    Some(spec)
}

/// The first of `names` present in `map`, with its value.
fn find<'a>(
    map: &'a serde_json::Map<String, Value>,
    names: &[&str],
) -> Option<(&'a String, &'a Value)> {
    names.iter().find_map(|n| map.get_key_value(*n))
}

/// Lower case without `-` and `_`, to suggest the intended key.
fn normalise(key: &str) -> String {
    key.chars()
        .filter(|c| *c != '-' && *c != '_')
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mgw_runtime::policies::cors::{CorsOrigin, Dialect, OriginPattern};

    fn read(cors: &str) -> (Option<CorsSpec>, Diagnostics) {
        let text =
            format!("openapi: 3.0.0\ninfo: {{title: T, version: '1'}}\n{cors}\npaths: {{}}\n");
        let doc = Document::parse("api.yaml", &text).unwrap();
        let mut d = Diagnostics::default();
        (api_cors(&doc, &mut d), d)
    }

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    /// The real fixture of WSO2's CorsTestCase.
    #[test]
    fn the_wso2_cors_sample_fixture_gives_its_spec() {
        let text = include_str!("../../../tests/fixtures/wso2-openapi/cors_cors_sample.yaml");
        let doc = Document::parse("cors_cors_sample.yaml", text).unwrap();
        let mut d = Diagnostics::default();
        let spec = api_cors(&doc, &mut d).unwrap();
        assert!(d.errors.is_empty() && d.warnings.is_empty(), "{d:?}");
        assert_eq!(
            spec,
            CorsSpec {
                dialect: Dialect::Wso2,
                origin: CorsOrigin::List(vec![OriginPattern::Exact("http://www.m3.com".into())]),
                methods: strings(&["GET", "PUT", "POST"]),
                allowed_headers: Some(strings(&["Authorization", "Content-Type"])),
                exposed_headers: strings(&["X-CUSTOM-HEADER"]),
                credentials: true,
                max_age: None,
                preflight_status: 200,
                preflight_continue: false,
            }
        );
        // And it makes a ready policy.
        mgw_runtime::policies::cors::CorsPolicy::new(&spec).unwrap();
    }

    /// The whole fixture through the loader: every resource's pipeline starts with its CORS
    /// step, before authentication.
    #[test]
    fn the_fixture_compiles_to_pipelines_that_start_with_cors() {
        use mgw_runtime::model::PolicySpec;
        let text = include_str!("../../../tests/fixtures/wso2-openapi/cors_cors_sample.yaml");
        let file = crate::loader::SourceFile {
            name: "cors_cors_sample.yaml".into(),
            text: text.into(),
        };
        let loaded = crate::loader::load("p", &[file]).unwrap();
        let api = &loaded.model.apis[0];
        assert!(!api.resources.is_empty());
        for resource in &api.resources {
            let steps = &loaded.model.pipelines[resource.pipeline].steps;
            assert!(
                matches!(&steps[0].policy, PolicySpec::Cors(spec) if spec.credentials),
                "{} {}: {:?}",
                resource.method,
                resource.path,
                steps[0].policy
            );
            assert!(matches!(
                steps.last().map(|s| &s.policy),
                Some(PolicySpec::Proxy(_))
            ));
        }
        assert!(
            !loaded
                .warnings
                .iter()
                .any(|w| w.message.contains("x-wso2-cors")),
            "{:?}",
            loaded.warnings
        );
    }

    #[test]
    fn absent_or_null_means_none_and_empty_means_wso2_defaults() {
        assert_eq!(read("x-wso2-basePath: /t").0, None);
        assert_eq!(read("x-wso2-cors: null").0, None);
        let (spec, d) = read("x-wso2-cors: {}");
        assert!(d.errors.is_empty() && d.warnings.is_empty());
        let spec = spec.unwrap();
        assert_eq!(spec.origin, CorsOrigin::Any);
        assert!(spec.methods.is_empty());
        assert_eq!(spec.allowed_headers, None);
        assert!(!spec.credentials);
    }

    #[test]
    fn snake_and_kebab_aliases_are_read() {
        let (spec, d) = read(
            "x-wso2-cors:\n  access_control_allow_origins: ['https://a.example', ' https://b.example ']\n  access-control-allow-methods: [GET]\n  access_control_allow_headers: [X-Key]\n  access-control-expose-headers: [X-Out]\n  access-control-allow-credentials: 'true'",
        );
        assert!(d.errors.is_empty() && d.warnings.is_empty(), "{d:?}");
        let spec = spec.unwrap();
        assert_eq!(
            spec.origin,
            CorsOrigin::List(vec![
                OriginPattern::Exact("https://a.example".into()),
                OriginPattern::Exact("https://b.example".into())
            ])
        );
        assert_eq!(spec.methods, ["GET"]);
        assert_eq!(spec.allowed_headers, Some(strings(&["X-Key"])));
        assert_eq!(spec.exposed_headers, ["X-Out"]);
        assert!(spec.credentials);
    }

    #[test]
    fn wrong_shapes_are_errors_with_file_and_line() {
        let (spec, d) = read("x-wso2-cors:\n  accessControlAllowOrigins: https://a.example\n  accessControlAllowCredentials: yes-please");
        assert_eq!(spec, None);
        let text: Vec<String> = d.errors.iter().map(ToString::to_string).collect();
        assert!(
            text.iter().any(|e| e.starts_with("api.yaml:4:")
                && e.contains("accessControlAllowOrigins must be a list")),
            "{text:?}"
        );
        assert!(
            text.iter().any(|e| e.starts_with("api.yaml:5:")
                && e.contains("accessControlAllowCredentials must be true or false")),
            "{text:?}"
        );
        let (spec, d) = read("x-wso2-cors: [a]");
        assert_eq!(spec, None);
        assert!(d.errors[0].to_string().starts_with("api.yaml:3:"), "{d:?}");
        let (spec, d) = read("x-wso2-cors:\n  accessControlAllowHeaders: [{a: b}, '']");
        assert_eq!(spec, None);
        assert_eq!(d.errors.len(), 2, "{d:?}");
    }

    #[test]
    fn unknown_keys_warn_with_a_hint_and_disabled_is_ignored_as_wso2_does() {
        let (spec, d) = read(
            "x-wso2-cors:\n  AccessControlAllowOrigins: ['https://a.example']\n  corsConfigurationEnabled: false",
        );
        let spec = spec.unwrap();
        // The misspelt key is ignored (as Jackson ignores it): any origin.
        assert_eq!(spec.origin, CorsOrigin::Any);
        let text: Vec<String> = d.warnings.iter().map(ToString::to_string).collect();
        assert!(
            text.iter().any(|w| w.starts_with("api.yaml:4:")
                && w.contains("did you mean accessControlAllowOrigins?")),
            "{text:?}"
        );
        assert!(
            text.iter().any(|w| w.starts_with("api.yaml:5:")
                && w.contains("corsConfigurationEnabled: false is ignored")),
            "{text:?}"
        );
    }

    #[test]
    fn values_a_header_cannot_carry_are_refused_at_build() {
        let (spec, d) =
            read("x-wso2-cors:\n  accessControlAllowOrigins: ['https://b\u{fc}cher.example']");
        assert_eq!(spec, None);
        assert!(
            d.errors[0]
                .to_string()
                .starts_with("api.yaml:3: x-wso2-cors: the origin \"https://b\u{fc}cher.example\" cannot be an HTTP header value"),
            "{d:?}"
        );
    }

    #[test]
    fn credentials_with_any_origin_warn() {
        let (spec, d) = read("x-wso2-cors: {accessControlAllowCredentials: true}");
        assert!(spec.unwrap().credentials);
        assert!(d.warnings[0].message.contains("any origin"), "{d:?}");
    }
}
