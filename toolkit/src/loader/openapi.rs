//! One OpenAPI 3.0/3.1 or Swagger 2.0 document (with `x-wso2-*` extensions) into an API of
//! the gateway model. Works on the JSON value rather than typed OpenAPI structs, so 2.0, 3.0
//! and 3.1 share one path and every vendor extension stays visible.

use std::collections::BTreeMap;

use mgw_runtime::model::{Api, Endpoint, Environment, Resource};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::diagnostics::Diagnostics;
use super::document::{child, Document};
use super::endpoints::{declared_endpoint, named_endpoints, DeclaredEndpoint, EndpointSpec};
use super::refs;
use super::security;

/// HTTP methods an OpenAPI path item can hold.
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Extensions this version applies.
const APPLIED: [&str; 9] = [
    "x-mgw-allow-encoded-slash",
    "x-mgw-validation",
    "x-wso2-throttling-tier",
    "x-throttling-tier",
    "x-wso2-basePath",
    "x-wso2-cors",
    "x-wso2-production-endpoints",
    "x-wso2-sandbox-endpoints",
    "x-wso2-endpoints",
];

/// Security extensions: read into each resource's security (see [`super::security`]), which
/// the build reports once per API while the runtime does not enforce it yet.
const SECURITY: [&str; 5] = [
    "x-wso2-disable-security",
    "x-wso2-application-security",
    "x-wso2-auth-header",
    "x-auth-type",
    "x-scope",
];

/// Extensions of WSO2 API Microgateway 3.x that are recognised but not enforced yet.
const NOT_YET_APPLIED: [&str; 6] = [
    "x-wso2-transports",
    "x-wso2-mutual-ssl",
    "x-wso2-request-interceptor",
    "x-wso2-response-interceptor",
    "x-wso2-response-cache",
    "x-wso2-owner",
];

/// Which specification a document follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecVersion {
    /// Swagger 2.0.
    Swagger2,
    /// OpenAPI 3.0.x or 3.1.x.
    OpenApi3,
    /// OpenAPI 3.2.x: read as 3.1, plus the `query` method and `additionalOperations`.
    OpenApi32,
}

/// An API read from one document; resource endpoint indices point into `endpoints`.
#[derive(Debug, Clone)]
pub struct LoadedApi {
    /// The API.
    pub api: Api,
    /// Its endpoints.
    pub endpoints: Vec<Endpoint>,
    /// The line of each resource's operation, in the order of `api.resources`.
    pub lines: Vec<Option<usize>>,
    /// The API's `x-wso2-throttling-tier` (or `x-throttling-tier`) and its line.
    pub api_tier: Option<(String, Option<usize>)>,
    /// Each resource's own tier and its line, in the order of `api.resources`.
    pub tiers: Vec<Option<(String, Option<usize>)>>,
    /// Each resource's path item and operation pointers, in the order of `api.resources`.
    pub pointers: Vec<(String, String)>,
    /// The document's specification version.
    pub version: SpecVersion,
}

/// The throttling tier named at `pointer` (an API or an operation): `x-wso2-throttling-tier`,
/// else API Manager's `x-throttling-tier`.
fn throttling_tier(
    doc: &Document,
    pointer: &str,
    diags: &mut Diagnostics,
) -> Option<(String, Option<usize>)> {
    for key in ["x-wso2-throttling-tier", "x-throttling-tier"] {
        let at = child(pointer, key);
        match doc.get(&at) {
            None => continue,
            Some(Value::String(name)) if !name.trim().is_empty() => {
                return Some((name.trim().to_string(), doc.line(&at)))
            }
            Some(other) => {
                diags.error(
                    &doc.file,
                    doc.line(&at),
                    format!("{key} must name a policy of policies.yaml, not {other}"),
                );
                return None;
            }
        }
    }
    None
}

