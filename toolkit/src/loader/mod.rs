//! Loading a project's API definitions into one validated gateway model.
//!
//! Every check that can fail a build runs here, before any code is generated: parse errors,
//! unresolved references, invalid URLs, resources without endpoints, duplicate base paths and
//! routes that conflict. All problems are collected and reported together.

pub mod cors;
pub mod diagnostics;
pub mod document;
pub mod endpoints;
pub mod openapi;
pub mod pipelines;
pub mod refs;
pub mod security;

use std::collections::BTreeMap;

use mgw_runtime::model::{GatewayModel, MODEL_FORMAT};
use mgw_runtime::policies::cors::CorsSpec;
use mgw_runtime::router::{RouteError, Router};

pub use diagnostics::{Diagnostic, Diagnostics, LoadError};
use document::Document;

/// File name endings that hold API definitions.
pub const DEFINITION_EXTENSIONS: [&str; 3] = ["yaml", "yml", "json"];

/// One definition file's name (as shown in messages) and text.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// Shown in messages, e.g. `api_definitions/petstore.yaml`.
    pub name: String,
    /// The content.
    pub text: String,
}

/// A validated model and the warnings found on the way.
#[derive(Debug)]
pub struct Loaded {
    /// The model to compile in.
    pub model: GatewayModel,
    /// Warnings to show the user.
    pub warnings: Vec<Diagnostic>,
}

/// Loading failed; warnings are kept so they can still be shown.
#[derive(Debug)]
pub struct Failed {
    /// The errors.
    pub error: LoadError,
    /// Warnings found before giving up.
    pub warnings: Vec<Diagnostic>,
}

/// Project-wide settings the load applies.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// The CORS step of WSO2 APIs without `x-wso2-cors` (`[cors]` of `conf/micro-gw.toml`
    /// when enabled).
    pub cors_default: Option<CorsSpec>,
}

/// Loads and validates a set of definition files as one gateway, with default options.
pub fn load(project: &str, files: &[SourceFile]) -> Result<Loaded, Failed> {
    load_with(project, files, &LoadOptions::default())
}

/// Loads and validates a set of definition files as one gateway.
pub fn load_with(
    project: &str,
    files: &[SourceFile],
    options: &LoadOptions,
) -> Result<Loaded, Failed> {
    let mut diags = Diagnostics::default();
    if let Some(Err(e)) = options
        .cors_default
        .as_ref()
        .map(mgw_runtime::policies::cors::CorsPolicy::new)
    {
        diags.error("conf/micro-gw.toml", None, format!("[cors]: {e}"));
    }
    let mut apis = Vec::new();
    for file in files {
        let doc = match Document::parse(&file.name, &file.text) {
            Ok(doc) => doc,
            Err(err) => {
                diags.parse_error(
                    &file.name,
                    err.line,
                    err.column,
                    format!("{}; fix the syntax", err.message),
                );
                continue;
            }
        };
        let cors = cors::api_cors(&doc, &mut diags);
        if let Some(api) = openapi::load_definition(&doc, &mut diags) {
            apis.push((api, cors.or_else(|| options.cors_default.clone())));
        }
    }
    // Base paths must be unique across the project.
    let mut by_base: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (api, _) in &apis {
        by_base
            .entry(&api.api.base_path)
            .or_default()
            .push(&api.api.source);
    }
    for (base, sources) in &by_base {
        if sources.len() > 1 {
            diags.error(
                sources[1],
                None,
                format!(
                    "the base path '{base}' is duplicated in these definitions: {}; give each API its own x-wso2-basePath",
                    sources.join(", ")
                ),
            );
        }
    }
    if !diags.is_ok() {
        return Err(failed(diags));
    }

    apis.sort_by(|(a, _), (b, _)| a.api.base_path.cmp(&b.api.base_path));
    let mut model = GatewayModel {
        format: MODEL_FORMAT,
        project: project.to_string(),
        apis: Vec::with_capacity(apis.len()),
        endpoints: Vec::new(),
        pipelines: Vec::new(),
        express: Vec::new(),
    };
    // The line of each resource, by API and resource index, for route errors.
    let mut lines: Vec<Vec<Option<usize>>> = Vec::with_capacity(apis.len());
    let mut cors: Vec<Option<CorsSpec>> = Vec::with_capacity(apis.len());
    for (loaded, api_cors) in apis {
        cors.push(api_cors);
        let offset = model.endpoints.len();
        let mut api = loaded.api;
        for resource in &mut api.resources {
            resource.production = resource.production.map(|i| i + offset);
            resource.sandbox = resource.sandbox.map(|i| i + offset);
        }
        model.endpoints.extend(loaded.endpoints);
        model.apis.push(api);
        lines.push(loaded.lines);
    }
    pipelines::compile_wso2(&mut model, &cors);
    if let Err(errors) = Router::build(&model) {
        let line = |api: usize, resource: usize| {
            lines
                .get(api)
                .and_then(|l| l.get(resource))
                .copied()
                .flatten()
        };
        for err in errors {
            match err {
                RouteError::Conflict {
                    method,
                    path,
                    api,
                    resource,
                    other_path,
                    other_api,
                    other_resource,
                    other_api_name,
                    other_source,
                    reason,
                    source_file,
                    ..
                } => {
                    let other_at = match line(other_api, other_resource) {
                        Some(l) => format!("{other_source}:{l}"),
                        None => other_source,
                    };
                    diags.error(
                        &source_file,
                        line(api, resource),
                        format!("{method} {path} conflicts with {method} {other_path} (API '{other_api_name}', {other_at}): {reason}; change one of the paths or base paths"),
                    );
                }
                RouteError::Unsupported {
                    method,
                    path,
                    api,
                    resource,
                    source_file,
                    reason,
                    ..
                } => diags.error(
                    &source_file,
                    line(api, resource),
                    format!("{method} {path} cannot be routed: {reason}"),
                ),
            }
        }
        return Err(failed(diags));
    }
    Ok(Loaded {
        model,
        warnings: diags.warnings,
    })
}