/// WSO2's API id: `api_` + hex SHA-256 of `name:version`.
pub fn api_id(name: &str, version: &str) -> String {
    let digest = Sha256::digest(format!("{name}:{version}").as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("api_{hex}")
}

/// Detects the specification version, or says what is missing.
pub fn spec_version(doc: &Document) -> Result<SpecVersion, String> {
    if let Some(swagger) = doc.get("/swagger") {
        let is_two = swagger.as_str() == Some("2.0") || swagger.as_f64() == Some(2.0);
        return if is_two {
            Ok(SpecVersion::Swagger2)
        } else {
            Err(format!(
                "swagger: {swagger} is not supported: only Swagger \"2.0\" and OpenAPI 3.0/3.1/3.2 are"
            ))
        };
    }
    let version = doc.get("/openapi").and_then(|v| match v {
        Value::String(s) => Some(s.clone()),
        // `openapi: 3.0` unquoted is a YAML number.
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    });
    match version.as_deref() {
        Some(v) if v.starts_with("3.0") || v.starts_with("3.1") => Ok(SpecVersion::OpenApi3),
        Some(v) if v.starts_with("3.2") => Ok(SpecVersion::OpenApi32),
        Some(v) => Err(format!("openapi: {v} is not supported: use OpenAPI 3.0.x, 3.1.x or 3.2.x, or Swagger 2.0")),
        None => Err("not an API definition: there is no `openapi: 3.x` or `swagger: \"2.0\"` field at the top".into()),
    }
}

/// Reads one document; problems go to `diags`, and `None` means it had errors.
pub fn load_definition(doc: &Document, diags: &mut Diagnostics) -> Option<LoadedApi> {
    let errors_before = diags.errors.len();
    let file = doc.file.clone();
    let version = match spec_version(doc) {
        Ok(v) => v,
        Err(message) => {
            diags.error(
                &file,
                doc.line("/openapi").or(doc.line("/swagger")).or(Some(1)),
                message,
            );
            return None;
        }
    };
    refs::check_all(doc, diags);
    let name = required_string(doc, "/info/title", "info.title (the API name)", diags);
    let api_version = required_string(doc, "/info/version", "info.version", diags);
    let (Some(name), Some(api_version)) = (name, api_version) else {
        return None;
    };
    let id = api_id(&name, &api_version);
    check_extensions(doc, "", Level::Api, diags);
    let base_path = base_path(doc, version, &api_version, diags);
    if version == SpecVersion::OpenApi32 {
        warn_ignored_32_fields(doc, diags);
    }

    let named = named_endpoints(doc, diags);
    let mut endpoints = Endpoints::default();
    let api_production = declared_endpoint(doc, "/x-wso2-production-endpoints", &named, diags)
        .or_else(|| server_endpoint(doc, version, diags));
    let api_sandbox = declared_endpoint(doc, "/x-wso2-sandbox-endpoints", &named, diags);
    let allow_encoded_slash = match doc.get("/x-mgw-allow-encoded-slash") {
        None => false,
        Some(Value::Bool(allowed)) => *allowed,
        Some(other) => {
            diags.error(
                &file,
                doc.line("/x-mgw-allow-encoded-slash"),
                format!("x-mgw-allow-encoded-slash must be true or false, not {other}"),
            );
            false
        }
    };
    let api_security = security::api_security(doc, version, diags);
    let mut resources = Vec::new();
    let mut lines: Vec<Option<usize>> = Vec::new();
    let mut tiers: Vec<Option<(String, Option<usize>)>> = Vec::new();
    let mut pointers: Vec<(String, String)> = Vec::new();
    let api_tier = throttling_tier(doc, "", diags);
    match doc.get("/paths").map(Value::as_object) {
        Some(Some(paths)) => {
            // (method, path) -> index in `resources`, to find keys that differ only in a fragment.
            let mut seen: BTreeMap<(String, String), usize> = BTreeMap::new();
            for (key, _) in paths {
                let path_pointer = child("/paths", key);
                // A fragment never reaches a server (RFC 9110 §4.2.4 / RFC 3986 §3.5): keys such as
                // `/v1/conversations#stream` or `/#Action=Describe` name their path without it.
                let path = match key.split_once('#') {
                    Some((path, fragment)) => {
                        diags.warn(
                            &file,
                            doc.line(&path_pointer),
                            format!("path {key:?}: the fragment '#{fragment}' is dropped (it never reaches a server); the resource is {path:?}"),
                        );
                        path
                    }
                    None => key.as_str(),
                };
                let path = &path.to_string();
                if !path.starts_with('/') || path.contains('?') {
                    diags.error(
                        &file,
                        doc.line(&path_pointer),
                        format!("path {key:?} must start with '/' and hold no query"),
                    );
                    continue;
                }
                if let Err(message) = check_template(path) {
                    diags.error(
                        &file,
                        doc.line(&path_pointer),
                        format!("path {path:?}: {message}"),
                    );
                    continue;
                }
                let (item, item_pointer) = match refs::resolve(doc, &path_pointer) {
                    Ok(found) => found,
                    Err(err) => {
                        diags.error(&file, doc.line(&path_pointer), err.to_string());
                        continue;
                    }
                };
                let Some(item) = item.as_object() else {
                    diags.error(
                        &file,
                        doc.line(&item_pointer),
                        format!("path {path:?} must map to a path item (operations by method)"),
                    );
                    continue;
                };
                check_extensions(doc, &item_pointer, Level::PathItem, diags);
                for (name, op_pointer) in operations(doc, version, item, &item_pointer, diags) {
                    // Fixed fields are lower case; additionalOperations keys are the method as sent.
                    let method = if name.bytes().any(|b| b.is_ascii_uppercase()) {
                        name.clone()
                    } else {
                        name.to_uppercase()
                    };
                    let method = method.as_str();
                    let Some(operation) = doc.get(&op_pointer) else {
                        continue;
                    };
                    if !operation.is_object() {
                        diags.error(
                            &file,
                            doc.line(&op_pointer),
                            format!("{method} {path} must be an operation object"),
                        );
                        continue;
                    }
                    check_extensions(doc, &op_pointer, Level::Operation, diags);
                    let operation_id = operation
                        .get("operationId")
                        .and_then(Value::as_str)
                        .map(str::to_string);
                    let inline_name = operation_id
                        .clone()
                        .unwrap_or_else(|| format!("{id}_{name}_{}", sanitize(path)));
                    let production = declared_endpoint(
                        doc,
                        &child(&op_pointer, "x-wso2-production-endpoints"),
                        &named,
                        diags,
                    )
                    .map(|e| (e, inline_name.clone()))
                    .or_else(|| api_production.clone().map(|e| (e, id.clone())));
                    let sandbox = declared_endpoint(
                        doc,
                        &child(&op_pointer, "x-wso2-sandbox-endpoints"),
                        &named,
                        diags,
                    )
                    .map(|e| (e, inline_name.clone()))
                    .or_else(|| api_sandbox.clone().map(|e| (e, id.clone())));
                    if production.is_none() && sandbox.is_none() {
                        diags.error_about(
                            &file,
                            doc.line(&op_pointer),
                            format!("{method} {path}"),
                            "has no endpoint: add x-wso2-production-endpoints to the API or to this operation, or a `servers` URL",
                        );
                        continue;
                    }
                    if production.is_none() {
                        diags.warn_about(
                            &file,
                            doc.line(&op_pointer),
                            format!("{method} {path}"),
                            "has only a sandbox endpoint: only SANDBOX tokens and keys reach it, production ones get 403 (900901)",
                        );
                    }
                    let security =
                        security::resource_security(doc, &api_security, &op_pointer, diags);
                    let line = doc.line(&op_pointer);
                    let upper = method.to_string();
                    if let Some(&earlier) = seen.get(&(upper.clone(), path.clone())) {
                        let same_endpoint = |index: Option<usize>, new: Option<&EndpointSpec>| {
                            index.map(|i| spec_of(&endpoints.list[i])).as_ref() == new
                        };
                        let first: &Resource = &resources[earlier];
                        let same = same_endpoint(
                            first.production,
                            production.as_ref().map(|(e, _)| &e.spec),
                        ) && same_endpoint(
                            first.sandbox,
                            sandbox.as_ref().map(|(e, _)| &e.spec),
                        ) && first.security == security;
                        let first_line = lines[earlier]
                            .map_or_else(|| "?".to_string(), |l: usize| l.to_string());
                        if same {
                            diags.warn(
                                &file,
                                line,
                                format!("{upper} {path} is also declared at line {first_line} (the path keys differ only in a fragment); they are merged into one resource"),
                            );
                        } else {
                            diags.error(
                                &file,
                                line,
                                format!("{upper} {path} is also declared at line {first_line} with another endpoint or security (the path keys differ only in a fragment, which never reaches a server); merge the two operations or give them different paths"),
                            );
                        }
                        continue;
                    }
                    seen.insert((upper, path.clone()), resources.len());
                    lines.push(line);
                    pointers.push((item_pointer.clone(), op_pointer.clone()));
                    tiers.push(throttling_tier(doc, &op_pointer, diags));
                    resources.push(Resource {
                        method: method.to_string(),
                        path: path.clone(),
                        operation_id,
                        production: production
                            .map(|(e, n)| endpoints.add(e, n, Environment::Production)),
                        sandbox: sandbox.map(|(e, n)| endpoints.add(e, n, Environment::Sandbox)),
                        security,
                        pipeline: 0,
                    });
                }
            }
        }
        Some(None) => diags.error(
            &file,
            doc.line("/paths"),
            "`paths` must be a mapping of path templates to path items",
        ),
        None => diags.error(
            &file,
            Some(1),
            "the definition has no `paths`: add at least one resource",
        ),
    }
    if resources.is_empty() && diags.errors.len() == errors_before {
        diags.error(
            &file,
            doc.line("/paths"),
            "the definition has no operations under `paths`: add at least one (get, post, ...)",
        );
    }
    if diags.errors.len() > errors_before {
        return None;
    }
    Some(LoadedApi {
        api: Api {
            id,
            name,
            version: api_version,
            base_path,
            source: file,
            resources,
            allow_encoded_slash,
        },
        endpoints: endpoints.list,
        lines,
        api_tier,
        tiers,
        pointers,
        version,
    })
}

/// The operations of a path item as (method, pointer): the fixed fields for every version,
/// plus, for OpenAPI 3.2, `query` and the custom methods of `additionalOperations`.
fn operations(
    doc: &Document,
    version: SpecVersion,
    item: &serde_json::Map<String, Value>,
    item_pointer: &str,
    diags: &mut Diagnostics,
) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = METHODS
        .iter()
        .filter(|m| item.contains_key(**m))
        .map(|m| (m.to_string(), child(item_pointer, m)))
        .collect();
    if version != SpecVersion::OpenApi32 {
        return found;
    }
    if item.contains_key("query") {
        found.push(("query".into(), child(item_pointer, "query")));
    }
    let additional = child(item_pointer, "additionalOperations");
    match item.get("additionalOperations") {
        None => {}
        Some(Value::Object(map)) => {
            for name in map.keys() {
                let pointer = child(&additional, name);
                let fixed = METHODS.contains(&name.to_ascii_lowercase().as_str())
                    || name.eq_ignore_ascii_case("query");
                let token = !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
                if fixed || !token {
                    diags.error(
                        &doc.file,
                        doc.line(&pointer),
                        format!("additionalOperations: {name:?} {}; OpenAPI 3.2 keeps this map for other methods (an HTTP token such as COPY or PURGE)", if fixed { "is a method with its own field in the path item" } else { "is not an HTTP method name" }),
                    );
                    continue;
                }
                found.push((name.clone(), pointer));
            }
        }
        Some(_) => diags.error(
            &doc.file,
            doc.line(&additional),
            "additionalOperations must map method names to operations",
        ),
    }
    found
}

/// OpenAPI 3.2 fields that do not change what is routed where, named once so the user knows
/// they are not applied.
fn warn_ignored_32_fields(doc: &Document, diags: &mut Diagnostics) {
    if doc.get("/$self").is_some() {
        diags.warn(
            &doc.file,
            doc.line("/$self"),
            "$self (OpenAPI 3.2) is ignored: references are resolved within this file",
        );
    }
}

/// Endpoints of one API, deduplicated by name and environment so references share one
/// round-robin cursor.
#[derive(Default)]
struct Endpoints {
    list: Vec<Endpoint>,
    index: BTreeMap<(String, bool), usize>,
}

impl Endpoints {
    fn add(
        &mut self,
        declared: DeclaredEndpoint,
        inline_name: String,
        environment: Environment,
    ) -> usize {
        let name = declared.reference.unwrap_or(inline_name);
        let key = (name.clone(), environment == Environment::Production);
        if let Some(&i) = self.index.get(&key) {
            if spec_of(&self.list[i]) == declared.spec {
                return i;
            }
        }
        let EndpointSpec {
            kind,
            urls,
            timeout_ms,
        } = declared.spec;
        self.list.push(Endpoint {
            name,
            environment,
            kind,
            urls,
            timeout_ms,
        });
        self.index.insert(key, self.list.len() - 1);
        self.list.len() - 1
    }
}