fn failed(diags: Diagnostics) -> Failed {
    Failed {
        error: LoadError {
            errors: diags.errors,
        },
        warnings: diags.warnings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, base: &str, paths: &str) -> SourceFile {
        SourceFile {
            name: name.into(),
            text: format!(
                "openapi: 3.0.0\ninfo: {{title: {name}, version: '1'}}\nx-wso2-basePath: {base}\nx-wso2-production-endpoints: {{urls: ['http://a']}}\npaths:\n{paths}"
            ),
        }
    }

    #[test]
    fn cors_steps_come_first_from_x_wso2_cors_or_the_project_default() {
        use mgw_runtime::model::PolicySpec;
        use mgw_runtime::policies::cors::{CorsOrigin, OriginPattern};
        let own = SourceFile {
            name: "own.yaml".into(),
            text: "openapi: 3.0.0\ninfo: {title: Own, version: '1'}\nx-wso2-basePath: /own\nx-wso2-production-endpoints: {urls: ['http://a']}\nx-wso2-cors: {accessControlAllowOrigins: ['https://app.example']}\npaths:\n  /a: {get: {}}\n".into(),
        };
        let plain = file("plain.yaml", "/plain", "  /b: {get: {}}\n");
        let first_step = |loaded: &Loaded, base: &str| {
            let api = loaded
                .model
                .apis
                .iter()
                .find(|a| a.base_path == base)
                .unwrap();
            let pipeline = &loaded.model.pipelines[api.resources[0].pipeline];
            pipeline.steps[0].policy.clone()
        };
        // Without a project default, only the API with x-wso2-cors gets a CORS step.
        let loaded = load("p", &[own.clone(), plain.clone()]).unwrap();
        match first_step(&loaded, "/own") {
            PolicySpec::Cors(spec) => assert_eq!(
                spec.origin,
                CorsOrigin::List(vec![OriginPattern::Exact("https://app.example".into())])
            ),
            other => panic!("{other:?}"),
        }
        assert!(!matches!(
            first_step(&loaded, "/plain"),
            PolicySpec::Cors(_)
        ));
        // With `[cors] enabled = true`, the other API gets the default; the first keeps its own.
        let default = mgw_runtime::config::CorsConfig {
            enabled: true,
            ..Default::default()
        };
        let options = LoadOptions {
            cors_default: default.spec(),
        };
        let loaded = load_with("p", &[own, plain], &options).unwrap();
        match first_step(&loaded, "/plain") {
            PolicySpec::Cors(spec) => assert_eq!(spec.origin, CorsOrigin::Any),
            other => panic!("{other:?}"),
        }
        match first_step(&loaded, "/own") {
            PolicySpec::Cors(spec) => assert!(matches!(spec.origin, CorsOrigin::List(_))),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn duplicate_base_paths_name_both_files() {
        let files = [
            file("a.yaml", "/x", "  /p:\n    get: {}\n"),
            file("b.yaml", "/x/", "  /q:\n    get: {}\n"),
        ];
        let err = load("p", &files).unwrap_err().error.to_string();
        assert!(
            err.contains("a.yaml, b.yaml") && err.contains("duplicated"),
            "{err}"
        );
    }

    #[test]
    fn conflicting_routes_across_apis_are_reported() {
        let files = [
            file("a.yaml", "/x", "  /y/{id}:\n    get: {}\n"),
            file("b.yaml", "/x/y", "  /{other}:\n    get: {}\n"),
        ];
        let err = load("p", &files).unwrap_err().error.to_string();
        assert!(err.contains("conflicts"), "{err}");
    }

    /// Issue 10 item 5: the method is part of a conflict, and every conflict is reported with
    /// the lines of both operations.
    #[test]
    fn conflicts_are_method_aware_and_all_reported_with_lines() {
        let ok = [file(
            "a.yaml",
            "/v1",
            "  /{groupName}:\n    get: {}\n  /{name}:\n    put: {}\n",
        )];
        assert!(load("p", &ok).is_ok());
        let files = [
            file(
                "a.yaml",
                "/v1",
                "  /x/{a}:\n    get: {}\n  /x/y/{b}:\n    put: {}\n",
            ),
            file(
                "b.yaml",
                "/v1/x",
                "  /{c}:\n    get: {}\n  /y/{d}:\n    put: {}\n",
            ),
        ];
        let err = load("p", &files).unwrap_err().error;
        let text: Vec<String> = err.errors.iter().map(ToString::to_string).collect();
        assert_eq!(text.len(), 2, "{text:?}");
        assert!(
            text[0].starts_with(
                "b.yaml:7: GET /v1/x/{c} conflicts with GET /v1/x/{a} (API 'a.yaml', a.yaml:7)"
            ),
            "{text:?}"
        );
        assert!(
            text[1].starts_with("b.yaml:9: PUT /v1/x/y/{d}") && text[1].contains("a.yaml:9"),
            "{text:?}"
        );
    }

    #[test]
    fn endpoints_are_offset_per_api() {
        let files = [
            file("a.yaml", "/a", "  /p:\n    get: {}\n"),
            file("b.yaml", "/b", "  /q:\n    get: {}\n"),
        ];
        let loaded = load("p", &files).unwrap();
        assert_eq!(loaded.model.endpoints.len(), 2);
        assert_eq!(loaded.model.apis[1].resources[0].production, Some(1));
    }

    /// issue 11 #7: an unresolved path-item `$ref` was a warning and an error; now one error.
    #[test]
    fn an_unresolved_path_item_ref_is_reported_once() {
        for (target, expected) in [
            ("'#/nowhere'", "does not resolve"),
            ("'other.yaml#/paths/~1a'", "points outside this file"),
            ("'#/paths/~1b'", "circular $ref"),
        ] {
            let files = [file(
                "a.yaml",
                "/a",
                &format!("  /a:\n    $ref: {target}\n  /b:\n    $ref: '#/paths/~1a'\n  /c:\n    get: {{}}\n"),
            )];
            let failed = load("p", &files).unwrap_err();
            let about_a: Vec<String> = failed
                .error
                .errors
                .iter()
                .chain(&failed.warnings)
                .map(ToString::to_string)
                .filter(|m| m.starts_with("a.yaml:6:"))
                .collect();
            assert_eq!(about_a.len(), 1, "{target}: {about_a:?}");
            assert!(about_a[0].contains(expected), "{about_a:?}");
            assert!(failed.warnings.is_empty(), "{:?}", failed.warnings);
        }
        // A schema reference to nothing stays a warning.
        let files = [file(
            "a.yaml",
            "/a",
            "  /c:\n    get:\n      responses: {'200': {content: {a/b: {schema: {$ref: '#/nope'}}}}}\n",
        )];
        let loaded = load("p", &files).unwrap();
        assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let files = [
            SourceFile {
                name: "bad.yaml".into(),
                text: "openapi: 3.0.0\ninfo: [\n".into(),
            },
            file(
                "c.yaml",
                "/c",
                "  /p:\n    get:\n      x-wso2-production-endpoints: '#/x-wso2-endpoints/none'\n",
            ),
        ];
        let err = load("p", &files).unwrap_err().error;
        assert_eq!(err.errors.len(), 2, "{err}");
    }
}

#[cfg(test)]
mod fixture_tests {
    use super::*;

    /// Real definitions written by WSO2 users (`tests/fixtures/wso2-openapi`) must load.
    #[test]
    fn every_wso2_fixture_loads() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/wso2-openapi");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            panic!("fixtures not found at {}", dir.display());
        };
        let mut checked = 0;
        let mut failures = Vec::new();
        for entry in entries {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if !crate::project::is_definition_name(&name) || name == "policies.yaml" {
                continue;
            }
            let file = SourceFile {
                name: name.clone(),
                text: std::fs::read_to_string(&path).unwrap(),
            };
            match load("fixture", &[file]) {
                Ok(loaded) => assert!(!loaded.model.apis[0].resources.is_empty(), "{name}"),
                Err(failed) => failures.push(failed.error.to_string()),
            }
            checked += 1;
        }
        assert!(checked >= 18, "only {checked} fixtures found");
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
}