fn spec_of(endpoint: &Endpoint) -> EndpointSpec {
    EndpointSpec {
        kind: endpoint.kind,
        urls: endpoint.urls.clone(),
        timeout_ms: endpoint.timeout_ms,
    }
}

fn required_string(
    doc: &Document,
    pointer: &str,
    what: &str,
    diags: &mut Diagnostics,
) -> Option<String> {
    match doc.get(pointer) {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => {
            diags.error(
                &doc.file,
                doc.line(pointer).or(doc.line("/info")).or(Some(1)),
                format!("{what} is required"),
            );
            None
        }
    }
}

fn base_path(
    doc: &Document,
    version: SpecVersion,
    api_version: &str,
    diags: &mut Diagnostics,
) -> String {
    let file = &doc.file;
    match doc.get("/x-wso2-basePath") {
        Some(Value::String(path)) => {
            return expand_base_path(path, api_version, doc, "/x-wso2-basePath", diags)
        }
        Some(other) => {
            diags.error(
                file,
                doc.line("/x-wso2-basePath"),
                format!("x-wso2-basePath must be a string like \"/petstore/v1\", not {other}"),
            );
            return "/".into();
        }
        None => {}
    }
    let fallback = match version {
        SpecVersion::OpenApi3 | SpecVersion::OpenApi32 => first_server_url(doc).and_then(|url| {
            let path = if url.starts_with('/') {
                url.clone()
            } else {
                // The URL parser encodes braces; a template is checked on its own text.
                url::Url::parse(&url)
                    .ok()?
                    .path()
                    .replace("%7B", "{")
                    .replace("%7D", "}")
            };
            Some((path, "the path of the first `servers` URL"))
        }),
        SpecVersion::Swagger2 => doc
            .get("/basePath")
            .and_then(Value::as_str)
            .map(|p| (p.to_string(), "`basePath`")),
    };
    match fallback {
        Some((path, source)) if normalise_base_path(&path) != "/" => {
            let pointer = match version {
                SpecVersion::Swagger2 => "/basePath",
                _ => "/servers/0/url",
            };
            let path = expand_base_path(&path, api_version, doc, pointer, diags);
            diags.warn(file, Some(1), format!("no x-wso2-basePath: using {source}, '{path}', as the base path; add x-wso2-basePath to choose it"));
            path
        }
        _ => {
            diags.warn(file, Some(1), "no x-wso2-basePath and no usable server path: the base path defaults to '/'; add x-wso2-basePath");
            "/".into()
        }
    }
}

/// A base path with `{version}` replaced by the API's `info.version`, as WSO2 API Manager does
/// for API contexts (`/bank/payments/{version}`); any other `{...}` is an error at the line of
/// `pointer`, since a base path is fixed text that requests must start with.
fn expand_base_path(
    path: &str,
    api_version: &str,
    doc: &Document,
    pointer: &str,
    diags: &mut Diagnostics,
) -> String {
    let expanded = path.replace("{version}", api_version);
    if expanded.contains(['{', '}']) {
        diags.error(
            &doc.file,
            doc.line(pointer),
            format!("base path {path:?} holds a template other than {{version}} (which stands for info.version, {api_version:?}); a base path is fixed text: write the value instead"),
        );
    }
    normalise_base_path(&expanded)
}

fn normalise_base_path(path: &str) -> String {
    let trimmed = path.trim().trim_end_matches('/');
    if trimmed.is_empty() {
        "/".into()
    } else if trimmed.starts_with('/') {
        trimmed.to_string()
    } else {
        format!("/{trimmed}")
    }
}

/// The first server URL with its variables replaced by their defaults.
fn first_server_url(doc: &Document) -> Option<String> {
    let server = doc.get("/servers/0")?;
    let mut url = server.get("url")?.as_str()?.to_string();
    if let Some(vars) = server.get("variables").and_then(Value::as_object) {
        for (name, var) in vars {
            if let Some(default) = var.get("default").and_then(Value::as_str) {
                url = url.replace(&format!("{{{name}}}"), default);
            }
        }
    }
    Some(url)
}

/// Without x-wso2-production-endpoints, the definition's own server is the endpoint.
fn server_endpoint(
    doc: &Document,
    version: SpecVersion,
    diags: &mut Diagnostics,
) -> Option<DeclaredEndpoint> {
    let (url, pointer) = match version {
        SpecVersion::OpenApi3 | SpecVersion::OpenApi32 => {
            (first_server_url(doc)?, "/servers/0/url")
        }
        SpecVersion::Swagger2 => {
            let host = doc.get("/host")?.as_str()?;
            let schemes: Vec<&str> = doc
                .get("/schemes")
                .and_then(Value::as_array)
                .map(|s| s.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let scheme = if schemes.contains(&"http") || schemes.is_empty() {
                "http"
            } else {
                "https"
            };
            let base = doc.get("/basePath").and_then(Value::as_str).unwrap_or("");
            (format!("{scheme}://{host}{base}"), "/host")
        }
    };
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return None;
    }
    let parsed = url::Url::parse(&url).ok();
    if parsed.as_ref().and_then(url::Url::host_str).is_none() {
        diags.warn(
            &doc.file,
            doc.line(pointer),
            format!("server URL {url:?} is not usable as an endpoint"),
        );
        return None;
    }
    diags.warn(
        &doc.file,
        doc.line(pointer),
        format!("no x-wso2-production-endpoints at the top level: resources without their own endpoint go to {url} (from the definition's server)"),
    );
    Some(DeclaredEndpoint {
        reference: None,
        spec: EndpointSpec {
            kind: mgw_runtime::model::EndpointKind::Http,
            urls: vec![url.trim_end_matches('/').to_string()],
            timeout_ms: mgw_runtime::model::DEFAULT_ENDPOINT_TIMEOUT_MS,
        },
    })
}

/// Checks `{parameter}` syntax with the router's own parser: balanced, named, not nested.
/// Several parameters may share a segment (`{category}.{ext}`).
fn check_template(path: &str) -> Result<(), String> {
    mgw_runtime::router::check_template(path)
}

fn sanitize(path: &str) -> String {
    path.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect::<String>()
        .trim_matches('_')
        .to_string()
}

/// Warns about extensions at one level: unknown `x-wso2-*` names, and known ones not applied yet.
/// Where in a definition an extension is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Api,
    PathItem,
    Operation,
}

/// Extensions this version reads at `level`.
fn applied_at(key: &str, level: Level) -> bool {
    match level {
        Level::Api => APPLIED.contains(&key),
        Level::Operation => matches!(
            key,
            "x-wso2-production-endpoints" | "x-wso2-sandbox-endpoints" | "x-mgw-validation"
        ),
        Level::PathItem => false,
    }
}

fn check_extensions(doc: &Document, pointer: &str, level: Level, diags: &mut Diagnostics) {
    let Some(map) = doc
        .get(if pointer.is_empty() { "" } else { pointer })
        .and_then(Value::as_object)
    else {
        return;
    };
    for (key, value) in map {
        let key_pointer = child(pointer, key);
        if applied_at(key, level) {
            continue;
        }
        if APPLIED.contains(&key.as_str()) {
            let place = match level {
                Level::Api => "the top level",
                Level::PathItem => "a path item",
                Level::Operation => "an operation",
            };
            diags.warn(
                &doc.file,
                doc.line(&key_pointer),
                format!(
                    "{key} is ignored on {place}: it is read at the top level{}",
                    if key.ends_with("-endpoints") && key != "x-wso2-endpoints" {
                        " and on operations"
                    } else {
                        ""
                    }
                ),
            );
            continue;
        }
        if SECURITY.contains(&key.as_str()) && level == Level::PathItem {
            diags.warn(
                &doc.file,
                doc.line(&key_pointer),
                format!(
                    "{key} is ignored on a path item: put it on the operations or at the top level"
                ),
            );
            continue;
        }
        if key == "x-wso2-disable-security" && !value.is_boolean() {
            diags.error(
                &doc.file,
                doc.line(&key_pointer),
                format!("x-wso2-disable-security must be true or false, not {value}"),
            );
            continue;
        }
        // Informational, or read into the resource's security.
        if key == "x-wso2-owner" || SECURITY.contains(&key.as_str()) {
            continue;
        }
        if NOT_YET_APPLIED.contains(&key.as_str()) {
            diags.warn(
                &doc.file,
                doc.line(&key_pointer),
                format!("{key} is recognised but not applied yet by this micro-gw version"),
            );
        } else if key.starts_with("x-wso2-") {
            diags.warn(
                &doc.file,
                doc.line(&key_pointer),
                format!("unknown extension {key} is ignored (check its spelling)"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> (Option<LoadedApi>, Diagnostics) {
        let doc = Document::parse("api.yaml", text).unwrap();
        let mut d = Diagnostics::default();
        (load_definition(&doc, &mut d), d)
    }

    const PETSTORE: &str = "openapi: 3.0.0
info: {title: Petstore, version: 1.0.0}
x-wso2-basePath: petstore/v1/
x-wso2-production-endpoints:
  urls: [http://localhost:8080/api]
paths:
  /pet/{petId}:
    get: {operationId: getPet}
    delete: {}
  /pet/findByStatus:
    get:
      x-wso2-production-endpoints:
        urls: [http://a:1, http://b:2]
        type: failover
";

    #[test]
    fn loads_openapi3_with_api_and_resource_endpoints() {
        let (api, d) = load(PETSTORE);
        assert!(d.is_ok(), "{:?}", d.errors);
        let api = api.unwrap();
        assert_eq!(api.api.base_path, "/petstore/v1");
        assert_eq!(api.api.id, api_id("Petstore", "1.0.0"));
        assert_eq!(api.api.resources.len(), 3);
        let find = &api.api.resources[2];
        let ep = &api.endpoints[find.production.unwrap()];
        assert!(
            ep.name.starts_with(&api.api.id) && ep.name.ends_with("get_pet_findByStatus"),
            "{}",
            ep.name
        );
        assert_eq!(ep.kind, mgw_runtime::model::EndpointKind::Failover);
        // The two API-level uses share one endpoint.
        assert_eq!(
            api.api.resources[0].production,
            api.api.resources[1].production
        );
        assert_eq!(
            api.endpoints[api.api.resources[0].production.unwrap()].name,
            api.api.id
        );
    }

    #[test]
    fn api_id_matches_wso2() {
        assert_eq!(api_id("PizzaShackAPI", "1.0.0").len(), 4 + 64);
        assert!(api_id("a", "b").starts_with("api_"));
    }

    #[test]
    fn swagger2_uses_base_path_and_host_with_warnings() {
        let (api, d) = load("swagger: '2.0'\ninfo: {title: S, version: v1}\nhost: backend:9000\nbasePath: /s/v1\nschemes: [https]\npaths:\n  /x:\n    get: {}\n");
        let api = api.unwrap();
        assert_eq!(api.api.base_path, "/s/v1");
        assert_eq!(api.endpoints[0].urls, vec!["https://backend:9000/s/v1"]);
        assert!(
            d.warnings.iter().any(|w| w.message.contains("basePath")),
            "{:?}",
            d.warnings
        );
    }

    #[test]
    fn openapi31_servers_fallback() {
        let (api, d) = load("openapi: 3.1.0\ninfo: {title: T, version: '2'}\nservers:\n  - url: 'http://{host}:8080/t/v2'\n    variables: {host: {default: be}}\npaths:\n  /a:\n    post: {}\n");
        assert!(d.is_ok(), "{:?}", d.errors);
        let api = api.unwrap();
        assert_eq!(api.api.base_path, "/t/v2");
        assert_eq!(api.endpoints[0].urls, vec!["http://be:8080/t/v2"]);
    }

    #[test]
    fn resource_without_endpoint_is_an_error_with_line() {
        let (api, d) = load("openapi: 3.0.0\ninfo: {title: T, version: '1'}\nx-wso2-basePath: /t\npaths:\n  /a:\n    get: {}\n");
        assert!(api.is_none());
        assert_eq!(d.errors[0].line, Some(6));
        assert!(d.errors[0].message.contains("no endpoint"));
    }

    #[test]
    fn unknown_and_pending_extensions_warn_by_name() {
        let (api, d) = load("openapi: 3.0.0\ninfo: {title: T, version: '1'}\nx-wso2-basePath: /t\nx-wso2-bogus: 1\nx-wso2-response-cache: {}\nx-wso2-production-endpoints: {urls: ['http://a']}\npaths:\n  /a:\n    get: {x-wso2-transports: [http], x-wso2-cors: {}}\n");
        assert!(api.is_some());
        let text: Vec<String> = d.warnings.iter().map(ToString::to_string).collect();
        assert!(
            text.iter()
                .any(|w| w.contains("x-wso2-bogus") && w.starts_with("api.yaml:4:")),
            "{text:?}"
        );
        assert!(
            text.iter().any(|w| w.contains("x-wso2-response-cache")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|w| w.contains("x-wso2-transports") && w.starts_with("api.yaml:9:")),
            "{text:?}"
        );
        // x-wso2-cors is applied at the top level only (as WSO2 reads it).
        assert!(
            text.iter()
                .any(|w| w.contains("x-wso2-cors is ignored on an operation")),
            "{text:?}"
        );
    }

    #[test]
    fn bad_documents_are_rejected() {
        assert!(
            load("openapi: 2.5\ninfo: {title: T, version: '1'}\npaths: {}\n")
                .0
                .is_none()
        );
        assert!(load("info: {title: T}\n").0.is_none());
        let (api, d) = load("openapi: 3.0.0\ninfo: {title: T, version: '1'}\nx-wso2-basePath: /t\nx-wso2-production-endpoints: {urls: ['http://a']}\npaths:\n  /a/{x{y}}:\n    get: {}\n");
        assert!(api.is_none());
        assert!(d.errors[0].message.contains("nests"), "{:?}", d.errors);
        assert_eq!(d.errors[0].line, Some(6));
        let (api, d) = load("openapi: 3.0.0\ninfo: {title: T, version: '1'}\nx-wso2-disable-security: 'yes'\nx-wso2-production-endpoints: {urls: ['http://a']}\npaths:\n  /a:\n    get: {}\n");
        assert!(api.is_none());
        assert_eq!(d.errors[0].line, Some(3));
    }

    #[test]
    fn path_item_refs_and_cycles() {
        let ok = "openapi: 3.0.0\ninfo: {title: T, version: '1'}\nx-wso2-basePath: /t\nx-wso2-production-endpoints: {urls: ['http://a']}\npaths:\n  /a: {$ref: '#/x-items/a'}\nx-items:\n  a: {get: {}}\n";
        let (api, d) = load(ok);
        assert!(api.is_some(), "{:?}", d.errors);
        let cyc = "openapi: 3.0.0\ninfo: {title: T, version: '1'}\nx-wso2-basePath: /t\nx-wso2-production-endpoints: {urls: ['http://a']}\npaths:\n  /a: {$ref: '#/x-items/a'}\nx-items:\n  a: {$ref: '#/x-items/b'}\n  b: {$ref: '#/x-items/a'}\n";
        let (api, d) = load(cyc);
        assert!(api.is_none());
        assert!(
            d.errors.iter().any(|e| e.message.contains("circular")),
            "{:?}",
            d.errors
        );
    }

    const HEAD: &str =
        "info: {title: T, version: '2.1'}\nx-wso2-production-endpoints: {urls: ['http://a']}\n";

    /// Issue 10 item 2: `{version}` in a base path is info.version; any other template is an
    /// error at the base path's line.
    #[test]
    fn base_path_version_template() {
        let (api, d) = load(&format!(
            "openapi: 3.0.0\n{HEAD}x-wso2-basePath: /bank/payments/{{version}}\npaths:\n  /a: {{get: {{}}}}\n"
        ));
        assert!(d.is_ok(), "{:?}", d.errors);
        assert_eq!(api.unwrap().api.base_path, "/bank/payments/2.1");
        let (api, d) = load(&format!(
            "openapi: 3.0.0\n{HEAD}x-wso2-basePath: /bank/{{tenant}}/{{version}}\npaths:\n  /a: {{get: {{}}}}\n"
        ));
        assert!(api.is_none());
        assert_eq!(d.errors[0].line, Some(4), "{:?}", d.errors);
        assert!(d.errors[0].message.contains("{version}"), "{:?}", d.errors);
        // The servers fallback is held to the same rule.
        let (api, d) = load("openapi: 3.0.0\ninfo: {title: T, version: '3'}\nx-wso2-production-endpoints: {urls: ['http://a']}\nservers: [{url: 'http://h/api/{version}'}]\npaths:\n  /a: {get: {}}\n");
        assert!(d.is_ok(), "{:?}", d.errors);
        assert_eq!(api.unwrap().api.base_path, "/api/3");
    }

    /// Issue 10 item 4: several parameters in one segment load.
    #[test]
    fn several_parameters_per_segment_load() {
        let (api, d) = load(&format!(
            "openapi: 3.0.0\n{HEAD}x-wso2-basePath: /m\npaths:\n  /profiles/{{id}}{{ext}}: {{get: {{}}}}\n  /search/{{category}}.{{ext}}: {{get: {{}}}}\n  /certificates(alg={{alg}},thumbprint={{tp}}): {{get: {{}}}}\n"
        ));
        assert!(d.is_ok(), "{:?}", d.errors);
        assert_eq!(api.unwrap().api.resources.len(), 3);
    }

    /// Issue 10 item 6: a fragment is dropped with a warning; keys that then name the same
    /// operation are merged when they agree, and an error naming both lines when not.
    #[test]
    fn fragments_are_dropped_and_duplicates_merged_or_refused() {
        let (api, d) = load(&format!(
            "openapi: 3.0.0\n{HEAD}x-wso2-basePath: /c\npaths:\n  /v1/conversations#stream: {{post: {{}}}}\n  /v1/conversations: {{post: {{}}, get: {{}}}}\n  /#Action=Describe: {{get: {{}}}}\n"
        ));
        assert!(d.is_ok(), "{:?}", d.errors);
        let api = api.unwrap();
        let routes: Vec<(String, String)> = api
            .api
            .resources
            .iter()
            .map(|r| (r.method.clone(), r.path.clone()))
            .collect();
        assert_eq!(
            routes,
            [
                ("POST", "/v1/conversations"),
                ("GET", "/v1/conversations"),
                ("GET", "/")
            ]
            .map(|(m, p)| (m.to_string(), p.to_string()))
        );
        assert_eq!(api.lines, [Some(6), Some(7), Some(8)]);
        let text: Vec<String> = d.warnings.iter().map(ToString::to_string).collect();
        assert!(
            text.iter()
                .any(|w| w.starts_with("api.yaml:6:") && w.contains("#stream")),
            "{text:?}"
        );
        assert!(
            text.iter().any(|w| w.starts_with("api.yaml:7:")
                && w.contains("merged")
                && w.contains("line 6")),
            "{text:?}"
        );

        let (api, d) = load(&format!(
            "openapi: 3.0.0\n{HEAD}x-wso2-basePath: /c\npaths:\n  /v1/x#a: {{post: {{}}}}\n  /v1/x#b:\n    post:\n      x-wso2-production-endpoints: {{urls: ['http://other']}}\n"
        ));
        assert!(api.is_none());
        assert_eq!(d.errors[0].line, Some(8), "{:?}", d.errors);
        assert!(d.errors[0].message.contains("line 6"), "{:?}", d.errors);
    }

    /// Issue 10 item 8: OpenAPI 3.2 loads, with its `query` method and additionalOperations.
    #[test]
    fn openapi_32_loads() {
        let (api, d) = load(&format!(
            "openapi: 3.2.0\n$self: https://example.com/api.yaml\n{HEAD}x-wso2-basePath: /q\npaths:\n  /search:\n    get: {{}}\n    query: {{}}\n    additionalOperations:\n      PURGE: {{}}\n"
        ));
        assert!(d.is_ok(), "{:?}", d.errors);
        let methods: Vec<String> = api
            .unwrap()
            .api
            .resources
            .iter()
            .map(|r| r.method.clone())
            .collect();
        assert_eq!(methods, ["GET", "QUERY", "PURGE"]);
        assert!(
            d.warnings
                .iter()
                .any(|w| w.message.contains("$self") && w.line == Some(2)),
            "{:?}",
            d.warnings
        );
        let (api, d) = load(&format!(
            "openapi: 3.2.0\n{HEAD}x-wso2-basePath: /q\npaths:\n  /s:\n    additionalOperations:\n      get: {{}}\n"
        ));
        assert!(api.is_none());
        assert_eq!(d.errors[0].line, Some(8), "{:?}", d.errors);
        // `query` is an ordinary extension-free key before 3.2: not an operation.
        let (api, _) = load(&format!(
            "openapi: 3.1.0\n{HEAD}x-wso2-basePath: /q\npaths:\n  /s:\n    get: {{}}\n    query: {{}}\n"
        ));
        assert_eq!(api.unwrap().api.resources.len(), 1);
    }
}
